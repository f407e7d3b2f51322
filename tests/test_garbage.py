"""core.garbage: earlier page runs' reference cycles are freed once they hold enough memory."""
from __future__ import annotations

import gc
import weakref

import pytest

from core import garbage


class _Held:
    """Stands for a frame a page held; weak-referenceable, so a test can see when it is freed."""


@pytest.fixture
def no_automatic_gc():
    garbage.reset()
    was = gc.isenabled()
    gc.disable()  # only the collections under test may free the cycle
    yield
    if was:
        gc.enable()
    garbage.reset()


def _cycle() -> weakref.ref:
    held = _Held()
    namespace = {"frame": held}
    namespace["self"] = namespace  # a page namespace and its functions: a cycle only the collector frees
    return weakref.ref(held)


def _memory(*readings: float):
    values = iter(readings)
    return lambda: next(values)


def test_collects_only_after_memory_grew_by_the_threshold(no_automatic_gc):
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(500.0)) is False  # records where it stands
    ref = _cycle()
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(563.9)) is False
    assert ref() is not None
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(564.0, 520.0)) is True
    assert ref() is None
    ref = _cycle()  # the baseline is now memory after that collection (520), not the first reading
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(570.0)) is False
    assert ref() is not None
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(584.0, 530.0)) is True
    assert ref() is None


def test_memory_given_back_lowers_the_baseline(no_automatic_gc):
    garbage.collect_if_grown(threshold_mb=64, measure=_memory(500.0))
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(300.0)) is False
    assert garbage.collect_if_grown(threshold_mb=64, measure=_memory(364.0, 310.0)) is True


def test_a_call_that_finds_another_collecting_returns_at_once(no_automatic_gc):
    garbage.collect_if_grown(threshold_mb=1, measure=_memory(100.0))
    with garbage._lock:
        assert garbage.collect_if_grown(threshold_mb=1, measure=_memory(900.0)) is False


@pytest.mark.parametrize("bad", [0, -5.0, float("nan")])
def test_a_threshold_that_is_not_a_positive_number_is_refused(bad):
    with pytest.raises(ValueError, match="threshold_mb must be a positive number"):
        garbage.collect_if_grown(threshold_mb=bad)


def test_resident_memory_is_a_plausible_number_of_megabytes():
    assert 1 < garbage.resident_mb() < 1_000_000


def test_every_page_run_offers_a_collection(monkeypatch):
    from streamlit.testing.v1 import AppTest

    calls = []
    monkeypatch.setattr(garbage, "collect_if_grown", lambda **kw: calls.append(kw) or False)
    at = AppTest.from_file("../app.py", default_timeout=120).run()
    assert not at.exception
    first = len(calls)
    at.run()
    assert first >= 1 and len(calls) > first
