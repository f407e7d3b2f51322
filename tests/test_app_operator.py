"""The app under operator mistakes and a changing store, through AppTest on a fixture store in a temp folder
(never the real store). The ranking and All runs pages are in test_app_ranking.py and test_app_runs.py."""
import io
import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st

from core import store
from tests.app_helpers import page
from tests.fixtures import FIXTURE_SOURCE, make_fixture_records


# ------------------------------------------------------------------------------ operator mistakes and a changing store
def test_bad_shipped_tables_degrade_to_a_message(fixture_store):
    import forecast_ui

    header = "model,pretrained,method,predictor,family,outcome,status,kendall_tau,lodo_mae\n"
    (store.SHIPPED_DIR / "predictors.csv").write_text(header, encoding="utf-8")
    at = page("compare").run()  # header only: was IndexError
    assert not at.exception and any("no shipped predictor table has runs of" in w.value for w in at.warning)
    (store.SHIPPED_DIR / "predictors.csv").write_text(header + "worldclip-tiny,random,a,iimm,zero-shot,id_gain,"
                                                      "failed,,\n", encoding="utf-8")
    at = page("compare").run()  # rows of this model, none scored (the table is the model's since 14bd510)
    assert not at.exception and any("has no scored" in w.value for w in at.warning)
    (store.SHIPPED_DIR / "sub").mkdir()
    (store.SHIPPED_DIR / "sub" / "forecast-selection.csv").write_text("",
                                                                      encoding="utf-8")  # empty: was a traceback on the page
    (store.SHIPPED_DIR / "forecast-selection.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # other columns
    forecast_ui.forecast_selection.clear()
    assert forecast_ui.forecast_selection(store.SHIPPED_DIR).empty


def test_a_run_removed_since_the_view_was_made_is_said_to_be_gone(fixture_store, monkeypatch):
    at = page("runs").run()
    run_id = at.dataframe[0].value["run_id"].iloc[0]
    import app

    real = app.load_runs
    monkeypatch.setattr(app, "load_runs", lambda roots, include=False: (
        lambda runs: runs[runs["run_id"] != run_id])(real(roots, include)))  # the store reloaded without it
    at.selectbox(key="run").set_value(run_id).run()
    assert not at.exception and any("no longer in the store" in i.value for i in at.info)  # was: KeyError


def test_unreadable_weights_are_a_clear_model_error(tmp_path, monkeypatch):
    from core import models as model_zoo

    fake = tmp_path / "assets"
    fake.mkdir()
    spec = model_zoo.spec_for("worldclip-tiny")
    (fake / spec.shipped_weights).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n",
                                             encoding="utf-8")
    monkeypatch.setattr(model_zoo, "ASSET_DIR", fake)
    with pytest.raises(model_zoo.ModelUnavailableError, match="cannot be read .*Git LFS pointer"):
        model_zoo.load_model("worldclip-tiny")  # was: a raw SafetensorError, and the page stuck "Forecasting…"


def test_an_unusable_submissions_folder_is_an_error_message(fixture_store, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("x", encoding="utf-8")
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(blocker / "subs"))  # under a file: cannot be made
    records = make_fixture_records(n_datasets=1, methods=("lora",))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("r.json", json.dumps({**records[0], "run_id": "new-1"}))
    at = page("submit").run()
    at.file_uploader(key="sub_upload").set_value(("s.zip", buf.getvalue(), "application/zip")).run()
    at.button(key="sub_go").click().run()
    assert not at.exception and at.error  # was: a raw OSError traceback
    assert str(tmp_path) not in " ".join(e.value for e in at.error).replace("\\", "")  # no server path either


def test_app_helpers_default_model_options_and_submissions(tmp_path, monkeypatch):
    """The model picker's default is the pair with most *ok* runs; options carry no control or bidi characters;
    unverified submissions stay out of every view unless asked for."""
    import app

    monkeypatch.setenv("IIMM_STORE_INDEX", "off")
    frames = [make_fixture_records(n_datasets=3, pretrained="most-ok"),  # 9 ok runs
              make_fixture_records(n_datasets=2, pretrained="fewer-ok"),  # 6 ok runs
              make_fixture_records(n_datasets=4, pretrained="failed", n_failed=12)]  # 12 runs, none ok
    runs = pd.concat([store.records_to_frame(f) for f in frames], ignore_index=True)
    assert app.model_options(runs) == ["worldclip-tiny@most-ok", "worldclip-tiny@fewer-ok", "worldclip-tiny@failed"]
    assert app.option_text("lo\u202era\x00\tx") == "lora x"
    records = make_fixture_records(n_datasets=2, methods=("full",))
    records[1] = dict(records[1], source=store.SUBMITTED_SOURCE)
    for rec in records:
        store.write_record(rec, tmp_path)
    roots = (str(tmp_path),)
    assert set(app.load_runs(roots)["source"]) == {FIXTURE_SOURCE}
    assert len(app.load_runs(roots, include_submitted=True)) == 2


def test_the_skipped_records_notice_names_no_path_of_the_server(fixture_store, tmp_path):
    """Every visitor sees the notice: it named each skipped file by its absolute path on the server."""
    (fixture_store / "broken.json").write_text("{not json", encoding="utf-8")
    at = page("runs").run()
    notice = " ".join(w.value for w in at.warning).replace("\\", "")
    assert not at.exception and "1 record skipped: results/broken.json (invalid JSON" in notice
    assert str(tmp_path) not in notice


def test_every_app_cache_expires():
    """Every st.cache_data / st.cache_resource of the app has a ttl, so no entry outlives the store read it
    derives from. _verified_runs had none: keyed by the store's version, it held up to 8 old reads of the
    whole store (a 100,000-run store: 8 frames alive, 3.3 GiB RSS, where 1 is needed)."""
    import ast

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [*(root / name for name in ("app.py", "forecast_ui.py", "ranking_ui.py")),
                 *sorted((root / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                    node.func.attr in ("cache_data", "cache_resource"):
                found.append((path.name, node.lineno, {k.arg for k in node.keywords}))
            # a bare @st.cache_data (no call, so no ttl) was no Call: it went unseen
            for bare in getattr(node, "decorator_list", []):
                if isinstance(bare, ast.Attribute) and bare.attr in ("cache_data", "cache_resource"):
                    found.append((path.name, bare.lineno, set()))
    assert len(found) >= 9
    assert [(name, line) for name, line, kw in found if "ttl" not in kw] == []


def test_runs_downloads_hold_every_field_and_are_not_cached(fixture_store, monkeypatch):
    """The CSV/Parquet downloads used to cache every field of the matching runs per view (sort, filters,
    search): up to 16 frames of the whole store, 275 MiB each at 100,000 runs."""
    from streamlit.runtime.caching.cache_data_api import _data_caches
    from streamlit.runtime.media_file_manager import MediaFileManager

    built = []
    add = MediaFileManager.add_deferred
    monkeypatch.setattr(MediaFileManager, "add_deferred", lambda self, data, *a, **k: (
        built.append(data), add(self, data, *a, **k))[1])

    def cached_bytes() -> int:
        return sum(s.byte_length for family in _data_caches.get_stats().values() for s in family
                   if s.cache_name.endswith("query"))

    st.cache_data.clear()
    at = page("runs").run()
    assert not at.exception and len(built) == 2
    before = cached_bytes()
    assert before > 0  # the page's query cache is found by its name (Streamlit's cache stats are internal)
    csv_bytes, parquet_bytes = (download() for download in built)
    assert cached_bytes() == before
    table = pd.read_csv(io.BytesIO(csv_bytes))
    assert len(table) == 18 and {"run_id", "config", "provenance"} <= set(table.columns)
    assert len(pd.read_parquet(io.BytesIO(parquet_bytes))) == 18
