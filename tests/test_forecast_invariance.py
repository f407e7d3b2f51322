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


def test_an_embedding_a_rounding_off_moves_only_past_rows_as_close():
    """Embeddings of the same images on another thread count or machine may differ in their last bits: ordered
    by a digest alone, every such row went elsewhere and every draw changed; ordered by values, none moves here."""
    x, _, y, names = _sample(300)
    nudged = np.nextafter(x, np.float32(np.inf))  # every value one float32 step up
    assert np.array_equal(predict.content_order(nudged, y, names), predict.content_order(x, y, names))


def test_a_negative_zero_orders_its_row_as_a_zero_does():
    """-0.0 and 0.0 are one value (a sum that lands on zero may give either): rows that tie on their first 8 values
    are put in order by a digest of the whole row, which must not tell the two zeros apart."""
    rng = np.random.default_rng(3)
    x = np.tile(rng.normal(size=(1, 16)), (60, 1))  # every row ties on the first 8 values
    x[:, 8:] = rng.normal(size=(60, 8))
    x[::2, 12] = 0.0
    negative = x.copy()
    negative[::2, 12] = -0.0
    y, names = np.arange(60) % 3, ["a", "b", "c"]
    assert np.array_equal(predict.content_order(negative, y, names), predict.content_order(x, y, names))


# ----------------------------------------------------------------------------- end to end: python -m jobs.forecast
def _members() -> list[tuple[str, bytes]]:
    import io
    import zipfile

    from tests.app_helpers import sample_zip

    with zipfile.ZipFile(io.BytesIO(sample_zip(n_per_class=4))) as zf:
        return [(info.filename, zf.read(info)) for info in zf.infolist()]


def _zip(path, members) -> str:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    return str(path)


def _same_documents(docs: list[dict]) -> None:
    """Every forecast of ``docs`` (jobs.forecast's JSON) says what the first says, numbers to 1e-6 relative (the
    IIMM interval to 1e-7 absolute: float32 sums in another order); its file's name and digest aside."""
    def close(a, b, where):
        if isinstance(a, dict):
            assert set(a) == set(b), where
            for key in a:
                close(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list):
            assert len(a) == len(b), where
            for k, (u, v) in enumerate(zip(a, b)):
                close(u, v, f"{where}[{k}]")
        elif isinstance(a, float) and isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-6, abs=1e-7), where
        else:
            assert a == b, where

    first, *others = ({k: v for k, v in doc.items() if k not in ("sample", "sample_sha256")} for doc in docs)
    for k, other in enumerate(others, 1):
        close(other, first, f"forecast {k}")


def test_a_sample_reordered_renamed_or_given_with_a_manifest_gets_the_same_forecast(fixture_store, tmp_path):
    """The same 12 images as a zip, the zip again (the same upload twice in one process), its entries written in
    reverse, its files renamed (classes kept), and a flat zip with a shuffled CSV manifest: one forecast, five
    times. Before, the renamed and manifest samples' rows came in another order and the IIMM interval moved."""
    import json

    from jobs import forecast as job

    members = _members()
    rng = np.random.default_rng(2)
    new = [f"{name.split('/')[0]}/IMG_{k:04d}.png" for name, k in zip((n for n, _ in members),
                                                                       rng.permutation(100)[:len(members)])]
    flat = [(f"p{k:02d}.png", data) for k, (_, data) in zip(rng.permutation(len(members)), members)]
    manifest = "file,label\n" + "".join(f"{f},{name.split('/')[0]}\n" for (f, _), (name, _) in zip(flat, members))
    rows = manifest.splitlines()
    manifest = "\n".join([rows[0], *(rows[1:][k] for k in rng.permutation(len(rows) - 1))]) + "\n"
    samples = [_zip(tmp_path / "a.zip", members), str(tmp_path / "a.zip"),
               _zip(tmp_path / "reversed.zip", members[::-1]),
               _zip(tmp_path / "renamed.zip", [(n, data) for n, (_, data) in zip(new, members)]),
               _zip(tmp_path / "manifest.zip", [("labels.csv", manifest.encode()), *flat])]
    out = tmp_path / "f.json"
    assert job.main([*samples, "--model", "worldclip-tiny-random", "--out", str(out)]) == 0
    docs = json.loads(out.read_text(encoding="utf-8"))["forecasts"]
    assert len(docs) == 5 and docs[0]["n_images"] == 12 and docs[0]["enough_runs"]
    _same_documents(docs)


def test_an_npz_with_its_rows_shuffled_and_classes_renumbered_gets_the_same_forecast(fixture_store, tmp_path):
    import io
    import json

    from jobs import forecast as job
    from tests.app_helpers import embeddings_npz

    with np.load(io.BytesIO(embeddings_npz())) as npz:
        x, t, y, names = (npz[k] for k in ("image_embeddings", "text_embeddings", "labels", "class_names"))
    x2, t2, y2, names2 = _stored_otherwise(x, t, y, list(names), seed=5)
    np.savez(tmp_path / "a.npz", image_embeddings=x, text_embeddings=t, labels=y, class_names=names)
    np.savez(tmp_path / "b.npz", image_embeddings=x2, text_embeddings=t2, labels=y2, class_names=np.array(names2))
    out = tmp_path / "f.json"
    assert job.main([str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--model", "worldclip-tiny-random",
                     "--out", str(out)]) == 0
    _same_documents(json.loads(out.read_text(encoding="utf-8"))["forecasts"])


@pytest.mark.slow
def test_the_same_sample_in_two_processes_gets_the_same_forecast(fixture_store, tmp_path):
    """Two runs of the job in fresh processes, with different string hashing (set and dict orders of names); the
    fixture store named with --results (this process's stand-in for the shipped folder is not theirs)."""
    import json
    import os
    import subprocess
    import sys

    sample = _zip(tmp_path / "a.zip", _members())
    docs = []
    for k, hash_seed in enumerate(("1", "2")):
        out = tmp_path / f"f{k}.json"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.getcwd()}
        done = subprocess.run([sys.executable, "-m", "jobs.forecast", sample, "--model", "worldclip-tiny-random",
                               "--results", str(fixture_store), "--out", str(out)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        docs += json.loads(out.read_text(encoding="utf-8"))["forecasts"]
    _same_documents(docs)


def test_the_same_embeddings_as_an_npz_in_another_order_forecast_as_the_images_do(fixture_store, loaded):
    """An image sample, and its embeddings by the same model uploaded as an .npz with rows and classes in another
    order: the same IIMM, interval, zero-shot measures and forecasts; LEEP alone is left out (an .npz does not say
    the model's logit scale), as its note says."""
    import io

    from core.embed import embed_dataset
    from core.upload import load_image_folder_zip
    from tests.app_helpers import sample_zip

    sample = load_image_folder_zip(io.BytesIO(sample_zip(n_per_class=4))).data
    runs = store.load_runs(store.default_roots())
    images = predict.forecast_for_sample(loaded, sample, runs, n_boot=50)
    emb = embed_dataset(loaded, sample, use_cache=False)
    x, t, y, names = _stored_otherwise(emb.image, emb.text, emb.labels, list(emb.class_names), seed=9)
    npz = predict.forecast_for_npz({"image_embeddings": x, "text_embeddings": t, "labels": y, "class_names": names},
                                   runs, "worldclip-tiny-random", n_boot=50)
    assert (npz.iimm, npz.iimm_lo, npz.iimm_hi) == pytest.approx((images.iimm, images.iimm_lo, images.iimm_hi),
                                                                 rel=1e-6, abs=1e-7)
    assert npz.zero_shot == pytest.approx(images.zero_shot, rel=1e-6, abs=1e-12)
    assert set(images.transferability) - set(npz.transferability) == {"leep"}
    assert npz.transferability == pytest.approx({k: v for k, v in images.transferability.items() if k != "leep"},
                                                rel=1e-6, abs=1e-12)
    assert any(note.startswith("LEEP left out") for note in npz.notes)
    pd.testing.assert_frame_equal(npz.forecasts, images.forecasts, check_exact=False, rtol=1e-6)
