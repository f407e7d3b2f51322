"""A user's own method, registered in the test only (the registry is monkeypatched; nothing ships): what the
docs of ``core.methods`` promise a new method gets, and the clear errors it gets when it is wrong."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from core.data.base import LabeledImages
from core.methods import METHODS, build_method
from core.methods.base import ClassifierModel, MethodConfig, MethodEntry, require
from core.train import TrainRecipe, train


@dataclass
class PromptContextConfig(MethodConfig):
    n_ctx: int = 2

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_ctx >= 1, f"n_ctx must be >= 1, got {self.n_ctx}")


class PromptContext(ClassifierModel):
    """Shallow prompt learning: vectors added to the prompt's token embeddings after <SOT>, through a hook,
    so the trained parameters live outside the open_clip model but change the class-prompt features."""

    has_external_parts = True

    def __init__(self, loaded, class_names, template, config, method):
        super().__init__(loaded, class_names, template, method=method, config=config)
        embedding = self.clip.token_embedding
        self.ctx = nn.Parameter(torch.zeros(config.n_ctx, embedding.weight.shape[1]))
        embedding.register_forward_hook(self._add_context)

    def _add_context(self, _module, _inputs, out):
        pad = torch.zeros_like(out)
        pad[:, 1:1 + len(self.ctx)] = self.ctx
        return out + pad


class PromptContextDeclared(PromptContext):
    @property
    def text_trainable(self) -> bool:  # the remedy the error names
        return True


def _register(monkeypatch, name: str, cls: type[PromptContext]) -> None:
    def build(loaded, class_names, template, config):
        return cls(loaded, class_names, template, config, name)

    monkeypatch.setitem(METHODS, name, MethodEntry(name, PromptContextConfig, build, "prompt context (test only)"))


def _colours(n: int = 64) -> LabeledImages:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, n)
    colours = np.where(labels[:, None, None, None] == 0, (220, 30, 30), (30, 30, 220))
    images = colours + rng.normal(0, 20, (n, 32, 32, 3))
    pixels = np.clip(images, 0, 255).astype(np.uint8)
    return LabeledImages(pixels, labels, ["red", "blue"], "a photo of a {c}", "colours")


RECIPE = dict(optimizer="adamw", lr=1e-2, weight_decay=0.0, batch_size=16, max_steps=2, val_fraction=0.25)


def test_a_method_whose_parameters_never_reach_the_loss_is_told_what_to_override(monkeypatch, loaded):
    """Its prompt features were cached without the context (text_trainable looks only inside the open_clip
    model), and the cell failed with torch's 'element 0 of tensors does not require grad'."""
    _register(monkeypatch, "my_prompt_ctx", PromptContext)
    module = build_method("my_prompt_ctx", loaded, ["red", "blue"], "a photo of a {c}")
    with pytest.raises(ValueError, match="'my_prompt_ctx'.*depends on none of its trainable.*override text_trainable"):
        train(module, _colours(), TrainRecipe(**RECIPE))


def test_the_remedy_trains_the_prompt_context(monkeypatch, loaded):
    _register(monkeypatch, "my_prompt_ctx", PromptContextDeclared)
    module = build_method("my_prompt_ctx", loaded, ["red", "blue"], "a photo of a {c}")
    train(module, _colours(), TrainRecipe(**RECIPE))
    assert module.ctx.abs().sum() > 0  # the context moved, and the evaluated prompts use it
    zero_shot = build_method("zero_shot", loaded, ["red", "blue"], "a photo of a {c}")
    with torch.no_grad():
        assert not torch.allclose(module.class_features(), zero_shot.class_features())


def test_a_new_methods_card_says_what_it_lacks(monkeypatch):
    """A card written before its MethodInfo stopped core.cards' import (every page) with KeyError 'my_ln_only'; a
    card citing a key never added to CITATIONS raised KeyError on the Methods and models page."""
    from core import cards, method_info

    with pytest.raises(ValueError, match="'my_ln_only'.*core.method_info.OURS"):
        cards._family("my_ln_only")
    monkeypatch.setitem(method_info.OURS, "my_ln_only", method_info.MethodInfo("my_ln_only", "selective", "LNs"))
    card = cards.MethodCard("my_ln_only", "LN tuning", cards._family("my_ln_only"), "every LayerNorm",
                            citation="my-paper")
    with pytest.raises(ValueError, match="'my_ln_only' cites 'my-paper'.*CITATIONS"):
        cards.check_citations({**cards.METHOD_CARDS, "my_ln_only": card})
    cards.check_citations(cards.METHOD_CARDS)  # the shipped cards cite known papers


def test_a_baseline_of_ones_own_registry_is_left_out_of_the_predictor_table_as_of_the_ranking(monkeypatch):
    """The ranking leaves out every method whose card says baseline; jobs.predictors left out only the name
    'zero_shot', so a user's baseline (trains nothing, outcomes 0) was scored as a fine-tuning method."""
    from core import cards, predictor_eval, ranking, store
    from tests.fixtures import make_fixture_records

    card = cards.MethodCard("prompt_ensemble", "Prompt ensemble", "none", "nothing", baseline=True)
    monkeypatch.setitem(cards.METHOD_CARDS, "prompt_ensemble", card)
    runs = store.records_to_frame([dict(r, method="prompt_ensemble") if r["method"] == "zero_shot" else r
                                   for r in make_fixture_records(n_datasets=4, methods=("zero_shot", "lora"))])
    frame, _ = predictor_eval.predictor_frame(runs)
    assert set(frame["method"]) == set(ranking.without_baselines(runs)["method"]) == {"lora"}
