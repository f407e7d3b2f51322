"""What a user gets from a sample depends on its images, not on how they are stored: the same embeddings with
their rows in another order (files renamed or listed in another order) and their classes numbered otherwise give
the same forecast, its seeded draws (IIMM's bootstrap, the baselines' and silhouettes' subsamples) included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import predict, store
from tests.fixtures import make_fixture_records

V1 = ["shape-kind", "shape-size", "shape-count", "letters", "chart-trend", "texture-pattern", "stripe-orientation"]


def _world_runs():
    """Fixture runs on world-v1 tasks (1,500 train images each): a sample of more is subsampled for its baselines."""
    records = make_fixture_records(n_datasets=len(V1), methods=("full", "lora"), noise=0.5, seeds=(0, 1))
    rename = dict(zip(sorted({r["dataset"] for r in records}), V1))
    return store.records_to_frame([dict(r, dataset=rename[r["dataset"]]) for r in records])


def _sample(n, c=4, d=16, seed=0):
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(c, d))
    y = np.arange(n) % c
    return (t[y] + rng.normal(size=(n, d))).astype(np.float32), t.astype(np.float32), y, [f"k{i}" for i in range(c)]


def _stored_otherwise(x, t, y, names, seed=1):
    """The same sample with its rows shuffled (labels with them) and its classes renumbered."""
    rng = np.random.default_rng(seed)
    rows, new = rng.permutation(len(x)), rng.permutation(len(t))  # class k is numbered new[k]
    t2, names2 = np.empty_like(t), [""] * len(names)
    t2[new] = t
    for k, name in enumerate(names):
        names2[new[k]] = name
    return x[rows], t2, new[y][rows], names2


def _same(a, b):
    # float32 rows are resampled in float32 (core.metrics.bootstrap_iimm): sums in another order differ by ~1e-8
    assert (a.iimm_lo, a.iimm_hi) == pytest.approx((b.iimm_lo, b.iimm_hi), rel=1e-6, abs=1e-7)
    assert a.zero_shot == pytest.approx(b.zero_shot, rel=1e-6, abs=1e-12)
    assert a.transferability == pytest.approx(b.transferability, rel=1e-6, abs=1e-12)
    pd.testing.assert_frame_equal(a.forecasts, b.forecasts, check_exact=False, rtol=1e-6)
    pd.testing.assert_frame_equal(a.selected, b.selected, check_exact=False, rtol=1e-6)


def test_rows_in_another_order_and_classes_numbered_otherwise_give_the_same_forecast():
    """2,100 images: IIMM's bootstrap, the baselines' 1,500-image subsample and the silhouettes' 2,000 all draw
    from them; before, each drew by position, so renaming the files moved the interval and the baselines."""
    runs = _world_runs()
    x, t, y, names = _sample(2100)
    kw = dict(model="worldclip-tiny", pretrained="world-v1", model_label="tiny", random_weights=False, n_boot=50)
    first = predict.forecast_for_embeddings(x, t, y, names, runs, **kw)
    assert first.baselines["score"].notna().all() and not first.selected.empty
    assert any("random 1,500 of your 2,100" in note for note in first.notes)
    _same(predict.forecast_for_embeddings(*_stored_otherwise(x, t, y, names), runs, **kw), first)


def test_the_order_is_the_contents_and_float64_rows_draw_as_their_float32_values():
    x, t, y, names = _sample(40)
    order = predict.content_order(x, y, names)
    assert sorted(order) == list(range(40))
    x2, _, y2, names2 = _stored_otherwise(x, t, y, names)
    assert np.array_equal(x[order], x2[predict.content_order(x2, y2, names2)])
    assert np.array_equal(order, predict.content_order(x.astype(np.float64), y, names))
    twins = np.vstack([x[:1], x[:1]])  # one image under two classes: the class's name orders them
    assert list(predict.content_order(twins, np.array([1, 0]), ["a", "b"])) == [1, 0]
