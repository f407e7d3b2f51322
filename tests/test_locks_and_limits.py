"""Cell locks (host, pid, heartbeat, expiry), finished-record checks, and the grid's input limits."""
from __future__ import annotations

import json
import os
import socket
import time

import pytest

from core.grid_config import GridConfigError, load_grid, parse_grid
from core.store import locks
from jobs import grid as grid_job
from tests.fixtures import make_fixture_records


def _age(path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_zero_byte_lock_expires_after_a_grace(tmp_path):
    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # what a full disk leaves behind
    assert not locks.acquire_lock(tmp_path, "cell")  # a writer may be mid-way: wait a little
    _age(path, locks.EMPTY_GRACE_S + 1)
    assert locks.acquire_lock(tmp_path, "cell")
    assert json.loads(path.read_text(encoding="utf-8"))["pid"] == os.getpid()


def test_lock_from_another_host_expires_only_without_heartbeat(tmp_path):
    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": "node-17", "pid": 1, "started": 0}), encoding="utf-8")
    assert not locks.acquire_lock(tmp_path, "cell", expiry_s=60)  # fresh: a live runner elsewhere
    _age(path, 61)
    assert locks.acquire_lock(tmp_path, "cell", expiry_s=60)  # no heartbeat for the expiry: taken


def test_expiry_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(locks.EXPIRY_ENV, "5")
    assert locks.lock_expiry_s() == 5
    monkeypatch.setenv(locks.EXPIRY_ENV, "soon")
    assert locks.lock_expiry_s() == locks.DEFAULT_EXPIRY_S


def test_heartbeat_keeps_a_held_lock_fresh(tmp_path):
    assert locks.acquire_lock(tmp_path, "cell")
    path = locks.lock_path(tmp_path, "cell")
    _age(path, 100)
    with locks.heartbeat(tmp_path, "cell", expiry_s=5):  # beats every 1 s
        time.sleep(1.5)
        assert not locks.lock_is_stale(path, expiry_s=5)
    assert time.time() - path.stat().st_mtime < 5


def test_dead_local_runner_lock_is_taken_and_live_one_is_not(tmp_path):
    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}),
                    encoding="utf-8")
    assert not locks.acquire_lock(tmp_path, "cell") and locks.live_locks(tmp_path) == 1
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": 2**22 + 12345, "started": 0}), encoding="utf-8")
    assert locks.live_locks(tmp_path) == 0 and locks.acquire_lock(tmp_path, "cell")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start times come from /proc")
def test_a_lock_whose_pid_now_belongs_to_a_newer_process_is_stale(tmp_path):
    import subprocess
    import sys

    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        mine = {"host": socket.gethostname(), "pid": sleeper.pid}
        path.write_text(json.dumps({**mine, "started": time.time()}), encoding="utf-8")  # the sleeper's own lock: live
        assert not locks.lock_is_stale(path)
        path.write_text(json.dumps({**mine, "started": time.time() - 3600}),
                        encoding="utf-8")  # made before that process began
        assert locks.lock_is_stale(path) and locks.acquire_lock(tmp_path, "cell")
    finally:
        sleeper.kill()
        sleeper.wait()
    for pid in (0, -1):  # never a runner's pid (os.kill(0, 0) would signal our own group and "succeed")
        path.write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "started": time.time()}),
                        encoding="utf-8")
        assert locks.lock_is_stale(path)


def test_an_unreadable_lock_is_judged_by_its_heartbeat(tmp_path, monkeypatch):
    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}),
                    encoding="utf-8")
    real = type(path).read_text

    def unreadable(self, *args, **kwargs):  # another user's lock made under umask 077
        if self.name == "cell.lock":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(path), "read_text", unreadable)
    assert not locks.lock_is_stale(path)  # fresh heartbeat: someone is working
    _age(path, 0.5 * locks.DEFAULT_EXPIRY_S)  # between two heartbeats of a live owner (every expiry/5)
    assert not locks.lock_is_stale(path)
    _age(path, 2 * 3600)
    assert locks.lock_is_stale(path)  # hours without a heartbeat (was: never stale)


def test_a_runner_never_releases_or_refreshes_a_lock_another_runner_took_over(tmp_path):
    assert locks.acquire_lock(tmp_path, "cell")
    path = locks.lock_path(tmp_path, "cell")
    # paused past the expiry, this runner's lock was taken over by another (its own token)
    theirs = json.dumps({"host": "node-2", "pid": 77, "started": time.time(), "token": "theirs"})
    path.write_text(theirs, encoding="utf-8")
    _age(path, 30)
    before = path.stat().st_mtime
    with locks.heartbeat(tmp_path, "cell", expiry_s=0.5):  # beats every 0.1 s (was never faster than 1 s)
        time.sleep(0.4)
    assert path.stat().st_mtime == before  # not refreshed
    locks.release_lock(tmp_path, "cell")
    assert path.read_text(encoding="utf-8") == theirs  # not deleted
    assert locks.acquire_lock(tmp_path, "other")
    with locks.heartbeat(tmp_path, "other", expiry_s=0.5):
        _age(locks.lock_path(tmp_path, "other"), 30)
        deadline = time.time() + 10  # its own lock it does refresh (polled: the machine may be busy)
        while time.time() < deadline and time.time() - locks.lock_path(tmp_path, "other").stat().st_mtime > 5:
            time.sleep(0.05)
        assert time.time() - locks.lock_path(tmp_path, "other").stat().st_mtime < 5
    locks.release_lock(tmp_path, "other")
    assert not locks.lock_path(tmp_path, "other").exists()  # its own lock it does release


def test_only_a_valid_record_counts_as_finished(tmp_path):
    rec = make_fixture_records(n_datasets=1, methods=("full",))[0]
    (tmp_path / f"{rec['run_id']}.json").write_bytes(b"")  # 0-byte record: run the cell again
    assert not grid_job.is_finished(tmp_path, rec["run_id"])
    (tmp_path / f"{rec['run_id']}.json").write_text(json.dumps(dict(rec, seed=10**30)), encoding="utf-8")
    assert not grid_job.is_finished(tmp_path, rec["run_id"])
    (tmp_path / f"{rec['run_id']}.json").write_text(json.dumps(rec), encoding="utf-8")
    assert grid_job.is_finished(tmp_path, rec["run_id"])


BASE = {"models": ["m"], "datasets": ["letters"], "methods": ["lora"]}


@pytest.fixture(scope="module")
def known():
    return grid_job._known()


@pytest.mark.parametrize("sweep, match", [
    ({"lorra.rank": [4]}, "sweep key 'lorra.rank'"),
    ({"rank": [4]}, "sweep key 'rank'"),
    ({"lora.rnak": [4]}, "has no setting 'rnak'"),
    ({"lora.rank": []}, "non-empty list"),
])
def test_unknown_sweep_keys_are_refused(known, sweep, match):
    with pytest.raises(GridConfigError, match=match):
        parse_grid({**BASE, "sweep": sweep}, **known)


def test_cell_cap_counts_before_building(known):
    huge = {**BASE, "seeds": list(range(1000)), "sweep": {"lora.rank": list(range(1, 1001))}}
    start = time.perf_counter()
    with pytest.raises(GridConfigError, match="1,000,000 cells.*--max-cells"):
        parse_grid(huge, **known)
    assert time.perf_counter() - start < 1
    assert len(parse_grid({**BASE, "seeds": [0, 1, 2]}, max_cells=3, **known).cells) == 3


def test_deep_toml_is_refused_with_a_message(tmp_path, known):
    deep = tmp_path / "deep.toml"
    deep.write_text("x = " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    with pytest.raises(GridConfigError, match="nested"):
        load_grid(deep, **known)
    tables = tmp_path / "tables.toml"
    tables.write_text('models = ["m"]\ndatasets = ["letters"]\nmethods = ["lora"]\n'
                      "[method.lora.train." + ".".join("abcdefgh") + "]\nx = 1\n", encoding="utf-8")
    with pytest.raises(GridConfigError, match="nested more than"):
        load_grid(tables, **known)


def test_grid_refuses_a_results_folder_that_is_not_one(tmp_path, caplog):
    config = tmp_path / "g.toml"
    config.write_text('models = ["m"]\ndatasets = ["letters"]\nmethods = ["zero_shot"]\n', encoding="utf-8")
    assert grid_job.main([str(config), "--results", "/"]) == 2
    assert "not a results folder" in caplog.text
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "setup.py").write_text("", encoding="utf-8")
    assert grid_job.main([str(config), "--results", str(tmp_path / "src")]) == 2
    assert "does not look like a results folder" in caplog.text


def test_the_grid_depth_limit_counts_the_files_top_level_as_readme_says(tmp_path, known):
    """README: 'TOML nested more than 6 levels' is refused; the count starts at the file's top level, which neither
    README nor the message said, so [a.b.c.d.e.f] (6 tables) read as within the limit yet was refused."""
    import re
    from pathlib import Path

    from core.grid_config import MAX_DEPTH
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())
    assert MAX_DEPTH == 6 and re.search(r"TOML nested more than 6 levels \(the file's top level the first: "
                                        r"`\[a\.b\.c\.d\.e\]` is 6\)", readme)
    head = 'models = ["m"]\ndatasets = ["letters"]\nmethods = ["lora"]\n'
    at_limit, over = tmp_path / "six.toml", tmp_path / "seven.toml"
    at_limit.write_text(head + "description = [[[[[1]]]]]\n", encoding="utf-8")  # top level + 5 arrays
    over.write_text(head + "description = [[[[[[1]]]]]]\n", encoding="utf-8")
    with pytest.raises(GridConfigError, match="'description' must be text"):  # past the depth rule: refused later
        load_grid(at_limit, **known)
    with pytest.raises(GridConfigError, match=r"nested more than 6 levels deep \(the file's top level is the first"):
        load_grid(over, **known)
