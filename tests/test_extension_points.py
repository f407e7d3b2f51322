"""Adding a transferability baseline, a dataset or a model as the guides say (core/transferability/__init__.py,
core/data/registry.py, core/models.py): a partial or unusual addition is either used right or refused by name."""
from __future__ import annotations

import numpy as np
import pytest

from core import transferability as tr
from tests.transferability_helpers import clusters


def _true_class_probability(probs, labels):
    """A toy baseline on the classifier's probabilities: the mean probability of the true class."""
    probs = np.asarray(probs, dtype=float)
    return float(probs[np.arange(len(labels)), labels].mean())


def _centre_distance(features, labels, *, label_embeddings):
    """A toy baseline on label embeddings: minus the mean distance of a feature to its class's table row."""
    table = np.asarray(label_embeddings, dtype=float)
    return -float(np.linalg.norm(np.asarray(features) - table[labels], axis=1).mean())


def test_a_new_probability_baseline_is_scored_on_the_probabilities(monkeypatch):
    # all_scores picked LEEP and NCE out by name: a new one on probs was called with the features instead and
    # stored 0.04 for a mean true-class probability of 0.34, without a word
    x, y, _, _ = clusters(n=60, d=5, k=3)
    p = np.random.default_rng(0).dirichlet(np.ones(3), 60)
    monkeypatch.setitem(tr.BASELINES, "toy_probs", (_true_class_probability, "higher = better; needs probs"))
    assert tr.baseline_input(_true_class_probability) == "probs"
    assert "toy_probs" not in tr.all_scores(x, y)  # no probs given: left out, as LEEP is
    assert tr.all_scores(x, y, probs=p)["toy_probs"] == _true_class_probability(p, y)


def test_a_new_label_embedding_baseline_gets_the_label_embeddings(monkeypatch):
    x, y, _, centres = clusters(n=60, d=5, k=3)
    monkeypatch.setitem(tr.BASELINES, "toy_tables", (_centre_distance, "higher = better; needs label_embeddings"))
    assert "toy_tables" not in tr.all_scores(x, y)
    got = tr.all_scores(x, y, label_embeddings=centres)["toy_tables"]
    assert got == _centre_distance(x, y, label_embeddings=centres)


def test_the_shipped_baselines_take_the_inputs_they_always_took():
    needs = {name: tr.baseline_input(fn) for name, (fn, _) in tr.BASELINES.items()}
    assert needs == {**dict.fromkeys(tr.BASELINES, "features"), "leep": "probs", "nce": "probs",
                     "emms": "label_embeddings"}


def test_every_baseline_is_named_where_baselines_are_listed(monkeypatch):
    # the About page listed nine baselines by hand, without gbc_diagonal; predictor_eval kept a copy of the names
    from core import cards, predictor_eval

    assert predictor_eval.TRANSFERABILITY_PREDICTORS == tuple(tr.BASELINES)
    assert cards.baseline_titles() == [cards.predictor_title(name) for name in tr.BASELINES]
    assert "GBC (diagonal Gaussians)" in cards.baseline_titles()
    monkeypatch.setitem(tr.BASELINES, "toy_probs", (_true_class_probability, "higher = better; needs probs"))
    assert cards.baseline_titles()[-1] == "toy probs"  # untitled: its name, in words


def test_every_baseline_has_a_title():
    """A contributor's baseline without a PREDICTOR_TITLES entry shows as its name in words; this names it."""
    from core import cards

    untitled = [name for name in tr.BASELINES if name not in cards.PREDICTOR_TITLES]
    assert not untitled, f"add a title for {untitled} to core.cards.PREDICTOR_TITLES"


def test_the_about_page_names_every_baseline(fixture_store):
    from core import cards
    from tests.app_helpers import page

    at = page("about").run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    missing = [title for title in cards.baseline_titles() if title not in caption]
    assert not missing, f"the About page leaves out {missing}"
