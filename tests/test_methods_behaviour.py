"""Our fine-tuning methods on the tiny model: exactly the intended trainable sets, frozen bases, the zero-shot
start, save/load; each method's own mechanics (LoRA's q/v rows, the orthogonal rotation and cutout, CLIP-CITE's
losses, WiSE-FT, the linear probe, CLIP-Adapter's mix), cached prompt features, the initialisation seed, and
training refusing an empty trainable set."""
from __future__ import annotations

import json
import math
import re

import pytest
import torch
from torch import nn

from core.methods import METHODS, build_method, count_parameters, load_trained, save_trained
from core.methods.clip_cite import multi_positive_contrastive
from core.methods.orthogonal import cutout
from core.train import TrainRecipe, train
from tests.methods_helpers import CLASSES, FULL, OURS, TEMPLATE, TRAINED, logits
from tests.task_helpers import task_fixtures


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


data, batch = task_fixtures(64, 16)  # the synthetic task and its first 16 images as input


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
        assert name in EXPECTED, f"a new method: add {name!r}'s trainable-parameter pattern and count to EXPECTED"
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


def test_a_saved_tensor_of_another_shape_is_refused_not_broadcast(loaded, tmp_path):
    """load_trained copied each saved tensor into its parameter with copy_, which broadcasts: a hand-edited or
    foreign file holding a 1-element tensor filled the whole parameter with that value, and loaded without a word."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = save_trained(build_method("bitfit", loaded, CLASSES, TEMPLATE), tmp_path / "bitfit.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    name = next(n for n, t in tensors.items() if t.numel() > 1)
    tensors[name] = torch.ones(1)
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(ValueError, match=rf"{re.escape(name)} has shape \(1,\) in .*bitfit\.safetensors, the "
                                         r"method's parameter \("):
        load_trained(loaded, path)


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


@pytest.mark.parametrize("kind, expected", [("folder", r"\.safetensors is a folder; give the \.safetensors file"),
                                            ("text", r"\.safetensors is not a trained-method file: it cannot be read "
                                                     r"as safetensors \(")])
def test_a_folder_or_a_file_of_another_kind_is_named_as_no_trained_method_file(kind, expected, loaded, tmp_path):
    # safetensors said 'No such device (os error 19)' for a folder and 'Error while deserializing header: header
    # too small' for another file, naming neither
    path = tmp_path / "run.safetensors"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_text("not tensors")
    with pytest.raises(ValueError, match=expected):
        load_trained(loaded, path)
