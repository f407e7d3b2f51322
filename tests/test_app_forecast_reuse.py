"""The forecast page reuses what a session's upload gave: its parse across templates and models, and its images'
embeddings by each model across repeats and templates (in memory, in the uploads' budget, for that session only)."""
from dataclasses import replace

import pandas as pd
import pytest
from PIL import Image

from core.upload.pool import image_bytes
from tests.app_helpers import page, sample_zip


def _counted(monkeypatch, module, name: str) -> list:
    """Calls of ``module.name`` from now on, one entry each (the function still runs)."""
    calls, real = [], getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def _run(at):
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    return at.session_state["fc_result"][1]


def test_a_template_or_model_change_parses_the_upload_no_more(fixture_store, monkeypatch):
    """The parsed zip was pooled per (session, file, template, model): a new template or model parsed the whole
    zip again (every image decoded), though only the prompts name the template and the model only embeds."""
    import core.upload
    import forecast_ui

    forecast_ui._PARSED.clear()
    parses = _counted(monkeypatch, core.upload, "load_image_folder_zip")
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    first = _run(at)
    at.text_input(key="fc_template").set_value("a drawing of a {c}").run()
    other_prompts = _run(at)
    at.selectbox(key="fc_model").set_value("worldclip-tiny").run()
    other_model = _run(at)
    assert len(parses) == 1 and [k[2][0] for k in forecast_ui._PARSED.keys()].count("parsed") == 1
    assert other_prompts.zero_shot != first.zero_shot  # the new template was used, not the parse's
    assert other_model.model_label != first.model_label
    at.text_input(key="fc_template").set_value("a drawing").run()  # still refused as a parse refuses it
    assert at.button(key="fc_run").disabled and at.error[0].value.startswith("The prompt template must contain")


def _assert_same_forecast(got, want) -> None:
    """Every number the page shows of a forecast, equal to the last bit."""
    assert (got.iimm, got.iimm_lo, got.iimm_hi, got.n_images) == (want.iimm, want.iimm_lo, want.iimm_hi, want.n_images)
    assert got.zero_shot == want.zero_shot and got.transferability == want.transferability
    for frame in ("measures", "baselines", "forecasts", "raw_forecasts", "selected"):
        pd.testing.assert_frame_equal(getattr(got, frame), getattr(want, frame), check_exact=True)


@pytest.fixture
def embedded(fixture_store, monkeypatch, tmp_path):
    """Calls that embed images, counted; the disk cache pointed at a folder that must stay absent."""
    import core.embed
    import forecast_ui

    forecast_ui._PARSED.clear()
    monkeypatch.setenv("IIMM_CACHE", str(tmp_path / "embedding-cache"))
    monkeypatch.setattr(core.embed, "_save_to_cache", lambda *a: pytest.fail("an upload's embeddings written"))
    yield _counted(monkeypatch, core.embed, "embed_images")
    assert not (tmp_path / "embedding-cache").exists()


def test_a_repeat_or_another_template_embeds_no_image_and_gives_the_same_numbers(embedded):
    """Each run embedded every image again (the example sample: 5.5 s of a 7 s forecast with ViT-B-32): a
    repeat, or a forecast with another template of the same upload and model, now reuses them."""
    import app
    import forecast_ui
    from core import predict

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    first = _run(at)
    assert len(embedded) == 1
    _assert_same_forecast(_run(at), first)
    at.text_input(key="fc_template").set_value("a drawing of a {c}").run()
    drawing = _run(at)
    assert len(embedded) == 1
    loaded = forecast_ui.warm_model("worldclip-tiny-random").result()
    parsed = forecast_ui._PARSED.get(next(k for k in forecast_ui._PARSED.keys() if k[2][0] == "parsed"))
    fresh = predict.forecast_for_sample(loaded, replace(parsed.data, template="a drawing of a {c}"),
                                        app.forecast_runs())
    assert len(embedded) == 2  # the fresh one embedded its own
    _assert_same_forecast(drawing, fresh)
    at.selectbox(key="fc_model").set_value("worldclip-tiny").run()
    _run(at)
    assert len(embedded) == 3  # another model embeds
    at.selectbox(key="fc_model").set_value("worldclip-tiny-random").run()
    _assert_same_forecast(_run(at), drawing)
    assert len(embedded) == 3  # and each model's embeddings are kept


def test_held_embeddings_count_in_the_uploads_budget_and_leave_with_the_upload(embedded):
    import forecast_ui

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    parsed = forecast_ui.held_parsed_bytes()
    one = image_bytes(Image.new("RGB", (32, 32)))  # what the budget counts for a 32 px thumbnail
    assert parsed == 18 * one  # the thumbnails
    _run(at)
    assert forecast_ui.held_parsed_bytes() == parsed + 18 * 128 * 4  # + 18 float32 rows of width 128
    at.file_uploader(key="fc_upload").set_value(("t.zip", sample_zip(n_per_class=7), "application/zip")).run()
    assert forecast_ui.held_parsed_bytes() == 21 * one and len(forecast_ui._PARSED) == 1  # replaced


def test_no_session_reaches_another_sessions_embeddings(embedded):
    """Even under one file id (a server draws a new one per upload, but the key must not rest on that alone)."""
    tabs = [page("forecast").run() for _ in range(2)]
    for at in tabs:
        uploader = at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip"))
        uploader._files = [("one-file-id", *uploader._files[0][1:])]  # AppTest draws a file id per set_value
        at.run()
        assert at.file_uploader(key="fc_upload").value.file_id == "one-file-id"
        _run(at)
    assert len(embedded) == 2  # the same file in another session is embedded again


def test_a_random_weight_model_loaded_again_embeds_again(embedded, monkeypatch):
    """A random-weight model that left the model pool and was loaded again is another network: the images held
    for the first must not stand for it."""
    from concurrent.futures import Future

    import torch

    import forecast_ui
    from core.models import load_model

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    first = _run(at)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(12345)
        reloaded = Future()
        reloaded.set_result(load_model("worldclip-tiny-random"))
    monkeypatch.setattr(forecast_ui, "warm_model", lambda key: reloaded)
    again = _run(at)
    assert len(embedded) == 2 and again.iimm != first.iimm
