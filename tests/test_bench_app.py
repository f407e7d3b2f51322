"""jobs.bench_app's leaderboard part on a small synthetic store: every figure it prints is measured."""
from __future__ import annotations

import pytest

from jobs import bench_app


@pytest.mark.slow
def test_bench_leaderboard_measures_every_figure_on_a_small_store(capsys):
    """Its landing-page "rank by" step set the widget to an option's label, which is no option's value:
    AppTest raised ValueError and the figure (and everything after it) was never printed."""
    out = bench_app.bench_leaderboard(200, apptest=True)
    printed = capsys.readouterr().out
    assert {"core_cold_s", "apptest_cold_cache_s", "landing_cold_cache_s", "landing_rank_by_s"} <= set(out)
    assert "failed" not in printed and "rerun after a 'rank by' change" in printed


def test_bench_compare_option_refuses_a_size_it_cannot_read(capsys):
    assert bench_app.main(["--compare", "44"]) == bench_app.EXIT_USER_ERROR
    assert bench_app.main(["--compare", "0x300"]) == bench_app.EXIT_USER_ERROR
    assert "METHODSxDATASETS, e.g. 44x300 (got '0x300')" in capsys.readouterr().err


@pytest.mark.parametrize("argv, said", [
    (["--compare", "4x5", "--browser"], "--compare times the Compare page alone; --browser would be ignored"),
    (["--compare", "4x5", "--runs", "10", "--images", "20"], "alone; --runs, --images would be ignored"),
    (["--index", "cold"], "--index only apply with --browser"),
    (["--browser", "--runs", "10", "--no-apptest"], "--runs, --no-apptest do not apply with --browser")])
def test_options_the_chosen_benchmark_would_ignore_are_refused(argv, said, capsys, monkeypatch):
    # they were dropped without a word: a figure could be read as measured under a setting it never had
    monkeypatch.setattr(bench_app, "work_begins", lambda: pytest.fail("a benchmark began"))
    assert bench_app.main(argv) == bench_app.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith(f"{said}\n") and err.count("\n") == 1


@pytest.mark.slow
def test_bench_compare_times_the_compare_page_on_both_stores(capsys):
    """The benchmark could not time the Compare page (~20 s first view at 44 methods x 300 datasets)."""
    from jobs.bench_compare import bench_compare, compare_records

    records = compare_records(3, 5)
    assert len(records) == 15 and len({(r["method"], r["dataset"]) for r in records}) == 15
    out = bench_compare(3, 5, repeats=1)
    printed = capsys.readouterr().out
    assert [len(out["synthetic_s"][0]), len(out["shipped_s"][1])] == [1, 1]
    assert "3 methods x 5 datasets (synthetic, 1 model), wall" in printed and "the shipped store (" in printed
