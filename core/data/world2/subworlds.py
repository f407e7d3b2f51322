"""World v2's ten sub-worlds: renderer, attribute vocabularies, and caption grammar.

Each attribute of each sub-world is named in a pretraining caption at its own rate, drawn once
(seeded, :data:`CAPTION_RATE_SEED`) from {0.9, 0.5, 0.2, 0.05}: some attributes are almost always
described, others almost never, as on the web. The draw is fixed for the world, so every model
pretrained on world v2 sees the same caption habits; only the share of each sub-world changes
between models (``coverage.py``).

Captions are built from the words of the included attributes by a per-sub-world grammar whose
phrasings are exactly the ones the task prompts use (``suites.py``), so a prompt never needs a
word the grammar cannot produce.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.data import world_render as W
from core.data.world2 import render as R

CAPTION_RATES = (0.9, 0.5, 0.2, 0.05)
CAPTION_RATE_SEED = 0
TAG_RATE = 0.1  # share of captions that end with one random, image-unrelated tag word (web-like noise)

Words = dict[str, "str | None"]  # attribute -> its word in this caption, or None when not mentioned


def _count_noun(count: str | None, noun: str) -> str:
    if count is None:
        return noun + "s"
    return f"{count} {noun}" if count == "one" else f"{count} {noun}s"


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _shapes(w: Words) -> str:
    noun = w["shape"] or "shape"
    body = _join(w["size"], w["colour"])
    if w["count"] in (None, "one"):
        text = f"a photo of a {_join(body, noun)}" if w["count"] is None else f"a photo of one {_join(body, noun)}"
        return text + (f" on the {w['position']}" if w["position"] else "")
    return f"a photo of {w['count']} {_join(body, noun)}s"


def _textures(w: Words) -> str:
    text = f"a photo of a {_join(w['scale'], w['colour'], w['pattern'])} texture"
    return text + (f" with {w['orientation']} lines" if w["orientation"] else "")


def _letters(w: Words) -> str:
    if w["letter"] is None:
        return f"a photo of a {_join(w['colour'], 'letter')}"
    return f'a photo of the {_join(w["colour"], "letter")} "{w["letter"]}"'


def _printed(w: Words) -> str:
    return f'a photo of the number: "{w["digit"]}"' if w["digit"] else "a photo of a house number"


def _handwritten(w: Words) -> str:
    return f'a photo of the handwritten number: "{w["digit"]}"' if w["digit"] else "a photo of a handwritten number"


def _land(w: Words) -> str:
    text = f"a satellite photo of a {w['land']}" if w["land"] else "a satellite photo"
    return text + (f" on a {w['weather']} day" if w["weather"] else "")


def _charts(w: Words, kind: str) -> str:
    text = f"a photo of a {_join(w['colour'], w['chart'] or 'chart')}"
    if w["trend"] and kind != "pie chart":
        text += f" going {w['trend']}"
    if w["bars"] and kind == "bar chart":
        text += f" with {w['bars']} bars"
    return text


def _signs(w: Words) -> str:
    text = f"a photo of a {_join(w['colour'], w['shape'], 'sign')}"
    return text + (f" with an arrow pointing {w['arrow']}" if w["arrow"] else "")


def _cells(w: Words) -> str:
    return f"a microscope image of {_count_noun(w['count'], _join(w['size'], w['colour'], w['kind'], 'cell'))}"


def _sketches(w: Words) -> str:
    return f"a {_join(w['stroke'], w['colour'], 'sketch')}" + (f" of a {w['kind']}" if w["kind"] else "")


@dataclass(frozen=True)
class SubWorld:
    """One sub-world: how to render it, its attributes' vocabularies, and its caption grammar.

    attributes: attribute -> vocabulary (index i of the renderer's attr array is word i).
    caption: grammar over the words of the mentioned attributes (None = not mentioned); charts also
    receive the chart kind, because trends and bar counts only apply to some kinds.
    """

    name: str
    render: Callable
    attributes: dict[str, tuple[str, ...]]
    caption: Callable
    pretrain_knobs: Callable[[np.random.Generator], dict] = field(default=lambda rng: {})
    task_knobs: dict = field(default_factory=dict)  # knobs every task of the sub-world uses


SUBWORLDS: tuple[SubWorld, ...] = (
    SubWorld("shapes", W.render_shapes, {"shape": W.SHAPES, "colour": W.COLOURS, "size": W.SIZES,
                                          "count": W.COUNTS, "position": W.POSITIONS}, _shapes,
             lambda rng: {"clutter": float(rng.uniform(0, 0.4))}, {"clutter": 0.2}),
    SubWorld("textures", W.render_textures, {"pattern": W.PATTERNS, "colour": W.COLOURS, "scale": W.SCALES,
                                              "orientation": W.ORIENTATIONS}, _textures),
    SubWorld("letters", W.render_letters, {"letter": W.LETTERS, "colour": W.COLOURS}, _letters),
    SubWorld("printed", W.render_printed_digits, {"digit": W.DIGITS}, _printed),
    SubWorld("handwritten", W.render_handwritten, {"digit": W.DIGITS}, _handwritten,
             lambda rng: {"pool": "pretrain"}, {"pool": "task"}),
    SubWorld("land", R.render_land_weather, {"land": W.LANDS, "weather": R.WEATHER}, _land),
    SubWorld("charts", W.render_charts, {"chart": W.CHARTS, "trend": W.TRENDS, "bars": W.BAR_COUNTS,
                                          "colour": W.COLOURS}, _charts),
    SubWorld("signs", R.render_signs, {"shape": R.SIGN_SHAPES, "colour": W.COLOURS, "arrow": R.ARROWS}, _signs),
    SubWorld("cells", R.render_cells, {"kind": R.CELL_KINDS, "count": R.CELL_COUNTS, "size": R.CELL_SIZES,
                                        "colour": W.COLOURS}, _cells),
    SubWorld("sketches", R.render_sketches, {"kind": R.SKETCHES, "stroke": R.STROKES, "colour": W.COLOURS},
             _sketches),
)
BY_NAME: dict[str, SubWorld] = {s.name: s for s in SUBWORLDS}


def caption_rates(seed: int = CAPTION_RATE_SEED) -> dict[tuple[str, str], float]:
    """(sub-world, attribute) -> the rate at which captions mention it, drawn once from CAPTION_RATES."""
    rng = np.random.default_rng(seed)
    return {(s.name, a): float(rng.choice(CAPTION_RATES)) for s in SUBWORLDS for a in s.attributes}


def write_captions(sub: SubWorld, attrs: dict[str, np.ndarray], rng: np.random.Generator,
                   rates: dict[tuple[str, str], float], tag_pool: tuple[str, ...]) -> list[str]:
    """One caption per rendered image of ``sub``; attribute a is mentioned with probability rates[(sub, a)].

    A share TAG_RATE of captions ends with ", tagged <word>", the word drawn uniformly from ``tag_pool``
    whatever the image shows: this is how every prompt word occurs in pretraining text even when its
    sub-world is absent from pretraining images (words without visual grounding, as on the web).
    """
    n = len(next(iter(attrs.values())))
    mention = {a: rng.random(n) < rates[(sub.name, a)] for a in sub.attributes}
    tags = rng.random(n) < TAG_RATE
    tag_words = rng.integers(0, len(tag_pool), n)
    captions = []
    for i in range(n):
        words = {a: (vocab[attrs[a][i]] if mention[a][i] else None) for a, vocab in sub.attributes.items()}
        if sub.name == "shapes" and attrs["count"][i] > 0:
            words["position"] = None  # several objects take quadrants: no single position to name
        text = sub.caption(words, W.CHARTS[attrs["chart"][i]]) if sub.name == "charts" else sub.caption(words)
        captions.append(text + (f", tagged {tag_pool[tag_words[i]]}" if tags[i] else ""))
    return captions
