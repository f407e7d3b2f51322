"""jobs.forecast_test_summary: which pairs are test pairs, and the two criteria, on hand-built rules tables."""
import pandas as pd
import pytest

from jobs.forecast_test_summary import main, parse_pairs, summary_lines

COLUMNS = ["model", "pretrained", "method", "outcome", "status", "n_datasets", "chosen", "nested_lodo_mae",
           "iimm_lodo_mae", "gain_vs_iimm", "coverage", "mean_width", "iimm_coverage", "iimm_mean_width", "level",
           "rule"]


def cell(method, outcome, *, n=40, gain=0.0, coverage=0.95, rule="bonferroni", tag="world-v2-b"):
    """One row of forecast-rules.csv; IIMM-only MAE 2.0, the procedure's 2.0 - gain."""
    return {"model": "m", "pretrained": tag, "method": method, "outcome": outcome, "status": "ok", "n_datasets": n,
            "chosen": "iimm", "nested_lodo_mae": 2.0 - gain, "iimm_lodo_mae": 2.0, "gain_vs_iimm": gain,
            "coverage": coverage, "mean_width": 1.0, "iimm_coverage": coverage, "iimm_mean_width": 1.0,
            "level": 0.95, "rule": rule}


PAIRS = [("world-v2-b", "clip_cite"), ("world-v2-b", "wise_ft")]


def test_a_pair_short_of_its_tasks_is_not_a_test_pair_and_its_cells_do_not_count():
    rows = pd.DataFrame([cell("clip_cite", "id_gain", gain=0.5), cell("clip_cite", "norm_gain", n=33, coverage=0.94),
                         cell("wise_ft", "id_gain", n=39, gain=-3.0, coverage=0.5)], columns=COLUMNS)
    lines = summary_lines(rows, PAIRS, tasks=40, criteria="P")
    assert lines[:2] == ["world-v2-b x clip_cite: test pair", "world-v2-b x wise_ft: not run (fewer than 40 ok tasks)"]
    assert "== bonferroni: 2 test cells" in lines
    # wise_ft's worse cell and its 50 % coverage are left out; the norm-gain cell on 33 tasks stays in
    assert lines[-2] == "P1 (bonferroni no worse than IIMM-only in every test cell): 2 of 2 -> True"
    assert lines[-1].endswith("-> True") and "'norm_gain': 0.94" in lines[-1]


def test_one_worse_cell_or_one_outcome_outside_the_coverage_band_fails_its_criterion():
    rows = pd.DataFrame([cell("clip_cite", "id_gain", gain=-0.01, coverage=0.96),
                         cell("wise_ft", "id_gain", gain=1.0, coverage=0.96),
                         cell("clip_cite", "ood_change", coverage=0.89), cell("wise_ft", "ood_change", coverage=0.89),
                         # another rule's cells are reported but never decide the criteria
                         cell("clip_cite", "id_gain", gain=5.0, rule="one-se")], columns=COLUMNS)
    lines = summary_lines(rows, PAIRS, tasks=40, criteria="P")
    assert "== one-se: 1 test cells" in lines
    assert lines[-2] == "P1 (bonferroni no worse than IIMM-only in every test cell): 3 of 4 -> False"
    assert "'id_gain': 0.96" in lines[-1] and "'ood_change': 0.89" in lines[-1] and lines[-1].endswith("-> False")


def test_no_test_pair_fails_both_criteria_rather_than_passing_them_vacuously():
    rows = pd.DataFrame([cell("clip_cite", "id_gain", n=12)], columns=COLUMNS)
    lines = summary_lines(rows, PAIRS, tasks=40, criteria="P")
    assert lines[-2].endswith("0 of 0 -> False") and lines[-1].endswith("{} -> False")


def test_pairs_are_parsed_in_order_and_bad_ones_refused():
    assert parse_pairs("b:clip_cite, a:wise_ft") == [("b", "clip_cite"), ("a", "wise_ft")]
    with pytest.raises(ValueError, match="'world-v2-b' is not TAG:METHOD"):
        parse_pairs("world-v2-b")
    with pytest.raises(ValueError, match="named twice"):
        parse_pairs("a:m,a:m")
    with pytest.raises(ValueError, match="no gain_vs_iimm column"):
        summary_lines(pd.DataFrame([cell("m", "id_gain")]).drop(columns="gain_vs_iimm"), [("a", "m")], tasks=1,
                      criteria="T")


def test_main_prints_the_summary_and_answers_user_errors_with_exit_2(tmp_path, capsys):
    path = tmp_path / "forecast-rules.csv"
    pd.DataFrame([cell("clip_cite", "id_gain")], columns=COLUMNS).to_csv(path, index=False)
    assert main([str(path), "--pairs", "world-v2-b:clip_cite", "--criteria", "C"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("world-v2-b x clip_cite: test pair\n") and "C1 (bonferroni" in out
    assert main([str(path), "--pairs", "world-v2-b:clip_cite", "--tasks", "0"]) == 2
    assert "--tasks must be at least 1" in capsys.readouterr().err
    assert main([str(tmp_path / "nope.csv"), "--pairs", "a:m"]) == 2
    assert "nope.csv is not a file" in capsys.readouterr().err


def test_spaces_around_the_colon_are_not_part_of_the_names():
    """'world-v2-b: clip_cite' named the method ' clip_cite', which matched no row: the pair was reported
    'not run' and both criteria False, with no error."""
    assert parse_pairs("world-v2-b : clip_cite,world-v2-b:\twise_ft") == PAIRS
    rows = pd.DataFrame([cell("clip_cite", "id_gain")], columns=COLUMNS)
    assert summary_lines(rows, parse_pairs("world-v2-b: clip_cite"), tasks=40, criteria="T")[0] == \
        "world-v2-b x clip_cite: test pair"


def test_a_name_no_row_has_is_warned_about_not_taken_silently_for_a_pair_not_run(tmp_path, capsys):
    """A misspelt method or tag matched no row: the pair read 'not run' and the criteria False, on stdout
    alone. A pre-registered pair may truly not have run, so this is a warning (stderr), not an error."""
    path = tmp_path / "forecast-rules.csv"
    pd.DataFrame([cell("clip_cite", "id_gain"), cell("wise_ft", "id_gain")], columns=COLUMNS).to_csv(path, index=False)
    assert main([str(path), "--pairs", "world-v2-b:clip_cite,world-v2-b:wise_ft"]) == 0
    assert capsys.readouterr().err == ""
    assert main([str(path), "--pairs", "world-v2-b:clipcite,world-v2-x:wise_ft"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("world-v2-b x clipcite: not run (fewer than 40 ok tasks)\n")  # the summary is unchanged
    assert err.splitlines() == [
        "warning: no row of the table has the tag 'world-v2-x' (did you mean 'world-v2-b'?); a pair with it is "
        "reported as not run",
        "warning: no row of the table has the method 'clipcite' (did you mean 'clip_cite'?); a pair with it is "
        "reported as not run"]


def test_a_pair_on_more_tasks_than_tasks_is_not_said_to_have_fewer(tmp_path, capsys):
    """The rule is exactly --tasks ok tasks; a pair on 40 tasks with --tasks 30 was reported 'not run (fewer
    than 30 ok tasks)', which is false."""
    rows = pd.DataFrame([cell("clip_cite", "id_gain"), cell("wise_ft", "id_gain", n=20)], columns=COLUMNS)
    assert summary_lines(rows, PAIRS, tasks=30, criteria="T")[:2] == [
        "world-v2-b x clip_cite: not a test pair (40 ok tasks, not 30)",
        "world-v2-b x wise_ft: not run (fewer than 30 ok tasks)"]
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "exactly" in capsys.readouterr().out.split("--tasks TASKS")[-1]


@pytest.mark.parametrize("column", ["coverage", "chosen", "level", "iimm_mean_width"])
def test_a_table_without_a_column_the_summary_reads_is_one_error_line(tmp_path, capsys, column):
    """The check named only the columns that pick the cells: a table without one the tables or coverage
    summary read ended in a KeyError traceback. The line names the file, as the other read errors do."""
    path = tmp_path / "forecast-rules.csv"
    pd.DataFrame([cell("clip_cite", "id_gain")], columns=COLUMNS).drop(columns=column).to_csv(path, index=False)
    assert main([str(path), "--pairs", "world-v2-b:clip_cite"]) == 2
    assert capsys.readouterr().err == f"error: {path} is not a forecast-rules table (no {column} column)\n"


def test_a_file_that_is_no_csv_table_is_named_in_the_error(tmp_path, capsys):
    """An empty file answered 'error: No columns to parse from file' (pandas' words), naming neither the file
    nor what it should be."""
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    assert main([str(path), "--pairs", "world-v2-b:clip_cite"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {path} is not a forecast-rules table (not a CSV table: ")


def test_the_shipped_summaries_are_what_the_scripts_print_on_the_shipped_tables(capsys):
    """Each shipped summary.md holds the text its header's command prints: the analyses stay reproducible."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    def shipped(path):
        text = Path(path).read_text(encoding="utf-8")
        command = re.search(r"output of `([^`]+)`", text).group(1)
        return command, text.split("```text\n", 1)[1].rsplit("```", 1)[0]

    command, expected = shipped("jobs/results/world-v2/completion/summary.md")
    assert command.startswith("python -m jobs.forecast_test_summary ")
    assert main(command.split()[3:]) == 0
    assert capsys.readouterr().out == expected
    command, expected = shipped("jobs/results/world-v2/extension/summary.md")
    assert command == "python jobs/forecast_extension_summary.py"
    printed = subprocess.run([sys.executable, "jobs/forecast_extension_summary.py"], capture_output=True, text=True,
                             check=True).stdout
    assert printed == expected


def test_no_worse_than_iimm_allows_only_rounding_and_never_a_missing_iimm_line():
    from core.forecast_select import NO_WORSE_TOLERANCE, no_worse_than_iimm

    gains = pd.Series([0.0, 0.3, -NO_WORSE_TOLERANCE / 10, -NO_WORSE_TOLERANCE * 10, -0.01, float("nan")])
    assert no_worse_than_iimm(gains).tolist() == [True, True, True, False, False, False]


def test_a_tag_that_reads_as_a_number_is_still_its_pair(tmp_path, capsys):
    """A CSV's tag 2024 came back as the number 2024, which the pair ('2024', 'clip_cite') never matched: the pair
    read 'not run' and both criteria False, with no warning (the warning compared text and found the tag)."""
    path = tmp_path / "forecast-rules.csv"
    pd.DataFrame([cell("clip_cite", "id_gain", tag="2024")], columns=COLUMNS).to_csv(path, index=False)
    assert main([str(path), "--pairs", "2024:clip_cite"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("2024 x clip_cite: test pair\n") and err == ""
    assert "T1 (bonferroni no worse than IIMM-only in every test cell): 1 of 1 -> True" in out
