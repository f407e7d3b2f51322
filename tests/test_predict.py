"""core.predict: one sample's embeddings -> zero-shot measures -> per-method forecasts."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import metrics, predict, store
from tests.fixtures import LINES, make_fixture_records


def _embeddings(n=90, c=3, d=32, shared=1.5, seed=0):
    """Images clustered around their class prompt plus a shared direction (positive IIMM)."""
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(c, d))
    common = rng.normal(size=d)
    y = np.arange(n) % c
    x = t[y] + shared * common + rng.normal(size=(n, d))
    return x.astype(np.float32), t.astype(np.float32), y, [f"class{i}" for i in range(c)]


@pytest.fixture(scope="module")
def runs():
    return store.records_to_frame(make_fixture_records(n_datasets=6, methods=("full", "bitfit", "lora")))


def _run(runs_df, **kw):
    x, t, y, names = _embeddings()
    args = dict(model="worldclip-tiny", pretrained="world-v1", model_label="worldclip-tiny (world-v1)",
                random_weights=False, n_boot=100)
    args.update(kw)
    return predict.forecast_for_embeddings(x, t, y, names, runs_df, **args)


def test_iimm_and_interval_match_core_metrics(runs):
    x, t, y, _ = _embeddings()
    res = _run(runs)
    assert res.iimm == pytest.approx(metrics.iimm(x, t, y), abs=1e-9)
    assert res.iimm_lo < res.iimm < res.iimm_hi
    row = res.measures.set_index("measure").loc["iimm"]
    assert (row["value"], row["lo"], row["hi"]) == (res.iimm, res.iimm_lo, res.iimm_hi)
    assert {"inter_modal", "intra_image", "zs_acc", "modality_gap"} <= set(res.measures["measure"])
    assert res.n_images == 90 and res.n_classes == 3


def test_forecasts_follow_the_fixture_lines(runs):
    res = _run(runs)
    assert res.enough_runs and res.message is None and res.command is None
    table = res.forecasts.set_index("method")
    assert list(table.index) == ["bitfit", "full", "lora"]
    for method in table.index:
        a, b, c = LINES[method]
        assert table.loc[method, "id_gain"] == pytest.approx(a + b * res.iimm, abs=1e-6)
        assert table.loc[method, "ood_change"] == pytest.approx(-c * res.iimm, abs=1e-6)
        assert table.loc[method, "status"] == "ok"
        assert table.loc[method, "id_gain_lodo_mae"] == pytest.approx(0.0, abs=1e-6)
    outside = res.iimm < 0.2 or res.iimm > 0.45
    assert bool(table["extrapolation"].all()) == outside


def test_noisy_runs_give_intervals_around_the_prediction():
    noisy = store.records_to_frame(make_fixture_records(n_datasets=8, seeds=(0, 1), noise=1.0))
    res = _run(noisy)
    t = res.forecasts
    assert (t["id_gain_lo"] < t["id_gain"]).all() and (t["id_gain"] < t["id_gain_hi"]).all()
    assert (t["ood_change_lo"] < t["ood_change"]).all() and (t["ood_change"] < t["ood_change_hi"]).all()
    assert (t["id_gain_lodo_mae"] > 0).all()


def test_no_reference_runs_says_so_and_gives_the_default_grid_command(runs):
    res = _run(runs.iloc[:0])
    assert not res.enough_runs and res.forecasts.empty
    assert "No reference runs for worldclip-tiny (world-v1)" in res.message
    assert res.command == "python -m jobs.grid jobs/configs/default.toml --results results/default"


def test_too_few_runs_names_the_count_and_adapts_the_command_to_the_model():
    few = store.records_to_frame(make_fixture_records(n_datasets=2, model="ViT-B-32", pretrained="openai"))
    res = _run(few, model="ViT-B-32", pretrained="openai", model_label="ViT-B-32 (openai)")
    assert not res.enough_runs
    assert "Too few reference runs" in res.message and "2 dataset(s)" in res.message
    assert 'models = ["CLIP"]' in res.command and "results/clip" in res.command
    assert res.forecasts["status"].str.contains("too few runs").all()


def test_zero_shot_runs_are_no_method_to_forecast_and_never_make_enough_runs():
    """A grid stopped after its zero-shot cells (every dataset) and a few fine-tuning ones: the zero-shot rows
    (outcomes 0 by definition) counted as a forecast, so the result said there were enough runs, showed no
    method and no grid command, and the message would have named zero-shot the best-covered method."""
    frame = store.records_to_frame(make_fixture_records(n_datasets=6, methods=("zero_shot",))
                                   + make_fixture_records(n_datasets=2, methods=("full",)))
    res = _run(frame)
    assert not res.enough_runs and res.command is not None  # was: enough_runs True, no command
    assert "2 dataset(s)" in res.message  # the best-covered fine-tuning method (was: zero-shot's 6)
    assert "zero_shot" not in set(res.raw_forecasts["method"]) | set(res.forecasts["method"])
    only = _run(store.records_to_frame(make_fixture_records(n_datasets=6, methods=("zero_shot",))))
    assert not only.enough_runs and only.command is not None


def test_random_weights_are_visibly_labelled(runs):
    res = _run(runs, random_weights=True, model_label="worldclip-tiny (random)")
    assert "RANDOM WEIGHTS" in res.title
    assert "RANDOM WEIGHTS" in res.notes[0]
    assert "RANDOM" not in _run(runs).title


def test_transferability_baselines_and_their_absence(runs, monkeypatch):
    res = _run(runs, logit_scale=14.3)
    assert {"logme", "leep", "nce", "gbc", "emms"} <= set(res.baselines["baseline"])
    assert any("EMMS label embeddings from: model text tower" in n for n in res.notes)
    without = _run(runs)  # no logit scale known (an .npz upload): LEEP is left out, and said so
    assert "leep" not in set(without.baselines["baseline"]) and any("LEEP left out" in n for n in without.notes)
    assert np.isfinite(res.baselines.set_index("baseline").loc["logme", "score"])
    monkeypatch.setitem(sys.modules, "core.transferability", None)  # import now fails
    monkeypatch.delattr("core.transferability", raising=False)
    res = _run(runs)
    assert res.baselines.empty and res.transferability == {}
    assert any("transferability baselines unavailable" in n for n in res.notes)


def test_softmax_probs_are_a_distribution_following_the_cosines():
    x, t, y, _ = _embeddings()
    p = predict.softmax_probs(x, t, 14.3)
    assert p.shape == (90, 3)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    np.testing.assert_array_equal(p.argmax(1), (xn @ tn.T).argmax(1))


def test_bad_input_raises_clear_errors(runs):
    x, t, y, names = _embeddings()
    with pytest.raises(ValueError, match="class_names has 2 names for 3"):
        predict.forecast_for_embeddings(x, t, y, names[:2], runs, model="m", pretrained="p",
                                        model_label="m", random_weights=False)
    with pytest.raises(ValueError, match="labels"):
        predict.forecast_for_embeddings(x, t, y[:-1], names, runs, model="m", pretrained="p",
                                        model_label="m", random_weights=False)
    with pytest.raises(ValueError, match="text_embeddings must be 2-D"):
        predict.forecast_for_embeddings(x, np.float32(1.0), y, names, runs, model="m", pretrained="p",
                                        model_label="m", random_weights=False)
    for bad in (2, 0, 4.5, True):  # 2 was refused as 'min_runs must be at least 3', a name the caller never used
        with pytest.raises(ValueError, match=f"min_datasets must be an integer >= 3.*got {bad!r}"):
            _run(runs, min_datasets=bad)


def test_highlight_carries_the_method_forecast():
    # noisy outcomes: on the noise-free fixture an interval has no width, so lo, y and hi could be swapped unseen
    res = _run(store.records_to_frame(make_fixture_records(n_datasets=6, methods=("full",), noise=0.5)))
    h = res.highlight("id_gain", "full")
    row = res.forecasts.set_index("method").loc["full"]
    assert h["x"] == res.iimm and h["y"] == pytest.approx(row["id_gain"])
    raw = res.raw_forecasts.set_index(["method", "outcome"]).loc[("full", "id_gain")]
    assert h["lo"] < h["y"] < h["hi"] and (h["lo"], h["hi"]) == (pytest.approx(raw["lo"]), pytest.approx(raw["hi"]))
    assert h["label"] == "your dataset (full, IIMM line)"  # the chart's axis is IIMM: it marks that line's forecast
    assert "y" not in res.highlight("ood_change")
    with pytest.raises(ValueError, match="unknown outcome"):
        res.highlight("accuracy")


def test_forecast_for_npz_takes_the_named_models_reference_runs(runs):
    x, t, y, names = _embeddings()
    arrays = {"image_embeddings": x, "text_embeddings": t, "labels": y, "class_names": names}
    res = predict.forecast_for_npz(arrays, runs, "worldclip-tiny", n_boot=50)
    assert (res.model, res.pretrained, res.random_weights) == ("worldclip-tiny", "world-v1", False)
    assert "uploaded embeddings" in res.model_label and res.enough_runs
    random = predict.forecast_for_npz(arrays, runs, "worldclip-tiny-random", n_boot=50)
    assert random.pretrained == "random" and not random.enough_runs and "RANDOM WEIGHTS" in random.title


def test_forecast_for_sample_embeds_with_the_random_tiny_model():
    from core.data.base import LabeledImages
    from core.models import load_model

    loaded = load_model("worldclip-tiny-random")
    rng = np.random.default_rng(0)
    sample = LabeledImages(rng.integers(0, 255, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 4,
                           ["red", "green", "blue", "grey"], "a photo of a {c}")
    runs_df = store.records_to_frame(make_fixture_records(pretrained="random"))
    seen = []
    res = predict.forecast_for_sample(loaded, sample, runs_df, n_boot=50,
                                      progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (40, 40)
    assert (res.model, res.pretrained, res.random_weights) == ("worldclip-tiny", "random", True)
    assert "RANDOM WEIGHTS" in res.title and res.enough_runs
    assert res.timings["embed_s"] > 0 and isinstance(res.forecasts, pd.DataFrame)
    assert "leep" in res.transferability  # the model's own temperature is passed, so LEEP is scored
    assert not any("LEEP left out" in n for n in res.notes)


def test_selected_forecast_beside_the_iimm_line():
    noisy = store.records_to_frame(make_fixture_records(n_datasets=8, seeds=(0, 1), noise=1.0))
    res = _run(noisy)
    sel = res.selected
    assert len(sel) == 2 * res.forecasts.shape[0] and (sel["status"] == "ok").all()
    assert ((sel["lo"] < sel["prediction"]) & (sel["prediction"] < sel["hi"])).all()
    # the IIMM-only columns are the OLS line of the forecasts table
    wide = res.forecasts.set_index("method")
    for r in sel[sel["outcome"] == "id_gain"].itertuples():
        assert r.iimm_prediction == pytest.approx(wide.loc[r.method, "id_gain"])


def test_baselines_of_raw_rows_equal_those_of_their_normalised_rows(runs):
    """Reference runs' baselines come from L2-normalised rows (core.embed); an .npz upload may hold raw
    rows of any per-row scale, and must get the same scores (GBC, TransRate, NCTI... are not scale-free)."""
    x, t, y, names = _embeddings()
    scales = np.random.default_rng(1).uniform(5, 15, size=(len(x), 1)).astype(np.float32)
    args = dict(model="worldclip-tiny", pretrained="world-v1", model_label="m", random_weights=False,
                n_boot=20, logit_scale=14.3)
    raw = predict.forecast_for_embeddings(x * scales, t * 3, y, names, runs, **args)
    unit = predict.forecast_for_embeddings(metrics.unit_rows(x, "x"), metrics.unit_rows(t, "t"), y, names,
                                           runs, **args)
    got, want = (r.baselines.set_index("baseline")["score"] for r in (raw, unit))
    assert set(got.index) >= {"gbc", "transrate", "ncti", "emms", "sfda", "h_score", "logme"}
    np.testing.assert_allclose(got.loc[want.index], want, rtol=1e-5, atol=1e-6)


def _world_runs(names, noise=0.5):
    """Fixture runs whose datasets are named as world tasks (so their train-split size is known)."""
    records = make_fixture_records(n_datasets=len(names), methods=("full", "lora"), noise=noise, seeds=(0, 1))
    fixture_names = sorted({r["dataset"] for r in records})
    rename = dict(zip(fixture_names, names))
    return store.records_to_frame([dict(r, dataset=rename[r["dataset"]]) for r in records])


V1 = ["shape-kind", "shape-size", "shape-count", "letters", "chart-trend", "texture-pattern", "stripe-orientation"]


def test_baselines_compete_only_when_scored_on_as_many_images_as_the_references():
    runs = _world_runs(V1)  # world-v1 tasks: 1,500 train images each
    rows, note = predict.baseline_rows(runs, "worldclip-tiny", "world-v1", 120)
    assert rows is None and "your sample has 120 images where the reference datasets' train splits have 1,500" in note
    rows, note = predict.baseline_rows(runs, "worldclip-tiny", "world-v1", 1600, seed=3)
    assert len(rows) == 1500 and len(set(rows)) == 1500 and rows.max() < 1600 and "random 1,500 of your 1,600" in note
    assert np.array_equal(rows, predict.baseline_rows(runs, "worldclip-tiny", "world-v1", 1600, seed=3)[0])
    rows, note = predict.baseline_rows(runs, "worldclip-tiny", "world-v1", 1500)
    assert np.array_equal(rows, np.arange(1500)) and note is None
    mixed = _world_runs(V1[:-1] + ["w2-letters"])  # 1,500 and 2,000
    assert predict.baseline_rows(mixed, "worldclip-tiny", "world-v1", 1800)[0] is None
    unknown = store.records_to_frame(make_fixture_records(n_datasets=6))  # fx-set-*: sizes unknown
    assert "not known to have one size" in predict.baseline_rows(unknown, "worldclip-tiny", "world-v1", 1800)[1]


def test_a_small_sample_forecasts_from_zero_shot_measures_only():
    """EMMS, LogME, H-score... of 120 images are not comparable with the references' 1,500-image values."""
    from core.data.registry import world_finetune_tasks

    runs = _world_runs(list(world_finetune_tasks()), noise=5.0)  # IIMM explains little of this
    # a baseline that explains full FT's gain exactly: at the references' size it would be chosen
    gain = runs[runs["method"] == "full"].groupby("dataset")["id_gain"].mean()
    runs["transferability"] = [json.dumps({**json.loads(tf), "gbc": float(gain[d])})
                               for tf, d in zip(runs["transferability"], runs["dataset"])]
    x, t, y, names = _embeddings(n=120)
    res = predict.forecast_for_embeddings(x, t, y, names, runs, model="worldclip-tiny", pretrained="world-v1",
                                          model_label="m", random_weights=False, n_boot=20, logit_scale=14.3)
    assert {"logme", "gbc"} <= set(res.baselines["baseline"])  # still shown
    used = set(" + ".join(res.selected.loc[res.selected["status"] == "ok", "predictors"]).split(" + "))
    assert used and not used & set(res.baselines["baseline"])
    assert any("left out of the forecast's choice of predictors" in n for n in res.notes)


def test_highlight_follows_the_outcome_asked_for(runs):
    res = _run(runs)
    for outcome in ("id_gain", "ood_change"):
        row = res.raw_forecasts[(res.raw_forecasts["method"] == "full") & (res.raw_forecasts["outcome"] == outcome)]
        assert res.highlight(outcome, "full")["y"] == pytest.approx(float(row["prediction"].iloc[0]))


def test_forecasts_use_only_the_runs_of_the_models_own_pretrained_weights():
    """Two tags of one architecture with different lines: a forecast for one must not fit the other's runs."""
    mine = make_fixture_records(n_datasets=6, methods=("full",), pretrained="world-v1")
    other = [dict(r, run_id=r["run_id"] + "-b", pretrained="other", id_gain=r["id_gain"] + 8,
                  ft_acc=r["ft_acc"] + 8, norm_gain=(r["ft_acc"] + 8 - r["zs_acc"]) / (100 - r["zs_acc"]))
             for r in make_fixture_records(n_datasets=6, methods=("full",), pretrained="world-v1")]
    assert all(r["ft_acc"] <= 100 for r in other)
    both = store.records_to_frame(mine + other)
    alone = store.records_to_frame(mine)
    got, want = (_run(df) for df in (both, alone))
    assert got.forecasts.set_index("method").loc["full", "id_gain"] == pytest.approx(
        want.forecasts.set_index("method").loc["full", "id_gain"])  # the IIMM line
    assert got.selected["prediction"].tolist() == pytest.approx(want.selected["prediction"].tolist())  # the chosen
    assert len(predict.reference_runs(both, "worldclip-tiny", "world-v1", "full")) == 6


def test_one_row_per_method_keeps_each_outcomes_problem_and_extrapolation():
    def long(status_ood="ok", extrapolation=(True, False)):
        base = dict(prediction=1.0, lo=0.0, hi=2.0, lodo_mae=0.5, r2=0.3, kendall_tau=0.1, n_datasets=6)
        rows = [dict(base, method="full", outcome=o, status="ok", extrapolation=e)
                for o, e in zip(("id_gain", "norm_gain", "ood_change"), (extrapolation[0], False, extrapolation[1]))]
        rows[-1]["status"] = status_ood
        return pd.DataFrame(rows)

    row = predict._wide(long()).iloc[0]
    assert row["status"] == "ok" and bool(row["extrapolation"])  # the gain's extrapolation is not overwritten
    row = predict._wide(long(status_ood="too few runs (n=3, need 6 datasets)")).iloc[0]
    assert row["status"] == "ood_change: too few runs (n=3, need 6 datasets)"  # not "ok"


def test_reference_runs_with_random_weights_are_flagged_once(runs):
    """Reference runs whose records say random weights: the result says so (reference_random_weights, one note);
    when the model itself is untrained its own RANDOM WEIGHTS note says it already, so no second one is added;
    other pairs' flags do not count."""
    flagged = runs.assign(random_weights=True)
    res = _run(flagged)
    assert res.reference_random_weights and res.notes[0].startswith("The reference runs of")
    own = _run(flagged, random_weights=True, model_label="worldclip-tiny (random)")
    assert own.reference_random_weights
    assert sum("RANDOM WEIGHTS" in n for n in own.notes) == 1 and not any("reference runs of" in n for n in own.notes)
    other = pd.concat([runs, runs.assign(pretrained="other-tag", random_weights=True)], ignore_index=True)
    assert not _run(other).reference_random_weights


@pytest.mark.parametrize("tag", ["laion2b_s34b_b79k", "/data/weights/my.pt", "it's a&b \"q\" \\x ü"])
def test_the_grid_command_for_any_model_key_writes_that_key(tmp_path, tag):
    # a weights file's key ended sed's s/// at its first '/' ("unknown option to `s'"): the page's command failed
    import subprocess
    import tomllib

    from core.models import spec_for

    (tmp_path / "jobs" / "configs").mkdir(parents=True)
    (tmp_path / predict.DEFAULT_GRID).write_text(Path(predict.DEFAULT_GRID).read_text(encoding="utf-8"), encoding="utf-8")
    command = predict.grid_command("ViT-B-32", tag)
    setup, _, grid = command.partition(" && python -m jobs.grid ")
    subprocess.run(["bash", "-c", setup], cwd=tmp_path, check=True, capture_output=True)
    config = tmp_path / grid.split()[0]
    assert tomllib.loads(config.read_text(encoding="utf-8"))["models"] == [spec_for("ViT-B-32", tag).key]


def _with_a_single_image_class(runs):
    """The forecast of :func:`_embeddings` with class2 down to one image (GBC needs 2 per class), and its inputs."""
    x, t, y, names = _embeddings()
    y = np.where(y == 2, 0, y)
    y[5] = 2  # class2: one image
    res = predict.forecast_for_embeddings(x, t, y, names, runs, model="worldclip-tiny", pretrained="world-v1",
                                          model_label="tiny", random_weights=False, n_boot=20)
    return res, (x, t, y, names)

def test_a_class_with_a_single_image_is_named_beside_the_baselines_it_leaves_blank(runs):
    """GBC needs 2 images per class: with one it is NaN, which the page and the job showed blank without a word
    (the reason went to the log alone); a note now names the baselines left blank and the class."""
    res, (x, t, y, names) = _with_a_single_image_class(runs)
    blank = sorted(k for k, v in res.transferability.items() if not np.isfinite(v))
    assert blank == ["gbc", "gbc_diagonal"]
    (note,) = [n for n in res.notes if n.startswith("Transferability baselines left blank")]
    assert "gbc, gbc_diagonal" in note and "'class2' has a single image" in note
    two = np.where(y == 1, 0, y)
    two[6] = 1  # class1 and class2: one image each, said in the plural
    res = predict.forecast_for_embeddings(x, t, two, names, runs, model="worldclip-tiny", pretrained="world-v1",
                                          model_label="tiny", random_weights=False, n_boot=20)
    (note,) = [n for n in res.notes if n.startswith("Transferability baselines left blank")]
    assert "classes 'class1', 'class2' have a single image" in note
    whole = _run(runs)
    assert np.isfinite(list(whole.transferability.values())).all()
    assert not any(n.startswith("Transferability baselines left blank") for n in whole.notes)


def test_each_blank_or_subsampled_baseline_says_why_in_its_own_row(runs, monkeypatch):
    """The baselines table (the page's, saved as CSV alone, and jobs.forecast's JSON) showed a blank GBC and
    scores computed on a subsample, or left out of the choice, with the reasons in the page's notes only; each
    baseline's row now has a note."""
    res, _ = _with_a_single_image_class(runs)
    notes = res.baselines.set_index("baseline")["note"]
    assert notes["gbc"].startswith("left blank: class 'class2' has a single image")
    finite = [k for k, v in res.transferability.items() if np.isfinite(v)]
    assert finite and not any(notes[k].startswith("left blank") for k in finite)
    for rows, said in ((np.arange(0, 90, 2), "scored on a random 45 of the 90 images"),  # the references' size
                       (None, "left out of the forecast's choice"),  # a size the references do not share
                       (np.arange(90), "")):  # every image, competing: nothing to say
        monkeypatch.setattr(predict, "baseline_rows", lambda *a, rows=rows, **k: (rows, "a note"))
        res = predict.forecast_for_embeddings(*_embeddings(), runs, model="worldclip-tiny", pretrained="world-v1",
                                              model_label="tiny", random_weights=False, n_boot=20)
        assert len(res.baselines) and all(said in note and (said or not note) for note in res.baselines["note"])


def test_the_result_docstring_names_the_columns_its_measures_and_baselines_have(runs):
    """ForecastResult's docstring lists the columns of its measures and baselines tables, which the page shows and
    jobs.forecast's JSON writes: a column added (the baselines' note) must be said there too."""
    import re

    from core.forecast_result import ForecastResult

    res = _run(runs, n_boot=20)
    doc = " ".join(ForecastResult.__doc__.split())
    for name, frame in (("measures", res.measures), ("baselines", res.baselines)):
        said = re.search(rf"{name}: one row per [^(]*\(([^)]*)\)", doc)
        assert said, name
        assert [c.strip() for c in said.group(1).split(",")] == list(frame.columns), name
