"""Members of JSON text columns read in DuckDB, where DuckDB reads the text as Python's json does.

A page that takes a few top-level members out of every run's provenance text parsed each text with
``json.loads``: 0.3-0.8 s for one model's 25,000 runs (``python -m jobs.bench_app``). DuckDB's reader takes them
out of all texts at once, but it reads more than Python's json does and reads some text differently, so
:func:`top_level_members` names the texts where the two might differ, for the caller to parse in Python as before.
Nothing here imports Streamlit.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

import duckdb
import numpy as np
import pyarrow as pa

from core.store.validate import LENIENT_JSON_PATTERNS

#: Python's json refuses an integer longer than this (0: no limit)
_DIGITS = sys.get_int_max_str_digits()
#: Python turns a JSON integer into float() exactly up to here, and raises past 1e308, where DuckDB reads inf
_LONG_INTEGER = r"[:,\[]\s*-?[0-9]{20}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def python_reads_alike_sql(keys: Sequence[str]) -> str:
    """A DuckDB condition on the text ``t``: DuckDB reads it as Python's ``json.loads`` does, as far as the
    top-level members ``keys`` and their values go. Standard JSON only (DuckDB also reads "[1,]" and "nan":
    :data:`core.store.validate.LENIENT_JSON_PATTERNS`); none of ``keys`` twice at the top level (DuckDB takes a
    repeated member's first value, Python its last; \\u escapes count, as both decode them); no integer of 20
    digits or more (Python's float() of a longer one rounds or raises where DuckDB's differs, and one longer than
    Python reads raises); no nesting near Python's recursion limit (it raises there). Null counts as false."""
    names = ", ".join(_quoted(k) for k in keys)
    checks = ["strlen(t) - strlen(replace(replace(t, '[', ''), '{', '')) <= 64",
              *(f"NOT regexp_matches(t, {_quoted(p)})" for p in (*LENIENT_JSON_PATTERNS, _LONG_INTEGER)),
              "json_valid(t)"]
    if _DIGITS:  # already refused by _LONG_INTEGER where a number starts; also inside other text, cheaply
        checks.insert(1, f"NOT CASE WHEN strlen(t) > {_DIGITS} THEN regexp_matches(t, '[0-9]{{{min(_DIGITS, 1000)}}}') "
                         "ELSE false END")
    members = f"list_filter(json_keys(t), lambda k: k IN ({names}))"  # json_keys only of valid text: it raises
    return f"coalesce(CASE WHEN {' AND '.join(checks)} THEN len({members}) = len(list_distinct({members})) END, false)"


def number_sql(key: str) -> str:
    """A DuckDB expression: the top-level member ``key`` of ``t`` as a double where it is a JSON number (not a
    bool), else null: Python's ``float(value)`` where ``isinstance(value, (int, float))``."""
    path = _quoted(f"$.{key}")
    return (f"CASE WHEN json_type(t, {path}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') "
            f"THEN CAST(json_extract(t, {path}) AS DOUBLE) END")


def top_level_members(texts: pa.Array, keys: Sequence[str], columns: Mapping[str, str]) -> tuple[np.ndarray, pa.Table]:
    """For each of ``texts`` (strings; null allowed): whether DuckDB reads it as Python does as far as ``keys``
    go (:func:`python_reads_alike_sql`), and ``columns`` (name -> DuckDB expression over the text ``t`` and
    ``keys``) where it does, null elsewhere; in the order of ``texts``."""
    ok = python_reads_alike_sql(keys)
    picked = ", ".join(f"CASE WHEN safe THEN {expr} END AS {name}" for name, expr in columns.items())
    table = pa.table({"i": np.arange(len(texts)), "t": texts.cast(pa.large_string())})
    with duckdb.connect() as con:
        con.register("texts", table)
        found = con.sql(f"SELECT safe, {picked} FROM (SELECT i, t, {ok} AS safe FROM texts) ORDER BY i"
                        ).to_arrow_table()
    return found["safe"].to_numpy(zero_copy_only=False).astype(bool), found.drop_columns(["safe"])
