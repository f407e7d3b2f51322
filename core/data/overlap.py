"""Exact-duplicate images within and across a dataset's splits (or across datasets), by pixel hash.

A test image that is also a training image inflates a fine-tuned accuracy; an out-of-domain image that is also
in a fine-tuning task's training split understates forgetting. :func:`split_overlaps` hashes every image's
decoded pixels (RGB, with its height and width) and counts, for each named image set, the images that repeat an
earlier one of the same set, and for each pair of sets the images of the second found in the first. Arrays
(the generated worlds), PIL images and :class:`core.data.lazy.LazyImages` (image folders) hash alike when
their RGB pixels are equal, so a folder can be checked against a world split too. Exact pixels only: a
re-encoded, resized or re-augmented copy is not found.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.data.base import LabeledImages

log = logging.getLogger(__name__)
_DIGEST = 16  # bytes of blake2b: a chance collision among 10^9 images is about 1e-21


def _rgb(image: object) -> np.ndarray:
    """One image as an (H, W, 3) uint8 array; ValueError for anything else."""
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        image = image.convert("RGB") if image.mode != "RGB" else image
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"an image must be uint8 (H, W, 3) or a PIL image, got {array.dtype} {array.shape}")
    return array


def image_hashes(images: np.ndarray | Sequence | LabeledImages) -> list[bytes]:
    """One digest per image of its height, width and RGB pixels, in order. ``images``: an (N, H, W, 3) uint8
    array, a sequence of PIL images or arrays, or a LabeledImages (its images)."""
    if isinstance(images, LabeledImages):
        images = images.images
    if isinstance(images, np.ndarray) and images.ndim != 4:
        raise ValueError(f"an image array must have shape (N, H, W, 3), got {images.shape}")
    out = []
    for image in images:
        array = np.ascontiguousarray(_rgb(image))
        digest = hashlib.blake2b(f"{array.shape[0]}x{array.shape[1]}|".encode(), digest_size=_DIGEST)
        digest.update(array.tobytes())
        out.append(digest.digest())
    return out


@dataclass(frozen=True)
class OverlapReport:
    """sizes: set name -> images; within: set name -> images repeating an earlier image of that set;
    across: (first, second) -> images of ``second`` whose pixels occur in ``first`` (pairs in the order the
    sets were given; only pairs that share images)."""

    sizes: dict[str, int]
    within: dict[str, int]
    across: dict[tuple[str, str], int]

    @property
    def clean(self) -> bool:
        """No set repeats an image and no two sets share one."""
        return not any(self.within.values()) and not self.across

    def lines(self) -> list[str]:
        """The report as text: a count of sets and images, one line per set that repeats an image and per
        pair of sets that share images, then a verdict."""
        out = [f"{len(self.sizes)} image set(s), {sum(self.sizes.values())} images"]
        out += [f"{name}: {n} of its {self.sizes[name]} images repeat an earlier one of {name}"
                for name, n in self.within.items() if n]
        out += [f"{b} in {a}: {n} of the {self.sizes[b]} images of {b} are also in {a}"
                for (a, b), n in self.across.items()]
        out.append("no exact duplicate within or across the sets" if self.clean else
                   f"{sum(self.within.values())} repeated image(s) within sets, {len(self.across)} overlapping "
                   "pair(s) of sets")
        return out


def overlaps_of_hashes(hashes: Mapping[str, Iterable[bytes]]) -> OverlapReport:
    """:func:`split_overlaps` on digests already computed (:func:`image_hashes`), e.g. to reuse one set's
    digests against many others."""
    if not isinstance(hashes, Mapping) or not hashes:
        raise ValueError("give at least one named image set")
    for name, digests in hashes.items():
        if isinstance(digests, (str, bytes)) or not isinstance(digests, Iterable):
            raise ValueError(f"{name!r}: give its digests as a list of bytes (image_hashes), "
                             f"got {type(digests).__name__}")
    counted = {name: Counter(digests) for name, digests in hashes.items()}
    sizes = {name: sum(c.values()) for name, c in counted.items()}
    within = {name: sizes[name] - len(c) for name, c in counted.items()}
    holders: dict[bytes, list[str]] = {}  # digest -> the sets holding it, in the order the sets were given
    for name, c in counted.items():
        for digest in c:
            holders.setdefault(digest, []).append(name)
    across: dict[tuple[str, str], int] = {}
    for digest, names in holders.items():
        for a, b in itertools.combinations(names, 2):
            across[(a, b)] = across.get((a, b), 0) + counted[b][digest]
    order = {name: i for i, name in enumerate(counted)}
    across = dict(sorted(across.items(), key=lambda kv: (order[kv[0][0]], order[kv[0][1]])))
    return OverlapReport(sizes, within, across)


def split_overlaps(sets: Mapping[str, np.ndarray | Sequence | LabeledImages]) -> OverlapReport:
    """Exact-duplicate counts within each named image set and across every pair of them, e.g.
    ``split_overlaps({"train": load_split(name, "train"), "test": load_split(name, "test")})``.
    ValueError for no sets or an entry that is not images."""
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError("give at least one named image set")
    report = overlaps_of_hashes({name: image_hashes(images) for name, images in sets.items()})
    if not report.clean:
        log.warning("exact duplicate images: %s", "; ".join(report.lines()[len(report.sizes):]))
    return report
