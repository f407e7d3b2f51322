"""The text encoder takes a template's prompts in batches (a 1,000-class dataset went in one batch)."""
import dataclasses

import numpy as np
import pytest
import torch

from core.embed import embed_prompts
from core.models import load_model


@pytest.fixture(scope="module")
def tiny():
    return load_model("worldclip-tiny-random")


def _counting(tiny, sizes: list[int]):
    class Counting(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def encode_text(self, tokens, normalize=True):
            sizes.append(len(tokens))
            return torch.nn.functional.normalize(tokens[:, :4].float() + 1.0, dim=-1)

    return dataclasses.replace(tiny, model=Counting())


@pytest.mark.parametrize("classes, batches", [(1, [1]), (256, [256]),
                                              (257, [256, 1]),
                                              (600, [256, 256, 88])])
def test_prompts_go_through_the_text_encoder_at_most_a_batch_at_a_time(tiny, classes, batches):
    sizes: list[int] = []
    text = embed_prompts(_counting(tiny, sizes), [f"class {i}" for i in range(classes)], ["a {c}", "the {c}"])
    assert text.shape == (classes, 4)
    assert sizes == batches * 2  # each template batched alike (was one call of `classes` prompts each)


def test_batched_prompts_give_the_single_batch_embeddings_in_class_order(tiny):
    names = [f"thing number {i}" for i in range(70)]
    whole = embed_prompts(tiny, names, "a photo of a {c}", batch_size=1000)
    batched = embed_prompts(tiny, names, "a photo of a {c}", batch_size=16)
    np.testing.assert_allclose(batched, whole, atol=1e-6)
    # a row out of place would still be unit length but far from its class's row
    assert float(np.min(np.sum(batched * whole, axis=1))) > 0.9999


def test_up_to_a_batch_of_classes_the_embeddings_are_bit_identical_to_one_call(tiny):
    names = [f"kind {i}" for i in range(40)]
    assert np.array_equal(embed_prompts(tiny, names, "a {c}"), embed_prompts(tiny, names, "a {c}", batch_size=10**6))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(tiny, bad):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        embed_prompts(tiny, ["a"], "a {c}", batch_size=bad)
