"""Each record limit README states ('seed in [0, 2³²)'; 'text at most 200 characters, errors 4,000; nested
fields at most 8 levels and 64 KiB of JSON'; 'at most 1 MiB per record file'), at its boundary: the value at the
limit is stored and loaded, one past it is refused by the .json and the Parquet paths with the limit named."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import schema, store
from core.store.validate import MAX_RECORD_BYTES, RecordError, parse_record_bytes
from tests.store_helpers import _record


def _parquet_skips(tmp_path, record) -> list[str]:
    """The reasons the store's Parquet loader gives for skipping ``record``'s row ([] when it loads: asserted)."""
    root = tmp_path / "results"
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([record]), root / "one.parquet")
    runs = store.load_runs([root])
    reasons = [reason for _, reason in runs.attrs["skipped"]]
    assert len(runs) == (0 if reasons else 1)
    return reasons


def test_the_seeds_range_is_named_in_full_when_a_seed_one_past_it_is_refused(tmp_path):
    """A seed of 2**32 was refused as outside '[0, 4.29497e+09]', a bound it also rounds to; the range now reads
    [0, 4294967295] in every path's message, and 2**32 - 1 is stored."""
    assert schema.validate_record(_record(seed=2**32 - 1))["seed"] == 2**32 - 1
    with pytest.raises(schema.SchemaError, match=r"^field 'seed' must lie in \[0, 4294967295\], got 4294967296$"):
        schema.validate_record(_record(seed=2**32))
    with pytest.raises(RecordError, match=r"must lie in \[0, 4294967295\]"):
        parse_record_bytes(json.dumps(_record(seed=2**32)).encode())
    assert _parquet_skips(tmp_path / "at", _record(seed=2**32 - 1)) == []
    assert any("must lie in [0, 4294967295]" in reason for reason in _parquet_skips(tmp_path / "over",
                                                                                       _record(seed=2**32)))


def _nested(levels: int) -> dict:
    """A provenance object nested ``levels`` deep, the object itself the first level."""
    value: object = 1
    for _ in range(levels - 1):
        value = [value]
    return {"a": value}


def _chars(n: int) -> dict:
    """A provenance object whose JSON text (as the store measures it) is ``n`` characters."""
    return {"a": "x" * (n - len(json.dumps({"a": ""})))}


@pytest.mark.parametrize("field, at_limit, over, reason", [
    ("source", "s" * schema.MAX_TEXT, "s" * (schema.MAX_TEXT + 1), "201 characters long; the limit is 200"),
    ("error", "e" * 4000, "e" * 4001, "4001 characters long; the limit is 4000"),
    ("provenance", _nested(8), _nested(9), r"nested .*deep.* 8 levels"),
    ("provenance", _chars(64 * 1024), _chars(64 * 1024 + 1), "65537 characters as JSON; the limit is 65536"),
])
def test_each_text_and_nesting_limit_takes_its_value_and_refuses_one_more(tmp_path, field, at_limit, over, reason):
    base = _record(status="failed", zs_acc=None, ft_acc=None) if field == "error" else _record()
    assert schema.validate_record({**base, field: at_limit})[field] == at_limit
    assert parse_record_bytes(json.dumps({**base, field: at_limit}).encode())[field] == at_limit
    with pytest.raises(schema.SchemaError, match=reason):
        schema.validate_record({**base, field: over})
    with pytest.raises(RecordError, match=reason):
        parse_record_bytes(json.dumps({**base, field: over}).encode())


def test_a_record_file_of_exactly_1_mib_loads_and_one_byte_more_is_refused_naming_the_limit():
    text = json.dumps(_record())
    padded = text[:-1] + " " * (MAX_RECORD_BYTES - len(text)) + "}"
    assert len(padded.encode()) == MAX_RECORD_BYTES == 1 << 20 and parse_record_bytes(padded.encode())["run_id"]
    with pytest.raises(RecordError, match=r"record file is 1048577 bytes; the limit is 1048576"):
        parse_record_bytes((padded[:-1] + " }").encode())
