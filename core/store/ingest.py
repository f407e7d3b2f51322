"""Ingest: add records made elsewhere to a store, atomically and without silent overwrites.

Rules, in order, per record: it must pass the one validation (core.store.validate); a run_id
repeated inside the input is refused; a run_id already stored -- in the target or in a
*conflict root* (the shipped results by default) -- is a no-op when the content is the same
(``created_at`` aside) and refused when it differs. The whole batch is decided under an
exclusive lock on the target and written all-or-nothing (every record is staged as a hidden
temp file first, then renamed; any failure removes what this call wrote), so two ingests at
once never lose or overwrite each other's records.
"""
from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.store.compaction import file_lock
from core.store.atomic import TMP_PREFIX, _atomic_write
from core.store.formulas import submitted_formula_problem
from core.store.records import (COLUMNS, MARKER_NAME, flatten,
                                list_data_files, mark_results_folder, prepare_record, read_capped,
                                record_bytes, row_to_record)
from core.store.validate import (INPUT_DEPTH_NOTE, MAX_INPUT_DEPTH, MAX_INPUT_RECORDS, MAX_PARQUET_BYTES,
                                 MAX_RECORD_BYTES, RECORD_DEPTH_NOTE, RecordError, check_record, check_row_group_sizes,
                                 parse_json_bytes)
from core.turns import WaitShown

log = logging.getLogger("core.store")

INGEST_LOCK = ".ingest.lock"
MAX_JSON_INPUT_BYTES = 256 << 20  # one .json input holding a list of records
SUFFIXES = (".json", ".jsonl", ".parquet")


@dataclass
class IngestReport:
    """What an ingest did. refused: ``(where, reason)`` pairs; where = file[:line or row]."""

    accepted: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    def summary(self) -> str:
        same = f", {len(self.unchanged)} already stored (unchanged)" if self.unchanged else ""
        return f"{len(self.accepted)} accepted{same}, {len(self.refused)} refused"


def _where(path: Path, item: int | None = None) -> str:
    return f"{path}:{item}" if item is not None else str(path)


def _candidates(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, record-or-exception) for every record-like item in one input file."""
    try:
        if path.suffix == ".jsonl":
            yield from _jsonl(path)
        elif path.suffix == ".json":
            data = parse_json_bytes(read_capped(path, MAX_JSON_INPUT_BYTES), max_depth=MAX_INPUT_DEPTH,
                                    note=INPUT_DEPTH_NOTE)
            items = data if isinstance(data, list) else [data]
            if len(items) > MAX_INPUT_RECORDS:
                raise RecordError(f"holds {len(items)} records; the limit is {MAX_INPUT_RECORDS}")
            for i, item in enumerate(items, 1):
                yield _where(path, i if isinstance(data, list) else None), item
        elif path.suffix == ".parquet":
            yield from _parquet(path)
        else:
            raise ValueError(f"cannot ingest {path.name}: use a folder, .json, .jsonl or .parquet")
    except RecordError as exc:
        yield str(path), exc
    except OSError as exc:
        yield str(path), RecordError(f"unreadable ({exc.strerror or exc})")


def _jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    raw = read_capped(path, MAX_JSON_INPUT_BYTES)
    lines = raw.split(b"\n")
    if len(lines) > MAX_INPUT_RECORDS:
        raise RecordError(f"holds {len(lines)} lines; the limit is {MAX_INPUT_RECORDS}")
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_BYTES:
            yield _where(path, i), RecordError(f"line is {len(line)} bytes; the limit is {MAX_RECORD_BYTES}")
            continue
        try:
            yield _where(path, i), parse_json_bytes(line, note=RECORD_DEPTH_NOTE)
        except RecordError as exc:
            yield _where(path, i), exc


def _check_unpacked_size(meta: pq.FileMetaData) -> None:
    """Refuses, before anything is read, a Parquet file holding more than :data:`MAX_INPUT_RECORDS` rows or whose
    row groups say they unpack to more than a record's limit a row (:func:`check_row_group_sizes`)."""
    if meta.num_rows > MAX_INPUT_RECORDS:
        raise RecordError(f"holds {meta.num_rows} rows; the limit is {MAX_INPUT_RECORDS}")
    check_row_group_sizes(meta)


def _parquet(path: Path) -> Iterator[tuple[str, Any]]:
    data = read_capped(path, MAX_PARQUET_BYTES)
    unreadable = (OSError, pa.ArrowException, ValueError)
    try:
        meta = pq.ParquetFile(pa.BufferReader(data)).metadata
    except unreadable as exc:
        raise RecordError(f"unreadable parquet: {str(exc)[:120]}") from None
    _check_unpacked_size(meta)  # outside the except: its RecordError (a ValueError) is no unreadable file
    try:
        table = pq.read_table(pa.BufferReader(data))
    except unreadable as exc:
        raise RecordError(f"unreadable parquet: {str(exc)[:120]}") from None
    if table.num_rows > MAX_INPUT_RECORDS:
        raise RecordError(f"holds {table.num_rows} rows; the limit is {MAX_INPUT_RECORDS}")
    # a column the store has none for is a custom field, as an unknown key of a JSON record is (a null cell:
    # the field is absent); pandas' index columns are not fields
    custom = [c for c in table.column_names if c not in COLUMNS and c not in _pandas_index(table)]
    # a custom field is JSON: a column of times, bytes or decimals cannot be one (say which column, not
    # "a nested field holds a value JSON cannot store" for every row)
    not_json = {c: str(table.schema.field(c).type) for c in custom if not _json_type(table.schema.field(c).type)}
    for i, row in enumerate(table.to_pylist(), 1):
        nan = next((k for k, v in row.items() if isinstance(v, float) and v != v), None)
        if nan is not None:  # the loader refuses NaN too; a missing value must be null
            yield _where(path, i), RecordError(f"field {nan!r} must be finite, got nan")
            continue
        try:
            rec = row_to_record(row)
        except (ValueError, OverflowError) as exc:
            yield _where(path, i), RecordError(str(exc))
            continue
        fields = {c: row[c] for c in custom if row[c] is not None}
        if bad := next((c for c in not_json if c in fields), None):
            yield _where(path, i), RecordError(
                f"column {bad!r} holds {not_json[bad]} values, which a custom field cannot (it is JSON: text, "
                "numbers, true/false, lists, tables); convert the column to text or drop it")
            continue
        if clash := sorted(fields.keys() & rec.keys()):
            yield _where(path, i), RecordError(f"column {clash[0]!r} repeats a custom field of column 'extra'")
            continue
        yield _where(path, i), {**rec, **fields}


def _json_type(kind: pa.DataType) -> bool:
    """Whether every value of an Arrow column of type ``kind`` is JSON (what a record's custom field holds)."""
    t = pa.types
    if (t.is_null(kind) or t.is_boolean(kind) or t.is_integer(kind) or t.is_floating(kind) or t.is_string(kind)
            or t.is_large_string(kind) or getattr(t, "is_string_view", lambda _: False)(kind)):
        return True
    if t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind) or t.is_dictionary(kind):
        return _json_type(kind.value_type)
    if t.is_struct(kind):
        return all(_json_type(kind.field(i).type) for i in range(kind.num_fields))
    if t.is_map(kind):
        return _json_type(kind.key_type) and _json_type(kind.item_type)
    return False  # times, durations, bytes, decimals, ...


def _pandas_index(table: pa.Table) -> set[str]:
    """The columns pandas wrote for a frame's index (none when the file was not written by pandas)."""
    try:
        meta = table.schema.pandas_metadata or {}
        return {c for c in meta.get("index_columns", []) if isinstance(c, str)}
    except (ValueError, TypeError, AttributeError):  # metadata that is not pandas' JSON: no index columns
        return set()


def _content(record: dict[str, Any]) -> dict[str, Any]:
    """What two copies of a run must share to count as the same run (not when they were written)."""
    row = flatten(record)
    return {k: row[k] for k in COLUMNS if k != "created_at"}


def ingest(path: str | Path, target_dir: str | Path, *, conflict_roots: Iterable[str | Path] | None = None,
           source: str | None = None) -> IngestReport:
    """Add the records in ``path`` (a folder of .json/.jsonl/.parquet files, any depth, hidden ones
    skipped, or one such file) to the store at ``target_dir``; see the module docstring.

    conflict_roots: stores whose run_ids may not be reused (default: the shipped results).
    source: when given, every record's ``source`` is replaced by it (the original is kept as
    ``claimed_source``), e.g. "submitted, unverified".
    Raises FileNotFoundError for a missing path, ValueError for an unsupported file type or a
    target that is not a results folder.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"nothing to ingest: {path} does not exist")
    if not path.is_dir() and path.suffix not in SUFFIXES:
        raise ValueError(f"cannot ingest {path.name}: use a folder, .json, .jsonl or .parquet")
    listing: list = []
    # a folder may hold .jsonl files and .json lists of many records: each gets the input cap, as one file would
    files = list_data_files(path, SUFFIXES, listing, caps=dict.fromkeys((".json", ".jsonl"), MAX_JSON_INPUT_BYTES))
    pre = [(s.where, RecordError(s.reason)) for s in listing]

    def items() -> Iterator[tuple[str, Any]]:
        yield from pre
        for f in sorted(files):
            yield from _candidates(f)
    return ingest_items(items(), target_dir, conflict_roots=conflict_roots, source=source)


#: Why two run_ids that differ only in case cannot both be stored: each run is the file ``<run_id>.json``.
CASE_CLASH = "on macOS and Windows they are one file, and one run would overwrite the other; give it another run_id"
#: Names Windows keeps for devices, with any extension: a run stored as ``nul.json`` cannot be written or copied there.
WINDOWS_DEVICES = frozenset({"con", "prn", "aux", "nul", *(f"{port}{n}" for port in ("com", "lpt") for n in range(1, 10))})


def ingest_items(items: Iterable[tuple[str, Any]], target_dir: str | Path, *,
                 conflict_roots: Iterable[str | Path] | None = None, source: str | None = None,
                 public: bool = False, max_stored: int | None = None,
                 lock_wait: WaitShown | None = None) -> IngestReport:
    """The core of :func:`ingest` for ``(where, record dict or exception)`` pairs from any source.

    public: the report goes to a stranger (a hosted submission): its reasons name the stores in words
    ("the shipped results"), never by their paths on this machine.
    max_stored: the most runs the target may hold; a batch whose new runs would pass it is refused whole.
    lock_wait: how a wait for the target's lock, held by another ingest, is shown (``core.turns.WaitShown``, told
    every :data:`core.turns.TICK_S`; what it raises ends the wait, or the ingest before anything is written).
    """
    from core.store import SHIPPED_DIR, is_results_folder
    from core.store.load import load_runs

    target = Path(target_dir)
    problem = is_results_folder(target)
    if problem:
        raise ValueError(problem)
    report, first_seen, folded_seen, batch = IngestReport(), {}, {}, []
    for where, item in items:
        try:
            if isinstance(item, Exception):
                raise item
            if source is not None and isinstance(item, dict):
                item = {**item, "source": source, "claimed_source": item.get("source")}
            rec = prepare_record(check_record(item))
            if problem := submitted_formula_problem(rec):  # a stored submission, say, from before that check
                raise RecordError(problem)
        except (ValueError, OverflowError, TypeError) as exc:
            report.refused.append((where, str(exc)[:300]))
            continue
        if rec["run_id"].split(".")[0].casefold() in WINDOWS_DEVICES:
            report.refused.append((where, f"run_id {rec['run_id']!r} names a device on Windows, where its file "
                                          "could not be written or copied; give it another run_id"))
            continue
        if rec["run_id"] in first_seen:
            report.refused.append((where, f"run_id {rec['run_id']!r} repeats {first_seen[rec['run_id']]}"))
            continue
        twin = folded_seen.setdefault(rec["run_id"].casefold(), rec["run_id"])
        if twin != rec["run_id"]:
            report.refused.append((where, f"run_id {rec['run_id']!r} differs only in case from {twin!r} "
                                          f"({first_seen[twin]}): {CASE_CLASH}"))
            continue
        first_seen[rec["run_id"]] = where
        batch.append((where, rec))
    if not batch:  # nothing to store: the target is left as it was, not made (an input without records: exit 2)
        return report
    others = [Path(r) for r in (conflict_roots if conflict_roots is not None else [SHIPPED_DIR])]
    others = [r for r in others if r.exists() and r.resolve() != target.resolve()]
    mark_results_folder(target)
    with file_lock(target / INGEST_LOCK, timeout=600, what="another ingest", wait=lock_wait):
        remove_staged_leftovers(target)  # a killed ingest's: we hold the lock, so no live ingest is staging
        stored, held, held_twins = {}, 0, {}
        for root in [target, *others]:  # read under the lock: another ingest may just have written
            runs = load_runs([root])
            if root is target:
                held = len(runs)
            ids = set(first_seen) & set(runs["run_id"])
            for _, row in runs[runs["run_id"].isin(ids)].iterrows():
                stored.setdefault(row["run_id"], (root, _content(row_to_record(row.to_dict()))))
            if root is target:
                folded = {str(i).casefold(): str(i) for i in runs["run_id"]}
                held_twins = {i: folded[i.casefold()] for i in first_seen
                              if i.casefold() in folded and folded[i.casefold()] != i}
        todo = []
        for where, rec in batch:
            run_id = rec["run_id"]
            if run_id in held_twins:
                report.refused.append((where, f"run_id {run_id!r} differs only in case from the stored run "
                                              f"{held_twins[run_id]!r}: {CASE_CLASH}"))
            elif run_id in stored:
                root, content = stored[run_id]
                if content == _content(rec):
                    report.unchanged.append(run_id)
                else:
                    report.refused.append((where, f"run_id {run_id!r} is already in "
                                                  f"{_root_name(root, target) if public else root} with "
                                                  "different content; a stored run is never replaced"))
            elif os.path.lexists(target / f"{run_id}.json"):
                blocker = f"a file named {run_id}.json" if public else str(target / f"{run_id}.json")
                report.refused.append((where, f"{blocker} exists but is not a valid record; "
                                              + ("this run_id cannot be submitted" if public
                                                 else "remove it before ingesting this run")))
            else:
                todo.append((where, rec))
        if max_stored is not None and todo and held + len(todo) > max_stored:
            report.refused += [(where, f"{'this server' if public else target} holds {held:,} submitted runs and "
                                       f"takes at most {max_stored:,}: the {len(todo):,} new runs of this submission "
                                       "would pass that; it takes more once they have been reviewed")
                               for where, _ in todo]
            todo = []
        report.written = _write_all([rec for _, rec in todo], target)
        report.accepted = [rec["run_id"] for _, rec in todo]
    log.info("ingest -> %s: %s", target, report.summary())
    return report


def _root_name(root: Path, target: Path) -> str:
    """A store in words, for a report shown to a stranger (no path of this machine)."""
    from core.store import SHIPPED_DIR

    if root == target:
        return "the submitted runs"
    return "the shipped results" if root == Path(SHIPPED_DIR) else "this server's own results"


#: What :func:`_write_all` stages: ``.tmp-ingest-<run_id>.json`` and, while one is written, its own atomic-write
#: temporary ``.tmp-.tmp-ingest-<run_id>-<8 chars>.json`` (a grid's temporaries are ``.tmp-<16 hex>-...``).
STAGED_GLOBS = (f"{TMP_PREFIX}ingest-*.json", f"{TMP_PREFIX}{TMP_PREFIX}ingest-*.json")


def remove_staged_leftovers(target: Path) -> list[str]:
    """Delete the staged files an ingest killed mid-batch (SIGKILL, a server restarted mid-submission) left in
    ``target``: readers skip them, but nothing else ever removed them. Call only under the ingest lock.
    Returns the names removed."""
    removed = []
    for pattern in STAGED_GLOBS:
        for path in target.glob(pattern):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
    if removed:
        log.warning("removed %d file(s) an interrupted ingest into %s left", len(removed), target)
    return removed


def _write_all(records: list[dict[str, Any]], target: Path) -> list[Path]:
    """All records or none: stage each as a hidden temp file, then rename; undo on any failure."""
    staged: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for rec in records:
            data = record_bytes(rec)
            tmp = target / f"{TMP_PREFIX}ingest-{rec['run_id']}.json"
            _atomic_write(tmp, lambda fh, data=data: fh.write(data))
            staged.append((tmp, target / f"{rec['run_id']}.json"))
        for tmp, final in staged:
            os.replace(tmp, final)
            done.append(final)
        return done
    except BaseException:
        for final in done:
            with contextlib.suppress(OSError):
                final.unlink()
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise


__all__ = ["IngestReport", "ingest", "ingest_items", "MARKER_NAME"]
