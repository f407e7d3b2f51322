"""Streamlit behaviour the app leans on that Streamlit does not document, checked against the installed Streamlit
without a browser, so that a newer 1.x (requirements.txt allows any) that drops it fails here at once instead of the
feature going quiet (the browser tests check the same end to end, where Chromium is installed)."""
import re
from pathlib import Path

import streamlit
from streamlit.testing.v1 import AppTest

import app
from jobs import app_server

FRONTEND_JS = Path(streamlit.__file__).parent / "static" / "static" / "js"


def _frontend_names() -> str:
    files = sorted(FRONTEND_JS.glob("*.js"))
    if not files:
        raise FileNotFoundError(f"no Streamlit frontend bundle under {FRONTEND_JS}")
    return "\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def _missing(names: list[str], bundle: str) -> list[str]:
    """Those of ``names`` the frontend never writes as a whole string literal ('x', "x" or `x`)."""
    return [n for n in names if not re.search(rf"[`'\"]{re.escape(n)}[`'\"]", bundle)]


def test_the_upload_names_script_finds_streamlits_test_ids():
    """app.name_uploads names each uploader after its label by finding it through Streamlit's data-testid
    attributes; renamed, the script finds nothing and every upload is again announced as "Upload"."""
    used = re.findall(r"data-testid=(\w+)", app._UPLOAD_NAMES)
    assert sorted(set(used)) == ["stFileUploader", "stFileUploaderDropzone", "stWidgetLabel"]
    assert _missing(used, _frontend_names()) == []


def test_what_absence_checks_wait_for_is_still_drawn():
    """Tests and jobs.load_test count ``stException`` elements to see no error, and jobs.app_server waits for the
    running indicator (``stStatusWidget``) to be gone: renamed, each check would pass whatever the page shows."""
    assert "[data-testid=stStatusWidget]') === null" in app_server._IDLE_FOR
    assert _missing(["stException", "stStatusWidget", "stApp", "data-test-script-state", "notRunning"],
                    _frontend_names()) == []


_PROBE = """
import streamlit as st
import app
st.session_state.setdefault("modes", []).append(app._automatic_pages_mode())
app.ensure_navigation()
st.write("modes " + repr(st.session_state["modes"]))
"""


def test_a_deep_link_run_in_the_automatic_pages_mode_is_seen_and_switched(tmp_path):
    """app.ensure_navigation reads Streamlit's private PagesManager.uses_pages_directory to see that the server
    still serves pages/ itself (a deep link as its first request). Were it renamed, the check would say no for
    ever, and such a link would show file names for navigation and no wide layout: the first run must say yes,
    and its rerun, after this app's navigation, no."""
    (tmp_path / "pages").symlink_to(Path(app.__file__).parent / "pages", target_is_directory=True)
    script = tmp_path / "deep_link.py"
    script.write_text(_PROBE, encoding="utf-8")
    at = AppTest.from_file(str(script), default_timeout=30).run()
    assert not at.exception
    assert [m.value for m in at.markdown] == ["modes [True, False]"]


def test_a_streamlit_without_page_scripts_still_draws_the_upload_pages(fixture_store, monkeypatch, caplog):
    """name_uploads passes st.html ``unsafe_allow_javascript``; a Streamlit that refused it (renamed, or scripts
    turned off) put its traceback under the Forecast and Submit pages for an accessibility aid. Now the pages are
    drawn without it and the server log says why."""
    import streamlit as st

    from tests.app_helpers import page

    def html(body, *, width="stretch"):  # st.html as it would be without the argument
        raise AssertionError("not reached: the call names unsafe_allow_javascript")

    monkeypatch.setattr(st, "html", html)
    for name in ("submit", "forecast"):
        at = page(name).run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.get("file_uploader")
    assert "upload names not added" in caplog.text


def test_a_run_is_stopped_where_it_sends_the_page_a_message():
    """The forecast page's waits (a turn, the model, the reference datasets) send a message every second because
    Streamlit ends a run whose visitor left or changed a widget only there, at the script's next message
    (forecast_ui._forecast_turn; tests/test_app_interrupted.py injects the stop at that point). A Streamlit that
    looked elsewhere would let those runs go on unseen, with those tests still passing."""
    import inspect

    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    assert "self._enqueue(" in inspect.getsource(ScriptRunContext.enqueue)
    assert "_maybe_handle_execution_control_request()" in inspect.getsource(ScriptRunner._enqueue_forward_msg)
