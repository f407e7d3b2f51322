"""Decoding one uploaded image to an RGB thumbnail under a per-image and a total pixel budget.

Pixel values go through :func:`core.data.imaging.to_rgb`, as image-folder datasets' pixels do: 16/32-bit and
float images scaled by their range, any other range refused with a reason (a silent black image is worse
than a skip), EXIF rotation applied; an upload's image alone is thumbnailed (``UploadLimits.max_side``).
"""
from __future__ import annotations

import io

from PIL import Image

from core.data.imaging import UnusableImage, to_rgb
from core.upload.limits import ARCHIVE_MAGIC, PIL_FORMATS, UploadError, UploadLimits, _kind, _Skip


class PixelBudget:
    """A running cap on declared pixels decoded across one upload (one decode costs ~its pixels)."""

    def __init__(self, cap: int) -> None:
        self.cap, self.used = cap, 0

    def take(self, pixels: int) -> None:
        self.used += pixels
        if self.used > self.cap:
            raise UploadError(f"the images add up to more than {self.cap / 1e6:.0f} megapixels to decode; "
                              "send smaller or fewer images")


def _to_rgb(im: Image.Image, max_side: int) -> Image.Image:
    """:func:`core.data.imaging.to_rgb` (the image folders' decoding) thumbnailed, its refusal as a skip reason."""
    try:
        return to_rgb(im, max_side)
    except UnusableImage as exc:
        raise _Skip(str(exc)) from None


def _decode_image(raw: bytes | bytearray, limits: UploadLimits, pixels: PixelBudget | None = None) -> Image.Image:
    """An RGB thumbnail (longest side <= max_side) from encoded bytes, checking the declared size first."""
    if raw.startswith(ARCHIVE_MAGIC) or raw[257:262] == b"ustar":
        raise _Skip("nested archive (not opened)")
    try:
        with Image.open(io.BytesIO(raw), formats=PIL_FORMATS) as im:
            im.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at reduced scale
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise _Skip(f"image too large ({w}×{h} pixels declared; the limit is "
                            f"{limits.max_image_pixels / 1e6:g} megapixels)")
            if pixels is not None:
                pixels.take(w * h)
            return _to_rgb(im, limits.max_side)  # as image folders read it, thumbnailed
    except (_Skip, UploadError):
        raise
    except Image.DecompressionBombError:
        raise _Skip("image too large (decompression bomb)") from None
    except Exception as e:  # PIL raises many types on hostile input; any of them means "unusable"
        raise _Skip(f"not a readable image ({_kind(e)})") from None

