"""Files, sockets and processes our code opens are closed on every path, the failing ones included (a leak shows
as a ResourceWarning, which Python hides by default and pytest's summary lists after the fact)."""
import gc
import warnings

import numpy as np
import pytest

from core.data.base import LabeledImages
from core.embed import embed_dataset
from core.models import load_model


def _resource_warnings(call):
    """The ResourceWarnings raised while ``call`` runs and its garbage is collected."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        call()
        gc.collect()
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("damage", ["truncated", "not a zip"])
def test_a_damaged_embedding_cache_entry_is_closed_when_it_is_set_aside(tmp_path, damage):
    rng = np.random.default_rng(0)
    sample = LabeledImages(rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, 5),
                           ["red", "blue"], "a photo of a {c} shape")
    tiny = load_model("worldclip-tiny-random")
    want = embed_dataset(tiny, sample, cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100] if damage == "truncated" else b"PK\x03\x04" + b"\0" * 40)
    assert _resource_warnings(lambda: embed_dataset(tiny, sample, cache_dir=tmp_path)) == []
    np.testing.assert_array_equal(embed_dataset(tiny, sample, cache_dir=tmp_path).image, want.image)
