"""Mode bits for the files this tool writes where other users may read them (records, cache entries).

:func:`tempfile.mkstemp` makes a file of mode 0600 whatever the umask: written atomically through one, a
result record or an embedding-cache entry would be unreadable to an app or a job running as another user of a
shared store or cache. :func:`shared_file_mode` is the mode an ordinary ``open(..., "w")`` would have given, and
:func:`shared_mkstemp` a temporary made with it.
"""
from __future__ import annotations

import contextlib
import os
import tempfile

_STRICTEST_UMASK = 0o077


def process_umask() -> int:
    """This process's umask, without changing it where Linux's ``/proc/self/status`` says it (kernel 4.7 on).

    Elsewhere it is read the only way Python offers, by setting it and setting it back; for that instant a
    file another thread creates gets the strictest mode (umask 077), never a wider one.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(_STRICTEST_UMASK)
    os.umask(mask)
    return mask


def shared_file_mode() -> int:
    """0666 minus the process's umask: the mode of a file made by ``open(path, "w")``."""
    return 0o666 & ~process_umask()


def shared_mkstemp(**kwargs) -> tuple[int, str]:
    """:func:`tempfile.mkstemp` (same keywords) whose file has :func:`shared_file_mode` instead of 0600: the
    temporary an atomic write renames into place. Neither the descriptor nor the file is left behind when the mode
    cannot be set."""
    fd, name = tempfile.mkstemp(**kwargs)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, shared_file_mode())
        else:  # Windows before Python 3.13 has no os.fchmod (and no mode bits but read-only)
            os.chmod(name, shared_file_mode())
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return fd, name
