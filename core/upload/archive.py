"""Reading a zip upload in memory: entry-count check before parsing, normalised member names, and
member reads under running byte caps that never trust the archive's declared sizes."""
from __future__ import annotations

import io
import logging
import os
import re
import stat
import struct
import unicodedata
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Union

from core.upload.limits import (MiB, SYSTEM_FILES, UploadError, UploadLimits, _Budget, _is_control, _kind,
                                _Skip, over_limit)

log = logging.getLogger("core.upload")

Source = Union[str, os.PathLike, BinaryIO]
_CHUNK = 64 * 1024


def _member_name(info: zipfile.ZipInfo, limits: UploadLimits) -> str:
    """The normalised relative path of a member, or _Skip with why it cannot be used."""
    name = info.filename
    if not info.flag_bits & 0x800:
        # No UTF-8 flag: zipfile decoded as cp437; many tools write UTF-8 anyway, so try that.
        try:
            name = name.encode("cp437").decode("utf-8")
        except UnicodeError:
            raise _Skip("file name is not UTF-8 (made with a legacy encoding)") from None
    name = unicodedata.normalize("NFC", name).replace("\\", "/")
    if len(name) > limits.max_name_length:
        raise _Skip(f"name longer than {limits.max_name_length} characters")
    if any(_is_control(ch) for ch in name):
        raise _Skip("name contains control characters")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise _Skip("absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _Skip("path points outside the archive ('..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise _Skip("symbolic link")
    if any(p.startswith(".") or p.lower() in SYSTEM_FILES for p in parts):
        raise _Skip("hidden or system file")
    if info.flag_bits & 0x1:
        raise _Skip("encrypted")
    return "/".join(parts)


def _entry_count(fh: BinaryIO) -> tuple[int, int]:
    """(entries, central directory bytes) from the end record, read before zipfile parses the
    directory: zipfile would build one object per entry, so a huge directory is refused first."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    fh.seek(max(0, size - 22 - 65535))
    tail = fh.read()
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) < pos + 22:
        raise UploadError("this file is not a zip archive (or it is truncated)")
    entries, cd_size = struct.unpack("<HI", tail[pos + 10:pos + 16])
    if (entries == 0xFFFF or cd_size == 0xFFFFFFFF) and pos >= 20 and tail[pos - 20:pos - 16] == b"PK\x06\x07":
        offset = struct.unpack("<Q", tail[pos - 12:pos - 4])[0]
        # The zip64 locator's offset is attacker-controlled: it must point at 56 readable bytes.
        if offset + 56 > size:
            raise UploadError("this zip archive is corrupt (its zip64 end record lies outside the file)")
        fh.seek(offset)
        rec = fh.read(56)
        if rec[:4] == b"PK\x06\x06":
            entries, cd_size = struct.unpack("<QQ", rec[32:48])
    return entries, cd_size



def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limits: UploadLimits,
                 cap: int | None = None) -> bytearray:
    """The member's bytes, read in chunks into one bytearray (given as it is: never copied again); stops as soon
    as a running cap is passed."""
    if info.file_size > (cap or limits.max_member_bytes):
        declared, most = over_limit(info.file_size, cap or limits.max_member_bytes)
        raise _Skip(f"file too large ({declared} declared, limit {most})")
    if cap is None:
        cap = min(limits.max_member_bytes,
                  max(limits.ratio_floor_bytes, int(info.compress_size * limits.max_member_ratio)))
    data = bytearray()  # grown in place: no list of chunks plus a joined copy at the end
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                if len(data) + len(chunk) > cap:
                    raise _Skip(f"expands beyond {cap // MiB} MiB (size or compression-ratio limit; "
                                "zip bomb guard)")
                budget.take(len(chunk))
                data += chunk
    except (_Skip, UploadError):
        raise
    except Exception as e:  # BadZipFile (bad CRC, lying sizes), zlib.error, unknown method...: unusable
        raise _Skip(f"corrupt or unsupported zip member ({_kind(e)})") from None
    return data



@contextmanager
def _opened(source: Source) -> Iterator[BinaryIO]:
    """A binary handle on a path or an already-open file (e.g. Streamlit's UploadedFile)."""
    if not isinstance(source, (str, os.PathLike)):
        yield source
        return
    try:
        fh = open(source, "rb")
    except OSError as e:
        raise UploadError(f"cannot open the upload ({e.strerror})") from None
    with fh:
        yield fh


def _open_zip(fh: BinaryIO, limits: UploadLimits, what: str = "zip archive") -> tuple[zipfile.ZipFile, int]:
    """The parsed archive and its size, after the cheap size and entry-count checks."""
    size = fh.seek(0, os.SEEK_END)
    if size > limits.max_archive_bytes:
        raise UploadError("the upload is {}; the limit is {}".format(*over_limit(size, limits.max_archive_bytes)))
    entries, cd_size = _entry_count(fh)
    if entries > limits.max_members:
        raise UploadError(f"the {what} holds too many files ({entries}); the limit is {limits.max_members}")
    if cd_size > limits.max_members * 512:  # the end record's count may lie: it is no figure to give
        raise UploadError(f"the {what} holds too many files (its directory takes {cd_size:,} bytes, more than "
                          f"{limits.max_members} files would); the limit is {limits.max_members}")
    try:
        zf = zipfile.ZipFile(fh)
    except UnicodeDecodeError:
        raise UploadError(f"the {what} has file names marked UTF-8 that are not valid UTF-8") from None
    except Exception as e:  # zipfile raises BadZipFile, struct.error, ValueError... on hostile input
        raise UploadError(f"the {what} is corrupt ({type(e).__name__})") from None
    # zipfile reads the directory by its byte size, not the end record's count, which may lie: counted again here
    if (parsed := len(zf.infolist())) > limits.max_members:
        zf.close()
        raise UploadError(f"the {what} holds too many files ({parsed}); the limit is {limits.max_members}")
    return zf, size


def folder_as_zip(folder: str | os.PathLike, *, limits: UploadLimits) -> io.BytesIO:
    """A folder on disk as the zip a user would upload of it (its files at their paths under ``folder``, in
    sorted order, stored without compression and dated 1980-01-01, so one folder always gives the same bytes),
    for :func:`core.upload.load_image_folder_zip`, which then applies every rule of an upload. Links and anything
    not a regular file are left out, as a zip could not hold them; so are files and subfolders that cannot be
    read, named in one logged warning (as an upload's unusable members are named, not dropped silently). Stops
    with UploadError as soon as the folder holds more than ``limits.max_members`` files or
    ``limits.max_archive_bytes`` bytes, before reading the rest. Raises UploadError when ``folder`` is not a
    folder or holds no readable file; its messages, as every upload's, do not name the path (the caller does)."""
    root = Path(folder)
    if not root.is_dir():
        raise UploadError("it is not a folder")
    unreadable: list[str] = []
    files: list[Path] = []
    total = 0
    for path in _walk(root, unreadable):
        files.append(path)
        total += path.stat().st_size
        if len(files) > limits.max_members:
            raise UploadError(f"the folder holds more than {limits.max_members} files, the most a sample may have")
        if total > limits.max_archive_bytes:
            raise UploadError(f"the folder holds more than {limits.max_archive_bytes / MiB:g} MiB, the most a "
                              "sample may have")
    buffer = io.BytesIO()
    written = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in files:
            name = path.relative_to(root).as_posix()
            try:
                data = path.read_bytes()
            except OSError as exc:
                unreadable.append(f"{name} ({exc.strerror or exc})")
                continue
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
            written += 1
    if unreadable:
        log.warning("left out %d file(s) or folder(s) that cannot be read: %s", len(unreadable),
                    "; ".join(unreadable[:5]) + ("; …" if len(unreadable) > 5 else ""))
    if not written:
        raise UploadError("the folder holds no file" + (" that can be read" if unreadable else ""))
    buffer.seek(0)
    return buffer


def _walk(root: Path, unreadable: list[str]) -> Iterator[Path]:
    """The regular files under ``root``, not through links, in a fixed order (each folder's files sorted, then
    its sorted subfolders), one at a time: a huge folder is not listed whole before the caps apply. A subfolder
    that cannot be listed is added to ``unreadable`` (os.walk drops it silently otherwise)."""
    def refused(exc: OSError) -> None:
        where = Path(exc.filename).relative_to(root).as_posix() if exc.filename else "?"
        unreadable.append(f"{where or '.'}/ ({exc.strerror or exc})")

    for here, folders, names in os.walk(root, onerror=refused):
        folders.sort()
        for name in sorted(names):
            path = Path(here) / name
            if not path.is_symlink() and path.is_file():
                yield path
