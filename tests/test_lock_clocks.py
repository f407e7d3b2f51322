"""Grid locks against clocks that step: a runner's live lock is never taken over because the clock moved."""
import json
import os

import pytest

from core.store import locks


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start ticks come from /proc")
def test_a_live_runners_lock_is_not_taken_over_after_the_clock_steps_forward(tmp_path, monkeypatch):
    assert locks.acquire_lock(tmp_path, "cell")
    path = locks.lock_path(tmp_path, "cell")
    real = locks.process_start
    # an NTP step of a minute forward: Linux moves the boot time with it, so every process's start read as a
    # wall-clock time moves too, and this process seemed to have begun after it took its lock
    monkeypatch.setattr(locks, "process_start", lambda pid: real(pid) + 60)
    assert not locks.lock_is_stale(path), "a live runner's lock was judged stale after a clock step"
    assert not locks.acquire_lock(tmp_path, "cell") and locks.live_locks(tmp_path) == 1


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="process start ticks come from /proc")
def test_a_lock_whose_pid_another_process_holds_now_is_stale_whatever_the_clock(tmp_path, monkeypatch):
    assert locks.acquire_lock(tmp_path, "cell")
    path = locks.lock_path(tmp_path, "cell")
    owner = json.loads(path.read_text(encoding="utf-8"))
    boot, tick = owner["process"].rsplit("/", 1)
    monkeypatch.setattr(locks, "process_start", lambda pid: 0.0)  # the wall-clock reading says: older, the same
    path.write_text(json.dumps({**owner, "process": f"{boot}/{int(tick) - 1}"}), encoding="utf-8")
    assert locks.lock_is_stale(path)  # the pid is this process now, not the one that took the lock
    path.write_text(json.dumps({**owner, "process": f"another-boot/{tick}"}), encoding="utf-8")
    assert locks.lock_is_stale(path)  # made before the host restarted
    monkeypatch.setattr(locks, "process_identity", lambda pid: None)  # no /proc: the wall-clock comparison
    assert not locks.lock_is_stale(path)


def _foreign_lock(results, age_s=0.0):
    """Another host's lock whose last heartbeat was ``age_s`` ago, on the file system's clock."""
    path = locks.lock_path(results, "cell")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": "node-17", "pid": 4242, "started": 0, "token": "theirs"}), encoding="utf-8")
    if age_s:
        stamp = path.stat().st_mtime - age_s
        os.utime(path, (stamp, stamp))
    return path


@pytest.mark.parametrize("skew_s", [+900.0, -900.0])
def test_a_hosts_clock_skew_neither_steals_a_live_lock_nor_keeps_a_dead_one(tmp_path, monkeypatch, skew_s):
    """This host's clock 15 minutes ahead of (or behind) the clock that stamps the files, as a SLURM node
    without NTP may be against the file server: the heartbeat's age is the file system's to tell."""
    import time

    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew_s)
    live = _foreign_lock(tmp_path / "a")  # its owner touched it just now
    assert not locks.lock_is_stale(live)  # ahead: was judged 900 s old, past the 600 s expiry, and taken over
    assert locks.live_locks(tmp_path / "a") == 1 and not locks.acquire_lock(tmp_path / "a", "cell")
    dead = _foreign_lock(tmp_path / "b", age_s=locks.DEFAULT_EXPIRY_S + 100)  # no heartbeat for 700 s
    assert locks.lock_is_stale(dead)  # behind: was judged -200 s old, kept 900 s past its expiry
    assert locks.live_locks(tmp_path / "b") == 0 and locks.acquire_lock(tmp_path / "b", "cell")
    assert sorted(p.name for p in (tmp_path / "b" / ".locks").iterdir()) == ["cell.lock"]  # no probe file left


def test_without_a_writable_lock_folder_the_local_clock_tells_the_age(tmp_path, monkeypatch):
    import tempfile

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    path = _foreign_lock(tmp_path, age_s=locks.DEFAULT_EXPIRY_S + 100)
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    assert locks.lock_is_stale(path) and not locks.lock_is_stale(_foreign_lock(tmp_path))


@pytest.mark.skipif(not os.path.exists("/proc/self/ns/pid"), reason="PID namespaces come from /proc")
def test_a_lock_from_another_container_of_this_host_name_is_judged_by_its_heartbeat(tmp_path):
    """Two containers with host networking share the host name but not their pids: a live runner's lock in the
    other container names a pid that is dead (or another process) here, and was taken over at once."""
    assert locks.acquire_lock(tmp_path, "cell")
    path = locks.lock_path(tmp_path, "cell")
    owner = json.loads(path.read_text(encoding="utf-8"))
    assert owner["pid_namespace"] == locks.pid_namespace()
    gone = max(int(p) for p in os.listdir("/proc") if p.isdigit()) + 10_000  # no process here has this pid
    theirs = {**owner, "pid": gone, "process": "their-boot/5", "pid_namespace": "pid:[1]"}
    path.write_text(json.dumps(theirs), encoding="utf-8")
    assert not locks.lock_is_stale(path), "another container's live runner lost its lock"
    assert not locks.acquire_lock(tmp_path, "cell")
    stamp = path.stat().st_mtime - 3600  # its heartbeat stopped an hour ago: stale as any host's
    os.utime(path, (stamp, stamp))
    assert locks.lock_is_stale(path)
    path.write_text(json.dumps({**theirs, "pid_namespace": locks.pid_namespace()}), encoding="utf-8")
    assert locks.lock_is_stale(path)  # in this namespace, a dead pid is a dead runner at once
