"""A page's waits as its visitor sees them: one line, "… (N s so far)", while the page waits for something (a turn, a
model's load, the reference datasets' hashing, another writer's lock on a store), cleared when the wait ends: the
forecast page's (forecast_ui) and the submit page's. The waiting itself is in core (core.turns and its callers), which
calls a :class:`Wait`'s ``tell`` and ``done`` (the protocol ``core.turns.WaitShown``)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st


class Wait:
    """A wait's one line on the page: ``told``, then ``told (N s so far)`` at each tick of the wait, which sends the
    page a message, where Streamlit ends a run whose visitor left or changed the page (StopException,
    RerunException): within a second, not after the whole wait. The line is made by the first :meth:`tell`."""

    def __init__(self, told: str) -> None:
        self.told, self._line = told, None

    def tell(self, waited: float | None = None) -> None:
        """Show ``told``, with the seconds ``waited`` so far when given."""
        if self._line is None:
            self._line = st.empty()
        self._line.write(self.told if waited is None else f"{self.told} ({waited:.0f} s so far)")

    def done(self) -> None:
        """Clear the line (once: nothing is sent for a line never shown or already cleared)."""
        if self._line is not None:
            self._line.empty()
            self._line = None


@contextmanager
def waiting(told: str) -> Iterator[Wait]:
    """A :class:`Wait` for the block, its line cleared when the block ends, failed too: its last "N s so far" told
    of a wait no longer going on (above the error that says what happened). A run Streamlit stops or reruns
    (ScriptControlException, no Exception) is left to it: nothing more is drawn."""
    wait = Wait(told)
    try:
        yield wait
    except Exception:
        wait.done()
        raise
    wait.done()
