"""The forecast page's turns and budgets through AppTest, on a fixture store in a temp folder (never the real
store): forecasts take turns, uploads are parsed in a turn, one budget of parsed uploads for all sessions.
The rest of the page is in test_app_forecast.py."""
from pathlib import Path

from tests.app_helpers import embeddings_npz, page, run_upload, sample_zip, sent_markdown


def _thumbnail_bytes() -> int:
    """What the budget counts for one 32 px RGB thumbnail (core.upload.pool.image_bytes)."""
    from PIL import Image

    from core.upload.pool import image_bytes

    return image_bytes(Image.new("RGB", (32, 32)))


def test_parsed_uploads_are_held_in_one_budget_that_all_sessions_share(fixture_store, monkeypatch):
    """Each tab used to keep its parsed upload in its session: 2,000 thumbnails (505 MiB, from a zip of
    under 1 MiB) per open tab, without any bound over tabs."""
    import forecast_ui

    forecast_ui._PARSED.clear()  # other tests' uploads
    one = 60 * _thumbnail_bytes()  # the thumbnails of one sample_zip(n_per_class=20)
    monkeypatch.setattr(forecast_ui, "PARSED_BUDGET_BYTES", int(2.5 * one))
    sessions = [page("forecast").run() for _ in range(4)]
    for at in sessions:
        at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(n_per_class=20), "application/zip")).run()
        assert not at.exception and "60 images in 3 classes" in at.caption[0].value
        assert not hasattr(at.session_state["fc_checked"][1], "data")  # the summary, not the images
    assert forecast_ui.held_parsed_bytes() == 2 * one  # two of the four tabs' uploads are held, the newest
    first = sessions[0]
    first.button(key="fc_run").click().run()  # its upload was dropped: parsed again for the run
    assert not first.exception and not first.error and first.session_state["fc_result"][1].n_images == 60
    assert forecast_ui.held_parsed_bytes() <= forecast_ui.PARSED_BUDGET_BYTES


def test_forecasts_take_turns_and_a_visitor_without_one_is_told_so(fixture_store, monkeypatch):
    """Every visitor's forecast ran at once, each with all the cores: unbounded, more visitors made every
    forecast slower and held more memory. Now they take turns; one that gets none in time says so."""
    import forecast_ui
    from core.turns import Turns

    monkeypatch.setattr(forecast_ui, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(forecast_ui, "FORECAST_WAIT_S", 0.05)
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast is running
    sent = sent_markdown(monkeypatch)
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    assert not at.exception and "server is busy" in at.error[0].value and "fc_result" not in at.session_state
    assert at.status[0].label == "Forecast failed"
    assert any("runs 1 forecast at a time, all busy now; yours starts" in m for m in sent)  # told it waits
    held.__exit__(None, None, None)  # it ended: the next press gets a turn
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error and at.session_state["fc_result"][1].n_images == 30


def test_the_app_keeps_two_large_models_as_the_readme_says():
    import forecast_ui

    assert forecast_ui.MAX_LARGE_MODELS == 2 and forecast_ui.MODELS.max_large == forecast_ui.MAX_LARGE_MODELS


def test_forecasts_take_turns_two_at_a_time_for_up_to_120_s_as_the_readme_says():
    import forecast_ui

    assert (forecast_ui.FORECAST_SLOTS, forecast_ui.FORECAST_WAIT_S) == (2, 120.0)
    assert forecast_ui._FORECAST_TURNS.slots == forecast_ui.FORECAST_SLOTS
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert "Forecasts take turns, two at a time" in readme and "after 120 s without one" in readme


def test_an_upload_is_read_in_a_forecasts_turn(fixture_store, monkeypatch):
    """An upload was parsed the moment it arrived, whatever else ran: four visitors' zips of 2,000 images
    arriving together took 2.1 GB at once (each parse holds 505 MiB), beside the forecasts' turns. Now reading
    one takes a turn; with none free in time, the check is left to the run, which reads it in its own."""
    import forecast_ui
    from core.turns import Turns

    monkeypatch.setattr(forecast_ui, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(forecast_ui, "FORECAST_WAIT_S", 0.05)
    forecast_ui._PARSED.clear()
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast or upload is being worked on
    at = page("forecast").run()
    sent = sent_markdown(monkeypatch)
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert not at.exception and not at.error and len(forecast_ui._PARSED) == 0  # not read meanwhile
    assert any("all busy now; your upload is read" in m for m in sent)  # told it waits
    assert not at.button(key="fc_run").disabled  # the run reads it in its own turn
    held.__exit__(None, None, None)
    at.run()
    assert "18 images in 3 classes" in at.caption[0].value and len(forecast_ui._PARSED) == 1


def test_an_upload_whose_check_found_no_turn_waits_only_in_the_runs_own_turn(fixture_store, monkeypatch):
    """A check that found no turn was not kept, so every later rerun waited FORECAST_WAIT_S again, the press of
    "Run forecast" included: the check waited its 120 s, then the run its own, 240 s before "the server is
    busy" (the README says 120). Once given up, a check takes a turn only when one is free at once."""
    import forecast_ui
    from core.turns import Turns

    monkeypatch.setattr(forecast_ui, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(forecast_ui, "FORECAST_WAIT_S", 0.05)
    forecast_ui._PARSED.clear()
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast is running
    at = page("forecast").run()
    sent = sent_markdown(monkeypatch)
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert any("your upload is read" in m for m in sent)  # the check waited once
    sent.clear()
    at.button(key="fc_run").click().run()
    assert not at.exception and "server is busy" in at.error[0].value
    assert not any("your upload is read" in m for m in sent)  # only the run waited
    assert any("yours starts when one ends" in m for m in sent)
    held.__exit__(None, None, None)
    at.run()  # a turn is free now: the check reads it
    assert "18 images in 3 classes" in at.caption[0].value and len(forecast_ui._PARSED) == 1


def test_a_forecast_whose_upload_was_dropped_has_one_time_budget(fixture_store, monkeypatch):
    """A run whose parsed upload had left the shared pool parsed it again under a budget of its own, then
    embedded under another: up to twice the 300 s the README promises. Now both share the forecast's one."""
    import forecast_ui
    import core.upload

    made = []

    class CountedDeadline(core.upload.Deadline):
        def __init__(self, seconds):
            super().__init__(seconds)
            made.append(self)

    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    forecast_ui._PARSED.clear()  # dropped for other sessions' uploads
    monkeypatch.setattr(core.upload, "Deadline", CountedDeadline)
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error and at.session_state["fc_result"][1].n_images > 0
    assert len(made) == 1


def test_another_template_or_model_of_a_read_upload_needs_no_turn(fixture_store, monkeypatch):
    """Every new template or model of an upload took a forecast's turn to check it, though its parse was held in
    the pool and nothing was read again: while others' forecasts ran, a visitor who edited the template waited up
    to 120 s (then lost the upload's summary) for a look-up. Only an upload to read now waits for a turn."""
    import forecast_ui
    from core.turns import Turns

    monkeypatch.setattr(forecast_ui, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(forecast_ui, "FORECAST_WAIT_S", 0.05)
    forecast_ui._PARSED.clear()
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast is running
    try:
        at.text_input(key="fc_template").set_value("a drawing of a {c}").run()
        assert not at.exception and not any("all busy now" in m.value for m in at.markdown)
        assert "18 images in 3 classes" in at.caption[0].value
        at.selectbox(key="fc_model").set_value("worldclip-tiny").run()
        assert not any("all busy now" in m.value for m in at.markdown) and "18 images" in at.caption[0].value
        at.text_input(key="fc_template").set_value("a drawing").run()  # refused without a turn, as before
        assert at.error[0].value.startswith("The prompt template must contain")
    finally:
        held.__exit__(None, None, None)
