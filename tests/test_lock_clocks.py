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
