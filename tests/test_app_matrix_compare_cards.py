"""The app's matrix, compare, cards and about pages through AppTest, on a fixture store in a temp folder
(never the real store)."""
import json

import numpy as np
import pytest
import streamlit as st

from core import forecast_select, predictor_eval, store
from tests.app_helpers import app_test, page
from tests.fixtures import LINES, make_fixture_records, write_fixture_store


# ------------------------------------------------------------------------------ matrix, compare, cards, about
def test_matrix_marks_the_best_method_per_dataset(fixture_store):
    at = page("matrix").run()
    assert not at.exception and len(at.get("vega_lite_chart")) == 1
    assert at.markdown[-1].value.startswith("Datasets won") and "Full 6" in at.markdown[-1].value
    at.selectbox(key="outcome").select("ood_change").run()
    assert "BitFit 6" in at.markdown[-1].value  # least forgetting on every dataset
    styles = at.dataframe[0].proto.arrow_data.SerializeToString()  # the table's Styler CSS travels with it
    assert b"d4f0d4" in styles and b"font-weight: bold" in styles  # the best cell is bold, not marked by colour alone


def test_a_new_run_reaches_every_page_with_the_next_read_of_the_store(fixture_store):
    import app

    pages = {"runs": page("runs").run(), "matrix": page("matrix").run(), "ranking": app_test().run()}
    assert "18 runs in the store" in pages["runs"].caption[0].value
    (new,) = [r for r in make_fixture_records(n_datasets=7, methods=("full",), pretrained="random")
              if r["dataset"] == "fx-set-6"]
    store.write_record(new, fixture_store)
    app._store_runs.clear()  # the store's read expires (30 s); caches derived from it must follow at once
    for at in pages.values():
        at.run()
        assert not at.exception
    assert "19 runs in the store" in pages["runs"].caption[0].value
    assert "**19** of 19 runs match" in pages["runs"].markdown[0].value  # the cached query too (was: 18)
    assert "Full 7" in pages["matrix"].markdown[-1].value  # datasets won (was: 6 for another 30 s)
    ranked = pages["ranking"].dataframe[0].value.set_index("method")
    assert ranked.loc["full", "n_datasets"] == 7 and ranked.loc["bitfit", "n_datasets"] == 6


def test_matrix_of_a_model_whose_runs_all_failed_says_so(fixture_store):
    for r in make_fixture_records(n_datasets=2, pretrained="other", n_failed=6):  # all six failed
        store.write_record(r, fixture_store)
    at = page("matrix")
    at.query_params["model"] = "worldclip-tiny · other"
    at.run()
    assert not at.exception
    assert any("No successful runs" in i.value for i in at.info)


def _bitfit_seeds_on_two_versions_of_its_data(folder):
    """Seeds of bitfit on fx-set-0 whose records name two fingerprints of its train split, written to ``folder``."""
    for tag, train in (("-a", "old-files"), ("-bb", "new-files")):
        for r in make_fixture_records(n_datasets=1, methods=("bitfit",), pretrained="random"):
            store.write_record(dict(r, run_id=r["run_id"] + tag, seed=r["seed"] + len(tag), provenance={
                **r["provenance"], "data_fingerprint": {"train": train, "test": "same"}}), folder)
    st.cache_data.clear(), st.cache_resource.clear()  # the store is cached for 30 s

def test_matrix_warns_when_a_cells_seeds_ran_on_different_data(fixture_store):
    """A folder changed between seeds: each cell of this page is the mean of its seeds, old and new data, and
    only the ranking said so. Records naming no data (the fixture's) are not blamed."""
    assert not any("different data" in w.value for w in page("matrix").run().warning)
    _bitfit_seeds_on_two_versions_of_its_data(fixture_store)
    at = page("matrix").run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "different data" in w.value]
    assert r"fx\-set\-0: train (2 versions: " in warning


def test_a_saved_matrix_table_says_which_methods_cells_ran_on_different_data(fixture_store):
    """The warning above the matrix said a cell's seeds ran on different data; the table, saved as CSV alone, kept
    no sign of it. An 'averaged' column after the datasets, there only then, says it per method."""
    at = page("matrix").run()
    assert "averaged" not in at.dataframe[0].value.columns
    _bitfit_seeds_on_two_versions_of_its_data(fixture_store)
    at = page("matrix").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns)[-1] == "averaged"
    assert table.loc["BitFit", "averaged"] == "runs on different data: fx-set-0 train"
    assert table.loc["Full", "averaged"] == ""


def test_a_model_whose_names_hold_an_at_sign_is_the_model_its_pages_show(fixture_store):
    """The picker's key was 'model@tag', split at its last '@': a tag such as 'laion@2b' (the schema allows
    it) was read as model 'worldclip-tiny@laion', tag '2b', and every page said it had no runs."""
    for r in make_fixture_records(n_datasets=2, pretrained="laion@2b"):
        store.write_record(r, fixture_store)
    at = page("matrix")
    at.query_params["model"] = "worldclip-tiny · laion@2b"  # was labelled 'worldclip-tiny · laion · 2b'
    at.run()
    assert not at.exception and not at.info, [i.value for i in at.info]  # was: "No successful runs ..."
    assert list(at.dataframe[0].value.columns) == ["fx-set-0", "fx-set-1"]  # its 2 datasets, not the other's 6
    import app

    pairs = [("a@b", "c"), ("a", "b@c"), ("50%", "%40"), ("m", "t")]
    keys = [app.model_key(m, p) for m, p in pairs]
    assert len(set(keys)) == 4 and [app.model_pair(k) for k in keys] == pairs and keys[-1] == "m@t"


def test_pages_show_undefined_values_as_a_dash_never_nan(fixture_store):
    # LoRA's last two runs failed: the per-dataset table has empty cells
    at = page("matrix").run()
    assert not at.exception
    shown = at.dataframe[0].proto.SerializeToString()  # carries the Styler's display text
    assert "—".encode() in shown and b"nan" not in shown
    one = app_test()
    one.query_params["dataset"] = "fx-set-0"  # one dataset: no interval over datasets
    one.run()
    table, shown = one.dataframe[0].value, json.loads(one.dataframe[0].proto.columns)
    assert not one.exception and table[["id_gain_lo", "ood_change_hi"]].isna().all().all()
    assert shown["id_gain_lo"] == shown["ood_change_hi"] == {"hidden": True}  # not a column of 'None
    links = [link.proto.label for link in one.get("page_link")]
    assert "All 3 runs of this model on these datasets" in links  # what the link opens (was: all 18)
    for path in fixture_store.rglob("*.json"):  # records without their optional created_at
        record = json.loads(path.read_text(encoding="utf-8"))
        record.pop("created_at", None)
        path.write_text(json.dumps(record), encoding="utf-8")
    st.cache_resource.clear()  # the app holds the store's frame for 30 s
    about = page("about").run()
    assert not about.exception and "nan" not in about.info[0].value and "recorded" not in about.info[0].value


def test_compare_renders_panels_and_fit_table(fixture_store):
    write_fixture_store(fixture_store, pretrained="random", methods=("zero_shot",))  # outcomes 0: not offered
    at = page("compare").run()
    assert at.multiselect(key="method").options == ["BitFit", "Full", "LoRA"]  # no zero-shot (nothing to draw)
    assert not at.exception
    # a chart per method and outcome, each its own size, for the page to wrap to its width: one chart of the panels
    # (3 to a row, 892 px) ran past the page's right edge below ~1360 px and hid half of them at 800 px
    specs = [json.loads(chart.proto.spec) for chart in at.get("vega_lite_chart")]
    assert len(specs) == 6 and not any("concat" in spec for spec in specs)
    assert all(spec["autosize"]["type"] == "pad" and spec["width"] == 220 for spec in specs)
    fits = at.dataframe[0].value
    assert set(fits["method"]) == {"BitFit", "Full", "LoRA"}
    assert np.allclose(fits["r2"], 1.0) and np.allclose(fits["kendall_tau"].abs(), 1.0)
    at.multiselect(key="method").select("full").run()
    assert set(at.dataframe[0].value["method"]) == {"Full"}


def test_compare_warns_and_its_fit_table_says_when_a_methods_points_average_several_recipes_or_data(fixture_store):
    """The ranking and the per-dataset page warned that a method's numbers average runs of several training recipes
    or on different data; the Compare page, whose points are the same seed means, said nothing, on the page or in
    its fit table (which its toolbar saves alone)."""
    at = page("compare").run()
    assert not [w for w in at.warning if "averaged together" in w.value]
    assert "averaged" not in at.dataframe[0].proto.column_order  # nothing mixed: no column
    smoke = [dict(r, run_id=r["run_id"] + "-smoke", source="measured:smoke-grid",
                  config={**r["config"], "train": {"max_steps": 12}})
             for r in make_fixture_records(n_datasets=2, methods=("bitfit",), pretrained="random")]
    for record in smoke:
        store.write_record(record, fixture_store / "more")
    st.cache_data.clear(), st.cache_resource.clear()  # the store is cached for 30 s
    at = page("compare").run()
    assert not at.exception and len([w for w in at.warning if "averaged together" in w.value]) == 1
    table = at.dataframe[0]
    assert list(table.proto.column_order)[-1] == "averaged"
    said = table.value.groupby("method")["averaged"].first()
    assert said["BitFit"] == "runs of 2 training recipes" and said["Full"] == ""


def test_compare_says_why_a_fit_has_no_statistics(tmp_path, monkeypatch):
    """Blank statistics come with their reason (too few datasets, or IIMM the same on every one), and a model
    with only zero-shot runs says there is nothing to fit rather than showing an empty table."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    records = make_fixture_records(n_datasets=2, methods=("full",))  # two datasets: no fit
    records += [dict(r, iimm=0.3) for r in make_fixture_records(n_datasets=4, methods=("lora",))]  # IIMM constant
    records += make_fixture_records(n_datasets=3, methods=("bitfit",))  # fitted
    records += make_fixture_records(n_datasets=3, methods=("zero_shot",), pretrained="baseline-only")
    for record in records:
        store.write_record(record, tmp_path / "results")
    at = page("compare").run()
    assert not at.exception
    notes = at.dataframe[0].value.set_index(["method", "outcome"])["note"]
    assert notes["Full", "in-domain gain"] == "no fit: 2 dataset(s) with this outcome, a fit needs 3"
    assert notes["LoRA", "in-domain gain"] == "no fit: the predictor is the same on every dataset"
    assert notes["BitFit", "in-domain gain"] == "" and notes["BitFit", "out-of-domain change"] == ""
    at = page("compare")
    at.query_params["model"] = "worldclip-tiny · baseline-only"
    at.run()
    assert not at.exception and not at.dataframe
    assert any("No fine-tuning runs of this model to fit" in i.value for i in at.info)


def test_compare_says_when_the_outcome_not_the_predictor_is_the_same_on_every_dataset(tmp_path, monkeypatch):
    """A linear probe leaves the encoder as it was: its out-of-domain change is 0 on every dataset (world v2's
    shipped runs), so the fit has no correlation. The note said the *predictor* (IIMM) was the same on every
    dataset, where IIMM differs and the outcome does not."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setitem(LINES, "linear_probe", (1.0, 10.0, 0.0))  # ood_change = -0 * iimm: 0 everywhere
    for record in make_fixture_records(n_datasets=4, methods=("linear_probe", "bitfit")):
        store.write_record(record, tmp_path / "results")
    at = page("compare").run()
    assert not at.exception
    fits = at.dataframe[0].value.set_index(["method", "outcome"])
    assert fits.loc[("Linear probe", "out-of-domain change"), "note"] == (
        "no correlation: the outcome is the same on every dataset")
    assert fits.loc[("Linear probe", "in-domain gain"), "note"] == ""  # IIMM varies and so does the gain
    assert fits.loc[("BitFit", "out-of-domain change"), "note"] == ""


def _predictor_csv(*rows: str, pretrained: str = "random", header: bool = True) -> str:
    """A jobs.predictors table of the fixture model (worldclip-tiny, ``pretrained``); each row
    'method,predictor,family,outcome,status,kendall_tau,lodo_mae'."""
    head = "model,pretrained,method,predictor,family,outcome,status,kendall_tau,lodo_mae\n" if header else ""
    return head + "".join(f"worldclip-tiny,{pretrained},{row}\n" for row in rows)


def test_compare_condenses_the_predictor_csv(fixture_store):
    (store.SHIPPED_DIR / "predictors.csv").write_text(_predictor_csv("a,iimm,zero-shot,id_gain,ok,0.8,1",
                                                                     "b,iimm,zero-shot,id_gain,ok,-0.4,3"),
                                                                         encoding="utf-8")
    at = page("compare").run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert table["mean_abs_tau"].tolist() == pytest.approx([0.6]) and table["predictor"].tolist() == ["IIMM"]
    assert "IIMM ranks 1 of 1" in at.markdown[-1].value


def test_compare_names_the_diagonal_gbc_as_it_names_the_other_scores(fixture_store):
    """Every predictor had a name (GBC, H-score, LogME...) but GBC's diagonal variant, shown as 'gbc diagonal'."""
    (store.SHIPPED_DIR / "predictors.csv").write_text(_predictor_csv(
        "a,gbc,transferability,id_gain,ok,0.8,1", "a,gbc_diagonal,transferability,id_gain,ok,0.4,3"), encoding="utf-8")
    at = page("compare").run()
    assert not at.exception
    assert at.dataframe[-1].value["predictor"].tolist() == ["GBC", "GBC (diagonal Gaussians)"]


def test_compare_shows_the_predictor_table_of_the_model_picked(fixture_store):
    """The page read world v1's table whatever the model; world v2's models have tables of their own."""
    (store.SHIPPED_DIR / "predictors.csv").write_text(_predictor_csv("a,gbc,transferability,id_gain,ok,0.9,1",
                                                                     pretrained="world-v1"), encoding="utf-8")
    (store.SHIPPED_DIR / "world-v2").mkdir()
    (store.SHIPPED_DIR / "world-v2" / "predictors.csv").write_text(
        _predictor_csv("a,iimm,zero-shot,id_gain,ok,0.7,2")
        + _predictor_csv("a,h_score,transferability,id_gain,ok,0.1,2", pretrained="other", header=False),
            encoding="utf-8")
    at = page("compare").run()
    assert not at.exception
    assert at.dataframe[-1].value["predictor"].tolist() == ["IIMM"]  # this model's row only
    assert any("(`world-v2/predictors.csv`)" in c.value for c in at.caption)
    (store.SHIPPED_DIR / "world-v2" / "predictors.csv").unlink()  # no table of this model: said, not another's shown
    at = page("compare").run()
    assert not at.exception and not any("mean_abs_tau" in d.value.columns for d in at.dataframe)
    assert any("No shipped predictor table to show: no shipped predictor table has runs of worldclip" in w.value
               for w in at.warning)


def test_one_unreadable_predictor_table_does_not_hide_another_models(fixture_store):
    """The page reads every shipped predictors.csv since it shows the model's own: one that cannot be read (here
    empty) hid the table of every model, with a warning that named no file; before, one file was read."""
    (store.SHIPPED_DIR / "predictors.csv").write_text(_predictor_csv("a,iimm,zero-shot,id_gain,ok,0.7,2"),
                                                      encoding="utf-8")
    (store.SHIPPED_DIR / "world-v2").mkdir()
    (store.SHIPPED_DIR / "world-v2" / "predictors.csv").write_text("", encoding="utf-8")
    at = page("compare").run()
    assert not at.exception
    assert at.dataframe[-1].value["predictor"].tolist() == ["IIMM"]  # this model's table, read
    (store.SHIPPED_DIR / "predictors.csv").unlink()  # no readable table of the model: the unreadable one is named
    at = page("compare").run()
    assert not at.exception
    assert any(r"world\-v2/predictors\.csv\: cannot be read" in w.value for w in at.warning)


def test_a_compare_link_with_an_unknown_outcome_says_what_it_shows_instead(fixture_store):
    """?pred_outcome=... naming no outcome of the predictor table showed the first outcome silently."""
    (store.SHIPPED_DIR / "predictors.csv").write_text(_predictor_csv("a,iimm,zero-shot,id_gain,ok,0.8,1",
                                                                     "a,iimm,zero-shot,ood_change,ok,0.4,3"),
                                                                         encoding="utf-8")
    at = page("compare")
    at.query_params["pred_outcome"] = "forgetting"
    at.run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "This link asks for the outcome" in w.value]
    assert "forgetting" in warning and r"showing in\-domain gain" in warning
    at = page("compare")
    at.query_params["pred_outcome"] = "out-of-domain change"
    at.run()
    assert not any("This link asks" in w.value for w in at.warning)
    assert "IIMM ranks 1 of 1 by mean |τ| for out\\-of\\-domain change." in at.markdown[-1].value


def test_compare_shows_the_forecast_coverage_and_its_rule(fixture_store):
    runs = store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full",), noise=0.5,
                                                          pretrained="random"))  # the model the page picks
    forecast_select.selection_table(runs, outcomes=("id_gain",)).to_csv(store.SHIPPED_DIR / "forecast-selection.csv",
                                                                         index=False)
    predictor_eval.evaluate_predictors(runs, outcomes=("id_gain",), n_boot=50).to_csv(
        store.SHIPPED_DIR / "predictors.csv", index=False)
    at = page("compare").run()
    assert not at.exception and not any("cannot be read" in w.value for w in at.warning)
    assert any(f"selection rule {forecast_select.DEFAULT_RULE})" in c.value for c in at.caption)
    coverage = at.dataframe[-1].value
    assert coverage["outcome"].tolist()[0] == "in-domain gain (points)"
    assert coverage["cells (model, method)"].tolist()[0] == 1


def test_all_runs_shows_the_outcomes_next_to_the_names_of_the_run(fixture_store):
    """At 1440 px the table's in-domain gain column (the default sort) began off-screen, after two bar columns."""
    at = page("runs").run()
    assert not at.exception
    assert list(at.dataframe[0].proto.column_order)[:5] == ["model_label", "method_title", "dataset", "id_gain",
                                                            "ood_change"]


def test_all_runs_marks_a_model_whose_random_weights_flag_is_on_a_record_not_shown(fixture_store):
    """The marks came from the shown rows' own flags: filtered to a method whose records do not carry the flag,
    a model that other records of the store call untrained was shown unmarked."""
    for r in make_fixture_records(n_datasets=2, methods=("lora",), pretrained="their-tag"):
        store.write_record(r, fixture_store)  # these records do not say it
    for r in make_fixture_records(n_datasets=2, methods=("full",), pretrained="their-tag"):
        store.write_record({**r, "random_weights": True}, fixture_store)  # these do
    at = page("runs")
    at.query_params["method"] = "LoRA"
    at.run()
    assert not at.exception and set(at.dataframe[0].value["method"]) == {"lora"}
    names = set(at.dataframe[0].value["model_label"])
    assert "worldclip-tiny · their-tag (RANDOM WEIGHTS)" in names and "worldclip-tiny · their-tag" not in names


def test_random_weight_numbers_are_labelled_on_all_runs_and_cards(fixture_store):
    # a trained model beside the fixture's random one, and an ingested record that says random_weights
    # under a tag of its own: both untrained models must be marked wherever their numbers appear
    for r in make_fixture_records(n_datasets=2, methods=("lora",), pretrained="world-v1"):
        store.write_record(r, fixture_store)
    for r in make_fixture_records(n_datasets=2, methods=("lora",), pretrained="their-tag"):
        store.write_record({**r, "random_weights": True}, fixture_store)
    at = page("runs").run()
    assert not at.exception
    names = at.dataframe[0].value.set_index("run_id")["model_label"]
    marked = {n for n in names if n.endswith("(RANDOM WEIGHTS)")}
    assert marked == {"worldclip-tiny · random (RANDOM WEIGHTS)", "worldclip-tiny · their-tag (RANDOM WEIGHTS)"}
    assert "worldclip-tiny · world-v1" in set(names)
    assert any("RANDOM WEIGHTS" in w.value for w in at.warning)
    assert any("RANDOM WEIGHTS" in o for o in at.selectbox(key="run").options)
    cards_page = page("cards")
    cards_page.query_params["card"] = "LoRA"
    cards_page.run()
    measured = set(cards_page.dataframe[1].value["model"])
    assert measured == {"worldclip-tiny · random (RANDOM WEIGHTS)", "worldclip-tiny · their-tag (RANDOM WEIGHTS)",
                        "worldclip-tiny · world-v1"}
    cards_page.selectbox(key="model").set_value("worldclip-tiny@their-tag").run()  # its model card
    (facts,) = [m.value.replace("\\", "") for m in cards_page.markdown if "**weights:**" in m.value]  # unescaped
    assert "**weights:** random: its runs' records say they ran untrained" in facts  # not the tag's download
    assert any("untrained network" in w.value for w in cards_page.warning)
    cards_page.selectbox(key="model").set_value("worldclip-tiny@world-v1").run()  # a trained one: its source
    assert not any("**weights:** random" in m.value for m in cards_page.markdown)
    ranking_page = app_test()
    ranking_page.query_params["model"] = "worldclip-tiny · their-tag"
    ranking_page.run()
    assert not ranking_page.exception and ranking_page.selectbox(key="model").value == "worldclip-tiny@their-tag"
    assert any("untrained network" in w.value for w in ranking_page.warning)


def test_cards_for_known_and_unknown_methods(fixture_store):
    write_fixture_store(fixture_store, pretrained="random", methods=("peft_dora",), n_datasets=2)  # a new method
    at = page("cards")
    at.query_params["card"] = "LoRA"
    at.run()
    assert not at.exception and at.subheader[0].value == "LoRA"
    assert any("@inproceedings{hu2022lora" in c.value for c in at.code)
    assert at.dataframe[1].value["trainable_params"].tolist() == [1000]  # measured, from provenance
    at.selectbox(key="card").set_value("peft_dora").run()  # a peft method: its facts come from core.method_info
    assert not at.exception and at.subheader[0].value == "DoRA \\(peft\\)"
    shown = " ".join(m.value for m in at.markdown)
    assert "reparameterised" in shown and "https://arxiv.org/abs/2402.09353" in shown and not at.info


def test_a_method_cards_defaults_keep_their_integers(fixture_store):
    """LoRA's defaults read 'rank 4.0' (and CLIP-Adapter's 'reduction 4.0'): a rank is an integer; the table cast
    every default to float, as the column mixed 4 and 0.2, before showing it as text."""
    at = page("cards")
    at.query_params["card"] = "LoRA"
    at.run()
    assert not at.exception
    assert dict(zip(*at.dataframe[0].value.T.values)) == {"rank": "4", "scale": "0.2"}
    at.selectbox(key="card").set_value("clip_adapter").run()
    assert dict(zip(*at.dataframe[0].value.T.values)) == {"reduction": "4", "ratio": "0.2"}


def test_a_method_cards_measured_parameter_count_is_a_whole_number(tmp_path, monkeypatch):
    """A linear probe's head grows with the classes, so its mean trainable count over datasets is fractional: the
    card showed '799.8' trainable parameters. The count is now rounded and its header says it is a mean."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    for k, record in enumerate(make_fixture_records(n_datasets=2, methods=("linear_probe",))):
        record["provenance"] = {**record["provenance"], "trainable_params": 1000 + 3 * k}  # mean 1001.5
        store.write_record(record, tmp_path / "results")
    at = page("cards")
    at.query_params["card"] = "Linear probe"
    at.run()
    assert not at.exception
    (measured,) = [d for d in at.dataframe if "trainable_params" in d.value.columns]
    assert measured.value["trainable_params"].tolist() == [1002]
    assert "mean over datasets" in json.loads(measured.proto.columns)["trainable_params"]["help"]


def test_about_counts_the_methods_the_ranking_ranks(fixture_store):
    """The About page said '20 methods' of the shipped store, whose Ranking lists 19: it counted the zero-shot
    baseline, which trains nothing and is no fine-tuning method."""
    write_fixture_store(fixture_store, pretrained="random", methods=("zero_shot",))
    at = page("about").run()
    assert not at.exception
    assert "of 1 model, 3 methods (plus the zero-shot baseline) and 6 datasets" in at.info[0].value


def test_about_states_the_data_and_the_commands(fixture_store):
    at = page("about").run()
    assert not at.exception
    assert "18 runs (16 successful) of 1 model, 3 methods and 6 datasets" in at.info[0].value
    write_fixture_store(fixture_store, pretrained="other-tag", n_datasets=2, methods=("full",))
    st.cache_resource.clear()  # the app holds the store's frame for 30 s
    at = page("about").run()  # the same model name under another pretrained tag is another model
    assert "20 runs (18 successful) of 2 models, 3 methods and 6 datasets" in at.info[0].value
    assert any("python -m jobs.ingest" in c.value for c in at.code)
    assert any("@inproceedings{niss2025iimm" in c.value for c in at.code)


def test_compare_builds_its_panels_once_and_again_for_other_methods(fixture_store, monkeypatch):
    """Every rerun built every panel again (1-2 s on the shipped store, about 20 s at 44 methods x 300 datasets)."""
    from core import charts

    built, build = [], charts.iimm_panels_by_method
    monkeypatch.setattr(charts, "iimm_panels_by_method", lambda runs, *a, **k: built.append(1) or build(runs, *a, **k))
    at = page("compare").run()
    at.run()
    assert not at.exception and len(built) == 2 and len(at.get("vega_lite_chart")) == 6  # two outcomes, once each
    at.multiselect(key="method").select("lora").run()
    assert not at.exception and len(built) == 4 and len(at.get("vega_lite_chart")) == 2
