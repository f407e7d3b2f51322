"""World v2's task suite: 40 fine-tuning tasks (4 per sub-world) and a fixed out-of-domain panel.

Every sub-world has a 2-class task, a 4-7-class task and a task of 10 or more classes (compound
classes such as "red circle" where one attribute has too few values), so class count is balanced
across coverage levels. Tasks render with the pretraining knobs (no corruption pretraining did not
see), and prompts are phrased exactly as the caption grammar phrases them.

The OOD panel holds one extra task of each of the six most common sub-worlds of model A's mix
(``long_tail(A_PERMUTATION_SEED)``), derived from the seeded permutation, never picked by hand.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from core.data.base import LabeledImages, check_split
from core.data.world2.coverage import long_tail
from core.data.world2.subworlds import BY_NAME
from core.text import did_you_mean

PREFIX = "w2-"
A_PERMUTATION_SEED = 0  # model A (and B, C's recipe); model D's mix is long-tail-p1 (jobs.pretrain.RECIPES)
N_PANEL = 6


@dataclass(frozen=True)
class World2Task:
    """A classification task over one sub-world.

    attrs: the attribute(s) that define a class; values: for each attribute, the vocabulary words kept
    (rows with other values are not drawn). With two attributes the classes are their product, named
    ``f"{v1} {v2}"`` (or by ``joiner``), labelled in row-major order.
    """

    name: str
    subworld: str
    attrs: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    template: str
    knobs: dict = field(default_factory=dict)
    keep: Callable[[dict], np.ndarray] | None = None
    joiner: str = "{} {}"
    class_words: tuple[str, ...] | None = None  # display names when they differ from the vocabulary words
    n_train: int = 2000
    n_test: int = 800

    @property
    def class_names(self) -> tuple[str, ...]:
        if self.class_words:
            return self.class_words
        return tuple(self.joiner.format(*combo) if len(combo) > 1 else combo[0]
                     for combo in itertools.product(*self.values))


def _t(name: str, sub: str, attr: str | tuple[str, ...], template: str, values=None, **kw) -> World2Task:
    attrs = (attr,) if isinstance(attr, str) else attr
    vocab = BY_NAME[sub].attributes
    vals = tuple(tuple(v) if v is not None else vocab[a]
                 for a, v in zip(attrs, values or (None,) * len(attrs), strict=True))
    return World2Task(PREFIX + name, sub, attrs, vals, template, **kw)


_SINGLE = {"single": True}
_NOT_PIE = lambda a: a["chart"] != 2  # noqa: E731  (trends are drawn on bars, lines and scatters only)
_BARS_ONLY = lambda a: a["chart"] == 0  # noqa: E731
_COUNTED_SHAPES = ("one shape", "two shapes", "three shapes", "four shapes")
_COUNTED_CELLS = ("one cell", "two cells", "three cells", "four cells", "five cells", "six cells")

FINETUNE: tuple[World2Task, ...] = (
    _t("shape-size", "shapes", "size", "a photo of a {c} shape", knobs=_SINGLE),
    _t("shape-kind", "shapes", "shape", "a photo of a {c}"),
    _t("shape-colour-kind", "shapes", ("colour", "shape"), "a photo of a {c}", (("red", "blue"), None)),
    _t("shape-count", "shapes", "count", "a photo of {c}", class_words=_COUNTED_SHAPES),
    _t("texture-scale", "textures", "scale", "a photo of a {c} texture"),
    _t("texture-pattern", "textures", "pattern", "a photo of a {c} texture"),
    _t("texture-scale-pattern", "textures", ("scale", "pattern"), "a photo of a {c} texture"),
    _t("texture-orientation", "textures", "orientation", "a photo of a texture with {c} lines"),
    _t("letters", "letters", "letter", 'a photo of the letter "{c}"'),
    _t("letters-a-e", "letters", "letter", 'a photo of the letter "{c}"', (tuple("abcde"),)),
    _t("letters-k-o", "letters", "letter", 'a photo of the letter "{c}"', (tuple("klmno"),)),
    _t("letters-x-o", "letters", "letter", 'a photo of the letter "{c}"', (("x", "o"),)),
    _t("printed-digits", "printed", "digit", 'a photo of the number: "{c}"'),
    _t("printed-0-4", "printed", "digit", 'a photo of the number: "{c}"', (tuple("01234"),)),
    _t("printed-5-9", "printed", "digit", 'a photo of the number: "{c}"', (tuple("56789"),)),
    _t("printed-0-1", "printed", "digit", 'a photo of the number: "{c}"', (("0", "1"),)),
    _t("handwritten-digits", "handwritten", "digit", 'a photo of the handwritten number: "{c}"'),
    _t("handwritten-0-4", "handwritten", "digit", 'a photo of the handwritten number: "{c}"', (tuple("01234"),)),
    _t("handwritten-5-9", "handwritten", "digit", 'a photo of the handwritten number: "{c}"', (tuple("56789"),)),
    _t("handwritten-0-1", "handwritten", "digit", 'a photo of the handwritten number: "{c}"', (("0", "1"),)),
    _t("land-cover", "land", "land", "a satellite photo of a {c}"),
    _t("land-weather", "land", ("land", "weather"), "a satellite photo of a {c}", joiner="{} on a {} day"),
    _t("land-water", "land", "land", "a satellite photo of a {c}", (("lake", "river"),)),
    _t("land-dry", "land", "land", "a satellite photo of a {c}",
       (("forest", "desert", "farmland", "city", "snowfield"),)),
    _t("chart-trend", "charts", "trend", "a photo of a chart going {c}", keep=_NOT_PIE),
    _t("chart-kind", "charts", "chart", "a photo of a {c}"),
    _t("bar-count", "charts", "bars", "a photo of a bar chart with {c} bars", keep=_BARS_ONLY),
    _t("chart-colour-kind", "charts", ("colour", "chart"), "a photo of a {c}", (("red", "green", "blue"), None)),
    _t("sign-shape", "signs", "shape", "a photo of a {c} sign"),
    _t("sign-arrow", "signs", "arrow", "a photo of a sign with an arrow pointing {c}"),
    _t("sign-colour-shape", "signs", ("colour", "shape"), "a photo of a {c} sign", (("red", "green", "blue"), None)),
    _t("sign-left-right", "signs", "arrow", "a photo of a sign with an arrow pointing {c}", (("left", "right"),)),
    _t("cell-size", "cells", "size", "a microscope image of {c} cells"),
    _t("cell-kind", "cells", "kind", "a microscope image of {c} cells"),
    _t("cell-count", "cells", "count", "a microscope image of {c}", class_words=_COUNTED_CELLS),
    _t("cell-colour-kind", "cells", ("colour", "kind"), "a microscope image of {c} cells",
       (("red", "green", "blue"), None)),
    _t("sketch-kind", "sketches", "kind", "a sketch of a {c}"),
    _t("sketch-stroke", "sketches", "stroke", "a {c} sketch"),
    _t("sketch-objects", "sketches", "kind", "a sketch of a {c}", (("star", "house", "tree", "moon", "heart"),)),
    _t("sketch-shapes", "sketches", "kind", "a sketch of a {c}", (("circle", "square", "triangle", "diamond"),)),
)

_PANEL_CANDIDATES: dict[str, World2Task] = {t.subworld: t for t in (
    _t("shape-position", "shapes", "position", "a photo of a shape on the {c}", knobs=_SINGLE),
    _t("texture-colour", "textures", "colour", "a photo of a {c} texture"),
    _t("letter-colour", "letters", "colour", "a photo of the {c} letter"),
    _t("printed-3-5-8", "printed", "digit", 'a photo of the number: "{c}"', (("3", "5", "8"),)),
    _t("handwritten-3-5-8", "handwritten", "digit", 'a photo of the handwritten number: "{c}"', (("3", "5", "8"),)),
    _t("land-clear-hazy", "land", "weather", "a satellite photo on a {c} day"),
    _t("chart-colour", "charts", "colour", "a photo of a {c} chart"),
    _t("sign-colour", "signs", "colour", "a photo of a {c} sign"),
    _t("cell-colour", "cells", "colour", "a microscope image of {c} cells"),
    _t("sketch-colour", "sketches", "colour", "a {c} sketch"),
)}
for _sub, _task in _PANEL_CANDIDATES.items():  # panel tasks hold fewer images: they are only evaluated
    _PANEL_CANDIDATES[_sub] = World2Task(**{**_task.__dict__, "n_train": 600, "n_test": 600})

OOD_PANEL: tuple[World2Task, ...] = tuple(
    _PANEL_CANDIDATES[s] for s in long_tail(A_PERMUTATION_SEED).by_share()[:N_PANEL])
TASKS: tuple[World2Task, ...] = FINETUNE + OOD_PANEL
FINETUNE_TASKS: tuple[str, ...] = tuple(t.name for t in FINETUNE)
OOD_PANEL_TASKS: tuple[str, ...] = tuple(t.name for t in OOD_PANEL)
_BY_NAME = {t.name: t for t in TASKS}


def prompt_words(text: str) -> list[str]:
    """The lower-case words of a prompt or caption, split at white space once the marks ``"``, ``:`` and ``,`` are
    dropped, the only punctuation the world's prompts and captions use (a '.' or '-' would stay in its word;
    how the tests compare them)."""
    for mark in '":,':
        text = text.replace(mark, " ")
    return text.lower().split()


@lru_cache(maxsize=1)
def tag_vocabulary() -> tuple[str, ...]:
    """Every word of every prompt of every task, panel candidates included (sorted): the tag-word pool."""
    tasks = FINETUNE + tuple(_PANEL_CANDIDATES.values())
    return tuple(sorted({w for t in tasks for c in t.class_names for w in prompt_words(t.template.format(c=c))}))


def get_task(name: str) -> World2Task:
    """The world-v2 task called ``name``; ValueError naming the known tasks for an unknown name."""
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"unknown world-v2 task {name!r}{did_you_mean(name, _BY_NAME)}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def _labels_of(task: World2Task, attrs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(rows kept, their class index) for one rendered batch."""
    sub = BY_NAME[task.subworld]
    keep = task.keep(attrs) if task.keep else np.ones(len(attrs[task.attrs[0]]), bool)
    label = np.zeros(len(keep), np.int64)
    for attr, kept_words in zip(task.attrs, task.values, strict=True):
        vocab = sub.attributes[attr]
        lookup = np.full(len(vocab), -1)
        lookup[[vocab.index(w) for w in kept_words]] = np.arange(len(kept_words))
        pos = lookup[attrs[attr]]
        keep &= pos >= 0
        label = label * len(kept_words) + np.maximum(pos, 0)
    rows = np.flatnonzero(keep)
    return rows, label[rows]


def load_split(name: str, split: str) -> LabeledImages:
    """The 'train' or 'test' split of a world-v2 task, generated deterministically (cached per process: the
    image array is read-only and shared, the labels, class-name list and meta dict each caller's own; at most every
    task's two splits (world v2's 46 tasks: 92 entries), as a grid worker keeps them)."""
    check_split(split)  # before the cache sees it
    get_task(name)
    return _generate_split(name, split).handed_out()


@lru_cache(maxsize=128)
def _generate_split(name: str, split: str) -> LabeledImages:
    task = get_task(name)
    sub = BY_NAME[task.subworld]
    rng = np.random.default_rng(zlib.crc32(f"world-v2/{name}/{split}".encode()))
    n = task.n_train if split == "train" else task.n_test
    got_images, got_labels, have = [], [], 0
    while have < n:
        images, attrs = sub.render(rng, max(2 * (n - have), 256), **{**sub.task_knobs, **task.knobs})
        rows, labels = _labels_of(task, attrs)
        got_images.append(images[rows])
        got_labels.append(labels)
        have += len(rows)
    images = np.concatenate(got_images)[:n]
    images.setflags(write=False)
    return LabeledImages(images, np.concatenate(got_labels)[:n], list(task.class_names), task.template, name,
                         {"source": "world-v2", "split": split, "family": task.subworld})


load_split.cache_clear = _generate_split.cache_clear  # type: ignore[attr-defined]  # drop the cached splits
