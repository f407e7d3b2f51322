"""core.forecast_select's gain over the IIMM-only line and its paired interval: hand-checked, against a naive
re-derivation from refits, and bad inputs."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import forecast_select as fs
from core import store
from tests.fixtures import make_fixture_records


def test_paired_gain_interval_hand_checked():
    # differences 0, 1, 2: mean 1, sd 1, t(0.975, 2) = 4.302652729749464
    lo, hi = fs.paired_gain_interval(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0]))
    assert (lo, hi) == pytest.approx((1 - 4.302652729749464 / np.sqrt(3), 1 + 4.302652729749464 / np.sqrt(3)))
    # a procedure that ties IIMM on every dataset: a zero-width interval at 0; inputs left as they were
    a = np.array([0.5, 1.5, 2.5, 0.25])
    kept = a.copy()
    assert fs.paired_gain_interval(a, a, level=0.9) == (0.0, 0.0) and np.array_equal(a, kept)


def test_paired_gain_interval_is_nan_on_a_non_finite_error():
    assert np.isnan(fs.paired_gain_interval(np.array([1.0, np.inf, 2.0]), np.ones(3))).all()
    assert np.isnan(fs.paired_gain_interval(np.ones(3), np.array([1.0, np.nan, 2.0]))).all()


@pytest.mark.parametrize("a, b, level, match", [
    (np.ones(3), np.ones(4), 0.95, r"same shape \(n,\), got \(3,\) and \(4,\)"),
    (np.ones((2, 2)), np.ones((2, 2)), 0.95, "same shape"),
    (np.ones(1), np.ones(1), 0.95, "at least 2 datasets, got 1"),
    (np.ones(3), np.ones(3), 1.5, "level"),
])
def test_paired_gain_interval_names_bad_inputs(a, b, level, match):
    with pytest.raises(ValueError, match=match):
        fs.paired_gain_interval(a, b, level=level)


def _frame_with_a_better_predictor():
    records = make_fixture_records(n_datasets=11, methods=("full",), noise=5.0, seeds=(0, 1))
    frame = store.records_to_frame(records)
    gain = frame.groupby("dataset")["id_gain"].mean()
    noise = np.random.default_rng(4).standard_normal(len(gain)) * 0.3  # gbc wins in some folds, not all
    frame["transferability"] = [json.dumps({"gbc": float(gain[d] + noise[gain.index.get_loc(d)])})
                                for d in frame["dataset"]]
    return frame


def test_the_selection_tables_gain_interval_matches_refits_and_nested_residuals():
    frame = _frame_with_a_better_predictor()
    row = fs.selection_table(frame, outcomes=("id_gain",), coverage=False, level=0.9).set_index("method").loc["full"]
    assert 0 < row["fold_agreement"] < 1 and row["gain_vs_iimm"] > 0.5
    # naive: IIMM-only refits without each dataset, and the procedure's nested residuals
    points, names = fs.reference_points(frame)
    usable = [p for p in names if np.ptp(points[p].to_numpy(float)) > 0]
    x, y = points[usable].to_numpy(float), points["id_gain"].to_numpy(float)
    iimm_abs = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        slope, intercept = np.polyfit(x[keep, usable.index("iimm")], y[keep], 1)
        iimm_abs.append(abs(y[i] - (intercept + slope * x[i, usable.index("iimm")])))
    sets = [tuple(usable.index(p) for p in s) for s in fs.candidate_sets(usable)]
    resid, _ = fs.nested_lodo(x, y, np.arange(len(y)), sets, default=sets.index((usable.index("iimm"),)))
    diff = np.array(iimm_abs) - np.abs(resid)
    assert row["gain_vs_iimm"] == pytest.approx(diff.mean(), abs=1e-9)
    expected = stats.t.interval(0.9, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
    assert (row["gain_vs_iimm_lo"], row["gain_vs_iimm_hi"]) == pytest.approx(expected, abs=1e-9)
    assert row["gain_vs_iimm_lo"] < row["gain_vs_iimm_hi"]


def test_a_cell_without_an_iimm_line_has_no_gain_interval():
    records = make_fixture_records(n_datasets=8, methods=("full",), noise=5.0, seeds=(0,))
    frame = store.records_to_frame(records)
    # IIMM constant: it cannot be fitted, so there is no IIMM-only line
    frame["zero_shot"] = [json.dumps({**json.loads(z), "iimm": 0.5}) for z in frame["zero_shot"]]
    frame["iimm"] = 0.5
    row = fs.selection_table(frame, outcomes=("id_gain",), coverage=False).iloc[0]
    assert row["status"] == "ok" and np.isnan(row["iimm_lodo_mae"])
    assert np.isnan(row["gain_vs_iimm_lo"]) and np.isnan(row["gain_vs_iimm_hi"])


def _cell(outcome, gain, lo, hi, method="lora"):
    row = dict.fromkeys(fs.SELECTION_COLUMNS, 1.0)
    row.update(model="m", pretrained="p", method=method, outcome=outcome, status="ok", chosen="iimm", level=0.95,
               rule="bonferroni", gain_vs_iimm=gain, gain_vs_iimm_lo=lo, gain_vs_iimm_hi=hi, iimm_lodo_mae=2.0,
               nested_lodo_mae=2.0 - gain)
    return row


def test_the_selection_markdown_shows_each_gain_with_its_interval_and_counts_where_it_lies():
    from jobs.predictor_tables import selection_markdown

    table = pd.DataFrame([_cell("id_gain", 0.3, 0.1, 0.5, "a"), _cell("id_gain", -0.3, -0.5, -0.1, "b"),
                          _cell("id_gain", 0.05, -0.2, 0.3, "c"), _cell("id_gain", np.nan, np.nan, np.nan, "d"),
                          _cell("ood_change", -4e-15, -1.3e-14, -1e-15, "a"),
                          # linear probe's OOD change on world v1: a tie whose ends are both rounding-level positive
                          _cell("ood_change", 5e-17, 1e-17, 9e-17, "b")], columns=fs.SELECTION_COLUMNS)
    md = selection_markdown(table)
    assert "| a | id_gain | iimm | 100% | 1.7 | 2 | +0.3 [+0.1, +0.5] |" in md
    assert "| b | id_gain | iimm | 100% | 2.3 | 2 | -0.3 [-0.5, -0.1] |" in md
    assert "| d | id_gain | iimm | 100% | nan | 2 | — |" in md
    assert "| a | ood_change | iimm | 100% | 2 | 2 | +0 [+0, +0] |" in md  # a tie to rounding is a tie, not a loss
    assert "- id_gain: of 3 cells with an interval, it lies above 0 in 1, below 0 in 1, and holds 0 in 1" in md
    assert "- ood_change: of 2 cells with an interval, it lies above 0 in 0, below 0 in 0, and holds 0 in 2" in md
    # a table written before the interval existed: the gain alone, and no counts
    old = selection_markdown(table.drop(columns=["gain_vs_iimm_lo", "gain_vs_iimm_hi"]))
    assert "| a | id_gain | iimm | 100% | 1.7 | 2 | +0.3 | 1 |" in old and "interval lies" not in old


def test_a_forecast_carries_the_same_gain_and_interval_as_the_selection_table():
    frame = _frame_with_a_better_predictor()
    points, names = fs.reference_points(frame)
    values = {p: float(points[p].mean()) for p in names}  # every predictor known: the same candidate sets
    out = fs.forecast_new(frame, values, model=frame["model"][0], pretrained=frame["pretrained"][0],
                          outcomes=("id_gain",), coverage=False, level=0.8).iloc[0]
    row = fs.selection_table(frame, outcomes=("id_gain",), coverage=False, level=0.8).iloc[0]
    wider = fs.selection_table(frame, outcomes=("id_gain",), coverage=False).iloc[0]  # 95 %: the level is used
    assert wider["gain_vs_iimm_hi"] - wider["gain_vs_iimm_lo"] > 1.2 * (row["gain_vs_iimm_hi"] - row["gain_vs_iimm_lo"])
    for column in ("gain_vs_iimm", "gain_vs_iimm_lo", "gain_vs_iimm_hi"):
        assert out[column] == pytest.approx(row[column], abs=1e-12)
    assert out["gain_vs_iimm_lo"] < out["gain_vs_iimm"] < out["gain_vs_iimm_hi"]
    shown = fs.selection_shown(pd.DataFrame([out]))
    assert shown["LODO error saved vs IIMM line"].iloc[0] == out["gain_vs_iimm"]
    assert {"error saved: interval low", "error saved: interval high"} <= set(shown.columns)


def test_the_forecast_page_shows_a_rounding_level_gain_as_a_tie():
    frame = pd.DataFrame({"method": ["lora", "bitfit"], "gain_vs_iimm": [-4e-15, -0.5],
                          "gain_vs_iimm_lo": [-1e-14, -1.0], "gain_vs_iimm_hi": [3e-15, np.nan]})
    shown = fs.selection_shown(frame)
    assert shown["LODO error saved vs IIMM line"].tolist() == [0.0, -0.5]
    assert shown["error saved: interval low"].tolist() == [0.0, -1.0]
    assert shown["error saved: interval high"].iloc[0] == 0.0 and np.isnan(shown["error saved: interval high"].iloc[1])
    assert frame["gain_vs_iimm"].iloc[0] == -4e-15  # a copy


def test_each_rule_in_the_rules_markdown_counts_where_its_gain_intervals_lie():
    from jobs.predictor_tables import rules_markdown

    above, below = _cell("id_gain", 0.3, 0.1, 0.5, "a"), _cell("id_gain", -0.3, -0.5, -0.1, "b")
    md = rules_markdown({"one-se": pd.DataFrame([above, below], columns=fs.SELECTION_COLUMNS),
                         "bonferroni": pd.DataFrame([above, dict(below, status="too few runs")],
                                                    columns=fs.SELECTION_COLUMNS)})
    one_se, bonferroni = md.split("## bonferroni")
    assert "- id_gain: of 2 cells with an interval, it lies above 0 in 1, below 0 in 1, and holds 0 in 0" in one_se
    assert "- id_gain: of 1 cells with an interval, it lies above 0 in 1, below 0 in 0, and holds 0 in 0" in bonferroni


def test_the_forecast_page_heads_the_gain_as_error_saved_not_as_a_difference_of_forecasts():
    """Headed "gain over IIMM line" beside an in-domain gain's "prediction" and "IIMM line", the column read as
    prediction minus IIMM line: 18.79 and 18.79 with a "gain over IIMM line" of +1.39."""
    frame = _frame_with_a_better_predictor()
    points, names = fs.reference_points(frame)
    out = fs.forecast_new(frame, {p: float(points[p].mean()) for p in names}, model=frame["model"][0],
                          pretrained=frame["pretrained"][0], outcomes=("id_gain",), coverage=False)
    shown = fs.selection_shown(out).iloc[0]
    assert shown["prediction"] == pytest.approx(shown["IIMM line"]) and shown["LODO error saved vs IIMM line"] > 1
    headers = list(fs.selection_shown(pd.DataFrame(columns=list(fs.GAIN_COLUMNS))).columns)
    assert len(headers) == 3
    assert all("error saved" in h and "gain" not in h for h in headers), headers
