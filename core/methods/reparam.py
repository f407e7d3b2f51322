"""Trainable re-parametrisations ``W -> f(W)`` of frozen weights (LoRA, orthogonal), via torch parametrize.

``torch.nn.utils.parametrize`` moves the frozen weight to ``<owner>.parametrizations.<attr>.original``
and makes ``<owner>.<attr>`` compute ``f(original)`` whenever it is read. That is what we need for
open_clip's ``nn.MultiheadAttention``, which reads ``in_proj_weight`` directly (no Linear to hook),
and it also works on timm's ``nn.Linear`` q/k/v layers. The base weight itself is never written.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from core.methods.targets import WeightTarget


class WeightReparam(nn.Module):
    """Base class: ``forward(weight)`` returns ``transform(weight)``, or ``weight`` when disabled."""

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return self.transform(weight) if self.enabled else weight


def attach(target: WeightTarget, reparam: WeightReparam) -> None:
    """Make ``target.owner.<attr>`` read as ``reparam(frozen original)``."""
    parametrize.register_parametrization(target.owner, target.attr, reparam)


@contextmanager
def reparams_disabled(model: nn.Module) -> Iterator[None]:
    """Within the block every re-parametrisation in ``model`` is the identity (the zero-shot model)."""
    mods = [m for m in model.modules() if isinstance(m, WeightReparam)]
    for m in mods:
        m.enabled = False
    try:
        yield
    finally:
        for m in mods:
            m.enabled = True
