"""core.forecast: OLS, intervals, correlations, leave-one-dataset-out, per-method forecasts."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core import forecast, store
from tests.fixtures import LINES, make_fixture_records

X4, Y4 = [0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 4.0]
T_975_DF2 = 4.302652729749464  # t quantile 0.975 with 2 degrees of freedom (tables)


@pytest.mark.parametrize("level", [0.0, 3.0, -7.25])
def test_r2_of_a_constant_outcome_is_undefined_whatever_its_value(level):
    # R² = 1 - SSE/SST has SST = 0 here; the answer must not hang on rounding in SSE
    fit = forecast.fit_linear([0.1, 0.5, 0.9, 1.4, 2.0], [level] * 5)
    assert math.isnan(fit.r2) and fit.slope == pytest.approx(0, abs=1e-12)


def test_fit_linear_hand_case():
    # x̄=1.5, Sxx=5, Sxy=6.5 -> slope 1.3, intercept -0.2; residuals .2 -.1 -.4 .3 -> SSE .3; SST 8.75
    fit = forecast.fit_linear(X4, Y4)
    assert fit.slope == pytest.approx(1.3) and fit.intercept == pytest.approx(-0.2)
    assert fit.r2 == pytest.approx(1 - 0.3 / 8.75) and fit.n == 4
    assert fit.resid_std == pytest.approx(math.sqrt(0.15))


def test_prediction_interval_matches_textbook_formula():
    fit = forecast.fit_linear(X4, Y4)
    s = math.sqrt(0.15)
    # at the mean of x: se = s * sqrt(1 + 1/n)
    mean, lo, hi = fit.predict(1.5)
    assert mean == pytest.approx(1.75)
    assert hi - mean == pytest.approx(T_975_DF2 * s * math.sqrt(1 + 1 / 4))
    assert mean - lo == pytest.approx(hi - mean)
    # away from it: se = s * sqrt(1 + 1/n + (x0 - x̄)² / Sxx) = s * sqrt(1 + .25 + .45)
    mean, lo, hi = fit.predict(3.0)
    assert mean == pytest.approx(3.7) and hi - mean == pytest.approx(T_975_DF2 * s * math.sqrt(1.7))
    # the band of the mean line drops the "1 +"
    m, blo, bhi = forecast.confidence_band(fit, [1.5, 3.0])
    assert np.allclose(bhi - m, [T_975_DF2 * s * math.sqrt(0.25), T_975_DF2 * s * math.sqrt(0.7)])
    # a wider level gives a wider interval
    assert np.ptp(fit.predict(1.5, level=0.99)[1:]) > np.ptp(fit.predict(1.5, level=0.95)[1:])


def test_fit_invariances():
    base = forecast.fit_linear(X4, Y4)
    order = [2, 0, 3, 1]
    shuffled = forecast.fit_linear(np.take(X4, order), np.take(Y4, order))
    assert shuffled.slope == pytest.approx(base.slope) and shuffled.r2 == pytest.approx(base.r2)
    shifted = forecast.fit_linear(X4, np.add(Y4, 10.0))
    assert shifted.intercept == pytest.approx(base.intercept + 10) and shifted.r2 == pytest.approx(base.r2)
    scaled = forecast.fit_linear(np.multiply(X4, 4.0), Y4)
    assert scaled.slope == pytest.approx(base.slope / 4)
    assert scaled.predict(6.0) == pytest.approx(base.predict(1.5))


def test_fit_several_predictors_recovers_plane():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 2))
    fit = forecast.fit_linear(x, 1 + 2 * x[:, 0] - 3 * x[:, 1])
    assert np.allclose(fit.coef, [2, -3]) and fit.intercept == pytest.approx(1) and fit.r2 == pytest.approx(1)
    assert fit.predict_mean([1.0, 1.0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="one predictor"):
        _ = fit.slope


@pytest.mark.parametrize("x, y, match", [
    ([1, 2, 3], [1, 2], "same number"),
    ([1, 2, float("nan")], [1, 2, 3], "finite"),
    ([2, 2, 2], [1, 2, 3], "constant"),
    ([1], [1], "at least 2"),
    (3.0, 2.0, "1-D sequence or an"),  # a bare number: was an IndexError
    (np.ones((2, 2, 2)), [1, 2], "1-D sequence or an"),
])
def test_fit_linear_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        forecast.fit_linear(x, y)


def test_interval_needs_residual_degrees_of_freedom():
    fit = forecast.fit_linear([0, 1], [0, 1])
    assert fit.predict_mean(2.0) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 3 points"):
        fit.predict(2.0)
    with pytest.raises(ValueError, match="level"):
        forecast.fit_linear(X4, Y4).predict(1.0, level=1.5)
    for bad in ("0.9", None, True):  # a string or None raised TypeError from '<'
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            forecast.fit_linear(X4, Y4).predict(1.0, level=bad)
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            forecast.confidence_band(forecast.fit_linear(X4, Y4), [1.0], level=bad)


def test_kendall_tau_and_pearson_hand_cases():
    # pairs of (1,2,3,4) vs (1,3,2,4): 5 concordant, 1 discordant -> (5 - 1) / 6
    assert forecast.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    assert forecast.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert math.isnan(forecast.kendall_tau([1, 1, 1], [1, 2, 3]))
    # Sxy = 6.5, Sxx = 5, Syy = 8.75
    assert forecast.pearson_r(X4, Y4) == pytest.approx(6.5 / math.sqrt(5 * 8.75))
    with pytest.raises(ValueError, match="at least 2"):
        forecast.pearson_r([1], [1])


def test_leave_one_group_out_hand_case():
    out = forecast.leave_one_group_out(X4, Y4, ["a", "b", "c", "d"])
    # without x=0: line through (1,1),(2,2),(3,4) is 1.5x - 2/3; without x=1: 9/7 x - 1/7
    assert out["predictions"][0] == pytest.approx(-2 / 3)
    assert out["predictions"][1] == pytest.approx(8 / 7)
    assert out["per_group"]["a"] == pytest.approx(2 / 3) and out["n_groups"] == 4
    assert out["mae"] == pytest.approx(np.mean(np.abs(out["predictions"] - Y4)))


def test_leave_one_group_out_holds_whole_groups_out():
    x, y = [0, 0.1, 1, 1.1, 2, 2.1], [0, 5, 1, 1, 2, 2]
    out = forecast.leave_one_group_out(x, y, ["a", "a", "b", "b", "c", "c"])
    # fold "a" fits only (1,1),(1.1,1),(2,2),(2.1,2): both held-out points use that one line
    fit = forecast.fit_linear(x[2:], y[2:])
    assert np.allclose(out["predictions"][:2], fit.predict_mean(np.array([0, 0.1])))
    with pytest.raises(ValueError, match="at least 3 groups"):
        forecast.leave_one_group_out(x[:4], y[:4], ["a", "a", "b", "b"])
    # a NaN label equals nothing, not even itself: its points would never be held out
    with pytest.raises(ValueError, match="groups must not contain missing"):
        forecast.leave_one_group_out(x, y, [np.nan, np.nan, "b", "b", "c", "d"])
    with pytest.raises(ValueError, match="groups must not contain missing"):
        forecast.leave_one_group_out(x, y, [None, "a", "b", "b", "c", "c"])


def _runs(**kw):
    return store.records_to_frame(make_fixture_records(**kw))


def test_forecast_methods_recovers_exact_lines():
    runs = _runs(n_datasets=6, methods=("full", "bitfit"), seeds=(0, 1))
    out = forecast.forecast_methods(runs, {"iimm": 0.3}, model="worldclip-tiny", pretrained="world-v1")
    assert list(zip(out["method"], out["outcome"])) == [
        ("bitfit", "id_gain"), ("bitfit", "ood_change"), ("full", "id_gain"), ("full", "ood_change")]
    full = out.set_index(["method", "outcome"]).loc["full"]
    a, b, c = LINES["full"]
    assert full.loc["id_gain", "prediction"] == pytest.approx(a + b * 0.3)
    assert full.loc["ood_change", "prediction"] == pytest.approx(-c * 0.3)
    assert (out["status"] == "ok").all() and (out["n_datasets"] == 6).all() and (out["n_runs"] == 12).all()
    assert np.allclose(out["lodo_mae"], 0, atol=1e-9) and np.allclose(out["r2"], 1)


def test_forecast_methods_noisy_interval_and_extrapolation():
    runs = _runs(n_datasets=6, methods=("full",), seeds=(0, 1, 2), noise=1.0)
    inside = forecast.forecast_methods(runs, {"iimm": 0.3}, model="worldclip-tiny",
                                       pretrained="world-v1", outcomes=("id_gain",))
    row = inside.iloc[0]
    assert row["lo"] < row["prediction"] < row["hi"] and not row["extrapolation"]
    assert row["lodo_mae"] > 0
    outside = forecast.forecast_methods(runs, {"iimm": 0.9}, model="worldclip-tiny",
                                        pretrained="world-v1", outcomes=("id_gain",)).iloc[0]
    assert outside["extrapolation"] and outside["hi"] - outside["lo"] > row["hi"] - row["lo"]


def test_forecast_methods_reports_too_few_runs_and_skips_failed():
    runs = pd.concat([_runs(n_datasets=6, methods=("full",)),
                      _runs(n_datasets=3, methods=("lora",), seeds=(0, 1, 2))])
    out = forecast.forecast_methods(runs, {"iimm": 0.3}, model="worldclip-tiny", pretrained="world-v1")
    lora = out[out["method"] == "lora"]
    assert len(lora) == 2 and lora["status"].str.startswith("too few runs (n=3").all()
    assert lora["prediction"].isna().all()
    failed = _runs(n_datasets=4, methods=("full",), n_failed=1)
    row = forecast.forecast_methods(failed, {"iimm": 0.3}, model="worldclip-tiny",
                                    pretrained="world-v1", outcomes=("id_gain",)).iloc[0]
    assert row["n_datasets"] == 3 and row["status"].startswith("too few")
    assert forecast.forecast_methods(failed, {"iimm": 0.3}, model="other", pretrained="x").empty


def test_forecast_methods_other_predictor_from_json_column():
    runs = _runs(n_datasets=5, methods=("full",))
    out = forecast.forecast_methods(runs, {"zs_modality_gap": 0.7}, model="worldclip-tiny",
                                    pretrained="world-v1", predictor="zs_modality_gap",
                                    outcomes=("id_gain",))
    a, b, _ = LINES["full"]  # modality_gap = 1 - iimm in the fixture
    assert out["slope"].iloc[0] == pytest.approx(-b) and out["prediction"].iloc[0] == pytest.approx(a + b * 0.3)


@pytest.mark.parametrize("predictors, kwargs, match", [
    ({}, {}, "no value"),
    ({"iimm": float("nan")}, {}, "finite"),
    ({"iimm": 0.3}, {"min_runs": 2}, "min_runs"),
    ({"nope": 0.3}, {"predictor": "nope"}, "no predictor column"),
    ({"iimm": "0.3"}, {}, "finite number"),
    ({"iimm": 0.3}, {"level": 2.0}, "level must be a number between 0 and 1"),
    ({"iimm": 0.3}, {"level": "0.9"}, "level must be a number between 0 and 1"),  # was a TypeError from '<'
])
def test_forecast_methods_rejects_bad_input(predictors, kwargs, match):
    with pytest.raises(ValueError, match=match):
        forecast.forecast_methods(_runs(), predictors, model="worldclip-tiny", pretrained="world-v1", **kwargs)


def test_forecast_methods_takes_numpy_scalars_like_floats():
    runs = _runs(n_datasets=6, methods=("full",))
    want = forecast.forecast_methods(runs, {"iimm": 0.25}, model="worldclip-tiny", pretrained="world-v1")
    for value in (np.float32(0.25), np.float64(0.25)):
        got = forecast.forecast_methods(runs, {"iimm": value}, model="worldclip-tiny", pretrained="world-v1")
        pd.testing.assert_frame_equal(got, want)


def test_predictor_table_and_expansion():
    runs = _runs(n_datasets=5, methods=("full", "lora"))
    wide = forecast.expand_predictor_columns(runs)
    assert np.allclose(wide["zs_iimm"], wide["iimm"]) and np.allclose(wide["tf_gbc"], 2 * wide["iimm"])
    table = forecast.predictor_table(runs, ["iimm", "tf_logme"], ("id_gain",))
    assert len(table) == 4 and (table["n"] == 5).all()
    by = table.set_index(["method", "predictor"])
    assert by.loc[("full", "iimm"), "pearson_r"] == pytest.approx(1)
    assert by.loc[("full", "tf_logme"), "kendall_tau"] == pytest.approx(-1)  # logme = -iimm
    assert np.allclose(table["r2"], 1) and np.allclose(table["lodo_mae"], 0, atol=1e-9)
    with pytest.raises(ValueError, match="no column"):
        forecast.predictor_table(runs, ["zs_missing"], ("id_gain",))


@pytest.mark.parametrize("fn", [forecast.pearson_r, forecast.kendall_tau])
def test_correlations_refuse_a_bare_number_with_a_value_error(fn):
    with pytest.raises(ValueError, match="1-D sequence or an"):
        fn(0.5, 0.5)


def test_pearson_r_is_scale_free_at_extreme_magnitudes():
    x = np.array([1.0, 2.0, 4.0, 3.0])
    y = np.array([2.0, 1.0, 5.0, 4.0])
    ref = forecast.pearson_r(x, y)
    for scale in (1e-200, 1e200):
        assert forecast.pearson_r(x * scale, y * scale) == pytest.approx(ref, rel=1e-12)
    assert forecast.pearson_r(x * 1e-200, x * 1e-200) == pytest.approx(1.0)


def test_a_fit_whose_sums_overflow_is_refused_not_infinite():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # refused in words, without numpy's overflow warnings besides
        with pytest.raises(ValueError, match="too large to fit"):
            forecast.fit_linear([1.0, 2.0, 4.0, 3.0], np.array([2.0, 1.0, 5.0, 4.0]) * 1e200)


def test_predict_names_the_wrong_number_of_predictor_values():
    fit = forecast.fit_linear(np.random.default_rng(0).normal(size=(8, 2)), np.arange(8.0))
    for x0 in ([1.0, 2.0, 3.0], [[1.0, 2.0, 3.0]], 1.0):
        with pytest.raises(ValueError, match="x0 must hold 2 predictor value"):
            fit.predict(x0)
    assert np.shape(fit.predict([[1.0, 2.0], [3.0, 4.0]])[0]) == (2,)
    one = forecast.fit_linear([1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 5.0, 4.0])
    assert np.shape(one.predict([1.0, 2.0, 3.0])[0]) == (3,) and isinstance(one.predict(1.0)[0], float)


def test_lodo_error_is_a_mean_over_points_not_over_groups():
    """Groups of 1, 1 and 3 points: the docstring's per-point mean weighs the big group three times."""
    x, y = [0.0, 1.0, 2.0, 2.5, 3.0], [0.0, 2.0, 1.0, 4.0, 2.0]
    out = forecast.leave_one_group_out(x, y, ["a", "b", "c", "c", "c"])
    per_point = np.abs(out["predictions"] - np.asarray(y))
    assert out["mae"] == pytest.approx(per_point.mean())
    assert out["mae"] != pytest.approx(np.mean(list(out["per_group"].values())))  # the two differ here


def test_failed_runs_with_numbers_are_not_fitted():
    """A failed record may still carry iimm and id_gain (a submission): dataset_means uses ok runs only."""
    runs = pd.DataFrame({"dataset": ["a", "a", "b"], "status": ["ok", "failed", "ok"],
                         "iimm": [0.2, 0.9, 0.3], "id_gain": [1.0, 99.0, 2.0]})
    means = forecast.dataset_means(runs, ["iimm", "id_gain"]).set_index("dataset")
    assert means.loc["a", "id_gain"] == 1.0 and means.loc["a", "n_runs"] == 1


def test_fit_notes_say_why_a_row_has_no_statistics():
    table = pd.DataFrame({"n": [0, 1, 2, 3, 5], "pearson_r": [np.nan, np.nan, np.nan, np.nan, 0.4]})
    assert forecast.fit_notes(table) == [
        "no fit: no dataset(s) with this outcome, a fit needs 3",
        "no fit: 1 dataset(s) with this outcome, a fit needs 3",
        "no fit: 2 dataset(s) with this outcome, a fit needs 3",
        "no fit: the predictor is the same on every dataset",
        ""]
