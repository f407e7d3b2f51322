"""core.label_layout and the trade-off chart's labels: placed without overlapping, inside the plot, the Pareto
front's first (moved from tests/test_charts.py, which had passed 400 lines)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core import charts, label_layout, ranking
from tests.fixtures import SHIPPED_METHODS
from tests.test_charts import _spec, make_runs_of


def _label_boxes(points, sizes, offsets):
    """(left, right, top, bottom) of each placed label, computed here from the Offset's own fields."""
    boxes = {}
    for i, ((x, y), (w, h), o) in enumerate(zip(points, sizes, offsets)):
        if o is None:
            continue
        ax, ay = x + o.dx, y + o.dy
        left = {"left": ax, "right": ax - w, "center": ax - w / 2}[o.align]
        boxes[i] = (left, left + w, ay - h / 2, ay + h / 2)
    return boxes


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1] and a[2] < b[3] and b[2] < a[3]


def test_a_second_label_on_the_same_spot_goes_elsewhere_or_is_dropped():
    """Hand-checked: two points at (100, 100) with 60 x 12 labels in a 300 x 200 plot. The first goes right
    (box 110..170 x 94..106); the second cannot go right again, so it takes the left (40..90)."""
    points, sizes = [(100, 100), (100, 100)], [(60, 12), (60, 12)]
    first, second = label_layout.place_labels(points, sizes, width=300, height=200)
    assert first.name == "right" and second.name == "left"
    assert _label_boxes(points, sizes, [first, second]) == {0: (110, 170, 94, 106), 1: (30, 90, 94, 106)}
    # against the plot's left edge, the left is out too: the second goes above, never on top of the first
    points = [(5, 100), (5, 100)]
    first, second = label_layout.place_labels(points, sizes, width=300, height=200)
    assert first.name == "right" and second is not None and second.name != "right"
    # with no room anywhere but the right, the second label is not drawn
    tight = label_layout.place_labels([(5, 8), (5, 8)], sizes, width=300, height=16)
    assert tight[0].name == "right" and tight[1] is None
    assert label_layout.place_labels([(5, 8), (5, 8)], sizes, width=300, height=16, order=[1, 0])[0] is None


def test_crowded_labels_never_overlap_and_stay_in_the_plot():
    rng = np.random.default_rng(7)
    width, height = 560.0, 320.0
    for trial in range(20):
        n = 40
        cluster = rng.normal((280, 160), 40, size=(n // 2, 2))  # half the points in one heap
        spread = rng.uniform((0, 0), (width, height), size=(n - n // 2, 2))
        points = [tuple(p) for p in np.clip(np.vstack([cluster, spread]), 0, (width, height))]
        sizes = [label_layout.label_size("x" * int(k)) for k in rng.integers(3, 26, size=n)]
        offsets = label_layout.place_labels(points, sizes, width=width, height=height,
                                            order=list(rng.permutation(n)))
        boxes = _label_boxes(points, sizes, offsets)
        assert 0 < len(boxes) < n, trial  # some placed, and a heap this dense cannot hold them all
        for i, a in boxes.items():
            assert 0 <= a[0] and a[1] <= width and 0 <= a[2] and a[3] <= height, (trial, i)
            for j, b in boxes.items():
                assert i == j or not _overlap(a, b), (trial, i, j)
            for j, (x, y) in enumerate(points):  # nor over another point's marker
                m = label_layout.MARKER_PX
                assert i == j or not _overlap(a, (x - m, x + m, y - m, y + m)), (trial, i, j)
        # the same placement stays apart on the wider, taller plot Streamlit may stretch the chart to
        wide = [(x * 1.7, y * 1.1) for x, y in points]
        stretched = _label_boxes(wide, sizes, offsets)
        assert not any(_overlap(stretched[i], stretched[j]) for i in stretched for j in stretched if i < j), trial
    assert label_layout.place_labels(points, sizes, width=width, height=height,
                                     order=list(range(n))) == label_layout.place_labels(
        points, sizes, width=width, height=height, order=list(range(n)))  # deterministic


def test_pareto_labels_come_first_and_are_placed_when_there_is_room():
    """Front points spread apart, each with a heap of dominated ones at its lower left (less gain, more
    forgetting): every front label is drawn, though the heaps' labels cannot all be."""
    rng = np.random.default_rng(3)
    front = [(60.0, 40.0), (200.0, 120.0), (340.0, 200.0), (480.0, 260.0)]
    heap = [(x - abs(dx), y + abs(dy)) for x, y in front for dx, dy in rng.normal(0, 25, size=(6, 2))]
    points = front + [(float(np.clip(x, 0, 560)), float(np.clip(y, 0, 320))) for x, y in heap]
    sizes = [label_layout.label_size("Attention tuning (A-CLIP)")] * len(points)
    for seed in range(5):  # front first, the rest in any order
        rest = list(np.random.default_rng(seed).permutation(range(len(front), len(points))))
        offsets = label_layout.place_labels(points, sizes, width=560, height=320, order=[0, 1, 2, 3] + rest)
        assert all(offsets[i] is not None for i in range(len(front))), seed
        assert any(o is None for o in offsets[len(front):]), seed


def test_the_tradeoff_chart_places_labels_on_its_own_domains():
    runs = make_runs_of(SHIPPED_METHODS)
    rows = ranking.method_ranking(runs)
    rows = rows.assign(id_gain=np.linspace(2, 30, len(rows)), ood_change=np.linspace(1, -20, len(rows)))
    rows.loc[rows.index[:3], "ood_change"] = -3.0  # three at one height, close in gain: not all can be named
    rows.loc[rows.index[:3], "id_gain"] = [10.0, 10.1, 10.2]
    rows["pareto"] = ranking.pareto_mask(rows["id_gain"], rows["ood_change"])
    rows = rows.assign(id_gain_lo=rows["id_gain"] - 2, id_gain_hi=rows["id_gain"] + 2,
                       ood_change_lo=rows["ood_change"] - 1.5, ood_change_hi=rows["ood_change"] + 1.5)
    chart = charts.gain_vs_forgetting(rows)
    spec = json.loads(_spec(chart))  # validates, with the per-row align and offsets as expressions
    (text,) = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    assert text["mark"]["align"] == {"expr": "datum.label_align"} and "isValid" in json.dumps(text["transform"])
    scale = text["encoding"]["x"]["scale"]
    assert scale["nice"] is False and scale["domain"][0] <= rows["id_gain_lo"].min()
    assert scale["domain"][1] >= rows["id_gain_hi"].max()
    data = next(iter(spec["datasets"].values()))
    placed = [r for r in data if r["label_align"] is not None]
    assert 0 < len(placed) <= len(data) and {r["label_align"] for r in placed} <= {"left", "right", "center"}
    assert all(r["label_align"] is not None for r in data if r["pareto"])  # the front is spread: all named
    log = json.loads(_spec(charts.gain_vs_forgetting(rows, x="trainable_params")))
    (text,) = [layer for layer in log["layer"] if layer["mark"]["type"] == "text"]
    lo, hi = text["encoding"]["x"]["scale"]["domain"]
    assert np.log10(lo) % 1 == 0 and np.log10(hi) % 1 == 0 and lo <= rows["trainable_params"].min()


def test_nice_domain_and_pixels():
    assert label_layout.nice_domain([4.3, 27.8]) == (4.0, 28.0)
    assert label_layout.nice_domain([-23.7, 1.2]) == (-24.0, 2.0)
    assert label_layout.nice_domain([0.013, 0.091]) == (0.01, 0.1)
    assert label_layout.nice_domain([5.0]) == (4.5, 5.5)
    assert label_layout.nice_domain([3e3, 2e6], log=True) == (1e3, 1e7)
    assert label_layout.to_pixels([4, 16, 28], (4, 28), 240) == [0, 120, 240]
    assert label_layout.to_pixels([-24, 2], (-24, 2), 100, downward=True) == [100, 0]
    assert label_layout.to_pixels([10, 1000], (1, 1000), 300, log=True) == pytest.approx([100, 300])
    with pytest.raises(ValueError, match="1 points but 0 label sizes"):
        label_layout.place_labels([(0, 0)], [], width=10, height=10)
