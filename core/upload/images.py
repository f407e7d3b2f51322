"""Decoding one uploaded image to an RGB thumbnail under a per-image and a total pixel budget.

16-bit and 32-bit integer images are scaled to 8 bits (not clipped, which would turn them almost
white); float images with values in [0, 1] or [0, 255] are scaled likewise; any other float range is
refused with a reason, never guessed (a silent black image is worse than a skip).
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

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


def _to_8bit(im: Image.Image) -> Image.Image:
    """32-bit integer (16-bit ones are widened before this) and float images as 8-bit, by their real
    range; _Skip when it is unknown. Other modes pass unchanged."""
    if im.mode not in ("I", "F"):
        return im
    arr = np.asarray(im, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise _Skip("float image holds NaN or infinite values")
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if low < 0:
        raise _Skip(f"{'float' if im.mode == 'F' else 'integer'} image has negative values; "
                    "cannot tell its range")
    if im.mode == "F" and high <= 1.0:
        scale = 255.0
    elif high <= 255.0:
        scale = 1.0
    elif im.mode == "I" and high <= 65535.0:
        # by the smallest bit depth that holds the values: 12-bit camera data fill the 8-bit range
        # instead of staying near black, as dividing every 16-bit container by 257 left them
        scale = 255.0 / (2 ** int(high).bit_length() - 1)
    else:
        raise _Skip(f"image values reach {high:g}; expected [0, 1] or [0, 255] (float) or 8/16-bit integers")
    return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), mode="L")


def _decode_image(raw: bytes, limits: UploadLimits, pixels: PixelBudget | None = None) -> Image.Image:
    """An RGB thumbnail (longest side <= max_side) from encoded bytes, checking the declared size first."""
    if raw.startswith(ARCHIVE_MAGIC) or raw[257:262] == b"ustar":
        raise _Skip("nested archive (not opened)")
    try:
        with Image.open(io.BytesIO(raw), formats=PIL_FORMATS) as im:
            im.draft("RGB", (limits.max_side, limits.max_side))  # JPEG: decode at reduced scale
            w, h = im.size
            if w * h > limits.max_image_pixels:
                raise _Skip(f"image too large ({w}×{h} pixels declared)")
            if pixels is not None:
                pixels.take(w * h)
            if im.mode.startswith("I;16"):  # Pillow cannot reduce() these, which thumbnail does when large
                im = im.convert("I")
            im.thumbnail((limits.max_side, limits.max_side))
            im = _to_8bit(im)
            im = ImageOps.exif_transpose(im)  # phone photos store their rotation in EXIF
            return im.convert("RGB")
    except (_Skip, UploadError):
        raise
    except Image.DecompressionBombError:
        raise _Skip("image too large (decompression bomb)") from None
    except Exception as e:  # PIL raises many types on hostile input; any of them means "unusable"
        raise _Skip(f"not a readable image ({_kind(e)})") from None

