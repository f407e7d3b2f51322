"""A local index of a results folder's JSON records, so a restarted server does not re-read,
re-parse and re-validate every record (1,720 shipped records: 0.45 s, most of a fresh app's load).

One file per results folder holds, per record file (by its path inside the folder), the row it
gave and a key of the file's identity: size, modification and change times in nanoseconds, inode
and device. A file whose key matches is taken from the index; any other is read and validated as
usual. Records are written by an atomic rename (a new inode), so a changed record never keeps its
key. A file changed less than :data:`RACY_NS` before the load began is not entered (the same guard
as git's index against a change inside one timestamp tick), so it is read again next time.

The index is a cache and never an authority: one that is missing, damaged (it carries a SHA-256 of
its content), unreadable, not a regular file, of another layout, or made by other validation code
or another Python (a fingerprint of both is in its name) is ignored and rebuilt; whatever goes
wrong with it, the load reads every record instead. Invalid records are never entered, so each
load names them again. It lives in ``$IIMM_STORE_INDEX`` (``off`` disables it), else in
``.cache/store-index`` of the repository; deleting that folder is always safe. Whoever can write
there can change what the app shows, as whoever can write the code can: keep it private.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
from pathlib import Path
from time import time_ns
from typing import Any

import numpy as np
import pyarrow as pa

from core.env_folders import NoHomeFolderError, env_folder
from core.store.atomic import TMP_PREFIX, _atomic_write
from core.store.records import ARROW_SCHEMA, flatten, read_capped, read_json_record
from core.store.validate import Skipped

log = logging.getLogger("core.store")

INDEX_ENV_VAR = "IIMM_STORE_INDEX"
OFF_VALUES = ("off", "0", "false", "no", "none")
RACY_NS = 2_000_000_000
SUFFIX = ".index"
#: An index file's name (index_file) or its temporary (atomic._atomic_write): nothing else is ever removed.
_OURS = re.compile(rf"^(?:(?P<tmp>{re.escape(TMP_PREFIX)})[0-9a-f]{{16}}-[0-9a-f]{{16}}-[^/]+"
                   rf"|(?P<folder>[0-9a-f]{{16}})-[0-9a-f]{{16}}){re.escape(SUFFIX)}$")
MAX_INDEX_BYTES = 1 << 32
_ABANDONED_NS = 600 * 10**9        # a temporary index file this old was left by a killed writer
_UNUSED_NS = 30 * 86_400 * 10**9   # an index not rewritten this long is dropped (its folder may be gone)
_MAGIC = b"IIMM-STORE-INDEX-1\n"
#: Rows handed to the loader: the record's row and the file it came from.
ROWS_SCHEMA = ARROW_SCHEMA.append(pa.field("_file", pa.string()))
_INDEX_SCHEMA = ROWS_SCHEMA.append(pa.field("_key", pa.string()))
# The code that decides whether a file gives a row, and which: an index made by other code is stale.
_DECIDING_CODE = ("core/schema.py", "core/store/validate.py", "core/store/nested_sql.py", "core/store/records.py",
                  "core/store/index.py", "core/store/formulas.py", "core/text.py")


def _fingerprint() -> str | None:
    """A hash of the deciding code as imported, of the row layout and of what else decides (Python,
    its integer-digit limit, pyarrow, numpy); None when the sources cannot be read (no index then)."""
    root = Path(__file__).resolve().parent.parent.parent
    digest = hashlib.sha256(ARROW_SCHEMA.to_string().encode())
    digest.update(f"{sys.version}|{sys.get_int_max_str_digits()}|{pa.__version__}|{np.__version__}".encode())
    try:
        for name in _DECIDING_CODE:
            digest.update((root / name).read_bytes())
    except OSError as exc:
        log.info("store index off: the validation code's sources cannot be read (%s)", exc)
        return None
    return digest.hexdigest()[:16]


FINGERPRINT = _fingerprint()  # at import: a server keeps the fingerprint of the code it runs


def default_index_dir() -> Path | None:
    """``$IIMM_STORE_INDEX`` (None when it is ``off``, ``0``, ``false``, ``no`` or ``none``), else
    ``.cache/store-index`` in the repository; None too, with a warning, where its ``~`` cannot be expanded."""
    from core.store import REPO_ROOT

    env = os.environ.get(INDEX_ENV_VAR, "").strip()
    if env.lower() in OFF_VALUES:
        return None
    try:
        return env_folder(INDEX_ENV_VAR, lambda: REPO_ROOT / ".cache" / "store-index")
    except NoHomeFolderError as exc:  # an index only saves time: go on without one, saying why
        log.warning("store index off: %s", exc)
        return None


def index_file(index_dir: Path, root: Path) -> Path | None:
    """Where the index of ``root`` lives, named by the folder's real path and :data:`FINGERPRINT`
    (None when there is no fingerprint)."""
    if FINGERPRINT is None:
        return None
    folder = hashlib.sha256(os.fsencode(os.path.realpath(root))).hexdigest()[:16]
    return index_dir / f"{folder}-{FINGERPRINT}{SUFFIX}"


def settled(key: str | None, start: int) -> bool:
    """Whether a file of :func:`file_key` ``key`` last changed (mtime or ctime) more than :data:`RACY_NS`
    before ``start`` (a :func:`time_ns` taken before the stat): only then can its key tell a later rewrite apart."""
    return key is not None and start - max(map(int, key.split(":")[1:3])) > RACY_NS


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
        raw = read_capped(path, MAX_INDEX_BYTES)  # non-blocking, regular files only, capped
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.info("ignoring store index %s: %s", path, exc)
        return None
    head = len(_MAGIC) + 32
    if raw[:len(_MAGIC)] != _MAGIC or hashlib.sha256(raw[head:]).digest() != raw[len(_MAGIC):head]:
        log.info("ignoring damaged store index %s", path)
        return None
    try:
        table = pa.ipc.open_file(pa.py_buffer(raw[head:])).read_all()
        table.validate(full=True)  # offsets and UTF-8 checked before any value is read
    except (pa.ArrowException, ValueError) as exc:
        log.info("ignoring unreadable store index %s: %s", path, exc)
        return None
    if not table.schema.equals(_INDEX_SCHEMA):
        log.info("ignoring store index %s of another layout", path)
        return None
    return table


def _write_index(path: Path, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, _INDEX_SCHEMA) as writer:
        writer.write_table(table)
    payload = sink.getvalue().to_pybytes()
    data = _MAGIC + hashlib.sha256(payload).digest() + payload
    try:
        _atomic_write(path, lambda fh: fh.write(data))
    except OSError as exc:
        log.info("could not write the store index %s (%s); the next load reads every record", path, exc)
        return
    now = time_ns()
    stem = path.name.split("-")[0]
    for other in path.parent.iterdir():
        with contextlib.suppress(OSError):
            ours = _OURS.match(other.name)  # only files named as this module names them: the folder may be shared
            if other == path or ours is None:
                continue
            age = now - other.stat().st_mtime_ns
            if ours["tmp"] and age > _ABANDONED_NS:  # a killed writer's
                other.unlink()
            elif not ours["tmp"] and (ours["folder"] == stem or age > _UNUSED_NS):
                other.unlink()  # this folder's index from other code, or one not rewritten for 30 days


def indexed_rows(root: Path, files: list[Path], skipped: list[Skipped], index_dir: Path) -> pa.Table:
    """:func:`read_rows` of ``files`` (all under ``root``), taking unchanged files from the index
    of ``root`` in ``index_dir`` and updating that index when anything changed. A folder without
    JSON records has no index (a store of Parquet files, or a temporary folder, leaves nothing)."""
    path = index_file(index_dir, root)
    if path is None:
        return read_rows(files, skipped)
    if not files:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        return read_rows(files, skipped)
    mark = len(skipped)
    try:
        return _indexed_rows(root, files, skipped, path)
    except Exception as exc:  # noqa: BLE001  (a cache: whatever fails in it, read every record)
        del skipped[mark:]
        log.warning("store index %s not used (%s: %s); reading every record", path, type(exc).__name__, exc)
        return read_rows(files, skipped)


def _indexed_rows(root: Path, files: list[Path], skipped: list[Skipped], path: Path) -> pa.Table:
    start = time_ns()  # before any stat: a file changed after this moment is never entered
    index = _read_index(path)
    known: dict[str, tuple[str, int]] = {}
    if index is not None:
        for pos, (name, key) in enumerate(zip(index["_file"].to_pylist(), index["_key"].to_pylist(), strict=True)):
            known[name] = (key, pos)
    hits: list[int] = []
    order: list[tuple[bool, int]] = []  # (from the index?, position in hits or in fresh rows)
    names: list[str] = []               # the files as given, for the rows returned
    fresh, fresh_keys, fresh_names = [], [], []
    for f in files:
        name, key = os.path.relpath(f, root), file_key(f)  # key before reading: a change meanwhile gives a new key
        entry = known.get(name)
        if key is not None and entry is not None and entry[0] == key:
            order.append((True, len(hits)))
            hits.append(entry[1])
        elif (rec := read_json_record(f, skipped)) is not None:
            order.append((False, len(fresh)))
            fresh.append(flatten(rec))
            fresh_keys.append(key)
            fresh_names.append(name)
        else:
            continue
        names.append(str(f))
    cached = index.take(pa.array(hits, pa.int64())) if index is not None else _INDEX_SCHEMA.empty_table()
    new = rows_table(fresh, fresh_names).append_column("_key", pa.array(fresh_keys, pa.string()))
    entered = [settled(k, start) for k in fresh_keys]
    dropped = index is not None and len(hits) != index.num_rows
    if any(entered) or dropped:
        _write_index(path, pa.concat_tables([cached, new.filter(pa.array(entered, pa.bool_()))]))
    both = pa.concat_tables([cached, new])
    positions = [p if from_index else len(hits) + p for from_index, p in order]
    log.debug("store index %s: %d of %d records unchanged", path.name, len(hits), len(files))
    rows = both.take(pa.array(positions, pa.int64())).drop_columns(["_file", "_key"])
    return rows.append_column("_file", pa.array(names, pa.string()))
