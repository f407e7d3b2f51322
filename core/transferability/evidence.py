"""LogME, LEEP and NCE: evidence of a Bayesian linear model, and scores from source-class probabilities."""
from __future__ import annotations

import numpy as np

from core.metrics import check_matrix
from core.transferability._common import onehot, prep


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

    features (N, d), labels (N,). Bayesian linear regression of each one-hot label column on the features
    (prior w ~ N(0, alpha^-1 I), noise N(0, beta^-1)), alpha and beta set by the
    fixed-point iteration, evaluated in the eigenbasis of F^T F. Alpha and beta are kept in
    [1e-10, 1e10], so the score is scale-free only for features of moderate scale, such as the
    L2-normalised rows every caller here passes (core.predict normalises uploaded rows first).
    Cost O(N d^2 + d^3 + N d + K d * iterations).
    """
    x, y, k = prep(features, labels)
    n, d = x.shape
    sig2, z = _spectrum(x, (onehot(y, k) @ x).T)
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
    _, y, k = prep(np.zeros((len(p), 1)), labels, name="probs")
    return p, y, k


def leep(probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al., ICML 2020), <= 0, higher = better.

    probs (N, Z) source-class probabilities theta(x_i); with P(y, z) = mean_i
    theta_z(x_i) [y_i = y], LEEP = mean_i log sum_z P(y_i | z) theta_z(x_i). Cost O(N Z).
    """
    p, y, k = _prep_probs(probs, labels)
    joint = (onehot(y, k) @ p) / len(p)  # (K, Z)
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
