"""Network guards for the online loading paths (open_clip weights, torchvision datasets); the offline
defaults never touch the network."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

DOWNLOAD_STALL_S = 60.0  # a download that receives nothing for this long fails instead of hanging a job


_LOCK = threading.Lock()
_HOLDERS = 0  # stall_timeout blocks open now, in any thread
_BEFORE: float | None = None  # the default the outermost of them found


@contextmanager
def stall_timeout(seconds: float = DOWNLOAD_STALL_S) -> Iterator[None]:
    """Sockets opened inside time out after ``seconds`` without data. torchvision and open_clip open their
    downloads with no timeout, so a server that stops sending would hang the job for good. The default is
    process-wide, and app threads overlap: the first block to open sets it and the last to close puts back
    what the first found (each restoring its own saved value left 60 s behind for good when two overlapped).
    Raises ValueError for a ``seconds`` that is not positive."""
    global _HOLDERS, _BEFORE
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    with _LOCK:
        if _HOLDERS == 0:
            _BEFORE = socket.getdefaulttimeout()
            socket.setdefaulttimeout(seconds)
        _HOLDERS += 1
    try:
        yield
    finally:
        with _LOCK:
            _HOLDERS -= 1
            if _HOLDERS == 0:
                socket.setdefaulttimeout(_BEFORE)


def is_stall(exc: BaseException) -> bool:
    """Whether ``exc`` is a download timing out: a read timeout, or urllib's wrapping of a connect timeout."""
    reason = getattr(exc, "reason", None)
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)
