"""The app's pages through AppTest, on a fixture store in a temp folder (never the real store)."""
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import forecast_select, models, predictor_eval, store
from core.data import example
from tests.fixtures import FIXTURE_SOURCE, LINES, fixture_run_id, make_fixture_records, write_fixture_store

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # the forecast page loads torch + the tiny model on first use


@pytest.fixture
def fixture_store(tmp_path, monkeypatch):
    """18 fixture runs of the random tiny model (3 methods x 6 datasets, 2 of them failed) as the
    only store; the shipped folder is pointed at an empty one so real results never leak in."""
    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    write_fixture_store(results, pretrained="random", n_failed=2)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    return results


def sample_zip(n_per_class: int = 6, classes=("red", "green", "blue")) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for k, name in enumerate(classes):
            for i in range(n_per_class):
                px = np.full((32, 32, 3), 40, np.uint8)
                px[..., k] = 200
                px = np.clip(px + rng.integers(-30, 30, px.shape), 0, 255).astype(np.uint8)
                out = io.BytesIO()
                Image.fromarray(px).save(out, format="PNG")
                zf.writestr(f"{name}/{i:03d}.png", out.getvalue())
    return buf.getvalue()


def traversal_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../etc/evil.png", b"x")
        zf.writestr("/abs/evil.png", b"x")
    return buf.getvalue()


def page(name: str) -> AppTest:
    return AppTest.from_file(f"../pages/{name}.py", default_timeout=TIMEOUT)


def app_test() -> AppTest:
    return AppTest.from_file("../app.py", default_timeout=TIMEOUT)


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


def test_the_ranking_links_open_the_runs_they_count_submitted_runs_included(fixture_store, tmp_path, monkeypatch):
    """With unverified submissions included, 'All 4 runs of this model on these datasets' opened the All runs page
    without them (the toggle was not carried): it showed 3 runs, and the matrix link dropped them too."""
    from urllib.parse import parse_qs

    submitted = tmp_path / "submitted"
    for path in write_fixture_store(submitted, pretrained="random", methods=("full",), seeds=(5,)):
        path.write_text(json.dumps(dict(json.loads(path.read_text()), source=store.SUBMITTED_SOURCE)))
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
    table = one.dataframe[0].value
    assert not one.exception and set(table["gain_ci"]) == {"—"} and set(table["ood_ci"]) == {"—"}
    links = [link.proto.label for link in one.get("page_link")]
    assert "All 3 runs of this model on these datasets" in links  # what the link opens (was: all 18)
    for path in fixture_store.rglob("*.json"):  # records without their optional created_at
        record = json.loads(path.read_text())
        record.pop("created_at", None)
        path.write_text(json.dumps(record))
    st.cache_resource.clear()  # the app holds the store's frame for 30 s
    about = page("about").run()
    assert not about.exception and "nan" not in about.info[0].value and "recorded" not in about.info[0].value


def test_compare_renders_panels_and_fit_table(fixture_store):
    write_fixture_store(fixture_store, pretrained="random", methods=("zero_shot",))  # outcomes 0: not offered
    at = page("compare").run()
    assert at.multiselect(key="method").options == ["BitFit", "Full", "LoRA"]  # no zero-shot (nothing to draw)
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 2  # IIMM vs gain, IIMM vs OOD change (one panel per method each)
    fits = at.dataframe[0].value
    assert set(fits["method"]) == {"BitFit", "Full", "LoRA"}
    assert np.allclose(fits["r2"], 1.0) and np.allclose(fits["kendall_tau"].abs(), 1.0)
    at.multiselect(key="method").select("full").run()
    assert set(at.dataframe[0].value["method"]) == {"Full"}


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


def test_compare_condenses_the_predictor_csv(fixture_store):
    (store.SHIPPED_DIR / "predictors.csv").write_text(
        "method,predictor,family,outcome,status,kendall_tau,lodo_mae\n"
        "a,iimm,zero-shot,id_gain,ok,0.8,1\nb,iimm,zero-shot,id_gain,ok,-0.4,3\n")
    at = page("compare").run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert table["mean_abs_tau"].tolist() == pytest.approx([0.6]) and table["predictor"].tolist() == ["IIMM"]
    assert "IIMM ranks 1 of 1" in at.markdown[-1].value


def test_compare_shows_the_forecast_coverage_and_its_rule(fixture_store):
    runs = store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full",), noise=0.5))
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


# ------------------------------------------------------------------------------ forecast
def run_upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="fc_upload").set_value((name, data, "application/octet-stream"))
    at.run()
    at.button(key="fc_run").click().run()
    return at


def test_forecast_page_predicts_for_an_uploaded_zip(fixture_store):
    at = page("forecast").run()
    assert not at.exception
    assert at.selectbox(key="fc_model").value == "worldclip-tiny-random"
    options = at.selectbox(key="fc_model").options
    assert [o.split(":")[0] for o in options] == [s.key for s in models.list_models()]
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and not at.error
    name, res, _ = at.session_state["fc_result"]
    assert res.n_images == 18 and res.n_classes == 3 and res.enough_runs
    assert at.metric[0].value == f"{res.iimm:.3f}"
    assert any("RANDOM WEIGHTS" in w.value for w in at.warning)
    assert "Confidence: good" in at.success[0].value and "Predicted to gain most" in at.success[0].value
    assert at.metric[1].label == "zero-shot accuracy" and any("chance level 33.3 %" in c.value for c in at.caption)
    table = at.dataframe[0].value.set_index("method")
    a, b, c = LINES["full"]
    assert table.loc["full", "id_gain"] == pytest.approx(a + b * res.iimm, abs=1e-6)
    assert table.loc["full", "ood_change"] == pytest.approx(-c * res.iimm, abs=1e-6)
    assert len(at.get("vega_lite_chart")) == 2  # predicted gain vs forgetting; IIMM chart with the dataset marked
    chosen = [d.value for d in at.dataframe if "predicted from" in d.value.columns]  # how each forecast was chosen
    assert len(chosen) == 1 and "id_gain" not in set(chosen[0]["outcome"])  # by name, not by key
    assert '"type": "text"' in at.get("vega_lite_chart")[1].proto.spec  # the dataset is labelled, not only marked


def test_a_forecast_says_when_the_choices_above_it_changed(fixture_store):
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    assert not any("choices above have changed" in i.value for i in at.info)
    at.text_input(key="fc_template").set_value("a drawing of a {c}").run()  # model or template changed: stale
    assert not at.exception
    (notice,) = [i.value for i in at.info if "choices above have changed" in i.value]
    assert r"sample\.zip" in notice and r"worldclip\-tiny\-random" in notice  # record-like text escaped
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    at.file_uploader(key="fc_upload").set_value(("sample.zip", sample_zip(n_per_class=7), "application/zip")).run()
    assert any("choices above have changed" in i.value for i in at.info)  # same name, other content
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))
    at.text_input(key="fc_template").set_value("a drawing of a {c}").run()
    assert not any("choices above have changed" in i.value for i in at.info)  # an .npz uses no template


def test_forecast_page_offers_an_example_that_it_accepts(fixture_store):
    at = page("forecast").run()
    button = at.get("download_button")[0].proto
    assert example.EXAMPLE_TASK in button.label and button.deferred_file_id  # built on click, not per page view
    run_upload(at, f"{example.EXAMPLE_TASK}-example.zip", example.example_sample_zip(per_class=4))
    assert not at.exception and not at.error
    _, res, _ = at.session_state["fc_result"]
    assert res.n_classes == 6 and res.n_images == 24 and res.enough_runs


def test_forecast_page_refuses_hostile_uploads_before_the_run(fixture_store):
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("evil.zip", traversal_zip(), "application/zip"))
    at.run()
    assert not at.exception and at.button(key="fc_run").disabled  # explained before any run
    assert "cannot be used" in at.error[0].value and "outside the archive" in at.error[0].value
    assert "fc_result" not in at.session_state
    at.file_uploader(key="fc_upload").set_value(("garbage.zip", b"this is not a zip at all", "application/zip"))
    at.run()
    assert not at.exception and "not a zip archive" in at.error[0].value and at.button(key="fc_run").disabled
    run_upload(at, "good.zip", sample_zip())
    assert not at.exception and not at.error
    assert "18 images in 3 classes" in at.caption[0].value
    assert at.session_state["fc_result"][1].n_images == 18


def test_a_refused_upload_is_kept_in_its_session_without_the_images_read_before_the_refusal(fixture_store):
    """The session kept the UploadError itself, and with it its traceback's frames: every image decoded before
    a late refusal (a second class with no usable image: 1,999 thumbnails, 525 MB a tab), outside the shared
    budget of parsed uploads."""
    blank = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(blank, format="PNG")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(5):
            zf.writestr(f"cat/{i}.png", blank.getvalue())
        zf.writestr("dog/0.png", b"not an image")
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", buf.getvalue(), "application/zip")).run()
    error = at.session_state["fc_checked"][1]
    assert not at.exception and "at least 2 classes" in at.error[0].value and "at least 2 classes" in str(error)
    assert error.__traceback__ is None and error.__context__ is None and error.__cause__ is None


def test_parsed_uploads_are_held_in_one_budget_that_all_sessions_share(fixture_store, monkeypatch):
    """Each tab used to keep its parsed upload in its session: 2,000 thumbnails (375 MiB, from a zip of
    under 1 MiB) per open tab, without any bound over tabs."""
    import app

    getattr(app, "_PARSED", {}).clear()  # other tests' uploads
    one = 60 * 32 * 32 * 3  # the thumbnails of one sample_zip(n_per_class=20)
    monkeypatch.setattr(app, "PARSED_BUDGET_BYTES", int(2.5 * one), raising=False)
    sessions = [page("forecast").run() for _ in range(4)]
    for at in sessions:
        at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(n_per_class=20), "application/zip")).run()
        assert not at.exception and "60 images in 3 classes" in at.caption[0].value
        assert not hasattr(at.session_state["fc_checked"][1], "data")  # the summary, not the images
    assert app.held_parsed_bytes() == 2 * one  # two of the four tabs' uploads are held, the newest
    first = sessions[0]
    first.button(key="fc_run").click().run()  # its upload was dropped: parsed again for the run
    assert not first.exception and not first.error and first.session_state["fc_result"][1].n_images == 60
    assert app.held_parsed_bytes() <= app.PARSED_BUDGET_BYTES


def _embeddings_npz(width: int) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, image_embeddings=rng.normal(size=(30, width)).astype(np.float32),
             text_embeddings=rng.normal(size=(3, width)).astype(np.float32),
             labels=np.arange(30) % 3, class_names=np.array(["a", "b", "c"]))
    return buf.getvalue()


def test_forecast_page_accepts_embeddings_npz(fixture_store):
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))  # the tiny model's width
    assert not at.exception and not at.error
    res = at.session_state["fc_result"][1]
    assert res.n_images == 30 and "uploaded embeddings" in res.model_label and res.enough_runs
    captions = " ".join(c.value for c in at.caption)
    assert "LEEP left out" in captions  # the forecast's notes reach the page (README: "and says so")
    assert "not bounded" in captions  # predictions are shown as fitted, and the page says so
    at = page("forecast").run()  # a wrong width is explained as soon as the file arrives, before any run
    at.file_uploader(key="fc_upload").set_value(("emb.npz", _embeddings_npz(16), "application/octet-stream"))
    at.run()
    assert not at.exception and "16 wide but the chosen model" in at.error[0].value
    assert at.button(key="fc_run").disabled


def test_forecasts_take_turns_and_a_visitor_without_one_is_told_so(fixture_store, monkeypatch):
    """Every visitor's forecast ran at once, each with all the cores: unbounded, more visitors made every
    forecast slower and held more memory. Now they take turns; one that gets none in time says so."""
    import app
    from core.turns import Turns

    monkeypatch.setattr(app, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(app, "FORECAST_WAIT_S", 0.05)
    held = app._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast is running
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))
    assert not at.exception and "server is busy" in at.error[0].value and "fc_result" not in at.session_state
    assert at.status[0].label == "Forecast failed"
    assert any("runs 1 forecast at a time, all busy now; yours starts" in m.value for m in at.markdown)  # told it waits
    held.__exit__(None, None, None)  # it ended: the next press gets a turn
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error and at.session_state["fc_result"][1].n_images == 30


def test_the_app_keeps_two_large_models_as_the_readme_says():
    import app

    assert app.MAX_LARGE_MODELS == 2 and app.MODELS.max_large == app.MAX_LARGE_MODELS


def test_forecasts_take_turns_two_at_a_time_for_up_to_120_s_as_the_readme_says():
    import app

    assert (app.FORECAST_SLOTS, app.FORECAST_WAIT_S) == (2, 120.0)
    assert app._FORECAST_TURNS.slots == app.FORECAST_SLOTS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "Forecasts take turns, two at a time" in readme and "after 120 s without one" in readme


def test_an_upload_is_read_in_a_forecasts_turn(fixture_store, monkeypatch):
    """An upload was parsed the moment it arrived, whatever else ran: four visitors' zips of 2,000 images
    arriving together took 2.1 GB at once (each parse holds 375 MiB), beside the forecasts' turns. Now reading
    one takes a turn; with none free in time, the check is left to the run, which reads it in its own."""
    import app
    from core.turns import Turns

    monkeypatch.setattr(app, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(app, "FORECAST_WAIT_S", 0.05)
    app._PARSED.clear()
    held = app._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast or upload is being worked on
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert not at.exception and not at.error and len(app._PARSED) == 0  # not read meanwhile
    assert any("all busy now; your upload is read" in m.value for m in at.markdown)  # told it waits
    assert not at.button(key="fc_run").disabled  # the run reads it in its own turn
    held.__exit__(None, None, None)
    at.run()
    assert "18 images in 3 classes" in at.caption[0].value and len(app._PARSED) == 1


def test_an_upload_whose_check_found_no_turn_waits_only_in_the_runs_own_turn(fixture_store, monkeypatch):
    """A check that found no turn was not kept, so every later rerun waited FORECAST_WAIT_S again, the press of
    "Run forecast" included: the check waited its 120 s, then the run its own, 240 s before "the server is
    busy" (the README says 120). Once given up, a check takes a turn only when one is free at once."""
    import app
    from core.turns import Turns

    monkeypatch.setattr(app, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(app, "FORECAST_WAIT_S", 0.05)
    app._PARSED.clear()
    held = app._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast is running
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert any("your upload is read" in m.value for m in at.markdown)  # the check waited once
    at.button(key="fc_run").click().run()
    assert not at.exception and "server is busy" in at.error[0].value
    assert not any("your upload is read" in m.value for m in at.markdown)  # only the run waited
    held.__exit__(None, None, None)
    at.run()  # a turn is free now: the check reads it
    assert "18 images in 3 classes" in at.caption[0].value and len(app._PARSED) == 1


def test_a_forecast_whose_upload_was_dropped_has_one_time_budget(fixture_store, monkeypatch):
    """A run whose parsed upload had left the shared pool parsed it again under a budget of its own, then
    embedded under another: up to twice the 300 s the README promises. Now both share the forecast's one."""
    import app
    import core.upload

    made = []

    class CountedDeadline(core.upload.Deadline):
        def __init__(self, seconds):
            super().__init__(seconds)
            made.append(self)

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    app._PARSED.clear()  # dropped for other sessions' uploads
    monkeypatch.setattr(core.upload, "Deadline", CountedDeadline)
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error and at.session_state["fc_result"][1].n_images > 0
    assert len(made) == 1


def test_forecast_page_without_out_of_domain_references_explains_the_missing_chart(tmp_path, monkeypatch):
    """Reference runs without an out-of-domain panel: no method is forecast on both axes, so the trade-off
    chart has nothing to draw; the page says so (it raised ValueError, a traceback on the page)."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    for record in make_fixture_records(n_datasets=8, pretrained="random", noise=0.5):
        store.write_record(dict(record, ood_change=None, ood_sets=[], ood_before={}, ood_after={}), tmp_path / "results")
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))
    assert not at.exception
    assert any("No trade-off chart" in i.value for i in at.info)
    assert at.dataframe[0].value["id_gain"].notna().all()  # the gain forecasts are still shown


def test_a_forecast_fitted_on_random_weight_runs_is_labelled(tmp_path, monkeypatch):
    """A trained model's tag whose stored runs record random weights (the ranking labels them): the forecast
    fitted on them is labelled too; it read as a toy model's forecast only."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny")  # world-v1: trained weights
    for record in make_fixture_records(n_datasets=8, pretrained="world-v1", noise=0.5):
        store.write_record(dict(record, random_weights=True), tmp_path / "results")
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))
    assert not at.exception and at.session_state["fc_result"][1].enough_runs
    assert any("RANDOM WEIGHTS" in w.value for w in at.warning)
    assert any("reference runs of worldclip\\-tiny \\(world\\-v1\\) record RANDOM WEIGHTS" in c.value for c in at.caption)


def test_forecast_page_shows_model_errors_and_missing_runs(fixture_store, monkeypatch):
    def offline(key, **kw):
        raise models.ModelUnavailableError(f"Could not obtain the pretrained weights of {key}: offline.")

    monkeypatch.setattr(models, "load_model", offline)
    at = page("forecast").run()
    at.selectbox(key="fc_model").select("CLIP").run()
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and "Could not obtain the pretrained weights of CLIP" in at.error[0].value
    assert at.status[0].label == "Forecast failed" and at.status[0].state == "error"  # never stuck "Forecasting…"
    assert "not available offline" in at.selectbox(key="fc_model").format_func("CLIP")
    monkeypatch.undo()
    monkeypatch.setenv(store.ENV_VAR, str(fixture_store.parent / "empty"))
    monkeypatch.setattr(store, "SHIPPED_DIR", fixture_store.parent / "none")
    at = page("forecast").run()
    at.selectbox(key="fc_model").select("worldclip-tiny-random").run()
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and not at.error
    assert "No reference runs" in at.warning[0].value
    assert "python -m jobs.grid" in at.code[0].value


def test_forecast_selection_reads_every_shipped_table_and_keeps_the_rule(fixture_store):
    import app  # the page helpers, for their cached table reader
    app.forecast_selection.clear()
    assert app.forecast_selection().empty  # nothing shipped
    runs = store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full",), noise=0.5))
    table = forecast_select.selection_table(runs, outcomes=("id_gain",))
    table.to_csv(store.SHIPPED_DIR / "forecast-selection.csv", index=False)
    (store.SHIPPED_DIR / "world-x" / "tables").mkdir(parents=True)
    other = table.assign(pretrained="world-x", coverage=0.5)
    pd.concat([other, other.assign(rule="one-se")]).to_csv(
        store.SHIPPED_DIR / "world-x" / "forecast-selection.csv", index=False)
    other.assign(coverage=0.75).to_csv(store.SHIPPED_DIR / "world-x" / "tables" / "forecast-selection.csv", index=False)
    app.forecast_selection.clear()
    got = app.forecast_selection()
    default = forecast_select.DEFAULT_RULE
    assert sorted(zip(got["pretrained"], got["rule"])) == sorted(
        [(table["pretrained"].iloc[0], default), ("world-x", default), ("world-x", "one-se")])
    # the same (model, method, outcome, rule) in two files: the later path wins
    assert got.loc[(got["pretrained"] == "world-x") & (got["rule"] == default), "coverage"].tolist() == [0.75]
    app.forecast_selection.clear()


# ------------------------------------------------------------------------------ operator mistakes and a changing store
def test_bad_shipped_tables_degrade_to_a_message(fixture_store):
    import app

    (store.SHIPPED_DIR / "predictors.csv").write_text("method,predictor,family,outcome,status,kendall_tau,lodo_mae\n")
    at = page("compare").run()  # header only: was IndexError
    assert not at.exception and any("it has no scored" in w.value for w in at.warning)
    (store.SHIPPED_DIR / "sub").mkdir()
    (store.SHIPPED_DIR / "sub" / "forecast-selection.csv").write_text("")  # empty: was a traceback on the page
    (store.SHIPPED_DIR / "forecast-selection.csv").write_text("a,b\n1,2\n")  # other columns
    app.forecast_selection.clear()
    assert app.forecast_selection().empty


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
    (fake / spec.shipped_weights).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n")
    monkeypatch.setattr(model_zoo, "ASSET_DIR", fake)
    with pytest.raises(model_zoo.ModelUnavailableError, match="cannot be read .*Git LFS pointer"):
        model_zoo.load_model("worldclip-tiny")  # was: a raw SafetensorError, and the page stuck "Forecasting…"


def test_an_unusable_submissions_folder_is_an_error_message(fixture_store, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
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
    (fixture_store / "broken.json").write_text("{not json")
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
    for path in [root / "app.py", *sorted((root / "pages").glob("*.py"))]:
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
