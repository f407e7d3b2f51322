"""The method registry and each method's configuration: unknown names and settings, values and types checked
(from overrides and when built directly), the towers option, and settings a model cannot take refused by name
(a reduction wider than the features, a LoRA rank above the weight's, a block without q/k/v)."""
from __future__ import annotations

import copy
import dataclasses

import pytest
from torch import nn

from core.methods import METHODS, build_method, count_parameters, get_method
from tests.methods_helpers import CLASSES, OURS, TEMPLATE


def test_registry_errors_and_entries(loaded):
    with pytest.raises(ValueError, match="known methods: zero_shot, full_ft"):
        get_method("prompt_tuning")
    with pytest.raises(ValueError, match="'rnk'"):
        build_method("lora", loaded, CLASSES, TEMPLATE, {"rnk": 8})
    for name in OURS:
        entry = METHODS[name]
        assert entry.name == name and entry.description and entry.config_cls().to_dict() is not None


def test_a_misspelt_method_or_config_key_is_told_the_closest_name_and_overrides_must_be_a_table():
    # the errors listed every known name but not the one meant; "rank=8" failed inside dict() ('dictionary update
    # sequence element #0 has length 1'), a list for the method name with 'unhashable type'
    from core.methods.lora import LoRAConfig

    for typed, meant in (("lroa", "lora"), ("LoRA", "lora"), ("wiseft", "wise_ft")):
        with pytest.raises(ValueError, match=rf"unknown fine-tuning method '{typed}' \(did you mean '{meant}'\?\); "
                                             "known methods: zero_shot"):
            get_method(typed)
    with pytest.raises(ValueError, match=r"unknown fine-tuning method \['lora'\]"):
        get_method(["lora"])
    with pytest.raises(ValueError, match=r"unknown config key 'rnk' \(did you mean 'rank'\?\) for LoRAConfig; known "
                                         "keys: rank, scale"):
        LoRAConfig.from_overrides({"rnk": 8})
    with pytest.raises(ValueError, match=r"unknown config key 'zzz' for LoRAConfig; known keys"):
        LoRAConfig.from_overrides({"zzz": 8})  # nothing close: no guess
    with pytest.raises(ValueError, match=r"LoRAConfig overrides must be a mapping of config keys to values .*, got "
                                         r"'rank=8'"):
        LoRAConfig.from_overrides("rank=8")


def test_class_names_given_as_one_string_are_refused_not_read_as_letters(loaded):
    # build_method("lora", loaded, "cat dog", ...) built a classifier of 7 classes, 'c', 'a', 't', ' ', ...
    with pytest.raises(ValueError, match="class_names must be a list of names, got one string 'cat dog'"):
        build_method("bitfit", loaded, "cat dog", TEMPLATE)
    module = build_method("zero_shot", loaded, CLASSES, TEMPLATE)
    with pytest.raises(ValueError, match="class_names must be a list of names, got one string 'cat'"):
        module.set_classes("cat", TEMPLATE)


def test_a_model_name_or_a_bare_open_clip_model_for_loaded_is_told_to_load_it(loaded):
    # build_method("lora", "worldclip-tiny", ...) failed with "'str' object has no attribute 'model'"
    with pytest.raises(ValueError, match=r"loaded must be a core\.models\.LoadedModel \(core\.models\.load_model\(name\) "
                                         r"gives one\), got str 'worldclip-tiny'$"):
        build_method("bitfit", "worldclip-tiny", CLASSES, TEMPLATE)
    with pytest.raises(ValueError, match=rf"got {type(loaded.model).__name__}$"):
        build_method("bitfit", loaded.model, CLASSES, TEMPLATE)


def test_an_orthogonal_block_size_that_fits_no_weight_is_told_the_sizes_that_fit(loaded):
    # was 'block_size 3 does not divide the input width 128', with no size that would
    with pytest.raises(ValueError, match=r"block_size 3 does not divide the input width of every rotated weight "
                                         r"\(widths 128\); use one that divides them all \(2, 4, 8, 16, 32, 64, 128\) "
                                         r"or 0 for one full rotation"):
        build_method("orthogonal", loaded, CLASSES, TEMPLATE, {"block_size": 3})


@pytest.mark.parametrize("name, overrides, match", [
    ("lora", {"rank": 0}, "rank"), ("lora", {"parts": "qx"}, "parts"), ("lora", {"scale": -1.0}, "scale"),
    ("bitfit", {"towers": "audio"}, "towers"), ("clip_adapter", {"ratio": 1.5}, "ratio"),
    ("clip_adapter", {"reduction": 0}, "reduction"), ("orthogonal", {"cutout_fraction": 0.0}, "cutout_fraction"),
    ("orthogonal", {"cr_weight": -1.0}, "cr_weight"), ("wise_ft", {"alpha": 2.0}, "alpha"),
    ("clip_cite", {"kd_temperature": 0.0}, "kd_temperature"), ("clip_cite", {"alpha": -0.1}, "alpha"),
    ("lora", {"scale": float("inf")}, "scale must be a finite number"),  # TOML's inf: was "lower the lr" at step 1
    ("orthogonal", {"cr_weight": float("inf")}, "cr_weight must be a finite number"),
    ("clip_cite", {"kd_temperature": float("inf")}, "kd_temperature must be a finite number"),
])
def test_config_validation(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        get_method(name).config_cls.from_overrides(overrides)


def test_clip_adapter_refuses_a_reduction_wider_than_the_features(loaded):
    with pytest.raises(ValueError, match="reduction 1000 leaves no hidden unit for the model's 128-wide features"):
        build_method("clip_adapter", loaded, CLASSES, TEMPLATE, {"reduction": 1000})  # was: silently 1 wide


def test_towers_option_restricts_to_one_tower(loaded):
    image_only = build_method("bitfit", loaded, CLASSES, TEMPLATE, {"towers": "image"})
    assert image_only.named_trainable() and all(n.startswith("clip.visual.") for n in image_only.named_trainable())
    text_only = build_method("lora", loaded, CLASSES, TEMPLATE, {"towers": "text"})
    assert text_only.named_trainable() and not any("visual" in n for n in text_only.named_trainable())
    assert text_only.text_trainable and not image_only.text_trainable


def test_attention_methods_explain_a_block_without_qkv(loaded):
    broken = dataclasses.replace(loaded, model=copy.deepcopy(loaded.model))
    broken.model.visual.transformer.resblocks[0].attn = nn.Identity()
    for name in ("attention", "lora", "orthogonal"):
        with pytest.raises(ValueError, match="q/k/v projection"):
            build_method(name, broken, CLASSES, TEMPLATE)
    assert build_method("bitfit", broken, CLASSES, TEMPLATE).named_trainable()


def test_lora_refuses_a_rank_larger_than_the_weight(loaded):
    """The tiny model's q/k/v parts are 128 x 128: rank 129 was accepted (and rank 1000 built 3.6 M
    'low-rank' parameters, more than the weights it adapts)."""
    with pytest.raises(ValueError, match=r"LoRA rank 129 .*in_proj_weight.*use rank <= 128"):
        build_method("lora", loaded, CLASSES, TEMPLATE, {"rank": 129})
    assert count_parameters(build_method("lora", loaded, CLASSES, TEMPLATE, {"rank": 128, "towers": "text"}))[0] > 0


@pytest.mark.parametrize("name, field, value", [
    ("lora", "rank", True), ("orthogonal", "block_size", True), ("clip_adapter", "reduction", True),
    ("orthogonal", "cr_weight", "1"), ("wise_ft", "alpha", "0.5"), ("clip_cite", "kd_weight", float("inf")),
    ("full_ft", "include_logit_scale", "no"), ("linear_probe", "train_bias", 1), ("peft_lora", "init_seed", True),
])
def test_configs_built_directly_check_their_types(name, field, value):
    """Only from_overrides checked types: LoRAConfig(rank=True) built a rank-1 LoRA, OrthogonalConfig(
    cr_weight="1") failed with "'>=' not supported between 'str' and 'int'" (a TypeError)."""
    config_cls = get_method(name).config_cls
    with pytest.raises(ValueError, match=rf"{config_cls.__name__}\.{field} must be"):
        config_cls(**{field: value})
