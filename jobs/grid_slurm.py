"""The grid on a cluster: pending cells as one submitit job array (SLURM, or submitit's local
executors), waiting on the tasks without SLURM accounting, and the cluster options' checks."""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from core.grid_config import Grid
from jobs.cli import EXIT_INCOMPLETE

log = logging.getLogger("jobs.grid")

DEFAULT_TIMEOUT_MIN = 120
DEFAULT_PARALLELISM = 32
SLURM_ONLY = ("slurm_partition", "cpus_per_task", "gpus_per_task")
SUBMITIT_ONLY = ("timeout_min", "parallelism", "wait")
SQUEUE_PATIENCE_S = 300.0  # --wait: seconds of squeue failing on every poll before the tasks are reported lost


def option_problem(args: argparse.Namespace) -> str | None:
    """Why the executor options cannot work together (None when they can). A cluster option given
    to the local executor is refused rather than ignored: the user most likely forgot --executor."""
    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if args.executor != "slurm":
        for name in SLURM_ONLY:
            if getattr(args, name) not in (None, 0):
                return f"{flag(name)} only applies with --executor slurm"
    if args.executor == "local":
        for name in SUBMITIT_ONLY:
            if getattr(args, name) not in (None, False):
                return f"{flag(name)} only applies with a submitit executor (--executor slurm, submitit-local)"
    for name, least in (("timeout_min", 1), ("parallelism", 1), ("cpus_per_task", 1), ("gpus_per_task", 0)):
        value = getattr(args, name)
        if value is not None and value < least:
            return f"{flag(name)} must be at least {least}, got {value}"
    return None


def run_submitit(grid: Grid, results: Path, args: argparse.Namespace, command: str) -> int:
    """Submit pending cells as one SLURM job array through submitit (same cell function)."""
    import submitit

    from jobs.grid import execute_cell, pending_cells

    pending = pending_cells(grid, results, retry_failed=args.retry_failed)
    if not pending:
        log.info("nothing to submit: all %d cells finished", len(grid.cells))
        return 0
    cluster = None if args.executor == "slurm" else args.executor.removeprefix("submitit-")
    executor = submitit.AutoExecutor(folder=str(results / ".submitit"), cluster=cluster)
    params: dict[str, Any] = {"timeout_min": args.timeout_min or DEFAULT_TIMEOUT_MIN,
                              "slurm_array_parallelism": args.parallelism or DEFAULT_PARALLELISM}
    if args.executor == "slurm":
        params.update(slurm_partition=args.slurm_partition, gpus_per_node=args.gpus_per_task,
                      cpus_per_task=args.cpus_per_task)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    device = "cuda:0" if args.gpus_per_task else "cpu"
    threads = args.cpus_per_task or 1  # one torch thread per CPU the task was given
    n = len(pending)
    _quiet_sacct()
    try:
        jobs = executor.map_array(execute_cell, pending, [str(results)] * n,
                                  [str(args.cache) if args.cache else None] * n, [device] * n, [command] * n,
                                  [args.retry_failed] * n, [threads] * n)
    except submitit.core.utils.FailedJobError as exc:  # sbatch refused: no SLURM here, a bad partition...
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise OSError(f"SLURM did not accept the job array: {lines[-1] if lines else exc}") from exc
    log.info("submitted %d cells as job array %s; re-run this command to resume or collect", n, jobs[0].job_id)
    if args.wait:
        outcomes = _wait_slurm(jobs) if args.executor == "slurm" else [_outcome(j) for j in jobs]
        log.info("finished: %s", {o: outcomes.count(o) for o in set(outcomes)})
        if "lost" in outcomes:
            log.warning("%d task(s) ended without a result (cancelled, pre-empted or lost) or could no longer be "
                        "followed (squeue failing); re-run this command to run their cells again",
                        outcomes.count("lost"))
            return 1
        if "locked" in outcomes:  # another runner holds those cells: their records are not here yet
            log.warning("%d cell(s) were being run by another runner; re-run this command later to collect them",
                        outcomes.count("locked"))
            return EXIT_INCOMPLETE
    return 0


def _outcome(job: Any) -> str:
    try:
        return job.result()
    except Exception as exc:  # the task died or raised: its cell simply stays pending
        text = str(exc).strip()
        log.warning("array task %s did not finish: %s", job.job_id,
                    text.splitlines()[0][:200] if text else type(exc).__name__)
        return "lost"


def _squeue_ids() -> set[str]:
    """Job ids SLURM still knows as queued or running (one per array task). OSError saying why when
    squeue cannot tell (absent, no SLURM configuration on this host, the controller unreachable)."""
    import subprocess

    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as exc:
        raise OSError("squeue did not answer within 60 s") from exc
    except OSError as exc:
        raise OSError(f"squeue could not run: {exc.strerror or exc}") from exc
    if out.returncode != 0:
        lines = [line.strip() for line in out.stderr.splitlines() if line.strip()]
        raise OSError(f"squeue exited with {out.returncode}: {lines[-1][:200] if lines else 'no message'}")
    return set(out.stdout.split())


def _wait_slurm(jobs: list[Any], poll_s: float = 2.0, squeue_patience_s: float = SQUEUE_PATIENCE_S) -> list[str]:
    """Outcomes of SLURM array tasks without sacct: a task is over when its result file exists, or
    when squeue has not listed it for two polls in a row (scancel, pre-emption, a lost node).

    When squeue itself fails (no SLURM configuration on this host, the controller unreachable or failing
    over), a warning says so (and again once a minute while it lasts) and the result files are still
    watched, so tasks that finish meanwhile are collected. Once squeue has failed on every poll (two at least) for
    ``squeue_patience_s`` seconds (default 300: longer than a controller's default 120 s failover), the
    tasks without a result are reported "lost", with an error saying they may still be queued or running;
    the bound is a time, not a count, since one failed squeue takes anything from an instant to its 60 s
    timeout."""
    outcomes: dict[int, str] = {}
    missing: dict[int, int] = {}
    failed_since: float | None = None  # monotonic time of the first failure of the current streak
    failures, last_warned, why = 0, 0.0, ""
    while len(outcomes) < len(jobs):
        try:
            live: set[str] | None = _squeue_ids()
        except OSError as exc:
            live, now = None, time.monotonic()
            failures += 1
            if failed_since is None:
                failed_since = last_warned = now
                log.warning("%s; still watching the tasks' result files (if squeue keeps failing for %.0f s, the "
                            "tasks without a result are reported lost)", exc, squeue_patience_s)
            elif now - last_warned >= 60:
                last_warned = now
                log.warning("squeue has failed for %.0f s (%d polls): %s", now - failed_since, failures, exc)
            why = str(exc)
        else:
            if failed_since is not None:
                log.info("squeue answers again, after %d failed poll(s)", failures)
            failed_since, failures = None, 0
        for i, job in enumerate(jobs):
            if i in outcomes:
                continue
            if job.paths.result_pickle.exists():
                outcomes[i] = _outcome(job)
            elif live is not None and str(job.job_id) not in live:
                missing[i] = missing.get(i, 0) + 1
                if missing[i] >= 2 and not job.paths.result_pickle.exists():
                    log.warning("array task %s left the queue without a result", job.job_id)
                    outcomes[i] = "lost"
            else:
                missing.pop(i, None)
        if (failed_since is not None and failures >= 2 and len(outcomes) < len(jobs)
                and time.monotonic() - failed_since >= squeue_patience_s):
            left = [str(job.job_id) for i, job in enumerate(jobs) if i not in outcomes]
            log.error("stopped waiting: squeue failed on every poll for %.0f s (%d polls; last: %s). %d array "
                      "task(s) without a result (%s) may still be queued or running: check with squeue, and re-run "
                      "this command once they are over to collect their records", time.monotonic() - failed_since,
                      failures, why, len(left), ", ".join(left[:10]) + (", ..." if len(left) > 10 else ""))
            for i in range(len(jobs)):
                outcomes.setdefault(i, "lost")
        if len(outcomes) < len(jobs):
            time.sleep(poll_s)
    return [outcomes[i] for i in range(len(jobs))]


class _SacctFilter(logging.Filter):
    """Clusters without accounting answer every ``sacct`` call with an error, and submitit warns
    each time; job states then come from its result files, which is all --wait needs. One notice."""

    noted = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "sacct" not in record.getMessage():
            return True
        if not _SacctFilter.noted:
            _SacctFilter.noted = True
            log.info("SLURM accounting (sacct) is unavailable here; waiting on the tasks' result files")
        return False


def _quiet_sacct() -> None:
    target = logging.getLogger("submitit")
    if not any(isinstance(f, _SacctFilter) for f in target.filters):
        target.addFilter(_SacctFilter())


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.grid_slurm", "python -m jobs.grid GRID.toml --results DIR --executor slurm")
