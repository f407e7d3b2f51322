"""Zero-shot measures of a dual encoder on a labelled dataset, IIMM first (SPEC §1).

Every function takes the embeddings of ONE forward pass of a frozen model:

* ``image_embeddings`` ``x``: shape (N, d), one row per image, N >= 2;
* ``text_embeddings`` ``t``: shape (C, d), one prompt embedding per class, C >= 2;
* ``labels``: shape (N,), integers in ``0..C-1``.

Rows are L2-normalised inside (the caller's arrays are never modified), so any
positive scaling of a row changes nothing. Sums are accumulated in float64 while
rows are streamed in chunks of the input dtype, so memory stays O(N*d) at most and
no N x N or N x C matrix is ever built (except the chunk x C score block of
``zero_shot_accuracy``, and the silhouettes' pairwise distances over at most ``sample_size``
rows per modality, which ``zero_shot_scores`` includes). Bad input raises ``ValueError``
naming the argument.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from core.metric_checks import (_validate, check_count, check_inputs, check_labels, check_level,  # noqa: F401 (re-exported)
                                check_matrix, check_order, check_seed, is_real_number, iter_unit_chunks, unit_rows)

log = logging.getLogger(__name__)
_F32 = np.finfo(np.float32)
_F32_SAFE = (float(_F32.tiny / _F32.eps), float(_F32.max) / 2)  # row norms whose float32 scores stay accurate


# ----------------------------------------------------------------------------- sums
def _class_sums(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """S[c] = sum of the unit image rows of class c, float64 (C, d); one streamed pass.

    A sparse one-hot (weighted by 1/||x_i||) times the chunk does the normalising
    and the class grouping together, O(chunk*d) per step.
    """
    S = np.zeros((n_classes, x.shape[1]), dtype=np.float64)
    for s, xc, inv in iter_unit_chunks(x, "image_embeddings"):
        onehot = sp.csr_matrix((inv, (y[s:s + len(xc)], np.arange(len(xc)))), shape=(n_classes, len(xc)))
        S += onehot @ xc
    return S


def _total(x: np.ndarray) -> np.ndarray:
    """Sum of the unit rows of ``x`` as float64 (d,)."""
    tot = np.zeros(x.shape[1], dtype=np.float64)
    for _, xc, inv in iter_unit_chunks(x, "image_embeddings"):
        tot += inv @ xc
    return tot


def _terms(x, t, y) -> tuple[dict[str, float], np.ndarray]:
    """inter, intra, correct-pair and modality gap from one pass over the images, plus unit prompts."""
    n, c = x.shape[0], t.shape[0]
    tn = unit_rows(t, "text_embeddings")
    S = _class_sums(x, y, c)
    total = S.sum(axis=0)
    correct_sum = float(np.einsum("cd,cd->", S, tn))  # sum_c S_c . t_c
    wrong_sum = float(total @ tn.sum(axis=0)) - correct_sum
    return {
        "inter_modal": wrong_sum / (n * (c - 1)),
        "intra_image": (float(total @ total) - n) / (n * (n - 1)),
        "correct_pair": correct_sum / n,
        "modality_gap": float(np.linalg.norm(total / n - tn.mean(axis=0))),
    }, tn


# ----------------------------------------------------------------------------- public measures
def inter_modal_score(image_embeddings: np.ndarray, text_embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine over all N*(C-1) wrong image-prompt pairs (x (N,d), t (C,d), labels (N,)).

    Exact closed form: (sum_c S_c . T - sum_c S_c . t_c) / (N (C-1)), T = sum_c t_c. O(N*d).
    """
    x, t, y = _validate(image_embeddings, text_embeddings, labels)
    return _terms(x, t, y)[0]["inter_modal"]


def intra_image_score(image_embeddings: np.ndarray) -> float:
    """Mean cosine over the N(N-1)/2 distinct image pairs i<j (x (N,d), N >= 2).

    Exact closed form for unit rows: (||sum_i x_i||^2 - N) / (N (N-1)). O(N*d).
    """
    x = check_matrix(image_embeddings, "image_embeddings", min_rows=2, what="images")
    total = _total(x)
    n = x.shape[0]
    return (float(total @ total) - n) / (n * (n - 1))


def iimm(image_embeddings: np.ndarray, text_embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Inter-Intra Modal Measure = (inter_modal + intra_image) / 2 (SPEC §1).

    x (N,d) images, t (C,d) class prompts, labels (N,) in 0..C-1. O(N*d) time,
    O(C*d) extra memory; exact (no sampling).
    """
    x, t, y = _validate(image_embeddings, text_embeddings, labels)
    r, _ = _terms(x, t, y)
    return (r["inter_modal"] + r["intra_image"]) / 2.0


def correct_pair_cosine(x: np.ndarray, t: np.ndarray, labels: np.ndarray) -> float:
    """Mean cosine between each image and its own class prompt (x (N,d), t (C,d), labels (N,))."""
    x, t, y = _validate(x, t, labels)
    return _terms(x, t, y)[0]["correct_pair"]


def modality_gap(x: np.ndarray, t: np.ndarray) -> float:
    """Euclidean distance between the mean unit image row and the mean unit prompt row.

    x (N,d), t (C,d). Every class prompt counts once, whatever the class sizes.
    """
    x, t, _ = _validate(x, t)
    return float(np.linalg.norm(_total(x) / x.shape[0] - unit_rows(t, "text_embeddings").mean(axis=0)))


def intra_text_score(t: np.ndarray) -> float:
    """Mean cosine over the C(C-1)/2 distinct prompt pairs (t (C,d), C >= 2)."""
    t = check_matrix(t, "text_embeddings", min_rows=2, what="classes (prompt rows)")
    s = unit_rows(t, "text_embeddings").sum(axis=0)
    c = t.shape[0]
    return (float(s @ s) - c) / (c * (c - 1))


def zero_shot_accuracy(x: np.ndarray, t: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 zero-shot accuracy in % (0..100): argmax_c cos(x_i, t_c) == labels[i].

    x (N,d), t (C,d), labels (N,). Scored in row chunks: memory O(N*d + chunk*C).
    Ties go to the lowest class index.
    """
    x, t, y = _validate(x, t, labels)
    tn = unit_rows(t, "text_embeddings")
    hits = 0
    for s, xc, inv in iter_unit_chunks(x, "image_embeddings"):
        # A positive row scale cannot change the argmax, so rows need no normalising here, unless float32
        # scores would leave the normal range: subnormal products keep a few bits, and a norm past max overflows.
        if xc.dtype == np.float32 and not (_F32_SAFE[0] <= 1.0 / inv.max() and 1.0 / inv.min() <= _F32_SAFE[1]):
            xc = xc.astype(np.float64)
        hits += int(np.count_nonzero(np.argmax(xc @ tn.T.astype(xc.dtype), axis=1) == y[s:s + len(xc)]))
    return 100.0 * hits / x.shape[0]


def _subsample(n: int, sample_size: int, seed: int, order: np.ndarray | None = None) -> np.ndarray:
    if isinstance(sample_size, bool) or not isinstance(sample_size, (int, np.integer)) or sample_size < 2:
        raise ValueError(f"sample_size must be an integer >= 2, got {sample_size!r}")
    seed = check_seed(seed)
    if n <= sample_size:
        return np.arange(n)
    drawn = np.random.default_rng(seed).choice(n, size=sample_size, replace=False)
    return np.sort(drawn if order is None else check_order(order, n)[drawn])



def _silhouette(z: np.ndarray, lab: np.ndarray, what: str) -> float:
    from sklearn.metrics import silhouette_score  # heavy import, only when asked

    k = np.unique(lab).size
    if not 2 <= k <= len(lab) - 1:
        raise ValueError(f"silhouette undefined for {what}: {k} distinct labels among {len(lab)} samples "
                         "(need 2 <= labels <= samples - 1)")
    return float(silhouette_score(z, lab, metric="cosine"))


def silhouette_classes(x: np.ndarray, labels: np.ndarray, *, sample_size: int = 2000, seed: int = 0,
                       order: np.ndarray | None = None) -> float:
    """Silhouette of the IMAGE embeddings grouped by CLASS label (cosine distance), in [-1, 1].

    The A-CLIP paper's task-difficulty measure: high = classes already well
    separated in the zero-shot image space. x (N,d), labels (N,). O(n^2 d) with
    n = min(N, sample_size): images are subsampled without replacement by ``seed``, drawn as positions in
    ``order`` (a permutation of the rows; default: as stored).
    """
    x = check_matrix(x, "image_embeddings", min_rows=2, what="images")
    y = check_labels(labels, x.shape[0])
    idx = _subsample(x.shape[0], sample_size, seed, order)
    return _silhouette(unit_rows(x[idx], "image_embeddings"), y[idx], "image classes")


def silhouette_modality(x: np.ndarray, t: np.ndarray, *, sample_size: int = 2000, seed: int = 0,
                        order: np.ndarray | None = None) -> float:
    """Silhouette of images + prompts pooled, grouped by MODALITY (0 = image, 1 = text), cosine.

    A-CLIP's modality-separation measure: high = images and prompts form two
    separate clusters (large modality gap). x (N,d), t (C,d); each modality is
    subsampled to at most ``sample_size`` rows by ``seed`` (the images' as positions in ``order``). O(n^2 d).
    """
    x, t, _ = _validate(x, t)
    seed = check_seed(seed)  # a Python int: seed + 1 of np.uint8(255) wrapped to 0
    ix = _subsample(x.shape[0], sample_size, seed, order)
    it = _subsample(t.shape[0], sample_size, seed + 1)
    z = np.vstack([unit_rows(x[ix], "image_embeddings"), unit_rows(t[it], "text_embeddings")])
    lab = np.r_[np.zeros(len(ix), dtype=np.int64), np.ones(len(it), dtype=np.int64)]
    return _silhouette(z, lab, "modality")


def zero_shot_scores(x: np.ndarray, t: np.ndarray, labels: np.ndarray, *,
                     order: np.ndarray | None = None) -> dict[str, float]:
    """Every measure above in one call on x (N,d), t (C,d), labels (N,); keys: iimm, inter_modal,
    intra_image, correct_pair, modality_gap, intra_text, zs_acc, silhouette_classes, silhouette_modality
    (``order``: the silhouettes').

    ``silhouette_classes`` is NaN (with a warning) only when it is undefined for
    the labelling, e.g. every sampled image in its own class.
    """
    x, t, y = _validate(x, t, labels)
    r, tn = _terms(x, t, y)
    c = t.shape[0]
    st = tn.sum(axis=0)
    out = {"iimm": (r["inter_modal"] + r["intra_image"]) / 2.0, **r,
           "intra_text": (float(st @ st) - c) / (c * (c - 1)),
           "zs_acc": zero_shot_accuracy(x, t, y)}
    try:
        out["silhouette_classes"] = silhouette_classes(x, y, order=order)
    except ValueError as e:
        log.warning("silhouette_classes set to NaN: %s", e)
        out["silhouette_classes"] = float("nan")
    out["silhouette_modality"] = silhouette_modality(x, t, order=order)
    return out


def bootstrap_iimm(x: np.ndarray, t: np.ndarray, labels: np.ndarray, *, n_boot: int = 200,
                   seed: int = 0, level: float = 0.95, order: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval (lo, hi) of IIMM, resampling images with replacement.

    The seeded draws are positions in ``order`` (a permutation of the rows; default: as stored): with an order
    set by the rows' content, the interval does not depend on how the rows are stored.

    x (N,d), t (C,d), labels (N,). Each replicate is computed exactly from resample
    counts: the intra term skips pairs of the same drawn image (the statistic is
    over distinct images), else it would be biased up by ~(1 - intra)/N.
    Cost O(n_boot * N * d) in BLAS, memory O(N*d + 32*N).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    if not (is_real_number(level) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    seed = check_seed(seed)
    x, t, y = _validate(x, t, labels)
    n, c = x.shape[0], t.shape[0]
    rank = None if order is None else np.argsort(check_order(order, n))  # row i is drawn as position rank[i]
    tn = unit_rows(t, "text_embeddings")
    work = np.float64 if x.dtype == np.float64 else np.float32
    xn = np.empty(x.shape, dtype=work)
    w = np.empty(n, dtype=np.float64)  # w_i = x_i . (T - t_{y_i}): image i's summed wrong-pair cosine
    tot_t = tn.sum(axis=0)
    for s, xc, inv in iter_unit_chunks(x, "image_embeddings"):
        xn[s:s + len(xc)] = xc * inv[:, None]
        w[s:s + len(xc)] = np.einsum("ij,ij->i", xn[s:s + len(xc)], tot_t - tn[y[s:s + len(xc)]])
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b0 in range(0, n_boot, 32):
        counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n)
                           for _ in range(min(32, n_boot - b0))]).astype(work)
        counts = counts if rank is None else counts[:, rank]
        sums = (counts @ xn).astype(np.float64)
        c2 = (counts.astype(np.float64) ** 2).sum(axis=1)
        intra = (np.einsum("bd,bd->b", sums, sums) - c2) / np.maximum(n * n - c2, 1.0)
        inter = counts.astype(np.float64) @ w / (n * (c - 1))
        reps[b0:b0 + len(counts)] = (inter + intra) / 2.0
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(reps, [a, 1.0 - a])
    return float(lo), float(hi)
