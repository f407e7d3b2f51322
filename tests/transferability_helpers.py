"""Helpers shared by the core.transferability test modules (tests/test_transferability_baselines.py and
tests/test_transferability_inputs.py): clustered features, and a baseline called by name."""
from __future__ import annotations

import numpy as np

from core import transferability as tr


FEATURE_FNS = ["gbc", "gbc_diagonal", "h_score", "transrate", "sfda", "ncti", "logme"]


def clusters(n=240, d=12, k=4, noise=0.15, seed=0):
    """Unit features around k well-spread class centres, and the same features with shuffled labels."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    centres = np.linalg.qr(rng.standard_normal((d, k)))[0].T  # orthonormal: well spread
    x = centres[y] + noise * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, y, rng.permutation(y), centres


def call(name, x, y, **kw):
    return tr.BASELINES[name][0](x, y, **kw)
