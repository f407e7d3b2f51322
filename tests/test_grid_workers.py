"""Grid workers and their devices: each worker process runs every one of its cells on its own device."""
import logging
import multiprocessing
import os
import time

import re
import subprocess

import pytest

import jobs.grid as grid_job
from core.grid_config import Grid
from tests.grid_helpers import runner_command, write_grid


def _stand_in_cell(cell, results, cache_dir, device, command, retry_failed, threads):
    """A cell that says which worker ran it on which device (module level: the old runner pickled it)."""
    time.sleep(1.5 if cell["seed"] == 0 else 0.05)  # seed 0 holds its worker while the other takes the rest
    with open(os.environ["GRID_WORKERS_TEST_LOG"], "a", encoding="utf-8") as out:
        out.write(f"{os.getpid()} {device}\n")
    return "done"


def test_each_worker_runs_all_its_cells_on_a_device_of_its_own(tmp_path, monkeypatch):
    """A cell was given its device when queued (``devices[i % n]``) and then ran on whichever worker was idle:
    with two GPUs, a worker held up by a long cell left the other running cells on both GPUs, two workers sharing
    one while the other GPU stood idle. The workers are forked here so that they run the stand-in cell above."""
    ran = tmp_path / "ran.txt"
    monkeypatch.setenv("GRID_WORKERS_TEST_LOG", str(ran))  # the forked workers inherit it
    fork = multiprocessing.get_context("fork")
    monkeypatch.setattr(multiprocessing, "get_context", lambda method=None: fork)
    monkeypatch.setattr(grid_job, "execute_cell", _stand_in_cell)
    monkeypatch.setattr(grid_job, "_devices", lambda requested: ["cuda:0", "cuda:1"])
    cells = [{"model": "m", "dataset": "d", "method": "full", "method_config": {}, "seed": s} for s in range(6)]
    monkeypatch.setattr(grid_job, "pending_cells", lambda grid, results, retry_failed: list(grid.cells))
    counts = grid_job.run_local(Grid("g", cells), tmp_path / "results", cache_dir=None, workers=2, command="",
                                retry_failed=False)
    assert counts["done"] == 6
    by_worker: dict[str, set[str]] = {}
    for line in ran.read_text(encoding="utf-8").splitlines():
        pid, device = line.split()
        by_worker.setdefault(pid, set()).add(device)
    assert all(len(devices) == 1 for devices in by_worker.values()), by_worker
    assert len(by_worker) == 2 and set.union(*by_worker.values()) == {"cuda:0", "cuda:1"}, by_worker


def test_more_workers_than_gpus_says_how_many_run(monkeypatch, caplog):
    """--workers 4 on a one-GPU host ran one cell at a time without a word."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with caplog.at_level(logging.WARNING, logger="jobs.grid"):
        assert grid_job._devices(4) == ["cuda:0"]
    assert "--workers 4: this host has 1 GPU(s) and runs one worker per GPU, so 1 worker(s)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="jobs.grid"):
        assert grid_job._devices(None) == ["cuda:0"] and grid_job._devices(1) == ["cuda:0"]
    assert not caplog.text


def test_a_worker_ignores_ctrl_c_before_it_takes_its_device(monkeypatch):
    """Ctrl-C is the runner's to handle: the worker initialiser ignored it first thing, until taking a device from
    the queue came before that, so a Ctrl-C while a worker waited for its device raised in the worker."""
    import signal

    import pytest

    class Stop(Exception):
        pass

    seen = []

    class Devices:
        def get(self, timeout):
            seen.append(signal.getsignal(signal.SIGINT))
            raise Stop  # before the runner watch starts

    previous = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(Stop):
            grid_job._worker_init(os.getppid(), Devices())
    finally:
        signal.signal(signal.SIGINT, previous)
    assert seen == [signal.SIG_IGN]


def _log_as_a_cell_does(text):
    """A cell's progress line and a warning, logged in a worker (module level: a spawned worker imports it)."""
    log = logging.getLogger("jobs.grid")
    log.info("%s from %d", text, os.getpid())
    log.warning("%s warned in %d", text, os.getpid())


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "  # jobs.cli.ZonedTimes' time


def test_each_worker_tags_its_log_lines(capfd):
    """With --workers N the workers' progress lines and warnings interleaved on stderr, and nothing said which
    worker wrote one. The workers are spawned as jobs.grid spawns them, with the runner's progress settings."""
    from concurrent.futures import ProcessPoolExecutor

    from jobs.cli import PROGRESS_FORMAT

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=grid_job._worker_init,
                             initargs=(os.getpid(), grid_job.worker_seats(ctx, ["cpu", "cpu"]),
                                       (PROGRESS_FORMAT, logging.INFO))) as pool:
        list(pool.map(_log_as_a_cell_does, ["one", "two", "three", "four"]))
    # capfd reads the whole process's stderr: a line another test's leftover thread writes meanwhile (Streamlit's
    # "No runtime found" in a full run) is not the workers'; every line the workers wrote names a cell's text
    lines = [text for text in capfd.readouterr().err.splitlines() if re.search(r" (?:from|warned in) \d+$", text)]
    line = re.compile(STAMP + r"\[worker ([12])/2\] (\w+) (?:from|warned in) (\d+)")
    assert len(lines) == 8 and all(line.fullmatch(text) for text in lines), lines
    said = [line.fullmatch(text).groups() for text in lines]
    assert sorted(text for _, text, _ in said) == sorted(["one", "two", "three", "four"] * 2)
    tags = {pid: {number for number, _, other in said if other == pid} for _, _, pid in said}
    assert all(len(numbers) == 1 for numbers in tags.values()), tags  # one tag per worker, its own
    assert len({n for numbers in tags.values() for n in numbers}) == len(tags), tags


def test_a_single_process_grid_tags_no_line(tmp_path, monkeypatch, capsys, caplog):
    """--workers 1 (the default) runs its cells in the runner's own process: its lines stay as they were."""
    from jobs.cli import log_progress
    from tests.log_helpers import fresh_process_logging

    monkeypatch.setattr(grid_job, "execute_cell", lambda *args: "done")
    monkeypatch.setattr(grid_job, "_devices", lambda requested: ["cpu"])
    monkeypatch.setattr(grid_job, "pending_cells", lambda grid, results, retry_failed: list(grid.cells))
    cells = [{"model": "m", "dataset": "d", "method": "full", "method_config": {}, "seed": s} for s in range(2)]
    with fresh_process_logging(caplog, "jobs.grid"):
        log_progress()  # as jobs.grid.main sets it up
        grid_job.run_local(Grid("g", cells), tmp_path / "results", cache_dir=None, workers=1, command="",
                           retry_failed=False)
    lines = capsys.readouterr().err.splitlines()
    assert any(re.fullmatch(STAMP + "running m / d / full / seed 1", text) for text in lines), lines
    assert all(re.match(STAMP, text) and "worker" not in text for text in lines), lines


@pytest.mark.slow
def test_workers_log_their_progress_on_stderr_as_the_runner_does(tmp_path):
    """Spawned workers started with no logging set up: their warnings came out as ``WARNING:root:…``
    (Python's own format) and their INFO lines, each cell's progress, reached no stream at all."""
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit"]')
    command, env = runner_command(config, tmp_path / "results")
    done = subprocess.run([*command, "--workers", "2"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d ")
    assert all(stamp.match(line) for line in lines), [line for line in lines if not stamp.match(line)]
    said = [stamp.sub("", line, count=1) for line in lines]
    worker = r"\[worker [12]/2\] "  # the lines the workers log say which worker wrote them
    for method in ("zero_shot", "bitfit"):  # logged by the workers only (the runner's preflight builds, no more)
        running = f"running worldclip-tiny-random / chart-trend / {method} / seed 0 on cpu"
        assert any(re.fullmatch(worker + re.escape(running), line) for line in said), said
        assert any(re.match(worker + f"evaluated {method}: test ", line) for line in said), said
    assert any(re.match(worker + "trained bitfit for 2 steps", line) for line in said), said
    assert done.stdout == ""
