"""A system error (a full disk, a folder removed while writing) once a job's work has begun is exit 1, not the
"input cannot be used, nothing computed or written" of exit 2 (jobs/cli.py, README "Exit codes"): the rule of
jobs.cli.user_facing and jobs.cli.work_begins, and the jobs that call it."""
import asyncio
import errno

import pytest

from jobs import cli
from tests.test_job_exit_codes import _main


def _disk_full(path: str = "out.csv") -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", path)


def _fake(before: BaseException | None = None, after: BaseException | None = None) -> cli.JobMain:
    """A wrapped main raising ``before`` ahead of its work_begins call, else ``after`` behind it."""

    @cli.user_facing
    def main(argv: list[str] | None = None) -> int:
        if before is not None:
            raise before
        cli.work_begins()
        if after is not None:
            raise after
        return 0

    return main


def test_an_os_error_is_exit_2_before_the_work_begins_and_exit_1_after(capsys):
    """Was: exit 2 ("nothing was computed or written") however far the job had got."""
    assert _fake(before=FileNotFoundError("--results x does not exist"))([]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: --results x does not exist\n"
    assert _fake(after=_disk_full())([]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err == ("error: the job stopped after its work had begun: [Errno 28] No space left on device: 'out.csv'; "
                   "fix the cause and run the same command again\n")
    assert _fake(after=ValueError("no runs in x"))([]) == cli.EXIT_USER_ERROR  # a user error wherever raised
    assert capsys.readouterr().err == "error: no runs in x\n"
    assert _fake(before=_disk_full())([]) == cli.EXIT_USER_ERROR  # a new call starts before its work again


def test_nested_jobs_each_keep_their_own_begun_work(capsys):
    """A job run inside another (jobs.bench runs its parts' mains) neither takes nor gives the outer one's state."""
    inner_begins = _fake()
    inner_before = _fake(before=_disk_full("inner.csv"))

    @cli.user_facing
    def outer_after(argv: list[str] | None = None) -> int:
        cli.work_begins()
        assert inner_before([]) == cli.EXIT_USER_ERROR  # the outer job's work had begun, the inner one's not
        raise _disk_full("outer.csv")

    @cli.user_facing
    def outer_before(argv: list[str] | None = None) -> int:
        assert inner_begins([]) == 0  # the inner job's work began, the outer one's not
        raise _disk_full("outer.csv")

    assert outer_after([]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: [Errno 28] No space left on device: 'inner.csv'"
    assert err[1].startswith("error: the job stopped after its work had begun: ") and "outer.csv" in err[1]
    assert outer_before([]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err == "error: [Errno 28] No space left on device: 'outer.csv'\n"


def test_work_begun_in_an_asyncio_task_counts_for_its_job(capsys):
    """jobs.load_test says its load begins inside asyncio.run, whose task runs in a copy of the context."""

    async def load() -> None:
        cli.work_begins()

    @cli.user_facing
    def main(argv: list[str] | None = None) -> int:
        asyncio.run(load())
        raise _disk_full("report.json")

    assert main([]) == cli.EXIT_FAILED
    assert "stopped after its work had begun" in capsys.readouterr().err
    cli.work_begins()  # outside any job: does nothing, and no later job starts with its work begun
    assert _fake(before=_disk_full())([]) == cli.EXIT_USER_ERROR


#: Jobs that write their outputs once their work has begun: the arguments that point them at their input
#: ``{runs}`` (a fixture store; ``{zip}`` a zip of one of its records), an output under ``{tmp}``, and the input
#: argument that ``{missing}`` replaces for the exit-2 case.
WRITING_JOBS = [
    ("predictors", ["--results", "{runs}", "--out", "{tmp}/p.csv", "--bootstrap", "0", "--no-selection",
                    "--min-datasets", "3"]),
    ("grid_report", ["--results", "{runs}", "--out", "{tmp}/report.md"]),
    ("export", ["--results", "{runs}", "-o", "{tmp}/runs.csv"]),
    ("check_before", ["{runs}", "--out", "{tmp}/differ.csv"]),
    ("ingest", ["{runs}", "--into", "{tmp}/store"]),
    ("submit", ["{zip}", "--into", "{tmp}/store"]),
    ("world_v2_report", ["--results", "{runs}", "--boot", "10", "--out", "{tmp}/report"]),
]


def _inputs(tmp_path, job_name):
    import shutil
    import zipfile

    from tests.fixtures import write_fixture_store

    if job_name == "world_v2_report":  # world-v2 runs and their manipulation check
        shutil.copytree("jobs/results/world-v2", tmp_path / "runs")
        return {"runs": tmp_path / "runs", "zip": None}
    records = write_fixture_store(tmp_path / "runs", n_datasets=3, methods=("full",))
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as archive:
        archive.write(records[0], records[0].name)
    return {"runs": tmp_path / "runs", "zip": tmp_path / "s.zip"}


@pytest.mark.parametrize("job_name, argv", WRITING_JOBS)
def test_a_full_disk_while_a_job_writes_is_exit_1_and_a_missing_input_still_exit_2(tmp_path, capsys, monkeypatch,
                                                                                  job_name, argv):
    """Was exit 2, "the input cannot be used, and nothing was computed or written", after the job had computed
    (and printed) its results and, for some, written part of them."""
    from tests.fixtures import disk_full_from

    monkeypatch.setenv("IIMM_SUBMISSIONS", str(tmp_path / "submissions"))
    inputs = _inputs(tmp_path, job_name)
    disk_full_from(monkeypatch)  # every file's contents fail to reach the disk, as on a full one
    code = _main(job_name, [a.format(tmp=tmp_path, **inputs) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert code == cli.EXIT_FAILED, (code, err)
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert err[0].startswith("error: the job stopped after its work had begun: ") and "run the same command" in err[0]
    missing = tmp_path / "missing"
    code = _main(job_name, [a.format(tmp=tmp_path, runs=missing, zip=missing) for a in argv])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USER_ERROR and err.startswith("error: ") and str(missing) in err, err
