"""The jobs' shared exit-code convention (jobs/cli.py, README "Exit codes"): the same situation gives every job
the same code, stream and kind of message."""
import importlib

import pytest

from jobs import cli
from tests.grid_helpers import write_grid
from tests.log_helpers import fresh_process_logging

#: Every job that reads runs from a folder, with the arguments that point it at ``{folder}`` (and, where it
#: writes, at an output under ``{tmp}``).
FOLDER_JOBS = [
    ("predictors", ["--results", "{folder}", "--out", "{tmp}/p.csv"]),
    ("ingest", ["{folder}", "--into", "{tmp}/store"]),
    ("export", ["--results", "{folder}", "-o", "{tmp}/runs.csv"]),
    ("check_before", ["{folder}"]),
    ("grid_report", ["--results", "{folder}"]),
    ("peft_check", ["--results", "{folder}"]),
    ("bench_cell", ["{folder}"]),
    ("world_v2_report", ["--results", "{folder}", "--out", "{tmp}/report"]),
]


def _main(job_name: str, argv: list[str]) -> int:
    try:
        return importlib.import_module(f"jobs.{job_name}").main(argv)
    except SystemExit as stop:  # argparse's own refusal
        return stop.code


@pytest.mark.parametrize("job_name, argv", FOLDER_JOBS)
def test_an_input_folder_without_runs_is_exit_2_naming_the_folder(tmp_path, capsys, job_name, argv):
    """Was: predictors and ingest exit 1, check_before and export exit 0 ("0 of 0 records differ", a CSV header
    alone), and grid_report, peft_check and bench_cell named no folder."""
    folder = tmp_path / "no-runs"
    folder.mkdir()
    code = _main(job_name, [a.format(folder=folder, tmp=tmp_path) for a in argv])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR, (code, err)
    assert out == "" and err.startswith("error: no ") and len(err.splitlines()) == 1, err
    assert f"in {folder}: " in err and "Traceback" not in err  # where, then what to do
    # nothing written: no output of any case (predictors' p.csv and its sibling tables, ingest's store,
    # world_v2_report's folder, export's runs.csv), and nothing in the input folder
    assert [p.name for p in tmp_path.iterdir()] == ["no-runs"] and not list(folder.iterdir())


@pytest.mark.parametrize("job_name, argv", FOLDER_JOBS)
def test_a_missing_input_folder_is_exit_2_naming_it(tmp_path, capsys, job_name, argv):
    missing = tmp_path / "missing"
    code = _main(job_name, [a.format(folder=missing, tmp=tmp_path) for a in argv])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR and out == "" and err.startswith("error: ") and str(missing) in err, err
    assert not err.startswith("error: no ") and "Traceback" not in err  # missing, not read as empty


def test_the_no_runs_message_names_the_default_store_without_folders():
    assert str(cli.no_runs("runs", None)).startswith("no runs in the app's store (")
    assert str(cli.no_runs("runs", ["a", "b"], "do this")) == "no runs in a, b: do this"


#: Every job that writes a file or a folder the user names, with the arguments that point it at ``{out}`` (its
#: input a fixture store at ``{runs}``, one record ``{record}`` of it or a zip ``{zip}``).
OUTPUT_JOBS = [
    ("predictors", ["--results", "{runs}", "--out", "{out}"], "--out"),
    ("grid_report", ["--results", "{runs}", "--out", "{out}"], "--out"),
    ("export", ["--results", "{runs}", "-o", "{out}"], "-o"),
    ("check_before", ["{runs}", "--out", "{out}"], "--out"),
    ("reproduce", ["{record}", "--out", "{out}"], "--out"),
    ("ingest", ["{runs}", "--into", "{out}"], "--into"),
    ("submit", ["{zip}", "--into", "{out}"], "--into"),
]


def _inputs(tmp_path):
    import zipfile

    from tests.fixtures import write_fixture_store

    records = write_fixture_store(tmp_path / "runs", n_datasets=2, methods=("full",))
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        archive.write(records[0], records[0].name)
    return {"runs": tmp_path / "runs", "record": records[0], "zip": tmp_path / "s.zip"}


@pytest.mark.parametrize("job_name, argv, flag", OUTPUT_JOBS)
def test_an_output_under_a_file_is_exit_2_naming_the_file_in_the_way(tmp_path, capsys, monkeypatch, job_name, argv,
                                                                     flag):
    """Was: grid_report and export said "its folder does not exist" and check_before and reproduce "the folder …
    does not exist" (a file was in the way, not a missing folder); ingest and submit said "[Errno 20] Not a
    directory" with no option named. Checked before the work: nothing runs, nothing is printed."""
    monkeypatch.setenv("IIMM_SUBMISSIONS", str(tmp_path / "submissions"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    out = blocker / "sub" / "out.csv"
    code = _main(job_name, [a.format(out=out, **_inputs(tmp_path)) for a in argv])
    printed, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR and printed == "", (code, err)
    assert err.startswith(f"error: {flag} {out}: {blocker} is a file, not a folder") and len(err.splitlines()) == 1
    assert not list((tmp_path / "runs").glob("*.csv")) and not (tmp_path / "submissions").exists()


@pytest.mark.parametrize("job_name, argv", [("grid_report", ["--results", "{runs}", "--out", "{out}"]),
                                            ("export", ["--results", "{runs}", "-o", "{out}"])])
def test_an_outputs_missing_folders_are_made_as_in_every_job(tmp_path, capsys, job_name, argv):
    """Was: refused ("its folder does not exist") by these jobs, made by jobs.predictors and jobs.fault_injection."""
    out = tmp_path / "new" / "sub" / "out.txt"
    assert _main(job_name, [a.format(out=out, **_inputs(tmp_path)) for a in argv]) == 0, capsys.readouterr().err
    assert out.stat().st_size > 0


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("job_name, where", [("bench_store", "synthetic_records"), ("bench_app", "bench_leaderboard")])
def test_ctrl_c_in_a_long_benchmark_is_one_line_and_exit_130(monkeypatch, capsys, job_name, where):
    """Was: a KeyboardInterrupt traceback (these two mains were not wrapped by jobs.cli.user_facing)."""
    job = importlib.import_module(f"jobs.{job_name}")
    monkeypatch.setattr(job, where, _interrupt)
    try:
        code = job.main([])
    except KeyboardInterrupt:  # caught here, or it would end the whole test session
        pytest.fail("Ctrl-C left the job as a KeyboardInterrupt (a traceback on the command line)")
    assert code == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted\n"


def test_jobs_bench_stops_at_ctrl_c_and_keeps_the_worst_code(monkeypatch, capsys):
    """Was: a part's Ctrl-C (its main answers exit 130) started the next part, and codes were OR'd (1 | 2 = 3,
    which reads as "incomplete")."""
    from types import SimpleNamespace

    from jobs import bench

    ran: list[str] = []
    codes = {}
    monkeypatch.setattr(bench.importlib, "import_module", lambda name: SimpleNamespace(
        main=lambda argv: ran.append(name) or codes[name]))
    codes.update({"jobs.bench_metrics": 1, "jobs.bench_embed": 2})
    assert bench.main(["--only", "bench_metrics", "--only", "bench_embed"]) == 2
    ran.clear()
    codes.update({"jobs.bench_metrics": cli.EXIT_INTERRUPTED})
    assert bench.main(["--only", "bench_metrics", "--only", "bench_embed"]) == cli.EXIT_INTERRUPTED
    assert ran == ["jobs.bench_metrics"]


def test_refused_records_are_exit_1_with_one_error_line_in_ingest_and_submit(tmp_path, capsys, monkeypatch):
    """Was: jobs.ingest said so on stderr only when no record was stored, and jobs.submit never (exit 1, stderr
    empty), so a script saw a failure with no reason where it reads them."""
    import json
    import zipfile

    from jobs import ingest, submit
    from tests.fixtures import make_fixture_records

    monkeypatch.setenv("IIMM_SUBMISSIONS", str(tmp_path / "submissions"))
    good, other = make_fixture_records(n_datasets=2, methods=("full",))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "good.json").write_text(json.dumps(good), encoding="utf-8")
    (tmp_path / "in" / "bad.json").write_text(json.dumps(dict(other, status="weird")), encoding="utf-8")
    assert ingest.main([str(tmp_path / "in"), "--into", str(tmp_path / "store")]) == cli.EXIT_FAILED
    printed, err = capsys.readouterr()
    assert "refused" in printed and err == (f"error: 1 of 2 record(s) in {tmp_path / 'in'} refused (refusals above), "
                                            "the other 1 stored; mend the refused ones and run again (stored ones are "
                                            "no-ops)\n")
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        archive.writestr("bad.json", json.dumps(dict(other, status="weird")))
    assert submit.main([str(tmp_path / "s.zip")]) == cli.EXIT_FAILED
    printed, err = capsys.readouterr()
    assert "0 accepted, 1 refused" in printed
    assert err.startswith(f"error: none of the 1 record(s) in {tmp_path / 's.zip'} was stored (refusals above)")


def test_an_output_folder_under_a_file_names_the_file_in_the_way(tmp_path, capsys):
    """Was "--out: cannot write in a-file/report (Not a directory)": which part is not a directory was left to
    guess (the jobs that make an output folder: world_v2_report, world_check, pretrain)."""
    from jobs import world_v2_report

    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    out = tmp_path / "a-file" / "report"
    code = world_v2_report.main(["--results", "jobs/results/world-v2", "--out", str(out)])
    err = capsys.readouterr().err  # as every job's output under a file (test_an_output_under_a_file_is_exit_2_…)
    assert code == cli.EXIT_USER_ERROR and err.startswith(f"error: --out {out}: {tmp_path / 'a-file'} is a file, "
                                                          "not a folder"), err
    assert len(err.splitlines()) == 1


def test_bench_cell_says_what_is_wrong_with_a_record_not_that_the_folder_has_no_cells(tmp_path, capsys):
    """Was: any ValueError of the overhead table, such as a record's unreadable wall time, was reported as 'no
    successful training cells with timings in DIR: name a results folder that holds grid records', of a folder
    that holds them."""
    from core import schema, store
    from jobs import bench_cell
    from tests.fixtures import make_fixture_records

    for record in make_fixture_records(n_datasets=2, methods=("full",)):
        timings = dict(record.get("provenance") or {}, wall_time_s="slow", train={"train_time_s": 1.0})
        store.write_record(schema.validate_record(dict(record, provenance=timings)), tmp_path / "runs")
    assert bench_cell.main([str(tmp_path / "runs")]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert not err.startswith("error: no ") and "'slow'" in err, err


@pytest.mark.parametrize("argv, line", [
    (["{grid}", "--results", "{tmp}/r", "--workers", "0"], "error: --workers must be at least 1"),
    (["{grid}", "--results", "/"], "error: --results: / is the file-system root or your home folder, not a results "
                                   "folder"),
    (["{tmp}/nowhere.toml", "--results", "{tmp}/r"], "error: "),
])
def test_the_grids_user_errors_are_a_plain_error_line_as_every_jobs(tmp_path, capsys, caplog, argv, line):
    """jobs.grid logged its refusals in its progress format, ``2026-12-07T20:49:42.985+00:00 error: …``, where every
    other job (and README's "Exit codes") answers one line beginning ``error:``; its progress lines keep their time."""
    names = {"grid": write_grid(tmp_path, methods='["zero_shot"]'), "tmp": tmp_path}
    with fresh_process_logging(caplog, "jobs.grid"):  # else its log lines reach no stream here
        code = _main("grid", [a.format(**names) for a in argv])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_USER_ERROR and out == "", (code, err)
    *progress, said = err.splitlines()
    assert said.startswith(line) and "Traceback" not in err, err
    assert all(text[:4].isdigit() and " error: " not in text for text in progress), err  # "reading …", timed
