"""A forecast of a sample cut from a reference dataset leaves that dataset out and says so
(core.reference_overlap, core.predict, the Forecast page, jobs.forecast); the example sample (scene-kind, an OOD-panel
task never fine-tuned on) leaves nothing out."""
from __future__ import annotations

import io
import json
import logging
import threading
import time
import zipfile
from concurrent.futures import wait

import numpy as np
import pandas as pd
import pytest

from core import reference_overlap as ro
from core import store
from core.data.example import EXAMPLE_TASK, example_sample_zip
from core.upload import load_image_folder_zip
from tests.app_helpers import page, run_upload
from tests.fixtures import make_fixture_records

WORLD_SETS = {"fx-set-0": "shape-kind", "fx-set-1": "letters"}  # two fixture datasets named as world tasks


@pytest.fixture(autouse=True)
def _no_hashing_left_from_earlier_tests():
    """Each test starts once the background hashing earlier tests queued is done (every digest they asked for, in
    the module's own ``_PENDING``). A test here that swaps ``_PENDING`` for its own while a worker still hashes an
    earlier test's split had the worker drop that key from the test's dict, so the module's kept the finished
    future for the rest of the process, and three tests of this file failed when run after
    tests/test_reference_overlap_wait.py."""
    deadline = time.monotonic() + 120
    while True:
        with ro._GUARD:
            left = dict(ro._PENDING)
        if not left:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"background hashing still at work after 120 s: {sorted(left)}")
        wait(list(left.values()), timeout=max(0.0, deadline - time.monotonic()))
        time.sleep(0.01)  # a worker drops its key from _PENDING just after it sets the future's result


def _images(task: str, per_class: int = 2) -> list:
    """The sample images the page gets for a zip cut from ``task``'s test split."""
    return load_image_folder_zip(io.BytesIO(example_sample_zip(task, per_class=per_class))).data.images


def _runs(datasets: list[str]) -> pd.DataFrame:
    """Reference runs of worldclip-tiny (world-v1) on ``datasets``, one each."""
    return pd.DataFrame([{"model": "worldclip-tiny", "pretrained": "world-v1", "dataset": d} for d in datasets])


def test_a_sample_cut_from_a_reference_dataset_leaves_it_out_and_only_it(tmp_path, caplog):
    folder = tmp_path / "mine"
    for split in ("train", "test"):
        for k, image in enumerate(_images("letters", 1)[:2]):  # two of the letters sample's images in a folder
            (folder / split / f"c{k}").mkdir(parents=True)
            image.save(folder / split / f"c{k}" / f"{k}.png")
    runs = _runs(["shape-kind", "letters", "cifar100", "fx-set-2", f"folder:{folder}", "folder:/no/such/folder"])
    sample = _images("shape-kind")  # 6 classes x 2 images
    with caplog.at_level(logging.INFO, logger="core.reference_overlap"):
        kept, left_out = ro.leave_out_overlapping(runs, sample, "worldclip-tiny", "world-v1")
    assert left_out == {"shape-kind": 12}
    assert list(kept["dataset"]) == ["letters", "cifar100", "fx-set-2", f"folder:{folder}", "folder:/no/such/folder"]
    said = caplog.text
    assert "cifar100 not checked" in said and "not read offline" in said  # never downloaded
    assert "fx-set-2 not checked" in said and "folder:/no/such/folder not checked" in said
    note = ro.left_out_note(left_out, len(sample))
    assert note.startswith(ro.NOTE_START) and "shape-kind (holds 12 of your 12 images)" in note
    letters = _images("letters", 1)  # one image per class: the folder holds two of them
    assert ro.leave_out_overlapping(runs, letters, "worldclip-tiny", "world-v1")[1] == {"letters": len(letters),
                                                                                       f"folder:{folder}": 2}
    assert ro.leave_out_overlapping(runs, sample, "worldclip-tiny", "other")[1] == {}  # not this model's references


def test_the_example_sample_leaves_nothing_out():
    runs = _runs(["shape-kind", "letters"])
    kept, left_out = ro.leave_out_overlapping(runs, _images(EXAMPLE_TASK), "worldclip-tiny", "world-v1")
    assert left_out == {} and kept is runs


def test_a_sample_of_other_sizes_renders_no_world_split(monkeypatch):
    def refuse(name, split):
        raise AssertionError(f"{name} {split} rendered")
    monkeypatch.setattr(ro, "split_hashes", refuse)
    monkeypatch.setattr(ro, "_HASHES", {})  # none computed before: each is asked of split_hashes
    big = [image.resize((64, 64)) for image in _images("shape-kind")]
    assert ro.sample_overlaps(big, ["shape-kind", "letters"]) == {}
    assert ro.warm(big, ["shape-kind"]) == []
    with pytest.raises(AssertionError, match="shape-kind train rendered"):
        ro.sample_overlaps(_images("shape-kind"), ["shape-kind"])


def test_split_digests_are_computed_once(monkeypatch):
    calls = []
    real = ro._split_to_hash
    monkeypatch.setattr(ro, "_split_to_hash", lambda name, split: calls.append((name, split)) or real(name, split))
    monkeypatch.setattr(ro, "_HASHES", {})
    futures = ro.warm(_images("shape-kind"), ["shape-kind"])
    assert len(futures) == 2 and not wait(futures, timeout=60).not_done
    assert ro.sample_overlaps(_images("shape-kind"), ["shape-kind"]) == {"shape-kind": 12}
    assert ro.sample_overlaps(_images("shape-kind"), ["shape-kind"]) == {"shape-kind": 12}
    assert calls == [("shape-kind", "train"), ("shape-kind", "test")]


@pytest.fixture
def world_named_store(tmp_path, monkeypatch):
    """The app tests' fixture store (random tiny model, 6 datasets) with two datasets named as world v1 tasks."""
    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    for record in make_fixture_records(pretrained="random"):
        record["dataset"] = WORLD_SETS.get(record["dataset"], record["dataset"])
        record["run_id"] += "-" + record["dataset"]
        store.write_record(record, results)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    return results


@pytest.mark.slow
def test_the_page_leaves_out_the_dataset_its_sample_was_cut_from_and_says_so(world_named_store):
    at = run_upload(page("forecast").run(), "shape-kind.zip", example_sample_zip("shape-kind", per_class=3))
    assert not at.exception and not at.error
    _, res, _ = at.session_state["fc_result"]
    assert res.left_out == {"shape-kind": 18} and res.enough_runs
    (note,) = [i.value.replace("\\", "") for i in at.info if "Left out of" in i.value]  # markdown unescaped
    assert "Left out of the reference datasets: shape-kind (holds 18 of your 18 images)" in note
    assert set(at.dataframe[0].value["n_datasets"]) == {5}  # the forecast rests on the 5 other datasets
    at = run_upload(page("forecast").run(), "example.zip", example_sample_zip(per_class=3))
    _, res, _ = at.session_state["fc_result"]
    assert res.left_out == {} and not [i for i in at.info if "Left out of" in i.value]
    assert set(at.dataframe[0].value["n_datasets"]) == {6}


@pytest.mark.slow
def test_the_job_leaves_out_the_dataset_its_sample_was_cut_from_and_says_so(world_named_store, tmp_path, capsys):
    from jobs import forecast as job

    cut, example, npz = tmp_path / "shape-kind.zip", tmp_path / "example.zip", tmp_path / "emb.npz"
    cut.write_bytes(example_sample_zip("shape-kind", per_class=3))
    example.write_bytes(example_sample_zip(per_class=3))
    rng = np.random.default_rng(0)
    np.savez(npz, image_embeddings=rng.normal(size=(18, 128)).astype(np.float32),
             text_embeddings=rng.normal(size=(3, 128)).astype(np.float32), labels=np.arange(18) % 3,
             class_names=np.array(["a", "b", "c"]))
    out = tmp_path / "f.json"
    code = job.main([str(cut), str(example), str(npz), "--model", "worldclip-tiny-random",
                     "--results", str(world_named_store), "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.count("note: Left out of the reference datasets") == 1
    assert "note: Left out of the reference datasets: shape-kind (holds 18 of your 18 images)" in printed
    forecasts = json.loads(out.read_text())["forecasts"]
    assert [f["left_out"] for f in forecasts] == [{"shape-kind": 18}, {}, {}]  # an .npz has no images to check
    assert [min(r["n_datasets"] for r in f["methods"]) for f in forecasts] == [5, 6, 6]
    table = tmp_path / "f.csv"  # the CSV names them too (it had no column for them)
    assert job.main([str(cut), str(example), "--model", "worldclip-tiny-random", "--results", str(world_named_store),
                     "--out", str(table)]) == 0
    rows = pd.read_csv(table, keep_default_na=False)
    assert set(rows.loc[rows["sample"] == str(cut), "left_out"]) == {"shape-kind"}
    assert set(rows.loc[rows["sample"] == str(example), "left_out"]) == {""}
    # the fixture's other datasets are no registered dataset: not checked, and said so (they were not named)
    unchecked = {f"fx-set-{i}": "not a registered dataset" for i in range(2, 6)}
    assert [f["not_checked"] for f in forecasts][:2] == [unchecked, unchecked]
    npz_refs = ["shape-kind", "letters", *unchecked]  # an .npz has no images: no reference is checked (was {})
    assert sorted(forecasts[2]["not_checked"].items()) == sorted((name, ro.NPZ_REASON) for name in npz_refs)
    assert any(n.startswith(ro.UNCHECKED_START) and ro.NPZ_REASON in n for n in forecasts[2]["notes"])
    assert all(any(n.startswith(ro.UNCHECKED_START) for n in f["notes"]) for f in forecasts[:2])
    assert set(rows["not_checked"]) == {"; ".join(unchecked)}


def test_a_world_task_naming_none_of_the_samples_classes_is_not_rendered(monkeypatch):
    """The first 32x32 forecast in a process rendered all 15 world-v1 reference tasks (17.8 s for the example
    against 2.45 s before the check): a task is now looked at only when it names one of the sample's classes, and
    the example's (scene-kind) name none of another task's."""
    from core.data.world import get_world_task

    rendered = []
    real = ro.split_hashes
    monkeypatch.setattr(ro, "split_hashes", lambda name, split: rendered.append(name) or real(name, split))
    monkeypatch.setattr(ro, "_HASHES", {})  # none computed before: each is asked of split_hashes
    example = _images(EXAMPLE_TASK)
    references = ["shape-kind", "letters", "texture-pattern", "land-cover"]
    assert ro.sample_overlaps(example, references, class_names=get_world_task(EXAMPLE_TASK).class_names) == {}
    assert rendered == [] and ro.warm(example, references, class_names=["shape", "letter"]) == []
    cut = _images("shape-kind")  # named as its folders spell them: 'Circle', 'circle_' alike
    classes = [c.upper() + "_" for c in get_world_task("shape-kind").class_names]
    assert ro.sample_overlaps(cut, references, class_names=classes) == {"shape-kind": 12}
    assert rendered == ["shape-kind", "shape-kind"]  # its train and test splits, no other task's
    assert ro.sample_overlaps(cut, references, class_names=["renamed"]) == {}  # all renamed: not looked for
    assert rendered == ["shape-kind", "shape-kind"]


def test_a_cut_from_a_folder_of_large_images_is_found_as_an_upload_decodes_it(tmp_path):
    """An upload's images are thumbnailed to 256 px a side (core.upload): a zip cut from a folder dataset of larger
    images was never found in it, so the forecast stayed in-sample and said nothing."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root, archive = tmp_path / "photos", io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for split in ("train", "test"):
            for c in ("cat", "dog"):
                (root / split / c).mkdir(parents=True)
                for i in range(2):
                    path = root / split / c / f"{i}.png"
                    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)).save(path)
                    if split == "test":
                        zipped.write(path, f"{c}/{i}.png")  # the test split's files, uploaded
    cut = load_image_folder_zip(io.BytesIO(archive.getvalue())).data
    assert {im.size for im in cut.images} == {(256, 192)}  # thumbnailed as every upload is
    runs = _runs([f"folder:{root}", "shape-kind"])
    kept, left_out = ro.leave_out_overlapping(runs, cut.images, "worldclip-tiny", "world-v1",
                                              class_names=cut.class_names)
    assert left_out == {f"folder:{root}": 4} and list(kept["dataset"]) == ["shape-kind"]
    assert ro.sample_overlaps(_images("shape-kind"), [f"folder:{root}"]) == {}  # other images: none held


def test_hashing_a_world_split_leaves_its_images_in_no_cache(monkeypatch):
    """A server hashed a world task's splits once and kept their digests (16 bytes an image), but rendering went
    through the worlds' per-process split cache, which kept every rendered split's images for good (~8 MB a task;
    a digits sample of worldclip-tiny world-v2-a rendered 8 tasks: +160 MB resident)."""
    from core.data import world
    from core.data.world2 import suites

    cut, w2 = _images("shape-kind", 1), suites.TASKS[0]
    monkeypatch.setattr(ro, "_HASHES", {})
    world.load_world_split.cache_clear(), suites.load_split.cache_clear()
    assert ro.sample_overlaps(cut, ["shape-kind"]) == {"shape-kind": 6}
    assert ro.sample_overlaps(cut, [w2.name], class_names=w2.class_names) == {}
    assert {("shape-kind", "train"), ("shape-kind", "test"), (w2.name, "test")} <= set(ro._HASHES)
    assert world._generate_split.cache_info().currsize == 0 and suites._generate_split.cache_info().currsize == 0


@pytest.mark.slow
def test_too_few_runs_after_a_dataset_is_left_out_says_so_not_only_run_the_grid(tmp_path, monkeypatch, capsys):
    """A store with runs on exactly the 4 datasets a forecast needs, one of them the sample's own: the forecast said
    'the best-covered method has runs on 3 dataset(s) ... The command below produces the missing runs', though the
    grid's runs were all there; the dataset left out, the reason, was in a note under it."""
    from jobs import forecast as job

    results = tmp_path / "results"
    for record in make_fixture_records(n_datasets=4, pretrained="random"):
        record["dataset"] = WORLD_SETS.get(record["dataset"], record["dataset"])
        record["run_id"] += "-" + record["dataset"]
        store.write_record(record, results)
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "shipped")
    cut, out = tmp_path / "shape-kind.zip", tmp_path / "f.json"
    cut.write_bytes(example_sample_zip("shape-kind", per_class=2))
    assert job.main([str(cut), "--model", "worldclip-tiny-random", "--results", str(results), "--out", str(out)]) == 3
    (made,) = json.loads(out.read_text())["forecasts"]
    assert made["left_out"] == {"shape-kind": 12} and not made["enough_runs"]
    assert "runs on 3 dataset(s), a forecast needs 4" in made["message"]
    assert "shape-kind was left out as it holds some of your images" in made["message"]
    assert "shape-kind was left out" in capsys.readouterr().out


def test_the_note_claims_no_coverage_the_forecast_does_not_show():
    """The note said the forecast was one 'which its measured error and coverage describe', where the coverage
    columns stay blank for a forecast on fewer reference datasets than the coverage was measured on."""
    note = ro.left_out_note({"shape-kind": 12, "letters": 3}, 12)
    assert "shape-kind (holds 12 of your 12 images); letters (holds 3 of your 12 images)" in note
    assert "coverage describe" not in note and "is not shown beside it" in note


def test_reference_datasets_that_cannot_be_checked_are_named_with_why():
    runs = _runs(["shape-kind", "stl10", "folder:/no/such/folder", "not-registered", "stl10"])
    assert ro.unchecked_references(runs, "worldclip-tiny", "world-v1") == {
        "stl10": "a torchvision dataset, not read offline", "folder:/no/such/folder": "its folder is not here",
        "not-registered": "not a registered dataset"}
    assert ro.unchecked_references(runs, "worldclip-tiny", "world-v2-a") == {}  # another model's references
    note = ro.unchecked_note({"stl10": "a torchvision dataset, not read offline", "x": "not a registered dataset",
                              "cifar100": "a torchvision dataset, not read offline"})
    assert note.startswith(ro.UNCHECKED_START) and note.endswith(
        "): stl10, cifar100 (a torchvision dataset, not read offline); x (not a registered dataset).")
    assert "partly in-sample" in note


def test_the_shipped_references_can_all_be_checked_so_the_default_forecast_names_none():
    runs = store.load_runs()
    pairs = runs[["model", "pretrained"]].drop_duplicates().itertuples(index=False)
    assert {(m, p): ro.unchecked_references(runs, m, p) for m, p in pairs} == {
        (m, p): {} for m, p in runs[["model", "pretrained"]].drop_duplicates().itertuples(index=False)}


def test_the_unchecked_note_follows_the_left_out_note():
    class Res:
        notes = [f"{ro.NOTE_START}: x (holds 1 of your 2 images).", "a fit note"]

    res = Res()
    ro.say_unchecked(res, {"stl10": "a torchvision dataset, not read offline"})
    assert [n[:20] for n in res.notes] == [ro.NOTE_START[:20], ro.UNCHECKED_START[:20], "a fit note"]
    assert res.not_checked == {"stl10": "a torchvision dataset, not read offline"}
    res = Res()
    res.notes = ["a fit note"]
    ro.say_unchecked(res, {})
    assert res.notes == ["a fit note"] and res.not_checked == {}


def test_a_folder_reference_with_a_split_it_cannot_read_is_still_checked_or_named(tmp_path):
    """A folder reference whose test split could not be read was only logged: a sample cut from its train split
    was forecast in sample, with no note (neither left out nor named as not checked)."""
    folder = tmp_path / "mine"
    for k, image in enumerate(_images("letters", 1)[:2]):  # a train split only
        (folder / "train" / f"c{k}").mkdir(parents=True)
        image.save(folder / "train" / f"c{k}" / f"{k}.png")
    runs, pending = _runs([f"folder:{folder}"]), {}
    kept, left_out = ro.leave_out_overlapping(runs, _images("letters", 1), "worldclip-tiny", "world-v1",
                                              pending=pending)
    assert left_out == {f"folder:{folder}": 2} and kept.empty and pending == {}  # the train split holds them
    kept, left_out = ro.leave_out_overlapping(runs, _images("shape-kind"), "worldclip-tiny", "world-v1",
                                              pending=pending)
    assert left_out == {} and kept is runs
    assert pending[f"folder:{folder}"].startswith("its images could not be read: ")


def test_the_unchecked_note_says_what_it_means_before_the_page_cuts_a_long_list():
    """The page shows a note at most 600 characters long (core.text.plain); the not-checked note named its datasets
    first and what that means last, so with many of them (a store of runs on datasets no registry knows) the page cut
    'its measured error and coverage do not apply' off."""
    from core.text import plain

    note = ro.unchecked_note({f"customer-set-{k:02d}": "not a registered dataset" for k in range(30)})
    shown = plain(note, max_chars=600).replace("\\", "")
    assert shown.startswith(ro.UNCHECKED_START) and "measured error and coverage do not apply" in shown
    assert "customer-set-00" in shown and "customer-set-29 (not a registered dataset)" in note


def test_an_embeddings_samples_note_says_why_nothing_was_checked_before_the_page_cuts_its_list():
    """An .npz forecast names every reference dataset as not checked: with world v2's 40 the note ran to 1,030
    characters, and the page, which cuts a note at 600, showed 'only the generated worlds' tasks and image folders at
    hand are checked' and 36 of the names but never why none was: the sample is embeddings (the reason came last)."""
    from core.text import plain

    note = ro.unchecked_note(dict.fromkeys((f"w2-task-{k:02d}" for k in range(40)), ro.NPZ_REASON))
    shown = plain(note, max_chars=600).replace("\\", "")
    assert shown.startswith(ro.UNCHECKED_START) and ro.NPZ_REASON in shown and "40 reference datasets" in shown
    assert "measured error and coverage do not apply" in shown and "only the generated worlds" not in note
    assert "w2-task-00, w2-task-01" in shown and note.endswith("w2-task-39.")
