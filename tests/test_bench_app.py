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
