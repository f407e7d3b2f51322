"""core.turns: at most N holders at once; the others wait, then get a clear BusyError."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from core.turns import BusyError, Turns


def test_a_second_holder_waits_for_the_first_and_is_told_it_waits():
    turns, told, order = Turns(1), [], []
    first = turns.turn(wait_s=0)
    first.__enter__()

    def second():
        with turns.turn(wait_s=5, wait=SimpleNamespace(tell=lambda waited=None: waited is None and told.append("waiting"),
                                                       done=lambda: None)):
            order.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.1)
    assert told == ["waiting"] and order == []  # it waits while the slot is held
    order.append("first ends")
    first.__exit__(None, None, None)
    thread.join(5)
    assert order == ["first ends", "second"]


def test_the_busy_message_reads_right_with_a_single_slot():
    """With one slot the message said "1 forecasts are already running"."""
    turns = Turns(1)
    with turns.turn(wait_s=0):
        with pytest.raises(BusyError, match=r"^The server is busy: no turn for forecasts came free within 0\.01 s \(it "
                                            r"runs 1 at a time\)\. Please try again in a minute\.$"):
            with turns.turn(wait_s=0.01, what="forecasts"):
                pass


def test_no_turn_within_the_limit_raises_and_frees_nothing():
    turns = Turns(2)
    with turns.turn(wait_s=0), turns.turn(wait_s=0):
        with pytest.raises(BusyError, match=r"busy: no turn for forecasts came free within 0\.05 s \(it runs 2 at a "
                                            r"time\)\. Please try again"):
            with turns.turn(wait_s=0.05, what="forecasts"):
                pass
    with turns.turn(wait_s=0), turns.turn(wait_s=0):  # both slots came back, and only two
        pass


def test_a_failing_holder_gives_its_turn_back():
    turns = Turns(1)
    with pytest.raises(KeyError):
        with turns.turn(wait_s=0):
            raise KeyError("boom")
    with turns.turn(wait_s=0):
        pass


@pytest.mark.parametrize("slots", [0, -1, 1.5, True, "2"])
def test_bad_slot_counts_are_refused(slots):
    with pytest.raises(ValueError, match="slots must be a positive integer"):
        Turns(slots)


@pytest.mark.parametrize("wait_s", [-1, float("nan")])
def test_bad_waits_are_refused(wait_s):
    with pytest.raises(ValueError, match="wait_s must be zero or more"):
        with Turns(1).turn(wait_s=wait_s):
            pass


def test_a_busy_wait_lasts_wait_s_not_less_and_not_much_more():
    """The caller is told it waits up to ``wait_s``: it must neither give up at once nor hang far past it."""
    turns = Turns(1)
    with turns.turn(wait_s=0):
        started = time.monotonic()
        with pytest.raises(BusyError):
            with turns.turn(wait_s=0.3):
                pass
        waited = time.monotonic() - started
    assert 0.25 <= waited < 2.0, waited


def test_a_wait_is_told_how_long_it_has_waited_and_ends_holding_nothing_when_that_raises(monkeypatch):
    """A wait called nothing between its start and its end (up to 120 s on the forecast page), so a page whose
    visitor left could not stop it there. The wait is told every TICK_S; what that raises ends the wait."""
    import core.turns

    monkeypatch.setattr(core.turns, "TICK_S", 0.02)
    turns, ticks = Turns(1), []

    def tick(waited: float) -> None:
        ticks.append(waited)
        if len(ticks) == 3:
            raise KeyError("the visitor left")

    with turns.turn(wait_s=0):
        with pytest.raises(KeyError, match="the visitor left"):
            with turns.turn(wait_s=5, wait=SimpleNamespace(tell=lambda waited=None: waited is not None and tick(waited),
                                                           done=lambda: None)):
                pytest.fail("a turn was given while the only one was held")
        assert len(ticks) == 3 and ticks == sorted(ticks) and ticks[-1] < 1.0
    with turns.turn(wait_s=0):  # the one slot came back once, and was not taken by the ended wait
        pass
