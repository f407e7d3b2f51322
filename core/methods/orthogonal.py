"""OrthCR-style orthogonal fine-tuning with cross-regularisation (after arXiv 2407.08374).

Choices (the paper's exact placement and weights are not public in what we could read):

* Placement: the q/k/v input projection (open_clip ``in_proj_weight``; timm ``qkv`` or q/k/v Linears)
  and, with ``include_mlp``, the first MLP layer (``c_fc`` / ``fc1``) of every block of both towers.
* Rotation: one trainable skew-symmetric ``S`` (stored as its strict upper triangle) per weight,
  ``R = (I - S)(I + S)^-1`` (Cayley; equal to ``(I + S)^-1 (I - S)`` since both are functions of S),
  ``S = 0`` at start so ``R = I`` and the model starts as the zero-shot one. ``R`` acts on the input
  dimension: with the papers' (in x out) convention ``W' = R W``, i.e. every neuron's weight vector is
  rotated by the same R (angles between neurons preserved); in PyTorch's (out, in) layout
  ``weight' = weight @ R.T``. ``block_size`` > 0 makes R block-diagonal (cheaper, as in OFT).
* Cross-regularisation: ``cr_weight * mean(1 - cos(f_ft(x), f_zs(x)))`` between the fine-tuned and
  the zero-shot image embeddings of the same (augmented) batch; the zero-shot ones come from the same
  network with the rotations switched off, so no second model is kept.
* Cutout (DeVries & Taylor): one square of side ``cutout_fraction`` x image side per training image,
  set to 0 in normalised space (the dataset mean), centre uniform, clipped at the borders.
"""
from __future__ import annotations

import math

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, require
from core.methods.reparam import WeightReparam, attach, reparams_disabled
from core.methods.targets import mlp_in_targets, parse_towers, qkv_targets

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class OrthogonalConfig(MethodConfig):
    include_mlp: bool = True
    block_size: int = 0  # 0: one full (in x in) rotation per weight; else >= 2 (a 1x1 rotation is fixed at 1)
    towers: str = "both"
    cr_weight: float = 1.0
    cutout: bool = True
    cutout_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(isinstance(self.block_size, int) and (self.block_size == 0 or self.block_size >= 2),
                f"block_size must be 0 (one full rotation per weight) or an integer >= 2, got {self.block_size!r} "
                "(1x1 blocks have no free angle: nothing would train)")
        require(self.cr_weight >= 0, f"cr_weight must be >= 0, got {self.cr_weight}")
        require(0 < self.cutout_fraction <= 1, f"cutout_fraction must lie in (0, 1], got {self.cutout_fraction}")
        parse_towers(self.towers)


class CayleyRotation(WeightReparam):
    """``weight @ R.T`` with ``R`` block-diagonal Cayley-orthogonal, identity at init."""

    def __init__(self, in_features: int, block_size: int, weight: torch.Tensor) -> None:
        super().__init__()
        b = block_size or in_features
        if in_features % b:
            raise ValueError(f"block_size {block_size} does not divide the input width {in_features}")
        self.n_blocks, self.block = in_features // b, b
        self.skew = nn.Parameter(torch.zeros(self.n_blocks, b * (b - 1) // 2, dtype=weight.dtype,
                                             device=weight.device))
        self.register_buffer("triu", torch.triu_indices(b, b, 1, device=weight.device), persistent=False)

    def rotation(self) -> torch.Tensor:
        """(n_blocks, b, b) orthogonal blocks."""
        upper = self.skew.new_zeros(self.n_blocks, self.block, self.block)
        upper[:, self.triu[0], self.triu[1]] = self.skew
        s = upper - upper.transpose(1, 2)
        eye = torch.eye(self.block, dtype=s.dtype, device=s.device).expand_as(s)
        return torch.linalg.solve(eye + s, eye - s)

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        out = weight.shape[0]
        blocks = weight.reshape(out, self.n_blocks, self.block)
        return torch.einsum("onj,nkj->onk", blocks, self.rotation()).reshape(weight.shape)


def cutout(images: torch.Tensor, fraction: float) -> torch.Tensor:
    """Zero one random square (side = fraction of each image side) per image; uses torch's global RNG."""
    b, _, h, w = images.shape
    side_h, side_w = max(1, round(h * fraction)), max(1, round(w * fraction))
    top = torch.randint(0, h, (b, 1, 1), device=images.device) - side_h // 2
    left = torch.randint(0, w, (b, 1, 1), device=images.device) - side_w // 2
    ys = torch.arange(h, device=images.device).view(1, h, 1)
    xs = torch.arange(w, device=images.device).view(1, 1, w)
    mask = (ys >= top) & (ys < top + side_h) & (xs >= left) & (xs < left + side_w)
    return images.masked_fill(mask[:, None], 0.0)


class OrthogonalModel(ClassifierModel):
    def __init__(self, loaded, class_names, template, config: OrthogonalConfig) -> None:
        super().__init__(loaded, class_names, template, method="orthogonal", config=config)
        towers = parse_towers(config.towers)
        targets = qkv_targets(self.clip, towers) + (mlp_in_targets(self.clip, towers) if config.include_mlp else [])
        widths = {t.weight.shape[1] for t in targets}
        if config.block_size and any(w % config.block_size for w in widths):  # said of one weight, no way out
            common = math.gcd(*widths)
            fits = [d for d in range(2, common + 1) if common % d == 0]
            raise ValueError(f"block_size {config.block_size} does not divide the input width of every rotated weight "
                             f"(widths {', '.join(map(str, sorted(widths)))}); use one that divides them all "
                             f"({', '.join(map(str, fits[:10])) or 'none above 1'}{' …' if len(fits) > 10 else ''}) "
                             "or 0 for one full rotation per weight")
        for target in targets:
            w = target.weight
            attach(target, CayleyRotation(w.shape[1], config.block_size, w))

    def train_transform(self, images: torch.Tensor) -> torch.Tensor:
        return cutout(images, self.config.cutout_fraction) if self.training and self.config.cutout else images

    def extra_loss(self, images: torch.Tensor, labels: torch.Tensor,
                   logits: torch.Tensor) -> torch.Tensor | None:
        if self.config.cr_weight == 0 or self._last is None:
            return None
        with torch.no_grad(), reparams_disabled(self.clip):
            zero_shot = F.normalize(self.clip.encode_image(images, normalize=False), dim=-1)
        cos = (self._last[0] * zero_shot).sum(dim=-1)
        return self.config.cr_weight * (1.0 - cos).mean()


def build(loaded: LoadedModel, class_names: Sequence[str], template: str,
          config: OrthogonalConfig) -> ClassifierModel:
    """An :class:`OrthogonalModel` on ``loaded``: Cayley rotations of the q/k/v (and MLP-in) weights,
    cross-regularised to the zero-shot image embeddings, with Cutout."""
    return OrthogonalModel(loaded, class_names, template, config)


ENTRY = MethodEntry("orthogonal", OrthogonalConfig, build,
                    "OrthCR-style Cayley rotations of q/k/v and MLP-in weights + cross-regularisation + Cutout")
