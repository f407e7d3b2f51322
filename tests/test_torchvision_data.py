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


def test_iimm_data_naming_a_file_is_said_so_not_called_offline(tmp_path, monkeypatch):
    # a download was tried into it and failed (NotADirectoryError): 'this machine may be offline'
    data = tmp_path / "datasets.tar"
    data.write_bytes(b"x")
    monkeypatch.setenv("IIMM_DATA", str(data))
    with pytest.raises(DatasetUnavailableError, match=rf"MNIST cannot be read from or downloaded into {data}: it is a "
                                                      r"file, not a folder; set IIMM_DATA to a folder") as info:
        load_split("mnist", "test")
    assert "offline" not in str(info.value)


def _fake_mnist(root, n=10):
    """MNIST's raw idx files as torchvision.datasets.MNIST reads them: image i shows digit i % 10."""
    import struct

    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        pixels = np.zeros((n, 28, 28), np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + pixels.tobytes())
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())


def _fake_sun397(root, classes=("/a/airplane_cabin", "/b/boat_deck/outdoor"), per_class=5):
    base = root / "SUN397"
    base.mkdir(parents=True)
    (base / "ClassName.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
    for k, c in enumerate(classes):
        for i in range(per_class):
            path = base / c.lstrip("/") / f"sun_{k}{i:03d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (50 * k, 10 * i, 0)).save(path)


def test_class_names_read_as_their_prompts_name_them(tmp_path, monkeypatch):
    # MNIST's were '0 - zero' ('a photo of the number: "0 - zero"'; SVHN's are '0'), and underscores stayed in
    # prompts ('a photo of a airplane_cabin') where image folders read them as spaces
    _fake_mnist(tmp_path)
    _fake_sun397(tmp_path)
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    mnist = load_split("mnist", "test")
    assert mnist.class_names == [str(d) for d in range(10)] and mnist.labels.tolist() == list(range(10))
    assert mnist.prompts[7] == 'a photo of the number: "7"'
    assert load_split("sun397", "train").class_names == ["airplane cabin", "boat deck/outdoor"]


def test_sun397_split_does_not_depend_on_the_order_the_file_system_lists_files(tmp_path, monkeypatch):
    # SUN397 lists its images with rglob (file system order): the split was decided by position, so the same
    # copy of the data on another machine split differently (README: split by a hash of each image's path)
    import pathlib

    _fake_sun397(tmp_path, per_class=10)
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))

    def pixels(data):
        return [tuple(np.asarray(im)[0, 0]) for im in data.images]

    listed = pathlib.Path.rglob
    ordered = {}
    for order in ("sorted", "reversed"):
        monkeypatch.setattr(pathlib.Path, "rglob", lambda self, pattern, f=listed, o=order:
                            iter(sorted(f(self, pattern), reverse=o == "reversed")))
        ordered[order] = [pixels(load_split("sun397", s)) for s in ("train", "test")]
    assert ordered["sorted"] == ordered["reversed"]
    assert [len(p) for p in ordered["sorted"]] == [16, 4]


def test_sun397_split_is_the_same_when_iimm_data_is_written_with_a_tilde(tmp_path, monkeypatch):
    # torchvision expands '~' in its root, the registry did not: no image path was under the unexpanded root, so
    # the split keys were absolute paths and the split depended on the home folder's name
    _fake_sun397(tmp_path / "data", per_class=20)

    def test_pixels():
        return [tuple(np.asarray(im)[0, 0]) for im in load_split("sun397", "test").images]

    monkeypatch.setenv("IIMM_DATA", str(tmp_path / "data"))
    plain = test_pixels()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IIMM_DATA", "~/data")
    assert test_pixels() == plain and len(plain) == 8


def test_gtsrb_and_eurosat_classes_are_named_in_words_a_prompt_can_use(tmp_path, monkeypatch):
    # GTSRB's classes were their ids ('a photo of a "14" traffic sign'), EuroSAT's CamelCase ('AnnualCrop')
    gtsrb = tmp_path / "gtsrb"
    for cls in range(3):
        folder = gtsrb / "GTSRB" / "Training" / f"{cls:05d}"
        folder.mkdir(parents=True)
        Image.new("RGB", (8, 8), (80 * cls, 0, 0)).save(folder / "a.ppm")
    (gtsrb / "GTSRB" / "Final_Test" / "Images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(gtsrb / "GTSRB" / "Final_Test" / "Images" / "00000.ppm")
    (gtsrb / "GT-final_test.csv").write_text("Filename;ClassId\n00000.ppm;2\n", encoding="utf-8")
    for cls in ("AnnualCrop", "SeaLake", "Forest"):
        folder = tmp_path / "eurosat" / "2750" / cls
        folder.mkdir(parents=True)
        for i in range(5):
            Image.new("RGB", (8, 8), (i, 0, 0)).save(folder / f"{cls}_{i}.jpg")
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    train, test = load_split("gtsrb", "train"), load_split("gtsrb", "test")
    assert train.class_names == ["speed limit 20 km/h", "speed limit 30 km/h", "speed limit 50 km/h"]
    assert train.labels.tolist() == [0, 1, 2] and test.labels.tolist() == [2]
    assert test.prompts[2] == 'a photo of a "speed limit 50 km/h" traffic sign'
    from core.data.registry import GTSRB_CLASS_NAMES

    assert len(GTSRB_CLASS_NAMES) == 43 and GTSRB_CLASS_NAMES[14] == "stop" and GTSRB_CLASS_NAMES[17] == "no entry"
    assert load_split("eurosat", "train").class_names == ["annual crop", "forest", "sea lake"]


def test_mnist_train_and_test_come_from_their_own_files(tmp_path, monkeypatch):
    """train= 'train-*' files (20 images here), test = 't10k-*' (10): a swapped flag trains on the test set."""
    import struct

    _fake_mnist(tmp_path)
    raw = tmp_path / "MNIST" / "raw"
    n = 20
    (raw / "train-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + bytes(n * 28 * 28))
    (raw / "train-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + bytes([3] * n))
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    train, test = load_split("mnist", "train"), load_split("mnist", "test")
    assert train.labels.tolist() == [3] * 20 and test.labels.tolist() == list(range(10))
    assert len(load_split("mnist", "train", max_items=7)) == 7


def test_load_split_refuses_an_unknown_split_and_keeps_max_items(tmp_path):
    for cls in ("cat", "dog"):  # a flat image folder would read any split but 'test' as its train part
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (8, 6)).save(tmp_path / cls / f"{i}.png")
    for name in ("shape-kind", f"folder:{tmp_path}"):
        with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
            load_split(name, "val")
    assert len(load_split("shape-kind", "test", max_items=5)) == 5


def test_train_size_is_known_for_both_worlds_only():
    from core.data.registry import train_size

    assert (train_size("shape-kind"), train_size("w2-shape-kind")) == (1500, 2000)
    assert train_size("cifar100") is None and train_size("folder:/x") is None and train_size("nope") is None


def test_a_stalled_download_times_out_instead_of_hanging(tmp_path, monkeypatch):
    """torchvision opens downloads with no timeout: a server that stops sending hung the grid cell for good.
    The download now runs under a socket timeout (the previous default restored after), and a stall says so."""
    import socket

    import torchvision.datasets as tvd

    from core.network import DOWNLOAD_STALL_S

    seen = []

    class StalledMNIST:
        def __init__(self, root, train, download):
            if not download:
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            seen.append(socket.getdefaulttimeout())
            raise TimeoutError("timed out")

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    monkeypatch.setattr(tvd, "MNIST", StalledMNIST)
    before = socket.getdefaulttimeout()
    with pytest.raises(DatasetUnavailableError, match=r"TimeoutError, no data for 60 s\); this machine may be"):
        load_split("mnist", "train")
    assert seen == [DOWNLOAD_STALL_S] and socket.getdefaulttimeout() == before


def test_stall_timeout_refuses_a_timeout_that_is_not_positive():
    from core.network import is_stall, stall_timeout

    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="seconds must be positive"):
            with stall_timeout(bad):
                pass
    assert is_stall(TimeoutError()) and not is_stall(OSError("refused")) and not is_stall(ValueError())


def test_stall_timeout_puts_back_a_previous_default_that_was_set():
    """The previous process-wide default comes back, not None: a process that set its own timeout keeps it."""
    import socket

    from core.network import stall_timeout

    before = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(7.5)
        with stall_timeout(3.0):
            assert socket.getdefaulttimeout() == 3.0
        assert socket.getdefaulttimeout() == 7.5
        with pytest.raises(KeyError), stall_timeout(3.0):
            raise KeyError("boom")
        assert socket.getdefaulttimeout() == 7.5
    finally:
        socket.setdefaulttimeout(before)


def test_a_download_that_fails_without_stalling_is_not_called_a_stall(tmp_path, monkeypatch):
    """Only a timeout says 'no data for 60 s'; a refused connection names its own error and no stall."""
    import torchvision.datasets as tvd

    class RefusedMNIST:
        def __init__(self, root, train, download):
            if not download:
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            raise ConnectionRefusedError("refused")

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    monkeypatch.setattr(tvd, "MNIST", RefusedMNIST)
    with pytest.raises(DatasetUnavailableError, match=r"\(ConnectionRefusedError\); this machine may be") as info:
        load_split("mnist", "train")
    assert "no data for" not in str(info.value)


def test_overlapping_stall_timeouts_in_two_threads_restore_the_first_default():
    """Two app threads' downloads overlapping: each block restored the default it had found, so the one that
    closed last put 60 s back for the whole process, for good."""
    import socket

    from core.network import stall_timeout

    before = socket.getdefaulttimeout()
    first, second = stall_timeout(), stall_timeout()
    first.__enter__()
    second.__enter__()  # opened while the first is open: it finds 60 s
    first.__exit__(None, None, None)
    assert socket.getdefaulttimeout() == 60.0  # the second download still runs under the timeout
    second.__exit__(None, None, None)
    assert socket.getdefaulttimeout() == before
