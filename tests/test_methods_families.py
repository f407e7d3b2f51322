"""Our methods (and peft's on CoCa) on other model families: SigLIP, EVA02 and CoCa in tiny random-weight
configs, nothing downloaded; and the trainable counts of EVA02-B-16 and ViT-B-32 (random weights)."""
from __future__ import annotations

import json
import re
import time

import pytest
import torch

from core.methods import METHODS, build_method, count_parameters
from core.models import ModelSpec, load_model
from tests.methods_helpers import CLASSES, FULL, TEMPLATE, TRAINED, logits


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
        (folder / f"{name}.json").write_text(json.dumps(cfg), encoding="utf-8")
    open_clip.add_model_config(folder)
    return {name: load_model(ModelSpec(name, name, None, FAMILY[name], "none: random")) for name in TINY_CONFIGS}


@pytest.mark.slow
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
