"""The app in a real headless Chromium, continued from tests/test_browser.py: the links a visitor guesses or keeps,
what a narrow window shows, what a screen reader is told, how a table sorts. Skipped without Chromium unless
IIMM_REQUIRE_BROWSER=1, as there."""
import pytest

from core import store
from jobs.app_server import free_port, start_app, stop_app
from tests.app_helpers import sample_zip
from tests.browser_helpers import (TIMEOUT_MS, _idle, _require_chromium, _settle, _shot, browser,  # noqa: F401
                                   expect, server)  # (fixtures: browser, server)
from tests.fixtures import write_fixture_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RANKING_TITLE = "Which fine-tuning method should you use?"


def test_ranking_path_opens_the_ranking_with_its_query(browser, tmp_path):
    """/ranking (the landing page's title as a path) put "Page not found" over the landing page; now it opens the
    ranking at / with the link's query, as the first request to a fresh server (Streamlit's automatic pages/
    navigation then serves pages/ranking.py itself) and as a later one."""
    _require_chromium()
    results = tmp_path / "results"
    write_fixture_store(results, pretrained="random")
    port = free_port()
    proc = start_app(port, {store.ENV_VAR: str(results)}, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        query = ("model=worldclip-tiny+%C2%B7+random&rank=least+forgetting+%28out-of-domain+change%29"
                 "&dataset=fx-set-1&dataset=fx-set-2")  # the fixture model (the shipped runs are in the store too)
        page.goto(f"http://127.0.0.1:{port}/ranking?{query}", timeout=TIMEOUT_MS)
        _settle(page)
        expect(page.locator("h1").first).to_have_text(RANKING_TITLE)
        expect(page.get_by_label("rank by")).to_have_value("least forgetting (out-of-domain change)")
        assert page.url == f"http://127.0.0.1:{port}/?{query}", page.url
        expect(page.locator("[data-testid=stMultiSelect]")).to_contain_text("fx-set-2")
        assert page.get_by_text("Page not found").count() == 0
        assert page.locator("[data-testid=stException]").count() == 0
        _shot(page, tmp_path, "ranking-path")
        page.goto(f"http://127.0.0.1:{port}/runs", timeout=TIMEOUT_MS)  # the app's own navigation now serves links
        _settle(page)
        page.goto(f"http://127.0.0.1:{port}/ranking?{query}", timeout=TIMEOUT_MS)
        _settle(page)
        expect(page.locator("h1").first).to_have_text(RANKING_TITLE)
        assert page.url == f"http://127.0.0.1:{port}/?{query}", page.url
        assert page.get_by_text("Page not found").count() == 0
    finally:
        stop_app(proc)


@pytest.mark.parametrize("path, label", [("forecast", "labelled sample"), ("submit", "records (zip)")])
def test_an_upload_is_announced_by_its_label(server, browser, tmp_path, path, label):
    """Streamlit names an uploader's file input "file upload" and its button "Upload", whatever the label: a screen
    reader announced every upload alike. Now both say the label, also once a file is chosen."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(f"{url}/{path}", timeout=TIMEOUT_MS)
    _settle(page)
    upload = page.locator("input[type=file]")
    expect(upload).to_have_accessible_name(label)
    expect(page.get_by_role("button", name=f"Upload {label}", exact=True)).to_be_visible()
    sample = tmp_path / "sample.zip"
    sample.write_bytes(sample_zip(n_per_class=2))
    upload.set_input_files(str(sample))
    page.locator("[data-testid=stFileChipName]", has_text=sample.name).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    expect(upload).to_have_accessible_name(label)  # drawn again around the chosen file
    assert page.locator("[data-testid=stException]").count() == 0
