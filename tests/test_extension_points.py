"""Adding a transferability baseline, a dataset or a model as the guides say (core/transferability/__init__.py,
core/data/registry.py, core/models.py, core/model_specs.py): a partial or unusual addition is either used right or
refused by name."""
from __future__ import annotations

import numpy as np
import pytest

from core import transferability as tr
from tests.transferability_helpers import clusters


def _true_class_probability(probs, labels):
    """A toy baseline on the classifier's probabilities: the mean probability of the true class."""
    probs = np.asarray(probs, dtype=float)
    return float(probs[np.arange(len(labels)), labels].mean())


def _centre_distance(features, labels, *, label_embeddings):
    """A toy baseline on label embeddings: minus the mean distance of a feature to its class's table row."""
    table = np.asarray(label_embeddings, dtype=float)
    return -float(np.linalg.norm(np.asarray(features) - table[labels], axis=1).mean())


def test_a_new_probability_baseline_is_scored_on_the_probabilities(monkeypatch):
    # all_scores picked LEEP and NCE out by name: a new one on probs was called with the features instead and
    # stored 0.04 for a mean true-class probability of 0.34, without a word
    x, y, _, _ = clusters(n=60, d=5, k=3)
    p = np.random.default_rng(0).dirichlet(np.ones(3), 60)
    monkeypatch.setitem(tr.BASELINES, "toy_probs", (_true_class_probability, "higher = better; needs probs"))
    assert tr.baseline_input(_true_class_probability) == "probs"
    assert "toy_probs" not in tr.all_scores(x, y)  # no probs given: left out, as LEEP is
    assert tr.all_scores(x, y, probs=p)["toy_probs"] == _true_class_probability(p, y)


def test_a_new_label_embedding_baseline_gets_the_label_embeddings(monkeypatch):
    x, y, _, centres = clusters(n=60, d=5, k=3)
    monkeypatch.setitem(tr.BASELINES, "toy_tables", (_centre_distance, "higher = better; needs label_embeddings"))
    assert "toy_tables" not in tr.all_scores(x, y)
    got = tr.all_scores(x, y, label_embeddings=centres)["toy_tables"]
    assert got == _centre_distance(x, y, label_embeddings=centres)


def test_the_shipped_baselines_take_the_inputs_they_always_took():
    needs = {name: tr.baseline_input(fn) for name, (fn, _) in tr.BASELINES.items()}
    assert needs == {**dict.fromkeys(tr.BASELINES, "features"), "leep": "probs", "nce": "probs",
                     "emms": "label_embeddings"}


def test_every_baseline_is_named_where_baselines_are_listed(monkeypatch):
    # the About page listed nine baselines by hand, without gbc_diagonal; predictor_eval kept a copy of the names
    from core import cards, predictor_eval

    assert predictor_eval.TRANSFERABILITY_PREDICTORS == tuple(tr.BASELINES)
    assert cards.baseline_titles() == [cards.predictor_title(name) for name in tr.BASELINES]
    assert "GBC (diagonal Gaussians)" in cards.baseline_titles()
    monkeypatch.setitem(tr.BASELINES, "toy_probs", (_true_class_probability, "higher = better; needs probs"))
    assert cards.baseline_titles()[-1] == "toy probs"  # untitled: its name, in words


def test_every_baseline_has_a_title():
    """A contributor's baseline without a PREDICTOR_TITLES entry shows as its name in words; this names it."""
    from core import cards

    untitled = [name for name in tr.BASELINES if name not in cards.PREDICTOR_TITLES]
    assert not untitled, f"add a title for {untitled} to core.cards.PREDICTOR_TITLES"


def test_the_about_page_names_every_baseline(fixture_store):
    from core import cards
    from tests.app_helpers import page

    at = page("about").run()
    assert not at.exception
    caption = " ".join(c.value for c in at.caption)
    missing = [title for title in cards.baseline_titles() if title not in caption]
    assert not missing, f"the About page leaves out {missing}"


# ----------------------------------------------------------------------------- a torchvision dataset
def _fake_torchvision(monkeypatch, signature_of, splits=("train", "test")):
    """A torchvision dataset class with the signature of ``signature_of`` (what the registry reads), registered as
    the dataset 'toy-tv': train holds items 0-5, test 6-8, or, with neither 'train' nor 'split' in the signature,
    the whole set 0-9. Item i is an 8x8 image whose red channel is 10 i, of class i % 2."""
    import inspect

    import torchvision.datasets as tvd
    from PIL import Image

    from core.data import registry

    params = inspect.signature(signature_of).parameters

    class Toy:
        classes = ["cat", "dog"]

        def __init__(self, root, **kwargs):
            inspect.signature(signature_of).bind(root, **kwargs)  # a TypeError where torchvision's would raise one
            if kwargs.get("split", splits[0]) not in splits:  # as torchvision's verify_str_arg says it
                raise ValueError(f"Unknown value '{kwargs['split']}' for argument split. Valid values are "
                                 f"{{{', '.join(map(repr, splits))}}}.")
            if "train" not in params and "split" not in params:
                self._ids = list(range(10))
            else:
                test = kwargs.get("split", "train") == "test" or kwargs.get("train", True) is False
                self._ids = list(range(6, 9)) if test else list(range(6))
            self._labels = [i % 2 for i in self._ids]
            self._image_files = [f"img{i:02d}.png" for i in self._ids]

        def __len__(self):
            return len(self._ids)

        def __getitem__(self, i):
            return Image.new("RGB", (8, 8), (10 * self._ids[i], 0, 0)), self._labels[i]

    Toy.__signature__ = inspect.signature(signature_of)
    monkeypatch.setattr(tvd, "ToyTV", Toy, raising=False)
    monkeypatch.setitem(registry._REGISTRY, "toy-tv",
                        registry.DatasetSpec("toy-tv", "torchvision", "a photo of a {c}", "Toy", "ToyTV"))


def _reds(data):
    return sorted(int(np.asarray(image)[0, 0, 0]) // 10 for image in data.images)


def test_a_new_torchvision_dataset_with_a_split_argument_is_asked_for_its_test_split(monkeypatch, tmp_path):
    # classes were listed by name: Food101 or Flowers102 in the registry got no split argument, so their 'test'
    # split was torchvision's default 'train', and every run was scored on the images it trained on
    from core.data.registry import load_split

    def food101(root, split="train", transform=None, download=False):
        """Food101's way of asking for a split."""

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, food101)
    assert _reds(load_split("toy-tv", "train")) == list(range(6))
    assert _reds(load_split("toy-tv", "test")) == [6, 7, 8]


def test_a_new_torchvision_dataset_given_whole_is_split_within_each_class(monkeypatch, tmp_path):
    # one with neither 'train' nor 'split' (Caltech101) had to be named in a list of such classes, or both of
    # its splits were the whole set
    from core.data.registry import load_split

    def caltech101(root, target_type="category", transform=None, download=False):
        """Caltech101's: none, the dataset comes whole."""

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, caltech101)
    train, test = _reds(load_split("toy-tv", "train")), _reds(load_split("toy-tv", "test"))
    assert train and test and not set(train) & set(test) and sorted(train + test) == list(range(10))


def test_a_new_torchvision_dataset_without_a_train_split_is_refused_by_name(monkeypatch, tmp_path):
    # OxfordIIITPet's splits are 'trainval' and 'test': its ValueError was taken for missing files, and the user
    # read that the dataset 'could not be downloaded' and that the machine 'may be offline'
    from core.data.registry import load_split

    def pets(root, split="trainval", transform=None, download=False):
        """OxfordIIITPet's."""

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, pets, splits=("trainval", "test"))
    with pytest.raises(ValueError, match=r"'toy-tv': torchvision.datasets.ToyTV has no split 'train' .*'trainval'"):
        load_split("toy-tv", "train")


def test_the_study_datasets_are_asked_for_their_splits_as_before():
    import torchvision.datasets as tvd

    from core.data.registry import list_datasets, split_argument

    asked = {d.tv_class: split_argument(getattr(tvd, d.tv_class)) for d in list_datasets("torchvision")}
    assert asked == {"CIFAR100": "train", "MNIST": "train", "EuroSAT": None, "SUN397": None,
                     **dict.fromkeys(("SVHN", "STL10", "DTD", "GTSRB", "StanfordCars"), "split")}


def test_the_baseline_benchmark_times_a_new_probability_baseline_on_the_probabilities(monkeypatch, capsys):
    # jobs.bench_metrics also picked LEEP and NCE out by name: a new one on probs was timed on the features
    from jobs import bench_metrics

    given = []
    monkeypatch.setitem(tr.BASELINES, "toy_probs", (lambda probs, labels: given.append(probs.shape) or 0.0, "x"))
    bench_metrics.bench_baselines(60, 16, 3, 0)
    assert given == [(60, 3)] and "toy_probs" in capsys.readouterr().out


def test_a_registry_entry_with_a_typo_is_refused_by_name(monkeypatch):
    # a source 'torchvison' failed at load with "attribute name must be string, not 'NoneType'", a class
    # 'Food1O1' with AttributeError from the loader
    from core.data import registry

    with pytest.raises(ValueError, match=r"dataset 'food': unknown source 'torchvison'; use one of"):
        registry.DatasetSpec("food", "torchvison", "a photo of {c}", "Food-101")
    with pytest.raises(ValueError, match=r"dataset 'food': a torchvision dataset, and only one, names"):
        registry.DatasetSpec("food", "torchvision", "a photo of {c}", "Food-101")
    with pytest.raises(ValueError, match=r"dataset 'food': its template must contain '\{c\}'"):
        registry.DatasetSpec("food", "world", "a photo of food", "Food-101")
    monkeypatch.setitem(registry._REGISTRY, "food",
                        registry.DatasetSpec("food", "torchvision", "a photo of {c}", "Food-101", "Food1O1"))
    with pytest.raises(ValueError, match=r"dataset 'food': torchvision.datasets has no dataset class 'Food1O1'"):
        registry.load_split("food", "train")


# ----------------------------------------------------------------------------- a world task
def test_a_world_task_with_a_mistake_is_refused_by_name(monkeypatch):
    # a family 'shape' raised a bare StopIteration when first drawn; an attribute typo a KeyError; a keep filter
    # that keeps nothing looped for ever
    from core.data import world

    with pytest.raises(ValueError, match=r"world task 'toy': unknown family 'shape'; use one of \['shapes'"):
        world.WorldTask("toy", "shape", "shape", ("circle", "square"), "a photo of a {c}")
    with pytest.raises(ValueError, match=r"'toy': its template 'a photo of a \{C\}' has no '\{c\}' for the class"):
        world.WorldTask("toy", "shapes", "shape", ("circle", "square"), "a photo of a {C}")
    with pytest.raises(ValueError, match=r"'toy' needs at least 2 class names, got \['circle'\]"):
        world.WorldTask("toy", "shapes", "shape", ("circle",), "a photo of a {c}")
    with pytest.raises(ValueError, match=r"'toy': n_train and n_test must be positive integers, got 0"):
        world.WorldTask("toy", "shapes", "shape", ("circle", "square"), "a photo of a {c}", n_train=0)
    for name, attr, keep, why in (("toy-attr", "shap", None, r"family 'shapes' has no attribute 'shap'; it draws"),
                                  ("toy-keep", "shape", lambda a: a["shape"] < 0, "kept none of 20 batches")):
        task = world.WorldTask(name, "shapes", attr, ("circle", "square"), "a photo of a {c}", keep=keep, n_train=8)
        monkeypatch.setitem(world._BY_NAME, name, task)
        with pytest.raises(ValueError, match=why):
            world.load_world_split(name, "train")


# ----------------------------------------------------------------------------- a model
def test_an_architecture_config_added_in_a_running_process_is_registered(monkeypatch, tmp_path):
    # registration waited for the two shipped names only: once they were registered, a config added beside them
    # (the app's process, a notebook) was 'Unknown model'
    import shutil

    from core import models

    models.register_configs()  # the shipped ones, as any earlier load did
    for path in models.CONFIG_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    shutil.copy(models.CONFIG_DIR / "worldclip-tiny.json", tmp_path / "toy-arch-added-later.json")
    monkeypatch.setattr(models, "CONFIG_DIR", tmp_path)
    spec = models.check_model("toy-arch-added-later")
    assert spec.arch == "toy-arch-added-later" and spec.random_weights


def test_a_json_open_clip_skips_does_not_make_every_check_register_the_folder_again(monkeypatch, tmp_path):
    # a JSON in core/model_configs that is no architecture config (a half-written one, no text_cfg) is never in
    # open_clip.list_models(), so each check_model added the folder again: open_clip keeps every path added and
    # rescans them all, and a server's checks grew slower with each one
    import json
    import os
    import shutil

    import open_clip.factory as factory

    from core import models

    for path in models.CONFIG_DIR.glob("*.json"):
        shutil.copy(path, tmp_path / path.name)
    (tmp_path / "half-written.json").write_text(json.dumps({"embed_dim": 8}))
    monkeypatch.setattr(models, "CONFIG_DIR", tmp_path)
    monkeypatch.setattr(factory, "_MODEL_CONFIG_PATHS", list(factory._MODEL_CONFIG_PATHS))
    added = len(factory._MODEL_CONFIG_PATHS)
    for _ in range(5):
        assert models.check_model("worldclip-tiny").arch == "worldclip-tiny"
    assert len(factory._MODEL_CONFIG_PATHS) - added == 1
    with pytest.raises(models.ModelUnavailableError, match="Unknown model 'half-written'"):
        models.check_model("half-written")
    shutil.copy(tmp_path / "worldclip-tiny.json", tmp_path / "half-written.json")  # finished: registered now
    stat = (tmp_path / "half-written.json").stat()
    os.utime(tmp_path / "half-written.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert models.check_model("half-written").arch == "half-written"


def _fake_imagenet(monkeypatch, on_disk: bool):
    """A class shaped as torchvision's ImageNet: ``(root, split='train', **kwargs)``, the keywords handed to a
    parent that takes no ``download``; classes are tuples of synonyms; train holds items 0-3."""
    import torchvision.datasets as tvd
    from PIL import Image

    from core.data import registry

    class ToyImageNet:
        def __init__(self, root, split="train", **kwargs):
            if split not in ("train", "val"):
                raise ValueError(f"Unknown value '{split}' for argument split. Valid values are {{'train', 'val'}}.")
            if not on_disk:
                raise RuntimeError("The archive ILSVRC2012_devkit_t12.tar.gz is not present in the root directory")
            if kwargs:  # ImageFolder's signature has no download
                raise TypeError(f"__init__() got an unexpected keyword argument {next(iter(kwargs))!r}")
            self.classes, self.targets = [("tench", "Tinca tinca"), ("goldfish", "Carassius auratus")], [0, 1, 0, 1]

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return Image.new("RGB", (8, 8), (10 * i, 0, 0)), self.targets[i]

    monkeypatch.setattr(tvd, "ToyImageNet", ToyImageNet, raising=False)
    monkeypatch.setitem(registry._REGISTRY, "toy-in",
                        registry.DatasetSpec("toy-in", "torchvision", "a photo of a {c}", "Toy ImageNet", "ToyImageNet"))


def test_a_torchvision_dataset_that_takes_no_download_argument_loads_from_disk(monkeypatch, tmp_path):
    # ImageNet's keywords go to ImageFolder, which refuses download=False: files in place were read as missing,
    # then the user read that the set "could not be downloaded" and "this machine may be offline"; its class
    # names went into prompts as "a photo of a ('tench', 'Tinca tinca')"
    from core.data.registry import load_split

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    _fake_imagenet(monkeypatch, on_disk=True)
    train = load_split("toy-in", "train")
    assert train.class_names == ["tench", "goldfish"] and train.labels.tolist() == [0, 1, 0, 1]
    assert train.prompts[0] == "a photo of a tench"


def test_a_torchvision_dataset_that_cannot_download_says_so_when_its_files_are_missing(monkeypatch, tmp_path):
    from core.data.registry import DatasetUnavailableError, load_split

    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    _fake_imagenet(monkeypatch, on_disk=False)
    with pytest.raises(DatasetUnavailableError,
                       match=r"not in .*ILSVRC2012_devkit.* and torchvision cannot download it; put the files in"):
        load_split("toy-in", "train")
    with pytest.raises(ValueError, match=r"torchvision.datasets.ToyImageNet has no split 'test'"):
        load_split("toy-in", "test")
