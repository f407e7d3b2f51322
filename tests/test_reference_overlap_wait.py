"""A forecast waits a bounded time for reference datasets' images to be hashed (core.reference_overlap): one not
read in time is named as not checked, and goes on being hashed for a later forecast."""
from __future__ import annotations

import io
import threading
from concurrent.futures import wait

import pandas as pd
import pytest

from core import reference_overlap as ro
from core.data.example import example_sample_zip
from core.upload import load_image_folder_zip
from tests.test_reference_overlap import (  # noqa: F401 - fixtures
    _images, _no_hashing_left_from_earlier_tests, _runs, world_named_store)


@pytest.fixture
def slow_split(monkeypatch):
    """Splits whose hashing waits for the returned event (a large folder reference); nothing hashed before."""
    release, real = threading.Event(), ro._split_to_hash

    def held(name, split):
        if not release.wait(60):
            raise TimeoutError("the test never released the split")
        return real(name, split)
    monkeypatch.setattr(ro, "_split_to_hash", held)
    monkeypatch.setattr(ro, "_HASHES", {})
    yield release
    release.set()


def test_a_split_not_hashed_in_time_is_pending_then_checked_later(slow_split):
    images = _images("shape-kind")
    first = ro.check_sample(images, ["shape-kind"], wait_s=0.2)
    assert first.found == {} and list(first.pending) == ["shape-kind"]
    assert "not read in the 0.2 s a forecast waits" in first.pending["shape-kind"]
    slow_split.set()  # the background thread goes on with it
    assert not wait(ro.warm(images, ["shape-kind"]), timeout=60).not_done
    later = ro.check_sample(images, ["shape-kind"], wait_s=0)
    assert later.found == {"shape-kind": len(images)} and later.pending == {}


def test_without_a_wait_the_check_waits_as_long_as_it_takes(slow_split):
    threading.Timer(0.3, slow_split.set).start()
    assert ro.sample_overlaps(_images("shape-kind"), ["shape-kind"]) == {"shape-kind": 12}


def test_leave_out_overlapping_reports_what_it_could_not_check_in_time(slow_split):
    runs, pending = _runs(["shape-kind", "letters"]), {}
    kept, left_out = ro.leave_out_overlapping(runs, _images("shape-kind"), "worldclip-tiny", "world-v1",
                                              wait_s=0.1, pending=pending)
    assert left_out == {} and kept is runs and list(pending) == ["shape-kind", "letters"]  # no classes: both looked at


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "5"])
def test_a_bad_wait_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="wait_s must be|not supported"):
        ro.check_sample(_images("shape-kind"), ["shape-kind"], wait_s=bad)


def test_a_forecast_names_a_reference_dataset_it_could_not_check_in_time(slow_split):
    from core import predict, store
    from core.models import load_model
    from tests.fixtures import make_fixture_records

    records = make_fixture_records(pretrained="random")
    for record in records:  # one of the fixture's datasets named as the world task the sample is cut from
        record["dataset"] = {"fx-set-0": "shape-kind"}.get(record["dataset"], record["dataset"])
    sample = load_image_folder_zip(io.BytesIO(example_sample_zip("shape-kind", per_class=2))).data
    res = predict.forecast_for_sample(load_model("worldclip-tiny-random"), sample, store.records_to_frame(records),
                                      n_boot=20, overlap_wait_s=0.1)
    assert res.left_out == {} and "not read in the 0.1 s" in res.not_checked["shape-kind"]
    assert any(n.startswith(ro.UNCHECKED_START) and "shape-kind" in n for n in res.notes)
    assert isinstance(res.forecasts, pd.DataFrame) and res.enough_runs


@pytest.mark.slow
def test_the_page_waits_a_bounded_time_and_says_what_it_could_not_check(world_named_store, slow_split, monkeypatch):
    import forecast_ui
    from tests.app_helpers import page, run_upload

    monkeypatch.setattr(forecast_ui, "OVERLAP_WAIT_S", 0.2)
    at = run_upload(page("forecast").run(), "shape-kind.zip", example_sample_zip("shape-kind", per_class=3))
    assert not at.exception and not at.error
    _, res, _ = at.session_state["fc_result"]
    assert res.left_out == {} and "shape-kind" in res.not_checked
    shown = [i.value.replace("\\", "") for i in at.info]  # markdown unescaped
    assert [v for v in shown if v.startswith(ro.UNCHECKED_START) and "): fx-set-2, fx-set-3, fx-set-4, fx-set-5 (not a "
            "registered dataset); shape-kind (its images were not read in the 0.2 s" in v]


def test_work_left_queued_by_a_dead_worker_is_taken_up_by_a_new_one(monkeypatch):
    import queue
    from concurrent.futures import Future

    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    key, left = ("shape-kind", "test"), Future()
    monkeypatch.setattr(ro, "_HASHES", {})
    monkeypatch.setattr(ro, "_QUEUES", {"world": queue.SimpleQueue(), "files": queue.SimpleQueue()})
    monkeypatch.setattr(ro, "_PENDING", {key: left})
    monkeypatch.setattr(ro, "_WORKERS", {"world": dead})
    ro._QUEUES["world"].put((key, left))  # queued, its worker gone (it had waited forever: no new key, no new worker)
    assert ro.digests_future(*key) is left
    assert len(left.result(timeout=60)) > 0


def test_a_slow_folder_queued_first_does_not_hold_up_a_world_task(tmp_path, monkeypatch):
    folder = tmp_path / "big"
    for k, image in enumerate(_images("letters", 1)[:2]):
        (folder / "test" / f"c{k}").mkdir(parents=True)
        image.save(folder / "test" / f"c{k}" / f"{k}.png")
    release, real = threading.Event(), ro._split_to_hash

    def held(name, split):  # the folder's hashing takes as long as the test says (minutes, for a large one)
        if name.startswith("folder:") and not release.wait(60):
            raise TimeoutError("the test never released the folder")
        return real(name, split)
    monkeypatch.setattr(ro, "_split_to_hash", held)
    monkeypatch.setattr(ro, "_HASHES", {})
    try:
        slow = ro.digests_future(f"folder:{folder}", "test")
        quick = ro.digests_future("shape-kind", "test")  # asked after the folder, by another visitor
        assert len(quick.result(timeout=30)) > 0 and not slow.done()
    finally:
        release.set()
    assert len(slow.result(timeout=60)) == 2
