"""The real app in a real headless Chromium: the ranking as landing view, deep links as the first request
to a fresh server, the shared-URL round trip, a forecast upload end to end. Screenshots go to each
test's tmp folder; the checks read visible text.

Needs Debian's Chromium (``apt-get install chromium chromium-driver``); skipped without it unless
IIMM_REQUIRE_BROWSER=1. Playwright drives it through ``executable_path`` (never ``playwright install``).
"""
import io
import re
from pathlib import Path

import numpy as np
import pytest

from core import charts, metrics, store
from core.models import spec_for
from jobs.app_server import free_port, start_app, stop_app
from tests.app_helpers import sample_zip, traversal_zip
from tests.browser_helpers import (NAV, TIMEOUT_MS, _idle, _nav, _require_chromium, _settle, _shot,  # noqa: F401
                                   _sort_by, _table_cells, browser, expect, server)  # (fixtures: browser, server)
from tests.fixtures import SHIPPED_METHODS, fixture_run_id, write_fixture_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _download(page, button_name: str, *, attempts: int = 3):
    """Click a download button and return the download.

    A click that lands while the script is re-running hits the previous run's button, whose
    deferred file is gone, so nothing downloads; a user would click again, and so do we. Once (CI,
    2026-12-06, a loaded machine) the button then stayed disabled for the whole of the next click's
    30 s: each try now waits as long for the button as for the file, and after a failed try the
    page is reloaded, as a user would (the view is in the URL), before the next.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if attempts < 1:
        raise ValueError(f"attempts must be positive, got {attempts}")
    for attempt in range(attempts):
        _idle(page)
        try:
            with page.expect_download(timeout=60_000) as download:
                page.get_by_role("button", name=button_name).click(timeout=60_000)
            return download.value
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.reload(timeout=TIMEOUT_MS)
            _settle(page)


def _forecast(page, path: Path) -> None:
    """Upload ``path`` (replacing any earlier file), wait for the rerun, press the run button."""
    page.locator("input[type=file]").set_input_files(str(path))
    page.locator("[data-testid=stFileChipName]", has_text=path.name).wait_for(timeout=TIMEOUT_MS)
    _idle(page)
    button = page.get_by_role("button", name="Run forecast")
    expect(button).to_be_enabled(timeout=TIMEOUT_MS)  # the upload's own rerun may still be on its way
    _idle(page)
    button.click()
    _idle(page)


def _metric(page, label: str) -> str:
    box = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    return box.locator("[data-testid=stMetricValue]").inner_text().strip()


def _expect_metric(page, label: str, value: str) -> None:
    """Wait until the metric shows ``value``: while a rerun replaces the page, the new heading can be drawn
    before the previous forecast's metrics below it are (read at once, a test saw the old IIMM)."""
    box = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    expect(box.locator("[data-testid=stMetricValue]")).to_have_text(value, timeout=30_000)


def test_ranking_is_the_landing_view(server, browser, tmp_path):
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url, timeout=TIMEOUT_MS)
    _settle(page)
    expect(page.locator("h1").first).to_have_text("Which fine-tuning method should you use?")
    text = page.locator("[data-testid=stMain]").inner_text()
    assert "Most gain:" in text and "Best trade-offs" in text and "toy model" in text
    expect(page.locator("[data-testid=stDataFrame]")).to_have_count(1, timeout=30_000)
    cells = _table_cells(page)
    assert cells[:3] == ["rank", "method", "gain"] and "OOD change" in cells and "Full" in cells
    assert _nav(page) == NAV
    assert page.locator("[data-testid=stException]").count() == 0
    assert _shot(page, tmp_path, "ranking").stat().st_size > 10_000


@pytest.mark.parametrize("path, heading, widget, script", [
    ("compare", "Does IIMM predict what fine-tuning does?", None, "serve.py"),
    ("compare", "Does IIMM predict what fine-tuning does?", None, "app.py"),  # started without the warm-up
    ("forecast", "Forecast fine-tuning on your dataset", None, "serve.py"),
    ("matrix?outcome=out-of-domain+change+%28points%29", "Every method on every dataset",  # a shared view
     ("outcome", "out-of-domain change (points)"), "serve.py")])
def test_deep_link_as_first_request_to_a_fresh_server(browser, tmp_path, path, heading, widget, script):
    _require_chromium()
    results = tmp_path / "results"
    write_fixture_store(results, pretrained="random")
    port = free_port()
    proc = start_app(port, {store.ENV_VAR: str(results)}, tmp_path / "streamlit.log", script=script)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/{path}", timeout=TIMEOUT_MS)  # nothing else has run on this server
        _settle(page)
        expect(page.locator("h1").first).to_have_text(heading)
        nav = page.locator("[data-testid=stSidebarNav]")
        expect(nav).to_contain_text("Ranking")
        assert _nav(page) == NAV  # the app's own navigation, not file names from pages/
        assert page.url.endswith(f"/{path}")  # the URL, query included, survives the switch
        if widget is not None:
            expect(page.get_by_label(widget[0])).to_have_value(widget[1])
        width = page.locator("[data-testid=stMainBlockContainer]").bounding_box()["width"]
        assert width > 1000, width  # the app's wide layout, not the centred fallback
        _shot(page, tmp_path, f"deep-{path.split('?')[0]}")
    finally:
        stop_app(proc)


def test_ranking_chart_shows_every_method_of_a_full_grid(browser, tmp_path):
    """All 19 shipped methods: Streamlit clips a legend taller than the chart (10 of 19 showed)."""
    _require_chromium()
    results = tmp_path / "results"
    write_fixture_store(results, pretrained="random", n_datasets=3, methods=SHIPPED_METHODS)
    port = free_port()
    proc = start_app(port, {store.ENV_VAR: str(results)}, tmp_path / "streamlit.log")
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/", timeout=TIMEOUT_MS)  # the landing page
        _settle(page)
        chart = page.locator("[data-testid=stVegaLiteChart]").first
        chart.locator("g.role-legend-label text").first.wait_for(state="attached", timeout=TIMEOUT_MS)
        svg = chart.locator("svg").first.bounding_box()
        labels = chart.locator("g.role-legend-label text")
        shown = [labels.nth(i).text_content() for i in range(labels.count())
                 if labels.nth(i).bounding_box()["y"] + labels.nth(i).bounding_box()["height"]
                 <= svg["y"] + svg["height"]]
        assert len([t for t in shown if t not in ("Pareto: best trade-off", "dominated")]) == 19, shown
        assert not [t for t in shown if t.endswith("…")], shown  # 'Orthogonal FT (OrthCR…' was cut at 150 px
        chart.scroll_into_view_if_needed()
        _shot(page, tmp_path, "ranking-chart-19-methods")
    finally:
        stop_app(proc)


def test_the_matrix_heatmap_draws_its_cells(server, browser, tmp_path):
    """The heatmap drew nothing in Chromium (an empty box, 0 px high): its cells' colour scale and the text's
    ink (scale None) shared one scale, and Vega-Lite failed ("Cannot read properties of null (reading 'type')")."""
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/matrix", timeout=TIMEOUT_MS)
    _settle(page)
    chart = page.locator("[data-testid=stVegaLiteChart]").first
    chart.locator("g.mark-rect.role-mark path").first.wait_for(state="attached", timeout=30_000)
    cells = chart.locator("g.mark-rect.role-mark path").count()  # the cells and the best ones' frames
    stars = [t for t in chart.locator("g.mark-text.role-mark text").all_text_contents() if t.endswith("★")]
    assert cells >= 18 and stars, (cells, stars)  # written values or (many datasets) stars alone
    assert chart.bounding_box()["height"] > 200 and not errors, errors
    # the page's axis ink, not Streamlit's chart theme's #808495 (3.7:1 on white): the theme leaves it in place
    inks = set(chart.locator("g.role-axis-label text").evaluate_all("ts => ts.map(t => t.getAttribute('fill'))"))
    assert inks == {charts.AXIS_INK}, inks
    chart.scroll_into_view_if_needed()
    _shot(page, tmp_path, "matrix-heatmap")


def test_compare_panels_stay_inside_a_narrow_page(server, browser, tmp_path):
    """One chart of the per-method panels (3 to a row, 892 px) ran past the right edge of an 800 px page."""
    url, _ = server
    page = browser.new_page(viewport={"width": 800, "height": 900})
    page.goto(f"{url}/compare", timeout=TIMEOUT_MS)
    _settle(page)
    charts = page.locator("[data-testid=stVegaLiteChart] svg")
    charts.first.wait_for(timeout=30_000)
    rights = charts.evaluate_all("svgs => svgs.map(s => s.getBoundingClientRect())"
                                 ".filter(r => r.width > 0).map(r => r.right)")  # the hidden tab's are 0 wide
    assert len(rights) >= 3 and max(rights) <= 800, rights
    _shot(page, tmp_path, "compare-800")


def test_shared_url_round_trip(server, browser, tmp_path):
    url, _ = server
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url, timeout=TIMEOUT_MS)
    _settle(page)
    page.get_by_label("rank by").click()
    page.get_by_role("option", name="least forgetting (out-of-domain change)").click()
    _idle(page)
    page.wait_for_function("() => location.search.includes('rank=')", timeout=30_000)
    shared = page.url
    page.goto(shared, timeout=TIMEOUT_MS)  # the view as its URL gives it (not a table mid-rerun)
    _settle(page)
    first_rows = _table_cells(page)
    assert first_rows[first_rows.index("method") + 1:] != []
    _shot(page, tmp_path, "shared-before")
    other = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()  # another visitor
    other.goto(shared, timeout=TIMEOUT_MS)
    _settle(other)
    expect(other.get_by_label("rank by")).to_have_value("least forgetting (out-of-domain change)")
    assert _table_cells(other) == first_rows
    _shot(other, tmp_path, "shared-after")


def test_runs_url_state_and_download_in_chromium(server, browser, tmp_path):
    import pandas as pd

    url, model = server
    page = browser.new_page(viewport={"width": 1440, "height": 1200})
    page.goto(f"{url}/runs?method=Full&sort=IIMM&order=smallest+first", timeout=TIMEOUT_MS)
    page.get_by_text(re.compile(r"^6 of [\d,]+ runs match")).wait_for(timeout=TIMEOUT_MS)
    search = page.get_by_label("search (method, dataset, model, source)")
    search.fill("fx-set-5")
    search.press("Enter")
    page.get_by_text(re.compile(r"^1 of [\d,]+ runs match")).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => location.search.includes('q=fx-set-5')", timeout=30_000)
    assert "method=Full" in page.url and "sort=IIMM" in page.url
    path = tmp_path / "runs.csv"
    _download(page, "Download CSV").save_as(path)
    runs = pd.read_csv(path)
    spec = spec_for(model)
    assert list(runs["run_id"]) == [fixture_run_id(spec.arch, spec.pretrained_tag, "full", "fx-set-5", 0)]
    assert {"provenance", "config", "ood_after"} <= set(runs.columns)


def test_forecast_page_in_chromium(server, browser, tmp_path):
    url, model = server
    good, evil = tmp_path / "sample.zip", tmp_path / "evil.zip"
    good.write_bytes(sample_zip())
    evil.write_bytes(traversal_zip())
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url, timeout=TIMEOUT_MS)
    _settle(page)
    page.get_by_role("link", name="Forecast your dataset").click()
    page.get_by_text("Forecast fine-tuning on your dataset").wait_for(timeout=TIMEOUT_MS)

    page.locator("input[type=file]").set_input_files(str(evil))  # hostile first: explained before any run
    error = page.locator("[data-testid=stAlertContentError]").first
    error.wait_for(timeout=TIMEOUT_MS)
    assert "cannot be used" in error.inner_text() and "no usable files" in error.inner_text()
    expect(page.get_by_role("button", name="Run forecast")).to_be_disabled()
    assert page.locator("[data-testid=stException]").count() == 0

    _forecast(page, good)
    page.get_by_text("Predicted outcome per method").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=stException]").count() == 0
    verdict = page.locator("[data-testid=stAlert]").filter(has_text="Confidence:").first.inner_text()
    assert "Predicted to gain most:" in verdict and "Best trade-offs" in verdict
    assert "Forecast ready" in page.locator("[data-testid=stExpander]").first.inner_text()  # not stuck
    assert "chance level" in page.locator("[data-testid=stMain]").inner_text()
    _shot(page, tmp_path, "forecast")
    shown = {k: float(_metric(page, k)) for k in ("IIMM", "inter-modal term", "intra-image term")}
    assert abs(shown["IIMM"] - (shown["inter-modal term"] + shown["intra-image term"]) / 2) <= 0.0011
    interval = page.get_by_text("95% bootstrap interval").inner_text()
    lo, hi = (float(v) for v in interval.split("[")[1].rstrip("]").split(","))
    assert lo <= shown["IIMM"] <= hi
    assert page.get_by_text("No chart:").count() == 0
    expect(page.locator("[data-testid=stVegaLiteChart]")).to_have_count(2, timeout=30_000)
    if model == "worldclip-tiny":  # trained weights: the server's number must equal core's
        from core.embed import embed_dataset
        from core.models import load_model
        from core.upload import load_image_folder_zip

        emb = embed_dataset(load_model(model), load_image_folder_zip(good).data, use_cache=False)
        _expect_metric(page, "IIMM", f"{metrics.iimm(emb.image, emb.text, emb.labels):.3f}")
    else:  # random weights differ per process: the page must say so
        assert "RANDOM WEIGHTS" in page.locator("[data-testid=stAlertContentWarning]").first.inner_text()

    # Embeddings are reproducible across processes: the shown IIMM must be core's, to 3 decimals.
    rng = np.random.default_rng(3)
    x, t, y = rng.normal(size=(40, 128)) + 1.0, rng.normal(size=(4, 128)), np.arange(40) % 4  # model width
    npz = tmp_path / "emb.npz"
    buf = io.BytesIO()
    np.savez(buf, image_embeddings=x.astype(np.float32), text_embeddings=t.astype(np.float32),
             labels=y, class_names=np.array(["w", "x", "y", "z"]))
    npz.write_bytes(buf.getvalue())
    _forecast(page, npz)
    page.get_by_role("heading", name=re.compile(r"^emb\.npz: ")).wait_for(timeout=TIMEOUT_MS)
    expected = metrics.iimm(x.astype(np.float32), t.astype(np.float32), y)
    _expect_metric(page, "IIMM", f"{expected:.3f}")


def test_compare_winners_table_sorts_its_numbers_as_numbers(server, browser):
    """The winners table held its numbers as text: sorted by IIMM's LODO error, 10.08 came before 2.27."""
    url, model = server
    if model != "worldclip-tiny":
        pytest.skip("the shipped predictor table is of the trained model")
    page = browser.new_page(viewport={"width": 2560, "height": 1400})
    page.goto(f"{url}/compare", timeout=TIMEOUT_MS)
    _settle(page)
    grid = page.locator("[data-testid=stDataFrame]").filter(has=page.locator("th", has_text="best by LODO error"))
    grid.locator("[data-testid^=glide-cell-0-]").first.wait_for(state="attached", timeout=30_000)
    grid.scroll_into_view_if_needed()
    _sort_by(page, grid, "IIMM's LODO error")
    outcomes = grid.locator("[data-testid^=glide-cell-0-]").all_inner_texts()
    assert [o.split(" (")[0] for o in outcomes] == ["normalised gain", "out-of-domain change", "in-domain gain"]
