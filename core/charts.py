"""Altair chart builders for the comparison and forecast pages.

Every function takes the runs frame it should draw (as returned by ``core.store``) and
returns an ``alt.Chart``; nothing here loads data or knows about Streamlit. Points are
per (method, dataset): the mean over seeds, as in ``core.forecast``.
"""
from __future__ import annotations

import logging
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from core import cards, label_layout, ranking
from core.text import distinct_labels

log = logging.getLogger(__name__)

#: Method colours: 20 hues that each keep at least 3:1 contrast on a white page (WCAG's bar for graphics),
#: ordered so neighbours differ. Streamlit's default palette has 10 colours, some near-white, so 19 methods
#: repeated colours and a one-method panel could nearly vanish.
METHOD_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ec7014", "#9467bd", "#8c564b", "#dd3497", "#7f7f7f",
                  "#35978f", "#393b79", "#637939", "#bf812d", "#843c39", "#7b4173", "#6b6ecf", "#b15928",
                  "#4d9221", "#01665e", "#8e0152", "#225ea8")
BASELINE_COLOUR = "#222222"

# axis titles, in the words the pages and tables use (the compare panels said "ID gain" beside "in-domain gain")
LABELS = {**{k: ranking.OUTCOME_TITLES[k] for k in ("id_gain", "ood_change", "iimm", "zs_acc")},
          "norm_gain": "normalised gain"}


#: d3 formats of tooltip values, by column (default :data:`TOOLTIP_FORMAT`): none has a '+' flag, with which
#: d3 writes a negative zero or a tiny negative as '−0.00'.
TOOLTIP_FORMATS = {"iimm": ".3f", "trainable_params": ",.0f", "wall_time_s": ",.1f", "peak_mb": ",.0f"}
TOOLTIP_FORMAT = ",.2f"


def _tip(field: str, title: str, kind: str = "Q") -> alt.Tooltip:
    """A tooltip entry named in words (``title``; the column's key read 'id_gain', 'n_seeds'), a number
    (``kind`` "Q") formatted by :data:`TOOLTIP_FORMATS`."""
    if kind != "Q":
        return alt.Tooltip(f"{field}:{kind}", title=title)
    return alt.Tooltip(f"{field}:Q", title=title, format=TOOLTIP_FORMATS.get(field, TOOLTIP_FORMAT))


#: The line a chart's subtitle starts with when its numbers come from an untrained network (the pages warn
#: above the chart, but a chart saved from its menu, or read on its own, said nothing).
RANDOM_WEIGHTS_NOTE = ("RANDOM WEIGHTS: an untrained network; these numbers describe random weights, "
                       "not a pretrained model")


def _untrained(frame: pd.DataFrame, random_weights: bool | None) -> bool:
    """Whether a chart of ``frame`` carries :data:`RANDOM_WEIGHTS_NOTE`: as the caller says, or (None) when the
    frame's (model, pretrained) columns name a model that :func:`core.cards.untrained_models` calls untrained."""
    if random_weights is not None:
        return bool(random_weights)
    return {"model", "pretrained"} <= set(frame.columns) and bool(cards.untrained_models(frame))


def _subtitle(lines: Any, untrained: bool) -> str | list[str] | None:
    """A subtitle (``lines``: one string, a list of them, or None) led by :data:`RANDOM_WEIGHTS_NOTE` when
    ``untrained``: one line as a string, several as a list, none as None."""
    lines = [] if lines is None else [lines] if isinstance(lines, str) else list(lines)
    lines = [RANDOM_WEIGHTS_NOTE, *lines] if untrained else lines
    return None if not lines else lines[0] if len(lines) == 1 else lines


def _fits():
    """core.forecast, imported on first use: it pulls in scipy.stats, which the ranking's charts never need."""
    from core import forecast

    return forecast


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the runs frame has no column(s) {missing}")


def method_colours(methods: Any) -> dict[str, str]:
    """One colour per distinct method name in ``methods`` (any iterable of str): non-baseline methods
    take :data:`METHOD_PALETTE` in name order, baselines (zero-shot) :data:`BASELINE_COLOUR`, so a
    method keeps its colour on every chart that draws the same methods, baselines or not. Past 20
    methods the palette repeats (logged)."""
    names = sorted({str(m) for m in methods})
    baseline = {m for m in names if cards.method_card(m).baseline}
    ordered = [m for m in names if m not in baseline]
    if len(ordered) > len(METHOD_PALETTE):
        log.warning("%d methods share %d colours; read the labels", len(ordered), len(METHOD_PALETTE))
    colours = {m: METHOD_PALETTE[i % len(METHOD_PALETTE)] for i, m in enumerate(ordered)}
    return colours | {m: BASELINE_COLOUR for m in baseline}


def method_titles(methods: Any) -> dict[str, str]:
    """Each distinct method name in ``methods`` -> its readable title (:func:`core.cards.method_title`), made
    distinct where names share one ('LoRA · Lora'): a colour scale maps a label to one colour, so methods with
    one title were drawn in one colour under one legend entry."""
    names = sorted({str(m) for m in methods})
    return dict(zip(names, distinct_labels([cards.method_title(m) for m in names], tags=names)))


def _colour_scale(labels: dict[str, str], colours: dict[str, str]) -> alt.Scale:
    """The colour scale that draws each method's label (method -> label) in its colour (method -> colour)."""
    return alt.Scale(domain=list(labels.values()), range=[colours[m] for m in labels])


def _points(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Seed means per (model, pretrained where the frame has it, method, dataset) of the ok runs with x and y
    present, where both are finite."""
    ok = df[df["status"] == "ok"].dropna(subset=[x, y])
    ok = ok.assign(method=ok["method"].astype(str))  # colours and titles are keyed by name: a method 1 raised KeyError
    keys = ["model", *(["pretrained"] if "pretrained" in ok.columns else []), "method", "dataset"]
    grouped = ok.groupby(keys, sort=True)
    out = grouped[[x, y]].mean()
    out["n_seeds"] = grouped.size()
    # a seed mean of ±inf has no place on an axis (and failed the fit): left out, as the ranking's means leave it
    return out[np.isfinite(out[x]) & np.isfinite(out[y])].reset_index()


def _require_one_model(points: pd.DataFrame) -> None:
    """Raises ValueError when ``points`` hold several (model, pretrained): one line would be fitted through
    them, e.g. a random-weight model's points averaged with or fitted beside its pretrained ones."""
    keys = [c for c in ("model", "pretrained") if c in points.columns]
    models = sorted({" ".join(map(str, pair)) for pair in points[keys].itertuples(index=False)})
    if len(models) > 1:
        raise ValueError(f"pass the runs of one model; these hold {len(models)}: {', '.join(models)}")


def iimm_vs_outcome(df: pd.DataFrame, outcome: str, *, highlight: dict[str, Any] | None = None,
                    predictor: str = "iimm", level: float = 0.95, width: int = 520, height: int = 340,
                    title: str | None = None, subtitle: str | None = None, legend: bool = True,
                    colours: dict[str, str] | None = None, random_weights: bool | None = None) -> alt.Chart:
    """Predictor (IIMM) vs an outcome: one colour per method, a point per dataset, the OLS line
    with its confidence band, and R²/Kendall τ/n of each method in its legend label.

    highlight: the user's dataset, ``{"x": value, "label": str, "y": float, "lo": float,
    "hi": float}`` (only "x" required): drawn as a dashed rule at x and, when "y" is given,
    a big diamond with its interval. Raises ValueError when no run has both values.
    Pass the runs of one model (one pretrained tag): runs of several raise ValueError, as a method's points
    from several models would share one line.
    colours: method -> colour; default :func:`method_colours` of the methods drawn.
    random_weights: whether the numbers come from an untrained network (the subtitle says so first, the tooltip's
    model is marked); None: as :func:`core.cards.untrained_models` finds from the runs' model, pretrained and
    random_weights columns; False where the caller labels the chart itself.
    """
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    _require_one_model(pts)
    untrained = _untrained(df, random_weights)
    if "pretrained" in pts.columns:  # the model in words, marked as the runs table marks it
        pts["model"] = cards.model_label_column(pts, cards.untrained_models(df) if untrained else set())
    labels, bands, titles = {}, [], method_titles(pts["method"])
    for method, group in pts.groupby("method", sort=True):
        xs, ys = group[predictor].to_numpy(float), group[outcome].to_numpy(float)
        name = titles[method]
        label = f"{name} (n={len(group)})"
        if len(group) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:  # constant y: no fit to report
            forecast = _fits()
            fit = forecast.fit_linear(xs, ys)
            label = (f"{name} (R²={fit.r2:.2f}, τ={forecast.kendall_tau(xs, ys):.2f}, "
                     f"n={len(group)})")
            grid = np.linspace(xs.min(), xs.max(), 30)
            mean, lo, hi = forecast.confidence_band(fit, grid, level)
            bands.append(pd.DataFrame({"method": method, "x": grid, "fit": mean, "lo": lo, "hi": hi}))
        labels[method] = label
    pts["series"], pts["method_title"] = pts["method"].map(labels), pts["method"].map(titles)
    x_title, y_title = LABELS.get(predictor, predictor), LABELS.get(outcome, outcome)
    color = alt.Color("series:N", title="method", scale=_colour_scale(labels, colours or method_colours(labels)),
                      legend=alt.Legend(labelLimit=320) if legend else None)
    points = alt.Chart(pts).mark_circle(size=70, opacity=0.85).encode(
        x=alt.X(f"{predictor}:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{outcome}:Q", title=y_title), color=color,
        tooltip=[_tip("model", "model", "N"), _tip("dataset", "dataset", "N"), _tip("method_title", "method", "N"),
                 _tip(predictor, x_title), _tip(outcome, y_title), _tip("n_seeds", "seeds averaged")])
    layers: list[alt.Chart] = []
    if bands:
        band = pd.concat(bands, ignore_index=True)
        band["series"] = band["method"].map(labels)
        base = alt.Chart(band).encode(x=alt.X("x:Q", title=x_title), color=color)
        layers += [base.mark_area(opacity=0.15).encode(y=alt.Y("lo:Q", title=y_title), y2="hi:Q"),
                   base.mark_line().encode(y=alt.Y("fit:Q", title=y_title))]
    layers.append(points)
    if highlight is not None:
        layers += _highlight_layers(highlight, x_title, y_title)
    if not title:
        title = f"{y_title.split(' (')[0]} vs {x_title}"
        subtitle = f"lines: straight-line fit per method; bands: {level:.0%} confidence of the fitted mean"
    lines = _subtitle(subtitle, untrained)
    heading = alt.TitleParams(title, anchor="start", **({"subtitle": lines} if lines else {}))
    return alt.layer(*layers).properties(title=heading, width=width, height=height)


def iimm_vs_outcome_by_method(df: pd.DataFrame, outcome: str, *, predictor: str = "iimm",
                              columns: int = 3, level: float = 0.95,
                              random_weights: bool | None = None) -> alt.ConcatChart:
    """Small multiples: one :func:`iimm_vs_outcome` panel per method, titled with its R², τ and n,
    on shared axes so methods compare at a glance; an untrained model's panels are titled
    :data:`RANDOM_WEIGHTS_NOTE` above them (``random_weights`` as in :func:`iimm_vs_outcome`).
    Raises ValueError when nothing can be drawn or the runs hold several models."""
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    pts = ranking.without_baselines(pts)  # zero-shot: flat at 0 by definition, no panel
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    _require_one_model(pts)
    panels, colours, titles = [], method_colours(pts["method"]), method_titles(pts["method"])
    for method in sorted(pts["method"].unique()):
        group = pts[pts["method"] == method]
        xs, ys = group[predictor].to_numpy(float), group[outcome].to_numpy(float)
        forecast = _fits()
        stats = (f"R²={forecast.fit_linear(xs, ys).r2:.2f} · τ={forecast.kendall_tau(xs, ys):.2f} · "
                 if len(group) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0 else "")
        panels.append(iimm_vs_outcome(df[df["method"].astype(str) == method], outcome, predictor=predictor,
                                      level=level, width=220, height=170, title=titles[method],
                                      subtitle=f"{stats}n={len(group)}", legend=False, colours=colours,
                                      random_weights=False))  # said once, above the panels
    # No legend: each panel's title names its method. Dropped on the encoding, since Streamlit's chart
    # theme overrides a top-level configure_legend(disable=True) and drew every method's legend per panel.
    # Colour independent: each panel's scale holds only its own method and colour.
    chart = alt.concat(*panels, columns=columns).resolve_scale(x="shared", y="shared", color="independent")
    if _untrained(df, random_weights):
        chart = chart.properties(title=alt.TitleParams(RANDOM_WEIGHTS_NOTE, anchor="start", color="#b00020"))
    return chart


def _highlight_layers(highlight: dict[str, Any], x_title: str, y_title: str) -> list[alt.Chart]:
    if "x" not in highlight or not np.isfinite(float(highlight["x"])):
        raise ValueError("highlight needs a finite 'x' (the user's predictor value)")
    row = {"x": float(highlight["x"]), "label": str(highlight.get("label", "your dataset"))}
    for key in ("y", "lo", "hi"):
        if highlight.get(key) is not None:
            row[key] = float(highlight[key])
    tips = [_tip("label", "marked", "N"), alt.Tooltip("x:Q", title=x_title, format=TOOLTIP_FORMATS["iimm"])]
    if "y" in row:
        tips.append(alt.Tooltip("y:Q", title=y_title, format=TOOLTIP_FORMAT))
        if "lo" in row and "hi" in row:
            row["interval"] = f"[{row['lo']:,.2f}, {row['hi']:,.2f}]"
            tips.append(_tip("interval", "interval", "N"))
    data = pd.DataFrame([row])
    x = alt.X("x:Q", title=x_title)
    layers = [alt.Chart(data).mark_rule(strokeDash=[6, 4], color="black").encode(x=x, tooltip=tips[:2])]
    layers.append(alt.Chart(data).mark_text(align="left", dx=5, baseline="top", y=4, fontSize=11,
                                            fontWeight="bold").encode(x=x, text="label:N"))
    if "y" in row:
        layers.append(alt.Chart(data).mark_point(shape="diamond", size=300, filled=True,
                                                 color="black").encode(
            x=x, y=alt.Y("y:Q", title=y_title), tooltip=tips))
        if "lo" in row and "hi" in row:
            layers.append(alt.Chart(data).mark_rule(color="black", strokeWidth=2).encode(
                x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q"))
    return layers


def method_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per method over ok runs: n_runs, n_datasets, mean and std of id_gain and ood_change,
    and ``pareto`` (no other method has both a higher-or-equal mean gain and a
    higher-or-equal mean OOD change, one strictly)."""
    _require(df, ["status", "method", "dataset", "id_gain", "ood_change"])
    ok = df[df["status"] == "ok"]
    cols = ["method", "n_runs", "n_datasets", "id_gain_mean", "id_gain_std",
            "ood_change_mean", "ood_change_std", "pareto"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    g = ok.groupby("method", sort=True)
    out = pd.DataFrame({"n_runs": g.size(), "n_datasets": g["dataset"].nunique(),
                        "id_gain_mean": g["id_gain"].mean(), "id_gain_std": g["id_gain"].std(),
                        "ood_change_mean": g["ood_change"].mean(),
                        "ood_change_std": g["ood_change"].std()}).reset_index()
    out["pareto"] = ranking.pareto_mask(out["id_gain_mean"], out["ood_change_mean"])
    return out[cols]


#: Axes the gain-vs-forgetting chart can use: ranking column -> (title with unit, log scale).
TRADEOFF_AXES = {"id_gain": ("mean in-domain gain (points)", False),
                 "ood_change": ("mean out-of-domain change (points)", False),
                 "net": ("gain + out-of-domain change (points)", False),
                 "trainable_params": ("trainable parameters (log scale)", True),
                 "wall_time_s": ("training time per run (s, log scale)", True),
                 "peak_mb": ("peak memory of the run (MB)", False)}


#: Most rows a legend column of :func:`gain_vs_forgetting` holds: Streamlit fits the chart into its height
#: and clips a taller legend (at 440 px, one column showed 10 of 19 methods in Chromium).
LEGEND_ROWS = 10
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
    offsets = label_layout.place_labels(list(zip(px, py)),
                                        [label_layout.label_size(t) for t in data["method_title"]],
                                        width=width, height=height, order=order)
    return data.assign(label_align=[o.align if o else None for o in offsets],
                       label_dx=[o.dx if o else None for o in offsets],
                       label_dy=[o.dy if o else None for o in offsets])


def gain_vs_forgetting(rows: pd.DataFrame, *, x: str = "id_gain", y: str = "ood_change",
                       width: int = 560, height: int = 560, prefix: str = "mean",
                       subtitle: str = "bars: 95 % interval over datasets; diamonds: nothing beats them on both "
                                       "gain and forgetting", random_weights: bool | None = None) -> alt.LayerChart:
    """One point per method of ``rows`` (``core.ranking.method_ranking`` rows of ONE model), on the
    chosen axes (keys of :data:`TRADEOFF_AXES`), labelled with the method's name so nothing needs a
    hover (beside its point where :func:`core.label_layout.place_labels` finds room, Pareto methods first;
    a label that would cover another is left out, its point keeping tooltip and colour); the interval over
    datasets as error bars where the axis has one; Pareto methods drawn as large diamonds (legend in dark
    grey) and joined by a dashed line on the gain/OOD axes; the method legend, below the plot, takes a
    column per :data:`LEGEND_ROWS` methods. Methods that cannot be placed (NaN or inf on an axis, or a
    value not above 0 on a log axis) are named in the subtitle. ``random_weights`` as in :func:`iimm_vs_outcome`
    (None: from the rows' model and pretrained columns, when they have them).
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
    left_out = rows.loc[~drawable, "method_title"].astype(str).tolist()
    if left_out:  # a method with no value on an axis (or none above 0 on a log axis) is named, not lost
        log_note = " or none above 0 on a log axis" if TRADEOFF_AXES[x][1] or TRADEOFF_AXES[y][1] else ""
        subtitle = [subtitle, f"not drawn ({len(left_out)}: no value on an axis{log_note}): {', '.join(left_out)}"]
    subtitle = _subtitle(subtitle, _untrained(rows, random_weights))
    data["front"] = np.where(data["pareto"], "Pareto: best trade-off", "dominated")

    domains = {axis: label_layout.nice_domain(_axis_values(data, axis), log=TRADEOFF_AXES[axis][1])
               for axis in (x, y)}  # set, not left to Vega-Lite's 'nice', so the labels know where points land

    def enc(axis: str, channel):
        title, log_scale = TRADEOFF_AXES[axis]
        title = f"{prefix} {title.removeprefix('mean ')}" if title.startswith("mean ") else title
        return channel(f"{axis}:Q", title=title, scale=alt.Scale(type="log" if log_scale else "linear",
                                                                  domain=list(domains[axis]), nice=False, zero=False))

    # a title shared by two methods ('LoRA' of 'lora' and 'Lora') merged their colours and legend entries
    data["method_title"] = distinct_labels(data["method_title"].astype(str).tolist(),
                                           tags=data["method"].astype(str).tolist())
    titles = dict(sorted(zip(data["method"], data["method_title"])))
    columns = -(-len(titles) // LEGEND_ROWS)
    color = alt.Color("method_title:N", title="method", scale=_colour_scale(titles, method_colours(titles)),
                      legend=alt.Legend(orient="bottom", labelLimit=150, symbolOpacity=1, symbolType="circle",
                                        columns=columns, columnPadding=12))
    base = alt.Chart(_with_label_offsets(data, x, y, domains, width, height - PLOT_DECOR_PX))
    layers = []
    for axis, channel, other in ((x, alt.X, enc(y, alt.Y)), (y, alt.Y, enc(x, alt.X))):
        if f"{axis}_lo" in data.columns and data[f"{axis}_lo"].notna().any():
            title = enc(axis, alt.X).to_dict()["title"]
            second = alt.X2 if channel is alt.X else alt.Y2
            layers.append(base.mark_rule(strokeWidth=1.5, opacity=0.35).encode(
                channel(f"{axis}_lo:Q", title=title), second(f"{axis}_hi:Q"), other, color=color))
    if {x, y} == {"id_gain", "ood_change"} and int(data["pareto"].sum()) > 1:
        layers.append(base.transform_filter(alt.datum.pareto).mark_line(color="#555", strokeDash=[5, 4])
                      .encode(enc(x, alt.X), enc(y, alt.Y), order=f"{x}:Q"))
    shape = alt.Shape("front:N", title="", scale=alt.Scale(domain=["Pareto: best trade-off", "dominated"],
                                                            range=["diamond", "circle"]),
                      legend=alt.Legend(symbolFillColor="#333", symbolStrokeColor="#333", orient="top",
                                        direction="horizontal", symbolOpacity=1, labelLimit=300))
    tooltip = [_tip("method_title", "method", "N"), _tip(x, enc(x, alt.X).to_dict()["title"]),
               *([_tip(y, enc(y, alt.Y).to_dict()["title"])] if y != x else []),
               *([_tip("n_datasets", "datasets")] if "n_datasets" in data.columns else []),
               _tip("front", "trade-off", "N")]
    layers.append(base.mark_point(filled=True, opacity=0.95, stroke="#222", strokeWidth=0.6, size=170).encode(
        enc(x, alt.X), enc(y, alt.Y), color=color, shape=shape, tooltip=tooltip))
    labelled = base.transform_filter("isValid(datum.label_align)")  # a label that fits nowhere: none drawn
    layers.append(labelled.mark_text(align=alt.expr("datum.label_align"), baseline="middle",
                                     dx=alt.expr("datum.label_dx"), dy=alt.expr("datum.label_dy"), fontSize=11,
                                     color="#222").encode(enc(x, alt.X), enc(y, alt.Y), text="method_title:N"))
    return alt.layer(*layers).properties(
        title=alt.TitleParams(f"{enc(y, alt.Y).to_dict()['title'].split(' (')[0]} vs "
                              f"{enc(x, alt.X).to_dict()['title'].split(' (')[0]}", subtitle=subtitle, anchor="start"),
        width=width, height=height + LEGEND_ROW_PX * -(-len(titles) // columns))


OUTCOME_TITLES = ranking.OUTCOME_TITLES  # one naming of the outcomes, kept in core.ranking


#: Share of the colour scale's reach (from its middle for changes, from its low end otherwise) past which
#: a heatmap cell is dark enough that its value is written in white: dark text on the darkest blues and reds
#: was barely legible.
DARK_CELL = 0.6


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
    that rounds to zero as '+0.0' (a negative zero or -0.04 read '-0.0'), no value as '—' (it read '+nan'),
    an infinite one as '+∞' or '−∞'."""
    value = float(value)
    if np.isnan(value):
        return "—"
    if np.isinf(value):
        return "+∞" if value > 0 else "−∞"
    digits = 1 if signed else 2
    value = value if round(value, digits) != 0 else 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def dataset_heatmap(matrix: pd.DataFrame, outcome: str, *, cell_width: int = 56, cell_height: int = 26,
                    random_weights: bool | None = None) -> alt.LayerChart:
    """The method x dataset matrix (``core.ranking.dataset_matrix`` output) as coloured cells with
    their values written in; the best method of each dataset is marked with a star and a black frame.
    Changes (gain, OOD change) use a diverging scale centred on zero. ``random_weights`` as in
    :func:`iimm_vs_outcome` (the matrix names no model: pass it). Raises ValueError when empty."""
    _require(matrix, ["method_title", "dataset", "value", "best"])
    if matrix.empty:
        raise ValueError("no values to draw")
    signed = outcome in ("id_gain", "ood_change")
    data = matrix.assign(label=[_cell_text(v, signed) + (" ★" if b else "") for v, b in zip(matrix["value"],
                                                                                             matrix["best"])])
    title = OUTCOME_TITLES.get(outcome, outcome)
    diverging = outcome in ("id_gain", "ood_change", "norm_gain")
    data["ink"] = _cell_ink(data["value"].to_numpy(float), diverging)
    scale = alt.Scale(scheme="redblue", domainMid=0) if diverging else alt.Scale(scheme="blues")
    order = (data.groupby("method_title")["value"].mean().sort_values(ascending=False).index.tolist())
    x = alt.X("dataset:N", title="dataset", sort="ascending",
              axis=alt.Axis(labelAngle=-40, labelLimit=160, labelOverlap=False))  # every dataset named
    y = alt.Y("method_title:N", title=None, sort=order, axis=alt.Axis(labelLimit=260))
    base = alt.Chart(data).encode(x=x, y=y)
    return alt.layer(
        base.mark_rect().encode(color=alt.Color("value:Q", title=title.split(" (")[0], scale=scale),
                                tooltip=[_tip("method_title", "method", "N"), _tip("dataset", "dataset", "N"),
                                         _tip("value", title), _tip("n_seeds", "seeds averaged")]),
        base.transform_filter(alt.datum.best).mark_rect(fill=None, stroke="black", strokeWidth=2),
        base.mark_text(fontSize=10).encode(text="label:N", color=alt.Color("ink:N", scale=None)),
    ).properties(title=alt.TitleParams(f"{title} per method and dataset", anchor="start", subtitle=_subtitle(
        "★ = best method on that dataset (seed means)", _untrained(matrix, random_weights))),
                 width=alt.Step(cell_width), height=alt.Step(cell_height))
