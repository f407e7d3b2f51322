"""What the store serves and exports is standard JSON (RFC 8259), whatever form another tool's Parquet gave it:
jq, JavaScript's JSON.parse and most JSON readers outside Python refuse the NaN and Infinity tokens."""
from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from core import store
from core.store.records import ARROW_SCHEMA, flatten
from tests.fixtures import make_fixture_records

#: Nested text another tool's json.dumps writes (Python's json reads it, so the row loads), and a plain text
TEXTS = {"provenance": '{"host": "a", "loss": NaN, "lr": [Infinity, -Infinity]}',
         "zero_shot": '{"iimm": 0.3, "silhouette": NaN}', "extra": '{"my_score": NaN}',
         "config": '{"note":  "NaN and Infinity in a string",   "lr": 0.1}'}


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not standard JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def runs(tmp_path):
    good, odd = (flatten(r) for r in make_fixture_records(n_datasets=2, methods=("full",)))
    root = tmp_path / "store"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist([good, {**odd, **TEXTS}], schema=ARROW_SCHEMA), root / "from-a-tool.parquet")
    loaded, skipped = store.load_runs_report([root])
    assert not skipped and len(loaded) == 2
    return loaded.set_index("run_id", drop=False).loc[[odd["run_id"]]]


def test_nan_in_a_parquet_rows_json_text_is_served_as_null_as_a_json_records_is(runs):
    """A .json record's NaN is stored as null (core.schema.json_text); the same row from another tool's Parquet
    kept its 'NaN' text, which the app's downloads and jobs.export then wrote in their JSON columns."""
    row = runs.iloc[0]
    assert _strict(row["provenance"]) == {"host": "a", "loss": None, "lr": [None, None]}
    assert _strict(row["zero_shot"]) == {"iimm": 0.3, "silhouette": None}
    assert _strict(row["extra"]) == {"my_score": None}
    assert row["config"] == TEXTS["config"]  # text without NaN/Infinity is served as it was written
    assert store.run_details(runs, row["run_id"])["zero_shot"] == {"iimm": 0.3, "silhouette": None}


def test_the_csv_and_parquet_downloads_hold_only_standard_json(runs):
    view = store.matching_runs(runs)
    table = pq.read_table(io.BytesIO(store.to_parquet_bytes(view)))
    csv = pa_csv.read_csv(io.BytesIO(store.to_csv_bytes(view)))  # jobs.export writes the same bytes
    for name in ("provenance", "zero_shot", "config"):  # the custom fields' column is not exported
        assert table[name].to_pylist() == csv[name].to_pylist() == [runs.iloc[0][name]]
        _strict(table[name][0].as_py())



def test_text_that_is_no_json_is_returned_as_it_was():
    # the rewrite's one try block read the text and checked it at once: text no json reads (a caller outside the
    # loader's flagged rows) raised UnboundLocalError instead of being handed back for its readers to refuse
    from core.store.validate import standard_text

    assert standard_text("{not json") == "{not json"
    assert standard_text('{"a": NaN}') == '{"a": null}' and standard_text(None) is None
