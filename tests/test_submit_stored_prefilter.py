"""The readers' formula check of stored submissions (core.store.formulas) walks a record only where its text could
hold a string that starts with = + - @, a tab or a carriage return: a clean submitted record costs a pattern search,
not a walk of the parsed record (JSON) or a row turned back into a record (Parquet), and every spelling JSON has for
such a string is still found."""
from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import store
from core.store import formulas
from core.store.records import record_bytes
from core.text import FORMULA_PREFIXES
from tests.fixtures import make_fixture_records

REASON = r"starts with = \+ - @.*stored before submissions were checked for it: not loaded"


def _submitted(n_datasets=3):
    return [dict(r, source=store.SUBMITTED_SOURCE, claimed_source=r["source"])
            for r in make_fixture_records(n_datasets=n_datasets, methods=("lora", "bitfit"))]


@pytest.fixture
def walks(monkeypatch):
    """The records formula_problem was asked to walk (run_ids)."""
    seen: list = []
    walk = formulas.formula_problem

    def counted(record):
        seen.append(record.get("run_id") if isinstance(record, dict) else record)
        return walk(record)
    monkeypatch.setattr(formulas, "formula_problem", counted)
    return seen


@pytest.mark.parametrize("layout", ["json", "parquet"])
def test_clean_submitted_records_are_read_without_walking_each_one(tmp_path, walks, layout):
    """A cold read of 20,000 clean submitted records walked every one: 5-10 s of Parquet rows turned back into
    records where the read took 0.3-0.6 s, 0.9 s of a 5 s read of .json files. None needs it."""
    recs = _submitted()
    if layout == "json":
        for rec in recs:
            (tmp_path / f"{rec['run_id']}.json").write_bytes(record_bytes(rec))
    else:
        store.write_records_parquet(recs, tmp_path)
    runs = store.load_runs([tmp_path])
    assert sorted(runs["run_id"]) == sorted(r["run_id"] for r in recs) and not store.skipped_records(runs)
    assert walks == []


# Each character a formula may start with, as JSON text may spell it at the start of a string.
SPELLINGS = [(p, s) for p in FORMULA_PREFIXES
             for s in ({json.dumps(p)[1:-1], f"\\u{ord(p):04x}", f"\\u{ord(p):04X}"})]


@pytest.mark.parametrize("prefix,spelt", SPELLINGS, ids=[repr(s) for _, s in SPELLINGS])
@pytest.mark.parametrize("as_key", [False, True])
def test_every_json_spelling_of_a_formula_start_in_a_json_record_is_still_refused(tmp_path, walks, prefix, spelt,
                                                                                   as_key):
    hostile, clean = _submitted(n_datasets=1)[:2]
    marker = "MARKER"
    hostile = dict(hostile, run_id="old-hostile",
                   config=dict(hostile["config"], **({marker: "x"} if as_key else {"note": marker})))
    raw = record_bytes(hostile).replace(f'"{marker}"'.encode(), f'"{spelt}1+1"'.encode())
    config = json.loads(raw)["config"]
    assert config[f"{prefix}1+1"] == "x" if as_key else config["note"] == f"{prefix}1+1"
    (tmp_path / "old-hostile.json").write_bytes(raw)
    (tmp_path / f"{clean['run_id']}.json").write_bytes(record_bytes(clean))
    runs = store.load_runs([tmp_path])
    assert list(runs["run_id"]) == [clean["run_id"]]
    assert re.search(REASON, store.skipped_records(runs)[0].reason)
    assert walks == ["old-hostile"]


PARQUET_CASES = [(p, s, c) for p, s in SPELLINGS for c in ("config", "extra")] + \
    [(p, p, "method") for p in FORMULA_PREFIXES]


@pytest.mark.parametrize("prefix,spelt,column", PARQUET_CASES, ids=[f"{c}-{s!r}" for _, s, c in PARQUET_CASES])
def test_every_spelling_of_a_formula_start_in_a_parquet_row_is_still_refused(tmp_path, walks, prefix, spelt, column):
    """In a nested column's JSON text (a value in config, a custom field's name in extra) as JSON may spell it, and
    in a plain text column as the character itself."""
    recs = _submitted(n_datasets=1)[:2]
    recs[0] = dict(recs[0], run_id="old-hostile", **({"custom": 1} if column == "extra" else {}))
    path = store.write_records_parquet(recs, tmp_path)
    table = pq.read_table(path)
    texts = table[column].to_pylist()
    if column == "config":
        texts[0] = texts[0].replace('"lora"', f'"{spelt}lora"', 1)
    elif column == "extra":
        texts[0] = texts[0].replace('"custom"', f'"{spelt}custom"', 1)
    else:
        texts[0] = prefix + texts[0]
    assert texts[0] != table[column][0].as_py()
    pq.write_table(table.set_column(table.column_names.index(column), column, pa.array(texts, pa.string())), path)
    runs = store.load_runs([tmp_path])
    assert list(runs["run_id"]) == [recs[1]["run_id"]]
    assert re.search(REASON, store.skipped_records(runs)[0].reason)
    assert walks == ["old-hostile"]


@pytest.mark.parametrize("kind", ["struct", "list"])
def test_a_nested_column_of_another_type_than_text_is_walked_not_passed(kind):
    """flag_submitted_rows given a nested column as Parquet's own struct or list type (not the JSON text the loader
    casts every column to): the pattern search cannot read it, so its rows are walked, and the formula one is
    flagged; a search that passed it left that row unflagged."""
    values = ([{"optimizer": "=1+1"}, {"optimizer": "adamw"}] if kind == "struct" else [["-2+3"], ["cifar10"]])
    table = pa.table({"run_id": ["old-hostile", "clean"], "source": [store.SUBMITTED_SOURCE] * 2,
                      "config" if kind == "struct" else "ood_sets": values,
                      "_reason": pa.array([None, None], pa.string())})
    reasons = formulas.flag_submitted_rows(table)["_reason"].to_pylist()
    assert reasons[1] is None
    assert re.search(REASON, reasons[0] or "")
