"""Parsed uploads (and the forecast page's embeddings of their images) held for a server's visitors under one
memory budget.

A parsed upload is large beside its file (2,000 thumbnails of 256 px take 505 MiB and come from a zip of
under 1 MiB; an ``.npz``'s arrays up to 160 MiB), so a hosted app keeps them in one pool shared by every
session instead of one copy per open tab: the least recently used is dropped first, the newest always
kept, and whoever's upload was dropped parses it again.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


#: What a PIL image holds beyond its pixel rows (the Image and its core object, the image header), measured on
#: Pillow 13 at about 600 B; with its table of row pointers (8 B a row) it is most of a small thumbnail's cost.
IMAGE_OVERHEAD_BYTES = 640


def image_bytes(im: Any) -> int:
    """The memory a PIL image takes: Pillow stores a pixel of more than one band (RGB, RGBA, LA ...) and of the
    32-bit modes (I, F) in 4 bytes, of 16-bit modes in 2, of the others in 1, plus a row pointer a row and
    :data:`IMAGE_OVERHEAD_BYTES`. Three bytes an RGB pixel undercounted a 256 px thumbnail by a quarter and a 32 px
    one by 38 %, so the uploads' budget held 1.0 to 1.2 GiB where it said 768 MiB."""
    mode = im.mode
    pixel = 2 if mode.startswith("I;16") else 4 if len(im.getbands()) > 1 or mode in ("I", "F") else 1
    return im.width * im.height * pixel + im.height * 8 + IMAGE_OVERHEAD_BYTES


def parsed_bytes(parsed: Any) -> int:
    """About how much memory a parsed upload holds: its images (an ``UploadedImages``: :func:`image_bytes`), or
    its arrays (the dict of an ``.npz``); 0 for anything else."""
    data = getattr(parsed, "data", None)
    if data is not None:
        return sum(image_bytes(im) for im in data.images)
    return sum(int(getattr(v, "nbytes", 0)) for v in parsed.values()) if isinstance(parsed, dict) else 0


class BudgetPool:
    """Values with a size in bytes, held together under a budget; thread-safe.

    :meth:`put` drops the least recently used values until the total fits the budget, but never the value
    it has just stored (one value larger than the budget is held alone).
    """

    def __init__(self) -> None:
        self._items: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        """The value stored under ``key`` (now the most recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][1]

    def put(self, key: Hashable, value: Any, size: int, *, budget: int,
            replaces: Callable[[Hashable], bool] | None = None) -> None:
        """Store ``value`` (``size`` bytes) under ``key``; first drop the keys ``replaces`` accepts (e.g. the
        same session's earlier upload), then the least recently used until the total is at most ``budget``.
        Raises ValueError for a negative size or budget."""
        if size < 0 or budget < 0:
            raise ValueError(f"size and budget must be >= 0, got {size} and {budget}")
        with self._lock:
            if replaces is not None:
                for old in [k for k in self._items if k != key and replaces(k)]:
                    del self._items[old]
            self._items[key] = (size, value)
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(s for s, _ in self._items.values()) > budget:
                self._items.popitem(last=False)

    def keys(self) -> list[Hashable]:
        """The stored keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def held_bytes(self) -> int:
        """The bytes all stored values hold together."""
        with self._lock:
            return sum(size for size, _ in self._items.values())

    def clear(self) -> None:
        """Drop every value."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


__all__ = ["BudgetPool", "image_bytes", "parsed_bytes"]
