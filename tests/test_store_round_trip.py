"""Round trips of the result store: write -> load -> compact / export -> ingest -> load keep every valid run."""
from __future__ import annotations

import json
import re

import pytest

from core import schema, store
from tests.fixtures import make_fixture_records


def _record(**changes):
    rec = make_fixture_records(n_datasets=1, methods=("full",))[0]
    rec.update(changes)
    return rec


def _write_or_refuse_then_compact(rec, root):
    """The record written, compacted and loaded again; None when the writer refused it."""
    try:
        store.write_record(rec, root)
    except store.RecordError:
        return None
    assert len(store.load_runs([root])) == 1
    store.compact(root)
    return store.load_runs_report([root])


def test_a_nested_field_the_writer_accepts_survives_compaction(tmp_path):
    """The size rule measured compact JSON, the store keeps ', '/': ' separators: a provenance of 65,531
    compact characters (75,000 stored) was written, then quarantined by the Parquet loader after compaction."""
    n = 6000
    while len(json.dumps({f"k{i:05d}": i for i in range(n)}, separators=(",", ":"))) > schema.MAX_NESTED_CHARS:
        n -= 10
    for k, count in enumerate((n, 4000)):  # over the limit as stored; well under it
        result = _write_or_refuse_then_compact(_record(provenance={f"k{i:05d}": i for i in range(count)}),
                                               tmp_path / f"case{k}")
        if result is not None:
            frame, skipped = result
            assert len(frame) == 1 and not skipped, skipped
        else:
            assert k == 0  # only the over-long one may be refused, and at write time


def test_custom_fields_within_their_limits_survive_compaction(tmp_path):
    """Each custom field may hold 64 KiB; the store keeps them all in one 'extra' column, which the
    Parquet loader held to 64 KiB in all: two 40,000-character fields were lost at compaction."""
    rec = _record(notes_a="a" * 40_000, notes_b="b" * 40_000)
    frame, skipped = _write_or_refuse_then_compact(rec, tmp_path)
    assert len(frame) == 1 and not skipped, skipped
    back = store.row_to_record(frame.iloc[0].to_dict())
    assert back["notes_a"] == rec["notes_a"] and back["notes_b"] == rec["notes_b"]


@pytest.mark.parametrize("newer", ["20260101T000000+0000", "2026-W01-1T00:00+00:00", "2026-01-01T00+00:00",
                                   "2026-01-01T00:00:00,5+00:00"])
def test_forms_of_time_duckdb_cannot_order_are_refused(tmp_path, newer):
    """Python reads these ISO-8601 forms, DuckDB's ordering cannot (NULL, sorted last): the older copy won.
    The schema refuses them at write time."""
    with pytest.raises(store.RecordError, match="created_at"):
        store.write_record(_record(created_at=newer, config={"copy": "newer"}), tmp_path / "b")


USUAL_TIMES = ["2025-06-30T23:59:59.999999+14:00", "2025-01-01T10:00:00Z", "2025-01-01 10:00-05:30",
               "2025-01-01T10:00:00.5+05:30:15"]


@pytest.mark.parametrize("at", USUAL_TIMES)
def test_times_in_the_usual_forms_stay_accepted(tmp_path, at):
    assert store.write_record(_record(created_at=at), tmp_path).exists()


@pytest.mark.parametrize("newer", USUAL_TIMES)
def test_the_newest_copy_wins_whatever_form_of_time_the_schema_accepts(tmp_path, newer):
    """Each of these is later than the older copy's time once its offset is applied (the first is 09:59:59 UTC
    on 2025-06-30, the last 04:29:44.5 UTC on 2025-01-01)."""
    store.write_record(_record(created_at="2025-01-01T00:00:00+00:00", config={"copy": "older"}), tmp_path / "a")
    store.write_record(_record(created_at=newer, config={"copy": "newer"}), tmp_path / "b")
    assert json.loads(store.load_runs([tmp_path])["config"].iloc[0]) == {"copy": "newer"}


def test_a_parquet_row_with_a_time_the_schema_refuses_is_skipped_not_served(tmp_path):
    """The Parquet loader never checked created_at: rows without an offset or with no time at all were served,
    sorted as no time, and an export of them could not be ingested again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    rows = [flatten(r) for r in make_fixture_records(n_datasets=3, methods=("full",))]
    rows[0]["created_at"], rows[1]["created_at"] = "2025-01-01T10:00:00", "not a time"
    (tmp_path / "store").mkdir()
    pq.write_table(pa.Table.from_pylist(rows, schema=store.ARROW_SCHEMA), tmp_path / "store" / "runs.parquet")
    frame, skipped = store.load_runs_report([tmp_path / "store"])
    assert frame["run_id"].tolist() == [rows[2]["run_id"]]
    assert len(skipped) == 2 and all("created_at" in s.reason for s in skipped)
    (tmp_path / "export.parquet").write_bytes(store.to_parquet_bytes(frame))
    report = store.ingest(tmp_path / "export.parquet", tmp_path / "copy", conflict_roots=[])
    assert report.accepted == [rows[2]["run_id"]] and not report.refused


def test_a_parquet_column_the_store_has_no_column_for_is_kept_as_a_custom_field(tmp_path):
    """A JSON record's unknown keys are kept as custom fields; a Parquet input's unknown columns were dropped
    without a word (a newer schema's field, a team's own measure)."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import flatten

    a, b = (flatten(r) for r in make_fixture_records(n_datasets=2, methods=("full",)))
    frame = pd.DataFrame([a, b], index=["x", "y"]).assign(new_metric=[0.5, None], note=["🙂 ü", "plain"])
    frame.to_parquet(tmp_path / "runs.parquet")  # with a named index: not a field
    report = store.ingest(tmp_path / "runs.parquet", tmp_path / "copy", conflict_roots=[])
    assert len(report.accepted) == 2 and not report.refused, report.refused
    back = {r["run_id"]: store.row_to_record(r) for r in store.load_runs([tmp_path / "copy"]).to_dict("records")}
    assert back[a["run_id"]]["new_metric"] == 0.5 and back[a["run_id"]]["note"] == "🙂 ü"
    assert "new_metric" not in back[b["run_id"]] and back[b["run_id"]]["note"] == "plain"
    assert not any("__index_level_0__" in r for r in back.values())
    clash = pa.Table.from_pylist([dict(a, extra='{"note": 1}', note="2")])
    pq.write_table(clash, tmp_path / "clash.parquet")
    report = store.ingest(tmp_path / "clash.parquet", tmp_path / "copy2", conflict_roots=[])
    assert not report.accepted and "note" in report.refused[0][1]


def test_a_parquet_column_json_cannot_hold_is_named_in_the_refusal(tmp_path):
    """Since Parquet columns are kept as custom fields, a column of times (pandas writes them often) refused every
    row with "a nested field holds a value JSON cannot store ('datetime is not JSON')", naming no column."""
    import pandas as pd

    from core.store.records import flatten

    a, b = (flatten(r) for r in make_fixture_records(n_datasets=2, methods=("full",)))
    frame = pd.DataFrame([a, b]).assign(exported_on=[pd.Timestamp("2025-01-01", tz="UTC"), None],
                                        tags=[["x", "y"], None])
    frame.to_parquet(tmp_path / "runs.parquet", index=False)
    report = store.ingest(tmp_path / "runs.parquet", tmp_path / "copy", conflict_roots=[])
    assert report.accepted == [b["run_id"]]  # its cell is null: no field, nothing to refuse
    (where, reason), = report.refused
    assert where.endswith("runs.parquet:1") and "column 'exported_on' holds timestamp" in reason


def _ood(before, after, change):
    return _record(ood_sets=sorted(before), ood_before=before, ood_after=after, ood_change=change)


@pytest.mark.parametrize("rec, loads", [
    (_ood({"a/b": 60.0, "c~d": 40.0}, {"a/b": 58.0, "c~d": 41.0}, -0.5), True),  # consistent, awkward names
    (_ood({"a": 60.0, "b": 40.0}, {"a": 58.0, "b": 41.0}, 3.0), False),          # inconsistent
    (_ood({"a": 60.0, "b": None}, {"a": 58.0, "b": 41.0}, 3.0), True),           # a missing value: not checked
    (_ood({"a": 60.0}, {"b": 58.0}, 3.0), False),                                # other sets: a change unconfirmed
    (_ood({"a": 60.0}, {"b": 58.0}, None), True),                                # other sets, no change claimed
    (_ood({"a": 60.0, "b": 40.0}, {"b": 41.0, "a": 58.0}, -0.5), True),          # one set, keys in another order
    (_ood({"a": 60.0}, {"a": 101.0}, None), False),                              # out of range
    (_ood({"a": 60.0}, {"a": True}, None), False),                               # not a number
    (_ood({}, {}, None), True),
], ids=["consistent", "inconsistent", "missing-value", "other-sets", "other-sets-no-change", "keys-reordered", "out-of-range", "a-bool",
      "empty"])
def test_parquet_rows_pass_the_ood_rules_exactly_where_json_records_do(tmp_path, rec, loads):
    """The Parquet path checked ood_change only for type: a row showed +3 where its own OOD tables gave -0.5."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    (tmp_path / "json").mkdir()
    (tmp_path / "json" / f"{rec['run_id']}.json").write_text(json.dumps(rec), encoding="utf-8")
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.Table.from_pylist([flatten(rec)], schema=ARROW_SCHEMA), tmp_path / "pq" / "runs.parquet")
    (json_runs, json_skipped), (parquet_runs, parquet_skipped) = (store.load_runs_report([tmp_path / k])
                                                                  for k in ("json", "pq"))
    assert len(json_runs) + len(json_skipped) == 1 and len(parquet_runs) + len(parquet_skipped) == 1
    assert len(json_runs) == len(parquet_runs) == int(loads), (json_skipped, parquet_skipped)


def _verdicts_on_text(tmp_path, **texts):
    """(JSON loads, Parquet loads) for the fixture record with nested fields given as raw JSON ``texts``: the
    same text spliced into a .json record file and written as the Parquet cell."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    rec = _record(ood_change=None)
    marked = json.dumps({**rec, **{k: f"@{k}@" for k in texts}})
    for name, text in texts.items():
        marked = marked.replace(f'"@{name}@"', text)
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / f"{rec['run_id']}.json").write_text(marked, encoding="utf-8")
    (tmp_path / "pq").mkdir()
    row = {**flatten(rec), **texts}
    pq.write_table(pa.Table.from_pylist([row], schema=ARROW_SCHEMA), tmp_path / "pq" / "runs.parquet")
    return tuple(len(store.load_runs_report([tmp_path / k])[0]) == 1 for k in ("json", "pq"))


@pytest.mark.parametrize("name", ["ood_before", "ood_after", "zero_shot", "transferability", "provenance", "config"])
def test_a_json_null_in_an_object_field_loads_from_parquet_as_from_json(tmp_path, name):
    """A JSON record with "provenance": null loads (absent is allowed); the same row in a Parquet file written by
    another tool (json.dumps(None) -> the text 'null') loaded until a5a2414 and was then skipped as 'must be a JSON
    object'."""
    assert _verdicts_on_text(tmp_path, **{name: "null"}) == (True, True)


@pytest.mark.parametrize("before, after, change", [
    ('{"a": 10, "a": 20}', '{"a": 40, "a": 30}', 10.0),   # JSON keeps the last value: 30 - 20
    ('{"a": 250, "a": 20}', '{"a": 30}', 10.0),           # a value JSON never sees is out of range
    ('{"a": "x", "a": 20}', '{"a": 30}', 10.0),           # ... or not a number
])
def test_a_repeated_dataset_name_never_makes_parquet_refuse_what_json_loads(tmp_path, before, after, change):
    """JSON text may repeat a key, and a .json record keeps its last value; the Parquet rules read every value
    (json_extract '$.*'), so these rows were skipped from Parquet as out of range or inconsistent while the
    same .json records load."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    rec = _record(ood_sets=["a"], ood_change=change)
    marked = json.dumps({**rec, "ood_before": "@B@", "ood_after": "@A@"})
    (tmp_path / "json").mkdir()
    (tmp_path / "json" / "r.json").write_text(marked.replace('"@B@"', before).replace('"@A@"', after), encoding="utf-8")
    (tmp_path / "pq").mkdir()
    pq.write_table(pa.Table.from_pylist([{**flatten(rec), "ood_before": before, "ood_after": after}],
                                        schema=ARROW_SCHEMA), tmp_path / "pq" / "runs.parquet")
    json_runs, parquet_runs = (store.load_runs_report([tmp_path / k])[0] for k in ("json", "pq"))
    assert len(json_runs) == 1 and len(parquet_runs) == 1


#: Nested text DuckDB's json_valid accepts and Python's json refuses: a trailing comma, nan/inf spelled other than
#: NaN/Infinity/-Infinity, an integer longer than Python reads (4300 digits).
ONLY_DUCKDB_READS = [("provenance", '{"host": "a",}'), ("config", '{"lr": [0.1, 0.2,]}'),
                     ("ood_sets", '["a", "b" ,\n]'), ("ood_before", '{"a": 60.0,}'), ("zero_shot", '{"iimm": nan}'),
                     ("transferability", '{"logme": -NaN}'), ("config", '{"steps": [INF]}'),
                     ("provenance", '{"n": ' + "9" * 5000 + "}")]


@pytest.mark.parametrize("name, text", ONLY_DUCKDB_READS,
                         ids=["comma", "comma-list", "comma-newline", "comma-ood", "nan", "minus-nan", "inf", "digits"])
def test_json_text_only_duckdb_reads_is_refused_from_parquet_as_from_json(tmp_path, name, text):
    """The Parquet rules checked nested text with DuckDB's lenient json_valid: such a row loaded (its .json record
    is refused), pages showed it without the field, jobs.predictors crashed on it and its export was refused."""
    assert _verdicts_on_text(tmp_path, **{name: text}) == (False, False)
    (skipped,) = store.load_runs_report([tmp_path / "pq"])[1]
    assert re.search(rf"field '{name}' is not standard JSON text \(", skipped.reason), skipped.reason
    with pytest.raises(ValueError, match=f"column '{name}' does not hold JSON text"):  # what every reader meets
        store.row_to_record({name: text})


@pytest.mark.parametrize("name, text", [
    ("provenance", '{"a": NaN, "b": -Infinity, "c": Infinity}'),  # what Python's json reads (and writes)
    ("provenance", '{"note": "a, ] b, } : nan [inf -NaN"}'),     # the patterns, inside a string
    ("config", '{"x": [], "y": {}, "z": [null, true, false], "n": -1e400}'),
], ids=["python-nan", "in-a-string", "plain"])
def test_json_text_both_readers_accept_still_loads_from_parquet(tmp_path, name, text):
    assert _verdicts_on_text(tmp_path, **{name: text}) == (True, True)


def test_a_row_only_duckdb_reads_is_skipped_not_served_to_readers_or_exports(tmp_path):
    """expand_predictor_columns (jobs.predictors, the predictor tables) raised JSONDecodeError on the served row, and an
    export of the store was refused by ingest: the row is skipped, with the reason, as every other invalid row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core import forecast
    from core.store.records import ARROW_SCHEMA, flatten

    good, bad = (flatten(r) for r in make_fixture_records(n_datasets=2, methods=("full",)))
    bad["zero_shot"] = '{"iimm": 0.3,}'
    (tmp_path / "store").mkdir()
    pq.write_table(pa.Table.from_pylist([good, bad], schema=ARROW_SCHEMA), tmp_path / "store" / "runs.parquet")
    runs = store.load_runs([tmp_path / "store"])
    assert runs["run_id"].tolist() == [good["run_id"]]
    assert "field 'zero_shot' is not standard JSON text" in store.skipped_summary(store.skipped_records(runs))
    assert "zs_iimm" in forecast.expand_predictor_columns(runs).columns
    (tmp_path / "export.parquet").write_bytes(store.to_parquet_bytes(runs))
    report = store.ingest(tmp_path / "export.parquet", tmp_path / "copy", conflict_roots=[])
    assert report.accepted == [good["run_id"]] and not report.refused


def test_a_foreign_parquet_file_beside_compactions_own_is_still_checked(tmp_path):
    """Compaction's own files (Python's json wrote their text) skip the scan for text only DuckDB reads; a Parquet
    file from elsewhere in the same store must not skip it with them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    kept, other, bad = make_fixture_records(n_datasets=3, methods=("full",))
    root = tmp_path / "store"
    store.write_record(kept, root)
    store.compact(root)
    assert [p.name.startswith("compacted-") for p in root.glob("*.parquet")] == [True]
    bad = {**flatten(bad), "provenance": '{"host": "a",}'}
    pq.write_table(pa.Table.from_pylist([flatten(other), bad], schema=ARROW_SCHEMA), root / "from-a-tool.parquet")
    runs, skipped = store.load_runs_report([root])
    assert sorted(runs["run_id"]) == sorted([kept["run_id"], other["run_id"]])
    assert [s.reason for s in skipped] == ["field 'provenance' is not standard JSON text (Expecting property name "
                                           "enclosed in double quotes: line 1 column 14 (char 13))"]


@pytest.mark.parametrize("text, loads", [("[1, 2]", False), ('["a", null]', False), ('["a", ["b"]]', False),
                                         ('["a",2]', False), ('[ "a" ,\n {}]', False), ('{"a": "b"}', False),
                                         ('"a"', False), ("3", False), ('["a", "b"]', True), ("[]", True),
                                         ("null", True), ('["a, 1", "[2"]', True), (' [ "a","b" ]', True)])
def test_parquet_ood_sets_pass_exactly_where_json_records_do(tmp_path, text, loads):
    """Only a list of names is ood_sets in a .json record; the Parquet rules checked its text was JSON, so [1, 2]
    loaded from Parquet and its export was refused by ingest."""
    assert _verdicts_on_text(tmp_path, ood_sets=text) == (loads, loads)


@pytest.mark.parametrize("text, loads", [("[1]", False), ("3", False), ('"a"', False), ("[]", False),
                                         ('{"note": "a"}', True), ("{}", True), ("null", True)])
def test_a_parquet_custom_fields_column_that_is_not_an_object_is_skipped(tmp_path, text, loads):
    """The custom fields' column (extra) holding [1] or 3 loaded; every reader of the row then met ValueError from
    row_to_record (run_details fell back, an export was refused by ingest, an ingest of the same run_id raised)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    rec = _record()
    root = tmp_path / "store"
    root.mkdir()
    pq.write_table(pa.Table.from_pylist([{**flatten(rec), store.EXTRA_COLUMN: text}], schema=ARROW_SCHEMA),
                   root / "runs.parquet")
    runs, skipped = store.load_runs_report([root])
    assert len(runs) == int(loads)
    if not loads:
        assert [s.reason for s in skipped] == ["field 'extra' must be a JSON object of custom fields"]
        return
    back = store.row_to_record(runs.iloc[0].to_dict())  # what every reader does
    assert schema.validate_record(back)["run_id"] == rec["run_id"]
    (tmp_path / "export.parquet").write_bytes(store.to_parquet_bytes(runs))
    report = store.ingest(tmp_path / "export.parquet", tmp_path / "copy", conflict_roots=[])
    assert report.accepted == [rec["run_id"]] and not report.refused


def _nested(depth):
    """JSON text of brackets nested ``depth`` levels, with brackets inside strings that do not count."""
    return "[" * (depth - 1) + '{"a]": "[{"}' + "]" * (depth - 1)


@pytest.mark.parametrize("name, depth, loads", [("config", 8, True), ("config", 9, False), ("ood_before", 9, False),
                                                ("zero_shot", 40, False), ("zero_shot", 3000, False),
                                                ("ood_sets", 9, False), ("provenance", 8, True)])
def test_parquet_nested_text_is_held_to_the_depth_a_json_record_is(tmp_path, name, depth, loads):
    """Nested text deeper than a .json record may hold it loaded from Parquet: its export was refused by ingest,
    run_details showed the field as missing, and past Python's recursion limit jobs.predictors crashed on it."""
    from core import forecast

    text = '{"x": ' + _nested(depth - 1) + "}" if name in schema.OBJECT_FIELDS else _nested(depth)
    assert _verdicts_on_text(tmp_path, **{name: text}) == (loads, loads)
    runs, skipped = store.load_runs_report([tmp_path / "pq"])
    if not loads and name not in ("ood_before", "ood_sets"):  # which their shape rules refuse first
        assert [s.reason for s in skipped] == [f"field {name!r} is nested deeper than {schema.MAX_NESTED_DEPTH} levels"]
    forecast.expand_predictor_columns(runs)


@pytest.mark.parametrize("depth, loads", [(8, True), (9, False)])
def test_parquet_custom_fields_are_held_to_the_depth_a_json_record_is(tmp_path, depth, loads):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.store.records import ARROW_SCHEMA, flatten

    rec = _record()
    (tmp_path / "pq").mkdir()
    row = {**flatten(rec), store.EXTRA_COLUMN: '{"note": ' + _nested(depth) + "}"}
    pq.write_table(pa.Table.from_pylist([row], schema=ARROW_SCHEMA), tmp_path / "pq" / "runs.parquet")
    runs, skipped = store.load_runs_report([tmp_path / "pq"])
    assert len(runs) == int(loads)
    if loads:
        assert schema.validate_record(store.row_to_record(runs.iloc[0].to_dict()))
    else:
        assert [s.reason for s in skipped] == [f"a custom field is nested deeper than {schema.MAX_NESTED_DEPTH} levels"]
