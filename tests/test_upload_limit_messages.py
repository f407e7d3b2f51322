"""Upload limits at their boundaries: a size exactly at a limit passes that check, one byte more is refused, and
the refusal shows the size above the limit (it used to round both down to whole MiB: 'the upload is 200 MiB;
the limit is 200 MiB' for a file one byte over)."""
from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.upload import DEFAULT_LIMITS, MiB, UploadError, load_embeddings_npz, load_image_folder_zip
from core.upload.limits import over_limit


def _sparse(path, size):
    with open(path, "wb") as fh:  # sparse: the apparent size, no disk used
        fh.truncate(size)
    return path


def test_an_upload_exactly_at_the_size_limit_passes_that_check_and_one_byte_more_is_refused_naming_both(tmp_path):
    limit = DEFAULT_LIMITS.max_archive_bytes
    with pytest.raises(UploadError) as at_limit:  # zeros are no zip: refused, but not for its size
        load_image_folder_zip(_sparse(tmp_path / "at.zip", limit))
    assert "the limit is" not in str(at_limit.value)
    with pytest.raises(UploadError, match=r"^the upload is 209,715,201 bytes; the limit is 209,715,200 bytes$"):
        load_image_folder_zip(_sparse(tmp_path / "over.zip", limit + 1))
    with pytest.raises(UploadError, match=r"^the upload is 300\.0 MiB; the limit is 200 MiB$"):
        load_image_folder_zip(_sparse(tmp_path / "far.zip", 300 * MiB))


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_an_npz_whose_arrays_take_exactly_the_limit_loads_and_one_byte_more_is_refused_naming_both():
    arrays = dict(image_embeddings=np.eye(4, 8), text_embeddings=np.eye(2, 8), labels=np.array([0, 0, 1, 1]),
                  class_names=np.array(["cat", "dog"]))
    raw = _npz(**arrays)
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        total = sum(info.file_size for info in zf.infolist())
    at_limit = dataclasses.replace(DEFAULT_LIMITS, max_npz_bytes=total)
    assert load_embeddings_npz(io.BytesIO(raw), limits=at_limit)["labels"].shape == (4,)
    with pytest.raises(UploadError, match=rf"^the \.npz declares {total:,} bytes of arrays; the limit is "
                                          rf"{total - 1:,} bytes$"):
        load_embeddings_npz(io.BytesIO(raw), limits=dataclasses.replace(at_limit, max_npz_bytes=total - 1))


def test_a_member_one_byte_over_its_cap_is_skipped_with_its_size_above_the_cap():
    png = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(png, "PNG")
    data = png.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in ("cat/a.png", "cat/b.png", "dog/a.png", "dog/b.png"):
            zf.writestr(name, data)
        zf.writestr("dog/big.png", data + b"\0")
    limits = dataclasses.replace(DEFAULT_LIMITS, max_member_bytes=len(data))
    sample = load_image_folder_zip(io.BytesIO(buf.getvalue()), limits=limits)
    assert len(sample.data.labels) == 4  # members of exactly the cap are read
    assert sample.skipped == [("dog/big.png", f"file too large ({len(data) + 1:,} bytes declared, limit "
                                              f"{len(data):,} bytes)")]


@pytest.mark.parametrize("size, limit, shown", [
    (200 * MiB + 1, 200 * MiB, ("209,715,201 bytes", "209,715,200 bytes")),
    (200 * MiB + MiB // 10, 200 * MiB, ("200.1 MiB", "200 MiB")),
    (int(64.04 * MiB), 64 * MiB, (f"{int(64.04 * MiB):,} bytes", f"{64 * MiB:,} bytes")),  # 64.0 would look equal
    (1024 * MiB, 160 * MiB, ("1024.0 MiB", "160 MiB")),
])
def test_over_limit_never_shows_a_size_at_or_below_its_limit(size, limit, shown):
    assert over_limit(size, limit) == shown


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_an_image_of_exactly_16_megapixels_is_read_and_a_larger_one_is_skipped_naming_the_limit():
    """README: 'at most 16 megapixels per image'. The skip reason named the image's size but not the limit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("cat/a.png", "dog/a.png"):
            zf.writestr(name, _png(4, 4))
        zf.writestr("cat/at-limit.png", _png(4000, 4000))
        zf.writestr("dog/over.png", _png(4000, 4001))
    sample = load_image_folder_zip(io.BytesIO(buf.getvalue()))
    assert len(sample.data.labels) == 3  # the 16,000,000-pixel image is read
    assert sample.skipped == [("dog/over.png", "image too large (4000×4001 pixels declared; the limit is "
                                               "16 megapixels)")]


def test_a_jpeg_over_16_megapixels_is_read_when_its_reduced_scale_decode_fits_as_readme_says():
    """README said 'at most 16 megapixels per image' while a 48-megapixel JPEG was read: the cap is on the pixels
    decoded, and Pillow decodes a JPEG at up to 1/8 scale a side (core.upload.limits: 'after JPEG draft scaling')."""
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert ("at most 16 megapixels decoded per image (a JPEG is decoded at up to ⅛ scale a side, so a larger JPEG "
            "whose reduced decode fits is read)") in readme
    big = io.BytesIO()
    Image.new("RGB", (8000, 6000), (100, 50, 20)).save(big, "JPEG", quality=50)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cat/a.png", _png(4, 4))
        zf.writestr("dog/a.png", _png(4, 4))
        zf.writestr("cat/big.jpg", big.getvalue())
    sample = load_image_folder_zip(io.BytesIO(buf.getvalue()))
    assert len(sample.data.labels) == 3 and sample.skipped == []
