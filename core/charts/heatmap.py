"""The method x dataset matrix of one model and one outcome, as coloured cells with their values written in."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core import ranking, text
from core.charts.base import _description, _middle_cut, _require, _spoken, _subtitle, _tip, _untrained


OUTCOME_TITLES = ranking.OUTCOME_TITLES  # one naming of the outcomes, kept in core.ranking


#: Most datasets whose values :func:`dataset_heatmap` writes in its cells. Streamlit fits the chart to the page's
#: width: with the shipped world-v2's 40 datasets a cell was 17 px wide at 1440 px, and each "+76.5 ★" was written
#: over its neighbours; 15 datasets leave about 48 px, room for one.
WRITTEN_DATASETS = 16
#: Most datasets :func:`dataset_heatmap` names each on its axis. At 1440 px the page gives the chart about 900 px: 15
#: px a dataset at 60, about what a label turned -40° needs; past it every name was written over the others into one
#: grey band (300 datasets: none readable), so past it Vega-Lite leaves out those that would overlap another (each
#: cell's tooltip still names its dataset, and the subtitle says so).
NAMED_DATASETS = 60


#: The cells' colour schemes as Vega draws them (vega-scale's "redblue" and "blues": #rrggbb stops evenly spaced on
#: [0, 1], interpolated linearly in RGB), so each cell's text colour is chosen against the colour it lies on.
SCHEME_STOPS = {"redblue": "8c0d25bf363adf745ef4ae91fbdbc9f2efeed2e5ef9dcae15da2cb2f78b3134b85",
                "blues": "cfe1f2bed8eca8cee58fc1de74b2d75ba3cf4592c63181bd206fb2125ca40a4a90"}
#: The two inks of a cell's text: whichever has more contrast with the cell (black, not near-black: with either
#: ink at its best, every colour of both schemes keeps WCAG AA's 4.5:1; #111 fell to 4.35:1 midway).
INKS = ("white", "black")


def _scheme_colour(scheme: str, position: float) -> tuple[float, float, float]:
    """The (r, g, b) in 0..255 that Vega's ``scheme`` (a key of :data:`SCHEME_STOPS`) gives ``position`` in [0, 1]."""
    hexes = SCHEME_STOPS[scheme]
    stops = np.array([[int(hexes[i + j:i + j + 2], 16) for j in (0, 2, 4)] for i in range(0, len(hexes), 6)], float)
    segments = len(stops) - 1
    t = min(max(float(position), 0.0), 1.0) * segments
    i = min(segments - 1, int(t))
    return tuple(stops[i] + (stops[i + 1] - stops[i]) * (t - i))


def _luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG relative luminance of an (r, g, b) in 0..255."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in (v / 255 for v in rgb)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _scale_positions(values: np.ndarray, diverging: bool) -> np.ndarray:
    """Where each value falls on its colour scheme (0..1), as :func:`_diverging_scale` (0 at 0.5, the ends at its
    domain's ends) or the sequential scale (the values' minimum to maximum) maps it; NaN where there is no value."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return np.full(len(values), np.nan)
    low, high = float(finite.min()), float(finite.max())
    with np.errstate(divide="ignore", invalid="ignore"):
        if diverging:
            low, high = min(low, 0.0), max(high, 0.0)
            return np.where(values < 0, 0.5 - 0.5 * values / low, 0.5 + 0.5 * np.where(high > 0, values / high, 0.0))
        return (values - low) / (high - low) if high > low else np.where(np.isfinite(values), 0.5, np.nan)


def _cell_ink(values: np.ndarray, diverging: bool) -> list[str]:
    """The text colour of each heatmap cell: of :data:`INKS`, the one with more contrast with the cell's colour
    (:func:`_scheme_colour`). A fixed share of the scale's reach (white past 60 %) wrote white at 2.8:1 on mid blues
    and 3.5:1 on mid reds, as each side of the diverging scale darkens at its own pace."""
    out = []
    for position in _scale_positions(np.asarray(values, dtype=float), diverging):
        if not np.isfinite(position):  # no value (a dash): the cell takes no colour of the scheme
            out.append(INKS[1])
            continue
        cell = _luminance(_scheme_colour("redblue" if diverging else "blues", position))
        out.append(INKS[0] if 1.05 / (cell + 0.05) >= (cell + 0.05) / 0.05 else INKS[1])
    return out


def _cell_text(value: float, signed: bool) -> str:
    """A heatmap cell's value as written in it: '+1.2' for a change (``signed``), '71.35' otherwise; a value
    that rounds to zero as '+0.0' (:func:`core.text.signed`: a negative zero or -0.04 read '-0.0'), no value as
    '—' (it read '+nan'), an infinite one as '+∞' or '−∞'."""
    value = float(value)
    if np.isnan(value):
        return "—"
    if np.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return text.signed(value) if signed else text.fixed(value, 2)


def _diverging_scale(values: np.ndarray) -> alt.Scale:
    """Red (loss) to blue (gain), white at 0, over a domain that holds 0: where every value lay on one side of it,
    Vega dropped the middle ("domainMid exceeds domain min or max") and drew the smallest gains red."""
    finite = values[np.isfinite(values)]
    if not len(finite) or finite.min() == finite.max() == 0:
        return alt.Scale(scheme="redblue", domainMid=0)
    ends = [min(float(finite.min()), 0.0), max(float(finite.max()), 0.0)]
    return alt.Scale(scheme="redblue", domainMid=0, domain=ends)


def _heatmap_facts(data: pd.DataFrame, diverging: bool) -> str:
    """What :func:`dataset_heatmap` shows, in words: its size, what its colours mean, and the methods best on most
    datasets (the cells themselves are read one by one)."""
    wins = data[data["best"].astype(bool)].groupby("method_title").size().sort_values(ascending=False, kind="stable")
    colours = ("red below 0, white at 0, blue above" if diverging else "light to dark blue, low to high")
    said = (f"Heatmap of {data['method_title'].nunique()} methods by {data['dataset'].nunique()} datasets, each cell "
            f"the seed mean; colour: {colours}")
    if len(wins):
        said += ". Best on most datasets: " + ", ".join(f"{t} ({n})" for t, n in wins.head(5).items())
    return said


def dataset_heatmap(matrix: pd.DataFrame, outcome: str, *, cell_width: int = 56, cell_height: int = 26,
                    random_weights: bool | None = None) -> alt.LayerChart:
    """The method x dataset matrix (``core.ranking.dataset_matrix`` output) as coloured cells with
    their values written in (up to :data:`WRITTEN_DATASETS` datasets; past it, on hover, and the subtitle says
    so) and each dataset named on the axis (up to :data:`NAMED_DATASETS`; past it, those that fit apart); the best
    method of each dataset is marked with a star and a black frame.
    Changes (gain, OOD change) use a diverging scale centred on zero. ``random_weights`` as in
    :func:`iimm_vs_outcome` (the matrix names no model: pass it). Raises ValueError when empty."""
    _require(matrix, ["method_title", "dataset", "value", "best"])
    if matrix.empty:
        raise ValueError("no values to draw")
    signed, written = outcome in ("id_gain", "ood_change"), matrix["dataset"].nunique() <= WRITTEN_DATASETS
    named = matrix["dataset"].nunique() <= NAMED_DATASETS
    data = matrix.assign(label=[(_cell_text(v, signed) + " ★" if b else _cell_text(v, signed)) if written
                                else "★" if b else "" for v, b in zip(matrix["value"], matrix["best"], strict=True)])
    title = OUTCOME_TITLES.get(outcome, outcome)
    diverging = outcome in ("id_gain", "ood_change", "norm_gain")
    data["ink"] = _cell_ink(data["value"].to_numpy(float), diverging)
    scale = _diverging_scale(data["value"].to_numpy(float)) if diverging else alt.Scale(scheme="blues")
    order = (data.groupby("method_title")["value"].mean().sort_values(ascending=False).index.tolist())
    x = alt.X("dataset:N", title="dataset", sort="ascending",
              axis=alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False if named else "greedy"))
    y = alt.Y("method_title:N", title=None, sort=order, axis=alt.Axis(labelLimit=260, labelExpr=_middle_cut(40)))
    # the tooltip on every layer: the text and frame lie over the cell, and Streamlit's theme gave them a
    # tooltip of raw fields ('method_title', 'ink black', 'label'), so the cell's own was never seen
    tips = [_tip("method_title", "method", "N"), _tip("dataset", "dataset", "N"), _tip("value", title),
            _tip("n_seeds", "seeds averaged")]
    data["said"] = _spoken(data, tips, [["best method on this dataset"] if b else [] for b in data["best"]])
    base = alt.Chart(data).encode(x=x, y=y, tooltip=tips)
    key = "★ = best method on that dataset (seed means)" + (
        "" if written else "; values on hover (too many datasets to write them in)" if named else
        "; values and some dataset names on hover (too many datasets to write them in)")
    subtitle = _subtitle(key, _untrained(matrix, random_weights))
    chart = alt.layer(
        base.mark_rect().encode(color=alt.Color("value:Q", title=title.split(" (")[0], scale=scale),
                                description="said:N"),  # a screen reader's words for the cell, not its raw fields
        base.transform_filter(alt.datum.best).mark_rect(fill=None, stroke="black", strokeWidth=2, aria=False),
        base.mark_text(fontSize=10, aria=False).encode(text="label:N", color=alt.Color("ink:N", scale=None)),
    ).properties(title=alt.TitleParams(f"{title} per method and dataset", anchor="start", subtitle=subtitle),
                 description=_description(f"{title} per method and dataset", subtitle, _heatmap_facts(data, diverging)),
                 width=alt.Step(cell_width), height=alt.Step(cell_height))
    # the cells' colour scale and the text's ink (scale None) apart: merged into one shared scale, Vega-Lite
    # failed in the browser ("Cannot read properties of null (reading 'type')") and the matrix page drew nothing
    return chart.resolve_scale(color="independent")
