"""The store against the hostile-record corpus (tests/hostile_records.py): every bad file is skipped
and named, the good runs beside it all load, ingest refuses the same files, and the readers that parse
nested text never raise."""
from __future__ import annotations

import json
import re
import time

import pytest

from core import store
from tests.fixtures import write_fixture_store
from tests.hostile_records import build_record_corpus, record_case_names


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    write_fixture_store(root, n_datasets=2, methods=("full", "lora"))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return {c.name: c for c in build_record_corpus(tmp_path_factory.mktemp("records"))}


def test_corpus_covers_the_issue(corpus):
    assert len(corpus) >= 60
    assert sum(c.expect == "skip" for c in corpus.values()) >= 55


@pytest.mark.parametrize("name", record_case_names())
def test_record_case_is_contained(corpus, good, name):
    c = corpus[name]
    start = time.perf_counter()
    runs, skipped = store.load_runs_report([good, c.path])
    assert time.perf_counter() - start < 10
    assert set(store.load_runs([good])["run_id"]) <= set(runs["run_id"])  # the good runs all load
    if c.expect == "skip":
        assert skipped, f"{name}: nothing was skipped"
        assert any(str(c.path) in s.where and re.search(c.match, s.reason) for s in skipped), skipped
    else:
        assert not skipped, skipped
    # every reader that parses nested text survives every loaded row
    for run_id in runs["run_id"]:
        store.run_details(runs, run_id)
    store.model_metadata(runs)
    store.query_runs(runs, search="x", sort_by="iimm")


@pytest.mark.parametrize("name", [n for n in record_case_names()])
def test_ingest_refuses_what_the_loader_skips(corpus, good, tmp_path, name):
    c = corpus[name]
    if c.ingest is None:
        pytest.skip("not an ingest case (links made for the loader)")
    report = store.ingest(c.path, tmp_path / "target", conflict_roots=[good])
    if c.ingest:
        assert report.refused and not report.accepted, report
    else:
        assert not report.refused, report.refused


def test_skipped_summary_and_attrs(good, corpus):
    runs = store.load_runs([good, corpus["seed-10-to-30"].path, corpus["accuracy-250"].path])
    skipped = store.skipped_records(runs)
    assert len(skipped) == 2
    text = store.skipped_summary(skipped)
    assert text.startswith("2 records skipped: ") and "seed" in text and "ft_acc" in text
    assert store.skipped_summary([]) == ""
    many = store.skipped_summary([store.Skipped(f"f{i}.json", "bad") for i in range(7)], limit=2)
    assert many.endswith("; and 5 more")


def test_forecast_is_not_moved_by_out_of_range_records(good, corpus):
    """One id_gain = 1400 record used to move a method's forecast by hundreds of points."""
    from core import forecast

    runs = store.load_runs([good, corpus["id-gain-1400"].path, corpus["iimm-1e308"].path])
    clean = store.load_runs([good])
    assert len(runs) == len(clean)
    a = forecast.predictor_table(runs, ["iimm"], outcomes=("id_gain",))
    b = forecast.predictor_table(clean, ["iimm"], outcomes=("id_gain",))
    assert a.equals(b)


def test_written_records_are_world_readable(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = write_fixture_store(tmp_path, n_datasets=1, methods=("full",))[0]
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_ingest_failure_midway_leaves_nothing(tmp_path, good, monkeypatch):
    import sys

    ingest_module = sys.modules["core.store.ingest"]
    calls = {"n": 0}
    real = ingest_module.os.replace

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(ingest_module.os, "replace", flaky)
    with pytest.raises(OSError, match="No space"):
        store.ingest(good, tmp_path / "t")
    assert not [p for p in (tmp_path / "t").iterdir() if p.suffix == ".json"]


def _ingest_into(args):
    source, target = args
    report = store.ingest(source, target)
    return report.accepted, [w for w, _ in report.refused], report.unchanged


@pytest.mark.slow
def test_two_ingests_racing_never_overwrite(tmp_path):
    """Two ingests at once, same run ids, different content: each run is stored once, by exactly
    one of them, with the content that ingest reported as accepted (repeated 20 times)."""
    import multiprocessing

    from tests.fixtures import make_fixture_records

    records = make_fixture_records(n_datasets=5, methods=("full", "lora"))
    for side, delta in (("a", 0.0), ("b", 1.0)):
        folder = tmp_path / side
        folder.mkdir()
        for r in records:
            rec = dict(r, ft_acc=r["ft_acc"] - delta, id_gain=None, norm_gain=None)
            (folder / f"{r['run_id']}.json").write_text(json.dumps(rec), encoding="utf-8")
    ctx = multiprocessing.get_context("fork")
    silent = 0
    for attempt in range(20):
        target = tmp_path / f"store{attempt}"
        with ctx.Pool(2) as pool:
            (acc_a, ref_a, _), (acc_b, ref_b, _) = pool.map(_ingest_into, [(tmp_path / "a", target),
                                                                         (tmp_path / "b", target)])
        assert len(acc_a) + len(acc_b) == len(records) and not set(acc_a) & set(acc_b)
        assert len(ref_a) + len(ref_b) == len(records)  # the loser of every run is told
        stored = store.load_runs([target]).set_index("run_id")["ft_acc"]
        for run_id in acc_a:
            silent += stored[run_id] != next(r["ft_acc"] for r in records if r["run_id"] == run_id)
        for run_id in acc_b:
            silent += stored[run_id] != next(r["ft_acc"] for r in records if r["run_id"] == run_id) - 1.0
    assert silent == 0


def test_results_folder_check(tmp_path):
    assert store.is_results_folder("/") is not None
    assert store.is_results_folder(tmp_path / "new") is None
    write_fixture_store(tmp_path / "r", n_datasets=1, methods=("full",))
    assert store.is_results_folder(tmp_path / "r") is None
    assert store.is_results_folder(store.SHIPPED_DIR) is None  # jobs/results: reports + default/
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print(1)", encoding="utf-8")
    assert "does not look like a results folder" in store.is_results_folder(tmp_path / "src")
    # a sub-folder of tables inside a records folder (no marker, as in a fresh clone) is still results ...
    nested = tmp_path / "outer" / "records" / "tables"
    nested.mkdir(parents=True)
    (nested / "summary.csv").write_text("a\n1\n", encoding="utf-8")
    (nested.parent / "0.json").write_text("{}", encoding="utf-8")
    assert store.is_results_folder(tmp_path / "outer") is None
    # ... but not once a source file hides in it, nor when nested deeper than two levels
    (nested / "analysis.py").write_text("print(1)", encoding="utf-8")
    assert "holds 'records'" in store.is_results_folder(tmp_path / "outer")
    (nested / "analysis.py").unlink()
    (nested / "a" / "b").mkdir(parents=True)
    (nested / "a" / "b" / "x.csv").write_text("a\n", encoding="utf-8")
    assert "holds 'records'" in store.is_results_folder(tmp_path / "outer")
    with pytest.raises(ValueError, match="not look like"):
        store.ingest(tmp_path / "r", tmp_path / "src")


def test_shipped_results_pass_the_folder_check_without_the_local_marker(tmp_path):
    """The marker is not committed, so a fresh clone's jobs/results passes only by its contents: a shipped
    .txt (2026-12-06) made the app refuse its own store there while a working tree with markers passed."""
    import shutil

    copy = tmp_path / "results"
    shutil.copytree(store.SHIPPED_DIR, copy, ignore=shutil.ignore_patterns(".*", "*.json"))  # tables only: fast
    assert store.is_results_folder(copy) is None


def test_app_roots_leave_out_a_folder_that_is_not_a_results_folder(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(store.ENV_VAR, "/")
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "sub"))
    assert store.default_roots() == [store.SHIPPED_DIR, tmp_path / "sub"]
    assert "not reading /" in caplog.text
