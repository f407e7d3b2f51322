"""EMMS (Meng et al., 2023): regress features onto a mixture of label embeddings from K sources."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from core.metrics import check_labels, check_matrix
from core.transferability._common import STUDY, check_convention, prep, zscore_columns


def simplex_project(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of a vector (n,) onto the probability simplex (= sparsemax)."""
    v = np.asarray(v)
    if v.ndim != 1 or v.size == 0 or v.dtype.kind not in "fiu" or not np.all(np.isfinite(v)):
        raise ValueError(f"simplex_project needs a non-empty finite 1-D vector, got shape {v.shape}, "
                         f"dtype {v.dtype}")
    # The projection is unchanged by adding a constant; shifting the largest entry to 0 keeps the
    # cumulative sums from cancelling at large magnitudes (1e17 left no positive entry: IndexError).
    v = v.astype(np.float64) - float(np.max(v))
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1
    r = np.nonzero(u - css / np.arange(1, len(v) + 1) > 0)[0][-1]
    return np.maximum(v - css[r] / (r + 1), 0.0)


def label_embedding_stack(sources: Sequence[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(N, D, K) label embeddings from K per-class tables (C_k >= max label + 1, D_k), indexed by
    ``labels``. Tables of different widths are zero-padded to the widest: a zero column stays
    zero after EMMS's z-scoring, so it adds nothing to the fit. Copies; inputs untouched."""
    if isinstance(sources, np.ndarray):
        sources = [sources]
    sources = list(sources)
    if not sources:
        raise ValueError("label_embeddings is empty")
    y = check_labels(labels, len(np.asarray(labels)))
    tables = []
    for i, e in enumerate(sources):
        e = check_matrix(e, f"label_embeddings[{i}]", min_rows=2, what="classes")
        if y.size and y.max() >= e.shape[0]:
            raise ValueError(f"labels out of range: max label {y.max()} but label_embeddings[{i}] "
                             f"has {e.shape[0]} rows")
        e = np.array(e, dtype=np.float64)
        if not np.all(np.isfinite(e)):
            raise ValueError(f"label_embeddings[{i}] contains NaN or inf")
        tables.append(e)
    width = max(t.shape[1] for t in tables)
    out = np.zeros((len(y), width, len(tables)))
    for i, t in enumerate(tables):
        out[:, :t.shape[1], i] = t[y]
    return out


def _as_stack(label_embeddings, labels, n: int) -> np.ndarray:
    arr = label_embeddings if isinstance(label_embeddings, np.ndarray) else None
    if arr is not None and arr.ndim == 3:
        if arr.shape[0] != n:
            raise ValueError(f"label_embeddings (N, D, K) has {arr.shape[0]} rows for {n} samples")
        if 0 in arr.shape[1:]:
            raise ValueError(f"label_embeddings needs at least one source and one dimension, got (N, D, K) "
                             f"= {arr.shape}")
        if arr.dtype.kind not in "fiu" or not np.all(np.isfinite(arr)):
            raise ValueError("label_embeddings must be finite real numbers")
        return np.array(arr, dtype=np.float64)
    return label_embedding_stack(label_embeddings, labels)


def emms(features: np.ndarray, labels: np.ndarray, *,
         label_embeddings: np.ndarray | Sequence[np.ndarray], convention: str = STUDY) -> float:
    """EMMS with text embeddings as label embeddings. Higher = better (<= 0).

    ``label_embeddings``: (N, D, K), sample i's label embedding from each of K sources, or
    one (C, D) table / a list of K tables indexed by ``labels`` (see :func:`label_embedding_stack`).

    ``convention="study"`` (default; the study's code): features (N, d) and each source's
    (N, D) targets z-scored per column (population std + 1e-8); with equal source weights
    lam = 1/K, W = least squares of features -> sum_k lam_k Y_k; then lam = the simplex
    projection (sparsemax) of the least-squares weights that best mix the sources into F W;
    score = -(||F W - sum_k lam_k Y_k||^2 / N) * D. One alternation, as the study runs.
    ``convention="project"``: our scale-free variant, unit-norm targets (no z-scoring) and the
    exact joint minimum over W and the simplex, score = -(1/N) min ||sum t_k Y_k - F W||^2.
    Cost O(N d^2 + d^3 + N D K^2).
    """
    check_convention(convention, (STUDY, "project"), "emms")
    x, _, _ = prep(features, labels)
    y = _as_stack(label_embeddings, labels, len(x))
    n, dd, k = y.shape
    if convention == STUDY:
        f = zscore_columns(x)
        targets = np.stack([zscore_columns(y[:, :, i]) for i in range(k)], axis=2)
        mix0 = targets @ np.full(k, 1.0 / k)
        w = np.linalg.lstsq(f, mix0, rcond=None)[0]
        pred = f @ w
        lam = np.linalg.lstsq(targets.reshape(n * dd, k), pred.reshape(n * dd), rcond=None)[0]
        lam = simplex_project(lam)
        return -float(((pred - targets @ lam) ** 2).sum() / n * dd)
    nrm = np.linalg.norm(y, axis=1, keepdims=True)
    if np.any(nrm == 0):
        raise ValueError("label_embeddings has a zero-norm row (the 'project' convention normalises rows)")
    targets = [y[:, :, i] / nrm[:, :, i] for i in range(k)]
    ev, v = np.linalg.eigh(x.T @ x)
    keep = ev > 1e-10 * max(ev[-1], 1e-300)
    proj = [(v[:, keep].T @ (x.T @ tk)) / np.sqrt(ev[keep])[:, None] for tk in targets]  # U^T Y_k
    q = np.array([[np.sum(a * b) - np.sum(pa * pb) for b, pb in zip(targets, proj, strict=True)]
                  for a, pa in zip(targets, proj, strict=True)])  # t^T q t = min_W ||sum t_k Y_k - XW||^2
    t = np.full(k, 1.0 / k)
    step = 1.0 / max(2 * np.linalg.eigvalsh(q)[-1], 1e-12)
    for _ in range(500 if k > 1 else 0):
        t = simplex_project(t - step * 2 * q @ t)
    return -float(max(t @ q @ t, 0.0)) / n
