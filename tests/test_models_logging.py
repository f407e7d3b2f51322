"""What loading a model writes to the log, which a server's console shows its host: one line of ours for random
weights, none for the offline default, and no duplicate of open_clip's own (on the root logger, another format)."""
import logging

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
