"""CSV the project writes (core.schema.csv_text: jobs.export, the All runs download, jobs.forecast, jobs.predictors,
jobs.reproduce, ...) read back by other readers as the same rows and values (RFC 4180)."""
from __future__ import annotations

import csv
import io

import duckdb
import pandas as pd
import pytest

from core import store
from core.schema import csv_text

#: values the store accepts in its text fields (a record's name, an error message holding a progress bar's '\r')
AWKWARD = ["step 1\rstep 2", "two\nlines", "crlf\r\nline", 'a "quoted", name', "\rstarts", "plain"]


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("write", [csv_text, lambda f: store.to_csv_bytes(f).decode("utf-8")],
                         ids=["csv_text", "to_csv_bytes"])
def test_a_carriage_return_in_a_value_is_quoted_so_every_reader_gets_the_rows_back(tmp_path, write):
    """Python's csv writer quotes a field only for the characters of its line end ('\\n' here), so 'step 1\\rstep 2'
    was written bare: Python's csv reader and pandas split its row in two and DuckDB could not read the file."""
    frame = pd.DataFrame({"name": AWKWARD, "gain": [1.5, -0.25, 0.0, 2.0, None, 3.0]})
    text = write(frame)
    shown = [("'" + v if v.startswith("\r") else v) for v in AWKWARD] if write is not csv_text else AWKWARD
    assert _rows(text) == [["name", "gain"], *([v, g] for v, g in zip(shown, ["1.5", "-0.25", "0.0", "2.0", "", "3.0"]))]
    back = pd.read_csv(io.StringIO(text, newline=""))
    assert back["name"].tolist() == shown and len(back) == len(frame)
    (tmp_path / "t.csv").write_text(text, encoding="utf-8", newline="")
    assert [r[0] for r in duckdb.sql(f"SELECT name FROM read_csv('{tmp_path / 't.csv'}')").fetchall()] == shown


def test_without_a_carriage_return_lines_still_end_with_a_newline_alone():
    frame = pd.DataFrame({"name": ["two\nlines", 'a "quoted", name'], "n": [1, 2]})
    assert csv_text(frame) == 'name,n\n"two\nlines",1\n"a ""quoted"", name",2\n'
