"""Text a spreadsheet would run, in a submitted record: refused when a submission is taken, and again wherever a
stored one is read.

A string that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return (:data:`core.text.FORMULA_PREFIXES`)
reaches other visitors' CSV downloads as it is (a table's own download button writes cells unchanged), where Excel
or LibreOffice runs it as a formula (CSV injection). Submissions are refused such text when they are taken
(:mod:`core.store.submissions`); a record stored before that check, or written into the submissions folder by hand,
is refused where it is read: by the loader (JSON records and Parquet rows alike, quarantined as every invalid
record is) and by ingest. Only records labelled :data:`SUBMITTED_SOURCE` are held to this: the grid writes no such
text, and a host's own records are the host's.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.text import FORMULA_PREFIXES
from core.store.validate import TEXT_COLUMNS

log = logging.getLogger("core.store")

#: The ``source`` of every run a submission stored (core.store re-exports it).
SUBMITTED_SOURCE = "submitted, unverified"
#: What a reader adds to :func:`formula_problem`'s reason for a stored submission it leaves out.
STORED_NOTE = " (stored before submissions were checked for it: not loaded; remove or correct the file)"

#: Where JSON text may hold a string (a value or a key) that starts with one of :data:`FORMULA_PREFIXES`: a string's
#: opening quote, then that character as it is or escaped (a tab or carriage return must be; any may be as \\u00XX).
#: A superset (an escaped quote matches too), so text it does not match holds no such string and needs no parse:
#: walking every parsed record took ~45 us a record, 0.9 s of a cold read of 20,000 submitted .json records (~20 %),
#: and turning every submitted Parquet row back into a record 5-10 s at 20,000 rows, where the read took 0.3-0.6 s.
_JSON_FORMULA = r'"(?:[=+\-@\t\r]|\\(?:[tr]|u00(?:09|0[dD]|2[bBdD]|3[dD]|40)))'
_JSON_FORMULA_BYTES = re.compile(_JSON_FORMULA.encode("ascii"))
#: A plain text column's value that starts with one of :data:`FORMULA_PREFIXES`.
_TEXT_FORMULA = r"^[=+\-@\t\r]"


def formula_problem(record: Any) -> str | None:
    """Why a submitted record holds text a spreadsheet would run, or None: a string (a value or a key, at any
    depth) that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return. Such text reached other
    visitors' CSV downloads as it was (the tables' own download button writes cells unchanged), where Excel
    or LibreOffice runs it as a formula (CSV injection). No record the grid writes holds such text."""
    def found(value: Any, where: str, depth: int = 0) -> str | None:
        if isinstance(value, str):
            return where if value.startswith(FORMULA_PREFIXES) else None
        if depth > 64:  # parse_json_bytes has bounded the depth already
            return None
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(key, str) and key.startswith(FORMULA_PREFIXES):
                    return f"{where} (a name in it)" if where else f"field name {key[:60]!r}"
                hit = found(item, where or f"field {str(key)[:60]!r}", depth + 1)
                if hit:
                    return hit
        elif isinstance(value, list):
            return next((hit for item in value if (hit := found(item, where, depth + 1))), None)
        return None

    hit = found(record, "") if isinstance(record, dict) else None
    if hit is None:
        return None
    return (f"{hit} holds text that starts with = + - @, a tab or a carriage return: spreadsheets that open the "
            "leaderboard's CSV downloads would run it as a formula; submitted records may not hold such text")


def submitted_formula_problem(record: Mapping[str, Any], raw: bytes | None = None) -> str | None:
    """:func:`formula_problem` of a record labelled :data:`SUBMITTED_SOURCE`; None for any other record. ``raw``: the
    JSON text ``record`` was parsed from, as it is (strings unchanged), where one holding no string that could start
    so (:data:`_JSON_FORMULA`) is passed without walking the record."""
    if not isinstance(record, Mapping) or record.get("source") != SUBMITTED_SOURCE:
        return None
    if raw is not None and not _JSON_FORMULA_BYTES.search(raw):
        return None
    return formula_problem(dict(record))


def flag_submitted_rows(table: pa.Table) -> pa.Table:
    """``table`` (rows of the store's columns with a ``_reason`` column, NULL where valid) with each valid row
    labelled :data:`SUBMITTED_SOURCE` whose record holds formula text given that reason (and logged), so that the
    loader quarantines it as it does every invalid row. Only such rows are turned back into records."""
    from core.store.records import row_to_record  # late: core.store.records imports this module

    if "source" not in table.column_names or not table.num_rows:
        return table
    candidates = pc.fill_null(pc.and_(pc.equal(table["source"], SUBMITTED_SOURCE), pc.is_null(table["_reason"])),
                              False)
    if not pc.any(candidates).as_py():
        return table
    candidates = pc.and_(candidates, _may_hold_formula(table))  # the few rows worth turning back into records
    if not pc.any(candidates).as_py():
        return table
    reasons = table["_reason"].to_pylist()
    for i in np.flatnonzero(candidates.to_numpy(zero_copy_only=False)):
        row = table.slice(int(i), 1).to_pylist()[0]
        try:
            problem = formula_problem(row_to_record(row))
        except ValueError:  # text the other rules leave to the readers: not this rule's to judge
            continue
        if problem:
            reasons[i] = problem + STORED_NOTE
            log.warning("skipping submitted run %r of %s: %s", row.get("run_id"), row.get("_file"), problem)
    return table.set_column(table.column_names.index("_reason"), "_reason", pa.array(reasons, pa.string()))


def _may_hold_formula(table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Per row, whether :func:`core.store.records.row_to_record` of it could hold a string that starts with one of
    :data:`FORMULA_PREFIXES` (False only where none can): a text column's value that starts so, or a nested column's
    JSON text (:data:`TEXT_COLUMNS`, parsed as it is) that :data:`_JSON_FORMULA` matches. Number and boolean columns
    hold no text, a column of any other type is taken as a match, and the loader's own ``_file`` and ``_reason`` are
    no part of the record."""
    found: pa.ChunkedArray | pa.Array = pa.array(np.zeros(table.num_rows, dtype=bool))
    for name in table.column_names:
        column, kind = table[name], table[name].type
        if name.startswith("_") or pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
                pa.types.is_boolean(kind) or pa.types.is_null(kind):
            continue
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return pa.array(np.ones(table.num_rows, dtype=bool))
        pattern = _JSON_FORMULA if name in TEXT_COLUMNS else _TEXT_FORMULA
        found = pc.or_(found, pc.fill_null(pc.match_substring_regex(column, pattern), False))
    return found
