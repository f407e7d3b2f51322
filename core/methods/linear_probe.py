"""Linear probe: a linear layer on the frozen, normalised image embeddings.

Initialised from the zero-shot head (``weight = exp(logit_scale) * class-prompt embeddings``,
``bias = logit_bias`` or 0), so the untrained probe gives the zero-shot logits. The probe only knows
the classes it was built for: with other class prompts (OOD sets) the model falls back to the
zero-shot prompt head, which is exactly what a frozen backbone gives on those classes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class LinearProbeConfig(MethodConfig):
    """train_bias: also train the probe's bias (initialised to the model's logit bias or 0)."""

    train_bias: bool = True


class LinearProbeModel(ClassifierModel):
    has_external_parts = True  # the trained head is not part of open_clip
    frozen_image_tower = True  # only the head trains; no image adapter

    def __init__(self, loaded, class_names, template, config: LinearProbeConfig) -> None:
        super().__init__(loaded, class_names, template, method="linear_probe", config=config)
        with torch.no_grad():
            prompts = self.class_features()
            self.head = nn.Linear(prompts.shape[1], prompts.shape[0]).to(prompts.device)
            self.head.weight.copy_(self.clip.logit_scale.exp() * prompts)
            bias = getattr(self.clip, "logit_bias", None)
            self.head.bias.fill_(float(bias) if bias is not None else 0.0)
        self.head.bias.requires_grad_(config.train_bias)
        self._head_classes = (list(class_names), template)

    def logits_from_tower_output(self, tower_output: torch.Tensor) -> torch.Tensor:
        if (self.class_names, self.template) != self._head_classes:
            return super().logits_from_tower_output(tower_output)
        img = self.adapted_image_features(tower_output)
        if self.training:
            self._last = (img, None)
        return self.head(img)


def build(loaded: LoadedModel, class_names: Sequence[str], template: str,
          config: LinearProbeConfig) -> ClassifierModel:
    """A :class:`LinearProbeModel` on ``loaded``: a linear head on the frozen image features,
    initialised from the zero-shot prompt head."""
    return LinearProbeModel(loaded, class_names, template, config)


ENTRY = MethodEntry("linear_probe", LinearProbeConfig, build,
                    "Linear layer on frozen image features, initialised from the zero-shot head")
