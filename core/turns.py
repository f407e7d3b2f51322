"""Turns at a shared resource: at most ``slots`` holders at once, the others wait, up to a limit.

A hosted app runs every visitor's forecast in its own thread; each embeds up to thousands of images with
all the machine's cores. Unbounded, twenty visitors at once each wait twenty times longer and hold twenty
models' activations; in turns, each waits for a slot and then runs at full speed.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

#: How often (seconds) a wait for a turn (or a lock, a hashing) tells how long it has waited.
TICK_S = 1.0


class WaitShown(Protocol):
    """How a caller shows a wait (a page's "… (N s so far)" line, ``page_waits.Wait``): ``tell()`` as it begins,
    ``tell(seconds waited)`` every :data:`TICK_S` of it, ``done()`` once it has ended (also for a wait never told:
    then nothing is shown to clear). What either raises ends the wait, or the work after it (a page's visitor left)."""

    def tell(self, waited: float | None = None) -> None: ...

    def done(self) -> None: ...


class BusyError(RuntimeError):
    """No turn came within the wait limit; the message says to try again."""


class Turns:
    """At most ``slots`` holders at once (a positive integer); raises ValueError otherwise."""

    def __init__(self, slots: int) -> None:
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ValueError(f"slots must be a positive integer, got {slots!r}")
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)

    @contextmanager
    def turn(self, *, wait_s: float, what: str = "this work", wait: WaitShown | None = None) -> Iterator[None]:
        """Hold one slot for the block. Without a free slot, the call waits up to ``wait_s`` seconds, then raises
        BusyError naming ``what`` (what takes the turns, e.g. "forecasts"). ``wait`` shows it: ``tell()`` as it begins, ``tell(seconds waited)`` every
        :data:`TICK_S` of it (what either raises ends the wait, holding nothing: a Streamlit page stops a run whose
        visitor left only where it sends the page something), and ``done()`` once the slot is held (what it raises
        gives the slot back)."""
        if not wait_s >= 0:
            raise ValueError(f"wait_s must be zero or more seconds, got {wait_s!r}")
        if not self._free.acquire(blocking=False):
            if wait is not None:
                wait.tell()
            start = time.monotonic()
            while not self._free.acquire(timeout=max(0.0, min(TICK_S, start + wait_s - time.monotonic()))):
                if (waited := time.monotonic() - start) >= wait_s:
                    raise BusyError(f"The server is busy: no turn for {what} came free within {wait_s:g} s (it "
                                    f"runs {self.slots} at a time). Please try again in a minute.")
                if wait is not None:
                    wait.tell(waited)
        try:
            if wait is not None:
                wait.done()
            yield
        finally:
            self._free.release()
