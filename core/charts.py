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

from core import forecast

log = logging.getLogger(__name__)

LABELS = {"id_gain": "ID gain (points)", "norm_gain": "normalised gain",
          "ood_change": "OOD change (points)", "iimm": "IIMM", "zs_acc": "zero-shot accuracy (%)"}


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the runs frame has no column(s) {missing}")


def _points(df: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Seed means per (model, method, dataset) of the ok runs with x and y present."""
    ok = df[df["status"] == "ok"].dropna(subset=[x, y])
    keys = ["model", "method", "dataset"]
    grouped = ok.groupby(keys, sort=True)
    out = grouped[[x, y]].mean()
    out["n_seeds"] = grouped.size()
    return out.reset_index()


def iimm_vs_outcome(df: pd.DataFrame, outcome: str, *, highlight: dict[str, Any] | None = None,
                    predictor: str = "iimm", level: float = 0.95, width: int = 520, height: int = 340,
                    title: str | None = None) -> alt.Chart:
    """Predictor (IIMM) vs an outcome: one colour per method, a point per dataset, the OLS line
    with its confidence band, and R²/Kendall τ/n of each method in its legend label.

    highlight: the user's dataset, ``{"x": value, "label": str, "y": float, "lo": float,
    "hi": float}`` (only "x" required): drawn as a dashed rule at x and, when "y" is given,
    a big diamond with its interval. Raises ValueError when no run has both values.
    Pass the runs of one model: a method's points from several models would share one line.
    """
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    labels, bands = {}, []
    for method, group in pts.groupby("method", sort=True):
        xs, ys = group[predictor].to_numpy(float), group[outcome].to_numpy(float)
        label = f"{method} (n={len(group)})"
        if len(group) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0:  # constant y: no fit to report
            fit = forecast.fit_linear(xs, ys)
            label = (f"{method} (R²={fit.r2:.2f}, τ={forecast.kendall_tau(xs, ys):.2f}, "
                     f"n={len(group)})")
            grid = np.linspace(xs.min(), xs.max(), 30)
            mean, lo, hi = forecast.confidence_band(fit, grid, level)
            bands.append(pd.DataFrame({"method": method, "x": grid, "fit": mean, "lo": lo, "hi": hi}))
        labels[method] = label
    pts["series"] = pts["method"].map(labels)
    x_title, y_title = LABELS.get(predictor, predictor), LABELS.get(outcome, outcome)
    color = alt.Color("series:N", title="method")
    points = alt.Chart(pts).mark_circle(size=70, opacity=0.85).encode(
        x=alt.X(f"{predictor}:Q", title=x_title, scale=alt.Scale(zero=False)),
        y=alt.Y(f"{outcome}:Q", title=y_title), color=color,
        tooltip=["model:N", "dataset:N", "method:N", alt.Tooltip(f"{predictor}:Q", format=".3f"),
                 alt.Tooltip(f"{outcome}:Q", format=".2f"), "n_seeds:Q"])
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
    if title is None:
        title = f"{x_title} vs {y_title} (lines: OLS fit, bands: {level:.0%} confidence of the mean)"
    return alt.layer(*layers).properties(title=title, width=width, height=height)


def iimm_vs_outcome_by_method(df: pd.DataFrame, outcome: str, *, predictor: str = "iimm",
                              columns: int = 3, level: float = 0.95) -> alt.ConcatChart:
    """Small multiples: one :func:`iimm_vs_outcome` panel per method, titled with its R², τ and n,
    on shared axes so methods compare at a glance. Raises ValueError when nothing can be drawn."""
    _require(df, ["status", "model", "method", "dataset", predictor, outcome])
    pts = _points(df, predictor, outcome)
    if pts.empty:
        raise ValueError(f"no ok runs with both {predictor!r} and {outcome!r} to draw")
    panels = []
    for method in sorted(pts["method"].unique()):
        group = pts[pts["method"] == method]
        xs, ys = group[predictor].to_numpy(float), group[outcome].to_numpy(float)
        stats = (f"R²={forecast.fit_linear(xs, ys).r2:.2f}, τ={forecast.kendall_tau(xs, ys):.2f}, "
                 if len(group) >= 3 and np.ptp(xs) > 0 and np.ptp(ys) > 0 else "")
        panels.append(iimm_vs_outcome(df[df["method"] == method], outcome, predictor=predictor, level=level,
                                      width=230, height=170, title=f"{method} ({stats}n={len(group)})"))
    return alt.concat(*panels, columns=columns).resolve_scale(x="shared", y="shared").resolve_legend(
        color="independent").configure_legend(disable=True)


def _highlight_layers(highlight: dict[str, Any], x_title: str, y_title: str) -> list[alt.Chart]:
    if "x" not in highlight or not np.isfinite(float(highlight["x"])):
        raise ValueError("highlight needs a finite 'x' (the user's predictor value)")
    row = {"x": float(highlight["x"]), "label": str(highlight.get("label", "your dataset"))}
    for key in ("y", "lo", "hi"):
        if highlight.get(key) is not None:
            row[key] = float(highlight[key])
    data = pd.DataFrame([row])
    x = alt.X("x:Q", title=x_title)
    layers = [alt.Chart(data).mark_rule(strokeDash=[6, 4], color="black").encode(
        x=x, tooltip=["label:N", alt.Tooltip("x:Q", format=".3f")])]
    if "y" in row:
        layers.append(alt.Chart(data).mark_point(shape="diamond", size=300, filled=True,
                                                 color="black").encode(
            x=x, y=alt.Y("y:Q", title=y_title),
            tooltip=["label:N", alt.Tooltip("x:Q", format=".3f"), alt.Tooltip("y:Q", format=".2f")]))
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
    xs, ys = out["id_gain_mean"].to_numpy(float), out["ood_change_mean"].to_numpy(float)
    out["pareto"] = [bool(np.isfinite(x) and np.isfinite(y) and not np.any(
        (xs >= x) & (ys >= y) & ((xs > x) | (ys > y)))) for x, y in zip(xs, ys)]
    return out[cols]


def gain_vs_forgetting(df: pd.DataFrame) -> alt.Chart:
    """Mean ID gain (x) vs mean OOD change (y) per method, ± 1 std error bars over runs, the
    individual runs faintly behind, and the Pareto front (more gain, less forgetting) as a
    line through the filled points. Raises ValueError when no ok run has both outcomes."""
    summary = method_summary(df.dropna(subset=["id_gain", "ood_change"]))
    if summary.empty:
        raise ValueError("no ok runs with both 'id_gain' and 'ood_change' to draw")
    summary = summary.fillna({"id_gain_std": 0.0, "ood_change_std": 0.0})
    summary = summary.assign(
        x_lo=summary["id_gain_mean"] - summary["id_gain_std"],
        x_hi=summary["id_gain_mean"] + summary["id_gain_std"],
        y_lo=summary["ood_change_mean"] - summary["ood_change_std"],
        y_hi=summary["ood_change_mean"] + summary["ood_change_std"],
        front=np.where(summary["pareto"], "Pareto front", "dominated"))
    runs = df[df["status"] == "ok"].dropna(subset=["id_gain", "ood_change"])
    x = alt.X("id_gain_mean:Q", title=LABELS["id_gain"])
    y = alt.Y("ood_change_mean:Q", title=LABELS["ood_change"])
    color = alt.Color("method:N")
    base = alt.Chart(summary)
    tooltip = ["method:N", "n_runs:Q", "n_datasets:Q",
               alt.Tooltip("id_gain_mean:Q", format=".2f"), alt.Tooltip("id_gain_std:Q", format=".2f"),
               alt.Tooltip("ood_change_mean:Q", format=".2f"),
               alt.Tooltip("ood_change_std:Q", format=".2f"), "front:N"]
    layers = [
        alt.Chart(runs).mark_circle(size=20, opacity=0.2).encode(
            x=alt.X("id_gain:Q", title=LABELS["id_gain"]),
            y=alt.Y("ood_change:Q", title=LABELS["ood_change"]), color=color,
            tooltip=["model:N", "method:N", "dataset:N", "seed:Q",
                     alt.Tooltip("id_gain:Q", format=".2f"), alt.Tooltip("ood_change:Q", format=".2f")]),
        base.mark_rule().encode(x=alt.X("x_lo:Q", title=LABELS["id_gain"]), x2="x_hi:Q", y=y, color=color),
        base.mark_rule().encode(x=x, y=alt.Y("y_lo:Q", title=LABELS["ood_change"]), y2="y_hi:Q", color=color),
        base.transform_filter(alt.datum.pareto).mark_line(color="gray", strokeDash=[4, 3])
        .encode(x=x, y=y, order="id_gain_mean:Q"),
        base.mark_point(size=160, strokeWidth=2).encode(
            x=x, y=y, color=color, tooltip=tooltip,
            fill=alt.condition(alt.datum.pareto, "method:N", alt.value("white"), legend=None),
            shape=alt.Shape("front:N", title="")),
    ]
    return alt.layer(*layers).properties(
        title="Gain vs forgetting per method (mean ± 1 std; filled = Pareto front)",
        width=520, height=340)
