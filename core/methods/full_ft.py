"""Full fine-tuning: every parameter of both towers, temperature (and SigLIP's logit bias) included."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from torch import nn

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry
from core.methods.targets import tower_of

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class FullFTConfig(MethodConfig):
    """include_logit_scale: also train the temperature (and logit_bias where present), as in SPEC §4."""

    include_logit_scale: bool = True


def unfreeze_towers(model: nn.Module, include_logit_scale: bool) -> None:
    """Make every tower parameter trainable (CoCa's unused captioning decoder stays frozen)."""
    for name, p in model.named_parameters():
        if tower_of(name) is not None or (include_logit_scale and name in ("logit_scale", "logit_bias")):
            p.requires_grad_(True)


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: FullFTConfig) -> ClassifierModel:
    """The classifier on ``loaded`` with every tower parameter trainable (and the temperature
    and logit bias when ``config.include_logit_scale``)."""
    module = ClassifierModel(loaded, class_names, template, method="full_ft", config=config)
    unfreeze_towers(module.clip, config.include_logit_scale)
    return module


ENTRY = MethodEntry("full_ft", FullFTConfig, build, "Full fine-tuning of both towers and the temperature")
