"""A hostile record in a real Chromium: its Markdown, links, images and HTML must render as text, and
the browser must never request anything the record names (issue 15, safe rendering)."""
from __future__ import annotations

import pytest

from core import store
from jobs.app_server import CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app
from tests.fixtures import write_fixture_store
from tests.hostile_records import base
from tests.browser_helpers import TIMEOUT_MS, _idle, _require_chromium

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EVIL = "evil.example"
HOSTILE = {
    "model": f"[click me](http://{EVIL}/link) ![pic](http://{EVIL}/md.png)",
    "dataset": f"<img src=http://{EVIL}/html.png onerror=alert(1)>",
    "method": f"<a href='http://{EVIL}/a'>method</a>",
    "source": f":red[alarm] **bold** [src](http://{EVIL}/src)",
    "status": "failed", "error": f"![err](http://{EVIL}/err.png) <script>fetch('http://{EVIL}/js')</script>",
    "ft_acc": None, "id_gain": None, "norm_gain": None, "ood_change": None, "ood_after": None,
}


def test_hostile_record_renders_as_text_and_fetches_nothing(tmp_path):
    _require_chromium()
    from playwright.sync_api import sync_playwright

    results = tmp_path / "results"
    write_fixture_store(results, n_datasets=1, methods=("full",))
    store.write_record(base("hostile-md", **HOSTILE), results)
    port = free_port()
    proc = start_app(port, {store.ENV_VAR: str(results), store.SUBMISSIONS_ENV_VAR: str(tmp_path / "sub")},
                     tmp_path / "streamlit.log")
    requested: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400})
            page.on("request", lambda r: requested.append(r.url))
            # the shipped runs are in the store too: search, so the picker lists the hostile run
            page.goto(f"http://127.0.0.1:{port}/runs?q=click+me", timeout=TIMEOUT_MS)
            page.get_by_role("heading", name="All runs").wait_for(timeout=TIMEOUT_MS)
            picker = page.get_by_label("run", exact=True)  # open the hostile run's details from the picker
            picker.click()
            picker.fill("click me")
            page.keyboard.press("Enter")
            page.get_by_role("heading", name="One run in detail").wait_for(timeout=TIMEOUT_MS)
            page.get_by_text("click me").last.wait_for(timeout=TIMEOUT_MS)  # the details are shown
            _idle(page)
            text = page.locator("body").inner_text()
            html = page.content()
            browser.close()
    finally:
        stop_app(proc)
    assert "[click me](http://evil.example/link)" in text.replace("\u2060", "")  # literally, as characters
    assert f"<img src=http://{EVIL}/html.png" not in html  # never an element...
    assert page_has_no_live_links(html)
    assert not [u for u in requested if EVIL in u]  # ...and never a request
    # the listener heard the page: its own document and the app's scripts (an empty list would pass the line above)
    own = [u for u in requested if u.startswith(f"http://127.0.0.1:{port}/")]
    assert f"http://127.0.0.1:{port}/runs?q=click+me" in own and any(u.endswith(".js") for u in own), requested


def page_has_no_live_links(html: str) -> bool:
    return f'href="http://{EVIL}' not in html and f"src=\"http://{EVIL}" not in html
