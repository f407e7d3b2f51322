"""The cluster path on a real (single-node) SLURM: the smoke grid through submitit job arrays, one
array task cancelled with scancel mid-cell, a resubmission, and records equal to a local run.

Needs root and Debian's slurmctld, slurmd and munge (.ci/run installs them). Skipped elsewhere,
except where IIMM_REQUIRE_SLURM=1 (CI), where not being able to start SLURM fails the test.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.slurm_cluster import local_slurm, slurm_unavailable

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "jobs" / "configs" / "smoke.toml"
SAME = ("status", "zs_acc", "ft_acc", "id_gain", "norm_gain", "ood_change", "iimm", "inter_modal",
        "intra_image", "ood_before", "ood_after", "zero_shot", "transferability", "config")


def _records(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json")}


def _grid(results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "jobs.grid", str(CONFIG), "--results", str(results), *extra]


@pytest.mark.slow
def test_smoke_grid_on_slurm_with_a_cancelled_task_equals_a_local_run(tmp_path):
    why = slurm_unavailable()
    if why:
        if os.environ.get("IIMM_REQUIRE_SLURM") == "1":
            pytest.fail(f"SLURM is required here but cannot start: {why}")
        pytest.skip(why)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    local = tmp_path / "local"
    subprocess.run(_grid(local, "--workers", "2"), check=True, cwd=REPO, env=env, timeout=900,
                   capture_output=True)  # two workers of one torch thread each, like the SLURM tasks
    remote = tmp_path / "slurm-results"
    slurm_args = ("--executor", "slurm", "--cpus-per-task", "1", "--parallelism", "1", "--wait")
    with local_slurm(tmp_path / "slurm") as slurm_env:
        env = {**slurm_env, **{k: env[k] for k in ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
        first = subprocess.Popen(_grid(remote, *slurm_args), cwd=REPO, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        def queued(*states: str) -> list[str]:
            args = ["squeue", "-h", "-r", "-o", "%i", *(["-t", ",".join(states)] if states else [])]
            return subprocess.run(args, env=env, capture_output=True, text=True).stdout.split()

        deadline, cancelled, too_late = time.monotonic() + 600, None, []
        while cancelled is None and time.monotonic() < deadline and first.poll() is None:
            locks = list((remote / ".locks").glob("*.lock")) if (remote / ".locks").exists() else []
            running = queued("RUNNING")
            if locks and len(running) == 1:  # one task at a time: it holds this lock, mid-cell
                task, cell = running[0], locks[0].stem
                # SIGKILL at once: scancel alone sends SIGTERM, which submitit bypasses, and SIGKILL only after
                # KillWait (5 s), time enough for a short cell to finish; under load every try came too late
                subprocess.run(["scancel", "--signal=KILL", task], env=env, check=True)
                while task in queued() and time.monotonic() < deadline:
                    time.sleep(0.2)
                # a cell of a few seconds can finish between the look and the cancel: then try the next one
                if cell in _records(remote):
                    too_late.append(cell)
                else:
                    cancelled = (task, cell)
            time.sleep(0.5)
        assert cancelled, f"no task was ever cancelled mid-cell (cancels that came too late: {too_late})"
        out, _ = first.communicate(timeout=900)
        assert first.returncode == 1 and "without a result" in out, out[-3000:]
        assert cancelled[1] not in _records(remote)  # the cancelled cell left no record...
        again = subprocess.run(_grid(remote, *slurm_args), cwd=REPO, env=env, capture_output=True,
                               text=True, timeout=900)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "submitted 1 cells" in again.stderr  # ...and only it ran again
        assert "sacct" not in again.stderr.replace("SLURM accounting (sacct) is unavailable", "")
    ours, reference = _records(remote), _records(local)
    assert sorted(ours) == sorted(reference) and len(ours) == 6
    for run_id, rec in ours.items():
        assert {k: rec.get(k) for k in SAME} == {k: reference[run_id].get(k) for k in SAME}, run_id
    assert not list(remote.glob(".tmp-*")) and not list((remote / ".locks").glob("*.lock"))
