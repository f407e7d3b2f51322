"""Durations and times against a wall clock that jumps: an NTP step, a clock set by hand or a VM resumed
mid-run moves ``time.time()`` but never a monotonic clock, so no duration a user reads may come from it."""
import time

import pytest

HOUR = 3600.0


@pytest.fixture
def set_back(monkeypatch):
    """Call it to set the wall clock (``time.time``) back an hour from then on, as an NTP step would."""
    real, shift = time.time, [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + shift[0])

    def step(seconds: float = -HOUR) -> None:
        shift[0] += seconds

    return step


def test_a_cells_wall_time_is_not_moved_by_a_clock_step(monkeypatch, set_back):
    from core import experiment, models

    def load_then_fail(*args, **kwargs):
        set_back()  # the clock is set back an hour while the cell runs
        raise RuntimeError("no such model here")

    monkeypatch.setattr(models, "load_model", load_then_fail)
    record = experiment.run_cell({"model": "worldclip-tiny", "dataset": "scene-kind", "method": "full", "seed": 0})
    assert record["status"] == "failed" and "no such model here" in record["error"]
    wall = record["provenance"]["wall_time_s"]
    assert 0 <= wall < 60, f"a cell's wall time of {wall} s (was about -3600 s: the wall clock's step)"
