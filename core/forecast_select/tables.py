"""The forecast procedure on the store's runs: reference points per (model, method, dataset), the
selection table the job and the compare page show, and the forecast of a new dataset (the page's reading of
shipped tables is :mod:`core.forecast_select.shown`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from core import forecast
from core.forecast import is_finite_number
from core.metrics import check_count
from core.forecast_select.procedure import (DEFAULT_RULE, HEADLINE, _fit_predict, _half_width, _loo_abs_errors,
                                            _nested, _select, _standardise, candidate_sets, check_rule,
                                            jackknife_plus_interval, lodo_coverage, paired_gain_interval, set_label)

def reference_points(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (model, pretrained, method, dataset): outcomes and every predictor, averaged
    over seeds (ok runs, method 'zero_shot' left out), and the predictor names (IIMM first)."""
    from core import predictor_eval as pe

    frame, predictors = pe.predictor_frame(runs)
    names = [p for p, _ in predictors]
    if frame.empty:
        return frame, names
    cols = [c for c in (*pe.OUTCOMES, *names) if c in frame.columns]
    points = frame.groupby(["model", "pretrained", "method", "dataset"], sort=True)[cols].mean().reset_index()
    return points, names


def _check_outcomes(points: pd.DataFrame, outcomes: Sequence[str]) -> None:
    """ValueError naming every outcome the reference points lack (a typo used to raise a bare KeyError)."""
    if isinstance(outcomes, str):
        raise ValueError(f"outcomes must be a sequence of outcome names, got the string {outcomes!r}")
    missing = [o for o in outcomes if o not in points.columns]
    if missing:
        from core.predictor_eval import OUTCOMES

        raise ValueError(f"unknown outcome(s) {missing}; choose from {list(OUTCOMES)}")


def _check_min_datasets(min_datasets: object) -> None:
    """ValueError unless ``min_datasets`` is an integer >= 5 ("6" raised TypeError from '<'; 5.5 was taken)."""
    check_count(min_datasets, "min_datasets", minimum=5, why="nested LODO of a two-predictor line")


def _cell_arrays(cell: pd.DataFrame, outcome: str, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """y and the usable predictor columns of one cell: finite for every dataset with the outcome
    and not constant."""
    cell = cell[np.isfinite(cell[outcome].to_numpy(float))]
    usable = [p for p in names if p in cell.columns and len(cell) > 0  # no dataset has this outcome: none
              and np.isfinite(cell[p].to_numpy(float)).all() and np.ptp(cell[p].to_numpy(float)) > 0]
    return cell[usable].to_numpy(float), cell[outcome].to_numpy(float), usable


#: The gain over the IIMM-only line and its interval's ends, in selection tables and forecasts.
GAIN_COLUMNS = ("gain_vs_iimm", "gain_vs_iimm_lo", "gain_vs_iimm_hi")
SELECTION_COLUMNS = ["model", "pretrained", "method", "outcome", "status", "n_datasets", "n_predictors",
                     "n_sets", "chosen", "fold_agreement", "nested_lodo_mae", "iimm_lodo_mae",
                     "gain_vs_iimm", "gain_vs_iimm_lo", "gain_vs_iimm_hi", "mean_only_lodo_mae", "best_single",
                     "best_single_lodo_mae", "interval_half_width", "coverage", "mean_width", "iimm_coverage",
                     "iimm_mean_width", "level", "rule", "jackknife_plus_coverage", "jackknife_plus_mean_width"]


def selection_table(runs: pd.DataFrame, *, outcomes: Sequence[str] = ("id_gain", "norm_gain", "ood_change"),
                    level: float = 0.95, min_datasets: int = 6, pairs: bool = True,
                    coverage: bool = True, rule: str = DEFAULT_RULE,
                    predictors: Sequence[str] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Per (model, pretrained, method, outcome): which predictor set the procedure chooses on all
    reference datasets, how well the procedure predicts held-out datasets (nested LODO MAE) against
    the IIMM-only line's LODO MAE (``gain_vs_iimm`` > 0: the procedure is better by that much;
    ``gain_vs_iimm_lo``/``_hi``: its ``level`` paired t interval over the datasets, :func:`paired_gain_interval`),
    the interval's half-width for a new dataset and the measured LODO coverage of both intervals and of
    the procedure's jackknife+ interval (``jackknife_plus_*``: NaN coverage where it is not finite).

    ``fold_agreement``: share of the nested folds that chose the same set as the full data (how
    stable the choice is). ``best_single``: the single predictor with the lowest (un-nested) LODO
    error, for reading only. Cells with fewer than ``min_datasets`` datasets keep a status row.
    ``rule``: the selection rule (``SELECTION_RULES``), recorded in every row. ``predictors``: only these
    compete (e.g. the zero-shot measures, as in a forecast of a sample too small for the baselines); None:
    every predictor of the runs. ``progress``, if given, is called as ``progress(rows done, rows in all)``
    after each (cell, outcome) row (a long job's progress line).
    """
    check_rule(rule)
    level = forecast.check_level(level)
    _check_min_datasets(min_datasets)
    if isinstance(predictors, str):
        raise ValueError(f"predictors must be a sequence of predictor names, got the string {predictors!r}")
    points, names = reference_points(runs)
    if predictors is not None:
        from core.predictor_eval import TRANSFERABILITY_PREDICTORS, ZERO_SHOT_PREDICTORS

        # a typo ('iimn') was dropped silently: without IIMM the table scored the mean alone, no IIMM line
        unknown = [p for p in predictors if p not in {*names, *ZERO_SHOT_PREDICTORS, *TRANSFERABILITY_PREDICTORS}]
        if unknown:
            raise ValueError(f"unknown predictor(s) {unknown}; the runs have {names}")
        names = [p for p in names if p in set(predictors)]
    rows: list[dict[str, Any]] = []
    if points.empty:
        return pd.DataFrame(columns=SELECTION_COLUMNS)
    _check_outcomes(points, outcomes)
    groups = points.groupby(["model", "pretrained", "method"], sort=True)
    total = groups.ngroups * len(outcomes)
    for (model, pretrained, method), cell in groups:
        for outcome in outcomes:
            if progress is not None and rows:
                progress(len(rows), total)
            x, y, usable = _cell_arrays(cell, outcome, names)
            row: dict[str, Any] = {"model": model, "pretrained": pretrained, "method": method,
                                   "outcome": outcome, "n_datasets": len(y), "n_predictors": len(usable),
                                   "level": level, "rule": rule}
            rows.append(row)
            if len(y) < min_datasets:
                row["status"] = f"too few datasets (n={len(y)}, need {min_datasets})"
                continue
            row.update(_score_cell(x, y, usable, level, pairs=pairs, coverage=coverage, rule=rule))
    if progress is not None and rows:
        progress(len(rows), total)
    return pd.DataFrame(rows, columns=SELECTION_COLUMNS)


@dataclass(frozen=True)
class _Procedure:
    """The procedure on every reference dataset of one cell: candidate sets (names and columns), the
    IIMM column and its set (``head``, ``default``; None without IIMM), the chosen set, every set's
    LODO MAE, the nested LODO residuals with the set chosen in each fold, the IIMM-only line's LODO
    absolute error per dataset (``iimm_abs``; None without IIMM) and each fold's prediction at the new
    points asked for (``at_predictions``, (n, m); m = 0 when none was)."""

    sets_named: list[tuple[str, ...]]
    sets: list[tuple[int, ...]]
    head: int | None
    default: int | None
    best: int
    errors: np.ndarray
    resid: np.ndarray
    chosen: list[int]
    iimm_abs: np.ndarray | None
    at_predictions: np.ndarray

    def iimm_comparison(self, level: float) -> dict[str, float]:
        """The procedure's nested LODO MAE against the IIMM-only line's LODO MAE, and the gain between them with
        its paired ``level`` interval; the IIMM terms NaN without an IIMM line."""
        nested = float(np.mean(np.abs(self.resid)))
        if self.default is None or self.iimm_abs is None:
            return {"nested_lodo_mae": nested, **dict.fromkeys(("iimm_lodo_mae", *GAIN_COLUMNS), float("nan"))}
        iimm = float(self.errors[self.default])
        lo, hi = paired_gain_interval(self.iimm_abs, np.abs(self.resid), level=level)
        return {"nested_lodo_mae": nested, "iimm_lodo_mae": iimm, "gain_vs_iimm": iimm - nested,
                "gain_vs_iimm_lo": lo, "gain_vs_iimm_hi": hi}


def _run_procedure(x: np.ndarray, y: np.ndarray, usable: list[str], rule: str, *, pairs: bool = True,
                   at: np.ndarray | None = None) -> _Procedure:
    sets_named = candidate_sets(usable, pairs=pairs)
    sets = [tuple(usable.index(p) for p in s) for s in sets_named]
    rows = np.arange(len(y))
    head = usable.index(HEADLINE) if HEADLINE in usable else None
    default = sets.index((head,)) if head is not None else None
    best, errors = _select(x, y, rows, sets, default, rule)
    resid, chosen, at_predictions = _nested(x, y, rows, sets, default, rule, at)
    iimm_abs = _loo_abs_errors(_standardise(x, rows), y, [sets[default]])[0] if default is not None else None
    return _Procedure(sets_named, sets, head, default, best, errors, resid, chosen, iimm_abs, at_predictions)


def _score_cell(x: np.ndarray, y: np.ndarray, usable: list[str], level: float, *, pairs: bool,
                coverage: bool, rule: str) -> dict[str, Any]:
    proc = _run_procedure(x, y, usable, rule, pairs=pairs)
    sets_named, sets, head, best, errors, resid = (proc.sets_named, proc.sets, proc.head, proc.best, proc.errors,
                                                   proc.resid)
    singles = [k for k, s in enumerate(sets) if len(s) == 1]
    best_single = min(singles, key=lambda k: errors[k]) if singles else None
    out = {"status": "ok", "n_sets": len(sets), "chosen": set_label(sets_named[best]),
           "fold_agreement": float(np.mean([c == best for c in proc.chosen])), **proc.iimm_comparison(level),
           "mean_only_lodo_mae": float(errors[0]),
           "best_single": set_label(sets_named[best_single]) if best_single is not None else "",
           "best_single_lodo_mae": float(errors[best_single]) if best_single is not None else float("nan"),
           "interval_half_width": _half_width(resid, level)}
    if coverage:
        out.update(lodo_coverage(x, y, sets, head, level, rule=rule))
    return out


#: ``gain_vs_iimm`` is a difference of two MAEs: within this of 0 the procedure ties the IIMM-only line
NO_WORSE_TOLERANCE = 1e-12


def ties_as_zero(values: Any) -> np.ndarray:
    """``values`` (gains over the IIMM-only line or their interval's ends) as floats, each within
    :data:`NO_WORSE_TOLERANCE` of 0 set to 0: a procedure that chose IIMM in every fold differs from the
    IIMM-only line only in the last digits (-4e-15 would read as a loss). NaN kept."""
    out = np.asarray(values, dtype=float)
    return np.where(np.abs(out) < NO_WORSE_TOLERANCE, 0.0, out)


def no_worse_than_iimm(gain_vs_iimm: pd.Series) -> pd.Series:
    """Per cell of a selection or rules table: the procedure's nested LODO error is no worse than the IIMM-only
    line's (``gain_vs_iimm >= -NO_WORSE_TOLERANCE``); False where IIMM has no line (NaN)."""
    return gain_vs_iimm >= -NO_WORSE_TOLERANCE


def pooled_coverage(cells: pd.DataFrame, column: str) -> float:
    """A coverage ``column`` pooled over the selection-table ``cells`` where it is finite: held-out datasets
    covered / held-out datasets (each cell weighted by its ``n_datasets``); NaN when none is finite."""
    measured = cells[np.isfinite(cells[column].to_numpy(float))]
    weight = measured["n_datasets"].astype(float)
    return float((measured[column] * weight).sum() / weight.sum()) if len(measured) else float("nan")


def coverage_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per outcome and overall: the measured LODO coverage of the procedure's intervals and of the
    IIMM-only line's (held-out datasets covered / datasets, pooled over methods), mean nested LODO
    MAE vs IIMM-only LODO MAE, and in how many cells the procedure is no worse than IIMM-only.

    The IIMM comparisons use the ``iimm_cells`` cells where the IIMM-only line exists (IIMM finite on
    every dataset); both MAE means are over those same cells. The "all outcomes" row pools coverage
    (a share) and counts only: errors and widths of different outcomes are in different units
    (points, fraction of headroom), so there they are NaN.
    """
    ok = table[table["status"] == "ok"]
    cols = ["outcome", "cells", "iimm_cells", "level", "coverage", "iimm_coverage", "mean_width", "iimm_mean_width",
            "nested_lodo_mae", "iimm_lodo_mae", "cells_no_worse_than_iimm"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    def summarise(g: pd.DataFrame, name: str, one_unit: bool) -> dict[str, Any]:
        paired = g[np.isfinite(g["iimm_lodo_mae"].to_numpy(float)) & np.isfinite(g["nested_lodo_mae"].to_numpy(float))]
        mean = (lambda frame, c: float(frame[c].mean()) if len(frame) else float("nan")) if one_unit else (
            lambda frame, c: float("nan"))
        return {"outcome": name, "cells": len(g), "iimm_cells": len(paired), "level": float(g["level"].iloc[0]),
                "coverage": pooled_coverage(g, "coverage"), "iimm_coverage": pooled_coverage(g, "iimm_coverage"),
                "mean_width": mean(g, "mean_width"),
                "iimm_mean_width": mean(g[np.isfinite(g["iimm_mean_width"].to_numpy(float))], "iimm_mean_width"),
                "nested_lodo_mae": mean(paired, "nested_lodo_mae"), "iimm_lodo_mae": mean(paired, "iimm_lodo_mae"),
                "cells_no_worse_than_iimm": int(no_worse_than_iimm(paired["gain_vs_iimm"]).sum())}

    rows = [summarise(g, o, True) for o, g in ok.groupby("outcome", sort=False)]
    if len(rows) > 1:
        rows.append(summarise(ok, "all outcomes", False))
    return pd.DataFrame(rows, columns=cols)


FORECAST_COLUMNS = ["method", "outcome", "status", "predictors", "prediction", "lo", "hi", "nested_lodo_mae",
                    "coverage", "jackknife_plus_lo", "jackknife_plus_hi", "jackknife_plus_coverage",
                    "iimm_prediction", "iimm_lo", "iimm_hi", "iimm_lodo_mae", "iimm_coverage",
                    "gain_vs_iimm", "gain_vs_iimm_lo", "gain_vs_iimm_hi", "n_datasets", "n_sets", "extrapolation",
                    "level"]


def forecast_new(runs: pd.DataFrame, values: dict[str, float], *, model: str, pretrained: str,
                 outcomes: Sequence[str] = ("id_gain", "ood_change"), level: float = 0.95,
                 min_datasets: int = 6, coverage: bool = True, rule: str = DEFAULT_RULE) -> pd.DataFrame:
    """Forecast one new dataset, per (method, outcome) of ``model``/``pretrained``: the chosen
    predictor set's prediction with its LODO-calibrated interval, its nested LODO error and measured
    coverage, and beside it the IIMM-only line (OLS prediction interval, LODO error, coverage) and the
    procedure's gain over it (``gain_vs_iimm`` with :func:`paired_gain_interval`'s interval). Beside the
    interval, the procedure's distribution-free jackknife+ interval (``jackknife_plus_lo``/``_hi``:
    infinite on fewer than 19 reference datasets at 0.95) and its measured coverage.

    ``values``: the new dataset's predictor values (name -> float); only predictors with a finite
    value here and in every reference dataset compete. ``extrapolation``: a chosen predictor's new
    value lies outside the reference range. Empty frame when the model has no runs. ``rule``: the
    selection rule (``SELECTION_RULES``).
    """
    check_rule(rule)
    if not is_finite_number(values.get(HEADLINE)):
        raise ValueError(f"values needs a finite 'iimm', got {values.get(HEADLINE)!r}")
    level = forecast.check_level(level)
    _check_min_datasets(min_datasets)
    points, names = reference_points(runs)
    if points.empty:
        return pd.DataFrame(columns=FORECAST_COLUMNS)
    _check_outcomes(points, outcomes)
    mine = points[(points["model"] == model) & (points["pretrained"] == pretrained)]
    names = [p for p in names if p in values and is_finite_number(values[p])]
    rows: list[dict[str, Any]] = []
    for method, cell in mine.groupby("method", sort=True):
        for outcome in outcomes:
            x, y, usable = _cell_arrays(cell, outcome, names)
            row: dict[str, Any] = {"method": method, "outcome": outcome, "n_datasets": len(y), "level": level}
            rows.append(row)
            if len(y) < min_datasets:
                row["status"] = f"too few runs (n={len(y)}, need {min_datasets} datasets)"
                continue
            x0 = np.array([[float(values[p]) for p in usable]])
            proc = _run_procedure(x, y, usable, rule, at=x0)
            sets, head = proc.sets, proc.head
            jp_lo, jp_hi = jackknife_plus_interval(proc.at_predictions[:, 0], np.abs(proc.resid), level=level)
            pred = float(_fit_predict(x, y, np.arange(len(y)), sets[proc.best], x0)[0])
            half = _half_width(proc.resid, level)
            cols = list(sets[proc.best])
            row.update(status="ok", n_sets=len(sets), predictors=set_label(proc.sets_named[proc.best]),
                       prediction=pred, lo=pred - half, hi=pred + half, jackknife_plus_lo=jp_lo,
                       jackknife_plus_hi=jp_hi, **proc.iimm_comparison(level),
                       extrapolation=bool(((x0[0, cols] < x[:, cols].min(0)) | (x0[0, cols] > x[:, cols].max(0))).any())
                       if cols else False)
            if head is not None:
                fit = forecast.fit_linear(x[:, head], y)
                m, lo, hi = fit.predict(float(x0[0, head]), level)
                row.update(iimm_prediction=m, iimm_lo=lo, iimm_hi=hi)
            if coverage:
                cov = lodo_coverage(x, y, sets, head, level, rule=rule)
                row.update(coverage=cov["coverage"], iimm_coverage=cov["iimm_coverage"],
                           jackknife_plus_coverage=cov["jackknife_plus_coverage"])
    return pd.DataFrame(rows, columns=FORECAST_COLUMNS)
