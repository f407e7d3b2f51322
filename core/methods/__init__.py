"""Fine-tuning methods: an explicit registry, name -> (config dataclass, build function).

Typical use::

    from core.methods import build_method
    module = build_method("lora", loaded, data.class_names, data.template, {"rank": 8})
    result = core.train.train(module, data, recipe)       # calls module.finalize() at the end
    scores = core.evaluate.evaluate_run(module, test, ood_sets)

To add a method (``core/methods/bitfit.py`` is a short example to copy):

1. One module with a config dataclass subclassing ``MethodConfig``, every field with a default (the
   grid's ``[method.NAME]`` table overrides them by name; ``"NAME.field"`` sweeps them). Its
   ``__post_init__`` calls ``super().__post_init__()`` first (field types: a bool is no int) and then
   checks ranges with ``core.methods.base.require`` (ValueError), so a bad setting fails the grid's
   preflight before any cell runs.
2. ``build(loaded, class_names, template, config) -> ClassifierModel``: ``loaded`` is a
   ``core.models.LoadedModel`` whose model is already a copy (``build_method``'s default; edit it
   freely), ``class_names`` a list of str, ``template`` a prompt with ``{c}``, ``config`` your validated
   dataclass. Return a
   ``ClassifierModel`` (or a subclass, for hooks such as ``adapt_image``, ``extra_loss``,
   ``train_transform``, ``finalize``) made with ``method=NAME, config=config``: every open_clip
   parameter starts frozen; set ``requires_grad`` on exactly what trains, and put new tensors on the
   model's device. Its docstring and class attributes say when to set ``frozen_image_tower``, ``has_external_parts`` or
   override ``text_trainable``. ``build_method`` puts the result in eval mode; ``core.train.train``
   trains ``named_trainable()`` and ``core.evaluate.evaluate_run`` scores it.
3. ``ENTRY = MethodEntry(NAME, Config, build, description)`` (``trains=False`` for a method that is only
   evaluated, ``zero_shot_init=False`` where the built model's logits differ from zero-shot's), listed in
   :data:`METHODS` below among ours, before the peft catalogue. List it there: a grid's workers are
   new processes that import this module, so an entry added at run time (``METHODS[NAME] = ...`` in a
   script) is not seen by ``--workers 2`` or SLURM cells. Names starting with ``peft`` are the catalogue's.
4. A ``MethodInfo`` in ``core.method_info.OURS`` (family, one of ``FAMILIES``; summary; paper; ViT-B/32
   trainable count or None), in the same order. Without it records store the family ``''`` and
   ``tests/methods_helpers.py`` stops at import naming the method.
5. A ``MethodCard`` in ``core.cards.METHOD_CARDS`` (title, what trains, defaults equal to the config's,
   citation). The app works without one (a generic card titled from the name, e.g. 'LN only'); colours
   need nothing: ``core.charts.method_colours`` gives a method not in ``core.charts.METHOD_COLOUR_ORDER``
   one of the places the methods listed there leave, in name order (so its colour can differ between
   charts that draw other methods; listed there, it keeps one place on every chart).
6. The tests every registered method runs: ``tests/test_methods_behaviour.py`` (add its trainable-name
   pattern and count to ``EXPECTED``: only those train, frozen weights stay bit-identical, a save/load
   round trip, the initial logits equal zero-shot's where ``zero_shot_init``), ``test_methods_families``
   (it builds on SigLIP, CoCa and EVA-02 towers and leaves CoCa's attentional pooler alone unless it is a
   full-model method), ``test_method_devices``, ``test_peft_adapters`` (its ``MethodInfo``),
   ``test_ranking_cards`` (its card's defaults) and ``test_bench_methods``.

Records of a method this registry does not list (a colleague's, ingested) still load, rank, forecast
and show on every page, with a generic card; only the jobs that run its cells (``jobs.grid``,
``jobs.reproduce``) need it.
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
from core.text import did_you_mean
from core.data.base import check_not_one_string
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
    if not isinstance(name, str) or name not in METHODS:  # a list was 'unhashable type'
        raise ValueError(f"unknown fine-tuning method {name!r}{did_you_mean(name, METHODS)}; "
                         f"known methods: {', '.join(METHODS)}")
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
    if not all(hasattr(loaded, attr) for attr in ("model", "tokenizer", "spec")):  # failed on "has no attribute 'model'"
        shown = f" {loaded!r}" if isinstance(loaded, str) else ""
        raise ValueError(f"loaded must be a core.models.LoadedModel (core.models.load_model(name) gives one), got "
                         f"{type(loaded).__name__}{shown}")
    check_not_one_string(data_classes)
    config = entry.config_cls.from_overrides(config_overrides)
    if copy_model:
        loaded = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    module = entry.build(loaded, list(data_classes), template, config)
    module.clear_cache()
    trainable, total = count_parameters(module)
    log.info("built %s on %s: %d of %d parameters trainable", name, loaded.spec.key, trainable, total)
    return module.eval()
