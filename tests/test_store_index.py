"""core.store.index: the local index of JSON records gives exactly the frame a full read gives."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from core import store
from core.store import index as store_index


def _record(run_id, **kw):
    rec = {"run_id": run_id, "status": "ok", "model": "m", "pretrained": "p", "method": "full",
           "dataset": "d", "seed": 0, "source": "test", "zs_acc": 50.0, "ft_acc": 60.0,
           "created_at": "2026-01-01T00:00:00+00:00", "config": {"lr": 0.1}}
    rec.update(kw)
    return rec


def _write(path, record):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for i in range(5):
        _write(root / "grid" / f"r{i}.json", _record(f"r{i}", ft_acc=60.0 + i))
    # the same run_id twice with the same created_at: which copy wins must not depend on the index
    _write(root / "a" / "twin.json", _record("twin", ft_acc=1.0))
    _write(root / "b" / "twin.json", _record("twin", ft_acc=2.0))
    _write(root / "bad.json", {"run_id": "bad"})  # invalid: named on every load
    (root / "broken.json").write_text("{not json", encoding="utf-8")
    return root


@pytest.fixture
def reads(monkeypatch):
    """Counts records read from their files (the work the index saves)."""
    seen = []
    real = store_index.read_json_record

    def counting(path, skipped=None):
        seen.append(path.name)
        return real(path, skipped)

    monkeypatch.setattr(store_index, "read_json_record", counting)
    return seen


def _same(left, right):
    pd.testing.assert_frame_equal(left, right)
    assert left.attrs["skipped"] == right.attrs["skipped"]


def test_the_index_gives_the_frame_and_skipped_list_of_a_full_read(results, tmp_path, later):
    full = store.load_runs([results])
    cold = store.load_runs([results], index_dir=tmp_path / "idx")
    warm = store.load_runs([results], index_dir=tmp_path / "idx")
    _same(full, cold)
    _same(full, warm)
    assert len(full) == 6 and len(full.attrs["skipped"]) == 2
    assert full.set_index("run_id").loc["twin", "ft_acc"] == 1.0  # the first listed of the twins
    _write(results / "a" / "twin.json", _record("twin", ft_acc=1.0))  # now read afresh, its twin indexed
    _same(full, store.load_runs([results], index_dir=tmp_path / "idx"))


def test_unchanged_records_are_taken_from_the_index_and_invalid_ones_read_again(results, tmp_path, reads, later):
    store.load_runs([results], index_dir=tmp_path / "idx")
    assert len(reads) == 9
    reads.clear()
    store.load_runs([results], index_dir=tmp_path / "idx")
    assert sorted(reads) == ["bad.json", "broken.json"]


def test_a_replaced_record_is_read_again_even_with_its_size_and_time_restored(results, tmp_path, later, reads):
    idx = tmp_path / "idx"
    store.load_runs([results], index_dir=idx)
    reads.clear()
    store.load_runs([results], index_dir=idx)
    assert "r1.json" not in reads  # indexed
    target = results / "grid" / "r1.json"
    before = os.stat(target)
    _write(target, _record("r1", ft_acc=99.0))  # in place: same inode, same size (61.0 -> 99.0)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_size == before.st_size
    assert store.load_runs([results], index_dir=idx).set_index("run_id").loc["r1", "ft_acc"] == 99.0
    store.write_record(_record("r2", ft_acc=42.0), results / "grid")  # the writers' way: a new inode
    assert store.load_runs([results], index_dir=idx).set_index("run_id").loc["r2", "ft_acc"] == 42.0


def test_added_and_removed_records_show_at_once(results, tmp_path, later):
    idx = tmp_path / "idx"
    store.load_runs([results], index_dir=idx)
    (results / "grid" / "r0.json").unlink()
    _write(results / "grid" / "new.json", _record("new"))
    ids = set(store.load_runs([results], index_dir=idx)["run_id"])
    assert "r0" not in ids and "new" in ids


def test_a_file_changed_just_now_is_not_entered_until_it_settles(results, tmp_path, reads, monkeypatch):
    idx = tmp_path / "idx"
    store.load_runs([results], index_dir=idx)  # every file was written just now
    reads.clear()
    store.load_runs([results], index_dir=idx)
    assert len(reads) == 9
    real = store_index.time_ns
    monkeypatch.setattr(store_index, "time_ns", lambda: real() + store_index.RACY_NS + 10**9)
    store.load_runs([results], index_dir=idx)
    reads.clear()
    store.load_runs([results], index_dir=idx)
    assert sorted(reads) == ["bad.json", "broken.json"]


def test_a_damaged_or_foreign_index_is_ignored_and_rebuilt(results, tmp_path, reads, later):
    idx = tmp_path / "idx"
    full = store.load_runs([results])
    store.load_runs([results], index_dir=idx)
    (path,) = idx.glob("*" + store_index.SUFFIX)
    path.write_bytes(b"not an arrow file")
    _same(full, store.load_runs([results], index_dir=idx))
    reads.clear()
    _same(full, store.load_runs([results], index_dir=idx))  # rebuilt by the load before
    assert sorted(reads) == ["bad.json", "broken.json"]
    stale = idx / (path.name.split("-")[0] + "-0000000000000000" + store_index.SUFFIX)  # made by older code
    stale.write_bytes(path.read_bytes())
    (results / "grid" / "r3.json").unlink()
    store.load_runs([results], index_dir=idx)
    assert not stale.exists() and path.exists()


def test_a_temporary_left_by_a_killed_writer_is_removed_once_abandoned(results, tmp_path, later):
    idx = tmp_path / "idx"
    idx.mkdir()
    name = ".tmp-" + "a" * 16 + "-" + "b" * 16 + "-{}" + store_index.SUFFIX  # as _atomic_write names them
    abandoned, current = idx / name.format("abc"), idx / name.format("def")  # another writer's, in progress
    foreign = idx / (".tmp-abc" + store_index.SUFFIX)  # not named as the index names its files: not ours
    for f in (abandoned, current, foreign):
        f.write_bytes(b"partial")
    hour_ago = os.stat(current).st_mtime - 3600
    for f in (abandoned, foreign):
        os.utime(f, (hour_ago, hour_ago))
    store.load_runs([results], index_dir=idx)
    assert not abandoned.exists() and current.exists() and foreign.exists()


def test_an_index_that_cannot_be_written_only_costs_speed(results, tmp_path, caplog, later):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the index folder should be", encoding="utf-8")
    with caplog.at_level("INFO", logger="core.store"):
        _same(store.load_runs([results]), store.load_runs([results], index_dir=blocked))
    assert "could not write the store index" in caplog.text


def test_each_results_folder_has_its_own_index(results, tmp_path, later):
    other = tmp_path / "other"
    _write(other / "x.json", _record("x"))
    idx = tmp_path / "idx"
    both = store.load_runs([results, other], index_dir=idx)
    assert len(list(idx.glob("*" + store_index.SUFFIX))) == 2
    _same(both, store.load_runs([results, other], index_dir=idx))


def test_a_folder_without_json_records_leaves_no_index(results, tmp_path, later):
    idx, empty = tmp_path / "idx", tmp_path / "parquet-only"
    store.write_records_parquet([_record("p1")], empty)
    assert list(store.load_runs([empty], index_dir=idx)["run_id"]) == ["p1"]
    assert not idx.exists() or not any(idx.iterdir())
    store.load_runs([results], index_dir=idx)
    (made,) = idx.glob("*" + store_index.SUFFIX)
    for f in results.rglob("*.json"):  # compacted, say: the index of that folder goes too
        f.unlink()
    store.load_runs([results], index_dir=idx)
    assert not made.exists()


def test_where_the_index_lives(monkeypatch, tmp_path):
    monkeypatch.delenv(store.INDEX_ENV_VAR, raising=False)
    assert store.default_index_dir() == store.REPO_ROOT / ".cache" / "store-index"
    monkeypatch.setenv(store.INDEX_ENV_VAR, str(tmp_path))
    assert store.default_index_dir() == tmp_path
    for off in (" OFF ", "false", "0", "no", "None"):
        monkeypatch.setenv(store.INDEX_ENV_VAR, off)
        assert store.default_index_dir() is None


def test_a_damaged_byte_is_caught_by_the_checksum(results, tmp_path, later):
    idx = tmp_path / "idx"
    _write(results / "grid" / "r0.json", _record("r0", model="model-zqzq"))
    full = store.load_runs([results])
    store.load_runs([results], index_dir=idx)
    (path,) = idx.glob("*" + store_index.SUFFIX)
    raw = path.read_bytes()
    assert raw.count(b"zqzq") == 1
    path.write_bytes(raw.replace(b"zqzq", b"zqzx"))  # still valid text: only the checksum can tell
    _same(full, store.load_runs([results], index_dir=idx))


def test_a_crafted_index_with_broken_offsets_is_refused_before_any_value_is_read(results, tmp_path, later):
    import numpy as np
    import pyarrow as pa

    idx = tmp_path / "idx"
    full = store.load_runs([results])
    store.load_runs([results], index_dir=idx)
    path = store_index.index_file(idx, results)
    table = store_index._read_index(path)
    keys = table["_key"].combine_chunks()
    validity, offsets, data = keys.buffers()
    bent = np.frombuffer(offsets, dtype=np.int32).copy()
    bent[1] = 2**31 - 1000  # far past the data: reading it would touch memory out of bounds
    broken = pa.Array.from_buffers(pa.string(), len(keys), [validity, pa.py_buffer(bent.tobytes()), data])
    store_index._write_index(path, table.set_column(table.schema.get_field_index("_key"), "_key", broken))
    _same(full, store.load_runs([results], index_dir=idx))  # with a valid checksum, still refused


def test_a_fifo_in_place_of_the_index_does_not_hang_the_load(results, tmp_path):
    import threading

    idx = tmp_path / "idx"
    idx.mkdir()
    os.mkfifo(store_index.index_file(idx, results))
    done = []
    worker = threading.Thread(target=lambda: done.append(store.load_runs([results], index_dir=idx)), daemon=True)
    worker.start()
    worker.join(20)
    assert done, "the load hung on a FIFO"
    _same(store.load_runs([results]), done[0])


def test_the_same_folder_through_a_link_shares_its_index(results, tmp_path, reads, later):
    idx, alias = tmp_path / "idx", tmp_path / "alias"
    alias.symlink_to(results)
    store.load_runs([results], index_dir=idx)
    reads.clear()
    through_link = store.load_runs([alias], index_dir=idx)
    assert sorted(reads) == ["bad.json", "broken.json"]
    _same(store.load_runs([alias]), through_link)  # files named as given, through the link


def test_an_unchanged_store_is_not_rewritten_even_with_a_file_from_the_future(results, tmp_path, monkeypatch, later):
    idx = tmp_path / "idx"
    future = results / "grid" / "r0.json"
    ahead = os.stat(future).st_mtime + 3600
    os.utime(future, (ahead, ahead))  # a clock set wrong somewhere: never settled
    store.load_runs([results], index_dir=idx)
    writes = []
    real = store_index._write_index
    monkeypatch.setattr(store_index, "_write_index", lambda *a: writes.append(a) or real(*a))
    for _ in range(3):
        store.load_runs([results], index_dir=idx)
    assert writes == []


def test_the_racy_window_counts_from_the_start_of_the_load(results, tmp_path, reads, monkeypatch):
    idx = tmp_path / "idx"
    _write(results / "grid" / "fresh.json", _record("fresh"))
    real = store_index.time_ns
    calls = []

    def slow_load_clock():  # the load's first reading is now; it then takes 10 s (a large store)
        calls.append(None)
        return real() + (0 if len(calls) == 1 else 5 * store_index.RACY_NS)

    monkeypatch.setattr(store_index, "time_ns", slow_load_clock)
    store.load_runs([results], index_dir=idx)
    monkeypatch.setattr(store_index, "time_ns", real)
    reads.clear()
    store.load_runs([results], index_dir=idx)
    assert "fresh.json" in reads  # changed within the window of the load that saw it: not entered


def test_a_file_name_that_is_not_utf8_is_named_not_fatal(results, tmp_path):
    odd = os.fsdecode(os.fsencode(str(results / "grid")) + b"/caf\xe9.json")
    _write(Path(odd), _record("cafe"))
    for index_dir in (None, tmp_path / "idx"):
        runs, skipped = store.load_runs_report([results], index_dir=index_dir)
        assert "cafe" not in set(runs["run_id"]) and len(runs) == 6
        assert any("caf\\xe9.json" in s.where and "not valid UTF-8" in s.reason for s in skipped)


def test_no_fingerprint_means_no_index(results, tmp_path, monkeypatch):
    monkeypatch.setattr(store_index, "FINGERPRINT", None)  # e.g. deployed without its .py sources
    _same(store.load_runs([results]), store.load_runs([results], index_dir=tmp_path / "idx"))
    assert not (tmp_path / "idx").exists()


def test_the_index_is_readable_by_other_users_and_old_ones_are_dropped(results, tmp_path, later):
    idx = tmp_path / "idx"
    idx.mkdir()
    gone, recent = (idx / (d * 16 + "-" + "f" * 16 + store_index.SUFFIX) for d in "01")
    shared = idx / ("search" + store_index.SUFFIX)  # IIMM_STORE_INDEX may point at a shared folder: not ours
    for f in (gone, recent, shared):
        f.write_bytes(b"an index of another folder")
    month_ago = os.stat(recent).st_mtime - 31 * 86_400
    for f in (gone, shared):
        os.utime(f, (month_ago, month_ago))
    store.load_runs([results], index_dir=idx)
    mine = store_index.index_file(idx, results)
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(mine).st_mode & 0o777 == 0o666 & ~mask
    assert recent.exists() and not gone.exists() and shared.exists()  # was: search.index deleted


def test_whatever_fails_in_the_index_the_load_reads_every_record_once(results, tmp_path, monkeypatch, later, caplog):
    def broken_disk(*args):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_index, "_write_index", broken_disk)  # fails after the records were read
    with caplog.at_level("WARNING", logger="core.store"):
        _same(store.load_runs([results]), store.load_runs([results], index_dir=tmp_path / "idx"))
    assert "not used (RuntimeError: disk on fire)" in caplog.text  # and each bad record named once (_same)
