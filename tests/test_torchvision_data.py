"""The study's torchvision datasets as a user who already has their files sees them (offline fakes in the
on-disk layout torchvision reads, under $IIMM_DATA)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.registry import DatasetUnavailableError, load_split


def _fake_stanford_cars(root):
    """Stanford Cars as torchvision.datasets.StanfordCars reads it: 3 classes, 6 train and 3 test images."""
    import scipy.io as sio

    base, devkit = root / "stanford_cars", root / "stanford_cars" / "devkit"
    devkit.mkdir(parents=True)
    sio.savemat(devkit / "cars_meta.mat", {"class_names": np.array(["Audi TT", "BMW M3", "Fiat 500"], dtype=object)})
    for folder, annotations, n in (("cars_train", devkit / "cars_train_annos.mat", 6),
                                   ("cars_test", base / "cars_test_annos_withlabels.mat", 3)):
        (base / folder).mkdir()
        rows = np.zeros(n, dtype=[("fname", object), ("class", np.uint8)])
        for i in range(n):
            Image.new("RGB", (12, 8), (40 * (i % 3), 0, 0)).save(base / folder / f"{i:05d}.jpg")
            rows[i] = (f"{i:05d}.jpg", i % 3 + 1)  # classes counted from 1 in the .mat files
        sio.savemat(annotations, {"annotations": rows})


def test_stanford_cars_already_on_disk_loads(tmp_path, monkeypatch):
    # torchvision's StanfordCars(download=True) always raises (its URL is gone): cars could never be loaded
    _fake_stanford_cars(tmp_path)
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    train, test = load_split("cars", "train"), load_split("cars", "test")
    assert train.class_names == test.class_names == ["Audi TT", "BMW M3", "Fiat 500"]
    assert train.labels.tolist() == [0, 1, 2, 0, 1, 2] and test.labels.tolist() == [0, 1, 2]
    assert train.prompts[0] == "a photo of a Audi TT" and train.images[0].size == (12, 8)


def test_stanford_cars_missing_says_it_cannot_be_downloaded_and_where_it_goes(tmp_path, monkeypatch):
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match=r"can no longer download it; put the files in .*StanfordCars"):
        load_split("cars", "train")
