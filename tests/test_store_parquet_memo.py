"""A process validates an unchanged Parquet store once (core.store.load's memo), and never serves a stale one."""
from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from core import store
from core.store import load as store_load
from tests.fixtures import make_fixture_records, write_fixture_store


@pytest.fixture
def validations(monkeypatch):
    """Counts the Parquet files the load reads and validates (the work the memo saves)."""
    seen = []
    real = store_load._valid_rows

    def counting(con, files, skipped):
        seen.extend(files)
        return real(con, files, skipped)

    monkeypatch.setattr(store_load, "_valid_rows", counting)
    return seen


@pytest.fixture
def parquet_store(tmp_path):
    root = tmp_path / "results"
    store.write_records_parquet(make_fixture_records(), root)
    (root / "broken.parquet").write_bytes(b"PAR1 not really")  # named in skipped on every load
    return root


def _same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(left, right)
    assert left.attrs["skipped"] == right.attrs["skipped"]


def test_an_unchanged_store_is_validated_once_and_gives_the_same_frame_and_skipped_list(
        parquet_store, validations, later):
    first = store.load_runs([parquet_store])
    assert validations and len(first) > 0
    assert any("unreadable Parquet" in s.reason for s in first.attrs["skipped"])
    validations.clear()
    again = store.load_runs([parquet_store])
    assert validations == []
    _same(first, again)


def test_a_replaced_file_is_read_again_even_with_its_size_and_time_restored(parquet_store, validations, later):
    store.load_runs([parquet_store])
    (path,) = parquet_store.glob("compacted-*.parquet")
    before = os.stat(path)
    table = pq.read_table(path)
    changed = table.set_column(table.schema.get_field_index("ft_acc"), "ft_acc",
                               [[50.0] * table.num_rows])
    tmp = path.with_name("tmp.parquet.part")
    pq.write_table(changed, tmp)
    os.replace(tmp, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    validations.clear()
    runs = store.load_runs([parquet_store])
    assert str(path) in validations
    assert (runs.loc[runs["status"] == "ok", "ft_acc"] == 50.0).all()


def test_a_file_changed_within_the_racy_window_is_never_remembered(parquet_store, validations):
    store.load_runs([parquet_store])  # every file was written just now
    validations.clear()
    store.load_runs([parquet_store])
    assert validations  # read and validated again


def test_the_memo_holds_a_bounded_number_of_stores(tmp_path, later):
    store_load._PARQUET_MEMO.clear()
    for i in range(store_load._PARQUET_MEMO_SIZE + 2):
        root = tmp_path / f"r{i}"
        write_fixture_store(root, n_datasets=1)
        (root / "x.parquet").write_bytes(b"PAR1 not really")
        store.load_runs([root])
    assert len(store_load._PARQUET_MEMO) == store_load._PARQUET_MEMO_SIZE


def test_a_file_that_failed_to_read_for_a_passing_reason_is_read_again(parquet_store, monkeypatch, later):
    """An I/O error (too many open files, EIO), out of memory or an interrupt says nothing lasting about
    the file: it must not be replayed until the file changes (the store looked empty meanwhile)."""
    import duckdb

    (parquet_store / "broken.parquet").unlink()
    real, failures = store_load._valid_rows, [2]  # the read of all files, then of the one file

    def flaky(con, files, skipped):
        if failures[0]:
            failures[0] -= 1
            raise duckdb.IOException("IO Error: Too many open files")
        return real(con, files, skipped)

    monkeypatch.setattr(store_load, "_valid_rows", flaky)
    first = store.load_runs([parquet_store])
    assert len(first) == 0 and "Too many open files" in first.attrs["skipped"][0].reason
    again = store.load_runs([parquet_store])
    assert len(again) > 0 and again.attrs["skipped"] == []


def test_a_remembered_store_replays_only_its_own_skipped_entries(parquet_store, later):
    """Skipped JSON records (and other roots' entries) are named once a load, memo or not."""
    (parquet_store / "bad.json").write_text("{not json", encoding="utf-8")
    first = store.load_runs([parquet_store])
    again = store.load_runs([parquet_store])
    assert len(first.attrs["skipped"]) == 2
    _same(first, again)


def test_a_file_set_that_compaction_replaced_is_forgotten(tmp_path, later):
    """Compaction deletes the files it merged, so their rows (the whole store) are never asked for again: they
    were held until four other file sets had been read (at 100,000 runs, 3 dead tables: 790 MB resident, not 500)."""
    store_load._PARQUET_MEMO.clear()
    root = tmp_path / "results"
    records = make_fixture_records()
    store.write_records_parquet(records[:10], root)
    for rec in records[10:14]:  # a new run arrives, then the store is compacted
        store.load_runs([root])
        store.write_record(rec, root)
        store.compact(root)
    assert len(store.load_runs([root])) == 14
    live = {str(p) for p in root.glob("*.parquet")}
    assert [sorted(f for f, _ in key) for key in store_load._PARQUET_MEMO] == [sorted(live)]


def test_a_parquet_file_whose_row_groups_unpack_past_a_records_limit_is_skipped_unread(tmp_path, validations):
    """A 33 KB zstd file of one 1 GiB text cell, put directly in a store folder, took every read of the store to
    2.2 GB and 4.5 s (ingest refused it unread already): the loader now refuses it from its footer."""
    import pyarrow as pa

    root = tmp_path / "results"
    store.write_records_parquet(make_fixture_records(), root)
    bomb = root / "bomb.parquet"
    pq.write_table(pa.table({"run_id": ["bomb"], "error": ["x" * (3 << 20)]}), bomb, compression="zstd")
    assert bomb.stat().st_size < 10_000
    runs = store.load_runs([root])
    assert str(bomb) not in validations and len(validations) == 1  # DuckDB never read it; the good file it did
    assert len(runs) == len(make_fixture_records()) and "bomb" not in set(runs["run_id"])
    (why,) = [s.reason for s in runs.attrs["skipped"] if s.where == str(bomb)]
    assert why.startswith("refused unread: row group 0 unpacks to 3,145,8")
    assert f"more than {store_load.MAX_STORED_ROW_BYTES:,} bytes a row, the most a valid run's row may take" in why


def _biggest_valid_record() -> dict:
    """A valid record with every text at its limit: scalars of 4-byte characters, nested fields and 33 custom ones
    (their names of 4-byte characters too) of 64 KiB of JSON each."""
    from core import schema

    rec, wide = dict(make_fixture_records()[0]), "\U0001F600"
    for name, (kind, _) in schema.SCALAR_FIELDS.items():
        if kind is str and name not in ("run_id", "status", "created_at"):
            rec[name] = wide * schema.TEXT_LIMITS.get(name, schema.MAX_TEXT)
    for name in ("config", "zero_shot", "transferability", "provenance"):
        rec[name] = {"k": "x" * (schema.MAX_NESTED_CHARS - 9)}
    for i in range(schema.MAX_EXTRA_FIELDS):
        rec[f"{i:02d}" + wide * (schema.MAX_TEXT - 2)] = "x" * (schema.MAX_NESTED_CHARS - 2)
    rec["claimed_source"] = "x" * (schema.MAX_NESTED_CHARS - 2)
    return store.check_record(rec)


def test_a_valid_run_compacted_into_a_row_past_1_mib_still_loads(tmp_path):
    """The loader's footer rule took 1 MiB a row, a .json file's limit: a valid .json record of 0.9 MB of raw UTF-8
    text (written in \\u escapes in the store's columns: a 1.8 MB row) loaded until compaction, then its compacted
    file was refused unread and the run was gone from the store, its .json deleted. So was a bulk load of the biggest
    valid record (write_records_parquet, 2.5 MB)."""
    import json

    root = tmp_path / "results"
    root.mkdir()
    rec = dict(make_fixture_records()[0], **{f"note{i}": "\u4e2d" * 10_000 for i in range(30)})
    raw = json.dumps(rec, ensure_ascii=False).encode()
    assert len(raw) < store.MAX_RECORD_BYTES
    (root / f"{rec['run_id']}.json").write_bytes(raw)
    assert list(store.load_runs([root])["run_id"]) == [rec["run_id"]]
    made = store.compact(root)
    assert pq.read_metadata(made).row_group(0).total_byte_size > store.MAX_RECORD_BYTES
    runs = store.load_runs([root])
    assert list(runs["run_id"]) == [rec["run_id"]] and runs.attrs["skipped"] == []
    big = _biggest_valid_record()
    bulk = store.write_records_parquet([big], tmp_path / "bulk")
    assert pq.read_metadata(bulk).row_group(0).total_byte_size <= store_load.MAX_STORED_ROW_BYTES
    runs = store.load_runs([tmp_path / "bulk"])
    assert list(runs["run_id"]) == [big["run_id"]] and runs.attrs["skipped"] == []


def test_a_parquet_file_with_a_wide_column_of_its_own_is_still_read(tmp_path):
    """The loader reads only the store's columns, but its footer rule counted every column: a file of another tool
    holding a run and a 3 MB image of its own, which loaded before, was refused whole ('refused unread')."""
    import pyarrow as pa

    root = tmp_path / "results"
    made = store.write_records_parquet(make_fixture_records()[:1], root)
    table = pq.read_table(made).append_column("thumbnail", pa.array([bytes(3 << 20)], pa.binary()))
    made.unlink()
    pq.write_table(table, root / "from-another-tool.parquet", compression="zstd")
    runs = store.load_runs([root])
    assert list(runs["run_id"]) == [make_fixture_records()[0]["run_id"]] and runs.attrs["skipped"] == []
