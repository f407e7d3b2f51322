"""Common pieces of every fine-tuning method: the classifier wrapper, configs, counting, save/load.

A method is a config dataclass plus a build function that turns a loaded open_clip model into a
:class:`ClassifierModel` with exactly the intended parameters trainable (see ``core.methods``).

The classifier head is the class-prompt embeddings: ``logits = exp(logit_scale) * cos(image, prompt)``
(+ ``logit_bias`` where the model has one, e.g. SigLIP), as in SPEC section 3.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.config_types import check_types
from core.data.base import check_not_one_string, check_prompt_template
from core.methods.targets import tower_of
from core.text import did_you_mean

if TYPE_CHECKING:
    from core.models import LoadedModel

log = logging.getLogger(__name__)

SAVE_FORMAT = "worldclip-trained-v1"


@dataclass
class MethodConfig:
    """Base of every method config; subclasses validate their fields in ``__post_init__``."""

    def __post_init__(self) -> None:
        """Type checks of every field (subclasses call this first, then check ranges): a config built
        directly, not through :meth:`from_overrides`, must not slip a bool in for an int or a string
        in for a number."""
        check_types(type(self), {f.name: getattr(self, f.name) for f in fields(self)})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any] | None = None) -> "MethodConfig":
        """Defaults with ``overrides`` applied; an unknown key raises ValueError naming it."""
        if overrides is not None and not isinstance(overrides, Mapping):  # "rank=8" failed inside dict()
            raise ValueError(f"{cls.__name__} overrides must be a mapping of config keys to values (a TOML table, "
                             f"a dict such as {{'rank': 8}}), got {overrides!r}")
        overrides = dict(overrides or {})
        known = [f.name for f in fields(cls)]
        for key in overrides:
            if key not in known:
                raise ValueError(f"unknown config key {key!r}{did_you_mean(key, known)} for {cls.__name__}; "
                                 f"known keys: {', '.join(known) or '(none)'}")
        check_types(cls, overrides)
        return cls(**overrides)


def require(condition: bool, message: str) -> None:
    """Raise ValueError(message) unless ``condition`` holds (config validation helper)."""
    if not condition:
        raise ValueError(message)


def check_init_seed(value: Any) -> None:
    """Raise ValueError unless ``value`` is a valid ``init_seed`` setting: None or an integer >= 0."""
    require(value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0),
            f"init_seed must be None or an integer >= 0, got {value!r}")


def init_seed(config: MethodConfig) -> int:
    """The seed of an adapter's random initialisation: ``config.init_seed`` when set, else the run
    seed, i.e. the seed torch's global generator was last seeded with (``core.experiment`` calls
    ``torch.manual_seed(seed)`` before building a method), so seeds 0 and 1 of a grid differ in
    their initial adapter weights as well as in data order."""
    seed = getattr(config, "init_seed", None)
    return int(seed) if seed is not None else int(torch.initial_seed()) % (2 ** 63)


@dataclass(frozen=True)
class MethodEntry:
    """One registry row. ``trains``: False for methods that are only evaluated (zero-shot).
    ``zero_shot_init``: the freshly built model gives exactly the zero-shot logits.
    ``needs_config``: the defaults alone do not build (the plain ``peft`` entry needs a peft config).
    Family, paper and trainable counts for display live in the torch-free ``core.method_info``."""

    name: str
    config_cls: type[MethodConfig]
    build: Callable[..., "ClassifierModel"]
    description: str
    trains: bool = True
    zero_shot_init: bool = True
    needs_config: bool = False


class ClassifierModel(nn.Module):
    """A dual encoder used as a classifier over class prompts.

    ``forward(images) -> (B, C)`` logits. Every parameter of the wrapped open_clip model starts
    frozen; a method's build function unfreezes or adds what it trains. Hooks for methods:
    ``adapt_image``/``adapt_text`` (on raw tower outputs), ``logits_from``, ``train_transform``
    (augmentation, training only), ``extra_loss`` and ``finalize`` (called once after training).
    A method that never changes the image tower sets ``frozen_image_tower``: it is then validated and
    evaluated from cached image embeddings (``logits_from_tower_output``), not the images.

    Class-prompt features are cached when the text tower has nothing trainable (:attr:`text_trainable`: a
    parameter of the open_clip text tower requires grad); otherwise they are re-encoded on every training
    forward and cached in eval mode until the next ``train()``/``eval()`` call (call ``clear_cache()`` after
    editing weights by hand while in eval mode). A method whose trained parts sit outside the open_clip model
    yet change the prompt features (learned prompt context added by a hook on ``token_embedding``) overrides
    ``text_trainable`` to return True; otherwise its prompts are encoded once without them, and training
    stops with a ValueError saying so.
    """

    #: True where trained parts live outside the open_clip model (no plain open_clip export)
    has_external_parts: bool = False
    #: True where the method never changes the open_clip image tower and ``adapt_image`` is positively
    #: homogeneous (adapt_image(c * f) = c * adapt_image(f) for c > 0), so the normalised image features
    #: do not depend on the tower output's norm (see ``image_tower_is_frozen``)
    frozen_image_tower: bool = False

    def __init__(self, loaded, class_names: Sequence[str], template: str, *,
                 method: str = "zero_shot", config: MethodConfig | None = None) -> None:
        super().__init__()
        self.clip = loaded.model
        self.loaded = replace(loaded, model=self.clip)  # image size, mean/std, tokenizer, spec
        self.method = method
        self.config = config if config is not None else MethodConfig()
        self.finalized = False
        for p in self.clip.parameters():
            p.requires_grad_(False)
        self.register_buffer("class_tokens", torch.zeros(0, dtype=torch.long), persistent=False)
        self.class_names: list[str] = []
        self.template = ""
        self._text_cache: torch.Tensor | None = None
        self._text_trainable: bool | None = None
        self._last: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.set_classes(class_names, template)

    # ----- class prompts -------------------------------------------------------------------
    def set_classes(self, class_names: Sequence[str], template: str) -> None:
        """Tokenise the prompts ``template.format(c=name)`` once; they define the output classes."""
        check_not_one_string(class_names)
        if not class_names:
            raise ValueError("class_names must not be empty")
        check_prompt_template(template)
        device = next(self.clip.parameters()).device
        with torch.inference_mode(False):  # never store an inference tensor (breaks later training)
            self.class_tokens = self.loaded.tokenizer([template.format(c=c) for c in class_names]).to(device)
        self.class_names, self.template = list(class_names), template
        self.clear_cache()

    @contextmanager
    def using_classes(self, class_names: Sequence[str], template: str) -> Iterator[None]:
        """Temporarily switch the class prompts; the previous ones (and their cache) come back."""
        if list(class_names) == self.class_names and template == self.template:
            yield
            return
        saved = (self.class_names, self.template, self.class_tokens, self._text_cache)
        self.set_classes(class_names, template)
        try:
            yield
        finally:
            self.class_names, self.template, self.class_tokens, self._text_cache = saved

    def clear_cache(self) -> None:
        """Forget cached prompt features and the cached 'text tower trainable' flag."""
        self._text_cache = None
        self._text_trainable = None

    @property
    def text_trainable(self) -> bool:
        if self._text_trainable is None:
            self._text_trainable = any(p.requires_grad for n, p in self.clip.named_parameters()
                                       if tower_of(n) == "text")
        return self._text_trainable

    def _apply(self, fn, recurse=True):  # .to()/.cuda()/.half(): cached prompt features would be stale
        super()._apply(fn, recurse)
        self.clear_cache()
        return self

    def train(self, mode: bool = True) -> "ClassifierModel":
        super().train(mode)
        self._text_trainable = None
        if self.text_trainable:
            self._text_cache = None
        return self

    # ----- features and logits -------------------------------------------------------------
    def adapt_image(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def adapt_text(self, features: torch.Tensor) -> torch.Tensor:
        return features

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit-norm image embeddings (after any method adapter)."""
        return self.adapted_image_features(self.clip.encode_image(images, normalize=False))

    def adapted_image_features(self, tower_output: torch.Tensor) -> torch.Tensor:
        """(B, D) image-tower outputs -> (B, D) unit-norm features after any method adapter."""
        return F.normalize(self.adapt_image(tower_output), dim=-1)

    def raw_text_features(self) -> torch.Tensor:
        """(C, D) text-tower outputs for the class prompts, before adapters and normalisation."""
        live = self.text_trainable and self.training and torch.is_grad_enabled()
        if live:
            return self.clip.encode_text(self.class_tokens, normalize=False)
        if self._text_cache is None:
            with torch.inference_mode(False), torch.no_grad():
                self._text_cache = self.clip.encode_text(self.class_tokens, normalize=False)
        return self._text_cache

    def class_features(self) -> torch.Tensor:
        """(C, D) unit-norm class-prompt embeddings (after any method adapter)."""
        return F.normalize(self.adapt_text(self.raw_text_features()), dim=-1)

    @property
    def embed_dim(self) -> int:
        with torch.no_grad():
            return int(self.raw_text_features().shape[-1])

    def logits_from(self, image_features: torch.Tensor, class_features: torch.Tensor) -> torch.Tensor:
        logits = self.clip.logit_scale.exp() * image_features @ class_features.t()
        bias = getattr(self.clip, "logit_bias", None)
        return logits if bias is None else logits + bias

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits_from_tower_output(self.clip.encode_image(images, normalize=False))

    def logits_from_tower_output(self, tower_output: torch.Tensor) -> torch.Tensor:
        """(B, D) image-tower outputs -> (B, C) logits: everything ``forward`` does after the image tower."""
        img, txt = self.adapted_image_features(tower_output), self.class_features()
        if self.training:
            self._last = (img, txt)  # for extra_loss of methods that reuse the features
        return self.logits_from(img, txt)

    def image_tower_is_frozen(self) -> bool:
        """Whether logits depend on the images only through the frozen tower's unit-norm embeddings.

        True where the method declares ``frozen_image_tower`` and no image-tower parameter trains; then
        ``logits_from_tower_output(unit-norm cached embeddings)`` equals ``forward(images)`` up to float
        rounding, so evaluation may start from an embedding cache (see ``core.evaluate``).
        """
        return self.frozen_image_tower and not any(p.requires_grad for p in self.clip.visual.parameters())

    # ----- method hooks --------------------------------------------------------------------
    def train_transform(self, images: torch.Tensor) -> torch.Tensor:
        """Training-time augmentation of a normalised batch (identity unless a method adds one)."""
        return images

    def extra_loss(self, images: torch.Tensor, labels: torch.Tensor,
                   logits: torch.Tensor) -> torch.Tensor | None:
        """A term added to the cross-entropy by the training loop (None: nothing to add)."""
        return None

    #: True where finalize() changes the weights (WiSE-FT's interpolation): the loop then validates again,
    #: so the reported validation score is the returned state's
    finalize_changes_weights = False

    def finalize(self) -> None:
        """Called once by the training loop after training (and best-checkpoint restore)."""
        self.finalized = True

    def method_details(self) -> dict[str, Any]:
        """What a run record keeps about the method: family and trainable/total parameter counts."""
        from core.method_info import family_of_run

        trainable, total = count_parameters(self)
        family = family_of_run(self.method)
        return {"name": self.method, "family": family, "trainable_params": trainable, "total_params": total}

    def merged_clip(self) -> nn.Module:
        """A plain open_clip model with what was trained merged into its weights (a copy).

        Works for methods that only change or re-parametrise the model's own weights (full FT,
        BitFit, attention, LoRA, orthogonal, ...): parametrisations are removed with their current
        value. Methods with parts outside the open_clip model (adapters on the outputs, a new head)
        raise ValueError: they have no open_clip-only form.
        """
        import copy

        from torch.nn.utils import parametrize

        if self.has_external_parts:
            raise ValueError(f"method {self.method!r} keeps trained parts outside the open_clip model; "
                             "it cannot be exported as plain open_clip weights")
        clip = copy.deepcopy(self.clip)
        for owner in list(clip.modules()):
            if parametrize.is_parametrized(owner):
                # by hand, not parametrize.remove_parametrizations: that deletes the property from the
                # generated Parametrized* class, which the copy shares with self.clip
                values = {attr: getattr(owner, attr).detach().clone() for attr in owner.parametrizations}
                owner.__class__ = owner.__class__.__bases__[0]
                del owner.parametrizations
                for attr, value in values.items():
                    owner.register_parameter(attr, nn.Parameter(value, requires_grad=False))
        for p in clip.parameters():
            p.requires_grad_(False)
        return clip

    def named_trainable(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.named_trainable().values())


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) element counts of ``module``'s registered parameters."""
    trainable = total = 0
    for p in module.parameters():
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def save_trained(module: ClassifierModel, path: str | Path) -> Path:
    """Write only the trainable tensors plus method name, config, classes and template (safetensors)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {n: p.detach().cpu().contiguous() for n, p in module.named_trainable().items()}
    meta = {"format": SAVE_FORMAT, "method": module.method, "config": json.dumps(module.config.to_dict()),
            "class_names": json.dumps(module.class_names), "template": module.template,
            "model": module.loaded.spec.key, "finalized": json.dumps(module.finalized)}
    save_file(tensors, str(path), metadata=meta)
    log.info("saved %d trainable tensors of %s to %s", len(tensors), module.method, path)
    return path


def load_trained(loaded: LoadedModel, path: str | Path, *, copy_model: bool = True) -> ClassifierModel:
    """Rebuild the method on ``loaded`` (the same base model) and load the saved tensors into it."""
    from safetensors import SafetensorError, safe_open

    from core.methods import build_method

    if Path(path).is_dir():  # safetensors said only 'No such device (os error 19)'
        raise ValueError(f"{path} is a folder; give the .safetensors file save_trained wrote")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:  # 'header too small', 'invalid JSON in header': names no file
        raise ValueError(f"{path} is not a trained-method file: it cannot be read as safetensors ({exc})") from exc
    if meta.get("format") != SAVE_FORMAT:
        raise ValueError(f"{path} is not a trained-method file (format {meta.get('format')!r})")
    if meta["model"] != loaded.spec.key:
        log.warning("%s was trained on %s but is loaded onto %s", path, meta["model"], loaded.spec.key)
    module = build_method(meta["method"], loaded, json.loads(meta["class_names"]), meta["template"],
                          json.loads(meta["config"]), copy_model=copy_model)
    expected = module.named_trainable()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path} does not match method {meta['method']}: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for name, tensor in tensors.items():  # copy_ broadcasts: a 1-element tensor would fill the whole parameter
        if tensor.shape != expected[name].shape:
            raise ValueError(f"{name} has shape {tuple(tensor.shape)} in {path}, the method's parameter "
                             f"{tuple(expected[name].shape)}: the file was not saved from this method and model")
    with torch.no_grad():
        for name, tensor in tensors.items():
            expected[name].copy_(tensor)
    module.finalized = json.loads(meta["finalized"])
    module.clear_cache()
    return module.eval()
