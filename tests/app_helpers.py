"""Helpers shared by the app's AppTest modules (tests/test_app_*.py) and the browser test: the pages to open
(relative to this folder, as AppTest.from_file resolves them against its caller's file) and sample uploads."""
import io
import threading
import zipfile

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

TIMEOUT = 120  # the forecast page loads torch + the tiny model on first use


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


def embeddings_npz(width: int = 128) -> bytes:
    """An .npz upload: 30 random embeddings of ``width`` in 3 classes (a, b, c) with their text embeddings."""
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, image_embeddings=rng.normal(size=(30, width)).astype(np.float32),
             text_embeddings=rng.normal(size=(3, width)).astype(np.float32),
             labels=np.arange(30) % 3, class_names=np.array(["a", "b", "c"]))
    return buf.getvalue()


def sent_markdown(monkeypatch) -> list[str]:
    """The Markdown the page is sent from now on, every line as sent, those cleared later included: what a visitor
    saw while a run went on, where AppTest holds only the page it ended with."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    sent, real = [], ScriptRunContext.enqueue

    def enqueue(ctx, msg):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element" \
                and msg.delta.new_element.WhichOneof("type") == "markdown":
            sent.append(msg.delta.new_element.markdown.body)
        real(ctx, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", enqueue)
    return sent


def run_upload(at: AppTest, name: str, data: bytes) -> AppTest:
    """Upload ``data`` as ``name`` on the forecast page and press Run: the page after the forecast."""
    at.file_uploader(key="fc_upload").set_value((name, data, "application/octet-stream"))
    at.run()
    at.button(key="fc_run").click().run()
    return at


def hold_the_only_forecast_turn(monkeypatch, wait_s: float):
    """One forecast turn for the server, held by another visitor's forecast, and the page waiting ``wait_s`` for one
    (uploads parsed before forgotten); calling what it returns ends that other forecast."""
    import forecast_ui
    from core.turns import Turns

    monkeypatch.setattr(forecast_ui, "_FORECAST_TURNS", Turns(1))
    monkeypatch.setattr(forecast_ui, "FORECAST_WAIT_S", wait_s)
    forecast_ui._PARSED.clear()
    held = forecast_ui._FORECAST_TURNS.turn(wait_s=0)
    held.__enter__()
    return lambda: held.__exit__(None, None, None)


def shown_markdown(monkeypatch) -> dict:
    """The Markdown on the page as a visitor sees it while a run goes on, kept up to date from what the page is sent:
    {the element's place: its text}, a place another element (an emptied line) took dropped; read it mid-run."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    shown, real = {}, ScriptRunContext.enqueue

    def enqueue(ctx, msg):
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            place, element = tuple(msg.metadata.delta_path), msg.delta.new_element
            if element.WhichOneof("type") == "markdown":
                shown[place] = element.markdown.body
            else:
                shown.pop(place, None)
        real(ctx, msg)

    monkeypatch.setattr(ScriptRunContext, "enqueue", enqueue)
    return shown


class LeavingVisitor:
    """Interrupts a run as Streamlit does once a visitor has left: the visitor leaves as the script sends a message
    holding ``when_sent`` (``then()`` runs then: e.g. another forecast's turn ends, while the page waits for one),
    and the script's next message raises StopException (once: Streamlit consumes the request)."""

    def __init__(self, monkeypatch, when_sent: str, then) -> None:
        self.gone = self.stopped = False
        self.script: threading.Thread | None = None  # Streamlit raises only in the script's own thread
        self.when_sent, self.then = when_sent, then
        from streamlit.runtime.scriptrunner_utils.exceptions import StopException
        from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

        real = ScriptRunContext.enqueue
        visitor = self

        def enqueue(ctx, msg):
            if visitor.gone and not visitor.stopped and threading.current_thread() is visitor.script:
                visitor.stopped = True
                raise StopException()
            real(ctx, msg)
            if visitor.when_sent in str(msg) and not visitor.gone:
                visitor.gone, visitor.script = True, threading.current_thread()
                then()

        monkeypatch.setattr(ScriptRunContext, "enqueue", enqueue)


def trained_toy_store(monkeypatch, folder) -> None:
    """Fixture runs of worldclip-tiny (world-v1: trained weights, a toy) in ``folder``/results as the only store,
    and that model as the one the Forecast page and jobs.forecast use."""
    from core import store
    from tests.fixtures import make_fixture_records

    monkeypatch.setenv(store.ENV_VAR, str(folder / "results"))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(folder / "submitted"))
    monkeypatch.setattr(store, "SHIPPED_DIR", folder / "none")
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny")
    for record in make_fixture_records(n_datasets=8, pretrained="world-v1", noise=0.5):
        store.write_record(record, folder / "results")
