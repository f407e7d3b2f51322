"""Per-cell lock files that a dead runner on any host can never hold forever.

A lock is ``<results>/.locks/<run_id>.lock``, created with O_EXCL, holding JSON
``{"host", "pid", "started"}``; its modification time is the heartbeat, refreshed by a daemon
thread while the cell runs. A lock is *stale* -- and taken over -- when:

* its heartbeat is older than the expiry (any host: a pre-empted SLURM task, a lost node);
* it was made on this host by a process that no longer exists (a killed runner);
* it is empty or unreadable and older than a short grace (a full disk left a 0-byte file).

Expiry: ``IIMM_LOCK_EXPIRY_S`` (default 600 s) or the ``expiry_s`` argument; the heartbeat
runs every expiry/5 seconds, so a live runner is never mistaken for a dead one.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

DEFAULT_EXPIRY_S = 600.0
EMPTY_GRACE_S = 30.0
EXPIRY_ENV = "IIMM_LOCK_EXPIRY_S"


def lock_expiry_s() -> float:
    """The configured expiry: ``$IIMM_LOCK_EXPIRY_S`` when it is a positive number, else 600 s."""
    try:
        value = float(os.environ.get(EXPIRY_ENV, DEFAULT_EXPIRY_S))
    except ValueError:
        return DEFAULT_EXPIRY_S
    return value if value > 0 else DEFAULT_EXPIRY_S


def lock_path(results: Path, run_id: str) -> Path:
    return Path(results) / ".locks" / f"{run_id}.lock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def lock_is_stale(path: Path, *, expiry_s: float | None = None, now: float | None = None) -> bool:
    """See the module docstring. A lock that vanished counts as not stale (nothing to take)."""
    expiry = lock_expiry_s() if expiry_s is None else expiry_s
    try:
        st = path.stat()
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    age = (time.time() if now is None else now) - st.st_mtime
    if age > expiry:
        return True
    try:
        owner = json.loads(text)
        host, pid = owner["host"], int(owner["pid"])
    except (ValueError, KeyError, TypeError):
        try:  # the older "host:pid" form
            host, pid_text = text.rsplit(":", 1)
            pid = int(pid_text)
        except ValueError:
            return age > min(EMPTY_GRACE_S, expiry)  # empty or garbage: give a writer a moment
    return host == socket.gethostname() and not _pid_alive(pid)


def live_locks(results: Path) -> int:
    """Cells some live runner holds right now (stale locks not counted)."""
    return sum(not lock_is_stale(p) for p in (Path(results) / ".locks").glob("*.lock"))


def acquire_lock(results: Path, run_id: str, *, expiry_s: float | None = None) -> bool:
    """Take the cell's lock; a stale lock is taken over. False when a live runner holds it."""
    path = lock_path(results, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()})
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if lock_is_stale(path, expiry_s=expiry_s) and _take_over(path):
                continue
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(owner)
        return True
    return False


def _take_over(path: Path) -> bool:
    """Move a stale lock aside; True when the file moved is the one judged stale.

    Two runners may judge the same lock stale at once: the rename lets one win, and the inode
    check stops the other from removing the fresh lock the winner may already have made.
    """
    try:
        judged = path.stat().st_ino
        aside = path.with_name(f".stale-{uuid.uuid4().hex}")
        os.rename(path, aside)
    except OSError:
        return False
    if aside.stat().st_ino != judged:  # we moved a fresh lock: give it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True


def release_lock(results: Path, run_id: str) -> None:
    lock_path(results, run_id).unlink(missing_ok=True)


@contextlib.contextmanager
def heartbeat(results: Path, run_id: str, *, expiry_s: float | None = None) -> Iterator[None]:
    """Touch the held lock every expiry/5 seconds (1-60 s) until the block ends."""
    period = min(60.0, max(1.0, (lock_expiry_s() if expiry_s is None else expiry_s) / 5))
    path, stop = lock_path(results, run_id), threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            with contextlib.suppress(OSError):
                os.utime(path)

    thread = threading.Thread(target=beat, name=f"lock-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
