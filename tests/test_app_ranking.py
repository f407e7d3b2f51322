"""The app's ranking (landing view) through AppTest, on a fixture store in a temp folder (never the real store).
The All runs page is in test_app_runs.py, operator mistakes and a changing store in test_app_operator.py."""
import json
from urllib.parse import quote

import numpy as np
import pytest
import streamlit as st

import app as app_module
from core import cards as cards_module
from core import store
from tests.app_helpers import app_test, page
from tests.fixtures import LINES, make_fixture_records, write_fixture_store


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



def test_ranking_warns_when_runs_of_one_dataset_name_ran_on_different_data(fixture_store):
    """Splits of one dataset name changed (EuroSAT, SUN397, folders on 2026-12-05): seeds run on the new split
    into an old store were averaged with the old ones, unnoticed. Only records naming a fingerprint are compared."""
    def on(train, tag):
        return [dict(r, run_id=r["run_id"] + tag, seed=r["seed"] + len(tag), provenance={
                    **r["provenance"], "data_fingerprint": {"train": train, "test": "same"}})
                for r in make_fixture_records(n_datasets=2, methods=("bitfit",), pretrained="random")]

    for record in on("old-split", "-a"):
        store.write_record(record, fixture_store / "old")
    st.cache_data.clear(), st.cache_resource.clear()
    at = app_test().run()
    assert not any("different data" in w.value for w in at.warning)  # the fixture's runs name no data: not blamed
    for record in on("new-split", "-bb"):
        store.write_record(record, fixture_store / "new")
    st.cache_data.clear(), st.cache_resource.clear()  # the store is cached for 30 s
    at = app_test().run()
    assert not at.exception
    (warning,) = [w.value for w in at.warning if "different data" in w.value]
    assert r"fx\-set\-0: train (2 versions: " in warning and r"fx\-set\-1: train (2 versions: " in warning
    at = app_test()
    at.query_params.update({"dataset": ["fx-set-3", "fx-set-4"]})  # the table averages none of them
    assert not any("different data" in w.value for w in at.run().warning)

def test_a_saved_ranking_table_says_which_rows_average_several_recipes_or_different_data(fixture_store):
    """The warnings above the ranking said a row averaged runs of several recipes or on different data; the table,
    which its toolbar saves as CSV alone, did not: an 'averaged' column, shown only then, says it per method."""
    at = app_test().run()
    assert "averaged" not in at.dataframe[0].proto.column_order  # nothing mixed: no column
    smoke = [dict(r, run_id=r["run_id"] + "-smoke", source="measured:smoke-grid",
                  config={**r["config"], "train": {"max_steps": 12}})
             for r in make_fixture_records(n_datasets=2, methods=("bitfit",), pretrained="random")]
    other = [dict(r, run_id=r["run_id"] + "-new", seed=r["seed"] + 7, provenance={
                 **r["provenance"], "data_fingerprint": {"train": "new-split", "test": "same"}})
             for r in make_fixture_records(n_datasets=1, methods=("lora",), pretrained="random")]
    old = [dict(r, run_id=r["run_id"] + "-old", seed=r["seed"] + 9, provenance={
               **r["provenance"], "data_fingerprint": {"train": "old-split", "test": "same"}})
           for r in make_fixture_records(n_datasets=1, methods=("lora",), pretrained="random")]
    for record in [*smoke, *other, *old]:
        store.write_record(record, fixture_store / "more")
    st.cache_data.clear(), st.cache_resource.clear()  # the store is cached for 30 s
    at = app_test().run()
    assert not at.exception and len([w for w in at.warning if "averaged together" in w.value]) == 2
    table = at.dataframe[0]
    assert list(table.proto.column_order)[-1] == "averaged"
    said = table.value.set_index("method")["averaged"]
    assert said["bitfit"] == "runs of 2 training recipes"
    assert said["lora"] == "runs on different data: fx-set-0 train" and said["full"] == ""


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


def test_a_rank_by_change_does_not_read_the_warnings_again(fixture_store, monkeypatch):
    """The warnings were cached with the ranking, keyed by "rank by": each change parsed every run's config and
    provenance again (0.2 s for one model's 25,000 runs in jobs.bench_app), though the warnings do not depend on it."""
    from core import data_versions

    calls = []
    real = data_versions.mixed_data
    monkeypatch.setattr(data_versions, "mixed_data", lambda runs: calls.append(len(runs)) or real(runs))
    st.cache_data.clear(), st.cache_resource.clear()
    at = app_test().run()
    at.selectbox(key="rank").set_value("ood_change").run()
    assert not at.exception and list(at.dataframe[0].value["method_title"])[0] == "BitFit"  # the new order shown
    assert len(calls) == 1
