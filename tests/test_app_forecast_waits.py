"""The forecast page's waits as a visitor sees them through AppTest (fixture store, offline tiny model): a forecast's
turn, the model's load, the reference datasets' hashing and an upload's check each say "… (N s so far)" while they
wait, and leave no such line behind when the wait, or the work after it, fails."""
import time
from concurrent.futures import Future

import pytest

from tests.app_helpers import (embeddings_npz, hold_the_only_forecast_turn, page, sample_zip, sent_markdown,
                               shown_markdown)


def _no_turn_for_a_second_and_a_half(monkeypatch):
    """The page waits 1.5 s (one tick) for the one turn, which another visitor's forecast holds for longer."""
    return hold_the_only_forecast_turn(monkeypatch, 1.5)


# Each failure: the upload's name, the wait's line, the error the visitor is shown, and what ends it after the test.
def _turn_never_comes(monkeypatch):
    return "e.npz", "yours starts when one ends", "The server is busy", _no_turn_for_a_second_and_a_half(monkeypatch)


def _model_load_fails(monkeypatch):
    import forecast_ui
    from core.model_pool import ModelPool
    from core.models import ModelUnavailableError

    def load(key):  # a download that fails after a while
        time.sleep(1.5)
        raise ModelUnavailableError("the weights could not be downloaded")

    pool = ModelPool(load=load)
    monkeypatch.setattr(forecast_ui, "MODELS", pool)
    return "s.zip", "Loading the model…", "the weights could not be downloaded", lambda: pool._loader.shutdown(True)


def _forecast_fails_after_the_overlap_wait(monkeypatch):
    import forecast_ui
    from core import predict, reference_overlap

    monkeypatch.setattr(forecast_ui, "OVERLAP_WAIT_S", 1.5)
    monkeypatch.setattr(reference_overlap, "_to_check", lambda images, datasets, **kw: list(datasets)[:1])
    monkeypatch.setattr(reference_overlap, "digests_future", lambda name, split: Future())  # never read in time

    def not_finite(*args, **kwargs):
        raise ValueError("IIMM is not finite for this sample; check the embeddings")

    monkeypatch.setattr(predict, "forecast_for_embeddings", not_finite)
    return "s.zip", "Looking for your images in the reference datasets…", "IIMM is not finite", lambda: None


def test_the_reference_datasets_line_is_gone_once_that_wait_ends(fixture_store, monkeypatch):
    """The line "Looking for your images in the reference datasets… (N s so far)" stayed on the page after that wait
    ended, while the prompts were embedded and the forecast fitted, until the forecast came back: it told of a wait
    no longer going on. It is now cleared as the look ends (core.predict.forecast_for_sample's overlap_done)."""
    import forecast_ui
    from core import predict, reference_overlap

    monkeypatch.setattr(forecast_ui, "OVERLAP_WAIT_S", 1.5)
    monkeypatch.setattr(reference_overlap, "_to_check", lambda images, datasets, **kw: list(datasets)[:1])
    monkeypatch.setattr(reference_overlap, "digests_future", lambda name, split: Future())  # never read in time
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    sent, shown, fitting = sent_markdown(monkeypatch), shown_markdown(monkeypatch), []
    fit = predict.forecast_for_embeddings

    def fit_seen(*args, **kwargs):  # what the page shows while the forecast is fitted
        fitting.append([line for line in shown.values() if "s so far" in line])
        return fit(*args, **kwargs)

    monkeypatch.setattr(predict, "forecast_for_embeddings", fit_seen)
    at.button(key="fc_run").click().run()
    assert not at.exception and at.status[0].label == "Forecast ready"
    assert any("reference datasets… (1 s so far)" in line for line in sent)  # the visitor was told while it waited
    assert fitting == [[]]


@pytest.mark.parametrize("failure", [_turn_never_comes, _model_load_fails, _forecast_fails_after_the_overlap_wait])
def test_a_failed_forecast_leaves_no_wait_line_in_its_failed_box(fixture_store, monkeypatch, failure):
    """A wait's last line ("… (1 s so far)") was left above the error in the collapsed "Forecast failed" box when
    the wait or the work after it failed: a turn that never came, a model whose load failed, a forecast that failed
    after its wait for the reference datasets; it told of a wait no longer going on (a turn "yours starts when one
    ends", a model "Loading…"). The line is now cleared, and the error alone says what happened."""
    name, told, error, end = failure(monkeypatch)
    try:
        at = page("forecast").run()
        data = embeddings_npz(128) if name.endswith(".npz") else sample_zip()
        at.file_uploader(key="fc_upload").set_value((name, data, "application/octet-stream")).run()
        sent = sent_markdown(monkeypatch)
        at.button(key="fc_run").click().run()
    finally:
        end()
    assert not at.exception and at.status[0].label == "Forecast failed" and error in at.error[0].value
    assert any(told in line and "s so far)" in line for line in sent)  # the visitor was told while it waited
    assert not [m.value for m in at.status[0].markdown if told in m.value or "s so far" in m.value]
    assert not at.status[0].error  # the error below the box, not hidden inside it once it closes


def test_an_upload_check_that_found_no_turn_leaves_no_wait_line(fixture_store, monkeypatch):
    """The upload's check gave up after its wait for a turn with its last line frozen on the page: "all busy now;
    your upload is read when one ends… (1 s so far)", though nothing waited any more and no turn's end would read it.
    The line is now cleared, and the page says the run reads the upload in its own turn."""
    end = _no_turn_for_a_second_and_a_half(monkeypatch)
    try:
        at = page("forecast").run()
        sent = sent_markdown(monkeypatch)
        at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    finally:
        end()
    assert not at.exception and not at.error
    assert any("your upload is read when one ends… (1 s so far)" in line for line in sent)  # told while it waited
    assert not [m.value for m in at.markdown if "when one ends" in m.value or "s so far" in m.value]
    assert "Run forecast" in at.caption[0].value and "reads your upload" in at.caption[0].value
    assert not at.button(key="fc_run").disabled
