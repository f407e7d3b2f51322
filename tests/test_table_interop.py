"""The shipped result tables read back by other tools: DuckDB, with the reader option README.md gives, types every
column as pandas does and gives the same values. Plain auto-detection typed world v1's `inf`-only
``jackknife_plus_mean_width`` as a DATE (9999-12-31), and `inf` among numbers as text. And the runs' CSV, read with the
text columns README.md names, gives number-like text back as text."""
from __future__ import annotations

import math
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.schema import csv_text

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
SHIPPED = sorted((REPO / "jobs" / "results").rglob("*.csv"))


def _readme_option() -> str:
    """The reader option README.md's DuckDB example passes to read_csv (the test fails when README gives none)."""
    found = re.search(r"read_csv\('jobs/results/[\w./-]+\.csv', (auto_type_candidates = \[[^\]]+\])\)", README)
    assert found, "README.md gives no DuckDB read_csv option for the result tables"
    return found.group(1)


def _duckdb(path: Path) -> tuple[dict[str, str], pd.DataFrame]:
    """``path`` read as README.md says: each column's DuckDB type and the values (as Python objects)."""
    with duckdb.connect() as con:
        rel = con.sql(f"SELECT * FROM read_csv(?, {_readme_option()})", params=[str(path)])
        types = dict(zip(rel.columns, map(str, rel.types)))
        rows = rel.fetchall()
    return types, pd.DataFrame(rows, columns=list(types), dtype=object)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(duck: object, pandas: object) -> bool:
    """One cell read by DuckDB and by pandas holds the same value (a missing one: None or NaN)."""
    if _missing(duck) or _missing(pandas):
        return _missing(duck) and _missing(pandas)
    if isinstance(pandas, str) or isinstance(duck, str):
        return isinstance(pandas, str) and isinstance(duck, str) and duck == pandas
    return duck == pandas  # numbers (inf among them) and booleans


def _check(path: Path) -> list[str]:
    """What in ``path`` DuckDB (README's option) reads otherwise than pandas: wrong types or other values."""
    types, duck = _duckdb(path)
    frame = pd.read_csv(path)
    problems = [] if list(types) == list(frame.columns) else [f"columns differ: {list(types)}"]
    for name in frame.columns:
        column = frame[name]
        if column.isna().all():  # no value: DuckDB calls it text, pandas float; README says to cast it
            if duck[name].notna().any():
                problems.append(f"{name}: empty in pandas, not in DuckDB")
            continue
        want = ("BIGINT",) if pd.api.types.is_integer_dtype(column) else (
            ("DOUBLE", "BIGINT") if pd.api.types.is_float_dtype(column) else
            ("BOOLEAN",) if pd.api.types.is_bool_dtype(column) else ("VARCHAR",))
        if types[name] not in want:
            problems.append(f"{name}: DuckDB types it {types[name]}, pandas {column.dtype}")
            continue
        differ = [i for i, (a, b) in enumerate(zip(duck[name], column)) if not _same(a, b)]
        if differ:
            problems.append(f"{name}: row {differ[0]} is {duck[name][differ[0]]!r} in DuckDB, "
                            f"{column[differ[0]]!r} in pandas")
    return problems


def test_the_shipped_tables_are_there_and_some_hold_inf():
    assert len(SHIPPED) >= 20
    assert any(np.isinf(pd.read_csv(p).select_dtypes("number").to_numpy()).any() for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(REPO)) for p in SHIPPED])
def test_duckdb_reads_each_shipped_table_as_pandas_does(path):
    assert _check(path) == []


def test_a_table_the_jobs_write_with_inf_among_numbers_reads_back_as_numbers(tmp_path):
    """The writers' own form (core.schema.csv_text with the jobs' float format): inf alone, inf among numbers."""
    frame = pd.DataFrame({"method": ["lora", "bitfit", "full"], "n": [15, 40, 3], "ok": [True, False, True],
                          "width": [math.inf, math.inf, math.inf], "lo": [-math.inf, 1.25, math.nan],
                          "note": ["a, b", "", "inf"]})
    path = tmp_path / "table.csv"
    path.write_text(csv_text(frame, float_format="%.6g"), encoding="utf-8")
    assert _check(path) == []
    types, duck = _duckdb(path)
    assert (types["width"], types["lo"]) == ("DOUBLE", "DOUBLE") and duck["width"].tolist() == [math.inf] * 3


def _text_columns() -> list[str]:
    """The runs' CSV columns README.md says to read as text (the test fails when README names none)."""
    found = re.search(r"Name its text columns \(((?:`\w+`,?\s*)+)\) as text", README)
    assert found, "README.md names no text columns for reading the runs' CSV"
    return re.findall(r"`(\w+)`", found.group(1))


def test_readme_names_every_text_field_of_the_runs_csv():
    from core import schema

    texts = [name for name, (kind, _) in schema.SCALAR_FIELDS.items() if kind is str and name != "created_at"]
    assert sorted(_text_columns()) == sorted(texts)  # created_at: DuckDB reads a time, pandas text


def test_the_runs_csv_of_number_like_text_reads_back_as_text(tmp_path):
    """A download of few runs: a run_id, a pretrained tag and a dataset that look like numbers came back as numbers
    (pandas and DuckDB: 386310615e821832, a shipped run's id, as infinity; pandas: 0123 as 123)."""
    from core import store
    from tests.fixtures import make_fixture_records

    records = make_fixture_records(n_datasets=2, methods=("full",))
    looks = [{"run_id": "386310615e821832", "pretrained": "2024", "dataset": "1e3"},
             {"run_id": "0123", "pretrained": "2025", "dataset": "0042"}]
    for record, fields in zip(records, looks):
        store.write_record({**record, **fields}, tmp_path / "results")
    runs = store.load_runs([tmp_path / "results"]).sort_values("run_id", ignore_index=True)
    path = tmp_path / "runs.csv"
    path.write_bytes(store.to_csv_bytes(runs))
    text = _text_columns()
    frame = pd.read_csv(path, dtype=dict.fromkeys(text, str))
    types = ", ".join(f"'{name}': 'VARCHAR'" for name in text)
    with duckdb.connect() as con:
        duck = con.sql(f"SELECT * FROM read_csv(?, types = {{{types}}})", params=[str(path)]).df()
    for read in (frame, duck):
        for name in ("run_id", "pretrained", "dataset", "model", "method"):
            assert read[name].tolist() == runs[name].tolist(), name
        assert read["seed"].tolist() == runs["seed"].tolist()


def test_the_runs_parquet_created_at_reads_as_a_time_the_way_readme_says(tmp_path):
    """README: the runs' Parquet keeps created_at as each record's ISO 8601 text; DuckDB's ``::TIMESTAMPTZ`` and
    pandas' ``to_datetime(..., utc=True, format="ISO8601")`` read it as the same moments, offsets included."""
    from core import store
    from tests.fixtures import make_fixture_records

    assert 'created_at::TIMESTAMPTZ' in README and 'utc=True, format="ISO8601"' in README
    written = ["2026-12-01T10:00:00.123456+00:00", "2026-12-01T15:30:00+05:30", "2026-12-01T02:00:00-08:00"]
    for record, moment in zip(make_fixture_records(n_datasets=3, methods=("full",)), written):
        store.write_record({**record, "created_at": moment}, tmp_path / "results")
    runs = store.load_runs([tmp_path / "results"])
    path = tmp_path / "runs.parquet"
    path.write_bytes(store.to_parquet_bytes(runs))
    expected = sorted(pd.Timestamp(moment).tz_convert("UTC") for moment in written)
    assert sorted(pd.read_parquet(path)["created_at"]) == sorted(written)  # the records' own text, offsets kept
    by_pandas = pd.to_datetime(pd.read_parquet(path)["created_at"], utc=True, format="ISO8601")
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        by_duckdb = con.sql("SELECT created_at::TIMESTAMPTZ AS t FROM read_parquet(?)", params=[str(path)]).df()["t"]
    assert sorted(by_pandas) == expected
    assert sorted(pd.to_datetime(by_duckdb, utc=True)) == expected


def test_the_readme_examples_of_number_like_text_are_what_each_reader_does(tmp_path):
    """README's examples of the runs' CSV read without the text columns named, checked reader by reader: a run_id
    ``386310615e821832`` alone is infinity and a pretrained tag ``2024`` an integer in pandas and DuckDB alike, but a
    run_id ``0123`` is 123 in pandas only (DuckDB keeps a number with a leading zero as text), so README must not say
    DuckDB reads it as 123."""
    from core import store
    from tests.fixtures import make_fixture_records

    record = make_fixture_records(n_datasets=1, methods=("full",))[0]
    read = {}
    for name, fields in (("inf", {"run_id": "386310615e821832", "pretrained": "2024"}), ("zero", {"run_id": "0123"})):
        folder = tmp_path / name
        store.write_record({**record, **fields}, folder)
        path = tmp_path / f"{name}.csv"
        path.write_bytes(store.to_csv_bytes(store.load_runs([folder])))
        with duckdb.connect() as con:
            duck = con.sql("SELECT run_id, pretrained FROM read_csv(?)", params=[str(path)]).fetchall()[0]
        read[name] = (pd.read_csv(path).loc[0, ["run_id", "pretrained"]].tolist(), list(duck))
    (pandas_inf, duck_inf), (pandas_zero, duck_zero) = read["inf"], read["zero"]
    assert pandas_inf == [math.inf, 2024] and duck_inf == [math.inf, 2024]
    assert pandas_zero[0] == 123 and duck_zero[0] == "0123"
    sentence = " ".join(README[README.index("In the runs' CSV"):README.index("Name its text columns")].split())
    assert "`386310615e821832` alone comes back as infinity" in sentence and "`2024` as an integer" in sentence
    assert "`0123` as 123 in pandas" in sentence, "README says DuckDB reads a run_id 0123 as 123: it keeps the text"
