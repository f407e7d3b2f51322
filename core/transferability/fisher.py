"""SFDA and NCTI: scores from linear discriminant analysis of the features (study conventions)."""
from __future__ import annotations

import logging
from typing import Iterable, Mapping

import numpy as np

from core.metrics import check_count, is_real_number
from core.transferability._common import STUDY, check_convention, class_means, prep, softmax_rows

log = logging.getLogger(__name__)


def power_iteration_eigenvalue(a: np.ndarray, *, steps: int = 3) -> float:
    """Largest eigenvalue of a symmetric PSD matrix ``a`` (d, d) by ``steps`` double power iterations started
    from its row sums, as the study's SFDA estimates it (so its shrinkage is reproduced exactly).
    Falls back to the exact value (logged) when the start vector or an iterate vanishes.
    A float32 or float64 matrix is iterated in its own dtype, any other real one (float16, integers) in float64.
    Raises ValueError unless ``a`` is a square real matrix and ``steps`` an integer >= 1."""
    steps = check_count(steps, "steps")  # 0 steps returned the unnormalised v'Av (9.0 for diag(2, 1))
    a = np.asarray(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"power_iteration_eigenvalue needs a non-empty square matrix, got shape {a.shape}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"power_iteration_eigenvalue needs a real numeric matrix, got dtype {a.dtype}")
    if a.dtype not in (np.float32, np.float64):  # float16 norms overflowed at 65504; linalg refuses float16
        a = a.astype(np.float64)
    v = a.sum(axis=1)
    w = v
    with np.errstate(over="ignore", invalid="ignore"):  # a scatter that overflows: the score is non-finite, flagged
        for _ in range(steps):
            t = a @ v
            nt = np.linalg.norm(t)
            if nt == 0:
                break
            w = t / nt
            t = a @ w
            nt = np.linalg.norm(t)
            if nt == 0:
                break
            v = t / nt
        else:
            return float(v @ a @ w)
    log.info("power iteration vanished; using the exact largest eigenvalue")
    return float(np.linalg.eigvalsh(a)[-1])


def _shrunk_lda_probs(x: np.ndarray, y: np.ndarray, k: int, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors of LDA with the pooled within-class covariance shrunk toward (tr Sw / d) I.

    The study's SFDA keeps *all* generalised eigenvectors V of (Sb, Sw_r), so its
    discriminant coefficients means V V^T equal means Sw_r^-1 (V^T Sw_r V = I): plain
    shrunk LDA, solved directly here. Returns (probs (N, K), class means (K, d)).
    """
    n, d = x.shape
    counts, means = class_means(x, y, k)
    resid = x - means[y]
    sw = resid.T @ resid / n  # = sum_c p_c cov_c (population covariances)
    sw_r = (1 - lam) * sw + lam * (np.trace(sw) / d) * np.eye(d)
    try:
        coef = np.linalg.solve(sw_r, means.T).T  # (K, d)
    except np.linalg.LinAlgError as exc:
        raise ValueError("sfda: the within-class scatter is singular even after shrinkage: the features have "
                         "no within-class spread (e.g. constant features, or one sample per class)") from exc
    logits = x @ coef.T - 0.5 * np.einsum("kd,kd->k", means, coef) + np.log(counts / n)
    return softmax_rows(logits), means


def sfda(features: np.ndarray, labels: np.ndarray, *, convention: str = STUDY) -> float:
    """Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022). Higher = better, in (0, 1].

    features (N, d), labels (N,).
    Study convention (the only one): within-class scatter Sw (population covariances weighted
    by class priors) shrunk toward (tr Sw / d) I by lam = max(exp(-5 sigma_max(Sw)), 1e-10),
    sigma_max by 3 power iterations; class posteriors of that shrunk LDA, softened by a
    second softmax; ConfMix moves each sample x of class c to p x + (1 - p) m_c', p its
    softened true-class posterior and m_c' the mean of the *other* class means; the LDA is
    refitted on the mixed features with the same lam. Score = mean true-class posterior.
    Cost O(N d^2 + d^3 + N K d).
    """
    check_convention(convention, (STUDY,), "sfda")
    x, y, k = prep(features, labels)
    _, means0 = class_means(x, y, k)
    resid = x - means0[y]
    sw = resid.T @ resid / len(x)
    lam = max(float(np.exp(-5.0 * power_iteration_eigenvalue(sw))), 1e-10)
    p, means = _shrunk_lda_probs(x, y, k, lam)
    p = softmax_rows(p)  # the second softmax: softened posteriors for the mixing weight
    others = (means.sum(axis=0) - means) / (k - 1)
    p_true = p[np.arange(len(x)), y][:, None]
    mixed = p_true * x + (1 - p_true) * others[y]
    p2, _ = _shrunk_lda_probs(mixed, y, k, lam)
    return float(p2[np.arange(len(x)), y].mean())


NCTI_PCA_DIM = 64
NCTI_SHRINK_DIMS = 32


def _pca(x: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact PCA: (scores on the top ``dim`` axes, their explained variances with ddof 1)."""
    xc = x - x.mean(axis=0)
    ev, vec = np.linalg.eigh(xc.T @ xc / (len(x) - 1))
    order = np.argsort(ev)[::-1][:dim]
    return xc @ vec[:, order], np.clip(ev[order], 0.0, None)


def ncti_terms(features: np.ndarray, labels: np.ndarray, *, convention: str = STUDY) -> dict[str, float]:
    """The three terms of NCTI (Wang et al., ICCV 2023) as the study computes them; features (N, d), labels (N,).

    Features are projected on their top min(64, N, d) principal axes (exact PCA); an LDA
    is fitted there with shrinkage exp(-sum of the top-32 explained variances) (scikit-
    learn's eigen solver; its svd solver when that shrinkage underflows below 1e-10).
    ``seli`` = nuclear norm of the centred LDA projection (N x (K-1)); ``ncc`` = mean
    true-class LDA posterior; ``vc`` = log sum_c ||P_c||_* with P_c the posteriors of the
    samples of class c. NCTI rewards seli and ncc and penalises vc.
    Cost O(N d^2 + d^3 + N K^2).
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    check_convention(convention, (STUDY,), "ncti")
    x, y, k = prep(features, labels)
    z, explained = _pca(x, min(NCTI_PCA_DIM, *x.shape))
    shrink = max(float(np.exp(-explained[:NCTI_SHRINK_DIMS].sum())), 1e-10)
    lda = (LinearDiscriminantAnalysis(solver="svd") if shrink == 1e-10
           else LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrink))
    try:
        low = lda.fit_transform(z, y)
    except ValueError as exc:  # numpy's LinAlgError is a ValueError too
        raise ValueError(f"ncti: the LDA cannot be fitted on these features ({exc})") from exc
    low = low - low.mean(axis=0)
    seli = float(np.linalg.svd(low, compute_uv=False).sum())
    probs = lda.predict_proba(z)
    ncc = float(probs[np.arange(len(z)), y].mean())
    vc = float(np.log(sum(np.linalg.svd(probs[y == c], compute_uv=False).sum() for c in range(k))))
    return {"seli": seli, "ncc": ncc, "vc": vc}


def ncti(features: np.ndarray, labels: np.ndarray, *, convention: str = STUDY) -> float:
    """NCTI of one feature set (N, d) with labels (N,) = seli + ncc - vc of :func:`ncti_terms`, unnormalised.
    Higher = better.

    The study min-max normalises each term across the *models* scored on one dataset
    (:func:`ncti_normalised`); for a single model it reports this raw sum, which is what a
    per-model predictor over datasets can use. Cost as :func:`ncti_terms`.
    """
    t = ncti_terms(features, labels, convention=convention)
    return t["seli"] + t["ncc"] - t["vc"]


def ncti_normalised(terms: Iterable[Mapping[str, float]]) -> np.ndarray:
    """NCTI of several models on one dataset, as the study combines them: each term min-max
    normalised across the models, NCTI = seli' + ncc' - vc'. One model: its raw sum.

    ``terms``: one :func:`ncti_terms` dict per model. Returns (M,). A term equal for all
    models has no range; ValueError then (the study's formula divides by zero).
    """
    if isinstance(terms, Mapping):  # one model's dict instead of a list of them
        raise ValueError("ncti_normalised takes a list of ncti_terms dicts, one per model, not one dict")
    terms = list(terms)  # a generator had no len() (TypeError)
    if len(terms) == 0:
        raise ValueError("ncti_normalised needs the terms of at least one model")
    for i, t in enumerate(terms):
        if not isinstance(t, Mapping):  # a bare score raised TypeError from 'in'
            raise ValueError(f"model {i}'s terms must be a dict of ncti_terms, got {type(t).__name__}")
        for name in ("seli", "ncc", "vc"):
            if name not in t:
                raise ValueError(f"model {i} lacks the NCTI term {name!r} (pass ncti_terms' dicts)")
            if not is_real_number(t[name]) or not np.isfinite(float(t[name])):
                raise ValueError(f"model {i}'s NCTI term {name!r} must be finite, got {t[name]!r}")
    if len(terms) == 1:
        t = terms[0]
        return np.array([t["seli"] + t["ncc"] - t["vc"]])
    out = np.zeros(len(terms))
    for name, sign in (("seli", 1.0), ("ncc", 1.0), ("vc", -1.0)):
        v = np.array([float(t[name]) for t in terms])
        if np.ptp(v) == 0:
            raise ValueError(f"ncti_normalised: term {name!r} is equal for every model (no range)")
        out += sign * (v - v.min()) / np.ptp(v)
    return out
