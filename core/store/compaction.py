"""Compaction: a root's JSON records and Parquet files merged into one Parquet file, under a lock."""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from core.store.atomic import TMP_PREFIX, _atomic_write
from core.store.records import (ARROW_SCHEMA, flatten, is_results_folder, list_data_files,
                                read_json_record)
from core.store.validate import check_record
from core.turns import TICK_S, WaitShown

log = logging.getLogger("core.store")

LOCK_NAME = ".compact.lock"
COMPACTED_PREFIX = "compacted-"  # compaction's own files; the loader ranks them before other Parquet on ties
ASIDE_PREFIX = f"{TMP_PREFIX}set-aside-"  # a merged JSON record between its rename and its deletion


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 120.0, what: str = "another compaction",
              wait: WaitShown | None = None) -> Iterator[None]:
    """An exclusive advisory lock (released by the OS if the holder dies). Readers never take it. ``wait``: told
    when the lock is held by another (``tell()``), every :data:`core.turns.TICK_S` of the wait for it (``tell(seconds
    waited)``) and once it is taken (``done()``, the lock held: what it raises releases it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        deadline = time.monotonic() + timeout
        start = told = None
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
                if (now := time.monotonic()) > deadline:
                    raise TimeoutError(f"{what} holds {path} (waited {timeout:.0f} s)") from None
                if wait is not None and start is None:
                    start = told = now
                    wait.tell()
                elif wait is not None and now - told >= TICK_S:
                    told = now
                    wait.tell(now - start)
                time.sleep(0.05)
        try:
            if wait is not None:
                wait.done()
            yield
        finally:
            if os.name != "nt":
                import fcntl
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_parquet(table: pa.Table, root: Path) -> Path:
    """Write ``table`` atomically (zstd) as ``root/compacted-<hash>.parquet``, the hash taken over its
    (run_id, created_at) rows in order; returns the file's path."""
    digest = hashlib.sha256()
    for run_id, created in zip(table.column("run_id").to_pylist(),
                               table.column("created_at").to_pylist(), strict=True):
        digest.update(f"{run_id}\0{created}\n".encode())
    target = root / f"{COMPACTED_PREFIX}{digest.hexdigest()[:16]}.parquet"
    return _atomic_write(target, lambda fh: pq.write_table(table, fh, compression="zstd"))


def write_records_parquet(records: Iterable[Mapping[str, Any]], results_dir: str | Path) -> Path:
    """Validate records and write them as one compacted Parquet file (atomic). For bulk loads."""
    rows = [flatten(check_record(r)) for r in records]
    if not rows:
        raise ValueError("write_records_parquet needs at least one record")
    return write_parquet(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA), Path(results_dir))


def _identity(st: os.stat_result) -> tuple[int, int, int]:
    """What tells a record file from its rewrite, even within one timestamp tick: mtime, size, inode."""
    return st.st_mtime_ns, st.st_size, st.st_ino


def _remove_if_unchanged(path: Path, when_read: tuple[int, int, int]) -> bool:
    """Delete a merged JSON record only if it is still the file that was read (mtime, size, inode): it is
    first renamed aside, atomically, so a record a writer renames into place meanwhile is never the one
    deleted; one that changed before the rename is put back. True when it was deleted."""
    aside = path.with_name(f"{ASIDE_PREFIX}{uuid.uuid4().hex}.json")
    try:
        os.rename(path, aside)
    except (FileNotFoundError, PermissionError):  # gone; or, on Windows, open in a reader: kept, merged again next time
        return False
    if _identity(aside.stat()) == when_read:
        aside.unlink()
        return True
    try:  # rewritten before our rename: it stays, unless an even newer one has been renamed into place since
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    except OSError:  # no hard links on this file system (FAT, exFAT, some network shares): back by name
        if not os.path.lexists(path):
            os.rename(aside, path)
            return False
    aside.unlink()
    return False


def compact(root: str | Path) -> Path | None:
    """Merge a root's JSON records and compacted Parquet files into one Parquet file.

    Returns the new file, or None when there was nothing to merge. Runs under a file lock
    against other compactions only. Invalid JSON files are left in place; a JSON file that
    changed after it was read is kept (the next compaction takes it). An old Parquet file that
    could not be read, or holds rows that break the schema, is kept too (its valid rows are merged),
    so every load still names what it skipped. A folder :func:`is_results_folder` refuses (a home
    folder, a source tree) is refused: compaction deletes the files it merged.
    """
    from core.store.index import rows_table
    from core.store.load import merge_rows

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {root} does not exist")
    if problem := is_results_folder(root):
        raise ValueError(f"not compacting: {problem}")
    with file_lock(root / LOCK_NAME):
        for left in root.glob(f"{TMP_PREFIX}{COMPACTED_PREFIX}*.parquet"):  # a killed compaction's; we hold the lock
            with contextlib.suppress(OSError):
                left.unlink()
                log.warning("removed %s, left by an interrupted compaction", left.name)
        for left in root.rglob(f"{ASIDE_PREFIX}*.json"):  # a record set aside when a compaction was killed:
            rec = read_json_record(left)                  # back under its name (a copy of a compacted run is
            if rec is not None:                           # harmless: it is merged again below)
                with contextlib.suppress(FileExistsError):
                    os.link(left, left.with_name(f"{rec['run_id']}.json"))
            left.unlink(missing_ok=True)
        seen: list[tuple[Path, tuple[int, int, int]]] = []  # file, (mtime, size, inode) when read
        rows = []
        for f in list_data_files(root, (".json",)):
            try:
                st = f.stat()
            except FileNotFoundError:
                continue
            rec = read_json_record(f)
            if rec is not None:
                rows.append(flatten(rec))
                seen.append((f, _identity(st)))
        old = [f for f in list_data_files(root, (".parquet",)) if f.name.startswith(COMPACTED_PREFIX)]
        if not rows and len(old) <= 1:
            return None
        skipped: list = []
        merged = merge_rows([(rows_table(rows, [str(f) for f, _ in seen]), old)], strict=True, skipped=skipped)
        target = write_parquet(merged, root)
        for f in old:
            named = [s for s in skipped if s.where == str(f) or s.where.startswith(f"{f} (")]
            if named:
                log.warning("kept %s: %d of its rows or the file itself could not be loaded (%s)", f.name,
                            len(named), named[0].reason)
            elif f != target:
                f.unlink(missing_ok=True)
        removed = sum(_remove_if_unchanged(f, when_read) for f, when_read in seen)
        log.info("compacted %d runs into %s (%d JSON files removed)", merged.num_rows, target, removed)
        return target
