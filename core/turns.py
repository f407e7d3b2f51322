"""Turns at a shared resource: at most ``slots`` holders at once, the others wait, up to a limit.

A hosted app runs every visitor's forecast in its own thread; each embeds up to thousands of images with
all the machine's cores. Unbounded, twenty visitors at once each wait twenty times longer and hold twenty
models' activations; in turns, each waits for a slot and then runs at full speed.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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
    def turn(self, *, wait_s: float, what: str = "this", on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold one slot for the block. Without a free slot, ``on_wait()`` is called once (to tell the user)
        and the call waits up to ``wait_s`` seconds, then raises BusyError naming ``what``."""
        if not wait_s >= 0:
            raise ValueError(f"wait_s must be zero or more seconds, got {wait_s!r}")
        if not self._free.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            if not self._free.acquire(timeout=wait_s):
                raise BusyError(f"The server is busy: {self.slots} {what} already running and none ended within "
                                f"{wait_s:g} s. Please try again in a minute.")
        try:
            yield
        finally:
            self._free.release()
