"""Transferability baselines (SPEC §5), each written from its paper, as pure functions.

Inputs: ``features`` (N, d) L2-normalised zero-shot image features (not enforced:
every score is defined for any finite features) and ``labels`` (N,) integer class
ids (any ids; they are mapped to 0..K-1 internally, K >= 2 distinct classes).
LEEP and NCE instead take ``probs`` (N, Z): the source model's class probabilities,
here the zero-shot softmax over the class prompts. EMMS takes ``label_embeddings``:
the class-prompt text embeddings (C, D), or a list of such arrays, indexed by the
labels. Every score is oriented so that HIGHER = MORE TRANSFERABLE. Arrays are
copied before any arithmetic; the caller's arrays are never modified.

Where a paper leaves a detail open (or we could not read it) the choice is named
in the function's docstring.
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from core.metrics import check_labels, check_matrix

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- shared helpers
def _prep(features, labels, name: str = "features") -> tuple[np.ndarray, np.ndarray, int]:
    """float64 copy of features, labels mapped to 0..K-1, and K; raises ValueError on bad input."""
    x = check_matrix(features, name, min_rows=2, what="samples")
    x = np.array(x, dtype=np.float64)  # a copy: nothing below can touch the caller's array
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    y = check_labels(labels, x.shape[0])
    _, y = np.unique(y, return_inverse=True)
    k = int(y.max()) + 1
    if k < 2:
        raise ValueError("labels must contain at least 2 distinct classes")
    return x, y, k


def _onehot(y: np.ndarray, k: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(len(y)), (y, np.arange(len(y)))), shape=(k, len(y)))


def _class_means(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return counts, (_onehot(y, k) @ x) / counts[:, None]


def _scatter(x: np.ndarray, y: np.ndarray, k: int):
    """Within- and between-class covariances (each / N), class counts and means."""
    counts, means = _class_means(x, y, k)
    resid = x - means[y]
    sw = resid.T @ resid / len(x)
    mc = means - x.mean(axis=0)
    sb = (mc * (counts / len(x))[:, None]).T @ mc
    return sw, sb, counts, means


def _need_two_per_class(y: np.ndarray, k: int, method: str) -> None:
    counts = np.bincount(y, minlength=k)
    if counts.min() < 2:
        raise ValueError(f"{method} needs at least 2 samples per class (within-class variance); "
                         f"a class has {counts.min()}")


# ----------------------------------------------------------------------------- GBC
def gbc(features: np.ndarray, labels: np.ndarray, *, pca_dim: int | None = 64, var_floor: float = 1e-10) -> float:
    """Gaussian Bhattacharyya Coefficient (Pándy et al., CVPR 2022). Higher (closer to 0) = better.

    Features are projected on their top ``pca_dim`` principal axes (None: no PCA),
    each class is fitted a diagonal Gaussian, and GBC = -sum_{i != j} BC(i, j), with
    BC = exp(-D_B) and D_B the Bhattacharyya distance. Range [-K(K-1), 0].
    Needs >= 2 samples per class. Cost O(N d^2 + d^3 + K^2 p).
    """
    x, y, k = _prep(features, labels)
    _need_two_per_class(y, k, "gbc")
    if pca_dim is not None:
        if isinstance(pca_dim, bool) or not isinstance(pca_dim, (int, np.integer)) or pca_dim < 1:
            raise ValueError(f"pca_dim must be a positive integer or None, got {pca_dim!r}")
        xc = x - x.mean(axis=0)
        _, vecs = np.linalg.eigh(xc.T @ xc)
        x = xc @ vecs[:, ::-1][:, :pca_dim]
    counts, mu = _class_means(x, y, k)
    var = (_onehot(y, k) @ (x - mu[y]) ** 2) / counts[:, None] + var_floor
    logvar = np.log(var)
    total = 0.0
    for i in range(k):  # one class against all others at once: memory O(K p)
        v = (var[i] + var) / 2
        d_b = (0.125 * ((mu[i] - mu) ** 2 / v).sum(1)
               + 0.5 * (np.log(v) - 0.5 * (logvar[i] + logvar)).sum(1))
        bc = np.exp(-d_b)
        bc[i] = 0.0
        total += bc.sum()
    return -float(total)


# ----------------------------------------------------------------------------- H-score
def h_score(features: np.ndarray, labels: np.ndarray, *, shrinkage: float | str | None = "auto") -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)^-1 cov(E[f|y])). Higher = better.

    ``shrinkage``: "auto" = Ledoit-Wolf shrinkage of cov(f) toward a scaled identity
    (the regularised H-score of Ibrahim et al. 2022, stable when d is large);
    a float in [0, 1] fixes the weight; None = the original (pseudo-inverse).
    Cost O(N d^2 + d^3).
    """
    x, y, k = _prep(features, labels)
    xc = x - x.mean(axis=0)
    n, d = xc.shape
    cov = xc.T @ xc / n
    if shrinkage == "auto":
        from sklearn.covariance import ledoit_wolf_shrinkage
        alpha = float(ledoit_wolf_shrinkage(xc, assume_centered=True))
    elif shrinkage is None:
        alpha = 0.0
    elif isinstance(shrinkage, (float, int)) and not isinstance(shrinkage, bool) and 0.0 <= shrinkage <= 1.0:
        alpha = float(shrinkage)
    else:
        raise ValueError(f"shrinkage must be 'auto', None or a float in [0, 1], got {shrinkage!r}")
    cov = (1 - alpha) * cov + alpha * (np.trace(cov) / d) * np.eye(d)
    counts, means = _class_means(xc, y, k)
    inv_m = np.linalg.pinv(cov, hermitian=True) @ means.T if alpha == 0 else np.linalg.solve(cov, means.T)
    # tr(cov^-1 sum_c p_c m_c m_c^T) = sum_c p_c m_c^T cov^-1 m_c
    return float(np.einsum("c,dc,cd->", counts / n, inv_m, means))


# ----------------------------------------------------------------------------- TransRate
def _rate(z: np.ndarray, eps: float) -> float:
    """Coding rate 1/2 logdet(I + Z^T Z / (n eps)), on the smaller Gram side."""
    g = z.T @ z if z.shape[0] >= z.shape[1] else z @ z.T
    ev = np.clip(np.linalg.eigvalsh(g), 0.0, None)
    return 0.5 * float(np.log1p(ev / (z.shape[0] * eps)).sum())


def transrate(features: np.ndarray, labels: np.ndarray, *, eps: float = 1e-4) -> float:
    """TransRate (Huang et al., ICML 2022): R(Z, eps) - R(Z|Y, eps). Higher = better.

    Z = features centred globally; R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps)) (the
    MCR^2 coding rate with its d/eps^2 folded into 1/eps); R(Z|Y) = sum_c (n_c/n) R(Z_c)
    over the class blocks, as in MCR^2. Cost O(N d^2 + d^3 + sum_c min(n_c, d)^3).
    """
    if not (isinstance(eps, (float, int)) and eps > 0):
        raise ValueError(f"eps must be > 0, got {eps!r}")
    x, y, k = _prep(features, labels)
    z = x - x.mean(axis=0)
    n = len(z)
    order = np.argsort(y, kind="stable")  # contiguous class blocks: one gather, not K masks
    zs, bounds = z[order], np.r_[0, np.cumsum(np.bincount(y, minlength=k))]
    cond = sum((b - a) / n * _rate(zs[a:b], eps) for a, b in zip(bounds[:-1], bounds[1:]))
    return _rate(z, eps) - cond


# ----------------------------------------------------------------------------- SFDA
def _fisher_probs(x: np.ndarray, y: np.ndarray, k: int, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Regularised FDA then a Gaussian (identity-covariance) classifier in Fisher space: (probs, means)."""
    sw, sb, counts, means = _scatter(x, y, k)
    d = x.shape[1]
    lam = float(np.exp(-a * np.linalg.eigvalsh(sb)[-1]))  # separable data -> little shrinkage
    sw_r = (1 - lam) * sw + lam * np.eye(d) + 1e-12 * np.eye(d)
    m = min(k - 1, d)
    _, u = sla.eigh(sb, sw_r, subset_by_index=[d - m, d - 1])
    z, zm = x @ u, means @ u
    # LDA in Fisher space with the projected (unshrunk) within-class covariance:
    # keeps the posterior scale-free (with Sw_r ~ I it would be ~uniform for unit features).
    cov = u.T @ sw @ u
    cov += (1e-9 * np.trace(cov) / m + 1e-300) * np.eye(m)
    w = np.linalg.solve(cov, zm.T)  # (m, K)
    logits = z @ w - 0.5 * np.einsum("km,mk->k", zm, w) + np.log(counts / len(x))
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True), means


def sfda(features: np.ndarray, labels: np.ndarray, *, a: float = 1.0, challenge: float = 0.5) -> float:
    """Self-challenging Fisher Discriminant Analysis (Shao et al., ECCV 2022). Higher = better, in (0, 1].

    1. Regularised FDA: Sw <- (1 - lam) Sw + lam I with lam = exp(-a * sigma_max(Sb));
       project on the top K-1 generalised eigenvectors of (Sb, Sw) and score each
       class with a shared-covariance Gaussian there (LDA softmax posterior).
    2. ConfMix self-challenge (our reading of the paper): each sample moves toward
       the mean of its most confusable wrong class by ``challenge * (1 - p_true)``,
       so hard samples get harder; the FDA of step 1 is refitted on these features.
    Score = mean posterior of the true class after the challenge.
    Cost O(N d^2 + d^3 + N K d).
    """
    if not (isinstance(challenge, (float, int)) and 0.0 <= challenge <= 1.0):
        raise ValueError(f"challenge must be in [0, 1], got {challenge!r}")
    if not (isinstance(a, (float, int)) and a >= 0.0):
        raise ValueError(f"a must be >= 0, got {a!r}")
    x, y, k = _prep(features, labels)
    p, means = _fisher_probs(x, y, k, a)
    rows = np.arange(len(x))
    p_true = p[rows, y]
    wrong = p.copy()
    wrong[rows, y] = -1.0
    confuser = wrong.argmax(axis=1)
    x_mix = x + (challenge * (1 - p_true))[:, None] * (means[confuser] - x)
    p2, _ = _fisher_probs(x_mix, y, k, a)
    return float(p2[rows, y].mean())


# ----------------------------------------------------------------------------- NCTI
def ncti_terms(features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The three neural-collapse terms of NCTI (Wang et al., ICCV 2023); each: higher = closer to collapse.

    * ``vc`` (within-class variability collapse, NC1): -log(tr(Sw Sb^+) / K),
      floored at tr = 1e-12 so exact collapse stays finite;
    * ``seli`` (simplex-encoded-label geometry): nuclear norm of the centred,
      row-normalised class-mean matrix over its maximum sqrt(K (K-1)); 1 for a simplex ETF.
      The paper's exact normalisation could not be read; this is our bounded stand-in;
    * ``ncc`` (nearest-centre classifier): mean log-probability of the true class
      under softmax(-||f - mu_c||^2 / (2 s^2)), s^2 = tr(Sw) / d.
    Cost O(N d^2 + d^3 + N K d).
    """
    x, y, k = _prep(features, labels)
    sw, sb, _, means = _scatter(x, y, k)
    ev, vec = np.linalg.eigh(sb)
    keep = ev > 1e-10 * max(ev[-1], 1e-300)
    tr = float(np.einsum("di,de,ei->i", vec[:, keep], sw, vec[:, keep]) @ (1 / ev[keep])) if keep.any() else np.inf
    vc = -np.log(max(tr / k, 1e-12))
    mc = means - means.mean(axis=0)
    nrm = np.linalg.norm(mc, axis=1, keepdims=True)
    mc = np.divide(mc, nrm, out=np.zeros_like(mc), where=nrm > 0)
    seli = float(np.linalg.svd(mc, compute_uv=False).sum()) / np.sqrt(k * (k - 1))
    s2 = max(float(np.trace(sw)) / x.shape[1], 1e-12)
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ means.T + (means ** 2).sum(1)[None, :]
    logits = -d2 / (2 * s2)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits[np.arange(len(x)), y] - np.log(np.exp(logits).sum(axis=1))
    return {"vc": float(vc), "seli": seli, "ncc": float(logp.mean())}


def ncti(features: np.ndarray, labels: np.ndarray) -> float:
    """NCTI (Wang et al., ICCV 2023) = vc + seli + ncc of ``ncti_terms``. Higher = better.

    The paper min-max normalises each term across the candidate models before
    summing; one feature set has nothing to normalise against, so the raw terms are
    summed (compare NCTI values across tasks for one model, not across models).
    Cost O(N d^2 + d^3 + N K d).
    """
    return float(sum(ncti_terms(features, labels).values()))


# ----------------------------------------------------------------------------- LogME
def _logme_fit(sig2: np.ndarray, z: np.ndarray, ysq: np.ndarray, n: int, d: int, *,
               max_iter: int = 100, tol: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evidence/n, alpha, beta per target column, from the spectrum of F.

    ``sig2`` (r,) nonzero eigenvalues of F^T F, ``z`` (r, K) = U^T Y (left singular
    basis), ``ysq`` (K,) = ||y_k||^2. MacKay's fixed point: gamma = sum b s/(a + b s),
    alpha = gamma / m^T m, beta = (n - gamma) / ||F m - y||^2.
    """
    out = np.empty((3, z.shape[1]))
    for j in range(z.shape[1]):
        zj, alpha, beta = z[:, j], 1.0, 1.0
        rest = max(ysq[j] - float(zj @ zj), 0.0)  # part of y outside the span of F
        for _ in range(max_iter):
            den = alpha + beta * sig2
            gamma = float((beta * sig2 / den).sum())
            mm = float((beta * np.sqrt(sig2) * zj / den) @ (beta * np.sqrt(sig2) * zj / den))
            res = float(((alpha * zj / den) ** 2).sum()) + rest
            # clamped: on tiny, separable samples gamma or the residual reach 0 and log(0) follows
            new_a = min(max(gamma / max(mm, 1e-300), 1e-10), 1e10)
            new_b = min(max((n - gamma) / max(res, 1e-300), 1e-10), 1e10)
            done = abs(new_a - alpha) <= tol * alpha and abs(new_b - beta) <= tol * beta
            alpha, beta = new_a, new_b
            if done:
                break
        den = alpha + beta * sig2
        mm = float(((beta * np.sqrt(sig2) * zj / den) ** 2).sum())
        res = float(((alpha * zj / den) ** 2).sum()) + rest
        ev = (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi) - beta / 2 * res
              - alpha / 2 * mm - 0.5 * (np.log(den).sum() + (d - len(sig2)) * np.log(alpha)))
        out[:, j] = ev / n, alpha, beta
    return out[0], out[1], out[2]


def _spectrum(x: np.ndarray, xty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nonzero eigenvalues of X^T X and U^T Y = S^-1 V^T (X^T Y), from the d x d side."""
    ev, v = np.linalg.eigh(x.T @ x)
    keep = ev > 1e-10 * max(ev[-1], 1e-300)
    return ev[keep], (v[:, keep].T @ xty) / np.sqrt(ev[keep])[:, None]


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al., ICML 2021): mean over classes of the maximised log evidence / N. Higher = better.

    Bayesian linear regression of each one-hot label column on the features
    (prior w ~ N(0, alpha^-1 I), noise N(0, beta^-1)), alpha and beta set by the
    fixed-point iteration, evaluated in the eigenbasis of F^T F.
    Cost O(N d^2 + d^3 + N d + K d * iterations).
    """
    x, y, k = _prep(features, labels)
    n, d = x.shape
    sig2, z = _spectrum(x, (_onehot(y, k) @ x).T)
    ev, _, _ = _logme_fit(sig2, z, np.bincount(y, minlength=k).astype(float), n, d)
    return float(ev.mean())


# ----------------------------------------------------------------------------- LEEP / NCE
def _prep_probs(probs, labels) -> tuple[np.ndarray, np.ndarray, int]:
    p = check_matrix(probs, "probs", min_rows=2, what="samples")
    p = np.array(p, dtype=np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("probs contains NaN or inf")
    if p.min() < 0:
        raise ValueError("probs must be non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("probs rows must sum to 1 (pass softmax probabilities, not logits)")
    p /= p.sum(axis=1, keepdims=True)
    _, y, k = _prep(np.zeros((len(p), 1)), labels, name="probs")
    return p, y, k


def leep(probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al., ICML 2020), <= 0, higher = better.

    probs (N, Z) source-class probabilities theta(x_i); with P(y, z) = mean_i
    theta_z(x_i) [y_i = y], LEEP = mean_i log sum_z P(y_i | z) theta_z(x_i). Cost O(N Z).
    """
    p, y, k = _prep_probs(probs, labels)
    joint = (_onehot(y, k) @ p) / len(p)  # (K, Z)
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz, out=np.zeros_like(joint), where=pz > 0)  # P(y | z)
    return float(np.log(np.einsum("iz,iz->i", p, cond[y])).mean())


def nce(probs: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al., ICCV 2019) = -H(Y | Z), <= 0, higher = better; 0 iff Z determines Y.

    Z = argmax of probs (N, Z): the source model's hard prediction. Cost O(N Z + K Z).
    """
    p, y, k = _prep_probs(probs, labels)
    z = p.argmax(axis=1)
    nz = p.shape[1]
    joint = np.bincount(y * nz + z, minlength=k * nz).reshape(k, nz) / len(p)
    pz = joint.sum(axis=0)
    nzm = joint > 0
    return float((joint[nzm] * np.log(joint[nzm] / np.broadcast_to(pz, joint.shape)[nzm])).sum())


# ----------------------------------------------------------------------------- EMMS
def _simplex_project(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto the probability simplex (sort-based)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    r = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[r] / (r + 1), 0.0)


def emms(features: np.ndarray, labels: np.ndarray, *,
         label_embeddings: np.ndarray | Sequence[np.ndarray]) -> float:
    """EMMS (Meng et al., 2023) with text embeddings as label embeddings. Higher = better, in [-1, 0].

    Each sample's target is the unit label embedding of its class (rows of
    ``label_embeddings`` indexed by ``labels``; a list of several (C, D) arrays
    gives several label encoders, mixed by simplex weights t). Score =
    -(1/N) min_{t in simplex, W} ||sum_k t_k Y_k - F W||^2. Minimising W in closed form
    leaves a K x K quadratic in t (solved by projected gradient), so no
    alternation is needed. Cost O(N d^2 + d^3 + N D K^2).
    """
    embs = [label_embeddings] if isinstance(label_embeddings, np.ndarray) else list(label_embeddings)
    if not embs:
        raise ValueError("label_embeddings is empty")
    x, _, _ = _prep(features, labels)
    raw = check_labels(labels, len(x))
    targets = []
    for i, e in enumerate(embs):
        e = check_matrix(e, f"label_embeddings[{i}]", min_rows=2, what="classes")
        if targets and e.shape[1] != targets[0].shape[1]:
            raise ValueError("label_embeddings arrays must all have the same width")
        if raw.max() >= e.shape[0]:
            raise ValueError(f"labels out of range: max label {raw.max()} but label_embeddings[{i}] "
                             f"has {e.shape[0]} rows")
        e = np.array(e, dtype=np.float64)
        if not np.all(np.isfinite(e)):
            raise ValueError(f"label_embeddings[{i}] contains NaN or inf")
        nrm = np.linalg.norm(e, axis=1, keepdims=True)
        if np.any(nrm == 0):
            raise ValueError(f"label_embeddings[{i}] has a zero-norm row")
        targets.append((e / nrm)[raw])
    ev, v = np.linalg.eigh(x.T @ x)
    keep = ev > 1e-10 * max(ev[-1], 1e-300)
    proj = [(v[:, keep].T @ (x.T @ tk)) / np.sqrt(ev[keep])[:, None] for tk in targets]  # U^T Y_k
    q = np.array([[np.sum(a * b) - np.sum(pa * pb) for b, pb in zip(targets, proj)]
                  for a, pa in zip(targets, proj)])  # residual Gram: t^T q t = min_W ||sum t_k Y_k - XW||^2
    t = np.full(len(q), 1.0 / len(q))
    step = 1.0 / max(2 * np.linalg.eigvalsh(q)[-1], 1e-12)
    for _ in range(500 if len(q) > 1 else 0):
        t = _simplex_project(t - step * 2 * q @ t)
    return -float(max(t @ q @ t, 0.0)) / len(x)


# ----------------------------------------------------------------------------- registry
BASELINES: dict[str, tuple[Callable[..., float], str]] = {
    "gbc": (gbc, "higher = better (-sum of pairwise Bhattacharyya coefficients, <= 0)"),
    "h_score": (h_score, "higher = better (shrunk H-score)"),
    "transrate": (transrate, "higher = better (coding-rate gain, nats)"),
    "sfda": (sfda, "higher = better (mean true-class posterior, 0..1)"),
    "ncti": (ncti, "higher = better (sum of three neural-collapse terms)"),
    "logme": (logme, "higher = better (log evidence per sample)"),
    "leep": (leep, "higher = better (<= 0); needs probs"),
    "nce": (nce, "higher = better (<= 0); needs probs"),
    "emms": (emms, "higher = better (<= 0); needs label_embeddings"),
}


def all_scores(features: np.ndarray, labels: np.ndarray, *, probs: np.ndarray | None = None,
               label_embeddings: np.ndarray | Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """Every baseline whose inputs are given, name -> score.

    Bad input raises ValueError. A baseline whose own assumption fails on valid
    input (e.g. GBC with a single-sample class) is NaN, with a warning logged.
    """
    _prep(features, labels)
    out: dict[str, float] = {}
    for name, (fn, _) in BASELINES.items():
        if name in ("leep", "nce"):
            if probs is None:
                continue
            call = lambda fn=fn: fn(probs, labels)  # noqa: E731
        elif name == "emms":
            if label_embeddings is None:
                continue
            call = lambda fn=fn: fn(features, labels, label_embeddings=label_embeddings)  # noqa: E731
        else:
            call = lambda fn=fn: fn(features, labels)  # noqa: E731
        try:
            out[name] = call()
        except ValueError as e:
            if name in ("leep", "nce", "emms"):
                raise  # their extra inputs are the caller's to fix
            log.warning("%s set to NaN: %s", name, e)
            out[name] = float("nan")
    return out
