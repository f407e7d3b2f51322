"""The app's ranking (landing view) and All runs pages through AppTest, on a fixture store in a temp folder
(never the real store); and operator mistakes and a changing store. The matrix, compare, cards and about
pages are in test_app_matrix_compare_cards.py, the forecast page in test_app_forecast.py."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import streamlit as st

import app as app_module
from core import cards as cards_module
from core import store
from tests.app_helpers import app_test, page
from tests.fixtures import FIXTURE_SOURCE, LINES, fixture_run_id, make_fixture_records, write_fixture_store

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ ranking (landing view)
def test_app_starts_on_the_ranking(fixture_store):
    at = app_test().run()
    assert not at.exception
    assert at.title[0].value == "Which fine-tuning method should you use?"
    table = at.dataframe[0].value
    assert list(table["method_title"]) == ["Full", "LoRA", "BitFit"] and list(table["rank"]) == [1, 2, 3]
    assert "Most gain:** Full" in at.markdown[1].value
    assert any("RANDOM WEIGHTS" in w.value or "untrained" in w.value for w in at.warning)
    assert len(at.get("vega_lite_chart")) == 1  # gain vs forgetting
    iimm = [0.2 + 0.05 * k for k in range(6)]  # the fixture's datasets; its 2 failed runs are LoRA's last two
    a, b, _ = LINES["full"]
    rows = table.set_index("method")
    assert rows.loc["full", "id_gain"] == pytest.approx(a + b * np.mean(iimm))
    assert rows.loc["lora", "n_datasets"] == 4 and rows.loc["full", "n_datasets"] == 6  # failed runs left out


def test_ranking_warns_when_a_method_averages_runs_of_several_recipes(fixture_store):
    at = app_test().run()
    assert not any("Different experiments" in w.value for w in at.warning)  # one recipe: no warning
    short = [dict(r, run_id=r["run_id"] + "-smoke", source="measured:smoke-grid",
                  config={**r["config"], "train": {"max_steps": 12}})
             for r in make_fixture_records(n_datasets=2, methods=("bitfit",), pretrained="random")]
    for record in short:  # as `make grid-smoke` into results/smoke adds beside a full grid's runs
        store.write_record(record, fixture_store / "smoke")
    st.cache_data.clear(), st.cache_resource.clear()  # the store is cached for 30 s
    at = app_test().run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "Different experiments" in w.value]
    at = app_test()
    at.query_params.update({"dataset": ["fx-set-3", "fx-set-4"]})  # the smoke runs are on fx-set-0 and 1 only
    assert not any("Different experiments" in w.value for w in at.run().warning)  # the table averages no mix
    assert "BitFit (2)" in warning and r"measured\:smoke\-grid" in warning  # escaped record text


def test_ranking_view_restores_from_the_url(fixture_store):
    at = app_test()
    # bound widgets keep their option *labels* in the URL (Streamlit serialises through format_func)
    at.query_params.update({"rank": "least forgetting (out-of-domain change)", "dataset": ["fx-set-0", "fx-set-1"],
                            "x": "gain + out-of-domain change (points)"})
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["method_title"]) == ["BitFit", "LoRA", "Full"]  # least forgetting first
    assert set(table["n_datasets"]) == {2}
    assert at.selectbox(key="x").value == "net" and at.multiselect(key="dataset").value == ["fx-set-0", "fx-set-1"]


def test_the_verdict_names_every_method_tied_for_most_gain(tmp_path, monkeypatch):
    """On one dataset several methods can share the top gain (world v1's bar-count: CLIP-CITE, Full fine-tuning and
    Orthogonal FT, each +29.5, all ranked 1): the verdict named the first as 'Most gain' alone."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setitem(LINES, "lora", (LINES["full"][0], LINES["full"][1], 1.0))  # full's gain, less forgetting
    write_fixture_store(tmp_path / "results", n_datasets=3)
    at = app_test().run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("method_title")
    assert table.loc["Full", "rank"] == table.loc["LoRA", "rank"] == 1
    verdict = at.markdown[1].value
    assert verdict.startswith(f"**Most gain** (2 methods tied, {table.loc['Full', 'id_gain']:+.1f} points in-domain "
                              "each): ") and "Full (" in verdict and "LoRA (" in verdict


def test_the_ranking_links_open_the_runs_they_count_submitted_runs_included(fixture_store, tmp_path, monkeypatch):
    """With unverified submissions included, 'All 4 runs of this model on these datasets' opened the All runs page
    without them (the toggle was not carried): it showed 3 runs, and the matrix link dropped them too."""
    from urllib.parse import parse_qs

    submitted = tmp_path / "submitted"
    for path in write_fixture_store(submitted, pretrained="random", methods=("full",), seeds=(5,)):
        path.write_text(json.dumps(dict(json.loads(path.read_text(encoding="utf-8")), source=store.SUBMITTED_SOURCE)),
                        encoding="utf-8")
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    at = app_test()
    at.query_params.update({"submitted": "true", "dataset": "fx-set-0"})
    at.run()
    assert not at.exception and at.toggle(key="submitted").value
    links = {link.proto.page: link.proto for link in at.get("page_link")}
    assert links["runs"].label == "All 4 runs of this model on these datasets"  # 3 measured + 1 submitted
    for name in ("runs", "matrix"):
        assert parse_qs(links[name].query_string).get("submitted") == ["true"], name
    opened = app_test()
    opened.switch_page("pages/runs.py")
    opened.query_params.update(parse_qs(links["runs"].query_string))
    opened.run()
    assert not opened.exception and "**4** of 24 runs match" in opened.markdown[0].value  # was: 3 of 18


def _submitted_store(tmp_path, monkeypatch, *stores: dict) -> None:
    """Each of ``stores`` (``write_fixture_store`` arguments) written as submitted, unverified runs the app reads."""
    submitted = tmp_path / "submitted"
    for kwargs in stores:
        for path in write_fixture_store(submitted, pretrained="random", **kwargs):
            path.write_text(json.dumps(dict(json.loads(path.read_text(encoding="utf-8")), source=store.SUBMITTED_SOURCE)),
                            encoding="utf-8")
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))


def test_rows_resting_on_submitted_unverified_runs_say_so(fixture_store, tmp_path, monkeypatch):
    """With 'include submitted, unverified runs' on, the ranking's rows and the All runs table looked exactly like
    measured ones: nothing said which numbers rest on unverified submissions."""
    _submitted_store(tmp_path, monkeypatch, {"methods": ("adapter",), "seeds": (5,)})
    at = app_test()
    at.query_params["submitted"] = "true"
    at.run()
    assert not at.exception
    titles = dict(zip(at.dataframe[0].value["method"], at.dataframe[0].value["method_title"]))
    assert "unverified" in titles["adapter"] and "unverified" not in titles["full"]
    cards = dict(zip(at.dataframe[0].value["method"], at.dataframe[0].value["card"]))
    assert cards["adapter"] == "/cards?card=" + quote(app_module.option_text(cards_module.method_title("adapter")))
    matrix = page("matrix")
    matrix.query_params["submitted"] = "true"
    matrix.run()
    assert not matrix.exception  # its rows too (the fixture's own LoRA has no submitted run)
    assert {"Adapter (with unverified runs)", "LoRA"} <= set(matrix.dataframe[0].value.index)
    runs = page("runs")
    runs.query_params["submitted"] = "true"
    runs.run()
    assert "source" in list(runs.dataframe[0].proto.column_order)
    assert store.SUBMITTED_SOURCE in set(runs.dataframe[0].value["source"])
    compare = page("compare")
    compare.query_params["submitted"] = "true"
    compare.run()
    assert not compare.exception  # and the fit table's rows
    assert {"Adapter (with unverified runs)", "LoRA"} <= set(compare.dataframe[0].value["method"])


def test_a_failed_submitted_run_does_not_mark_a_row_as_resting_on_it(fixture_store, tmp_path, monkeypatch):
    """A submitted run that failed feeds no number of the Ranking or the matrix (both average ok runs), yet its
    method's row said '(with unverified runs)': the mark counted every submitted run, failed ones too."""
    _submitted_store(tmp_path, monkeypatch, {"methods": ("full",), "n_datasets": 1, "seeds": (5,)},
                     {"methods": ("lora",), "n_datasets": 1, "seeds": (6,), "n_failed": 1})  # LoRA's run failed
    at = app_test()
    at.query_params["submitted"] = "true"
    at.run()
    assert not at.exception
    titles = set(at.dataframe[0].value["method_title"])
    assert "Full (with unverified runs)" in titles and "LoRA" in titles, titles
    matrix = page("matrix")
    matrix.query_params["submitted"] = "true"
    matrix.run()
    assert not matrix.exception
    assert {"Full (with unverified runs)", "LoRA"} <= set(matrix.dataframe[0].value.index)


def test_a_link_to_a_model_dataset_method_or_run_the_store_lacks_says_so(fixture_store):
    """Streamlit drops a URL value that is none of a widget's options and shows the default: a shared link to a
    removed model or dataset showed another model's ranking, or every dataset, as if they were the ones asked for."""
    def opened(name, **params):
        at = app_test() if name == "ranking" else page(name)
        at.query_params.update(params)
        at.run()
        assert not at.exception, name
        return " ".join(w.value for w in at.warning).replace("\\", "")

    shown = opened("ranking", model="gone · tag", dataset=["fx-set-1", "gone-set"])
    assert "asks for the model gone · tag, which is not among this page's choices: showing worldclip-tiny · random" in shown
    assert "asks for the dataset gone-set" in shown and "filtering on the others" in shown
    assert "showing every dataset" in opened("ranking", dataset=["gone-set"])
    for name in ("matrix", "compare", "cards"):
        assert "asks for the model gone · tag" in opened(name, model="gone · tag"), name
    assert "asks for the method Gone, which" in opened("compare", method=["Gone"])
    assert "asks for the method gone" in opened("cards", card="gone")
    runs = opened("runs", model="gone · tag", method=["Gone"], run="gone run")
    assert "model gone · tag, which is not among this page's choices: showing all models" in runs
    assert "method Gone" in runs and "run gone run" in runs
    assert "asks for" not in opened("ranking", model="worldclip-tiny · random", dataset=["fx-set-1"])  # a good link


def test_empty_store_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "nothing"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    at = app_test().run()
    assert not at.exception and "No runs yet" in at.info[0].value
    for name in ("runs", "matrix", "compare", "about"):
        out = page(name).run()
        assert not out.exception, name


def test_a_store_of_only_submissions_says_they_are_left_out(tmp_path, monkeypatch):
    """Every run an unverified submission: the pages say they are left out and how to include them, not
    "No runs yet" (which told a submitter their runs were lost)."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "nothing"))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    for record in make_fixture_records(n_datasets=2, methods=("full",)):
        store.write_record(dict(record, source=store.SUBMITTED_SOURCE), tmp_path / "submitted")
    for name in ("ranking", "runs", "matrix", "compare"):
        at = (app_test() if name == "ranking" else page(name)).run()
        assert not at.exception, name
        (info,) = [i.value for i in at.info if "submitted" in i.value]
        assert "only 2 submitted, unverified run(s)" in info and "No runs yet" not in info, name
        assert at.toggle(key="submitted").label == "include 2 submitted, unverified runs", name
    st.cache_data.clear(), st.cache_resource.clear()
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "none-either"))
    assert "No runs yet" in app_test().run().info[0].value  # a store with nothing at all: the old advice


# ------------------------------------------------------------------------------ all runs
def test_runs_rows_filters_and_url(fixture_store):
    at = page("runs").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 18
    assert table["id_gain"].dropna().is_monotonic_decreasing  # default sort: in-domain gain, largest first
    assert not any("/" in c.value for c in at.caption)  # no storage paths on the page
    at.multiselect(key="method").select("full").run()
    assert len(at.dataframe[0].value) == 6 and set(at.dataframe[0].value["method"]) == {"full"}
    at.multiselect(key="method").select("lora").run()
    assert len(at.dataframe[0].value) == 12
    at.multiselect(key="status").select("failed").run()
    assert len(at.dataframe[0].value) == 2
    at.text_input(key="q").input("fx-set-5").run()
    assert set(at.dataframe[0].value["dataset"]) == {"fx-set-5"}


def test_the_runs_caption_says_which_runs_the_ranking_averages(fixture_store):
    """The caption called every row a fine-tuning run the ranking averages; the table also lists failed runs and
    zero-shot baselines, which the ranking leaves out."""
    write_fixture_store(fixture_store, pretrained="random", methods=("zero_shot",))
    at = page("runs").run()
    caption = at.caption[0].value
    assert not at.exception and caption.startswith("24 runs in the store")
    ranked = app_test().run().dataframe[0].value
    assert int(ranked["n_runs"].sum()) == 24 - 6 - 2  # neither the zero-shot runs nor the 2 failed ones
    assert "failed runs included" in caption and "zero-shot baselines" in caption
    assert "averages the successful fine-tuning runs" in caption


@pytest.mark.slow
def test_runs_picker_says_how_to_reach_runs_beyond_the_table(fixture_store):
    methods = ("full", "bitfit", "lora", "attention", "clip_adapter", "linear_probe")
    write_fixture_store(fixture_store, pretrained="random", n_datasets=12, methods=methods, seeds=tuple(range(1, 15)))
    at = page("runs").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 1000 and len(at.selectbox(key="run").options) == 1000
    assert any("filter or search to reach the other 26" in c.value for c in at.caption)  # 18 + 12 x 6 x 14 runs
    # counts written as the About page writes them (it said 2,200 runs where this page said 2200)
    assert at.caption[0].value.startswith("1,026 runs in the store")
    assert at.markdown[0].value.startswith("**1,026** of 1,026 runs match; showing the first 1,000,")
    assert any("The picker lists the 1,000 runs shown" in c.value for c in at.caption)
    at.text_input(key="q").input("fx-set-11").run()
    assert len(at.selectbox(key="run").options) == 6 * 14
    assert not any("reach the other" in c.value for c in at.caption)


def test_runs_that_share_a_label_can_each_be_picked_and_filtered(fixture_store):
    # a hyperparameter variant: same model, method, dataset and seed, another run_id; and two datasets
    # whose names differ only in whitespace (one option label once shown)
    base = make_fixture_records(n_datasets=1, methods=("lora",), pretrained="random")[0]
    variant = {**base, "run_id": "variant-" + base["run_id"], "config": {**base["config"], "lr": 1e-3}}
    spaced = [{**base, "run_id": f"spaced-{i}", "dataset": name} for i, name in enumerate(("x y", "x  y"))]
    unrecorded = {**base, "run_id": "no-revision", "seed": 9, "provenance": {
        k: v for k, v in base["provenance"].items() if k != "git_revision"}}
    for r in (variant, *spaced, unrecorded):
        store.write_record(r, fixture_store)
    at = page("runs").run()
    picker = at.selectbox(key="run")
    assert len(set(picker.options)) == len(picker.options)  # every run has its own label
    for run_id in (base["run_id"], variant["run_id"]):
        at.selectbox(key="run").set_value(run_id).run()
        assert not at.exception and at.selectbox(key="run").value == run_id
        config = json.loads(at.get("json")[0].proto.body)["config"]
        assert (config.get("lr") == 1e-3) == (run_id == variant["run_id"]), run_id
    at.selectbox(key="run").set_value("no-revision").run()
    assert any("code revision not recorded" in m.value for m in at.markdown)  # was "code revision None"
    at.multiselect(key="dataset").set_value(["x  y"]).run()
    assert not at.exception and at.dataframe[0].value["run_id"].tolist() == ["spaced-1"]


def test_a_run_without_an_out_of_domain_panel_says_so(fixture_store):
    base = make_fixture_records(n_datasets=1, methods=("lora",), pretrained="random")[0]
    store.write_record(dict(base, run_id="no-ood", seed=7, ood_change=None, ood_sets=[], ood_before={}, ood_after={}),
                       fixture_store)
    at = page("runs")
    at.query_params["run"] = "LoRA on fx-set-0, seed 7 (worldclip-tiny random, RANDOM WEIGHTS)"
    at.run()
    assert not at.exception and at.selectbox(key="run").value == "no-ood"
    assert any("No out-of-domain accuracy recorded for this run" in i.value for i in at.info)


def test_a_runs_out_of_domain_table_rounds_its_accuracies_and_signs_the_change(fixture_store):
    """A run's out-of-domain table showed row numbers and raw floats (40.6667 beside 44, a change of 3.3333 beside
    -32), unlike every other accuracy in the app (one decimal, the change signed)."""
    at = page("runs").run()
    at.selectbox(key="run").set_value(fixture_run_id("worldclip-tiny", "random", "lora", "fx-set-2", 0)).run()
    assert not at.exception
    ood = at.dataframe[1]
    assert list(ood.value.columns) == ["set", "before", "after", "change"]
    config = json.loads(ood.proto.columns)
    assert config["_index"]["hidden"] is True
    assert [config[c]["type_config"]["format"] for c in ("before", "after", "change")] == ["%.1f", "%.1f", "%+.1f"]


def test_the_runs_search_finds_what_the_table_shows(fixture_store):
    """The search box matched the record's keys only: 'IA³ (peft)', as the method column shows it, or the model's
    pretrained tag ('world-v2-b' in 'worldclip-tiny-sigmoid · world-v2-b') found no run at all."""
    for record in make_fixture_records(n_datasets=2, methods=("peft_ia3",), pretrained="random"):
        store.write_record(record, fixture_store)
    searched = {}
    for text in ("IA³ (peft)", "ia³", "random", "peft_ia3"):
        at = page("runs")
        at.query_params["q"] = text
        at.run()
        assert not at.exception, text
        searched[text] = at.dataframe[0].value
    assert set(searched["IA³ (peft)"]["method"]) == set(searched["ia³"]["method"]) == {"peft_ia3"}
    assert len(searched["IA³ (peft)"]) == 2 and len(searched["peft_ia3"]) == 2  # keys still match
    assert len(searched["random"]) == 20  # every run of the fixture's model is pretrained "random"


def test_a_link_with_an_unknown_sort_axis_or_outcome_says_what_it_shows_instead(fixture_store):
    """Links naming a model, dataset, method or run the page lacks were warned about; a stale or mistyped 'rank by',
    axis, sort, order or outcome (?order=asc, where the URL holds 'smallest first') fell back to the default silently."""
    def warnings(name, **params):
        at = app_test() if name == "ranking" else page(name)
        at.query_params.update(params)
        at.run()
        assert not at.exception, name
        return [w.value for w in at.warning if "This link asks for" in w.value]
    assert len(warnings("ranking", rank="best", x="gain", y="mean in-domain gain (points)")) == 2  # rank, x
    assert any(r"the rank by best" in w and r"showing in\-domain gain" in w for w in warnings("ranking", rank="best"))
    assert len(warnings("runs", sort="gain", order="asc")) == 2
    assert any("showing largest first" in w for w in warnings("runs", order="asc"))
    assert len(warnings("matrix", outcome="gain")) == 1
    assert not warnings("runs", sort="IIMM", order="smallest first") and not warnings("matrix", outcome=[
        "out-of-domain change (points)"])


def test_the_runs_table_says_why_a_normalised_gain_is_missing(fixture_store):
    """A run whose zero-shot accuracy is already 100 % has no normalised gain (0 / 0): the cell showed 'None' (25 of
    the shipped runs) with nothing to say why."""
    base = make_fixture_records(n_datasets=1, methods=("lora",), pretrained="random")[0]
    store.write_record(dict(base, run_id="full-marks", seed=3, zs_acc=100.0, ft_acc=100.0, id_gain=0.0,
                            norm_gain=None), fixture_store)
    at = page("runs").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run_id")
    assert pd.isna(table.loc["full-marks", "norm_gain"])
    help_text = json.loads(at.dataframe[0].proto.columns)["norm_gain"]["help"]
    assert "None where zero-shot accuracy was already 100 %" in help_text


def test_a_choice_the_page_dropped_itself_leaves_the_url_and_is_not_blamed_on_a_link(fixture_store):
    """Datasets chosen for one model, then another model picked on the page: the URL kept ?dataset=..., and every
    later rerun warned 'This link asks for the dataset ...' though the visitor had followed no link (in Chromium the
    warning stayed through every interaction). Now the page says once that the earlier choice is gone, and the URL
    drops it; a link's own unknown value is still warned of as a link's."""
    write_fixture_store(fixture_store, n_datasets=2, pretrained="other", methods=("full",))  # fx-set-0, fx-set-1 only
    at = app_test()
    at.query_params["dataset"] = "fx-set-4"
    at.run()
    assert not at.exception and at.multiselect(key="dataset").value == ["fx-set-4"]
    at.selectbox(key="model").set_value("worldclip-tiny@other").run()  # has no fx-set-4
    assert not at.exception and at.multiselect(key="dataset").value == []
    (notice,) = [w.value for w in at.warning if "fx\\-set\\-4" in w.value]
    assert not notice.startswith("This link asks") and "chosen before" in notice and "showing every dataset" in notice
    at.selectbox(key="rank").set_value("net").run()  # any later interaction: no warning, and no stale value kept
    assert not at.exception and not any("fx\\-set\\-4" in w.value for w in at.warning)
    assert "dataset" not in at.query_params
    at = page("runs")  # the run picker: a run that a new filter leaves out
    at.query_params["run"] = "LoRA on fx-set-2, seed 0 (worldclip-tiny random, RANDOM WEIGHTS)"
    at.run()
    at.multiselect(key="method").set_value(["bitfit"]).run()
    assert not at.exception and at.selectbox(key="run").value is None and not any("This link" in w.value for w in at.warning)
    at.multiselect(key="method").set_value(["bitfit", "full"]).run()
    assert not any("LoRA on fx" in w.value for w in at.warning) and "run" not in at.query_params
    at = app_test()
    at.query_params["dataset"] = "no-such-set"  # a link's arrival: still said to be the link's
    at.run()
    assert any(w.value.startswith("This link asks for the dataset no") for w in at.warning)


def test_runs_view_restores_from_the_url_with_readable_run_labels(fixture_store):
    at = page("runs")
    run_id = fixture_run_id("worldclip-tiny", "random", "lora", "fx-set-2", 0)
    label = "LoRA on fx-set-2, seed 0 (worldclip-tiny random, RANDOM WEIGHTS)"  # untrained, as the table marks it
    at.query_params.update({"method": ["BitFit", "LoRA"], "sort": "IIMM", "order": "smallest first", "run": label,
                            "model": "worldclip-tiny · random"})
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["method"]) == {"bitfit", "lora"}
    assert table["iimm"].is_monotonic_increasing
    box = at.selectbox(key="run")
    assert box.value == run_id and box.format_func(run_id) == label
    assert any(run_id in c.value for c in at.code)
    ood = at.dataframe[1].value
    assert list(ood["set"]) == ["ood-a", "ood-b"]
    np.testing.assert_allclose(ood["after"] - ood["before"], ood["change"])
    at.multiselect(key="method").set_value(["bitfit"]).run()  # the chosen run leaves the view
    assert not at.exception and at.selectbox(key="run").value is None and not at.code


def test_browsing_pages_import_no_torch(fixture_store):
    """Hosting requirement: the browsing pages run without torch or open_clip (the forecast page
    starts loading its model in the background as soon as it opens)."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            "at = AppTest.from_file('app.py', default_timeout=60).run()\nassert not at.exception, at.exception\n"
            "for p in ('runs', 'matrix', 'compare', 'cards', 'about'):\n"
            "    at = AppTest.from_file(f'pages/{p}.py', default_timeout=60).run()\n"
            "    assert not at.exception, at.exception\n"
            "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=180, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------------------ operator mistakes and a changing store
def test_bad_shipped_tables_degrade_to_a_message(fixture_store):
    import forecast_ui

    header = "model,pretrained,method,predictor,family,outcome,status,kendall_tau,lodo_mae\n"
    (store.SHIPPED_DIR / "predictors.csv").write_text(header, encoding="utf-8")
    at = page("compare").run()  # header only: was IndexError
    assert not at.exception and any("no shipped predictor table has runs of" in w.value for w in at.warning)
    (store.SHIPPED_DIR / "predictors.csv").write_text(header + "worldclip-tiny,random,a,iimm,zero-shot,id_gain,"
                                                      "failed,,\n", encoding="utf-8")
    at = page("compare").run()  # rows of this model, none scored (the table is the model's since 14bd510)
    assert not at.exception and any("has no scored" in w.value for w in at.warning)
    (store.SHIPPED_DIR / "sub").mkdir()
    (store.SHIPPED_DIR / "sub" / "forecast-selection.csv").write_text("",
                                                                      encoding="utf-8")  # empty: was a traceback on the page
    (store.SHIPPED_DIR / "forecast-selection.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # other columns
    forecast_ui.forecast_selection.clear()
    assert forecast_ui.forecast_selection().empty


def test_a_run_removed_since_the_view_was_made_is_said_to_be_gone(fixture_store, monkeypatch):
    at = page("runs").run()
    run_id = at.dataframe[0].value["run_id"].iloc[0]
    import app

    real = app.load_runs
    monkeypatch.setattr(app, "load_runs", lambda roots, include=False: (
        lambda runs: runs[runs["run_id"] != run_id])(real(roots, include)))  # the store reloaded without it
    at.selectbox(key="run").set_value(run_id).run()
    assert not at.exception and any("no longer in the store" in i.value for i in at.info)  # was: KeyError


def test_unreadable_weights_are_a_clear_model_error(tmp_path, monkeypatch):
    from core import models as model_zoo

    fake = tmp_path / "assets"
    fake.mkdir()
    spec = model_zoo.spec_for("worldclip-tiny")
    (fake / spec.shipped_weights).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n",
                                             encoding="utf-8")
    monkeypatch.setattr(model_zoo, "ASSET_DIR", fake)
    with pytest.raises(model_zoo.ModelUnavailableError, match="cannot be read .*Git LFS pointer"):
        model_zoo.load_model("worldclip-tiny")  # was: a raw SafetensorError, and the page stuck "Forecasting…"


def test_an_unusable_submissions_folder_is_an_error_message(fixture_store, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(blocker / "subs"))  # under a file: cannot be made
    records = make_fixture_records(n_datasets=1, methods=("lora",))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("r.json", json.dumps({**records[0], "run_id": "new-1"}))
    at = page("submit").run()
    at.file_uploader(key="sub_upload").set_value(("s.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="sub_go").click().run()
    assert not at.exception and at.error  # was: a raw OSError traceback
    assert str(tmp_path) not in " ".join(e.value for e in at.error).replace("\\", "")  # no server path either


def test_app_helpers_default_model_options_and_submissions(tmp_path, monkeypatch):
    """The model picker's default is the pair with most *ok* runs; options carry no control or bidi characters;
    unverified submissions stay out of every view unless asked for."""
    import app

    monkeypatch.setenv("IIMM_STORE_INDEX", "off")
    frames = [make_fixture_records(n_datasets=3, pretrained="most-ok"),  # 9 ok runs
              make_fixture_records(n_datasets=2, pretrained="fewer-ok"),  # 6 ok runs
              make_fixture_records(n_datasets=4, pretrained="failed", n_failed=12)]  # 12 runs, none ok
    runs = pd.concat([store.records_to_frame(f) for f in frames], ignore_index=True)
    assert app.model_options(runs) == ["worldclip-tiny@most-ok", "worldclip-tiny@fewer-ok", "worldclip-tiny@failed"]
    assert app.option_text("lo\u202era\x00\tx") == "lora x"
    records = make_fixture_records(n_datasets=2, methods=("full",))
    records[1] = dict(records[1], source=store.SUBMITTED_SOURCE)
    for rec in records:
        store.write_record(rec, tmp_path)
    roots = (str(tmp_path),)
    assert set(app.load_runs(roots)["source"]) == {FIXTURE_SOURCE}
    assert len(app.load_runs(roots, include_submitted=True)) == 2


def test_the_skipped_records_notice_names_no_path_of_the_server(fixture_store, tmp_path):
    """Every visitor sees the notice: it named each skipped file by its absolute path on the server."""
    (fixture_store / "broken.json").write_text("{not json", encoding="utf-8")
    at = page("runs").run()
    notice = " ".join(w.value for w in at.warning).replace("\\", "")
    assert not at.exception and "1 record skipped: results/broken.json (invalid JSON" in notice
    assert str(tmp_path) not in notice


def test_every_app_cache_expires():
    """Every st.cache_data / st.cache_resource of the app has a ttl, so no entry outlives the store read it
    derives from. _verified_runs had none: keyed by the store's version, it held up to 8 old reads of the
    whole store (a 100,000-run store: 8 frames alive, 3.3 GiB RSS, where 1 is needed)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [root / "app.py", root / "forecast_ui.py", *sorted((root / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("cache_data", "cache_resource"):
                found.append((path.name, node.lineno, {k.arg for k in node.keywords}))
    assert len(found) >= 9
    assert [(name, line) for name, line, kw in found if "ttl" not in kw] == []


def test_runs_downloads_hold_every_field_and_are_not_cached(fixture_store, monkeypatch):
    """The CSV/Parquet downloads used to cache every field of the matching runs per view (sort, filters,
    search): up to 16 frames of the whole store, 275 MiB each at 100,000 runs."""
    from streamlit.runtime.caching.cache_data_api import _data_caches
    from streamlit.runtime.media_file_manager import MediaFileManager

    built = []
    add = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, data, *a, **k: (
        built.append(data), add(self, data, *a, **k))[1])

    def cached_bytes() -> int:
        return sum(s.byte_length for family in _data_caches.get_stats().values() for s in family
                   if s.cache_name.endswith("query"))

    st.cache_data.clear()
    at = page("runs").run()
    assert not at.exception and len(built) == 2
    before = cached_bytes()
    csv_bytes, parquet_bytes = (download() for download in built)
    assert cached_bytes() == before
    table = pd.read_csv(io.BytesIO(csv_bytes))
    assert len(table) == 18 and {"run_id", "config", "provenance"} <= set(table.columns)
    assert len(pd.read_parquet(io.BytesIO(parquet_bytes))) == 18
