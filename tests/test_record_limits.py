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
