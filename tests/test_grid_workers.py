"""Grid workers and their devices: each worker process runs every one of its cells on its own device."""
import logging
import multiprocessing
import os
import time

import jobs.grid as grid_job
from core.grid_config import Grid


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
