"""core.store.index: the local index of JSON records gives exactly the frame a full read gives."""
from __future__ import annotations

import json
import os

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
    path.write_text(json.dumps(record))


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    for i in range(5):
        _write(root / "grid" / f"r{i}.json", _record(f"r{i}", ft_acc=60.0 + i))
    # the same run_id twice with the same created_at: which copy wins must not depend on the index
    _write(root / "a" / "twin.json", _record("twin", ft_acc=1.0))
    _write(root / "b" / "twin.json", _record("twin", ft_acc=2.0))
    _write(root / "bad.json", {"run_id": "bad"})  # invalid: named on every load
    (root / "broken.json").write_text("{not json")
    return root


@pytest.fixture
def later(monkeypatch):
    """Loads happen well after the files were written (past the racy window; a file's change time
    cannot be set back)."""
    real = store_index.time_ns
    monkeypatch.setattr(store_index, "time_ns", lambda: real() + 10 * store_index.RACY_NS)


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
    (path,) = idx.glob("*.arrow")
    path.write_bytes(b"not an arrow file")
    _same(full, store.load_runs([results], index_dir=idx))
    reads.clear()
    _same(full, store.load_runs([results], index_dir=idx))  # rebuilt by the load before
    assert sorted(reads) == ["bad.json", "broken.json"]
    stale = idx / (path.name.split("-")[0] + "-0000000000000000.arrow")  # made by older code
    stale.write_bytes(path.read_bytes())
    (results / "grid" / "r3.json").unlink()
    store.load_runs([results], index_dir=idx)
    assert not stale.exists() and path.exists()


def test_a_temporary_left_by_a_killed_writer_is_removed_once_abandoned(results, tmp_path):
    idx = tmp_path / "idx"
    idx.mkdir()
    abandoned, current = idx / ".tmp-abc.arrow", idx / ".tmp-def.arrow"  # another writer's, in progress
    for f in (abandoned, current):
        f.write_bytes(b"partial")
    hour_ago = os.stat(current).st_mtime - 3600
    os.utime(abandoned, (hour_ago, hour_ago))
    store.load_runs([results], index_dir=idx)
    assert not abandoned.exists() and current.exists()


def test_an_index_that_cannot_be_written_only_costs_speed(results, tmp_path, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the index folder should be")
    with caplog.at_level("INFO", logger="core.store"):
        _same(store.load_runs([results]), store.load_runs([results], index_dir=blocked))
    assert "could not write the store index" in caplog.text


def test_each_results_folder_has_its_own_index(results, tmp_path):
    other = tmp_path / "other"
    _write(other / "x.json", _record("x"))
    idx = tmp_path / "idx"
    both = store.load_runs([results, other], index_dir=idx)
    assert len(list(idx.glob("*.arrow"))) == 2
    _same(both, store.load_runs([results, other], index_dir=idx))


def test_a_folder_without_json_records_leaves_no_index(results, tmp_path):
    idx, empty = tmp_path / "idx", tmp_path / "parquet-only"
    store.write_records_parquet([_record("p1")], empty)
    assert list(store.load_runs([empty], index_dir=idx)["run_id"]) == ["p1"]
    assert not idx.exists() or not any(idx.iterdir())
    store.load_runs([results], index_dir=idx)
    (made,) = idx.glob("*.arrow")
    for f in results.rglob("*.json"):  # compacted, say: the index of that folder goes too
        f.unlink()
    store.load_runs([results], index_dir=idx)
    assert not made.exists()


def test_where_the_index_lives(monkeypatch, tmp_path):
    monkeypatch.delenv(store.INDEX_ENV_VAR, raising=False)
    assert store.default_index_dir() == store.REPO_ROOT / ".cache" / "store-index"
    monkeypatch.setenv(store.INDEX_ENV_VAR, str(tmp_path))
    assert store.default_index_dir() == tmp_path
    monkeypatch.setenv(store.INDEX_ENV_VAR, " OFF ")
    assert store.default_index_dir() is None
