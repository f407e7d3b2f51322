"""The grid runner running cells: resume, failures, locks, exit codes, SIGKILL-and-resume, stopping workers."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.experiment import cell_id
from jobs import grid as grid_job
from tests.grid_helpers import REPO, runner_command, write_grid


def records(results: Path) -> dict[str, dict]:
    """The records in ``results`` by run id (``.tmp-*`` files are writes in progress, not records)."""
    return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in results.glob("*.json") if not p.name.startswith(".")}


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    assert grid_job.acquire_lock(tmp_path, "abc")
    assert not grid_job.acquire_lock(tmp_path, "abc")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    grid_job.lock_path(tmp_path, "old").write_text(f"{socket.gethostname()}:{dead.pid}", encoding="utf-8")
    assert grid_job.acquire_lock(tmp_path, "old")


def test_the_last_line_says_where_the_records_are(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="jobs.grid")
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit"]')
    monkeypatch.setattr(grid_job, "execute_cell", lambda *args, **kwargs: "done")
    results = tmp_path / "my results"
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    last = [r.getMessage() for r in caplog.records if r.name == "jobs.grid"][-1]
    assert "'done': 2" in last and last.endswith(
        f"its records are in {results} (python -m jobs.export --results '{results}' lists them)")


def test_cells_another_runner_holds_make_exit_code_3(tmp_path, caplog):
    config = write_grid(tmp_path, methods='["zero_shot"]')
    results = tmp_path / "results"
    (cell,) = grid_job.load_grid(config, **grid_job._known()).cells
    assert grid_job.acquire_lock(results, cell_id(cell))  # a live runner holds the only cell
    assert grid_job.main([str(config), "--results", str(results)]) == grid_job.EXIT_INCOMPLETE == 3
    assert "being run by another runner" in caplog.text and not records(results)
    grid_job.release_lock(results, cell_id(cell))


def test_a_system_error_after_cells_began_is_exit_1_not_a_usage_mistake(tmp_path, monkeypatch, caplog):
    import errno

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    config = write_grid(tmp_path, methods='["zero_shot"]')
    monkeypatch.setattr(grid_job, "execute_cell", disk_full)
    assert grid_job.main([str(config), "--results", str(tmp_path / "results")]) == grid_job.EXIT_STOPPED == 1
    assert "stopped after it began: [Errno 28] No space left on device" in caplog.text
    assert "re-run the same command to resume" in caplog.text


def test_a_rerun_says_how_many_finished_cells_failed(tmp_path, caplog):
    from core import store
    from tests.fixtures import make_fixture_records

    config = write_grid(tmp_path, methods='["zero_shot"]')
    results = tmp_path / "results"
    (cell,) = grid_job.load_grid(config, **grid_job._known()).cells
    failed = {**make_fixture_records(n_datasets=1, methods=("zero_shot",), n_failed=1)[0], "run_id": cell_id(cell)}
    store.write_record(failed, results)
    assert grid_job.main([str(config), "--results", str(results)]) == 0  # nothing to run
    assert "1 of the finished cells have a failure record; add --retry-failed" in caplog.text


def _out_of_memory(*args, **kwargs):
    import torch

    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")


@pytest.mark.slow
def test_grid_runs_resumes_and_records_failures(tmp_path, monkeypatch):
    import dataclasses

    from core.methods import METHODS

    # a cell that raises at run time (here: out of memory while building) is recorded, the grid goes on
    monkeypatch.setitem(METHODS, "lora", dataclasses.replace(METHODS["lora"], build=_out_of_memory))
    config = write_grid(tmp_path, methods='["zero_shot", "lora", "bitfit"]')
    results = tmp_path / "results"
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    got = records(results)
    assert len(got) == 3
    by_method = {r["method"]: r for r in got.values()}
    assert by_method["zero_shot"]["status"] == "ok" and by_method["bitfit"]["status"] == "ok"
    assert by_method["lora"]["status"] == "failed" and "OutOfMemoryError" in by_method["lora"]["error"]
    assert "Traceback" in by_method["lora"]["provenance"]["traceback"]
    ok = by_method["bitfit"]
    assert ok["random_weights"] is True and ok["pretrained"] == "random"
    assert set(ok["ood_before"]) == {"scene-kind"} and ok["provenance"]["trainable_params"] > 0
    assert ok["id_gain"] == pytest.approx(ok["ft_acc"] - ok["zs_acc"])
    for key in ("git_revision", "versions", "device", "wall_time_s", "peak_rss_mb", "total_params", "command"):
        assert key in ok["provenance"]
    assert ok["provenance"]["peak_rss_scope"] == ("cell" if Path("/proc/self/clear_refs").exists() else "process")
    # what a reproduction needs beyond versions and device: the CPU and how many threads split its reductions
    assert isinstance(ok["provenance"]["cpu"], str) and ok["provenance"]["cpu"]
    assert isinstance(ok["provenance"]["torch_threads"], int) and ok["provenance"]["torch_threads"] >= 1
    assert ok["provenance"]["blas_threads"] and min(ok["provenance"]["blas_threads"].values()) >= 1
    import torch  # loaded by the grid already

    assert ok["provenance"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    from core.experiment import cpu_signature, numerics_environment

    assert ok["provenance"]["cpu_signature"] == cpu_signature()  # hosts named alike can round differently
    assert ok["provenance"]["numerics_env"] == numerics_environment()
    assert by_method["zero_shot"]["ft_acc"] == by_method["zero_shot"]["zs_acc"]
    # the frozen zero-shot model is evaluated from the embeddings its zero-shot scores cached; BitFit on images
    assert by_method["zero_shot"]["provenance"]["evaluation_input"] == "cached image embeddings"
    assert ok["provenance"]["evaluation_input"] == "images"
    mtimes = {p: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert grid_job.main([str(config), "--results", str(results)]) == 0  # resume: nothing re-run
    assert {p: p.stat().st_mtime_ns for p in results.glob("*.json")} == mtimes
    assert grid_job.main([str(config), "--results", str(results), "--retry-failed"]) == 0
    assert records(results)[by_method["lora"]["run_id"]]["status"] == "failed"  # still failing, re-recorded
    monkeypatch.undo()
    assert grid_job.main([str(config), "--results", str(results), "--retry-failed"]) == 0
    assert records(results)[by_method["lora"]["run_id"]]["status"] == "ok"  # fixed, so the retry succeeds


@pytest.mark.slow
def test_every_failing_cell_leaves_its_one_record_and_the_grid_goes_on(tmp_path, monkeypatch):
    import core.models

    from core import schema

    def no_model(*args, **kwargs):  # e.g. CUDA out of memory while loading, before any record field is known
        raise RuntimeError("CUDA out of memory. " + "x" * 6000)  # and an error longer than a record holds

    monkeypatch.setattr(core.models, "load_model", no_model)
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit"]')
    results = tmp_path / "results"
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    got = list(records(results).values())
    assert len(got) == 2 and all(r["status"] == "failed" for r in got)
    for r in got:
        assert r["pretrained"] == "random" and r["model"] == "worldclip-tiny" and r["random_weights"] is True
        assert r["error"].startswith("RuntimeError: CUDA out of memory") and len(r["error"]) == schema.TEXT_LIMITS["error"]
    monkeypatch.undo()
    # a record the store refuses for any other reason is replaced by a failure record naming why
    from core import experiment

    real = experiment.run_cell

    def oversized(*args, **kwargs):
        record = real(*args, **kwargs)
        record["provenance"]["notes"] = "n" * (2 * schema.MAX_NESTED_CHARS)
        return record

    monkeypatch.setattr(experiment, "run_cell", oversized)
    assert grid_job.main([str(config), "--results", str(results), "--retry-failed"]) == 0
    got = list(records(results).values())
    assert len(got) == 2 and all(r["status"] == "failed" for r in got)
    assert all("refused by the store (ok run)" in r["error"] and r["provenance"]["git_revision"] for r in got)
    assert all({"peak_rss_mb", "peak_rss_scope", "cpu"} <= set(r["provenance"]) for r in got)  # a peak says whose

    def oversized_config(*args, **kwargs):  # the store refuses the config itself: the record keeps the rest
        record = real(*args, **kwargs)
        record["config"] = {**record["config"], "notes": "n" * (2 * schema.MAX_NESTED_CHARS)}
        return record

    monkeypatch.setattr(experiment, "run_cell", oversized_config)
    assert grid_job.main([str(config), "--results", str(results), "--retry-failed"]) == 0
    got = list(records(results).values())
    assert len(got) == 2 and all(r["status"] == "failed" and "config" not in r for r in got)


@pytest.mark.slow
def test_sigkill_then_resume_gives_one_record_per_cell(tmp_path):
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit", "clip_adapter"]')
    results = tmp_path / "results"
    cmd, env = runner_command(config, results)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not records(results):
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # may land mid-write: the resume must remove the half-done temporary
    proc.wait()
    first = set(records(results))
    assert first, "the runner wrote no record before the kill"
    subprocess.run(cmd, cwd=REPO, env=env, check=True, capture_output=True, timeout=600)
    final = records(results)
    assert len(final) == 3 and first <= set(final)
    assert all(r["status"] == "ok" for r in final.values())
    assert not list(results.glob(".tmp-*"))


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if f"\nPPid:\t{pid}\n" in status.read_text(encoding="utf-8"):
                found.add(int(status.parent.name))
        except OSError:
            continue
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
@pytest.mark.parametrize("stop, n_workers", [(signal.SIGINT, 2), (signal.SIGTERM, 2), (signal.SIGKILL, 2),
                                             (signal.SIGTERM, 1)])
def test_stopping_a_runner_with_workers_stops_its_workers_and_queued_cells(tmp_path, stop, n_workers):
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit", "clip_adapter", "linear_probe"]',
                        extra="")
    config.write_text(config.read_text(encoding="utf-8").replace('source = "test"', 'source = "test"\nseeds = [0, 1, 2]'),
                      encoding="utf-8")
    results = tmp_path / "results"
    cmd, env = runner_command(config, results)
    proc = subprocess.Popen([*cmd, "--workers", str(n_workers), "--threads", "1"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 240, set()
    while time.time() < deadline and not records(results):  # the workers are busy with cells
        workers |= _children(proc.pid)
        time.sleep(0.2)
    workers |= _children(proc.pid)
    assert records(results) and (workers or n_workers == 1), "no worker had finished a cell"
    held = sorted(p.name for p in (results / ".locks").glob("*.lock"))  # the cells in flight
    os.kill(proc.pid, stop)
    code = proc.wait(timeout=60)
    if stop != signal.SIGKILL:
        assert code == 130
        # a runner that stops its workers removes the locks they held (they were left until the next run)
        assert held and not list((results / ".locks").glob("*.lock")), held
    deadline = time.time() + 20  # a worker notices its runner's death within a second
    while time.time() < deadline and _alive(workers):
        time.sleep(0.2)
    assert not _alive(workers), "worker processes outlived their runner"
    done = len(records(results))
    time.sleep(3)
    assert len(records(results)) == done < 12  # nothing more is written, queued cells never ran


@pytest.mark.slow
def test_smoke_grid_end_to_end_then_export(tmp_path, capsys):
    import csv
    import io

    from jobs import export

    results = tmp_path / "smoke"
    assert grid_job.main([str(REPO / "jobs/configs/smoke.toml"), "--results", str(results)]) == 0
    got = records(results)
    assert len(got) == 6 and all(r["status"] == "ok" for r in got.values())
    assert {r["model"] for r in got.values()} == {"worldclip-tiny"}
    assert {r["pretrained"] for r in got.values()} == {"world-v1"}
    capsys.readouterr()
    assert export.main(["--results", str(results), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["run_id"] for r in rows} == set(got)
    for column in ("run_id", "model", "pretrained", "method", "dataset", "seed", "status", "zs_acc", "ft_acc",
                   "id_gain", "norm_gain", "ood_change", "iimm", "source"):
        assert column in rows[0]


def test_a_cluster_that_refuses_the_array_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    import submitit

    class RefusingExecutor:  # what submitit raises when sbatch exits non-zero
        def __init__(self, folder, cluster=None):
            pass

        def update_parameters(self, **params):
            pass

        def map_array(self, *args):
            raise submitit.core.utils.FailedJobError(
                "sbatch: error: resolve_ctls_from_dns_srv: res_nsearch error\n"
                "sbatch: fatal: Could not establish a configuration source\n")

    monkeypatch.setattr(submitit, "AutoExecutor", RefusingExecutor)
    code = grid_job.main([str(write_grid(tmp_path)), "--results", str(tmp_path / "r"), "--executor", "slurm"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: SLURM did not accept the job array: sbatch: fatal: Could not establish" in err


@pytest.mark.slow
def test_a_cell_clears_the_temporary_file_a_killed_write_left(tmp_path):
    config = write_grid(tmp_path, methods='["zero_shot"]')
    results = tmp_path / "results"
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    (run_id,) = records(results)
    record = results / f"{run_id}.json"
    killed_write = results / f".tmp-{run_id}-k1ll3d_x.json"  # what a SIGKILL between write and rename leaves
    record.rename(killed_write)
    not_ours = results / ".tmp-0123456789abcdef-abcdefgh.json"  # another cell's: maybe a live runner's write
    not_ours.write_text("{}", encoding="utf-8")
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    assert list(records(results)) == [run_id] and not killed_write.exists() and not_ours.exists()


def test_ctrl_c_with_one_worker_says_how_far_it_got_and_how_to_resume(tmp_path, monkeypatch, caplog):
    # with several workers the runner said so; with one (the default on a CPU host) only "interrupted"
    outcomes = iter(["done", KeyboardInterrupt()])

    def cell_then_ctrl_c(*args, **kwargs):
        outcome = next(outcomes)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    config = write_grid(tmp_path, methods='["zero_shot", "bitfit"]')
    monkeypatch.setattr(grid_job, "execute_cell", cell_then_ctrl_c)
    assert grid_job.main([str(config), "--results", str(tmp_path / "results")]) == grid_job.EXIT_INTERRUPTED
    assert "stopped after 1 of 2 cells; re-run the command to resume" in caplog.text


def test_open_clips_info_chatter_is_kept_out_of_the_log_its_warnings_are_not(tmp_path, monkeypatch, caplog):
    # ~10 INFO lines per model built ("Parsing model identifier", ...) were half the smoke grid's log
    import logging

    import open_clip.factory

    caplog.set_level(logging.INFO)
    config = write_grid(tmp_path, methods='["zero_shot"]')
    monkeypatch.setattr(grid_job, "execute_cell", lambda *args, **kwargs: "done")
    assert grid_job.main([str(config), "--results", str(tmp_path / "results")]) == 0
    root = logging.getLogger()
    for level, text in ((logging.INFO, "Parsing model identifier"), (logging.WARNING, "initialized randomly")):
        root.handle(root.makeRecord("root", level, open_clip.factory.__file__, 1, text, (), None))
    said = [r.getMessage() for r in caplog.records]
    assert "initialized randomly" in said and "Parsing model identifier" not in said
    assert any(line.startswith("[1/1] done") for line in said)


def test_the_failed_cells_warning_names_an_export_command_that_runs_as_written(tmp_path, monkeypatch, caplog):
    """The warning's ``jobs.export --results DIR`` quoted the folder as the finished line does: a folder with a
    space in its name split into two arguments, which jobs.export refused."""
    import shlex

    config = write_grid(tmp_path, methods='["zero_shot"]')
    monkeypatch.setattr(grid_job, "execute_cell", lambda *args, **kwargs: "failed")
    results = tmp_path / "my results"
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    said = next(r.getMessage() for r in caplog.records if "cell(s) failed" in r.getMessage())
    command = said.split("(python -m jobs.export ")[1].split(")")[0]
    assert shlex.split(command) == ["--results", str(results)]
