"""The real app in a real headless Chromium: upload a sample on the forecast page, read the numbers.

Needs Debian's Chromium (``apt-get install chromium chromium-driver``); skipped without it unless
IIMM_REQUIRE_BROWSER=1. Playwright drives it through ``executable_path`` (never ``playwright install``).
"""
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from core import metrics, store
from core.models import ASSET_DIR, spec_for
from jobs.app_server import CHROMIUM, CHROMIUM_ARGS, free_port, start_app, stop_app
from tests.fixtures import fixture_run_id, write_fixture_store
from tests.test_app import sample_zip, traversal_zip

pytestmark = [pytest.mark.browser, pytest.mark.slow]

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
    page.wait_for_timeout(300)
    page.locator("[data-testid=stStatusWidget]").wait_for(state="detached", timeout=TIMEOUT_MS)


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


def test_leaderboard_url_state_and_download_in_chromium(server, browser, tmp_path):
    import pandas as pd

    url, model = server
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{url}/?source=synthetic-fixture&method=full&sort=iimm&order=asc", timeout=TIMEOUT_MS)
    page.get_by_text(re.compile(r"^6 of \d+ runs match")).wait_for(timeout=TIMEOUT_MS)
    search = page.get_by_label("search (model, method, dataset, source, run id)")
    search.fill("fx-set-5")
    search.press("Enter")
    page.get_by_text(re.compile(r"^1 of \d+ runs match")).wait_for(timeout=TIMEOUT_MS)
    page.wait_for_function("() => location.search.includes('q=fx-set-5')", timeout=30_000)
    assert "method=full" in page.url and "source=synthetic-fixture" in page.url
    _idle(page)
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.get_by_role("button", name="Download CSV").click()
    path = tmp_path / "runs.csv"
    download.value.save_as(path)
    runs = pd.read_csv(path)
    spec = spec_for(model)
    assert list(runs["run_id"]) == [fixture_run_id(spec.arch, spec.pretrained_tag, "full", "fx-set-5", 0)]
    assert {"provenance", "config", "ood_after"} <= set(runs.columns)


def test_forecast_page_in_chromium(server, browser, tmp_path):
    url, model = server
    good, evil = tmp_path / "sample.zip", tmp_path / "evil.zip"
    good.write_bytes(sample_zip())
    evil.write_bytes(traversal_zip())
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    # Enter through the app's root (the leaderboard), then navigate: a deep link as the very first
    # request of a fresh server runs the page in Streamlit's legacy pages/ mode (see the report).
    page.goto(url, timeout=TIMEOUT_MS)
    page.get_by_role("heading", name="Leaderboard").wait_for(timeout=TIMEOUT_MS)
    page.get_by_role("link", name="Forecast your dataset").click()
    page.get_by_text("Forecast fine-tuning on your dataset").wait_for(timeout=TIMEOUT_MS)

    _forecast(page, evil)  # hostile first: an error message, no traceback, the page lives on
    error = page.locator("[data-testid=stAlertContentError]").first
    error.wait_for(timeout=TIMEOUT_MS)
    assert "no usable files" in error.inner_text()
    assert page.locator("[data-testid=stException]").count() == 0

    _forecast(page, good)
    page.get_by_text("Forecast per method").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("[data-testid=stException]").count() == 0
    shown = {k: float(_metric(page, k)) for k in ("IIMM", "inter_modal", "intra_image")}
    assert abs(shown["IIMM"] - (shown["inter_modal"] + shown["intra_image"]) / 2) <= 0.0011
    interval = page.get_by_text("95% bootstrap interval").inner_text()
    lo, hi = (float(v) for v in interval.split("[")[1].rstrip("]").split(","))
    assert lo <= shown["IIMM"] <= hi
    assert page.get_by_text("No chart:").count() == 0
    expect(page.locator("[data-testid=stVegaLiteChart]")).to_have_count(2, timeout=30_000)  # sample marked
    if model == "worldclip-tiny":  # trained weights: the server's number must equal core's
        from core.embed import embed_dataset
        from core.models import load_model
        from core.upload import load_image_folder_zip

        emb = embed_dataset(load_model(model), load_image_folder_zip(good).data, use_cache=False)
        assert f"{metrics.iimm(emb.image, emb.text, emb.labels):.3f}" == _metric(page, "IIMM")
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
    page.get_by_role("heading", name=re.compile(r"^emb\.npz — ")).wait_for(timeout=TIMEOUT_MS)
    expected = metrics.iimm(x.astype(np.float32), t.astype(np.float32), y)
    assert _metric(page, "IIMM") == f"{expected:.3f}"
