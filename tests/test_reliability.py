"""Reliability checks: the fault-injection audit itself, and two runners on one results folder."""
import json
import subprocess

import pytest

from jobs import fault_injection
from jobs.fault_injection import audit, compare
from tests.grid_helpers import REPO, runner_command, write_grid


def _record(run_id: str, **fields) -> dict:
    from tests.fixtures import make_fixture_records

    return {**make_fixture_records(n_datasets=1, methods=("full",))[0], "run_id": run_id, **fields}


def test_audit_flags_temporary_files_foreign_ids_and_unreadable_records(tmp_path):
    from core.store import write_record

    good = _record("a1")
    write_record(good, tmp_path)
    (tmp_path / "b2.json").write_text(json.dumps({**good, "run_id": "zz"}), encoding="utf-8")
    (tmp_path / "c3.json").write_text('{"run_id": "c3", "status": ',
                                      encoding="utf-8")  # a torn write, were it not atomic
    (tmp_path / ".tmp-abc.json").write_text("{}", encoding="utf-8")
    got = audit(tmp_path)
    assert set(got["records"]) == {"a1", "zz"}
    text = " | ".join(got["problems"])
    assert "b2.json: holds run zz" in text and "c3.json: unreadable" in text and ".tmp-abc.json" in text


def test_compare_names_missing_extra_and_changed_cells(tmp_path):
    from core.store import write_record

    reference = {"a1": _record("a1", ft_acc=50.0), "b2": _record("b2")}
    write_record({**reference["a1"], "ft_acc": 51.0, "id_gain": None, "norm_gain": None}, tmp_path)
    write_record(_record("c3"), tmp_path)
    diffs = compare(reference, audit(tmp_path))
    assert "missing cell b2" in diffs and "unexpected cell c3" in diffs
    assert any(d.startswith("cell a1: ft_acc 50.0 != 51.0") for d in diffs)
    assert compare({"c3": _record("c3")}, {"records": {"c3": _record("c3")}, "problems": []}) == []


@pytest.mark.slow
def test_two_runners_on_one_folder_give_one_record_per_cell(tmp_path):
    config = write_grid(tmp_path, methods='["zero_shot", "bitfit", "clip_adapter", "linear_probe"]')
    results = tmp_path / "results"
    cmd, env = runner_command(config, results)
    runners = [subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    logs = [r.communicate(timeout=600)[1] for r in runners]
    codes = [r.returncode for r in runners]
    # 3: that runner found cells the other held (their records came from the other runner, as audited below)
    assert set(codes) <= {0, 3}, logs
    assert all(("being run by another runner" in log) == (code == 3) for code, log in zip(codes, logs)), logs
    got = audit(results)
    assert got["problems"] == [] and len(got["records"]) == 4
    assert all(r["status"] == "ok" for r in got["records"].values())
    assert not list((results / ".locks").glob("*.lock"))  # every lock released


@pytest.mark.parametrize("option,where,says", [
    ("--report", "a-file/sub/report.json", "a-file is a file, not a folder"),
    ("--report", "", "is a folder: name a file"),
    ("--work", "a-file", "a-file is a file, not a folder"),
])
def test_fault_injection_refuses_an_unusable_output_before_any_run(tmp_path, capsys, monkeypatch, option, where,
                                                                   says):
    """An unwritable --report was found only after the ten kills (about 10 min on two cores), and a --work
    that is a file gave "[Errno 17] File exists"; the README promises every job checks its options first."""
    (tmp_path / "a-file").write_text("kept", encoding="utf-8")
    monkeypatch.setattr(fault_injection, "_run", lambda *a, **k: pytest.fail("a run started"))
    args = ["--work", str(tmp_path / "work"), option, str(tmp_path / where)]
    assert fault_injection.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and says in err and "\n" not in err
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "kept" and not (tmp_path / "work").exists()


def test_fault_injection_never_empties_a_folder_it_did_not_make(tmp_path, capsys, monkeypatch):
    """--work is emptied: `--work .` deleted the checkout. Only a new, empty or earlier --work folder is used."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("kept", encoding="utf-8")
    monkeypatch.setattr(fault_injection, "_run", lambda *a, **k: pytest.fail("a run started"))
    assert fault_injection.main(["--work", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "holds files this job did not make" in err and "\n" not in err
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "kept"
    earlier = tmp_path / "earlier"  # a folder an earlier run made is emptied and used again
    earlier.mkdir()
    (earlier / fault_injection.WORK_MARK).write_text("", encoding="utf-8")
    (earlier / "old.log").write_text("old", encoding="utf-8")
    monkeypatch.setattr(fault_injection, "_run", _stop_at_first_run)
    with pytest.raises(_FirstRun):
        fault_injection.main(["--work", str(earlier)])
    assert not (earlier / "old.log").exists() and (earlier / fault_injection.WORK_MARK).exists()
    default = tmp_path / fault_injection.DEFAULT_WORK  # the job's own folder, left unmarked by older runs
    default.mkdir(parents=True)
    (default / "old.log").write_text("old", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(_FirstRun):
        fault_injection.main([])
    assert not (default / "old.log").exists()


class _FirstRun(Exception):
    pass


def _stop_at_first_run(*args, **kwargs):
    raise _FirstRun
