"""The app's forecast page through AppTest, on a fixture store in a temp folder (never the real store):
uploads, their checks, turns and budgets, and the forecast shown."""
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from app import model_option
from core import forecast_select, models, store
from core.data import example
from tests.app_helpers import embeddings_npz, page, run_upload, sample_zip, trained_toy_store, traversal_zip
from tests.fixtures import LINES, make_fixture_records


# ------------------------------------------------------------------------------ forecast
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
    assert {"LODO error saved vs IIMM line", "error saved: interval low",
            "error saved: interval high"} <= set(chosen[0].columns)
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
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    assert at.text_input(key="fc_template").disabled  # an .npz uses no template: not to be changed for it
    assert not any("choices above have changed" in i.value for i in at.info)


def test_a_forecast_link_naming_a_model_the_page_lacks_says_so(fixture_store):
    """The model is bound to the URL (?fc_model=...): a link naming one the page does not offer (a typo, or the
    short key) showed the default model silently, where every other page warns."""
    at = page("forecast")
    at.query_params["fc_model"] = "worldclip-v2-z"
    at.run()
    assert not at.exception and at.selectbox(key="fc_model").value == "worldclip-tiny-random"  # the default
    (warning,) = [w.value for w in at.warning if "This link asks for the model" in w.value]
    assert r"worldclip\-v2\-z" in warning and r"showing worldclip\-tiny\-random" in warning
    at = page("forecast")
    at.query_params["fc_model"] = model_option(models.list_models()[0])  # a model's own label: no warning
    at.run()
    assert not at.exception and not any("This link asks" in w.value for w in at.warning)


def test_the_measures_of_a_forecast_are_named_as_its_other_tables_name_them(fixture_store):
    """The expander listed raw keys (zs_acc, silhouette_classes, h_score) where the table above it says 'zero-shot
    accuracy + silhouette of the classes', and 'None' in the lo/hi cells of every measure but IIMM."""
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    assert not at.exception
    (measures,) = [d for d in at.dataframe if "measure" in d.value.columns]
    (baselines,) = [d for d in at.dataframe if "baseline" in d.value.columns]
    shown = measures.value.set_index("measure")
    assert {"IIMM", "zero-shot accuracy", "IIMM's inter-modal term", "silhouette of the classes"} <= set(shown.index)
    assert list(measures.proto.column_order) == ["model", "measure", "value", "interval", "note"]  # no lo/hi of None
    # (the model column: the fixture's model has random weights, which every table of its numbers says)
    res = at.session_state["fc_result"][1]
    assert shown.loc["IIMM", "interval"] == f"[{res.iimm_lo:.4g}, {res.iimm_hi:.4g}]"
    assert (shown.drop(index="IIMM")["interval"] == "").all()
    assert "LogME" in set(baselines.value["baseline"]) and "logme" not in set(baselines.value["baseline"])


def test_the_selection_table_shows_coverage_as_a_percentage_and_numbers_rounded(fixture_store):
    """'How each forecast was chosen' showed coverage as a bare fraction (0.9333, 1), where the Compare page says
    '97.9 %', and every number to four or more decimals (26.4617)."""
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    assert not at.exception
    (chosen,) = [d for d in at.dataframe if "predicted from" in d.value.columns]
    config = json.loads(chosen.proto.columns)
    for header in ("measured coverage", "jackknife+ coverage", "IIMM line's coverage"):
        assert config[header]["type_config"]["format"] == "percent", header
    for header in ("prediction", "interval low", "nested LODO error", "IIMM line", "LODO error saved vs IIMM line"):
        assert config[header]["type_config"]["format"] == "%.2f", header
    assert set(config) - {"_index"} <= set(chosen.value.columns)  # every header configured is one the table has


def test_every_forecast_model_option_says_whether_it_runs_offline(fixture_store):
    """The options said 'toy model, offline' or 'downloads its weights (not available offline)', and nothing for
    ViT-B-32-random, which builds its random weights here: a visitor could not tell that it runs offline."""
    at = page("forecast").run()
    box = at.selectbox(key="fc_model")
    assert all("offline" in box.format_func(spec.key) for spec in models.list_models())
    assert box.format_func("ViT-B-32-random").endswith(" · offline")


def test_a_forecast_whose_upload_was_removed_does_not_ask_for_a_run_that_cannot_start(fixture_store):
    """With the upload removed (its x), the notice said 'press Run forecast to forecast with them' beside a disabled
    Run forecast button: it now says to upload a sample to forecast again."""
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    at.file_uploader(key="fc_upload").set_value(None).run()
    assert not at.exception and at.button(key="fc_run").disabled
    (notice,) = [i.value for i in at.info if "The forecast below was made for" in i.value]
    assert "press Run forecast" not in notice and "upload a sample" in notice


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


def test_an_uploads_summary_shows_each_of_its_lines_on_a_line_of_its_own(fixture_store):
    """The summary's lines (images per class; files skipped; repeated images) ran together in one caption line,
    'dog (5) skipped 1 file(s): ...', as if the skipped file were dog's."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        source = zipfile.ZipFile(io.BytesIO(sample_zip(n_per_class=5)))
        for info in source.infolist():
            zf.writestr(info.filename, source.read(info))
        zf.writestr("red/broken.png", b"not an image")
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception and not at.error
    lines = at.caption[0].value.split("  \n")
    assert len(lines) == 2 and lines[0].startswith("15 images in 3 classes") and lines[1].startswith("skipped 1 file")


def test_a_bad_prompt_template_is_blamed_on_the_template_not_the_upload(fixture_store):
    """A template without '{c}' said 'This upload cannot be used: the prompt template must ...' of a good upload."""
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert not at.error and not at.button(key="fc_run").disabled
    at.text_input(key="fc_template").set_value("a photo").run()
    assert not at.exception and at.button(key="fc_run").disabled
    (error,) = [e.value for e in at.error]
    assert error.startswith("The prompt template must contain") and "upload cannot be used" not in error
    at.text_input(key="fc_template").set_value("a photo of a {c}").run()  # mended: the same upload is usable again
    assert not at.error and not at.button(key="fc_run").disabled


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


def test_the_prompt_template_is_disabled_for_an_npz_which_brings_its_own_prompts(fixture_store):
    """An .npz carries its text embeddings: the template box stayed editable and did nothing for it."""
    at = page("forecast").run()
    assert not at.text_input(key="fc_template").disabled  # nothing uploaded yet: a zip may come
    at.file_uploader(key="fc_upload").set_value(("emb.npz", embeddings_npz(128), "application/octet-stream")).run()
    assert not at.exception and at.text_input(key="fc_template").disabled
    said = at.caption[0].value  # what was uploaded is said before the run, as for a zip (Markdown-escaped)
    assert said.startswith(r"30 image embeddings \(width 128\) in 3 classes\: a \(10\)")
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert not at.exception and not at.text_input(key="fc_template").disabled


def test_forecast_page_acceptsembeddings_npz(fixture_store):
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))  # the tiny model's width
    assert not at.exception and not at.error
    res = at.session_state["fc_result"][1]
    assert res.n_images == 30 and "uploaded embeddings" in res.model_label and res.enough_runs
    captions = " ".join(c.value for c in at.caption)
    assert "LEEP left out" in captions  # the forecast's notes reach the page (README: "and says so")
    assert "not bounded" in captions  # predictions are shown as fitted, and the page says so
    at = page("forecast").run()  # a wrong width is explained as soon as the file arrives, before any run
    at.file_uploader(key="fc_upload").set_value(("emb.npz", embeddings_npz(16), "application/octet-stream"))
    at.run()
    assert not at.exception and "16 wide but the chosen model" in at.error[0].value
    assert at.button(key="fc_run").disabled


def test_forecast_page_without_out_of_domain_references_explains_the_missing_chart(tmp_path, monkeypatch):
    """Reference runs without an out-of-domain panel: no method is forecast on both axes, so the trade-off
    chart has nothing to draw; the page says so (it raised ValueError, a traceback on the page)."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    for record in make_fixture_records(n_datasets=8, pretrained="random", noise=0.5):
        store.write_record(dict(record, ood_change=None, ood_sets=[], ood_before={}, ood_after={}), tmp_path / "results")
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
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
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    assert not at.exception and at.session_state["fc_result"][1].enough_runs
    assert any("RANDOM WEIGHTS" in w.value for w in at.warning)
    assert any("reference runs of worldclip\\-tiny \\(world\\-v1\\) record RANDOM WEIGHTS" in c.value for c in at.caption)
    specs = [chart.proto.spec for chart in at.get("vega_lite_chart")]  # both charts say it too (they did not)
    assert len(specs) == 2 and all("RANDOM WEIGHTS: an untrained network" in spec for spec in specs)


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
    import forecast_ui  # the forecast page parts, for their cached table reader
    forecast_ui.forecast_selection.clear()
    assert forecast_ui.forecast_selection(store.SHIPPED_DIR).empty  # nothing shipped
    runs = store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full",), noise=0.5))
    table = forecast_select.selection_table(runs, outcomes=("id_gain",))
    table.to_csv(store.SHIPPED_DIR / "forecast-selection.csv", index=False)
    (store.SHIPPED_DIR / "world-x" / "tables").mkdir(parents=True)
    other = table.assign(pretrained="world-x", coverage=0.5)
    pd.concat([other, other.assign(rule="one-se")]).to_csv(
        store.SHIPPED_DIR / "world-x" / "forecast-selection.csv", index=False)
    other.assign(coverage=0.75).to_csv(store.SHIPPED_DIR / "world-x" / "tables" / "forecast-selection.csv", index=False)
    forecast_ui.forecast_selection.clear()
    got = forecast_ui.forecast_selection(store.SHIPPED_DIR)
    default = forecast_select.DEFAULT_RULE
    assert sorted(zip(got["pretrained"], got["rule"])) == sorted(
        [(table["pretrained"].iloc[0], default), ("world-x", default), ("world-x", "one-se")])
    # the same (model, method, outcome, rule) in two files: the later path wins
    assert got.loc[(got["pretrained"] == "world-x") & (got["rule"] == default), "coverage"].tolist() == [0.75]
    forecast_ui.forecast_selection.clear()


def test_forecast_selection_is_cached_per_folder(tmp_path):
    """Cached without an argument, it gave a second shipped folder the first one's table until the cache expired."""
    import forecast_ui
    runs = store.records_to_frame(make_fixture_records(n_datasets=7, methods=("full",), noise=0.5))
    table = forecast_select.selection_table(runs, outcomes=("id_gain",))
    for name, coverage in (("one", 0.5), ("two", 0.75)):
        (tmp_path / name).mkdir()
        table.assign(coverage=coverage).to_csv(tmp_path / name / "forecast-selection.csv", index=False)
    assert forecast_ui.forecast_selection(tmp_path / "one")["coverage"].tolist() == [0.5]
    assert forecast_ui.forecast_selection(tmp_path / "two")["coverage"].tolist() == [0.75]


def test_the_upload_names_the_command_that_makes_the_same_forecast_from_a_terminal(fixture_store):
    """The command line (jobs.forecast) was in the README only: a visitor running the app locally with a folder of
    images, or many samples, was not told it exists."""
    from jobs import forecast  # this job alone: tests.test_job_options._commands imported every job here, while
    # fixture_store points store.SHIPPED_DIR at its empty folder, and jobs.peft_check, predictors and world_check
    # keep the shipped folders they find at import, so their defaults named this test's folder for the session

    at = page("forecast").run()
    said = at.get("file_uploader")[0].proto.help
    assert "python -m jobs.forecast" in said and callable(forecast.main)


def test_the_forecast_table_keeps_the_uploads_warnings_and_unchecked_datasets_when_saved(fixture_store):
    """The page said the upload's warnings (a file repeated byte for byte) under it and the reference datasets not
    checked for the sample's images in a note; the per-method table, which its toolbar saves as CSV alone, said
    neither. Each is now a last column of the table, there only when it applies."""
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    assert not at.exception and not at.error
    assert "upload_warnings" not in at.dataframe[0].proto.column_order  # nothing repeated
    buf = io.BytesIO(sample_zip())
    with zipfile.ZipFile(buf) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    doubled = io.BytesIO()
    with zipfile.ZipFile(doubled, "w") as zf:
        for name, data in {**members, "red/copy.png": members["red/000.png"]}.items():
            zf.writestr(name, data)
    at = run_upload(page("forecast").run(), "sample.zip", doubled.getvalue())
    assert not at.exception and not at.error
    table = at.dataframe[0]
    order = list(table.proto.column_order)
    assert "upload_warnings" in order and order.index("upload_warnings") > order.index("note")
    assert (table.value["upload_warnings"] == "1 image(s) repeat an earlier file byte for byte").all()
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))  # no image to look for: none checked
    res, table = at.session_state["fc_result"][1], at.dataframe[0]
    assert res.not_checked and "not_checked" in table.proto.column_order
    assert (table.value["not_checked"] == "; ".join(res.not_checked)).all()


def test_the_selection_table_names_the_rule_its_coverage_was_measured_under(fixture_store):
    """The rule was in the expander's title alone, which a saved table (or jobs.forecast's JSON, which has the
    same rows) does not keep; measured coverage is one rule's. Each row now names it."""
    at = run_upload(page("forecast").run(), "sample.zip", sample_zip())
    assert not at.exception
    (chosen,) = [d for d in at.dataframe if "predicted from" in d.value.columns]
    assert list(chosen.value.columns)[-1] == "selection rule"
    assert (chosen.value["selection rule"] == forecast_select.DEFAULT_RULE).all()


def test_the_forecast_table_keeps_the_verdicts_warnings_when_saved(tmp_path, monkeypatch):
    """A trained toy model's forecast: the page warns above the table that the model is a toy; the table, saved on
    its own, said nothing of it (its model column marks random weights only). Its last column now keeps them."""
    trained_toy_store(monkeypatch, tmp_path)
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    assert not at.exception and not at.error
    warned = [w.value for w in at.warning if "toy model" in w.value]
    table = at.dataframe[0]
    assert warned and list(table.proto.column_order)[-1] == "warnings"
    assert all("is a toy model" in cell for cell in table.value["warnings"])


def test_the_measures_table_keeps_the_uploads_warnings_when_saved(fixture_store):
    """IIMM counts a file repeated byte for byte as a pair of identical images: the page says so under the upload,
    but the measures table, saved on its own, did not. A last column keeps it, there only when there is one."""
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    (measures,) = [d for d in at.dataframe if "interval" in d.proto.column_order]
    assert "upload_warnings" not in measures.proto.column_order
    arrays = dict(np.load(io.BytesIO(embeddings_npz(128))))
    arrays["image_embeddings"][7] = arrays["image_embeddings"][4]  # the same class: a repeated row
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    at = run_upload(page("forecast").run(), "emb.npz", buf.getvalue())
    assert not at.exception and not at.error
    (measures,) = [d for d in at.dataframe if "interval" in d.proto.column_order]
    assert list(measures.proto.column_order)[-1] == "upload_warnings"
    assert (measures.value["upload_warnings"] == "1 image embedding(s) repeat an earlier row exactly").all()
