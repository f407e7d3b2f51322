"""The result-record schema: one place that names every field a run leaves behind.

A *record* is one JSON object per fine-tuning run (one grid cell), written by
``jobs.grid`` and read back by ``core.store``. Top-level scalar fields become
leaderboard columns; nested fields (``config``, ``ood_before``, ``ood_after``,
``zero_shot``, ``transferability``, ``provenance``) are kept as JSON text in the
store and expanded where a page needs them.

This module imports nothing heavy (no torch), so the leaderboard can use it.
"""
from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any

SCHEMA_VERSION = 1

STATUSES = ("ok", "failed")

#: Scalar columns of the leaderboard, with their type and meaning.
SCALAR_FIELDS: dict[str, tuple[type, str]] = {
    "run_id": (str, "hash of the cell's full config; unique per run"),
    "schema_version": (int, "version of this schema the record follows"),
    "status": (str, "'ok' or 'failed'"),
    "error": (str, "the error message of a failed run, else empty"),
    "model": (str, "open_clip architecture name, e.g. ViT-B-32"),
    "pretrained": (str, "pretrained tag, hub id, or 'random' for random weights"),
    "model_key": (str, "the model-zoo key the run used"),
    "random_weights": (bool, "true when the model had random (untrained) weights"),
    "method": (str, "fine-tuning method name from core.methods"),
    "dataset": (str, "training (in-domain) dataset name"),
    "seed": (int, "random seed of the run"),
    "zs_acc": (float, "zero-shot top-1 test accuracy on the dataset, %"),
    "ft_acc": (float, "top-1 test accuracy after fine-tuning, %"),
    "id_gain": (float, "ft_acc - zs_acc, points"),
    "norm_gain": (float, "(ft_acc - zs_acc) / (100 - zs_acc)"),
    "ood_change": (float, "mean over the OOD sets of (after - before), points"),
    "iimm": (float, "Inter-Intra Modal Measure on the training split"),
    "inter_modal": (float, "mean cosine of wrong image-prompt pairs"),
    "intra_image": (float, "mean cosine of distinct image pairs"),
    "source": (str, "how the numbers were obtained, e.g. 'measured:grid@<host>'"),
    "created_at": (str, "UTC ISO-8601 time the record was written"),
}

#: Nested fields, kept as JSON text in the store.
NESTED_FIELDS: dict[str, str] = {
    "config": "the cell's full config (method hyper-parameters, training recipe, data)",
    "ood_sets": "list of out-of-domain dataset names averaged into ood_change",
    "ood_before": "{ood dataset: zero-shot accuracy %}",
    "ood_after": "{ood dataset: accuracy % after fine-tuning}",
    "zero_shot": "every zero-shot measure of core.metrics on the training split",
    "transferability": "{baseline name: score} on the training split (may be empty)",
    "provenance": "git revision, package versions, device, wall time, peak memory, "
    "trainable/total parameter counts, the reproducing command, host, evaluation input "
    "(images, or cached image embeddings for a frozen image tower), the data's fingerprints",
}

REQUIRED_FIELDS = ("run_id", "status", "model", "pretrained", "method", "dataset", "seed", "source")

#: Closed ranges of the numeric scalars (a value outside is refused, never clipped).
RANGES: dict[str, tuple[float, float]] = {
    "schema_version": (1, SCHEMA_VERSION),
    "seed": (0, 2**32 - 1),
    "zs_acc": (0.0, 100.0), "ft_acc": (0.0, 100.0),
    "id_gain": (-100.0, 100.0), "ood_change": (-100.0, 100.0),
    # (ft - zs) / (100 - zs): at least -zs / (100 - zs); -1e4 allows zs up to 99.99 %
    "norm_gain": (-1e4, 1.0),
    "iimm": (-1.0, 1.0), "inter_modal": (-1.0, 1.0), "intra_image": (-1.0, 1.0),
}
#: Longest text allowed per string field (characters); others get MAX_TEXT.
MAX_TEXT = 200
TEXT_LIMITS = {"error": 4000, "created_at": 40}
#: Extra fields the store itself adds (a submission's claimed source), beside the 32 a record's author may use.
STORE_ADDED_FIELDS = frozenset({"claimed_source"})
MAX_EXTRA_FIELDS = 32
#: Bounds on the nested fields: depth of JSON nesting inside one field, and its size as JSON text.
MAX_NESTED_DEPTH = 8
MAX_NESTED_CHARS = 64 * 1024
#: Accuracy dictionaries (per OOD set), checked like the top-level accuracies.
ACCURACY_MAPS = ("ood_before", "ood_after")
#: Nested fields that must be JSON objects (the rest of NESTED_FIELDS are lists or objects).
OBJECT_FIELDS = ("ood_before", "ood_after", "zero_shot", "transferability", "provenance", "config")
#: The form of ``created_at``: ISO-8601's extended form with a UTC offset, the form Python and DuckDB both read
#: as the same moment (the store keeps the newest copy of a run by it, in SQL). Python alone also reads forms such
#: as "20250101T100000+0000" or "2025-W01-1T10+00:00", which DuckDB cannot cast: such a copy was never the newest.
CREATED_AT_PATTERN = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
                      r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?)")
_CREATED_AT = re.compile(CREATED_AT_PATTERN)
#: Absolute tolerance of the derived outcomes against the accuracies they come from (points).
CONSISTENCY_TOLERANCE = 1e-3


class SchemaError(ValueError):
    """A record does not follow the schema; the message names the field."""


def _check_scalar(name: str, kind: type, value: Any) -> None:
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SchemaError(f"field {name!r} must be a number, got {_short(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise SchemaError(f"field {name!r} must be finite, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SchemaError(f"field {name!r} must be an integer, got {_short(value)}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise SchemaError(f"field {name!r} must be true or false, got {_short(value)}")
    else:
        if not isinstance(value, str):
            raise SchemaError(f"field {name!r} must be a string, got {_short(value)}")
        limit = TEXT_LIMITS.get(name, MAX_TEXT)
        if len(value) > limit:
            raise SchemaError(f"field {name!r} is {len(value)} characters long; the limit is {limit}")
        if not value.isascii() and not _unicode_ok(value):
            raise SchemaError(f"field {name!r} {_NOT_UNICODE}")
        if name == "created_at":  # the store keeps the newest copy of a run by this time: it must be one
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise SchemaError(f"field 'created_at' must be an ISO-8601 time, got {_short(value)}") from None
            if moment.tzinfo is None:
                raise SchemaError(f"field 'created_at' needs its UTC offset (e.g. +00:00), got {_short(value)}")
            if not _CREATED_AT.fullmatch(value):
                raise SchemaError("field 'created_at' must be written YYYY-MM-DDTHH:MM[:SS[.ffffff]] with Z or "
                                  f"+HH:MM (e.g. 2025-01-01T10:00:00+00:00), got {_short(value)}")
        return
    low, high = RANGES.get(name, (-math.inf, math.inf))
    if not low <= value <= high:  # exact for ints of any size: no float conversion here
        raise SchemaError(f"field {name!r} must lie in {range_text(name)}, got {_short(value)}")


def range_text(name: str) -> str:
    """``name``'s closed range as a message gives it: integer bounds in full (a seed's upper one written
    ``:g`` read 4.29497e+09, which 2**32, refused, also rounds to), others ``:g``."""
    return "[{}, {}]".format(*(f"{b}" if isinstance(b, int) else f"{b:g}" for b in RANGES[name]))


def _short(value: Any) -> str:
    """A bounded repr for messages (a 10**400 seed must not print 400 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**15:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def nesting_depth(value: Any, limit: int = MAX_NESTED_DEPTH) -> int:
    """Depth of lists/dicts in ``value`` (a scalar is 0); stops counting past ``limit`` + 1.

    Iterative, so a hostile value nested 100,000 deep cannot exhaust the stack.
    """
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth) for child in children)
    return deepest


def _check_nested(name: str, value: Any) -> None:
    if name in OBJECT_FIELDS and not isinstance(value, dict):
        raise SchemaError(f"field {name!r} must be a JSON object")
    if name == "ood_sets" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise SchemaError("field 'ood_sets' must be a list of dataset names")
    if nesting_depth(value) > MAX_NESTED_DEPTH:
        raise SchemaError(f"field {name!r} is nested deeper than {MAX_NESTED_DEPTH} levels")
    size = _json_size(value)
    if size > MAX_NESTED_CHARS:
        raise SchemaError(f"field {name!r} is {size} characters as JSON; the limit is {MAX_NESTED_CHARS}")
    if name in ACCURACY_MAPS:
        for key, acc in value.items():
            if acc is not None:
                _check_scalar(f"{name}[{_short(key)}]", float, acc)
                if not 0.0 <= acc <= 100.0:
                    raise SchemaError(f"field {name}[{_short(key)}] must lie in [0, 100], got {_short(acc)}")


_NOT_UNICODE = "holds text that is not valid Unicode (a lone surrogate such as \\ud800)"


def _unicode_ok(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8: JSON's ``"\\ud800"`` escape parses to a lone surrogate,
    which no UTF-8 (Arrow, DuckDB, the browser) string can hold."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text(value: Any, **kw: Any) -> str:
    """``value`` as JSON text the store keeps (``json.dumps`` with ``kw``): NaN/inf written as null, never as
    the non-standard ``NaN``. Raises what ``json.dumps`` raises for a value it cannot write."""
    try:
        return json.dumps(value, allow_nan=False, **kw)
    except ValueError:  # NaN/inf inside (or an integer too long to print, which fails again)
        return json.dumps(nan_as_null(value), allow_nan=False, **kw)


def csv_text(frame: Any, **kw: Any) -> str:
    """``frame`` (a DataFrame) as CSV text without its index (``DataFrame.to_csv`` with ``kw``), lines ended by
    ``\n`` on every system: pandas ends them with ``os.linesep``, so a table regenerated on Windows differed from
    the shipped one on every line (CRLF) while the Markdown beside it did not. Where a text holds a carriage
    return, every line ends with RFC 4180's ``\\r\\n`` instead: Python's csv writer quotes a field only for the
    characters of its line end, so ``"step 1\\rstep 2"`` went out bare, and Python's csv, pandas and spreadsheets
    split its row while DuckDB could not read the file."""
    text = frame.to_csv(index=False, lineterminator="\n", **kw)
    return frame.to_csv(index=False, lineterminator="\r\n", **kw) if "\r" in text else text


def _json_size(value: Any) -> int:
    """Length of ``value`` as the store keeps it: JSON text with the default ``", "`` and ``": "``
    separators, NaN/inf as null (core.store.records writes nested columns so, and the Parquet loader
    measures that text, so a field that passes here is never quarantined after compaction).
    Raises SchemaError for a value JSON cannot store or text (keys too) that is not valid Unicode."""
    try:
        text = json_text(value, default=_no_default)
    except (ValueError, TypeError, OverflowError) as exc:
        raise SchemaError(f"a nested field holds a value JSON cannot store ({_short(str(exc))})") from None
    # ASCII JSON writes every character past U+FFFF as a pair of \ud8xx escapes: look closer only then
    if "\\ud" in text and not _unicode_ok(json.dumps(value, ensure_ascii=False, default=_no_default)):
        raise SchemaError(f"a nested field {_NOT_UNICODE}")
    return len(text)


def nan_as_null(value: Any) -> Any:
    """A copy of nested data with NaN/inf floats as None, as the store writes them (standard JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: nan_as_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [nan_as_null(v) for v in value]
    return value


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= CONSISTENCY_TOLERANCE * max(1.0, abs(b))


def _check_consistency(record: dict[str, Any]) -> None:
    """The derived outcomes agree with the accuracies they are computed from (SPEC section 2)."""
    zs, ft, gain = record.get("zs_acc"), record.get("ft_acc"), record.get("id_gain")
    if zs is not None and ft is not None and gain is not None and not _close(gain, ft - zs):
        raise SchemaError(f"field 'id_gain' ({gain:g}) must equal ft_acc - zs_acc ({ft - zs:g})")
    norm = record.get("norm_gain")
    if norm is not None and zs is not None and ft is not None and zs < 100.0:
        if not _close(norm, (ft - zs) / (100.0 - zs)):
            raise SchemaError(f"field 'norm_gain' ({norm:g}) must equal (ft_acc - zs_acc) / (100 - zs_acc)")
    before, after, change = record.get("ood_before"), record.get("ood_after"), record.get("ood_change")
    if change is not None and isinstance(before, dict) and isinstance(after, dict) and set(before) != set(after):
        # outcomes() refuses such maps; a record from elsewhere (a submission) would show a change nothing confirms
        raise SchemaError(f"field 'ood_change' is given but ood_before and ood_after name different OOD sets "
                          f"({', '.join(sorted(map(str, set(before) ^ set(after))))} in only one of them)")
    if (change is not None and isinstance(before, dict) and isinstance(after, dict) and before
            and set(before) == set(after) and all(isinstance(v, (int, float)) for v in
                                                  (*before.values(), *after.values()))):
        expected = sum(after[k] - before[k] for k in before) / len(before)
        if not _close(change, expected):
            raise SchemaError(f"field 'ood_change' ({change:g}) must equal the mean OOD change "
                              f"({expected:g}) of ood_before and ood_after")


def validate_record(record: dict[str, Any]) -> dict[str, Any]:
    """Check one result record and return it unchanged.

    Raises SchemaError naming the first problem found: a missing required field, an unknown
    status, a wrong type, a value out of its range (:data:`RANGES`, :data:`TEXT_LIMITS`), a
    non-finite number, a nested field too deep or too large, or derived outcomes (id_gain,
    norm_gain, ood_change) that disagree with the accuracies they come from.
    """
    if not isinstance(record, dict):
        raise SchemaError(f"a record must be a JSON object, got {type(record).__name__}")
    for name in REQUIRED_FIELDS:
        if name not in record or record[name] in (None, ""):
            raise SchemaError(f"record is missing required field {name!r}")
    if record["status"] not in STATUSES:
        raise SchemaError(f"field 'status' must be one of {STATUSES}, got {_short(record['status'])}")
    for name, (kind, _) in SCALAR_FIELDS.items():
        if record.get(name) is not None:
            _check_scalar(name, kind, record[name])
    if record["status"] == "ok":
        for name in ("zs_acc", "ft_acc"):
            if record.get(name) is None:
                raise SchemaError(f"a successful record needs field {name!r}")
    for name in NESTED_FIELDS:
        if record.get(name) is not None:
            _check_nested(name, record[name])
    extra = {k: v for k, v in record.items() if k not in SCALAR_FIELDS and k not in NESTED_FIELDS}
    # the store's own addition to a submission does not take one of its author's 32 places
    if len(extra.keys() - STORE_ADDED_FIELDS) > MAX_EXTRA_FIELDS or any(len(k) > MAX_TEXT for k in extra):
        raise SchemaError(f"a record may carry at most {MAX_EXTRA_FIELDS} extra fields with names of at most "
                          f"{MAX_TEXT} characters")
    if not all(k.isascii() or _unicode_ok(k) for k in extra):
        raise SchemaError(f"an extra field's name {_NOT_UNICODE}")
    for name, value in extra.items():
        if nesting_depth(value) > MAX_NESTED_DEPTH or _json_size(value) > MAX_NESTED_CHARS:
            raise SchemaError(f"extra field {_short(name)} is nested too deep or too large")
    _check_consistency(record)
    return record


def outcome_fields(zs_acc: float, ft_acc: float,
                   ood_before: dict[str, float], ood_after: dict[str, float]) -> dict[str, float | None]:
    """SPEC section 2: ID gain, normalised gain and OOD change from raw accuracies (in %)."""
    id_gain = ft_acc - zs_acc
    norm_gain = id_gain / (100.0 - zs_acc) if zs_acc < 100.0 else None
    if set(ood_before) != set(ood_after):
        raise ValueError("ood_before and ood_after must name the same OOD sets")
    ood_change = (sum(ood_after[k] - ood_before[k] for k in ood_before) / len(ood_before)
                  if ood_before else None)
    return {"id_gain": id_gain, "norm_gain": norm_gain, "ood_change": ood_change}
