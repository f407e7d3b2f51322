"""Which stream each job's lines reach, as in a fresh process: progress and log lines on stderr, results (tables,
reports, the paths a job wrote where its help says so) on stdout (jobs/cli.py; README "Exit codes": "Results go to
stdout"), so that ``python -m jobs.export … > out.txt`` keeps the results alone and ``2> log`` the progress.

Run in-process, pytest's handlers on the root logger made every job's ``logging.basicConfig`` do nothing, so a
job that logged on stdout passed: each run here has a bare root logger (tests.log_helpers.fresh_process_logging).
jobs.predictors, jobs.world_check and jobs.world_v2_report are checked so in their own test files."""
from __future__ import annotations

import importlib
import shutil
import zipfile
from pathlib import Path

import pytest

from tests.grid_helpers import REPO, write_grid
from tests.log_helpers import fresh_process_logging

SHIPPED = REPO / "jobs/results/default/f524b09490248266.json"  # zero_shot on bar-count, seed 0 (world v1)
TINY_PRETRAIN = ["--steps", "2", "--batch", "8", "--warmup", "1", "--threads", "1", "--ckpt-every", "1"]


def _inputs(tmp_path: Path) -> dict[str, Path]:
    """A fixture store ``{runs}``, a folder ``{mixed}`` with one record to refuse, a zip ``{zip}`` of a record to
    refuse, a one-cell grid ``{grid}``, an image sample ``{sample}``, a copy of a shipped record ``{record}`` in a
    folder ``{shipped}``."""
    from tests.fixtures import write_fixture_store

    records = write_fixture_store(tmp_path / "runs", n_datasets=2, methods=("full",))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(records[0], mixed)
    (mixed / "junk.json").write_text('{"x": 1}', encoding="utf-8")
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        archive.write(mixed / "junk.json", "junk.json")
    from tests.app_helpers import sample_zip

    (tmp_path / "sample.zip").write_bytes(sample_zip())
    (tmp_path / "shipped").mkdir()
    record = Path(shutil.copy(SHIPPED, tmp_path / "shipped"))
    return {"runs": tmp_path / "runs", "mixed": mixed, "zip": tmp_path / "s.zip", "record": record,
            "shipped": tmp_path / "shipped", "grid": write_grid(tmp_path, methods='["zero_shot"]'),
            "sample": tmp_path / "sample.zip", "tmp": tmp_path}


def _split_audit_says_every_step(monkeypatch):
    from jobs import split_audit

    monkeypatch.setattr(split_audit, "PROGRESS_EVERY_S", 0.0)  # else it is silent for the first 10 s


slow = pytest.mark.slow
#: (job, argv, exit code, lines or parts of lines on stdout alone, on stderr alone, what to set up first)
CASES = [
    pytest.param("export", ["--results", "{runs}"], 0, ["run_id,model,"], ["exported 2 runs as csv"], None,
                 id="export-to-stdout"),
    pytest.param("export", ["--results", "{runs}", "-o", "{tmp}/runs.csv"], 0, [],
                 ["exported 2 runs as csv to "], None, id="export-to-file"),
    pytest.param("grid_report", ["--results", "{runs}", "--out", "{tmp}/report.md"], 0, ["| method |"],
                 ["wrote {tmp}/report.md"], None, id="grid_report"),
    pytest.param("ingest", ["{mixed}", "--into", "{tmp}/store"], 1,
                 ["1 accepted, 1 refused", "refused {mixed}/junk.json: record is missing"],
                 ["error: 1 of 2 record(s) in {mixed} refused"], None, id="ingest"),
    pytest.param("submit", ["{zip}", "--into", "{tmp}/store"], 1,
                 ["0 accepted, 1 refused", "refused junk.json: record is missing"],
                 ["error: none of the 1 record(s) in {zip} was stored"], None, id="submit"),
    pytest.param("split_audit", ["shape-size", "--ood", "printed-digits"], 0,
                 ["3 image set(s), 2700 images", "no exact duplicate"], ["split_audit splits: 0 of "],
                 _split_audit_says_every_step, id="split_audit"),
    pytest.param("grid", ["{grid}", "--results", "{tmp}/grid-results", "--dry-run"], 0,
                 [" worldclip-tiny-random / chart-trend / zero_shot / seed 0"],
                 ["checking every cell before running any", "preflight: building each method once"], None,
                 id="grid-dry-run"),
    pytest.param("forecast", ["{sample}", "--model", "worldclip-tiny-random", "--results", "{runs}", "--out",
                              "{tmp}/forecast.csv"], 3,
                 ["IIMM ", "No reference runs for worldclip-tiny (random)", "make them with: "],
                 ["embedding 18 images", "wrote {tmp}/forecast.csv"], None, id="forecast", marks=slow),
    pytest.param("bench_store", ["--runs", "200", "--json-files", "2"], 0, ["load_runs (cold)"], [], None,
                 id="bench_store"),
    pytest.param("peft_check", [], 0, ["paired runs on"], [], None, id="peft_check"),
    pytest.param("grid", ["{grid}", "--results", "{tmp}/grid-results"], 0, [],
                 ["running worldclip-tiny-random / chart-trend / zero_shot / seed 0", "[1/1] done: ",
                  "its records are in {tmp}/grid-results"], None, id="grid", marks=slow),
    pytest.param("check_before", ["{shipped}", "--out", "{tmp}/differ.csv"], 0,
                 ["0 of 1 ok records differ", "wrote the differing values to {tmp}/differ.csv"],
                 ["worldclip-tiny on bar-count: "], None, id="check_before", marks=slow),
    pytest.param("reproduce", ["{record}", "--out", "{tmp}/differ.csv"], 0,
                 ["zero_shot on bar-count, seed 0): reproduces", "1 of 1 records reproduce",
                  "wrote the differing values to {tmp}/differ.csv"],
                 ["zero_shot on bar-count, seed 0): running its cell again"], None, id="reproduce", marks=slow),
    pytest.param("pretrain", [*TINY_PRETRAIN, "--work", "{tmp}/work", "--out", "{tmp}/w.safetensors"], 0, [],
                 ["jobs.pretrain saved {tmp}/w.safetensors"], None, id="pretrain", marks=slow),
]


@pytest.mark.parametrize("job_name, argv, code, on_stdout, on_stderr, setup", CASES)
def test_progress_and_logs_go_to_stderr_and_results_to_stdout(tmp_path, monkeypatch, capsys, caplog, job_name, argv,
                                                               code, on_stdout, on_stderr, setup):
    monkeypatch.setenv("IIMM_SUBMISSIONS", str(tmp_path / "store"))
    if setup is not None:
        setup(monkeypatch)
    names = _inputs(tmp_path)
    job = importlib.import_module(f"jobs.{job_name}")
    with fresh_process_logging(caplog, f"jobs.{job_name}"):
        got = job.main([a.format(**names) for a in argv])
    out, err = capsys.readouterr()
    assert got == code, err
    for part in on_stdout:
        part = part.format(**names)
        assert part in out and part not in err, (part, out, err)
    for part in on_stderr:
        part = part.format(**names)
        assert part in err and part not in out, (part, out, err)
    if not on_stdout:  # writes files only: stdout stays empty
        assert out == "", out
    if not on_stderr:  # a report and nothing else
        assert err == "", err
    both = {line for line in out.splitlines() if line.strip()} & set(err.splitlines())
    assert not both, both  # no line on both streams
