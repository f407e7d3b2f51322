"""The pre-registered world-v2 analysis on synthetic runs whose answer is known."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.data import world2
from jobs import world_v2_report as rep
from tests.log_helpers import fresh_process_logging


def _runs(models, gain_slope: float, ood_slope: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in models:
        for method in rep.STUDY_METHODS:
            for name in world2.FINETUNE_TASKS:
                iimm = rng.uniform(0.4, 0.8)
                rows.append({"model_key": model, "method": method, "dataset": name, "iimm": iimm,
                             "inter_modal": iimm - 0.2, "intra_image": iimm + 0.2, "zs_acc": rng.uniform(20, 90),
                             "id_gain": gain_slope * iimm * 100 + rng.normal(0, 1),
                             "ood_change": ood_slope * iimm * 10 + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_the_claim_holding_is_called_supported():
    tab = rep.method_table(_runs(rep.LONG_TAILED, 1.0, -1.0), n_boot=100)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(tab)}
    assert crit == {"F1": False, "F2": False, "F3": False, "Support:": True}
    assert (tab["tau_id_gain"] > 0.8).all() and (tab["tau_ood_change"] < -0.5).all()


def test_no_relation_falsifies_and_missing_models_stay_undecided():
    tab = rep.method_table(_runs(rep.LONG_TAILED, 0.0, 0.0), n_boot=100)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(tab)}
    assert crit["F1"] is True and crit["Support:"] is False
    only_a = rep.method_table(_runs([rep.MODEL_A], 1.0, -1.0), n_boot=50)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(only_a)}
    assert crit["F2"] is None and crit["Support:"] is None
    assert "not decidable yet" in rep.markdown(only_a, rep.criteria(only_a), 200, 50)


def test_partial_tau_removes_a_shared_cause():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    x, y = z + rng.normal(0, 0.3, 200), z + rng.normal(0, 0.3, 200)
    assert rep.partial_tau(x, y, z) < 0.5 * rep.kendall_tau(x, y)


def test_duplicate_runs_are_refused():
    runs = _runs([rep.MODEL_A], 1.0, -1.0)
    with pytest.raises(ValueError, match="one run per task"):
        rep.method_table(pd.concat([runs, runs.iloc[:1]]), n_boot=10)


def test_a_missing_outcome_is_named_not_a_bare_finiteness_error():
    runs = _runs([rep.MODEL_A], 1.0, -1.0)
    task = world2.FINETUNE_TASKS[3]
    runs.loc[(runs["method"] == "lora") & (runs["dataset"] == task), "ood_change"] = np.nan  # no OOD panel result
    with pytest.raises(ValueError, match=rf"{rep.MODEL_A}/lora: ood_change is missing for task\(s\) {task}"):
        rep.method_table(runs, n_boot=20)


def test_ceilings_take_each_tasks_best_run_and_count_the_bar():
    names = world2.FINETUNE_TASKS[:3]
    runs = pd.DataFrame([
        {"dataset": names[0], "model_key": "a", "method": "full_ft", "ft_acc": 96.0},
        {"dataset": names[0], "model_key": "c", "method": "lora", "ft_acc": 99.5},
        {"dataset": names[1], "model_key": "a", "method": "full_ft", "ft_acc": 94.9},
        {"dataset": names[2], "model_key": "a", "method": "bitfit", "ft_acc": 95.0},
    ])
    got = rep.ceilings(runs.iloc[::-1].reset_index(drop=True))
    assert list(got["task"]) == list(names)  # the registry's order, not the records'
    assert list(got["ceiling"]) == [99.5, 94.9, 95.0] and list(got["reaches"]) == [True, False, True]
    assert (got.iloc[0]["model"], got.iloc[0]["method"], got.iloc[0]["runs"]) == ("c", "lora", 2)
    text = rep.markdown(rep.method_table(_runs([rep.MODEL_A], 1.0, -1.0), n_boot=20), [], 3, 20, ceiling=got)
    assert "2 of 3 tasks reach >= 95 %" in text


def _check_rows(model: str, coverage_moves: bool) -> list[dict]:
    rows = []
    for i, name in enumerate(world2.FINETUNE_TASKS):
        task = world2.get_task(name)
        cov = (i // 4) / 10 if model != rep.CONTROL else 0.1
        signal = cov if coverage_moves else (i % 4) / 10
        rows.append({"model": model, "task": name, "subworld": task.subworld, "coverage": cov,
                     "zs_acc": 50 + 100 * signal, "intra_image": 0.9 - signal})
    return rows


def test_the_report_says_when_the_manipulation_check_failed(tmp_path):
    assert rep.manipulation_verdict(tmp_path)[0] is None
    for moves, expected in ((True, True), (False, False)):
        rows = _check_rows(rep.CONTROL, True) + [r for m in rep.LONG_TAILED for r in _check_rows(m, moves)]
        pd.DataFrame(rows).to_csv(tmp_path / "manipulation-check.csv", index=False)
        passed, sentence = rep.manipulation_verdict(tmp_path)
        assert passed is expected
        assert ("Not a test of the claim" in sentence) is (not expected)


def test_the_shipped_manipulation_check_is_read_as_failed():
    passed, sentence = rep.manipulation_verdict(Path(__file__).resolve().parent.parent / "jobs" / "results" / "world-v2")
    assert passed is False and "worldclip-v2-a: coverage does NOT move intra-image" in sentence


SHIPPED_CHECK = Path(__file__).resolve().parent.parent / "jobs" / "results" / "world-v2" / "manipulation-check.csv"


def _damaged(kind: str) -> bytes:
    text = SHIPPED_CHECK.read_bytes()
    lines = text.splitlines(keepends=True)
    return {"foreign columns": b"a,b\n1,2\n",
            "empty": b"",
            "cut mid-row": text[:len(text) - 30],
            "20 of 40 tasks": b"".join(lines[:141]),
            "a task twice": text + lines[5],
            "unknown model": text + lines[5].replace(b"worldclip-v2-a,", b"worldclip-v2-z,", 1),
            "not a number": b"".join(lines[:3] + [lines[3].replace(b",0.034873,", b",n/a,", 1)] + lines[4:]),
            }[kind]


@pytest.mark.parametrize("kind, match", [
    ("foreign columns", "lacks the column"), ("empty", "is empty"), ("cut mid-row", "cut short"),
    ("20 of 40 tasks", r"worldclip-v2-d has only 20 of its 40 tasks"), ("a task twice", "twice"),
    ("unknown model", "worldclip-v2-z is not a world-v2 model"), ("not a number", "coverage is not a finite number")])
def test_a_damaged_manipulation_check_is_refused_naming_the_file(tmp_path, kind, match):
    (tmp_path / "manipulation-check.csv").write_bytes(_damaged(kind))
    with pytest.raises(ValueError, match=match) as err:
        rep.manipulation_verdict(tmp_path)
    assert "manipulation-check.csv" in str(err.value)


def test_the_report_refuses_a_damaged_check_in_one_line_before_the_bootstrap(tmp_path, monkeypatch, capsys):
    (tmp_path / "manipulation-check.csv").write_bytes(_damaged("foreign columns"))
    monkeypatch.setattr("core.store.load_runs", lambda folders: _runs([rep.MODEL_A], 1.0, -1.0).assign(status="ok"))
    monkeypatch.setattr(rep, "method_table", lambda *a, **k: pytest.fail("bootstrap run before the check was read"))
    assert rep.main(["--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "manipulation-check.csv" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "report.md").exists()


def test_an_input_refused_leaves_a_new_out_folder_unmade(tmp_path, monkeypatch, capsys):
    """Exit 2 writes nothing (jobs.cli): a results folder without world-v2 runs, or with a damaged manipulation
    check, made the --out folder all the same (the check of --out, which makes it, came first)."""
    (tmp_path / "no-runs").mkdir()
    assert rep.main(["--results", str(tmp_path / "no-runs"), "--out", str(tmp_path / "a")]) == 2
    assert capsys.readouterr().err.startswith("error: no successful world-v2 fine-tuning runs in ")
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "manipulation-check.csv").write_bytes(_damaged("foreign columns"))
    monkeypatch.setattr("core.store.load_runs", lambda folders: _runs([rep.MODEL_A], 1.0, -1.0).assign(status="ok"))
    assert rep.main(["--results", str(tmp_path / "damaged"), "--out", str(tmp_path / "b")]) == 2
    assert "manipulation-check.csv" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged", "no-runs"]


def test_the_report_names_the_file_it_wrote_on_stderr(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="jobs.world_v2_report")
    with fresh_process_logging(caplog, "jobs.world_v2_report"):  # else the log lines reach no stream here
        assert rep.main(["--boot", "10", "--out", str(tmp_path / "quick")]) == 0  # the shipped grid, read only
    said = [r.getMessage() for r in caplog.records if r.name == "jobs.world_v2_report"]
    assert said[-1] == f"wrote {tmp_path / 'quick' / 'report.md'}"
    out, err = capsys.readouterr()
    assert out == (tmp_path / "quick" / "report.md").read_text(encoding="utf-8")
    assert err.rstrip().endswith(f" jobs.world_v2_report {said[-1]}"), err


def test_a_check_of_only_the_control_is_incomplete_not_a_crash(tmp_path):
    pd.DataFrame(_check_rows(rep.CONTROL, True)).to_csv(tmp_path / "manipulation-check.csv", index=False)
    passed, sentence = rep.manipulation_verdict(tmp_path)
    assert passed is None and "only the control" in sentence


def test_a_full_disk_keeps_the_old_report(tmp_path, monkeypatch, capsys):
    from tests.fixtures import disk_full_from

    runs = _runs([rep.MODEL_A], 1.0, -1.0).assign(status="ok", ft_acc=90.0)
    monkeypatch.setattr("core.store.load_runs", lambda folders: runs)
    (tmp_path / "report.md").write_text("old report\n", encoding="utf-8")
    disk_full_from(monkeypatch)
    assert rep.main(["--results", str(tmp_path), "--boot", "10"]) == 1  # the work had begun: not exit 2
    assert "stopped after its work had begun: [Errno 28] No space left on device" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]
    assert (tmp_path / "report.md").read_text(encoding="utf-8") == "old report\n"


def test_another_boot_must_not_overwrite_the_shipped_pre_registered_report(tmp_path, monkeypatch, capsys):
    """--boot 10 rewrote jobs/results/world-v2/report.md, the pre-registered analysis (B = 2,000), with a
    10-replicate one. Now it needs --out; the default B still writes beside the records. (A stand-in for the
    shipped folder: a broken guard must not be able to write over the real one while this test fails.)"""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "report.md").write_text("the pre-registered report\n", encoding="utf-8")
    monkeypatch.setattr(rep, "SHIPPED", shipped)
    runs = _runs([rep.MODEL_A], 1.0, -1.0).assign(status="ok", ft_acc=90.0)
    monkeypatch.setattr("core.store.load_runs", lambda folders: runs)
    assert rep.main(["--results", str(shipped), "--boot", "10"]) == 2
    assert "give --out FOLDER" in capsys.readouterr().err
    assert rep.main(["--results", str(tmp_path), "--boot", "0"]) == 2
    assert "--boot must be a positive number" in capsys.readouterr().err
    assert (shipped / "report.md").read_text(encoding="utf-8") == "the pre-registered report\n"
    assert rep.main(["--results", str(shipped), "--boot", "10", "--out", str(tmp_path / "quick")]) == 0
    assert "B = 10." in (tmp_path / "quick" / "report.md").read_text(encoding="utf-8")
    assert (shipped / "report.md").read_text(encoding="utf-8") == "the pre-registered report\n"


def test_the_shipped_report_guard_holds_for_any_other_boot_and_any_spelling_of_its_folder(tmp_path, monkeypatch, capsys):
    """More replicates than pre-registered are as much not the pre-registered analysis as fewer, and a path
    that reaches the shipped folder another way (with '..') is still that folder; an --out that is a file is
    refused by name before the bootstrap. (A stand-in for the shipped folder, as above.)"""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "report.md").write_text("the pre-registered report\n", encoding="utf-8")
    monkeypatch.setattr(rep, "SHIPPED", shipped)
    monkeypatch.setattr(rep, "method_table", lambda *a, **k: pytest.fail("bootstrap run before the refusal"))
    assert rep.main(["--results", str(shipped), "--boot", "5000"]) == 2
    assert "give --out FOLDER" in capsys.readouterr().err
    roundabout = shipped.parent / ".." / shipped.parent.name / shipped.name
    assert rep.main(["--results", str(roundabout), "--boot", "10"]) == 2
    assert "give --out FOLDER" in capsys.readouterr().err
    assert (shipped / "report.md").read_text(encoding="utf-8") == "the pre-registered report\n"
    (tmp_path / "records").mkdir()
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert rep.main(["--results", str(tmp_path / "records"), "--out", str(tmp_path / "a-file")]) == 2
    assert "--out" in (err := capsys.readouterr().err) and "is a file" in err, err
