"""Zero-shot: no training at all; the baseline row of every comparison."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class ZeroShotConfig(MethodConfig):
    """No settings: the pretrained model with its class prompts as the head."""


class ZeroShotModel(ClassifierModel):
    frozen_image_tower = True  # nothing trains


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: ZeroShotConfig) -> ClassifierModel:
    """The frozen model as a prompt classifier (nothing trainable)."""
    return ZeroShotModel(loaded, class_names, template, method="zero_shot", config=config)


ENTRY = MethodEntry("zero_shot", ZeroShotConfig, build,
                    "No training: the pretrained model with class prompts (baseline)", trains=False)
