"""Helpers shared by the fine-tuning method test modules (tests/test_methods_*.py): the task's classes and
template (from tests/task_helpers.py), our methods (those that train, those that train the whole model), and logits in eval mode."""
from __future__ import annotations

import torch

from core.methods import METHODS, method_info
from tests.task_helpers import CLASSES, TEMPLATE  # noqa: F401 (the method test modules import them from here)

# our own methods; the peft catalogue has its own tests (tests/test_peft_adapters.py, tests/test_peft_config.py)
OURS = [name for name in METHODS if method_info(name).source == "ours"]
TRAINED = [name for name in OURS if METHODS[name].trains]
FULL = {"full_ft", "clip_cite", "wise_ft"}


def logits(module, x):
    module.eval()  # also drops cached prompt features of text-trainable methods
    with torch.no_grad():
        return module(x)
