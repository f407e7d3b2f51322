"""The one in-memory form every dataset takes: labelled images plus class names and a prompt."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from core.data.lazy import LazyImages


def is_whole_number(value: object, minimum: int) -> bool:
    """Whether ``value`` is an integer (numpy's included; a bool is not) of at least ``minimum``."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral) and value >= minimum


def check_split(split: object) -> str:
    """``split`` when it is 'train' or 'test', else ValueError (a non-string is refused before any cache
    sees it: a list is unhashable)."""
    if not isinstance(split, str) or split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def check_prompt_template(template: object) -> str:
    """``template`` when it makes a prompt of every class name (``template.format(c=name)``): a string with a ``{c}``
    slot and no other one. ValueError otherwise, naming it: a ``{size}`` or ``{}`` beside ``{c}`` passed a check for
    '{c}' alone and failed later, when the prompts were made, with a bare KeyError('size') or IndexError."""
    if not isinstance(template, str) or "{c}" not in template:
        raise ValueError(f"template must contain '{{c}}', got {template!r}")
    try:
        template.format(c="x")
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ValueError(f"template {template!r} has braces other than its '{{c}}' slot ({type(exc).__name__}: "
                         f"{exc}); '{{c}}' is the only slot, a literal brace is written '{{{{' or '}}}}'") from None
    return template


def check_not_one_string(class_names: object) -> None:
    """ValueError when ``class_names`` is one string (or bytes) rather than a list of names: ``list('cat dog')``, and
    every loop over it, read it as one class per character (7 here) without a word."""
    if isinstance(class_names, (str, bytes)):
        raise ValueError(f"class_names must be a list of names, got one string {class_names!r}")


@dataclass
class LabeledImages:
    """A labelled image set.

    images: either a uint8 array of shape (N, H, W, 3) (the generated world, fast path)
        or a sequence of N PIL images (real datasets, uploads; any sizes): a list, or a
        :class:`core.data.lazy.LazyImages` that decodes each image when it is read (image folders).
    labels: int64 array of shape (N,), values in 0..len(class_names)-1.
    class_names: the C class names, in label order.
    template: the prompt template with one ``{c}`` slot, e.g. ``"a photo of a {c}"``.
    name: dataset name (for records and cache keys).
    """

    images: np.ndarray | Sequence
    labels: np.ndarray
    class_names: list[str]
    template: str
    name: str = "unnamed"
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        if self.labels.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {self.labels.shape}")
        # int64 as documented: float labels (0.5), bools and text were kept as given, and 0.5 only failed later
        kind = self.labels.dtype.kind
        if kind not in "iuf" or (kind == "f" and not np.all(np.isfinite(self.labels)
                                                           & (self.labels == np.round(self.labels)))):
            raise ValueError(f"labels must be whole numbers, got {self.labels.dtype} labels {self.labels[:5]!r}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"images ({len(self.images)}) and labels ({len(self.labels)}) differ in length")
        if isinstance(self.images, np.ndarray):
            if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
                raise ValueError("an image array must be uint8 of shape (N, H, W, 3), got "
                                 f"{self.images.dtype} {self.images.shape}")
        check_prompt_template(self.template)
        if self.class_names is None:
            raise ValueError("class_names must be a list of names, got None")
        check_not_one_string(self.class_names)
        if len(self.class_names) < 2:
            raise ValueError("a dataset needs at least 2 classes")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.class_names)):
            raise ValueError("labels must lie in 0..len(class_names)-1")
        self.labels = self.labels.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def prompts(self) -> list[str]:
        return [self.template.format(c=c) for c in self.class_names]

    def handed_out(self) -> "LabeledImages":
        """What a per-process cache gives each caller: the same image array (read-only) or
        :class:`core.data.lazy.LazyImages` (read-only), a copy of an image list, its own copy of the labels,
        class-name list and meta dict, so that one caller's edit cannot reach the next."""
        images = self.images if isinstance(self.images, (np.ndarray, LazyImages)) else list(self.images)
        return LabeledImages(images, self.labels.copy(), list(self.class_names), self.template, self.name,
                             dict(self.meta))

    def subset(self, index: np.ndarray) -> "LabeledImages":
        """The rows at ``index`` (same classes, template and name): positions, or a boolean mask of length N."""
        index = np.asarray(index)
        if index.dtype == bool:  # a list of images took True/False as positions 1/0: other images than labels
            if index.shape != self.labels.shape:
                raise ValueError(f"a boolean index must have one entry per image ({len(self)}), got {index.shape}")
            index = np.flatnonzero(index)
        if isinstance(self.images, np.ndarray):
            images = self.images[index]
        elif isinstance(self.images, LazyImages):
            images = self.images.take(index)  # still unread: a subset of a big folder is not decoded whole
        else:
            images = [self.images[i] for i in index]
        return LabeledImages(images, self.labels[index], self.class_names, self.template, self.name, dict(self.meta))
