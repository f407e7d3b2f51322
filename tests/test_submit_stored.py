"""Submissions stored before the formula check existed (or written into the submissions folder by hand): every
reader refuses one whose text a spreadsheet would run, as it refuses every invalid record, and says why."""
from __future__ import annotations

import json
import logging
import re

import pyarrow.parquet as pq
import pytest

from core import store
from core.store import formulas
from core.store.records import record_bytes
from jobs import export, ingest
from tests.fixtures import make_fixture_records
from tests.store_helpers import submission_stores

REASON = r"starts with = \+ - @.*stored before submissions were checked for it: not loaded"


@pytest.fixture
def stores(tmp_path, monkeypatch):
    return submission_stores(tmp_path, monkeypatch)


def _submitted(**change):
    """Two records as a submission stored them (source overwritten), the first holding ``change``."""
    recs = [dict(r, source=store.SUBMITTED_SOURCE, claimed_source=r["source"])
            for r in make_fixture_records(n_datasets=2, methods=("lora",))]
    return dict(recs[0], run_id="old-hostile", **change), recs[1]


def _stored(sub, **change):
    """:func:`_submitted`'s two records written into the submissions folder ``sub`` as JSON files, as a
    submission stored before the formula check left them (no check runs on the way)."""
    sub.mkdir()
    hostile, clean = _submitted(**change)
    for rec in (hostile, clean):
        (sub / f"{rec['run_id']}.json").write_bytes(record_bytes(rec))
    return hostile, clean


@pytest.mark.parametrize("change", [{"method": '=HYPERLINK("http://x","y")'}, {"claimed_source": "@SUM(1)"},
                                    {"config": {"optimizer": {"name": "-1+1"}}}, {"+1": "custom field name"}])
def test_a_stored_submission_holding_formula_text_is_quarantined_on_read_and_named(stores, caplog, change):
    sub = stores[2]
    hostile, clean = _stored(sub, **change)
    with caplog.at_level(logging.WARNING, logger="core.store"):
        runs = store.load_runs()  # the app's roots: shipped, local, submissions
    assert set(runs["run_id"]) >= {clean["run_id"]} and "old-hostile" not in set(runs["run_id"])
    skipped = store.skipped_records(runs)
    assert [s.where for s in skipped] == [str(sub / "old-hostile.json")]
    assert "spreadsheets that open the leaderboard's CSV downloads" in skipped[0].reason
    assert "old-hostile.json" in caplog.text and "not loaded" in caplog.text
    assert re.search(REASON, skipped[0].reason)


def test_the_store_index_never_keeps_a_quarantined_submission(stores, tmp_path):
    sub = stores[2]
    hostile, clean = _stored(sub, dataset="+1+1")
    for _ in range(2):  # the second read takes unchanged records from the index
        runs = store.load_runs([sub], index_dir=tmp_path / "index")
        assert list(runs["run_id"]) == [clean["run_id"]]
        assert [s.where for s in store.skipped_records(runs)] == [str(sub / "old-hostile.json")]


@pytest.mark.parametrize("name", ["compacted-0123456789abcdef.parquet", "from-elsewhere.parquet"])
def test_a_submitted_parquet_row_holding_formula_text_is_quarantined(stores, name):
    sub = stores[2]
    hostile, clean = _submitted(ood_sets=["\t=1+1"])
    written = store.write_records_parquet([hostile, clean], sub)
    written.rename(sub / name)
    runs = store.load_runs([sub])
    assert list(runs["run_id"]) == [clean["run_id"]]
    skipped = store.skipped_records(runs)
    assert len(skipped) == 1 and skipped[0].where == f"{sub / name} (run_id 'old-hostile')"
    assert re.search(REASON, skipped[0].reason)


def test_compaction_leaves_a_quarantined_submission_in_place_and_out_of_the_store(stores):
    sub = stores[2]
    hostile, clean = _stored(sub, model="@cmd")
    target = store.compact(sub)
    assert (sub / "old-hostile.json").exists()  # invalid records are left where they are, as always
    assert pq.read_table(target)["run_id"].to_pylist() == [clean["run_id"]]
    assert list(store.load_runs([sub])["run_id"]) == [clean["run_id"]]


def test_ingest_and_export_of_stored_submissions_refuse_the_formula_one(stores, tmp_path, capsys):
    sub, local = stores[2], stores[1]
    sub.mkdir()
    hostile, clean = _submitted(error="\r=1")
    (sub / "list.json").write_text(json.dumps([hostile, clean]))  # as ingest reads a list: no loader ran on it
    assert ingest.main([str(sub / "list.json"), "--into", str(local)]) == 1
    out = capsys.readouterr().out
    assert "1 accepted" in out and "1 refused" in out and "spreadsheets that open" in out
    assert list(store.load_runs([local])["run_id"]) == [clean["run_id"]]
    (sub / "list.json").unlink()
    for rec in (hostile, clean):
        (sub / f"{rec['run_id']}.json").write_bytes(record_bytes(rec))
    assert export.main(["--results", str(sub), "--include-submitted", "--format", "csv", "-o",
                        str(tmp_path / "out.csv")]) == 0
    assert "old-hostile" not in (tmp_path / "out.csv").read_text() and clean["run_id"] in (tmp_path / "out.csv").read_text()


def test_only_submitted_records_are_held_to_the_rule(stores):
    """The host's own records are the host's (the store's own CSV export escapes their text): one with such text
    and another source loads as before."""
    local = stores[1]
    rec = dict(make_fixture_records(n_datasets=1, methods=("lora",))[0], error="-1 (a note)")
    store.write_record(rec, local)
    assert formulas.submitted_formula_problem(rec) is None and formulas.formula_problem(rec)
    assert list(store.load_runs([local])["run_id"]) == [rec["run_id"]]


def test_the_runs_page_never_shows_a_stored_submission_holding_formula_text(stores):
    from streamlit.testing.v1 import AppTest

    sub = stores[2]
    hostile, clean = _stored(sub, method="=1+1")
    at = AppTest.from_file("../pages/runs.py", default_timeout=120).run()
    notice = " ".join(w.value for w in at.warning).replace("\\", "")
    assert not at.exception and "1 record skipped: submitted/old-hostile.json (field 'method' holds text" in notice
    at.toggle(key="submitted").set_value(True).run()  # the clean submission is offered; the other is not there
    assert not at.exception
    shown = " ".join(str(frame.value.to_dict()) for frame in at.dataframe)
    assert clean["run_id"] in shown and "old-hostile" not in shown and "=1+1" not in shown
