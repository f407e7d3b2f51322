"""Free reference cycles a long-running server leaves behind, when they start to cost memory.

Why: Streamlit runs each page in a fresh namespace; a page that defines a function (or a lambda) holds
its namespace in a reference cycle (function -> ``__globals__`` -> namespace -> function), so every
frame the page held (at 100,000 runs, tens of MB a run) waits for Python's full collection. With the
import-time heap of a server that has loaded torch (about 500,000 objects), that collection comes
rarely and costs about 0.2 s, so the memory of dozens of reruns piles up first. Collecting whenever the
resident memory has grown by ``threshold_mb`` since the last collection bounds the pile and pays for a
full collection only when there is something to free.
"""
from __future__ import annotations

import gc
import logging
import math
import os
import sys
import threading
import time
from typing import Callable

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Growth of resident memory (MB) since the last collection that triggers the next one.
DEFAULT_THRESHOLD_MB = 64.0

_lock = threading.Lock()
_baseline_mb: float | None = None


def resident_mb() -> float:
    """This process's resident memory now (MB): ``/proc/self/statm`` on Linux, else its peak so far, else
    NaN (Windows: not measured, so never collected for)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_resident_mb()


def peak_resident_mb() -> float:
    """This process's peak resident memory so far (MB), NaN where the platform does not report it
    (Windows). ``ru_maxrss`` counts bytes on macOS and KB elsewhere."""
    if resource is None:
        return math.nan
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 2**10)


def collect_if_grown(*, threshold_mb: float = DEFAULT_THRESHOLD_MB,
                     measure: Callable[[], float] = resident_mb) -> bool:
    """Run a full garbage collection when resident memory (``measure()``, MB) has grown by at least
    ``threshold_mb`` since the last collection made here (the first call only records where memory
    stands; a NaN reading, where memory cannot be measured, never collects). Returns whether it
    collected. Thread-safe: a call that finds another one collecting returns False at once rather than
    waiting.
    """
    global _baseline_mb
    if not threshold_mb > 0:
        raise ValueError(f"threshold_mb must be a positive number of MB, got {threshold_mb!r}")
    if not _lock.acquire(blocking=False):
        return False
    try:
        now = measure()
        if math.isnan(now):  # not measurable here
            return False
        if _baseline_mb is None or now < _baseline_mb:  # first call, or memory went back to the system
            _baseline_mb = now
            return False
        if now - _baseline_mb < threshold_mb:
            return False
        start = time.perf_counter()
        freed = gc.collect()
        after = measure()
        _baseline_mb = now if math.isnan(after) else after
        log.debug("collected %d objects in %.3f s; resident %.0f -> %.0f MB", freed,
                  time.perf_counter() - start, now, _baseline_mb)
        return True
    finally:
        _lock.release()


def reset() -> None:
    """Forget the recorded baseline (tests)."""
    global _baseline_mb
    with _lock:
        _baseline_mb = None
