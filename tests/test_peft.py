"""Unpacked attention (exact, reversible) and the generic peft method: every catalogue entry keeps the
guarantees of our own methods, merges back into plain open_clip weights and saves in peft's format."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.data.base import LabeledImages
from core.experiment import cell_id
from core.grid_config import parse_grid
from core.imaging import images_to_tensor
from core.method_info import all_method_info, family_of_run
from core.methods import (FAMILIES, METHODS, build_method, count_parameters, get_method, load_trained,
                          method_info, save_trained)
from core.methods.peft_method import load_adapter
from core.methods.unpacked import UnpackedAttention, pack_attention, unpack_attention
from core.models import load_model
from core.train import TrainRecipe, train

CLASSES = ["cat", "dog", "car", "tree"]
TEMPLATE = "a photo of a {c}"
PEFT = [name for name in METHODS if name.startswith("peft_")]
ADAPTER = ".default"  # peft's adapter name appears in every adapter tensor's name


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (48, 32, 32, 3), dtype=np.uint8), rng.integers(0, 4, 48),
                         CLASSES, TEMPLATE, "synthetic")


@pytest.fixture(scope="module")
def batch(loaded, data):
    return images_to_tensor(data.images, np.arange(8), loaded)


def logits(module, x):
    module.eval()
    with torch.no_grad():
        return module(x)


def clip_logits(clip, loaded, x):
    """Logits of a bare open_clip model over the class prompts (no ClassifierModel involved)."""
    with torch.no_grad():
        text = clip.encode_text(loaded.tokenizer([TEMPLATE.format(c=c) for c in CLASSES]), normalize=True)
        return clip.logit_scale.exp() * clip.encode_image(x, normalize=True) @ text.t()


def perturb(module, seed=0, size=0.1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.trainable_parameters():
            p.add_(size * torch.randn(p.shape, generator=gen))


def base_state(clip):
    """The frozen base tensors of a peft-adapted model, under the unpacked model's names."""
    return {n.replace(".base_layer", ""): t for n, t in clip.state_dict().items() if ADAPTER not in n}


# ----- unpacked attention -------------------------------------------------------------------------
def test_unpacked_model_equals_packed_and_packs_back_bit_identical(loaded, batch):
    import open_clip

    packed = loaded.model.eval()
    unpacked = copy.deepcopy(packed)
    assert unpack_attention(unpacked) == 4 + 3
    assert not any(isinstance(m, nn.MultiheadAttention) for m in unpacked.modules())
    tokens = loaded.tokenizer(["a photo of a cat", "x", "a long caption about a red square on grass"])
    with torch.no_grad():
        assert (packed.encode_text(tokens) - unpacked.encode_text(tokens)).abs().max() <= 1e-5
        assert (packed.encode_image(batch) - unpacked.encode_image(batch)).abs().max() <= 1e-5
    assert (clip_logits(packed, loaded, batch) - clip_logits(unpacked, loaded, batch)).abs().max() <= 1e-5
    assert pack_attention(unpacked) == 7
    plain = open_clip.create_model("worldclip-tiny", pretrained=None)
    plain.load_state_dict(unpacked.state_dict())  # strict: the plain open_clip layout again
    reference = packed.state_dict()
    assert all(torch.equal(t, reference[n]) for n, t in plain.state_dict().items())


@pytest.mark.parametrize("batch_first, kdim, masks", [(True, None, "float"), (False, None, "bool+padding"),
                                                      (True, 24, "padding"), (False, 24, "none")])
def test_unpacked_attention_matches_multihead_attention(batch_first, kdim, masks):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(16, 4, kdim=kdim, vdim=kdim, batch_first=batch_first).eval()
    with torch.no_grad():
        mha.out_proj.bias.normal_()
        mha.in_proj_bias.normal_()
    ours = UnpackedAttention.from_packed(mha)
    n, tgt, src = 3, 5, 7
    q = torch.randn(n, tgt, 16)
    kv = torch.randn(n, src, kdim or 16)
    if not batch_first:
        q, kv = q.transpose(0, 1), kv.transpose(0, 1)
    kw = {}
    if "float" in masks:
        kw["attn_mask"] = torch.randn(tgt, src)
    if "bool" in masks:
        kw["attn_mask"] = torch.rand(tgt, src) > 0.7
        kw["attn_mask"][:, 0] = False  # keep one key per query
    if "padding" in masks:
        kw["key_padding_mask"] = torch.zeros(n, src, dtype=torch.bool)
        kw["key_padding_mask"][1, -2:] = True
    for need_weights in (False, True):
        out_ref, w_ref = mha(q, kv, kv, need_weights=need_weights, **kw)
        out, w = ours(q, kv, kv, need_weights=need_weights, **kw)
        torch.testing.assert_close(out, out_ref, atol=1e-5, rtol=1e-5)
        if need_weights:
            torch.testing.assert_close(w, w_ref, atol=1e-5, rtol=1e-5)
    back = ours.to_packed()
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), mha.state_dict().values()))


def test_unpacking_refuses_what_it_cannot_represent():
    with pytest.raises(ValueError, match="add_bias_kv"):
        UnpackedAttention.from_packed(nn.MultiheadAttention(8, 2, add_bias_kv=True))
    with pytest.raises(ValueError, match="divisible"):
        UnpackedAttention(10, 4)
    wrapped = UnpackedAttention(8, 2)
    wrapped.q_proj = nn.Sequential(nn.Linear(8, 8))
    with pytest.raises(ValueError, match="merge"):
        wrapped.to_packed()


# ----- every peft catalogue entry -----------------------------------------------------------------
def test_the_catalogue_ships_at_least_eight_peft_methods_with_families():
    assert len(PEFT) >= 8
    kinds = {method_info(n).peft_type for n in PEFT}
    assert {"LORA", "OFT", "BOFT", "IA3", "VERA"} <= kinds and kinds & {"LOHA", "LOKR"}
    assert method_info("peft_dora").peft_config["use_dora"] is True
    for name in METHODS:
        info = method_info(name)
        assert info.family in FAMILIES or name == "peft", name
        assert info.source == ("peft" if name.startswith("peft") else "ours")
    with pytest.raises(ValueError, match="unknown fine-tuning method"):
        method_info("no-such-method")
    assert [i.name for i in all_method_info()] == list(METHODS)  # one info per registry entry, same order


def test_method_info_is_torch_free_and_reads_a_runs_family():
    import subprocess
    import sys

    code = "import sys, core.method_info as m; m.all_method_info(); print('torch' in sys.modules)"
    root = Path(__file__).resolve().parent.parent
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=root).stdout.strip() == "False"
    recorded = {"method": {"family": "hybrid", "trainable_params": 3}}
    assert family_of_run("peft", recorded) == "hybrid" and family_of_run("peft", json.dumps(recorded)) == "hybrid"
    assert family_of_run("peft_ia3", None) == "additive" and family_of_run("bitfit", "not json") == "selective"
    assert family_of_run("somebody-elses-method", {}) == ""


@pytest.mark.parametrize("name", PEFT)
def test_peft_method_starts_at_zero_shot_and_trains_only_its_adapter(name, loaded, batch):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    trainable = module.named_trainable()
    assert trainable and all(ADAPTER in n for n in trainable), sorted(trainable)[:3]
    assert not any(p.requires_grad for n, p in module.named_parameters() if ADAPTER not in n)
    zero_shot = logits(build_method("zero_shot", loaded, CLASSES, TEMPLATE), batch)
    assert (logits(module, batch) - zero_shot).abs().max() <= 1e-5
    perturb(module)
    assert (logits(module, batch) - zero_shot).abs().max() > 1e-3
    details = module.method_details()
    assert details["family"] == method_info(name).family and details["trainable_params"] == count_parameters(module)[0]
    assert details["peft_type"] == method_info(name).peft_type


@pytest.mark.parametrize("name", PEFT)
def test_peft_training_leaves_every_base_weight_bit_identical(name, loaded, data):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    before = {n: p.detach().clone() for n, p in module.named_trainable().items()}
    train(module, data, TrainRecipe(optimizer="adamw", lr=1e-2, batch_size=16, max_steps=2, val_fraction=0.0,
                                    best_checkpoint=False))
    assert any(not torch.equal(p, before[n]) for n, p in module.named_trainable().items())
    reference = copy.deepcopy(loaded.model)
    unpack_attention(reference)
    expected = reference.state_dict()
    frozen = base_state(module.clip)
    assert set(expected) <= set(frozen)
    assert all(torch.equal(frozen[n], t) for n, t in expected.items())


@pytest.mark.parametrize("name", PEFT)
def test_merged_peft_model_is_a_plain_open_clip_model_with_the_adapted_logits(name, loaded, batch):
    import open_clip

    module = build_method(name, loaded, CLASSES, TEMPLATE)
    perturb(module, size=0.05)
    adapted = logits(module, batch)
    plain = open_clip.create_model("worldclip-tiny", pretrained=None).eval()
    plain.load_state_dict(module.merged_clip().state_dict())
    assert (clip_logits(plain, loaded, batch) - adapted).abs().max() <= 1e-5
    assert ADAPTER in next(iter(module.named_trainable()))  # merging worked on a copy


@pytest.mark.parametrize("name", PEFT)
def test_peft_adapter_saves_in_peft_format_and_loads_back(name, loaded, batch, tmp_path):
    from peft import PeftModel

    module = build_method(name, loaded, CLASSES, TEMPLATE)
    perturb(module)
    expected = logits(module, batch)
    folder = module.save_adapter(tmp_path / name)
    assert {p.name for p in folder.iterdir()} >= {"adapter_config.json", "adapter_model.safetensors"}
    assert json.loads((folder / "adapter_config.json").read_text())["peft_type"] == method_info(name).peft_type
    restored = load_adapter(loaded, folder, CLASSES, TEMPLATE)
    assert isinstance(restored.peft_model, PeftModel)
    torch.testing.assert_close(logits(restored, batch), expected, atol=1e-6, rtol=0)
    ours = load_trained(loaded, save_trained(module, tmp_path / f"{name}.safetensors"))  # our format too
    torch.testing.assert_close(logits(ours, batch), expected, atol=0, rtol=0)


# ----- configuration ------------------------------------------------------------------------------
def test_peft_lora_equals_our_lora_in_count_and_function(loaded, batch):
    ours = build_method("lora", loaded, CLASSES, TEMPLATE)
    theirs = build_method("peft_lora", loaded, CLASSES, TEMPLATE)
    assert count_parameters(ours)[0] == count_parameters(theirs)[0] == 7 * 2 * 4 * (128 + 128)
    perturb(ours)
    mine = ours.named_trainable()
    with torch.no_grad():  # copy our A/B into peft's layers: same update, same logits
        for name, p in theirs.named_trainable().items():
            m = re.search(r"clip\.(.*)\.attn\.([qv])_proj\.lora_([AB])\.default\.weight", name)
            p.copy_(mine[f"clip.{m[1]}.attn.parametrizations.in_proj_weight.0.lora_{m[3]}.{m[2]}"])
    assert (logits(theirs, batch) - logits(ours, batch)).abs().max() <= 1e-5


def test_our_lora_exports_to_plain_open_clip_weights(loaded, batch):
    import open_clip

    module = build_method("lora", loaded, CLASSES, TEMPLATE)
    perturb(module)
    plain = open_clip.create_model("worldclip-tiny", pretrained=None).eval()
    plain.load_state_dict(module.merged_clip().state_dict())
    assert (clip_logits(plain, loaded, batch) - logits(module, batch)).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="outside the open_clip model"):
        build_method("clip_adapter", loaded, CLASSES, TEMPLATE).merged_clip()


def test_peft_config_merges_overrides_files_and_types(loaded, tmp_path):
    dora = get_method("peft_dora").config_cls
    assert dora.from_overrides({"peft": {"r": 8}}).resolved()["r"] == 8
    assert dora.from_overrides({"peft": {"r": 8}}).resolved()["use_dora"] is True
    assert "use_dora" not in dora.from_overrides({"peft": {"type": "ia3", "target_modules": ["k_proj"],
                                                           "feedforward_modules": []}}).resolved()
    generic = get_method("peft").config_cls
    cfg = {"type": "LOHA", "r": 2, "alpha": 2, "target_modules": ["q_proj"]}
    module = build_method("peft", loaded, CLASSES, TEMPLATE, {"peft": cfg, "family": "hybrid"})
    assert count_parameters(module)[0] == 7 * 2 * 2 * (128 + 128) and module.method_details()["family"] == "hybrid"
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2,
                                                              "target_modules": ["v_proj"], "task_type": None}))
    from_file = build_method("peft", loaded, CLASSES, TEMPLATE, {"adapter_config": str(tmp_path)})
    assert count_parameters(from_file)[0] == 7 * 2 * (128 + 128)
    for overrides, match in [({}, "names no type"), ({"peft": {"type": "NOPE"}}, "unknown peft type"),
                             ({"peft": {"type": "LORA", "rank": 4}}, "invalid LORA config"),
                             ({"peft": {"type": "LORA"}, "family": "magic"}, "family"),
                             ({"adapter_config": str(tmp_path / "missing")}, "no such file"),
                             ({"peft": "LORA"}, "table")]:
        with pytest.raises(ValueError, match=match):
            generic.from_overrides(overrides)


def test_a_setting_peft_adjusts_while_attaching_is_in_the_record(loaded):
    module = build_method("peft_oft", loaded, CLASSES, TEMPLATE, {"peft": {"oft_block_size": 7}})
    details = module.method_details()
    assert details["peft_config"]["oft_block_size"] == 7  # what was asked for
    assert any("oft_block_size" in w and "8" in w for w in details["peft_warnings"])  # what ran
    assert "peft_warnings" not in build_method("peft_lora", loaded, CLASSES, TEMPLATE).method_details()


def test_other_warnings_while_attaching_are_not_taken_for_peft_adjustments(loaded, monkeypatch):
    import warnings

    from core.methods import peft_method

    real = peft_method._attach

    def noisy(*args, **kwargs):
        warnings.warn("a deprecation elsewhere", DeprecationWarning)
        return real(*args, **kwargs)

    monkeypatch.setattr(peft_method, "_attach", noisy)
    with pytest.warns(DeprecationWarning, match="a deprecation elsewhere"):  # still raised, as before
        module = build_method("peft_lora", loaded, CLASSES, TEMPLATE)
    assert "peft_warnings" not in module.method_details()


def test_a_grid_names_peft_methods_by_configuration_only():
    import jobs.grid as grid_job

    data = {"models": ["worldclip-tiny"], "datasets": ["shape-size"], "methods": ["peft_dora", "peft"],
            "method": {"peft_dora": {"peft": {"r": 8}, "train": {"lr": 1e-3}},
                       "peft": {"peft": {"type": "LORA", "r": 4, "use_dora": True,
                                         "target_modules": ["q_proj", "v_proj"]}}}}
    grid = parse_grid(data, **grid_job._known())
    assert [c["method_config"]["peft"]["r"] for c in grid.cells] == [8, 4]
    grid_job.preflight(grid)
    swept = parse_grid({**data, "methods": ["peft_lora"], "method": {}, "sweep": {"peft_lora.peft": [{"r": 2}, {"r": 6}]}},
                       **grid_job._known())
    ranks = [get_method("peft_lora").config_cls.from_overrides(c["method_config"]).resolved()["r"] for c in swept.cells]
    assert ranks == [2, 6] and len({cell_id(c) for c in swept.cells}) == 2
    bad = dataclasses.replace(grid, cells=[{**grid.cells[1], "method_config": {"peft": {"type": "LORA", "x": 1}}}])
    with pytest.raises(ValueError, match="invalid LORA config"):
        grid_job.preflight(bad)


# ----- ViT-B/32 (random weights): exactness at full size and the stated trainable counts ----------
@pytest.mark.slow
def test_vit_b32_unpacked_equals_packed_and_counts_match_the_registry():
    loaded = load_model("ViT-B-32-random")
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    packed = clip_logits(loaded.model.eval(), loaded, x)
    unpacked = copy.deepcopy(loaded.model)
    assert unpack_attention(unpacked) == 24
    assert (clip_logits(unpacked, loaded, x) - packed).abs().max() <= 1e-5
    del unpacked
    for info in all_method_info():
        if info.trainable_vit_b32 is not None and info.trains:
            module = build_method(info.name, loaded, CLASSES, TEMPLATE)
            assert count_parameters(module)[0] == info.trainable_vit_b32, info.name
            del module


def test_cross_check_of_two_methods_against_seed_noise():
    import pandas as pd

    from jobs.peft_check import cross_check, shared_cells_table

    prov = json.dumps({"trainable_params": 14336})
    rows = [("lora", "d1", 0, 10.0), ("lora", "d1", 1, 12.0), ("lora", "d2", 0, 20.0), ("lora", "d2", 1, 21.0),
            ("peft_lora", "d1", 0, 11.0), ("peft_lora", "d2", 0, 19.0), ("peft_lora", "d3", 0, 50.0)]
    runs = pd.DataFrame([{"method": m, "dataset": d, "seed": s, "id_gain": g, "ood_change": -g / 10,
                          "status": "ok", "model_key": "tiny", "provenance": prov} for m, d, s, g in rows])
    result = cross_check(runs, "lora", "peft_lora")
    assert result["datasets"] == 2 and result["pairs"] == 2  # d3 has no run of ours
    assert result["id_gain_delta"] == pytest.approx(1.0) and result["id_gain_noise"] == pytest.approx(1.5)
    assert result["trainable"] == {"lora": [14336], "peft_lora": [14336]}
    with pytest.raises(ValueError, match="both"):
        cross_check(runs, "lora", "peft_dora")
    table, cells = shared_cells_table(runs)  # (d1, 0) and (d2, 0): the cells both methods ran
    assert cells == 2 and dict(zip(table["method"], table["id_gain"])) == {"lora": 15.0, "peft_lora": 15.0}
    assert dict(zip(table["method"], table["family"])) == {"lora": "reparameterised", "peft_lora": "reparameterised"}


def test_shared_cells_table_gives_the_range_of_a_count_that_varies_by_dataset(capsys):
    import pandas as pd

    from jobs import peft_check
    from jobs.peft_check import shared_cells_table

    # a linear probe trains (width + 1) x classes: its count differs from task to task
    rows = [("linear_probe", "d1", 258), ("linear_probe", "d2", 3354), ("lora", "d1", 14336), ("lora", "d2", 14336)]
    runs = pd.DataFrame([{"method": m, "dataset": d, "seed": 0, "id_gain": 1.0, "ood_change": 0.0, "status": "ok",
                          "model_key": "tiny", "provenance": json.dumps({"trainable_params": n})} for m, d, n in rows])
    table, _ = shared_cells_table(runs)
    got = {m: (lo, hi) for m, lo, hi in zip(table["method"], table["trainable"], table["trainable_max"])}
    assert got == {"linear_probe": (258, 3354), "lora": (14336, 14336)}
    assert peft_check.trainable_text(258, 3354) == "258–3,354" and peft_check.trainable_text(14336, 14336) == "14,336"
    assert peft_check.trainable_text(None, None) == ""


@pytest.mark.parametrize("peft, where", [({"lora_alpha": float("nan")}, "lora_alpha = nan"),
                                         ({"lora_alpha": float("inf")}, "lora_alpha = inf"),
                                         ({"alpha_pattern": {"q_proj": float("-inf")}}, r"alpha_pattern\.q_proj")])
def test_a_non_finite_peft_setting_is_refused_when_configured(peft, where):
    """TOML's nan/inf went straight to peft, which does not check: NaN logits at step 1, reported as
    'loss became nan ... lower the learning rate'."""
    with pytest.raises(ValueError, match=f"peft setting {where}.* not a finite number"):
        get_method("peft_lora").config_cls.from_overrides({"peft": peft})


@pytest.mark.parametrize("peft, match", [({"lora_dropout": True}, "lora_dropout = True must be a number"),
                                         ({"r": "4"}, "r = '4' must be a number"),
                                         ({"lora_alpha": True}, "lora_alpha = True must be a number")])
def test_a_bool_or_string_for_a_numeric_peft_setting_is_refused(peft, match):
    """peft does not check types: lora_dropout = true built nn.Dropout(p=True), i.e. probability 1, so the
    adapter saw zeros in training and never learnt; r = "4" failed inside peft with a bare TypeError."""
    with pytest.raises(ValueError, match=match):
        get_method("peft_lora").config_cls.from_overrides({"peft": peft})
    ok = get_method("peft_lora").config_cls.from_overrides({"peft": {"lora_dropout": 0.1, "init_lora_weights": "gaussian"}})
    assert ok.peft_config().lora_dropout == 0.1  # numbers and peft's own string options still pass


@pytest.mark.parametrize("name, peft, unmatched", [
    ("peft_lora", {"target_modules": ["q_proj", "v_porj"]}, r"target_modules \['v_porj'\]"),
    ("peft_ln_tuning", {"target_modules": ["ln_1", "ln_3"]}, r"target_modules \['ln_3'\]"),
    ("peft_lora", {"modules_to_save": ["ln_finall"]}, r"modules_to_save \['ln_finall'\]"),
])
def test_a_target_name_that_matches_nothing_is_refused_even_beside_good_ones(name, peft, unmatched, loaded):
    """peft refuses a target list only when no name matches: "v_porj" beside "q_proj" built a LoRA on Q
    alone (half the parameters) without a word."""
    with pytest.raises(ValueError, match=unmatched + " match no module of the model; module names end in .*q_proj"):
        build_method(name, loaded, CLASSES, TEMPLATE, {"peft": peft})
    assert count_parameters(build_method("peft_lora", loaded, CLASSES, TEMPLATE,
                                         {"peft": {"modules_to_save": ["ln_final"]}}))[0] > 0


def test_a_peft_config_that_leaves_a_tower_untouched_says_so(tmp_path):
    """SigLIP's timm image tower has a fused ``qkv`` Linear, no ``q_proj``/``v_proj``: the catalogue's targets
    then adapt the text tower only. peft raises nothing (the names match in the text tower); the record must say."""
    import open_clip

    from core.models import ModelSpec

    name = "test-peft-sl-tiny"
    (tmp_path / f"{name}.json").write_text(json.dumps({
        "embed_dim": 64, "init_logit_bias": -10, "custom_text": True,
        "vision_cfg": {"image_size": 224, "timm_model_name": "vit_tiny_patch16_224", "timm_model_pretrained": False,
                       "timm_pool": "avg", "timm_proj": "linear"},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2,
                     "no_causal_mask": True, "proj_bias": True, "pool_type": "last"}}))
    open_clip.add_model_config(tmp_path)
    siglip = load_model(ModelSpec(name, name, None, "siglip", "none: random"))
    module = build_method("peft_lora", siglip, CLASSES, TEMPLATE)
    assert not any(n.startswith("clip.visual.") for n in module.named_trainable())  # what peft did
    warnings = module.method_details().get("peft_warnings", [])
    assert any("image tower" in w for w in warnings), warnings
    assert not any("text tower" in w for w in warnings), warnings


def test_untouched_towers_names_each_tower_with_blocks_and_nothing_trained():
    """Either tower can be the untouched one; a tower without transformer blocks (nothing for peft's names to
    match there) is never reported."""
    from core.methods.peft_method import untouched_towers

    def blocks() -> nn.Module:
        holder = nn.Module()
        holder.resblocks = nn.ModuleList([nn.Linear(2, 2)])
        return holder

    model = nn.Module()
    model.visual = nn.Module()
    model.visual.transformer = blocks()
    model.transformer = blocks()
    model.requires_grad_(False)
    assert untouched_towers(model) == ["image", "text"]
    model.visual.requires_grad_(True)
    assert untouched_towers(model) == ["text"]  # only the image tower adapted
    model.requires_grad_(False)
    model.transformer.requires_grad_(True)
    assert untouched_towers(model) == ["image"]
    model.visual = nn.Linear(2, 2)  # an image tower without blocks (a ResNet, say): nothing to warn about
    model.visual.requires_grad_(False)
    assert untouched_towers(model) == []
