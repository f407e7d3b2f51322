"""A forecast of a sample too small for the baselines chooses among the zero-shot measures only: the job
measures that procedure's coverage too (selection_table(predictors=...), forecast-selection-zero-shot.csv),
and the forecast page matches each forecast to the procedure it ran by its candidate sets."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from core import forecast_select as fs
from core import predictor_eval as pe
from core import store
from tests.fixtures import make_fixture_records


@pytest.fixture(scope="module")
def runs():
    return store.records_to_frame(make_fixture_records(n_datasets=8, methods=("full",), noise=0.5))


def zero_shot_names(runs):
    return [name for name, family in pe.predictor_frame(runs)[1] if family == "zero-shot"]


def test_the_table_lets_only_the_named_predictors_compete(runs):
    full = fs.selection_table(runs, outcomes=("id_gain",))
    names = zero_shot_names(runs)
    reduced = fs.selection_table(runs, outcomes=("id_gain",), predictors=names)
    assert int(reduced["n_predictors"].iloc[0]) < int(full["n_predictors"].iloc[0])
    k = int(reduced["n_predictors"].iloc[0])
    assert int(reduced["n_sets"].iloc[0]) == 1 + k + k * (k - 1) // 2  # the mean, each, every pair
    assert set(reduced["chosen"].iloc[0].split(" + ")) <= set(names) | {fs.MEAN_ONLY}
    only_iimm = fs.selection_table(runs, outcomes=("id_gain",), predictors=["iimm"])
    assert int(only_iimm["n_sets"].iloc[0]) == 2 and only_iimm["chosen"].iloc[0] == "iimm"
    with pytest.raises(ValueError, match="sequence of predictor names"):
        fs.selection_table(runs, outcomes=("id_gain",), predictors="iimm")


def test_a_small_samples_forecast_gets_the_coverage_of_the_procedure_it_ran(runs):
    """Measured coverage was shown only for a forecast among every predictor: one of a sample too small for
    the baselines (zero-shot measures alone) showed none, though the job can measure that procedure too."""
    names = zero_shot_names(runs)
    full = fs.selection_table(runs, outcomes=("id_gain",))
    reduced = fs.selection_table(runs, outcomes=("id_gain",), predictors=names)
    both = pd.concat([full, reduced], ignore_index=True)  # as the page reads the two files
    small = fs.forecast_new(runs, {n: 0.3 for n in names}, model="worldclip-tiny", pretrained="world-v1",
                            outcomes=("id_gain",), coverage=False)
    assert int(small["n_sets"].iloc[0]) == int(reduced["n_sets"].iloc[0])
    got = fs.with_measured_coverage(small, both, model="worldclip-tiny", pretrained="world-v1")
    assert got["coverage"].iloc[0] == reduced["coverage"].iloc[0]
    assert math.isnan(got["jackknife_plus_coverage"].iloc[0])  # 8 datasets: not finite at 0.95
    _, every = fs.reference_points(runs)
    large = fs.forecast_new(runs, {n: 0.3 for n in every}, model="worldclip-tiny", pretrained="world-v1",
                            outcomes=("id_gain",), coverage=False)
    got = fs.with_measured_coverage(large, both, model="worldclip-tiny", pretrained="world-v1")
    assert got["coverage"].iloc[0] == full["coverage"].iloc[0]  # each forecast its own procedure's
    assert fs.with_measured_coverage(small, full, model="worldclip-tiny", pretrained="world-v1")[
        "coverage"].isna().all()  # without the reduced procedure's row: not measured, as before


def test_the_page_reads_the_zero_shot_table_beside_the_full_one(tmp_path, runs):
    names = zero_shot_names(runs)
    fs.selection_table(runs, outcomes=("id_gain",)).to_csv(tmp_path / "forecast-selection.csv", index=False)
    fs.selection_table(runs, outcomes=("id_gain",), predictors=names).to_csv(
        tmp_path / "forecast-selection-zero-shot.csv", index=False)
    read = fs.read_selections(tmp_path)
    assert len(read) == 2 and read["n_sets"].nunique() == 2  # same cell, two procedures: both kept


def test_each_coverage_column_comes_from_the_forecasts_own_procedure_and_datasets(runs):
    """The jackknife+ coverage needs the same candidate sets as the interval (not just the same datasets), the
    IIMM line's the same datasets, and of two rows of the same procedure the later is used."""
    names = zero_shot_names(runs)
    reduced = fs.selection_table(runs, outcomes=("id_gain",), predictors=names)
    full = fs.selection_table(runs, outcomes=("id_gain",))
    small = fs.forecast_new(runs, {n: 0.3 for n in names}, model="worldclip-tiny", pretrained="world-v1",
                            outcomes=("id_gain",), coverage=False)
    mine = reduced.assign(coverage=0.91, jackknife_plus_coverage=float("nan"), iimm_coverage=0.81)
    other = full.assign(coverage=0.5, jackknife_plus_coverage=0.5, iimm_coverage=0.81)  # every predictor
    elsewhere = reduced.assign(n_datasets=reduced["n_datasets"] + 1, coverage=0.1, iimm_coverage=0.1)
    newer = mine.assign(coverage=0.92)
    got = fs.with_measured_coverage(small, pd.concat([mine, newer, other, elsewhere], ignore_index=True),
                                    model="worldclip-tiny", pretrained="world-v1").iloc[0]
    assert got["coverage"] == 0.92  # the later of the two rows of its own procedure
    assert math.isnan(got["jackknife_plus_coverage"])  # not the every-predictor procedure's 0.5
    assert got["iimm_coverage"] == 0.81  # not the row on another number of datasets


def test_a_tag_that_reads_as_a_number_gets_its_measured_coverage(tmp_path, runs):
    # the CSV's tag 2024 came back as the int 2024, which the page's model ('worldclip-tiny', '2024') never matched:
    # the forecast showed no measured coverage
    tagged = runs.assign(pretrained="2024")
    table = fs.selection_table(tagged, outcomes=("id_gain",))
    table.to_csv(tmp_path / "forecast-selection.csv", index=False)
    _, names = fs.reference_points(tagged)
    new = fs.forecast_new(tagged, {n: 0.3 for n in names}, model="worldclip-tiny", pretrained="2024",
                          outcomes=("id_gain",), coverage=False)
    read = fs.read_selections(tmp_path)
    assert read["pretrained"].tolist() == ["2024"]
    got = fs.with_measured_coverage(new, read, model="worldclip-tiny", pretrained="2024")
    assert got["coverage"].tolist() == pytest.approx(table["coverage"].tolist())


def test_an_unknown_competing_predictor_is_named_not_dropped(runs):
    # predictors=['iimn'] dropped the typo: no IIMM, so the mean alone competed and every IIMM column was NaN
    with pytest.raises(ValueError, match=r"unknown predictor\(s\) \['iimn'\]; the runs have \['iimm', "):
        fs.selection_table(runs, outcomes=("id_gain",), coverage=False, predictors=["iimn", "zs_acc"])
    # a known measure these runs lack (a world without silhouettes) is no mistake: the others compete
    table = fs.selection_table(runs, outcomes=("id_gain",), coverage=False, predictors=["iimm", "silhouette_classes"])
    assert table["n_predictors"].tolist() == [1] and table["n_sets"].tolist() == [2]
