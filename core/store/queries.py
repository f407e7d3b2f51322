"""Queries over a loaded runs frame: parameterised filters and sorts, run details, exports."""
from __future__ import annotations

import io
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import schema
from core.text import formula_safe, utc_moments
from core.store.load import by_moment
from core.store.records import _plain, row_to_record
from core.store.validate import EXTRA_COLUMN, safe_json_text

FILTER_KEYS = ("model", "pretrained", "method", "dataset", "source", "status")
#: pretrained too: the pages' model column shows it ('world-v2-b')
SEARCH_COLUMNS = ("model", "pretrained", "method", "dataset", "source", "run_id")
#: The columns a leaderboard or an export shows first, in this order.
LEADERBOARD_COLUMNS = ("run_id", "model", "pretrained", "method", "dataset", "seed", "status",
                       "zs_acc", "ft_acc", "id_gain", "norm_gain", "ood_change", "iimm", "source")
#: Provenance keys read by :func:`model_metadata` and :func:`run_details` (first found wins).
PROVENANCE_KEYS = {
    "total_params": ("total_params", "params_total"),
    "trainable_params": ("trainable_params", "params_trainable"),
    "embed_dim": ("embed_dim", "embedding_dim"),
    "weights_source": ("weights_source",),
    "command": ("command", "reproduce_command"),
}


def query_runs(df: pd.DataFrame, *, filters: Mapping[str, Iterable[str] | str | None] | None = None,
               search: str | None = None, sort_by: str | None = None, descending: bool = True,
               limit: int | None = None, method_title: Callable[[str], str] | None = None) -> pd.DataFrame:
    """Filter, search and sort a runs frame in DuckDB; every user value is a bound parameter.

    filters: ``{key: [values]}`` with keys from :data:`FILTER_KEYS`; a row matches when its
    value is one of the values. None or an empty list means "no filter on that key".
    search: case-insensitive substring over :data:`SEARCH_COLUMNS` (not a pattern: ``%``
    and ``_`` match themselves), and, given ``method_title`` (a method's displayed name, e.g.
    ``core.cards.method_title``), over that name too. sort_by: a ``schema.SCALAR_FIELDS`` column (nulls last,
    ties by run_id; ``created_at`` by the moment it names, whatever its UTC offset); default keeps
    the input order. limit: at most this many rows.
    Raises ValueError for an unknown filter key or sort column, or a bad limit.
    """
    where: list[str] = []
    params: list[Any] = []
    used = {"run_id"}
    for key, values in (filters or {}).items():
        if key not in FILTER_KEYS:
            raise ValueError(f"unknown filter {key!r}; use one of {FILTER_KEYS}")
        if key not in df.columns:
            raise ValueError(f"the runs frame has no column {key!r}")
        values = [values] if isinstance(values, str) else list(values or [])
        if values:
            where.append(f'"{key}" IN ({", ".join("?" * len(values))})')
            params += [str(v) for v in values]
            used.add(key)
    if search is not None and search.strip():
        needle, cols = search.strip().lower(), [c for c in SEARCH_COLUMNS if c in df.columns]
        clauses = [f'strpos(lower(coalesce(CAST("{c}" AS VARCHAR), \'\')), ?) > 0' for c in cols]
        params += [needle] * len(cols)
        titled = ([str(m) for m in df["method"].dropna().unique() if needle in method_title(str(m)).lower()]
                  if method_title is not None and "method" in df.columns else [])  # a few names, not a call per run
        if titled:  # the names the pages show ("IA³ (peft)"), not only the record's keys (peft_ia3)
            clauses.append(f'"method" IN ({", ".join("?" * len(titled))})')
            params += titled
        where.append("(" + " OR ".join(clauses) + ")")
        used.update(cols)
    order = "_pos"
    if sort_by is not None:
        if sort_by not in schema.SCALAR_FIELDS or sort_by not in df.columns:
            raise ValueError(f"cannot sort by {sort_by!r}; use one of {list(schema.SCALAR_FIELDS)}")
        direction = f'{"DESC" if descending else "ASC"} NULLS LAST'
        # created_at is text with any UTC offset: ordered as the moment it names, as the loader orders it
        key = by_moment(direction) if sort_by == "created_at" else f'"{sort_by}" {direction}'
        order = f"{key}, run_id, _pos"
        used.add(sort_by)
    sql = ("SELECT _pos FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY {order}")
    if limit is not None:
        # numpy integers (a count taken from an array) are integers too; bools are not
        if isinstance(limit, (bool, np.bool_)) or not isinstance(limit, numbers.Integral) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        sql += " LIMIT ?"
        params.append(int(limit))
    # DuckDB sees only the columns it needs plus row positions; the full rows are then taken
    # from the frame once, so the result keeps the input's dtypes and wide JSON columns
    # never cross into DuckDB and back.
    narrow = df[[c for c in df.columns if c in used]].assign(_pos=np.arange(len(df)))
    con = duckdb.connect()
    try:
        con.register("runs", narrow)
        positions = con.execute(sql, params).fetchnumpy()["_pos"]
    finally:
        con.close()
    out = df.iloc[np.asarray(positions, dtype=np.int64)].reset_index(drop=True)
    out.attrs = {}  # a view for display: the store's skipped list stays with the loaded frame
    return out


def matching_runs(runs: pd.DataFrame, *, model: tuple[str, str] | None = None,
                  filters: Mapping[str, Iterable[str] | str | None] | None = None, search: str | None = None,
                  sort_by: str | None = None, descending: bool = True, columns: Iterable[str] = (),
                  method_title: Callable[[str], str] | None = None) -> pd.DataFrame:
    """:func:`query_runs` on ``runs``, or on one ``(model, pretrained)``'s: every field but the extras, or only
    ``columns`` (chosen before any row is taken: taking the wide JSON columns of 100,000 runs cost 0.35 s
    where a page shows a dozen scalar ones). Raises what :func:`query_runs` raises, and KeyError for a
    ``columns`` entry the frame lacks."""
    columns = list(columns)
    if model is not None and (not isinstance(model, (tuple, list)) or len(model) != 2):
        # a bare name was compared letter by letter: "Unable to coerce to Series, length must be 2: given 14"
        raise ValueError(f"model must be a (model, pretrained) pair, got {model!r}")
    if columns:
        missing = [c for c in columns if c not in runs.columns]
        if missing:
            raise KeyError(f"the runs frame has no column(s) {missing}")
        needed = (*columns, *FILTER_KEYS, *SEARCH_COLUMNS, *([sort_by] if sort_by else []))
        runs = runs[[c for c in dict.fromkeys(needed) if c in runs.columns]]
    if model is not None:  # one vectorised comparison: a key built per run cost a Python call per row
        runs = runs[runs[["model", "pretrained"]].eq(list(model)).all(axis=1)]
    view = query_runs(runs, filters=filters, search=search, sort_by=sort_by, descending=descending,
                      method_title=method_title)
    return view[columns] if columns else view.drop(columns=[EXTRA_COLUMN], errors="ignore")


def run_details(df: pd.DataFrame, run_id: str) -> dict[str, Any]:
    """One run as a record dict with nested fields parsed, plus two conveniences:

    ``ood_table``: list of ``{"set", "before", "after", "change"}`` (one per OOD set);
    ``command``: the reproducing command from provenance, or None.
    Raises KeyError when no row has this run_id. Nested fields that cannot be parsed safely
    (a hostile Parquet cell) come back as None instead of raising.
    """
    rows = df[df["run_id"] == run_id]
    if rows.empty:
        raise KeyError(f"no run with run_id {run_id!r}")
    try:
        rec = row_to_record(rows.iloc[-1].to_dict())
    except ValueError:
        row = rows.iloc[-1].to_dict()
        rec = {k: _plain(row.get(k)) for k in schema.SCALAR_FIELDS}
        rec.update({k: safe_json_text(_plain(row.get(k))) for k in schema.NESTED_FIELDS})
    before = rec.get("ood_before") if isinstance(rec.get("ood_before"), dict) else {}
    after = rec.get("ood_after") if isinstance(rec.get("ood_after"), dict) else {}
    table = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        numbers = all(isinstance(v, (int, float)) for v in (a, b))
        table.append({"set": name, "before": b, "after": a, "change": a - b if numbers else None})
    rec["ood_table"] = table
    prov = rec.get("provenance") if isinstance(rec.get("provenance"), dict) else None
    command = _find(prov, "command")
    rec["command"] = command if isinstance(command, str) else None
    return rec


def model_metadata(df: pd.DataFrame) -> pd.DataFrame:
    """Per (model, pretrained): model_key, random_weights, total_params, embed_dim,
    weights_source (from the newest run whose provenance names them; None if none does)
    and n_runs."""
    cols = ["model", "pretrained", "model_key", "random_weights", "total_params", "embed_dim",
            "weights_source", "n_runs"]
    out = []
    if df.empty:
        return pd.DataFrame(columns=cols)
    # newest by the moment created_at names: as text, '…T16:00+05:30' (10:30 UTC) came after '…T11:00+00:00'
    # (a Series on df's index: through an object array pandas read a moment in year 10000 back as 1972)
    df = df.assign(_made=utc_moments(df["created_at"]))
    for (model, pretrained), group in df.groupby(["model", "pretrained"], sort=True, dropna=False):
        group = group.sort_values("_made", ascending=False, na_position="last", kind="stable")
        row: dict[str, Any] = {"model": model, "pretrained": pretrained, "n_runs": len(group),
                               "model_key": _plain(group["model_key"].dropna().iloc[0])
                               if group["model_key"].notna().any() else None,
                               "random_weights": _plain(group["random_weights"].dropna().iloc[0])
                               if group["random_weights"].notna().any() else None}
        wanted = {"total_params": (int,), "embed_dim": (int,), "weights_source": (str,)}
        for text in group["provenance"].dropna():
            prov = safe_json_text(text)
            if not isinstance(prov, dict):
                continue
            for key, kinds in wanted.items():
                value = _find(prov, key)
                if row.get(key) is None and isinstance(value, kinds) and not isinstance(value, bool):
                    row[key] = value if not isinstance(value, str) else value[:schema.MAX_TEXT]
            if all(row.get(k) is not None for k in wanted):
                break
        out.append(row)
    return pd.DataFrame(out, columns=cols)


def _find(mapping: Mapping[str, Any] | None, key: str) -> Any:
    for alias in PROVENANCE_KEYS[key]:
        if mapping and mapping.get(alias) is not None:
            return mapping[alias]
    return None


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV without the index.

    Spreadsheet-formula guard: any *text* cell starting with ``=``, ``+``, ``-``, ``@``, tab
    or carriage return gets a leading apostrophe, so Excel/LibreOffice show it as text
    instead of running it (CSV injection). Numeric columns are untouched, so negative
    numbers stay numbers; a text value like ``-3`` comes back as ``'-3`` (:func:`core.text.formula_safe`).
    """
    return schema.csv_text(formula_safe(df)).encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Parquet (pyarrow, zstd) without the index; JSON columns stay JSON text. The frame's ``attrs`` (the
    loader's skipped list: local paths) are not written (pandas would put them in the file's metadata)."""
    buf = io.BytesIO()
    bare = df.copy(deep=False)
    bare.attrs = {}
    bare.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


