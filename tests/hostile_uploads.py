"""A corpus of hostile (and a few good) uploads, generated at test time so nothing binary is committed.

``build_corpus(dir)`` writes every case into ``dir`` and returns a HostileCase per file. Expected
outcomes: 'error' (the loader raises UploadError matching ``match``), 'skip' (the load succeeds and a
``.skipped`` entry, formatted ``"member: reason"``, matches ``match``) or 'ok' (loads with nothing
skipped). ``classes`` gives the expected images per class whenever a load succeeds.
Zips are written by a small raw writer so that names, flags and declared sizes can lie.
"""
from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from core.upload import load_embeddings_npz, load_image_folder_zip

MiB = 1 << 20
RED, BLUE, GREEN = (200, 30, 30), (30, 30, 200), (30, 200, 30)
GOOD_CLASSES = {"cat": 2, "dog": 2}


@dataclass(frozen=True)
class HostileCase:
    name: str
    path: Path
    expect: str                       # 'error', 'skip' or 'ok'
    match: str | None = None          # regex on the error message, or on one "member: reason" skip entry
    classes: dict | None = None       # expected {class: count} when the load succeeds
    kind: str = "zip"                 # 'zip' -> load_image_folder_zip, 'npz[-width]' -> load_embeddings_npz


_CASES: list[tuple[str, str, str | None, dict | None, str, Callable[[Path], None]]] = []


def case(name: str, expect: str, match: str | None = None, classes: dict | None = None, kind: str = "zip"):
    """Register a builder ``fn(path)`` that writes the case's file."""
    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        _CASES.append((name, expect, match, classes, kind, fn))
        return fn
    return register


def build_corpus(directory: Path | str, names: list[str] | None = None) -> list[HostileCase]:
    """Write the cases (all, or those in ``names``) into ``directory``."""
    directory = Path(directory)
    out = []
    for name, expect, match, classes, kind, build in _CASES:
        if names is None or name in names:
            path = directory / f"{name}.{kind.split('-')[0]}"
            build(path)
            out.append(HostileCase(name, path, expect, match, classes, kind))
    return out


def case_names() -> list[str]:
    return [c[0] for c in _CASES]


def load_case(c: HostileCase):
    """Run the loader the case is meant for."""
    if c.kind.startswith("npz"):  # 'npz-128': embeddings said to come from a 128-wide model
        width = int(c.kind.split("-")[1]) if "-" in c.kind else None
        return load_embeddings_npz(c.path, expected_dim=width)
    return load_image_folder_zip(c.path)


# ---------------------------------------------------------------- building blocks

def image_bytes(fmt: str = "PNG", colour=RED, size=(16, 16), seed: int = 0) -> bytes:
    """A small noisy image of one dominant colour (the tests check labels by colour)."""
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour) + rng.integers(-20, 21, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


@dataclass
class Entry:
    """One raw zip member; every header field may be made to lie."""
    name: str | bytes
    payload: bytes = b""
    deflate: bool = True
    flags: int | None = None          # None: UTF-8 flag when the name is not ASCII
    declared_size: int | None = None  # None: the true uncompressed size
    crc: int | None = None
    method: int | None = None
    mode: int = 0o100644              # Unix mode in the high 16 bits of external_attr
    stored: bytes | None = None       # pre-compressed data (payload then unused)


def _deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def write_zip(path: Path, entries: list[Entry]) -> None:
    """A zip written byte by byte: local headers, central directory, end record."""
    body, cd = bytearray(), bytearray()
    for e in entries:
        name = e.name if isinstance(e.name, bytes) else e.name.encode("utf-8")
        flags = e.flags if e.flags is not None else (0 if name.isascii() else 0x800)
        data = e.stored if e.stored is not None else (_deflate(e.payload) if e.deflate else e.payload)
        method = e.method if e.method is not None else (8 if e.deflate else 0)
        size = e.declared_size if e.declared_size is not None else len(e.payload)
        crc = e.crc if e.crc is not None else zlib.crc32(e.payload)
        common = (flags, method, 0, 0x21, crc, len(data), size, len(name))
        offset = len(body)
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, *common, 0) + name + data
        cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, *common, 0, 0, 0, 0,
                          e.mode << 16, offset) + name
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(cd), len(body), 0)
    path.write_bytes(bytes(body + cd + end))


def good_entries(prefix: str = "") -> list[Entry]:
    return [Entry(f"{prefix}cat/1.png", image_bytes(colour=RED, seed=1)),
            Entry(f"{prefix}cat/2.jpg", image_bytes("JPEG", RED, size=(600, 300), seed=2)),
            Entry(f"{prefix}dog/1.png", image_bytes(colour=BLUE, seed=3)),
            Entry(f"{prefix}dog/2.png", image_bytes(colour=BLUE, seed=4))]


def good_plus(*extra: Entry) -> Callable[[Path], None]:
    return lambda path: write_zip(path, good_entries() + list(extra))


def zeros_stream(mib: int) -> tuple[bytes, int]:
    """Raw deflate of ``mib`` MiB of zeros built from one flushed block (fast), and its CRC."""
    block, c = bytes(MiB), zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)  # byte-aligned, so it can be repeated
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return unit * (mib - 1) + c.compress(block) + c.flush(), crc


def png_declaring(width: int, height: int) -> bytes:
    """A valid-looking PNG header that declares a huge size, with almost no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(image_bytes("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def manifest(rows: list[tuple[str, str]], header: str = "file,label") -> bytes:
    return (header + "\n" + "".join(f'"{f}","{lab}"\n' for f, lab in rows)).encode("utf-8")


def csv_zip(rows: list[tuple[str, str]], *extra: Entry) -> Callable[[Path], None]:
    images = [Entry(f"img/{n}.png", image_bytes(colour=c, seed=i))
              for i, (n, c) in enumerate([("a", RED), ("b", RED), ("c", BLUE), ("d", BLUE)])]
    base = [("img/a.png", "cat"), ("img/b.png", "cat"), ("img/c.png", "dog"), ("img/d.png", "dog")]
    return lambda path: write_zip(path, [Entry("labels.csv", manifest(base + rows))] + images + list(extra))


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)  # pickling allowed here so the object-array case can be built
    return buf.getvalue()


def write_npz(path: Path, raw: dict | None = None, **overrides) -> None:
    """A valid 6-image, 2-class embeddings .npz; ``overrides`` replace arrays (None drops one),
    ``raw`` replaces members by raw .npy bytes."""
    rng = np.random.default_rng(0)
    arrays = {"image_embeddings": rng.normal(size=(6, 8)).astype(np.float32),
              "text_embeddings": rng.normal(size=(2, 8)).astype(np.float32),
              "labels": np.array([0, 0, 0, 1, 1, 1]), "class_names": np.array(["cat", "dog"])}
    arrays.update(overrides)
    members = {k: npy_bytes(v) for k, v in arrays.items() if v is not None} | (raw or {})
    write_zip(path, [Entry(f"{k}.npy", b, deflate=False) for k, b in members.items()])


# ---------------------------------------------------------------- good cases

case("good_folders", "ok", classes=GOOD_CLASSES)(good_plus())
case("good_top_folder", "ok", classes=GOOD_CLASSES)(lambda p: write_zip(p, good_entries("my sample/")))
case("good_csv_manifest", "ok", classes=GOOD_CLASSES)(csv_zip([]))
case("good_csv_excel_style_in_top_folder", "ok", classes=GOOD_CLASSES)(lambda p: write_zip(p, [
    # what Excel on Windows writes: a BOM, CRLF line ends, capitalised headers, backslash paths
    Entry("export/labels.csv", "\ufeffFile,Label\r\nimg\\a.png,cat\r\nimg\\b.png,dog\r\n"
          "pics\\c.png,cat\r\npics\\d.png,dog\r\n".encode("utf-8")),
    Entry("export/img/a.png", image_bytes(colour=RED)), Entry("export/img/b.png", image_bytes(colour=BLUE)),
    Entry("export/pics/c.png", image_bytes(colour=RED)), Entry("export/pics/d.png", image_bytes(colour=BLUE))]))
case("good_other_formats", "ok", classes={"cat": 3, "dog": 2})(lambda p: write_zip(p, [
    Entry("cat/a.bmp", image_bytes("BMP", RED)), Entry("cat/b.gif", image_bytes("GIF", RED)),
    Entry("cat/c.webp", image_bytes("WEBP", RED)), Entry("dog/a.tiff", image_bytes("TIFF", BLUE)),
    Entry("dog/b.png", image_bytes(colour=BLUE))]))
case("good_unicode_rtl_names", "ok", classes={"قطة": 1, "כלב": 1, "猫": 1})(lambda p: write_zip(p, [
    Entry("قطة/صورة.png", image_bytes(colour=RED)), Entry("כלב/תמונה.png", image_bytes(colour=BLUE)),
    # UTF-8 bytes without the UTF-8 flag, as several zip tools write them
    Entry("猫/写真.png".encode("utf-8"), image_bytes(colour=GREEN), flags=0)]))
case("good_embeddings", "ok", kind="npz")(write_npz)

# ---------------------------------------------------------------- refused outright

case("not_a_zip", "error", r"not a zip")(lambda p: p.write_text("hello, I am a text file\n" * 10, encoding="utf-8"))


@case("truncated_zip", "error", r"not a zip|truncated|corrupt")
def _truncated(path: Path) -> None:
    good_plus()(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@case("tar_gz_renamed_zip", "error", r"not a zip")
def _tar_gz(path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = image_bytes()
        info = tarfile.TarInfo("cat/1.png")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


case("empty_zip", "error", r"no usable files")(lambda p: write_zip(p, []))


@case("archive_too_large", "error", r"limit is 200 MiB")
def _sparse(path: Path) -> None:
    with open(path, "wb") as fh:  # sparse: 300 MiB apparent size, no disk used
        fh.truncate(300 * MiB)


@case("zip_bomb_1gib", "error", r"zip bomb")
def _bomb(path: Path) -> None:
    stream, crc = zeros_stream(1024)
    write_zip(path, good_entries() + [Entry("cat/bomb.bmp", stored=stream, declared_size=1 << 30, crc=crc)])


@case("many_members_bomb", "error", r"zip bomb")
def _many_bombs(path: Path) -> None:
    stream, crc = zeros_stream(2)
    write_zip(path, [Entry(f"cat/{i}.bmp", stored=stream, declared_size=2 * MiB, crc=crc) for i in range(300)])


case("ten_thousand_files", "error", r"too many files")(lambda p: write_zip(
    p, [Entry(f"cat/{i}.png", b"x", deflate=False) for i in range(10_000)]))
case("single_class", "error", r"at least 2 classes.*found 1: cat")(lambda p: write_zip(p, good_entries()[:2]))
case("two_classes_one_empty", "error", r"at least 2 classes")(lambda p: write_zip(
    p, good_entries()[:2] + [Entry("dog/notes.txt", b"no images here")]))
case("csv_only", "error", r"no usable images")(lambda p: write_zip(p, [Entry("labels.csv", manifest(
    [("img/a.png", "cat"), ("img/b.png", "dog")]))]))
case("huge_csv", "error", r"manifest labels\.csv: file too large \(5\.0 MiB")(lambda p: write_zip(p, [Entry(
    # random rows compress poorly, so the overall ratio guard does not fire first
    "labels.csv", b"file,label\n" + np.random.default_rng(0).bytes(5 * MiB // 2 - 6).hex().encode())]
    + good_entries()))
case("manifest_too_many_rows", "error", r"more than 5000 rows")(lambda p: write_zip(p, [Entry(
    "labels.csv", manifest([(f"img/{i}.png", "cat") for i in range(6000)]))] + good_entries()))
case("csv_giant_field", "error", r"not a valid CSV")(lambda p: write_zip(p, [Entry(
    "labels.csv", b"file,label\nimg/a.png," + b"c" * 200_000 + b"\n")]))
case("csv_without_header", "error", r"header row")(lambda p: write_zip(p, [Entry(
    "data.csv", b"img/a.png,cat\nimg/b.png,dog\n")] + good_entries()))
case("two_csv_files", "error", r"several CSV")(lambda p: write_zip(p, [
    Entry("a.csv", manifest([])), Entry("b.csv", manifest([]))] + good_entries()))
case("utf8_flag_but_invalid_name", "error", r"not valid UTF-8")(lambda p: write_zip(p, good_entries() + [
    Entry(b"cat/\xff\xfe.png", image_bytes(), flags=0x800)]))
case("classes_differ_in_case", "error", r"letter case")(lambda p: write_zip(
    p, good_entries() + [Entry("Cat/3.png", image_bytes())]))
case("too_many_classes", "error", r"1001 classes; the limit is 1000")(lambda p: write_zip(
    p, [Entry(f"c{i}/1.png", b"not decoded", deflate=False) for i in range(1001)]))

case("npz_object_array", "error", r"dtype object", kind="npz")(
    lambda p: write_npz(p, class_names=np.array(["cat", {"x": 1}], dtype=object)))
case("npz_not_finite", "error", r"NaN or infinite", kind="npz")(
    lambda p: write_npz(p, image_embeddings=np.full((6, 8), np.nan, dtype=np.float32)))
case("npz_label_out_of_range", "error", r"labels must lie in 0\.\.1", kind="npz")(
    lambda p: write_npz(p, labels=np.array([0, 1, 2, 0, 1, 7])))
case("npz_dimension_mismatch", "error", r"dimension 5", kind="npz")(
    lambda p: write_npz(p, text_embeddings=np.ones((2, 5), dtype=np.float32)))
case("npz_formula_class_name", "error", r"formula", kind="npz")(
    lambda p: write_npz(p, class_names=np.array(["cat", "=HYPERLINK(\"http://x\")"])))
case("npz_missing_array", "error", r"lacks labels", kind="npz")(lambda p: write_npz(p, labels=None))
case("npz_not_a_zip", "error", r"not a zip", kind="npz")(lambda p: p.write_bytes(b"\x93NUMPY garbage"))


@case("npz_header_lies_about_shape", "error", r"does not match its data size", kind="npz")
def _npz_lie(path: Path) -> None:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 8), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"  # .npy headers are padded to 64 bytes
    npy = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + bytes(64)
    write_npz(path, raw={"image_embeddings": npy})

# ---------------------------------------------------------------- survived: bad member skipped, rest loads

skip_cases = {
    "path_traversal": (Entry("../evil_probe.png", image_bytes()), r"^\.\./evil_probe\.png: path points outside"),
    "windows_traversal": (Entry("..\\..\\evil_probe.png", image_bytes()), r"evil_probe\.png: path points outside"),
    "absolute_path": (Entry("/tmp/hostile_abs_probe.png", image_bytes()), r"hostile_abs_probe\.png: absolute path"),
    "windows_drive_path": (Entry("C:/evil_probe.png", image_bytes()), r"^C:/evil_probe\.png: absolute path"),
    "symlink": (Entry("cat/link.png", b"/etc/passwd", mode=0o120777), r"^cat/link\.png: symbolic link"),
    "nested_zip": (Entry("cat/inner.zip", b"PK\x05\x06" + bytes(18)), r"^cat/inner\.zip: nested archive"),
    "nested_tar": (Entry("cat/inner.tar", b"x" * 600), r"^cat/inner\.tar: nested archive"),
    "gzip_named_png": (Entry("cat/sneaky.png", gzip.compress(b"x" * 100)), r"^cat/sneaky\.png: nested archive"),
    "zip_named_png": (Entry("cat/sneaky.png", b"PK\x03\x04" + bytes(100)), r"^cat/sneaky\.png: nested archive"),
    "non_image_file": (Entry("cat/readme.txt", b"hello"), r"^cat/readme\.txt: not an image file"),
    "executable_named_exe": (Entry("cat/setup.exe", b"MZ" + bytes(100)), r"^cat/setup\.exe: not an image file"),
    "corrupt_image": (Entry("cat/noise.png", bytes(range(256)) * 4), r"^cat/noise\.png: not a readable image"),
    "zero_byte_image": (Entry("cat/empty.jpg", b""), r"^cat/empty\.jpg: not a readable image"),
    "truncated_jpeg": (Entry("cat/half.jpg", image_bytes("JPEG", size=(64, 64))[:300]),
                       r"^cat/half\.jpg: not a readable image"),
    "truncated_png": (Entry("cat/half.png", image_bytes(size=(64, 64))[:200]), r"^cat/half\.png: not a readable"),
    "png_declares_100000_square": (Entry("cat/bomb.png", png_declaring(100_000, 100_000)),
                                   r"^cat/bomb\.png: image too large"),
    "png_declares_10000_square": (Entry("cat/big.png", png_declaring(10_000, 10_000)),
                                  r"^cat/big\.png: image too large \(10000×10000"),
    "jpeg_declares_65000_square": (Entry("cat/big.jpg", jpeg_declaring(65_000, 65_000)),
                                   r"^cat/big\.jpg: image too large"),
    "eps_named_png": (Entry("cat/ps.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"),
                      r"^cat/ps\.png: not a readable image"),
    "html_named_jpg": (Entry("cat/page.jpg", b"<html><script>alert(1)</script></html>"),
                       r"^cat/page\.jpg: not a readable"),
    "duplicate_name": (Entry("cat/1.png", image_bytes(colour=GREEN)), r"^cat/1\.png: duplicate name"),
    "non_utf8_name": (Entry(b"cat/caf\xe9.png", image_bytes(), flags=0), r"not UTF-8"),
    "control_char_name": (Entry("cat/bell\x07.png", image_bytes()), r"^cat/bell\\u0007\.png: name contains control"),
    "rtl_override_name": (Entry("cat/\u202egnp.exe", image_bytes()), r"\\u202egnp\.exe: name contains control"),
    "newline_in_folder": (Entry("ca\nt/1.png", image_bytes()), r"^ca\\u000at/1\.png: name contains control"),
    "very_long_name": (Entry("cat/" + "a" * 300 + ".png", image_bytes()), r"name longer than 200"),
    "formula_folder": (Entry("=cmd|'calc'!A0/1.png", image_bytes()), r"^=cmd\|'calc'!A0/1\.png: .*formula"),
    "at_formula_folder": (Entry("@SUM(A1)/1.png", image_bytes()), r"^@SUM\(A1\)/1\.png: .*formula"),
    "encrypted_member": (Entry("cat/secret.png", image_bytes(), flags=0x1), r"^cat/secret\.png: encrypted"),
    "unsupported_compression": (Entry("cat/d64.png", image_bytes(), method=9),  # 9 = Deflate64
                                r"^cat/d64\.png: corrupt or unsupported"),
    "mac_junk": (Entry("__MACOSX/cat/._1.png", b"\0\5\26\7"), r"^__MACOSX/cat/\._1\.png: hidden or system"),
    "ds_store": (Entry("cat/.DS_Store", b"\0\0\0\1Bud1"), r"^cat/\.DS_Store: hidden or system"),
    "loose_file_at_root": (Entry("stray.png", image_bytes()), r"^stray\.png: not directly inside a class folder"),
    "too_deep": (Entry("cat/2019/1.png", image_bytes()), r"^cat/2019/1\.png: not directly inside"),
}
for _name, (_entry, _match) in skip_cases.items():
    case(_name, "skip", _match, GOOD_CLASSES)(good_plus(_entry))
case("duplicate_after_unicode_normalisation", "skip", r"^cat/e\u0301\.png: duplicate name",
     {"cat": 3, "dog": 2})(good_plus(Entry("cat/\u00e9.png", image_bytes(seed=5)),  # NFC and NFD of "é"
                                     Entry("cat/e\u0301.png", image_bytes(seed=6))))


@case("ratio_bomb_member", "skip", r"^cat/flat\.bmp: expands beyond 4 MiB", {"cat": 3, "dog": 2})
def _ratio_bomb(path: Path) -> None:
    # Honest headers: 32 MiB of zeros from 32 KiB. A 1.2 MiB noise image keeps the whole archive
    # under the overall ratio, so it is the per-member ratio cap that stops reading (at 4 MiB).
    stream, crc = zeros_stream(32)
    noise = Entry("cat/3.png", image_bytes(size=(640, 640), seed=7), deflate=False)
    good_plus(noise, Entry("cat/flat.bmp", stored=stream, declared_size=32 * MiB, crc=crc))(path)


@case("lying_central_directory", "skip", r"^cat/liar\.png: corrupt", GOOD_CLASSES)
def _liar(path: Path) -> None:
    # the headers say 1000 bytes for 64 MiB of zeros: reading must stop early, and the CRC then fails
    stream, crc = zeros_stream(64)
    good_plus(Entry("cat/liar.png", stored=stream, declared_size=1000, crc=crc))(path)


@case("corrupt_member_data", "skip", r"^cat/bad\.png: (corrupt|not a readable)", GOOD_CLASSES)
def _corrupt_member(path: Path) -> None:
    png = image_bytes(seed=9)
    scrambled = bytes(b ^ 0x5A for b in _deflate(png))
    good_plus(Entry("cat/bad.png", stored=scrambled, declared_size=len(png), crc=zlib.crc32(png)))(path)

case("three_classes_one_empty", "skip", r"^bird/notes\.txt: not an image", GOOD_CLASSES)(
    good_plus(Entry("bird/notes.txt", b"forgot the pictures")))
case("empty_folder_entry", "ok", classes=GOOD_CLASSES)(good_plus(Entry("bird/", b"", deflate=False, mode=0o40755)))
formulas = ["=cmd|' /C calc'!A0", "+1", "-2", "@SUM(A1)", "\t=1"]
case("csv_formula_labels", "skip", r"row \d+: img/f0\.png: .*formula", GOOD_CLASSES)(csv_zip(
    [(f"img/f{i}.png", f) for i, f in enumerate(formulas)],
    *[Entry(f"img/f{i}.png", image_bytes(seed=i)) for i in range(len(formulas))]))
case("csv_points_outside", "skip", r"row \d+: \.\./\.\./etc/passwd: points outside", GOOD_CLASSES)(csv_zip(
    [("../../etc/passwd", "cat"), ("/etc/passwd", "dog"), ("C:\\Windows\\win.ini", "dog")]))
case("csv_missing_member", "skip", r"row \d+: img/nope\.png: not in the archive", GOOD_CLASSES)(
    csv_zip([("img/nope.png", "cat")]))
case("csv_unlisted_image", "skip", r"^img/extra\.png: not listed in the manifest", GOOD_CLASSES)(
    csv_zip([], Entry("img/extra.png", image_bytes())))


import tests.hostile_uploads_more  # noqa: E402,F401  (registers its cases into this corpus)
