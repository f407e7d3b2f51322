"""Network guards for the online loading paths (open_clip weights, torchvision datasets); the offline
defaults never touch the network."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

DOWNLOAD_STALL_S = 60.0  # a download that receives nothing for this long fails instead of hanging a job


@contextmanager
def stall_timeout(seconds: float = DOWNLOAD_STALL_S) -> Iterator[None]:
    """Sockets opened inside time out after ``seconds`` without data. torchvision and open_clip open their
    downloads with no timeout, so a server that stops sending would hang the job for good. The previous
    process-wide default comes back afterwards. Raises ValueError for a ``seconds`` that is not positive."""
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def is_stall(exc: BaseException) -> bool:
    """Whether ``exc`` is a download timing out: a read timeout, or urllib's wrapping of a connect timeout."""
    reason = getattr(exc, "reason", None)
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)
