"""One validation for every path into the store, and the quarantine note for what fails it.

The schema's rules live in :mod:`core.schema` (fields, types, ranges, consistency). This
module adds what only a *file* can get wrong -- its size, its nesting, its text encoding, a
run_id that is unsafe as a file name -- and applies the same scalar rules to Parquet rows
in one vectorised DuckDB pass (:func:`reason_sql`), so a million-row file costs no Python
loop. A record that fails is never loaded; it becomes a :class:`Skipped` entry that pages
show as "N records skipped: ...".
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from core import schema
from core.store.nested_sql import nested_shape_rules, parsed_columns  # noqa: F401 (parsed_columns re-exported)

RecordError = schema.SchemaError
#: The column that holds a record's custom fields (as JSON), so no record may have a field of that name.
EXTRA_COLUMN = "extra"
#: The columns a Parquet row holds as JSON text: the nested fields, then the custom fields.
TEXT_COLUMNS: tuple[str, ...] = (*schema.NESTED_FIELDS, EXTRA_COLUMN)
MAX_RECORD_BYTES = 1 << 20          # one JSON record file (the shipped ones are ~3 KiB)
MAX_PARQUET_BYTES = 1 << 30         # one Parquet file (100,000 compacted runs take ~20 MiB)
MAX_RECORD_DEPTH = schema.MAX_NESTED_DEPTH + 1  # the record object itself is one level
#: The deepest a .json input of ingest or a submission may nest: it may hold a list of records (one level more).
MAX_INPUT_DEPTH = MAX_RECORD_DEPTH + 1
#: Why text nested deeper than these limits is refused, and what to do: said with the limit.
_DEPTH_WHY = (": the schema's limit for config, provenance and custom fields; deeper text is refused unread, so that "
              "it cannot exhaust the reader. Flatten the deeper values")
#: Said with that limit, or a field one level over 8 reads 'the limit is 9' (README and the schema say 8).
RECORD_DEPTH_NOTE = f" (the record object, then its fields at most {schema.MAX_NESTED_DEPTH} levels{_DEPTH_WHY})"
#: Said with :data:`MAX_INPUT_DEPTH`: 'the limit is 10' alone told the submitter neither what was counted nor why.
INPUT_DEPTH_NOTE = f" (a list of records, each record, then its fields at most {schema.MAX_NESTED_DEPTH} levels{_DEPTH_WHY})"
MAX_INPUT_RECORDS = 1_000_000       # records in one ingest input file (.jsonl / list / parquet)
#: Longest text of the column that holds a record's custom fields together (core.store.records writes them
#: as one JSON object): each may hold MAX_NESTED_CHARS, under a name of MAX_TEXT characters that ASCII JSON
#: writes with at most 12 characters each (a surrogate pair of escapes), plus quotes and separators.
MAX_EXTRA_CHARS = ((schema.MAX_EXTRA_FIELDS + len(schema.STORE_ADDED_FIELDS))
                   * (schema.MAX_NESTED_CHARS + 12 * schema.MAX_TEXT + 6) + 2)
#: The most one valid record's row of the store's Parquet (compaction, ``write_records_parquet``) may unpack to, by
#: its footer: text scalars at their limits in 4-byte UTF-8, 8 bytes a number, each nested column and the custom
#: fields' column at their limits as the ASCII JSON the store writes, and 256 bytes a column of Parquet's own (page
#: headers, a dictionary index; 50-100 measured). Not MAX_RECORD_BYTES: a .json record of 0.9 MiB of raw UTF-8 text,
#: written in escapes of 6 characters each, made a 1.8 MB row, and write_records_parquet's records have no file.
MAX_STORED_ROW_BYTES = (
    sum(4 * schema.TEXT_LIMITS.get(n, schema.MAX_TEXT) for n, (k, _) in schema.SCALAR_FIELDS.items() if k is str)
    + 8 * sum(k is not str for k, _ in schema.SCALAR_FIELDS.values())
    + len(schema.NESTED_FIELDS) * schema.MAX_NESTED_CHARS + MAX_EXTRA_CHARS
    + 256 * (len(schema.SCALAR_FIELDS) + len(TEXT_COLUMNS)))
RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)
#: A JSON string, or an unterminated one through the end of the text: with its closing quote required, a text of
#: many quotes and no closing one (``"\"\"\"...``) made the search start again at each quote and scan to the end
#: each time, time quadratic in its length (a 169-byte zip submission of 40 KB took 11 s; 4 MiB, hours of CPU).
#: Optional, the first unterminated string takes the rest of the text in one scan; json.loads fails on it there.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?', re.S)


class Skipped(NamedTuple):
    """A record (or file) that was not loaded: where it is, and the rule it broke.

    A named tuple, so a frame carrying skipped entries in ``attrs`` stays JSON-serialisable.
    """

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def skipped_summary(skipped: list[Skipped], *, limit: int = 3, roots: Sequence[str | Path] = ()) -> str:
    """One line for a page: ``"3 records skipped: a.json (reason); ..."`` ('' when none).

    roots: the store's roots; where the text names one by its path on this machine, it names it by its
    folder name (``/srv/app/results/a.json`` -> ``results/a.json``), so a page's visitors learn no server path.
    Plain text: a page showing it through Markdown must still pass it through core.text.plain.
    """
    if not skipped:
        return ""
    shown = "; ".join(f"{s.where} ({s.reason})" for s in skipped[:limit])
    more = f"; and {len(skipped) - limit} more" if len(skipped) > limit else ""
    noun = "record" if len(skipped) == 1 else "records"
    return _without_roots(f"{len(skipped)} {noun} skipped: {shown}{more}", roots)


def _without_roots(text: str, roots: Sequence[str | Path]) -> str:
    """``text`` with each root's path (as given and resolved) replaced by the root's folder name."""
    names: dict[str, str] = {}
    for root in roots:
        path = Path(root)
        for form in {str(path), str(path.expanduser().resolve())}:
            if form not in (".", os.sep):
                names[form] = path.name or "store"
    for form in sorted(names, key=len, reverse=True):  # /srv/results-submitted before /srv/results
        text = text.replace(form, names[form])
    return text


def check_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """``schema.validate_record`` plus a run_id that is safe as a file name.

    Raises RecordError (a ValueError) naming the problem.
    """
    schema.validate_record(record)  # type: ignore[arg-type]
    if EXTRA_COLUMN in record:  # it would be silently replaced by the column of the other custom fields
        raise RecordError(f"field {EXTRA_COLUMN!r} is reserved: the store keeps custom fields under that "
                          "name; rename it")
    if not _RUN_ID.fullmatch(record["run_id"]):  # match(): its "$" also matched before a final newline
        raise RecordError(f"run_id {schema._short(record['run_id'])} must be 1-200 letters, digits, "
                          "'.', '_' or '-' and start with a letter or digit")
    return dict(record)


#: Bytes of JSON text :func:`json_depth` counts brackets in at a time: its arrays cost ~14 bytes a byte of text, so
#: a whole 200 MB input at once peaked at 4.5 GB (and 32 MiB of text took 640 MiB); a chunk keeps them near 60 MB.
DEPTH_CHUNK_BYTES = 4 << 20


def json_depth(raw: bytes) -> int:
    """Deepest bracket nesting of JSON text, found without parsing it (so without recursion).

    String contents are blanked first, so brackets inside strings do not count. The brackets are counted
    :data:`DEPTH_CHUNK_BYTES` at a time, each chunk starting from the depth the last one ended at.
    """
    codes = np.frombuffer(_JSON_STRING.sub(b'""', raw), dtype=np.uint8)
    depth = deepest = 0
    for start in range(0, len(codes), DEPTH_CHUNK_BYTES):
        part = codes[start:start + DEPTH_CHUNK_BYTES]
        steps = ((part == 0x5B) | (part == 0x7B)).astype(np.int32) - ((part == 0x5D) | (part == 0x7D))
        running = np.cumsum(steps, dtype=np.int64) + depth
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


def parse_json_bytes(raw: bytes, *, max_depth: int = MAX_RECORD_DEPTH, note: str = "") -> Any:
    """Strict JSON from bytes: UTF-8, nesting at most ``max_depth`` (``note`` follows that refusal); RecordError."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not UTF-8 text (byte {exc.start})") from None
    depth = json_depth(raw)
    if depth > max_depth:
        raise RecordError(f"JSON nested {depth} levels deep; the limit is {max_depth}{note}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; too many integer digits
        raise RecordError(f"invalid JSON: {str(exc)[:120]}") from None


def parse_record_bytes(raw: bytes) -> dict[str, Any]:
    """One validated record from the bytes of a ``.json`` file; RecordError naming the problem."""
    if len(raw) > MAX_RECORD_BYTES:
        raise RecordError(f"record file is {len(raw)} bytes; the limit is {MAX_RECORD_BYTES}")
    return check_record(parse_json_bytes(raw, note=RECORD_DEPTH_NOTE))


def safe_json_text(text: str | None, *, max_depth: int = MAX_RECORD_DEPTH) -> Any:
    """A stored nested column (JSON text) parsed defensively: None when absent, unparseable,
    or nested too deep (so a hostile Parquet cell can never raise RecursionError in a page)."""
    if text is None or not isinstance(text, str):
        return text
    try:
        return parse_json_bytes(text.encode("utf-8"), max_depth=max_depth)
    except ValueError:
        return None


#: Where DuckDB's JSON reader, which the Parquet rules use (json_valid), may accept text Python's json refuses:
#: it also reads a trailing comma ("[1, 2,]"), nan/inf in any case and sign ("nan", "-NaN", "INF"; Python reads
#: only NaN, Infinity, -Infinity) and integers of any length. A row whose text matches one of these patterns is
#: checked again in Python (:func:`stored_text_problem`). :data:`_NAN_OR_INF` never matches null, true or false.
#: Each pattern starts with one literal character: an alternation of first characters made RE2 scan 3-6 times slower.
_NAN_OR_INF = r"-?(?:[nN][aA]|[iI])"
LENIENT_JSON_PATTERNS = (rf",\s*(?:[\]}}]|{_NAN_OR_INF})", rf":\s*{_NAN_OR_INF}", rf"\[\s*{_NAN_OR_INF}")


def _deeper_than(depth: int) -> str:
    """A regular expression (RE2 and Python alike) matching the start of well-formed JSON text whose brackets,
    outside strings, nest deeper than ``depth``: the text up to an opening bracket at depth + 1, each stretch
    between the brackets of that path balanced and shallow enough not to get there sooner."""
    plain = r'[^\[\]{}"]|"(?:[^"\\]|\\.)*"'  # one character outside strings, or one whole string

    def balanced(levels: int) -> str:
        text = f"(?:{plain})*"
        for _ in range(levels):
            text = rf"(?:{plain}|[\[{{]{text}[\]}}])*"
        return text
    return "^" + "".join(rf"{balanced(depth - level)}[\[{{]" for level in range(depth + 1))


#: Nested text deeper than a .json record may hold it (:data:`schema.MAX_NESTED_DEPTH`), found in SQL for the
#: Python pass as lenient text is: such a row loaded, and readers refused (or, past Python's recursion limit, crashed
#: on) the text. Over all nested texts of a row at once: well-formed texts side by side nest as deep as the deepest.
_TOO_DEEP = _deeper_than(schema.MAX_NESTED_DEPTH)


def recheck_text_sql(present: set[str]) -> str:
    """A DuckDB expression, per row of the typed select: whether a nested column's text may be JSON that only
    DuckDB's lenient reader accepts (true also for some standard text, e.g. ", ]" inside a string: a superset),
    or nested deeper than a .json record may hold it. ``present``: the columns the file has."""
    names = [n for n in TEXT_COLUMNS if n in present]
    if not names:
        return "false"
    # the row's texts as one, each after a comma (so a top-level "nan" is found too): one scan per pattern, not
    # one per pattern and column, which added 0.22 s instead of 0.08 s to the SQL of jobs.bench_store's 100,000 runs
    joined = "(',' || concat_ws(',', " + ", ".join(f'"{n}"' for n in names) + "))"
    checks = [f"regexp_matches({joined}, {_sql_text(p)})" for p in LENIENT_JSON_PATTERNS]
    # text this deep has more opening brackets; counting them first spared the scan of every row's text, which
    # cost a cold load of 100,000 runs from a Parquet file of another tool's 0.24 s
    openers = f"strlen({joined}) - strlen(replace(replace({joined}, '[', ''), '{{', ''))"
    checks.append(f"CASE WHEN {openers} > {schema.MAX_NESTED_DEPTH} THEN regexp_matches({joined}, "
                  f"{_sql_text(_TOO_DEEP)}) ELSE false END")
    digits = sys.get_int_max_str_digits()  # Python's json refuses an integer longer than this (0: no limit)
    if digits:  # strlen (bytes) is stored, not counted; RE2 repeats at most 1000 times
        checks += [f'CASE WHEN strlen("{n}") > {digits} THEN regexp_matches("{n}", \'[0-9]{{{min(digits, 1000)}}}\') '
                   "ELSE false END" for n in names]
    return f"coalesce({' OR '.join(checks)}, false)"


def stored_text_problem(name: str, text: str | None) -> str | None:
    """Why a .json record would refuse the nested column ``name``'s text (a Parquet cell :func:`recheck_text_sql`
    flagged), or None: nested deeper than the schema allows (for the custom fields' column, one of its members),
    or not JSON text Python's json reads (DuckDB's reader, which the SQL rules use, accepts more)."""
    if not isinstance(text, str):
        return None
    limit = MAX_RECORD_DEPTH if name == EXTRA_COLUMN else schema.MAX_NESTED_DEPTH  # the object adds one level
    if json_depth(text.encode("utf-8")) > limit:
        what = "a custom field" if name == EXTRA_COLUMN else f"field {name!r}"
        return f"{what} is nested deeper than {schema.MAX_NESTED_DEPTH} levels"
    try:
        json.loads(text)
    except RecursionError:  # left to the readers, which bound depth (safe_json_text), as for all Parquet text
        return None
    except ValueError as exc:  # JSONDecodeError; an integer longer than Python reads
        return f"field {name!r} is not standard JSON text ({str(exc)[:120]})"
    return None


def standard_text(text: str | None) -> str | None:
    """A Parquet cell's JSON text (one Python's json reads: :func:`stored_text_problem` passed it) as standard
    JSON: unchanged where it holds no NaN or Infinity, else written again with them as null, as a .json record's
    are stored (:func:`core.schema.json_text`). Served as it was, it reached the app's downloads and
    ``jobs.export``, whose readers (jq, JavaScript's JSON.parse) refuse those tokens."""
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # no JSON to Python either: its readers say so, as before
        return text
    try:
        json.dumps(value, allow_nan=False)
    except RecursionError:  # left to the readers, which bound depth (safe_json_text)
        return text
    except ValueError:  # NaN/Infinity inside
        return schema.json_text(value)
    return text


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def reason_sql(present: set[str], raw_types: dict[str, str], duck_types: dict[str, str]) -> str:
    """A DuckDB expression giving, per row of the typed select, the first rule it breaks (or NULL).

    The same rules as :func:`check_record` for every scalar; for nested columns: JSON validity as DuckDB reads
    it (text only DuckDB reads, or nested too deep, is found by :func:`recheck_text_sql`) and
    :data:`schema.MAX_NESTED_CHARS`. ``present``: columns the file has; ``raw_types``: their raw types. Column
    names come from the schema, never from users.
    """
    tol = schema.CONSISTENCY_TOLERANCE
    rules: list[tuple[str, str]] = [
        ("run_id IS NULL OR NOT regexp_full_match(run_id, " + _sql_text(RUN_ID_PATTERN[1:-1]) + ")",
         "run_id is missing or not safe as a file name")]
    for name, kind in duck_types.items():
        if name in present:  # a value that could not be cast is a wrong type, not a missing one
            rules.append((f'"_raw_{name}" IS NOT NULL AND "{name}" IS NULL',
                          f"field {name!r} has the wrong type ({raw_types.get(name, '?')})"))
    for name in schema.REQUIRED_FIELDS:
        empty = f' OR "{name}" = \'\'' if duck_types[name] == "VARCHAR" else ""
        rules.append((f'"{name}" IS NULL{empty}', f"record is missing required field {name!r}"))
    rules.append(("status NOT IN ('ok', 'failed')", "field 'status' must be one of ('ok', 'failed')"))
    rules.append(("created_at IS NOT NULL AND (NOT regexp_full_match(created_at, " + _sql_text(schema.CREATED_AT_PATTERN)
                  + ") OR TRY_CAST(created_at AS TIMESTAMPTZ) IS NULL)",
                  "field 'created_at' must be an ISO-8601 time with its UTC offset, e.g. 2025-01-01T10:00:00+00:00"))
    for name, (low, high) in schema.RANGES.items():
        finite = f'NOT isfinite("{name}") OR ' if duck_types[name] == "DOUBLE" else ""
        rules.append((f'"{name}" IS NOT NULL AND ({finite}"{name}" < {low!r} OR "{name}" > {high!r})',
                      f"field {name!r} must lie in {schema.range_text(name)}"))
    for name, kind in duck_types.items():
        if kind == "VARCHAR":
            limit = schema.TEXT_LIMITS.get(name, schema.MAX_TEXT)
            rules.append((f'length("{name}") > {limit}', f"field {name!r} is longer than {limit} characters"))
    rules += [
        ("status = 'ok' AND (zs_acc IS NULL OR ft_acc IS NULL)", "a successful record needs zs_acc and ft_acc"),
        (f"id_gain IS NOT NULL AND zs_acc IS NOT NULL AND ft_acc IS NOT NULL AND "
         f"abs(id_gain - (ft_acc - zs_acc)) > {tol} * greatest(1, abs(ft_acc - zs_acc))",
         "field 'id_gain' must equal ft_acc - zs_acc"),
        (f"norm_gain IS NOT NULL AND zs_acc IS NOT NULL AND ft_acc IS NOT NULL AND zs_acc < 100 AND "
         f"abs(norm_gain - (ft_acc - zs_acc) / (100 - zs_acc)) > "
         f"{tol} * greatest(1, abs((ft_acc - zs_acc) / (100 - zs_acc)))",
         "field 'norm_gain' must equal (ft_acc - zs_acc) / (100 - zs_acc)")]
    # the custom fields share one column: each is held to MAX_NESTED_CHARS, all together to MAX_EXTRA_CHARS
    for name, limit in (*((n, schema.MAX_NESTED_CHARS) for n in schema.NESTED_FIELDS), (EXTRA_COLUMN, MAX_EXTRA_CHARS)):
        rules.append((f'"{name}" IS NOT NULL AND (length("{name}") > {limit} OR NOT json_valid("{name}"))',
                       f"field {name!r} is not JSON text of at most {limit} characters"))
    rules += nested_shape_rules(tol, EXTRA_COLUMN)
    cases = " ".join(f"WHEN {cond} THEN {_sql_text(reason)}" for cond, reason in rules)
    return f"CASE {cases} ELSE NULL END"


def check_row_group_sizes(meta: Any, row_limit: int = MAX_RECORD_BYTES,
                          limit_is: str = "the most a record may take", columns: Collection[str] | None = None) -> None:
    """Raise :class:`RecordError` when a Parquet file's metadata (``pyarrow.parquet.FileMetaData``) says a row group
    unpacks to more than ``row_limit`` a row (``limit_is`` names it in the message; ingest's records, to be written
    as .json files, take :data:`MAX_RECORD_BYTES`; the store's rows :data:`MAX_STORED_ROW_BYTES`): read from the
    footer alone, before any row is (a 31 KB zstd file of one 1 GB text cell took ingest to a 4 GB peak, the store's
    loader to about 2 GB). ``columns``: count only these (the loader reads no other; a file of another tool with a
    column of its own, say an image a row, was refused whole); None: all. The sizes are the file's own word (a
    crafted file can understate them), so this bounds the common case, not every one."""
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        size = group.total_byte_size if columns is None else sum(
            chunk.total_uncompressed_size for chunk in map(group.column, range(group.num_columns))
            if chunk.path_in_schema.split(".")[0] in columns)
        if size > max(group.num_rows, 1) * row_limit:
            # in bytes: MiB rounded 1.3 MiB to the limit it broke ('1 MiB for 1 rows; a record is at most 1 MiB')
            raise RecordError(f"row group {i} unpacks to {size:,} bytes for {group.num_rows} "
                              f"row(s): more than {row_limit:,} bytes a row, {limit_is}")
