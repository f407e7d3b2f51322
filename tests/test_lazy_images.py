"""Datasets of many images are read from their source when used (core.data.lazy), never held decoded all at once,
and give the same pixels, cache keys and embeddings as an eager load."""
from __future__ import annotations

import gc
import os
import pickle

import numpy as np
import pytest
from PIL import Image

from core.data.base import LabeledImages
from core.data.folder import image_files
from core.data.imaging import to_rgb
from core.data.lazy import ImageSourceChanged, LazyImages
from core.data.registry import load_split


def _folder(root, n_classes=3, per_class=7, size=(9, 5)):
    rng = np.random.default_rng(0)
    for c in range(n_classes):
        for i in range(per_class):
            path = root / "train" / f"class_{c}" / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
            (root / "test" / f"class_{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
                root / "test" / f"class_{c}" / f"{i:02d}.png")
    return root


def _eager(root, split="train"):
    """What the folder loader held before: every image decoded, in the loader's order."""
    classes = sorted(p for p in (root / split).iterdir())
    images = []
    for folder in classes:
        for path in image_files(folder):
            with Image.open(path) as im:
                images.append(to_rgb(im))
    return images


def _live_images() -> int:
    gc.collect()
    return sum(issubclass(type(o), Image.Image) for o in gc.get_objects())  # type(): no __class__ lookups


def test_a_loaded_folder_holds_no_decoded_image(tmp_path):
    """20,000 photos of 512 px held decoded took 15 GiB before a single one was embedded (1,600 took 1.5 GiB)."""
    root = _folder(tmp_path)
    before = _live_images()
    data = load_split(f"folder:{root}", "train")
    assert len(data) == 21 and _live_images() - before == 0  # was 21: every image decoded and kept
    sub = data.subset(np.arange(0, 21, 2))
    assert isinstance(sub.images, LazyImages) and _live_images() - before == 0  # a validation split stays unread


def test_lazy_folder_images_equal_the_eager_ones_and_keep_cache_keys(tmp_path):
    from core.embed import data_fingerprint

    root = _folder(tmp_path)
    data = load_split(f"folder:{root}", "train")
    eager = _eager(root)
    assert [np.asarray(im).tobytes() for im in data.images] == [np.asarray(im).tobytes() for im in eager]
    assert all(im.mode == "RGB" for im in data.images)
    as_list = LabeledImages(eager, data.labels, data.class_names, data.template, data.name)
    assert data_fingerprint(data) == data_fingerprint(as_list)  # existing cache entries still match
    index = np.array([20, 3, 3, 0])
    assert [np.asarray(im).tobytes() for im in data.subset(index).images] == \
           [np.asarray(eager[i]).tobytes() for i in index]
    assert np.asarray(data.images[-1]).tobytes() == np.asarray(eager[-1]).tobytes()
    assert [np.asarray(im).tobytes() for im in data.images[2:5]] == [np.asarray(im).tobytes() for im in eager[2:5]]
    assert pickle.loads(pickle.dumps(data)).images.keys == data.images.keys  # a grid worker can receive it


@pytest.mark.slow
def test_lazy_folder_embeds_as_the_eager_list(tmp_path):
    from core.embed import embed_dataset
    from core.models import load_model

    root = _folder(tmp_path, per_class=12, size=(40, 30))
    data = load_split(f"folder:{root}", "train")
    loaded = load_model("worldclip-tiny")
    eager = LabeledImages(_eager(root), data.labels, data.class_names, data.template, data.name)
    lazy = embed_dataset(loaded, data, use_cache=False, batch_size=5)
    held = embed_dataset(loaded, eager, use_cache=False, batch_size=5)
    np.testing.assert_array_equal(lazy.image, held.image)


def test_an_image_file_changed_after_loading_is_refused_with_its_name(tmp_path):
    root = _folder(tmp_path)
    data = load_split(f"folder:{root}", "train")
    target = root / "train" / "class_1" / "03.png"
    Image.new("RGB", (30, 30), (1, 2, 3)).save(target)
    os.utime(target, ns=(1, 1))
    with pytest.raises(ImageSourceChanged, match="03.png changed after its dataset was loaded"):
        data.images[10]
    target.unlink()
    with pytest.raises(ImageSourceChanged, match="03.png cannot be read any more"):
        list(data.images)
    assert np.asarray(data.images[0]).shape == (5, 9, 3)  # the others still read


def test_an_image_file_that_stops_decoding_is_refused_with_its_name(tmp_path):
    root = _folder(tmp_path)
    data = load_split(f"folder:{root}", "train")
    target = root / "train" / "class_0" / "00.png"
    st = target.stat()
    target.write_bytes(b"\x89PNG broken".ljust(st.st_size, b"\0"))  # same size
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # and date: only decoding tells
    with pytest.raises(ImageSourceChanged, match="00.png no longer decodes"):
        data.images[0]


def test_handed_out_and_slices_do_not_decode(tmp_path):
    reads = []
    images = LazyImages(lambda k: reads.append(k) or Image.new("RGB", (2, 2), (k, 0, 0)), range(6))
    data = LabeledImages(images, np.arange(6) % 2, ["a", "b"], "{c}")
    out = data.handed_out()
    assert out.images is images and images[1:4].keys == (1, 2, 3) and images.take([5, 0]).keys == (5, 0)
    assert reads == []
    assert np.asarray(images[-2])[0, 0, 0] == 4 and reads == [4]
    with pytest.raises(IndexError, match="out of range"):
        images[6]
    assert reads == [4]  # refused before any read


@pytest.mark.parametrize("name", ["sun397", "mnist", "stanford_cars"])
def test_a_torchvision_set_holds_no_decoded_image_and_reads_its_items_unchanged(tmp_path, monkeypatch, name):
    """SUN397's 87,000 training photos were decoded into one list by load_split, far past a laptop's memory."""
    import torchvision.datasets as tvd

    from tests.test_torchvision_data import _fake_mnist, _fake_stanford_cars, _fake_sun397

    {"sun397": lambda: _fake_sun397(tmp_path, per_class=10), "mnist": lambda: _fake_mnist(tmp_path, n=30),
     "stanford_cars": lambda: _fake_stanford_cars(tmp_path)}[name]()
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    dataset = "cars" if name == "stanford_cars" else name
    cls = {"sun397": tvd.SUN397, "mnist": tvd.MNIST, "stanford_cars": tvd.StanfordCars}[name]
    items, real_item = [], cls.__getitem__
    monkeypatch.setattr(cls, "__getitem__", lambda ds, i: items.append(i) or real_item(ds, i))
    before = _live_images()
    data = load_split(dataset, "train")
    assert len(data) > 5 and _live_images() - before == 0  # was len(data): every image decoded and kept
    assert items == []  # labels from the label lists: reading an item to learn its label decodes its image
    ds = {"sun397": lambda: tvd.SUN397(str(tmp_path)), "mnist": lambda: tvd.MNIST(str(tmp_path), train=True),
          "stanford_cars": lambda: tvd.StanfordCars(str(tmp_path), split="train")}[name]()
    index = list(data.images.keys)
    assert data.labels.tolist() == [ds[i][1] for i in index]  # labels read without decoding, as the items give them
    assert [np.asarray(im).tobytes() for im in data.images] == [np.asarray(to_rgb(ds[i][0])).tobytes() for i in index]
    assert len(load_split(dataset, "train", max_items=3).images) == 3


def test_a_job_whose_folder_changes_under_it_ends_in_one_line(tmp_path, monkeypatch, capsys):
    """A folder's images are read when used, so a file can change between the load and the read: jobs that read
    folders outside a grid cell (here jobs.predictors --rescore) ended in a RuntimeError traceback. It is a
    DatasetUnavailableError now, which every job reports in one line (exit 2) and jobs.check_before skips."""
    import types

    from core import embed, models, store
    from jobs import predictors
    from tests.fixtures import make_fixture_records

    root = _folder(tmp_path / "photos")
    rec = {**make_fixture_records(n_datasets=1, methods=("bitfit",))[0], "dataset": f"folder:{root}"}
    store.write_record(rec, tmp_path / "results")

    def embed_dataset(loaded, data):
        os.utime(root / "train" / "class_0" / "00.png", ns=(1, 1))  # another program touches a file meanwhile
        return list(data.images)

    monkeypatch.setattr(models, "load_model", lambda key, init_seed=None: types.SimpleNamespace(model=None))
    monkeypatch.setattr(embed, "embed_dataset", embed_dataset)
    assert predictors.main(["--results", str(tmp_path / "results"), "--rescore", "--no-selection"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        f"error: image file {root / 'train' / 'class_0' / '00.png'} changed after its dataset was loaded")
