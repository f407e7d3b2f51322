"""The app in a real headless Chromium, continued from tests/test_browser.py: the links a visitor guesses or keeps,
what a narrow window shows, what a screen reader is told, how a table sorts. Skipped without Chromium unless
IIMM_REQUIRE_BROWSER=1, as there."""
from urllib.parse import urlencode

import pytest

from core import charts, ranking, store
from jobs.app_server import free_port, start_app, stop_app
from tests.app_helpers import sample_zip
from tests.browser_helpers import (TIMEOUT_MS, _idle, _require_chromium, _settle, _shot, _sort_by,  # noqa: F401
                                   browser, expect, server)  # (fixtures: browser, server)
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


def test_ranking_selects_show_their_choice_whole_at_800_px(server, browser, tmp_path):
    """At 800 px (the sidebar open) the ranking's select boxes, in rows of three columns, showed 89 px of their
    chosen text (the rank's takes 245, the model's 158). With each select's longest option chosen, every one now
    shows its whole text."""
    url, _ = server
    longest = max((title for title, _ in charts.TRADEOFF_AXES.values()), key=len)
    query = urlencode({"rank": ranking.RANK_BY["ood_change"][1], "x": longest, "y": longest})
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(f"{url}/?{query}", timeout=TIMEOUT_MS)
    _settle(page)
    expect(page.get_by_label("x axis")).to_have_value(longest)
    selects = page.locator("[data-testid=stSelectbox] input")
    expect(selects).to_have_count(4)  # model, rank by, x axis, y axis
    widths = selects.evaluate_all("es => es.map(e => [e.value, e.scrollWidth, e.clientWidth])")
    assert all(scroll <= client for _, scroll, client in widths), widths  # text wider than its box is cut
    assert page.locator("[data-testid=stMain]").evaluate("m => m.scrollWidth <= m.clientWidth")  # nothing off the page
    page.get_by_label("rank by").scroll_into_view_if_needed()
    _shot(page, tmp_path, "ranking-selects-800")


def test_ranking_interval_ends_sort_as_numbers(browser, tmp_path):
    """The ranking's intervals were text ('[-4.2, -2.3]'): a click on the header sorted them as text, '[-0.4, …]'
    before '[-4.2, …]' (and '+11.1' before '+2.8'). Their ends are now number columns ('low', 'high'): smallest
    first is in numeric order."""
    _require_chromium()
    results = tmp_path / "results"
    write_fixture_store(results, pretrained="random", methods=("full", "bitfit", "lora", "adapter"))
    port = free_port()
    proc = start_app(port, {store.ENV_VAR: str(results)}, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/?model=worldclip-tiny+%C2%B7+random", timeout=TIMEOUT_MS)
        _settle(page)
        grid = page.locator("[data-testid=stDataFrame]").first
        grid.locator("[data-testid^=glide-cell-0-]").first.wait_for(state="attached", timeout=30_000)
        _sort_by(page, grid, "low")  # found from the right: the low end of the out-of-domain change's interval
        column = [t.strip() for t in grid.locator("th").all_inner_texts()].index("↑ low")
        ends = grid.locator(f"[data-testid^=glide-cell-{column}-]").all_inner_texts()
        assert len(ends) == 4 and sorted(ends, key=float) != sorted(ends), ends  # text order would differ
        assert ends == sorted(ends, key=float), ends
        _shot(page, tmp_path, "ranking-sorted-by-ood-low")
    finally:
        stop_app(proc)
