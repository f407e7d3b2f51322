"""IIMM (or another zero-shot score) against an outcome: one chart of every method, or a panel per method;
and the per-method summary of a grid's runs."""
from __future__ import annotations

import textwrap
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from core import cards, ranking
from core.text import fixed, shorten
from core.charts.base import (RANDOM_WEIGHTS_NOTE, TOOLTIP_FORMAT, TOOLTIP_FORMATS, _colour_scale, _description, _fits,
                              _require, _spoken, _subtitle, _tip, _untrained, axis_title, method_colours, method_titles)


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
                    title: str | None = None, subtitle: str | list[str] | None = None, legend: bool = True,
                    colours: dict[str, str] | None = None, random_weights: bool | None = None,
                    domains: tuple[tuple[float, float], tuple[float, float]] | None = None) -> alt.LayerChart:
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
    domains: the (x, y) axes' ranges, for charts drawn apart that must share their axes; None: fitted to the data.
    """
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    _require_one_model(pts)
    untrained = _untrained(df, random_weights)
    _model_in_words(pts, untrained)
    fits = {method: _method_fit(group[predictor].to_numpy(float), group[outcome].to_numpy(float), level)
            for method, group in pts.groupby("method", sort=True)}
    return _drawn(pts, outcome, fits, highlight=highlight, predictor=predictor, level=level, width=width,
                  height=height, title=title, subtitle=subtitle, legend=legend, colours=colours, untrained=untrained,
                  domains=domains)


def _model_in_words(pts: pd.DataFrame, untrained: bool) -> None:
    """Replace ``pts``' model column (one model: checked by the caller) by its label, marked as the runs table
    marks a random-weight model, as the chart's subtitle says."""
    if "pretrained" in pts.columns:
        pairs = set(zip(pts["model"].astype(str), pts["pretrained"].astype(str), strict=True))
        pts["model"] = cards.model_label_column(pts, pairs if untrained else set())


def _method_fit(xs: np.ndarray, ys: np.ndarray, level: float) -> tuple | None:
    """One method's straight line through its points: (fit, Kendall τ, grid, mean, lo, hi), the band at 30 x values
    over the points' range; None where no line is fitted (fewer than 3 points, or x or y constant)."""
    if len(xs) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:  # constant y: no fit to report
        forecast = _fits()
        fit = forecast.fit_linear(xs, ys)
        grid = np.linspace(xs.min(), xs.max(), 30)
        return (fit, forecast.kendall_tau(xs, ys), grid, *forecast.confidence_band(fit, grid, level))
    return None


def _drawn(pts: pd.DataFrame, outcome: str, fits: dict[str, tuple | None], *, highlight: dict[str, Any] | None,
           predictor: str, level: float, width: int, height: int, title: str | None, subtitle: Any, legend: bool,
           colours: dict[str, str] | None, untrained: bool,
           domains: tuple[tuple[float, float], tuple[float, float]] | None, heading: alt.TitleParams | None = None,
           **extra: Any) -> alt.LayerChart:
    """:func:`iimm_vs_outcome`'s chart of its points ``pts`` (models in words), given each method's
    :func:`_method_fit`; ``heading``: the chart's title in place of the one made from ``title`` and ``subtitle``
    (which its description still reads); ``extra``: further top-level properties."""
    labels, bands, titles = {}, [], method_titles(pts["method"])
    for method, n in pts.groupby("method", sort=True).size().items():
        name = titles[method]
        label = f"{name} (n={n})"
        if fits[method] is not None:
            fit, tau, grid, mean, lo, hi = fits[method]
            label = f"{name} (R²={fit.r2:.2f}, τ={tau:.2f}, n={n})"
            bands.append(pd.DataFrame({"method": method, "x": grid, "fit": mean, "lo": lo, "hi": hi}))
        labels[method] = label
    pts["series"], pts["method_title"] = pts["method"].map(labels), pts["method"].map(titles)
    x_title, y_title = axis_title(predictor), axis_title(outcome)
    x_scale, y_scale = (alt.Scale(zero=False), alt.Scale()) if domains is None else (
        alt.Scale(zero=False, nice=True, domain=list(domains[0])), alt.Scale(nice=True, domain=list(domains[1])))
    color = alt.Color("series:N", title="method", scale=_colour_scale(labels, colours or method_colours(labels)),
                      legend=alt.Legend(labelLimit=320, symbolLimit=0) if legend else None)  # 0: every method named
    tips = [_tip("model", "model", "N"), _tip("dataset", "dataset", "N"), _tip("method_title", "method", "N"),
            _tip(predictor, x_title), _tip(outcome, y_title), _tip("n_seeds", "seeds averaged")]
    pts["said"] = _spoken(pts, tips)  # a screen reader's words for the point, where it read raw fields
    points = alt.Chart(pts).mark_circle(size=70, opacity=0.85).encode(
        x=alt.X(f"{predictor}:Q", title=x_title, scale=x_scale),
        y=alt.Y(f"{outcome}:Q", title=y_title, scale=y_scale), color=color, tooltip=tips,
        description=alt.Description("said:N"))  # a channel: its shorthand as a string cost ~20 ms per chart
    layers: list[alt.Chart] = []
    if bands:
        band = pd.concat(bands, ignore_index=True)
        band["series"] = band["method"].map(labels)
        base = alt.Chart(band).encode(x=alt.X("x:Q", title=x_title, scale=x_scale), color=color)
        fit_tip = [_tip("series", "straight-line fit", "N")]  # not the theme's raw 'x', 'fit', 'lo', 'hi'
        # hidden from screen readers (each read as one raw grid point); the chart's description gives the fits
        layers += [base.mark_area(opacity=0.15, aria=False).encode(y=alt.Y("lo:Q", title=y_title, scale=y_scale),
                                                                  y2=alt.Y2("hi:Q"), tooltip=fit_tip),
                   base.mark_line(aria=False).encode(y=alt.Y("fit:Q", title=y_title, scale=y_scale), tooltip=fit_tip)]
    layers.append(points)
    if highlight is not None:
        layers += _highlight_layers(highlight, x_title, y_title)
    if not title:
        title = f"{y_title.split(' (')[0]} vs {x_title}"
        fitted = (f"line: straight-line fit; band: {level:.0%} confidence of the fitted mean" if len(labels) == 1
                  else f"lines: straight-line fit per method; bands: {level:.0%} confidence of the fitted mean")
        subtitle = fitted if bands else "no line fitted: a fit needs 3 or more datasets with differing values"
    lines = _subtitle(subtitle, untrained)
    own_heading = alt.TitleParams(title, anchor="start", **({"subtitle": lines} if lines else {}))
    shown = (f"Scatter plot of {y_title} against {x_title}, one point per dataset (its seed mean), "
             f"{'one method' if len(labels) == 1 else f'{len(labels)} methods'}: {'; '.join(labels.values())}")
    described = _description(title, lines, shown, _highlight_text(highlight, x_title, y_title))
    # properties given to the layer, not set on a copy: every copy of a layer chart copies its layers (~10 ms)
    return alt.layer(*layers, title=own_heading if heading is None else heading, description=described, width=width,
                     height=height, **extra)


def _highlight_text(highlight: dict[str, Any] | None, x_title: str, y_title: str) -> str:
    """What :func:`_highlight_layers` draws, in words, for a chart's description ('' without a highlight)."""
    if highlight is None:
        return ""
    said = f"Marked: {highlight.get('label', 'your dataset')} at {x_title} {float(highlight['x']):.3f}"
    finite = {k: float(highlight[k]) for k in ("y", "lo", "hi")
              if highlight.get(k) is not None and np.isfinite(float(highlight[k]))}
    if "y" in finite:  # as the tooltips write them (d3 without '+': a value that rounds to zero has no minus)
        said += f", {y_title} {fixed(finite['y'], 2)}"
        if "lo" in finite and "hi" in finite:
            said += f" (interval {fixed(finite['lo'], 2)} to {fixed(finite['hi'], 2)})"
    return said


#: Width of one :func:`iimm_vs_outcome_by_method` panel's plot (px); its title is cut to it.
PANEL_WIDTH = 220
#: Longest method title a panel writes whole (characters, about :data:`PANEL_WIDTH` of bold title text); a longer
#: one keeps its start and end.
PANEL_TITLE_CHARS = 30


def iimm_panels_by_method(df: pd.DataFrame, outcome: str, *, predictor: str = "iimm", level: float = 0.95,
                          random_weights: bool | None = None) -> list[alt.LayerChart]:
    """One :func:`iimm_vs_outcome` chart per method (zero-shot left out), each titled with its method, R², τ and n,
    all on the same axes, to be laid out by the page: a row of them wraps to the page's width, where one chart of
    panels (:func:`iimm_vs_outcome_by_method`) is as wide as its columns (892 px: past the page's right edge on a
    1280 px screen, and half of it unseen at 800 px). An untrained model's panels each say
    :data:`RANDOM_WEIGHTS_NOTE` (``random_weights`` as in :func:`iimm_vs_outcome`): one may be saved alone.
    Raises ValueError when nothing can be drawn or the runs hold several models."""
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    pts = ranking.without_baselines(pts)  # zero-shot: flat at 0 by definition, no panel
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    _require_one_model(pts)
    untrained = _untrained(df, random_weights)
    note = textwrap.wrap(RANDOM_WEIGHTS_NOTE, 38) if untrained else []  # in lines a panel holds: one line was cut
    colours, titles = method_colours(pts["method"]), method_titles(pts["method"])
    _model_in_words(pts, untrained)
    # each method's points and line once: every panel drew itself from the runs again (its points, its fit twice)
    groups = {method: group.reset_index(drop=True) for method, group in pts.groupby("method", sort=True)}
    stats, fits, y_ends = {}, {}, [pts[outcome].min(), pts[outcome].max()]
    for method, group in groups.items():
        fits[method] = _method_fit(group[predictor].to_numpy(float), group[outcome].to_numpy(float), level)
        stats[method] = f"n={len(group)}"
        if fits[method] is not None:
            fit, tau, _, _, lo, hi = fits[method]
            stats[method] = f"R²={fit.r2:.2f} · τ={tau:.2f} · " + stats[method]
            y_ends += [lo.min(), hi.max()]  # the bands, as iimm_vs_outcome draws them, stay inside the axis
    domains = ((float(pts[predictor].min()), float(pts[predictor].max())), (float(min(y_ends)), float(max(y_ends))))
    panels = []
    for method in sorted(stats):
        # a title longer than the panel is cut (…): it widened the panel (in a grid of them, every column, pushing
        # the last out of the page: a 140-character method name left one panel in three unseen)
        lines = [*note, stats[method]]
        # autosize pad: the plot keeps its size and axes and titles are added around it (Streamlit's default,
        # fit, squeezed all of them into 220 x 170 px)
        # cut in the middle: cut at its end by ``limit``, long titles sharing a start were one text on every panel
        heading = shorten(titles[method], PANEL_TITLE_CHARS, keep_end=True)
        panels.append(_drawn(
            groups[method], outcome, {method: fits[method]}, highlight=None, predictor=predictor, level=level,
            width=PANEL_WIDTH, height=170, title=titles[method], subtitle=None, legend=False, colours=colours,
            untrained=untrained, domains=domains,  # the tooltips' model marked as well
            heading=alt.TitleParams(heading, anchor="start", limit=PANEL_WIDTH, subtitle=lines if note else lines[0]),
            autosize=alt.AutoSizeParams(type="pad", contains="padding")))
    return panels


def iimm_vs_outcome_by_method(df: pd.DataFrame, outcome: str, *, predictor: str = "iimm",
                              columns: int = 3, level: float = 0.95,
                              random_weights: bool | None = None) -> alt.ConcatChart:
    """Small multiples in one chart: the :func:`iimm_panels_by_method` panels, ``columns`` to a row; an untrained
    model's panels are titled :data:`RANDOM_WEIGHTS_NOTE` above them (``random_weights`` as in
    :func:`iimm_vs_outcome`). Its width is fixed by its columns: the app lays the panels out itself.
    Raises ValueError when nothing can be drawn or the runs hold several models."""
    panels = iimm_panels_by_method(df, outcome, predictor=predictor, level=level, random_weights=False)
    for panel in panels:  # a size for the whole chart only
        panel.autosize = alt.Undefined
    # No legend: each panel's title names its method. Dropped on the encoding, since Streamlit's chart
    # theme overrides a top-level configure_legend(disable=True) and drew every method's legend per panel.
    # Colour independent: each panel's scale holds only its own method and colour.
    chart = alt.concat(*panels, columns=columns).resolve_scale(x="shared", y="shared", color="independent")
    untrained = _untrained(df, random_weights)
    if untrained:
        chart = chart.properties(title=alt.TitleParams(RANDOM_WEIGHTS_NOTE, anchor="start", color="#b00020"))
    outcome_title, predictor_title = axis_title(outcome), axis_title(predictor)
    return chart.properties(description=_description(
        RANDOM_WEIGHTS_NOTE if untrained else "", None,
        f"{outcome_title.split(' (')[0]} vs {predictor_title}, a panel per method ({len(panels)}), each a point per "
        "dataset (its seed mean) and a straight-line fit",
        "; ".join(f"{panel.title.text}: {panel.title.subtitle if isinstance(panel.title.subtitle, str) else panel.title.subtitle[-1]}"
                  for panel in panels)))  # its fit's statistics, the last line under a random-weights note


def _highlight_layers(highlight: dict[str, Any], x_title: str, y_title: str) -> list[alt.Chart]:
    """The marked dataset's layers, hidden from screen readers: the chart's description says them
    (:func:`_highlight_text`)."""
    if "x" not in highlight or not np.isfinite(float(highlight["x"])):
        raise ValueError("highlight needs a finite 'x' (the user's predictor value)")
    row = {"x": float(highlight["x"]), "label": str(highlight.get("label", "your dataset"))}
    for key in ("y", "lo", "hi"):  # a NaN or infinite end has no place on the axis: as if not given
        if highlight.get(key) is not None and np.isfinite(float(highlight[key])):
            row[key] = float(highlight[key])
    tips = [_tip("label", "marked", "N"), alt.Tooltip("x:Q", title=x_title, format=TOOLTIP_FORMATS["iimm"])]
    if "y" in row:
        tips.append(alt.Tooltip("y:Q", title=y_title, format=TOOLTIP_FORMAT))
        if "lo" in row and "hi" in row:
            row["interval"] = f"[{fixed(row['lo'], 2)}, {fixed(row['hi'], 2)}]"  # no '-0.00' beside d3's '0.00'
            tips.append(_tip("interval", "interval", "N"))
    data = pd.DataFrame([row])
    x = alt.X("x:Q", title=x_title)
    layers = [alt.Chart(data).mark_rule(strokeDash=[6, 4], color="black", aria=False).encode(x=x, tooltip=tips[:2])]
    layers.append(alt.Chart(data).mark_text(align="left", dx=5, baseline="top", y=4, fontSize=11,
                                            fontWeight="bold", aria=False).encode(x=x, text="label:N", tooltip=tips[:2]))
    if "y" in row:
        layers.append(alt.Chart(data).mark_point(shape="diamond", size=300, filled=True,
                                                 color="black", aria=False).encode(
            x=x, y=alt.Y("y:Q", title=y_title), tooltip=tips))
        if "lo" in row and "hi" in row:
            layers.append(alt.Chart(data).mark_rule(color="black", strokeWidth=2, aria=False).encode(
                x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q", tooltip=tips))
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
