"""The method x dataset matrix of one model and one outcome, as coloured cells with their values written in."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core import ranking, text
from core.charts.base import _require, _subtitle, _tip, _untrained


OUTCOME_TITLES = ranking.OUTCOME_TITLES  # one naming of the outcomes, kept in core.ranking


#: Share of the colour scale's reach (from its middle for changes, from its low end otherwise) past which
#: a heatmap cell is dark enough that its value is written in white: dark text on the darkest blues and reds
#: was barely legible.
DARK_CELL = 0.6


#: Most datasets whose values :func:`dataset_heatmap` writes in its cells. Streamlit fits the chart to the page's
#: width: with the shipped world-v2's 40 datasets a cell was 17 px wide at 1440 px, and each "+76.5 ★" was written
#: over its neighbours; 15 datasets leave about 48 px, room for one.
WRITTEN_DATASETS = 16


def _cell_ink(values: np.ndarray, diverging: bool) -> list[str]:
    """The text colour of each heatmap cell: white on the dark end(s) of its scale, near-black elsewhere. A
    diverging scale (centred on 0) reaches its darkest red at the minimum and its darkest blue at the maximum."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return ["#111"] * len(values)
    low, high = float(finite.min()), float(finite.max())
    if diverging:
        reach = np.where(values >= 0, values / high if high > 0 else 0.0, values / low if low < 0 else 0.0)
    else:
        reach = (values - low) / (high - low) if high > low else np.zeros(len(values))
    return ["white" if r > DARK_CELL else "#111" for r in np.nan_to_num(reach)]


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


def dataset_heatmap(matrix: pd.DataFrame, outcome: str, *, cell_width: int = 56, cell_height: int = 26,
                    random_weights: bool | None = None) -> alt.LayerChart:
    """The method x dataset matrix (``core.ranking.dataset_matrix`` output) as coloured cells with
    their values written in (up to :data:`WRITTEN_DATASETS` datasets; past it, on hover, and the subtitle says
    so); the best method of each dataset is marked with a star and a black frame.
    Changes (gain, OOD change) use a diverging scale centred on zero. ``random_weights`` as in
    :func:`iimm_vs_outcome` (the matrix names no model: pass it). Raises ValueError when empty."""
    _require(matrix, ["method_title", "dataset", "value", "best"])
    if matrix.empty:
        raise ValueError("no values to draw")
    signed, written = outcome in ("id_gain", "ood_change"), matrix["dataset"].nunique() <= WRITTEN_DATASETS
    data = matrix.assign(label=[(_cell_text(v, signed) + " ★" if b else _cell_text(v, signed)) if written
                                else "★" if b else "" for v, b in zip(matrix["value"], matrix["best"])])
    title = OUTCOME_TITLES.get(outcome, outcome)
    diverging = outcome in ("id_gain", "ood_change", "norm_gain")
    data["ink"] = _cell_ink(data["value"].to_numpy(float), diverging)
    scale = _diverging_scale(data["value"].to_numpy(float)) if diverging else alt.Scale(scheme="blues")
    order = (data.groupby("method_title")["value"].mean().sort_values(ascending=False).index.tolist())
    x = alt.X("dataset:N", title="dataset", sort="ascending",
              axis=alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False))  # every dataset named
    y = alt.Y("method_title:N", title=None, sort=order, axis=alt.Axis(labelLimit=260))
    # the tooltip on every layer: the text and frame lie over the cell, and Streamlit's theme gave them a
    # tooltip of raw fields ('method_title', 'ink #111', 'label'), so the cell's own was never seen
    base = alt.Chart(data).encode(x=x, y=y, tooltip=[
        _tip("method_title", "method", "N"), _tip("dataset", "dataset", "N"), _tip("value", title),
        _tip("n_seeds", "seeds averaged")])
    key = "★ = best method on that dataset (seed means)" + (
        "" if written else "; values on hover (too many datasets to write them in)")
    chart = alt.layer(
        base.mark_rect().encode(color=alt.Color("value:Q", title=title.split(" (")[0], scale=scale)),
        base.transform_filter(alt.datum.best).mark_rect(fill=None, stroke="black", strokeWidth=2),
        base.mark_text(fontSize=10).encode(text="label:N", color=alt.Color("ink:N", scale=None)),
    ).properties(title=alt.TitleParams(f"{title} per method and dataset", anchor="start",
                                       subtitle=_subtitle(key, _untrained(matrix, random_weights))),
                 width=alt.Step(cell_width), height=alt.Step(cell_height))
    # the cells' colour scale and the text's ink (scale None) apart: merged into one shared scale, Vega-Lite
    # failed in the browser ("Cannot read properties of null (reading 'type')") and the matrix page drew nothing
    return chart.resolve_scale(color="independent")
