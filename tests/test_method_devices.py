"""Every method on a model that is not on the CPU: built there, trained a step, finalised, evaluated. "meta"
stands in for a GPU (no GPU here): a tensor a method makes on the CPU and mixes with the model's raises, as it
would on CUDA."""
from __future__ import annotations

import pytest

from core.methods import METHODS


@pytest.fixture(scope="module")
def elsewhere():
    from core.models import load_model

    loaded = load_model("worldclip-tiny")
    loaded.model.to("meta")
    return loaded


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in METHODS if n != "peft"])  # bare "peft" needs a config
def test_a_method_keeps_every_tensor_on_the_device_of_its_model(elsewhere, name):
    import torch
    import torch.nn.functional as F

    from core.methods import build_method

    module = build_method(name, elsewhere, ["a", "b", "c"], "a photo of a {c}")
    assert {p.device.type for p in module.parameters()} == {"meta"}
    images = torch.zeros(4, 3, elsewhere.image_size, elsewhere.image_size, device="meta")
    labels = torch.zeros(4, dtype=torch.long, device="meta")
    module.train()
    images = module.train_transform(images)
    logits = module(images)
    loss = F.cross_entropy(logits, labels)
    extra = module.extra_loss(images, labels, logits)
    if extra is not None:
        loss = loss + extra
    if any(p.requires_grad for p in module.parameters()):
        loss.backward()
    module.finalize()
    module.eval()
    with torch.inference_mode(), module.using_classes(["p", "q"], "{c}"):
        assert module(images).shape == (4, 2) and module(images).device.type == "meta"
