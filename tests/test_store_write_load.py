"""core.store: atomic writes, record checks, loading JSON and Parquet, de-duplication across and within roots.
Compaction is in test_store_compaction.py, queries and views of the loaded runs in test_store_query.py."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import schema, store
from tests.fixtures import FIXTURE_SOURCE, make_fixture_records, write_fixture_store
from tests.store_helpers import _record


def test_default_roots_follow_env(monkeypatch, tmp_path):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "sub"))
    assert store.default_roots() == [store.SHIPPED_DIR, tmp_path, tmp_path / "sub"]
    monkeypatch.delenv(store.ENV_VAR)
    assert store.default_roots()[1] == store.REPO_ROOT / "results"


def test_write_record_is_atomic_and_round_trips(tmp_path):
    path = store.write_record(_record(config={"lr": 0.1}, custom_field=7), tmp_path)
    assert path == tmp_path / "r1.json"
    assert [p.name for p in tmp_path.iterdir()] == ["r1.json"]  # no temp file left behind
    on_disk = json.loads(path.read_text(encoding="utf-8"))
    assert on_disk["created_at"]  # filled in by the writer
    row = store.load_runs([tmp_path]).iloc[0]
    back = store.row_to_record(row.to_dict())
    assert back["config"] == {"lr": 0.1} and back["custom_field"] == 7 and back["zs_acc"] == 50.0


def test_an_interrupted_write_leaves_a_temporary_named_for_its_target_which_is_then_removed(tmp_path, monkeypatch):
    import os

    from core.store.atomic import remove_temporaries_of

    def killed(src, dst):  # the process dies between writing the temporary file and renaming it
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "unlink", lambda path: None)  # ... so nothing cleans up after it
    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        store.write_record(_record(run_id="ab-1"), tmp_path)
    monkeypatch.undo()
    (left,) = [p.name for p in tmp_path.glob(".tmp-*")]
    assert left.startswith(".tmp-ab-1-") and left.endswith(".json") and len(left) == len(".tmp-ab-1-") + 8 + 5
    others = [".tmp-ab-1-x-12345678.json", ".tmp-ab-12345678.json", ".tmp-ab-1-1234567.json", ".tmp-ab-1-12345678.parquet",
              "ab-1.json"]  # another run's (ab-1-x), an old-style name, wrong length, another target, a record
    for name in others:
        (tmp_path / name).write_text("{}", encoding="utf-8")
    assert remove_temporaries_of(tmp_path / "ab-1.json") == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert remove_temporaries_of(tmp_path / "ab-1.json") == []


@pytest.mark.parametrize("bad, match", [
    ({"status": "maybe"}, "status"),
    ({"run_id": "../escape"}, "run_id"),
    ({"run_id": ".hidden"}, "run_id"),
    ({"zs_acc": None}, "zs_acc"),
])
def test_write_record_rejects_bad_records(tmp_path, bad, match):
    with pytest.raises(schema.SchemaError, match=match):
        store.write_record(_record(**bad), tmp_path)
    assert not list(tmp_path.iterdir())


def test_load_runs_missing_root_gives_empty_frame_with_columns(tmp_path):
    df = store.load_runs([tmp_path / "nope"])
    assert df.empty and list(df.columns) == list(store.COLUMNS)


def test_load_runs_reads_fixture_store_recursively(tmp_path):
    write_fixture_store(tmp_path / "a", n_datasets=3, methods=("full",))
    write_fixture_store(tmp_path / "b" / "deep", n_datasets=2, methods=("lora",))
    df = store.load_runs([tmp_path])
    assert len(df) == 5 and set(df["method"]) == {"full", "lora"}
    assert (df["source"] == FIXTURE_SOURCE).all()
    assert json.loads(df["ood_before"].iloc[0]) == {"ood-a": 60.0, "ood-b": 50.0}
    assert df["created_at"].is_monotonic_increasing


def test_load_runs_takes_one_folder_given_as_str_or_path(tmp_path, monkeypatch):
    write_fixture_store(tmp_path / "store", n_datasets=3, methods=("full",))
    monkeypatch.chdir(tmp_path)  # a relative str must be one folder, not its characters
    for one in ("store", Path("store"), str(tmp_path / "store")):
        df, skipped = store.load_runs_report(one)
        assert len(df) == 3 and not skipped


def test_duplicate_run_keeps_first_root_and_names_the_conflict(tmp_path):
    store.write_record(_record(ft_acc=61.0, created_at="2025-01-02T00:00:00+00:00"), tmp_path / "new")
    store.write_record(_record(ft_acc=99.0, created_at="2025-01-01T00:00:00+00:00"), tmp_path / "old")
    store.write_record(_record(ft_acc=99.0, created_at="2025-01-03T00:00:00+00:00"), tmp_path / "same")
    df, skipped = store.load_runs_report([tmp_path / "old", tmp_path / "new", tmp_path / "same"])
    assert len(df) == 1 and df["ft_acc"].iloc[0] == 99.0  # a later root never replaces a stored run
    assert [s.where for s in skipped] == [str(tmp_path / "new" / "r1.json")]  # same content: no note
    assert "different content" in skipped[0].reason


@pytest.mark.parametrize("order", [("old", "new"), ("new", "old")])
def test_the_first_root_wins_whichever_it_is(tmp_path, order):
    """The test above gives its third root the first one's content, so it could not tell the roots' order
    from its reverse; here two roots differ only in content and time."""
    store.write_record(_record(ft_acc=61.0, created_at="2025-01-02T00:00:00+00:00"), tmp_path / "new")
    store.write_record(_record(ft_acc=99.0, created_at="2025-01-01T00:00:00+00:00"), tmp_path / "old")
    df, skipped = store.load_runs_report([tmp_path / name for name in order])
    assert df["ft_acc"].tolist() == [99.0 if order[0] == "old" else 61.0]
    assert [s.where for s in skipped] == [str(tmp_path / order[1] / "r1.json")]


def test_duplicate_within_one_root_keeps_newest(tmp_path):
    store.write_record(_record(ft_acc=61.0, created_at="2025-01-02T00:00:00+00:00"), tmp_path / "a")
    store.write_record(_record(ft_acc=99.0, created_at="2025-01-01T00:00:00+00:00"), tmp_path / "b")
    df, skipped = store.load_runs_report([tmp_path])
    assert len(df) == 1 and df["ft_acc"].iloc[0] == 61.0 and not skipped


def test_the_newest_copy_is_chosen_by_time_not_by_text(tmp_path):
    pairs = [("2026-01-01T10:00:00.5+00:00", "2026-01-01T10:00:00Z"),  # half a second later
             ("2026-01-01T11:00:00+00:00", "2026-01-01T12:00:00+02:00")]  # 11:00 UTC is after 10:00 UTC
    for k, (newer, older) in enumerate(pairs):
        root = tmp_path / f"case{k}"
        store.write_record(_record("r1", ft_acc=99.0, created_at=newer), root / "a")
        store.write_record(_record("r1", ft_acc=70.0, created_at=older), root / "b")
        assert store.load_runs([root]).set_index("run_id").loc["r1", "ft_acc"] == 99.0, (newer, older)
    with pytest.raises(store.RecordError, match="must be an ISO-8601 time"):
        store.write_record(_record("r2", created_at="not a time at all"), tmp_path / "x")
    with pytest.raises(store.RecordError, match="needs its UTC offset"):
        store.write_record(_record("r2", created_at="2026-01-01T10:00:00"), tmp_path / "x")


def test_a_record_too_large_for_any_reader_is_refused_when_written(tmp_path):
    big = _record("big", **{f"note_{i}": "x" * 60_000 for i in range(20)})  # each field within its own limit
    with pytest.raises(store.RecordError, match="byte file; the limit is"):
        store.write_record(big, tmp_path)
    report = store.ingest_items([("big.json", big)], tmp_path)
    assert not report.accepted and report.refused and not list(tmp_path.glob("*.json"))


def test_a_custom_field_named_extra_is_refused_not_dropped(tmp_path):
    with pytest.raises(store.RecordError, match="'extra' is reserved"):
        store.write_record(_record("x", extra="my note"), tmp_path)
    (tmp_path / "x.json").write_text(json.dumps(_record("x", extra="my note")), encoding="utf-8")
    runs, skipped = store.load_runs_report([tmp_path])
    assert runs.empty and "reserved" in skipped[0].reason


def test_write_file_atomic_keeps_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    import os

    report = tmp_path / "report.md"
    store.write_file_atomic(report, "old report\n")
    assert report.read_text(encoding="utf-8") == "old report\n" and oct(report.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match=r"No space left on device: '.*report\.md'"):  # names the file
        store.write_file_atomic(report, "new report, cut half-way")
    assert report.read_text(encoding="utf-8") == "old report\n" and [p.name for p in tmp_path.iterdir()] == ["report.md"]
    monkeypatch.undo()
    assert store.write_file_atomic(report, b"bytes too").read_bytes() == b"bytes too"


def test_files_written_together_in_several_folders_persist_each_folders_renames(tmp_path, monkeypatch):
    """core.store.write_files_together: a set across folders (a check's files and the model cards beside the weights)
    fsyncs every folder it renamed into, not only the first, so no rename of the set is lost to a power cut; an
    empty set writes nothing."""
    import os
    import stat

    real, synced = os.fsync, []

    def fsync(fd):
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            synced.append((info.st_dev, info.st_ino))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files = {tmp_path / "check" / "a.csv": "a\n", tmp_path / "cards" / "deep" / "b.md": b"b\n"}
    assert store.write_files_together(files) == list(files)
    assert [p.read_bytes() for p in files] == [b"a\n", b"b\n"]
    folders = {(p.parent.stat().st_dev, p.parent.stat().st_ino) for p in files}
    assert folders <= set(synced), "a folder of the set was not fsynced after its rename"
    synced.clear()
    assert store.write_files_together({}) == [] and synced == []


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_derived_outcomes_must_match_their_accuracies_by_hand():
    """zs 60, ft 80: gain 20, normalised gain 20 / (100 - 60) = 0.5, OOD change the mean of (+1, -3) = -1."""
    ok = dict(_record(zs_acc=60.0, ft_acc=80.0, id_gain=20.0, norm_gain=0.5, ood_before={"a": 50.0, "b": 40.0},
                      ood_after={"a": 51.0, "b": 37.0}, ood_change=-1.0))
    schema.validate_record(ok)
    for field, wrong in (("id_gain", 80.0), ("norm_gain", 0.2), ("norm_gain", 0.25), ("ood_change", 1.0)):
        with pytest.raises(schema.SchemaError, match=f"field '{field}'"):  # 0.2 = 20/100, 0.25 = 20/80
            schema.validate_record({**ok, field: wrong})


@pytest.mark.parametrize("n_bad", [100, 101])
def test_a_parquet_files_invalid_rows_are_named_up_to_the_cap_then_counted(tmp_path, n_bad):
    """Every invalid row is accounted for: the first MAX_SKIPPED_PER_FILE (100) by run_id, the rest by a count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.load import MAX_SKIPPED_PER_FILE
    from core.store.records import flatten

    assert MAX_SKIPPED_PER_FILE == 100
    good = flatten(store.check_record(_record("good-row")))
    bad = [dict(good, run_id=f"bad-{i:03d}", ft_acc=250.0) for i in range(n_bad)]  # out of range
    pq.write_table(pa.Table.from_pylist([good, *bad], schema=store.ARROW_SCHEMA), tmp_path / "many.parquet")
    runs, skipped = store.load_runs_report([tmp_path])
    assert list(runs["run_id"]) == ["good-row"]
    named = [s for s in skipped if "(run_id 'bad-" in s.where]
    counted = [s.reason for s in skipped if s.reason.endswith("more invalid rows")]
    assert len(named) == 100 and counted == ([] if n_bad == 100 else ["1 more invalid rows"])


def test_data_files_are_listed_down_to_the_walk_depth_and_parquet_has_its_own_cap(tmp_path):
    from core.store.records import MAX_WALK_DEPTH, list_data_files
    from core.store.validate import MAX_RECORD_BYTES

    assert MAX_WALK_DEPTH == 6
    deepest = tmp_path.joinpath(*[f"d{i}" for i in range(6)])  # six folders below the root
    too_deep = deepest / "d6"
    too_deep.mkdir(parents=True)
    (deepest / "a.json").write_text("{}", encoding="utf-8")
    (too_deep / "b.json").write_text("{}", encoding="utf-8")
    assert list_data_files(tmp_path, (".json",)) == [deepest / "a.json"]
    big = tmp_path / "compacted-big.parquet"  # a compacted store outgrows one record's cap long before its own
    big.write_bytes(b"\0" * (MAX_RECORD_BYTES + 1))
    skipped: list = []
    assert list_data_files(tmp_path, (".parquet",), skipped) == [big] and skipped == []


def test_row_to_record_undoes_widened_ints_and_extra_never_overrides_a_field():
    row = store.records_to_frame([_record("r-widen", seed=3)]).iloc[0].to_dict()
    row["seed"] = 3.0  # another tool's Parquet widened the int
    row["extra"] = json.dumps({"ft_acc": 99.0, "run_id": "other", "note": "kept"})  # a hostile extra cell
    rec = store.row_to_record(row)
    assert rec["seed"] == 3 and isinstance(rec["seed"], int)
    assert (rec["ft_acc"], rec["run_id"], rec["note"]) == (60.0, "r-widen", "kept")


def test_an_infinite_nested_value_is_written_as_null(tmp_path):
    rec = _record("r-inf", zero_shot={"iimm": 0.2, "modality_gap": float("inf")})
    path = store.write_record(rec, tmp_path)
    assert json.loads(path.read_text(encoding="utf-8"))["zero_shot"] == {"iimm": 0.2, "modality_gap": None}
    assert json.loads(store.records_to_frame([rec])["zero_shot"].iloc[0])["modality_gap"] is None


def test_a_store_already_in_order_loads_as_a_shuffled_one_does(tmp_path):
    """merge_rows skips taking every row again when they are already in the store's order (0.3-0.6 s of a
    100,000-run store's first read): the frame must be the one the take gives from any other order."""
    records = make_fixture_records(n_datasets=6, methods=("full", "bitfit", "lora"), seeds=(0, 1))
    ordered = sorted(records, key=lambda r: (r["created_at"], r["run_id"]))
    rng = np.random.default_rng(0)
    shuffled = [ordered[i] for i in rng.permutation(len(ordered))]
    store.write_records_parquet(ordered, tmp_path / "ordered")
    store.write_records_parquet(shuffled, tmp_path / "shuffled")
    fast, taken = store.load_runs([tmp_path / "ordered"]), store.load_runs([tmp_path / "shuffled"])
    assert fast["run_id"].tolist() == [r["run_id"] for r in ordered]
    pd.testing.assert_frame_equal(fast, taken)


def test_reads_in_several_threads_at_once_leave_the_warning_filters_as_they_were():
    """A server reads its store in one thread while a submission's ingest reads it in another. Each read
    silenced DuckDB's extra-copy warning inside ``warnings.catch_warnings``, which saves and restores the
    process-wide filter list and is not thread-safe: overlapping reads left "ignore every UserWarning" in
    force for the rest of the process."""
    import threading
    import warnings

    import duckdb

    from core.store import load as store_load

    before = list(warnings.filters)

    def read() -> None:
        con = duckdb.connect()
        try:
            for _ in range(500):
                assert store_load._arrow(con.execute("SELECT 1 AS a")).num_rows == 1
        finally:
            con.close()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before


def test_the_store_reader_silences_duckdbs_extra_copy_warning_itself_and_no_other():
    """The filter core.store.load sets at import (pytest's own, in pyproject.toml, hides the warning in every
    test, so only a fresh process tells whether the module's works): DuckDB's extra-copy warning is silenced
    in the module's reads, even with UserWarnings turned into errors; another UserWarning still shows."""
    import subprocess
    import sys

    code = ("import warnings, duckdb\n"
            "from core.store import load\n"
            "assert load._arrow(duckdb.connect().execute('SELECT 1 AS a')).num_rows == 1\n"
            "try:\n    warnings.warn('another', UserWarning)\nexcept UserWarning:\n    print('shown')\n")
    done = subprocess.run([sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "shown", done.stderr[-2000:]


def test_a_set_with_a_folder_in_the_way_of_a_file_writes_none_of_it(tmp_path):
    """A target that is a folder failed only at its rename, after the files before it in the set had been replaced
    (and the error named the temporary, not the file meant): now refused before anything is written."""
    from core import store

    first, blocked = tmp_path / "summary.md", tmp_path / "table.csv"
    first.write_text("old\n", encoding="utf-8")
    blocked.mkdir()
    with pytest.raises(IsADirectoryError, match=re.escape(str(blocked))):
        store.write_files_together({first: "new\n", blocked: "rows\n"})
    assert first.read_text(encoding="utf-8") == "old\n" and blocked.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md", "table.csv"]  # no temporary left


def test_a_failed_rename_in_a_set_names_the_file_meant(tmp_path, monkeypatch):
    import os

    from core import store

    def refused(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refused)
    target = tmp_path / "table.csv"
    with pytest.raises(PermissionError, match=re.escape(str(target))):
        store.write_files_together({target: "rows\n"})
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
