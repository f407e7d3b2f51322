"""jobs.predictors on the fixture store (tests/predictor_helpers.py): the predictor that *is* the outcome must
win; one seed gives point values; comparing selection rules; too few datasets; exit codes, and options refused
before anything is written."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import predictor_eval as pe
from jobs import predictors as job
from tests.log_helpers import fresh_process_logging
from tests.predictor_helpers import N_SETS, ZS_TEST, _one_line_error, _records, _run, _store


@pytest.mark.parametrize("chosen,independent", [("iimm", "gbc"), ("logme", "iimm")])
def test_exact_predictor_wins_and_independent_one_does_not(tmp_path, capsys, chosen, independent):
    # one-se: on 8 datasets the default (bonferroni over ~100 sets) keeps IIMM even against an exact line
    code, out = _run(tmp_path, _store(tmp_path, _records(chosen, independent)), "--selection-rule", "one-se")
    printed = capsys.readouterr().out
    assert code == 0
    table = pd.read_csv(out)
    assert list(table.columns) == pe.TABLE_COLUMNS
    assert set(table["method"]) == {"full", "bitfit"} and (table["status"] == "ok").all()
    assert set(table["predictor"]) == set(pe.ZERO_SHOT_PREDICTORS) | set(pe.TRANSFERABILITY_PREDICTORS)
    assert (table["n_datasets"] == N_SETS).all() and (table["max_seeds"] == 2).all()
    assert (table["n_runs"] == 2 * N_SETS).all()
    win = table[table["predictor"] == chosen]
    assert len(win) == 6  # 2 methods x 3 outcomes
    assert np.allclose(win["pearson_r"].abs(), 1.0, atol=1e-9)
    assert np.allclose(win["kendall_tau"].abs(), 1.0) and np.allclose(win["r2"], 1.0, atol=1e-9)
    assert np.allclose(win["lodo_mae"], 0.0, atol=1e-8)
    indep = table[table["predictor"] == independent]
    assert (indep["pearson_r"].abs() < 0.5).all() and (indep["kendall_tau"].abs() < 0.2).all()
    assert (indep[indep["outcome"] == "id_gain"]["lodo_mae"] > 1.0).all()
    assert ((-1 <= table["tau_lo"]) & (table["tau_lo"] <= table["tau_hi"]) & (table["tau_hi"] <= 1)).all()
    assert np.allclose(win["tau_lo"], win["kendall_tau"]) and np.allclose(win["tau_hi"], win["kendall_tau"])
    assert (indep["tau_lo"] < 0).all() and (indep["tau_hi"] > 0).all()
    assert table["tau_interval"].str.contains("bootstrap").all()
    assert set(table.loc[table["outcome"] == "norm_gain", "mae_unit"]) == {pe.OUTCOME_UNITS["norm_gain"]}
    for outcome in pe.OUTCOMES:
        ranking = pe.rank_predictors(table, outcome)
        assert ranking.iloc[0]["predictor"] == chosen and ranking.iloc[0]["rank_tau"] == 1
        assert ranking.set_index("predictor").loc[chosen, "rank_mae"] == 1
        assert ranking.set_index("predictor").loc[independent, "rank_tau"] > 1
    id_line = next(line for line in printed.splitlines() if line.startswith("ID gain"))
    assert f"best |tau| {chosen} 1.000" in id_line and f"lowest LODO MAE {chosen} 0.0000" in id_line
    assert ("rank 1 of" in id_line) == (chosen == "iimm")
    assert "bootstrap" in printed
    md = (out.parent / "predictors.md").read_text(encoding="utf-8")
    # predictors, winners, the procedure x2, and the coverage of the procedure on zero-shot measures alone
    assert sum(line.startswith("|---") for line in md.splitlines()) == 5
    assert "The same procedure with the zero-shot measures alone competing" in md
    assert "Jackknife+ intervals (distribution-free) are not finite in any of the" in md  # fewer than 20 datasets
    assert f"best |tau| {chosen}" in md and "**iimm**" in md and "Which predictor wins" in md
    win = pe.winners(table).set_index("outcome")
    assert (win["best_tau"] == chosen).all() and (win["best_mae"] == chosen).all()
    assert (win["best_tau_cells_ci_excludes_0"] == 2).all()  # an exact line: [1, 1] or [-1, -1] in both cells
    selection = pd.read_csv(out.parent / "forecast-selection.csv")
    assert (selection["status"] == "ok").all() and (selection["chosen"] == chosen).all()
    assert np.allclose(selection["nested_lodo_mae"], 0, atol=1e-8)


def test_one_seed_gives_point_values_and_zero_shot_method_is_left_out(tmp_path, capsys):
    recs = _records("iimm", "gbc", seeds=(0,))
    zs_runs = [dict(r, run_id=r["run_id"] + "-zs", method="zero_shot") for r in recs if r["method"] == "full"]
    for r in zs_runs:  # no outcome variance: must not appear
        r.update(ft_acc=ZS_TEST, id_gain=0.0, norm_gain=0.0, ood_change=0.0, ood_after=r["ood_before"])
    failed = dict(recs[0], run_id="failed-1", status="failed", error="boom", ft_acc=None,
                  id_gain=99.0, method="full", dataset="fx-set-0", seed=5)
    md = tmp_path / "elsewhere" / "summary.md"
    code, out = _run(tmp_path, _store(tmp_path, recs + zs_runs + [failed]), "--summary-md", str(md))
    printed = capsys.readouterr().out
    assert code == 0 and md.is_file() and not (out.parent / "predictors.md").exists()
    table = pd.read_csv(out)
    assert "zero_shot" not in set(table["method"]) and (table["n_runs"] == N_SETS).all()
    assert table["tau_lo"].isna().all() and table["tau_hi"].isna().all()
    assert table["tau_interval"].str.contains("one seed").all()
    assert "point values only" in printed and "bootstrap" not in printed


def test_compare_rules_scores_every_rule_on_the_same_runs(tmp_path, capsys):
    root = _store(tmp_path, _records("logme", "iimm", seeds=(0,)))
    code, out = _run(tmp_path, root, "--compare-rules", "--selection-rule", "bonferroni")
    assert code == 0
    md = (out.parent / "forecast-rules.md").read_text(encoding="utf-8")
    for rule in ("one-se", "bonferroni", "gated"):
        assert f"## {rule}\n\n{job.RULE_TEXT[rule]}." in md
    assert md.count("| all outcomes | 6 |") == 3  # 2 methods x 3 outcomes under each rule
    rows = pd.read_csv(out.parent / "forecast-rules.csv")
    assert rows.groupby("rule").size().to_dict() == {"bonferroni": 6, "gated": 6, "one-se": 6}
    selection = pd.read_csv(out.parent / "forecast-selection.csv")
    assert (selection["rule"] == "bonferroni").all()
    # with 8 datasets the corrected margin (t at 0.05 / 190, 7 df) is out of reach even of an exact line
    assert (selection["chosen"] == "iimm").all()
    assert "rule bonferroni" in (out.parent / "predictors.md").read_text(encoding="utf-8")
    capsys.readouterr()
    assert _run(tmp_path, root, "--compare-rules", "--no-selection")[0] == 2
    assert "drop --no-selection" in _one_line_error(capsys)
    with pytest.raises(SystemExit):
        _run(tmp_path, root, "--selection-rule", "best")
    capsys.readouterr()
    assert _run(tmp_path, root, "--compare-rules", "one-se,best")[0] == 2
    assert "unknown selection rule 'best'" in _one_line_error(capsys)


def test_compare_rules_can_name_a_subset_of_rules(tmp_path, capsys):
    root = _store(tmp_path, _records("logme", "iimm", seeds=(0,)))
    code, out = _run(tmp_path, root, "--compare-rules", "bonferroni, one-se")
    assert code == 0
    md = (out.parent / "forecast-rules.md").read_text(encoding="utf-8")
    assert md.index("## bonferroni") < md.index("## one-se") and "## gated" not in md
    rows = pd.read_csv(out.parent / "forecast-rules.csv")
    assert list(dict.fromkeys(rows["rule"])) == ["bonferroni", "one-se"]
    assert (pd.read_csv(out.parent / "forecast-selection.csv")["rule"] == "bonferroni").all()


def test_cells_below_min_datasets_are_listed_but_not_scored(tmp_path, capsys):
    recs = _records("iimm", "gbc", methods=("full",)) + [
        r for r in _records("iimm", "gbc", n_sets=4, methods=("bitfit",))]
    code, out = _run(tmp_path, _store(tmp_path, recs))
    assert code == 0
    table = pd.read_csv(out)
    few = table[table["method"] == "bitfit"]
    assert len(few) and few["status"].str.startswith("too few datasets (n=4").all()
    assert few[["pearson_r", "kendall_tau", "r2", "lodo_mae"]].isna().all().all()
    assert (pe.rank_predictors(table, "id_gain")["n_cells"] == 1).all()


def test_exit_codes(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out = _run(tmp_path, str(empty))
    # no runs to work on is the input's fault, as in every job (jobs.cli's convention; was 1)
    assert code == 2 and not out.exists() and "no ok fine-tuning runs" in _one_line_error(capsys)
    # a missing --results folder is the user's mistake: exit 2, as jobs.cli promises
    code, out = _run(tmp_path, str(tmp_path / "nope"))
    assert code == 2 and not out.exists() and "nope (not found)" in _one_line_error(capsys)
    small = _store(tmp_path, _records("iimm", "gbc", n_sets=4))
    code, out = _run(tmp_path, small)
    assert code == 2 and not out.exists() and "most: 4" in _one_line_error(capsys)  # was 1, likewise
    assert _run(tmp_path, small, "--min-datasets", "2")[0] == 2
    _one_line_error(capsys)


@pytest.mark.parametrize("extra,message", [
    (("--compare-rules", "--no-selection"), "drop --no-selection"),
    (("--compare-rules", "foo"), "unknown selection rule 'foo'"),
    (("--compare-rules", " , "), "name at least one rule"),
    (("--rescore", "--compare-rules", "foo"), "unknown selection rule 'foo'"),  # before any record is rewritten
    (("--summary-md", "{tmp}"), "is a folder: name a file"),
    (("--bootstrap", "10000000"), "--bootstrap must be at most 100000"),  # not an out-of-memory crash later
    (("--bootstrap", "100001"), "--bootstrap must be at most 100000, got 100001"),  # one past the --help's cap
])
def test_bad_options_are_refused_before_anything_is_written(tmp_path, capsys, extra, message):
    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))
    before = sorted(p.read_bytes() for p in Path(root).iterdir())
    code, out = _run(tmp_path, root, *(str(tmp_path) if e == "{tmp}" else e for e in extra))
    assert code == 2 and not out.parent.exists()
    assert message in _one_line_error(capsys)
    assert sorted(p.read_bytes() for p in Path(root).iterdir()) == before


def test_help_describes_the_job_in_a_whole_sentence(capsys):
    with pytest.raises(SystemExit):
        job.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("best: IIMM, its two terms, zero-shot accuracy, the silhouette scores and other zero-shot "
            "measures, and every transferability baseline.") in text


def test_an_output_under_a_file_is_refused_before_anything_is_written(tmp_path, capsys):
    # the CSV and the selection tables were written, then the summary failed with a bare '[Errno 17] File exists'
    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    code, out = _run(tmp_path, root, "--summary-md", str(blocker / "summary.md"))
    assert code == 2 and not out.parent.exists()
    assert f"{blocker} is a file, not a folder" in _one_line_error(capsys)
    code = job.main(["--results", root, "--out", str(blocker / "sub" / "p.csv"), "--bootstrap", "0"])
    assert code == 2 and f"--out {blocker / 'sub' / 'p.csv'}: {blocker} is a file" in _one_line_error(capsys)


@pytest.mark.parametrize("summary,out_name,extra,message", [
    ("{out}", "predictors.csv", (), "--out and the summary (--summary-md) are one file"),
    (None, "predictors.md", (), "--out and the summary (--summary-md) are one file"),
    (None, "forecast-selection.csv", (), "--out and the forecast-selection.csv written beside it are one file"),
    ("forecast-rules.md", "predictors.csv", ("--compare-rules", "one-se"),
     "the summary (--summary-md) and the forecast-rules.md written beside it are one file"),
])
def test_two_outputs_in_one_file_are_refused(tmp_path, capsys, summary, out_name, extra, message):
    # --summary-md naming the CSV wrote the Markdown over it, and exit 0
    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))
    out = tmp_path / "out" / out_name
    md = [] if summary is None else ["--summary-md", str(out if summary == "{out}" else out.with_name(summary))]
    code = job.main(["--results", root, "--out", str(out), "--bootstrap", "0", *md, *extra])
    assert code == 2 and not out.parent.exists()
    assert message in _one_line_error(capsys)
    # a name that only a table not written this time would have is fine
    code = job.main(["--results", root, "--out", str(out.with_name("forecast-rules.csv")), "--bootstrap", "0",
                     "--no-selection"])
    assert code == 0 and out.with_name("forecast-rules.csv").read_text(encoding="utf-8").startswith("model,")


def test_a_forecast_procedure_not_scored_for_too_few_datasets_is_said(tmp_path, capsys):
    # 5 datasets: the predictor table is scored, the procedure (6 needed) is not; exit 0 said nothing of it, even
    # with --compare-rules asked for
    code, out = _run(tmp_path, _store(tmp_path, _records("iimm", "gbc", seeds=(0,), n_sets=5)), "--compare-rules")
    printed = capsys.readouterr().out
    assert code == 0 and out.exists() and not out.with_name("forecast-rules.csv").exists()
    assert ("note: the forecast procedure was not scored (no forecast-selection.csv, forecast-rules.*): no (model, "
            "method) has 6 datasets with the outcome (most: 5)") in printed
    six = tmp_path / "six"
    code, out = _run(six, _store(six, _records("iimm", "gbc", seeds=(0,), n_sets=6)))
    assert code == 0 and "not scored" not in capsys.readouterr().out
    assert out.with_name("forecast-selection.csv").exists()


@pytest.mark.parametrize("flag", ["--out", "--summary-md"])
def test_an_output_in_a_folder_that_cannot_be_written_is_refused_before_the_work(tmp_path, capsys, monkeypatch,
                                                                                 flag):
    """An output whose nearest existing folder this user may not write in was found only when the tables were
    written, after the whole analysis (72 s on the shipped runs); the README promises every job checks its options
    before it computes anything. (A file in the way of its folder: the test above.) Permissions are faked: as
    root, os.access allows everything."""
    import os

    from jobs import cli

    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access
    monkeypatch.setattr(cli.os, "access", lambda p, mode, *a, **k: Path(p) != locked and real(p, mode, *a, **k))
    monkeypatch.setattr(pe, "evaluate_predictors", lambda *a, **k: pytest.fail("the analysis started"))
    code, out = _run(tmp_path, root, flag, str(locked / "sub" / "table.txt"))
    assert code == 2 and f"cannot write in {locked}" in _one_line_error(capsys)
    assert not (locked / "sub").exists()


def test_each_long_stage_says_how_far_it_is_on_stderr_not_stdout(tmp_path, capsys, caplog):
    # on the shipped runs the job was silent for two minutes before its summary
    caplog.set_level(logging.INFO, logger="jobs.predictors")
    with fresh_process_logging(caplog, "jobs.predictors"):  # else the lines reach no stream here
        code, out = _run(tmp_path, _store(tmp_path, _records("iimm", "gbc")))
    assert code == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "jobs.predictors"]
    rows = len(pd.read_csv(out))
    cells = len(pd.read_csv(out.parent / "forecast-selection.csv"))
    for stage, total in (("scoring each predictor", rows), ("scoring the forecast procedure, rule bonferroni", cells),
                         ("forecast procedure on the zero-shot measures alone", cells)):
        said = [line for line in lines if stage in line]
        assert said and re.search(rf": {total} of {total} \(elapsed \d+s, ETA 0s\)$", said[-1]), (stage, said)
    printed, err = capsys.readouterr()
    assert "elapsed" not in printed  # stdout keeps the summary alone
    assert f"INFO jobs.predictors: {said[-1]}" in err.splitlines()  # the progress is on stderr


def test_stage_progress_speaks_first_then_at_most_every_interval_and_last(caplog, monkeypatch):
    clock = iter([0.0, *(float(t) for t in range(100, 1000))])  # a setup of 100 s before the first row
    monkeypatch.setattr(job.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(job, "PROGRESS_EVERY_S", 10.0)
    caplog.set_level(logging.INFO, logger="jobs.predictors")
    report = job.stage_progress("stage")  # started at t=0; the rows one second apart from t=100
    for done in range(1, 31):
        report(done, 30)
    said = [r.getMessage() for r in caplog.records]
    assert said == ["stage: 1 of 30 (elapsed 100s)", "stage: 11 of 30 (elapsed 110s, ETA 19s)",
                    "stage: 21 of 30 (elapsed 120s, ETA 9s)", "stage: 30 of 30 (elapsed 129s, ETA 0s)"]
