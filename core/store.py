"""The result store: run records on disk <-> one pandas DataFrame, queried through DuckDB.

Layout. A *root* is a folder of records, one ``<run_id>.json`` per run (any depth), plus
optional ``compacted-<hash>.parquet`` files made by :func:`compact`. Two roots are read by
default: the shipped ``jobs/results`` and the user's local store (``$IIMM_RESULTS`` or
``results/``).

Concurrency, without locks on the read side (see ECOSYSTEM-NOTES, DuckDB):

* writers create ``.tmp-*`` files in the target folder and ``os.replace`` them into place,
  so a reader sees either the old file or the whole new one; every file or folder whose
  name starts with ``.`` is ignored by readers;
* readers use a short-lived in-memory DuckDB connection and hold nothing open;
* :func:`compact` takes a file lock only against other compactors, writes the merged
  Parquet atomically, and only then deletes the files it merged (JSON files that changed
  meanwhile are kept). A reader that loses a file mid-read starts over (bounded retries);
  any run read twice is de-duplicated (newest ``created_at`` wins).

Frame columns (:data:`COLUMNS`): every ``schema.SCALAR_FIELDS`` name, every
``schema.NESTED_FIELDS`` name as JSON text, and ``extra`` (JSON text of unknown top-level
keys, so compaction never drops data).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import re
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import schema

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_DIR = REPO_ROOT / "jobs" / "results"
ENV_VAR = "IIMM_RESULTS"
TMP_PREFIX = ".tmp-"
LOCK_NAME = ".compact.lock"
EXTRA_COLUMN = "extra"
COLUMNS: tuple[str, ...] = (*schema.SCALAR_FIELDS, *schema.NESTED_FIELDS, EXTRA_COLUMN)
FILTER_KEYS = ("model", "pretrained", "method", "dataset", "source", "status")
SEARCH_COLUMNS = ("model", "method", "dataset", "source", "run_id")
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
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")  # safe as a file name
_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
_DUCK = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}
ARROW_SCHEMA = pa.schema([(n, _ARROW[k]) for n, (k, _) in schema.SCALAR_FIELDS.items()]
                         + [(n, pa.string()) for n in (*schema.NESTED_FIELDS, EXTRA_COLUMN)])
_PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
_READ_RETRIES = 3


def local_results_dir() -> Path:
    """The user's own store: ``$IIMM_RESULTS`` when set, else ``results/`` in the repo."""
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env).expanduser() if env else REPO_ROOT / "results"


def default_roots() -> list[Path]:
    """The roots the app reads: shipped ``jobs/results`` first, then the local store."""
    roots = [SHIPPED_DIR, local_results_dir()]
    return roots if roots[0].resolve() != roots[1].resolve() else roots[:1]


def check_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``schema.validate_record`` plus a run_id that is safe as a file name.

    Raises schema.SchemaError naming the problem.
    """
    schema.validate_record(record)  # type: ignore[arg-type]
    if not isinstance(record["run_id"], str) or not _RUN_ID.match(record["run_id"]):
        raise schema.SchemaError(
            f"run_id {record['run_id']!r} must be 1-200 letters, digits, '.', '_' or '-' "
            "and start with a letter or digit")
    return dict(record)


def _atomic_write(target: Path, write: Any) -> Path:
    """Write via a ``.tmp-*`` file in the same folder, fsync, then ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself; not possible everywhere
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def write_record(record: Mapping[str, Any], results_dir: str | Path) -> Path:
    """Validate one record and write it atomically as ``<results_dir>/<run_id>.json``.

    Fills ``created_at`` (UTC, ISO-8601) when absent; an existing file of the same run_id
    is replaced whole (the grid runner decides whether to skip finished runs).
    """
    rec = check_record(record)
    if not rec.get("created_at"):
        rec["created_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    data = _dumps(rec, indent=1).encode("utf-8")
    return _atomic_write(Path(results_dir) / f"{rec['run_id']}.json", lambda fh: fh.write(data))


def _no_nan(value: Any) -> Any:
    """A copy of nested data with NaN/inf floats as None (standard JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_no_nan(v) for v in value]
    return value


def _dumps(value: Any, **kw: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False, **kw)
    except ValueError:  # NaN somewhere inside, e.g. an undefined zero-shot measure
        return json.dumps(_no_nan(value), sort_keys=True, allow_nan=False, **kw)


def _flatten(record: Mapping[str, Any]) -> dict[str, Any]:
    """One validated record -> one row of :data:`ARROW_SCHEMA`."""
    row: dict[str, Any] = {}
    for name, (kind, _) in schema.SCALAR_FIELDS.items():
        value = record.get(name)
        row[name] = float(value) if kind is float and value is not None else value
    for name in schema.NESTED_FIELDS:
        value = record.get(name)
        row[name] = None if value is None else _dumps(value)
    extra = {k: v for k, v in record.items() if k not in COLUMNS}
    row[EXTRA_COLUMN] = _dumps(extra) if extra else None
    return row


def records_to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Records (validated here) as a frame shaped like :func:`load_runs` output, in input order."""
    rows = [_flatten(check_record(r)) for r in records]
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA).to_pandas(types_mapper=_PANDAS_TYPES.get)


def _plain(value: Any) -> Any:
    """numpy/pandas scalars -> Python; NaN/NA -> None."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def row_to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """One frame row (or export row) back to a record dict: JSON columns parsed, NaN -> None.

    Raises ValueError when a nested column holds text that is not JSON.
    """
    rec: dict[str, Any] = {}
    for name in schema.SCALAR_FIELDS:
        if name in row:
            value = _plain(row[name])
            kind = schema.SCALAR_FIELDS[name][0]
            # Parquet written by other tools may widen ints to floats; undo that exactly.
            if kind is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            rec[name] = value
    for name in (*schema.NESTED_FIELDS, EXTRA_COLUMN):
        text = _plain(row.get(name))
        if text is None:
            continue
        try:
            value = json.loads(text) if isinstance(text, str) else text
        except json.JSONDecodeError as exc:
            raise ValueError(f"column {name!r} does not hold JSON text: {exc}") from None
        if name == EXTRA_COLUMN:
            rec.update({k: v for k, v in value.items() if k not in COLUMNS})
        else:
            rec[name] = value
    return rec


def _data_files(root: Path, suffix: str) -> list[Path]:
    """Files ending in ``suffix`` under ``root``; hidden files/folders (temp files) skipped."""
    if root.is_file():
        return [root] if root.suffix == suffix else []
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files)
                  if f.endswith(suffix) and not f.startswith(".")]
    return found


def _read_json_record(path: Path) -> dict[str, Any] | None:
    """The validated record in ``path``, or None (with a warning) if unreadable."""
    try:
        with open(path, "rb") as fh:
            return check_record(json.loads(fh.read()))
    except FileNotFoundError:  # compacted or replaced since listing: not an error
        log.debug("record %s vanished while reading", path)
    except (OSError, ValueError, TypeError) as exc:  # JSONDecodeError, SchemaError are ValueErrors
        log.warning("skipping unreadable record %s: %s", path, exc)
    return None


def _select_parquet(con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
    """A SELECT over ``files`` giving exactly :data:`COLUMNS`, typed; missing columns as NULL."""
    present = set(con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)",
                              [files]).df()["column_name"])
    types = {n: _DUCK[k] for n, (k, _) in schema.SCALAR_FIELDS.items()}
    parts = []
    for name in COLUMNS:  # names come from the schema, never from users
        kind = types.get(name, "VARCHAR")
        parts.append(f'TRY_CAST("{name}" AS {kind}) AS "{name}"' if name in present
                     else f'NULL::{kind} AS "{name}"')
    return (f"SELECT {', '.join(parts)} FROM read_parquet($files, union_by_name=true) "
            "WHERE run_id IS NOT NULL AND run_id <> ''")


def _read_parquet(con: duckdb.DuckDBPyConnection, files: list[Path], strict: bool) -> pa.Table | None:
    """All rows of ``files`` as one Arrow table; corrupt files skipped with a warning.

    A listed file that vanished raises FileNotFoundError when ``strict`` (the caller lists
    again and retries), else it is skipped.
    """
    names = [str(f) for f in files]
    try:
        return _arrow(con.execute(_select_parquet(con, names), {"files": names}))
    except duckdb.Error:
        if strict and not all(f.exists() for f in files):
            raise FileNotFoundError("a parquet file vanished during the read") from None
    tables = []
    for f in names:  # slow path: find and skip the bad file(s)
        try:
            tables.append(_arrow(con.execute(_select_parquet(con, [f]), {"files": [f]})))
        except duckdb.Error as exc:
            if not Path(f).exists():
                if strict:
                    raise FileNotFoundError(f) from None
                log.warning("parquet %s vanished during the read; skipped", f)
            else:
                log.warning("skipping unreadable parquet %s: %s", f, exc)
    return pa.concat_tables(tables) if tables else None


def _arrow(result: duckdb.DuckDBPyConnection) -> pa.Table:
    """The pending result as an Arrow table (the method's name changed in DuckDB 1.4/2.0)."""
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    with warnings.catch_warnings():  # DuckDB 2 warns about one extra copy; harmless here
        warnings.simplefilter("ignore", UserWarning)
        return fetch()


def load_runs(roots: Iterable[str | Path] | None = None) -> pd.DataFrame:
    """Every run under ``roots`` (default :func:`default_roots`), one row per run_id.

    Reads ``*.json`` records (any depth) and compacted ``*.parquet`` files; a run found
    twice keeps its newest ``created_at`` (JSON beats Parquet on a tie). Unreadable or
    invalid files are skipped with a logged warning; missing roots are skipped silently.
    Rows are ordered by created_at, then run_id. Columns: :data:`COLUMNS`.
    """
    paths = [Path(r) for r in (default_roots() if roots is None else roots)]
    for attempt in range(_READ_RETRIES):
        try:
            return _load_once([p for p in paths if p.exists()], strict=True)
        except FileNotFoundError:  # a compaction swapped files under us: list again
            log.info("store changed during read (attempt %d); re-reading", attempt + 1)
            time.sleep(0.05 * (attempt + 1))
    return _load_once([p for p in paths if p.exists()], strict=False)


def _load_once(roots: list[Path], strict: bool) -> pd.DataFrame:
    # JSON before Parquet: compaction publishes its Parquet before deleting the JSON it
    # merged, so every run is seen in at least one of the two listings.
    rows = [_flatten(r) for root in roots for f in _data_files(root, ".json")
            if (r := _read_json_record(f)) is not None]
    parquet_files = [f for root in roots for f in _data_files(root, ".parquet")]
    return _merge(rows, parquet_files, strict).to_pandas(types_mapper=_PANDAS_TYPES.get)


def _merge(rows: list[dict[str, Any]], parquet_files: list[Path], strict: bool = True) -> pa.Table:
    """JSON rows + Parquet files as one table of ARROW_SCHEMA, one row per run_id (newest
    created_at; JSON wins ties), ordered by created_at then run_id."""
    tables = [pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)]
    con = duckdb.connect()
    try:
        parquet = _read_parquet(con, parquet_files, strict) if parquet_files else None
        if parquet is not None:
            tables.append(parquet.cast(ARROW_SCHEMA))
        merged = pa.concat_tables(tables)
        # De-duplicate on a narrow key table, then take whole rows once: far cheaper than a
        # window over every column. JSON rows come first, so _pos breaks ties in their favour.
        keys = pa.table({"run_id": merged["run_id"], "created_at": merged["created_at"],
                         "_pos": pa.array(range(merged.num_rows), pa.int64())})
        con.register("keys", keys)
        keep = con.execute(
            "SELECT _pos FROM keys QUALIFY row_number() OVER (PARTITION BY run_id "
            "ORDER BY created_at DESC NULLS LAST, _pos) = 1 "
            "ORDER BY created_at NULLS FIRST, run_id").fetchnumpy()["_pos"]
        if len(keep) == merged.num_rows and (keep[1:] > keep[:-1]).all():
            return merged  # already unique and in order (e.g. one compacted file)
        return merged.take(pa.array(keep, pa.int64()))
    finally:
        con.close()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """An exclusive advisory lock (released by the OS if the holder dies). Readers never take it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if os.name == "nt":
                    import msvcrt
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                else:
                    import fcntl
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another compaction holds {path} "
                                       f"(waited {timeout:.0f} s)") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            if os.name != "nt":
                import fcntl
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _write_parquet(table: pa.Table, root: Path) -> Path:
    digest = hashlib.sha256()
    for run_id, created in zip(table.column("run_id").to_pylist(),
                               table.column("created_at").to_pylist()):
        digest.update(f"{run_id}\0{created}\n".encode())
    target = root / f"compacted-{digest.hexdigest()[:16]}.parquet"
    return _atomic_write(target, lambda fh: pq.write_table(table, fh, compression="zstd"))


def write_records_parquet(records: Iterable[Mapping[str, Any]], results_dir: str | Path) -> Path:
    """Validate records and write them as one compacted Parquet file (atomic). For bulk loads."""
    rows = [_flatten(check_record(r)) for r in records]
    if not rows:
        raise ValueError("write_records_parquet needs at least one record")
    return _write_parquet(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), Path(results_dir))


def compact(root: str | Path) -> Path | None:
    """Merge a root's JSON records and compacted Parquet files into one Parquet file.

    Returns the new file, or None when there was nothing to merge. Runs under a file lock
    against other compactions only. Invalid JSON files are left in place; a JSON file that
    changed after it was read is kept (the next compaction takes it).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {root} does not exist")
    with _file_lock(root / LOCK_NAME):
        json_files = _data_files(root, ".json")
        seen: list[tuple[Path, int, int]] = []
        rows = []
        for f in json_files:
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            rec = _read_json_record(f)
            if rec is not None:
                rows.append(_flatten(rec))
                seen.append((f, st.st_mtime_ns, st.st_size))
        old = [f for f in _data_files(root, ".parquet") if f.name.startswith("compacted-")]
        if not rows and len(old) <= 1:
            return None
        merged = _merge(rows, old)
        target = _write_parquet(merged, root)
        for f in old:
            if f != target:
                f.unlink(missing_ok=True)
        removed = 0
        for f, mtime, size in seen:
            with contextlib.suppress(FileNotFoundError):
                st = f.stat()
                if (st.st_mtime_ns, st.st_size) == (mtime, size):
                    f.unlink()
                    removed += 1
        log.info("compacted %d runs into %s (%d JSON files removed)", merged.num_rows, target, removed)
        return target


def stored_run_ids(results_dir: str | Path, *, ok_only: bool = False) -> set[str]:
    """run_ids stored under ``results_dir``, JSON and compacted Parquet alike.

    A grid that resumes by looking for ``<run_id>.json`` would redo compacted runs; this
    is the check that survives :func:`compact`.
    """
    runs = load_runs([results_dir])
    if ok_only:
        runs = runs[runs["status"] == "ok"]
    return set(runs["run_id"])


def query_runs(df: pd.DataFrame, *, filters: Mapping[str, Iterable[str] | str | None] | None = None,
               search: str | None = None, sort_by: str | None = None, descending: bool = True,
               limit: int | None = None) -> pd.DataFrame:
    """Filter, search and sort a runs frame in DuckDB; every user value is a bound parameter.

    filters: ``{key: [values]}`` with keys from :data:`FILTER_KEYS`; a row matches when its
    value is one of the values. None or an empty list means "no filter on that key".
    search: case-insensitive substring over :data:`SEARCH_COLUMNS` (not a pattern: ``%``
    and ``_`` match themselves). sort_by: a ``schema.SCALAR_FIELDS`` column (nulls last,
    ties by run_id); default keeps the input order. limit: at most this many rows.
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
        cols = [c for c in SEARCH_COLUMNS if c in df.columns]
        where.append("(" + " OR ".join(f'strpos(lower(coalesce(CAST("{c}" AS VARCHAR), \'\')), ?) > 0'
                                      for c in cols) + ")")
        params += [search.strip().lower()] * len(cols)
        used.update(cols)
    order = "_pos"
    if sort_by is not None:
        if sort_by not in schema.SCALAR_FIELDS or sort_by not in df.columns:
            raise ValueError(f"cannot sort by {sort_by!r}; use one of {list(schema.SCALAR_FIELDS)}")
        order = f'"{sort_by}" {"DESC" if descending else "ASC"} NULLS LAST, run_id, _pos'
        used.add(sort_by)
    sql = ("SELECT _pos FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY {order}")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        sql += " LIMIT ?"
        params.append(limit)
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
    return df.iloc[np.asarray(positions, dtype=np.int64)].reset_index(drop=True)


def _find(mapping: Mapping[str, Any] | None, key: str) -> Any:
    for alias in PROVENANCE_KEYS[key]:
        if mapping and mapping.get(alias) is not None:
            return mapping[alias]
    return None


def run_details(df: pd.DataFrame, run_id: str) -> dict[str, Any]:
    """One run as a record dict with nested fields parsed, plus two conveniences:

    ``ood_table``: list of ``{"set", "before", "after", "change"}`` (one per OOD set);
    ``command``: the reproducing command from provenance, or None.
    Raises KeyError when no row has this run_id.
    """
    rows = df[df["run_id"] == run_id]
    if rows.empty:
        raise KeyError(f"no run with run_id {run_id!r}")
    rec = row_to_record(rows.iloc[-1].to_dict())
    before, after = rec.get("ood_before") or {}, rec.get("ood_after") or {}
    table = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        table.append({"set": name, "before": b, "after": a,
                      "change": a - b if a is not None and b is not None else None})
    rec["ood_table"] = table
    rec["command"] = _find(rec.get("provenance"), "command")
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
    for (model, pretrained), group in df.groupby(["model", "pretrained"], sort=True, dropna=False):
        group = group.sort_values("created_at", ascending=False, na_position="last")
        row: dict[str, Any] = {"model": model, "pretrained": pretrained, "n_runs": len(group),
                               "model_key": _plain(group["model_key"].dropna().iloc[0])
                               if group["model_key"].notna().any() else None,
                               "random_weights": _plain(group["random_weights"].dropna().iloc[0])
                               if group["random_weights"].notna().any() else None}
        wanted = ("total_params", "embed_dim", "weights_source")
        for text in group["provenance"].dropna():
            prov = json.loads(text)
            for key in wanted:
                if row.get(key) is None:
                    row[key] = _find(prov, key)
            if all(row.get(k) is not None for k in wanted):
                break
        out.append(row)
    return pd.DataFrame(out, columns=cols)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV without the index.

    Spreadsheet-formula guard: any *text* cell starting with ``=``, ``+``, ``-``, ``@``, tab
    or carriage return gets a leading apostrophe, so Excel/LibreOffice show it as text
    instead of running it (CSV injection). Numeric columns are untouched, so negative
    numbers stay numbers; a text value like ``-3`` comes back as ``'-3``.
    """
    safe = df.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v)
    return safe.to_csv(index=False).encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Parquet (pyarrow, zstd) without the index; JSON columns stay JSON text."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow", compression="zstd")
    return buf.getvalue()


@dataclass
class IngestReport:
    """What :func:`ingest` did. refused: ``(where, reason)`` pairs; where = file[:line]."""

    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.accepted)} accepted, {len(self.refused)} refused"


def _candidates(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record-or-exception) for every record-like item in a file."""
    if path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield f"{path}:{i}", json.loads(line)
                    except json.JSONDecodeError as exc:
                        yield f"{path}:{i}", ValueError(f"invalid JSON: {exc}")
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_bytes())
        except (ValueError, OSError) as exc:
            yield str(path), ValueError(f"invalid JSON: {exc}")
            return
        items = data if isinstance(data, list) else [data]
        for i, item in enumerate(items, 1):
            yield (f"{path}:{i}" if isinstance(data, list) else str(path)), item
    elif path.suffix == ".parquet":
        try:
            frame = pq.read_table(path).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            yield str(path), ValueError(f"unreadable parquet: {exc}")
            return
        for i, row in enumerate(frame.to_dict("records"), 1):
            try:
                yield f"{path}:{i}", row_to_record(row)
            except ValueError as exc:
                yield f"{path}:{i}", exc
    else:
        raise ValueError(f"cannot ingest {path.name}: use a folder, .json, .jsonl or .parquet")


def ingest(path: str | Path, target_dir: str | Path) -> IngestReport:
    """Add records made elsewhere to the store at ``target_dir``.

    ``path``: a folder (its .json/.jsonl/.parquet files, any depth, hidden ones skipped) or
    one such file. Each record is validated; a run_id already in the target store, or seen
    earlier in the input, is refused. Accepted records are written with :func:`write_record`.
    Raises FileNotFoundError for a missing path, ValueError for an unsupported file type.
    """
    path, target = Path(path), Path(target_dir)
    if not path.exists():
        raise FileNotFoundError(f"nothing to ingest: {path} does not exist")
    files = ([f for s in (".json", ".jsonl", ".parquet") for f in _data_files(path, s)]
             if path.is_dir() else [path])
    existing = set(load_runs([target])["run_id"]) if target.exists() else set()
    report, first_seen = IngestReport(), {}
    for f in sorted(files):
        for where, item in _candidates(f):
            try:
                if isinstance(item, Exception):
                    raise item
                rec = check_record(item)
            except ValueError as exc:
                report.refused.append((where, str(exc)))
                continue
            run_id = rec["run_id"]
            if run_id in existing:
                report.refused.append((where, f"run_id {run_id!r} is already in {target}"))
            elif run_id in first_seen:
                report.refused.append((where, f"run_id {run_id!r} repeats {first_seen[run_id]}"))
            else:
                first_seen[run_id] = where
                report.written.append(write_record(rec, target))
                report.accepted.append(run_id)
    log.info("ingest %s -> %s: %s", path, target, report.summary())
    return report
