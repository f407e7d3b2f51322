"""core.ranking's aggregates: hand-checked means and intervals, the Pareto front against a naive loop, method
ranks (by gain, out-of-domain change or net, within each model), the per-dataset matrix, the predictor summary,
cost columns, mixed recipes, and the shipped predictor tables as shown."""
from __future__ import annotations

import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest

from core import cards, predictor_shown, ranking, store
from tests.fixtures import LINES, make_fixture_records
from tests.ranking_helpers import frame


def test_mean_interval_hand_checked():
    mean, lo, hi = ranking.mean_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))
    assert ranking.mean_interval([5.0, np.nan])[0] == 5.0 and math.isnan(ranking.mean_interval([5.0])[1])
    assert all(math.isnan(v) for v in ranking.mean_interval([]))
    with pytest.raises(ValueError, match="level"):
        ranking.mean_interval([1, 2], level=1.5)
    for bad in ("0.95", None, True):  # a string or None raised TypeError from '<'
        with pytest.raises(ValueError, match="level must be a number between 0 and 1"):
            ranking.mean_interval([1, 2], level=bad)
    assert ranking.mean_interval([1.0, 2.0, 3.0], level=np.float32(0.95))[1] == pytest.approx(lo, rel=1e-4)


@pytest.mark.parametrize("n", [1, 2, 7, 33])
def test_pareto_mask_matches_a_naive_loop(n):
    rng = np.random.default_rng(n)
    gain, change = rng.integers(0, 5, n).astype(float), rng.integers(-5, 0, n).astype(float)  # many ties
    gain[0] = np.nan if n > 2 else gain[0]
    naive = [bool(np.isfinite(gain[i]) and not any(
        np.isfinite(gain[j]) and gain[j] >= gain[i] and change[j] >= change[i] and (gain[j] > gain[i] or change[j] > change[i])
        for j in range(n))) for i in range(n)]
    assert ranking.pareto_mask(gain, change).tolist() == naive
    with pytest.raises(ValueError, match="1-D"):
        ranking.pareto_mask(gain, change[:-1] if n > 1 else [1.0, 2.0])


def test_method_ranking_on_exact_lines():
    rows = ranking.method_ranking(frame(n_datasets=4)).set_index("method")
    iimm_mean = (0.2 + 0.35) / 2  # datasets 0..3 have iimm 0.2, .25, .3, .35
    for method in ("full", "bitfit", "lora"):
        a, b, c = LINES[method]
        assert rows.loc[method, "id_gain"] == pytest.approx(a + b * iimm_mean)
        assert rows.loc[method, "ood_change"] == pytest.approx(-c * iimm_mean)
        assert rows.loc[method, "id_gain_lo"] < rows.loc[method, "id_gain"] < rows.loc[method, "id_gain_hi"]
        assert rows.loc[method, "n_datasets"] == 4 and rows.loc[method, "trainable_params"] == 1000
    assert rows["rank"].to_dict() == {"full": 1, "lora": 2, "bitfit": 3}  # by gain: b 40 > 30 > 20
    by_ood = ranking.method_ranking(frame(n_datasets=4), rank_by="ood_change").set_index("method")
    assert by_ood["rank"].to_dict() == {"bitfit": 1, "lora": 2, "full": 3}
    assert rows["pareto"].all()  # each gains more but forgets more than the next
    with pytest.raises(ValueError, match="rank_by"):
        ranking.method_ranking(frame(), rank_by="speed")


def test_seeds_are_averaged_before_datasets_and_baselines_left_out():
    runs = frame(n_datasets=2, methods=("full", "zero_shot"), seeds=(0, 1, 2))
    # one dataset keeps three seeds, the other one: a plain mean over runs would weight them 3:1
    runs = runs[~((runs["dataset"] == "fx-set-1") & (runs["seed"] > 0))]
    rows = ranking.method_ranking(runs)
    assert list(rows["method"]) == ["full"]
    a, b, _ = LINES["full"]
    assert rows["id_gain"].iloc[0] == pytest.approx(a + b * 0.225) and rows["n_runs"].iloc[0] == 4
    assert "zero_shot" in set(ranking.method_ranking(runs, include_baselines=True)["method"])


def test_dataset_matrix_marks_the_best_per_dataset_and_verdict():
    runs = frame(n_datasets=3)
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    assert len(cells) == 9 and set(cells[cells["best"]]["method"]) == {"full"}
    worst = ranking.dataset_matrix(runs, "ood_change", model="worldclip-tiny", pretrained="world-v1")
    assert set(worst[worst["best"]]["method"]) == {"bitfit"}  # least forgetting
    with pytest.raises(ValueError, match="unknown outcome"):
        ranking.dataset_matrix(runs, "speed", model="worldclip-tiny", pretrained="world-v1")
    facts = ranking.verdict(ranking.method_ranking(runs))
    assert facts["best"]["method"] == "full" and facts["gentlest"]["method"] == "bitfit"
    assert facts["front"][0] == "Full"  # an unknown name gets a readable title


def test_dataset_matrix_keeps_two_methods_that_share_a_title_apart():
    """Method names are case-sensitive ('lora' from the grid, 'Lora' from a submission) but both are titled
    'LoRA': the Per dataset page pivots on the title, so it showed one 'LoRA' row, their mean."""
    records = make_fixture_records(n_datasets=2, methods=("lora",)) + [
        dict(r, run_id=r["run_id"] + "-b", method="Lora") for r in make_fixture_records(n_datasets=2, methods=("full",))]
    cells = ranking.dataset_matrix(store.records_to_frame(records), "id_gain", model="worldclip-tiny",
                                   pretrained="world-v1")
    titles = cells.drop_duplicates("method").set_index("method")["method_title"]
    assert titles.nunique() == 2 and titles["lora"].startswith("LoRA") and titles["Lora"].startswith("LoRA")
    wide = cells.pivot_table(index="method_title", columns="dataset", values="value")  # as the page does
    assert wide.loc[titles["Lora"], "fx-set-0"] == pytest.approx(LINES["full"][0] + LINES["full"][1] * 0.2)


def test_dataset_matrix_of_a_model_with_only_failed_runs_is_empty_not_a_crash():
    runs = frame(n_datasets=2, n_failed=6)  # every run failed
    assert (runs["status"] != "ok").all()
    for outcome in ranking.OUTCOME_COLUMNS:
        cells = ranking.dataset_matrix(runs, outcome, model="worldclip-tiny", pretrained="world-v1")
        assert cells.empty and "best" in cells.columns
    points = ranking.dataset_points(runs)
    assert points.empty and points["id_gain"].dtype == float and points["n_seeds"].dtype == np.int64


def test_methods_without_the_ranked_outcome_are_unranked_and_intervals_say_undefined():
    runs = frame(n_datasets=3).assign(ood_change=np.nan)  # no out-of-domain panel measured
    by_ood = ranking.method_ranking(runs, rank_by="ood_change")
    assert by_ood["rank"].isna().all()  # was: every method tied at rank 1
    by_gain = ranking.method_ranking(runs)
    assert by_gain["rank"].tolist() == [1, 2, 3]
    mixed = runs.copy()
    mixed.loc[mixed["method"] == "bitfit", "ood_change"] = -1.0
    ranks = ranking.method_ranking(mixed, rank_by="ood_change").set_index("method")["rank"]
    assert ranks["bitfit"] == 1 and ranks.drop("bitfit").isna().all()  # unranked, listed after the ranked
    assert ranking.method_ranking(mixed, rank_by="ood_change")["method"].iloc[0] == "bitfit"
    text = ranking.verdict_text(by_gain)
    assert "Best trade-offs" not in text and "out-of-domain not measured" in text
    assert ranking.interval_text(-1.25, 2.0) == "[-1.2, +2.0]"
    for lo, hi in ((np.nan, np.nan), (None, 1.0), (1.0, np.inf), (pd.NA, pd.NA)):
        assert ranking.interval_text(lo, hi) == "—"


def test_predictor_summary_averages_methods():
    table = pd.DataFrame({"method": ["a", "b", "a", "b"], "predictor": ["iimm", "iimm", "gbc", "gbc"],
                          "family": ["zero-shot"] * 2 + ["transferability"] * 2, "outcome": ["id_gain"] * 4,
                          "status": "ok", "kendall_tau": [0.2, -0.4, 0.1, 0.1], "lodo_mae": [1.0, 3.0, 2.0, 2.0]})
    out = predictor_shown.predictor_summary(table)
    assert list(out["predictor"]) == ["iimm", "gbc"]
    assert out["mean_abs_tau"].tolist() == pytest.approx([0.3, 0.1]) and out["n_methods"].tolist() == [2, 2]
    with pytest.raises(ValueError, match="lodo_mae"):
        predictor_shown.predictor_summary(table.drop(columns=["lodo_mae"]))


def test_cost_columns_read_numbers_only_from_a_json_object():
    texts = ['{"trainable_params": 14336, "wall_time_s": 12.5, "peak_rss_mb": 2046.7}',
             '{"params_trainable": 7, "peak_memory_mb": 3, "peak_mb": 4}',      # aliases: first found wins
             '{"trainable_params": true, "params_trainable": 9}',                 # a bool is not a count
             '{"wall_time_s": "12", "peak_mb": null}', "not json", None, "[1, 2]", "3",
             '{"method": {"trainable_params": 5}}']                              # nested: not this run's figure
    got = ranking._cost_columns(pd.Series(texts, index=range(100, 100 + len(texts))))
    nan = math.nan
    want = [[14336, 12.5, 2046.7], [7, nan, 3], [9, nan, nan]] + [[nan, nan, nan]] * 6
    assert list(got.columns) == ["trainable_params", "wall_time_s", "peak_mb"] and list(got.index) == list(range(100, 109))
    np.testing.assert_array_equal(got.to_numpy(), np.array(want, dtype=float))


def _with_recipe(records, max_steps, source):
    return [dict(r, run_id=f"{r['run_id']}-{max_steps}", source=source,
                 config={**r["config"], "train": {"max_steps": max_steps}}) for r in records]


def test_mixed_recipes_name_the_methods_whose_runs_are_different_experiments():
    from tests.fixtures import make_fixture_records

    full = make_fixture_records(n_datasets=3, methods=("bitfit", "lora", "zero_shot"))
    smoke = [r for r in make_fixture_records(n_datasets=2, methods=("bitfit", "zero_shot"))]
    same = store.records_to_frame(_with_recipe(full, 80, "measured:default-grid"))
    assert ranking.mixed_recipes(same).empty and ranking.mixed_recipes_text(ranking.mixed_recipes(same)) == ""
    mixed = store.records_to_frame(_with_recipe(full, 80, "measured:default-grid")
                                   + _with_recipe(smoke, 12, "measured:smoke*grid"))
    found = ranking.mixed_recipes(mixed)
    assert found[["method", "n_recipes"]].values.tolist() == [["bitfit", 2]]  # zero-shot has no recipe
    assert found["sources"].tolist() == ["measured:default-grid, measured:smoke*grid"]
    text = ranking.mixed_recipes_text(found)
    assert "BitFit (2)" in text and r"measured\:smoke\*grid" in text  # record text escaped, not Markdown
    settings = store.records_to_frame(_with_recipe(full, 80, "s") + [
        dict(r, run_id=r["run_id"] + "-r16", config={**r["config"], "train": {"max_steps": 80},
                                                      "method_config": {"rank": 16}})
        for r in full if r["method"] == "lora"])
    assert ranking.mixed_recipes(settings)["method"].tolist() == ["lora"]  # a sweep's settings count too


def test_net_is_gain_plus_out_of_domain_change_and_ranks_by_it():
    from tests.fixtures import make_fixture_records

    records = make_fixture_records(n_datasets=1, methods=("bitfit", "lora"))
    for r, (gain, change) in zip(records, ((5.0, -2.0), (4.0, -0.5))):
        r.update(ft_acc=r["zs_acc"] + gain, id_gain=gain, ood_change=change,
                 norm_gain=gain / (100.0 - r["zs_acc"]),
                 ood_after={k: v + change for k, v in r["ood_before"].items()})
    rows = ranking.method_ranking(store.records_to_frame(records), rank_by="net").set_index("method")
    assert rows.loc["bitfit", "net"] == pytest.approx(3.0) and rows.loc["lora", "net"] == pytest.approx(3.5)
    assert rows.loc["lora", "rank"] == 1 and rows.loc["bitfit", "rank"] == 2  # by net, not by gain


def test_net_adds_gain_and_change_per_dataset_where_both_were_measured():
    """A method whose OOD panel was measured on one dataset of two: net added the gain averaged over two
    datasets to the change of the other one, and the verdict said both rest on the same 2 datasets."""
    runs = frame(n_datasets=2, methods=("full",))  # full's gains: 2 + 40 * 0.2 = 10 and 2 + 40 * 0.25 = 12
    runs.loc[runs["dataset"] == "fx-set-0", "ood_change"] = np.nan  # no panel there
    (row,) = ranking.method_ranking(runs).to_dict("records")
    change = float(runs.loc[runs["dataset"] == "fx-set-1", "ood_change"].iloc[0])
    gain = float(runs.loc[runs["dataset"] == "fx-set-1", "id_gain"].iloc[0])
    assert (row["n_datasets"], row["n_ood_datasets"]) == (2, 1)
    assert row["net"] == pytest.approx(gain + change)  # dataset 1's own sum, not mean(gains) + its change
    assert row["net"] != pytest.approx(row["id_gain"] + row["ood_change"])
    assert not ranking.same_datasets(pd.DataFrame([row]))  # so the page shows both dataset counts
    assert "averaged over the same" not in ranking.verdict_text(ranking.method_ranking(runs))
    whole = ranking.method_ranking(frame(n_datasets=2, methods=("full",)))
    assert whole["n_ood_datasets"].tolist() == [2] and ranking.same_datasets(whole)
    assert whole["net"].iloc[0] == pytest.approx(whole["id_gain"].iloc[0] + whole["ood_change"].iloc[0])


def test_ranks_are_within_each_model_not_across_models():
    """Rank 1 is each (model, pretrained)'s best method: a second model's only method is its rank 1, and
    the first model's ranks are not pushed down by the other model's rows."""
    runs = pd.concat([frame(n_datasets=2, methods=("full", "bitfit")),
                      frame(n_datasets=2, methods=("lora",), pretrained="own-tag")])
    rows = ranking.method_ranking(runs).set_index(["pretrained", "method"])
    # gains at mean iimm 0.225: full 2 + 9 = 11, lora 1.5 + 6.75 = 8.25, bitfit 1 + 4.5 = 5.5
    assert rows.loc[("world-v1", "full"), "id_gain"] == pytest.approx(11.0)
    assert rows["rank"].to_dict() == {("own-tag", "lora"): 1, ("world-v1", "full"): 1, ("world-v1", "bitfit"): 2}


def test_dataset_matrix_leaves_out_baselines_and_methods_without_the_outcome():
    runs = frame(n_datasets=2, methods=("full", "bitfit", "zero_shot"))
    runs.loc[runs["method"] == "bitfit", "ood_change"] = np.nan  # bitfit's OOD panel not measured
    kw = dict(model="worldclip-tiny", pretrained="world-v1")
    assert set(ranking.dataset_matrix(runs, "id_gain", **kw)["method"]) == {"full", "bitfit"}
    assert set(ranking.dataset_matrix(runs, "id_gain", include_baselines=True, **kw)["method"]) == {
        "full", "bitfit", "zero_shot"}
    ood = ranking.dataset_matrix(runs, "ood_change", **kw)
    assert set(ood["method"]) == {"full"} and ood["value"].notna().all() and ood["best"].all()


def test_mean_interval_ignores_infinite_values():
    mean, lo, hi = ranking.mean_interval([1.0, np.inf, 3.0, -np.inf])
    half = 12.706204736174698 * math.sqrt(2) / math.sqrt(2)  # t(0.975, 1) * sd sqrt(2) / sqrt(2)
    assert (mean, lo, hi) == pytest.approx((2.0, 2.0 - half, 2.0 + half))


def test_a_method_without_any_out_of_domain_panel_has_no_net_and_no_net_rank():
    """Net needs an out-of-domain change: a method with none has net NaN (not 0) and is not ranked by net."""
    runs = frame(n_datasets=2, methods=("full", "lora"))
    runs.loc[runs["method"] == "lora", "ood_change"] = np.nan
    rows = ranking.method_ranking(runs, rank_by="net").set_index("method")
    assert rows.loc["lora", "n_ood_datasets"] == 0 and math.isnan(rows.loc["lora", "net"])
    assert pd.isna(rows.loc["lora", "rank"]) and rows.loc["full", "rank"] == 1


def test_the_per_method_and_per_config_shortcuts_equal_the_per_row_definitions():
    """without_baselines looks each method's card up once and mixed_recipes parses each config once (per row
    they cost 0.3 and 0.2 s at 100,000 runs): the rows kept and the recipes counted must be the per-row ones,
    odd values (a missing method, an unknown one, a missing or broken config) included."""
    runs = frame(n_datasets=3, methods=("full", "lora", "zero_shot"), seeds=(0, 1))
    runs.loc[0, "method"] = None
    runs.loc[1, "method"] = "peft_new"
    runs.loc[2, "config"] = None
    runs.loc[3, "config"] = "{not json"
    runs.loc[runs["method"] == "lora", "config"] = [json.dumps({"train": {"steps": s}}) for s in (10, 20) * 3]
    naive = runs[[not cards.method_card(str(m)).baseline for m in runs["method"]]]
    pd.testing.assert_frame_equal(ranking.without_baselines(runs), naive)
    ok = naive[naive["status"] == "ok"]
    per_row = ok.assign(recipe=[ranking.recipe_key(c) for c in ok["config"]])
    expected = {m: g["recipe"].nunique() for m, g in per_row.groupby("method") if g["recipe"].nunique() > 1}
    mixed = ranking.mixed_recipes(runs)
    assert dict(zip(mixed["method"], mixed["n_recipes"])) == expected and "lora" in expected


def test_the_shipped_predictor_tables_are_shown_with_readable_headers_and_names():
    """The Compare page showed the job's own column names (best_tau_mean_abs), predictor keys (inter_modal),
    outcome keys (id_gain), four decimals and 'None' for the pooled row's errors."""
    from core import forecast_select, predictor_eval

    raw = pd.read_csv(store.SHIPPED_DIR / "predictors.csv")
    winners = predictor_shown.winners_shown(predictor_eval.winners(raw))
    coverage = predictor_shown.coverage_shown(forecast_select.coverage_summary(
        pd.read_csv(store.SHIPPED_DIR / "forecast-selection.csv")))

    def written(styler) -> pd.DataFrame:  # what each cell shows (the Styler's text), the numbers kept below it
        return pd.read_csv(io.StringIO(styler.to_string(delimiter="\t")), sep="\t", index_col=0, dtype=str,
                           keep_default_na=False)

    for shown in (written(winners), written(coverage)):
        assert not any("_" in c for c in shown.columns), list(shown.columns)
        assert "in-domain gain (points)" in set(shown["outcome"]) and "id_gain" not in set(shown["outcome"])
        text = shown.to_numpy().ravel()
        assert not any(re.fullmatch(r"-?\d+\.\d{3,}", t) for t in text)  # two decimals at most
        assert "None" not in text and "nan" not in text
    assert set(winners.data["best by mean |τ|"]) <= set(cards.PREDICTOR_TITLES.values())
    pooled = written(coverage).set_index("outcome").loc["all outcomes"]
    assert pooled["mean width"] == "–" and pooled["coverage"].endswith(" %")
    for styler, column in ((winners, "IIMM's LODO error"), (coverage, "coverage")):  # numbers below: sorted as such
        assert pd.api.types.is_float_dtype(styler.data[column]), column


def test_integer_method_names_rank_like_their_text():
    # a hand-made frame's method 1 raised AttributeError ('int' object has no attribute 'startswith') from its card
    runs = frame(n_datasets=3, methods=("full", "bitfit"))
    numbered = runs.assign(method=runs["method"].map({"full": 1, "bitfit": 2}))
    rows = ranking.method_ranking(numbered)
    assert rows["method"].tolist() == [1, 2] and rows["method_title"].tolist() == ["1", "2"]
    want = ranking.method_ranking(runs).set_index("method").loc[["full", "bitfit"]]
    np.testing.assert_allclose(rows["id_gain"], want["id_gain"])
    assert cards.method_card(7).title == cards.method_card("7").title


def test_datasets_counted_and_named_are_those_whose_gain_was_averaged():
    # an ok run may have no id_gain (the field is nullable): it was counted among the datasets averaged
    runs = frame(n_datasets=3)
    lone = runs["dataset"] == sorted(runs["dataset"].unique())[0]
    runs.loc[lone & (runs["method"] == "bitfit"), "id_gain"] = np.nan
    rows = ranking.method_ranking(runs).set_index("method")
    assert rows.loc["bitfit", "n_datasets"] == 2 and rows.loc["lora", "n_datasets"] == 3
    assert json.loads(rows.loc["bitfit", "datasets"]) == sorted(runs["dataset"].unique())[1:]
    kept = ranking.dataset_points(runs[~(lone & (runs["method"] == "bitfit"))])
    assert rows.loc["bitfit", "id_gain"] == pytest.approx(kept.loc[kept["method"] == "bitfit", "id_gain"].mean())


def test_dataset_matrix_keeps_two_datasets_whose_names_differ_only_in_unicode_form_apart_as_drawn():
    """'Café' composed and decomposed: the Per dataset page's table and heatmap showed two 'Café' columns."""
    import unicodedata

    names = {"fx-set-0": "Café", "fx-set-1": unicodedata.normalize("NFD", "Café")}
    records = [dict(r, dataset=names.get(r["dataset"], r["dataset"])) for r in make_fixture_records(n_datasets=3)]
    cells = ranking.dataset_matrix(store.records_to_frame(records), "id_gain", model="worldclip-tiny",
                                   pretrained="world-v1")
    drawn = {unicodedata.normalize("NFC", d) for d in cells["dataset"]}
    assert drawn == {"Café", "Café (2)", "fx-set-2"}
    assert cells.groupby("dataset")["best"].sum().tolist() == [1, 1, 1]  # still one best method per dataset
