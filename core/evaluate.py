"""Top-1 accuracy of a ClassifierModel, in-domain and on out-of-domain sets.

A method whose image tower stays frozen (zero-shot, linear probe, CLIP-Adapter: see
``ClassifierModel.image_tower_is_frozen``) can be evaluated from the frozen tower's cached image
embeddings instead of the images: the same logits up to float rounding, without the image forward
passes that dominate an evaluation.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np
import torch

from core.data.base import LabeledImages
from core.imaging import images_to_tensor
from core.metrics import check_count

if TYPE_CHECKING:
    from core.methods.base import ClassifierModel

log = logging.getLogger(__name__)


#: data -> (N, D) float32 unit-norm embeddings of its N images by the frozen (unchanged) image tower
ImageEmbeddings = Callable[[LabeledImages], np.ndarray]


class NonFiniteLogits(RuntimeError):
    """The module gave NaN or infinite logits (a blown-up training): no accuracy can be measured.
    Its argmax would silently pick class 0 and report that class's share as the accuracy."""


def accuracy(module: ClassifierModel, data: LabeledImages, *, batch_size: int = 256,
             image_embeddings: np.ndarray | None = None) -> float:
    """Top-1 accuracy (%) of ``module`` on ``data``, using ``data``'s classes and template.

    image_embeddings: optional (N, D) unit-norm embeddings of ``data``'s images by the module's image
    tower before any training; used in place of the images, only where
    ``module.image_tower_is_frozen()`` (ValueError otherwise, or for a wrong shape).
    Runs in eval mode under ``torch.inference_mode``; the module's class prompts and train/eval mode
    are restored afterwards. Raises NonFiniteLogits when any logit is NaN or infinite.
    """
    if len(data) == 0:
        raise ValueError(f"cannot measure accuracy on an empty dataset ({data.name})")
    # 2.5 passed and raised TypeError from range() with the module in eval mode, and "8" from '<'
    batch_size = check_count(batch_size, "batch_size")
    if image_embeddings is not None:
        if not module.image_tower_is_frozen():
            raise ValueError(f"method {module.method!r} changes the image tower: cached image embeddings "
                             "do not describe it; evaluate on the images")
        if image_embeddings.ndim != 2 or len(image_embeddings) != len(data):
            raise ValueError(f"image_embeddings must have shape ({len(data)}, D) for {data.name}, "
                             f"got {image_embeddings.shape}")
    was_training = module.training
    device = next(module.parameters()).device
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64)).to(device)
    module.eval()
    try:
        with module.using_classes(data.class_names, data.template), torch.inference_mode():
            correct = torch.zeros((), dtype=torch.long, device=device)
            for start in range(0, len(data), batch_size):
                stop = min(start + batch_size, len(data))
                if image_embeddings is None:
                    x = images_to_tensor(data.images, np.arange(start, stop), module.loaded).to(device)
                    logits = module(x)
                else:
                    x = torch.as_tensor(image_embeddings[start:stop], dtype=torch.float32, device=device)
                    logits = module.logits_from_tower_output(x)
                if not bool(torch.isfinite(logits).all()):
                    raise NonFiniteLogits(f"the model gives NaN or infinite logits on {data.name} "
                                          f"(method {getattr(module, 'method', '?')}): its weights blew up")
                correct += (logits.argmax(dim=1) == labels[start:stop]).sum()
    finally:
        module.train(was_training)
    return 100.0 * int(correct) / len(data)


def evaluate_run(module: ClassifierModel, train_task_test: LabeledImages,
                 ood_sets: Mapping[str, LabeledImages] | None = None, *, batch_size: int = 256,
                 image_embeddings: ImageEmbeddings | None = None) -> dict:
    """Accuracy on the task's test split and on every out-of-domain set.

    image_embeddings: optional function giving a set's unit-norm image embeddings by the module's
    image tower before training (e.g. from ``core.embed.embed_dataset``'s cache); used only where
    ``module.image_tower_is_frozen()``, and ignored otherwise.
    Returns ``{"test_acc": float, "ood_acc": {name: float}, "ood_mean_acc": float | None,
    "input": "images" | "cached image embeddings"}``; the class prompts are switched per set and the
    module's own prompts are restored afterwards.
    """
    use_cache = image_embeddings is not None and module.image_tower_is_frozen()

    def score(data: LabeledImages) -> float:
        cached = image_embeddings(data) if use_cache else None
        return accuracy(module, data, batch_size=batch_size, image_embeddings=cached)

    result = {"test_acc": score(train_task_test), "ood_acc": {},
              "input": "cached image embeddings" if use_cache else "images"}
    for name, data in (ood_sets or {}).items():
        result["ood_acc"][name] = score(data)
    accs = list(result["ood_acc"].values())
    result["ood_mean_acc"] = float(np.mean(accs)) if accs else None
    log.info("evaluated %s: test %.2f%%, OOD %s", getattr(module, "method", "?"), result["test_acc"],
             {k: round(v, 2) for k, v in result["ood_acc"].items()})
    return result
