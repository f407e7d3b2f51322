"""Records on disk: safe listing and reading, and writing them (atomic writes: atomic.py; compaction: compaction.py).

Readers never follow a file out of its results folder, never open a FIFO or a device, never
read more than a size cap, and never descend more than :data:`MAX_WALK_DEPTH` folders.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from core import schema
from core.store.atomic import _atomic_write
from core.store.formulas import STORED_NOTE, submitted_formula_problem
from core.store.validate import (EXTRA_COLUMN, MAX_PARQUET_BYTES, MAX_RECORD_BYTES, TEXT_COLUMNS, RecordError,
                                 Skipped, check_record, parse_record_bytes)

log = logging.getLogger("core.store")

MARKER_NAME = ".iimm-results"       # written into every folder the grid or ingest writes to
COLUMNS: tuple[str, ...] = (*schema.SCALAR_FIELDS, *TEXT_COLUMNS)
_ARROW = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
ARROW_SCHEMA = pa.schema([(n, _ARROW[k]) for n, (k, _) in schema.SCALAR_FIELDS.items()]
                         + [(n, pa.string()) for n in TEXT_COLUMNS])
PANDAS_TYPES = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
MAX_WALK_DEPTH = 6                  # folders below a root (runs/<grid>/<model>/... is plenty)
MAX_WALK_ENTRIES = 2_000_000        # directory entries looked at per root before giving up
#: What a folder may hold at its top level to count as a results folder without the marker.
_RESULT_SUFFIXES = (".json", ".jsonl", ".parquet", ".md", ".csv")


def record_bytes(record: Mapping[str, Any]) -> bytes:
    """The canonical file content of a validated record (sorted keys, NaN as null)."""
    return _dumps(record, indent=1).encode("utf-8")


def prepare_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a record and fill ``created_at`` (UTC, ISO-8601) when absent. RecordError too when its
    file would exceed :data:`MAX_RECORD_BYTES`, which every reader refuses (fields within their own
    limits can still add up to more)."""
    rec = check_record(record)
    if not rec.get("created_at"):
        rec["created_at"] = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    if (size := len(record_bytes(rec))) > MAX_RECORD_BYTES:
        raise RecordError(f"record would be a {size}-byte file; the limit is {MAX_RECORD_BYTES} "
                          "(make its custom fields smaller)")
    return rec


def mark_results_folder(folder: Path) -> None:
    """Leave the marker that says: this folder holds this project's records."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER_NAME
    if not marker.exists():
        with contextlib.suppress(OSError):
            marker.write_text("iimm-finetune-forecast results folder\n")


def write_record(record: Mapping[str, Any], results_dir: str | Path) -> Path:
    """Validate one record and write it atomically as ``<results_dir>/<run_id>.json``.

    Fills ``created_at`` when absent; an existing file of the same run_id is replaced whole
    (the grid decides whether to skip finished runs; ingest refuses conflicts before this).
    """
    rec = prepare_record(record)
    data = record_bytes(rec)
    return _atomic_write(Path(results_dir) / f"{rec['run_id']}.json", lambda fh: fh.write(data))


def _home() -> Path | None:
    """The home folder, resolved, or None where there is none to find: no $HOME and a user id the password
    database does not know (`docker run -u 1234`), where Path.home() raised RuntimeError out of every job that
    checks its --results and out of the app's check of IIMM_RESULTS."""
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def is_results_folder(path: str | Path) -> str | None:
    """Why ``path`` must not be used as a results folder, or None when it may.

    Allowed: a folder that does not exist yet, an empty one, one with this project's marker,
    or one whose top level holds only record-like files and hidden entries. Refused: the file
    system root, the home folder, and any other folder (e.g. ``/`` or a source tree), so a
    typo cannot make a job scan or write all over a machine.
    """
    p = Path(path).expanduser()
    try:
        resolved = p.resolve()
    except (OSError, RuntimeError) as exc:
        return f"cannot resolve {p}: {exc}"
    if resolved == Path(resolved.anchor) or resolved == _home():
        return f"{p} is the file-system root or your home folder, not a results folder"
    if not resolved.exists():
        return None
    if not resolved.is_dir():
        return f"{p} is not a folder"
    if (resolved / MARKER_NAME).is_file():
        return None
    try:
        with os.scandir(resolved) as entries:
            for i, entry in enumerate(entries):
                if i >= 1000:  # a thousand record-like entries in a row: it is a (large) results folder
                    break
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False) or not entry.name.endswith(_RESULT_SUFFIXES):
                    if entry.is_dir(follow_symlinks=False) and _looks_like_results(Path(entry.path)):
                        continue
                    return (f"{p} does not look like a results folder (it holds {entry.name!r}); "
                            f"use an empty or new folder, or one made by jobs.grid")
    except OSError as exc:
        return f"cannot read {p}: {exc.strerror}"
    return None


def _looks_like_results(folder: Path, depth: int = 2) -> bool:
    """A sub-folder counts as results when it carries the marker (a grid's own output folder) or holds
    only record-like files, hidden entries and, down to ``depth`` more levels, sub-folders that count
    as results themselves (e.g. ``jobs/results/default``, or ``world-v2`` with its tables in
    ``world-v2/confirmation``). The marker is not committed, so a fresh clone relies on the contents."""
    if (folder / MARKER_NAME).is_file():
        return True
    try:
        with os.scandir(folder) as entries:
            for i, entry in enumerate(entries):
                if i >= 1000:
                    break
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    if depth > 0 and _looks_like_results(Path(entry.path), depth - 1):
                        continue
                    return False
                if not entry.name.endswith(_RESULT_SUFFIXES):
                    return False
    except OSError:
        return False
    return True


def list_data_files(root: Path, suffixes: tuple[str, ...], skipped: list[Skipped] | None = None, *,
                    caps: Mapping[str, int] | None = None) -> list[Path]:
    """Regular files ending in one of ``suffixes`` under ``root`` (any depth up to MAX_WALK_DEPTH).

    Hidden files and folders (temp files, locks) are ignored. FIFOs, devices, sockets, symlinks
    leading out of ``root`` and files over the size cap (``caps``: suffix -> bytes; by default a
    record's, a Parquet file's for .parquet) are left out and, when ``skipped`` is given, named
    there with the reason.
    """
    note = skipped.append if skipped is not None else (lambda s: None)
    try:
        st = os.stat(root)
    except OSError:
        return []
    if stat.S_ISREG(st.st_mode):
        return [root] if root.name.endswith(suffixes) else []
    real_root = os.path.realpath(root)
    found: list[Path] = []
    seen = 0
    for folder, dirs, files in os.walk(root):
        depth = Path(folder).relative_to(root).parts
        seen += len(dirs) + len(files)
        if seen > MAX_WALK_ENTRIES:
            note(Skipped(str(folder), f"more than {MAX_WALK_ENTRIES} entries under {root}; stopped"))
            break
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if len(depth) < MAX_WALK_DEPTH else []
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(suffixes):
                continue
            path = Path(folder) / name
            problem = _file_problem(path, real_root, caps or {})
            if problem:
                note(Skipped(_text(path), problem))
            else:
                found.append(path)
    return found


def _text(path: Path) -> str:
    """``path`` as printable text even when its bytes are not UTF-8 (shown as \\x.. escapes)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_LOCALE_WARNED: list[bool] = []  # whether this process has logged that its locale hides records


def _file_problem(path: Path, real_root: str, caps: Mapping[str, int]) -> str | None:
    if _text(path) != str(path):  # tables, DuckDB and pages all need text
        try:
            os.fsencode(path).decode("utf-8")
        except UnicodeDecodeError:
            return "its path is not valid UTF-8; rename it"
        # valid UTF-8 that Python did not decode as such: a locale without UTF-8 (LC_ALL=C with PYTHONUTF8=0, a
        # Latin-1 locale) and a folder named in non-ASCII letters (a checkout under /home/josé); every record
        # was skipped as "not valid UTF-8", and renaming them helped nothing
        reason = (f"Python reads file names as {sys.getfilesystemencoding()} here, not UTF-8 (the locale): run with "
                  "PYTHONUTF8=1 or a UTF-8 locale (LANG=C.UTF-8)")
        if not _LOCALE_WARNED:  # once: a job then says why it found no run, not only that it found none
            _LOCALE_WARNED.append(True)
            log.warning("skipping the records under %s: %s", _text(path.parent), reason)
        return reason
    try:
        lst = os.lstat(path)
        if stat.S_ISLNK(lst.st_mode):
            target = os.path.realpath(path)
            if os.path.commonpath([target, real_root]) != real_root:
                return "symbolic link leading out of the results folder"
            lst = os.stat(path)
    except (OSError, ValueError):
        return None  # vanished meanwhile: not worth a note
    if not stat.S_ISREG(lst.st_mode):
        return "not a regular file (FIFO, device or socket)"
    cap = caps.get(path.suffix, MAX_PARQUET_BYTES if path.suffix == ".parquet" else MAX_RECORD_BYTES)
    if lst.st_size > cap:
        return f"file is {lst.st_size} bytes; the limit is {cap}"
    return None


def read_capped(path: Path, cap: int) -> bytes:
    """At most ``cap`` bytes of a regular file; ValueError for anything else or anything larger.

    Opened non-blocking, so a FIFO swapped in after listing cannot hang the reader, and in binary mode: on
    Windows ``os.open`` without O_BINARY reads text, turning CR LF into LF and stopping at a Ctrl-Z byte.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RecordError("not a regular file (FIFO, device or socket)")
        if st.st_size > cap:
            raise RecordError(f"file is {st.st_size} bytes; the limit is {cap}")
        chunks, total = [], 0
        while chunk := os.read(fd, min(1 << 20, cap + 1 - total)):
            chunks.append(chunk)
            total += len(chunk)
            if total > cap:
                raise RecordError(f"file grew past the limit of {cap} bytes")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_json_record(path: Path, skipped: list[Skipped] | None = None) -> dict[str, Any] | None:
    """The validated record in ``path``, or None (named in ``skipped``, and logged) if unusable: a submitted one
    holding text a spreadsheet would run too (:func:`core.store.formulas.submitted_formula_problem`)."""
    try:
        raw = read_capped(path, MAX_RECORD_BYTES)
        rec = parse_record_bytes(raw)
        if problem := submitted_formula_problem(rec, raw):  # stored before submissions were checked, or by hand
            raise RecordError(problem + STORED_NOTE)
        return rec
    except FileNotFoundError:  # compacted or replaced since listing: not an error
        log.debug("record %s vanished while reading", path)
    except (OSError, ValueError) as exc:  # RecordError is a ValueError
        reason = str(exc) if isinstance(exc, ValueError) else f"unreadable ({exc.strerror})"
        log.warning("skipping record %s: %s", path, reason)
        if skipped is not None:
            skipped.append(Skipped(str(path), reason))
    return None


def _dumps(value: Any, **kw: Any) -> str:
    return schema.json_text(value, sort_keys=True, **kw)  # NaN (an undefined zero-shot measure) as null


def flatten(record: Mapping[str, Any]) -> dict[str, Any]:
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
    rows = [flatten(check_record(r)) for r in records]
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA).to_pandas(types_mapper=PANDAS_TYPES.get)


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

    Raises ValueError when a nested column holds text that is not JSON (or is nested too deep).
    """
    from core.store.validate import parse_json_bytes

    rec: dict[str, Any] = {}
    for name in schema.SCALAR_FIELDS:
        if name in row:
            value = _plain(row[name])
            kind = schema.SCALAR_FIELDS[name][0]
            # Parquet written by other tools may widen ints to floats; undo that exactly.
            if kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
                value = int(value)
            rec[name] = value
    for name in TEXT_COLUMNS:
        text = _plain(row.get(name))
        if text is None:
            continue
        try:
            value = parse_json_bytes(text.encode("utf-8")) if isinstance(text, str) else text
        except ValueError as exc:
            raise ValueError(f"column {name!r} does not hold JSON text: {exc}") from None
        if name == EXTRA_COLUMN:
            if value is None:  # the text 'null' (another tool's json.dumps(None)): no custom fields
                continue
            if not isinstance(value, dict):
                raise ValueError(f"column {name!r} must hold a JSON object")
            rec.update({k: v for k, v in value.items() if k not in COLUMNS})
        else:
            rec[name] = value
    return rec
