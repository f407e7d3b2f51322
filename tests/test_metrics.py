"""core.metrics: hand-checked values, closed forms vs naive pairwise sums, invariances, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core import metrics as m

SQ5 = math.sqrt(5.0)


# ----------------------------------------------------------------------------- naive references
def _unit(a):
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def naive(x, t, y):
    """Every measure by explicit loops / full matrices, float64 (reference only)."""
    xn, tn = _unit(x), _unit(t)
    n, c = len(xn), len(tn)
    intra = np.mean([xn[i] @ xn[j] for i in range(n) for j in range(i + 1, n)])
    sims = xn @ tn.T
    wrong = [sims[i, k] for i in range(n) for k in range(c) if k != y[i]]
    intra_t = np.mean([tn[i] @ tn[j] for i in range(c) for j in range(i + 1, c)])
    return {"intra_image": intra, "inter_modal": np.mean(wrong), "iimm": (intra + np.mean(wrong)) / 2,
            "correct_pair": np.mean(sims[np.arange(n), y]),
            "modality_gap": np.linalg.norm(xn.mean(0) - tn.mean(0)),
            "intra_text": intra_t, "zs_acc": 100.0 * np.mean(sims.argmax(1) == y)}


def naive_fast(x, t, y):
    """Same pair means via full Gram matrices (fast enough for N ~ 1000, still exhaustive)."""
    xn, tn = _unit(x), _unit(t)
    n, c = len(xn), len(tn)
    g = xn @ xn.T
    sims = xn @ tn.T
    mask = np.ones_like(sims, dtype=bool)
    mask[np.arange(n), y] = False
    intra = g[np.triu_indices(n, 1)].mean()
    return {"intra_image": intra, "inter_modal": sims[mask].mean(), "iimm": (intra + sims[mask].mean()) / 2,
            "correct_pair": sims[~mask].mean(), "zs_acc": 100.0 * np.mean(sims.argmax(1) == y)}


def naive_silhouette(z, lab):
    zn = _unit(z)
    dist = 1.0 - zn @ zn.T
    s = []
    for i in range(len(zn)):
        same = (lab == lab[i]) & (np.arange(len(zn)) != i)
        if not same.any():
            s.append(0.0)  # singleton cluster: silhouette 0 by convention
            continue
        a = dist[i, same].mean()
        b = min(dist[i, lab == k].mean() for k in np.unique(lab) if k != lab[i])
        s.append((b - a) / max(a, b))
    return float(np.mean(s))


def rand_case(n, d, c, seed=0, dtype=np.float64, offset=0.3):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, d)) + offset).astype(dtype)  # offset: non-zero intra, like CLIP
    t = rng.standard_normal((c, d)).astype(dtype)
    y = rng.integers(0, c, n)
    return x, t, y


# ----------------------------------------------------------------------------- hand-checked
def test_hand_checked_2d():
    # Unit rows after normalising: e1, e2, (2,1)/sqrt5; prompts e1, e2.
    x = np.array([[3.0, 0.0], [0.0, 0.5], [2.0, 1.0]])
    t = np.array([[1.0, 0.0], [0.0, 2.0]])
    y = np.array([0, 1, 0])
    # intra pairs: e1.e2 = 0, e1.v = 2/sqrt5, e2.v = 1/sqrt5 -> mean 1/sqrt5
    assert m.intra_image_score(x) == pytest.approx(1 / SQ5, abs=1e-12)
    # wrong pairs: x0.t1 = 0, x1.t0 = 0, x2.t1 = 1/sqrt5 -> mean 1/(3 sqrt5)
    assert m.inter_modal_score(x, t, y) == pytest.approx(1 / (3 * SQ5), abs=1e-12)
    assert m.iimm(x, t, y) == pytest.approx(2 / (3 * SQ5), abs=1e-12)
    assert m.correct_pair_cosine(x, t, y) == pytest.approx((2 + 2 / SQ5) / 3, abs=1e-12)
    # image centroid ((1+2/sqrt5)/3, (1+1/sqrt5)/3) vs prompt centroid (1/2, 1/2)
    gap = math.hypot((1 + 2 / SQ5) / 3 - 0.5, (1 + 1 / SQ5) / 3 - 0.5)
    assert m.modality_gap(x, t) == pytest.approx(gap, abs=1e-12)
    assert m.intra_text_score(t) == pytest.approx(0.0, abs=1e-15)
    assert m.zero_shot_accuracy(x, t, y) == pytest.approx(100.0)


def test_hand_checked_accuracy_and_intra_text():
    x = np.array([[1.0, 0.1], [0.2, 1.0], [1.0, 3.0], [5.0, -1.0]])  # predicted 0, 1, 1, 0
    t = np.array([[1.0, 0.0], [1.0, 1.0]])  # prompt cosine 1/sqrt2
    y = np.array([0, 1, 0, 0])
    # x1=(0.2,1): cos with e1 = 0.196, with (1,1)/sqrt2 = 0.832 -> class 1 (right)
    # x2=(1,3): class 1 (wrong); x0, x3: class 0 (right) -> 3/4
    assert m.zero_shot_accuracy(x, t, y) == pytest.approx(75.0)
    assert m.intra_text_score(t) == pytest.approx(1 / math.sqrt(2), abs=1e-12)


def test_identical_images_give_intra_one_and_minus_one_pairs():
    x = np.array([[1.0, 0.0], [2.0, 0.0], [0.5, 0.0]])
    assert m.intra_image_score(x) == pytest.approx(1.0, abs=1e-12)
    assert m.intra_image_score(np.array([[1.0, 1.0], [-1.0, -1.0]])) == pytest.approx(-1.0, abs=1e-12)


# ----------------------------------------------------------------------------- closed form vs naive
@pytest.mark.parametrize("n,d,c,seed", [(2, 3, 2, 0), (3, 5, 4, 1), (7, 2, 3, 2), (40, 16, 5, 3)])
def test_matches_loop_naive_small(n, d, c, seed):
    x, t, y = rand_case(n, d, c, seed)
    got = m.zero_shot_scores(x, t, y)
    ref = naive(x, t, y)
    for k, v in ref.items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


@pytest.mark.parametrize("n,dtype,tol", [(1001, np.float64, 1e-12), (2050, np.float64, 1e-12),
                                         (2050, np.float32, 2e-6)])
def test_matches_gram_naive_awkward_sizes(n, dtype, tol):
    # 2050 rows cross two chunk boundaries; float32 input checks float64 accumulation.
    x, t, y = rand_case(n, 33, 7, seed=n, dtype=dtype)
    ref = naive_fast(x, t, y)
    assert m.intra_image_score(x) == pytest.approx(ref["intra_image"], abs=tol)
    assert m.inter_modal_score(x, t, y) == pytest.approx(ref["inter_modal"], abs=tol)
    assert m.iimm(x, t, y) == pytest.approx(ref["iimm"], abs=tol)
    assert m.correct_pair_cosine(x, t, y) == pytest.approx(ref["correct_pair"], abs=tol)
    assert m.zero_shot_accuracy(x, t, y) == pytest.approx(ref["zs_acc"])


def test_unbalanced_classes_and_empty_class():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 6)) + 0.5
    t = rng.standard_normal((6, 6))
    y = np.r_[np.zeros(45, int), np.full(3, 2), np.full(2, 5)]  # classes 1, 3, 4 have no images
    got = m.zero_shot_scores(x, t, y)
    for k, v in naive(x, t, y).items():
        assert got[k] == pytest.approx(v, abs=1e-12), k


def test_integer_embeddings_and_integral_float_labels_accepted():
    x = np.array([[3, 0], [0, 1], [2, 1]])
    t = np.array([[1, 0], [0, 2]])
    assert m.iimm(x, t, np.array([0.0, 1.0, 0.0])) == pytest.approx(2 / (3 * SQ5), abs=1e-12)


def test_extreme_row_scales_do_not_overflow():
    x, t, y = rand_case(20, 8, 3, seed=9)
    ref = m.iimm(x, t, y)
    assert m.iimm(x * 1e200, t * 1e-200, y) == pytest.approx(ref, abs=1e-12)
    assert m.iimm((x * 1e25).astype(np.float32), t, y) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("dtype, scale", [(np.float32, 3.16e-23), (np.float32, 1e-22), (np.float32, 1e-21), (np.float64, 3e-162)])
def test_tiny_row_scales_keep_their_precision(dtype, scale):
    """Squares of such rows are subnormal: a norm summed from them is far off, cosines went above 1."""
    x, t, y = rand_case(20, 8, 3, seed=9)
    small_x, small_t = (x * scale).astype(dtype), (t * scale).astype(dtype)
    ref = m.zero_shot_scores(x.astype(dtype), t.astype(dtype), y)
    got = m.zero_shot_scores(small_x, small_t, y)
    for key in ("iimm", "correct_pair", "inter_modal", "intra_image"):
        assert got[key] == pytest.approx(ref[key], abs=1e-5), key
    assert m.correct_pair_cosine(small_x[:3], small_t, y[:3]) == pytest.approx(
        m.correct_pair_cosine(x[:3].astype(dtype), t.astype(dtype), y[:3]), abs=1e-5)


# ----------------------------------------------------------------------------- invariances
def test_invariances():
    rng = np.random.default_rng(11)
    x, t, y = rand_case(60, 10, 4, seed=11)
    base = m.zero_shot_scores(x, t, y)
    exact = ["iimm", "inter_modal", "intra_image", "correct_pair", "modality_gap", "intra_text", "zs_acc"]

    scaled = m.zero_shot_scores(x * rng.uniform(0.1, 10, (60, 1)), t * rng.uniform(0.1, 10, (4, 1)), y)
    perm = rng.permutation(60)
    permuted = m.zero_shot_scores(x[perm], t, y[perm])
    cls = rng.permutation(4)  # new index of old class k is cls[k]
    t_new = np.empty_like(t)
    t_new[cls] = t
    relabelled = m.zero_shot_scores(x, t_new, cls[y])
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    rotated = m.zero_shot_scores(x @ q, t @ q, y)
    for other in (scaled, permuted, relabelled, rotated):
        for k in exact:
            assert other[k] == pytest.approx(base[k], abs=1e-10), k
    # silhouettes are invariant to scaling / rotation (same subsample: N < sample_size)
    for other in (scaled, rotated, relabelled):
        assert other["silhouette_classes"] == pytest.approx(base["silhouette_classes"], abs=1e-10)
        assert other["silhouette_modality"] == pytest.approx(base["silhouette_modality"], abs=1e-10)


def test_silhouettes_and_the_iimm_bootstrap_follow_the_rows_not_their_order():
    """Rows shuffled (labels with them): the silhouettes (no subsample) are unchanged; where rows are drawn (the
    bootstrap, a silhouette's subsample) the draws follow ``order``, so the same rows in the same order of draws
    give the same value, and classes renumbered change nothing."""
    x, t, y = rand_case(60, 10, 4, seed=12)
    rng = np.random.default_rng(12)
    perm, order = rng.permutation(60), rng.permutation(60)
    moved = np.argsort(perm)[order]  # x[perm][moved] is x[order]: the same rows in the same order of draws
    base, shuffled = m.zero_shot_scores(x, t, y), m.zero_shot_scores(x[perm], t, y[perm])
    for key in ("silhouette_classes", "silhouette_modality"):
        assert shuffled[key] == pytest.approx(base[key], rel=1e-6, abs=1e-12), key
    kw = dict(sample_size=25, seed=3)
    assert m.silhouette_classes(x[perm], y[perm], order=moved, **kw) == pytest.approx(
        m.silhouette_classes(x, y, order=order, **kw), rel=1e-6)
    assert m.silhouette_modality(x[perm], t, order=moved, **kw) == pytest.approx(
        m.silhouette_modality(x, t, order=order, **kw), rel=1e-6)
    want = m.bootstrap_iimm(x, t, y, n_boot=40, order=order)
    assert m.bootstrap_iimm(x[perm], t, y[perm], n_boot=40, order=moved) == pytest.approx(want, rel=1e-6)
    cls = np.array([3, 1, 0, 2])  # class k is numbered cls[k]
    t_new = np.empty_like(t)
    t_new[cls] = t
    assert m.bootstrap_iimm(x, t_new, cls[y], n_boot=40, order=order) == pytest.approx(want, rel=1e-6)
    assert m.bootstrap_iimm(x, t, y, n_boot=40) == pytest.approx(m.bootstrap_iimm(x, t, y, n_boot=40,
                                                                                 order=np.arange(60)), rel=1e-12)
    with pytest.raises(ValueError, match="order must be a permutation of the 60 row positions"):
        m.bootstrap_iimm(x, t, y, n_boot=40, order=np.zeros(60, dtype=int))


def test_inputs_not_mutated():
    x, t, y = rand_case(30, 5, 3, seed=2, dtype=np.float32)
    x0, t0, y0 = x.copy(), t.copy(), y.copy()
    m.zero_shot_scores(x, t, y)
    m.bootstrap_iimm(x, t, y, n_boot=10)
    m.intra_image_score(x)
    assert np.array_equal(x, x0) and np.array_equal(t, t0) and np.array_equal(y, y0)


# ----------------------------------------------------------------------------- silhouettes
def test_silhouette_classes_matches_naive_definition():
    x, t, y = rand_case(30, 4, 3, seed=4)
    x = x + 2.0 * np.eye(4)[y]  # some class structure
    assert m.silhouette_classes(x, y) == pytest.approx(naive_silhouette(x, y), abs=1e-10)


def test_silhouette_modality_matches_naive_and_detects_gap():
    x, t, _ = rand_case(12, 4, 3, seed=6)
    lab = np.r_[np.zeros(12, int), np.ones(3, int)]
    assert m.silhouette_modality(x, t) == pytest.approx(naive_silhouette(np.vstack([x, t]), lab), abs=1e-10)
    rng = np.random.default_rng(0)
    img = np.c_[np.ones(50), 0.05 * rng.standard_normal((50, 3))]
    txt = np.c_[-np.ones(5), 0.05 * rng.standard_normal((5, 3))]
    assert m.silhouette_modality(img, txt) > 0.9


def test_silhouette_subsampling_is_deterministic():
    x, t, y = rand_case(500, 8, 5, seed=8)
    x = x + np.eye(8)[y]
    a = m.silhouette_classes(x, y, sample_size=100, seed=3)
    assert a == m.silhouette_classes(x, y, sample_size=100, seed=3)
    assert a != m.silhouette_classes(x, y, sample_size=100, seed=4)
    assert m.silhouette_modality(x, t, sample_size=50, seed=1) == m.silhouette_modality(x, t, sample_size=50, seed=1)


def test_silhouette_undefined_labelling():
    x = np.eye(3)
    with pytest.raises(ValueError, match="silhouette undefined"):
        m.silhouette_classes(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="silhouette undefined"):
        m.silhouette_classes(x, np.array([1, 1, 1]))
    scores = m.zero_shot_scores(x, np.eye(3), np.array([0, 1, 2]))
    assert math.isnan(scores["silhouette_classes"]) and scores["iimm"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="sample_size"):
        m.silhouette_classes(x, np.array([0, 0, 1]), sample_size=1)


# ----------------------------------------------------------------------------- bootstrap
def test_bootstrap_contains_estimate_and_is_deterministic():
    x, t, y = rand_case(300, 16, 5, seed=12)
    point = m.iimm(x, t, y)
    lo, hi = m.bootstrap_iimm(x, t, y, n_boot=200, seed=1)
    assert lo < point < hi
    assert (lo, hi) == m.bootstrap_iimm(x, t, y, n_boot=200, seed=1)
    assert (lo, hi) != m.bootstrap_iimm(x, t, y, n_boot=200, seed=2)
    lo50, hi50 = m.bootstrap_iimm(x, t, y, n_boot=200, seed=1, level=0.5)
    assert lo < lo50 < hi50 < hi  # strictly: a level that is ignored gives the 95 % ends again


def test_bootstrap_skips_same_image_pairs():
    # Orthonormal images and prompts orthogonal to them: every cosine is 0, so every
    # replicate must be exactly 0; counting a drawn image with itself would give ~1/N.
    n = 40
    x = np.eye(n + 2)[:n]
    t = np.eye(n + 2)[n:]
    y = np.arange(n) % 2
    lo, hi = m.bootstrap_iimm(x, t, y, n_boot=20)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_float32_close_to_float64():
    x, t, y = rand_case(200, 8, 4, seed=13)
    a = m.bootstrap_iimm(x, t, y, n_boot=50, seed=0)
    b = m.bootstrap_iimm(x.astype(np.float32), t, y, n_boot=50, seed=0)
    assert a == pytest.approx(b, abs=1e-5)


@pytest.mark.parametrize("kw,match", [({"n_boot": 1}, "n_boot"), ({"n_boot": 2.5}, "n_boot"),
                                      ({"level": 1.0}, "level"), ({"level": 0}, "level"),
                                      ({"seed": -1}, "seed must be a non-negative integer"),
                                      ({"seed": 1.5}, "seed must be a non-negative integer")])
def test_bootstrap_bad_options(kw, match):
    x, t, y = rand_case(10, 3, 2)
    with pytest.raises(ValueError, match=match):
        m.bootstrap_iimm(x, t, y, **kw)


def test_numpy_scalar_options_work_like_python_numbers():
    x, t, y = rand_case(60, 4, 3, seed=5)
    want = m.bootstrap_iimm(x, t, y, n_boot=20, seed=1, level=0.5)
    assert m.bootstrap_iimm(x, t, y, n_boot=np.int64(20), seed=np.int64(1), level=np.float32(0.5)) == want


def test_silhouette_seed_is_checked():
    x, t, y = rand_case(60, 4, 3, seed=5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        m.silhouette_classes(x, y, sample_size=10, seed=-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        m.silhouette_modality(x, t, sample_size=10, seed=0.5)


# ----------------------------------------------------------------------------- bad input
X, T, Y = rand_case(5, 3, 2)


@pytest.mark.parametrize("x,t,y,match", [
    (X[:1], T, Y[:1], "image_embeddings needs at least 2 images"),
    (X, T[:1], np.zeros(5, int), "text_embeddings needs at least 2 classes"),
    (X, T, np.array([0, 1, 2, 0, 1]), "labels out of range"),
    (X, T, np.array([0, 1, -1, 0, 1]), "labels must be >= 0"),
    (X, T, np.full(5, 1e20), r"labels out of range: max label 1e\+20 but only 2 classes"),
    (X, T, np.array([0, 1, 2.0 ** 63, 0, 1]), r"labels out of range: max label 9\.223372036854776e\+18"),
    (X, T, np.array([0, 1, 2**63 + 5, 0, 1], dtype=np.uint64), "labels out of range: max label 9223372036854775813"),
    (X, T, np.array([0, 1.5, 1, 0, 1]), "labels must be integers"),
    (X, T, np.array([True, False, True, True, False]), "labels must be integers.*bool"),
    (X, T, np.array(["a", "b", "a", "a", "b"]), "labels must be integers"),
    (X, T, np.array([0, np.nan, 1, 0, 1]), "labels must be integers"),
    (X, T, Y[:4], "labels has length 4 but there are 5"),
    (X, T, Y[:, None], "labels must be 1-D"),
    (np.where(np.arange(15).reshape(5, 3) == 4, np.nan, X), T, Y, r"image_embeddings contains NaN or inf \(row 1\)"),
    (X, np.where(np.arange(6).reshape(2, 3) == 0, np.inf, T), Y, "text_embeddings contains NaN or inf"),
    (np.where(np.arange(5)[:, None] == 3, 0.0, X), T, Y, "image_embeddings row 3 has zero norm"),
    (X, np.zeros((2, 3)), Y, "text_embeddings row 0 has zero norm"),
    (X, T[:, :2], Y, "width mismatch.*3.*2"),
    (X[0], T, Y, "image_embeddings must be 2-D"),
    (X, T[None], Y, "text_embeddings must be 2-D"),
    (X.astype(object), T, Y, "image_embeddings must be a real numeric array"),
    (X.astype(complex), T, Y, "image_embeddings must be a real numeric array"),
])
def test_bad_inputs(x, t, y, match):
    for fn in (m.iimm, m.inter_modal_score, m.correct_pair_cosine, m.zero_shot_accuracy, m.zero_shot_scores,
               m.bootstrap_iimm):
        with pytest.raises(ValueError, match=match):
            fn(x, t, y)


def test_bad_inputs_single_argument_functions():
    with pytest.raises(ValueError, match="image_embeddings needs at least 2 images"):
        m.intra_image_score(X[:1])
    with pytest.raises(ValueError, match="image_embeddings row 0 has zero norm"):
        m.intra_image_score(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="text_embeddings needs at least 2 classes"):
        m.intra_text_score(T[:1])
    with pytest.raises(ValueError, match="width mismatch"):
        m.modality_gap(X, T[:, :2])
    with pytest.raises(ValueError, match="width mismatch"):
        m.silhouette_modality(X, T[:, :2])
    with pytest.raises(ValueError, match="labels has length"):
        m.silhouette_classes(X, Y[:3])
    with pytest.raises(ValueError, match="image_embeddings contains NaN"):
        m.silhouette_classes(np.full((4, 2), np.nan), np.array([0, 0, 1, 1]))
