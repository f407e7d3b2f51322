"""What the browser tests share (tests/test_browser*.py): Chromium or a clear skip, the app server on a fixture
store, a browser, and waits and reads of Streamlit's page. A test module takes the fixtures by importing them."""
import os
from pathlib import Path

import pytest

from core import store
from core.models import ASSET_DIR, spec_for
from jobs.app_server import CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app, wait_until_idle
from tests.fixtures import write_fixture_store

TIMEOUT_MS = 180_000  # first forecast imports torch and builds the model on a busy 2-core machine


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is absent; install it with `apt-get install -y chromium chromium-driver`"
    if os.environ.get("IIMM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"IIMM_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _default_model_ready() -> bool:
    """The trained offline model gives reproducible numbers; random weights differ per process."""
    return (ASSET_DIR / spec_for("worldclip-tiny").shipped_weights).exists()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_chromium()
    model = "worldclip-tiny" if _default_model_ready() else "worldclip-tiny-random"
    pretrained = spec_for(model).pretrained_tag
    results = tmp_path_factory.mktemp("results")
    write_fixture_store(results, pretrained=pretrained)
    port = free_port()
    env = {store.ENV_VAR: str(results), "IIMM_FORECAST_MODEL": model,
           "IIMM_CACHE": str(tmp_path_factory.mktemp("cache"))}
    try:
        proc = start_app(port, env, tmp_path_factory.mktemp("log") / "streamlit.log")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield f"http://127.0.0.1:{port}", model
    finally:
        stop_app(proc)


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


def expect(locator):
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def _idle(page) -> None:
    """Wait until the script run triggered by the last interaction has finished."""
    wait_until_idle(page, TIMEOUT_MS)


def _settle(page) -> None:
    page.locator("h1").first.wait_for(timeout=TIMEOUT_MS)
    _idle(page)


def _table_cells(page) -> list[str]:
    """The visible text of the first table's cells (the grid keeps an accessible copy of each cell)."""
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.locator("[data-testid^=glide-cell-0-]").first.wait_for(state="attached", timeout=30_000)
    return [t.strip() for t in grid.locator("th, [data-testid^=glide-cell-]").all_inner_texts()]


def _nav(page) -> list[str]:
    """The titles in the sidebar navigation (each link also holds its icon's ligature name)."""
    links = page.locator("[data-testid=stSidebarNavLink]")
    links.first.wait_for(timeout=TIMEOUT_MS)
    return [t.strip().splitlines()[-1].strip() for t in links.all_inner_texts()]


def _shot(page, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    return path


NAV = ["Ranking", "Per dataset", "Compare methods", "All runs", "Forecast your dataset", "Methods and models", "Submit runs",
       "About"]


def _sort_by(page, grid, header: str) -> None:
    """Sort ``grid`` by ``header``, smallest first. The headers are drawn on a canvas: click along the header row,
    from its right end, until the accessible copy of the headers shows that one's ascending arrow."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box, heads = grid.bounding_box(), grid.locator("th")
    for x in range(int(box["width"]) - 10, 0, -60):
        before = heads.all_inner_texts()
        page.mouse.click(box["x"] + x, box["y"] + 15)
        try:  # the accessible copy follows the canvas a frame later
            page.wait_for_function("([grid, before]) => [...grid.querySelectorAll('th')]"
                                   ".some((t, i) => t.innerText !== before[i])", arg=[grid.element_handle(), before],
                                   timeout=800)
        except PlaywrightTimeout:  # a click on a column's edge sorts nothing
            continue
        if f"↑ {header}" in [t.strip() for t in heads.all_inner_texts()]:
            return
    raise AssertionError(f"no header {header!r} to sort by: {heads.all_inner_texts()}")
