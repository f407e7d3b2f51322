"""The training loop shared by every method: a lean PyTorch loop with a held-out validation split.

Defaults follow the study's code (SPEC §4): SGD, momentum 0.9, lr 1e-6, weight decay 1e-4, batch 128,
10 epochs, validation hold-out min(10 %, 5000) drawn with seed 0, best-validation checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
import torch.nn.functional as F

from core.config_types import check_types
from core.data.base import LabeledImages
from core.evaluate import ImageEmbeddings, NonFiniteLogits, accuracy
from core.imaging import images_to_tensor
from core.text import did_you_mean

if TYPE_CHECKING:
    from core.methods.base import ClassifierModel

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


#: A method whose trainable parameters do not reach the loss (ValueError in :func:`train`).
_NO_GRADIENT = ("method {method!r}: the training loss depends on none of its trainable parameters. If they "
                "change the class-prompt features from outside the open_clip model (learned prompt context, a "
                "hook on the token embedding), its ClassifierModel must override text_trainable to return True: "
                "otherwise the prompt features are computed once, without them, and cached")


@dataclass
class TrainRecipe:
    """How to train. Training stops after ``epochs`` or ``max_steps``, whichever comes first
    (set either to None to drop that limit; at least one is needed). ``eval_every`` (steps) None:
    validate at the end of every epoch. ``seed`` drives shuffling and augmentation; ``split_seed``
    the validation hold-out."""

    optimizer: str = "sgd"
    lr: float = 1e-6
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    epochs: int | None = 10
    max_steps: int | None = None
    val_fraction: float = 0.1
    val_max: int = 5000
    split_seed: int = 0
    best_checkpoint: bool = True
    eval_every: int | None = None
    eval_batch_size: int = 256
    grad_clip: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_types(TrainRecipe, {f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        checks = [
            (self.optimizer in ("sgd", "adamw"), f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}"
                                                 f"{did_you_mean(self.optimizer, ('sgd', 'adamw'))}"),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.momentum < 1, f"momentum must lie in [0, 1), got {self.momentum}"),
            (self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}"),
            (self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}"),
            (self.epochs is not None or self.max_steps is not None, "set epochs or max_steps (or both)"),
            (self.epochs is None or self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}"),
            (0 <= self.val_fraction < 1, f"val_fraction must lie in [0, 1), got {self.val_fraction}"),
            (self.val_max >= 0, f"val_max must be >= 0, got {self.val_max}"),
            (self.eval_every is None or self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
            (self.eval_batch_size >= 1, f"eval_batch_size must be >= 1, got {self.eval_batch_size}"),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
            (0 <= self.seed < 2**32, f"seed must lie in [0, 2**32 - 1], got {self.seed}"),
            (0 <= self.split_seed < 2**32, f"split_seed must lie in [0, 2**32 - 1], got {self.split_seed}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


@dataclass
class TrainResult:
    """What training did. ``best_val_acc``/``best_step``: the validation score and step of the state
    returned -- the best one with ``best_checkpoint``, else the final one (``val_history`` has them all);
    for a method whose finalize() changes the weights (WiSE-FT), the score is measured after it, and
    ``best_step`` names the trained state that was finalized."""

    steps: int
    epochs: float
    wall_time_s: float
    train_time_s: float
    samples_per_s: float
    best_val_acc: float | None
    best_step: int | None
    n_train: int
    n_val: int
    loss_history: list[float] = field(default_factory=list)
    val_history: list[tuple[int, float]] = field(default_factory=list)


def split_indices(n: int, recipe: TrainRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) row indices: val = min(val_fraction * n, val_max) rows drawn with split_seed."""
    n_val = min(int(n * recipe.val_fraction), recipe.val_max)
    perm = np.random.default_rng(recipe.split_seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def make_optimizer(params: list[torch.nn.Parameter], recipe: TrainRecipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``params``: SGD (lr, momentum, weight decay) or AdamW (lr, weight decay)."""
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)


def _shown(value: object) -> str:
    """' ' and the value's repr where it is a short str or dict (a name, a table of settings), else ''."""
    text = repr(value) if isinstance(value, (str, dict)) else ""
    return f" {text}" if text and len(text) <= 120 else ""


def _check_arguments(module: ClassifierModel, data: LabeledImages, recipe: TrainRecipe) -> None:
    """ValueError naming what :func:`train` was given in place of a recipe or a dataset (a dict, a name, a tuple of
    arrays failed on a missing attribute), and data whose classes are not the ones the module was built for (more
    of them failed in the loss with 'Target 8 is out of bounds'; fewer, or others, trained the wrong prompts)."""
    if not callable(getattr(module, "named_trainable", None)):
        raise ValueError(f"module must be a ClassifierModel (core.methods.build_method gives one), got "
                         f"{type(module).__name__}{_shown(module)}")
    if not isinstance(recipe, TrainRecipe):
        raise ValueError(f"recipe must be a TrainRecipe (TrainRecipe(**settings) for a dict of settings), got "
                         f"{type(recipe).__name__}{_shown(recipe)}")
    if not isinstance(data, LabeledImages):
        raise ValueError(f"data must be a LabeledImages (core.data.registry.load_split(name, 'train') gives one), got "
                         f"{type(data).__name__}{_shown(data)}")
    built_for = list(getattr(module, "class_names", []))
    if list(data.class_names) != built_for:
        def shown(names: list) -> str:
            return f"{len(names)} ({', '.join(map(str, names[:4]))}{', …' if len(names) > 4 else ''})"
        raise ValueError(f"{data.name} has the classes {shown(list(data.class_names))} but the module was built for "
                         f"{shown(built_for)}; build the method with the data's class_names and template")


def train(module: ClassifierModel, data: LabeledImages, recipe: TrainRecipe, *,
          progress: Callable[[dict], None] | None = None,
          image_embeddings: ImageEmbeddings | None = None) -> TrainResult:
    """Fine-tune ``module``'s trainable parameters on ``data`` with cross-entropy (+ its extra loss).

    Deterministic for a given ``recipe.seed`` (it seeds torch's global RNG). Keeps the trainable state
    with the best validation accuracy and restores it at the end (``best_checkpoint``), then calls
    ``module.finalize()``; the module is left in eval mode. ``progress`` receives dicts with
    ``event`` 'step' (step, epoch, loss) or 'eval' (step, val_acc). Raises TrainingDiverged on a
    NaN/inf loss (before that step's update) and ValueError when nothing is trainable, the loss
    depends on none of the trainable parameters, an argument is not what it names (a dict for the
    recipe, a name for the data or the module), or ``data``'s class names are not the ones the module
    was built for.
    ``image_embeddings``: optional function giving ``data``'s (N, D) unit-norm image embeddings by the
    untrained image tower (as ``core.evaluate.evaluate_run`` takes it); where
    ``module.image_tower_is_frozen()``, validation scores from them (the same accuracies up to float
    rounding, without the image forward passes); otherwise it is never called.
    """
    _check_arguments(module, data, recipe)
    named = module.named_trainable()
    if not sum(p.numel() for p in named.values()):  # none, or only empty tensors: nothing would change
        raise ValueError(f"method {getattr(module, 'method', '?')!r} has no trainable parameters; "
                         "evaluate it without training")
    params = list(named.values())
    device = params[0].device
    train_idx, val_idx = split_indices(len(data), recipe)
    if len(train_idx) == 0:
        raise ValueError(f"no training rows left in {data.name} after the validation hold-out")
    val = data.subset(val_idx) if len(val_idx) else None
    val_embeddings = None
    if image_embeddings is not None and module.image_tower_is_frozen():
        cached = image_embeddings(data)
        if len(cached) != len(data):
            raise ValueError(f"image_embeddings gave {len(cached)} rows for {len(data)} images of {data.name}")
        val_embeddings = cached[val_idx]
    labels = torch.from_numpy(np.asarray(data.labels, dtype=np.int64))
    bs = recipe.batch_size
    steps_per_epoch = math.ceil(len(train_idx) / bs)
    total = min(recipe.max_steps or math.inf, (recipe.epochs or math.inf) * steps_per_epoch)
    torch.manual_seed(recipe.seed)
    shuffle = torch.Generator().manual_seed(recipe.seed)
    optimizer = make_optimizer(params, recipe)
    losses: list[float] = []
    history: list[tuple[int, float]] = []
    best_acc, best_step, best_state = -1.0, None, None
    step, samples, train_time, start = 0, 0, 0.0, time.perf_counter()

    def validate() -> None:
        nonlocal best_acc, best_step, best_state
        try:
            acc = accuracy(module, val, batch_size=recipe.eval_batch_size, image_embeddings=val_embeddings)
        except NonFiniteLogits as exc:  # the loss was finite, the update after it was not
            raise TrainingDiverged(f"{exc} after step {step} (lr {recipe.lr}); lower the learning rate") from exc
        history.append((step, acc))
        if acc > best_acc:
            best_acc, best_step = acc, step
            if recipe.best_checkpoint:
                best_state = {n: p.detach().clone() for n, p in named.items()}
        if progress:
            progress({"event": "eval", "step": step, "val_acc": acc})
        module.train()

    module.train()
    while step < total:
        order = train_idx[torch.randperm(len(train_idx), generator=shuffle).numpy()]
        t0 = time.perf_counter()
        for first in range(0, len(order), bs):
            index = order[first:first + bs]
            x = module.train_transform(images_to_tensor(data.images, index, module.loaded).to(device))
            y = labels[index].to(device)
            logits = module(x)
            loss = F.cross_entropy(logits, y)
            extra = module.extra_loss(x, y, logits)
            if extra is not None:
                loss = loss + extra
            value = loss.item()
            if not math.isfinite(value):
                raise TrainingDiverged(f"loss became {value} at step {step + 1} "
                                       f"(method {module.method}, lr {recipe.lr}); lower the learning rate")
            if not loss.requires_grad:  # backward() would raise "element 0 of tensors does not require grad"
                raise ValueError(_NO_GRADIENT.format(method=module.method))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            optimizer.step()
            step += 1
            samples += len(index)
            losses.append(value)
            if progress:
                progress({"event": "step", "step": step, "epoch": step / steps_per_epoch, "loss": value})
            if val is not None and recipe.eval_every and step % recipe.eval_every == 0:
                train_time += time.perf_counter() - t0
                validate()
                t0 = time.perf_counter()
            if step >= total:
                break
        train_time += time.perf_counter() - t0
        if val is not None and recipe.eval_every is None:
            validate()
    blown = [n for n, p in named.items() if not bool(torch.isfinite(p).all())]
    if blown:  # the loss is checked before each update, so the last update is checked here
        raise TrainingDiverged(f"parameter {blown[0]} became NaN or infinite at step {step} "
                               f"(method {module.method}, lr {recipe.lr}); lower the learning rate")
    if val is not None and (not history or history[-1][0] != step):
        validate()  # the final state always takes part in the choice
    if not recipe.best_checkpoint and history:  # the final state is the one returned: report its score
        best_step, best_acc = history[-1]
    if best_state is not None:
        with torch.no_grad():
            for name, p in named.items():
                p.copy_(best_state[name])
        log.info("restored the best validation state (step %d, %.2f%%)", best_step, best_acc)
    module.finalize()
    if val is not None and module.finalize_changes_weights:  # score the state returned, not the one mixed in
        best_acc = accuracy(module, val, batch_size=recipe.eval_batch_size, image_embeddings=val_embeddings)
        log.info("validation after finalize(): %.2f%%", best_acc)
    module.eval()
    wall = time.perf_counter() - start
    result = TrainResult(step, step / steps_per_epoch, wall, train_time,
                         samples / train_time if train_time > 0 else 0.0,
                         best_acc if best_step is not None else None, best_step,
                         len(train_idx), len(val_idx), losses, history)
    log.info("trained %s for %d steps in %.1fs (%.1f samples/s)", module.method, step, wall, result.samples_per_s)
    return result
