"""Safe parsing of samples uploaded by strangers: a zip of labelled images, or an .npz of embeddings.

Threat model: every byte of the upload may be hostile. Nothing is extracted to disk: members are
read into memory in chunks under running byte caps (header sizes are never trusted), images are
decoded from BytesIO by a short list of PIL decoders after their declared size is checked, and each
refused member is reported as (name, reason) instead of being dropped silently.

Labels that look like spreadsheet formulas (starting with ``= + - @``, tab or CR) are REFUSED, not
escaped: the member or manifest row is skipped with a reason, so such a label can never reach a
CSV export. Names shown in reports have control characters escaped.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import re
import stat
import struct
import unicodedata
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator, Union

import numpy as np
from PIL import Image, ImageOps

from core.data.base import LabeledImages

log = logging.getLogger(__name__)

Source = Union[str, os.PathLike, BinaryIO]
MiB = 1 << 20
IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Only these decoders run: PIL's EPS plugin would call Ghostscript, others are rarely audited.
PIL_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")
ARCHIVE_EXTS = {".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst", ".npz", ".jar"}
ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"7z\xbc\xaf\x27\x1c", b"Rar!",
                 b"\x28\xb5\x2f\xfd")
SYSTEM_FILES = {"__macosx", "thumbs.db", "desktop.ini"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
NPZ_KEYS = ("image_embeddings", "text_embeddings", "labels", "class_names")
_CHUNK = 64 * 1024


class UploadError(ValueError):
    """The upload is refused; the message is meant for the person who uploaded it."""


@dataclass(frozen=True)
class UploadLimits:
    """Every limit applied to an upload, in one place. Ratios apply only past ``ratio_floor_bytes``
    so that tiny, very compressible files (a blank BMP) are not mistaken for bombs."""

    max_archive_bytes: int = 200 * MiB
    max_total_uncompressed_bytes: int = 512 * MiB
    max_member_bytes: int = 64 * MiB
    max_member_ratio: float = 100.0
    max_overall_ratio: float = 50.0
    ratio_floor_bytes: int = 4 * MiB
    max_members: int = 5000          # zip entries, directories and system files included
    max_images: int = 2000           # thumbnails are kept in memory: this bounds the result size
    max_image_pixels: int = 25_000_000  # declared width*height (after JPEG draft scaling)
    max_side: int = 256              # images are thumbnailed to this longest side
    min_images_per_class: int = 1
    max_classes: int = 1000
    max_name_length: int = 200       # member paths, labels and the template
    max_manifest_bytes: int = 4 * MiB
    max_embedding_rows: int = 200_000
    max_embedding_dim: int = 8192


DEFAULT_LIMITS = UploadLimits()


@dataclass
class UploadedSample:
    """A parsed upload: the usable images, what was skipped (member name, reason), and warnings."""

    data: LabeledImages
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines: images per class, skipped files grouped by reason, warnings."""
        counts = np.bincount(self.data.labels, minlength=len(self.data.class_names))
        per_class = ", ".join(f"{c} ({n})" for c, n in zip(self.data.class_names, counts))
        lines = [f"{len(self.data)} images in {len(counts)} classes: {per_class}"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s): {_reason_counts(self.skipped)}")
        return "\n".join(lines + self.warnings)


class _Skip(Exception):
    """One member is unusable; the message is the reason shown to the user."""


def _reason_counts(skipped: list[tuple[str, str]]) -> str:
    return "; ".join(f"{n}× {r}" for r, n in Counter(r for _, r in skipped).most_common(5))


def _kind(e: Exception) -> str:
    """The exception's type as a user-facing hint, e.g. 'zlib.error' or 'OSError'."""
    module = type(e).__module__
    return type(e).__name__ if module == "builtins" else f"{module.split('.')[-1]}.{type(e).__name__}"


def _printable(name: str) -> str:
    """The name with control/format characters escaped and its length capped, safe to display."""
    out = "".join(f"\\u{ord(ch):04x}" if _is_control(ch) else ch for ch in name)
    return out if len(out) <= 120 else out[:117] + "..."


def _is_control(ch: str) -> bool:
    # Cf holds the bidi overrides (U+202E) used to spoof names; ZWNJ/ZWJ are legitimate in many scripts.
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch not in "\u200c\u200d"


def label_problem(label: str, limits: UploadLimits = DEFAULT_LIMITS) -> str | None:
    """Why ``label`` cannot be a class name (empty, too long, control characters, formula), or None."""
    if not label.strip():
        return "empty label"
    if len(label) > limits.max_name_length:
        return f"label longer than {limits.max_name_length} characters"
    if any(_is_control(ch) for ch in label):
        return "label contains control characters"
    if label.startswith(FORMULA_PREFIXES):
        return "label looks like a spreadsheet formula (starts with = + - @)"
    return None


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
        fh.seek(struct.unpack("<Q", tail[pos - 12:pos - 4])[0])
        rec = fh.read(56)
        if rec[:4] == b"PK\x06\x06":
            entries, cd_size = struct.unpack("<QQ", rec[32:48])
    return entries, cd_size


class _Budget:
    """A running cap on bytes actually decompressed, across the whole archive."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used = cap, 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.cap:
            raise UploadError(f"the archive expands to more than {self.cap // MiB} MiB; refusing it "
                              "(zip bomb guard)")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget, limits: UploadLimits,
                 cap: int | None = None) -> bytes:
    """The member's bytes, read in chunks; stops as soon as a running cap is passed."""
    if info.file_size > (cap or limits.max_member_bytes):
        raise _Skip(f"file too large ({info.file_size / MiB:.1f} MiB declared, limit "
                    f"{(cap or limits.max_member_bytes) / MiB:.0f} MiB)")
    if cap is None:
        cap = min(limits.max_member_bytes,
                  max(limits.ratio_floor_bytes, int(info.compress_size * limits.max_member_ratio)))
    chunks, n = [], 0
    try:
        with zf.open(info) as fh:
            while chunk := fh.read(_CHUNK):
                n += len(chunk)
                if n > cap:
                    raise _Skip(f"expands beyond {cap // MiB} MiB (size or compression-ratio limit; "
                                "zip bomb guard)")
                budget.take(len(chunk))
                chunks.append(chunk)
    except (_Skip, UploadError):
        raise
    except Exception as e:  # BadZipFile (bad CRC, lying sizes), zlib.error, unknown method...: unusable
        raise _Skip(f"corrupt or unsupported zip member ({_kind(e)})") from None
    return b"".join(chunks)


def _decode_image(raw: bytes, limits: UploadLimits) -> Image.Image:
    """An RGB thumbnail (longest side <= max_side) from encoded bytes, checking the declared size first."""
    if raw.startswith(ARCHIVE_MAGIC) or raw[257:262] == b"ustar":
        raise _Skip("nested archive (not opened)")
    try:
        with Image.open(io.BytesIO(raw), formats=PIL_FORMATS) as im:
            im.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at reduced scale
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise _Skip(f"image too large ({w}×{h} pixels declared)")
            im.thumbnail((limits.max_side, limits.max_side))
            im = ImageOps.exif_transpose(im)  # phone photos store their rotation in EXIF
            return im.convert("RGB")
    except _Skip:
        raise
    except Image.DecompressionBombError:
        raise _Skip("image too large (decompression bomb)") from None
    except Exception as e:  # PIL raises many types on hostile input; any of them means "unusable"
        raise _Skip(f"not a readable image ({_kind(e)})") from None


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
        raise UploadError(f"the upload is {size // MiB} MiB; the limit is {limits.max_archive_bytes // MiB} MiB")
    entries, cd_size = _entry_count(fh)
    if entries > limits.max_members or cd_size > limits.max_members * 512:
        raise UploadError(f"the {what} holds too many files ({entries}); the limit is {limits.max_members}")
    try:
        return zipfile.ZipFile(fh), size
    except UnicodeDecodeError:
        raise UploadError(f"the {what} has file names marked UTF-8 that are not valid UTF-8") from None
    except Exception as e:  # zipfile raises BadZipFile, struct.error, ValueError... on hostile input
        raise UploadError(f"the {what} is corrupt ({type(e).__name__})") from None


def _dataset_name(source: Source) -> str:
    raw = os.fsdecode(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", ""))
    return re.sub(r"[^\w.-]+", "_", Path(raw).stem)[:60].strip("._") or "upload"


def _common_root(names: list[str]) -> str:
    """The single top folder every member sits in (``sample/cat/1.png``), or '' if there is none."""
    firsts = {n.split("/", 1)[0] for n in names}
    if len(firsts) != 1 or any("/" not in n for n in names):
        return ""
    deeper = all(n.count("/") >= 2 for n in names)  # else the top folder is the only class
    manifest_here = any(n.count("/") == 1 and n.lower().endswith(".csv") for n in names)
    return firsts.pop() + "/" if deeper or manifest_here else ""


def _folder_items(names: list[str], root: str, limits: UploadLimits,
                  skipped: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(member, label) for members laid out as ``class/image``."""
    items = []
    for n in sorted(names):
        parts = n[len(root):].split("/")
        problem = (label_problem(parts[0].strip(), limits) if len(parts) == 2
                   else "not directly inside a class folder (expected class/image.png)")
        if problem:
            skipped.append((_printable(n), problem))
        else:
            items.append((n, parts[0].strip()))
    return items


def _manifest_items(text: str, manifest: str, members: dict, root: str, limits: UploadLimits,
                    skipped: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(member, label) from a CSV manifest with the columns file,label; bad rows are skipped."""
    reader = csv.reader(io.StringIO(text))  # read lazily: a 4 MiB CSV of blank lines stays cheap
    items, listed, n_rows = [], set(), 0
    try:
        header = [c.strip().lower() for c in next(reader, [])]
        if "file" not in header or "label" not in header:
            raise UploadError(f"the manifest {manifest} needs a header row with the columns file,label")
        fi, li = header.index("file"), header.index("label")
        for k, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue
            n_rows += 1
            if n_rows > limits.max_members:
                raise UploadError(f"the manifest has more than {limits.max_members} rows; that is the limit")
            file, label = (row[fi].strip(), row[li].strip()) if len(row) > max(fi, li) else ("", "")
            problem, target = _row_problem(file, label, root, members, listed, limits)
            if problem:
                skipped.append((f"{manifest} row {k}: {_printable(file)}", problem))
            else:
                listed.add(target)
                items.append((target, label))
    except csv.Error as e:
        raise UploadError(f"the manifest {manifest} is not a valid CSV ({e})") from None
    skipped += [(_printable(n), "not listed in the manifest")
                for n in sorted(members) if n not in listed and n != manifest]
    return items


def _row_problem(file: str, label: str, root: str, members: dict, listed: set,
                 limits: UploadLimits) -> tuple[str | None, str]:
    """(why the manifest row is unusable or None, the member it names)."""
    target = root + "/".join(p for p in file.replace("\\", "/").split("/") if p not in ("", "."))
    target = unicodedata.normalize("NFC", target)
    if not file or not label:
        return "row lacks a file or a label", target
    if file.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", file) or ".." in target.split("/"):
        return "points outside the archive", target
    if target not in members or target.lower().endswith(".csv"):
        return "not in the archive (or refused, see its own entry)", target
    if target in listed:
        return "listed twice", target
    return label_problem(label, limits), target


def _check_template(template: str, limits: UploadLimits) -> None:
    # str.format would evaluate attribute lookups such as {c.__class__}: allow the one {c} slot only.
    if (not isinstance(template, str) or template.count("{c}") != 1 or "{" in template.replace("{c}", "")
            or "}" in template.replace("{c}", "") or len(template) > limits.max_name_length):
        raise UploadError("the prompt template must contain '{c}' exactly once, no other braces, "
                          f"and at most {limits.max_name_length} characters")


def load_image_folder_zip(path: Source, *, limits: UploadLimits = DEFAULT_LIMITS,
                          template: str = "a photo of a {c}") -> UploadedSample:
    """Parse an uploaded zip of labelled images without extracting anything to disk.

    Layouts: class folders (``cat/001.png``, optionally under one common top folder), or a CSV
    manifest (``labels.csv``, or the only ``.csv`` at the top) with columns ``file,label`` naming
    members of the archive. Unusable members are listed in ``.skipped``; classes left without
    ``limits.min_images_per_class`` usable images are dropped with a warning.
    ``path`` may be a filesystem path or an open binary file.
    Raises UploadError when the archive is refused or fewer than 2 usable classes remain.
    """
    _check_template(template, limits)
    with _opened(path) as fh:
        zf, size = _open_zip(fh, limits)
        with zf:
            try:
                sample = _parse(zf, size, limits, template, _dataset_name(path))
            except UploadError as e:
                log.info("upload refused: %s", e)
                raise
    log.info("upload parsed: %s", sample.summary().replace("\n", " | "))
    return sample


def _parse(zf: zipfile.ZipFile, archive_size: int, limits: UploadLimits, template: str,
           name: str) -> UploadedSample:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise UploadError(f"the zip archive holds too many files ({len(infos)}); the limit is {limits.max_members}")
    total_cap = min(limits.max_total_uncompressed_bytes,
                    max(limits.ratio_floor_bytes, int(archive_size * limits.max_overall_ratio)))
    declared = sum(i.file_size for i in infos)
    if declared > total_cap:
        raise UploadError(f"the archive declares {declared // MiB} MiB of content, more than the "
                          f"{total_cap // MiB} MiB allowed for this upload; refusing it (zip bomb guard)")
    budget, skipped = _Budget(total_cap), []
    members: dict[str, zipfile.ZipInfo] = {}
    folders: set[str] = set()
    for info in infos:
        try:
            rel = _member_name(info, limits)
        except _Skip as e:
            skipped.append((_printable(info.filename), str(e)))
            continue
        if info.is_dir():
            folders.add(rel)
        elif rel in members:
            skipped.append((_printable(info.filename), "duplicate name (another member has the same name)"))
        elif rel:
            members[rel] = info
    if not members:
        raise UploadError("the archive has no usable files" + _why(skipped))
    root = _common_root(list(members))
    tops = [n for n in members if n.startswith(root) and "/" not in n[len(root):]]
    csvs = [n for n in tops if n.lower().endswith(".csv")]
    manifest = next((n for n in csvs if n[len(root):].lower() == "labels.csv"), csvs[0] if len(csvs) == 1 else None)
    if len(csvs) > 1 and manifest is None:
        raise UploadError("the archive has several CSV files at its top; name the manifest labels.csv")
    if manifest:
        try:
            raw = _read_member(zf, members[manifest], budget, limits, cap=limits.max_manifest_bytes)
            text = raw.decode("utf-8-sig")
        except _Skip as e:
            raise UploadError(f"cannot use the manifest {manifest}: {e}") from None
        except UnicodeDecodeError:
            raise UploadError(f"the manifest {manifest} is not UTF-8 text") from None
        items = _manifest_items(text, manifest, members, root, limits, skipped)
        empty_folders: set[str] = set()
    else:
        items = _folder_items(list(members), root, limits, skipped)
        empty_folders = {f[len(root):].split("/")[0].strip() for f in folders if f.startswith(root)}
    seen = {label for _, label in items} | {f for f in empty_folders if not label_problem(f, limits)}
    _check_classes(items, seen, limits)
    images, labels = [], []
    for member, label in items:
        try:
            images.append(_decode_member(zf, members[member], budget, limits))
            labels.append(label)
        except _Skip as e:
            skipped.append((_printable(member), str(e)))
    return _assemble(images, labels, seen, skipped, limits, template, name, "csv" if manifest else "folders")


def _why(skipped: list[tuple[str, str]]) -> str:
    return f" (skipped {len(skipped)} file(s): {_reason_counts(skipped)})" if skipped else ""


def _check_classes(items: list[tuple[str, str]], seen: set[str], limits: UploadLimits) -> None:
    """Refuse, before any decoding, too many images or classes, and classes differing only in case."""
    if len(items) > limits.max_images:
        raise UploadError(f"the archive holds {len(items)} images; the limit is {limits.max_images}")
    if len(seen) > limits.max_classes:
        raise UploadError(f"the archive has {len(seen)} classes; the limit is {limits.max_classes}")
    by_fold: dict[str, set[str]] = {}
    for c in seen:
        by_fold.setdefault(c.casefold(), set()).add(c)
    clash = next((sorted(v) for v in by_fold.values() if len(v) > 1), None)
    if clash:
        raise UploadError(f"class names {clash} differ only in letter case; rename or merge them")


def _decode_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget,
                   limits: UploadLimits) -> Image.Image:
    ext = os.path.splitext(info.filename)[1].lower()
    if ext in ARCHIVE_EXTS:
        raise _Skip("nested archive (not opened)")
    if ext not in IMAGE_EXTS:
        raise _Skip(f"not an image file (accepted: {' '.join(sorted(IMAGE_EXTS))})")
    return _decode_image(_read_member(zf, info, budget, limits), limits)


def _assemble(images: list, labels: list[str], seen: set[str], skipped: list[tuple[str, str]],
              limits: UploadLimits, template: str, name: str, layout: str) -> UploadedSample:
    """Drop classes with too few usable images (with a warning) and build the sample."""
    counts = Counter(labels)
    keep = sorted((c for c, k in counts.items() if k >= limits.min_images_per_class), key=str.casefold)
    warnings = [f"class '{c}' dropped: {counts.get(c, 0)} usable image(s), need at least "
                f"{limits.min_images_per_class}" for c in sorted(seen - set(keep))]
    if not images:
        raise UploadError("the archive has no usable images" + _why(skipped))
    if len(keep) < 2:
        found = f": {', '.join(keep)}" if keep else ""
        raise UploadError(f"a sample needs at least 2 classes with usable images; found {len(keep)}{found}"
                          + _why(skipped))
    index = {c: i for i, c in enumerate(keep)}
    rows = [i for i, label in enumerate(labels) if label in index]
    data = LabeledImages([images[i] for i in rows], np.array([index[labels[i]] for i in rows], dtype=np.int64),
                         keep, template, name, meta={"source": "upload", "layout": layout})
    return UploadedSample(data, skipped, warnings)


def _load_npy(raw: bytes, key: str) -> np.ndarray:
    """One .npy array; its header is checked against the data length before numpy allocates anything."""
    bio = io.BytesIO(raw)
    try:
        major, _ = np.lib.format.read_magic(bio)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = reader(bio)
    except Exception as e:  # numpy raises ValueError, SyntaxError... on a hostile header
        raise UploadError(f"array {key} is not a valid .npy array ({type(e).__name__})") from None
    if dtype.kind not in "fiuU" or dtype.hasobject:
        raise UploadError(f"array {key} has dtype {dtype}; only numbers and strings are accepted")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(raw) - bio.tell():
        raise UploadError(f"array {key}: its header (shape {shape}) does not match its data size")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def load_embeddings_npz(path: Source, *, limits: UploadLimits = DEFAULT_LIMITS) -> dict:
    """Precomputed embeddings from an .npz, for users with their own pipeline.

    Expects ``image_embeddings`` (N, d) float, ``text_embeddings`` (C, d) float, ``labels`` (N,) int
    in 0..C-1 and ``class_names`` (C,) str. Loaded with ``allow_pickle=False`` under the same byte caps
    as zips. Returns those four keys as float32 / int64 arrays and a list of str.
    Raises UploadError on any problem (shapes, non-finite values, label range, sizes, names).
    """
    with _opened(path) as fh:
        zf, _ = _open_zip(fh, limits, what=".npz file")
        with zf:
            infos = {i.filename: i for i in zf.infolist()}
            missing = [k for k in NPZ_KEYS if k + ".npy" not in infos]
            if missing:
                raise UploadError(f"the .npz lacks {', '.join(missing)}; it needs {', '.join(NPZ_KEYS)}")
            budget, arrays = _Budget(limits.max_total_uncompressed_bytes), {}
            for key in NPZ_KEYS:
                try:
                    raw = _read_member(zf, infos[key + ".npy"], budget, limits,
                                       cap=limits.max_total_uncompressed_bytes)
                except _Skip as e:
                    raise UploadError(f"array {key}: {e}") from None
                arrays[key] = _load_npy(raw, key)
    return _validate_embeddings(arrays, limits)


def _validate_embeddings(a: dict[str, np.ndarray], limits: UploadLimits) -> dict:
    x, t, y, names = (a[k] for k in NPZ_KEYS)
    for key, arr in (("image_embeddings", x), ("text_embeddings", t)):
        if arr.ndim != 2 or arr.dtype.kind != "f" or 0 in arr.shape:
            raise UploadError(f"{key} must be a non-empty 2-D float array, got {arr.dtype} {arr.shape}")
    (n, d), c = x.shape, t.shape[0]
    if n > limits.max_embedding_rows or d > limits.max_embedding_dim or c > limits.max_classes:
        raise UploadError(f"too large: {n} rows (limit {limits.max_embedding_rows}), dimension {d} (limit "
                          f"{limits.max_embedding_dim}), {c} classes (limit {limits.max_classes})")
    if t.shape[1] != d:
        raise UploadError(f"text_embeddings have dimension {t.shape[1]} but image_embeddings have {d}")
    if c < 2:
        raise UploadError("a sample needs at least 2 classes")
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise UploadError(f"labels must be {n} integers (one per image), got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= c:
        raise UploadError(f"labels must lie in 0..{c - 1}, found {y.min()}..{y.max()}")
    if names.shape != (c,) or names.dtype.kind != "U":
        raise UploadError(f"class_names must be {c} strings (one per text embedding), got {names.dtype} {names.shape}")
    class_names = [str(s) for s in names]
    for s in class_names:
        problem = label_problem(s, limits)
        if problem:
            raise UploadError(f"class name {_printable(s)!r}: {problem}")
    if len(set(class_names)) != c:
        raise UploadError("class_names must be distinct")
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise UploadError("the embeddings contain NaN or infinite values")
    return {"image_embeddings": x.astype(np.float32, copy=False), "text_embeddings": t.astype(np.float32, copy=False),
            "labels": y.astype(np.int64, copy=False), "class_names": class_names}
