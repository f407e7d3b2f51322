"""Input checks and small linear-algebra helpers shared by the baselines."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from core.metrics import check_labels, check_matrix

#: The convention every baseline defaults to: the definitions of the study's official code.
STUDY = "study"


def prep(features: np.ndarray, labels: np.ndarray, name: str = "features") -> tuple[np.ndarray, np.ndarray, int]:
    """float64 copy (N, d) of features (N, d), labels (N,) mapped to int64 0..K-1, and K >= 2;
    raises ValueError on bad input."""
    x = check_matrix(features, name, min_rows=2, what="samples")
    x = np.array(x, dtype=np.float64)  # a copy: nothing below can touch the caller's array
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf")
    y = check_labels(labels, x.shape[0])
    _, y = np.unique(y, return_inverse=True)
    k = int(y.max()) + 1
    if k < 2:
        raise ValueError("labels must contain at least 2 distinct classes")
    return x, y.astype(np.int64), k


def check_convention(convention: str, allowed: tuple[str, ...], method: str) -> str:
    """``convention`` if it is in ``allowed``, else ValueError naming ``method`` and the choices."""
    if convention not in allowed:
        raise ValueError(f"{method}: unknown convention {convention!r}; choose from {list(allowed)}")
    return convention


def onehot(y: np.ndarray, k: int) -> sp.csr_matrix:
    """Sparse float64 class-indicator matrix of shape (K, N): entry (y[i], i) is 1, for labels y (N,) in 0..K-1."""
    return sp.csr_matrix((np.ones(len(y)), (y, np.arange(len(y)))), shape=(k, len(y)))


def class_means(x: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(counts (K,), means (K, d))."""
    counts = np.bincount(y, minlength=k).astype(np.float64)
    return counts, (onehot(y, k) @ x) / counts[:, None]


def need_two_per_class(y: np.ndarray, k: int, method: str) -> None:
    """ValueError naming ``method`` unless each of the K classes has at least 2 of the labels y (N,)."""
    counts = np.bincount(y, minlength=k)
    if counts.min() < 2:
        raise ValueError(f"{method} needs at least 2 samples per class (within-class variance); "
                         f"a class has {counts.min()}")


def softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of z (N, C), max-shifted for stability; same shape, rows sum to 1."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def zscore_columns(a: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(a - column mean) / (column std + eps), population std, as the study's EMMS does."""
    return (a - a.mean(axis=0)) / (a.std(axis=0) + eps)
