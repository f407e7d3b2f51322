"""CLIP-CITE-style full fine-tuning (after arXiv 2407.04003): three losses.

``loss = CE(logits, y) + lambda * L_disc + eta * T^2 * KL(p_zs^T || p_ft^T)`` where

* ``L_disc`` (weight ``disc_weight`` = lambda, 0.7): a contrastive image-text loss over the batch
  between each image and the class-prompt embeddings of the batch's labels, at the model's own
  temperature. Images of the same class are all positives (soft targets spread over them).
  ``alpha`` (0.5) mixes its two directions: ``alpha * L_image->text + (1 - alpha) * L_text->image``;
  alpha = 0.5 is the symmetric loss. (Our reading of the paper's alpha: its role is not public in
  what we could read; treat it as this choice.)
* KL (weight ``kd_weight`` = eta, 0.1): distillation from the frozen zero-shot model's logits on the
  same images and classes, both divided by ``kd_temperature`` (1.0) and scaled by its square.

The frozen teacher is a private copy of the starting model (not a registered submodule: it is not
counted, saved or trained). The paper's other settings, lr 5e-6 and 20 epochs, are not defaults: every
method shares TrainRecipe's (lr 1e-6, 10 epochs); set them in the run's recipe (a grid's
``[method.clip_cite.train]``) to follow the paper.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn.functional as F

from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, require
from core.methods.full_ft import unfreeze_towers

if TYPE_CHECKING:
    from core.models import LoadedModel


@dataclass
class CLIPCITEConfig(MethodConfig):
    disc_weight: float = 0.7   # lambda
    kd_weight: float = 0.1     # eta
    alpha: float = 0.5         # image->text share of the discriminative loss
    kd_temperature: float = 1.0
    include_logit_scale: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(self.disc_weight >= 0, f"disc_weight must be >= 0, got {self.disc_weight}")
        require(self.kd_weight >= 0, f"kd_weight must be >= 0, got {self.kd_weight}")
        require(0.0 <= self.alpha <= 1.0, f"alpha must lie in [0, 1], got {self.alpha}")
        require(self.kd_temperature > 0, f"kd_temperature must be > 0, got {self.kd_temperature}")


def multi_positive_contrastive(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor,
                               scale: torch.Tensor, alpha: float) -> torch.Tensor:
    """Contrastive loss between rows of ``image`` and ``text`` (B, D), positives = same label."""
    sim = scale * image @ text.t()
    same = (labels[:, None] == labels[None, :]).to(sim.dtype)
    target = same / same.sum(dim=1, keepdim=True)
    i2t = -(target * sim.log_softmax(dim=1)).sum(dim=1).mean()
    t2i = -(target * sim.t().log_softmax(dim=1)).sum(dim=1).mean()
    return alpha * i2t + (1.0 - alpha) * t2i


class CLIPCITEModel(ClassifierModel):
    def __init__(self, loaded, class_names, template, config: CLIPCITEConfig) -> None:
        teacher = copy.deepcopy(loaded.model).eval().requires_grad_(False)
        super().__init__(loaded, class_names, template, method="clip_cite", config=config)
        unfreeze_towers(self.clip, config.include_logit_scale)
        self._teacher = [teacher]  # a list: keeps it out of parameters(), state_dict() and counts
        self._teacher_text: dict[tuple, torch.Tensor] = {}

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._teacher[0]._apply(fn)
        self._teacher_text.clear()
        return self

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        teacher = self._teacher[0]
        key = (tuple(self.class_names), self.template)
        if key not in self._teacher_text:
            self._teacher_text[key] = teacher.encode_text(self.class_tokens, normalize=True)
        logits = teacher.logit_scale.exp() * teacher.encode_image(images, normalize=True) @ self._teacher_text[key].t()
        bias = getattr(teacher, "logit_bias", None)
        return logits if bias is None else logits + bias

    def extra_loss(self, images: torch.Tensor, labels: torch.Tensor,
                   logits: torch.Tensor) -> torch.Tensor | None:
        cfg, (img, txt) = self.config, self._last
        loss = cfg.disc_weight * multi_positive_contrastive(img, txt[labels], labels,
                                                            self.clip.logit_scale.exp(), cfg.alpha)
        if cfg.kd_weight:
            t = cfg.kd_temperature
            kl = F.kl_div((logits / t).log_softmax(dim=1), (self.teacher_logits(images) / t).log_softmax(dim=1),
                          log_target=True, reduction="batchmean")
            loss = loss + cfg.kd_weight * t * t * kl
        return loss


def build(loaded: LoadedModel, class_names: Sequence[str], template: str, config: CLIPCITEConfig) -> ClassifierModel:
    """A :class:`CLIPCITEModel` on ``loaded``: full fine-tuning plus the discriminative image-text loss
    and KL distillation from a frozen copy of the starting model."""
    return CLIPCITEModel(loaded, class_names, template, config)


ENTRY = MethodEntry("clip_cite", CLIPCITEConfig, build,
                    "CLIP-CITE-style full fine-tuning: CE + discriminative image-text loss + KL to zero-shot")
