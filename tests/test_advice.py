"""core.advice: the adapter over forecast results and the verdict rules."""
from __future__ import annotations

import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core import advice


def result(gains, oods, r2=0.9, lodo=1.0, half=2.0, extrapolation=False, statuses=None):
    methods = ["full_ft", "lora", "linear_probe", "zero_shot"][:len(gains)]
    wide = pd.DataFrame({"method": methods, "id_gain": gains, "ood_change": oods,
                         "id_gain_lo": np.subtract(gains, half), "id_gain_hi": np.add(gains, half),
                         "ood_change_lo": np.subtract(oods, 1), "ood_change_hi": np.add(oods, 1),
                         "id_gain_r2": r2, "ood_change_r2": r2, "id_gain_lodo_mae": lodo,
                         "ood_change_lodo_mae": lodo, "n_datasets": 15, "extrapolation": extrapolation,
                         "status": statuses or ["ok"] * len(gains)})
    return SimpleNamespace(forecasts=wide)


def chosen_sets(predictors: str) -> pd.DataFrame:
    """forecast_new-like rows: every method and outcome forecast from ``predictors``, at the result() gains."""
    return pd.DataFrame([{"method": m, "outcome": o, "status": "ok", "predictors": predictors,
                          "prediction": g, "lo": g - 1, "hi": g + 1, "nested_lodo_mae": 1.0, "extrapolation": False}
                         for m, gains in (("full_ft", (20.0, -6.0)), ("lora", (12.0, -2.0)),
                                          ("linear_probe", (5.0, -3.0)))
                         for o, g in zip(("id_gain", "ood_change"), gains)])


def test_forecast_rows_readable_and_pareto():
    rows = advice.forecast_rows(result([20.0, 15.0, 5.0, 0.0], [-6.0, -2.0, -3.0, 0.0]))
    assert list(rows["method_title"]) == ["Full fine-tuning", "LoRA", "Linear probe"]  # zero-shot left out
    assert rows["pareto"].tolist() == [True, True, False]  # the probe gains less AND forgets more than LoRA
    assert list(rows.columns) == advice.ROW_COLUMNS


def test_advise_names_the_methods_and_grades_confidence():
    good = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], half=1.0)))
    assert good.confidence == "good" and "Full fine-tuning, +20.0" in good.headline[0]
    assert "Least forgetting for at least half that gain: LoRA" in good.headline[1]
    weak = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], r2=0.05)))
    assert weak.confidence == "weak" and weak.reasons[0].startswith("Treat this as a hint")
    noisy = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], lodo=20.0)))
    assert noisy.confidence == "weak"  # typical error larger than the spread between methods
    overlap = advice.advise(advice.forecast_rows(result([20.0, 19.0, 5.0], [-6.0, -2.0, -3.0], half=3.0)))
    assert overlap.confidence == "moderate" and "overlaps those of 1 of the other 2" in overlap.reasons[-1]


def test_advise_warnings():
    rows = advice.forecast_rows(result([20.0, 12.0], [-6.0, -2.0], extrapolation=True))
    out = advice.advise(rows, toy_model=True, zs_acc=30.0, n_classes=4)
    assert any("toy model" in w for w in out.warnings) and any("outside the range" in w for w in out.warnings)
    assert any("close to chance" in w for w in out.warnings)
    below = advice.advise(rows, zs_acc=14.0, n_classes=2).warnings  # far under the 50 % of a coin flip
    assert any("14 %) is below chance (50 %)" in w for w in below) and not any("close to" in w for w in below)
    many = advice.advise(rows, zs_acc=0.1, n_classes=1000).warnings  # chance 0.1 %: not rounded to "0 %"
    assert any("(0.1 %) is close to chance (0.1 %)" in w for w in many)
    assert "RANDOM WEIGHTS" in advice.advise(rows, random_weights=True).warnings[0]
    assert not advice.advise(rows, zs_acc=60.0, n_classes=4).warnings[1:]  # only extrapolation
    none = advice.advise(advice.forecast_rows(result([np.nan, np.nan], [np.nan, np.nan],
                                                     statuses=["too few runs", "too few runs"])))
    assert none.confidence == "weak" and "No method could be forecast" in none.headline[0]


def test_gains_without_any_out_of_domain_forecast_are_not_called_no_forecast():
    """Reference runs without an OOD panel: the page showed gain forecasts under "No method could be
    forecast from the stored runs"."""
    rows = advice.forecast_rows(result([4.0, 2.0], [np.nan, np.nan], statuses=["ood_change: too few runs"] * 2))
    out = advice.advise(rows)
    assert out.confidence == "weak" and out.headline[0].startswith("Only in-domain gains could be forecast")
    assert "nothing can be said about forgetting" in out.headline[0]


@pytest.mark.parametrize("gains", [[3.0], [3.0, 3.0]])
def test_advise_small_and_tied_inputs(gains):
    out = advice.advise(advice.forecast_rows(result(gains, [-1.0] * len(gains))))
    assert out.headline[0].startswith("Predicted to gain most: Full fine-tuning, +3.0")
    assert out.confidence == "weak"  # no spread between methods: a 1-point typical error already exceeds it


def test_no_reference_runs_gives_empty_rows():
    from core import predict

    empty = predict._wide(pd.DataFrame(columns=["method", "outcome", "status"]))
    rows = advice.forecast_rows(SimpleNamespace(forecasts=empty))
    assert rows.empty and list(rows.columns) == advice.ROW_COLUMNS
    assert "No method could be forecast" in advice.advise(rows).headline[0]


def test_selected_predictor_sets_replace_the_iimm_line_and_keep_it_beside():
    res = result([20.0, 15.0, 5.0], [-6.0, -2.0, -3.0])
    res.selected = pd.DataFrame({"method": ["lora", "lora", "full_ft"], "outcome": ["id_gain", "ood_change", "id_gain"],
                                 "status": ["ok", "ok", "too few runs"], "predictors": ["emms", "iimm + zs_acc", None],
                                 "prediction": [11.0, -1.0, np.nan], "lo": [9.0, -2.5, np.nan], "hi": [13.0, 0.5, np.nan],
                                 "nested_lodo_mae": [0.7, 0.4, np.nan]})
    rows = advice.forecast_rows(res).set_index("method")
    assert rows.loc["lora", ["id_gain", "id_gain_lo", "id_gain_hi", "gain_lodo"]].tolist() == [11.0, 9.0, 13.0, 0.7]
    assert rows.loc["lora", "gain_basis"] == "EMMS" and rows.loc["lora", "iimm_gain"] == 15.0
    # readable predictor names, as the page shows them elsewhere (the keys 'iimm + zs_acc' were shown raw)
    assert rows.loc["lora", "ood_basis"] == "IIMM + zero-shot accuracy" and rows.loc["lora", "ood_change"] == -1.0
    assert rows.loc["full_ft", "gain_basis"] == "IIMM" and rows.loc["full_ft", "id_gain"] == 20.0


def test_no_method_predicted_to_gain_is_a_verdict_not_a_crash():
    out = advice.advise(advice.forecast_rows(result([-1.0, -3.0], [-1.0, -2.0])))  # was: argmax of an empty sequence
    assert "Full fine-tuning, -1.0" in out.headline[0] and "No method is predicted to gain in-domain." in out.headline


def test_a_chosen_predictors_extrapolation_and_impossible_gains_are_warned_about():
    res = result([20.0, 15.0, 5.0], [-6.0, -2.0, -3.0])  # IIMM inside its reference range
    res.selected = pd.DataFrame({"method": ["lora"], "outcome": ["id_gain"], "status": ["ok"],
                                 "predictors": ["zs_acc + emms"], "prediction": [15.0], "lo": [13.0], "hi": [17.0],
                                 "nested_lodo_mae": [0.7], "extrapolation": [True]})  # zs_acc far outside its range
    rows = advice.forecast_rows(res)
    assert rows.set_index("method").loc["lora", "extrapolation"]  # was: only IIMM's flag counted
    out = advice.advise(rows, zs_acc=95.0, n_classes=4)
    assert any("on a predictor that 1 of the forecasts use" in w for w in out.warnings)
    assert any("2 predicted gain(s) lie outside what is possible here (-95.0 to +5.0 points" in w
               and "not clipped" in w for w in out.warnings)


def test_confidence_reads_the_fit_of_the_lines_actually_shown():
    res = result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], r2=0.05, half=1.0)  # the IIMM lines explain nothing
    res.selected = chosen_sets("zs_acc + emms")
    out = advice.advise(advice.forecast_rows(res))
    assert out.confidence == "moderate"  # was "weak", from the R² of IIMM lines no forecast shown uses
    assert out.reasons[0].startswith("Every forecast shown uses predictors chosen on held-out datasets")


def test_the_toy_warning_names_the_model():
    rows = advice.forecast_rows(result([20.0, 12.0], [-6.0, -2.0]))
    out = advice.advise(rows, toy_model=True, model_title="worldclip-tiny-sigmoid (world-v2-b)")
    assert out.warnings[0].startswith("worldclip-tiny-sigmoid (world-v2-b) is a toy model")


def test_a_small_sample_is_warned_about():
    rows = advice.forecast_rows(result([20.0, 12.0], [-6.0, -2.0]))
    assert any("Your sample is small (2 images for 2 classes)" in w
               for w in advice.advise(rows, n_images=2, n_classes=2).warnings)
    assert not any("small" in w for w in advice.advise(rows, n_images=10, n_classes=2).warnings)


def test_a_forecast_that_chose_iimm_alone_is_read_as_the_iimm_line():
    """forecast_new labels a choice of IIMM alone 'iimm'; the verdict looked for 'IIMM', so it never counted
    the R² of the lines it showed and called poor IIMM fits 'moderate'."""
    res = result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], r2=0.05, half=1.0)  # the IIMM lines explain nothing
    res.selected = chosen_sets("iimm")
    rows = advice.forecast_rows(res)
    assert set(rows["gain_basis"]) == {"IIMM"}
    out = advice.advise(rows)
    assert out.confidence == "weak" and "explain 5% of the spread" in " ".join(out.reasons)


def test_the_basis_label_matches_what_forecast_new_writes():
    from core import forecast_select
    from core.store import records_to_frame
    from tests.fixtures import make_fixture_records

    runs = records_to_frame(make_fixture_records(n_datasets=8, methods=("lora",), noise=0.0))
    out = forecast_select.forecast_new(runs, {"iimm": 0.3}, model="worldclip-tiny", pretrained="world-v1",
                                       coverage=False)
    res = result([20.0], [-6.0])
    res.forecasts["method"] = ["lora"]
    res.selected = out
    assert advice.forecast_rows(res)["gain_basis"].tolist() == ["IIMM"]  # the only candidate, as labelled


@pytest.mark.parametrize("second_gain, named", [(8.0, False), (10.0, True)])
def test_least_forgetting_is_named_only_for_at_least_half_the_top_gain(second_gain, named):
    out = advice.advise(advice.forecast_rows(result([20.0, second_gain, 5.0], [-6.0, -1.0, -3.0])))
    line = [h for h in out.headline if h.startswith("Least forgetting")]
    assert bool(line) == named and (not named or "LoRA" in line[0])


@pytest.mark.parametrize("zs_acc, words", [(45.0, "close to chance"), (39.0, "below chance")])
def test_zero_shot_accuracy_near_or_below_chance_is_told_apart(zs_acc, words):
    out = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0])), zs_acc=zs_acc,
                        n_classes=2)  # chance 50 %: 45 is within the 10-point wobble, 39 is below it
    assert any(words in w for w in out.warnings), out.warnings


def test_intervals_that_could_not_be_computed_are_not_read_as_clear_of_each_other():
    rows = advice.forecast_rows(result([20.0, 5.0], [-6.0, -1.0], r2=0.9, lodo=1.0, half=np.nan))
    verdict = advice.advise(rows)
    assert verdict.confidence == "moderate"  # was "good": NaN >= NaN is False, so 'overlaps 0 of 1'
    text = " ".join(verdict.headline + verdict.reasons)
    assert "nan" not in text.lower() and "no interval could be computed" in verdict.headline[0]
    assert "The top method has no interval" in text
    other = result([20.0, 5.0], [-6.0, -1.0], r2=0.9, lodo=1.0, half=2.0)
    other.forecasts.loc[1, ["id_gain_lo", "id_gain_hi"]] = np.nan  # only the runner-up's interval is missing
    verdict = advice.advise(advice.forecast_rows(other))
    assert verdict.confidence == "moderate" and "1 of them have no interval to compare." in verdict.reasons[-1]
    clear = advice.advise(advice.forecast_rows(result([20.0, 5.0], [-6.0, -1.0], r2=0.9, lodo=1.0, half=2.0)))
    assert clear.confidence == "good" and "overlaps those of 0 of the other 1 methods." in clear.reasons[-1]


@pytest.mark.parametrize("gains, oods", [([10.0], [-5.0]), ([6.0, 6.0], [-1.0, -1.0]), ([10.0, 9.0], [-5.0, -1.0])])
def test_a_weak_verdict_says_why_and_does_not_blame_a_good_fit(gains, oods):
    # R² 0.9, but an error (2 points) as large as the spread of the forecasts (0, 0, 1 points): weak, for that reason
    verdict = advice.advise(advice.forecast_rows(result(gains, oods, r2=0.9, lodo=2.0)))
    assert verdict.confidence == "weak"
    assert "explain 90%" in verdict.reasons[1] and "the fit is weak" not in verdict.reasons[0]
    assert "as large as the differences between the methods" in verdict.reasons[0]
    assert "the fit is weak" in advice.advise(advice.forecast_rows(result(gains, oods, r2=0.1))).reasons[0]


def test_the_reference_count_is_the_fewest_behind_any_outcome_forecast():
    from core import predict

    # gain fitted on 4 datasets, OOD change on 5: the table said 5 beside the gain forecast
    def long(n_gain: int, n_ood: int) -> pd.DataFrame:
        return pd.DataFrame([{"method": "lora", "outcome": o, "n_datasets": n, "status": "ok", "prediction": 1.0,
                              "lo": 0.0, "hi": 2.0, "lodo_mae": 1.0, "r2": 0.5, "kendall_tau": 0.4,
                              "extrapolation": False} for o, n in (("id_gain", n_gain), ("ood_change", n_ood))])

    assert predict._wide(long(4, 5))["n_datasets"].tolist() == [4]
    assert predict._wide(long(5, 4))["n_datasets"].tolist() == [4]
    assert predict._wide(long(6, 6))["n_datasets"].tolist() == [6]


def test_the_small_sample_warning_counts_images_per_class():
    rows = advice.forecast_rows(result([20.0, 12.0], [-6.0, -2.0]))
    small = advice.advise(rows, n_images=9, n_classes=2).warnings  # 4.5 images per class, under 5
    assert any("Your sample is small (9 images for 2 classes)" in w for w in small)
    assert not any("small" in w for w in advice.advise(rows, n_images=10, n_classes=2).warnings)


def test_pareto_front_ignores_methods_whose_forecast_failed():
    """A failed forecast's leftover numbers must not push the ok methods off the trade-off front."""
    rows = advice.forecast_rows(result([20.0, 12.0, 50.0], [-6.0, -2.0, 5.0], statuses=["ok", "ok", "too_few"]))
    assert rows["pareto"].tolist() == [True, True, False]
    out = advice.advise(rows)
    assert out.headline[-1] == "Best trade-offs (nothing predicted to beat them on both): Full fine-tuning, LoRA."


def test_random_weights_warning_replaces_the_toy_warning():
    rows = advice.forecast_rows(result([20.0, 12.0], [-6.0, -2.0]))
    warnings = advice.advise(rows, toy_model=True, random_weights=True).warnings
    assert len(warnings) == 1 and warnings[0].startswith("The model has RANDOM WEIGHTS")


def test_stale_notice_names_what_the_forecast_was_made_with():
    from types import SimpleNamespace

    zip_upload = SimpleNamespace(name="s.zip", file_id="id-1")
    made = advice.forecast_inputs(zip_upload, "worldclip-tiny@random", "a photo of a {c}")
    assert made == ("s.zip", "worldclip-tiny@random", "a photo of a {c}", "id-1")
    assert advice.stale_notice(made, made) is None
    notice = advice.stale_notice(made, advice.forecast_inputs(zip_upload, "worldclip-tiny@random", "a {c}"))
    assert r"the template a photo of a \{c\}" in notice and "s.zip" in notice.replace("\\", "")
    npz = SimpleNamespace(name="E.NPZ", file_id="id-2")
    made = advice.forecast_inputs(npz, "m@t", "a photo of a {c}")
    assert made[2] is None and advice.forecast_inputs(npz, "m@t", "other {c}") == made  # an .npz has no template
    notice = advice.stale_notice(made, advice.forecast_inputs(npz, "m@u", "other {c}"))
    assert "and the template" not in notice and "with the model m@" in notice
    renewed = SimpleNamespace(name="E.NPZ", file_id="id-3")  # same name, another upload
    assert advice.stale_notice(made, advice.forecast_inputs(renewed, "m@t", "x")) is not None


def test_a_forecast_that_rounds_to_zero_is_written_plus_zero_not_minus_zero():
    """A predicted out-of-domain change of -0.04 read '-0.0 points out-of-domain' in the verdict."""
    verdict = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-0.04, -2.0, -3.0])))
    assert "+20.0 points in-domain (95 % interval +18.0 to +22.0) and +0.0 points out-of-domain." in verdict.headline[0]
    assert not any("-0.0" in text for text in verdict.headline + verdict.reasons + verdict.warnings)


def test_an_unknown_typical_error_is_said_in_words_not_as_nan():
    """With no leave-one-dataset-out error, the verdict's reasons read 'were off by nan points on average'."""
    verdict = advice.advise(advice.forecast_rows(result([20.0, 12.0, 5.0], [-6.0, -2.0, -3.0], lodo=np.nan)))
    assert verdict.confidence == "weak"
    assert not any(re.search(r"\bnan\b", text) for text in verdict.reasons), verdict.reasons
    assert any("could not be measured" in text for text in verdict.reasons)


def test_forecast_rows_give_methods_that_share_a_title_distinct_titles():
    """'lora' of the grid and 'LoRA', 'Lora' of a user's registry are all titled 'LoRA': the Forecast page's table
    showed three 'LoRA' rows with different numbers, and its verdict could name 'LoRA' for any of them."""
    res = result([20.0, 15.0, 5.0], [-6.0, -2.0, -3.0])
    res.forecasts["method"] = ["lora", "LoRA", "Lora"]
    titles = advice.forecast_rows(res).set_index("method")["method_title"]
    assert titles.nunique() == 3 and titles["lora"] == "LoRA · lora" and titles["Lora"] == "LoRA · Lora"
    assert "Predicted to gain most: LoRA · lora," in advice.advise(advice.forecast_rows(res)).headline[0]


def test_methods_none_of_which_could_be_forecast_give_rows_without_a_pandas_deprecation():
    """Every method short of reference datasets: no forecast sets ``extrapolation``, so predict._wide leaves the
    column all-NaN float, and filling it with False was deprecated in pandas 3 (a Pandas4Warning; "in a future
    version ... will raise"), so the page would fail on exactly the store that most needs its advice."""
    from core import predict

    raw = pd.DataFrame([{"method": m, "outcome": o, "status": "too few reference datasets (3; needs 4)",
                         "n_datasets": 3} for m in ("lora", "full_ft") for o in ("id_gain", "ood_change")])
    wide = predict._wide(raw)
    assert wide["extrapolation"].isna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        warnings.simplefilter("error", FutureWarning)
        rows = advice.forecast_rows(SimpleNamespace(forecasts=wide))
    assert rows["extrapolation"].dtype == bool and not rows["extrapolation"].any()
    assert list(rows["method"]) == ["full_ft", "lora"] and not rows["ok"].any()
