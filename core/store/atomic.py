"""Whole-or-nothing file writes: records, tables, reports, cards and logs alike.

Every write goes through one staging step: the data is written into a ``.tmp-<stem>-<8 chars><suffix>``
file beside its target and fsynced, and only then renamed into place (and the folder fsynced, where the
platform allows, so that the rename itself survives a power cut). A full disk, a Ctrl-C or a kill while
writing leaves the old file, never a cut one.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from core.file_modes import shared_mkstemp

log = logging.getLogger("core.store")

TMP_PREFIX = ".tmp-"


def _stage(target: Path, write: Callable[[IO[bytes]], Any]) -> str:
    """Write into a fresh temporary beside ``target`` (its missing folders made) and fsync it. Returns the
    temporary's path; on any error (a KeyboardInterrupt too) it is removed and the error raised.

    The file gets mode 0666 minus the umask (mkstemp's 0600 would hide records from an app running as
    another user), and its name says whose it is (see :func:`remove_temporaries_of`)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = shared_mkstemp(prefix=f"{TMP_PREFIX}{target.stem}-", suffix=target.suffix, dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    """Persist the renames into ``folder``; not possible everywhere (Windows, some network filesystems)."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _atomic_write(target: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``target`` whole or not at all through ``write(fh)`` (a binary file): staged, then renamed."""
    tmp = _stage(target, write)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(target.parent)
    return target


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _naming(path: Path, exc: OSError) -> OSError:
    """The error again, naming the file meant rather than its temporary (or nothing, as fsync's ENOSPC does)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def write_file_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` whole or not at all: a full disk or a kill mid-write
    leaves the old file, never a cut one. For reports, cards and logs as much as for records."""
    raw = _as_bytes(data)
    try:
        return _atomic_write(Path(path), lambda fh: fh.write(raw))
    except OSError as exc:
        raise _naming(Path(path), exc) from exc


def write_files_together(files: Mapping[Path, bytes | str]) -> list[Path]:
    """Write several files (str as UTF-8) as one set: each is staged first, and only when all are staged are
    they renamed into place. A Ctrl-C, a full disk or an error while writing leaves every old file as it was
    (files written atomically one after another could leave a new table beside an old summary); only a kill
    within the renames themselves (microseconds) could mix old and new. Returns the paths, in order.

    IsADirectoryError, before anything is written, when a target is a folder: its rename would fail only after the
    files before it in the set had been replaced."""
    for path in files:
        if Path(path).is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way of a file to be written", str(path))
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            raw = _as_bytes(data)
            try:
                staged.append((_stage(Path(path), lambda fh, raw=raw: fh.write(raw)), Path(path)))
            except OSError as exc:
                raise _naming(Path(path), exc) from exc
        for tmp, path in staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _naming(path, exc) from exc
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for folder in dict.fromkeys(path.parent for _, path in staged):
        _sync_folder(folder)
    return [path for _, path in staged]


def remove_temporaries_of(target: Path) -> list[str]:
    """Delete the temporary files an interrupted write of ``target`` left beside it.

    A process killed between creating its ``.tmp-*`` file and renaming it leaves the file behind (the
    store's readers skip it). Call this only while nobody else may be writing ``target`` -- the grid
    calls it holding the cell's lock -- so no live writer's file is taken. Returns the names removed.
    """
    own = re.compile(re.escape(f"{TMP_PREFIX}{target.stem}-") + r"[a-z0-9_]{8}" + re.escape(target.suffix))
    removed = []
    for path in target.parent.glob(f"{TMP_PREFIX}*"):
        if own.fullmatch(path.name):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    if removed:
        log.warning("removed %d temporary file(s) an interrupted write of %s left: %s", len(removed), target.name,
                    ", ".join(removed))
    return removed
