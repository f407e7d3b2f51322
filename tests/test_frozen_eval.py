"""Methods with a frozen image tower are validated and evaluated from cached embeddings, equal to the images' path."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import core.train as train_module
from core.data.base import LabeledImages
from core.embed import embed_dataset
from core.evaluate import accuracy, evaluate_run
from core.imaging import images_to_tensor
from core.methods import build_method
from core.train import TrainRecipe, split_indices, train

CLASSES = ["cat", "dog", "car", "tree"]
# (method, config) whose image tower never changes; written independently of the classes' flags
FROZEN = [("zero_shot", {}), ("linear_probe", {}), ("clip_adapter", {}), ("clip_adapter", {"towers": "image"}),
          ("clip_adapter", {"towers": "text"})]
CHANGED = ["full_ft", "bitfit", "attention", "lora", "orthogonal", "clip_cite", "wise_ft"]


def images(n: int, seed: int, names=tuple(CLASSES), template="a photo of a {c}") -> LabeledImages:
    rng = np.random.default_rng(seed)
    return LabeledImages(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, len(names), n),
                         list(names), template, f"random{seed}")


def unit_embeddings(loaded, data: LabeledImages) -> np.ndarray:
    return embed_dataset(loaded, data, use_cache=False).image


def scramble_trainable(module, seed: int = 0) -> None:
    """Move every trainable tensor well away from its start, so heads and adapters matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.trainable_parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    module.clear_cache()


def recipe(**kw) -> TrainRecipe:
    return TrainRecipe(**{**dict(optimizer="adamw", lr=1e-2, weight_decay=0.0, batch_size=16, max_steps=6,
                                 val_fraction=0.25, eval_every=2), **kw})


@pytest.mark.parametrize("method,config", FROZEN)
def test_logits_from_cached_embeddings_equal_the_image_path(loaded, method, config):
    data = images(40, 1)
    module = build_method(method, loaded, data.class_names, data.template, config)
    scramble_trainable(module)
    assert module.image_tower_is_frozen()
    with torch.inference_mode():
        from_images = module(images_to_tensor(data.images, np.arange(len(data)), module.loaded))
        from_cache = module.logits_from_tower_output(torch.from_numpy(unit_embeddings(loaded, data)))
    torch.testing.assert_close(from_cache, from_images, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method,config", FROZEN)
def test_evaluate_run_from_cached_embeddings_gives_the_same_accuracies(loaded, method, config):
    test = images(48, 2)
    ood = {"three": images(30, 3, names=("red", "green", "blue"), template="{c}"), "four": images(21, 4)}
    module = build_method(method, loaded, test.class_names, test.template, config)
    scramble_trainable(module, seed=1)
    calls = []

    def cached(data):
        calls.append(data.name)
        return unit_embeddings(loaded, data)

    plain, fast = evaluate_run(module, test, ood), evaluate_run(module, test, ood, image_embeddings=cached)
    assert (plain["input"], fast["input"]) == ("images", "cached image embeddings")
    assert sorted(calls) == ["random2", "random3", "random4"]
    assert fast["test_acc"] == plain["test_acc"] and fast["ood_acc"] == plain["ood_acc"]


@pytest.mark.parametrize("method", CHANGED + ["peft_lora", "peft_ln_tuning"])
def test_methods_that_change_the_image_tower_ignore_or_refuse_cached_embeddings(loaded, method):
    data = images(24, 5)
    module = build_method(method, loaded, data.class_names, data.template)
    assert not module.image_tower_is_frozen()

    def never(data):
        raise AssertionError("cached embeddings must not be used for a method that changes the image tower")

    assert evaluate_run(module, data, {"again": data}, image_embeddings=never)["input"] == "images"
    with pytest.raises(ValueError, match="changes the image tower"):
        accuracy(module, data, image_embeddings=unit_embeddings(loaded, data))


def test_a_frozen_method_whose_image_tower_is_unfrozen_by_hand_is_not_treated_as_frozen(loaded):
    data = images(16, 6)
    module = build_method("clip_adapter", loaded, data.class_names, data.template)
    next(module.clip.visual.parameters()).requires_grad_(True)
    assert not module.image_tower_is_frozen()


def test_training_validates_from_cached_embeddings_with_the_same_outcome(loaded):
    data = images(64, 7)
    events: dict[str, list] = {"plain": [], "fast": []}
    states = {}
    for kind in events:
        torch.manual_seed(0)
        module = build_method("clip_adapter", loaded, data.class_names, data.template)
        extra = {"image_embeddings": lambda d: unit_embeddings(loaded, d)} if kind == "fast" else {}
        result = train(module, data, recipe(), progress=events[kind].append, **extra)
        states[kind] = (result.best_step, result.best_val_acc,
                        {n: p.detach().clone() for n, p in module.named_parameters() if "adapter" in n})
    val_accs = {kind: [e["val_acc"] for e in got if e["event"] == "eval"] for kind, got in events.items()}
    assert len(val_accs["plain"]) == 3 and val_accs["fast"] == val_accs["plain"]
    assert states["fast"][:2] == states["plain"][:2]
    for name, value in states["plain"][2].items():
        torch.testing.assert_close(states["fast"][2][name], value)


def test_training_validation_scores_the_cached_rows_of_its_validation_split(loaded, monkeypatch):
    data = images(64, 8)
    module = build_method("linear_probe", loaded, data.class_names, data.template)
    cached = unit_embeddings(loaded, data)[np.random.default_rng(0).permutation(len(data))]  # rows shuffled
    given, real = [], train_module.accuracy

    def spy(module, data, **kwargs):
        given.append(kwargs.get("image_embeddings"))
        return real(module, data, **kwargs)

    monkeypatch.setattr(train_module, "accuracy", spy)
    steps = recipe(max_steps=4)
    train(module, data, steps, image_embeddings=lambda d: cached)
    _, val_idx = split_indices(len(data), steps)
    assert len(given) == 2 and all(np.array_equal(rows, cached[val_idx]) for rows in given)
    given.clear()  # a method that trains the image tower validates on the images, whatever it is given
    train(build_method("bitfit", loaded, data.class_names, data.template), data, steps, image_embeddings=lambda d: cached)
    assert given == [None, None]


def test_bad_cached_embeddings_are_refused(loaded):
    data = images(20, 9)
    module = build_method("linear_probe", loaded, data.class_names, data.template)
    with pytest.raises(ValueError, match=r"shape \(20, D\)"):
        accuracy(module, data, image_embeddings=np.zeros((19, 32), dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        accuracy(module, data, image_embeddings=np.zeros(20, dtype=np.float32))
    with pytest.raises(ValueError, match="19 rows for 20 images"):
        train(module, data, recipe(), image_embeddings=lambda d: np.zeros((19, 32), dtype=np.float32))
