"""GBC, H-score and TransRate: scores from per-class Gaussian statistics of the features."""
from __future__ import annotations

import math

import numpy as np

from core.metrics import is_real_number
from core.transferability._common import (STUDY, check_convention, class_means, need_two_per_class,
                                          onehot, prep)

GBC_COVARIANCES = ("spherical", "diagonal")


def gbc(features: np.ndarray, labels: np.ndarray, *, covariance: str = "spherical",
        convention: str = STUDY, pca_dim: int = 64) -> float:
    """Gaussian Bhattacharyya Coefficient (Pándy et al., CVPR 2022). Higher (closer to 0) = better.

    features (N, d), labels (N,). Each class gets a Gaussian with its mean and per-dimension
    (population) variance; GBC = -sum over ordered class pairs i != j of exp(-D_B(i, j)), with
    D_B the Bhattacharyya distance under the averaged variance. Range [-K(K-1), 0].

    ``convention="study"`` (default; the study's official code): no projection, variances
    floored at 1e-4; ``covariance="spherical"`` replaces each class's variances by their mean
    and, as that code does, counts the log-variance term of D_B once (not d times);
    ``"diagonal"`` keeps per-dimension variances. ``convention="project"``: our earlier
    variant, diagonal Gaussians on the top ``pca_dim`` principal axes with a 1e-10 floor
    (rotation-invariant and cheaper for wide features; ``covariance`` must be "diagonal").
    Needs >= 2 samples per class. Cost O(N d + K^2 d) (+ O(N d^2 + d^3) for the projection).
    """
    check_convention(convention, (STUDY, "project"), "gbc")
    if covariance not in GBC_COVARIANCES:
        raise ValueError(f"gbc: covariance must be one of {list(GBC_COVARIANCES)}, got {covariance!r}")
    x, y, k = prep(features, labels)
    need_two_per_class(y, k, "gbc")
    if convention == "project":
        if covariance != "diagonal":
            raise ValueError("gbc: the 'project' convention is diagonal; pass covariance='diagonal'")
        if isinstance(pca_dim, bool) or not isinstance(pca_dim, (int, np.integer)) or pca_dim < 1:
            raise ValueError(f"pca_dim must be a positive integer, got {pca_dim!r}")
        xc = x - x.mean(axis=0)
        _, vecs = np.linalg.eigh(xc.T @ xc)
        x = xc @ vecs[:, ::-1][:, :pca_dim]
    counts, mu = class_means(x, y, k)
    var = (onehot(y, k) @ (x - mu[y]) ** 2) / counts[:, None]
    var = np.maximum(var, 1e-4) if convention == STUDY else var + 1e-10
    if covariance == "spherical":
        var = var.mean(axis=1, keepdims=True)  # (K, 1): broadcast over dimensions in the mean term
    logvar = np.log(var)
    total = 0.0
    for i in range(k):  # one class against all others at once: memory O(K d)
        v = (var[i] + var) / 2
        d_b = 0.125 * ((mu[i] - mu) ** 2 / v).sum(1) + 0.5 * (np.log(v) - 0.5 * (logvar[i] + logvar)).sum(1)
        bc = np.exp(-d_b)
        bc[i] = 0.0
        total += bc.sum()
    return -float(total)


def h_score(features: np.ndarray, labels: np.ndarray, *, convention: str = STUDY,
            shrinkage: float | str = "auto") -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^+ cov(E[f|y])). Higher = better.

    features (N, d), labels (N,).
    ``convention="study"`` (default): plain covariances (the pseudo-inverse with relative
    cut-off 1e-15, as the study's code); ``shrinkage`` is ignored. ``convention="project"``:
    the regularised H-score (Ibrahim et al. 2022), cov(f) shrunk toward a scaled identity by
    ``shrinkage`` ("auto" = Ledoit-Wolf, or a float in [0, 1]) - stable when d is near N.
    Cost O(N d^2 + d^3).
    """
    check_convention(convention, (STUDY, "project"), "h_score")
    x, y, k = prep(features, labels)
    xc = x - x.mean(axis=0)
    n, d = xc.shape
    cov = xc.T @ xc / n  # the 1/n vs 1/(n-1) of both covariances cancels in the trace
    counts, means = class_means(xc, y, k)
    if convention == STUDY:
        inv_m = np.linalg.pinv(cov, rcond=1e-15) @ means.T
    else:
        if shrinkage == "auto":
            from sklearn.covariance import ledoit_wolf_shrinkage
            alpha = float(ledoit_wolf_shrinkage(xc, assume_centered=True))
        elif is_real_number(shrinkage) and 0.0 <= shrinkage <= 1.0:
            alpha = float(shrinkage)
        else:
            raise ValueError(f"shrinkage must be 'auto' or a float in [0, 1], got {shrinkage!r}")
        cov = (1 - alpha) * cov + alpha * (np.trace(cov) / d) * np.eye(d)
        inv_m = np.linalg.pinv(cov, hermitian=True) @ means.T if alpha == 0 else np.linalg.solve(cov, means.T)
    # tr(cov^+ sum_c p_c m_c m_c^T) = sum_c p_c m_c^T cov^+ m_c (m_c: centred class means)
    return float(np.einsum("c,dc,cd->", counts / n, inv_m, means))


def _rate(z: np.ndarray, eps: float) -> float:
    """Coding rate 1/2 logdet(I + Z^T Z / (n eps)), on the smaller Gram side (same determinant)."""
    g = z.T @ z if z.shape[0] >= z.shape[1] else z @ z.T
    ev = np.clip(np.linalg.eigvalsh(g), 0.0, None)
    return 0.5 * float(np.log1p(ev / (z.shape[0] * eps)).sum())


def transrate(features: np.ndarray, labels: np.ndarray, *, eps: float = 1e-4,
              convention: str = STUDY) -> float:
    """TransRate (Huang et al., ICML 2022): R(Z, eps) - R(Z|Y, eps) on centred features. Higher = better.

    features (N, d), labels (N,).
    R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps)), each class block with its own n_c.
    ``convention="study"`` (default; the study's code): R(Z|Y) = the plain mean over the K
    classes of R(Z_c). ``convention="project"``: the class-size-weighted sum
    sum_c (n_c / n) R(Z_c) of the MCR^2 coding rate the paper builds on.
    Cost O(N d^2 + d^3 + sum_c min(n_c, d)^3).
    """
    check_convention(convention, (STUDY, "project"), "transrate")
    if not is_real_number(eps) or not math.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    x, y, k = prep(features, labels)
    z = x - x.mean(axis=0)
    n = len(z)
    order = np.argsort(y, kind="stable")  # contiguous class blocks: one gather, not K masks
    zs, bounds = z[order], np.r_[0, np.cumsum(np.bincount(y, minlength=k))]
    rates = np.array([_rate(zs[a:b], eps) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    weights = np.full(k, 1.0 / k) if convention == STUDY else np.diff(bounds) / n
    return _rate(z, eps) - float(weights @ rates)
