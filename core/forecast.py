"""Forecasts of fine-tuning outcomes from zero-shot predictors, by ordinary least squares.

Numbers here answer "if I fine-tune with method M, how much will I gain in-domain and lose
out-of-domain?" from the stored runs of the same model: one point per training dataset (the
mean over seeds), a straight line outcome ~ predictor, a *prediction* interval for one new
dataset (t distribution), and the leave-one-dataset-out (LODO) error as an honest record of
how far such predictions were off on datasets we know.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.metrics import check_count, check_level, is_real_number  # noqa: F401 (forecast_select uses it from here)
from core.predictor_columns import earlier_baselines, expand_predictor_columns  # noqa: F401 (callers use them from here)

log = logging.getLogger(__name__)

OUTCOMES = ("id_gain", "norm_gain", "ood_change")


def is_finite_number(value: object) -> bool:
    """True for a finite real number: Python or numpy ints and floats (np.float32 included), not bools; False for
    an int beyond the float range (10**400), which float() cannot hold."""
    try:
        return is_real_number(value) and math.isfinite(float(value))
    except OverflowError:
        return False


def _vectors(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """x as an (n, p) float matrix and y as (n,), checked: y 1-D (or one column), same n, finite."""
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=float)
    if ya.ndim > 1 and ya.size != len(ya):  # (2, 2) was flattened to 4 values and fitted against 4 rows of x
        raise ValueError(f"y must be 1-D (one value per row of x), got shape {ya.shape}")
    ya = ya.ravel()
    if xa.ndim == 1:
        xa = xa[:, None]
    if xa.ndim != 2:  # a bare number has no rows (it raised IndexError here); a 3-D x is no design matrix
        raise ValueError(f"x must be a 1-D sequence or an (n, p) matrix, got shape {xa.shape}")
    if xa.shape[0] != ya.shape[0]:
        raise ValueError(f"x and y must have the same number of rows, got {xa.shape[0]} and {ya.shape[0]}")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise ValueError("x and y must be finite (no NaN or inf)")
    return xa, ya


@dataclass(frozen=True)
class LinearFit:
    """An OLS fit y = intercept + coef . x. ``resid_std`` is sqrt(SSE / (n - p - 1))."""

    coef: np.ndarray
    intercept: float
    r2: float
    n: int
    resid_std: float
    xtx_inv: np.ndarray  # inverse of D'D, D = [1, x]: the shape of every interval

    @property
    def p(self) -> int:
        return int(self.coef.shape[0])

    @property
    def slope(self) -> float:
        """The slope of a one-predictor fit."""
        if self.p != 1:
            raise ValueError(f"slope is defined for one predictor; this fit has {self.p}")
        return float(self.coef[0])

    @property
    def dof(self) -> int:
        return self.n - self.p - 1

    def _design(self, x0: Any) -> tuple[np.ndarray, bool]:
        xa = np.asarray(x0, dtype=float)
        if (xa.shape[-1] if xa.ndim else 1) != self.p and not (self.p == 1 and xa.ndim <= 1):
            raise ValueError(f"x0 must hold {self.p} predictor value(s) per point, got shape {xa.shape}")
        scalar = xa.ndim == 0 or (self.p > 1 and xa.ndim == 1)
        xa = xa.reshape(-1, self.p) if self.p > 1 else xa.reshape(-1, 1)
        if not np.isfinite(xa).all():
            raise ValueError("x0 must be finite")
        return np.column_stack([np.ones(len(xa)), xa]), scalar

    def _interval(self, x0: Any, level: float, extra: float) -> tuple[Any, Any, Any]:
        level = check_level(level)  # a string such as "0.9" raised TypeError from '<'
        if self.dof < 1:
            raise ValueError(f"an interval needs at least {self.p + 2} points; this fit has {self.n}")
        d, scalar = self._design(x0)
        mean = d @ np.concatenate([[self.intercept], self.coef])
        lever = np.einsum("ij,jk,ik->i", d, self.xtx_inv, d)
        half = stats.t.ppf(0.5 + level / 2.0, self.dof) * self.resid_std * np.sqrt(extra + lever)
        out = mean, mean - half, mean + half
        return tuple(float(v[0]) for v in out) if scalar else out  # type: ignore[return-value]

    def predict(self, x0: Any, level: float = 0.95) -> tuple[Any, Any, Any]:
        """(mean, lo, hi) of a *new observation* at x0: the prediction interval
        mean ± t_{dof} · s · sqrt(1 + d0'(D'D)⁻¹d0). Floats for one point given bare (a number, or for p > 1 one
        row of p values); arrays, one entry per point, for a sequence of points, even of one ([0.3] gives arrays of
        shape (1,))."""
        return self._interval(x0, level, 1.0)

    def predict_mean(self, x0: Any) -> Any:
        """The fitted line at x0 (no interval; works for any n): a float or an array, as :meth:`predict` gives."""
        d, scalar = self._design(x0)
        mean = d @ np.concatenate([[self.intercept], self.coef])
        return float(mean[0]) if scalar else mean


def fit_linear(x: Any, y: Any) -> LinearFit:
    """OLS of y on x (one column, or an (n, p) matrix for several predictors) with intercept.

    ``r2`` is NaN when y is constant (no variance to explain). Raises ValueError for mismatched
    or non-finite input, fewer than p + 1 points, or predictors that are constant or collinear.
    """
    xa, ya = _vectors(x, y)
    n, p = xa.shape
    d, beta, sse, sst = _ols(xa, ya)
    r2 = 1.0 - sse / sst if sst > 0 else float("nan")  # a constant outcome has no variance to explain
    s = math.sqrt(sse / (n - p - 1)) if n > p + 1 else float("nan")
    return LinearFit(beta[1:].copy(), float(beta[0]), r2, n, s, np.linalg.inv(d.T @ d))


def _ols(xa: np.ndarray, ya: np.ndarray, d: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float, float]:
    """:func:`fit_linear`'s least squares of checked ``xa`` (n, p) and ``ya`` (n,): the design matrix [1, x] (``d``
    where the caller has it), the coefficients (intercept first), SSE and SST; raises its ValueErrors."""
    n, p = xa.shape
    if n < p + 1:
        raise ValueError(f"a fit with {p} predictor(s) needs at least {p + 1} points, got {n}")
    d = np.column_stack([np.ones(n), xa]) if d is None else d
    if np.linalg.matrix_rank(d) < p + 1:
        raise ValueError("the predictor values are constant or collinear: no line can be fitted")
    beta, *_ = np.linalg.lstsq(d, ya, rcond=None)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused just below, in words, not as noise
        resid = ya - d @ beta
        sse = float(resid @ resid)
        sst = float(((ya - ya.mean()) ** 2).sum())
    if not (np.isfinite(beta).all() and math.isfinite(sse) and math.isfinite(sst)):
        raise ValueError("the values are too large to fit (the sums overflow); rescale x or y")
    return d, beta, sse, sst


def confidence_band(fit: LinearFit, xs: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, lo, hi) arrays of the confidence band of the fitted *mean line* at xs (for charts):
    mean ± t · s · sqrt(d0'(D'D)⁻¹d0). Narrower than :meth:`LinearFit.predict`'s interval."""
    mean, lo, hi = fit._interval(np.atleast_1d(np.asarray(xs, dtype=float)), level, 0.0)
    return np.asarray(mean), np.asarray(lo), np.asarray(hi)


def pearson_r(x: Any, y: Any) -> float:
    """Pearson correlation; NaN when either input is constant. Needs at least 2 points."""
    xa, ya = _vectors(x, y)
    if xa.shape[1] != 1 or len(ya) < 2:
        raise ValueError("pearson_r needs two 1-D sequences of at least 2 points")
    xv = xa[:, 0] - xa[:, 0].mean()
    yv = ya - ya.mean()
    # r is scale-free: dividing by the largest deviation keeps the sums of squares from over/underflowing
    xv, yv = xv / max(np.abs(xv).max(), 1e-300), yv / max(np.abs(yv).max(), 1e-300)
    denom = math.sqrt(float(xv @ xv) * float(yv @ yv))
    return float(xv @ yv / denom) if denom > 0 else float("nan")


def kendall_tau(x: Any, y: Any) -> float:
    """Kendall's tau-b (ties handled); NaN when either input is constant. Needs 2+ points."""
    xa, ya = _vectors(x, y)
    if xa.shape[1] != 1 or len(ya) < 2:
        raise ValueError("kendall_tau needs two 1-D sequences of at least 2 points")
    if np.ptp(xa[:, 0]) == 0 or np.ptp(ya) == 0:
        return float("nan")
    return float(stats.kendalltau(xa[:, 0], ya).statistic)


def leave_one_group_out(x: Any, y: Any, groups: Any) -> dict[str, Any]:
    """Refit without each group and predict its points (leave-one-dataset-out).

    Returns ``{"mae", "n_groups", "predictions", "per_group"}``: the mean absolute error over
    all predicted points, the array of out-of-group predictions aligned with y (NaN where a
    fold could not be fitted, e.g. the remaining x are constant), and ``{group: MAE}``.
    Raises ValueError for fewer than 3 groups, a missing group label or mismatched lengths.
    """
    xa, ya = _vectors(x, y)
    g = np.asarray(groups, dtype=object).ravel()
    if len(g) != len(ya):
        raise ValueError(f"groups must have one entry per point, got {len(g)} for {len(ya)}")
    if pd.isna(g).any():  # a NaN label equals nothing, so its points would never be held out
        raise ValueError("groups must not contain missing values (NaN or None)")
    labels = list(dict.fromkeys(g.tolist()))
    if len(labels) < 3:
        raise ValueError(f"leave-one-group-out needs at least 3 groups, got {len(labels)}")
    preds = np.full(len(ya), np.nan)
    per_group: dict[Any, float] = dict.fromkeys(labels, float("nan"))  # NaN: a fold that could not be fitted
    # each fold's line as fit_linear draws it, without what a prediction of the mean does not use (its interval's
    # matrix, the checks of points already checked): 300 datasets took ~0.1 s per method and outcome
    place = {label: k for k, label in enumerate(labels)}
    codes = np.array([place[v] for v in g.tolist()])  # label k's points are codes == k: one pass, not one each
    design = np.column_stack([np.ones(len(ya)), xa])  # [1, x]: each fold's rows of it are the fold's own
    folds = []
    for k, label in enumerate(labels):
        held = codes == k
        kept = ~held
        rows = design[kept]
        try:
            _, beta, _, _ = _ols(xa[kept], ya[kept], rows)
        except ValueError as exc:
            log.debug("LODO fold %r skipped: %s", label, exc)
            continue
        folds.append((label, held, beta, rows.T @ rows))
    refused = _singular([gram for *_, gram in folds])
    for i, (label, held, beta, _) in enumerate(folds):
        if i in refused:  # fit_linear refuses it (LinAlgError: singular matrix), so it is skipped as before
            continue
        preds[held] = design[held] @ beta  # as LinearFit.predict_mean
        per_group[label] = float(np.mean(np.abs(preds[held] - ya[held])))
    ok = ~np.isnan(preds)
    mae = float(np.mean(np.abs(preds[ok] - ya[ok]))) if ok.any() else float("nan")
    return {"mae": mae, "n_groups": len(labels), "predictions": preds, "per_group": per_group}


def _singular(grams: list[np.ndarray]) -> set[int]:
    """Which of the folds' D'D np.linalg.inv refuses, asked in one call: fit_linear raised (and LODO skipped the
    fold) where D'D is singular in floating point though D has full rank (x constant but for its 8th digit)."""
    try:
        if grams:
            np.linalg.inv(np.stack(grams))
        return set()
    except np.linalg.LinAlgError:
        bad = set()
        for i, gram in enumerate(grams):
            try:
                np.linalg.inv(gram)
            except np.linalg.LinAlgError:
                bad.add(i)
        return bad


def dataset_means(runs: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Mean of ``columns`` over seeds per dataset, for the ok runs with all columns present;
    adds ``n_runs`` (seeds averaged)."""
    ok = runs[runs["status"] == "ok"].dropna(subset=columns)
    grouped = ok.groupby("dataset", sort=True)
    out = grouped[columns].mean()
    out["n_runs"] = grouped.size()
    return out.reset_index()


_FORECAST_COLUMNS = ["method", "outcome", "status", "prediction", "lo", "hi", "level", "n_datasets",
                     "n_runs", "r2", "slope", "intercept", "kendall_tau", "lodo_mae",
                     "x_min", "x_max", "extrapolation"]


def forecast_methods(runs_df: pd.DataFrame, predictors: dict[str, float], *, model: str,
                     pretrained: str, outcomes: tuple[str, ...] = ("id_gain", "ood_change"),
                     predictor: str = "iimm", min_runs: int = 4, level: float = 0.95) -> pd.DataFrame:
    """One row per (method, outcome) of ``model``/``pretrained``: the forecast for a new dataset.

    ``predictors[predictor]`` is the new dataset's value (e.g. its IIMM). The runs are
    averaged over seeds per dataset; ``min_runs`` counts those dataset points (a line through
    one dataset's seeds says nothing). Methods below it, or whose fit fails, keep a row whose
    ``status`` says why ("too few runs (n=2)"); ``status == "ok"`` rows carry prediction,
    lo/hi (prediction interval at ``level``), r2, Kendall tau, LODO MAE, and ``extrapolation``
    (the new value lies outside the fitted range). No runs for the model: an empty frame.
    """
    if predictor not in predictors:
        raise ValueError(f"predictors has no value for {predictor!r}")
    x0 = predictors[predictor]
    if not is_finite_number(x0):
        raise ValueError(f"the value of {predictor!r} must be a finite number, got {x0!r}")
    level = check_level(level)
    # "4" raised TypeError from '<' and 4.5 was taken (a method with 4 datasets was 'too few runs')
    check_count(min_runs, "min_runs", minimum=3, why="an interval needs 3 points")
    if predictor not in runs_df.columns:
        runs_df = expand_predictor_columns(runs_df)
        if predictor not in runs_df.columns:
            raise ValueError(f"the runs have no predictor column {predictor!r}")
    mine = runs_df[(runs_df["model"] == model) & (runs_df["pretrained"] == pretrained)]
    rows = []
    for method in sorted(mine["method"].dropna().unique()):
        runs = mine[mine["method"] == method]
        for outcome in outcomes:
            if outcome not in runs.columns:
                raise ValueError(f"unknown outcome column {outcome!r}")
            points = dataset_means(runs, [predictor, outcome])
            row: dict[str, Any] = {"method": method, "outcome": outcome, "level": level,
                                   "n_datasets": len(points), "n_runs": int(points["n_runs"].sum())}
            rows.append(row)
            if len(points) < min_runs:
                row["status"] = f"too few runs (n={len(points)}, need {min_runs} datasets)"
                continue
            xs, ys = points[predictor].to_numpy(float), points[outcome].to_numpy(float)
            try:
                fit = fit_linear(xs, ys)
                mean, lo, hi = fit.predict(float(x0), level)
            except ValueError as exc:
                row["status"] = f"fit failed: {exc}"
                continue
            row.update(status="ok", prediction=mean, lo=lo, hi=hi, r2=fit.r2, slope=fit.slope,
                       intercept=fit.intercept, kendall_tau=kendall_tau(xs, ys),
                       lodo_mae=leave_one_group_out(xs, ys, points["dataset"])["mae"],
                       x_min=float(xs.min()), x_max=float(xs.max()),
                       extrapolation=bool(x0 < xs.min() or x0 > xs.max()))
    return pd.DataFrame(rows, columns=_FORECAST_COLUMNS)


MIN_FIT_DATASETS = 3  # a fit's statistics need this many dataset points (leave-one-dataset-out needs 3)


def fit_notes(table: pd.DataFrame) -> list[str]:
    """Why each row of a :func:`predictor_table` has no statistics ('' where it has them), for a page that
    would otherwise show blank cells without a reason."""
    notes = []
    # a fitted row (its LODO error measured) without a correlation: the outcome, not the predictor, is constant
    errors = table["lodo_mae"] if "lodo_mae" in table else pd.Series(np.nan, index=table.index)
    for n, r, err in zip(table["n"], table["pearson_r"], errors, strict=True):
        if n < MIN_FIT_DATASETS:
            notes.append(f"no fit: {'no' if n == 0 else n} dataset(s) with this outcome, a fit needs "
                         f"{MIN_FIT_DATASETS}")
        elif pd.notna(r):
            notes.append("")
        else:
            notes.append("no correlation: the outcome is the same on every dataset" if pd.notna(err)
                         else "no fit: the predictor is the same on every dataset")
    return notes


def predictor_table(runs_df: pd.DataFrame, predictor_columns: list[str],
                    outcomes: tuple[str, ...] = ("id_gain", "norm_gain", "ood_change")) -> pd.DataFrame:
    """How well each predictor explains each outcome, per (model, pretrained, method).

    Columns: model, pretrained, method, predictor, outcome, n (datasets), pearson_r,
    kendall_tau, r2, lodo_mae (NaN where n < 3 or the predictor is constant). Predictor
    columns may name ``zs_*``/``tf_*`` columns; they are expanded from JSON when missing.
    """
    if any(c not in runs_df.columns for c in predictor_columns):
        runs_df = expand_predictor_columns(runs_df)
    missing = [c for c in (*predictor_columns, *outcomes) if c not in runs_df.columns]
    if missing:
        raise ValueError(f"the runs have no column(s) {missing}")
    rows = []
    for (model, pretrained, method), runs in runs_df.groupby(["model", "pretrained", "method"], sort=True):
        for pred in predictor_columns:
            for outcome in outcomes:
                pts = dataset_means(runs, [pred, outcome])
                row = {"model": model, "pretrained": pretrained, "method": method, "predictor": pred,
                       "outcome": outcome, "n": len(pts), "pearson_r": np.nan,
                       "kendall_tau": np.nan, "r2": np.nan, "lodo_mae": np.nan}
                xs, ys = pts[pred].to_numpy(float), pts[outcome].to_numpy(float)
                if len(pts) >= MIN_FIT_DATASETS and np.ptp(xs) > 0:
                    row.update(pearson_r=pearson_r(xs, ys), kendall_tau=kendall_tau(xs, ys),
                               r2=fit_linear(xs, ys).r2,
                               lodo_mae=leave_one_group_out(xs, ys, pts["dataset"])["mae"])
                rows.append(row)
    return pd.DataFrame(rows, columns=["model", "pretrained", "method", "predictor", "outcome", "n",
                                       "pearson_r", "kendall_tau", "r2", "lodo_mae"])
