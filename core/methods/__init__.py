"""Fine-tuning methods: an explicit registry, name -> (config dataclass, build function).

Typical use::

    from core.methods import build_method
    module = build_method("lora", loaded, data.class_names, data.template, {"rank": 8})
    result = core.train.train(module, data, recipe)       # calls module.finalize() at the end
    scores = core.evaluate.evaluate_run(module, test, ood_sets)

To add a method: write one module with a config dataclass (validated in ``__post_init__``), a
``build(loaded, class_names, template, config) -> ClassifierModel`` and an ``ENTRY``; list it below.
To add a peft method, no code: a table in ``peft_catalogue.toml`` (a registry entry), or in a grid
``[method.peft] peft = { type = "...", ... }`` (see ``core.methods.peft_method``).

``core.method_info.method_info(name)`` (re-exported here) describes a method for display (family,
summary, paper, trainable count on ViT-B/32, peft type and config); that module imports no torch.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from core.methods import (attention, bitfit, clip_adapter, clip_cite, full_ft, linear_probe, lora,
                          orthogonal, peft_method, wise_ft, zero_shot)
from core.method_info import FAMILIES, MethodInfo, method_info
from core.methods.base import (ClassifierModel, MethodConfig, MethodEntry, count_parameters, load_trained,
                               save_trained)

if TYPE_CHECKING:
    from core.models import LoadedModel

log = logging.getLogger(__name__)

METHODS: dict[str, MethodEntry] = {entry.name: entry for entry in (
    zero_shot.ENTRY, full_ft.ENTRY, bitfit.ENTRY, attention.ENTRY, lora.ENTRY, clip_adapter.ENTRY,
    linear_probe.ENTRY, orthogonal.ENTRY, clip_cite.ENTRY, wise_ft.ENTRY,
    *peft_method.catalogue_entries(),
)}

__all__ = ["METHODS", "FAMILIES", "MethodEntry", "MethodConfig", "ClassifierModel", "MethodInfo", "get_method",
           "build_method", "method_info", "count_parameters", "save_trained", "load_trained"]


def get_method(name: str) -> MethodEntry:
    """The registry entry for ``name``; ValueError listing the known names otherwise."""
    if name not in METHODS:
        raise ValueError(f"unknown fine-tuning method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def build_method(name: str, loaded: LoadedModel, data_classes: Sequence[str], template: str,
                 config_overrides: Mapping[str, Any] | None = None, *,
                 copy_model: bool = True) -> ClassifierModel:
    """Build method ``name`` on ``loaded`` (a core.models.LoadedModel) for the given classes.

    ``config_overrides`` replace config defaults (unknown key -> ValueError naming it). With
    ``copy_model`` (default) the method works on a deep copy, so ``loaded`` stays the zero-shot
    model and can be reused for the next method; pass False to modify ``loaded.model`` in place.
    The result is in eval mode.
    """
    entry = get_method(name)
    config = entry.config_cls.from_overrides(config_overrides)
    if copy_model:
        loaded = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    module = entry.build(loaded, list(data_classes), template, config)
    module.clear_cache()
    trainable, total = count_parameters(module)
    log.info("built %s on %s: %d of %d parameters trainable", name, loaded.spec.key, trainable, total)
    return module.eval()
