"""Mode bits for the files this tool writes where other users may read them (records, cache entries).

:func:`tempfile.mkstemp` makes a file of mode 0600 whatever the umask: written atomically through one, a
result record or an embedding-cache entry would be unreadable to an app or a job running as another user of a
shared store or cache. :func:`shared_file_mode` is the mode an ordinary ``open(..., "w")`` would have given.
"""
from __future__ import annotations

import os

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
