"""The generated world: captioned pretraining pairs and a suite of downstream tasks.

Seven sub-worlds (object scenes, textures, letters, printed and handwritten digits,
satellite-like land cover, charts) each with its own canvas statistics. Pretraining
captions describe every attribute in varied phrasings, with attribute-specific mention
rates, and contain every word the task prompts use. Tasks draw from the same sub-worlds
but with their own knobs (clutter, occlusion, haze, contrast...), so zero-shot accuracy
spans a range and image-image similarity differs across tasks. Same seed -> same bytes.
"""
from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np

from core.data import world_render as W
from core.data.base import LabeledImages, check_split, is_whole_number
from core.text import did_you_mean

# ----------------------------------------------------------------------------- captions


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith("s") else "s")


def _caption_shapes(a: dict, i: int, rng: np.random.Generator) -> str:
    shape, colour = W.SHAPES[a["shape"][i]], W.COLOURS[a["colour"][i]]
    count, size = a["count"][i], W.SIZES[a["size"][i]]
    words = []
    if rng.random() < 0.7:
        words.append(W.COUNTS[count] if count > 0 or rng.random() < 0.5 else "a")
    elif count > 0:
        words.append("some")
    else:
        words.append("a")
    if rng.random() < 0.5:
        words.append(size)
    if rng.random() < 0.8:
        words.append(colour)
    noun = shape if rng.random() < 0.85 else "shape"
    words.append(_plural(noun) if count > 0 else noun)
    text = " ".join(words)
    if count == 0 and rng.random() < 0.5:
        text += f" on the {W.POSITIONS[a['position'][i]]}"
    if rng.random() < 0.2:
        text += f", {W.COUNTS[count]} {'shape' if count == 0 else 'shapes'}"
    return _pick(rng, ["a photo of {}", "{}", "a picture of {}", "a photo of a shape: {}"]).format(text)


def _caption_textures(a: dict, i: int, rng: np.random.Generator) -> str:
    pattern, colour = W.PATTERNS[a["pattern"][i]], W.COLOURS[a["colour"][i]]
    scale, orient = W.SCALES[a["scale"][i]], W.ORIENTATIONS[a["orientation"][i]]
    words = [w for w, p in ((scale, 0.5), (colour, 0.7)) if rng.random() < p]
    if pattern == "striped" and rng.random() < 0.5:
        return _pick(rng, ["a photo of {} stripes", "{} stripes", "a texture of {} stripes"]).format(
            " ".join(([orient] if rng.random() < 0.8 else []) + words))
    words.append(pattern)
    return _pick(rng, ["a photo of a {} texture", "a {} pattern", "a {} texture"]).format(" ".join(words))


def _caption_letters(a: dict, i: int, rng: np.random.Generator) -> str:
    letter, colour = W.LETTERS[a["letter"][i]], W.COLOURS[a["colour"][i]]
    return _pick(rng, ['a photo of the letter "{l}"', 'the letter "{l}" in {c}', 'a {c} letter "{l}"',
                       "a photo of a letter: {l}"]).format(l=letter, c=colour)


def _caption_printed(a: dict, i: int, rng: np.random.Generator) -> str:
    d = W.DIGITS[a["digit"][i]]
    return _pick(rng, ['a photo of the number: "{d}"', 'a house number "{d}"', "the printed number {d}",
                       'a photo of a number: "{d}"']).format(d=d)


def _caption_handwritten(a: dict, i: int, rng: np.random.Generator) -> str:
    d = W.DIGITS[a["digit"][i]]
    return _pick(rng, ['a photo of the number: "{d}"', 'a handwritten number "{d}"',
                       "the number {d} written by hand", 'a photo of a handwritten number: "{d}"']).format(d=d)


def _caption_land(a: dict, i: int, rng: np.random.Generator) -> str:
    land = W.LANDS[a["land"][i]]
    return _pick(rng, ["a centered satellite photo of a {}", "satellite imagery of a {}",
                       "a satellite photo of a {}", "an aerial view of a {}"]).format(land)


def _caption_charts(a: dict, i: int, rng: np.random.Generator) -> str:
    kind = W.CHARTS[a["chart"][i]]
    text = f"a photo of a {kind}" if rng.random() < 0.5 else f"a {kind}"
    if kind != "pie chart" and rng.random() < 0.7:
        text += f" going {W.TRENDS[a['trend'][i]]}"
    if kind == "bar chart" and rng.random() < 0.4:
        text += f" with {W.BAR_COUNTS[a['bars'][i]]} bars"
    if kind != "bar chart" and rng.random() < 0.1:
        text = "a photo of a chart" + text[text.find(" going"):] if " going" in text else "a photo of a chart"
    return text


@dataclass(frozen=True)
class Family:
    """One sub-world: its renderer, its caption writer, its share of pretraining data."""

    name: str
    render: Callable
    caption: Callable
    share: float
    pretrain_knobs: Callable[[np.random.Generator], dict] = lambda rng: {}


FAMILIES: tuple[Family, ...] = (
    Family("shapes", W.render_shapes, _caption_shapes, 0.26,
           lambda rng: {"clutter": float(rng.uniform(0, 0.4))}),
    Family("textures", W.render_textures, _caption_textures, 0.16),
    Family("letters", W.render_letters, _caption_letters, 0.12),
    Family("printed", W.render_printed_digits, _caption_printed, 0.10),
    Family("handwritten", W.render_handwritten, _caption_handwritten, 0.10, lambda rng: {"pool": "pretrain"}),
    Family("land", W.render_land, _caption_land, 0.13, lambda rng: {"haze": float(rng.uniform(0, 0.25))}),
    Family("charts", W.render_charts, _caption_charts, 0.13),
)


def check_batch_args(seed: int, step: int, batch_size: int) -> None:
    """ValueError unless seed and step are non-negative whole numbers and batch_size a positive one (the
    pretraining batches' arguments; numpy's own errors for them name no argument, or come from deep inside)."""
    for arg, value, least in (("seed", seed, 0), ("step", step, 0), ("batch_size", batch_size, 1)):
        if not is_whole_number(value, least):
            raise ValueError(f"{arg} must be a whole number of at least {least}, got {value!r}")


def pretraining_batch(seed: int, step: int, batch_size: int) -> tuple[np.ndarray, list[str]]:
    """One batch of (images (B, 32, 32, 3) uint8, captions), deterministic in (seed, step). ValueError for a
    negative or fractional seed or step, or a batch_size below 1."""
    check_batch_args(seed, step, batch_size)
    rng = np.random.default_rng([seed, step])
    shares = np.array([f.share for f in FAMILIES])
    counts = rng.multinomial(batch_size, shares / shares.sum())
    images, captions = [], []
    for fam, n in zip(FAMILIES, counts, strict=True):
        if n == 0:
            continue
        im, attrs = fam.render(rng, int(n), **fam.pretrain_knobs(rng))
        images.append(im)
        captions.extend(fam.caption(attrs, i, rng) for i in range(int(n)))
    order = rng.permutation(batch_size)
    stacked = np.concatenate(images)[order]
    return stacked, [captions[i] for i in order]


def vocabulary_words() -> set[str]:
    """Every lower-case word that pretraining captions can contain (sampled generously)."""
    words: set[str] = set()
    for step in range(40):
        _, caps = pretraining_batch(12345, step, 256)
        for c in caps:
            words.update(c.lower().replace('"', " ").replace(":", " ").replace(",", " ").split())
    return words

# ----------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class WorldTask:
    """A downstream classification task drawn from one sub-world (or several, for scene-kind)."""

    name: str
    family: str
    attr: str
    class_names: tuple[str, ...]
    template: str
    knobs: dict = field(default_factory=dict)
    keep: Callable[[dict], np.ndarray] | None = None  # row filter on attributes
    n_train: int = 1500
    n_test: int = 600
    description: str = ""

    def __post_init__(self) -> None:
        """ValueError naming what a new task gets wrong (a family 'shape' for 'shapes' raised a bare StopIteration
        when the task was first drawn)."""
        families = [f.name for f in FAMILIES]
        if self.family != "*" and self.family not in families:
            raise ValueError(f"world task {self.name!r}: unknown family {self.family!r}; use one of {families} "
                             "or '*' (every family)")
        if "{c}" not in self.template:
            raise ValueError(f"world task {self.name!r}: its template {self.template!r} has no '{{c}}' for the class name")
        if len(self.class_names) < 2:
            raise ValueError(f"world task {self.name!r} needs at least 2 class names, got {list(self.class_names)!r}")
        for n in (self.n_train, self.n_test):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f"world task {self.name!r}: n_train and n_test must be positive integers, got {n!r}")
        # a misspelt knob failed when the task was first drawn, with the renderer's TypeError
        params = inspect.signature(_fam(self.family).render).parameters if self.family != "*" else {}
        takes = [p for p in params if p not in ("rng", "n")]
        open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for knob in self.knobs if params and not open_ended else ():
            if knob not in takes:
                raise ValueError(f"world task {self.name!r}: family {self.family!r} has no knob {knob!r}"
                                 f"{did_you_mean(knob, takes)}; its renderer takes {', '.join(takes)}")


def _fam(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


TASKS: tuple[WorldTask, ...] = (
    WorldTask("shape-kind", "shapes", "shape", W.SHAPES, "a photo of a {c}", {"clutter": 0.3},
              description="which shape (1-4 copies, light clutter)"),
    WorldTask("shape-kind-cluttered", "shapes", "shape", W.SHAPES, "a photo of a {c}",
              {"clutter": 2.5, "occlusion": 0.9, "noise": 28.0}, description="shapes under heavy clutter and occluders"),
    WorldTask("shape-count", "shapes", "count", W.COUNTS, "a photo of {c} shapes", {"clutter": 0.6},
              description="how many objects"),
    WorldTask("shape-size", "shapes", "size", W.SIZES, "a photo of a {c} shape",
              {"single": True, "noise": 30.0, "clutter": 1.0, "small_r": (5.0, 7.5), "large_r": (6.5, 9.0)},
              description="small or large single object"),
    WorldTask("shape-position", "shapes", "position", W.POSITIONS, "a photo of a shape on the {c}",
              {"single": True, "clutter": 0.8}, description="where a single object sits"),
    WorldTask("texture-pattern", "textures", "pattern", W.PATTERNS, "a photo of a {c} texture",
              {"contrast": 0.45, "noise": 18.0}, description="pattern type, low contrast"),
    WorldTask("stripe-orientation", "textures", "orientation", W.ORIENTATIONS, "a photo of {c} stripes",
              {"patterns": (0,), "noise": 45.0, "contrast": 0.3}, description="direction of stripes"),
    WorldTask("texture-scale", "textures", "scale", W.SCALES, "a photo of a {c} texture",
              {"noise": 35.0, "contrast": 0.4}, description="fine or coarse pattern, low contrast"),
    WorldTask("letters", "letters", "letter", W.LETTERS, 'a photo of the letter "{c}"',
              {"noise": 22.0, "scale": (0.6, 0.9)}, description="26 letters, smaller and noisier than in pretraining"),
    WorldTask("handwritten-digits", "handwritten", "digit", W.DIGITS, 'a photo of the number: "{c}"',
              {"pool": "task", "noise": 50.0}, description="real handwritten digits never seen in pretraining"),
    WorldTask("land-cover", "land", "land", W.LANDS, "a centered satellite photo of a {c}",
              {"haze": 0.5, "noise": 30.0}, description="7 land-cover types, light haze"),
    WorldTask("land-cover-hazy", "land", "land", W.LANDS, "a centered satellite photo of a {c}",
              {"haze": 0.85, "noise": 12.0}, description="land cover under heavy haze"),
    WorldTask("chart-type", "charts", "chart", W.CHARTS, "a photo of a {c}",
              {"noise": 40.0, "contrast": 0.5}, description="which kind of chart, faded and noisy"),
    WorldTask("chart-trend", "charts", "trend", W.TRENDS, "a photo of a chart going {c}", {"noise": 20.0, "slope": 0.12},
              keep=lambda a: a["chart"] != 2, description="rising or falling (pie charts excluded)"),
    WorldTask("bar-count", "charts", "bars", W.BAR_COUNTS, "a photo of a bar chart with {c} bars",
              {"noise": 40.0, "contrast": 0.45}, keep=lambda a: a["chart"] == 0, description="how many bars, faded"),
    # --- held-out reference panel: never fine-tuned on, used for out-of-domain evaluation
    WorldTask("scene-kind", "*", "family", ("shape", "texture", "letter", "number", "satellite photo", "chart"),
              "a photo of a {c}", n_train=600, n_test=600, description="which sub-world (OOD panel)"),
    WorldTask("shape-colour", "shapes", "colour", W.COLOURS, "a photo of a {c} shape", {"clutter": 0.3},
              n_train=600, n_test=600, description="object colour (OOD panel)"),
    WorldTask("texture-colour", "textures", "colour", W.COLOURS, "a photo of a {c} texture", {},
              n_train=600, n_test=600, description="texture colour (OOD panel)"),
    WorldTask("printed-digits", "printed", "digit", W.DIGITS, 'a photo of the number: "{c}"', {},
              n_train=600, n_test=600, description="house-number digits (OOD panel)"),
)

OOD_PANEL: tuple[str, ...] = ("scene-kind", "shape-colour", "texture-colour", "printed-digits")
FINETUNE_TASKS: tuple[str, ...] = tuple(t.name for t in TASKS if t.name not in OOD_PANEL)
_BY_NAME = {t.name: t for t in TASKS}
# scene-kind: family index -> class index (both digit sub-worlds are "number")
_SCENE_CLASS = {"shapes": 0, "textures": 1, "letters": 2, "printed": 3, "handwritten": 3, "land": 4, "charts": 5}


def get_world_task(name: str) -> WorldTask:
    """The world v1 task called ``name``; ValueError naming the known tasks for an unknown name."""
    if not isinstance(name, str) or name not in _BY_NAME:
        raise ValueError(f"unknown world task {name!r}{did_you_mean(name, _BY_NAME)}; known: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]


def _task_seed(name: str, split: str) -> int:
    return zlib.crc32(f"{name}/{split}".encode())


def _render_task(task: WorldTask, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    if task.family == "*":
        fams = rng.integers(0, len(FAMILIES), n)
        images = np.empty((n, W.SIZE, W.SIZE, 3), np.uint8)
        for k, fam in enumerate(FAMILIES):
            rows = np.flatnonzero(fams == k)
            if len(rows):
                images[rows] = fam.render(rng, len(rows), **fam.pretrain_knobs(rng))[0]
        return images, np.array([_SCENE_CLASS[FAMILIES[k].name] for k in fams], np.int64)
    fam = _fam(task.family)
    got_images, got_labels, have, empty = [], [], 0, 0
    while have < n:  # rejection sampling for filtered tasks; one pass for the others
        images, attrs = fam.render(rng, max(n - have, 64) * (2 if task.keep else 1), **task.knobs)
        if task.attr not in attrs:
            raise ValueError(f"world task {task.name!r}: family {task.family!r} has no attribute {task.attr!r}; "
                             f"it draws {sorted(attrs)}")
        rows = np.flatnonzero(task.keep(attrs)) if task.keep else np.arange(len(images))
        empty = 0 if len(rows) else empty + 1
        if empty == 20:  # a filter that keeps nothing looped for ever
            raise ValueError(f"world task {task.name!r}: its keep filter kept none of 20 batches of rendered images")
        got_images.append(images[rows])
        got_labels.append(attrs[task.attr][rows])
        have += len(rows)
    return np.concatenate(got_images)[:n], np.concatenate(got_labels)[:n].astype(np.int64)


def load_world_split(name: str, split: str) -> LabeledImages:
    """The 'train' or 'test' split of a world task, generated deterministically (cached per process: the
    image array is read-only and shared, the labels, class-name list and meta dict each caller's own; at most every
    task's two splits (world v1's 19 tasks: 38 entries), as a grid worker keeps them)."""
    check_split(split)  # before the cache sees it
    get_world_task(name)
    return _generate_split(name, split).handed_out()


@lru_cache(maxsize=64)
def _generate_split(name: str, split: str) -> LabeledImages:
    task = get_world_task(name)
    rng = np.random.default_rng(_task_seed(name, split))
    n = task.n_train if split == "train" else task.n_test
    images, labels = _render_task(task, rng, n)
    images.setflags(write=False)
    return LabeledImages(images, labels, list(task.class_names), task.template, name,
                         {"source": "world", "split": split, "family": task.family})


load_world_split.cache_clear = _generate_split.cache_clear  # type: ignore[attr-defined]  # drop the cached splits
