"""core.transferability, baseline by baseline: known answers, naive re-computations, separable > independent
(GBC, H-score, TransRate, SFDA, NCTI, LogME, LEEP, NCE, EMMS). The study convention against independent
re-derivations of the study's definitions: tests/test_transferability_study.py."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core import transferability as tr
from tests.transferability_helpers import FEATURE_FNS, call, clusters


# ----------------------------------------------------------------------------- ordering
@pytest.mark.parametrize("name", FEATURE_FNS)
def test_separable_beats_independent(name):
    x, y, y_shuffled, _ = clusters()
    assert call(name, x, y) > call(name, x, y_shuffled) + 1e-6


def test_emms_project_convention_perfect_is_zero_and_mixture_picks_the_predictable_encoder():
    x, y, y_shuffled, centres = clusters()
    kw = {"convention": "project"}
    assert tr.emms(x, y, label_embeddings=centres, **kw) > tr.emms(x, y_shuffled, label_embeddings=centres, **kw) + 0.1
    # features that ARE the label embeddings: exact regression, score 0 (the maximum)
    assert tr.emms(centres[y] * 3.0, y, label_embeddings=centres, **kw) == pytest.approx(0.0, abs=1e-10)
    junk = np.random.default_rng(1).standard_normal(centres.shape)
    assert tr.emms(centres[y], y, label_embeddings=[junk, centres], **kw) == pytest.approx(0.0, abs=1e-8)
    assert (tr.emms(x, y, label_embeddings=[junk, centres], **kw)
            >= tr.emms(x, y, label_embeddings=centres, **kw) - 1e-9)


def test_emms_study_separable_beats_independent_and_sources_can_be_tables_or_a_stack():
    x, y, y_shuffled, centres = clusters()
    junk = np.random.default_rng(1).standard_normal((4, 7))  # another width: zero-padded
    assert tr.emms(x, y, label_embeddings=centres) > tr.emms(x, y_shuffled, label_embeddings=centres)
    stack = tr.label_embedding_stack([centres, junk], y)
    assert stack.shape == (len(y), 12, 2) and np.all(stack[:, 7:, 1] == 0)
    assert tr.emms(x, y, label_embeddings=[centres, junk]) == tr.emms(x, y, label_embeddings=stack)


def test_every_baseline_is_unchanged_by_the_rows_order_and_the_classes_numbering():
    """A sample's images in another order (labels, probabilities and label embeddings with them) and its classes
    numbered otherwise (probability columns and label-embedding rows renumbered too): every score the same."""
    x, y, _, centres = clusters(n=90, d=8, k=3, noise=0.4)
    rng = np.random.default_rng(4)
    text = centres + 0.3 * rng.standard_normal(centres.shape)
    probs = tr.classifier_probs(x, text, logit_scale=20.0)
    base = tr.all_scores(x, y, probs=probs, label_embeddings=[text, centres])
    rows, new = rng.permutation(len(y)), np.array([2, 0, 1])  # class k is numbered new[k]
    renumbered = [np.empty_like(a) for a in (text, centres)]
    for table, old in zip(renumbered, (text, centres)):
        table[new] = old
    p2 = np.empty_like(probs)
    p2[:, new] = probs
    got = tr.all_scores(x[rows], new[y][rows], probs=p2[rows], label_embeddings=renumbered)
    assert set(got) == set(tr.BASELINES) and np.isfinite(list(base.values())).all()
    for name in base:
        assert got[name] == pytest.approx(base[name], rel=1e-6, abs=1e-12), name


# ----------------------------------------------------------------------------- GBC
def test_gbc_hand_checked_1d():
    # class 0: {0, 2}, class 1: {2, 4}: means 1, 3; variances 1, 1.
    # D_B = (3-1)^2 / (8 * 1) + 0 = 0.5; GBC = -(BC01 + BC10) = -2 exp(-0.5)
    x = np.array([[0.0], [2.0], [2.0], [4.0]])
    assert tr.gbc(x, np.array([0, 0, 1, 1]), covariance="diagonal") == pytest.approx(-2 * math.exp(-0.5), abs=1e-8)
    # identical class distributions: every BC = 1 -> -K(K-1)
    x2 = np.array([[0.0], [2.0], [0.0], [2.0], [2.0], [0.0]])
    assert tr.gbc(x2, np.array([0, 0, 1, 1, 2, 2])) == pytest.approx(-6.0, abs=1e-8)


def test_gbc_unequal_variances_hand_checked():
    # class 0: {-1, 1} (var 1), class 1: {-2, 2} (var 4), equal means:
    # D_B = 1/2 ln(2.5 / sqrt(1 * 4)) = 1/2 ln 1.25 -> BC = 1.25 ** -0.5
    x = np.array([[-1.0], [1.0], [-2.0], [2.0]])
    assert tr.gbc(x, np.array([0, 0, 1, 1]), covariance="diagonal") == pytest.approx(-2 / math.sqrt(1.25), abs=1e-8)


def test_gbc_project_convention_is_rotation_invariant():
    x, y, _, _ = clusters(d=6)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((6, 6)))[0]
    kw = dict(convention="project", covariance="diagonal", pca_dim=4)
    assert tr.gbc(x @ q, y, **kw) == pytest.approx(tr.gbc(x, y, **kw), rel=1e-8)


# ----------------------------------------------------------------------------- H-score
def test_h_score_hand_checked_1d():
    # class means 1, 5 around 3 -> between var 4; total var (9+1+1+9)/4 = 5 -> 0.8
    x = np.array([[0.0], [2.0], [4.0], [6.0]])
    assert tr.h_score(x, np.array([0, 0, 1, 1])) == pytest.approx(0.8, abs=1e-12)


@pytest.mark.parametrize("shrinkage", [None, 0.3])
def test_h_score_matches_naive(shrinkage):
    kw = {"convention": "project", "shrinkage": shrinkage} if shrinkage else {}
    rng = np.random.default_rng(4)
    x = rng.standard_normal((50, 5))
    y = rng.integers(0, 3, 50)
    cov = np.cov(x.T, bias=True)
    if shrinkage:
        cov = (1 - shrinkage) * cov + shrinkage * np.trace(cov) / 5 * np.eye(5)
    g = np.array([x[y == c].mean(0) for c in y])  # E[f | y] per sample
    ref = np.trace(np.linalg.pinv(cov) @ np.cov(g.T, bias=True))
    assert tr.h_score(x, y, **kw) == pytest.approx(ref, rel=1e-10)


# ----------------------------------------------------------------------------- TransRate
def test_transrate_matches_naive_logdets():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 4))
    y = np.r_[np.zeros(20, int), np.ones(7, int), np.full(3, 2)]  # class 2 has fewer samples than d
    z = x - x.mean(0)

    def rate(a, eps=0.5):
        return 0.5 * np.linalg.slogdet(np.eye(4) + a.T @ a / (len(a) * eps))[1]

    ref = rate(z) - sum((y == c).mean() * rate(z[y == c]) for c in range(3))
    assert tr.transrate(x, y, eps=0.5, convention="project") == pytest.approx(ref, rel=1e-10)


def test_transrate_zero_when_classes_share_a_distribution():
    # logdet is concave, so TransRate >= 0 with equality iff class second moments agree
    x = np.random.default_rng(6).standard_normal((20, 3))
    both = np.vstack([x, x])
    assert tr.transrate(both, np.r_[np.zeros(20, int), np.ones(20, int)]) == pytest.approx(0.0, abs=1e-9)


# ----------------------------------------------------------------------------- SFDA / NCTI
def test_sfda_is_a_probability_and_near_one_when_separated():
    x, y, y_shuffled, _ = clusters(noise=0.02)
    assert 0.99 < tr.sfda(x, y) <= 1.0
    assert 0.0 < tr.sfda(x, y_shuffled) < 0.6


def test_power_iteration_matches_the_largest_eigenvalue_on_a_diagonal_matrix():
    # row sums (3, 1) -> after 3 double steps the estimate is within 1e-6 of 3
    assert tr.power_iteration_eigenvalue(np.diag([3.0, 1.0])) == pytest.approx(3.0, rel=1e-6)
    # a zero start vector falls back to the exact value
    a = np.array([[1.0, -1.0], [-1.0, 1.0]])
    assert tr.power_iteration_eigenvalue(a) == pytest.approx(2.0)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_power_iteration_refuses_a_step_count_that_iterates_nothing(steps):
    # steps=0 used to return the unnormalised row-sum product v'Av: 9.0 for diag(2, 1), not 2
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        tr.power_iteration_eigenvalue(np.diag([2.0, 1.0]), steps=steps)
    with pytest.raises(ValueError, match="square matrix"):
        tr.power_iteration_eigenvalue(np.ones((2, 3)))


def test_ncti_single_model_sum_and_normalisation_across_models():
    x, y, _, _ = clusters(n=90, d=8, k=3)
    terms = tr.ncti_terms(x, y)
    assert tr.ncti(x, y) == pytest.approx(terms["seli"] + terms["ncc"] - terms["vc"])
    assert 0 < terms["ncc"] <= 1
    many = [{"seli": 1.0, "ncc": 0.5, "vc": 2.0}, {"seli": 3.0, "ncc": 0.9, "vc": 1.0},
            {"seli": 2.0, "ncc": 0.7, "vc": 3.0}]
    # seli' = 0, 1, .5; ncc' = 0, 1, .5; vc' = .5, 0, 1
    assert np.allclose(tr.ncti_normalised(many), [-0.5, 2.0, 0.0])
    assert tr.ncti_normalised(many[:1])[0] == pytest.approx(1.0 + 0.5 - 2.0)
    with pytest.raises(ValueError, match="equal for every model"):
        tr.ncti_normalised([many[0], dict(many[1], ncc=0.5)])


# ----------------------------------------------------------------------------- LogME
def naive_evidence(f, y, alpha, beta):
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    return (n / 2 * np.log(beta) + d / 2 * np.log(alpha) - n / 2 * np.log(2 * np.pi)
            - beta / 2 * np.sum((f @ m - y) ** 2) - alpha / 2 * m @ m - 0.5 * np.linalg.slogdet(a)[1]) / n


def test_logme_evidence_matches_naive_and_is_a_maximum():
    rng = np.random.default_rng(8)
    f = rng.standard_normal((40, 6))
    y = f @ rng.standard_normal(6) * 0.5 + rng.standard_normal(40)
    sig2, z = tr._spectrum(f, (f.T @ y)[:, None])
    ev, alpha, beta = tr._logme_fit(sig2, z, np.array([y @ y]), 40, 6)
    assert ev[0] == pytest.approx(naive_evidence(f, y, alpha[0], beta[0]), rel=1e-10)
    for fa, fb in [(1.3, 1), (0.7, 1), (1, 1.3), (1, 0.7)]:
        assert naive_evidence(f, y, alpha[0] * fa, beta[0] * fb) < ev[0]


def test_logme_rank_deficient_matches_naive():
    # n < d: only n nonzero singular values; the d - n null directions of F enter
    # log|A| through alpha alone, which the naive d x d determinant checks.
    rng = np.random.default_rng(8)
    f = rng.standard_normal((5, 9))
    y = rng.standard_normal(5)
    sig2, z = tr._spectrum(f, (f.T @ y)[:, None])
    assert len(sig2) == 5
    ev, alpha, beta = tr._logme_fit(sig2, z, np.array([y @ y]), 5, 9)
    assert ev[0] == pytest.approx(naive_evidence(f, y, alpha[0], beta[0]), rel=1e-6)


def test_logme_one_hot_targets_match_naive():
    x, y, _, _ = clusters(n=60, d=5, k=3)
    res = [tr._logme_fit(*tr._spectrum(x, x.T @ (y == c)[:, None].astype(float)),
                         np.array([float((y == c).sum())]), 60, 5) for c in range(3)]
    ref = np.mean([naive_evidence(x, (y == c).astype(float), r[1][0], r[2][0]) for c, r in enumerate(res)])
    assert tr.logme(x, y) == pytest.approx(ref, rel=1e-9)


# ----------------------------------------------------------------------------- LEEP / NCE
def entropy(y):
    p = np.bincount(y) / len(y)
    p = p[p > 0]
    return -float((p * np.log(p)).sum())


def test_leep_known_answers():
    y = np.array([0, 0, 0, 1, 2, 2])
    assert tr.leep(np.eye(3)[y], y) == pytest.approx(0.0, abs=1e-12)  # perfect one-hot source predictions
    assert tr.leep(np.eye(4)[[3, 3, 3, 0, 1, 1]], y) == pytest.approx(0.0, abs=1e-12)  # any injective relabel
    # uniform predictions carry no information: LEEP = mean log P(y_i) = -H(Y)
    assert tr.leep(np.full((6, 5), 0.2), y) == pytest.approx(-entropy(y), abs=1e-12)


def test_leep_matches_naive():
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(4), 25)
    y = rng.integers(0, 3, 25)
    joint = np.array([[p[y == a, z].sum() / 25 for z in range(4)] for a in range(3)])
    cond = joint / joint.sum(0)
    ref = np.mean([np.log(sum(cond[y[i], z] * p[i, z] for z in range(4))) for i in range(25)])
    assert tr.leep(p, y) == pytest.approx(ref, abs=1e-12)


def test_nce_known_answers():
    y = np.array([0, 0, 1, 1, 1, 2])
    # a deterministic many-to-one mapping z -> y: H(Y|Z) = 0
    z = np.array([0, 3, 1, 1, 4, 2])
    assert tr.nce(np.eye(5)[z], y) == 0.0
    # constant source prediction: NCE = -H(Y)
    assert tr.nce(np.tile([0.1, 0.9], (6, 1)), y) == pytest.approx(-entropy(y), abs=1e-12)
    # balanced binary Y, one source class: -H(Y) = -log 2
    assert tr.nce(np.eye(2)[[0, 0, 0, 0]], np.array([0, 0, 1, 1])) == pytest.approx(-math.log(2))
