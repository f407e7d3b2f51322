"""Fine-tuning methods: trainable sets, zero-shot start, adapters, frozen bases, save/load, registry."""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import time

import numpy as np
import pytest
import torch
from torch import nn

from core.data.base import LabeledImages
from core.imaging import images_to_tensor
from core.methods import (METHODS, build_method, count_parameters, get_method, load_trained, method_info,
                          save_trained)
from core.methods.clip_cite import multi_positive_contrastive
from core.methods.orthogonal import cutout
from core.models import ModelSpec, load_model
from core.train import TrainRecipe, train

CLASSES = ["cat", "dog", "car", "tree"]
TEMPLATE = "a photo of a {c}"
# our own methods; the peft catalogue has its own tests (tests/test_peft.py)
OURS = [name for name in METHODS if method_info(name).source == "ours"]
TRAINED = [name for name in OURS if METHODS[name].trains]
BLOCK = r"clip\.(visual\.)?transformer\.resblocks\.\d+\."
N_BLOCKS = 4 + 3  # tiny model: 4 vision blocks, 3 text blocks
# What each method must train on the tiny CLIP, written independently of the implementation.
EXPECTED = {
    "zero_shot": (r"(?!)", 0),
    "bitfit": (BLOCK + r"(ln_1|ln_2|attn\.out_proj|mlp\.c_fc|mlp\.c_proj)\.bias|" + BLOCK + r"attn\.in_proj_bias",
               6 * N_BLOCKS),
    "attention": (BLOCK + r"attn\.in_proj_weight", N_BLOCKS),
    "lora": (BLOCK + r"attn\.parametrizations\.in_proj_weight\.0\.lora_[AB]\.[qv]", 4 * N_BLOCKS),
    "clip_adapter": (r"(image|text)_adapter\.[02]\.weight", 4),
    "linear_probe": (r"head\.(weight|bias)", 2),
    "orthogonal": (BLOCK + r"(attn\.parametrizations\.in_proj_weight|mlp\.c_fc\.parametrizations\.weight)\.0\.skew",
                   2 * N_BLOCKS),
}
FULL = {"full_ft", "clip_cite", "wise_ft"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (64, 32, 32, 3), dtype=np.uint8), rng.integers(0, 4, 64),
                         CLASSES, TEMPLATE, "synthetic")


@pytest.fixture(scope="module")
def batch(loaded, data):
    return images_to_tensor(data.images, np.arange(16), loaded)


def logits(module, x):
    module.eval()  # also drops cached prompt features of text-trainable methods
    with torch.no_grad():
        return module(x)


def perturb(module, seed=0, size=0.1):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.trainable_parameters():
            p.add_(size * torch.randn(p.shape, generator=gen))


def quick_recipe(**kw):
    base = dict(optimizer="adamw", lr=1e-2, weight_decay=0.0, batch_size=16, max_steps=3, val_fraction=0.0,
                best_checkpoint=False)
    return TrainRecipe(**{**base, **kw})


@pytest.mark.parametrize("name", OURS)
def test_trainable_names_are_exactly_the_intended_ones(name, loaded):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    names = set(module.named_trainable())
    if name in FULL:
        assert names == {f"clip.{n}" for n, _ in loaded.model.named_parameters()}
    else:
        pattern, count = EXPECTED[name]
        assert len(names) == count and all(re.fullmatch(pattern, n) for n in names), sorted(names)
    trainable, total = count_parameters(module)
    assert trainable == sum(p.numel() for p in module.trainable_parameters()) and total >= trainable


@pytest.mark.parametrize("name", TRAINED)
def test_only_trainable_tensors_change_and_bases_stay_frozen(name, loaded, data):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    train(module, data, quick_recipe())
    changed = {n for n, p in module.named_parameters() if not torch.equal(p, before[n])}
    assert changed == set(module.named_trainable())
    originals = [n for n in before if n.endswith(".original")]  # frozen bases under parametrizations
    assert all(n not in changed for n in originals)
    if name in ("lora", "orthogonal"):
        assert originals


@pytest.mark.parametrize("name", ["lora", "orthogonal", "bitfit"])
def test_base_weights_equal_the_pretrained_ones_after_training(name, loaded, data):
    reference = {n: p.detach().clone() for n, p in loaded.model.named_parameters()}
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    train(module, data, quick_recipe())
    for n, p in module.clip.named_parameters():
        base = n.replace(".parametrizations.", ".").replace(".original", "")
        if base in reference and not p.requires_grad:
            assert torch.equal(p, reference[base]), n
    for n, p in loaded.model.named_parameters():  # build_method worked on a copy
        assert torch.equal(p, reference[n]), n


@pytest.mark.parametrize("name", OURS)
def test_initial_logits_equal_zero_shot_where_the_method_says_so(name, loaded, batch):
    zero_shot = logits(build_method("zero_shot", loaded, CLASSES, TEMPLATE), batch)
    out = logits(build_method(name, loaded, CLASSES, TEMPLATE), batch)
    assert out.shape == (16, 4)
    if METHODS[name].zero_shot_init:
        torch.testing.assert_close(out, zero_shot, atol=1e-5, rtol=1e-5)
    else:
        assert (out - zero_shot).abs().max() > 1e-3


@pytest.mark.parametrize("name", TRAINED)
def test_perturbing_the_trainable_tensors_changes_the_output(name, loaded, batch):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    y0 = logits(module, batch)
    perturb(module)
    assert (logits(module, batch) - y0).abs().max() > 1e-3


def test_lora_updates_only_the_q_and_v_rows(loaded):
    module = build_method("lora", loaded, CLASSES, TEMPLATE)
    attn = module.clip.visual.transformer.resblocks[0].attn
    lora = attn.parametrizations.in_proj_weight[0]
    assert set(lora.lora_B) == {"q", "v"}
    with torch.no_grad():
        for b in lora.lora_B.values():
            b.normal_()
    base, d = attn.parametrizations.in_proj_weight.original, attn.embed_dim
    delta = attn.in_proj_weight - base
    assert delta[d:2 * d].abs().max() == 0
    torch.testing.assert_close(delta[:d], 0.2 * lora.lora_B["q"] @ lora.lora_A["q"])
    torch.testing.assert_close(delta[2 * d:], 0.2 * lora.lora_B["v"] @ lora.lora_A["v"])
    qkv = build_method("lora", loaded, CLASSES, TEMPLATE, {"parts": "qkv", "rank": 2, "alpha": 1.0})
    lora = qkv.clip.transformer.resblocks[0].attn.parametrizations.in_proj_weight[0]
    assert set(lora.lora_A) == {"q", "k", "v"} and lora.lora_A["k"].shape == (2, 128) and lora.scale == 0.5


def test_orthogonal_rotation_is_orthogonal_and_the_cross_regulariser_measures_drift(loaded, batch):
    module = build_method("orthogonal", loaded, CLASSES, TEMPLATE, {"cutout": False, "block_size": 32})
    rot = module.clip.visual.transformer.resblocks[0].mlp.c_fc.parametrizations.weight[0]
    assert rot.skew.shape == (128 // 32, 32 * 31 // 2)
    module.train()
    labels = torch.zeros(16, dtype=torch.long)
    out = module(batch)
    assert module.extra_loss(batch, labels, out).abs() < 1e-6  # R = I: no drift
    perturb(module, size=0.05)
    r = rot.rotation()
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(32).expand_as(r), atol=1e-5, rtol=0)
    out = module(batch)
    assert module.extra_loss(batch, labels, out) > 1e-4
    with pytest.raises(ValueError, match="does not divide"):
        build_method("orthogonal", loaded, CLASSES, TEMPLATE, {"block_size": 48})


def test_cutout_zeroes_one_square_per_image_in_training_only(loaded, batch):
    torch.manual_seed(0)
    x = torch.ones(8, 3, 32, 32)
    out = cutout(x, 0.5)
    zeroed = (out == 0).all(dim=1).flatten(1).sum(dim=1)
    assert ((zeroed > 0) & (zeroed <= 16 * 16)).all() and (zeroed == 256).any()
    module = build_method("orthogonal", loaded, CLASSES, TEMPLATE)
    assert torch.equal(module.eval().train_transform(batch), batch)
    assert not torch.equal(module.train().train_transform(batch), batch)


def test_clip_cite_losses(loaded, batch):
    eye = torch.eye(4)
    aligned = multi_positive_contrastive(eye, eye, torch.arange(4), torch.tensor(100.0), 0.5)
    assert aligned < 1e-6
    same = multi_positive_contrastive(eye[[0, 0]], eye[[0, 0]], torch.tensor([0, 0]), torch.tensor(100.0), 0.5)
    assert math.isclose(float(same), math.log(2), rel_tol=1e-6)  # duplicates are positives, not negatives
    module = build_method("clip_cite", loaded, CLASSES, TEMPLATE, {"disc_weight": 0.0})
    module.train()
    labels = torch.arange(16) % 4
    assert module.extra_loss(batch, labels, module(batch)).abs() < 1e-6  # student == teacher: KL = 0
    perturb(module)
    assert module.extra_loss(batch, labels, module(batch)) > 1e-4
    assert count_parameters(module)[1] == sum(p.numel() for p in loaded.model.parameters())  # teacher hidden


def test_wise_ft_finalize_interpolates_once(loaded):
    module = build_method("wise_ft", loaded, CLASSES, TEMPLATE, {"alpha": 0.25})
    start = {n: p.detach().clone() for n, p in module.named_trainable().items()}
    with torch.no_grad():
        for p in module.trainable_parameters():
            p.add_(1.0)
    module.finalize()
    module.finalize()
    for n, p in module.named_trainable().items():
        torch.testing.assert_close(p, start[n] + 0.25)


def test_linear_probe_falls_back_to_zero_shot_on_other_classes(loaded, batch):
    probe = build_method("linear_probe", loaded, CLASSES, TEMPLATE)
    perturb(probe, size=1.0)
    others = ["boat", "house", "bird"]
    zero_shot = build_method("zero_shot", loaded, others, TEMPLATE)
    with probe.using_classes(others, TEMPLATE):
        torch.testing.assert_close(logits(probe, batch), logits(zero_shot, batch))
    assert probe.class_names == CLASSES and logits(probe, batch).shape == (16, 4)


@pytest.mark.parametrize("name", OURS)
def test_save_and_load_round_trip(name, loaded, batch, tmp_path):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    perturb(module)
    module.finalize()
    expected = logits(module, batch)
    path = save_trained(module, tmp_path / f"{name}.safetensors")
    from safetensors import safe_open
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == set(module.named_trainable())
        assert json.loads(f.metadata()["config"]) == module.config.to_dict()
    restored = load_trained(loaded, path)
    assert restored.method == name and restored.config == module.config and restored.finalized
    torch.testing.assert_close(logits(restored, batch), expected, atol=0, rtol=0)


def test_registry_errors_and_entries(loaded):
    with pytest.raises(ValueError, match="known methods: zero_shot, full_ft"):
        get_method("prompt_tuning")
    with pytest.raises(ValueError, match="'rnk'"):
        build_method("lora", loaded, CLASSES, TEMPLATE, {"rnk": 8})
    for name in OURS:
        entry = METHODS[name]
        assert entry.name == name and entry.description and entry.config_cls().to_dict() is not None


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


# ----- other families: tiny configs, random weights, nothing downloaded ---------------------------
TINY_CONFIGS = {
    "test-sl-tiny": {"embed_dim": 64, "init_logit_bias": -10, "custom_text": True,
                     "vision_cfg": {"image_size": 224, "timm_model_name": "vit_tiny_patch16_224",
                                    "timm_model_pretrained": False, "timm_pool": "avg", "timm_proj": "linear"},
                     "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2,
                                  "no_causal_mask": True, "proj_bias": True, "pool_type": "last"}},
    "test-eva-tiny": {"embed_dim": 64, "custom_text": True,
                      "vision_cfg": {"image_size": 224, "timm_model_name": "eva02_tiny_patch14_224",
                                     "timm_model_pretrained": False, "timm_pool": "token", "timm_proj": "linear"},
                      "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}},
    "test-coca-tiny": {"embed_dim": 64, "custom_text": True,
                       "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16,
                                      "attentional_pool": True, "attn_pooler_heads": 2, "output_tokens": True},
                       "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                                    "layers": 2, "embed_cls": True, "output_tokens": True},
                       "multimodal_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2,
                                          "layers": 1, "attn_pooler_heads": 2}},
}
FAMILY = {"test-sl-tiny": "siglip", "test-eva-tiny": "eva02", "test-coca-tiny": "coca"}


@pytest.fixture(scope="module")
def family_models(tmp_path_factory):
    import open_clip

    folder = tmp_path_factory.mktemp("configs")
    for name, cfg in TINY_CONFIGS.items():
        (folder / f"{name}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(folder)
    return {name: load_model(ModelSpec(name, name, None, FAMILY[name], "none: random")) for name in TINY_CONFIGS}


@pytest.mark.parametrize("arch", list(TINY_CONFIGS))
def test_every_method_builds_on_other_families(arch, family_models):
    loaded = family_models[arch]
    x = torch.randn(2, 3, loaded.image_size, loaded.image_size)
    zero_shot = logits(build_method("zero_shot", loaded, CLASSES, TEMPLATE), x)
    clip = loaded.model
    manual = clip.logit_scale.exp() * clip.encode_image(x, normalize=True) @ clip.encode_text(
        loaded.tokenizer([TEMPLATE.format(c=c) for c in CLASSES]), normalize=True).t()
    if getattr(clip, "logit_bias", None) is not None:
        manual = manual + clip.logit_bias
    torch.testing.assert_close(zero_shot, manual.detach(), atol=1e-5, rtol=1e-5)
    for name in TRAINED:
        module = build_method(name, loaded, CLASSES, TEMPLATE)
        names = set(module.named_trainable())
        assert names and not any("text_decoder" in n for n in names), name  # CoCa's decoder: unused
        assert name in FULL or not any("attn_pool" in n for n in names), name  # pooler: not a block
        if METHODS[name].zero_shot_init:
            torch.testing.assert_close(logits(module, x), zero_shot, atol=1e-5, rtol=1e-5)
    if getattr(clip, "logit_bias", None) is not None:  # SigLIP: the full-model methods train the bias too (SPEC §4)
        for name in ("full_ft", "wise_ft", "clip_cite"):
            assert "clip.logit_bias" in build_method(name, loaded, CLASSES, TEMPLATE).named_trainable(), name
    attention = set(build_method("attention", loaded, CLASSES, TEMPLATE).named_trainable())
    blocks = [n for n, _ in clip.visual.named_modules()
              if re.fullmatch(r"(trunk\.blocks|transformer\.resblocks)\.\d+", n)]
    assert len([n for n in attention if n.startswith("clip.visual.")]) == len(blocks) > 0
    assert all(n.endswith(("attn.qkv.weight", "attn.in_proj_weight")) for n in attention)


def test_peft_methods_leave_cocas_caption_decoder_frozen(family_models):
    """peft's target names (q_proj, v_proj, c_fc…) also match CoCa's caption decoder, which classification
    never runs: its adapters counted as trainable but never got a gradient (tiny CoCa peft_lora: 2,048 of them)."""
    loaded = family_models["test-coca-tiny"]
    for name in ("peft_lora", "peft_ia3"):
        module = build_method(name, loaded, CLASSES, TEMPLATE)
        trained = set(module.named_trainable())
        assert trained and not any("text_decoder" in n for n in trained), name
        assert any(n.startswith("clip.visual.") for n in trained) and any(".text." in n for n in trained), name


@pytest.mark.slow
def test_eva02_separate_qkv_projections():
    t0 = time.perf_counter()
    loaded = load_model("EVA02-B-16")  # architecture only: random weights, no download
    attention = build_method("attention", loaded, CLASSES, TEMPLATE, copy_model=False)
    assert count_parameters(attention)[0] == 30_670_848
    assert any(n.endswith("attn.k_proj.weight") for n in attention.named_trainable())
    lora = build_method("lora", loaded, CLASSES, TEMPLATE, copy_model=False)
    names = set(lora.named_trainable())
    assert any(".q_proj.parametrizations.weight.0.lora_A.q" in n for n in names)
    assert not any("k_proj" in n for n in names)
    assert time.perf_counter() - t0 < 120


def test_vit_b32_parameter_counts_match_the_study():
    loaded = load_model("ViT-B-32-random")
    counts = {name: count_parameters(build_method(name, loaded, CLASSES, TEMPLATE, copy_model=False))[0]
              for name in ("bitfit", "attention", "lora")}  # lora last: it adds parametrizations in place
    assert counts == {"bitfit": 168_960, "attention": 30_670_848, "lora": 245_760}


@pytest.mark.parametrize("name, in_training, in_eval", [("bitfit", 3, 2), ("clip_adapter", 1, 0),
                                                         ("linear_probe", 0, 0)])
def test_prompt_features_are_cached_only_when_the_text_tower_is_frozen(name, in_training, in_eval, loaded, batch,
                                                                       monkeypatch):
    module = build_method(name, loaded, CLASSES, TEMPLATE)
    calls = []
    original = module.clip.encode_text
    monkeypatch.setattr(module.clip, "encode_text", lambda *a, **k: calls.append(1) or original(*a, **k))
    module.train()
    for _ in range(3):
        module(batch[:2])
    assert len(calls) == in_training
    calls.clear()
    logits(module, batch)
    logits(module, batch)
    assert len(calls) == in_eval  # eval() refreshes text-trainable prompts, keeps frozen ones


@pytest.mark.parametrize("name", ["lora", "clip_adapter", "peft_lora", "peft_loha"])
def test_adapter_initialisation_follows_the_run_seed(name, loaded):
    def initial(seed, overrides=None):
        torch.manual_seed(seed)
        module = build_method(name, loaded, ["a", "b"], "a photo of a {c}", overrides)
        return torch.cat([p.detach().flatten() for p in module.parameters() if p.requires_grad
                          and p.abs().sum() > 0])  # LoRA's B starts at zero: compare A
    assert torch.equal(initial(3), initial(3))
    assert not torch.equal(initial(3), initial(4))
    assert torch.equal(initial(3, {"init_seed": 7}), initial(4, {"init_seed": 7}))
    with pytest.raises(ValueError, match="init_seed"):
        build_method(name, loaded, ["a", "b"], "a photo of a {c}", {"init_seed": -1})


def test_clip_adapter_mixes_ratio_of_the_adapter_with_the_rest_of_the_features(loaded):
    module = build_method("clip_adapter", loaded, CLASSES, TEMPLATE, {"ratio": 0.2})
    features = torch.randn(3, module.embed_dim)
    module.image_adapter = nn.Identity()  # an adapter giving its input back: the mix is the input
    torch.testing.assert_close(module.adapt_image(features), features)
    module.image_adapter = nn.Sequential(nn.Linear(module.embed_dim, module.embed_dim, bias=False))
    nn.init.zeros_(module.image_adapter[0].weight)  # an adapter giving zeros: 80 % of the input remains
    torch.testing.assert_close(module.adapt_image(features), 0.8 * features)


def test_linear_probe_bias_trains_only_when_asked(loaded):
    assert "head.bias" in build_method("linear_probe", loaded, CLASSES, TEMPLATE).named_trainable()
    frozen = build_method("linear_probe", loaded, CLASSES, TEMPLATE, {"train_bias": False})
    assert set(frozen.named_trainable()) == {"head.weight"}


def test_clip_cite_losses_by_hand_away_from_the_default_settings(loaded):
    """alpha = 0.5 and T = 1 hide a swapped alpha or a missing T²: check both at alpha 0.2 and T 2."""
    from core.methods.clip_cite import multi_positive_contrastive

    image, text = torch.eye(2), torch.tensor([[1.0, 0.5], [0.0, 2.0]])  # similarities [[1, 0], [0.5, 2]]
    labels, one = torch.tensor([0, 1]), torch.tensor(1.0)
    sim = image @ text.t()
    i2t = -sim.log_softmax(dim=1).diagonal().mean()  # each image against the prompts; its own is the target
    t2i = -sim.t().log_softmax(dim=1).diagonal().mean()  # each prompt against the images
    assert float(i2t) != pytest.approx(float(t2i))  # the two directions differ here
    assert float(multi_positive_contrastive(image, text, labels, one, 0.2)) == pytest.approx(
        float(0.2 * i2t + 0.8 * t2i))

    module = build_method("clip_cite", loaded, CLASSES, TEMPLATE, {"kd_temperature": 2.0, "disc_weight": 0.0,
                                                                   "kd_weight": 1.0})
    x = torch.randn(3, 3, loaded.image_size, loaded.image_size)
    module.train()  # the training loop's forward keeps the features the discriminative term reads
    logits_now = module(x)
    teacher = module.teacher_logits(x)
    shifted = logits_now.detach() + torch.tensor([[3.0, -1.0, 0.0, 2.0]])  # a student moved from the teacher
    p_t = (teacher / 2).softmax(dim=1)
    kl = (p_t * ((teacher / 2).log_softmax(dim=1) - (shifted / 2).log_softmax(dim=1))).sum(dim=1).mean()
    loss = float(module.extra_loss(x, torch.tensor([0, 1, 2]), shifted).detach())
    assert loss == pytest.approx(4.0 * float(kl), rel=1e-5)  # eta * T² * KL, T = 2


def test_orthogonal_refuses_one_by_one_blocks_and_training_refuses_empty_trainables(loaded, data):
    """A 1x1 Cayley rotation is always 1: block_size 1 built 0 trainable elements and 'trained' silently."""
    with pytest.raises(ValueError, match="block_size must be 0 .* or an integer >= 2, got 1"):
        build_method("orthogonal", loaded, CLASSES, TEMPLATE, {"block_size": 1})
    assert count_parameters(build_method("orthogonal", loaded, CLASSES, TEMPLATE, {"block_size": 2}))[0] > 0
    module = build_method("zero_shot", loaded, CLASSES, TEMPLATE)
    module.empty = nn.Parameter(torch.zeros(0, 4))  # trainable, but with nothing in it
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(module, data, quick_recipe())


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
