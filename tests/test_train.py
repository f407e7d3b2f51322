"""Training loop and evaluation: determinism, best-validation restore, divergence, a learnable toy task."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import core.train as train_module
from core.data.base import LabeledImages
from core.evaluate import accuracy, evaluate_run
from core.methods import build_method
from core.train import TrainingDiverged, TrainRecipe, split_indices, train

COLOURS = {"red": (230, 20, 20), "green": (20, 230, 20), "blue": (20, 20, 230), "yellow": (230, 230, 20)}


def toy(n: int, seed: int, names=tuple(COLOURS), template="a photo of a {c}") -> LabeledImages:
    """Solid-colour images with noise: trivially learnable, hard for a random zero-shot model."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(names), n)
    colours = np.array([COLOURS[c] for c in names], dtype=float)
    images = colours[labels][:, None, None, :] + rng.normal(0, 30, (n, 32, 32, 3))
    return LabeledImages(np.clip(images, 0, 255).astype(np.uint8), labels, list(names), template, f"toy{seed}")


@pytest.fixture(scope="module")
def data():
    return toy(160, 0)


def recipe(**kw) -> TrainRecipe:
    base = dict(optimizer="adamw", lr=1e-3, weight_decay=0.0, batch_size=16, max_steps=4, val_fraction=0.1)
    return TrainRecipe(**{**base, **kw})


def trainable_state(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_trainable().items()}


def test_training_is_deterministic_by_seed(loaded, data):
    runs = []
    for seed in (0, 0, 1):
        module = build_method("bitfit", loaded, data.class_names, data.template)
        result = train(module, data, recipe(seed=seed))
        runs.append((result.loss_history, trainable_state(module)))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][n], runs[1][1][n]) for n in runs[0][1])
    assert runs[0][0] != runs[2][0]


def test_best_validation_state_is_restored(loaded, data, monkeypatch):
    scripted = iter([10.0, 50.0, 20.0, 30.0])
    monkeypatch.setattr(train_module, "accuracy", lambda *a, **k: next(scripted))
    module = build_method("attention", loaded, data.class_names, data.template)
    states = {}
    progress = lambda e: states.__setitem__(e["step"], trainable_state(module)) if e["event"] == "eval" else None
    result = train(module, data, recipe(eval_every=1), progress=progress)
    assert [s for s, _ in result.val_history] == [1, 2, 3, 4]
    assert result.best_step == 2 and result.best_val_acc == 50.0
    final = trainable_state(module)
    assert all(torch.equal(final[n], states[2][n]) for n in final)
    assert not all(torch.equal(final[n], states[4][n]) for n in final)


def test_without_best_checkpoint_the_final_state_stays(loaded, data, monkeypatch):
    scripted = iter([50.0, 10.0])
    monkeypatch.setattr(train_module, "accuracy", lambda *a, **k: next(scripted))
    module = build_method("attention", loaded, data.class_names, data.template)
    states = {}
    progress = lambda e: states.__setitem__(e["step"], trainable_state(module)) if e["event"] == "eval" else None
    result = train(module, data, recipe(eval_every=2, best_checkpoint=False), progress=progress)
    final = trainable_state(module)
    assert all(torch.equal(final[n], states[4][n]) for n in final)
    assert (result.best_step, result.best_val_acc) == (4, 10.0)  # the returned state's, not step 2's 50 %


def test_nan_loss_raises_before_any_update(loaded, data):
    module = build_method("bitfit", loaded, data.class_names, data.template)
    before = trainable_state(module)
    module.extra_loss = lambda images, labels, logits: torch.tensor(float("nan"))
    with pytest.raises(TrainingDiverged, match="step 1"):
        train(module, data, recipe())
    assert all(torch.equal(p, before[n]) for n, p in module.named_trainable().items())


def test_training_improves_a_learnable_task_and_evaluation_restores_prompts(loaded):
    train_set, test_set = toy(256, 1), toy(128, 2)
    ood = {"three-colours": toy(96, 3, names=("blue", "red", "green"), template="{c}")}
    module = build_method("attention", loaded, train_set.class_names, train_set.template)
    before = evaluate_run(module, test_set, ood)
    tokens = module.class_tokens.clone()
    result = train(module, train_set, recipe(max_steps=None, epochs=3, batch_size=32))
    after = evaluate_run(module, test_set, ood)
    assert after["test_acc"] >= 90.0 > before["test_acc"] + 20
    assert set(after["ood_acc"]) == {"three-colours"} and after["ood_mean_acc"] == after["ood_acc"]["three-colours"]
    assert module.class_names == train_set.class_names and torch.equal(module.class_tokens, tokens)
    assert result.steps == 3 * 8 and result.n_val == 25 and result.samples_per_s > 0
    assert not module.training and module.finalized


def test_accuracy_known_value_and_mode_restored(loaded, data):
    probe = build_method("linear_probe", loaded, data.class_names, data.template)
    with torch.no_grad():
        probe.head.weight.zero_()
        probe.head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0]))  # always predicts class 2
    probe.train()
    assert accuracy(probe, data, batch_size=7) == pytest.approx(100.0 * np.mean(data.labels == 2))
    assert probe.training
    with pytest.raises(ValueError, match="empty"):
        accuracy(probe, data.subset(np.array([], dtype=int)))


def test_zero_shot_cannot_be_trained(loaded, data):
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(build_method("zero_shot", loaded, data.class_names, data.template), data, recipe())


def test_wise_ft_is_finalized_by_the_loop(loaded, data):
    module = build_method("wise_ft", loaded, data.class_names, data.template, {"alpha": 0.0})
    start = trainable_state(module)
    train(module, data, recipe(val_fraction=0.0))
    assert module.finalized and all(torch.equal(p, start[n]) for n, p in module.named_trainable().items())


def test_split_sizes_and_eval_schedule(loaded, data):
    assert [len(i) for i in split_indices(64, TrainRecipe())] == [58, 6]
    assert [len(i) for i in split_indices(100_000, TrainRecipe())] == [95_000, 5000]
    train_idx, val_idx = split_indices(1000, TrainRecipe())
    assert not set(train_idx) & set(val_idx) and np.array_equal(val_idx, split_indices(1000, TrainRecipe())[1])
    result = train(build_method("bitfit", loaded, data.class_names, data.template), data,
                   recipe(max_steps=5, eval_every=2))
    assert [s for s, _ in result.val_history] == [2, 4, 5]


@pytest.mark.parametrize("kw, match", [
    ({"optimizer": "lbfgs"}, "optimizer"), ({"lr": 0.0}, "lr"), ({"momentum": 1.0}, "momentum"),
    ({"batch_size": 0}, "batch_size"), ({"epochs": None, "max_steps": None}, "epochs or max_steps"),
    ({"val_fraction": 1.0}, "val_fraction"), ({"eval_every": 0}, "eval_every"), ({"grad_clip": 0.0}, "grad_clip"),
    ({"weight_decay": -1.0}, "weight_decay"), ({"max_steps": 0}, "max_steps"),
    ({"lr": float("inf")}, "lr must be a finite number, got inf"),  # TOML's inf: was refused at step 1
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number"),
    ({"split_seed": -1}, r"split_seed must lie in \[0, 2\*\*32 - 1\]"), ({"seed": 2**64}, "seed must lie in"),
])
def test_recipe_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainRecipe(**kw)


@pytest.mark.parametrize("kw, match", [
    ({"lr": "1e-3"}, r"TrainRecipe\.lr must be a finite number, got '1e-3' \(str\); write the number without quotes: "
                     r"1e-3$"),
    ({"epochs": "5"}, r"got '5' \(str\); write the number without quotes: 5$"),
    ({"best_checkpoint": "false"}, r"got 'false' \(str\); write false without quotes \(False in Python\)$"),
    ({"best_checkpoint": 1}, r"must be bool, got 1 \(int\); write true \(True in Python\)$"),
    ({"lr": "fast"}, r"got 'fast' \(str\)$"),  # no number: nothing to suggest
])
def test_a_number_or_bool_in_quotes_is_told_to_be_written_without_them(kw, match):
    # lr = "1e-3" in a TOML or JSON config was refused as 'must be a finite number, got '1e-3'', which reads as if
    # 1e-3 itself were wrong
    with pytest.raises(ValueError, match=match):
        TrainRecipe(**kw)


def test_bench_methods_smoke(loaded, capsys):
    from jobs.bench_methods import main

    assert main(["--models", "worldclip-tiny-random", "--methods", "bitfit,linear_probe,peft_lora", "--steps", "2",
                 "--batch", "8", "--repeats", "1", "--skip-counts"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("worldclip-tiny-random")]
    assert [line.split()[1] for line in lines] == ["bitfit", "linear_probe", "peft_lora"]
    assert [line.split()[2] for line in lines] == ["9,856", "1,032", "14,336"]  # 8 bench classes: 128 * 8 + 8


def test_a_blow_up_on_the_last_update_is_divergence_not_an_ok_run(loaded, data):
    """The loss is checked before each update; the last update made the weights NaN/inf unseen, and the
    argmax of NaN logits (class 0) was recorded as the accuracy."""
    module = build_method("full_ft", loaded, data.class_names, data.template)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(module, data, recipe(optimizer="sgd", lr=1e12, max_steps=1))


def test_accuracy_refuses_non_finite_logits(loaded, data):
    from core.evaluate import NonFiniteLogits

    probe = build_method("linear_probe", loaded, data.class_names, data.template)
    with torch.no_grad():
        probe.head.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLogits, match="NaN or infinite logits on toy0"):
        accuracy(probe, data)


def test_wise_ft_reports_the_validation_score_of_the_interpolated_state(loaded, data):
    """best_val_acc was the fine-tuned state's, before finalize() mixed in the zero-shot weights."""
    from core.train import split_indices

    for alpha in (0.0, 0.5):
        module = build_method("wise_ft", loaded, data.class_names, data.template, {"alpha": alpha})
        rec = recipe(lr=1e-2, eval_every=2)
        result = train(module, data, rec)
        _, val_idx = split_indices(len(data), rec)
        assert result.best_val_acc == pytest.approx(accuracy(module, data.subset(val_idx)))
        if alpha == 0.0:  # all zero-shot weights: the zero-shot model's score
            zero_shot = build_method("zero_shot", loaded, data.class_names, data.template)
            assert result.best_val_acc == pytest.approx(accuracy(zero_shot, data.subset(val_idx)))


def test_a_tie_keeps_the_earlier_validation_state(loaded, data, monkeypatch):
    scripted = iter([50.0, 50.0, 40.0])
    monkeypatch.setattr(train_module, "accuracy", lambda *a, **k: next(scripted))
    module = build_method("attention", loaded, data.class_names, data.template)
    states = {}
    progress = lambda e: states.__setitem__(e["step"], trainable_state(module)) if e["event"] == "eval" else None
    result = train(module, data, recipe(eval_every=1, max_steps=3), progress=progress)
    assert (result.best_step, result.best_val_acc) == (1, 50.0)  # fewer steps for the same score
    final = trainable_state(module)
    assert all(torch.equal(final[n], states[1][n]) for n in final)


def test_a_name_a_dict_or_data_of_other_classes_is_refused_by_name(loaded, data):
    # a dict for the recipe, a name for the data or the module failed on a missing attribute ('dict' object has no
    # attribute 'val_fraction'); data with more classes than the module's in the loss, 'Target 5 is out of bounds'
    module = build_method("bitfit", loaded, data.class_names, data.template)
    with pytest.raises(ValueError, match=r"recipe must be a TrainRecipe \(TrainRecipe\(\*\*settings\) for a dict of "
                                         r"settings\), got dict \{'lr': 0\.001\}"):
        train(module, data, {"lr": 1e-3})
    with pytest.raises(ValueError, match=r"data must be a LabeledImages .*, got str 'shape-kind'"):
        train(module, "shape-kind", recipe())
    with pytest.raises(ValueError, match=r"module must be a ClassifierModel .*, got str 'bitfit'"):
        train("bitfit", data, recipe())
    other = toy(40, 1, names=("red", "green", "blue"))
    with pytest.raises(ValueError, match=r"toy1 has the classes 3 \(red, green, blue\) but the module was built for 4 "
                                         r"\(red, green, blue, yellow\); build the method with the data's class_names"):
        train(module, other, recipe())


def test_a_misspelt_optimizer_or_towers_is_told_the_closest_choice():
    # 'Adam', 'SGD' and 'Image' were refused with the choices but not the one meant
    with pytest.raises(ValueError, match=r"optimizer must be 'sgd' or 'adamw', got 'Adam' \(did you mean 'adamw'\?\)$"):
        TrainRecipe(optimizer="Adam")
    from core.methods.lora import LoRAConfig

    with pytest.raises(ValueError, match=r"towers must be one of \['both', 'image', 'text'\], got 'Image' \(did you "
                                         r"mean 'image'\?\)$"):
        LoRAConfig(towers="Image")
