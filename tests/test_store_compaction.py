"""core.store: compaction, and readers and writers racing it."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import pandas as pd
import pytest

from core import store
from tests.fixtures import make_fixture_records, write_fixture_store
from tests.store_helpers import _record


def test_compact_merges_and_keeps_data(tmp_path):
    write_fixture_store(tmp_path, n_datasets=4, methods=("full", "lora"))
    before = store.load_runs([tmp_path])
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    made = store.compact(tmp_path)
    assert made is not None and made.name.startswith("compacted-")
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["broken.json"]  # invalid kept
    after = store.load_runs([tmp_path])
    pd.testing.assert_frame_equal(before, after)
    # a second compaction folds new JSON and the old Parquet into one file
    store.write_record(_record("late", created_at="2030-01-01T00:00:00+00:00"), tmp_path)
    second = store.compact(tmp_path)
    assert [p.name for p in tmp_path.glob("*.parquet")] == [second.name]
    assert len(store.load_runs([tmp_path])) == len(before) + 1
    assert store.compact(tmp_path) is None  # nothing left to merge


def test_a_record_rewritten_while_compaction_removes_it_survives(tmp_path, monkeypatch):
    import os

    from core.store import compaction

    for run_id in ("r1", "r2"):
        store.write_record(_record(run_id, created_at="2026-01-01T00:00:00+00:00"), tmp_path)
    newer = _record("r1", ft_acc=99.0, created_at="2026-06-01T00:00:00+00:00")
    fired = []

    def rerun_lands_first(path):  # a grid rerun renames its new r1 record into place at the worst moment
        if Path(path).name == "r1.json" and not fired:
            fired.append(path)
            store.write_record(newer, tmp_path)

    real_rename, real_unlink = os.rename, Path.unlink
    monkeypatch.setattr(compaction.os, "rename", lambda a, b: (rerun_lands_first(a), real_rename(a, b))[1])
    monkeypatch.setattr(Path, "unlink", lambda self, *a, **k: (rerun_lands_first(self), real_unlink(self, *a, **k))[1])
    store.compact(tmp_path)
    monkeypatch.undo()
    assert fired
    runs = store.load_runs([tmp_path]).set_index("run_id")
    assert runs.loc["r1", "ft_acc"] == 99.0 and runs.loc["r2", "ft_acc"] == 60.0  # was 60.0: the rerun was lost
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_record_set_aside_by_a_killed_compaction_comes_back(tmp_path):
    from core.store.compaction import ASIDE_PREFIX

    store.write_record(_record("r1"), tmp_path)
    (tmp_path / "r1.json").rename(tmp_path / f"{ASIDE_PREFIX}0123.json")  # killed between rename and delete
    assert store.load_runs([tmp_path]).empty  # hidden while set aside
    store.compact(tmp_path)
    assert store.load_runs([tmp_path])["run_id"].tolist() == ["r1"] and not list(tmp_path.glob(".tmp-*"))


def test_compact_missing_root_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store.compact(tmp_path / "nope")


def test_reader_never_fails_while_writing_and_compacting(tmp_path):
    records = make_fixture_records(n_datasets=10, methods=("full", "lora", "bitfit"))
    stop, errors, counts = threading.Event(), [], []

    def write_and_compact():
        try:
            for i, rec in enumerate(records):
                store.write_record(rec, tmp_path)
                if i % 7 == 0:
                    store.compact(tmp_path)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            stop.set()

    writer = threading.Thread(target=write_and_compact)
    writer.start()
    while not stop.is_set():
        try:
            counts.append(len(store.load_runs([tmp_path])))
        except Exception as exc:
            errors.append(exc)
            break
    writer.join()
    assert not errors
    assert counts == sorted(counts)  # runs never disappear from a reader's view
    assert len(store.load_runs([tmp_path])) == len(records)


def test_nan_in_nested_fields_becomes_null_and_stored_ids_survive_compaction(tmp_path):
    store.write_record(_record(zero_shot={"iimm": 0.3, "silhouette": float("nan")}), tmp_path)
    text = (tmp_path / "r1.json").read_text(encoding="utf-8")
    assert "NaN" not in text and json.loads(text)["zero_shot"] == {"iimm": 0.3, "silhouette": None}
    store.write_record(_record("r2", status="failed", ft_acc=None, error="boom"), tmp_path)
    store.compact(tmp_path)
    assert store.stored_run_ids(tmp_path) == {"r1", "r2"}
    assert store.stored_run_ids(tmp_path, ok_only=True) == {"r1"}


def test_compaction_keeps_an_old_parquet_it_could_not_fully_load(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    write_fixture_store(tmp_path, n_datasets=2, methods=("full",))
    (tmp_path / "compacted-ffffffffffffffff.parquet").write_bytes(b"PAR1 not really")
    bad_row = flatten(store.check_record(_record("bad-row")))
    bad_row["ft_acc"] = 250.0  # out of range: quarantined and named on every load
    pq.write_table(pa.Table.from_pylist([flatten(store.check_record(_record("good-row"))), bad_row],
                                        schema=store.ARROW_SCHEMA), tmp_path / "compacted-eeeeeeeeeeeeeeee.parquet")
    before, skipped_before = store.load_runs_report([tmp_path])
    assert len(skipped_before) == 2 and "good-row" in set(before["run_id"])
    store.compact(tmp_path)
    after, skipped_after = store.load_runs_report([tmp_path])
    pd.testing.assert_frame_equal(before, after)
    assert [s.reason for s in skipped_after] == [s.reason for s in skipped_before]
    assert (tmp_path / "compacted-ffffffffffffffff.parquet").exists()


def test_a_killed_compactions_temporary_file_goes_at_the_next_compaction(tmp_path):
    write_fixture_store(tmp_path, n_datasets=2, methods=("full",))
    left = tmp_path / ".tmp-compacted-0123456789abcdef-abcdefgh.parquet"
    left.write_bytes(b"half a parquet file")
    store.compact(tmp_path)
    assert not left.exists()


def test_a_tie_in_one_folder_keeps_its_winner_through_compaction(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    tie = "2025-01-01T00:00:00+00:00"
    store.write_record(_record("x", ft_acc=60.0, created_at=tie), tmp_path)
    imported = flatten(store.check_record(_record("x", ft_acc=70.0, created_at=tie)))
    pq.write_table(pa.Table.from_pylist([imported], schema=store.ARROW_SCHEMA), tmp_path / "a-import.parquet")
    assert store.load_runs([tmp_path])["ft_acc"].tolist() == [60.0]  # JSON wins a tie
    store.compact(tmp_path)
    assert not list(tmp_path.glob("*.json"))
    assert store.load_runs([tmp_path])["ft_acc"].tolist() == [60.0]  # ...and its compacted copy still does


def test_a_record_rewritten_during_compaction_survives_even_within_one_timestamp_tick(tmp_path, monkeypatch):
    import os

    from core.store import compaction

    tie = "2025-01-01T00:00:00+00:00"
    target = store.write_record(_record("r", ft_acc=60.0, created_at=tie), tmp_path)
    real = compaction.read_json_record

    def read_then_a_writer_replaces_it(path, skipped=None):
        rec = real(path, skipped)
        before = os.stat(path)
        store.write_record(_record("r", ft_acc=61.0, created_at=tie), tmp_path)  # same size, a new inode
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as if inside one coarse tick
        return rec

    monkeypatch.setattr(compaction, "read_json_record", read_then_a_writer_replaces_it)
    store.compact(tmp_path)
    assert target.exists() and store.load_runs([tmp_path])["ft_acc"].tolist() == [61.0]


def test_compacting_again_to_the_same_content_keeps_the_store(tmp_path):
    """A second compaction whose merged content equals the first's writes the same file name: the old file
    must not be deleted as 'superseded' (that deleted every run)."""
    paths = write_fixture_store(tmp_path, n_datasets=3, methods=("full", "lora"))
    records = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    first = store.compact(tmp_path)
    store.write_record(records[0], tmp_path)  # the same run again, as a re-ingest or a rerun would write it
    second = store.compact(tmp_path)
    assert second == first and second.exists()
    assert len(store.load_runs([tmp_path])) == len(records) == 6


def test_a_record_a_reader_holds_open_on_windows_is_kept_and_merged_next_time(tmp_path, monkeypatch):
    """Windows refuses to rename a file another process has open (the app reading it): compaction stopped with a
    PermissionError traceback after writing its Parquet file."""
    import os

    from core.store import compaction

    for run_id in ("r1", "r2"):
        store.write_record(_record(run_id, created_at="2026-01-01T00:00:00+00:00"), tmp_path)
    real_rename = os.rename

    def held_open(a, b):
        if Path(a).name == "r1.json":
            raise PermissionError(13, "The process cannot access the file because it is being used", str(a))
        return real_rename(a, b)

    monkeypatch.setattr(compaction.os, "rename", held_open)
    assert store.compact(tmp_path) is not None
    monkeypatch.undo()
    assert [p.name for p in tmp_path.glob("*.json")] == ["r1.json"]
    assert sorted(store.load_runs([tmp_path])["run_id"]) == ["r1", "r2"]
    store.compact(tmp_path)  # the next compaction takes it
    assert not list(tmp_path.glob("*.json")) and sorted(store.load_runs([tmp_path])["run_id"]) == ["r1", "r2"]


def test_a_record_rewritten_during_compaction_survives_where_hard_links_do_not_exist(tmp_path, monkeypatch):
    """On FAT or exFAT os.link fails: the rewritten record set aside was left as a hidden file, out of the store."""
    import os

    from core.store import compaction

    for run_id in ("r1", "r2"):
        store.write_record(_record(run_id, created_at="2026-01-01T00:00:00+00:00"), tmp_path)
    newer = _record("r1", ft_acc=99.0, created_at="2026-06-01T00:00:00+00:00")
    real_rename, fired = os.rename, []

    def rerun_lands_first(a, b):  # the rerun's record lands just before compaction sets r1.json aside
        if Path(a).name == "r1.json" and not fired:
            fired.append(a)
            store.write_record(newer, tmp_path)
        return real_rename(a, b)

    def no_hard_links(*args):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(compaction.os, "rename", rerun_lands_first)
    monkeypatch.setattr(compaction.os, "link", no_hard_links)
    store.compact(tmp_path)
    monkeypatch.undo()
    assert fired and not list(tmp_path.glob(f"{compaction.ASIDE_PREFIX}*"))
    assert store.load_runs([tmp_path]).set_index("run_id").loc["r1", "ft_acc"] == 99.0


def test_a_rerun_is_not_hidden_or_deleted_by_a_compacted_copy_dated_in_the_future(tmp_path):
    """A run recorded by a node whose clock ran years ahead, compacted, then rerun on a node with the
    right time: the rerun was written later, whatever the dates say. Was: the first copy stayed the one shown
    (newest created_at), and the next compaction deleted the rerun's record."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    store.write_record(_record("x", ft_acc=60.0, created_at="2099-01-01T00:00:00+00:00"), tmp_path)
    store.compact(tmp_path)
    store.write_record(_record("x", ft_acc=70.0, created_at="2026-01-01T00:00:00+00:00"), tmp_path)
    assert store.load_runs([tmp_path])["ft_acc"].tolist() == [70.0]
    store.compact(tmp_path)
    assert store.load_runs([tmp_path])["ft_acc"].tolist() == [70.0]  # the rerun kept, now compacted
    # against a Parquet file from elsewhere the dates still decide, as before
    store.write_record(_record("y", ft_acc=60.0, created_at="2026-01-01T00:00:00+00:00"), tmp_path)
    newer = flatten(store.check_record(_record("y", ft_acc=80.0, created_at="2026-06-01T00:00:00+00:00")))
    pq.write_table(pa.Table.from_pylist([newer], schema=store.ARROW_SCHEMA), tmp_path / "an-import.parquet")
    runs = store.load_runs([tmp_path]).set_index("run_id")["ft_acc"]
    assert runs.to_dict() == {"x": 70.0, "y": 80.0}


def test_a_json_record_in_one_folder_never_puts_another_folders_compacted_copy_last(tmp_path):
    """The JSON-beats-compacted rule holds within a folder: another folder's JSON record of the run (a later
    root) leaves this folder's copies ordered by created_at, its compacted copy (newer) before an import."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    first, second = tmp_path / "a", tmp_path / "b"
    store.write_record(_record("x", ft_acc=60.0, created_at="2026-06-01T00:00:00+00:00"), first)
    store.compact(first)
    older = flatten(store.check_record(_record("x", ft_acc=80.0, created_at="2026-01-01T00:00:00+00:00")))
    pq.write_table(pa.Table.from_pylist([older], schema=store.ARROW_SCHEMA), first / "an-import.parquet")
    store.write_record(_record("x", ft_acc=90.0, created_at="2026-07-01T00:00:00+00:00"), second)
    assert store.load_runs([first, second])["ft_acc"].tolist() == [60.0]
