"""Members of JSON text columns read in DuckDB, where DuckDB reads the text as Python's json does.

A page that takes a few top-level members out of every run's provenance text parsed each text with
``json.loads``: 0.15-0.7 s for one model's 25,000 runs (``python -m jobs.bench_app``). DuckDB's reader takes them
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
#: Python's float() of a JSON integer this long may raise where DuckDB's gives inf (past 1e308): left to Python
_LONG_INTEGER = "[0-9]{20}"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _readable_sql() -> str:
    """A DuckDB condition on the text ``t``: standard JSON (DuckDB's json_valid also takes "[1,]" and "nan":
    :data:`core.store.validate.LENIENT_JSON_PATTERNS`), no integer longer than Python reads, no nesting near
    Python's recursion limit (it raises there). Null counts as false."""
    checks = ["strlen(t) - strlen(replace(replace(t, '[', ''), '{', '')) <= 64",
              *(f"NOT regexp_matches(t, {_quoted(p)})" for p in LENIENT_JSON_PATTERNS)]
    if _DIGITS:
        checks.append(f"NOT CASE WHEN strlen(t) > {_DIGITS} THEN regexp_matches(t, '[0-9]{{{min(_DIGITS, 1000)}}}') "
                      "ELSE false END")
    return f"coalesce({' AND '.join(checks)} AND json_valid(t), false)"


def number_sql(member: str) -> str:
    """A DuckDB expression: the JSON value ``member`` (an element of ``m``, :func:`top_level_members`) as a double
    where it is a JSON number (not a bool), else null: Python's ``float(value)`` where ``isinstance(value, (int,
    float))``."""
    return f"CASE WHEN json_type({member}) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN CAST({member} AS DOUBLE) END"


def top_level_members(texts: pa.Array, keys: Sequence[str], columns: Mapping[str, str],
                      numbers: bool = False) -> tuple[np.ndarray, pa.Table]:
    """For each of ``texts`` (strings; null allowed): whether DuckDB reads it as Python's ``json.loads`` does as
    far as the top-level members ``keys`` and their values go (``safe``), and ``columns`` (name -> DuckDB
    expression over ``m``, the values of ``keys`` as JSON in their order, null where absent: ``m[1]`` is the
    first) where it does, null elsewhere; in the order of ``texts``. Not safe: text :func:`_readable_sql` refuses,
    one of ``keys`` twice at the top level (DuckDB takes a repeated member's first value, Python its last; \\u
    escapes count, as both decode them), or, with ``numbers`` (``columns`` read numbers: :func:`number_sql`), a
    value holding an integer of 20 digits or more."""
    names = ", ".join(_quoted(k) for k in keys)
    paths = "[" + ", ".join(_quoted(f"$.{k}") for k in keys) + "]"
    picked = ", ".join(f"CASE WHEN safe THEN {expr} END AS {name}" for name, expr in columns.items())
    sql = (f"SELECT i, t, {_readable_sql()} AS valid FROM texts",  # json_keys and json_extract raise on other text
           f"SELECT i, valid, CASE WHEN valid THEN list_filter(json_keys(t), lambda k: k IN ({names})) END AS ks, "
           f"CASE WHEN valid THEN json_extract(t, {paths}) END AS m FROM (<inner>)",
           f"SELECT i, m, coalesce(valid AND len(ks) = len(list_distinct(ks))"
           + (f" AND NOT regexp_matches(CAST(m AS VARCHAR), '{_LONG_INTEGER}')" if numbers else "")
           + ", false) AS safe FROM (<inner>)",
           f"SELECT safe, {picked} FROM (<inner>) ORDER BY i")
    query = sql[0]
    for stage in sql[1:]:
        query = stage.replace("<inner>", query)
    table = pa.table({"i": np.arange(len(texts)), "t": texts.cast(pa.large_string())})
    with duckdb.connect() as con:
        con.register("texts", table)
        found = con.sql(query).to_arrow_table()
    return found["safe"].to_numpy(zero_copy_only=False).astype(bool), found.drop_columns(["safe"])
