"""jobs.grid_slurm's wait on SLURM array tasks, without SLURM: squeue, the clock and the tasks are stand-ins."""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from jobs import grid as grid_job
from jobs import grid_slurm

NO_CONFIG = ("squeue: error: resolve_ctls_from_dns_srv: res_nsearch error\n"
             "squeue: fatal: Could not establish a configuration source\n")


class Clock:
    """grid_slurm's ``time``: sleeping advances the clock at once. A wait that never ends fails the test
    (after 100,000 polls) instead of hanging it."""

    def __init__(self) -> None:
        self.now, self.sleeps, self.on_sleep = 1000.0, 0, None

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > 100_000:
            raise RuntimeError(f"still waiting after {self.sleeps} polls ({self.now - 1000:.0f} s)")
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(grid_slurm, "time", fake)
    return fake


def squeue_answers(monkeypatch, answer) -> None:
    """``squeue`` runs answer(): (exit code, stdout, stderr); any other command runs as usual."""
    real = subprocess.run

    def run(args, *rest, **kwargs):
        if args[0] != "squeue":
            return real(args, *rest, **kwargs)
        code, out, err = answer()
        return subprocess.CompletedProcess(args, code, out, err)

    monkeypatch.setattr(subprocess, "run", run)


def task(tmp_path: Path, job_id: str, outcome: str = "done") -> SimpleNamespace:
    return SimpleNamespace(job_id=job_id, paths=SimpleNamespace(result_pickle=tmp_path / f"{job_id}_result.pkl"),
                           result=lambda: outcome)


def test_a_failing_squeue_ends_the_wait_with_the_tasks_lost(tmp_path, monkeypatch, clock, caplog):
    squeue_answers(monkeypatch, lambda: (1, "", NO_CONFIG))
    done, pending = task(tmp_path, "123_0"), task(tmp_path, "123_1")
    done.paths.result_pickle.write_bytes(b"result")  # a task that finished is still collected
    assert grid_slurm._wait_slurm([done, pending]) == ["done", "lost"]
    waited = clock.now - 1000
    assert grid_slurm.SQUEUE_PATIENCE_S <= waited <= grid_slurm.SQUEUE_PATIENCE_S + 5
    assert "squeue exited with 1: squeue: fatal: Could not establish a configuration source; still watching" \
           in caplog.text
    assert "stopped waiting: squeue failed on every poll for 300 s" in caplog.text
    assert "1 array task(s) without a result (123_1) may still be queued or running" in caplog.text


def test_squeue_that_answers_again_restarts_the_patience(tmp_path, monkeypatch, clock, caplog):
    job = task(tmp_path, "123_0")
    polls = []

    def answer():  # fails for 200 s, lists the task once, fails for 200 s more; then the task finishes
        polls.append(clock.now)
        if len(polls) == 201:
            job.paths.result_pickle.write_bytes(b"result")
        return (0, "123_0\n", "") if len(polls) == 101 else (1, "", "squeue: error: Socket timed out\n")

    squeue_answers(monkeypatch, answer)
    caplog.set_level(logging.INFO, logger="jobs.grid")
    assert grid_slurm._wait_slurm([job]) == ["done"]
    assert "squeue answers again, after 100 failed poll(s)" in caplog.text and "stopped waiting" not in caplog.text


def test_squeue_absent_is_a_failure_too(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(OSError, match="squeue could not run: No such file or directory"):
        grid_slurm._squeue_ids()


GRID = """
models = ["worldclip-tiny-random"]
datasets = ["chart-trend"]
methods = ["zero_shot", "bitfit"]
ood = ["scene-kind"]
source = "test"
[train]
max_steps = 2
"""


def test_grid_wait_exits_1_when_squeue_keeps_failing(tmp_path, monkeypatch, clock, caplog):
    import submitit

    class Executor:  # sbatch accepted the array; its tasks never write a result
        def __init__(self, folder, cluster=None):
            pass

        def update_parameters(self, **params):
            pass

        def map_array(self, fn, cells, *rest):
            return [task(tmp_path, f"77_{i}") for i in range(len(cells))]

    monkeypatch.setattr(submitit, "AutoExecutor", Executor)
    squeue_answers(monkeypatch, lambda: (1, "", NO_CONFIG))
    config = tmp_path / "grid.toml"
    config.write_text(GRID, encoding="utf-8")
    code = grid_job.main([str(config), "--results", str(tmp_path / "r"), "--executor", "slurm", "--wait"])
    assert code == 1
    assert "2 array task(s) without a result (77_0, 77_1) may still be queued or running" in caplog.text
    assert "2 task(s) ended without a result" in caplog.text


@pytest.mark.parametrize("flag, cluster", [("slurm", None), ("submitit-debug", "debug"), ("submitit-local", "local")])
def test_submitit_builds_the_executor_each_executor_flag_asks_for(tmp_path, monkeypatch, flag, cluster):
    """jobs.grid_slurm builds a real submitit.AutoExecutor for --executor slurm (cluster None, told apart by
    submitit's plugins), submitit-debug and submitit-local. submitit before 1.5.4 found its plugins through
    pkg_resources, which the setuptools pip installs beside torch 2.14 no longer has: with submitit 1.5.0 every
    submitit executor failed with ModuleNotFoundError before submitting anything. (The test built the executor
    itself, so a flag grid_slurm turned into another executor went unseen: it is now grid_slurm's, stopped before
    anything is submitted.)"""
    import argparse

    import submitit

    class Built(Exception):
        pass

    built = []

    class Watched(submitit.AutoExecutor):
        def __init__(self, folder, cluster=None, **kwargs):
            super().__init__(folder, cluster=cluster, **kwargs)
            built.append((cluster, self))

        def update_parameters(self, **params):
            raise Built  # the next step after building it: nothing is submitted

    monkeypatch.setattr(submitit, "AutoExecutor", Watched)
    monkeypatch.setattr(grid_job, "pending_cells", lambda grid, results, retry_failed: ["a cell"])
    args = argparse.Namespace(executor=flag, retry_failed=False, timeout_min=None, parallelism=None,
                              slurm_partition=None, gpus_per_task=None, cpus_per_task=None, cache=None, wait=False)
    with pytest.raises(Built):
        grid_slurm.run_submitit(None, tmp_path, args, "")
    ((asked, executor),) = built
    assert asked == cluster
    assert executor.cluster == cluster or (cluster is None and executor.cluster in ("slurm", "local", "debug"))
