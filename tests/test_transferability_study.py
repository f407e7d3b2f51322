"""The study convention of every baseline against slow, independent re-derivations of the study's
definitions (SPEC §5), on awkward sizes: uneven classes, non-contiguous label ids, d > N, float32.

The references below loop over classes and pairs, use textbook formulas (slogdet, pinv,
generalised eigenproblems) and never call core.transferability. Agreement to 1e-6 relative.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla

from core import transferability as tr

REL = 1e-6


def case(n=37, d=7, k=3, seed=0, ids=(2, 5, 9, 11, 20, 31), unit=True, dtype=np.float64):
    """Uneven classes (sizes differ), labels with gaps, unit rows by default."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.arange(k), rng.integers(0, k, n - k)]
    y = np.asarray(ids)[:k][y]
    centres = rng.standard_normal((k, d))
    x = centres[np.searchsorted(np.asarray(ids)[:k], y)] * 0.6 + rng.standard_normal((n, d))
    if unit:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(dtype), y


def dense(y):
    return np.unique(y, return_inverse=True)[1]


# ----------------------------------------------------------------------------- references
def ref_gbc(x, y, kind):
    y = dense(y)
    stats = {}
    for c in np.unique(y):
        f = x[y == c].astype(np.float64)
        stats[c] = (f.mean(0), np.maximum(f.var(0), 1e-4))
    total = 0.0
    for a in stats:
        for b in stats:
            if a == b:
                continue
            (m1, v1), (m2, v2) = stats[a], stats[b]
            if kind == "spherical":
                v1, v2 = np.mean(v1), np.mean(v2)
            avg = (v1 + v2) / 2
            db = np.sum((m1 - m2) ** 2 / avg) / 8 + 0.5 * (np.sum(np.log(avg)) - 0.5 * np.sum(np.log(v1))
                                                             - 0.5 * np.sum(np.log(v2)))
            total += np.exp(-db)
    return -total


def ref_h_score(x, y):
    x = x.astype(np.float64)
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(0)
    return np.trace(np.linalg.pinv(np.cov(x.T), rcond=1e-15) @ np.cov(g.T))


def ref_transrate(x, y, eps=1e-4):
    z = x.astype(np.float64)
    z = z - z.mean(0)

    def rate(a):
        return 0.5 * np.linalg.slogdet(np.eye(a.shape[1]) + a.T @ a / (len(a) * eps))[1]

    classes = np.unique(y)
    return rate(z) - sum(rate(z[y == c]) for c in classes) / len(classes)


def ref_lda_probs(x, y, shrink):
    """LDA posteriors the way the study's SFDA class computes them: all generalised eigenvectors."""
    classes = np.unique(y)
    priors = np.array([(y == c).mean() for c in classes])
    means = np.array([x[y == c].mean(0) for c in classes])
    sw = sum(p * np.cov(x[y == c].T, bias=True) for p, c in zip(priors, classes))
    d = x.shape[1]
    sw_r = (1 - shrink) * sw + shrink * np.trace(sw) / d * np.eye(d)
    st = np.cov(x.T, bias=True)
    st = (1 - shrink) * st + shrink * np.trace(st) / d * np.eye(d)
    _, v = sla.eigh(st - sw_r, sw_r)
    coef = means @ v @ v.T
    scores = x @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    e = np.exp(scores - scores.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True), means


def ref_sfda(x, y):
    x = x.astype(np.float64).copy()
    y = dense(y)
    classes = np.unique(y)
    priors = np.array([(y == c).mean() for c in classes])
    sw = sum(p * np.cov(x[y == c].T, bias=True) for p, c in zip(priors, classes))
    v = sw.sum(1)
    for _ in range(3):
        t = sw @ v
        w = t / np.linalg.norm(t)
        t = sw @ w
        v = t / np.linalg.norm(t)
    shrink = max(np.exp(-5 * (v @ sw @ w)), 1e-10)
    p, means = ref_lda_probs(x, y, shrink)
    p = np.exp(p) / np.exp(p).sum(1, keepdims=True)
    for c in classes:
        other = np.mean([means[o] for o in classes if o != c], axis=0)
        idx = np.where(y == c)[0]
        for i in idx:
            x[i] = p[i, c] * x[i] + (1 - p[i, c]) * other
    p2, _ = ref_lda_probs(x, y, shrink)
    return np.mean([p2[i, y[i]] for i in range(len(y))])


def ref_ncti(x, y):
    x = x.astype(np.float64)
    y = dense(y)
    n, d = x.shape
    dim = min(64, n, d)
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    z = xc @ vt[:dim].T
    explained = s[:dim] ** 2 / (n - 1)
    shrink = np.exp(-explained[:32].sum())
    assert shrink > 1e-10  # the eigen-solver path
    classes = np.unique(y)
    priors = np.array([(y == c).mean() for c in classes])
    means = np.array([z[y == c].mean(0) for c in classes])

    def shrunk(a):
        cov = np.cov(a.T, bias=True)
        return (1 - shrink) * cov + shrink * np.trace(cov) / dim * np.eye(dim)

    sw = sum(p * shrunk(z[y == c]) for p, c in zip(priors, classes))
    st = shrunk(z)
    ev, v = sla.eigh(st - sw, sw)
    v = v[:, np.argsort(ev)[::-1]]
    low = z @ v[:, :len(classes) - 1]
    low = low - low.mean(0)
    seli = np.linalg.norm(low, ord="nuc")
    coef = means @ v @ v.T
    scores = z @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
    probs = np.exp(scores - scores.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    ncc = np.mean([probs[i, y[i]] for i in range(n)])
    vc = np.log(sum(np.linalg.norm(probs[y == c], ord="nuc") for c in classes))
    return {"seli": seli, "ncc": ncc, "vc": vc}


def ref_emms(x, stack):
    x = x.astype(np.float64)
    y = stack.astype(np.float64).copy()
    n, dd, k = y.shape
    for i in range(k):
        y[:, :, i] = (y[:, :, i] - y[:, :, i].mean(0)) / (y[:, :, i].std(0) + 1e-8)
    f = (x - x.mean(0)) / (x.std(0) + 1e-8)
    mix = y @ np.full(k, 1 / k)
    w = np.linalg.pinv(f) @ mix
    lam = np.linalg.pinv(y.reshape(n * dd, k)) @ (f @ w).reshape(n * dd)
    # sparsemax, from its definition: the largest k with 1 + k z_(k) > sum_{j<=k} z_(j)
    zs = np.sort(lam)[::-1]
    kk = max(j for j in range(1, k + 1) if 1 + j * zs[j - 1] > zs[:j].sum())
    lam = np.maximum(lam - (zs[:kk].sum() - 1) / kk, 0)
    return -(np.sum((f @ w - y @ lam) ** 2) / n * dd)


# ----------------------------------------------------------------------------- comparisons
CASES = [dict(), dict(n=53, d=11, k=5, seed=1), dict(n=9, d=12, k=2, seed=2), dict(n=41, d=6, k=4, seed=3,
                                                                                    dtype=np.float32)]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("kind", ["spherical", "diagonal"])
def test_gbc_study(kw, kind):
    x, y = case(**kw)
    assert tr.gbc(x, y, covariance=kind) == pytest.approx(ref_gbc(x, y, kind), rel=REL)


@pytest.mark.parametrize("kw", CASES)
def test_h_score_study(kw):
    x, y = case(**kw)
    assert tr.h_score(x, y) == pytest.approx(ref_h_score(x, y), rel=REL)


@pytest.mark.parametrize("kw", CASES)
def test_transrate_study(kw):
    x, y = case(**kw)
    assert tr.transrate(x, y) == pytest.approx(ref_transrate(x, y), rel=REL)


@pytest.mark.parametrize("kw", CASES[:2] + CASES[3:] + [dict(n=60, d=9, k=6, seed=4, unit=False)])
def test_sfda_study(kw):
    x, y = case(**kw)
    assert tr.sfda(x, y) == pytest.approx(ref_sfda(x, y), rel=REL)


@pytest.mark.parametrize("kw", [dict(), dict(n=83, d=70, k=4, seed=5), dict(n=12, d=20, k=3, seed=6),
                                dict(n=47, d=9, k=5, seed=7, dtype=np.float32)])
def test_ncti_terms_study(kw):
    x, y = case(**kw)
    got, want = tr.ncti_terms(x, y), ref_ncti(x, y)
    for name in ("seli", "ncc", "vc"):
        assert got[name] == pytest.approx(want[name], rel=REL), name
    assert tr.ncti(x, y) == pytest.approx(want["seli"] + want["ncc"] - want["vc"], rel=REL)


@pytest.mark.parametrize("kw", CASES)
def test_emms_study(kw):
    x, y = case(**kw)
    rng = np.random.default_rng(kw.get("seed", 0) + 10)
    ids = np.unique(y)
    tables = [rng.standard_normal((ids.max() + 1, 5)) for _ in range(3)]
    stack = np.stack([t[y] for t in tables], axis=2)
    before = stack.copy()
    assert tr.emms(x, y, label_embeddings=stack) == pytest.approx(ref_emms(x, stack), rel=REL)
    assert tr.emms(x, y, label_embeddings=tables) == pytest.approx(ref_emms(x, stack), rel=REL)
    assert np.array_equal(stack, before)  # the study's code z-scores its input in place; we do not


def test_ncti_svd_solver_path_when_the_shrinkage_underflows():
    x, y = case(n=80, d=40, k=4, seed=8, unit=False)
    got = tr.ncti_terms(x * 30.0, y)  # explained variance >> 23: exp(-sum) < 1e-10
    assert all(np.isfinite(v) for v in got.values()) and 0 < got["ncc"] <= 1


def test_no_baseline_mutates_its_inputs():
    x, y = case(n=40, d=6, k=3, seed=9, dtype=np.float32)
    stack = np.random.default_rng(0).standard_normal((40, 4, 2))
    p = np.random.default_rng(1).dirichlet(np.ones(3), 40)
    arrays = (x, y, stack, p)
    before = [a.copy() for a in arrays]
    for fn, _ in tr.BASELINES.values():  # each on its own input, as all_scores gives it
        tr.baseline_call(fn, x, y, probs=p, label_embeddings=stack)()
    tr.gbc(x, y, convention="project", covariance="diagonal")
    tr.h_score(x, y, convention="project")
    tr.transrate(x, y, convention="project")
    tr.emms(x, y, label_embeddings=stack, convention="project")
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(arrays, before))
