"""A submission or ingest refused for nesting depth says the limit, what it counts, why it holds and what to do: a
.json input's refusal read 'JSON nested 13 levels deep; the limit is 10' and no more."""
from __future__ import annotations

import json
import re
import zipfile

import pytest

from core import store
from core.store.validate import INPUT_DEPTH_NOTE, MAX_INPUT_DEPTH, RecordError, parse_json_bytes, parse_record_bytes
from jobs import ingest, submit
from tests.fixtures import make_fixture_records
from tests.store_helpers import submission_stores

EXPLAINED = (r"the limit is {limit} \({counted}, then its fields at most 8 levels: the schema's limit for config, "
             r"provenance and custom fields; deeper text is refused unread, so that it cannot exhaust the reader\. "
             r"Flatten the deeper values\)")
IN_A_LIST = EXPLAINED.format(limit=10, counted="a list of records, each record")
ALONE = EXPLAINED.format(limit=9, counted="the record object")


def _deep_record(levels: int = 11) -> dict:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return dict(make_fixture_records(n_datasets=1, methods=("lora",))[0], run_id="deep-1", provenance={"a": value})


def test_the_depth_refusals_say_the_limit_what_it_counts_and_why():
    raw = json.dumps([_deep_record()]).encode()
    with pytest.raises(RecordError, match=r"JSON nested 14 levels deep; " + IN_A_LIST):
        parse_json_bytes(raw, max_depth=MAX_INPUT_DEPTH, note=INPUT_DEPTH_NOTE)
    with pytest.raises(RecordError, match=r"JSON nested 13 levels deep; " + ALONE):
        parse_record_bytes(json.dumps(_deep_record()).encode())


@pytest.mark.parametrize("name, lines, said", [("rec.json", False, IN_A_LIST), ("list.json", True, IN_A_LIST),
                                               ("lines.jsonl", True, ALONE)])
def test_ingest_says_why_a_deep_record_is_refused(tmp_path, capsys, name, lines, said):
    rec = _deep_record()
    text = (json.dumps(rec) + "\n") if name.endswith(".jsonl") else json.dumps([rec] if lines else rec)
    (tmp_path / name).write_text(text, encoding="utf-8")
    assert ingest.main([str(tmp_path / name), "--into", str(tmp_path / "store")]) == 1
    out = capsys.readouterr().out
    assert "1 refused" in out and re.search(said, out), out  # whole: within the report's 300 characters a reason


def test_a_submission_says_why_a_deep_record_is_refused(tmp_path, monkeypatch, capsys):
    submission_stores(tmp_path, monkeypatch)
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("deep.json", json.dumps(_deep_record()))
    report = store.accept_submission(tmp_path / "s.zip")
    assert len(report.refused) == 1 and re.search(IN_A_LIST, report.refused[0][1]), report.refused
    assert submit.main([str(tmp_path / "s.zip")]) == 1
    assert re.search(IN_A_LIST, capsys.readouterr().out)
