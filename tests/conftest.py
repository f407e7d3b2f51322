"""Fixtures shared by several test modules."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def loaded():
    """The tiny random-weight model (``worldclip-tiny-random``), with torch on one thread while a module runs:
    the machine is shared, and one thread is also fastest for this model. Its weights are drawn from a fixed
    seed (without touching the global generator), so they do not depend on which tests ran before."""
    import torch

    from core.models import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = load_model("worldclip-tiny-random")
    yield model
    torch.set_num_threads(threads)
