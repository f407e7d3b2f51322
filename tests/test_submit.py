"""Submissions: a zip of records, validated by the store's rules, stored apart as unverified,
never able to replace a measured run; the job and the page."""
from __future__ import annotations

import dataclasses
import io
import json
import struct
import time
import zipfile

import pytest

from core import store
from core.store import submissions
from core.store.validate import json_depth
from core.upload import UploadError
from jobs import submit
from tests.fixtures import make_fixture_records
from tests.store_helpers import submission_stores


def make_zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.fixture
def stores(tmp_path, monkeypatch):
    return submission_stores(tmp_path, monkeypatch)


def test_submission_is_validated_labelled_and_never_overrides(stores, tmp_path, capsys):
    shipped, _, sub = stores
    measured = make_fixture_records(n_datasets=2, methods=("full",))
    new = make_fixture_records(n_datasets=2, methods=("lora",))
    hijack = dict(measured[0], ft_acc=99.9, id_gain=None, norm_gain=None)
    bad = dict(new[0], run_id="bad-1", seed=10**30)
    zip_path = tmp_path / "s.zip"
    make_zip(zip_path, {"a.json": json.dumps(new[0]).encode(), "b.jsonl": (json.dumps(new[1]) + "\n"
             + json.dumps(bad)).encode(), "hijack.json": json.dumps(hijack).encode(),
             "notes.txt": b"hi", "../evil.json": b"{}"})
    assert submit.main([str(zip_path)]) == 1
    out = capsys.readouterr().out
    assert "2 accepted" in out and "4 refused" in out and "'seed' must lie" in out
    assert "never replaced" in out and "not a record file" in out and "outside the archive" in out
    runs = store.load_runs()
    assert len(runs) == 4
    by_id = runs.set_index("run_id")
    assert by_id.loc[measured[0]["run_id"], "ft_acc"] == measured[0]["ft_acc"]  # the measured run stands
    assert set(by_id.loc[[new[0]["run_id"], new[1]["run_id"]], "source"]) == {store.SUBMITTED_SOURCE}
    assert json.loads(by_id.loc[new[0]["run_id"], "extra"])["claimed_source"] == new[0]["source"]
    assert len(store.query_runs(runs, filters={"source": [store.SUBMITTED_SOURCE]})) == 2
    # the same submission again: nothing new, nothing replaced
    assert store.accept_submission(zip_path).summary() == "0 accepted, 2 already stored (unchanged), 4 refused"


def test_submission_zip_itself_refused(stores, tmp_path, capsys):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    assert submit.main([str(tmp_path / "x.zip")]) == 2
    assert "not a zip" in capsys.readouterr().err
    make_zip(tmp_path / "empty.zip", {"readme.md": b"#"})
    report = store.accept_submission(tmp_path / "empty.zip")
    assert not report.accepted and "not a record file" in report.refused[0][1]
    make_zip(tmp_path / "none.zip", {})
    with pytest.raises(UploadError, match="no record files"):
        store.accept_submission(tmp_path / "none.zip")


@pytest.mark.slow
def test_submit_page_renders_its_form(stores):
    """AppTest cannot drive a file uploader; the page's core call is tested above."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file("../pages/submit.py", default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Submit runs" and len(at.get("file_uploader")) == 1
    assert at.button(key="sub_go").disabled  # nothing to submit yet


def test_a_local_store_the_app_refuses_is_not_searched_for_conflicts(stores, tmp_path, monkeypatch):
    tree = tmp_path / "project"  # IIMM_RESULTS at a source tree: the app leaves it out, and so do submissions
    record = make_fixture_records(n_datasets=1, methods=("lora",))[0]
    (tree / "old").mkdir(parents=True)
    (tree / "old" / "x.json").write_text(json.dumps(dict(record, ft_acc=11.0, id_gain=None, norm_gain=None)),
                                         encoding="utf-8")
    (tree / "setup.py").write_text("# not a record\n", encoding="utf-8")
    monkeypatch.setenv(store.ENV_VAR, str(tree))
    zip_path = tmp_path / "s.zip"
    make_zip(zip_path, {"a.json": json.dumps(record).encode()})
    assert store.accept_submission(zip_path).summary() == "1 accepted, 0 refused"


def test_a_record_using_all_its_32_extra_fields_can_be_submitted(stores, tmp_path):
    _, _, sub = stores
    record = {**make_fixture_records(n_datasets=1, methods=("lora",))[0], **{f"x{i}": i for i in range(32)}}
    store.check_record(record)  # valid as written
    zip_path = tmp_path / "s.zip"
    make_zip(zip_path, {"a.json": json.dumps(record).encode()})
    report = store.accept_submission(zip_path)
    assert len(report.accepted) == 1 and not report.refused  # was: "at most 32 extra fields" (claimed_source)
    stored = store.load_runs([sub]).set_index("run_id").loc[record["run_id"]]
    assert json.loads(stored["extra"])["claimed_source"] == record["source"]
    with pytest.raises(store.RecordError, match="at most 32 extra fields"):
        store.check_record({**record, "x32": 32})  # the author's own limit stands


def test_a_submission_cannot_reuse_a_local_runs_id(stores, tmp_path):
    _, local, _ = stores
    (mine,) = make_fixture_records(n_datasets=1, methods=("lora",))
    store.write_record(mine, local)  # a run measured here, in the local store
    other = dict(mine, ft_acc=mine["ft_acc"] + 5, id_gain=None, norm_gain=None)
    make_zip(tmp_path / "s.zip", {"a.json": json.dumps(other).encode()})
    report = store.accept_submission(tmp_path / "s.zip")
    assert not report.accepted and "different content" in report.refused[0][1]


def test_a_rerun_with_another_config_is_a_conflict_not_the_same_run(tmp_path):
    (rec,) = make_fixture_records(n_datasets=1, methods=("lora",))
    store.write_record(rec, tmp_path / "mine")
    changed = dict(rec, config={**rec["config"], "lr": 0.5})  # only a nested field differs
    (tmp_path / "in.json").write_text(json.dumps(changed), encoding="utf-8")
    report = store.ingest(tmp_path / "in.json", tmp_path / "mine")
    assert not report.accepted and not report.unchanged and "different content" in report.refused[0][1]


def test_a_lone_surrogate_escape_is_refused_and_the_leaderboard_still_loads(stores, tmp_path):
    """'\\ud800' is valid JSON and valid UTF-8 bytes, but parses to text no UTF-8 string can hold: it was
    accepted, and then every page's load_runs raised UnicodeEncodeError."""
    (rec,) = make_fixture_records(n_datasets=1, methods=("lora",))
    make_zip(tmp_path / "s.zip", {"a.json": json.dumps(rec).replace('"lora"', '"lo\\ud800ra"').encode()})
    report = store.accept_submission(tmp_path / "s.zip")
    assert not report.accepted and "not valid Unicode" in report.refused[0][1]
    assert len(store.load_runs()) == 2  # the shipped runs, nothing else


def test_a_refused_submission_names_no_path_of_the_server(stores, tmp_path):
    """The reasons go to a stranger on the submit page: a run_id taken from the leaderboard (a clash with a
    shipped run) or one blocked by a stray file named the server's folders by their absolute paths."""
    shipped, _, sub = stores
    measured = make_fixture_records(n_datasets=2, methods=("full",))
    (new,) = make_fixture_records(n_datasets=1, methods=("lora",))
    sub.mkdir()
    (sub / f"{new['run_id']}.json").write_text("not a record", encoding="utf-8")
    make_zip(tmp_path / "s.zip", {"a.json": json.dumps(dict(measured[0], ft_acc=99.9, id_gain=None,
                                                            norm_gain=None)).encode(),
                                  "b.json": json.dumps(new).encode()})
    report = store.accept_submission(tmp_path / "s.zip")
    reasons = " ".join(reason for _, reason in report.refused)
    assert len(report.refused) == 2 and "the shipped results" in reasons and "not a valid record" in reasons
    assert str(tmp_path) not in reasons


def test_the_hosts_command_still_names_the_file_that_blocks_a_run_id(stores, tmp_path, capsys):
    """Hiding the server's paths is for the app's visitors: jobs.submit is run by the host, who was told instead
    'this run_id cannot be submitted', not which file blocks it nor that removing it would help."""
    _, _, sub = stores
    (new,) = make_fixture_records(n_datasets=1, methods=("lora",))
    sub.mkdir()
    (sub / f"{new['run_id']}.json").write_text("not a record", encoding="utf-8")
    make_zip(tmp_path / "s.zip", {"b.json": json.dumps(new).encode()})
    assert submit.main([str(tmp_path / "s.zip")]) == 1
    out = capsys.readouterr().out
    assert str(sub / f"{new['run_id']}.json") in out and "remove it before ingesting" in out


def test_the_page_takes_submissions_up_to_a_limit_of_stored_runs(stores, tmp_path, monkeypatch):
    """Anyone could submit without end: each 1.5 MiB zip put 10,000 record files in the store, every one then read
    by each page view's reread and each later submission's (3 such zips: 30,000 files, a cold read 5.1 s, the
    third submission 9.6 s under the ingest lock), so one visitor's loop filled the disk and slowed every view."""
    from core.store import submissions

    monkeypatch.setattr(submissions, "MAX_STORED_SUBMISSIONS", 6)
    runs = make_fixture_records(n_datasets=4, methods=("lora", "bitfit"))
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    make_zip(first, {"a.jsonl": "\n".join(json.dumps(r) for r in runs[:4]).encode()})
    make_zip(second, {"b.jsonl": "\n".join(json.dumps(r) for r in runs[4:]).encode()})
    assert store.accept_submission(first).summary() == "4 accepted, 0 refused"
    report = store.accept_submission(second)  # 4 more would make 8
    assert report.summary() == "0 accepted, 4 refused" and len(store.load_runs([stores[2]])) == 4
    assert "holds 4 submitted runs" in report.refused[0][1] and "at most 6" in report.refused[0][1]
    assert str(stores[2]) not in report.refused[0][1]  # no path of the server
    assert store.accept_submission(first).summary() == "0 accepted, 4 already stored (unchanged), 0 refused"
    assert store.accept_submission(second, public=False).summary() == "4 accepted, 0 refused"  # the host decides


def test_the_limit_counts_only_a_submissions_new_runs_and_takes_it_exactly_up_to_the_limit(stores, tmp_path,
                                                                                         monkeypatch):
    """Runs already stored unchanged are not new: a submission that repeats its earlier runs beside new ones is
    measured by the new ones alone, and one that brings the store exactly to the limit is taken."""
    from core.store import submissions

    monkeypatch.setattr(submissions, "MAX_STORED_SUBMISSIONS", 6)
    runs = make_fixture_records(n_datasets=4, methods=("lora", "bitfit"))
    first, again, over = tmp_path / "a.zip", tmp_path / "b.zip", tmp_path / "c.zip"
    make_zip(first, {"a.jsonl": "\n".join(json.dumps(r) for r in runs[:4]).encode()})
    make_zip(again, {"b.jsonl": "\n".join(json.dumps(r) for r in runs[:6]).encode()})  # 4 stored + 2 new
    make_zip(over, {"c.jsonl": json.dumps(runs[6]).encode()})
    assert store.accept_submission(first).summary() == "4 accepted, 0 refused"
    assert store.accept_submission(again).summary() == "2 accepted, 4 already stored (unchanged), 0 refused"
    report = store.accept_submission(over)  # a 7th run
    assert report.summary() == "0 accepted, 1 refused" and "holds 6 submitted runs" in report.refused[0][1]


def test_quotes_without_an_end_are_refused_in_time_linear_in_their_length(stores, tmp_path):
    """A quote then escaped quotes and no closing one: the nesting check restarted its string search at every
    quote, scanning to the end each time (60 KB took ~25 s; a 4 MiB member of a tiny zip, hours)."""
    zip_path = tmp_path / "quotes.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.json", b'"' + b'\\"' * 30_000)
    start = time.perf_counter()
    report = store.accept_submission(zip_path)
    assert time.perf_counter() - start < 2
    assert report.refused == [("a.json", report.refused[0][1])] and "invalid JSON" in report.refused[0][1]
    # brackets inside strings (escaped quotes too) still do not count; those before an unterminated one do
    assert json_depth(b'{"a": "[[[\\"]]]", "b": [[1]]}') == 3
    assert json_depth(b'[["[[[[' + b'\\"[' * 100) == 2


def test_a_run_id_ending_in_a_newline_is_refused_and_names_no_file(stores, tmp_path):
    _, _, sub = stores
    rec = dict(make_fixture_records(n_datasets=1, methods=("lora",))[0], run_id="evil\n")
    make_zip(tmp_path / "nl.zip", {"a.json": json.dumps(rec).encode()})
    report = store.accept_submission(tmp_path / "nl.zip")
    assert not report.accepted and "must be 1-200 letters" in report.refused[0][1]
    assert not list(sub.glob("*.json"))


def test_a_zip_whose_end_record_understates_its_entries_is_refused_whole(stores, tmp_path):
    """zipfile reads the directory by its size: a zip claiming 1 entry but holding 150,000 was read whole (6.5 s)
    and answered with 150,000 refused rows; every entry now counts against the limit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(60):
            zf.writestr(f"{i}.txt", b"")
    raw = bytearray(buf.getvalue())
    end = raw.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", raw, end + 8, 1, 1)  # entries on this disk, entries in all
    limits = dataclasses.replace(submissions.SUBMISSION_LIMITS, max_members=50)
    with pytest.raises(UploadError, match=r"too many files \(60\); the limit is 50"):
        store.accept_submission(io.BytesIO(bytes(raw)), limits=limits)


def test_a_zip_refused_for_its_directory_size_does_not_say_it_holds_one_file(tmp_path):
    """A zip whose end record claims 1 entry but whose directory is larger than the limit's allowance was
    refused as 'holds too many files (1); the limit is 50': the figure was the end record's lie."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(600):
            zf.writestr(f"{i}.txt", b"")
    raw = bytearray(buf.getvalue())
    struct.pack_into("<HH", raw, raw.rfind(b"PK\x05\x06") + 8, 1, 1)
    limits = dataclasses.replace(submissions.SUBMISSION_LIMITS, max_members=50)
    with pytest.raises(UploadError, match=r"too many files \(its directory takes [\d,]+ bytes, more than 50 files "
                                          r"would\); the limit is 50"):
        store.accept_submission(io.BytesIO(bytes(raw)), limits=limits)


def test_strangers_submissions_take_turns_and_the_hosts_job_does_not(stores, tmp_path, monkeypatch):
    """Parsing one submission can cost ~0.7 GB (10 million empty records before the record limit refuses them),
    and strangers' submissions were all read at once: now at most SUBMISSION_SLOTS, the next told to try again."""
    import contextlib

    from core.turns import BusyError

    path = tmp_path / "runs.zip"
    make_zip(path, {"a.json": json.dumps(make_fixture_records(n_datasets=1, methods=("lora",))[0]).encode()})
    monkeypatch.setattr(submissions, "SUBMISSION_WAIT_S", 0.05)
    with contextlib.ExitStack() as held:
        for _ in range(submissions.SUBMISSION_SLOTS):  # others' submissions being read
            held.enter_context(submissions._SUBMISSION_TURNS.turn(wait_s=0))
        with pytest.raises(BusyError, match=r"no turn for submissions came free within 0\.05 s \(it runs 2 at a time\)"):
            store.accept_submission(path)
        assert not list((tmp_path / "submitted").glob("*.json"))  # nothing stored
        assert store.accept_submission(path, public=False).accepted  # the host's jobs.submit is not held up
    assert store.accept_submission(path).unchanged  # a turn once one is free


@pytest.mark.parametrize("layout", ["jsonl", "list"])
def test_a_submission_of_exactly_the_record_limit_is_read_and_one_more_is_refused_naming_it(stores, tmp_path,
                                                                                          monkeypatch, layout):
    """README: a submission holds at most 10,000 records (MAX_SUBMITTED_RECORDS); counted the same in .jsonl lines
    and in a .json list."""
    monkeypatch.setattr(submissions, "MAX_SUBMITTED_RECORDS", 3)
    runs = make_fixture_records(n_datasets=2, methods=("lora", "bitfit"))

    def zipped(n):
        path = tmp_path / f"{layout}-{n}.zip"
        body = ("\n".join(json.dumps(r) for r in runs[:n]) if layout == "jsonl" else json.dumps(runs[:n]))
        make_zip(path, {f"runs.{'jsonl' if layout == 'jsonl' else 'json'}": body.encode()})
        return path

    assert store.accept_submission(zipped(3)).summary() == "3 accepted, 0 refused"
    with pytest.raises(UploadError, match=r"^a submission may hold at most 3 records$"):
        store.accept_submission(zipped(4))


@pytest.mark.parametrize("change", [
    {"method": '=HYPERLINK("http://x","y")'}, {"dataset": "+1+1"}, {"pretrained": "-2+3"}, {"model": "@SUM(1)"},
    {"source": "=cmd|' /C calc'!A0"}, {"error": "\t=1+1"}, {"note": "\r=1"}, {"=1+1": "custom field name"},
    {"config": {"optimizer": {"name": "=1+1"}}}, {"ood_sets": ["-1+1"]}, {"transferability": {"@x": 0.5}}])
def test_a_submitted_record_holding_formula_text_is_refused_and_a_clean_one_kept(stores, tmp_path, change):
    sub = stores[2]
    new = make_fixture_records(n_datasets=2, methods=("lora",))
    hostile = dict(new[0], run_id="hostile-formula", **change)
    zip_path = tmp_path / "f.zip"
    make_zip(zip_path, {"a.json": json.dumps(new[1]).encode(), "f.json": json.dumps(hostile).encode()})
    report = store.accept_submission(zip_path)
    assert report.accepted == [new[1]["run_id"]]
    assert len(report.refused) == 1 and report.refused[0][0] == "f.json"
    assert "spreadsheets that open the leaderboard's CSV downloads would run it" in report.refused[0][1]
    assert set(store.load_runs([sub])["run_id"]) == {new[1]["run_id"]}


def test_no_shipped_record_holds_text_a_submission_refuses_as_a_formula():
    records = []
    for path in sorted(store.SHIPPED_DIR.rglob("*.json")):
        data = json.loads(path.read_text())
        records += [rec for rec in (data if isinstance(data, list) else [data]) if isinstance(rec, dict)
                    and "run_id" in rec]
    assert len(records) >= 2000
    assert [rec["run_id"] for rec in records if submissions.formula_problem(rec)] == []
