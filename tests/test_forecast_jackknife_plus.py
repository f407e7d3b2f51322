"""The procedure's jackknife+ interval (core.forecast_select.jackknife_plus_interval), its held-out
coverage in lodo_coverage (checked against a slow re-derivation that reruns every selection), and its
place in the selection table, a new dataset's forecast and the job's Markdown."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from core import forecast_select as fs
from core import store
from jobs import predictor_tables
from tests.fixtures import make_fixture_records


def test_hand_checked_intervals():
    # n = 3, level 0.5: rank ceil(0.5 * 4) = 2; upper = 2nd smallest of mu + r = [1, 12, 23], lower = the
    # floor(0.5 * 4) = 2nd smallest of mu - r = [-1, 8, 17]
    assert fs.jackknife_plus_interval([0, 10, 20], [1, 2, 3], level=0.5) == (8.0, 12.0)
    # n = 19 at 0.95: rank ceil(0.95 * 20) = 19, the largest and the smallest
    assert fs.jackknife_plus_interval(np.arange(19.0), np.ones(19)) == (-1.0, 19.0)
    # n = 99 at 0.55: rank 55, though 0.55 * 100 is 55.00000000000001 in floats (a plain ceil gives 56)
    assert fs.jackknife_plus_interval(np.arange(99.0), np.zeros(99), level=0.55) == (44.0, 54.0)
    # n = 18: rank 19 > 18, no finite interval at 0.95; at 0.9, rank ceil(0.9 * 19) = 18 is finite
    assert fs.jackknife_plus_interval(np.zeros(18), np.ones(18)) == (-math.inf, math.inf)
    assert fs.jackknife_plus_interval(np.zeros(18), np.arange(18.0), level=0.9) == (-17.0, 17.0)
    # below level 0.5 no interval (its ends crossed: (17, 1) for these at 0.2)
    assert fs.jackknife_plus_interval([0, 10, 20], [1, 2, 3], level=0.2) == (-math.inf, math.inf)
    # one fit of 40 that disagrees is outranked (rank 39); one of 20 is not (rank 20 of 20)
    assert fs.jackknife_plus_interval(np.r_[np.zeros(39), 5.0], np.zeros(40)) == (0.0, 0.0)
    assert fs.jackknife_plus_interval(np.r_[np.zeros(19), 5.0], np.zeros(20)) == (0.0, 5.0)


@pytest.mark.parametrize("args, kwargs, match", [
    (([0.0, 1.0], [1.0]), {}, "one shape"),
    (([], []), {}, "n >= 1"),
    (([[0.0, 1.0]], [[1.0, 1.0]]), {}, "one shape"),
    (([0.0, np.nan], [1.0, 1.0]), {}, "must be finite"),
    (([0.0, 1.0], [1.0, np.inf]), {}, "must be finite"),
    (([0.0, 1.0], [1.0, -0.5]), {}, "absolute values"),
    (([0.0, 1.0], [1.0, 1.0]), {"level": 1.0}, "level must be a number between"),
    (([0.0, 1.0], [1.0, 1.0]), {"level": "0.9"}, "level must be a number between"),
])
def test_bad_inputs_are_named(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fs.jackknife_plus_interval(*args, **kwargs)


def _slow_jackknife_plus_coverage(x, y, sets, default, rule, level):
    """Every held-out dataset j, every leave-one-out fit i of the others: the selection rerun through the
    public select_set, the line refitted here, the ranks from exact fractions."""
    n, hits, widths = len(y), [], []
    for j in range(n):
        ref = np.array([k for k in range(n) if k != j])
        low, high = [], []
        for i in ref:
            rest = ref[ref != i]
            best, _ = fs.select_set(x, y, rest, sets, default=default, rule=rule)
            cols = list(sets[best])
            design = np.column_stack([np.ones(len(rest)), x[np.ix_(rest, cols)]])
            beta = np.linalg.lstsq(design, y[rest], rcond=None)[0]
            residual = abs(y[i] - np.r_[1.0, x[i, cols]] @ beta)
            at_j = np.r_[1.0, x[j, cols]] @ beta
            low.append(at_j - residual)
            high.append(at_j + residual)
        m, alpha = len(ref), 1 - Fraction(level).limit_denominator(1000)
        k_low, k_high = math.floor(alpha * (m + 1)), math.ceil((1 - alpha) * (m + 1))
        if k_low < 1 or k_high > m:
            return math.nan, math.inf
        lo, hi = sorted(low)[k_low - 1], sorted(high)[k_high - 1]
        hits.append(lo <= y[j] <= hi)
        widths.append(hi - lo)
    return float(np.mean(hits)), float(np.mean(widths))


@pytest.mark.parametrize("n, rule", [(21, "bonferroni"), (23, "one-se")])
def test_coverage_matches_a_slow_rederivation(n, rule):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3))
    y = 2.0 * x[:, 1] + rng.standard_t(3, size=n)  # heavy tails: where a t interval is least at home
    sets = [(), (0,), (1,), (2,), (0, 1), (1, 2)]
    got = fs.lodo_coverage(x, y, sets, 0, rule=rule)
    coverage, width = _slow_jackknife_plus_coverage(x, y, sets, sets.index((0,)), rule, 0.95)
    assert got["jackknife_plus_coverage"] == pytest.approx(coverage, abs=1e-12)
    assert got["jackknife_plus_mean_width"] == pytest.approx(width, rel=1e-9)
    assert 0.5 <= coverage <= 1.0 and np.isfinite(width)


def test_too_few_datasets_give_no_measured_coverage():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(19, 2)), rng.normal(size=19)  # each held-out interval rests on 18 fits
    got = fs.lodo_coverage(x, y, [(), (0,), (1,)], 0)
    assert math.isnan(got["jackknife_plus_coverage"]) and got["jackknife_plus_mean_width"] == math.inf
    assert 0 <= got["coverage"] <= 1  # the t interval is measured as before
    assert np.isfinite(fs.lodo_coverage(np.vstack([x, [[0.1, 0.2]]]), np.r_[y, 0.3], [(), (0,), (1,)],
                                        0)["jackknife_plus_coverage"])  # 20 datasets: 19 fits each


@pytest.fixture(scope="module")
def runs():
    # 10 datasets (the fixture's IIMM grows with each): finite jackknife+ intervals at level 0.8 (rank 9 of 10)
    return store.records_to_frame(make_fixture_records(n_datasets=10, methods=("full",), noise=0.5))


def test_the_table_forecast_and_page_carry_it(runs):
    table = fs.selection_table(runs, outcomes=("id_gain",), level=0.8)
    assert math.isnan(fs.selection_table(runs, outcomes=("id_gain",))["jackknife_plus_coverage"].iloc[0])  # at 0.95
    assert {"jackknife_plus_coverage", "jackknife_plus_mean_width"} <= set(table.columns)
    assert table["jackknife_plus_coverage"].between(0, 1).all()
    _, names = fs.reference_points(runs)
    values = {name: 0.33 for name in names}
    new = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", outcomes=("id_gain",),
                          coverage=False, level=0.8)
    row = new.iloc[0]
    assert np.isfinite(row["jackknife_plus_lo"]) and row["jackknife_plus_lo"] < row["jackknife_plus_hi"]
    assert math.isnan(row["jackknife_plus_coverage"])  # not measured here: the page reads the job's
    shown = fs.with_measured_coverage(new, table, model="worldclip-tiny", pretrained="world-v1")
    assert shown["jackknife_plus_coverage"].iloc[0] == table["jackknife_plus_coverage"].iloc[0]
    older = fs.with_measured_coverage(new, table.drop(columns=["jackknife_plus_coverage"]), model="worldclip-tiny",
                                      pretrained="world-v1")  # a table written before it existed
    assert math.isnan(older["jackknife_plus_coverage"].iloc[0]) and older["coverage"].notna().all()
    headers = fs.selection_shown(shown).columns
    assert {"jackknife+ low", "jackknife+ high", "jackknife+ coverage"} <= set(headers)
    at_95 = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", outcomes=("id_gain",),
                            coverage=False)  # 10 datasets: no finite interval at 0.95, shown blank (was: -inf, inf)
    assert at_95["jackknife_plus_hi"].iloc[0] == math.inf
    assert fs.selection_shown(at_95)[["jackknife+ low", "jackknife+ high"]].isna().all(axis=None)


def test_measured_jackknife_plus_coverage_is_shown_only_for_the_same_procedure(runs):
    """As the t interval's: not for a forecast not made, nor one that chose among other candidate sets or on
    other reference datasets than the measured procedure (another procedure's coverage)."""
    table = fs.selection_table(runs, outcomes=("id_gain",), level=0.8)
    assert np.isfinite(table["jackknife_plus_coverage"]).all()
    _, names = fs.reference_points(runs)
    new = fs.forecast_new(runs, {name: 0.33 for name in names}, model="worldclip-tiny", pretrained="world-v1",
                          outcomes=("id_gain",), coverage=False, level=0.8)

    def shown(forecasts, shipped):
        return fs.with_measured_coverage(forecasts, shipped, model="worldclip-tiny", pretrained="world-v1")

    assert shown(new, table)["jackknife_plus_coverage"].notna().all()
    for label, forecasts, shipped in [("other sets", new, table.assign(n_sets=table["n_sets"] + 1)),
                                      ("other datasets", new, table.assign(n_datasets=table["n_datasets"] + 1)),
                                      ("not made", new.assign(status="too few runs"), table)]:
        assert shown(forecasts, shipped)["jackknife_plus_coverage"].isna().all(), label


def test_the_forecast_interval_is_the_folds_predictions_at_the_new_dataset(runs):
    """forecast_new's interval equals one built here from nested_lodo's residuals and a refit per fold."""
    _, names = fs.reference_points(runs)
    values = {name: 0.41 for name in names}
    new = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", outcomes=("id_gain",),
                          coverage=False, level=0.8)
    points, _ = fs.reference_points(runs)
    usable = [p for p in names if points[p].notna().all() and np.ptp(points[p].to_numpy(float)) > 0]
    x, y = points[usable].to_numpy(float), points["id_gain"].to_numpy(float)
    sets_named = fs.candidate_sets(usable)
    sets = [tuple(usable.index(p) for p in s) for s in sets_named]
    default = sets.index((usable.index("iimm"),))
    resid, chosen = fs.nested_lodo(x, y, np.arange(len(y)), sets, default)
    x0 = np.array([values[p] for p in usable])
    at = []
    for i, best in zip(range(len(y)), chosen):
        rest = np.array([k for k in range(len(y)) if k != i])
        cols = list(sets[best])
        beta = np.linalg.lstsq(np.column_stack([np.ones(len(rest)), x[np.ix_(rest, cols)]]), y[rest], rcond=None)[0]
        at.append(np.r_[1.0, x0[cols]] @ beta)
    want = fs.jackknife_plus_interval(np.array(at), np.abs(resid), level=0.8)
    assert np.isfinite(want).all()
    assert (new["jackknife_plus_lo"].iloc[0], new["jackknife_plus_hi"].iloc[0]) == pytest.approx(want, rel=1e-9)


def test_the_jobs_summary_pools_measured_cells_only():
    table = pd.DataFrame({"status": ["ok", "ok", "ok", "too few"], "outcome": ["id_gain"] * 4,
                          "n_datasets": [20, 30, 15, 4], "jackknife_plus_coverage": [0.9, 1.0, np.nan, np.nan],
                          "coverage": [0.95, 0.9, 1.0, np.nan], "jackknife_plus_mean_width": [4.0, 6.0, np.inf, np.nan],
                          "mean_width": [3.0, 5.0, 2.0, np.nan]})
    row = predictor_tables.jackknife_plus_summary(table).iloc[0]
    assert (row["cells"], row["not_finite"]) == (2, 1)
    assert row["jackknife_plus_coverage"] == pytest.approx((0.9 * 20 + 1.0 * 30) / 50)
    assert row["coverage"] == pytest.approx((0.95 * 20 + 0.9 * 30) / 50)  # the t interval on the same cells
    assert (row["jackknife_plus_mean_width"], row["mean_width"]) == (5.0, 4.0)
    assert predictor_tables.jackknife_plus_summary(table.drop(columns="jackknife_plus_coverage")).empty
