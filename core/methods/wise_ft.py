"""WiSE-FT: fine-tune like full_ft, then interpolate weights with the zero-shot ones.

``finalize()`` (called by the training loop after training) sets every trained tensor to
``(1 - alpha) * theta_zero_shot + alpha * theta_fine_tuned``; alpha = 0 is zero-shot, 1 is full_ft.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, require
from core.methods.full_ft import unfreeze_towers

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class WiseFTConfig(MethodConfig):
    alpha: float = 0.5
    include_logit_scale: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(0.0 <= self.alpha <= 1.0, f"alpha must lie in [0, 1], got {self.alpha}")


class WiseFTModel(ClassifierModel):
    finalize_changes_weights = True

    def __init__(self, loaded, class_names, template, config: WiseFTConfig) -> None:
        super().__init__(loaded, class_names, template, method="wise_ft", config=config)
        unfreeze_towers(self.clip, config.include_logit_scale)
        self._zero_shot = {n: p.detach().clone() for n, p in self.named_trainable().items()}

    @torch.no_grad()
    def finalize(self) -> None:
        if self.finalized:  # interpolating twice would move further towards zero-shot
            return
        for name, p in self.named_trainable().items():
            p.lerp_(self._zero_shot[name].to(p.device), 1.0 - self.config.alpha)
        self.clear_cache()
        super().finalize()


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: WiseFTConfig) -> ClassifierModel:
    """A :class:`WiseFTModel` on ``loaded``: full fine-tuning whose ``finalize()`` interpolates the trained
    tensors with their zero-shot values by ``config.alpha``."""
    return WiseFTModel(loaded, class_names, template, config)


ENTRY = MethodEntry("wise_ft", WiseFTConfig, build,
                    "Full fine-tuning, then weight-space interpolation with the zero-shot model (WiSE-FT)")
