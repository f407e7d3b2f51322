"""The grid runner: config validation, cells, resume, failures, locks, SIGKILL-and-resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.experiment import cell_id
from core.grid_config import GridConfigError, parse_grid
from jobs import grid as grid_job

REPO = Path(__file__).resolve().parent.parent
TINY_GRID = """
models = ["worldclip-tiny-random"]
datasets = ["chart-trend"]
methods = {methods}
ood = ["scene-kind"]
source = "test"
[train]
optimizer = "adamw"
lr = 1e-3
batch_size = 16
epochs = 1000
max_steps = 2
{extra}
"""


def write_grid(tmp_path: Path, methods='["zero_shot", "bitfit"]', extra="") -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(TINY_GRID.format(methods=methods, extra=extra))
    return path


def runner_command(config: Path, results: Path) -> tuple[list[str], dict[str, str]]:
    """The grid job as a child process (command, environment), as a user would start it."""
    return ([sys.executable, "-m", "jobs.grid", str(config), "--results", str(results)],
            {**os.environ, "PYTHONPATH": str(REPO)})


def records(results: Path) -> dict[str, dict]:
    """The records in ``results`` by run id (``.tmp-*`` files are writes in progress, not records)."""
    return {p.stem: json.loads(p.read_text()) for p in results.glob("*.json") if not p.name.startswith(".")}


@pytest.fixture(scope="module")
def known():
    return grid_job._known()


def test_cells_expand_models_datasets_methods_seeds_and_sweeps(known):
    grid = parse_grid({"models": ["m"], "datasets": ["shape-kind", "letters"], "methods": ["lora", "bitfit"],
                       "seeds": [0, 1], "ood": "world-panel", "sweep": {"lora.rank": [2, 8]}},
                      known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    assert len(grid.cells) == 2 * (2 + 1) * 2
    assert {c["method_config"].get("rank") for c in grid.cells if c["method"] == "lora"} == {2, 8}
    assert grid.cells[0]["ood"] == ["scene-kind", "shape-colour", "texture-colour", "printed-digits"]


def test_a_methods_own_recipe_and_settings_override_the_grids_and_a_sweep_overrides_both(known):
    grid = parse_grid({"models": ["m"], "datasets": ["letters"], "methods": ["lora", "bitfit"],
                       "train": {"lr": 1e-3, "batch_size": 32},
                       "method": {"lora": {"rank": 8, "scale": 0.5, "train": {"lr": 1e-4}}},
                       "sweep": {"lora.rank": [4, 16]}},
                      known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    lora = [c for c in grid.cells if c["method"] == "lora"]
    assert {c["train"]["lr"] for c in lora} == {1e-4} and {c["train"]["batch_size"] for c in lora} == {32}
    assert sorted(c["method_config"]["rank"] for c in lora) == [4, 16]  # the sweep, not the table's 8
    assert {c["method_config"]["scale"] for c in lora} == {0.5} and len({cell_id(c) for c in lora}) == 2
    (bitfit,) = [c for c in grid.cells if c["method"] == "bitfit"]
    assert bitfit["train"]["lr"] == 1e-3 and bitfit["method_config"] == {}


def test_cell_id_ignores_key_order_and_changes_with_config():
    a = {"model": "m", "dataset": "d", "method": "x", "seed": 0}
    assert cell_id(a) == cell_id(dict(reversed(list(a.items()))))
    assert cell_id(a) != cell_id({**a, "seed": 1})


@pytest.mark.parametrize("data, match", [
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "colour": 1}, "unknown grid key"),
    ({"models": "m", "datasets": [], "methods": ["bitfit"]}, "'datasets' must be a non-empty list"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["magic"]}, "unknown method 'magic'"),
    ({"models": ["m"], "datasets": ["nope"], "methods": ["bitfit"]}, "unknown dataset 'nope'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "ood": ["letters"]}, "both trained on"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "train": {"lrr": 1}}, "unknown training"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["lora"], "method": {"lora": {"rnk": 2}}},
     "unknown setting.*'rnk'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [True]}, "'seeds'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [-1]}, "seeds must lie in"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [2**32]}, "seeds must lie in"),
    ({"models": ["m"], "datasets": ["folder:/" + "d" * 200], "methods": ["bitfit"]},
     "'datasets'.* is 208 characters long; a record's text field holds at most 200"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "source": 5}, "'source' must be a non-empty"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "source": "s" * 201}, "'source'.* 201 char"),
    ({"models": [" "], "datasets": ["letters"], "methods": ["bitfit"]}, "'models' holds an empty name"),
])
def test_bad_grids_name_the_problem(data, match, known):
    with pytest.raises(GridConfigError, match=match):
        parse_grid(data, **known)


def test_cli_bad_config_exits_nonzero_with_message(tmp_path, caplog):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n")
    assert grid_job.main([str(bad), "--results", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in caplog.text
    assert grid_job.main([str(tmp_path / "missing.toml"), "--results", str(tmp_path / "r")]) == 2
    assert grid_job.main([str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    assert f"grid file {tmp_path} is a folder, not a TOML file" in caplog.text


@pytest.mark.parametrize("extra_args, message", [
    (["--cache", "{file}"], "--cache {file} is a file, not a folder"),
    (["--slurm-partition", "gpu"], "--slurm-partition only applies with --executor slurm"),
    (["--cpus-per-task", "4"], "--cpus-per-task only applies with --executor slurm"),
    (["--parallelism", "8"], "--parallelism only applies with a submitit executor"),
    (["--executor", "slurm", "--parallelism", "0"], "--parallelism must be at least 1"),
    (["--executor", "slurm", "--timeout-min", "-5"], "--timeout-min must be at least 1"),
    (["--executor", "slurm", "--cpus-per-task", "0"], "--cpus-per-task must be at least 1"),
    (["--executor", "slurm", "--gpus-per-task", "-1"], "--gpus-per-task must be at least 0"),
])
def test_options_are_checked_before_any_cell_runs(tmp_path, caplog, extra_args, message):
    a_file = tmp_path / "cache.csv"
    a_file.write_text("x")
    results = tmp_path / "r"
    args = [a.format(file=a_file) for a in extra_args]
    assert grid_job.main([str(write_grid(tmp_path)), "--results", str(results), *args]) == 2
    assert message.format(file=a_file) in caplog.text
    assert not results.exists()  # refused before anything was written


@pytest.mark.parametrize("method, table, message", [
    ("orthogonal", "block_size = 7", "block_size 7 does not divide"),
    ("peft_lora", 'peft = { target_modules = ["qproj"] }', "qproj"),
    ("peft_vera", "peft = { r = 0 }", "method 'peft_vera' on worldclip-tiny-random"),
    ("clip_adapter", "reduction = 1000", "leaves no hidden unit"),
    ("peft_oft", "peft = { oft_block_size = 7 }", "peft changed a requested setting"),  # peft would run 8
])
def test_settings_only_a_built_method_can_check_are_refused_before_any_cell(tmp_path, caplog, method, table,
                                                                             message):
    results = tmp_path / "r"
    config = write_grid(tmp_path, methods=f'["{method}"]', extra=f"[method.{method}]\n{table}")
    assert grid_job.main([str(config), "--results", str(results), "--dry-run"]) == 2  # was: accepted
    assert message in caplog.text
    assert grid_job.main([str(config), "--results", str(results)]) == 2 and not results.exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    results = tmp_path / "r"
    assert grid_job.main([str(write_grid(tmp_path)), "--results", str(results), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 and not results.exists()


def test_help_names_the_cache_the_cells_use_by_default(capsys):
    """--cache's help names the folder core.embed uses without it: $IIMM_CACHE when set, not only
    .cache/embeddings (the help said the latter alone while the cells wrote to $IIMM_CACHE)."""
    with pytest.raises(SystemExit) as stop:
        grid_job.main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "$IIMM_CACHE" in text and ".cache/embeddings" in text


def test_lock_is_exclusive_and_stale_locks_are_taken_over(tmp_path):
    assert grid_job.acquire_lock(tmp_path, "abc")
    assert not grid_job.acquire_lock(tmp_path, "abc")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    grid_job.lock_path(tmp_path, "old").write_text(f"{socket.gethostname()}:{dead.pid}")
    assert grid_job.acquire_lock(tmp_path, "old")


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
    import torch  # loaded by the grid already

    assert ok["provenance"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
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
            if f"\nPPid:\t{pid}\n" in status.read_text():
                found.add(int(status.parent.name))
        except OSError:
            continue
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
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
    config.write_text(config.read_text().replace('source = "test"', 'source = "test"\nseeds = [0, 1, 2]'))
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
    os.kill(proc.pid, stop)
    code = proc.wait(timeout=60)
    if stop != signal.SIGKILL:
        assert code == 130
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


def test_a_grid_can_run_some_methods_seeds_and_models_first(known):
    grid = parse_grid({"models": ["m", "n"], "datasets": ["shape-kind", "letters"], "methods": ["lora", "bitfit"],
                       "seeds": [0, 1]}, known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    assert [c["seed"] for c in grid.cells] == [0] * 8 + [1] * 8  # seeds outermost
    part = grid_job.select_cells(grid, "bitfit", "1", "n")
    assert [(c["method"], c["seed"], c["model"]) for c in part.cells] == [("bitfit", 1, "n")] * 2
    assert {cell_id(c) for c in part.cells} < {cell_id(c) for c in grid.cells}
    assert len(grid_job.select_cells(grid, None, None, "m, n").cells) == len(grid.cells)
    with pytest.raises(GridConfigError, match="'o'"):
        grid_job.select_cells(grid, None, None, "m,o")
    with pytest.raises(GridConfigError, match="'attention'"):
        grid_job.select_cells(grid, "attention", None)
    with pytest.raises(GridConfigError, match="integers"):
        grid_job.select_cells(grid, None, "zero")


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


def test_zero_shot_block_is_computed_once_per_model_and_dataset_in_a_process(loaded, tmp_path, monkeypatch):
    import copy
    from collections import OrderedDict

    import torch

    from core import experiment
    from core.transferability import label_sources

    monkeypatch.setattr(experiment, "_ZERO_SHOT_MEMO", OrderedDict())
    calls, real = [], label_sources.baseline_block

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(label_sources, "baseline_block", counted)
    first = experiment._zero_shot_block(loaded, "scene-kind", tmp_path)
    first[1]["leep"] = 1e9  # a caller editing its copy must not change the next one
    again = experiment._zero_shot_block(loaded, "scene-kind", tmp_path)
    assert len(calls) == 1 and again[1]["leep"] != 1e9 and again[0] == first[0] and again[1].keys() == first[1].keys()

    other = copy.deepcopy(loaded)
    with torch.no_grad():
        other.model.logit_scale.add_(1.0)  # another classifier: LEEP changes, so the block is recomputed
    assert experiment._zero_shot_block(other, "scene-kind", tmp_path)[1]["leep"] != again[1]["leep"]
    assert len(calls) == 2

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (injected)")

    monkeypatch.setattr(experiment, "_ZERO_SHOT_MEMO", OrderedDict())
    monkeypatch.setattr(label_sources, "baseline_block", broken)
    assert experiment._zero_shot_block(loaded, "scene-kind", tmp_path)[1] == {}
    monkeypatch.setattr(label_sources, "baseline_block", counted)  # a failure is not remembered
    assert experiment._zero_shot_block(loaded, "scene-kind", tmp_path)[1].keys() == first[1].keys()
    assert len(calls) == 3


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
    not_ours.write_text("{}")
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    assert list(records(results)) == [run_id] and not killed_write.exists() and not_ours.exists()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_a_cells_peak_memory_is_its_own_not_an_earlier_cells():
    """ru_maxrss never goes down: every cell of a process reported the largest peak of any earlier one."""
    import numpy as np

    from core.experiment import peak_rss_mb, start_peak_window

    big = np.ones(400 * 2**20 // 8)  # 400 MB, touched: an earlier cell's peak
    del big
    process_peak = peak_rss_mb("process")
    assert start_peak_window() == "cell"
    small = peak_rss_mb("cell")
    assert small < process_peak - 300  # the window starts at the current size, not the old peak
    more = np.ones(100 * 2**20 // 8)
    assert peak_rss_mb("cell") >= small + 90
    del more


def test_a_cell_takes_zero_shot_measures_on_train_and_accuracies_on_test(monkeypatch, tmp_path):
    """SPEC: the predictors (IIMM, baselines) come from the training split; the accuracies before and after
    from the test split. Only a slow test caught a cell measuring zs_acc on train."""
    import core.embed
    import core.experiment as experiment

    embedded, accuracies = [], []
    real_embed, real_before = core.embed.embed_dataset, experiment.accuracies_before

    def embed(loaded, data, **kw):
        embedded.append((data.meta.get("split"), len(data)))
        return real_embed(loaded, data, **kw)

    def before(loaded, test_data, ood_data, frozen_embeddings):
        accuracies.extend((d.name, d.meta.get("split")) for d in (test_data, *ood_data.values()))
        return real_before(loaded, test_data, ood_data, frozen_embeddings)

    monkeypatch.setattr(core.embed, "embed_dataset", embed)
    monkeypatch.setattr(experiment, "accuracies_before", before)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert embedded[0] == ("train", 1500)  # the zero-shot block: IIMM and the baselines
    assert accuracies == [("shape-size", "test"), ("scene-kind", "test")]


def test_accuracies_before_and_after_come_from_one_scoring_path(monkeypatch, tmp_path):
    """A shipped zero-shot record had +0.125 in-domain gain: the accuracy before came from NumPy's cosine
    argmax, the one after from the model's logits, and a near-tie broke the two ways. Here the NumPy path is
    made to disagree on purpose; a method that trains nothing must still gain exactly 0, in and out of domain."""
    import core.experiment as experiment
    from core import metrics

    real = metrics.zero_shot_accuracy
    monkeypatch.setattr(metrics, "zero_shot_accuracy", lambda *a: real(*a) + 0.125)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["zs_acc"] == record["ft_acc"] and record["id_gain"] == 0.0
    assert record["ood_before"] == record["ood_after"] and record["ood_change"] == 0.0


@pytest.mark.skipif(not __import__("shutil").which("git"), reason="needs git")
def test_git_revision_is_unknown_unless_the_code_is_its_own_checkout(tmp_path, monkeypatch):
    # a copy without .git inside another repository recorded that repository's commit; a repository without
    # commits recorded "HEAD+dirty" (git prints the name it could not resolve)
    from core import experiment

    def git(cwd, *args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout

    outer, inner, empty = tmp_path / "outer", tmp_path / "outer" / "copy", tmp_path / "empty"
    for folder in (inner, empty):
        folder.mkdir(parents=True)
        (folder / "f.py").write_text("x = 1\n")
    git(outer, "init", "-q")
    git(outer, "commit", "-q", "--allow-empty", "-m", "outer")
    git(empty, "init", "-q")
    git(empty, "add", "f.py")
    cases = {inner: "unknown", empty: "unknown", outer: git(outer, "rev-parse", "HEAD").strip()}
    try:
        for root, expected in cases.items():
            monkeypatch.setattr(experiment, "REPO_ROOT", root.resolve())
            experiment.git_revision.cache_clear()
            assert experiment.git_revision() == expected, root
    finally:
        experiment.git_revision.cache_clear()


@pytest.mark.parametrize("train", [5, "lr", [1]])
def test_a_methods_train_key_that_is_not_a_table_is_named(train, known):
    """[method.lora] train = 5 raised a bare TypeError (a traceback from jobs.grid); train = "lr" was
    reported as unknown settings ['l', 'r']."""
    data = {"models": ["m"], "datasets": ["letters"], "methods": ["lora"], "method": {"lora": {"train": train}}}
    with pytest.raises(GridConfigError, match=r"\[method.lora\] key 'train' must be a table"):
        parse_grid(data, **known)


@pytest.mark.parametrize("extra, match", [({"methods": ["lora", "bitfit", "lora"]}, "'methods' lists 'lora' more"),
                                          ({"seeds": [0, 1, 0]}, "'seeds' lists 0 more"),
                                          ({"datasets": ["letters", "letters"]}, "'datasets' lists 'letters'"),
                                          ({"sweep": {"lora.rank": [4, 8, 4]}}, "sweep lora.rank lists 4 more")])
def test_a_name_or_value_listed_twice_is_refused(extra, match, known):
    """Repeats made cells with one id: counted twice, run once, and with workers the copy could come back as
    'held by another runner' (exit code 3)."""
    data = {"models": ["m"], "datasets": ["letters"], "methods": ["lora", "bitfit"], **extra}
    with pytest.raises(GridConfigError, match=match):
        parse_grid(data, **known)


def test_only_datasets_may_be_folders(known):
    """The "folder:" exemption of the dataset check also let a method "folder:lora" through: preflight then
    ended in a bare KeyError traceback."""
    with pytest.raises(GridConfigError, match="unknown method 'folder:lora'"):
        parse_grid({"models": ["m"], "datasets": ["letters"], "methods": ["folder:lora"]}, **known)
    grid = parse_grid({"models": ["m"], "datasets": ["folder:/data/x"], "methods": ["lora"]}, **known)
    assert grid.cells[0]["dataset"] == "folder:/data/x"
