"""Where a scatter chart writes each point's label: Vega-Lite draws every text mark where it is told, so
19 method names on close points piled up into an unreadable block. Pure functions, no Altair: the chart
builder turns data into pixels (:func:`nice_domain`, :func:`to_pixels`), :func:`place_labels` picks a side
per label or drops it, and the chart writes the choice as per-row columns (align, dx, dy).

Pixels are those of the plot area, origin at its top left, y downward.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

#: Estimated width of one character of a label (px): fontSize 11 in Streamlit's chart font measured 4 to 5.5
#: px a character in Chromium; a wider guess only drops a label, a narrower one could let two touch.
CHAR_PX = 6.0
#: Estimated height of a one-line label (px, fontSize 11).
LINE_PX = 12.0
#: Half the side of the box a point's marker covers (px; a size-170 marker is about 15 px across). No label
#: is placed over another point's marker.
MARKER_PX = 7.0


@dataclass(frozen=True)
class Offset:
    """Where a label goes relative to its point: the text anchor is ``dx``, ``dy`` px away (baseline
    middle) and the text is aligned ``align`` ('left', 'right' or 'center') on that anchor."""
    name: str
    align: str
    dx: float
    dy: float


#: Candidate sides, tried in this order: right, left, above, below, then the four diagonals.
CANDIDATES = (Offset("right", "left", 10, 0), Offset("left", "right", -10, 0),
              Offset("above", "center", 0, -14), Offset("below", "center", 0, 14),
              Offset("above right", "left", 5, -14), Offset("below right", "left", 5, 14),
              Offset("above left", "right", -5, -14), Offset("below left", "right", -5, 14))


def label_size(text: str, char_px: float = CHAR_PX, line_px: float = LINE_PX) -> tuple[float, float]:
    """Estimated (width, height) in px of a one-line label."""
    return len(str(text)) * char_px, line_px


def nice_domain(values: Sequence[float], *, log: bool = False, count: int = 10) -> tuple[float, float]:
    """The axis domain a scale with ``nice`` would draw for ``values`` (finite ones; at least one): on a
    linear axis the data range widened to multiples of a 1, 2 or 5 x 10^k step giving about ``count``
    ticks (d3's rule), on a log axis to whole powers of ten. A single value gets a span around it."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v)) and (not log or v > 0)]
    if not finite:
        raise ValueError("no finite value to span")
    lo, hi = min(finite), max(finite)
    if log:
        lo, hi = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        return 10.0 ** lo, 10.0 ** (hi if hi > lo else lo + 1)
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    previous = None
    for _ in range(10):  # widening can change the step once or twice; d3 stops when it settles
        raw = (hi - lo) / count
        power = math.floor(math.log10(raw))
        error = raw / 10 ** power
        step = (10 if error >= math.sqrt(50) else 5 if error >= math.sqrt(10) else 2 if error >= math.sqrt(2)
                else 1) * 10.0 ** power
        if step == previous:
            break
        lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        previous = step
    return round(lo, 12), round(hi, 12)


def to_pixels(values: Sequence[float], domain: tuple[float, float], length: float, *, log: bool = False,
              downward: bool = False) -> list[float]:
    """Pixel positions of ``values`` on an axis ``length`` px long drawing ``domain``; ``downward`` for a y
    axis (its low end at the bottom, pixel ``length``)."""
    lo, hi = (math.log10(d) for d in domain) if log else domain
    out = []
    for v in values:
        share = ((math.log10(v) if log else float(v)) - lo) / (hi - lo)
        out.append(length * (1 - share) if downward else length * share)
    return out


def _box(x: float, y: float, size: tuple[float, float], offset: Offset) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) of a label of ``size`` written at ``offset`` from the point (x, y)."""
    w, h = size
    ax, ay = x + offset.dx, y + offset.dy
    left = ax if offset.align == "left" else ax - w if offset.align == "right" else ax - w / 2
    return left, left + w, ay - h / 2, ay + h / 2


def _apart(a: tuple, b: tuple) -> bool:
    """Whether two boxes (anchor x, anchor y, left, right, top, bottom) stay apart on this plot and on
    any larger one: on one axis they do not overlap and lie in the order of their anchors (a plot stretched
    by a factor moves anchors apart and keeps pixel offsets; boxes in the opposite order would close in)."""
    def axis(anchor_a, lo_a, hi_a, anchor_b, lo_b, hi_b):
        return (hi_a <= lo_b and anchor_a <= anchor_b) or (hi_b <= lo_a and anchor_b <= anchor_a)

    return axis(a[0], a[2], a[3], b[0], b[2], b[3]) or axis(a[1], a[4], a[5], b[1], b[4], b[5])


def place_labels(points: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]], *,
                 width: float, height: float, order: Sequence[int] | None = None, marker: float = MARKER_PX,
                 candidates: Sequence[Offset] = CANDIDATES) -> list[Offset | None]:
    """Greedy label placement. ``points``: (x, y) px of each point in a ``width`` x ``height`` plot (origin
    top left, y down); ``sizes``: (width, height) px of each point's label; ``order``: point indices, most
    important first (default: as given). Each label in turn takes the first of ``candidates`` whose box
    lies inside the plot, overlaps no label already placed and no other point's marker (a square of half
    side ``marker``); a label that fits nowhere gets None (not drawn). Returns one Offset or None per point.

    Deterministic. Placed boxes also stay apart on any plot at least as large (a chart stretched to its
    container): boxes beside each other must lie in the order of their points."""
    if len(points) != len(sizes):
        raise ValueError(f"{len(points)} points but {len(sizes)} label sizes")
    order = list(range(len(points))) if order is None else list(order)
    if sorted(order) != list(range(len(points))):
        raise ValueError("order must list each point index once")
    markers = [(x, y, x - marker, x + marker, y - marker, y + marker) for x, y in points]
    placed: list[tuple] = []
    out: list[Offset | None] = [None] * len(points)
    for i in order:
        x, y = points[i]
        for offset in candidates:
            left, right, top, bottom = _box(x, y, sizes[i], offset)
            if left < 0 or right > width or top < 0 or bottom > height:
                continue
            box = (x, y, left, right, top, bottom)
            if all(_apart(box, other) for other in placed) and all(
                    _apart(box, m) for j, m in enumerate(markers) if j != i):
                out[i] = offset
                placed.append(box)
                break
    return out
