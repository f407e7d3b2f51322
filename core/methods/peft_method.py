"""One generic fine-tuning method driven by a peft config: any peft tuner on any open_clip model.

The open_clip model is first given separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` Linear
layers (:mod:`core.methods.unpacked`, exact), then ``peft.get_peft_model`` injects the tuner named by
the config. Nothing here knows a particular tuner: the config says which.

Where the peft config comes from, merged in this order (later wins):

1. the registry entry's defaults (``core/methods/peft_catalogue.toml``; empty for the plain ``peft``);
2. ``adapter_config``: a user's ``adapter_config.json`` (or the folder holding it);
3. ``peft``: a table of overrides, e.g. in a grid TOML
   ``[method.peft_dora] peft = { r = 8 }`` or ``[method.peft] peft = { type = "LORA", r = 4, use_dora = true,
   target_modules = ["q_proj", "v_proj"] }``. ``type`` is the PeftType (``peft_type`` works too); a
   type different from the one below starts from scratch instead of merging.

The built :class:`PeftClassifier` keeps the usual guarantees (only adapter tensors train, the
frozen base weights are never written) and adds :meth:`PeftClassifier.save_adapter` (peft's own
``adapter_config.json`` + ``adapter_model.safetensors``, loadable by ``PeftModel.from_pretrained`` on
an unpacked model; :func:`load_adapter` does that) and ``merged_clip`` (merge_and_unload, then packed
back: a plain open_clip model).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import sys
import types
import typing
import warnings
from dataclasses import dataclass, field, make_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import nn

from core.method_info import GENERIC_PEFT, PEFT_FAMILIES, MethodInfo, normalise_peft, peft_catalogue
from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, check_init_seed, init_seed, require
from core.methods.unpacked import pack_attention, unpack_attention
from core.text import closest_name, did_you_mean

if TYPE_CHECKING:
    from core.models import LoadedModel

log = logging.getLogger(__name__)

#: The family of a peft type when neither the catalogue nor the config names one.
TYPE_FAMILY = {"IA3": "additive", "LN_TUNING": "selective", "TRAINABLE_TOKENS": "selective",
               "PROMPT_TUNING": "additive", "PREFIX_TUNING": "additive", "P_TUNING": "additive"}
ADAPTER_NAME = "default"


def _read_adapter_config(path: str) -> dict[str, Any]:
    file = Path(path)
    if file.is_dir():
        if not (file / "adapter_config.json").is_file():  # was 'no such file', as if the folder were missing
            held = sorted(p.name for p in file.iterdir() if not p.name.startswith("."))
            raise ValueError(f"adapter_config {path!r} is a folder without adapter_config.json (it holds "
                             f"{', '.join(held[:5]) + (' …' if len(held) > 5 else '') if held else 'nothing'}); "
                             "give the folder peft's save_pretrained wrote, or the JSON file itself")
        file = file / "adapter_config.json"
    if not file.is_file():
        raise ValueError(f"adapter_config {path!r}: no such file (expected adapter_config.json or its folder)")
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))  # a BOM (Windows Notepad) read past
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"adapter_config {file} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"adapter_config {file} must hold a JSON object")
    return data


def _non_finite(value: Any, where: str = "") -> str | None:
    """``key = value`` of the first NaN or infinite number in a (nested) peft config, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'value'} = {value}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}".lstrip("."))
        if found:
            return found
    return None


def _admits(hint: Any, kind: type) -> bool:
    """Whether the type annotation ``hint`` lets a value of ``kind`` through (unions and literals looked into)."""
    if hint is kind:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_admits(arg, kind) for arg in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return any(isinstance(arg, kind) for arg in typing.get_args(hint))
    return False


def _check_number_types(kind: str, config_cls: type, settings: dict[str, Any]) -> None:
    """ValueError for a bool or a string given to a numeric field of peft's config class: peft does not check,
    and ``lora_dropout = true`` became a dropout of probability 1 (the adapter never sees its input)."""
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception as exc:  # noqa: BLE001 (annotations peft's module cannot resolve): peft checks what it can
        log.warning("peft's %s config annotations could not be read (%s): a bool or a string given to one of its "
                    "numeric settings is not refused", kind, exc)
        return
    for key, value in settings.items():
        hint = hints.get(key)
        if hint is None or not isinstance(value, (bool, str)) or not (_admits(hint, int) or _admits(hint, float)):
            continue
        if not _admits(hint, type(value)):
            raise ValueError(f"peft setting {key} = {value!r} must be a number ({kind} config annotates "
                             f"{key}: {getattr(hint, '__name__', hint)})")


@dataclass
class PeftMethodConfig(MethodConfig):
    """peft: overrides of the peft config (see module docstring); adapter_config: path to a user's
    adapter_config.json or its folder ('' for none); family: overrides the method family ('' = the
    catalogue's or the type's); init_seed seeds the adapter's random initialisation (None: the run
    seed, as for ``lora`` and ``clip_adapter``; see :func:`core.methods.base.init_seed`)."""

    DEFAULTS: ClassVar[dict[str, Any]] = {}
    FAMILY: ClassVar[str] = ""

    peft: dict = field(default_factory=dict)
    adapter_config: str = ""
    family: str = ""
    init_seed: int | None = None  # None: the run seed (torch.initial_seed(), set by the run)

    def __post_init__(self) -> None:
        super().__post_init__()  # field types: a bool is no int, a string no number
        require(isinstance(self.peft, dict), f"peft must be a table of peft config settings, got {self.peft!r}")
        check_init_seed(self.init_seed)
        require(self.family in ("",) + PEFT_FAMILIES, f"family must be one of {PEFT_FAMILIES}, got {self.family!r}"
                                                      f"{did_you_mean(self.family, PEFT_FAMILIES)}")
        bad = _non_finite(self.resolved())
        require(bad is None, f"peft setting {bad} is not a finite number (peft does not check: the adapter "
                             "would give NaN logits, reported as a diverged run)")
        self.peft_config()  # fail now, with peft's message, rather than inside a grid cell

    def resolved(self) -> dict[str, Any]:
        """The merged peft config as a plain dict (``peft_type`` included)."""
        base = normalise_peft(dict(self.DEFAULTS))
        if self.adapter_config:
            base = {**base, **normalise_peft(_read_adapter_config(self.adapter_config))}
        over = normalise_peft(dict(self.peft))
        if "peft_type" in over and over["peft_type"] != base.get("peft_type"):
            base = {}
        merged = {**base, **over}
        if "peft_type" not in merged:
            raise ValueError("the peft config names no type: give peft = { type = \"LORA\", ... } "
                             "or an adapter_config")
        return merged

    def peft_config(self) -> Any:
        """The peft ``PeftConfig`` object; ValueError with peft's message when it is invalid."""
        from peft import get_peft_config
        from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

        settings = self.resolved()
        kind = settings["peft_type"]
        if kind not in PEFT_TYPE_TO_CONFIG_MAPPING:
            types_known = sorted(getattr(k, "value", k) for k in PEFT_TYPE_TO_CONFIG_MAPPING)  # PeftType members
            raise ValueError(f"unknown peft type {kind!r}{did_you_mean(kind, types_known)}; known: "
                             f"{', '.join(types_known)}")
        config_cls = PEFT_TYPE_TO_CONFIG_MAPPING[kind]
        known = [f.name for f in dataclasses.fields(config_cls) if f.init]
        unknown = [key for key in settings if key not in known]
        if unknown:  # was peft's "LoraConfig.__init__() got an unexpected keyword argument 'rr'"
            raise ValueError(f"invalid {kind} config: unknown setting {unknown[0]!r}{did_you_mean(unknown[0], known)}; "
                             f"peft's {config_cls.__name__} has no such field (its fields: {', '.join(sorted(known))})")
        _check_number_types(kind, config_cls, settings)
        try:
            return get_peft_config(settings)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid {kind} config {settings}: {exc}") from exc

    @property
    def method_family(self) -> str:
        return self.family or self.FAMILY or TYPE_FAMILY.get(self.resolved()["peft_type"], "reparameterised")


class PeftClassifier(ClassifierModel):
    """A :class:`ClassifierModel` whose open_clip model carries a peft tuner (``self.peft_model``)."""

    def attach_peft(self, peft_model: nn.Module) -> None:
        # a plain attribute (not a submodule): its parameters are already registered through self.clip
        self.__dict__["peft_model"] = peft_model

    def method_details(self) -> dict[str, Any]:
        details = super().method_details()
        details.update(family=self.config.method_family, peft_type=self.config.resolved()["peft_type"],
                       peft_config=self.config.resolved())
        if getattr(self, "peft_warnings", None):
            details["peft_warnings"] = [message[:500] for message in self.peft_warnings]
        return details

    def save_adapter(self, folder: str | Path) -> Path:
        """peft's own format: ``adapter_config.json`` + ``adapter_model.safetensors`` in ``folder``."""
        folder = Path(folder)
        self.peft_model.save_pretrained(str(folder))
        return folder

    def merged_clip(self) -> nn.Module:
        """A plain open_clip model (packed attention) with the adapter merged into its weights."""
        peft_copy = copy.deepcopy(self.peft_model)
        merged = peft_copy.merge_and_unload()
        pack_attention(merged)
        return merged


def _check_names(model: nn.Module, config_obj) -> None:
    """ValueError naming each entry of a list ``target_modules``/``modules_to_save`` that matches no module.

    peft refuses a list only when *none* of its names matches, so one typo among several ("v_porj" beside
    "q_proj") silently adapts fewer layers. Matching follows peft's: a target is a module's full name or
    its dotted suffix; a module to save is a suffix of a module's name. (A regex string is peft's to check.)
    """
    names = [n for n, _ in model.named_modules() if n]
    rules = {"target_modules": lambda key, name: name == key or name.endswith("." + key),
             "modules_to_save": lambda key, name: name.endswith(key)}
    for setting, matches in rules.items():
        keys = getattr(config_obj, setting, None)
        if not isinstance(keys, (list, set, tuple)):
            continue
        unmatched = sorted(k for k in keys if not any(matches(k, n) for n in names))
        if unmatched:
            leaves = sorted({n.rsplit(".", 1)[-1] for n in names} - {str(i) for i in range(len(names))})
            meant = [f"{close!r} for {k!r}" for k in unmatched if (close := closest_name(k, leaves))]
            raise ValueError(f"peft {setting} {unmatched} match no module of the model; module names end in "
                             f"{', '.join(leaves[:40])}{' ...' if len(leaves) > 40 else ''}"
                             f"{'; did you mean ' + ', '.join(meant) + '?' if meant else ''}")


def _attach(module: PeftClassifier, config_obj) -> PeftClassifier:
    from peft import get_peft_model

    unpack_attention(module.clip)
    _check_names(module.clip, config_obj)
    peft_model = get_peft_model(module.clip, config_obj, adapter_name=ADAPTER_NAME)
    module.attach_peft(peft_model)
    module.clip = peft_model.base_model.model  # the same object, now with tuner layers injected
    return module


def build_peft(name: str, loaded: LoadedModel, class_names: Sequence[str], template: str,
               config: PeftMethodConfig) -> PeftClassifier:
    """Method ``name`` on ``loaded``: attention unpacked, then the peft tuner of ``config`` injected
    (seeded by :func:`core.methods.base.init_seed`: ``config.init_seed``, else the run seed); peft's
    own warnings are logged and kept in ``peft_warnings``."""
    module = PeftClassifier(loaded, class_names, template, method=name, config=config)
    seed = init_seed(config)  # the run seed is read before anything below reseeds the generator
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(seed)  # seeded adapter init without moving the global stream
        _attach(module, config.peft_config())
    for tensor_name, tensor in module.clip.named_parameters():  # CoCa's caption decoder never sees a gradient
        if tensor.requires_grad and tensor_name.startswith("text_decoder."):
            tensor.requires_grad_(False)  # peft's targets also match it: unfrozen, its adapters inflated the count
    # peft may adjust a setting as it attaches ("Adjusted oft_block_size to (8)"): the record must say so,
    # since its peft_config is the requested one
    import peft

    package = str(Path(peft.__file__).resolve().parent)
    ours = [w for w in caught if str(Path(w.filename).resolve()).startswith(package)]  # peft's own, no others
    for w in caught:
        if w not in ours:  # everything else goes out as it would have
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno,
                                   module=_module_named(w.filename))  # the filters' module name
    module.peft_warnings = list(dict.fromkeys(str(w.message).strip() for w in ours))[:10]
    for message in module.peft_warnings:
        log.warning("%s: peft: %s", name, message)
    for tower in untouched_towers(module.clip):
        message = (f"the peft config adapts nothing in the {tower} tower: its target names match no module there "
                   f"(timm towers, e.g. SigLIP's image tower, name their layers qkv/fc1/norm1, not q_proj/c_fc/ln_1)")
        module.peft_warnings.append(message)
        log.warning("%s: %s", name, message)
    return module


def _module_named(filename: str) -> str | None:
    """The name of the loaded module whose file is ``filename`` (None when none is): given no module,
    ``warnings.warn_explicit`` names a warning's module by its file's path ('/…/core/methods/x'), which no filter
    for a module name (the test settings' error on a deprecation of our call, pyproject.toml) matches."""
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            return name
    return None


def untouched_towers(model: nn.Module) -> list[str]:
    """The towers ('image', 'text') that hold transformer blocks but no trainable tensor: peft target names
    that match only one tower's modules leave the other one as it was, which no error from peft reports."""
    from core.methods.targets import block_lists, tower_of

    with_blocks = {tower_of(name) for name, _ in block_lists(model)}
    trained = {tower_of(n) for n, p in model.named_parameters() if p.requires_grad}
    return [tower for tower in ("image", "text") if tower in with_blocks and tower not in trained]


def load_adapter(loaded: LoadedModel, folder: str | Path, class_names: Sequence[str], template: str, *,
                 method: str = "peft", copy_model: bool = True) -> PeftClassifier:
    """A classifier on ``loaded`` with the adapter saved in ``folder`` (peft format) loaded by
    ``PeftModel.from_pretrained``; the adapter is frozen (inference)."""
    import dataclasses

    from peft import PeftModel

    config = PeftMethodConfig(adapter_config=str(folder))
    if copy_model:
        loaded = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    module = PeftClassifier(loaded, class_names, template, method=method, config=config)
    unpack_attention(module.clip)
    peft_model = PeftModel.from_pretrained(module.clip, str(folder), adapter_name=ADAPTER_NAME)
    module.attach_peft(peft_model)
    module.clip = peft_model.base_model.model
    module.clear_cache()
    return module.eval()


def entry_for(info: MethodInfo) -> MethodEntry:
    """The registry entry of a catalogue method: a config class whose defaults are its peft config."""
    name = info.name
    config_cls = make_dataclass(f"PeftConfig_{name}", [], bases=(PeftMethodConfig,),
                                namespace={"DEFAULTS": dict(info.peft_config), "FAMILY": info.family,
                                           "__module__": __name__})

    def build(loaded, class_names, template, config):
        return build_peft(name, loaded, class_names, template, config)

    return MethodEntry(name, config_cls, build, info.summary or f"peft {info.peft_type}")


def _build_generic(loaded, class_names, template, config):
    return build_peft(GENERIC_PEFT, loaded, class_names, template, config)


def catalogue_entries() -> list[MethodEntry]:
    """Registry entries: one per table of ``peft_catalogue.toml``, then the plain ``peft`` (no defaults)."""
    return [*(entry_for(info) for info in peft_catalogue().values()),
            MethodEntry(GENERIC_PEFT, PeftMethodConfig, _build_generic,
                        "any peft tuner, configured by peft = {...} and/or adapter_config", needs_config=True)]
