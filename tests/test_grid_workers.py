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
    for method in ("zero_shot", "bitfit"):  # logged by the workers only (the runner's preflight builds, no more)
        assert f"running worldclip-tiny-random / chart-trend / {method} / seed 0 on cpu" in said
        assert any(line.startswith(f"evaluated {method}: test ") for line in said), said
    assert any(line.startswith("trained bitfit for 2 steps") for line in said), said
    assert done.stdout == ""
