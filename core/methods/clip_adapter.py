"""CLIP-Adapter: a bottleneck MLP on each tower's output, mixed with the original feature; backbone frozen.

``f' = ratio * adapter(f) + (1 - ratio) * f``, then L2-normalised (ratio 0.2 by default). The adapter
is ``Linear(D, D/reduction) -> ReLU -> Linear(D/reduction, D) -> ReLU``, no biases (512->128->512 on
ViT-B/32), as in the CLIP-Adapter paper. Its weights start random, seeded by the run seed (or ``init_seed``; see ``core.methods.base.init_seed``), so the initial model is
*not* the zero-shot one: the mix moves the features from the first step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, check_init_seed, init_seed, require
from core.methods.targets import parse_towers

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class CLIPAdapterConfig(MethodConfig):
    reduction: int = 4
    ratio: float = 0.2
    towers: str = "both"
    init_seed: int | None = None  # None: the run seed (torch.initial_seed(), set by the run)

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(isinstance(self.reduction, int) and self.reduction >= 1,
                f"reduction must be an integer >= 1, got {self.reduction!r}")
        require(0.0 <= self.ratio <= 1.0, f"ratio must lie in [0, 1], got {self.ratio}")
        check_init_seed(self.init_seed)
        parse_towers(self.towers)


def bottleneck(dim: int, reduction: int, generator: torch.Generator) -> nn.Sequential:
    """Bias-free ``Linear(dim, h) -> ReLU -> Linear(h, dim) -> ReLU`` with ``h = max(1, dim // reduction)``;
    weights drawn from ``generator`` in nn.Linear's default uniform range."""
    hidden = max(1, dim // reduction)
    mlp = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(),
                        nn.Linear(hidden, dim, bias=False), nn.ReLU())
    for layer in (mlp[0], mlp[2]):
        bound = layer.in_features ** -0.5  # nn.Linear's default range, drawn from our generator
        with torch.no_grad():
            layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=generator))
    return mlp


class CLIPAdapterModel(ClassifierModel):
    has_external_parts = True  # the adapters sit on the tower outputs, outside open_clip
    # the tower is frozen, and the mix is positively homogeneous (bias-free linears and ReLU): scaling a
    # tower output scales the mixed feature alike, so normalised features ignore the output's norm
    frozen_image_tower = True

    def __init__(self, loaded, class_names, template, config: CLIPAdapterConfig) -> None:
        super().__init__(loaded, class_names, template, method="clip_adapter", config=config)
        towers, dim = parse_towers(config.towers), self.embed_dim
        require(dim // config.reduction >= 1, f"reduction {config.reduction} leaves no hidden unit for the "
                                               f"model's {dim}-wide features; use at most {dim}")
        generator = torch.Generator().manual_seed(init_seed(config))
        device = next(self.clip.parameters()).device
        self.image_adapter = bottleneck(dim, config.reduction, generator).to(device) if "image" in towers else None
        self.text_adapter = bottleneck(dim, config.reduction, generator).to(device) if "text" in towers else None

    def _mix(self, adapter: nn.Module | None, features: torch.Tensor) -> torch.Tensor:
        if adapter is None:
            return features
        return self.config.ratio * adapter(features) + (1.0 - self.config.ratio) * features

    def adapt_image(self, features: torch.Tensor) -> torch.Tensor:
        return self._mix(self.image_adapter, features)

    def adapt_text(self, features: torch.Tensor) -> torch.Tensor:
        return self._mix(self.text_adapter, features)


def build(loaded: LoadedModel, class_names: Sequence[str], template: str,
          config: CLIPAdapterConfig) -> ClassifierModel:
    """A :class:`CLIPAdapterModel` on ``loaded``: bottleneck adapters on the outputs of ``config.towers``,
    backbone frozen."""
    return CLIPAdapterModel(loaded, class_names, template, config)


ENTRY = MethodEntry("clip_adapter", CLIPAdapterConfig, build,
                    "CLIP-Adapter: residual bottleneck MLP on each tower's output, backbone frozen",
                    zero_shot_init=False)
