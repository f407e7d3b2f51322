"""The argument checks and row streaming that ``core.metrics`` and ``core.transferability`` share.

Arrays are checked for shape and dtype only (``check_matrix``, ``check_labels``); finiteness and zero rows are
checked while rows stream in chunks of the input dtype (``iter_unit_chunks``), so a valid array is read once.
The scalar checks (``check_seed``, ``check_count``, ``check_level``) name the argument in their ValueError.
Every name here is re-exported by ``core.metrics``.
"""
from __future__ import annotations

import numbers
from typing import Iterator

import numpy as np

_CHUNK = 1024  # rows per streamed block (4 MB as float64): ~3x one plain pass at N=20k, d=512


# ----------------------------------------------------------------------------- validation
def check_matrix(a: np.ndarray, name: str, *, min_rows: int = 1, what: str = "rows") -> np.ndarray:
    """Return ``a`` as a 2-D real array (no copy when possible) or raise ValueError.

    Checks the shape and dtype only; finiteness and zero rows are checked while
    streaming (see ``iter_unit_chunks``) so a valid array is read once.
    """
    a = np.asarray(a)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows x width), got {a.ndim}-D shape {a.shape}")
    if a.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} {what}, got {a.shape[0]}")
    if a.shape[1] < 1:
        raise ValueError(f"{name} has zero width")
    return a


def check_labels(labels: np.ndarray, n: int, n_classes: int | None = None, *,
                 name: str = "labels") -> np.ndarray:
    """Return ``labels`` as an int64 vector of length ``n`` in ``0..n_classes-1``.

    Integer-valued floats (e.g. labels read back from a float array) are accepted;
    bools, strings, objects and non-integral floats are not.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got {y.ndim}-D shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{name} has length {y.shape[0]} but there are {n} embeddings")
    if y.dtype.kind == "b" or y.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be integers, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if bad.any():
            raise ValueError(f"{name} must be integers, got {y[bad][0]!r} at index {int(np.argmax(bad))}")
    # would wrap in the int64 cast (as floats, 2**63 - 1 rounds up to 2**63: floats are tested >= 2**63)
    if y.size and (int(y.max()) > np.iinfo(np.int64).max if y.dtype.kind == "u"
                   else y.dtype.kind == "f" and float(y.max()) >= 2.0 ** 63):
        raise ValueError(f"{name} out of range: max label {y.max().item()}"
                         + ("" if n_classes is None else f" but only {n_classes} classes"))
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be >= 0, got {int(y.min())}")
    if n_classes is not None and y.size and y.max() >= n_classes:
        raise ValueError(f"{name} out of range: max label {int(y.max())} but only {n_classes} classes "
                         "(text_embeddings rows)")
    return y


def _row_norms(xc: np.ndarray, name: str, start: int) -> np.ndarray:
    """float64 norms of a chunk; raises on NaN/inf or zero rows (robust to over/underflow)."""
    n2 = np.einsum("ij,ij->i", xc, xc)
    # Fast path only where no square can have lost precision as a subnormal: below tiny/eps
    # the sum may be off by far more than rounding (float32 rows near 3e-23 moved IIMM by 0.04).
    info = np.finfo(n2.dtype)
    if np.all(np.isfinite(n2)) and np.all(n2 >= info.tiny / info.eps):
        return np.sqrt(n2, dtype=np.float64)
    x64 = xc.astype(np.float64)
    if not np.all(np.isfinite(x64)):
        row = int(np.argmax(~np.all(np.isfinite(x64), axis=1)))
        raise ValueError(f"{name} contains NaN or inf (row {start + row})")
    m = np.abs(x64).max(axis=1)
    if np.any(m == 0):
        raise ValueError(f"{name} row {start + int(np.argmax(m == 0))} has zero norm; cannot normalise")
    # Rescale by the row max so squares neither overflow nor underflow.
    return m * np.sqrt(np.einsum("ij,ij->i", x64 / m[:, None], x64 / m[:, None]))


def iter_unit_chunks(x: np.ndarray, name: str, chunk: int = _CHUNK) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, rows, inv_norms)`` over ``x``: rows as stored (float32/64 view), inverse norms float64.

    Rows of other dtypes are converted chunk by chunk, never the whole array.
    """
    for s in range(0, x.shape[0], chunk):
        xc = x[s:s + chunk]
        if xc.dtype not in (np.float32, np.float64):
            xc = xc.astype(np.float64)
        yield s, xc, 1.0 / _row_norms(xc, name, s)


def unit_rows(a: np.ndarray, name: str) -> np.ndarray:
    """A float64 L2-normalised copy of a validated 2-D array (for small arrays such as prompts)."""
    out = np.empty(a.shape, dtype=np.float64)
    for s, xc, inv in iter_unit_chunks(a, name):
        out[s:s + len(xc)] = xc * inv[:, None]
    return out


def check_inputs(x: np.ndarray, t: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t, labels) of shapes (N, d), (C, d), (N,) checked as every measure checks them (labels as int64), or
    ValueError naming the argument."""
    return _validate(x, t, labels)


def _validate(x, t, labels=None):
    x = check_matrix(x, "image_embeddings", min_rows=2, what="images")
    t = check_matrix(t, "text_embeddings", min_rows=2, what="classes (prompt rows)")
    if x.shape[1] != t.shape[1]:
        raise ValueError(f"width mismatch: image_embeddings has width {x.shape[1]}, "
                         f"text_embeddings has width {t.shape[1]}")
    y = None if labels is None else check_labels(labels, x.shape[0], t.shape[0])
    return x, t, y


# ----------------------------------------------------------------------------- scalar options
def is_real_number(value: object) -> bool:
    """True for a Python or numpy int or float (np.float32 included); False for bools and anything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_seed(seed: object) -> int:
    """``seed`` as an int, or ValueError naming it: a seed is a non-negative integer (numpy's included)."""
    if not is_real_number(seed) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_count(value: object, name: str, *, minimum: int = 1, why: str = "") -> int:
    """``value`` as an int >= ``minimum``, or ValueError naming it, and ``why`` that minimum (numpy integers
    accepted; 2.5, "4" and bools are not): the one check of a count, size or threshold."""
    if not is_real_number(value) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{f' ({why})' if why else ''}, got {value!r}")
    return int(value)


def check_level(level: object, name: str = "level") -> float:
    """``level`` as a float strictly between 0 and 1, or ValueError naming it ("0.9", NaN and bools are
    refused): the one check of an interval's or a bootstrap's level."""
    if not is_real_number(level) or not 0.0 < float(level) < 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {level!r}")
    return float(level)


def check_order(order: object, n: int) -> np.ndarray:
    """``order`` (n,) as an int64 permutation of 0..n-1 (the order seeded draws follow), or ValueError."""
    o = np.asarray(order)
    if o.shape != (n,) or o.dtype.kind not in "iu" or not np.array_equal(np.sort(o), np.arange(n)):
        raise ValueError(f"order must be a permutation of the {n} row positions")
    return o.astype(np.int64)
