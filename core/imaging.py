"""Turning images into model-ready tensors, in batches, without per-image Python work where possible."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from core.models import LoadedModel


def uint8_batch_to_tensor(images: np.ndarray, *, size: int, mean: Sequence[float],
                          std: Sequence[float]) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, size, size) float32, resized (bicubic) and normalised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False).clamp_(0, 1)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return x.sub_(m).div_(s)


def images_to_tensor(images: np.ndarray | Sequence, index: np.ndarray, loaded: LoadedModel) -> torch.Tensor:
    """Rows ``index`` of a uint8 array or a list of PIL images -> one normalised batch for ``loaded``,
    float32 of shape (len(index), 3, S, S) with S = ``loaded.image_size``.

    ``loaded`` is a core.models.LoadedModel; PIL images go through the model's own preprocess.
    """
    if isinstance(images, np.ndarray):
        return uint8_batch_to_tensor(images[index], size=loaded.image_size, mean=loaded.mean, std=loaded.std)
    return torch.stack([loaded.preprocess(images[int(i)].convert("RGB")) for i in index])
