"""The tiny synthetic task the method and peft tests train on (tests/test_methods_*.py, tests/test_peft_*.py):
its classes, prompt template and seeded random images."""
from __future__ import annotations

import numpy as np

from core.data.base import LabeledImages

CLASSES = ["cat", "dog", "car", "tree"]
TEMPLATE = "a photo of a {c}"


def synthetic_task(n_images: int) -> LabeledImages:
    """``n_images`` random 32 x 32 RGB images with random labels among :data:`CLASSES` (seed 0)."""
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8),
                         rng.integers(0, len(CLASSES), n_images), CLASSES, TEMPLATE, "synthetic")


def task_fixtures(n_images: int, n_batch: int):
    """Module-scoped ``data`` (:func:`synthetic_task` of ``n_images``) and ``batch`` (its first ``n_batch``
    images as the model's input tensor) fixtures, for a test module to bind: ``data, batch = task_fixtures(..)``."""
    import pytest

    from core.imaging import images_to_tensor

    @pytest.fixture(scope="module")
    def data():
        return synthetic_task(n_images)

    @pytest.fixture(scope="module")
    def batch(loaded, data):
        return images_to_tensor(data.images, np.arange(n_batch), loaded)

    return data, batch
