"""jobs.forecast's CSV table, whose method and dataset names come from the reference store others may write to: a
text cell that starts as a spreadsheet formula gets an apostrophe, as in the app's CSV downloads
(core.text.formula_safe); numbers stay numbers. (jobs.predictors' tables are read back by the app, matched on their
names, so they keep names as they are.)"""
from __future__ import annotations

import csv
import io

import pandas as pd

from core import store
from core.text import FORMULA_PREFIXES
from jobs import forecast as forecast_job
from tests.app_helpers import embeddings_npz
from tests.fixtures import make_fixture_records

HOSTILE_METHOD = "=HYPERLINK(\"http://x\",\"y\")"


def _cells(path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _formula_cells(rows: list[list[str]], numeric: set[str]) -> list[str]:
    """Cells a spreadsheet would run: text starting with a formula character (a number's '-' aside)."""
    head = rows[0]
    return [cell for row in rows[1:] for name, cell in zip(head, row, strict=True)
            if cell.startswith(FORMULA_PREFIXES) and name not in numeric]


def test_the_forecast_csv_puts_an_apostrophe_before_store_names_that_start_as_formulas(tmp_path, monkeypatch):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(tmp_path / "submitted"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    for record in make_fixture_records(n_datasets=8, pretrained="world-v1", noise=0.5,
                                       methods=("lora", HOSTILE_METHOD)):
        store.write_record(dict(record, dataset="@" + record["dataset"]), tmp_path / "results")
    (tmp_path / "emb.npz").write_bytes(embeddings_npz())
    out = tmp_path / "f.csv"
    assert forecast_job.main([str(tmp_path / "emb.npz"), "--model", "worldclip-tiny", "--out", str(out)]) == 0
    rows = _cells(out)
    written = pd.read_csv(out, keep_default_na=False)
    numbers = {c for c in written.columns if pd.api.types.is_numeric_dtype(written[c])}
    assert _formula_cells(rows, numbers) == []
    assert "'" + HOSTILE_METHOD in set(written["method"])
    assert written["not_checked"].str.startswith("'@fx-set-").all()  # an .npz: every reference dataset named
    assert (written.loc[written["method"] == "lora", "id_gain"] != 0).all()  # numbers as they were

