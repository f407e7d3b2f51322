"""core.store.validate.json_depth counts brackets a chunk at a time: the same depths as counting the whole text at
once, in bounded memory."""
import json
import random
import tracemalloc

import pytest

from core.store import validate
from core.store.validate import json_depth


def _naive_depth(raw: bytes) -> int:
    """Depth by walking the text, strings (with their escapes) skipped."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        char = chr(byte)
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _random_json(rng: random.Random, depth: int = 0):
    kind = rng.random()
    if depth > 6 or kind < 0.3:
        return rng.choice([1, "a[b", 'q"]{', None, 2.5, "\\[", ""])
    if kind < 0.65:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{i}[": _random_json(rng, depth + 1) for i in range(rng.randrange(4))}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_chunked_depth_equals_a_walk_of_the_text_across_chunk_edges(monkeypatch, chunk):
    monkeypatch.setattr(validate, "DEPTH_CHUNK_BYTES", chunk)
    rng = random.Random(20261207)
    for _ in range(300):
        raw = json.dumps(_random_json(rng)).encode()
        assert json_depth(raw) == _naive_depth(raw), raw
    assert json_depth(b"") == 0 and json_depth(b"]]]") == 0 and json_depth(b"[[[") == 3


def test_a_large_sparse_text_is_counted_in_bounded_memory():
    """32 MiB of JSON text took 640 MiB of arrays (a 200 MB ingest input peaked at 4.5 GB)."""
    raw = b"[" + b" " * (32 << 20) + b"]"
    tracemalloc.start()
    try:
        assert json_depth(raw) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 160 << 20, f"{peak / 2**20:.0f} MiB"  # the blanked copy of the text (32 MiB) and one chunk's arrays
