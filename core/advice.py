"""A forecast turned into advice: which method to try, how sure we are, what to be careful about.

:func:`forecast_rows` is the one adapter between the forecast machinery (``core.predict`` /
``core.forecast``) and everything the app shows; re-point it when the forecast's outputs change.
:func:`advise` reads only its rows, so the verdict logic does not depend on how they were made.
"""
from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core import cards, ranking
from core.text import plain, signed

log = logging.getLogger(__name__)

#: Columns of :func:`forecast_rows`, named like ``core.ranking`` rows so the same charts draw both.
ROW_COLUMNS = ["method", "method_title", "ok", "status", "id_gain", "id_gain_lo", "id_gain_hi", "ood_change",
               "ood_change_lo", "ood_change_hi", "gain_r2", "ood_r2", "gain_lodo", "ood_lodo", "n_datasets",
               "extrapolation", "pareto", "gain_basis", "ood_basis", "iimm_gain", "iimm_ood"]
WEAK_R2 = 0.3  # below this median R² the fitted lines explain little of the spread between datasets
GOOD_R2 = 0.6
#: Zero-shot accuracy this many points under chance is called below chance (a small sample wobbles).
BELOW_CHANCE_POINTS = 10.0
#: Fewer images than this per class (on average) and the sample's measures rest on very little.
MIN_IMAGES_PER_CLASS = 5


@dataclass
class Advice:
    """The verdict of one forecast, in plain sentences (no Markdown inside)."""

    confidence: str  # "weak", "moderate" or "good"
    headline: list[str]
    reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def forecast_rows(result: Any) -> pd.DataFrame:
    """One row per method from a ``core.predict.ForecastResult``: :data:`ROW_COLUMNS` (titles distinct as
    :func:`core.cards.method_titles` makes them: 'LoRA · Lora').

    Predictions and their prediction intervals in points; ``gain_r2``/``ood_r2`` the fit of the IIMM
    reference line; ``*_lodo`` the leave-one-dataset-out mean absolute error of the forecast shown (the
    IIMM line's, or the nested one of a chosen predictor set: :func:`_use_selected`); ``pareto`` among the
    ok rows. Baseline methods (zero-shot) are left out.
    """
    wide = result.forecasts
    rows = pd.DataFrame({
        "method": wide["method"], "method_title": wide["method"].astype(str).map(cards.method_titles(wide["method"])),
        "ok": wide["status"] == "ok", "status": wide["status"],
        **{c: pd.to_numeric(wide.get(c), errors="coerce") for c in
           ("id_gain", "id_gain_lo", "id_gain_hi", "ood_change", "ood_change_lo", "ood_change_hi")},
        "gain_r2": pd.to_numeric(wide.get("id_gain_r2"), errors="coerce"),
        "ood_r2": pd.to_numeric(wide.get("ood_change_r2"), errors="coerce"),
        "gain_lodo": pd.to_numeric(wide.get("id_gain_lodo_mae"), errors="coerce"),
        "ood_lodo": pd.to_numeric(wide.get("ood_change_lodo_mae"), errors="coerce"),
        "n_datasets": wide["n_datasets"], "extrapolation": cards.flag_values(wide["extrapolation"])})
    rows["iimm_gain"], rows["iimm_ood"] = rows["id_gain"], rows["ood_change"]
    rows["gain_basis"], rows["ood_basis"] = "IIMM", "IIMM"
    _use_selected(rows, getattr(result, "selected", None))
    rows = ranking.without_baselines(rows).reset_index(drop=True)
    ok = rows["ok"] & rows["id_gain"].notna() & rows["ood_change"].notna()
    rows["pareto"] = False
    rows.loc[ok, "pareto"] = ranking.pareto_mask(rows.loc[ok, "id_gain"], rows.loc[ok, "ood_change"])
    return rows[ROW_COLUMNS]


def _use_selected(rows: pd.DataFrame, selected: pd.DataFrame | None) -> None:
    """Where the forecast chose a predictor set by nested leave-one-dataset-out (``result.selected``),
    its prediction, calibrated interval and nested LODO error replace the IIMM line's (kept in
    ``iimm_gain``/``iimm_ood``); ``*_basis`` names the predictors used. In place."""
    if selected is None or selected.empty or "status" not in selected.columns:
        return
    chosen = selected[selected["status"] == "ok"].set_index(["method", "outcome"])
    for outcome, short, basis in (("id_gain", "gain", "gain_basis"), ("ood_change", "ood", "ood_basis")):
        for i, method in rows["method"].items():
            if (method, outcome) not in chosen.index:
                continue
            pick = chosen.loc[(method, outcome)]
            # a choice of IIMM alone is the IIMM line (its R² counts in the verdict), named as the page names it
            # named as the page names predictors elsewhere ('zero-shot accuracy', not the key 'zs_acc')
            label = cards.predictor_set_title(pick["predictors"])
            label = "IIMM" if label.lower() == "iimm" else label
            rows.loc[i, [outcome, f"{outcome}_lo", f"{outcome}_hi", f"{short}_lodo", basis]] = [
                pick["prediction"], pick["lo"], pick["hi"], pick["nested_lodo_mae"], label]
            if bool(pick.get("extrapolation", False)):  # a chosen predictor outside its reference range
                rows.loc[i, "extrapolation"] = True


def _finite(value: Any) -> bool:
    return value is not None and not pd.isna(value) and math.isfinite(float(value))


def _median(values: pd.Series) -> float:
    finite = values[np.isfinite(values.astype(float))]
    return float(finite.median()) if len(finite) else math.nan


def advise(rows: pd.DataFrame, *, toy_model: bool = False, random_weights: bool = False,
           zs_acc: float | None = None, n_classes: int | None = None, model_title: str = "This model",
           n_images: int | None = None) -> Advice:
    """The verdict on :func:`forecast_rows` output.

    Headline: the method predicted to gain most, the one that forgets least while keeping at least
    half that gain, and the predicted best trade-offs. Confidence: "weak" when the IIMM reference lines
    behind the forecasts shown explain little (median R² below :data:`WEAK_R2`) or the forecasts'
    leave-one-dataset-out error is as large as the spread of the predicted gains; "good" above
    :data:`GOOD_R2` with no overlapping interval; else "moderate" (never "good" when no forecast shown
    rests on an IIMM line, whose R² is the one measured). Warnings: toy or untrained model, a sample
    of fewer than :data:`MIN_IMAGES_PER_CLASS` images per class, extrapolation on any predictor a forecast
    uses, predictions outside what is possible (intervals are not clipped), zero-shot accuracy near or
    below chance.
    """
    ok = rows[rows["ok"]].dropna(subset=["id_gain", "ood_change"])
    warnings = []
    if random_weights:
        warnings.append("The model has RANDOM WEIGHTS (untrained): these numbers describe noise, not a model.")
    elif toy_model:
        warnings.append(f"{model_title} is a toy model pretrained on this project's generated world; its "
                        "forecast shows how the method works, not what a real CLIP model would do.")
    if zs_acc is not None and n_classes:
        chance = 100.0 / n_classes
        if zs_acc < chance - BELOW_CHANCE_POINTS:
            warnings.append(f"Zero-shot accuracy on your sample ({zs_acc:.3g} %) is below chance "
                            f"({chance:.3g} %): the model's zero-shot guesses are systematically wrong "
                            "here; check that the class names say what the images show.")
        elif zs_acc < chance + 0.25 * (100.0 - chance):
            warnings.append(f"Zero-shot accuracy on your sample ({zs_acc:.3g} %) is close to chance "
                            f"({chance:.3g} %): the model barely recognises these classes.")
    if n_images is not None and n_classes and n_images < MIN_IMAGES_PER_CLASS * n_classes:
        warnings.append(f"Your sample is small ({n_images} images for {n_classes} classes): its IIMM and "
                        "zero-shot accuracy, and so every forecast, rest on few images; see IIMM's interval.")
    if ok.empty:
        if rows["id_gain"].notna().any():  # gains forecast, but no reference run measured out-of-domain
            return Advice("weak", ["Only in-domain gains could be forecast (in the table below): the stored runs "
                                   "measured no out-of-domain change, so nothing can be said about forgetting."],
                          warnings=warnings)
        return Advice("weak", ["No method could be forecast from the stored runs."], warnings=warnings)
    if ok["extrapolation"].any():
        warnings.append("Your dataset lies outside the range of the reference datasets on a predictor that "
                        f"{int(ok['extrapolation'].sum())} of the forecasts use (IIMM or one chosen beside it): "
                        "those forecasts extrapolate the fitted lines, and their intervals do not widen for it.")
    if zs_acc is not None and math.isfinite(zs_acc):
        low, high = -zs_acc, 100.0 - zs_acc  # in-domain gain = fine-tuned - zero-shot accuracy
        outside = ok[(ok["id_gain"] < low) | (ok["id_gain"] > high)]
        if len(outside):
            first = outside.iloc[0]
            warnings.append(f"{len(outside)} predicted gain(s) lie outside what is possible here ({signed(low)} to "
                            f"{signed(high)} points, from your zero-shot accuracy), e.g. {first['method_title']} "
                            f"{signed(first['id_gain'])}: the straight-line fits are not bounded, and the "
                            "predictions and intervals are shown as fitted, not clipped.")
    best = ok.loc[ok["id_gain"].idxmax()]
    best_interval = _finite(best["id_gain_lo"]) and _finite(best["id_gain_hi"])
    interval = (f"95 % interval {signed(best['id_gain_lo'])} to {signed(best['id_gain_hi'])}" if best_interval
                else "no interval could be computed")
    headline = [f"Predicted to gain most: {best['method_title']}, {signed(best['id_gain'])} points in-domain "
                f"({interval}) and {signed(best['ood_change'])} points out-of-domain."]
    if best["id_gain"] > 0:
        useful = ok[ok["id_gain"] >= best["id_gain"] / 2]
        gentle = useful.loc[useful["ood_change"].idxmax()]
        if gentle["method"] != best["method"]:
            headline.append(f"Least forgetting for at least half that gain: {gentle['method_title']}, "
                            f"{signed(gentle['id_gain'])} in-domain and {signed(gentle['ood_change'])} out-of-domain.")
    else:
        headline.append("No method is predicted to gain in-domain.")
    front = ok[ok["pareto"]].sort_values("id_gain", ascending=False)["method_title"].tolist()
    headline.append("Best trade-offs (nothing predicted to beat them on both): " + ", ".join(front) + ".")

    # R² is measured for the IIMM lines only: count it where the forecast shown is an IIMM line's
    r2 = _median(pd.concat([ok.loc[ok["gain_basis"] == "IIMM", "gain_r2"],
                            ok.loc[ok["ood_basis"] == "IIMM", "ood_r2"]]))
    lodo = _median(ok["gain_lodo"])
    spread = float(ok["id_gain"].max() - ok["id_gain"].min())
    others = ok[ok["method"] != best["method"]]
    # an interval that could not be computed may overlap: it is never counted as clear of the top one
    unknown = int((~np.isfinite(others["id_gain_hi"].astype(float))).sum()) if best_interval else len(others)
    overlapping = int((others["id_gain_hi"] >= best["id_gain_lo"]).sum()) if best_interval else 0
    fit = (f"The IIMM reference lines behind the forecasts shown explain {r2:.0%} of the spread between datasets "
           "(median R² over methods and outcomes)." if math.isfinite(r2) else
           "Every forecast shown uses predictors chosen on held-out datasets; their fit is judged by the error below.")
    reasons = [fit,
               (f"On datasets we know, such forecasts of the gain were off by {lodo:.1f} points on average "
                f"(leave-one-dataset-out), against a {spread:.1f}-point spread between the methods' forecasts."
                if math.isfinite(lodo) else "How far such forecasts of the gain are off on datasets we know could "
                "not be measured (no leave-one-dataset-out error)."),  # it read 'off by nan points'
               (f"The top method's interval overlaps those of {overlapping} of the other {len(ok) - 1} methods"
                + (f"; {unknown} of them have no interval to compare." if unknown else ".")) if best_interval
               else "The top method has no interval, so how clearly it leads is not known."]
    if (math.isfinite(r2) and r2 < WEAK_R2) or not math.isfinite(lodo) or lodo >= spread:
        confidence = "weak"
        why = ("the fit is weak" if math.isfinite(r2) and r2 < WEAK_R2 else
               "how far such forecasts are off is not known" if not math.isfinite(lodo) else
               "the forecasts' typical error is as large as the differences between the methods")
        reasons.insert(0, f"Treat this as a hint, not a number: {why}.")
    elif r2 >= GOOD_R2 and overlapping == 0 and unknown == 0 and best_interval:
        confidence = "good"
    else:
        confidence = "moderate"
    return Advice(confidence, headline, reasons, warnings)


def advise_forecast(result: Any, rows: pd.DataFrame) -> Advice:
    """:func:`advise` on a ``core.predict.ForecastResult`` and its :func:`forecast_rows`, told what the result knows:
    the model's card (toy or not, its title), random weights (the model's or its reference runs'), the zero-shot
    accuracy and the sample's size. One call for every surface that shows a forecast (the page, jobs.forecast),
    so their verdicts cannot drift apart. Without enough reference runs its warnings still hold."""
    card = cards.model_card(result.model, result.pretrained)
    return advise(rows, toy_model=card.toy, random_weights=result.untrained, model_title=card.title,
                  zs_acc=result.zero_shot.get("zs_acc"), n_classes=result.n_classes, n_images=result.n_images)


__all__ = ["Advice", "ROW_COLUMNS", "advise", "advise_forecast", "forecast_rows"]


def forecast_inputs(upload: Any, model_key: str, template: str) -> tuple[Any, ...]:
    """What a forecast is made from: the uploaded file (its name, and its upload id, so a changed file of
    the same name counts), the model, and the template (only for images: an .npz carries its own text)."""
    if upload is None:
        return (None, model_key, None, None)
    npz = str(upload.name).lower().endswith(".npz")
    return (upload.name, model_key, None if npz else template, getattr(upload, "file_id", None))


def stale_notice(made_with: Sequence[Any], now: Sequence[Any]) -> str | None:
    """What to say when the forecast on screen was made from other inputs (:func:`forecast_inputs`) than
    the page's widgets now hold (None when they match)."""
    if tuple(made_with) == tuple(now):
        return None
    template = "" if made_with[2] is None else f" and the template {plain(made_with[2])}"
    made = f"The forecast below was made for {plain(made_with[0])} with the model {plain(made_with[1])}{template}"
    if now[0] is None:  # no upload now: Run forecast cannot start
        return f"{made}; its upload has been removed since: upload a sample to forecast again."
    return f"{made}; the upload or the choices above have changed since: press Run forecast to forecast with them."
