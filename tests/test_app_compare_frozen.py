"""The Compare page shows what it showed before it was made faster: its charts (Vega-Lite specs and their data, as
Streamlit sends them) and its fit table, on a store of awkward size (7 methods x 13 datasets with missing cells,
ties, a method on 2 datasets, one with a constant outcome, failed runs, two seeds, the zero-shot baseline),
against tests/compare_page_frozen.json, written by the page as it was (``python -m tests.test_app_compare_frozen``
writes it again: only for a change meant to alter what the page shows)."""
from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import streamlit as st

from core import store
from tests.app_helpers import page
from tests.fixtures import make_fixture_records

FROZEN = Path(__file__).with_name("compare_page_frozen.json")
METHODS = ("full", "bitfit", "lora", "adapter", "my custom method", "peft_ia3", "zero_shot")


def awkward_records() -> list[dict]:
    """Seven methods (the zero-shot baseline among them) on up to 13 datasets of the random tiny model."""
    out = []
    for k, method in enumerate(METHODS):
        records = make_fixture_records(n_datasets=13, methods=(method,), seeds=(0, 1), noise=2.0, seed=k,
                                       pretrained="random", n_failed=k % 3)
        for i, rec in enumerate(records):
            d = int(rec["dataset"].rsplit("-", 1)[1])
            if (d + 2 * k) % 5 == 0 or (method == "adapter" and d > 1):  # missing cells; adapter on 2 datasets
                continue
            if d in (3, 4):  # two datasets with one IIMM: tied x
                rec = dict(rec, iimm=0.35, intra_image=0.40, inter_modal=0.30)
            if method == "peft_ia3" and rec["status"] == "ok":  # a constant outcome: no correlation
                rec = dict(rec, id_gain=5.0, ft_acc=rec["zs_acc"] + 5.0, norm_gain=5.0 / (100 - rec["zs_acc"]))
            if method == "bitfit" and d in (7, 8) and rec["status"] == "ok":  # tied outcomes
                rec = dict(rec, id_gain=3.25, ft_acc=rec["zs_acc"] + 3.25, norm_gain=3.25 / (100 - rec["zs_acc"]))
            out.append(rec)
    return out


def _plain(value):
    """JSON's view of a value: NaN and infinities as text (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def shown(at) -> dict:
    """What the page sent: each chart's spec, its datasets' names replaced by their order (the names are hashes
    of the bytes), each dataset's rows; and the fit table's rows."""
    charts = []
    for chart in at.get("vega_lite_chart"):
        spec = chart.proto.spec
        names = {}
        for k, dataset in enumerate(chart.proto.datasets):
            names[dataset.name] = f"dataset-{k}"
            spec = spec.replace(dataset.name, f"dataset-{k}")
        rows = {names[d.name]: pa.ipc.open_stream(io.BytesIO(d.data.data)).read_all().to_pylist()
                for d in chart.proto.datasets}
        charts.append({"spec": json.loads(spec), "datasets": rows})
    table = at.dataframe[0].value
    return _plain({"charts": charts, "fit_table": {"columns": list(table.columns),
                                                   "rows": table.astype(object).to_dict("records")}})


def _same(got, want, where="") -> None:
    """Equal, floats within 1e-9 (another machine's BLAS may differ in the last bits)."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), where
    elif isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), f"{where}: keys {list(got)} != {list(want)}"
        for key in want:
            _same(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {len(got)} items, not {len(want)}"
        for k, (g, w) in enumerate(zip(got, want)):
            _same(g, w, f"{where}[{k}]")
    else:
        assert got == want, where


def _run_page(results: Path, monkeypatch, tmp_path) -> dict:
    store.write_records_parquet(awkward_records(), results)
    shipped = tmp_path / "shipped"
    shipped.mkdir(exist_ok=True)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    st.cache_data.clear(), st.cache_resource.clear()
    at = page("compare").run()
    assert not at.exception, at.exception[0].message if at.exception else ""
    return shown(at)


def test_compare_page_shows_the_frozen_charts_and_table(tmp_path, monkeypatch):
    """Its first view took ~20 s at 44 methods x 300 datasets; made faster, it must show the same."""
    got = _run_page(tmp_path / "results", monkeypatch, tmp_path)
    want = json.loads(FROZEN.read_text(encoding="utf-8"))
    assert len(got["charts"]) == len(want["charts"]) == 12  # 6 tuned methods x 2 outcomes
    _same(got, want)


if __name__ == "__main__":  # write the frozen view again (only when what the page shows is meant to change)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        FROZEN.write_text(json.dumps(_run_page(Path(tmp) / "results", mp, Path(tmp)), indent=1, sort_keys=False,
                                     ensure_ascii=False) + "\n", encoding="utf-8")
    sys.exit(0)


def test_panels_find_each_methods_points_and_line_once(monkeypatch):
    """Each panel drew itself from the runs again: its method's seed means (one pass over every run per panel) and
    its line fitted twice (once for the panel's statistics, once to draw it): ~10 s of the page at 44 methods."""
    from core import charts, forecast
    from core.charts import iimm

    runs = store.records_to_frame(awkward_records())
    passes, fits = [], []
    points, fit_linear = iimm._points, forecast.fit_linear
    monkeypatch.setattr(iimm, "_points", lambda *a, **k: passes.append(1) or points(*a, **k))
    monkeypatch.setattr(forecast, "fit_linear", lambda *a, **k: fits.append(1) or fit_linear(*a, **k))
    panels = charts.iimm_panels_by_method(runs, "id_gain")
    assert len(panels) == 6 and len(passes) == 1
    assert len(fits) == 4  # bitfit, full, lora, my custom method; adapter (2 datasets) and IA³ (constant) unfitted


def test_leave_one_dataset_out_fits_each_fold_without_its_interval_matrix(monkeypatch):
    """Each of 300 folds built a whole LinearFit, inverse of D'D included, to predict one point's mean: ~2 s of the
    Compare page's fit table at 44 methods x 300 datasets. The predictions stay as they were (the frozen view)."""
    import numpy as np

    from core import forecast

    inverses, inv = [], np.linalg.inv
    monkeypatch.setattr(np.linalg, "inv", lambda a: inverses.append(1) or inv(a))
    x = np.linspace(0.1, 0.5, 300)
    out = forecast.leave_one_group_out(x, 30 * x + np.sin(np.arange(300)), [f"d{k}" for k in range(300)])
    assert out["n_groups"] == 300 and np.isfinite(out["predictions"]).all() and len(inverses) == 1  # all folds'


def test_leave_one_dataset_out_skips_the_folds_fit_linear_refuses():
    """x constant but for its 8th digit: a fold's D has full rank but D'D is singular in floating point, so
    fit_linear raises (LinAlgError) and LODO skipped that fold; fitting the folds without D'D's inverse predicted
    it, and the Compare page's LODO numbers were no longer as before."""
    import numpy as np

    from core import forecast

    x = np.array([7.0, 7.00000014, 7.0, 7.0, 7.00000007, 7.00000014])
    y = np.array([0.1, 0.2, 0.3, 0.15, 0.25, 0.05])
    out = forecast.leave_one_group_out(x, y, list("abcdef"))
    expected = np.full(6, np.nan)
    for k in range(6):  # each fold as fit_linear fits it, or refuses to (fold 'f' here, with numpy's LAPACK)
        kept = np.arange(6) != k
        try:
            expected[k] = forecast.fit_linear(x[kept], y[kept]).predict_mean(x[k:k + 1])[0]
        except ValueError:
            pass
    assert np.array_equal(out["predictions"], expected, equal_nan=True), (out["predictions"], expected)
    assert list(out["per_group"]) == list("abcdef")  # in the groups' order, NaN for a skipped fold
    assert np.array_equal(list(out["per_group"].values()), np.abs(expected - y), equal_nan=True)
