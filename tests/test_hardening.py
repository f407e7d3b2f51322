"""Input hardening of the jobs: every user mistake ends in one clear message and a non-zero exit."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config_types import check_types
from core.train import TrainRecipe
from jobs import export, grid, grid_report, ingest, predictors, submit, world_report

REPO = Path(__file__).resolve().parent.parent
GRID = """
models = [{model}]
datasets = ["chart-trend"]
methods = ["zero_shot", "bitfit"]
[train]
max_steps = 2
{train}
"""


def _grid(tmp_path: Path, model='"worldclip-tiny-random"', train="") -> list[str]:
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(model=model, train=train), encoding="utf-8")
    return [str(path), "--results", str(tmp_path / "results")]


def _message(capsys, caplog) -> str:
    return capsys.readouterr().err + caplog.text


@pytest.mark.parametrize("model, train, match", [
    ('"no-such-model"', "", "Unknown model 'no-such-model': neither"),  # as typed, no ':random' suffix
    ('"ViT-B-32:no-such-tag"', "", "ViT-B-32"),
    ('"worldclip-tiny-random"', 'lr = "fast"', r"TrainRecipe.lr must be a finite number, got 'fast'"),
    ('"worldclip-tiny-random"', "batch_size = 6.5", r"batch_size must be int, got 6.5"),
    ('"worldclip-tiny-random"', "batch_size = 0", "batch_size must be >= 1"),
    ('"worldclip-tiny-random"', "lrr = 1", "unknown training setting"),
])
def test_grid_rejects_bad_models_and_recipes_before_running(tmp_path, capsys, caplog, model, train, match,
                                                           monkeypatch):
    monkeypatch.setattr("core.models.hub_reachable", lambda *a, **k: False)  # as offline as CI, everywhere
    assert grid.main(_grid(tmp_path, model, train)) == 2
    assert __import__("re").search(match, _message(capsys, caplog))
    assert not list((tmp_path / "results").glob("*.json")), "nothing may run after a rejected config"


def test_grid_rejects_method_settings_of_the_wrong_type(tmp_path, capsys, caplog):
    args = _grid(tmp_path)
    Path(args[0]).write_text(Path(args[0]).read_text(encoding="utf-8").replace('"bitfit"]', '"lora"]') + '[method.lora]\nrank = "4"\n',
                             encoding="utf-8")
    assert grid.main(args) == 2
    assert "LoRAConfig.rank must be int, got '4'" in _message(capsys, caplog)


def test_check_types_accepts_ints_for_floats_and_none_for_optionals():
    check_types(TrainRecipe, {"lr": 1, "max_steps": None, "grad_clip": 0.5, "best_checkpoint": False})
    with pytest.raises(ValueError, match="best_checkpoint must be bool"):
        check_types(TrainRecipe, {"best_checkpoint": "yes"})
    with pytest.raises(ValueError, match="epochs must be int | None"):
        check_types(TrainRecipe, {"epochs": True})


@pytest.mark.parametrize("job, argv, match", [
    (export, ["--results", "{tmp}/missing"], "not found"),
    (export, ["--results", "/", "--compact"], "not a results folder"),
    (predictors, ["--results", "{tmp}/missing"], "not found"),
    (grid_report, ["--results", "{tmp}/missing"], "does not exist"),
    (ingest, ["{tmp}/missing.json", "--into", "{tmp}/store"], "missing.json"),
    (ingest, ["{tmp}", "--into", "/"], "not a results folder"),
    (submit, ["{tmp}/missing.zip"], "missing.zip"),
    (world_report, ["--model", "no-such-model"], "error: Unknown model 'no-such-model': neither"),
])
def test_jobs_answer_user_errors_with_one_message(tmp_path, capsys, caplog, job, argv, match):
    code = job.main([a.format(tmp=tmp_path) for a in argv])
    assert code != 0
    text = _message(capsys, caplog)
    assert match in text and "Traceback" not in text


def test_a_job_run_as_a_command_prints_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('models = ["worldclip-tiny"]\ndatasets = ["letters"]\nmethods = ["bitfit"]\n[train]\nlr = "x"\n',
                   encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("IIMM_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "jobs.grid", str(bad), "--results", str(tmp_path / "r")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "TrainRecipe.lr must be a finite number" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("job_name, argv, match", [
    ("grid_report", ["--results", "{tmp}/missing"], "--results {tmp}/missing does not exist"),
    ("grid_report", ["--results", "{tmp}/a-file"], "--results {tmp}/a-file is a file, not a results folder"),
    ("grid_report", ["--results", "{tmp}"], "no successful runs"),
    ("peft_check", ["--results", "{tmp}/missing"], "--results {tmp}/missing does not exist"),
    ("peft_check", ["--ours", "lora", "--theirs", "lora"], "--ours and --theirs must name two different methods"),
    ("bench_cell", ["{tmp}/missing"], "{tmp}/missing does not exist"),
    ("bench_cell", ["jobs/results/default", "--goal", "-1"], "--goal must be a share in (0, 1]"),
    ("world_v2_report", ["--results", "{tmp}/missing"], "--results {tmp}/missing does not exist"),
    ("check_before", ["{tmp}/missing"], "{tmp}/missing does not exist"),
    ("reproduce", ["{tmp}/missing.json"], "{tmp}/missing.json is not a file"),
    ("reproduce", ["{tmp}/a-file", "--measure-tolerance", "-1"], "--measure-tolerance must be a finite number"),
    ("check_before", ["jobs/results/default", "--cache", "{tmp}/a-file"], "--cache {tmp}/a-file is a file"),
])
def test_report_jobs_name_the_wrong_option_and_exit_2(tmp_path, capsys, caplog, job_name, argv, match):
    import importlib

    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    job = importlib.import_module(f"jobs.{job_name}")
    code = job.main([a.format(tmp=tmp_path) for a in argv])
    text = _message(capsys, caplog)
    assert code == 2 and match.format(tmp=tmp_path) in text and "Traceback" not in text


@pytest.mark.parametrize("job_name, argv, match", [
    ("bench_metrics", ["--sizes", "abc"], "--sizes: expected comma-separated integers, got 'abc'"),
    ("bench_metrics", ["--sizes", "1"], "--sizes: expected integers >= 2"),
    ("bench_embed", ["--models", "nosuch"], "error: Unknown model 'nosuch'"),
    ("bench_methods", ["--methods", "nosuch"], "--methods: unknown method(s) nosuch; known: attention"),
    ("bench_methods", ["--models", "worldclip-tiny-random,nosuch"], "error: Unknown model 'nosuch'"),
    ("bench_pretrain", ["--models", "worldclip-v2-b"], "--models: unknown model(s) worldclip-v2-b; known:"),
])
def test_benchmarks_refuse_bad_arguments_before_timing_anything(capsys, caplog, job_name, argv, match):
    import importlib

    job = importlib.import_module(f"jobs.{job_name}")
    try:
        code = job.main(argv)
    except SystemExit as stop:  # argparse's own refusal
        code = stop.code
    text = _message(capsys, caplog)
    assert code == 2 and match in text and "Traceback" not in text


@pytest.mark.parametrize("job_name", ["submit", "peft_check", "bench_methods"])
def test_help_names_the_command_and_its_description_is_whole(job_name, capsys):
    import importlib

    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"jobs.{job_name}").main(["--help"])
    usage, description = capsys.readouterr().out.split("\n\n")[:2]
    assert done.value.code == 0 and usage.startswith(f"usage: python -m jobs.{job_name}")
    assert " ".join(description.split()).endswith("."), description  # not cut at the docstring's first line


def test_bench_cell_overhead_table_hand_checked():
    import json

    import pandas as pd

    from jobs.bench_cell import overhead_table

    def run(method, wall, train=None, status="ok", cached=False):
        prov = {"wall_time_s": wall, "evaluation_input": "cached image embeddings" if cached else "images"}
        if train is not None:
            prov["train"] = {"train_time_s": train}
        return {"method": method, "status": status, "provenance": json.dumps(prov)}

    runs = pd.DataFrame([run("lora", 10, 8), run("lora", 10, 9), run("linear_probe", 4, 3, cached=True),
                         run("zero_shot", 2, cached=True), run("lora", 10, 1, status="failed")])
    table = overhead_table(runs)
    assert table.loc["lora", "cells"] == 2 and table.loc["lora", "from_cache"] == 0
    assert table.loc["lora", "overhead"] == pytest.approx(0.15) and table.loc["lora", "worst"] == pytest.approx(0.2)
    assert table.loc["linear_probe", "overhead"] == pytest.approx(0.25) and table.loc["linear_probe", "from_cache"] == 1
    total = table.loc["ALL (time-weighted)"]
    assert total["cells"] == 3 and total["from_cache"] == 1 and total["overhead"] == pytest.approx(1 - 20 / 24)
    with pytest.raises(ValueError, match="no successful training cells"):
        overhead_table(runs.iloc[[3, 4]])


@pytest.mark.parametrize("script", ["forecast_replication_summary", "forecast_confirmation_summary",
                                    "forecast_extension_summary"])
def test_summary_scripts_answer_help_and_a_missing_file_without_a_traceback(tmp_path, script):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("IIMM_DEBUG", None)
    run = lambda *argv: subprocess.run([sys.executable, "-m", f"jobs.{script}", *argv], cwd=REPO, env=env,  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    helped = run("--help")
    assert helped.returncode == 0 and "pre-registered" in helped.stdout and "Traceback" not in helped.stderr
    missing = run(str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and f"error: {tmp_path / 'nope.csv'} is not a file" in missing.stderr
    assert "Traceback" not in missing.stderr
    # the predictors.csv beside forecast-rules.csv, or an empty file: a traceback (KeyError 'rule', EmptyDataError)
    (tmp_path / "predictors.csv").write_text("model,pretrained,method,predictor,outcome,status\nm,p,lora,iimm,id_gain,ok\n",
                                             encoding="utf-8")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    for name, says in (("predictors.csv", "is not a forecast-rules table (no rule, n_datasets,"),
                       ("empty.csv", "is not a forecast-rules table (not a CSV table:")):
        wrong = run(str(tmp_path / name))
        assert wrong.returncode == 2 and wrong.stdout == "" and "Traceback" not in wrong.stderr
        assert wrong.stderr.startswith(f"error: {tmp_path / name} {says}") and len(wrong.stderr.splitlines()) == 1


def test_library_modules_of_the_jobs_say_what_to_run_instead():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for module, instead in (("app_server", "jobs.load_test"), ("cli", "jobs.grid --help"),
                            ("grid_preflight", "--dry-run"), ("grid_slurm", "--executor slurm"),
                            ("world2_card", "jobs.world_check --cards"), ("predictor_tables", "jobs.predictors")):
        done = subprocess.run([sys.executable, "-m", f"jobs.{module}", "--help"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "is a library module of the jobs, not a command" in done.stderr, module
        assert instead in done.stderr and "Traceback" not in done.stderr, module


def test_bench_methods_checks_every_model_before_timing_the_first(monkeypatch, capsys):
    from jobs import bench_methods

    timed = []
    monkeypatch.setattr(bench_methods, "bench_one", lambda *a, **k: timed.append(a) or {})
    assert bench_methods.main(["--models", "worldclip-tiny-random,nosuch", "--methods", "bitfit"]) == 2
    assert not timed and "Unknown model 'nosuch'" in capsys.readouterr().err
