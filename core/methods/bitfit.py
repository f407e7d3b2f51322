"""BitFit: train every bias inside the transformer blocks of both towers (168,960 on ViT-B/32).

Biases counted: attention in-projection and out-projection, both LayerNorms, both MLP layers.
Biases outside the blocks (ln_pre, ln_post, ln_final, patch embedding, projections) stay frozen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry
from core.methods.targets import block_bias_names, parse_towers

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class BitFitConfig(MethodConfig):
    """towers: 'both' | 'image' | 'text'."""

    towers: str = "both"

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        parse_towers(self.towers)


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: BitFitConfig) -> ClassifierModel:
    """The classifier on ``loaded`` with every bias inside the blocks of ``config.towers`` trainable."""
    module = ClassifierModel(loaded, class_names, template, method="bitfit", config=config)
    wanted = set(block_bias_names(module.clip, parse_towers(config.towers)))
    for name, p in module.clip.named_parameters():
        if name in wanted:
            p.requires_grad_(True)
    return module


ENTRY = MethodEntry("bitfit", BitFitConfig, build,
                    "Every bias inside the transformer blocks of both towers (BitFit)")
