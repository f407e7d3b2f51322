"""Per-cell lock files that a dead runner on any host can never hold forever.

A lock is ``<results>/.locks/<run_id>.lock``, created with O_EXCL, holding JSON
``{"host", "pid", "started", "process", "pid_namespace", "token"}``; its modification time is the heartbeat, refreshed by a daemon
thread while the cell runs. A lock is *stale* -- and taken over -- when:

* its heartbeat is older than the expiry (any host: a pre-empted SLURM task, a lost node);
* it was made on this host by a process that no longer exists (a killed runner), or whose pid now
  belongs to another process (a reused pid, a restarted container). Where Linux's /proc tells it, the
  lock names its process by boot and start tick (:func:`process_identity`), which no clock change
  moves; elsewhere, and in older locks, by the wall-clock time it was made, against the process's start.
  "This host" is the host name and, where /proc tells it, the PID namespace (:func:`pid_namespace`): a lock
  from another container of the same host name (host networking) is judged by its heartbeat alone;
* it is empty or garbage and older than a short grace (a full disk left a 0-byte file).

A lock that cannot be read (another user's, made under umask 077) is judged by its heartbeat alone:
stale once it is older than the expiry.

A runner releases and refreshes only a lock that still holds its own token: one paused past the
expiry (Ctrl-Z, a suspended job) whose lock another runner took over never deletes or refreshes
that runner's lock; it finishes its cell (the record is written atomically under the same id).

Expiry: ``IIMM_LOCK_EXPIRY_S`` (default 600 s) or the ``expiry_s`` argument; the heartbeat
runs every expiry/5 seconds (at most 60 s), so a live runner is never mistaken for a dead one.

A heartbeat's age is taken on the clock that stamped it: the modification time of a file made in
``.locks`` just then (:func:`filesystem_now`), not this host's clock. On NFS the file server stamps
both, so hosts whose clocks disagree by minutes still agree on a lock's age (judged by the local clock,
a node running 15 minutes ahead took over every live lock of the others, and one running behind left
a dead lock for the expiry plus its lag). File systems whose clients stamp their own times (Lustre,
GPFS) give the local clock either way: there, hosts must keep their clocks within the expiry less
one heartbeat period (540 s by default) of each other, as NTP does.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

DEFAULT_EXPIRY_S = 600.0
EMPTY_GRACE_S = 30.0
EXPIRY_ENV = "IIMM_LOCK_EXPIRY_S"
log = logging.getLogger("core.store")


def lock_expiry_s() -> float:
    """The configured expiry: ``$IIMM_LOCK_EXPIRY_S`` when it is a positive number, else 600 s."""
    try:
        value = float(os.environ.get(EXPIRY_ENV, DEFAULT_EXPIRY_S))
    except ValueError:
        return DEFAULT_EXPIRY_S
    return value if value > 0 else DEFAULT_EXPIRY_S


def lock_path(results: Path, run_id: str) -> Path:
    """The lock file of cell ``run_id``: ``<results>/.locks/<run_id>.lock`` (not created here)."""
    return Path(results) / ".locks" / f"{run_id}.lock"


_WINDOWS = os.name == "nt"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user's counts). Asked of psutil on Windows, where
    ``os.kill(pid, 0)`` tests nothing: signal 0 is CTRL_C_EVENT there, a Ctrl-C sent to the processes of a
    console (the runner's own: a grid re-run beside a dead runner's lock was interrupted)."""
    if _WINDOWS:
        try:
            import psutil
        except ImportError:  # not installed: judged alive, so the lock goes only at its expiry
            return True
        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _start_tick(pid: int) -> int | None:
    """Process ``pid``'s start in clock ticks since boot (field 22 of Linux's /proc/<pid>/stat, counted after
    the parenthesised name, which may hold spaces); None where there is no /proc or the process is gone."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace").rsplit(")", 1)[1]
                   .split()[19])
    except (OSError, ValueError, IndexError):
        return None


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc, else (macOS, Windows: no /proc) from psutil;
    None where neither can tell."""
    tick = _start_tick(pid)
    if tick is not None:
        try:
            boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text(encoding="utf-8")
                        .splitlines() if line.startswith("btime "))
            return boot + tick / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError, StopIteration):
            pass
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):  # gone, or another user's: not known
        return None


def process_identity(pid: int) -> str | None:
    """Which process holds ``pid``, in terms no clock change moves: ``'<boot id>/<start tick>'`` from Linux's
    /proc (the tick counts from boot); None where there is no /proc or the process is gone.

    A process's start as a wall-clock time (:func:`process_start`) is the boot time plus that tick, and Linux
    moves the boot time with every step of the clock: after an NTP step of a few seconds forward, a runner's
    start read that way came after the time it took its lock, and the lock of that live runner was judged
    to belong to a newer process and taken over, the cell run twice at once."""
    tick = _start_tick(pid)
    if tick is None:
        return None
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="utf-8").strip()
    except OSError:
        boot = ""
    return f"{boot}/{tick}"


def pid_namespace() -> str | None:
    """This process's PID namespace ('pid:[4026531836]'), None where Linux's /proc does not say. Two containers
    can share a host name (host networking) but not their process ids: a pid in a lock means something only
    in the namespace that wrote it."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except (OSError, AttributeError):  # no /proc, or no os.readlink (never on the platforms we run)
        return None


def filesystem_now(folder: Path) -> float:
    """Now on the clock that stamps the files of ``folder`` (epoch seconds): the modification time of a file
    made there and removed at once. That is the file server's clock on NFS, this host's on a local disk;
    this host's :func:`time.time` when no file can be made there."""
    try:
        fd, name = tempfile.mkstemp(prefix=".clock-", dir=folder)
    except OSError:
        return time.time()
    try:
        return os.fstat(fd).st_mtime
    except OSError:
        return time.time()
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)


def lock_is_stale(path: Path, *, expiry_s: float | None = None, now: float | None = None) -> bool:
    """See the module docstring. A lock that vanished counts as not stale (nothing to take). ``now``: the
    :func:`filesystem_now` of its folder, when already taken."""
    expiry = lock_expiry_s() if expiry_s is None else expiry_s
    try:
        st = path.stat()
    except OSError:
        return False
    age = (filesystem_now(path.parent) if now is None else now) - st.st_mtime
    if age > expiry:
        return True
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:  # unreadable (another user's umask 077): judged by its heartbeat alone, i.e. the expiry
        return False
    started, identity, namespace = None, None, None
    try:
        owner = json.loads(text)
        host, pid = owner["host"], int(owner["pid"])
        started = float(owner["started"]) if "started" in owner else None
        identity, namespace = owner.get("process"), owner.get("pid_namespace")
    except (ValueError, KeyError, TypeError):
        try:  # the older "host:pid" form
            host, pid_text = text.rsplit(":", 1)
            pid = int(pid_text)
        except ValueError:
            return age > min(EMPTY_GRACE_S, expiry)  # empty or garbage: give a writer a moment
    if host != socket.gethostname():
        return False
    if isinstance(namespace, str) and (ours := pid_namespace()) is not None and namespace != ours:
        return False  # another container of this host name: its pid is not ours to look up (heartbeat only)
    if pid <= 0 or not _pid_alive(pid):
        return True
    if isinstance(identity, str) and (now_held_by := process_identity(pid)) is not None:
        return now_held_by != identity  # another process has that pid now (or another boot)
    begun = process_start(pid) if started is not None else None
    return begun is not None and begun > started + 2.0  # that pid is a newer process now (2 s: clock ticks)


def live_locks(results: Path) -> int:
    """Cells some live runner holds right now (stale locks not counted)."""
    folder = Path(results) / ".locks"
    held = list(folder.glob("*.lock"))
    now = filesystem_now(folder) if held else None
    return sum(not lock_is_stale(p, now=now) for p in held)


def acquire_lock(results: Path, run_id: str, *, expiry_s: float | None = None) -> bool:
    """Take the cell's lock; a stale lock is taken over. False when a live runner holds it."""
    path = lock_path(results, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    owner = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time(),
                        "process": process_identity(os.getpid()), "pid_namespace": pid_namespace(), "token": token})
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if lock_is_stale(path, expiry_s=expiry_s) and _take_over(path):
                continue
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(owner)
        _HELD[str(path)] = token
        return True
    return False


_HELD: dict[str, str] = {}  # lock path -> the token this process wrote there


def _still_ours(path: Path) -> bool:
    """Whether ``path`` still holds the token this process wrote when it took the lock."""
    token = _HELD.get(str(path))
    if token is None:
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("token") == token
    except (OSError, ValueError, AttributeError):
        return False


def _take_over(path: Path, judged: int | None = None) -> bool:
    """Move a stale lock aside; True when the file moved is the one judged stale (inode ``judged``, else
    the one there now).

    Two runners may judge the same lock stale at once: the rename lets one win, and the inode
    check stops the other from removing the fresh lock the winner may already have made.
    """
    try:
        judged = path.stat().st_ino if judged is None else judged
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
    """Remove the cell's lock if it is still this process's (never one another runner took over)."""
    path = lock_path(results, run_id)
    if _still_ours(path):
        path.unlink(missing_ok=True)
    elif str(path) in _HELD:
        log.warning("the lock of cell %s was taken over by another runner; left to it", run_id)
    _HELD.pop(str(path), None)


def release_locks_of(results: Path, pids: Iterable[int]) -> list[str]:
    """Remove the locks that processes ``pids`` of this host held and left when they were stopped (a runner's
    workers it terminated on Ctrl-C or SIGTERM: they die without unwinding), once those processes are gone; a
    lock another runner has taken over since, or whose process still runs, is kept. Returns the names removed."""
    pids, removed = set(pids), []
    for path in sorted((Path(results) / ".locks").glob("*.lock")):
        try:
            judged = path.stat().st_ino
            owner = json.loads(path.read_text(encoding="utf-8")[:4096])
            pid = int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (owner.get("host") != socket.gethostname() or pid not in pids or _pid_alive(pid)
                or owner.get("pid_namespace") not in (None, pid_namespace())):
            continue
        if _take_over(path, judged):
            removed.append(path.name)
    return removed


@contextlib.contextmanager
def heartbeat(results: Path, run_id: str, *, expiry_s: float | None = None) -> Iterator[None]:
    """Touch the held lock every expiry/5 seconds (0.05-60 s) until the block ends, while it is still ours."""
    period = min(60.0, max(0.05, (lock_expiry_s() if expiry_s is None else expiry_s) / 5))
    path, stop = lock_path(results, run_id), threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            if not _still_ours(path):  # taken over while this runner was paused: never refresh another's
                continue
            with contextlib.suppress(OSError):
                os.utime(path)

    thread = threading.Thread(target=beat, name=f"lock-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
