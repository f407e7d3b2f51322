"""Images read from their source each time one is asked for, never held decoded all at once.

A folder or a torchvision set of 10^4-10^5 photos decoded into memory takes tens of GB (a 512 x 512 RGB image
is 0.75 MiB: 20,000 of them are 15 GiB, SUN397's 87,000 training images far more), so these datasets keep only
where each image comes from and decode it when the embedding pass, a training batch or the cache's fingerprint
reads it: memory is one batch of images, whatever the dataset's size. The pixels are the ones an eager load
gave (the same decoder and :func:`core.data.imaging.to_rgb`), so embeddings, cache keys and scores are unchanged.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable, Iterator

from core.data.errors import DatasetUnavailableError


class ImageSourceChanged(DatasetUnavailableError):
    """An image file changed or went away after its dataset was loaded; the message names it. A
    DatasetUnavailableError, so that a job says so in one line (a grid cell records it as its failure)."""


class LazyImages(Sequence):
    """A read-only sequence of images: ``read(key)`` gives the image of one key, called on every access.

    ``images[i]`` decodes one image, ``images[a:b]`` and :meth:`take` give another LazyImages over those keys
    (nothing decoded), iteration decodes one image at a time. ``read`` must be picklable for the sequence to be.
    """

    def __init__(self, read: Callable[[Any], Any], keys: Sequence[Any]) -> None:
        self._read, self._keys = read, tuple(keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return LazyImages(self._read, self._keys[i])
        return self._read(self._keys[i])

    def __iter__(self) -> Iterator[Any]:
        for key in self._keys:
            yield self._read(key)

    def take(self, index: Sequence[int]) -> "LazyImages":
        """The images at positions ``index`` (any order, repeats allowed), still unread."""
        return LazyImages(self._read, [self._keys[int(i)] for i in index])

    @property
    def keys(self) -> tuple:
        """Where each image comes from, in order (what ``read`` is given)."""
        return self._keys


def file_key(path: Path) -> tuple[str, int, int]:
    """(path, size, modification time in ns) of an image file: what :func:`read_image_file` checks it against."""
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def decode_image_file(path: str | os.PathLike):
    """The image in ``path`` as upright 8-bit RGB (:func:`core.data.imaging.to_rgb`), fully read, file closed.
    Raises what PIL or to_rgb raise for an unusable file.

    Decoded from an open file, as uploads (from their bytes) and torchvision's loader are: given a path, Pillow
    maps an uncompressed TIFF into memory at its rotated size when its orientation tag turns it a quarter (5 to
    8, as cameras and scanners write portraits), and scrambled its rows."""
    from PIL import Image

    from core.data.imaging import to_rgb

    with open(path, "rb") as fh, Image.open(fh) as im:
        out = to_rgb(im)
        out.load()
    return out


def read_image_file(key: tuple[str, int, int]):
    """The image of a :func:`file_key`; ImageSourceChanged when the file is gone, has another size or date than
    when its dataset was loaded (it would no longer be the image that was checked, fingerprinted and labelled),
    or no longer decodes."""
    path, size, mtime_ns = key
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ImageSourceChanged(f"image file {path} cannot be read any more ({exc.strerror or exc}); it was "
                                 "there when its dataset was loaded: load the dataset again") from exc
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        raise ImageSourceChanged(f"image file {path} changed after its dataset was loaded; load the dataset again")
    try:
        return decode_image_file(path)
    except Exception as exc:  # noqa: BLE001 (PIL raises many types)
        raise ImageSourceChanged(f"image file {path} no longer decodes ({type(exc).__name__}: {exc}); it did when "
                                 "its dataset was loaded: load the dataset again") from exc


class DatasetItemImage:
    """``read`` for a :class:`LazyImages` over a torchvision dataset: key ``i`` -> ``to_rgb(dataset[i][0])``."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __call__(self, i: int):
        from core.data.imaging import to_rgb

        return to_rgb(self.dataset[int(i)][0])
