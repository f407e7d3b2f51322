"""The app's pages through AppTest, on a fixture store in a temp folder (never the real store)."""
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import models, store
from tests.fixtures import FIXTURE_SOURCE, LINES, fixture_run_id, write_fixture_store

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # the forecast page loads torch + the tiny model on first use


@pytest.fixture
def fixture_store(tmp_path, monkeypatch):
    """18 fixture runs of the random tiny model (3 methods x 6 datasets, 2 of them failed) as the
    only store; the shipped folder is pointed at an empty one so real results never leak in."""
    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    write_fixture_store(results, pretrained="random", n_failed=2)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    return results


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


# ------------------------------------------------------------------------------ leaderboard
def test_app_navigation_starts_on_the_leaderboard(fixture_store):
    at = AppTest.from_file("../app.py", default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Leaderboard"
    assert len(at.dataframe[0].value) == 18


def test_leaderboard_rows_filters_and_url(fixture_store):
    at = page("leaderboard").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 18 and set(table["source"]) == {FIXTURE_SOURCE}
    assert {"total_params", "embed_dim", "weights_source"} <= set(table.columns)
    assert table["id_gain"].dropna().is_monotonic_decreasing  # default sort: ID gain, descending
    at.multiselect(key="method").select("full").run()
    assert len(at.dataframe[0].value) == 6 and set(at.dataframe[0].value["method"]) == {"full"}
    at.multiselect(key="method").select("lora").run()
    assert len(at.dataframe[0].value) == 12
    at.multiselect(key="status").select("failed").run()
    assert len(at.dataframe[0].value) == 2
    at.text_input(key="q").input("fx-set-5").run()
    assert set(at.dataframe[0].value["dataset"]) == {"fx-set-5"}


def test_leaderboard_view_restores_from_the_url(fixture_store):
    """Widgets are bound to query parameters (the browser test checks that the URL follows them)."""
    at = page("leaderboard")
    run_id = fixture_run_id("worldclip-tiny", "random", "lora", "fx-set-2", 0)
    at.query_params.update({"method": ["bitfit", "lora"], "sort": "iimm", "order": "asc", "run": run_id})
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert len(table) == 12 and set(table["method"]) == {"bitfit", "lora"}
    assert table["iimm"].is_monotonic_increasing
    assert at.selectbox(key="sort").value == "iimm"
    assert at.selectbox(key="run").value == run_id and any(run_id in c.value for c in at.code)


def test_leaderboard_run_details_show_ood_table_and_command(fixture_store):
    at = page("leaderboard").run()
    run_id = at.dataframe[0].value["run_id"].iloc[0]
    at.selectbox(key="run").select(run_id).run()
    assert not at.exception
    ood = at.dataframe[1].value
    assert list(ood["set"]) == ["ood-a", "ood-b"]
    np.testing.assert_allclose(ood["after"] - ood["before"], ood["change"])
    assert any(f"--only {run_id}" in c.value for c in at.code)
    other = "bitfit" if at.dataframe[0].value["method"].iloc[0] != "bitfit" else "lora"
    at.multiselect(key="method").select(other).run()  # the chosen run leaves the view
    assert not at.exception and at.selectbox(key="run").value is None and not at.code


def test_leaderboard_empty_store_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "nothing"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    at = page("leaderboard").run()
    assert not at.exception and "No runs yet" in at.info[0].value


def test_leaderboard_and_compare_import_no_torch(fixture_store):
    """Hosting requirement: the two browsing pages run without torch or open_clip; the forecast
    page imports them only when a model is needed (not to render its form)."""
    code = ("import sys\nfrom streamlit.testing.v1 import AppTest\n"
            "for p in ('pages/leaderboard.py', 'pages/compare.py', 'pages/forecast.py'):\n"
            "    at = AppTest.from_file(p, default_timeout=60).run()\n"
            "    assert not at.exception, at.exception\n"
            "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------------------ compare
def test_compare_renders_charts_fit_table_and_summary(fixture_store):
    at = page("compare").run()
    assert not at.exception
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # IIMM vs gain, IIMM vs OOD change, gain vs forgetting
    fits = at.dataframe[0].value
    assert set(fits["method"]) == {"bitfit", "full", "lora"}
    assert np.allclose(fits["r2"], 1.0) and np.allclose(fits["kendall_tau"].abs(), 1.0)
    summary = at.dataframe[1].value
    assert list(summary["method"]) == ["bitfit", "full", "lora"]
    at.multiselect(key="cmp_method").select("full").run()
    assert list(at.dataframe[1].value["method"]) == ["full"]


def test_compare_shows_predictor_csv_when_present(fixture_store, monkeypatch):
    (store.SHIPPED_DIR / "predictors.csv").write_text("predictor,outcome,kendall_tau\niimm,id_gain,0.8\n")
    at = page("compare").run()
    assert not at.exception
    assert at.dataframe[-1].value["kendall_tau"].tolist() == [0.8]


# ------------------------------------------------------------------------------ forecast
def run_upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="fc_upload").set_value((name, data, "application/octet-stream"))
    at.run()
    at.button(key="fc_run").click().run()
    return at


def test_forecast_page_predicts_for_an_uploaded_zip(fixture_store):
    at = page("forecast").run()
    assert not at.exception
    assert at.selectbox(key="fc_model").value == "worldclip-tiny-random"
    options = at.selectbox(key="fc_model").options
    assert [o.split(":")[0] for o in options] == [s.key for s in models.list_models()]
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and not at.error
    name, res = at.session_state["fc_result"]
    assert res.n_images == 18 and res.n_classes == 3 and res.enough_runs
    assert at.metric[0].value == f"{res.iimm:.3f}"
    assert any("RANDOM WEIGHTS" in w.value for w in at.warning)
    table = at.dataframe[0].value.set_index("method")
    a, b, c = LINES["full"]
    assert table.loc["full", "id_gain"] == pytest.approx(a + b * res.iimm, abs=1e-6)
    assert table.loc["full", "ood_change"] == pytest.approx(-c * res.iimm, abs=1e-6)
    assert len(at.get("vega_lite_chart")) == 2  # the user's dataset marked on both charts


def test_forecast_page_refuses_hostile_uploads_and_keeps_working(fixture_store):
    at = page("forecast").run()
    run_upload(at, "evil.zip", traversal_zip())
    assert not at.exception
    assert "no usable files" in at.error[0].value and "outside the archive" in at.error[0].value
    assert "fc_result" not in at.session_state
    run_upload(at, "garbage.zip", b"this is not a zip at all")
    assert not at.exception and "not a zip archive" in at.error[0].value
    run_upload(at, "good.zip", sample_zip())
    assert not at.exception and not at.error
    assert at.session_state["fc_result"][1].n_images == 18


def _embeddings_npz(width: int) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    np.savez(buf, image_embeddings=rng.normal(size=(30, width)).astype(np.float32),
             text_embeddings=rng.normal(size=(3, width)).astype(np.float32),
             labels=np.arange(30) % 3, class_names=np.array(["a", "b", "c"]))
    return buf.getvalue()


def test_forecast_page_accepts_embeddings_npz(fixture_store):
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(128))  # the tiny model's width
    assert not at.exception and not at.error
    res = at.session_state["fc_result"][1]
    assert res.n_images == 30 and "uploaded embeddings" in res.model_label and res.enough_runs
    at = run_upload(page("forecast").run(), "emb.npz", _embeddings_npz(16))
    assert not at.exception and "16 wide but the chosen model" in at.error[0].value


def test_forecast_page_shows_model_errors_and_missing_runs(fixture_store, monkeypatch):
    def offline(key, **kw):
        raise models.ModelUnavailableError(f"Could not obtain the pretrained weights of {key}: offline.")

    monkeypatch.setattr(models, "load_model", offline)
    at = page("forecast").run()
    at.selectbox(key="fc_model").select("CLIP").run()
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and "Could not obtain the pretrained weights of CLIP" in at.error[0].value
    monkeypatch.undo()
    monkeypatch.setenv(store.ENV_VAR, str(fixture_store.parent / "empty"))
    monkeypatch.setattr(store, "SHIPPED_DIR", fixture_store.parent / "none")
    at = page("forecast").run()
    at.selectbox(key="fc_model").select("worldclip-tiny-random").run()
    run_upload(at, "sample.zip", sample_zip())
    assert not at.exception and not at.error
    assert "No reference runs" in at.warning[-1].value
    assert "python -m jobs.grid" in at.code[0].value
