"""Every page survives a results folder full of hostile files, names what it skipped, and shows
record text literally (no link, image or HTML from data)."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core import store
from core.store.records import mark_results_folder
from tests.fixtures import write_fixture_store
from tests.hostile_records import build_record_corpus

TIMEOUT = 120
PAGES = ("ranking", "matrix", "compare", "runs", "forecast", "cards", "about", "submit")
NOTICE_PAGES = ("ranking", "matrix", "compare", "runs")  # the pages that read the whole store


@pytest.fixture
def hostile_store(tmp_path, monkeypatch):
    shipped, local = tmp_path / "shipped", tmp_path / "local"
    write_fixture_store(shipped, pretrained="random", n_failed=1)
    cases = build_record_corpus(local)
    mark_results_folder(local)  # a folder jobs.grid made, then filled with hostile files
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(store.ENV_VAR, str(local))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    return cases


@pytest.mark.slow
@pytest.mark.parametrize("name", PAGES)
def test_page_survives_every_hostile_file(hostile_store, name):
    script = "../app.py" if name == "ranking" else f"../pages/{name}.py"  # the landing page links to others
    at = AppTest.from_file(script, default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    if name in NOTICE_PAGES:
        warning = " ".join(w.value for w in at.warning)
        skips = len(store.load_runs_report()[1])
        assert skips >= 55 and f"{skips} records skipped" in warning.replace("\\", "")


@pytest.mark.slow
def test_markdown_in_a_record_is_shown_literally(hostile_store):
    at = AppTest.from_file("../pages/runs.py", default_timeout=TIMEOUT).run()
    at.selectbox(key="run").set_value("markdown-1").run()
    assert not at.exception
    shown = " ".join(m.value for m in at.markdown)
    assert "\\[click\\]\\(http" in shown and "!\\[i\\]" in shown  # escaped: rendered as characters
    assert "](http" not in shown and "<img" not in shown
