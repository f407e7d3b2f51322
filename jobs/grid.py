"""Run a fine-tuning grid: one result record per cell, resumable, locally or on SLURM.

    python -m jobs.grid jobs/configs/smoke.toml --results results/smoke
    python -m jobs.grid jobs/configs/default.toml --results results/default --executor slurm \
        --slurm-partition gpu --timeout-min 120

A cell's id is a hash of its full config. A cell whose record exists is skipped, so
re-running the same command resumes. Records are written atomically at the end of a cell,
so killing the runner at any moment loses at most the cells in flight. A lock file per
cell stops two runners on the same results folder from doing the same cell twice.

Every option is checked, and every cell's model, method settings and recipe, before any cell runs.
Exit code: 0 when every cell has its record, failed cells included (a record holds its error;
``--retry-failed`` runs them again); 2 for a mistake found before any cell ran; 1 when a cluster
task ended without a result (re-run the command to run its cell again); 3 when some cells were being
run by another runner on the same results folder (their records are not here yet: re-run later);
130 when interrupted (Ctrl-C or SIGTERM stop the workers too; queued cells do not run).
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from core.grid_config import Grid, GridConfigError, load_grid
from core.store.locks import (acquire_lock, heartbeat, live_locks, lock_path, release_lock,  # noqa: F401
                              release_locks_of)
from jobs.cli import (EXIT_FAILED, EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_USER_ERROR, log_progress,
                      progress_settings, quiet_libraries, sigterm_as_interrupt, user_facing)
from jobs.grid_preflight import _known, preflight  # noqa: F401 (tests and grid_slurm use them from here)
from jobs.grid_options import parse_args, select_cells  # noqa: F401 (re-exported: tests use grid.select_cells)
from jobs.grid_slurm import option_problem, run_submitit

log = logging.getLogger("jobs.grid")
EXIT_STOPPED = EXIT_FAILED  # a system error (full disk, lost folder) after cells began; the records so far are kept


def record_path(results: Path, run_id: str) -> Path:
    return results / f"{run_id}.json"


def is_finished(results: Path, run_id: str, *, retry_failed: bool = False) -> bool:
    """A *valid* record exists for the cell (JSON or compacted Parquet); with retry_failed, an 'ok'
    one. A record file that does not parse or validate (e.g. 0 bytes after a full disk) does not
    count: the cell runs again and replaces it."""
    from core.store.records import read_json_record

    path = record_path(results, run_id)
    if path.exists():
        record = read_json_record(path)
        if record is not None:
            return record["status"] == "ok" or not retry_failed
    if any(results.glob("*.parquet")):  # compacted records no longer have their own file
        from core.store import stored_run_ids

        return run_id in stored_run_ids(results, ok_only=retry_failed)
    return False


def pending_cells(grid: Grid, results: Path, *, retry_failed: bool) -> list[dict[str, Any]]:
    """The cells without a (successful, with retry_failed) record, in grid order."""
    from core.experiment import cell_id
    from core.store import stored_run_ids

    done = stored_run_ids(results, ok_only=retry_failed) if results.exists() else set()
    return [c for c in grid.cells if cell_id(c) not in done]


def execute_cell(cell: dict[str, Any], results: str, cache_dir: str | None = None, device: str = "cpu",
                 command: str = "", retry_failed: bool = False, threads: int | None = None) -> str:
    """Run one cell unless finished or locked elsewhere; write its record.

    Returns 'done', 'failed', 'skipped' (already finished) or 'locked' (another runner has it).
    threads: CPU threads for torch in this process (CPU workers share the cores).
    """
    from core.experiment import cell_id, refused_record, run_cell
    from core.store import RecordError, write_record
    from core.store.atomic import remove_temporaries_of

    if threads:
        import torch

        torch.set_num_threads(threads)

    results_dir = Path(results)
    run_id = cell_id(cell)
    if is_finished(results_dir, run_id, retry_failed=retry_failed):
        return "skipped"
    if not acquire_lock(results_dir, run_id):
        return "locked"
    try:
        if is_finished(results_dir, run_id, retry_failed=retry_failed):  # finished while we waited
            return "skipped"
        remove_temporaries_of(record_path(results_dir, run_id))  # a killed runner's half-done write; ours now
        with heartbeat(results_dir, run_id):
            record = run_cell(cell, cache_dir=Path(cache_dir) if cache_dir else None, device=device,
                              command=command)
        try:
            write_record(record, results_dir)
        except RecordError as exc:  # a field the store refuses: the cell still leaves its one record
            fallback = refused_record(record, exc)
            try:
                write_record(fallback, results_dir)
            except RecordError:  # the config itself is what the store refuses: keep the rest
                write_record({k: v for k, v in fallback.items() if k not in ("config", "ood_sets")}, results_dir)
            return "failed"
        return "done" if record["status"] == "ok" else "failed"
    finally:
        release_lock(results_dir, run_id)


def _devices(requested: int | None) -> list[str]:
    """One device per worker: each GPU once (``--workers`` at most the GPU count), or ``requested`` CPU workers."""
    import torch

    if torch.cuda.is_available():
        gpus = [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        if requested and requested > len(gpus):  # was cut without a word: --workers 4 on one GPU ran one cell at a time
            log.warning("--workers %d: this host has %d GPU(s) and runs one worker per GPU, so %d worker(s)",
                        requested, len(gpus), len(gpus))
        return gpus[: requested or len(gpus)]
    return ["cpu"] * (requested or 1)


def _describe(cell: dict[str, Any]) -> str:
    cfg = ",".join(f"{k}={v}" for k, v in sorted(cell["method_config"].items()))
    return f"{cell['model']} / {cell['dataset']} / {cell['method']}{'(' + cfg + ')' if cfg else ''} / seed {cell['seed']}"


def run_local(grid: Grid, results: Path, *, cache_dir: Path | None, workers: int | None, command: str,
              retry_failed: bool, threads: int | None = None, ran: list[str] | None = None) -> dict[str, int]:
    """Run pending cells here: in-process on one device, or one worker process per device. ``ran`` (when
    given) receives the ids of the cells that ran and succeeded."""
    from core.experiment import cell_id

    pending = pending_cells(grid, results, retry_failed=retry_failed)
    counts = {"total": len(grid.cells), "already": len(grid.cells) - len(pending), "done": 0, "failed": 0,
              "locked": 0, "skipped": 0}
    log.info("grid %s: %d cells, %d already finished, %d to run", grid.name, counts["total"], counts["already"],
             len(pending))
    if counts["already"] and not retry_failed:  # say so: "finished" includes cells whose record is a failure
        from core.store import stored_run_ids

        finished = {cell_id(c) for c in grid.cells} - {cell_id(c) for c in pending}
        counts["already_failed"] = len(finished - stored_run_ids(results, ok_only=True))
        if counts["already_failed"]:
            log.warning("%d of the finished cells have a failure record; add --retry-failed to run them again",
                        counts["already_failed"])
    devices = _devices(workers)
    if devices[0] != "cpu":
        threads = None
    elif threads is None:  # the cores shared out; --threads 1 on a machine other jobs also use
        threads = max(1, (os.cpu_count() or 1) // len(devices))
    started = time.monotonic()  # durations: a clock set during the grid must not move them

    def report(i: int, cell: dict, outcome: str) -> None:
        counts[outcome] += 1
        if ran is not None and outcome == "done":
            ran.append(cell_id(cell))
        elapsed = time.monotonic() - started
        eta = elapsed / (i + 1) * (len(pending) - i - 1)
        log.info("[%d/%d] %s: %s (elapsed %.0fs, ETA %.0fs)", counts["already"] + i + 1, counts["total"],
                 outcome, _describe(cell), elapsed, eta)

    if len(devices) == 1:
        with sigterm_as_interrupt():  # SIGTERM ends like Ctrl-C: exit 130
            try:
                for i, cell in enumerate(pending):
                    log.info("running %s", _describe(cell))
                    report(i, cell, execute_cell(cell, str(results), str(cache_dir) if cache_dir else None,
                                                 devices[0], command, retry_failed, threads))
            except KeyboardInterrupt:
                # the cell in flight is lost (no record; execute_cell releases its lock); say how to resume
                _stopped(counts, len(pending))
                raise
        return counts
    from concurrent.futures import ProcessPoolExecutor, as_completed
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_worker_init,
                               initargs=(os.getpid(), worker_seats(ctx, devices), progress_settings()))
    with sigterm_as_interrupt():  # a SIGTERM stops the workers too
        try:
            futures = {pool.submit(_execute_on_worker_device, cell, str(results),
                                   str(cache_dir) if cache_dir else None, command, retry_failed, threads): cell
                       for cell in pending}
            for i, fut in enumerate(as_completed(futures)):
                report(i, futures[fut], fut.result())
        except BaseException:  # Ctrl-C, SIGTERM, a crashed worker: queued cells must not run on unattended
            pool.shutdown(wait=False, cancel_futures=True)
            stopped = multiprocessing.active_children()
            for child in stopped:  # cells in flight are lost
                child.terminate()
            for child in stopped:
                child.join(timeout=10)
            release_locks_of(results, [c.pid for c in stopped if c.pid])  # a terminated worker never released them
            _stopped(counts, len(pending))
            raise
    pool.shutdown()
    return counts


def _stopped(counts: dict[str, int], pending: int) -> None:
    """Say, for a grid stopped before its end (Ctrl-C, SIGTERM, a crashed worker), how far it got and how to resume."""
    log.warning("stopped after %d of %d cells; re-run the command to resume", sum(
        counts[k] for k in ("done", "failed", "locked", "skipped")), pending)


_WINDOWS = os.name == "nt"
WINDOWS_MAX_WORKERS = 61  # concurrent.futures refuses more processes on Windows (WaitForMultipleObjects' limit)


def runner_watch(parent_pid: int) -> Callable[[], bool]:
    """What a worker asks to learn whether its runner (``parent_pid``) still runs: on POSIX whether it is still the
    worker's parent (a dead runner's workers are re-parented); on Windows, which never changes a process's parent
    id, whether a process of that id started when the runner did still exists
    (:func:`core.store.locks.process_start`), so the worker of a killed runner exits at once instead of after its
    cell."""
    if not _WINDOWS:
        return lambda: os.getppid() == parent_pid
    from core.store.locks import process_start

    born = process_start(parent_pid)
    return lambda: born is not None and process_start(parent_pid) == born


#: The device of this worker process, set by :func:`_worker_init` and used for all its cells (until 2026-12-06
#: a cell was given its device when queued and ran on whichever worker was idle: two workers could share a GPU
#: while another stood idle).
_WORKER_DEVICE: str | None = None


def worker_seats(ctx: Any, devices: list[str]) -> Any:
    """The queue (of the multiprocessing context ``ctx``) each worker takes its seat from at its start
    (:func:`_worker_init`): one of ``devices``, for all its cells, and the tag its log lines carry,
    ``[worker 2/4]``: the workers' lines interleave on stderr, and nothing said which worker wrote one."""
    seats = ctx.Queue()
    for number, device in enumerate(devices, 1):
        seats.put((device, f"[worker {number}/{len(devices)}]"))
    return seats


def _worker_init(parent_pid: int, seats: Any, logs: tuple[str, int] | None = None) -> None:
    """In each worker: take a seat from ``seats`` (:func:`worker_seats`), its device for all its cells and its
    log lines' tag; Ctrl-C is the runner's to handle (it stops the workers), and a worker whose runner died
    (SIGKILL) exits instead of running queued cells or waiting forever. ``logs``: the runner's
    :func:`jobs.cli.progress_settings`, so that the worker's lines reach stderr as the runner's do, tagged."""
    import threading

    global _WORKER_DEVICE
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: a Ctrl-C while it waits for its seat is the runner's
    device, tag = seats.get(timeout=60)
    if logs is not None:  # a spawned worker starts with no logging: WARNING:root:… lines, its progress lost
        log_progress(*logs, tag=tag)
        quiet_libraries()
    _WORKER_DEVICE = device

    runner_alive = runner_watch(parent_pid)

    def watch() -> None:
        while runner_alive():
            time.sleep(1.0)
        os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="runner-watch", daemon=True).start()


def _execute_on_worker_device(cell: dict[str, Any], results: str, cache_dir: str | None, command: str,
                              retry_failed: bool, threads: int | None) -> str:
    """:func:`execute_cell` on this worker's own device (:func:`_worker_init`)."""
    if _WORKER_DEVICE is None:
        raise RuntimeError("a grid worker started without a device (its initialiser did not run)")
    log.info("running %s on %s", _describe(cell), _WORKER_DEVICE)
    return execute_cell(cell, results, cache_dir, _WORKER_DEVICE, command, retry_failed, threads)


def _option_problem(args: argparse.Namespace) -> str | None:
    """Why the command-line options cannot work (None when they can), checked before any cell."""
    if args.workers is not None and args.workers < 1:
        return "--workers must be at least 1"
    if _WINDOWS and args.workers is not None and args.workers > WINDOWS_MAX_WORKERS:  # Python's process pool
        return f"--workers {args.workers}: Windows runs at most {WINDOWS_MAX_WORKERS} worker processes"
    if args.threads is not None and args.threads < 1:
        return "--threads must be at least 1"
    if args.cache is not None and args.cache.exists() and not args.cache.is_dir():
        return f"--cache {args.cache} is a file, not a folder"
    return option_problem(args)


@user_facing
def main(argv: list[str] | None = None) -> int:
    log_progress()
    quiet_libraries()
    args = parse_args(argv)
    command = "python -m jobs.grid " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    from core.store import is_results_folder
    from core.store.records import mark_results_folder

    problem = is_results_folder(args.results)
    if problem:
        log.error("error: --results: %s", problem)
        return EXIT_USER_ERROR
    problem = _option_problem(args)
    if problem:
        log.error("error: %s", problem)
        return EXIT_USER_ERROR
    try:
        log.info("reading %s and checking every cell before running any", args.config)
        grid = select_cells(load_grid(args.config, max_cells=args.max_cells, **_known()), args.methods, args.seeds,
                            args.models)
        preflight(grid)
    except GridConfigError as exc:
        log.error("error: %s", exc)
        return EXIT_USER_ERROR
    if args.dry_run:  # lists the cells; writes nothing, not even the results folder
        from core.experiment import cell_id

        for cell in grid.cells:
            print(cell_id(cell), _describe(cell))
        return 0
    mark_results_folder(args.results)
    if args.executor != "local":
        return run_submitit(grid, args.results, args, command)  # a refused array is exit 2: nothing ran
    ran: list[str] = []
    try:
        counts = run_local(grid, args.results, cache_dir=args.cache, workers=args.workers, command=command,
                           retry_failed=args.retry_failed, threads=args.threads, ran=ran)
    except OSError as exc:  # e.g. a full disk while writing a record: not a usage mistake (exit 2)
        log.error("error: the grid stopped after it began: %s. Every record written so far is kept; "
                  "fix the cause and re-run the same command to resume.", exc)
        return EXIT_STOPPED
    log.info("grid %s finished: %s; its records are in %s (python -m jobs.export --results %s lists them)",
             grid.name, counts, args.results, shlex.quote(str(args.results)))
    if counts["already"] and ran:  # cells skipped as finished, though their data has changed since they ran
        from core.data_versions import kept_on_other_data_warning
        from core.experiment import cell_id

        if text := kept_on_other_data_warning(args.results, {cell_id(c) for c in grid.cells}, set(ran)):
            log.warning(text)
    if counts["failed"]:
        log.warning("%d cell(s) failed; their records hold the error (python -m jobs.export --results %s). "
                    "Fix the cause, then add --retry-failed to run them again.", counts["failed"],
                    shlex.quote(str(args.results)))
    if counts["locked"]:
        log.warning("%d cell(s) were being run by another runner; their records are not here yet. Re-run this "
                    "command later to collect them (exit code %d until then).", counts["locked"], EXIT_INCOMPLETE)
        return EXIT_INCOMPLETE
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
