"""Gain against forgetting (or cost): one point per method of one model's ranking or forecast, labelled."""
from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from core import label_layout
from core.charts.base import (_colour_scale, _description, _middle_cut, _require, _spoken, _subtitle, _tip,
                              _untrained, method_colours, method_shapes)
from core.text import distinct_labels


#: Axes the gain-vs-forgetting chart can use: ranking column -> (title with unit, log scale).
TRADEOFF_AXES = {"id_gain": ("mean in-domain gain (points)", False),
                 "ood_change": ("mean out-of-domain change (points)", False),
                 "net": ("gain + out-of-domain change (points)", False),
                 "trainable_params": ("trainable parameters (log scale)", True),
                 "wall_time_s": ("training time per run (s, log scale)", True),
                 "peak_mb": ("peak memory of the run (MB)", False)}


#: Most rows a legend column of :func:`gain_vs_forgetting` holds: Streamlit fits the chart into its height
#: and clips a taller legend (at 440 px, one column showed 10 of 19 methods in Chromium). Past
#: :data:`LEGEND_COLUMNS` columns of them, the columns grow longer instead (the chart grows with them).
LEGEND_ROWS = 10
#: Most columns the legend of :func:`gain_vs_forgetting` takes: two of :data:`LEGEND_LABEL_PX` fit the 468 px chart
#: of an 800 px page; a column per 10 methods gave 21 methods or more a third, cut off at the chart's right edge.
LEGEND_COLUMNS = 2
#: Widest method title a legend of :func:`gain_vs_forgetting` writes whole (px); a longer one is cut (…). At 150 a
#: shipped method read 'Orthogonal FT (OrthCR…'; two columns of 200 still fit the 468 px chart of an 800 px page.
LEGEND_LABEL_PX = 200
#: Longest method title the legend of :func:`gain_vs_forgetting` writes whole (characters, about
#: :data:`LEGEND_LABEL_PX` of them); a longer one keeps its start and end ('My custom adapter…variant beta').
LEGEND_LABEL_CHARS = 30
#: Height of one legend row of :func:`gain_vs_forgetting` (px, as Streamlit's theme draws it in Chromium).
#: The legend sits below the plot: at the right its two columns took 400 px of the width (all of it on a
#: phone, where the plot shrank to a sliver under the labels). Streamlit fits titles, legends and plot into
#: the chart's height, so the chart grows by the legend's rows: the plot keeps ``height`` less the titles
#: and axes (about 340 px of the default; it was 253 of 440 with the legend at the right).
LEGEND_ROW_PX = 30


#: Height of the chart that titles, the top legend and the x axis take (px): of the default 560 px the plot
#: measured 327 in Chromium (Ranking page, 1440 x 900). Labels are placed for a plot this much lower than
#: ``height`` and ``width`` wide; Streamlit stretches the chart to its container, and a placement stays apart
#: on any larger plot (a phone's narrower one may let labels touch).
PLOT_DECOR_PX = 260


#: What :func:`gain_vs_forgetting`'s subtitle says of its error bars (drawn where an axis has an interval)
#: and of its rings (Pareto methods were diamonds: the marks' shapes now tell methods apart).
BARS_NOTE = "bars: 95 % interval over datasets"
FRONT_NOTE = "ringed: nothing beats them on both gain and forgetting"
#: The ring around a Pareto method's mark, and its legend entry.
FRONT_LABEL, RING_INK = "Pareto: best trade-off", "#222222"


def _placeable(values: np.ndarray, axis: str) -> np.ndarray:
    """Which ``values`` an axis of :func:`gain_vs_forgetting` can draw: finite, and above 0 on a log axis."""
    return np.isfinite(values) & ((values > 0) if TRADEOFF_AXES[axis][1] else True)


def _axis_values(data: pd.DataFrame, axis: str) -> list[float]:
    """The values an axis of :func:`gain_vs_forgetting` spans: the points and their interval ends."""
    cols = [c for c in (axis, f"{axis}_lo", f"{axis}_hi") if c in data.columns]
    values = pd.to_numeric(data[cols].stack(), errors="coerce").to_numpy(dtype=float)
    values = values[_placeable(values, axis)]
    return values.tolist()


def _with_label_offsets(data: pd.DataFrame, x: str, y: str, domains: dict, width: float,
                        height: float) -> pd.DataFrame:
    """``data`` with label_align, label_dx, label_dy (None where no label fits), from
    :func:`core.label_layout.place_labels` on the points' pixels: Pareto methods first, then by in-domain gain."""
    px = label_layout.to_pixels(data[x].astype(float), domains[x], width, log=TRADEOFF_AXES[x][1])
    py = label_layout.to_pixels(data[y].astype(float), domains[y], height, log=TRADEOFF_AXES[y][1],
                                downward=True)
    gain = pd.to_numeric(data["id_gain" if "id_gain" in data.columns else x], errors="coerce").fillna(-np.inf)
    order = sorted(range(len(data)), key=lambda i: (not bool(data["pareto"].iloc[i]), -gain.iloc[i],
                                                    str(data["method_title"].iloc[i])))
    offsets = label_layout.place_labels(list(zip(px, py, strict=True)),
                                        [label_layout.label_size(t) for t in data["method_title"]],
                                        width=width, height=height, order=order)
    return data.assign(label_align=[o.align if o else None for o in offsets],
                       label_dx=[o.dx if o else None for o in offsets],
                       label_dy=[o.dy if o else None for o in offsets])


def _interval_words(data: pd.DataFrame, axes: list[str], enc) -> list[list[str]]:
    """Each row's intervals on ``axes`` (those with ``<axis>_lo``/``_hi`` columns), in words for its point's
    description: the error bars themselves are hidden from screen readers (each read as raw fields)."""
    words = [[] for _ in range(len(data))]
    for axis in axes:
        if f"{axis}_lo" not in data.columns or f"{axis}_hi" not in data.columns:
            continue
        title = enc(axis, alt.X).to_dict()["title"]
        for i, (lo, hi) in enumerate(zip(pd.to_numeric(data[f"{axis}_lo"], errors="coerce"),
                                         pd.to_numeric(data[f"{axis}_hi"], errors="coerce"), strict=True)):
            if np.isfinite(lo) and np.isfinite(hi):
                words[i].append(f"{title} 95 % interval {lo:,.2f} to {hi:,.2f}")
    return words


def gain_vs_forgetting(rows: pd.DataFrame, *, x: str = "id_gain", y: str = "ood_change",
                       width: int = 560, height: int = 560, prefix: str = "mean",
                       subtitle: str | None = None, random_weights: bool | None = None) -> alt.LayerChart:
    """One point per method of ``rows`` (``core.ranking.method_ranking`` rows of ONE model), on the
    chosen axes (keys of :data:`TRADEOFF_AXES`), labelled with the method's name so nothing needs a
    hover (beside its point where :func:`core.label_layout.place_labels` finds room, Pareto methods first;
    a label that would cover another is left out, its point keeping tooltip and colour); the interval over
    datasets as error bars where the axis has one; each method in its colour and shape (:func:`method_colours`,
    :func:`method_shapes`: two methods of one shape differ in colour also as protanopes and deuteranopes see it);
    Pareto methods ringed in dark grey and joined by a dashed line on the gain/OOD axes; the method legend, below
    the plot, takes a column per :data:`LEGEND_ROWS` methods (at most :data:`LEGEND_COLUMNS`) and names every
    method. Methods that cannot be placed (NaN or inf on an axis, or a value not above 0 on a log axis) are named in
    the subtitle. ``subtitle``: what bars and rings mean;
    default :data:`BARS_NOTE` (only where an axis draws bars) and :data:`FRONT_NOTE`. ``random_weights`` as in
    :func:`iimm_vs_outcome` (None: from the rows' model and pretrained columns, when they have them).
    Raises ValueError for an unknown axis, a method with several rows, or when no row has both values."""
    for axis in (x, y):
        if axis not in TRADEOFF_AXES:
            raise ValueError(f"unknown axis {axis!r}; use one of {list(TRADEOFF_AXES)}")
    _require(rows, ["method", "method_title", "pareto", x, y])
    repeated = sorted(set(rows.loc[rows["method"].astype(str).duplicated(), "method"].astype(str)))
    if repeated:  # two models' rows: one colour and one label for two points, and the legend lost one
        raise ValueError(f"each method must have one row (the ranking of one model); {repeated} have several")
    drawable = np.ones(len(rows), dtype=bool)
    for axis in (x, y):
        values = pd.to_numeric(rows[axis], errors="coerce").to_numpy(dtype=float)
        drawable &= _placeable(values, axis)
    data = rows[drawable].assign(method=lambda t: t["method"].astype(str))  # colours are keyed by name
    if data.empty:
        raise ValueError(f"no method has both {x!r} and {y!r} to draw")
    if subtitle is None:  # bars are drawn only on an axis with an interval (none on net or a cost axis)
        bars = any(f"{a}_lo" in data.columns and data[f"{a}_lo"].notna().any() for a in (x, y))
        subtitle = f"{BARS_NOTE}; {FRONT_NOTE}" if bars else FRONT_NOTE
    left_out = rows.loc[~drawable, "method_title"].astype(str).tolist()
    if left_out:  # a method with no value on an axis (or none above 0 on a log axis) is named, not lost
        log_note = " or none above 0 on a log axis" if TRADEOFF_AXES[x][1] or TRADEOFF_AXES[y][1] else ""
        subtitle = [subtitle, f"not drawn ({len(left_out)}: no value on an axis{log_note}): {', '.join(left_out)}"]
    subtitle = _subtitle(subtitle, _untrained(rows, random_weights))
    data["front"] = np.where(data["pareto"], FRONT_LABEL, "dominated")

    domains = {axis: label_layout.nice_domain(_axis_values(data, axis), log=TRADEOFF_AXES[axis][1])
               for axis in (x, y)}  # set, not left to Vega-Lite's 'nice', so the labels know where points land

    def enc(axis: str, channel):
        title, log_scale = TRADEOFF_AXES[axis]
        title = f"{prefix} {title.removeprefix('mean ')}" if title.startswith("mean ") else title
        # zero only on a linear axis: on a log one Vega-Lite drops it with a console warning
        scale = alt.Scale(type="log", domain=list(domains[axis]), nice=False) if log_scale else alt.Scale(
            type="linear", domain=list(domains[axis]), nice=False, zero=False)
        return channel(f"{axis}:Q", title=title, scale=scale)

    # a title shared by two methods ('LoRA' of 'lora' and 'Lora') merged their colours and legend entries
    data["method_title"] = distinct_labels(data["method_title"].astype(str).tolist(),
                                           tags=data["method"].astype(str).tolist())
    titles = dict(sorted(zip(data["method"], data["method_title"], strict=True)))
    columns = min(LEGEND_COLUMNS, -(-len(titles) // LEGEND_ROWS))
    # symbolLimit 0: every method (Vega-Lite draws 30 entries and then '…15 entries', those methods unnamed)
    legend = alt.Legend(orient="bottom", labelLimit=LEGEND_LABEL_PX, symbolOpacity=1, symbolStrokeColor=RING_INK,
                        symbolStrokeWidth=0.6, columns=columns, columnPadding=12, symbolLimit=0,  # colour and shape
                        labelExpr=_middle_cut(LEGEND_LABEL_CHARS))
    color = alt.Color("method_title:N", title="method", scale=_colour_scale(titles, method_colours(titles)),
                      legend=legend)
    marks = alt.Shape("method_title:N", title="method", scale=_colour_scale(titles, method_shapes(titles)),
                      legend=legend)
    # every layer names its tooltip: Streamlit's theme gives a layer without one a tooltip of its raw fields
    # (a label read 'method_title Full', 'predicted in-domain gain (points) 15.0172894871')
    tooltip = [_tip("method_title", "method", "N"), _tip(x, enc(x, alt.X).to_dict()["title"]),
               *([_tip(y, enc(y, alt.Y).to_dict()["title"])] if y != x else []),
               *([_tip("n_datasets", "datasets")] if "n_datasets" in data.columns else []),
               _tip("front", "trade-off", "N")]
    placed = _with_label_offsets(data, x, y, domains, width, height - PLOT_DECOR_PX)
    placed["said"] = _spoken(placed, tooltip, _interval_words(placed, list(dict.fromkeys((x, y))), enc))
    base = alt.Chart(placed)
    layers = []
    for axis, channel, other in ((x, alt.X, enc(y, alt.Y)), (y, alt.Y, enc(x, alt.X))):
        if f"{axis}_lo" in data.columns and data[f"{axis}_lo"].notna().any():
            title = enc(axis, alt.X).to_dict()["title"]
            second = alt.X2 if channel is alt.X else alt.Y2
            layers.append(base.mark_rule(strokeWidth=1.5, opacity=0.35, aria=False).encode(  # said by the point
                channel(f"{axis}_lo:Q", title=title), second(f"{axis}_hi:Q"), other, color=color, tooltip=tooltip))
    if {x, y} == {"id_gain", "ood_change"} and int(data["pareto"].sum()) > 1:
        front_line = base.transform_filter(alt.datum.pareto).mark_line(color="#555", strokeDash=[5, 4], tooltip=None,
                                                                        aria=False)  # its points say 'Pareto'
        layers.append(front_line.encode(enc(x, alt.X), enc(y, alt.Y), order=f"{x}:Q"))
    ring = alt.Stroke("front:N", title="", scale=alt.Scale(domain=[FRONT_LABEL], range=[RING_INK]),
                      legend=alt.Legend(orient="top", symbolType="circle", symbolSize=260, symbolStrokeWidth=2,
                                        symbolFillColor="transparent", symbolOpacity=1, labelLimit=300))
    layers.append(base.transform_filter(alt.datum.pareto).mark_point(  # said by the point's own description
        shape="circle", filled=False, size=520, strokeWidth=2, opacity=1, aria=False).encode(
        enc(x, alt.X), enc(y, alt.Y), stroke=ring, tooltip=tooltip))
    layers.append(base.mark_point(filled=True, opacity=0.95, stroke=RING_INK, strokeWidth=0.6, size=170).encode(
        enc(x, alt.X), enc(y, alt.Y), color=color, shape=marks, tooltip=tooltip, description="said:N"))
    labelled = base.transform_filter("isValid(datum.label_align)")  # a label that fits nowhere: none drawn
    layers.append(labelled.mark_text(align=alt.expr("datum.label_align"), baseline="middle", aria=False,
                                     dx=alt.expr("datum.label_dx"), dy=alt.expr("datum.label_dy"), fontSize=11,
                                     color="#222").encode(enc(x, alt.X), enc(y, alt.Y), text="method_title:N",
                                                          tooltip=tooltip))
    heading = f"{enc(y, alt.Y).to_dict()['title'].split(' (')[0]} vs {enc(x, alt.X).to_dict()['title'].split(' (')[0]}"
    front = data.loc[data["pareto"].astype(bool), "method_title"].tolist()
    described = _description(heading, subtitle, f"Scatter plot of {enc(y, alt.Y).to_dict()['title']} against "
                             f"{enc(x, alt.X).to_dict()['title']}, one point per method ({len(titles)}), each named in "
                             "the legend and beside its point where there is room",
                             f"Pareto, best trade-off (ringed): {', '.join(front)}" if front else "")
    return alt.layer(*layers).properties(
        title=alt.TitleParams(heading, subtitle=subtitle, anchor="start"), description=described,
        width=width, height=height + LEGEND_ROW_PX * -(-len(titles) // columns))
