"""Helpers shared by the core.upload test modules (tests/test_upload_corpus.py, tests/test_upload_images.py):
a parsed sample's image count per class."""
from __future__ import annotations

import numpy as np


def class_counts(sample) -> dict:
    counts = np.bincount(sample.data.labels, minlength=len(sample.data.class_names))
    return dict(zip(sample.data.class_names, counts.tolist()))
