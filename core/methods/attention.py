"""Attention-weight tuning ("A-CLIP"): only the packed Q/K/V projection weight of every block.

Not its bias, not the output projection: 30,670,848 parameters on ViT-B/32. On timm towers the
fused ``qkv`` Linear weight (or the three q/k/v Linear weights of EVA-02) plays the same role.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry
from core.methods.targets import parse_towers, qkv_targets

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class AttentionConfig(MethodConfig):
    """towers: 'both' | 'image' | 'text'."""

    towers: str = "both"

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        parse_towers(self.towers)


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: AttentionConfig) -> ClassifierModel:
    """The classifier on ``loaded`` with only the packed Q/K/V projection weights of ``config.towers`` trainable."""
    module = ClassifierModel(loaded, class_names, template, method="attention", config=config)
    for target in qkv_targets(module.clip, parse_towers(config.towers)):
        target.weight.requires_grad_(True)
    return module


ENTRY = MethodEntry("attention", AttentionConfig, build,
                    "Packed Q/K/V input-projection weights of every block (A-CLIP attention tuning)")
