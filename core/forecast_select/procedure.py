"""The selection procedure on arrays: LODO errors of every candidate set, the selection rule,
nested LODO, the jackknife+ interval and held-out coverage (the DataFrame layer is :mod:`core.forecast_select.tables`).

Arrays: ``x`` (n datasets, P predictors), ``y`` (n,), ``rows`` the reference datasets (distinct
row indices), ``sets`` candidate sets of column indices (``()`` = the mean). The public functions
check them and raise ValueError naming the problem; the loops inside call unchecked helpers.
"""
from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
from scipy import stats

from core import forecast

MEAN_ONLY = "mean (no predictor)"
HEADLINE = "iimm"
SELECTION_RULES = ("one-se", "bonferroni", "gated")
DEFAULT_RULE = "bonferroni"


def check_rule(rule: str) -> str:
    """``rule`` if it names a selection rule, else ValueError listing the rules."""
    if rule not in SELECTION_RULES:
        raise ValueError(f"unknown selection rule {rule!r}; choose one of {', '.join(SELECTION_RULES)}")
    return rule


def candidate_sets(predictors: Sequence[str], *, pairs: bool = True) -> list[tuple[str, ...]]:
    """() (the mean), each predictor alone, then every pair (if ``pairs``), in the given order."""
    names = list(dict.fromkeys(predictors))
    sets: list[tuple[str, ...]] = [()] + [(p,) for p in names]
    if pairs:
        sets += list(itertools.combinations(names, 2))
    return sets


def set_label(names: Sequence[str]) -> str:
    """A predictor set's display label: its names joined by " + ", or MEAN_ONLY for the empty set."""
    return " + ".join(names) if names else MEAN_ONLY


def _loo_abs_errors(x: np.ndarray, y: np.ndarray, sets: list[tuple[int, ...]]) -> np.ndarray:
    """LODO absolute errors (S, n) of every set (columns of x), one closed-form fit each; inf where
    a fit is singular or a point has leverage 1. x (n, P) standardised, y (n,)."""
    n = len(y)
    out = np.full((len(sets), n), np.inf)
    by_size: dict[int, list[int]] = {}
    for s, cols in enumerate(sets):
        by_size.setdefault(len(cols), []).append(s)
    for size, members in by_size.items():
        if n < size + 2:
            continue
        idx = np.array([sets[s] for s in members], dtype=int).reshape(len(members), size)
        d = np.concatenate([np.ones((len(members), n, 1)), np.transpose(x[:, idx], (1, 0, 2))], axis=2)
        g = np.einsum("snk,snl->skl", d, d)
        ok = np.linalg.cond(g) < 1e10
        if not ok.any():
            continue
        d, g, sel = d[ok], g[ok], np.asarray(members)[ok]
        ginv = np.linalg.inv(g)
        beta = np.einsum("skl,snl,n->sk", ginv, d, y)
        resid = y[None, :] - np.einsum("snk,sk->sn", d, beta)
        lever = np.einsum("snk,skl,snl->sn", d, ginv, d)
        good = (1 - lever).min(axis=1) > 1e-8
        with np.errstate(divide="ignore", invalid="ignore"):
            err = np.abs(resid / (1 - lever))
        out[sel[good]] = err[good]
    if n and np.ptp(y) == 0:  # a constant outcome: every line fits it exactly; its rounding noise chose a set
        out[np.isfinite(out)] = 0.0
    return out


def _standardise(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    mu, sd = x[rows].mean(axis=0), x[rows].std(axis=0)
    return (x - mu) / np.where(sd > 0, sd, 1.0)  # a constant column stays constant -> singular -> inf


def check_arrays(x: np.ndarray, y: np.ndarray, rows: np.ndarray, sets: list[tuple[int, ...]], *,
                 default: int | None = None, min_rows: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x``, ``y`` and ``rows`` as float, float and int arrays after checking every input of the
    procedure; ValueError naming the first problem. ``min_rows``: reference datasets needed."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rows = np.asarray(rows)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (datasets, predictors), got shape {x.shape}")
    if y.shape != (len(x),):
        raise ValueError(f"y must hold one value per row of x ({len(x)}), got shape {y.shape}")
    if rows.ndim != 1 or not (np.issubdtype(rows.dtype, np.integer) or rows.size == 0):
        raise ValueError(f"rows must be a 1-D array of row indices, got {rows.dtype} of shape {rows.shape}")
    rows = rows.astype(int)
    if len(rows) < min_rows:
        raise ValueError(f"need at least {min_rows} reference datasets, got {len(rows)}")
    if rows.min() < 0 or rows.max() >= len(y):
        raise ValueError(f"rows must index the {len(y)} rows of x and y, got values {rows.min()}..{rows.max()}")
    if len(np.unique(rows)) != len(rows):
        raise ValueError("rows must be distinct: a repeated dataset would count twice in every error")
    if not (np.isfinite(x[rows]).all() and np.isfinite(y[rows]).all()):
        raise ValueError("x and y must be finite on the reference rows (leave out datasets or predictors "
                         "with missing values first)")
    if not sets:
        raise ValueError("sets must hold at least one candidate set")
    for s in sets:
        if len(set(s)) != len(s) or any(isinstance(c, bool) or not isinstance(c, (int, np.integer))
                                        or not 0 <= c < x.shape[1] for c in s):
            raise ValueError(f"candidate set {s!r} must hold distinct column indices of x (0..{x.shape[1] - 1})")
    if default is not None and (isinstance(default, bool)  # True indexed errors as a mask: "truth value ... ambiguous"
                                or not (isinstance(default, (int, np.integer)) and 0 <= default < len(sets))):
        raise ValueError(f"default must index one of the {len(sets)} sets, got {default!r}")
    return x, y, rows


def select_set(x: np.ndarray, y: np.ndarray, rows: np.ndarray, sets: list[tuple[int, ...]], *,
               default: int | None = None, rule: str = DEFAULT_RULE,
               margin_se: float | None = None) -> tuple[int, np.ndarray]:
    """(index of the chosen set, LODO MAE of every set) on the reference ``rows``.

    The set with the lowest LODO MAE wins, except that the ``default`` set (IIMM alone) is kept
    unless the winner beats it by more than a margin of standard errors of the paired per-dataset
    difference of absolute errors: with 15 datasets, small differences between 190 candidate sets
    are mostly noise, and chasing them makes held-out errors worse. The margin is 1 under
    ``rule="one-se"`` and ``"gated"``, and the one-sided t quantile at 0.05 / (number of sets - 1)
    under ``"bonferroni"``; ``margin_se`` overrides it. ``"gated"`` then also falls back to the
    default unless the one-se selection's nested LODO MAE on ``rows`` beats the default's LODO MAE.
    At least 2 reference rows.
    """
    check_rule(rule)
    if margin_se is not None and not (forecast.is_finite_number(margin_se) and margin_se >= 0):
        # NaN compared False with every difference: any winner replaced the default, as with no margin at all
        raise ValueError(f"margin_se must be a finite number >= 0 (None: the rule's margin), got {margin_se!r}")
    x, y, rows = check_arrays(x, y, rows, sets, default=default)
    return _select(x, y, rows, sets, default, rule, margin_se)


def _select(x: np.ndarray, y: np.ndarray, rows: np.ndarray, sets: list[tuple[int, ...]], default: int | None,
            rule: str, margin_se: float | None = None) -> tuple[int, np.ndarray]:
    abs_err = _loo_abs_errors(_standardise(x, rows)[rows], y[rows], sets)
    errors = abs_err.mean(axis=1)
    tol = 1e-9 * (float(np.std(y[rows])) + 1e-12)  # rounding-level differences are ties: earlier set wins
    best = int(np.argmax(errors <= errors.min() + tol))
    if default is None or best == default or not np.isfinite(errors[default]):
        return best, errors
    if margin_se is None:
        margin_se = (float(stats.t.ppf(1 - 0.05 / max(len(sets) - 1, 1), len(rows) - 1))
                     if rule == "bonferroni" else 1.0)
    diff = abs_err[default] - abs_err[best]
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    if diff.mean() <= margin_se * se + tol:
        return default, errors
    if rule == "gated" and len(rows) > 3:
        resid, _, _ = _nested(x, y, rows, sets, default, "one-se")
        if not float(np.mean(np.abs(resid))) < errors[default]:
            return default, errors
    return best, errors


def _fit(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: tuple[int, ...]) -> np.ndarray:
    """OLS coefficients (intercept first) of y on columns ``cols`` over ``rows``; the mean alone for ().
    A constant y is that constant exactly (a fit's rounding, not the data, decided its held-out coverage)."""
    if len(rows) and np.ptp(y[rows]) == 0:
        return np.concatenate([y[rows][:1], np.zeros(len(cols))])
    if not cols:
        return np.array([y[rows].mean()])
    d = np.column_stack([np.ones(len(rows)), x[np.ix_(rows, cols)]])
    return np.linalg.lstsq(d, y[rows], rcond=None)[0]


def _predict(beta: np.ndarray, cols: tuple[int, ...], at: np.ndarray) -> np.ndarray:
    """:func:`_fit`'s line at the rows of ``at`` (m, P)."""
    if not cols:
        return np.full(len(at), beta[0])
    return np.column_stack([np.ones(len(at)), at[:, list(cols)]]) @ beta


def _fit_predict(x: np.ndarray, y: np.ndarray, rows: np.ndarray, cols: tuple[int, ...],
                 at: np.ndarray) -> np.ndarray:
    """OLS of y on columns ``cols`` over ``rows``, evaluated at the rows of ``at`` (m, P)."""
    return _predict(_fit(x, y, rows, cols), cols, at)


def nested_lodo(x: np.ndarray, y: np.ndarray, rows: np.ndarray, sets: list[tuple[int, ...]],
                default: int | None = None, *, rule: str = DEFAULT_RULE) -> tuple[np.ndarray, list[int]]:
    """Out-of-sample residuals y_i - prediction_i of the whole procedure (selection redone without
    dataset i), for every i in ``rows``, and the set chosen in each fold. At least 3 reference rows."""
    check_rule(rule)
    x, y, rows = check_arrays(x, y, rows, sets, default=default, min_rows=3)
    resid, chosen, _ = _nested(x, y, rows, sets, default, rule)
    return resid, chosen


def _nested(x: np.ndarray, y: np.ndarray, rows: np.ndarray, sets: list[tuple[int, ...]], default: int | None,
            rule: str, at: np.ndarray | None = None) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Nested residuals, the set chosen per fold and each fold's predictions at the rows of ``at`` (m, P),
    (len(rows), m), m = 0 without ``at``: the leave-one-out fits a jackknife+ interval needs, at no extra
    selection."""
    resid, chosen = np.empty(len(rows)), []
    preds = np.empty((len(rows), 0 if at is None else len(at)))
    for k, i in enumerate(rows):
        rest = rows[rows != i]
        best, _ = _select(x, y, rest, sets, default, rule)
        chosen.append(best)
        beta = _fit(x, y, rest, sets[best])
        resid[k] = y[i] - _predict(beta, sets[best], x[[i]])[0]
        if at is not None:
            preds[k] = _predict(beta, sets[best], at)
    return resid, chosen, preds


def jackknife_plus_interval(loo_predictions: np.ndarray, loo_abs_residuals: np.ndarray, *,
                            level: float = 0.95) -> tuple[float, float]:
    """Jackknife+ interval (Barber, Candes, Ramdas and Tibshirani, 2021) for a new point: with n
    leave-one-out fits, ``loo_predictions`` (n,) their predictions at the new point and
    ``loo_abs_residuals`` (n,) each fit's absolute error on the point it left out, the lower end is the
    floor(alpha (n + 1))-th smallest of prediction - residual and the upper end the ceil((1 - alpha)
    (n + 1))-th smallest of prediction + residual, alpha = 1 - ``level``. (-inf, inf) when that rank
    exceeds n (n < 19 at level 0.95), and below level 0.5, where it guarantees nothing and the lower end's
    rank passes the upper end's. Distribution-free: coverage >= 1 - 2 alpha for exchangeable points."""
    level = forecast.check_level(level)
    mu = np.asarray(loo_predictions, dtype=float)
    r = np.asarray(loo_abs_residuals, dtype=float)
    if mu.ndim != 1 or mu.shape != r.shape or len(mu) == 0:
        raise ValueError(f"need predictions and residuals of one shape (n,), n >= 1, got {mu.shape} and {r.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(r).all()):
        raise ValueError("predictions and residuals must be finite")
    if (r < 0).any():
        raise ValueError("residuals must be absolute values (>= 0)")
    n = len(mu)
    rank = math.ceil(level * (n + 1) - 1e-9)  # 0.55 * 100 is 55.00000000000001 in floats: a plain ceil says 56
    if rank > n or level < 0.5:
        return -math.inf, math.inf
    return float(np.sort(mu - r)[n - rank]), float(np.sort(mu + r)[rank - 1])


def _half_width(resid: np.ndarray, level: float) -> float:
    n = len(resid)
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * math.sqrt(np.mean(resid ** 2)) * math.sqrt(1 + 1 / n))


def paired_gain_interval(iimm_abs_errors: np.ndarray, procedure_abs_errors: np.ndarray, *,
                         level: float = 0.95) -> tuple[float, float]:
    """Two-sided ``level`` paired t interval for the mean over datasets of ``iimm_abs_errors -
    procedure_abs_errors`` (both (n,), held-out absolute errors on the same n datasets): the procedure's
    gain over the IIMM-only line, with its uncertainty. Descriptive: the folds share training datasets, so
    the errors are not independent and the interval is approximate. (nan, nan) when an error is not
    finite; n >= 2."""
    level = forecast.check_level(level)
    a = np.asarray(iimm_abs_errors, dtype=float)
    b = np.asarray(procedure_abs_errors, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"need two error arrays of the same shape (n,), got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"need errors on at least 2 datasets, got {len(a)}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan"), float("nan")
    diff = a - b
    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1)) * float(diff.std(ddof=1)) / math.sqrt(len(diff))
    return float(diff.mean() - half), float(diff.mean() + half)


def lodo_coverage(x: np.ndarray, y: np.ndarray, sets: list[tuple[int, ...]], headline: int | None,
                  level: float = 0.95, *, rule: str = DEFAULT_RULE) -> dict[str, float]:
    """Held-out coverage of the procedure's interval, of its jackknife+ interval
    (:func:`jackknife_plus_interval`; NaN coverage and inf width when a held-out interval is not finite,
    as on fewer than 20 datasets at 0.95) and of the headline predictor's OLS prediction interval: for
    every dataset i, the intervals are built from the other datasets only. Every row of ``x`` and ``y``
    is a reference dataset (at least 4); ``headline``: IIMM's column, whose single-column set must be
    among ``sets`` (None: no headline line)."""
    check_rule(rule)
    level = forecast.check_level(level)  # "0.9" raised TypeError from '<'
    x, y, rows = check_arrays(x, y, np.arange(len(np.asarray(y).reshape(-1))), sets, min_rows=4)
    if headline is not None and (isinstance(headline, bool) or not isinstance(headline, (int, np.integer))):
        # 2.0 and True passed the set check ((2.0,) == (2,)) and then failed indexing x with an IndexError/TypeError
        raise ValueError(f"headline must be a column index of x (an integer), got {headline!r}")
    if headline is not None and (headline,) not in sets:
        raise ValueError(f"headline column {headline!r} must be a candidate set of its own, ({headline},)")
    default = sets.index((headline,)) if headline is not None else None
    hit, width, hit_h, width_h, hit_jp, width_jp = [], [], [], [], [], []
    for i in rows:
        rest = rows[rows != i]
        resid, _, at_i = _nested(x, y, rest, sets, default, rule, at=x[[i]])
        best, _ = _select(x, y, rest, sets, default, rule)
        pred = _fit_predict(x, y, rest, sets[best], x[[i]])[0]
        half = _half_width(resid, level)
        hit.append(abs(y[i] - pred) <= half)
        width.append(2 * half)
        lo, hi = jackknife_plus_interval(at_i[:, 0], np.abs(resid), level=level)
        hit_jp.append(lo <= y[i] <= hi)
        width_jp.append(hi - lo)
        if headline is not None:
            try:
                fit = forecast.fit_linear(x[rest, headline], y[rest])
                _, lo, hi = fit.predict(float(x[i, headline]), level)
            except ValueError:
                continue
            hit_h.append(lo <= y[i] <= hi)
            width_h.append(hi - lo)
    finite_jp = bool(np.isfinite(width_jp).all())  # an infinite interval covers by construction: not measured
    return {"coverage": float(np.mean(hit)), "mean_width": float(np.mean(width)),
            "iimm_coverage": float(np.mean(hit_h)) if hit_h else float("nan"),
            "iimm_mean_width": float(np.mean(width_h)) if width_h else float("nan"),
            "jackknife_plus_coverage": float(np.mean(hit_jp)) if finite_jp else float("nan"),
            "jackknife_plus_mean_width": float(np.mean(width_jp)) if finite_jp else math.inf}
