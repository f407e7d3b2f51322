"""Transferability baselines (SPEC §5), each written from its paper and the study's code, as pure functions.

Inputs: ``features`` (N, d) L2-normalised zero-shot image features (not enforced: the
scores accept any finite features, though scatters can overflow far from unit scale, where
:func:`all_scores` reports NaN with a warning) and ``labels`` (N,) non-negative integer
class ids (any such ids, gaps allowed; they are mapped to 0..K-1 internally, K >= 2 distinct
classes; a negative id raises ValueError).
LEEP and NCE instead take ``probs`` (N, Z): the source model's class probabilities,
here the zero-shot classifier's softmax(exp(logit_scale) cos + logit_bias) over the class
prompts (:func:`classifier_probs`). EMMS takes ``label_embeddings`` (N, D, K) from K text
encoders, or per-class tables indexed by the labels. Every score is oriented so that
HIGHER = MORE TRANSFERABLE. Inputs are copied before any arithmetic; no function
modifies the caller's arrays.

Conventions: GBC, H-score, TransRate, SFDA, NCTI and EMMS take a keyword ``convention``
whose default ``"study"`` reproduces the definitions of the IIMM study's official code
(SPEC §5; checked in the tests against independent re-derivations). Where we keep an
earlier variant of our own for a documented reason it is ``convention="project"``.

To add a baseline:

1. A pure function in a module of this package, returning a float oriented HIGHER = MORE TRANSFERABLE. Its
   signature says what it scores (:func:`baseline_input`): ``(features, labels)``; ``(probs, labels)``, the first
   parameter named ``probs``, for the zero-shot classifier's probabilities; or ``(features, labels, *,
   label_embeddings)``. Check input with ``core.transferability._common.prep`` and raise ValueError naming the
   baseline where its assumption fails: :func:`all_scores` records a feature baseline's ValueError as NaN with a
   warning, and lets one on probs or label embeddings propagate (the caller's input is at fault).
2. One entry in :data:`BASELINES`: ``name -> (function, "higher = better (...)")``. That entry is the only list:
   :func:`all_scores` and ``core.transferability.label_sources.baseline_block`` score it, so the grid's records
   (their ``transferability`` JSON), ``jobs.predictors --rescore`` and the forecast page's sample get it; the
   predictor tables (``core.predictor_eval.TRANSFERABILITY_PREDICTORS``), the forecast's candidate sets (every
   numeric key of the records' ``transferability``: ``core.forecast.expand_predictor_columns``), the About page
   (``core.cards.baseline_titles``) and ``jobs.bench_metrics`` follow it.
3. A readable name in ``core.cards.PREDICTOR_TITLES`` (without one, tables show the name with spaces, and
   ``tests/test_extension_points.py`` names it).
4. Tests: a feature baseline joins ``FEATURE_FNS`` in ``tests/transferability_helpers.py`` (the registry test
   checks the list); add a check of your own against an independent derivation, as
   ``tests/test_transferability_study.py`` does for ours.

A baseline that reads the probabilities' values (LEEP does; NCE needs only their argmax) is left out like LEEP
in ``baseline_block`` when the model's logit scale is unknown: add its name where ``leep`` is popped there, or
it is scored at scale 1. Records made before it was added lack it: the predictor tables list it where records
hold it (their summary names a predictor scored on fewer datasets than others of a cell), and the forecast's procedure lets it compete only in a cell where every reference dataset has a
finite value (elsewhere it is silently not a candidate). ``python -m jobs.predictors --results DIR --rescore``
writes it into the JSON records of DIR and remakes DIR's tables (on the shipped ``jobs/results/default`` that
rewrites the project's shipped records and tables: a change of results, to be made as one); the forecast page
shows a forecast's measured coverage only where ``jobs.predictors`` measured the procedure on as many
candidate sets.
"""
from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Sequence

import numpy as np

from core import metrics
from core.transferability._common import STUDY, prep
from core.transferability.emms import emms, label_embedding_stack, simplex_project
from core.transferability.evidence import _logme_fit, _spectrum, leep, logme, nce
from core.transferability.fisher import ncti, ncti_normalised, ncti_terms, power_iteration_eigenvalue, sfda
from core.transferability.gaussian import gbc, h_score, transrate

log = logging.getLogger(__name__)


def gbc_diagonal(features: np.ndarray, labels: np.ndarray) -> float:
    """GBC with diagonal Gaussians (study convention), the study's second GBC variant; features (N, d), labels (N,)."""
    return gbc(features, labels, covariance="diagonal")


BASELINES: dict[str, tuple[Callable[..., float], str]] = {
    "gbc": (gbc, "higher = better (-sum of pairwise Bhattacharyya coefficients, spherical, <= 0)"),
    "gbc_diagonal": (gbc_diagonal, "higher = better (GBC with diagonal Gaussians, <= 0)"),
    "h_score": (h_score, "higher = better (H-score, plain covariances)"),
    "transrate": (transrate, "higher = better (coding-rate gain, nats)"),
    "sfda": (sfda, "higher = better (mean true-class posterior after ConfMix, 0..1)"),
    "ncti": (ncti, "higher = better (seli + ncc - vc, unnormalised: one model)"),
    "logme": (logme, "higher = better (log evidence per sample)"),
    "leep": (leep, "higher = better (<= 0); needs probs"),
    "nce": (nce, "higher = better (<= 0); needs probs"),
    "emms": (emms, "higher = better (<= 0); needs label_embeddings"),
}


def classifier_params(model: Any) -> tuple[float, float]:
    """(exp(logit_scale), logit_bias) of a CLIP-like model: its zero-shot classifier (SPEC §3).
    logit_bias is 0.0 for models without one. Reads two attributes; runs nothing."""
    scale = float(np.exp(float(model.logit_scale.detach().cpu().reshape(-1)[0])))
    bias = getattr(model, "logit_bias", None)
    return scale, 0.0 if bias is None else float(bias.detach().cpu().reshape(-1)[0])


def _is_real(value: object) -> bool:
    """A real number: Python or numpy scalar, or a 0-d numeric array (not a bool, not a string)."""
    return metrics.is_real_number(value) or (isinstance(value, np.ndarray) and value.ndim == 0
                                             and value.dtype.kind in "fiu")


def classifier_probs(image: np.ndarray, text: np.ndarray, *, logit_scale: float,
                     logit_bias: float = 0.0) -> np.ndarray:
    """Zero-shot class probabilities softmax(logit_scale * cos(image, prompt) + logit_bias), (N, C), from image
    (N, d) and text (C, d) embeddings (one prompt row per class).

    ``logit_scale`` is the model's exp(logit_scale) (its temperature), not the log.
    """
    if not _is_real(logit_scale) or not np.isfinite(logit_scale) or logit_scale <= 0:
        raise ValueError(f"logit_scale must be a positive finite number, got {logit_scale!r}")
    if not _is_real(logit_bias) or not np.isfinite(logit_bias):
        raise ValueError(f"logit_bias must be a finite number, got {logit_bias!r}")
    image = metrics.check_matrix(image, "image_embeddings")
    text = metrics.check_matrix(text, "text_embeddings")
    if image.shape[1] != text.shape[1]:
        raise ValueError(f"image and text embeddings must have the same width, got {image.shape[1]} "
                         f"and {text.shape[1]}")
    xn = metrics.unit_rows(image, "image_embeddings")
    tn = metrics.unit_rows(text, "text_embeddings")
    logits = logit_scale * (xn @ tn.T) + logit_bias
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def baseline_input(fn: Callable[..., float]) -> str:
    """What a baseline of :data:`BASELINES` scores, read from its signature: ``"probs"`` when its first parameter
    is named ``probs`` (LEEP, NCE: the classifier's probabilities), ``"label_embeddings"`` when it takes a keyword
    of that name (EMMS), else ``"features"``."""
    params = list(inspect.signature(fn).parameters)
    if params and params[0] == "probs":
        return "probs"
    return "label_embeddings" if "label_embeddings" in params else "features"


def baseline_call(fn: Callable[..., float], features: np.ndarray, labels: np.ndarray, *,
                  probs: np.ndarray | None = None,
                  label_embeddings: np.ndarray | Sequence[np.ndarray] | None = None) -> Callable[[], float] | None:
    """``fn`` (a baseline of :data:`BASELINES`) bound to the input :func:`baseline_input` says it scores, to be
    called with no argument; None where that input is not given."""
    needs = baseline_input(fn)
    if needs == "probs":
        return None if probs is None else lambda: fn(probs, labels)
    if needs == "label_embeddings":
        return None if label_embeddings is None else lambda: fn(features, labels, label_embeddings=label_embeddings)
    return lambda: fn(features, labels)


def all_scores(features: np.ndarray, labels: np.ndarray, *, probs: np.ndarray | None = None,
               label_embeddings: np.ndarray | Sequence[np.ndarray] | None = None) -> dict[str, float]:
    """Every baseline whose inputs are given, name -> score, each in its default (study) convention.

    features (N, d), labels (N,); ``probs`` (N, Z), the source model's class probabilities
    (:func:`classifier_probs`); ``label_embeddings`` (N, D, K) or per-class tables, as :func:`emms` takes.
    Each baseline gets the input :func:`baseline_input` reads from its signature; one whose input is not given
    is left out. Bad input raises ValueError. A baseline whose own assumption fails on valid
    input (e.g. GBC with a single-sample class), or whose value is not finite (e.g. a scatter
    that overflows at extreme feature scales), is NaN, with a warning logged.
    """
    prep(features, labels)
    out: dict[str, float] = {}
    for name, (fn, _) in BASELINES.items():
        call = baseline_call(fn, features, labels, probs=probs, label_embeddings=label_embeddings)
        if call is None:
            continue
        try:
            out[name] = call()
        except ValueError as e:
            if baseline_input(fn) != "features":
                raise  # their extra inputs are the caller's to fix
            log.warning("%s set to NaN: %s", name, e)
            out[name] = float("nan")
        else:
            if not np.isfinite(out[name]):
                log.warning("%s set to NaN: not finite (%r) on these features", name, out[name])
                out[name] = float("nan")
    return out


__all__ = ["BASELINES", "STUDY", "all_scores", "baseline_call", "baseline_input", "classifier_params", "classifier_probs", "emms",
           "gbc", "gbc_diagonal", "h_score", "label_embedding_stack", "leep", "logme", "nce", "ncti",
           "ncti_normalised", "ncti_terms", "power_iteration_eigenvalue", "sfda", "simplex_project",
           "transrate"]
