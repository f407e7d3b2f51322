"""The shipped result tables read back by other tools: DuckDB, with the reader option README.md gives, types every
column as pandas does and gives the same values. Plain auto-detection typed world v1's `inf`-only
``jackknife_plus_mean_width`` as a DATE (9999-12-31), and `inf` among numbers as text."""
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
