"""A local index of a results folder's JSON records, so a restarted server does not re-read,
re-parse and re-validate every record (1,720 shipped records: 0.45 s, most of a fresh app's load).

One Arrow IPC file per results folder holds, per record file, the row it gave and a key of the
file's identity: size, modification and change times in nanoseconds, inode and device. A file
whose key matches is taken from the index; any other is read and validated as usual. Records are
written by an atomic rename (a new inode), so a changed record never keeps its key. A file changed
within :data:`RACY_NS` of writing the index is not entered (the same guard as git's index against
a change inside one timestamp tick), so it is read again next time.

The index is a cache and never an authority: one that is missing, unreadable, of another layout,
or made by other validation code (a fingerprint of that code is in its name) is ignored and
rebuilt; failing to write it only costs speed (and a temporary file left by a writer that was killed
is removed by a later write after 10 minutes). Invalid records are never entered, so each load
names them again. It lives in ``$IIMM_STORE_INDEX`` (``off`` disables it), else in
``.cache/store-index`` of the repository; deleting that folder is always safe.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import tempfile
from pathlib import Path
from time import time_ns
from typing import Any

import pyarrow as pa

from core.store.records import ARROW_SCHEMA, flatten, read_json_record
from core.store.validate import Skipped

log = logging.getLogger("core.store")

INDEX_ENV_VAR = "IIMM_STORE_INDEX"
RACY_NS = 2_000_000_000
_ABANDONED_NS = 600 * 10**9  # a temporary index file this old was left by a killed writer
#: Rows handed to the loader: the record's row and the file it came from.
ROWS_SCHEMA = ARROW_SCHEMA.append(pa.field("_file", pa.string()))
_INDEX_SCHEMA = ROWS_SCHEMA.append(pa.field("_key", pa.string()))
# The code that decides whether a file gives a row, and which: an index made by other code is stale.
_DECIDING_CODE = ("core/schema.py", "core/store/validate.py", "core/store/records.py", "core/store/index.py")


def default_index_dir() -> Path | None:
    """``$IIMM_STORE_INDEX`` (None when it is ``off``), else ``.cache/store-index`` in the repository."""
    from core.store import REPO_ROOT

    env = os.environ.get(INDEX_ENV_VAR, "").strip()
    if env.lower() == "off":
        return None
    return Path(env).expanduser() if env else REPO_ROOT / ".cache" / "store-index"


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A short hash of the code that validates and flattens records (and of the row layout)."""
    from core.store import REPO_ROOT

    digest = hashlib.sha256(ARROW_SCHEMA.to_string().encode())
    for name in _DECIDING_CODE:
        digest.update((REPO_ROOT / name).read_bytes())
    return digest.hexdigest()[:16]


def index_file(index_dir: Path, root: Path) -> Path:
    """Where the index of ``root`` lives: named by the folder's real path and the code fingerprint."""
    folder = hashlib.sha256(os.path.realpath(root).encode()).hexdigest()[:16]
    return index_dir / f"{folder}-{code_fingerprint()}.arrow"


def file_key(path: Path) -> str | None:
    """The identity of ``path`` as the index keys it (None if it cannot be stat-ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{st.st_dev}"


def rows_table(rows: list[dict[str, Any]], files: list[str]) -> pa.Table:
    """Flattened rows and their files as a table of :data:`ROWS_SCHEMA`."""
    return pa.Table.from_pylist(rows, schema=ARROW_SCHEMA).append_column("_file", pa.array(files, pa.string()))


def read_rows(files: list[Path], skipped: list[Skipped]) -> pa.Table:
    """Every valid record of ``files`` as :data:`ROWS_SCHEMA`, in order; invalid ones named in ``skipped``."""
    rows, names = [], []
    for f in files:
        if (rec := read_json_record(f, skipped)) is not None:
            rows.append(flatten(rec))
            names.append(str(f))
    return rows_table(rows, names)


def _read_index(path: Path) -> pa.Table | None:
    try:
        with pa.OSFile(str(path), "rb") as source:
            table = pa.ipc.open_file(source).read_all()
    except FileNotFoundError:
        return None
    except (OSError, pa.ArrowException, ValueError) as exc:
        log.info("ignoring unreadable store index %s: %s", path, exc)
        return None
    if not table.schema.equals(_INDEX_SCHEMA):
        log.info("ignoring store index %s of another layout", path)
        return None
    return table


def _write_index(path: Path, table: pa.Table) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".arrow", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, _INDEX_SCHEMA) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for old in path.parent.glob(path.name.split("-")[0] + "-*.arrow"):  # made by older code
            if old != path:
                old.unlink(missing_ok=True)
        for tmp_left in path.parent.glob(".tmp-*.arrow"):  # a writer killed mid-write left it
            with contextlib.suppress(OSError):
                if time_ns() - tmp_left.stat().st_mtime_ns > _ABANDONED_NS:
                    tmp_left.unlink()
    except OSError as exc:
        log.info("could not write the store index %s (%s); the next load reads every record", path, exc)


def indexed_rows(root: Path, files: list[Path], skipped: list[Skipped], index_dir: Path) -> pa.Table:
    """:func:`read_rows` of ``files`` (all under ``root``), taking unchanged files from the index
    of ``root`` in ``index_dir`` and updating that index when anything changed. A folder without
    JSON records has no index (a store of Parquet files, or a temporary folder, leaves nothing)."""
    path = index_file(index_dir, root)
    if not files:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return read_rows(files, skipped)
    index = _read_index(path)
    known: dict[str, tuple[str, int]] = {}
    if index is not None:
        for pos, (name, key) in enumerate(zip(index["_file"].to_pylist(), index["_key"].to_pylist())):
            known[name] = (key, pos)
    hits: list[int] = []
    order: list[tuple[bool, int]] = []  # (from the index?, position in hits or in fresh rows)
    fresh, fresh_keys, fresh_files = [], [], []
    for f in files:
        name, key = str(f), file_key(f)  # key before reading: a change meanwhile gives a new key
        entry = known.get(name)
        if key is not None and entry is not None and entry[0] == key:
            order.append((True, len(hits)))
            hits.append(entry[1])
        elif (rec := read_json_record(f, skipped)) is not None:
            order.append((False, len(fresh)))
            fresh.append(flatten(rec))
            fresh_keys.append(key)
            fresh_files.append(name)
    cached = index.take(pa.array(hits, pa.int64())) if index is not None else _INDEX_SCHEMA.empty_table()
    new = rows_table(fresh, fresh_files).append_column("_key", pa.array(fresh_keys, pa.string()))
    if fresh or index is None or len(hits) != index.num_rows:
        now = time_ns()
        settled = [k is not None and now - max(map(int, k.split(":")[1:3])) > RACY_NS for k in fresh_keys]
        _write_index(path, pa.concat_tables([cached, new.filter(pa.array(settled, pa.bool_()))]))
    both = pa.concat_tables([cached, new])
    positions = [p if from_index else len(hits) + p for from_index, p in order]
    log.debug("store index %s: %d of %d records unchanged", path.name, len(hits), len(files))
    return both.take(pa.array(positions, pa.int64())).drop_columns(["_key"])
