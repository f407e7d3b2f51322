"""What the embedding cache serves: an entry is served only where the call would compute the same numbers."""
import numpy as np
import pytest

import core.embed as embed_module
from core.data.base import LabeledImages
from core.embed import embed_dataset

DEFAULT_IMAGE_BATCH = 256  # core.embed.DEFAULT_IMAGE_BATCH
REAL_EMBED_IMAGES = embed_module.embed_images


@pytest.fixture(scope="module")
def sample():
    rng = np.random.default_rng(1)
    return LabeledImages(rng.integers(0, 255, (9, 32, 32, 3), dtype=np.uint8), rng.integers(0, 2, 9),
                         ["red", "blue"], "a {c} shape")


def _forward_passes(monkeypatch) -> list[int]:
    """The batch sizes of the image forward passes that embed_dataset runs from now on."""
    sizes: list[int] = []
    real = REAL_EMBED_IMAGES

    def counted(loaded, images, *, batch_size=DEFAULT_IMAGE_BATCH, progress=None):
        sizes.append(batch_size)
        return real(loaded, images, batch_size=batch_size, progress=progress)

    monkeypatch.setattr(embed_module, "embed_images", counted)
    return sizes


def test_an_entry_made_with_another_image_batch_is_not_served(loaded, sample, tmp_path, monkeypatch):
    # batch 1 rounds otherwise than the default batch (on a 2-core AMD EPYC, 1 vs 256: every row, by up to 1e-7);
    # its entry was served to every later default call, which then never saw the default batch's numbers
    sizes = _forward_passes(monkeypatch)
    one = embed_dataset(loaded, sample, cache_dir=tmp_path, batch_size=1)
    default = embed_dataset(loaded, sample, cache_dir=tmp_path)
    assert sizes == [1, DEFAULT_IMAGE_BATCH]
    np.testing.assert_array_equal(default.image, REAL_EMBED_IMAGES(loaded, sample.images))
    again = embed_dataset(loaded, sample, cache_dir=tmp_path)
    one_again = embed_dataset(loaded, sample, cache_dir=tmp_path, batch_size=1)
    assert sizes == [1, DEFAULT_IMAGE_BATCH]  # each is a hit of its own entry
    np.testing.assert_array_equal(again.image, default.image)
    np.testing.assert_array_equal(one_again.image, one.image)
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_the_default_batch_keeps_its_key_and_an_explicit_default_hits_it(loaded, sample, tmp_path, monkeypatch):
    assert embed_module.DEFAULT_IMAGE_BATCH == DEFAULT_IMAGE_BATCH
    embed_dataset(loaded, sample, cache_dir=tmp_path)
    sizes = _forward_passes(monkeypatch)
    embed_dataset(loaded, sample, cache_dir=tmp_path, batch_size=DEFAULT_IMAGE_BATCH)
    assert sizes == [] and len(list(tmp_path.glob("*.npz"))) == 1


@pytest.mark.parametrize("bad", [0, -3, 2.5, "4", True])
def test_a_bad_batch_size_is_refused_before_the_cache_is_read(loaded, sample, tmp_path, bad):
    with pytest.raises(ValueError, match="batch_size"):
        embed_dataset(loaded, sample, cache_dir=tmp_path, batch_size=bad)
    assert not list(tmp_path.glob("*.npz"))


def test_a_write_removes_the_temporaries_that_killed_writes_left(loaded, sample, tmp_path):
    """A write killed between its temporary and the rename (SIGKILL, a pre-empted job) left a `.tmp-*.npz` as
    large as the entry, never read and never removed; a later write removes those older than an hour."""
    import os
    import time

    old, fresh = tmp_path / ".tmp-k1ll3d00.npz", tmp_path / ".tmp-wr1t1ng0.npz"  # fresh: another write in progress
    for f in (old, fresh):
        f.write_bytes(b"\0" * 1000)
    hours_ago = time.time() - 2 * 3600  # core.embed.ABANDONED_TMP_S is an hour
    os.utime(old, (hours_ago, hours_ago))
    embed_dataset(loaded, sample, cache_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.glob(".tmp-*")) == [fresh.name]
    assert len(list(tmp_path.glob("[0-9a-f]*.npz"))) == 1  # the entry just written
