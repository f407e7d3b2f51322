"""Kendall's tau with a nested bootstrap interval: resample groups (sub-worlds), then items (tasks).

Tasks are nested in sub-worlds and tasks of one sub-world share its coverage level and image
statistics, so the effective sample is closer to the number of sub-worlds than to the number of
tasks. The interval therefore resamples sub-worlds with replacement, then tasks within each drawn
sub-world with replacement, and recomputes tau (tau-b, ties allowed) on the pooled draw.

A replicate whose x or y is constant has no defined tau; it is **counted as tau = 0** (no evidence
of order), never dropped: dropping such replicates is what gives false significance when most
outcomes are constant. The number of such replicates is reported.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from core.metrics import check_count, check_level, check_seed


@dataclass(frozen=True)
class TauInterval:
    """tau on the data, its nested-bootstrap percentile interval, and how it was obtained."""

    tau: float
    lo: float
    hi: float
    n_boot: int
    n_undefined: int  # replicates with a constant x or y, counted as tau = 0
    n_items: int
    n_groups: int

    def excludes_zero(self) -> bool:
        return self.lo > 0 or self.hi < 0


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two 1-D arrays of equal length >= 2; 0.0 when either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
        raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(kendalltau(x, y).statistic)


def nested_bootstrap_tau(x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, n_boot: int = 2000,
                         level: float = 0.95, seed: int = 0) -> TauInterval:
    """tau(x, y) with a percentile interval from ``n_boot`` nested (groups, then items) bootstrap draws.

    x, y: shape (N,) finite numbers; groups: shape (N,) labels of the group each item belongs to
    (at least 2 distinct, none missing). Deterministic in ``seed`` (a non-negative integer).
    """
    x, y, groups = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    tau = kendall_tau(x, y)
    if groups.shape != x.shape:
        raise ValueError(f"groups must have shape {x.shape}, got {groups.shape}")
    level, n_boot, seed = check_level(level), check_count(n_boot, "n_boot"), check_seed(seed)
    if pd.isna(groups).any():  # a NaN label equals nothing, so its items would never be drawn
        raise ValueError("groups must not contain missing values (NaN or None)")
    # Groups are numbered in sorted order, so moving whole groups' rows leaves the interval for a seed
    # unchanged; items are drawn by their position within a group, so reordering rows inside a group
    # gives another draw of the same bootstrap (Monte-Carlo noise, not a different estimate).
    try:
        _, codes = np.unique(groups, return_inverse=True)
    except TypeError:  # labels of mixed types (1 and "a") cannot be sorted: first appearance instead
        codes, _ = pd.factorize(pd.Series(groups.ravel(), dtype=object))
    codes = codes.ravel()
    members = [np.flatnonzero(codes == g) for g in range(codes.max() + 1)]
    if len(members) < 2:
        raise ValueError("a nested bootstrap needs at least 2 groups")
    rng = np.random.default_rng(seed)
    taus = np.empty(n_boot)
    undefined = 0
    for b in range(n_boot):
        drawn = rng.integers(0, len(members), len(members))
        rows = np.concatenate([rng.choice(members[g], len(members[g])) for g in drawn])
        bx, by = x[rows], y[rows]
        if np.ptp(bx) == 0 or np.ptp(by) == 0:
            undefined += 1
            taus[b] = 0.0
        else:
            taus[b] = kendalltau(bx, by).statistic
    alpha = (1 - level) / 2
    lo, hi = np.quantile(taus, [alpha, 1 - alpha])
    return TauInterval(tau, float(lo), float(hi), n_boot, undefined, len(x), len(members))
