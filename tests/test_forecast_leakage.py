"""Leakage and invariance of the forecast statistics (core.forecast_select, core.forecast): the held-out
dataset's outcome and predictors never reach its own prediction, interval or chosen predictor set; seeds of a
dataset are held out together; row order, a predictor's unit and the outcome's sign change nothing they should
not; coverage is counted over held-out datasets. Wild values (1e6, a sign flip, NaN where the API allows it)
must leave the held-out dataset's numbers bit-identical."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core import forecast
from core import forecast_select as fs
from core.forecast_select import procedure

N, P, HEAD = 9, 4, 0  # datasets, predictors, IIMM's column
SETS = [tuple(s) for s in fs.candidate_sets(range(P))]
DEFAULT = SETS.index((HEAD,))


def _data(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Predictor 2 carries most of the outcome, so folds choose other sets than IIMM's alone."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, P))
    return x, 3.0 * x[:, 2] + 0.5 * x[:, 0] + 0.4 * rng.standard_normal(N)


def _wild(value: float) -> list[float]:
    return [1e6, -value, -1e6 * (1 + abs(value))]


@pytest.mark.parametrize("rule", fs.SELECTION_RULES)
def test_rows_outside_the_reference_rows_are_invisible_even_as_nan(rule):
    """select_set and nested_lodo read the reference ``rows`` only: no standardisation, screen or tolerance
    is fitted on every row of x and y."""
    x, y = _data()
    rows = np.arange(1, N)
    best, errors = fs.select_set(x, y, rows, SETS, default=DEFAULT, rule=rule)
    resid, chosen = fs.nested_lodo(x, y, rows, SETS, DEFAULT, rule=rule)
    for wild in (np.nan, 1e6, -1e6):
        xw, yw = x.copy(), y.copy()
        xw[0], yw[0] = wild, wild
        best_w, errors_w = fs.select_set(xw, yw, rows, SETS, default=DEFAULT, rule=rule)
        assert best_w == best and np.array_equal(errors_w, errors)
        resid_w, chosen_w = fs.nested_lodo(xw, yw, rows, SETS, DEFAULT, rule=rule)
        assert chosen_w == chosen and np.array_equal(resid_w, resid)


@pytest.mark.parametrize("rule", fs.SELECTION_RULES)
def test_a_nested_fold_never_sees_its_held_out_outcome(rule):
    """Fold k of nested LODO (the honest error, the jackknife+ fits): its chosen set and its line, evaluated
    anywhere, are bit-identical whatever the held-out dataset's outcome is."""
    x, y = _data()
    rows = np.arange(N)
    _, chosen, preds = procedure._nested(x, y, rows, SETS, DEFAULT, rule, at=x)
    assert len(set(chosen)) > 1  # the folds disagree: the test can see a changed choice
    for i in rows:
        for wild in [*_wild(y[i]), np.nan]:  # NaN: the other folds' numbers are NaN, fold i's are not
            yw = y.copy()
            yw[i] = wild
            resid_w, chosen_w, preds_w = procedure._nested(x, yw, rows, SETS, DEFAULT, rule, at=x)
            assert chosen_w[i] == chosen[i]
            assert np.array_equal(preds_w[i], preds[i])  # fold i's line, at every dataset
            assert resid_w[i] == pytest.approx(yw[i] - preds[i][i], rel=1e-12, nan_ok=True)


@pytest.mark.parametrize("rule", fs.SELECTION_RULES)
def test_a_nested_folds_choice_never_sees_its_held_out_predictors(rule):
    """Fold i's chosen set ignores x_i altogether, and its prediction ignores x_i outside the chosen columns."""
    x, y = _data()
    rows = np.arange(N)
    _, chosen, preds = procedure._nested(x, y, rows, SETS, DEFAULT, rule, at=x)
    for i in rows:
        for wild in _wild(float(x[i].max())):
            xw = x.copy()
            xw[i] = wild
            _, chosen_w, _ = procedure._nested(xw, y, rows, SETS, DEFAULT, rule)
            assert chosen_w[i] == chosen[i]
            unused = [c for c in range(P) if c not in SETS[chosen[i]]]
            xw = x.copy()
            xw[i, unused] = wild
            _, chosen_w, preds_w = procedure._nested(xw, y, rows, SETS, DEFAULT, rule, at=x)
            assert chosen_w[i] == chosen[i] and np.array_equal(preds_w[i], preds[i])


def _coverage_folds(monkeypatch, x, y, rule, level=0.8):
    """lodo_coverage's result and, per held-out dataset, what it built for it: the chosen columns, the
    prediction, the half-width, the jackknife+ interval and the IIMM line's fit."""
    folds: list[dict] = []
    real_fit_predict, real_half = procedure._fit_predict, procedure._half_width
    real_jp = procedure.jackknife_plus_interval
    real_linear = forecast.fit_linear

    def fit_predict(x_, y_, rows, cols, at):
        out = real_fit_predict(x_, y_, rows, cols, at)
        folds.append({"rows": tuple(rows), "cols": cols, "pred": float(out[0])})
        return out

    def half(resid, lvl):
        folds[-1]["half"] = real_half(resid, lvl)
        return folds[-1]["half"]

    def jp(*args, **kwargs):
        folds[-1]["jp"] = real_jp(*args, **kwargs)
        return folds[-1]["jp"]

    def linear(xs, ys):
        fit = real_linear(xs, ys)
        folds[-1]["iimm"] = (fit.intercept, float(fit.coef[0]), fit.resid_std)
        return fit

    with monkeypatch.context() as m:
        m.setattr(procedure, "_fit_predict", fit_predict)
        m.setattr(procedure, "_half_width", half)
        m.setattr(procedure, "jackknife_plus_interval", jp)
        m.setattr(forecast, "fit_linear", linear)
        cov = fs.lodo_coverage(x, y, SETS, HEAD, level, rule=rule)
    assert len(folds) == len(y)
    return cov, folds


@pytest.mark.parametrize("rule", ["one-se", "bonferroni"])
def test_the_interval_coverage_scores_is_built_without_the_scored_dataset(monkeypatch, rule):
    """For each held-out dataset, lodo_coverage's prediction, half-width, jackknife+ interval and IIMM line
    are bit-identical whatever that dataset's outcome is, and are fitted on the other datasets' rows."""
    x, y = _data()
    cov, folds = _coverage_folds(monkeypatch, x, y, rule)
    assert len({f["cols"] for f in folds}) > 1
    for i, fold in enumerate(folds):
        assert fold["rows"] == tuple(np.delete(np.arange(N), i))
    for i in range(N):
        for wild in _wild(y[i]):
            yw = y.copy()
            yw[i] = wild
            _, folds_w = _coverage_folds(monkeypatch, x, yw, rule)
            assert folds_w[i] == folds[i]
    # the coverage is the share of held-out datasets whose own interval holds them
    hits = [abs(y[i] - f["pred"]) <= f["half"] for i, f in enumerate(folds)]
    assert cov["coverage"] == np.mean(hits) and cov["mean_width"] == np.mean([2 * f["half"] for f in folds])


def test_the_coverage_interval_ignores_the_held_out_predictors_it_does_not_use(monkeypatch):
    x, y = _data()
    _, folds = _coverage_folds(monkeypatch, x, y, "bonferroni")
    for i, fold in enumerate(folds):
        unused = [c for c in range(P) if c not in fold["cols"]]
        for wild in _wild(float(x[i].max())):
            xw = x.copy()
            xw[i, [c for c in unused if c != HEAD]] = wild
            _, folds_w = _coverage_folds(monkeypatch, xw, y, "bonferroni")
            same = ("rows", "cols", "pred", "half", "iimm")  # jackknife+: the folds' lines at x_i may use them
            assert {k: folds_w[i][k] for k in same} == {k: fold[k] for k in same}
            xw = x.copy()
            xw[i] = wild  # every predictor: the set, the residual scale and IIMM's fit stay
            _, folds_w = _coverage_folds(monkeypatch, xw, y, "bonferroni")
            assert (folds_w[i]["cols"], folds_w[i]["half"], folds_w[i]["iimm"]) == (
                fold["cols"], fold["half"], fold["iimm"])


def test_an_outcomes_sign_and_a_predictors_unit_change_no_choice():
    """OLS with an intercept promises it: a predictor in other units (a positive factor, a shift) leaves every
    fold's choice and line's prediction; the outcome's sign flips the residuals and nothing else."""
    x, y = _data()
    rows = np.arange(N)
    for rule in ("one-se", "bonferroni"):
        resid, chosen = fs.nested_lodo(x, y, rows, SETS, DEFAULT, rule=rule)
        cov = fs.lodo_coverage(x, y, SETS, HEAD, 0.8, rule=rule)
        for column, factor, shift in ((2, 1e-6, 0.0), (2, 3.7e5, -40.0), (HEAD, 1e-3, 1.0), (1, 2.0 ** 20, 0.0)):
            xs = x.copy()
            xs[:, column] = xs[:, column] * factor + shift
            resid_s, chosen_s = fs.nested_lodo(xs, y, rows, SETS, DEFAULT, rule=rule)
            assert chosen_s == chosen
            assert np.allclose(resid_s, resid, rtol=1e-9, atol=1e-9)
            cov_s = fs.lodo_coverage(xs, y, SETS, HEAD, 0.8, rule=rule)
            assert cov_s["coverage"] == cov["coverage"] and cov_s["iimm_coverage"] == cov["iimm_coverage"]
            assert cov_s["mean_width"] == pytest.approx(cov["mean_width"], rel=1e-7)
        resid_f, chosen_f = fs.nested_lodo(x, -y, rows, SETS, DEFAULT, rule=rule)
        assert chosen_f == chosen and np.allclose(resid_f, -resid, rtol=1e-9, atol=1e-12)


def test_permuting_the_datasets_permutes_every_folds_result():
    x, y = _data()
    rows = np.arange(N)
    order = np.random.default_rng(7).permutation(N)
    for rule in fs.SELECTION_RULES:
        resid, chosen = fs.nested_lodo(x, y, rows, SETS, DEFAULT, rule=rule)
        resid_p, chosen_p = fs.nested_lodo(x[order], y[order], rows, SETS, DEFAULT, rule=rule)
        assert chosen_p == [chosen[k] for k in order]
        assert np.allclose(resid_p, resid[order], rtol=1e-9, atol=1e-12)
        assert fs.lodo_coverage(x[order], y[order], SETS, HEAD, 0.8, rule=rule) == pytest.approx(
            fs.lodo_coverage(x, y, SETS, HEAD, 0.8, rule=rule), rel=1e-9)


# --------------------------------------------------------------------------- the store's runs (DataFrame paths)
ZS_NAMES = ("iimm", "zs_acc", "modality_gap")


def _runs(n_datasets: int = 8, seeds=lambda k: (0, 1, 2)[: 1 + k % 3], seed: int = 0) -> pd.DataFrame:
    """A run frame as the store gives it: one method, datasets with 1-3 seeds each (predictors shared by a
    dataset's seeds, outcomes noisy per seed); the baseline 'gbc' carries the ID gain."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_datasets):
        zs = {"iimm": 0.3 + 0.04 * k + 0.02 * rng.standard_normal(), "zs_acc": 60 + 10 * rng.standard_normal(),
              "modality_gap": rng.uniform(0.5, 1.0)}
        gbc = rng.standard_normal()
        for s in seeds(k):
            gain = 10 + 4 * gbc + 20 * zs["iimm"] + 0.5 * rng.standard_normal()
            rows.append({"model": "m", "pretrained": "p", "method": "full", "dataset": f"d{k}", "seed": s,
                         "status": "ok", "id_gain": gain, "norm_gain": gain / (100 - zs["zs_acc"]),
                         "ood_change": -5 * zs["iimm"] + rng.standard_normal(), "iimm": zs["iimm"],
                         "zs_acc": zs["zs_acc"], "zero_shot": json.dumps(zs),
                         "transferability": json.dumps({"gbc": gbc})})
    return pd.DataFrame(rows)


def _table(runs: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return fs.selection_table(runs, outcomes=("id_gain",), level=0.8, min_datasets=6, **kwargs)


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return _runs()


@pytest.fixture(scope="module")
def table(runs) -> pd.DataFrame:
    return _table(runs)


def _arrays(runs: pd.DataFrame):
    """The reference datasets' seed means, computed here by hand: the arrays the procedure must see."""
    means = runs.assign(gbc=[json.loads(t)["gbc"] for t in runs["transferability"]],
                        modality_gap=[json.loads(t)["modality_gap"] for t in runs["zero_shot"]])
    means = means.groupby("dataset", sort=True)[["iimm", "zs_acc", "modality_gap", "gbc", "id_gain"]].mean()
    return means[["iimm", "zs_acc", "modality_gap", "gbc"]].to_numpy(), means["id_gain"].to_numpy()


def test_a_datasets_seeds_are_one_reference_point_held_out_together(runs, table):
    """Seeds are averaged per dataset before any fold: n_datasets counts datasets, the nested error and the
    coverage are those of the procedure on the seed means, and coverage is a share of datasets."""
    row = table.iloc[0]
    assert row["status"] == "ok" and row["n_datasets"] == runs["dataset"].nunique() < len(runs)
    x, y = _arrays(runs)
    sets = [tuple(s) for s in fs.candidate_sets(range(4))]
    resid, chosen = fs.nested_lodo(x, y, np.arange(len(y)), sets, 1, rule=fs.DEFAULT_RULE)
    assert row["nested_lodo_mae"] == pytest.approx(np.mean(np.abs(resid)), rel=1e-9)
    cov = fs.lodo_coverage(x, y, sets, 0, 0.8)
    assert row["coverage"] == pytest.approx(cov["coverage"]) and row["mean_width"] == pytest.approx(cov["mean_width"])
    assert (row["coverage"] * row["n_datasets"]) == pytest.approx(round(row["coverage"] * row["n_datasets"]))
    # the IIMM line's LODO error: refits without each dataset (all its seeds)
    errors = []
    for i in range(len(y)):
        rest = np.delete(np.arange(len(y)), i)
        fit = forecast.fit_linear(x[rest, 0], y[rest])
        errors.append(abs(y[i] - fit.predict_mean(float(x[i, 0]))))
    assert row["iimm_lodo_mae"] == pytest.approx(np.mean(errors), rel=1e-9)


def test_leave_one_group_out_holds_out_every_row_of_a_group():
    """core.forecast's LODO of the IIMM-only line on runs (several seeds per dataset): a group's predictions
    are bit-identical whatever its own rows' outcomes are."""
    rng = np.random.default_rng(8)
    groups = np.repeat(np.arange(6), 3)
    x = groups + 0.1 * rng.standard_normal(18)
    y = 2 * x + rng.standard_normal(18)
    base = forecast.leave_one_group_out(x, y, groups)
    for g in range(6):
        for wild in (1e6, -1e6):
            yw = y.copy()
            yw[groups == g] = wild * np.arange(1, 4)
            got = forecast.leave_one_group_out(x, yw, groups)["predictions"]
            assert np.array_equal(got[groups == g], base["predictions"][groups == g])


def test_row_order_changes_no_table_number(runs, table):
    """Datasets' runs moved as blocks: the same selection table and forecast, bit for bit. Runs shuffled within
    datasets too: the seed means may differ in the last bit (pandas sums in row order), nothing more."""
    values = {"iimm": 0.5, "zs_acc": 55.0, "modality_gap": 0.7, "gbc": 0.3}
    kwargs = dict(model="m", pretrained="p", outcomes=("id_gain", "ood_change"), level=0.8, coverage=False)
    new = fs.forecast_new(runs, values, **kwargs)
    rank = {d: r for r, d in enumerate(np.random.default_rng(3).permutation(sorted(runs["dataset"].unique())))}
    blocks = runs.iloc[np.argsort([rank[d] for d in runs["dataset"]], kind="stable")].reset_index(drop=True)
    assert not blocks["dataset"].is_monotonic_increasing
    pd.testing.assert_frame_equal(_table(blocks), table, check_exact=True)
    pd.testing.assert_frame_equal(fs.forecast_new(blocks, values, **kwargs), new, check_exact=True)
    for state in range(3):
        shuffled = runs.sample(frac=1.0, random_state=state).reset_index(drop=True)
        pd.testing.assert_frame_equal(_table(shuffled), table, check_exact=False, rtol=1e-12)
        pd.testing.assert_frame_equal(fs.forecast_new(shuffled, values, **kwargs), new, check_exact=False, rtol=1e-12)


def test_a_new_datasets_values_never_choose_its_set(runs):
    """forecast_new: the new dataset's predictor values reach its prediction through the chosen set's line
    only. Wild values elsewhere change nothing; wild values anywhere leave the set, the interval's width and
    the nested error (the choice and its scale are made on the reference datasets alone)."""
    values = {"iimm": 0.5, "zs_acc": 55.0, "modality_gap": 0.7, "gbc": 0.3}
    kwargs = dict(model="m", pretrained="p", outcomes=("id_gain",), level=0.8, coverage=False)
    new = fs.forecast_new(runs, values, **kwargs).iloc[0]
    assert new["status"] == "ok" and "gbc" in new["predictors"]
    unused = [p for p in values if p not in new["predictors"].split(" + ") and p != "iimm"]
    assert unused
    for wild in (1e6, -1e6):
        again = fs.forecast_new(runs, {**values, **dict.fromkeys(unused, wild)}, **kwargs).iloc[0]
        for column in ("predictors", "prediction", "lo", "hi", "nested_lodo_mae", "iimm_prediction", "iimm_lo",
                       "iimm_hi", "n_sets"):
            assert again[column] == new[column], column
        again = fs.forecast_new(runs, dict.fromkeys(values, wild), **kwargs).iloc[0]
        for column in ("predictors", "nested_lodo_mae", "iimm_lodo_mae", "gain_vs_iimm", "n_sets"):
            assert again[column] == new[column], column
        assert again["hi"] - again["lo"] == pytest.approx(new["hi"] - new["lo"], rel=1e-9)


def test_pooled_coverage_counts_held_out_datasets_not_cells():
    cells = pd.DataFrame({"n_datasets": [6, 12, 30], "coverage": [0.5, 1.0, np.nan]})
    assert fs.pooled_coverage(cells, "coverage") == pytest.approx((3 + 12) / 18)


def test_every_run_stored_twice_changes_no_choice_or_interval(runs, table):
    """A dataset's mean over its seeds is the same with each run twice: so is the table (to rounding)."""
    twice = pd.concat([runs, runs], ignore_index=True)
    pd.testing.assert_frame_equal(_table(twice), table, check_exact=False, rtol=1e-12)


def test_the_tau_bootstrap_is_unchanged_when_whole_groups_move():
    """core.nested_bootstrap numbers groups in sorted order: moving a group's rows as a block changes no draw
    (reordering rows inside a group gives another draw of the same bootstrap, as its module says)."""
    from core.nested_bootstrap import nested_bootstrap_tau

    rng = np.random.default_rng(9)
    groups = np.repeat(np.array(["a", "b", "c", "d", "e"]), [2, 3, 1, 4, 2])
    x, y = rng.standard_normal(12), rng.standard_normal(12)
    base = nested_bootstrap_tau(x, y, groups, n_boot=200, seed=4)
    order = np.concatenate([np.flatnonzero(groups == g) for g in ("d", "a", "e", "c", "b")])
    assert nested_bootstrap_tau(x[order], y[order], groups[order], n_boot=200, seed=4) == base
