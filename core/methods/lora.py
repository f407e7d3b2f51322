"""LoRA on the Q and V parts of every attention block of both towers (rank 4, scale 0.2 by default).

Why our own module and not peft: peft's ``LoraConfig(target_parameters=["in_proj_weight"])`` wraps the
*whole* packed (3d, d) q/k/v parameter with one ``B @ A`` of that shape; it cannot restrict the update
to the Q and V row blocks (doing so would need gradient masking of rows of ``lora_B``, which inflates
the trainable count and depends on the optimiser never moving zero-gradient rows). So each targeted
weight gets a :class:`QVLoRA` parametrisation: ``W' = W + scale * B_p @ A_p`` on the rows of each
chosen part p, nothing on the others. ``B`` starts at zero (output unchanged at init), ``A`` is
Kaiming-uniform from a generator seeded by the run seed (or ``init_seed``). The frozen ``W`` is only read, never written (the study's
code drifted it; we do not). On timm towers the fused ``qkv`` Linear is adapted the same way, and
separate ``q_proj``/``v_proj`` Linears (EVA-02) get one full-matrix LoRA each.

Parameters on ViT-B/32 with the defaults: 12·2·(4·768 + 768·4) + 12·2·(4·512 + 512·4) = 245,760.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
from torch import nn

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, check_init_seed, init_seed, require
from core.methods.reparam import WeightReparam, attach
from core.methods.targets import parse_towers, qkv_targets

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class LoRAConfig(MethodConfig):
    """rank r; scale multiplies B @ A (the study: fixed 0.2). ``alpha``, if set, overrides it with
    peft's convention scale = alpha / rank. parts: the row blocks to adapt, a subset of 'qkv'."""

    rank: int = 4
    scale: float = 0.2
    alpha: float | None = None
    parts: str = "qv"
    towers: str = "both"
    init_seed: int | None = None  # None: the run seed (torch.initial_seed(), set by the run)

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(isinstance(self.rank, int) and self.rank >= 1, f"rank must be an integer >= 1, got {self.rank!r}")
        require(self.scale > 0, f"scale must be > 0, got {self.scale}")
        require(self.alpha is None or self.alpha > 0, f"alpha must be > 0 or None, got {self.alpha}")
        require(bool(self.parts) and set(self.parts) <= set("qkv") and len(set(self.parts)) == len(self.parts),
                f"parts must be a non-empty subset of 'qkv' such as 'qv', got {self.parts!r}")
        check_init_seed(self.init_seed)
        parse_towers(self.towers)

    @property
    def effective_scale(self) -> float:
        return self.scale if self.alpha is None else self.alpha / self.rank


class QVLoRA(WeightReparam):
    """Low-rank deltas on chosen row blocks of one weight: ``W[rows_p] + scale * B_p @ A_p``."""

    def __init__(self, weight: torch.Tensor, parts: dict[str, slice], rank: int, scale: float,
                 generator: torch.Generator) -> None:
        super().__init__()
        rows, cols = weight.shape
        self.scale = scale
        self.segments = sorted((s.indices(rows)[0], s.indices(rows)[1], key) for key, s in parts.items())
        self.lora_A, self.lora_B = nn.ParameterDict(), nn.ParameterDict()
        for start, stop, key in self.segments:
            a = torch.empty(rank, cols, dtype=weight.dtype)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5), generator=generator)
            self.lora_A[key] = nn.Parameter(a.to(weight.device))
            self.lora_B[key] = nn.Parameter(torch.zeros(stop - start, rank, dtype=weight.dtype, device=weight.device))

    def transform(self, weight: torch.Tensor) -> torch.Tensor:
        pieces, pos = [], 0
        for start, stop, key in self.segments:
            if start > pos:
                pieces.append(weight[pos:start])
            pieces.append(weight[start:stop] + self.scale * (self.lora_B[key] @ self.lora_A[key]))
            pos = stop
        if pos < weight.shape[0]:
            pieces.append(weight[pos:])
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def _check_rank(rank: int, name: str, shape: torch.Size, parts: dict[str, slice]) -> None:
    """ValueError unless ``rank`` fits every part of the weight: a rank above min(rows, columns) adds
    parameters (more than the weight itself at large ranks) but no expressiveness."""
    rows, cols = shape
    widest = min(min(len(range(*s.indices(rows))) for s in parts.values()), cols)
    if rank > widest:
        raise ValueError(f"LoRA rank {rank} is larger than the weight allows: {name} has parts of "
                         f"{widest} rows or columns at most; use rank <= {widest}")


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: LoRAConfig) -> ClassifierModel:
    """The classifier on ``loaded`` with a :class:`QVLoRA` on the ``config.parts`` row blocks of every q/k/v
    weight of ``config.towers``; only the LoRA factors train (B starts at zero: zero-shot logits)."""
    module = ClassifierModel(loaded, class_names, template, method="lora", config=config)
    generator = torch.Generator().manual_seed(init_seed(config))
    for target in qkv_targets(module.clip, parse_towers(config.towers)):
        parts = {k: s for k, s in target.parts.items() if k in config.parts}
        if parts:
            _check_rank(config.rank, target.name, target.weight.shape, parts)
            attach(target, QVLoRA(target.weight, parts, config.rank, config.effective_scale, generator))
    return module


ENTRY = MethodEntry("lora", LoRAConfig, build,
                    "LoRA (rank 4, scale 0.2) on the Q and V projections of every block of both towers")
