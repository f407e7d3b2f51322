"""Which zero-shot predictor predicts fine-tuning outcomes best: IIMM against its own terms,
the other zero-shot measures and the transferability baselines (SPEC §1, §2, §5).

Point values (n, Pearson r, Kendall tau, R², leave-one-dataset-out MAE) come from
:func:`core.forecast.predictor_table`, one point per training dataset (mean over seeds).
This module adds what that table lacks:

* the candidate predictors, read from a run frame with one name per measure
  (:func:`predictor_frame`);
* a bootstrap interval for Kendall tau where several seeds exist: a *two-level* bootstrap
  that resamples the datasets with replacement and, inside each drawn dataset, its seeds
  with replacement, then averages over the drawn seeds (:func:`bootstrap_tau`);
* a minimum number of datasets below which a cell is reported but not scored, and the
  ranking of predictors by mean |tau| and mean LODO MAE over cells (:func:`rank_predictors`).

A *cell* is one (model, pretrained, method). No streamlit, no torch.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

import numpy as np
import pandas as pd

from core import forecast, ranking
from core.metrics import check_count, check_level
from core.transferability import BASELINES

OUTCOMES = ("id_gain", "norm_gain", "ood_change")
#: The unit of an outcome, hence of its LODO mean absolute error.
OUTCOME_UNITS = {"id_gain": "points", "norm_gain": "fraction of headroom (100 - zs_acc)",
                 "ood_change": "points"}
OUTCOME_LABELS = {"id_gain": "ID gain", "norm_gain": "normalised gain", "ood_change": "OOD change"}
#: Zero-shot measures of core.metrics (the JSON column ``zero_shot``, training split), IIMM first.
ZERO_SHOT_PREDICTORS = ("iimm", "inter_modal", "intra_image", "zs_acc", "silhouette_classes",
                        "silhouette_modality", "correct_pair", "modality_gap", "intra_text")
#: Baselines of core.transferability (the JSON column ``transferability``): its BASELINES' names, in its order.
TRANSFERABILITY_PREDICTORS = tuple(BASELINES)
#: Scalar record columns used where a record's ``zero_shot`` JSON lacks the measure. For
#: zs_acc that is the *test*-split zero-shot accuracy (the JSON one is on the training split).
_SCALAR_FALLBACK = ("iimm", "inter_modal", "intra_image", "zs_acc")


def fine_tuning_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The ok runs of ``runs`` whose method is no baseline (its card says so: zero-shot, whose outcomes are 0 by
    definition), as the ranking leaves baselines out (:func:`core.ranking.without_baselines`): the method named
    'zero_shot' was left out by name, so a baseline of a user's registry was scored with all-zero outcomes."""
    return ranking.without_baselines(runs[runs["status"] == "ok"])


TABLE_COLUMNS = ["model", "pretrained", "method", "predictor", "family", "outcome", "status",
                 "n_datasets", "n_runs", "max_seeds", "pearson_r", "kendall_tau", "tau_lo",
                 "tau_hi", "tau_interval", "r2", "lodo_mae", "mae_unit"]


def predictor_frame(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The ok runs (baselines left out: :func:`fine_tuning_runs`) with one float column per predictor.

    Returns ``(frame, predictors)``: ``predictors`` lists ``(name, family)`` with family
    'zero-shot' or 'transferability', known measures in a fixed order (IIMM first), then
    any other numeric key found in the JSON columns. Only predictors with at least one
    value are listed. A transferability name that clashes with a zero-shot one is
    listed as ``tf_<name>``.
    """
    ok = fine_tuning_runs(runs)
    wide = forecast.expand_predictor_columns(ok.reset_index(drop=True))
    frame = wide[[c for c in ("model", "pretrained", "method", "dataset", "seed", "status",
                              *OUTCOMES) if c in wide.columns]].copy()
    for outcome in OUTCOMES:
        frame[outcome] = pd.to_numeric(frame.get(outcome), errors="coerce").astype(float)
    # "zs_acc" itself is the scalar test-split column; the JSON one is expanded as "zs_zs_acc"
    zs_found = sorted(c[3:] for c in wide.columns if c.startswith("zs_") and c != "zs_acc")
    tf_found = sorted(c[3:] for c in wide.columns if c.startswith("tf_"))
    zs_names = [n for n in ZERO_SHOT_PREDICTORS] + [n for n in zs_found if n not in ZERO_SHOT_PREDICTORS]
    tf_names = [n for n in TRANSFERABILITY_PREDICTORS] + [n for n in tf_found
                                                          if n not in TRANSFERABILITY_PREDICTORS]
    predictors: list[tuple[str, str]] = []
    reserved = set(frame.columns)
    zs_names = [n for n in zs_names if n not in reserved]
    for name in zs_names:
        values = wide.get("zs_" + name, pd.Series(np.nan, index=wide.index)).astype(float)
        if name in _SCALAR_FALLBACK and name in wide.columns:
            values = values.fillna(pd.to_numeric(wide[name], errors="coerce").astype(float))
        if values.notna().any():
            frame[name] = values.to_numpy()
            predictors.append((name, "zero-shot"))
    for name in tf_names:
        if "tf_" + name not in wide.columns or not wide["tf_" + name].notna().any():
            continue
        column = name if name not in frame.columns else "tf_" + name
        if column in reserved:
            continue
        frame[column] = wide["tf_" + name].astype(float).to_numpy()
        predictors.append((column, "transferability"))
    return frame, predictors


def kendall_tau_rows(x: np.ndarray, y: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """Kendall's tau-b of every row pair of two (B, n) arrays at once (ties handled as in
    scipy.stats.kendalltau); NaN for a row where x or y is constant.

    ``origin`` (B, n) optional ids: pairs of two entries with the same id (one dataset drawn
    twice by a bootstrap) are left out, as they say nothing about the order of datasets.
    """
    xa, ya = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    if xa.shape != ya.shape or xa.shape[1] < 2:
        raise ValueError(f"x and y must be (B, n) arrays of the same shape with n >= 2, got "
                         f"{xa.shape} and {ya.shape}")
    i, j = np.triu_indices(xa.shape[1], 1)
    dx, dy = np.sign(xa[:, j] - xa[:, i]), np.sign(ya[:, j] - ya[:, i])
    if origin is not None:
        org = np.asarray(origin)
        if org.shape != xa.shape:
            raise ValueError(f"origin must have the shape of x, got {org.shape} and {xa.shape}")
        keep = org[:, i] != org[:, j]
        dx, dy = dx * keep, dy * keep
    s = (dx * dy).sum(1)
    denom = np.sqrt((dx != 0).sum(1).astype(float) * (dy != 0).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, s / np.where(denom > 0, denom, 1.0), np.nan)


def bootstrap_tau(groups: list[tuple[np.ndarray, np.ndarray]], *, n_boot: int = 1000,
                  level: float = 0.95, rng: np.random.Generator | None = None) -> tuple[float, float]:
    """Percentile interval of Kendall tau between the per-dataset means of x and y.

    ``groups`` holds one ``(x_runs, y_runs)`` pair of equal-length arrays per dataset (one
    entry per seed). Each replicate draws the datasets with replacement and, for every drawn
    dataset, its seeds with replacement; x and y of a run stay paired. Tau of a replicate is
    taken over pairs of *different* datasets (a dataset drawn twice is not compared with itself,
    which would bias tau towards 0).

    Every replicate counts. A replicate whose drawn x or y values are all equal (e.g. it drew
    only datasets whose outcome is exactly 0) has no order to measure: its tau is undefined
    and is counted as 0 ("no evidence of association"), never dropped - dropping those
    replicates keeps only the draws that contain the rare informative datasets and reports
    significance that is not there. A percentile interval need not contain the point value.
    """
    level, n_boot = check_level(level), check_count(n_boot, "n_boot")
    d = len(groups)
    if d < 2:
        raise ValueError(f"a bootstrap over datasets needs at least 2 datasets, got {d}")
    rng = rng if rng is not None else np.random.default_rng(0)
    mx, my = np.empty((d, n_boot, d)), np.empty((d, n_boot, d))
    for k, (xs, ys) in enumerate(groups):
        xs, ys = np.asarray(xs, float), np.asarray(ys, float)
        if xs.shape != ys.shape or xs.ndim != 1 or len(xs) == 0:
            raise ValueError("every dataset needs paired, non-empty 1-D x and y arrays")
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):  # a NaN replicate would count as tau 0
            raise ValueError(f"dataset {k}'s x or y holds NaN or inf")
        draws = np.sort(rng.integers(0, len(xs), size=(n_boot, d, len(xs))), axis=-1)
        mx[k], my[k] = xs[draws].mean(-1), ys[draws].mean(-1)  # sorted: equal draws, equal means
    pick = rng.integers(0, d, size=(n_boot, d))
    rows, cols = np.arange(n_boot)[:, None], np.arange(d)[None, :]
    taus = kendall_tau_rows(mx[pick, rows, cols], my[pick, rows, cols], origin=pick)
    taus = np.where(np.isfinite(taus), taus, 0.0)  # undefined (constant) replicates count as 0
    lo, hi = np.percentile(taus, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def cell_rng(seed: int, *key: object) -> np.random.Generator:
    """A random stream of its own for one table cell (``key``: model, pretrained, method, predictor,
    outcome): a cell's interval then depends on ``seed`` and its own data only, never on which other
    cells, outcomes or records the same call scores."""
    digest = hashlib.sha256("\x1f".join(map(str, key)).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


def evaluate_predictors(runs: pd.DataFrame, *, outcomes: tuple[str, ...] = OUTCOMES,
                        min_datasets: int = 5, n_boot: int = 1000, level: float = 0.95,
                        seed: int = 0, progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """One row per (model, pretrained, method, predictor, outcome): :data:`TABLE_COLUMNS`.

    Statistics are filled only where ``status == 'ok'``, i.e. at least ``min_datasets``
    datasets with both values and a non-constant predictor; other rows say why. ``tau_lo``/
    ``tau_hi`` are the two-level bootstrap interval (``n_boot`` replicates, 0 = none) where
    some dataset has 2+ seeds; ``tau_interval`` says which. Each cell draws from its own stream
    (:func:`cell_rng` of ``seed`` and the cell), and the runs of one (dataset, seed) -- config variants
    of one cell -- count as one seed, their mean. Empty frame when no run qualifies. ``progress``, if given,
    is called as ``progress(rows done, rows in all)`` after each row (a long job's progress line).
    """
    # checked here, not only where a cell is bootstrapped: "5" raised TypeError from '<', and n_boot=-1 or 2.5
    # passed unseen on one-seed data (and on several seeds said n_boot must be >= 1, where 0 is allowed)
    check_count(min_datasets, "min_datasets", minimum=3, why="leave-one-dataset-out needs 3")
    n_boot, level = check_count(n_boot, "n_boot", minimum=0), check_level(level)
    if isinstance(outcomes, str):  # its letters were named as unknown outcomes: ['i', 'd', '_', ...]
        raise ValueError(f"outcomes must be a sequence of outcome names, got the string {outcomes!r}")
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise ValueError(f"unknown outcome(s) {unknown}; choose from {list(OUTCOMES)}")
    frame, predictors = predictor_frame(runs)
    if frame.empty or not predictors:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    names = [p for p, _ in predictors]
    table = forecast.predictor_table(frame, names, outcomes).rename(columns={"n": "n_datasets"})
    family = dict(predictors)
    ci_name = f"{round(level * 100)}% two-level bootstrap (datasets, then seeds), B={n_boot}"
    cells = {key: g for key, g in frame.groupby(["model", "pretrained", "method"], sort=True)}
    extra: list[dict[str, Any]] = []
    for done, row in enumerate(table.itertuples(index=False), 1):
        runs_here = cells[(row.model, row.pretrained, row.method)]
        runs_used = runs_here[["dataset", "seed", row.predictor, row.outcome]].dropna()
        # one value per (dataset, seed), in seed order: record order and config variants change nothing
        pts = runs_used.groupby(["dataset", "seed"], sort=True, as_index=False)[[row.predictor, row.outcome]].mean()
        seeds = pts.groupby("dataset").size()
        out: dict[str, Any] = {"family": family[row.predictor], "n_runs": len(runs_used),
                               "max_seeds": int(seeds.max()) if len(seeds) else 0,
                               "tau_lo": np.nan, "tau_hi": np.nan, "tau_interval": "",
                               "mae_unit": OUTCOME_UNITS[row.outcome]}
        if row.n_datasets < min_datasets:
            out["status"] = f"too few datasets (n={row.n_datasets}, need {min_datasets})"
        elif not np.isfinite(row.kendall_tau) and not np.isfinite(row.pearson_r):
            out["status"] = "predictor or outcome constant over datasets"
        else:
            out["status"] = "ok"
            if out["max_seeds"] < 2:
                out["tau_interval"] = "none: one seed per dataset (point values only)"
            elif n_boot == 0:
                out["tau_interval"] = "none: bootstrap switched off"
            else:
                groups = [(g[row.predictor].to_numpy(float), g[row.outcome].to_numpy(float))
                          for _, g in pts.groupby("dataset", sort=True)]
                rng = cell_rng(seed, row.model, row.pretrained, row.method, row.predictor, row.outcome)
                out["tau_lo"], out["tau_hi"] = bootstrap_tau(groups, n_boot=n_boot, level=level, rng=rng)
                out["tau_interval"] = ci_name
        extra.append(out)
        if progress is not None:
            progress(done, len(table))
    table = pd.concat([table.reset_index(drop=True), pd.DataFrame(extra)], axis=1)
    not_ok = table["status"] != "ok"
    table.loc[not_ok, ["pearson_r", "kendall_tau", "r2", "lodo_mae"]] = np.nan
    return table[TABLE_COLUMNS]


def rank_predictors(table: pd.DataFrame, outcome: str) -> pd.DataFrame:
    """Per predictor, over the scored cells of ``outcome``: mean |tau|, mean r, mean R²,
    mean LODO MAE, n_cells, and ranks (1 = best: highest mean |tau|, lowest mean MAE).

    Each predictor is averaged over the cells where it was scored; ``n_cells`` says how
    many (compare it with ``cells_total``). Sorted by ``rank_tau``. Empty when nothing scored.
    """
    ok = table[(table["outcome"] == outcome) & (table["status"] == "ok")].copy()
    cols = ["predictor", "family", "mean_abs_tau", "mean_tau", "mean_r", "mean_r2", "mean_lodo_mae",
            "n_cells", "cells_total", "rank_tau", "rank_mae"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    ok["abs_tau"] = ok["kendall_tau"].abs()
    cells_total = ok[["model", "pretrained", "method"]].drop_duplicates().shape[0]
    agg = ok.groupby(["predictor", "family"], sort=False).agg(
        mean_abs_tau=("abs_tau", "mean"), mean_tau=("kendall_tau", "mean"),
        mean_r=("pearson_r", "mean"), mean_r2=("r2", "mean"),
        mean_lodo_mae=("lodo_mae", "mean"), n_cells=("abs_tau", "size")).reset_index()
    agg["cells_total"] = cells_total
    agg["rank_tau"] = agg["mean_abs_tau"].rank(ascending=False, method="min").astype("Int64")
    agg["rank_mae"] = agg["mean_lodo_mae"].rank(ascending=True, method="min").astype("Int64")
    return agg.sort_values(["rank_tau", "rank_mae", "predictor"], na_position="last")[cols].reset_index(drop=True)


WINNER_COLUMNS = ["outcome", "cells", "best_tau", "best_tau_mean_abs", "iimm_mean_abs_tau", "tau_margin",
                  "best_tau_cells_ci_excludes_0", "iimm_cells_ci_excludes_0", "best_mae", "best_mae_value",
                  "iimm_lodo_mae", "mae_margin", "mae_unit"]


def winners(table: pd.DataFrame, outcomes: tuple[str, ...] = OUTCOMES, headline: str = "iimm") -> pd.DataFrame:
    """Per outcome: which predictor wins (highest mean |tau|; lowest mean LODO MAE), by how much over
    IIMM (``tau_margin`` = winner's mean |tau| - IIMM's; ``mae_margin`` = IIMM's MAE - winner's), and
    in how many cells each one's two-level bootstrap tau interval excludes 0."""
    rows = []
    for outcome in outcomes:
        ranking = rank_predictors(table, outcome)
        if ranking.empty:
            continue
        r = ranking.set_index("predictor")
        ok = table[(table["outcome"] == outcome) & (table["status"] == "ok")]

        def excludes_zero(name: str) -> int:
            sub = ok[ok["predictor"] == name]
            return int(((sub["tau_lo"] > 0) | (sub["tau_hi"] < 0)).sum())

        best_tau = r["mean_abs_tau"].idxmax()
        best_mae = r["mean_lodo_mae"].idxmin()
        has_head = headline in r.index
        rows.append({
            "outcome": outcome, "cells": int(ranking["cells_total"].iloc[0]),
            "best_tau": best_tau, "best_tau_mean_abs": float(r.loc[best_tau, "mean_abs_tau"]),
            "iimm_mean_abs_tau": float(r.loc[headline, "mean_abs_tau"]) if has_head else np.nan,
            "tau_margin": float(r.loc[best_tau, "mean_abs_tau"] - r.loc[headline, "mean_abs_tau"]) if has_head else np.nan,
            "best_tau_cells_ci_excludes_0": excludes_zero(best_tau),
            "iimm_cells_ci_excludes_0": excludes_zero(headline) if has_head else 0,
            "best_mae": best_mae, "best_mae_value": float(r.loc[best_mae, "mean_lodo_mae"]),
            "iimm_lodo_mae": float(r.loc[headline, "mean_lodo_mae"]) if has_head else np.nan,
            "mae_margin": float(r.loc[headline, "mean_lodo_mae"] - r.loc[best_mae, "mean_lodo_mae"]) if has_head else np.nan,
            "mae_unit": OUTCOME_UNITS[outcome]})
    return pd.DataFrame(rows, columns=WINNER_COLUMNS)
