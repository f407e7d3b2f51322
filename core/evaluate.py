"""Top-1 accuracy of a ClassifierModel, in-domain and on out-of-domain sets."""
from __future__ import annotations

import logging
from typing import Mapping

import numpy as np
import torch

from core.data.base import LabeledImages
from core.imaging import images_to_tensor

log = logging.getLogger(__name__)


def accuracy(module, data: LabeledImages, *, batch_size: int = 256) -> float:
    """Top-1 accuracy (%) of ``module`` on ``data``, using ``data``'s classes and template.

    Runs in eval mode under ``torch.inference_mode``; the module's class prompts and train/eval mode
    are restored afterwards.
    """
    if len(data) == 0:
        raise ValueError(f"cannot measure accuracy on an empty dataset ({data.name})")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    was_training = module.training
    device = next(module.parameters()).device
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64)).to(device)
    module.eval()
    try:
        with module.using_classes(data.class_names, data.template), torch.inference_mode():
            correct = torch.zeros((), dtype=torch.long, device=device)
            for start in range(0, len(data), batch_size):
                index = np.arange(start, min(start + batch_size, len(data)))
                x = images_to_tensor(data.images, index, module.loaded).to(device)
                correct += (module(x).argmax(dim=1) == labels[start:start + len(index)]).sum()
    finally:
        module.train(was_training)
    return 100.0 * int(correct) / len(data)


def evaluate_run(module, train_task_test: LabeledImages,
                 ood_sets: Mapping[str, LabeledImages] | None = None, *, batch_size: int = 256) -> dict:
    """Accuracy on the task's test split and on every out-of-domain set.

    Returns ``{"test_acc": float, "ood_acc": {name: float}, "ood_mean_acc": float | None}``; the
    class prompts are switched per set and the module's own prompts are restored afterwards.
    """
    result = {"test_acc": accuracy(module, train_task_test, batch_size=batch_size), "ood_acc": {}}
    for name, data in (ood_sets or {}).items():
        result["ood_acc"][name] = accuracy(module, data, batch_size=batch_size)
    accs = list(result["ood_acc"].values())
    result["ood_mean_acc"] = float(np.mean(accs)) if accs else None
    log.info("evaluated %s: test %.2f%%, OOD %s", getattr(module, "method", "?"), result["test_acc"],
             {k: round(v, 2) for k, v in result["ood_acc"].items()})
    return result
