"""The forecast page interrupted part-way, as Streamlit interrupts a run: when a visitor leaves or changes a widget
while the script runs, the next message the script sends the page (any ``st.*`` call that draws) raises
StopException or RerunException there. Nothing shared may be left half-done by it, and no work may be done for a
page no one will see. Driven through AppTest, with the interruption injected at the next message sent."""
import threading

import pytest

from tests.app_helpers import LeavingVisitor as _Visitor
from tests.app_helpers import hold_the_only_forecast_turn, page, sample_zip


def _counted(monkeypatch, module, name: str) -> list:
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(name) or real(*a, **k))
    return calls


@pytest.fixture
def one_turn_held(fixture_store, monkeypatch):
    """One forecast turn for the server, held by another visitor's forecast; ``release`` ends it."""
    import forecast_ui

    yield hold_the_only_forecast_turn(monkeypatch, 30.0)
    forecast_ui._PARSED.clear()


def _turn_free() -> bool:
    import forecast_ui

    try:
        with forecast_ui._FORECAST_TURNS.turn(wait_s=0):
            return True
    except Exception:  # noqa: BLE001 - BusyError: still held
        return False


def test_an_upload_whose_visitor_left_while_it_waited_for_a_turn_is_not_read(one_turn_held, monkeypatch):
    """The check of an upload waited up to 120 s for a turn, then read the whole upload (2,000 images: 505 MiB
    into the pool every session shares, pushing other visitors' uploads out) with no Streamlit call between the
    turn and the reading, so a visitor who had left or changed the upload meanwhile was still served, holding a
    turn others waited for. Now the wait's message is cleared as the turn comes, where Streamlit stops such a run."""
    import core.upload
    import forecast_ui

    parses = _counted(monkeypatch, core.upload, "load_image_folder_zip")
    visitor = _Visitor(monkeypatch, "your upload is read when one ends", one_turn_held)
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert visitor.stopped and not at.exception
    assert parses == [] and len(forecast_ui._PARSED) == 0 and "fc_checked" not in at.session_state
    assert _turn_free()  # and the turn it took is given back


def test_a_forecast_whose_visitor_left_while_it_waited_for_a_turn_reads_nothing(one_turn_held, monkeypatch):
    """The same for "Run forecast": after its wait, an upload the shared pool had dropped meanwhile was read again
    (the whole zip decoded) for a page no one would see."""
    import core.upload
    import forecast_ui

    one_turn_held()  # free while the upload is checked
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    forecast_ui._PARSED.clear()  # dropped for other sessions' uploads
    parses = _counted(monkeypatch, core.upload, "load_image_folder_zip")
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()  # another visitor's forecast starts
    visitor = _Visitor(monkeypatch, "yours starts when one ends", lambda: held.__exit__(None, None, None))
    at.button(key="fc_run").click().run()
    assert visitor.stopped and not at.exception
    assert parses == [] and len(forecast_ui._PARSED) == 0 and "fc_result" not in at.session_state
    assert _turn_free()


def test_a_visitor_who_leaves_while_the_page_waits_for_a_turn_frees_its_thread_within_seconds(one_turn_held,
                                                                                             monkeypatch):
    """The wait for a turn sent the page nothing for up to 120 s, so Streamlit could not stop it: a visitor who
    replaced a wrong upload or left saw the page ignore them, and a closed tab's script thread waited on, until a
    turn came or the 120 s ran out. The wait now says how long it has waited every second, where Streamlit stops
    it (here: the turn is never given back, and the wait limit is 30 s)."""
    import time

    import forecast_ui

    visitor = _Visitor(monkeypatch, "your upload is read when one ends", lambda: None)
    at = page("forecast").run()
    start = time.monotonic()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    assert visitor.stopped and not at.exception and not at.error  # stopped, not told the server is busy
    assert time.monotonic() - start < 0.5 * forecast_ui.FORECAST_WAIT_S
    assert "fc_check_busy" not in at.session_state and len(forecast_ui._PARSED) == 0


def test_a_visitor_who_leaves_while_the_model_loads_frees_the_turn_within_seconds(fixture_store, monkeypatch):
    """A forecast waited for its model (a download: minutes) sending the page nothing, so a visitor who changed the
    model or left was ignored, holding one of the server's two forecast turns, until the load ended. The wait now
    says how long it has waited every second, where Streamlit stops it."""
    import time

    import forecast_ui
    from core.model_pool import ModelPool

    loaded, go = forecast_ui.warm_model("worldclip-tiny-random").result(), threading.Event()
    pool = ModelPool(load=lambda key: go.wait(20) and loaded)  # a load that takes 20 s
    monkeypatch.setattr(forecast_ui, "MODELS", pool)
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    visitor = _Visitor(monkeypatch, "Forecasting…", lambda: None)  # the visitor leaves as the run starts
    start = time.monotonic()
    try:
        at.button(key="fc_run").click().run()
        assert visitor.stopped and not at.exception and "fc_result" not in at.session_state
        assert time.monotonic() - start < 10 and _turn_free()
    finally:
        go.set()
        pool._loader.shutdown(wait=True)


def test_a_visitor_who_leaves_while_the_reference_datasets_are_read_frees_the_turn_within_seconds(fixture_store,
                                                                                                   monkeypatch):
    """The same for the wait for the reference datasets' images (core.reference_overlap, up to OVERLAP_WAIT_S: a
    world task takes seconds, a folder minutes): it too sent the page nothing, holding the forecast's turn."""
    import time
    from concurrent.futures import Future

    import forecast_ui
    from core import reference_overlap

    monkeypatch.setattr(forecast_ui, "OVERLAP_WAIT_S", 20.0)
    monkeypatch.setattr(reference_overlap, "_to_check", lambda images, datasets, **kw: list(datasets)[:1])
    monkeypatch.setattr(reference_overlap, "digests_future", lambda name, split: Future())  # never read in time
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("s.zip", sample_zip(), "application/zip")).run()
    visitor = _Visitor(monkeypatch, "embedded 18 of 18 images", lambda: None)  # leaves once they are embedded
    start = time.monotonic()
    at.button(key="fc_run").click().run()
    assert visitor.stopped and not at.exception and "fc_result" not in at.session_state
    assert time.monotonic() - start < 10 and _turn_free()
