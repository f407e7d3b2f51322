"""Unpacked attention (exact, reversible) and every peft catalogue entry: the catalogue and its torch-free
method info, and each entry keeping the guarantees of our own methods (zero-shot start, only its adapter
trained, base weights bit-identical), merging back into plain open_clip weights and saving in peft's format;
our LoRA against peft's; ViT-B/32 (random weights): exactness at full size and the stated trainable counts."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from core.method_info import all_method_info, family_of_run
from core.methods import (FAMILIES, METHODS, build_method, count_parameters, load_trained, method_info,
                          save_trained)
from core.methods.peft_method import load_adapter
from core.methods.unpacked import UnpackedAttention, pack_attention, unpack_attention
from core.models import load_model
from core.train import TrainRecipe, train
from tests.task_helpers import CLASSES, TEMPLATE, task_fixtures


PEFT = [name for name in METHODS if name.startswith("peft_")]
ADAPTER = ".default"  # peft's adapter name appears in every adapter tensor's name


data, batch = task_fixtures(48, 8)  # the synthetic task and its first 8 images as input


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
    back, packed = ours.to_packed().state_dict(), mha.state_dict()
    assert list(back) == list(packed)  # zip alone stopped at the shorter: a dropped parameter went unseen
    assert all(torch.equal(back[name], packed[name]) for name in packed)


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
    assert json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))["peft_type"] == method_info(name).peft_type
    restored = load_adapter(loaded, folder, CLASSES, TEMPLATE)
    assert isinstance(restored.peft_model, PeftModel)
    torch.testing.assert_close(logits(restored, batch), expected, atol=1e-6, rtol=0)
    ours = load_trained(loaded, save_trained(module, tmp_path / f"{name}.safetensors"))  # our format too
    torch.testing.assert_close(logits(ours, batch), expected, atol=0, rtol=0)


# ----- our LoRA and peft's ------------------------------------------------------------------------
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
