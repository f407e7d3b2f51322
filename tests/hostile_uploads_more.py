"""More hostile uploads (issue 15): .npz expansion and width, high-bit-depth and float images, and
a decode-time bomb of small lossless WebPs. Registered into tests.hostile_uploads' corpus."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from tests.hostile_uploads import (GOOD_CLASSES, MiB, Entry, case, good_entries, good_plus, npy_bytes,
                                   write_npz, write_zip, zeros_stream)

GREY = {"cat": 2, "dog": 2, "grey": 2}


def encoded(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def grey_plus(*images: bytes, ext: str = "png"):
    return good_plus(*[Entry(f"grey/{i}.{ext}", data) for i, data in enumerate(images)])


MID16 = np.full((16, 16), 32768, dtype=np.uint16)  # mid grey in 16 bits: must not come out white
case("png_16bit_grey", "ok", classes=GREY)(grey_plus(encoded(MID16, "PNG"), encoded(MID16 + 1, "PNG")))
case("tiff_16bit_grey", "ok", classes=GREY)(grey_plus(encoded(MID16, "TIFF"), encoded(MID16, "TIFF"), ext="tif"))
UNIT = np.full((16, 16), 0.5, dtype=np.float32)  # mid grey as a float in [0, 1]: must not come out black
case("tiff_float_unit_range", "ok", classes=GREY)(grey_plus(encoded(UNIT, "TIFF"), encoded(UNIT, "TIFF"), ext="tif"))
case("tiff_float_0_255", "ok", classes=GREY)(grey_plus(encoded(UNIT * 255, "TIFF"), encoded(UNIT * 255, "TIFF"),
                                                       ext="tif"))
case("tiff_float_unknown_range", "skip", r"^grey/0\.tif: image values reach 1000", GOOD_CLASSES)(
    grey_plus(encoded(UNIT * 2000, "TIFF"), ext="tif"))
case("tiff_float_nan", "skip", r"^grey/0\.tif: float image holds NaN", GOOD_CLASSES)(
    grey_plus(encoded(np.full((16, 16), np.nan, np.float32), "TIFF"), ext="tif"))
case("tiff_float_negative", "skip", r"^grey/0\.tif: float image has negative values", GOOD_CLASSES)(
    grey_plus(encoded(UNIT - 1, "TIFF"), ext="tif"))


@case("webp_decode_bomb", "error", r"megapixels to decode")
def _webp_bomb(path: Path) -> None:
    # 16 megapixels of one colour compress to ~40 bytes of lossless WebP; ~0.2 s of CPU each to decode.
    # The per-image cap allows each; the total pixel budget stops the archive after fifteen.
    big = Image.new("RGB", (4000, 4000), (200, 30, 30))
    buf = io.BytesIO()
    big.save(buf, format="WEBP", lossless=True, quality=0, method=0)
    data = buf.getvalue()
    write_zip(path, good_entries() + [Entry(f"cat/big{i}.webp", data, deflate=False) for i in range(40)])


@case("npz_expands_1gib_honest", "error", r"declares 1024\.0 MiB of arrays; the limit is 160 MiB", kind="npz")
def _npz_big_honest(path: Path) -> None:
    stream, crc = zeros_stream(1024)  # 1 GiB of zeros in ~1 MiB, sizes declared honestly
    entries = [Entry(f"{k}.npy", npy_bytes(v), deflate=False) for k, v in _small().items()]
    entries.append(Entry("image_embeddings.npy", stored=stream, declared_size=1024 * MiB, crc=crc))
    write_zip(path, entries)


@case("npz_member_ratio_64mib", "error", r"image_embeddings: file too large \(64\.0 MiB declared", kind="npz")
def _npz_big_ratio(path: Path) -> None:
    stream, crc = zeros_stream(64)  # under the 160 MiB total, but 1000:1: the per-array ratio cap refuses it
    entries = [Entry(f"{k}.npy", npy_bytes(v), deflate=False) for k, v in _small().items()]
    entries.append(Entry("image_embeddings.npy", stored=stream, declared_size=64 * MiB, crc=crc))
    write_zip(path, entries)


@case("npz_width_8192", "error", r"dimension 8192 \(limit 1152\)", kind="npz")
def _npz_wide(path: Path) -> None:
    rng = np.random.default_rng(0)
    write_npz(path, image_embeddings=rng.normal(size=(6, 8192)).astype(np.float32),
              text_embeddings=rng.normal(size=(2, 8192)).astype(np.float32))


@case("npz_width_mismatch_model", "error", r"512 wide but the chosen model's are 128", kind="npz-128")
def _npz_mismatch(path: Path) -> None:
    rng = np.random.default_rng(0)
    write_npz(path, image_embeddings=rng.normal(size=(6, 512)).astype(np.float32),
              text_embeddings=rng.normal(size=(2, 512)).astype(np.float32))


case("npz_width_matches_model", "ok", kind="npz-128")(lambda p: write_npz(
    p, image_embeddings=np.random.default_rng(0).normal(size=(6, 128)).astype(np.float32),
    text_embeddings=np.random.default_rng(1).normal(size=(2, 128)).astype(np.float32)))


def _small() -> dict[str, np.ndarray]:
    return {"text_embeddings": np.ones((2, 8), np.float32), "labels": np.array([0, 1]),
            "class_names": np.array(["cat", "dog"])}


@case("npz_rows_over_cap", "error", r"4001 rows \(limit 4000\)", kind="npz")
def _npz_rows(path: Path) -> None:
    rng = np.random.default_rng(0)  # the baselines' cost grows with rows: 4,000 is the bound
    write_npz(path, image_embeddings=rng.normal(size=(4001, 8)).astype(np.float32),
              labels=np.arange(4001) % 2)
