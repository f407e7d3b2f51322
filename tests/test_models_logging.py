"""What loading a model writes to the log, which a server's console shows its host: one line of ours for random
weights, none for the offline default, and no duplicate of open_clip's own (on the root logger, another format)."""
import logging

import pytest

from core.models import load_model


def _warnings(caplog, name):
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        load_model(name)
    return [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_random_weights_model_is_announced_once_in_our_own_line(caplog):
    assert _warnings(caplog, "worldclip-tiny-random") == [
        ("core.models", "worldclip-tiny has random weights: its numbers measure an untrained model")]


def test_the_offline_default_model_loads_without_a_warning(caplog):
    assert _warnings(caplog, "worldclip-tiny") == []


def test_a_download_model_offline_is_refused_without_open_clips_error_line(caplog, monkeypatch, tmp_path):
    """Offline, a model whose weights are downloaded fails on its local cache, as expected: the user gets one sentence
    (ModelUnavailableError); open_clip's own ERROR line, the same failure once more on the root logger, is dropped."""
    import huggingface_hub.constants as hub

    from core import models

    monkeypatch.setattr(models, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(hub, "HF_HUB_CACHE", str(tmp_path))  # an empty cache: nothing to find
    caplog.clear()
    with caplog.at_level(logging.WARNING), pytest.raises(models.ModelUnavailableError, match="may be offline"):
        load_model("CLIP")
    assert [(r.name, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING] == []
