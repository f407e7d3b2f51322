"""Loading the store: every valid run of the roots as one frame; every invalid one quarantined.

A file that breaks a rule (core.schema, core.store.validate) is skipped and named; it can
never make :func:`load_runs` raise. Roots have a priority (their order): a run_id already
loaded from an earlier root is never replaced by a later one -- a later copy with the same
content is a no-op, a different one is quarantined as a conflict. Within one root a JSON record
beats the copy compaction made of its run (it was written after compaction read the run, whatever
the clock of the host that wrote either says); otherwise the newest ``created_at`` wins (JSON beats
Parquet on a tie), as compaction needs.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import schema
from core.store.compaction import COMPACTED_PREFIX
from core.store.formulas import flag_submitted_rows
from core.store import index as store_index
from core.store.index import indexed_rows, read_rows
from core.store.records import ARROW_SCHEMA, COLUMNS, PANDAS_TYPES, list_data_files
from core.store.validate import (MAX_STORED_ROW_BYTES, TEXT_COLUMNS, RecordError, Skipped, check_row_group_sizes,
                                 parsed_columns, reason_sql, recheck_text_sql, standard_text, stored_text_problem)

log = logging.getLogger("core.store")

_DUCK = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}
DUCK_TYPES = {n: _DUCK[k] for n, (k, _) in schema.SCALAR_FIELDS.items()}
_READ_RETRIES = 3
MAX_SKIPPED_PER_FILE = 100  # a million bad rows in one Parquet file are named by a count
_COMPACTED_FILE = rf"(^|[/\\]){re.escape(COMPACTED_PREFIX)}[^/\\]*$"

# The validated rows of unchanged Parquet files, per process: a server re-reads its store every 30 s, and
# re-validating a compacted store of 100,000 runs took 0.4-0.5 s of the next visitor's view each time.
# Keyed as the store index keys files, with its racy window: a file changed just before is never remembered
# (as git treats "racily clean" files), so a rewrite within one timestamp tick is read again.
_PARQUET_MEMO: OrderedDict[tuple, tuple[pa.Table | None, list[Skipped]]] = OrderedDict()
_PARQUET_MEMO_SIZE = 4
_PARQUET_MEMO_LOCK = threading.Lock()


def by_moment(order: str) -> str:
    """An ORDER BY on created_at as a moment, not text ("…10:00:00Z" and "…12:00:00+02:00" are one time,
    "…10:00:00.5+00:00" is after "…10:00:00+00:00"), then as text for a stable order of equal moments. ``order`` is
    SQL put after each of the two keys as it is (a direction such as "DESC NULLS LAST"): never user text."""
    return f"TRY_CAST(created_at AS TIMESTAMPTZ) {order}, created_at {order}"


_WORK = ARROW_SCHEMA.append(pa.field("_file", pa.string())).append(pa.field("_root", pa.int64()))


def _roots(roots: Iterable[str | Path] | str | Path | None) -> list[Path]:
    if roots is None:
        import core.store as package  # late: tests and benchmarks may repoint SHIPPED_DIR

        return package.default_roots()
    if isinstance(roots, (str, bytes, os.PathLike)):  # one folder; a str must not iterate as characters
        return [Path(os.fsdecode(roots))]
    return [Path(r) for r in roots]


def load_runs_report(roots: Iterable[str | Path] | str | Path | None = None, *, index_dir: Path | None = None
                     ) -> tuple[pd.DataFrame, list[Skipped]]:
    """Every valid run under ``roots`` (one folder, or several in priority order; default: the
    app's roots) and every skipped record.

    Frame: one row per run_id, columns :data:`COLUMNS`, ordered by created_at then run_id.
    Skipped: one :class:`Skipped` per file or row left out (invalid, unreadable, too large, not a
    regular file, a symlink out of its folder, or a run_id conflicting with an earlier root).
    Missing roots are ignored. ``index_dir``: keep an index of each root's JSON records there and
    take unchanged records from it (:mod:`core.store.index`; the result is the same either way).
    """
    paths = _roots(roots)
    for attempt in range(_READ_RETRIES):
        try:
            return _load_once([p for p in paths if p.exists()], strict=True, index_dir=index_dir)
        except FileNotFoundError:  # a compaction swapped files under us: list again
            log.info("store changed during read (attempt %d); re-reading", attempt + 1)
            time.sleep(0.05 * (attempt + 1))
    return _load_once([p for p in paths if p.exists()], strict=False, index_dir=index_dir)


def load_runs(roots: Iterable[str | Path] | str | Path | None = None, *, index_dir: Path | None = None) -> pd.DataFrame:
    """The frame of :func:`load_runs_report`; its skipped list rides in ``frame.attrs["skipped"]``
    (read it with :func:`skipped_records`)."""
    frame, skipped = load_runs_report(roots, index_dir=index_dir)
    frame.attrs["skipped"] = skipped
    return frame


def skipped_records(runs: pd.DataFrame) -> list[Skipped]:
    """The records :func:`load_runs` quarantined while building ``runs`` ([] if none or unknown).

    Pages show ``core.store.skipped_summary(skipped_records(runs))`` through ``core.text.plain``.
    """
    return list(runs.attrs.get("skipped", []))


def stored_run_ids(results_dir: str | Path, *, ok_only: bool = False) -> set[str]:
    """run_ids stored (valid) under ``results_dir``, JSON and compacted Parquet alike."""
    runs = load_runs([results_dir])
    if ok_only:
        runs = runs[runs["status"] == "ok"]
    return set(runs["run_id"])


def _load_once(roots: list[Path], strict: bool, index_dir: Path | None
               ) -> tuple[pd.DataFrame, list[Skipped]]:
    skipped: list[Skipped] = []
    per_root = []
    for root in roots:
        # JSON before Parquet: compaction publishes its Parquet before deleting the JSON it
        # merged, so every run is seen in at least one of the two listings.
        files = list_data_files(root, (".json",), skipped)
        rows = read_rows(files, skipped) if index_dir is None else indexed_rows(root, files, skipped, index_dir)
        per_root.append((rows, list_data_files(root, (".parquet",), skipped)))
    table = merge_rows(per_root, strict, skipped)
    return table.to_pandas(types_mapper=PANDAS_TYPES.get), skipped


def merge_rows(per_root: list[tuple[pa.Table, list[Path]]], strict: bool, skipped: list[Skipped]) -> pa.Table:
    """Per root (JSON rows as :data:`core.store.index.ROWS_SCHEMA`, Parquet files) -> one table of
    ARROW_SCHEMA, one row per run_id: the earliest root's copy; within a root the newest
    created_at; on a tie JSON wins, then compacted Parquet (former JSON winners, so compaction
    never changes the winner), then other Parquet files by name.

    A compacted copy of a run that also has a JSON record in its root comes last there, whatever its
    created_at: compaction removes every JSON record it merged, so that record was written after (a
    rerun). By created_at, a copy stamped by a host whose clock ran ahead (a cluster node without NTP,
    a record dated 2099) hid every later rerun of its run, and the next compaction deleted the rerun."""
    con = duckdb.connect()
    try:
        tables, sources = [], []
        for index, (json_table, parquet_files) in enumerate(per_root):
            parts = [json_table]
            sources.append(pa.array([0] * json_table.num_rows, pa.int8()))
            if parquet_files:
                parquet = _read_parquet(con, parquet_files, strict, skipped)
                if parquet is not None:
                    parts.append(parquet)
                    compacted = pc.match_substring_regex(parquet["_file"], _COMPACTED_FILE)
                    sources.append(pc.if_else(compacted, 1, 2).cast(pa.int8()).combine_chunks())
            for part in parts:
                tables.append(part.append_column("_root", pa.array([index] * part.num_rows, pa.int64())))
        merged = pa.concat_tables(tables).cast(_WORK) if tables else _WORK.empty_table()
        src = pa.chunked_array(sources, pa.int8())
        keys = pa.table({"run_id": merged["run_id"], "created_at": merged["created_at"],
                         "_root": merged["_root"], "_file": merged["_file"], "_src": src,
                         "_superseded": _superseded(merged["run_id"], merged["_root"], src),
                         "_pos": pa.array(range(merged.num_rows), pa.int64())})
        ranked = _arrow(con.execute(
            "SELECT _pos, _root, first_value(_pos) OVER w AS _keep, first_value(_root) OVER w AS _keep_root, "
            "row_number() OVER w AS _rank, created_at, run_id FROM keys "
            f"WINDOW w AS (PARTITION BY run_id ORDER BY _root, _superseded, {by_moment('DESC NULLS LAST')}, _src, "
            "CASE WHEN _src = 0 THEN NULL ELSE _file END NULLS FIRST, _pos)"))
        _note_conflicts(merged, ranked, skipped)
        kept = con.execute("SELECT _pos FROM ranked WHERE _rank = 1 "
                           f"ORDER BY {by_moment('NULLS FIRST')}, run_id").fetchnumpy()["_pos"]
        in_order = len(kept) == merged.num_rows and bool((kept == np.arange(len(kept))).all())
        # a compacted store is usually stored in this order already: taking every wide JSON column's
        # 100,000 rows again cost 0.3-0.6 s of each server's first read
        out = merged if in_order else merged.take(pa.array(kept, pa.int64()))
        return out.drop_columns(["_file", "_root"])
    finally:
        con.close()


def _superseded(run_ids: pa.ChunkedArray, roots: pa.ChunkedArray, src: pa.ChunkedArray) -> pa.Array:
    """1 for each compacted copy (source 1) of a run that has a JSON record (source 0) in the same root, else 0."""
    out = np.zeros(len(run_ids), dtype=np.int8)
    compacted, json_rows = pc.equal(src, 1), pc.equal(src, 0)
    if not (pc.any(compacted).as_py() and pc.any(json_rows).as_py()):
        return pa.array(out)
    for root in pc.unique(roots).to_pylist():
        here = pc.equal(roots, root)
        written = pc.filter(run_ids, pc.and_(here, json_rows))
        if len(written):
            hit = pc.and_(pc.and_(here, compacted), pc.is_in(run_ids, value_set=written.combine_chunks()))
            out[hit.to_numpy(zero_copy_only=False)] = 1
    return pa.array(out)


def _note_conflicts(merged: pa.Table, ranked: pa.Table, skipped: list[Skipped]) -> None:
    """Name every later-root copy of a run whose content differs from the copy that was kept."""
    later = ranked.filter(pc.and_(pc.greater(ranked["_rank"], 1),
                                  pc.not_equal(ranked["_root"], ranked["_keep_root"])))
    if not later.num_rows:
        return
    content = [c for c in COLUMNS if c != "created_at"]
    for pos, keep in zip(later["_pos"].to_pylist(), later["_keep"].to_pylist(), strict=True):
        dropped, kept = merged.take([pos, keep]).to_pylist()
        if any(dropped[c] != kept[c] for c in content):
            skipped.append(Skipped(dropped["_file"] or "?", (
                f"run_id {dropped['run_id']!r} is already stored in {kept['_file']} with different "
                "content; this copy is ignored (a stored run is never replaced)")))


# DuckDB 2 warns about one extra copy on every read; harmless here. Silenced once, for this module's calls
# only: a ``warnings.catch_warnings`` block per read saves and restores the process-wide filter list, which
# is not thread-safe, so two reads at once (a server's and a submission's) left every UserWarning ignored.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result makes an extra copy",
                        category=UserWarning, module=re.escape(__name__))


def _arrow(result: duckdb.DuckDBPyConnection) -> pa.Table:
    """The pending result as an Arrow table (DuckDB 2's name; requirements.txt asks for 2.0 or later)."""
    return result.to_arrow_table()


def _select_parquet(con: duckdb.DuckDBPyConnection, files: list[str]) -> str:
    """A SELECT over ``files`` giving :data:`COLUMNS` typed, ``_file``, ``_reason`` (the first
    rule the row breaks, NULL when valid) and ``_recheck`` (its JSON text may be what a .json record may not
    hold: :func:`_recheck_flagged_text`); missing columns are NULL."""
    described = con.execute("DESCRIBE SELECT * FROM read_parquet(?, union_by_name=true)", [files]).fetchall()
    raw_types = {row[0]: str(row[1]) for row in described}
    parts = []
    for name in COLUMNS:  # names come from the schema, never from users
        kind = DUCK_TYPES.get(name, "VARCHAR")
        if name in raw_types:
            parts.append(f'TRY_CAST("{name}" AS {kind}) AS "{name}"')
        else:
            parts.append(f'NULL::{kind} AS "{name}"')
        if name in DUCK_TYPES:
            parts.append(f'"{name}" AS "_raw_{name}"' if name in raw_types else f'NULL AS "_raw_{name}"')
    parts += [f'{sql} AS "{name}"' for name, sql in parsed_columns(set(raw_types)).items()]
    inner = f"SELECT {', '.join(parts)}, filename AS _file FROM read_parquet($files, union_by_name=true, filename=true)"
    reason = reason_sql(set(raw_types), raw_types, DUCK_TYPES)
    cols = ", ".join(f'"{c}"' for c in (*COLUMNS, "_file"))
    # compaction's own files hold only text Python's json wrote: the scan is for Parquet from elsewhere (it cost a
    # cold load of 100,000 compacted runs 0.1 s); a file renamed by hand to look like compaction's is trusted too
    recheck = "false"
    if not all(re.search(_COMPACTED_FILE, f) for f in files):
        recheck = (f"CASE WHEN regexp_matches(_file, '{_COMPACTED_FILE}') THEN false "
                   f"ELSE {recheck_text_sql(set(raw_types))} END")
    return f"SELECT {cols}, {reason} AS _reason, {recheck} AS _recheck FROM ({inner})"


def _valid_rows(con: duckdb.DuckDBPyConnection, files: list[str], skipped: list[Skipped]) -> pa.Table:
    table = flag_submitted_rows(_recheck_flagged_text(_arrow(con.execute(_select_parquet(con, files), {"files": files}))))
    bad_mask = pc.is_valid(table["_reason"])
    if pc.any(bad_mask).as_py():
        bad = table.filter(bad_mask).select(["_file", "run_id", "_reason"]).to_pylist()
        per_file: dict[str, int] = {}
        for row in bad:
            n = per_file[row["_file"]] = per_file.get(row["_file"], 0) + 1
            if n <= MAX_SKIPPED_PER_FILE:
                run = row["run_id"] if isinstance(row["run_id"], str) and len(row["run_id"]) <= 64 else "?"
                skipped.append(Skipped(f"{row['_file']} (run_id {run!r})", row["_reason"]))
        for name, n in per_file.items():
            if n > MAX_SKIPPED_PER_FILE:
                skipped.append(Skipped(name, f"{n - MAX_SKIPPED_PER_FILE} more invalid rows"))
        table = table.filter(pc.invert(bad_mask))
    return table.drop_columns(["_reason"])


def _recheck_flagged_text(table: pa.Table) -> pa.Table:
    """``table`` without ``_recheck``, each otherwise valid row it flags given a ``_reason`` when Python's json
    refuses one of its nested texts or it is nested deeper than the schema allows. DuckDB's json_valid accepts
    "[1, 2,]" or "nan", which a .json record may not hold: such a row was served, shown without that field,
    crashed jobs.predictors and an ingest of its run, and its export could not be ingested again. Only flagged
    rows (a superset found by patterns, :func:`core.store.validate.recheck_text_sql`) are parsed here: parsing
    every row took 2.5 s at 100,000 runs. A loaded row's NaN/Infinity become null, as in a .json record."""
    flagged = pc.and_(table["_recheck"], pc.is_null(table["_reason"]))
    table = table.drop_columns(["_recheck"])
    if not pc.any(flagged).as_py():
        return table
    reasons = table["_reason"].to_pylist()
    names = [n for n in TEXT_COLUMNS if n in table.column_names]
    rewritten: dict[str, dict[int, str]] = {n: {} for n in names}
    for i in np.flatnonzero(flagged.to_numpy(zero_copy_only=False)):
        texts = {name: table[name][int(i)].as_py() for name in names}
        if problem := next(filter(None, (stored_text_problem(n, t) for n, t in texts.items())), None):
            reasons[i] = problem
            continue
        for name, text in texts.items():
            if (standard := standard_text(text)) != text:
                rewritten[name][int(i)] = standard
    for name, changed in ((n, c) for n, c in rewritten.items() if c):
        column = [changed.get(i, text) for i, text in enumerate(table[name].to_pylist())]
        table = table.set_column(table.column_names.index(name), name, pa.array(column, table.schema.field(name).type))
    return table.set_column(table.column_names.index("_reason"), "_reason", pa.array(reasons, pa.string()))


def _read_parquet(con: duckdb.DuckDBPyConnection, files: list[Path], strict: bool,
                  skipped: list[Skipped]) -> pa.Table | None:
    """The valid rows of ``files`` as one Arrow table; corrupt files skipped and named.

    A listed file that vanished raises FileNotFoundError when ``strict`` (the caller lists
    again and retries), else it is skipped. Files unchanged since an earlier read in this process
    (see _PARQUET_MEMO) are not read again: their table and skipped entries are given again.
    """
    key = _settled_identity(files)
    with _PARQUET_MEMO_LOCK:
        hit = _PARQUET_MEMO.get(key) if key is not None else None
        if hit is not None:
            _PARQUET_MEMO.move_to_end(key)
    if hit is not None:
        skipped += hit[1]
        return hit[0]
    _forget_changed()
    attempt: list[Skipped] = []
    table, lasting = _read_parquet_files(con, files, strict, attempt)
    skipped += attempt
    if lasting and key is not None and key == _settled_identity(files):  # unchanged while it was read
        with _PARQUET_MEMO_LOCK:
            _PARQUET_MEMO[key] = (table, attempt)
            while len(_PARQUET_MEMO) > _PARQUET_MEMO_SIZE:
                _PARQUET_MEMO.popitem(last=False)
    return table


def _forget_changed() -> None:
    """Drop the remembered file sets of which a file is gone or changed: they can never be asked for again,
    and compaction deletes the files it merged, so a server kept up to three dead copies of its store's rows
    (at 100,000 runs: 790 MB resident instead of 500) until four other file sets had been read."""
    with _PARQUET_MEMO_LOCK:
        keys = list(_PARQUET_MEMO)
    changed = [k for k in keys if any(store_index.file_key(Path(name)) != key for name, key in k)]
    if changed:
        with _PARQUET_MEMO_LOCK:
            for k in changed:
                _PARQUET_MEMO.pop(k, None)


def _settled_identity(files: list[Path]) -> tuple | None:
    """Each file's identity as the store index keys it (:func:`core.store.index.file_key`), or None when
    one is missing or changed within the index's racy window before now (its mtime could not tell a
    rewrite within the same timestamp tick apart)."""
    start = store_index.time_ns()  # before any stat, as the index does
    keys = [store_index.file_key(f) for f in files]
    if not all(store_index.settled(k, start) for k in keys):
        return None
    return tuple(zip(map(str, files), keys, strict=True))


_READ_COLUMNS = frozenset(COLUMNS)  # the columns of a Parquet file the loader reads (_select_parquet)


def _refused_unread(name: str, skipped: list[Skipped]) -> bool:
    """Whether the Parquet file ``name`` is skipped from its footer alone, before DuckDB reads a row: its row groups
    say the columns it reads unpack to more than a valid run's row may take (``check_row_group_sizes`` with
    ``MAX_STORED_ROW_BYTES``; one crafted 1 GB text cell took a store read to about 2 GB). A footer that cannot be
    read is left to DuckDB, which says why."""
    try:
        check_row_group_sizes(pq.read_metadata(name), MAX_STORED_ROW_BYTES, "the most a valid run's row may take",
                              columns=_READ_COLUMNS)
    except RecordError as exc:
        log.warning("skipping parquet %s, refused unread: %s", name, exc)
        skipped.append(Skipped(name, f"refused unread: {exc}"))
        return True
    except (OSError, pa.ArrowException, ValueError):
        pass
    return False


def _read_parquet_files(con: duckdb.DuckDBPyConnection, files: list[Path], strict: bool,
                        skipped: list[Skipped]) -> tuple[pa.Table | None, bool]:
    """The rows, and whether they hold while the files are unchanged: False when a file was skipped for
    a passing reason (an I/O error, out of memory, an interrupt, a vanished file) rather than for its
    content (DuckDB's InvalidInputException), so that the memo does not replay it."""
    names = [f for f in map(str, files) if not _refused_unread(f, skipped)]
    if not names:
        return None, True
    attempt: list[Skipped] = []
    try:
        table = _valid_rows(con, names, attempt)
        skipped += attempt
        return table, True
    except duckdb.Error:
        if strict and not all(f.exists() for f in files):
            raise FileNotFoundError("a parquet file vanished during the read") from None
    tables, lasting = [], True
    for f in names:  # slow path: find and skip the bad file(s)
        try:
            tables.append(_valid_rows(con, [f], skipped))
        except duckdb.Error as exc:
            lasting = lasting and isinstance(exc, duckdb.InvalidInputException)
            if not Path(f).exists():
                if strict:
                    raise FileNotFoundError(f) from None
                lasting = False
                log.warning("parquet %s vanished during the read; skipped", f)
            else:
                log.warning("skipping unreadable parquet %s: %s", f, str(exc)[:200])
                skipped.append(Skipped(f, f"unreadable Parquet ({str(exc).splitlines()[0][:120]})"))
    return (pa.concat_tables(tables) if tables else None), lasting
