"""Fault injection for the grid runner: kills, failing cells, two runners at once. Prints what was lost.

    python -m jobs.fault_injection [--config jobs/configs/smoke.toml] [--seeds 3] [--kills 10] [--workers 2]

1. Reference: the grid (by default the smoke grid with 3 seeds, 18 cells) run once, uninterrupted.
2. Kills: the same grid in a fresh folder, its runner (and worker processes) SIGKILLed at a random
   moment within the work it still has, resumed, killed again... ``--kills`` times, then resumed to the end.
   The moments are scaled on a timing run with the cache the reference filled, as every killed runner meets it.
3. Failing cells: a grid whose cells raise (training that diverges to NaN, a dataset folder that
   does not exist) beside a good cell: each is recorded as failed with its error, the grid goes on.
4. Two runners started on the same folder at the same moment.
Each result set must equal the reference: the same cell ids, one readable record each, no temporary
file left behind, the same accuracies. Exit code 0 only when nothing was lost or duplicated.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.schema import validate_record
from core.store import TMP_PREFIX
from jobs.cli import EXIT_FAILED, check_file_out, job_parser, log_progress, user_facing, work_begins
from jobs.grid import live_locks

log = logging.getLogger("jobs.fault_injection")
REPO = Path(__file__).resolve().parent.parent
COMPARED = ("status", "zs_acc", "ft_acc", "ood_change", "iimm")


def _record_files(results: Path) -> list[Path]:
    """The record files in ``results`` (``.tmp-*`` files are writes in progress)."""
    return [p for p in results.glob("*.json") if not p.name.startswith(".")]


def _runner(config: Path, results: Path, cache: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "jobs.grid", str(config), "--results", str(results), "--cache", str(cache),
            "--workers", str(workers)]


def _start(cmd: list[str], log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log_path, "ab") as out:  # own process group, so a kill takes the workers with it
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


class RunnerFailed(RuntimeError):
    """A runner this job started did not end as it must (past --timeout, a non-zero exit, an unclean reference):
    the job ran and failed, exit 1 with one ``error:`` line, as jobs.cli says (was a traceback)."""


def _run(cmd: list[str], log_path: Path, timeout: float, results: Path | None = None) -> tuple[float, float]:
    """Run to the end; (wall seconds, seconds until the first record appeared in ``results``)."""
    started, first = time.monotonic(), None  # durations and the timeout: never the wall clock
    proc = _start(cmd, log_path)
    while proc.poll() is None:
        if results is not None and first is None and _record_files(results):
            first = time.monotonic() - started
        if time.monotonic() - started > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            raise RunnerFailed(f"runner did not finish within {timeout:g}s (--timeout); see {log_path}")
        time.sleep(0.1)
    if proc.returncode != 0:
        raise RunnerFailed(f"runner exited with {proc.returncode}; see {log_path}")
    return time.monotonic() - started, first if first is not None else float("nan")


def audit(results: Path) -> dict[str, Any]:
    """Records of a results folder: valid ones by id, plus anything that should not be there."""
    records, problems = {}, []
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            validate_record(record)
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: unreadable or invalid ({exc})")
            continue
        if record["run_id"] != path.stem:
            problems.append(f"{path.name}: holds run {record['run_id']}")
        records[record["run_id"]] = record
    leftovers = [p.name for p in results.glob(f"{TMP_PREFIX}*")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    return {"records": records, "problems": problems}


def compare(reference: dict[str, dict], got: dict[str, Any]) -> list[str]:
    """Differences between a result set and the reference, as readable lines (empty: identical)."""
    diffs = list(got["problems"])
    missing, extra = set(reference) - set(got["records"]), set(got["records"]) - set(reference)
    diffs += [f"missing cell {c}" for c in sorted(missing)] + [f"unexpected cell {c}" for c in sorted(extra)]
    for run_id in set(reference) & set(got["records"]):
        for key in COMPARED:
            a, b = reference[run_id].get(key), got["records"][run_id].get(key)
            if a != b and not (isinstance(a, float) and isinstance(b, float) and abs(a - b) < 1e-9):
                diffs.append(f"cell {run_id}: {key} {a!r} != {b!r}")
    return diffs


def kill_and_resume(cmd: list[str], results: Path, kills: int, n_cells: int, startup_s: float, per_cell_s: float,
                    log_path: Path, rng: random.Random, timeout: float) -> list[dict[str, Any]]:
    """SIGKILL the runner's process group ``kills`` times, then run it to the end.

    Each kill falls uniformly within the time the runner needs for its first record plus about twice
    its share of the remaining cells, so kills land mid-run (starting, embedding, training, writing)
    and the work is spread over all of them."""
    events = []
    for i in range(kills):
        before = len(_record_files(results))
        # spread the work over the kills: each may let about twice its share of the remaining cells finish
        share = 2 * max(n_cells - before, 0) / (kills - i)
        horizon = startup_s + per_cell_s * share
        delay = rng.uniform(0.5, max(1.0, 0.95 * horizon))
        proc = _start(cmd, log_path)
        try:
            proc.wait(timeout=delay)
            finished_first = True
        except subprocess.TimeoutExpired:
            in_flight = live_locks(results)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            finished_first = False
        after = len(_record_files(results))
        events.append({"kill": i + 1, "after_s": round(delay, 1), "records_before": before, "records_after": after,
                       "cells_in_flight": 0 if finished_first else in_flight,
                       "runner_had_finished": finished_first})
        log.info("kill %d/%d after %.1fs: %d -> %d records, %s", i + 1, kills, delay, before, after,
                 "the runner had already finished" if finished_first else f"{in_flight} cell(s) in flight")
    _run(cmd, log_path, timeout)
    return events


#: marks a --work folder this job made, so that it alone is ever emptied (``--work .`` deleted the checkout)
WORK_MARK = ".fault-injection-work"
#: the job's own scratch folder: emptied even without the mark (runs before the mark existed left it unmarked)
DEFAULT_WORK = Path(".cache/fault-injection")


def with_seeds(config: Path, n_seeds: int, work: Path) -> Path:
    """A copy of the grid file with ``seeds = [0 .. n_seeds-1]``: more cells, so every kill has work to hit."""
    text, n = re.subn(r"^seeds\s*=.*$", f"seeds = {list(range(n_seeds))}", config.read_text(), flags=re.M)
    if not n:
        raise ValueError(f"{config} has no 'seeds = [...]' line for --seeds to replace")
    copy = work / f"{config.stem}-{n_seeds}-seeds.toml"
    copy.write_text(text)
    return copy


def failing_cells(work: Path, workers: int, timeout: float) -> dict[str, Any]:
    """A grid of cells that raise beside one that works: each recorded, the grid goes on."""
    config = work / "failing.toml"
    # the folder as a TOML string (JSON's escapes are TOML's): pasted between quotes, a Windows path's '\U' or a
    # folder name's '"' made the file no TOML, and the grid refused it
    missing = json.dumps(f"folder:{work / 'no-such-image-folder'}", ensure_ascii=False)
    config.write_text(
        f'name = "failing"\nmodels = ["worldclip-tiny"]\ndatasets = ["chart-trend", {missing}]\n'
        'methods = ["bitfit", "full_ft"]\nsource = "fault-injection"\n'
        '[train]\noptimizer = "adamw"\nlr = 1e-3\nbatch_size = 32\nepochs = 1000\nmax_steps = 6\neval_every = 3\n'
        '[method.full_ft.train]\nlr = 1e30  # diverges: the loss becomes NaN\n', encoding="utf-8")
    results = work / "failing"
    _run(_runner(config, results, work / "cache", workers), work / "failing.log", timeout)
    got = audit(results)
    outcome = {f"{r['dataset'].split('/')[-1]} / {r['method']}": (r["status"], r["error"][:120])
               for r in got["records"].values()}
    expected_ok = {"chart-trend / bitfit"}
    ok = (len(got["records"]) == 4 and not got["problems"]
          and all((status == "ok") == (name in expected_ok) for name, (status, _) in outcome.items())
          and all(error for status, error in outcome.values() if status == "failed"))
    return {"cells": outcome, "as_expected": ok}


@user_facing
def main(argv: list[str] | None = None) -> int:
    log_progress()
    p = job_parser("python -m jobs.fault_injection", description=__doc__.split("\n")[0])
    p.add_argument("--config", type=Path, default=REPO / "jobs/configs/smoke.toml",
                   help="grid TOML (default jobs/configs/smoke.toml)")
    p.add_argument("--kills", type=int, default=10, help="SIGKILLs of the runner, each followed by a resume")
    p.add_argument("--seeds", type=int, default=3, help="run the grid with this many seeds (0: as the file says)")
    p.add_argument("--workers", type=int, default=2, help="worker processes per runner (all are killed)")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK,
                   help="scratch folder, emptied: new, empty, or made by an earlier run")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    p.add_argument("--timeout", type=float, default=900, help="seconds allowed for one uninterrupted runner")
    p.add_argument("--report", type=Path, help="also write the figures here as JSON")
    args = p.parse_args(argv)
    if args.kills < 1 or args.workers < 1 or args.seeds < 0:
        raise ValueError("--kills and --workers must be at least 1, --seeds at least 0")
    if not args.timeout > 0:  # inf is fine: no limit
        raise ValueError(f"--timeout must be a number of seconds above 0, got {args.timeout:g}")
    if not args.config.is_file():
        raise FileNotFoundError(f"grid file {args.config} does not exist")
    if args.work.exists() and not args.work.is_dir():
        raise ValueError(f"--work {args.work} is a file, not a folder")
    if (args.work.is_dir() and any(args.work.iterdir()) and not (args.work / WORK_MARK).exists()
            and args.work.resolve() != DEFAULT_WORK.resolve()):
        raise ValueError(f"--work {args.work} holds files this job did not make, and it is emptied: name a new or "
                         "empty folder")
    if args.report:  # before the runs (about 10 min), not when the figures are written
        check_file_out(args.report, "--report")
    try:
        return _measure(args)
    except RunnerFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _measure(args: argparse.Namespace) -> int:
    """The four measurements of :func:`main`, its options checked; RunnerFailed when a runner did not end well."""
    import shutil

    work_begins()
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    (args.work / WORK_MARK).write_text("made by python -m jobs.fault_injection, which empties this folder\n")
    cache = args.work / "cache"
    config = with_seeds(args.config, args.seeds, args.work) if args.seeds else args.config
    log.info("1/4 reference run of %s", config)
    ref_s, first_s = _run(_runner(config, args.work / "reference", cache, args.workers),
                          args.work / "reference.log", args.timeout, results=args.work / "reference")
    reference = audit(args.work / "reference")
    if reference["problems"]:
        raise RunnerFailed(f"the reference run itself is not clean: {reference['problems']}")
    ref = reference["records"]
    log.info("reference: %d records in %.0fs, the first after %.1fs", len(ref), ref_s, first_s)

    # The kills' moments come from a second, timing run: the reference filled the embedding cache, so every
    # killed runner starts warm and runs faster than the reference did; timed on the reference, most kills
    # would come after a resumed runner had already finished everything.
    timing_dir = args.work / "timing"
    warm_s, warm_first_s = _run(_runner(config, timing_dir, cache, args.workers), args.work / "timing.log",
                                args.timeout, results=timing_dir)
    log.info("timing run (warm cache): %.0fs, the first record after %.1fs", warm_s, warm_first_s)
    log.info("2/4 %d SIGKILLs at random moments, resuming each time", args.kills)
    killed_dir = args.work / "killed"
    per_cell_s = max(warm_s - warm_first_s, 1.0) / max(len(ref) - 1, 1)
    events = kill_and_resume(_runner(config, killed_dir, cache, args.workers), killed_dir, args.kills, len(ref),
                             warm_first_s, per_cell_s, log_path=args.work / "killed.log",
                             rng=random.Random(args.seed), timeout=args.timeout)
    killed_diffs = compare(ref, audit(killed_dir))

    log.info("3/4 cells that fail")
    failing = failing_cells(args.work, args.workers, args.timeout)

    log.info("4/4 two runners on one folder at once")
    twin_dir = args.work / "two-runners"
    procs = [_start(_runner(config, twin_dir, cache, 1), args.work / f"runner-{i}.log") for i in (1, 2)]
    try:
        codes = [proc.wait(timeout=args.timeout) for proc in procs]
    except subprocess.TimeoutExpired:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
        raise RunnerFailed(f"two runners at once did not finish within {args.timeout:g}s (--timeout); see "
                           f"{args.work / 'runner-1.log'}") from None
    # 3: a runner found cells the other held (their records came from the other); the audit decides the rest
    twin_diffs = compare(ref, audit(twin_dir)) + [f"runner exited {c}" for c in codes if c not in (0, 3)]

    summary = {"config": str(args.config), "seeds": args.seeds, "cells": len(ref), "reference_s": round(ref_s, 1),
               "timing_run_s": round(warm_s, 1),
               "kills": events, "kills_mid_run": sum(not e["runner_had_finished"] for e in events),
               "after_kills_differences": killed_diffs, "failing_cells": failing,
               "two_runners_differences": twin_diffs}
    lost = bool(killed_diffs or twin_diffs or not failing["as_expected"])
    print(f"reference: {len(ref)} cells of {config.name} in {ref_s:.0f}s")
    print(f"kills: {summary['kills_mid_run']} of {args.kills} SIGKILLs landed mid-run, "
          f"{sum(e['cells_in_flight'] for e in events)} cell(s) in flight in all; after resuming: "
          f"{'identical to the reference' if not killed_diffs else killed_diffs}")
    for name, (status, error) in failing["cells"].items():
        print(f"failing-cells grid: {name}: {status}{' — ' + error if error else ''}")
    print(f"two runners at once: {'identical to the reference' if not twin_diffs else twin_diffs}")
    print("LOST OR DUPLICATED: " + ("yes" if lost else "nothing"))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(summary, indent=2))
    return EXIT_FAILED if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
