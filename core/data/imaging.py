"""Any decoded image as the 8-bit RGB a model sees, the same for image folders and uploads.

16-bit and 32-bit integer images are scaled to 8 bits by the smallest bit depth that holds their values
(not clipped, which would turn them almost white); float images with values in [0, 1] or [0, 255] are
scaled likewise; any other range is refused with a reason, never guessed. EXIF rotation is applied.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps


class UnusableImage(ValueError):
    """An image whose pixel values cannot be mapped to 8 bits without guessing; the message says why."""


def to_8bit(im: Image.Image, value_range: tuple[float, float] | None = None) -> Image.Image:
    """32-bit integer (16-bit ones are widened before this, see :func:`to_rgb`) and float images as 8-bit
    greyscale, by their real range; other modes pass unchanged. Raises UnusableImage.

    ``value_range``: (lowest, highest) value of the image this one was resized from (``Image.getextrema()``
    before a thumbnail), so a thumbnail gets the scale of its full-size image: resampling lowers the peaks,
    and a 12-bit image whose brightest pixel was averaged below 2048 was scaled as 11-bit, twice as bright. The
    thumbnail's values are clipped to that range: past a sharp edge resampling also rings beyond it."""
    if im.mode not in ("I", "F"):
        return im
    arr = np.asarray(im, dtype=np.float64)
    if not np.isfinite(arr).all() or (value_range is not None and not np.isfinite(value_range).all()):
        raise UnusableImage("float image holds NaN or infinite values")
    if value_range is not None:
        # resampling rings past sharp edges, below the darkest and above the brightest value (a 12-bit object on
        # black: -176 to 4287): those values are not the image's, and would refuse it or change its bit depth
        arr = np.clip(arr, float(value_range[0]), float(value_range[1]))
    low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    if value_range is not None:
        low, high = min(low, float(value_range[0])), max(high, float(value_range[1]))
    if low < 0:
        raise UnusableImage(f"{'float' if im.mode == 'F' else 'integer'} image has negative values; "
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
        raise UnusableImage(f"image values reach {high:g}; expected [0, 1] or [0, 255] (float) or 8/16-bit integers")
    return Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8), mode="L")


def widen_16bit(im: Image.Image) -> Image.Image:
    """I;16 images as 32-bit "I" (Pillow cannot reduce or scale the 16-bit modes)."""
    return im.convert("I") if im.mode.startswith("I;16") else im


def to_rgb(im: Image.Image, max_side: int | None = None) -> Image.Image:
    """A decoded image as upright 8-bit RGB (see the module docstring): what image folders and uploads both give
    the model. ``max_side``: an upload's thumbnail, at most this many pixels a side (``im`` is reduced in place),
    scaled by the range of the whole image; None keeps every pixel. Raises UnusableImage."""
    im = widen_16bit(im)  # Pillow cannot reduce() I;16, which thumbnail does when large
    value_range = None
    if max_side is not None:
        value_range = im.getextrema() if im.mode in ("I", "F") else None
        im.thumbnail((max_side, max_side))
    # Rotate before to_8bit: it rebuilds high-bit-depth images from their pixels, dropping the EXIF.
    return to_8bit(ImageOps.exif_transpose(im), value_range).convert("RGB")
