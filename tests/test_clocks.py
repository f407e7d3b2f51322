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



@pytest.mark.slow  # two short pretraining runs: about 10 s
def test_pretraining_time_is_not_moved_by_a_clock_step_and_adds_up_over_a_resume(tmp_path, monkeypatch, set_back):
    import json

    import torch

    from jobs import pretrain

    real_batch = pretrain.batch_for

    def stepped_then_stopped(args, step):
        if step == 1:
            set_back()  # the clock is set back an hour during the second step
        if step == 2:
            raise KeyboardInterrupt  # and the run stopped in the third, its checkpoint at step 2
        return real_batch(args, step)

    monkeypatch.setattr(pretrain, "batch_for", stepped_then_stopped)
    argv = ["--steps", "3", "--batch", "8", "--warmup", "1", "--threads", "1", "--ckpt-every", "1",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "w.safetensors")]
    assert pretrain.main(argv) == 130
    saved = torch.load(tmp_path / "work" / "ckpt.pt", weights_only=False)["state"]
    assert saved["step"] == 2 and 0 <= saved["elapsed"] < 120, f"elapsed {saved['elapsed']} s (was about -3600 s)"
    # resumed from that checkpoint (the clock set back once more meanwhile), the run goes on from its elapsed
    # time: the record's wall time is the sessions' training times added up
    set_back()
    monkeypatch.setattr(pretrain, "batch_for", real_batch)
    assert pretrain.main(argv) == 0
    wall = json.loads((tmp_path / "w.train.json").read_text(encoding="utf-8"))["wall_time_s"]
    assert saved["elapsed"] - 0.1 <= wall < saved["elapsed"] + 120, f"wall time {wall} s"


def test_the_grids_elapsed_time_and_eta_are_not_moved_by_a_clock_step(tmp_path, monkeypatch, caplog, set_back):
    from jobs import grid as grid_job
    from tests.grid_helpers import write_grid

    def cell_during_which_the_clock_is_set_back(*args, **kwargs):
        set_back()
        return "done"

    caplog.set_level("INFO", logger="jobs.grid")
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit"]')
    monkeypatch.setattr(grid_job, "execute_cell", cell_during_which_the_clock_is_set_back)
    monkeypatch.setattr(grid_job, "preflight", lambda grid: None)  # no model loaded: the cells run nothing
    assert grid_job.main([str(config), "--results", str(tmp_path / "results")]) == 0
    progress = [r.args for r in caplog.records if r.name == "jobs.grid" and "(elapsed" in r.msg]
    assert len(progress) == 2
    for *_, elapsed, eta in progress:  # was: elapsed -3600 s, then -7200 s, and a negative ETA
        assert 0 <= elapsed < 60 and 0 <= eta < 60, f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s"


def test_a_runner_is_not_killed_as_overdue_when_the_clock_jumps_forward(tmp_path, monkeypatch, set_back):
    import sys

    from jobs import fault_injection

    real_start = fault_injection._start

    def start_then_clock_forward(cmd, log_path):
        proc = real_start(cmd, log_path)
        set_back(+HOUR)  # e.g. an NTP step after a VM resumed: the wall clock leaps an hour ahead
        return proc

    monkeypatch.setattr(fault_injection, "_start", start_then_clock_forward)
    wall, _ = fault_injection._run([sys.executable, "-c", "import time; time.sleep(0.3)"], tmp_path / "log", 60)
    assert 0.3 <= wall < 60  # was: 'runner did not finish within 60s' and the runner killed


def test_waiting_for_the_app_is_not_cut_short_when_the_clock_jumps_forward(tmp_path, monkeypatch, set_back):
    import urllib.request

    from jobs import app_server

    class Running:  # a server still starting: it answers the second health check
        returncode = None

        def poll(self):
            return None

        def terminate(self, *args, **kwargs):  # what stop_app does to a server that did not start in time
            pass

        wait = kill = terminate

    class Answer:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def read(self):
            return b"ok"

    asked = []

    def health(url, timeout):
        asked.append(url)
        if len(asked) == 1:
            set_back(+HOUR)  # the wall clock leaps an hour ahead while the app starts
            raise OSError("connection refused")
        return Answer()

    monkeypatch.setattr(app_server.subprocess, "Popen", lambda *args, **kwargs: Running())
    monkeypatch.setattr(urllib.request, "urlopen", health)
    monkeypatch.setattr(app_server.time, "sleep", lambda s: None)
    (tmp_path / "streamlit.log").write_text("", encoding="utf-8")
    proc = app_server.start_app(8501, {}, tmp_path / "streamlit.log", timeout=60)
    assert isinstance(proc, Running) and len(asked) == 2  # was: AppDidNotStart 'did not answer within 60 s'


def test_the_about_page_dates_the_runs_by_the_moments_they_name_in_utc(fixture_store):
    """Runs recorded on hosts at +05:30 and -08:00, all on 6 December in UTC: the page cut each time's text to
    its local date and said 'recorded 2026-12-05 to 2026-12-07', in no named zone."""
    import json

    import streamlit as st

    from core.text import date_span
    from tests.app_helpers import page

    for i, path in enumerate(sorted(fixture_store.rglob("*.json"))):
        record = json.loads(path.read_text(encoding="utf-8"))
        record["created_at"] = ("2026-12-07T01:00:00+05:30", "2026-12-05T20:00:00-08:00")[i % 2]
        path.write_text(json.dumps(record), encoding="utf-8")
    st.cache_resource.clear()
    about = page("about").run()
    assert not about.exception and about.info[0].value.endswith(", recorded 2026-12-06 (UTC).")
    assert date_span(["2026-12-06T23:30:00-01:00", None, "2026-12-05T10:00Z"]) == "2026-12-05 to 2026-12-07 (UTC)"
    assert date_span([None, "not a time"]) == ""
    assert date_span(["2026-12-07T04:00:00+05:30:15"]) == "2026-12-06 (UTC)"  # an offset with seconds, as allowed


@pytest.fixture
def in_india():
    """This process's local time zone set to UTC+05:30 (a POSIX TZ rule: no zone database needed)."""
    import os

    before = os.environ.get("TZ")
    os.environ["TZ"] = "IST-5:30"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.mark.parametrize("job", ["grid", "pretrain", "world_check", "world_v2_report", "load_test", "fault_injection"])
def test_a_jobs_log_lines_name_their_time_zone(monkeypatch, capsys, in_india, job):
    """A job's progress lines began '2026-12-06 15:30:00,000': local time in no named zone, so a cluster node's
    log could not be set beside another node's, or beside the records' created_at (UTC)."""
    import importlib
    import logging
    from datetime import datetime, timezone

    calls = []
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: calls.append(kwargs))
    with pytest.raises(SystemExit, match="2"):  # argparse's refusal, after the logging is set up
        importlib.import_module(f"jobs.{job}").main(["--no-such-option"])
    (kwargs,) = calls
    formatter = kwargs["handlers"][0].formatter if "handlers" in kwargs else logging.Formatter(kwargs["format"])
    record = logging.LogRecord(f"jobs.{job}", logging.INFO, __file__, 1, "hello", None, None)
    record.created = datetime(2026, 12, 6, 10, 0, tzinfo=timezone.utc).timestamp()
    assert formatter.format(record).startswith("2026-12-06T15:30:00.000+05:30 ")


@pytest.mark.parametrize("edge", ["0001-01-01T00:00:00+05:30", "9999-12-31T23:59:59-08:00",
                                  "0001-01-01T00:00:00+05:30:15", "9999-12-31T23:59:59-08:00:15"])
def test_a_time_the_schema_allows_at_the_ends_of_the_calendar_is_dated_not_raised(edge):
    """The schema (and the store's SQL check) accepts these created_at; in UTC they fall in year 0 and year
    10000, where pandas' strftime raised NotImplementedError, so one such record (a submission) broke the About
    page and the 'runs on different data' warning. Pandas reads no offset with seconds, nor (before pandas 3) any
    of them: Python's datetime, which read those, raised OverflowError past its years 1-9999."""
    import pandas as pd

    import re

    from core import data_versions
    from core.schema import CREATED_AT_PATTERN
    from core.text import date_span, utc_moments

    assert re.fullmatch(CREATED_AT_PATTERN, edge)
    day = {"0": "0000-12-31", "9": "10000-01-01"}[edge[0]]
    assert date_span([edge, "2026-12-06T10:00:00Z"]).split(" to ") in ([day, "2026-12-06 (UTC)"],
                                                                        ["2026-12-06", f"{day} (UTC)"])
    assert data_versions._when(utc_moments(pd.Series([edge]))).startswith(f" made {day} ")


def test_a_moment_read_past_pandas_keeps_its_fraction_beside_no_other_moment():
    """A created_at with a seconds offset is read by Python, not pandas; beside no moment pandas read (here none),
    pandas 3 held the moments in whole seconds and refused the fraction (TypeError: the About page broke)."""
    import pandas as pd

    from core.text import utc_moments

    moments = utc_moments(["not a time", "2026-01-01T00:00:00.5+05:30:15", None])
    assert moments.isna().tolist() == [True, False, True]
    assert moments.iloc[1] == pd.Timestamp("2025-12-31T18:29:45.5Z")
