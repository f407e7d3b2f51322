"""The app's All runs page through AppTest, on a fixture store in a temp folder (never the real store).
The ranking is in test_app_ranking.py, operator mistakes and a changing store in test_app_operator.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import store
from tests.app_helpers import app_test, page
from tests.fixtures import fixture_run_id, make_fixture_records, write_fixture_store

REPO = Path(__file__).resolve().parent.parent


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


@pytest.mark.slow
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
