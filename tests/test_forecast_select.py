"""core.forecast_select: closed-form LODO against refits, nested selection, intervals and coverage."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from core import forecast_select as fs
from core import store
from tests.fixtures import LINES, make_fixture_records


def _naive_loo(x, y, cols):
    errs = []
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        d = np.column_stack([np.ones(keep.sum()), x[keep][:, list(cols)]])
        beta = np.linalg.lstsq(d, y[keep], rcond=None)[0]
        errs.append(abs(y[i] - np.r_[1.0, x[i, list(cols)]] @ beta))
    return np.array(errs)


def test_closed_form_lodo_errors_match_refits_on_awkward_sizes():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, 4)), rng.standard_normal(9)
    sets = [()] + [(j,) for j in range(4)] + list(itertools.combinations(range(4), 2))
    got = fs._loo_abs_errors(x, y, sets)
    for s, cols in enumerate(sets):
        assert np.allclose(got[s], _naive_loo(x, y, cols), rtol=1e-9)
    # a constant column cannot be fitted: its sets are never chosen
    x[:, 2] = 1.0
    assert np.isinf(fs._loo_abs_errors(x, y, [(2,), (0, 2)])).all()


def test_selection_finds_the_exact_predictor_and_keeps_the_default_on_noise():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((15, 5))
    y = 3 * x[:, 3] + 1
    sets = [tuple(s) for s in fs.candidate_sets(range(5))]
    best, errors = fs.select_set(x, y, np.arange(15), sets, default=1)
    assert sets[best] == (3,) and errors[best] == pytest.approx(0, abs=1e-9)
    noise = rng.standard_normal(15)  # nothing predicts it: IIMM (the default) stays
    best, _ = fs.select_set(x, noise, np.arange(15), sets, default=1, margin_se=10.0)
    assert best == 1


def test_bonferroni_rule_uses_the_multiplicity_corrected_t_margin():
    from scipy import stats
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 4))
    sets = [tuple(s) for s in fs.candidate_sets(range(4))]
    y = 3 * x[:, 2] + 0.1 * rng.standard_normal(30)
    best, _ = fs.select_set(x, y, np.arange(30), sets, default=1, rule="bonferroni")
    assert sets[best] == (2,)  # a strong predictor survives the correction
    margin = stats.t.ppf(1 - 0.05 / (len(sets) - 1), 29)
    for seed in range(20):  # on any data the rule is the margin_se rule with that margin
        y = x[:, 0] + np.random.default_rng(seed).standard_normal(30) * 2
        assert (fs.select_set(x, y, np.arange(30), sets, default=1, rule="bonferroni")[0]
                == fs.select_set(x, y, np.arange(30), sets, default=1, margin_se=margin)[0])


def test_stricter_rules_leave_iimm_on_pure_noise_more_often():
    rng = np.random.default_rng(5)
    sets = [tuple(s) for s in fs.candidate_sets(range(6))]
    kept = {rule: 0 for rule in fs.SELECTION_RULES}
    for _ in range(40):
        x, y = rng.standard_normal((12, 6)), rng.standard_normal(12)
        for rule in fs.SELECTION_RULES:
            kept[rule] += fs.select_set(x, y, np.arange(12), sets, default=1, rule=rule)[0] == 1
    assert kept["bonferroni"] >= 38 and kept["gated"] >= kept["one-se"]
    with pytest.raises(ValueError, match="unknown selection rule 'best'"):
        fs.select_set(x, y, np.arange(12), sets, default=1, rule="best")


def test_gated_rule_falls_back_unless_selection_beats_iimm_on_its_own_nested_error():
    sets = [tuple(s) for s in fs.candidate_sets(range(4))]
    seen = set()
    for seed in range(30):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((11, 4))
        y = x[:, seed % 4] * (seed % 3) + rng.standard_normal(11)
        rows = np.arange(11)
        one_se, errors = fs.select_set(x, y, rows, sets, default=1, rule="one-se")
        gated, _ = fs.select_set(x, y, rows, sets, default=1, rule="gated")
        if one_se == 1:
            assert gated == 1
            continue
        resid, _ = fs.nested_lodo(x, y, rows, sets, default=1, rule="one-se")  # one-se redone without each dataset
        want = one_se if np.mean(np.abs(resid)) < errors[1] else 1
        assert gated == want
        seen.add(gated == 1)
    assert seen == {True, False}  # both branches were exercised


def test_nested_lodo_redoes_the_selection_without_the_held_out_dataset():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    sets = [tuple(s) for s in fs.candidate_sets(range(3))]
    resid, chosen = fs.nested_lodo(x, y, np.arange(10), sets, default=1, rule="one-se")
    for i in range(10):
        rest = np.delete(np.arange(10), i)
        # naive: the set with the lowest refit LODO MAE on the other 9 (one-SE rule towards set 1)
        errs = np.array([_naive_loo(x[rest], y[rest], s) for s in sets])
        best = int(np.argmin(errs.mean(1)))
        diff = errs[1] - errs[best]
        if best != 1 and diff.mean() <= diff.std(ddof=1) / 3.0:
            best = 1
        assert chosen[i] == best
        d = np.column_stack([np.ones(9), x[rest][:, list(sets[best])]])
        beta = np.linalg.lstsq(d, y[rest], rcond=None)[0]
        assert resid[i] == pytest.approx(y[i] - np.r_[1.0, x[i, list(sets[best])]] @ beta, abs=1e-9)


def test_interval_coverage_is_near_its_level_on_linear_gaussian_data():
    rng = np.random.default_rng(3)
    hits = []
    for _ in range(6):
        x = rng.standard_normal((16, 3))
        y = 2 * x[:, 0] + rng.standard_normal(16)
        sets = [tuple(s) for s in fs.candidate_sets(range(3))]
        cov = fs.lodo_coverage(x, y, sets, headline=0)
        assert cov["mean_width"] > 0 and 0 <= cov["iimm_coverage"] <= 1
        hits.append(cov["coverage"])
    assert 0.85 <= np.mean(hits) <= 1.0


@pytest.fixture(scope="module")
def runs():
    return store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full", "bitfit"), seeds=(0, 1),
                                                       noise=0.5))


def test_selection_table_and_coverage_summary(runs):
    table = fs.selection_table(runs, outcomes=("id_gain",))
    assert list(table.columns) == fs.SELECTION_COLUMNS and (table["status"] == "ok").all()
    assert (table["n_datasets"] == 7).all() and table["coverage"].between(0, 1).all()
    assert np.allclose(table["gain_vs_iimm"], table["iimm_lodo_mae"] - table["nested_lodo_mae"])
    summary = fs.coverage_summary(table)
    assert summary["cells"].tolist() == [2] and 0 <= summary["coverage"].iloc[0] <= 1
    few = fs.selection_table(runs, outcomes=("id_gain",), min_datasets=8)
    assert few["status"].str.startswith("too few datasets (n=7").all()
    with pytest.raises(ValueError, match="min_datasets"):
        fs.selection_table(runs, min_datasets=4)


def test_a_method_without_any_ood_outcome_gets_a_status_row_not_a_crash(runs):
    no_ood = runs.copy()
    no_ood.loc[no_ood["method"] == "bitfit", "ood_change"] = np.nan  # a grid without an OOD panel
    table = fs.selection_table(no_ood, outcomes=("id_gain", "ood_change"), coverage=False)
    cell = table.set_index(["method", "outcome"])
    assert cell.loc[("bitfit", "ood_change"), "status"].startswith("too few datasets (n=0")
    assert (cell.drop(("bitfit", "ood_change"))["status"] == "ok").all()
    values = {"iimm": 0.3, "inter_modal": 0.2, "intra_image": 0.4, "zs_acc": 50.0}
    out = fs.forecast_new(no_ood, values, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    assert out.set_index(["method", "outcome"]).loc[("full", "ood_change"), "status"] == "ok"


@pytest.mark.parametrize("outcomes, match", [(("id_gian",), r"unknown outcome\(s\) \['id_gian'\]"),
                                             ("id_gain", "a sequence of outcome names")])
def test_an_unknown_outcome_is_named_in_a_value_error(runs, outcomes, match):
    # a typo used to raise a bare KeyError('id_gian') from inside the cell loop
    with pytest.raises(ValueError, match=match):
        fs.selection_table(runs, outcomes=outcomes, coverage=False)
    with pytest.raises(ValueError, match=match):
        fs.forecast_new(runs, {"iimm": 0.3}, model="worldclip-tiny", pretrained="world-v1", outcomes=outcomes,
                        coverage=False)


def test_coverage_summary_compares_iimm_on_the_cells_where_its_line_exists():
    base = {"status": "ok", "level": 0.95, "n_datasets": 10, "mean_width": 2.0, "iimm_mean_width": 3.0}
    table = pd.DataFrame([
        {**base, "outcome": "id_gain", "coverage": 1.0, "iimm_coverage": 1.0, "nested_lodo_mae": 1.0,
         "iimm_lodo_mae": 2.0, "gain_vs_iimm": 1.0},
        {**base, "outcome": "id_gain", "coverage": 0.8, "iimm_coverage": np.nan, "nested_lodo_mae": 5.0,
         "iimm_lodo_mae": np.nan, "gain_vs_iimm": np.nan, "iimm_mean_width": np.nan},  # IIMM missing here
        {**base, "outcome": "norm_gain", "coverage": 0.9, "iimm_coverage": 0.7, "nested_lodo_mae": 0.1,
         "iimm_lodo_mae": 0.1, "gain_vs_iimm": 0.0}])
    summary = fs.coverage_summary(table).set_index("outcome")
    gain = summary.loc["id_gain"]
    assert gain["cells"] == 2 and gain["iimm_cells"] == 1 and gain["cells_no_worse_than_iimm"] == 1
    assert gain["coverage"] == pytest.approx(0.9) and gain["iimm_coverage"] == pytest.approx(1.0)  # was 0.5
    assert gain["nested_lodo_mae"] == pytest.approx(1.0) and gain["iimm_lodo_mae"] == pytest.approx(2.0)
    every = summary.loc["all outcomes"]
    assert every["cells"] == 3 and every["iimm_cells"] == 2 and every["cells_no_worse_than_iimm"] == 2
    assert every["iimm_coverage"] == pytest.approx(0.85)
    assert np.isnan(every[["nested_lodo_mae", "iimm_lodo_mae", "mean_width", "iimm_mean_width"]].astype(float)).all()


def test_forecast_new_gives_both_lines_with_intervals(runs):
    values = {"iimm": 0.3, "inter_modal": 0.2, "intra_image": 0.4, "zs_acc": 50.0}
    out = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    assert list(out.columns) == fs.FORECAST_COLUMNS and len(out) == 4 and (out["status"] == "ok").all()
    assert ((out["lo"] < out["prediction"]) & (out["prediction"] < out["hi"])).all()
    assert ((out["iimm_lo"] < out["iimm_prediction"]) & (out["iimm_prediction"] < out["iimm_hi"])).all()
    full = out.set_index(["method", "outcome"]).loc[("full", "id_gain")]
    a, b, _ = LINES["full"]
    # the fixture line; seed noise 0.5 over 14 runs gives the fitted value at 0.3 a standard error of about 0.15
    assert full["iimm_prediction"] == pytest.approx(a + b * 0.3, abs=0.5)
    assert fs.forecast_new(runs, values, model="other", pretrained="x").empty
    with pytest.raises(ValueError, match="finite 'iimm'"):
        fs.forecast_new(runs, {"zs_acc": 1.0}, model="worldclip-tiny", pretrained="world-v1")
    before = runs.copy()
    fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    pd.testing.assert_frame_equal(runs, before)


def test_forecast_new_treats_numpy_scalars_as_numbers_and_checks_its_options(runs):
    values = {"iimm": 0.3, "inter_modal": 0.2, "intra_image": 0.4, "zs_acc": 50.0}
    want = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    as_numpy = {k: np.float32(v) for k, v in values.items()}  # e.g. straight from a float32 embedding
    got = fs.forecast_new(runs, as_numpy, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    assert got["predictors"].tolist() == want["predictors"].tolist()  # no predictor silently dropped
    np.testing.assert_allclose(got["prediction"], want["prediction"], rtol=1e-6)
    for bad in ({"iimm": "0.3"}, {"iimm": None}):
        with pytest.raises(ValueError, match="finite 'iimm'"):
            fs.forecast_new(runs, bad, model="worldclip-tiny", pretrained="world-v1")
    with pytest.raises(ValueError, match="min_datasets must be an integer >= 5"):
        fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", min_datasets=2)
    with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
        fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", level=1.5)
    for bad in ("0.95", None):  # raised TypeError from '<'
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", level=bad)
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            fs.selection_table(runs, level=bad)


def test_measured_coverage_is_attached_by_method_and_outcome(runs):
    _, names = fs.reference_points(runs)
    values = {name: 0.3 for name in names}  # every predictor the table's procedure had
    new = fs.forecast_new(runs, values, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    assert new["coverage"].isna().all()
    table = fs.selection_table(runs, outcomes=("id_gain", "ood_change"))
    got = fs.with_measured_coverage(new, table, model="worldclip-tiny", pretrained="world-v1")
    want = table.set_index(["method", "outcome"])["coverage"]
    assert [want[(m, o)] for m, o in zip(got["method"], got["outcome"])] == got["coverage"].tolist()
    assert new["coverage"].isna().all()  # the input is not modified
    other = fs.with_measured_coverage(new, table, model="other", pretrained="x")
    assert other["coverage"].isna().all()
    assert (table["rule"] == fs.DEFAULT_RULE).all()
    stale = fs.with_measured_coverage(new, table.assign(rule="one-se"), model="worldclip-tiny", pretrained="world-v1")
    assert stale["coverage"].isna().all()  # coverage measured under another rule is not this forecast's
    with pytest.raises(ValueError, match="unknown selection rule"):
        fs.with_measured_coverage(new, table, model="worldclip-tiny", pretrained="world-v1", rule="best")
    not_made = new.assign(status=["too few runs (n=5, need 6)"] + ["ok"] * (len(new) - 1))
    got = fs.with_measured_coverage(not_made, table, model="worldclip-tiny", pretrained="world-v1")
    assert np.isnan(got["coverage"].iloc[0]) and got["coverage"].iloc[1:].notna().all()  # was: 40 datasets' figure
    fewer = fs.forecast_new(runs, {"iimm": 0.3, "inter_modal": 0.2}, model="worldclip-tiny", pretrained="world-v1",
                            coverage=False)  # fewer candidates: another procedure than the one measured
    got = fs.with_measured_coverage(fewer, table, model="worldclip-tiny", pretrained="world-v1")
    assert got["coverage"].isna().all() and got["iimm_coverage"].notna().all()  # IIMM's line is the same
    bare = new.drop(columns=["coverage", "iimm_coverage", "jackknife_plus_coverage"])  # added here: rule stays last
    got = fs.with_measured_coverage(bare, table, model="worldclip-tiny", pretrained="world-v1")
    assert list(got.columns) == [*bare.columns, "coverage", "iimm_coverage", "jackknife_plus_coverage", "rule"]


def _bad_input_cases():
    rng = np.random.default_rng(0)
    x, y, sets = rng.normal(size=(10, 3)), rng.normal(size=10), [(), (0,), (1,), (0, 1)]
    holed = x.copy()
    holed[4, 1] = np.nan
    rows = np.arange(10)
    return [
        ("x 1-D", lambda: fs.select_set(x[:, 0], y, rows, sets), "x must be 2-D"),
        ("y too short", lambda: fs.select_set(x, y[:8], rows, sets), "one value per row of x"),
        ("rows out of range", lambda: fs.select_set(x, y, np.arange(12), sets), "must index the 10 rows"),
        ("rows as floats", lambda: fs.select_set(x, y, rows.astype(float), sets), "array of row indices"),
        ("a repeated row", lambda: fs.select_set(x, y, np.r_[0, rows[:-1]], sets, default=1), "distinct"),
        ("a missing value", lambda: fs.select_set(holed, y, rows, sets, default=1), "must be finite"),
        ("one row", lambda: fs.select_set(x, y, rows[:1], sets), "at least 2 reference"),
        ("no sets", lambda: fs.select_set(x, y, rows, []), "at least one candidate set"),
        ("a column out of range", lambda: fs.select_set(x, y, rows, [(), (5,)]), r"candidate set \(5,\)"),
        ("a column twice", lambda: fs.select_set(x, y, rows, [(), (1, 1)]), "distinct column indices"),
        ("default out of range", lambda: fs.select_set(x, y, rows, sets, default=9), "default must index"),
        ("nested on two rows", lambda: fs.nested_lodo(x, y, rows[:2], sets, 1), "at least 3 reference"),
        ("coverage on three rows", lambda: fs.lodo_coverage(x[:3], y[:3], sets, 0), "at least 4 reference"),
        ("coverage at level 2", lambda: fs.lodo_coverage(x, y, sets, 0, level=2.0), "level must be a number between"),
        ("coverage at level '0.9'", lambda: fs.lodo_coverage(x, y, sets, 0, level="0.9"), "level must be a number between"),
        ("headline not a set", lambda: fs.lodo_coverage(x, y, sets, 2), "headline column 2"),
        ("default a bool", lambda: fs.select_set(x, y, rows, sets, default=True), "default must index"),
        ("margin NaN", lambda: fs.select_set(x, y, rows, sets, default=1, margin_se=float("nan")), "margin_se must be"),
        ("margin negative", lambda: fs.select_set(x, y, rows, sets, default=1, margin_se=-1.0), "margin_se must be"),
        ("margin text", lambda: fs.select_set(x, y, rows, sets, default=1, margin_se="1"), "margin_se must be"),
        ("headline a float", lambda: fs.lodo_coverage(x, y, sets, 1.0), "headline must be a column index"),
        ("headline a bool", lambda: fs.lodo_coverage(x, y, sets, True), "headline must be a column index"),
    ]


@pytest.mark.parametrize("case", _bad_input_cases(), ids=lambda c: c[0])
def test_the_array_procedure_names_bad_inputs(case):
    _, call, message = case
    with pytest.raises(ValueError, match=message):
        call()


def test_the_one_se_margin_uses_the_sample_standard_deviation(monkeypatch):
    """Paired differences [0, 0, 3]: mean 1, se 1 with ddof=1 (the default is kept: not beaten by more than
    one se), but 0.82 with ddof=0 (the other set would win)."""
    from core.forecast_select import procedure

    x, y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.5]]), np.array([0.0, 1.0, 3.0])
    for default_errs, chosen in (([1.0, 1.0, 4.0], 0), ([2.0, 2.0, 4.0], 1)):  # diffs [0,0,3]; [1,1,3]: se 0.67
        abs_err = np.array([default_errs, [1.0, 1.0, 1.0]])
        monkeypatch.setattr(procedure, "_loo_abs_errors", lambda x, y, sets, a=abs_err: a)
        got, errors = fs.select_set(x, y, np.arange(3), [(0,), (1,)], default=0, rule="one-se")
        assert got == chosen and errors.tolist() == pytest.approx(abs_err.mean(axis=1).tolist())


def test_interval_half_width_hand_checked():
    from scipy import stats

    from core.forecast_select.procedure import _half_width

    # residuals ±1: RMS 1, n = 4, so t(0.975, 3) * 1 * sqrt(1 + 1/4)
    assert _half_width(np.array([1.0, -1.0, 1.0, -1.0]), 0.95) == pytest.approx(
        stats.t.ppf(0.975, 3) * np.sqrt(1.25))
    assert _half_width(np.array([1.0, -1.0, 1.0, -1.0]), 0.80) == pytest.approx(stats.t.ppf(0.9, 3) * np.sqrt(1.25))


def test_coverage_chooses_each_interval_without_its_held_out_dataset(monkeypatch):
    from core.forecast_select import procedure

    seen = []
    real = procedure._select

    def spy(x, y, rows, *args, **kwargs):
        seen.append(len(rows))
        return real(x, y, rows, *args, **kwargs)

    monkeypatch.setattr(procedure, "_select", spy)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((7, 2)), rng.standard_normal(7)
    fs.lodo_coverage(x, y, [(0,), (1,)], 0, rule="one-se")
    assert seen and max(seen) == 6  # 7 datasets: every choice is made on at most the other 6


@pytest.mark.parametrize("iimm, outside", [(0.05, True), (0.3, False), (0.9, True)])
def test_a_new_value_outside_the_references_on_either_side_is_extrapolation(runs, iimm, outside):
    new = fs.forecast_new(runs, {"iimm": iimm}, model="worldclip-tiny", pretrained="world-v1", coverage=False)
    ok = new[new["status"] == "ok"]
    assert len(ok) and set(ok["extrapolation"]) == {outside}  # the fixture's IIMM spans 0.2 to 0.45


def test_a_better_predictor_is_chosen_with_a_positive_gain_over_iimm_and_constants_never_compete():
    import json

    records = make_fixture_records(n_datasets=15, methods=("full",), noise=5.0, seeds=(0, 1))
    frame = store.records_to_frame(records)
    gain = frame.groupby("dataset")["id_gain"].mean()
    frame["transferability"] = [json.dumps({"gbc": float(gain[d]), "flat": 1.0}) for d in frame["dataset"]]
    table = fs.selection_table(frame, outcomes=("id_gain",), coverage=False).set_index("method")
    row = table.loc["full"]
    assert "gbc" in row["chosen"] and "flat" not in row["chosen"]
    assert row["gain_vs_iimm"] == pytest.approx(row["iimm_lodo_mae"] - row["nested_lodo_mae"])
    assert row["gain_vs_iimm"] > 1
    _, names = fs.reference_points(frame)
    assert "flat" in names and row["n_predictors"] == len(names) - 1  # a constant predictor is not usable


def test_a_forecasts_selection_is_shown_with_names_not_keys():
    """The forecast page's "How each forecast was chosen" showed method, outcome and predictor keys
    ('lora', 'id_gain', 'iimm + zs_acc') and the frame's column names."""
    from core.forecast_select import selection_shown

    frame = pd.DataFrame({"method": ["lora", "peft_new"], "outcome": ["id_gain", "ood_change"],
                          "status": ["ok", "too few runs"], "predictors": ["iimm + zs_acc", None],
                          "prediction": [3.5, np.nan], "nested_lodo_mae": [1.25, np.nan], "level": [0.95, 0.95]})
    shown = selection_shown(frame)
    assert list(shown.columns) == ["method", "outcome", "status", "predicted from", "prediction", "nested LODO error"]
    assert shown["method"].tolist()[0] == "LoRA" and shown["outcome"].tolist() == [
        "in-domain gain (points)", "out-of-domain change (points)"]
    assert shown["predicted from"].tolist()[0] == "IIMM + zero-shot accuracy" and pd.isna(shown["predicted from"][1])
    assert shown["prediction"].tolist()[0] == 3.5 and frame["method"].tolist() == ["lora", "peft_new"]  # a copy


@pytest.mark.parametrize("value", [0.001, 5.0])
def test_a_constant_outcome_is_fitted_exactly_not_by_its_rounding_noise(runs, value):
    # every line fits a constant outcome: rounding noise (1e-19 at 0.001) chose intra_image over IIMM, and decided
    # the held-out coverage (6 of 7 at 5.0)
    constant = runs.assign(id_gain=value)
    table = fs.selection_table(constant, outcomes=("id_gain",))
    assert (table["chosen"] == "iimm").all() and (table["fold_agreement"] == 1).all()
    assert (table["coverage"] == 1).all() and (table["interval_half_width"] == 0).all()
    assert (table["nested_lodo_mae"] == 0).all() and (table["gain_vs_iimm"] == 0).all()
    values = {"iimm": 0.3, "inter_modal": 0.2, "intra_image": 0.4, "zs_acc": 50.0}
    out = fs.forecast_new(constant, values, model="worldclip-tiny", pretrained="world-v1", outcomes=("id_gain",))
    assert (out["prediction"] == value).all() and (out["lo"] == value).all() and (out["hi"] == value).all()
    assert (out["predictors"] == "iimm").all() and (out["coverage"] == 1).all()
