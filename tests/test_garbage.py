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


def _no_proc(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("/proc/self/statm")

    monkeypatch.setattr(garbage, "open", missing, raising=False)  # found before the builtin


@pytest.mark.parametrize("platform, maxrss", [("darwin", 600 * 2**20), ("freebsd14", 600 * 2**10)])
def test_without_proc_the_peak_is_read_in_the_platforms_units(monkeypatch, platform, maxrss):
    """ru_maxrss is bytes on macOS and KB elsewhere, whatever its size (600 MB on macOS read as 614,400 MB)."""
    import resource
    import sys

    _no_proc(monkeypatch)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(resource, "getrusage", lambda who: type("Usage", (), {"ru_maxrss": maxrss})())
    assert garbage.resident_mb() == pytest.approx(600.0)


@pytest.mark.parametrize("platform, maxrss", [("darwin", 600 * 2**20), ("linux", 600 * 2**10)])
def test_a_records_process_peak_is_read_in_the_platforms_units(monkeypatch, platform, maxrss):
    """core.experiment's process-scope peak (what a record's peak_rss_mb says without a cell window)
    read ru_maxrss as KB everywhere: a 600 MB run on macOS was recorded as 614,400 MB."""
    import resource
    import sys

    from core.experiment import peak_rss_mb

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(resource, "getrusage", lambda who: type("Usage", (), {"ru_maxrss": maxrss})())
    assert peak_rss_mb("process") == pytest.approx(600.0)


def test_imports_and_never_collects_where_memory_cannot_be_measured():
    """Windows has no ``resource`` module: the app must still start (it imports core.garbage)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; sys.modules['resource'] = None\n"
            "from core import garbage\n"
            "garbage.open = lambda *a, **k: (_ for _ in ()).throw(OSError('no /proc'))\n"
            "print(garbage.collect_if_grown(threshold_mb=1), garbage.collect_if_grown(threshold_mb=1))")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_a_measure_that_gives_nan_never_collects(no_automatic_gc):
    nan = float("nan")
    assert garbage.collect_if_grown(threshold_mb=1, measure=_memory(100.0)) is False
    assert garbage.collect_if_grown(threshold_mb=1, measure=_memory(nan)) is False
    assert garbage.collect_if_grown(threshold_mb=1, measure=_memory(100.5)) is False  # the baseline is still 100
    assert garbage.collect_if_grown(threshold_mb=1, measure=_memory(101.0, 100.0)) is True
