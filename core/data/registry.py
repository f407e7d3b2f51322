"""One dataset registry: the generated world's tasks, image folders on disk, and torchvision sets.

``load_split(name, split)`` returns a ``LabeledImages`` whatever the source:

* ``shape-kind``, ``letters``, ... — the generated world v1 (offline, deterministic);
* ``w2-sign-arrow``, ``w2-cell-count``, ... — the long-tailed world v2 (``core.data.world2``);
* ``folder:/some/dir`` — ``dir/<split>/<class>/*.png`` (or ``dir/<class>/*`` split 80/20 within each
  class; see ``core.data.folder``), prompted ``a photo of a {c}``: your own images need no registry entry;
* ``cifar100``, ``dtd``, ``eurosat``, ... — the reference study's datasets through torchvision,
  downloaded into ``$IIMM_DATA`` when online; offline, one clear sentence says so.

To add a dataset:

* Your own images need no code: ``folder:/path`` (``core.data.folder``), in a grid's ``datasets``, the forecast
  page's upload, or ``load_split``.
* A torchvision set: one ``DatasetSpec(name, "torchvision", template, description, tv_class)`` in
  ``_TORCHVISION`` below (``template`` with ``{c}``, SPEC §6: one per dataset). Its split is asked for as its
  class's signature says (:func:`split_argument`: ``train=``, ``split=``, or neither, when the set comes whole
  and is split 80/20 within each class as folders are); a class whose splits are not called 'train' and 'test'
  (OxfordIIITPet's 'trainval') is refused by name. A class that takes no ``download`` (ImageNet) is read from disk
  only, and says so when its files are missing. Class names go into the prompts as torchvision gives them,
  ``_`` read as a space; others need a line in ``_prompt_name`` (as EuroSAT's and MNIST's have). A mistake in the
  entry (source, template, tv_class) is a ValueError naming it at import or first load.
* A world v1 task: a ``WorldTask`` in ``core.data.world.TASKS`` (a family of ``core.data.world.FAMILIES``, the
  attribute it classifies, class names in attribute order, a template, render knobs, an optional ``keep``
  filter). It is registered here and, unless named in ``core.data.world.OOD_PANEL``, listed by
  :func:`world_finetune_tasks`; a grid runs it where its ``datasets`` name it (``jobs/configs/default.toml``
  lists the fifteen by name). ``tests/test_world.py`` checks that every word of its prompts is in the
  pretraining captions and that at least fifteen tasks are fine-tuned on. A world v2 task is a
  ``World2Task`` in ``core.data.world2.suites``. Mistakes (unknown family or attribute, a filter that keeps
  nothing) are ValueErrors naming the task.

Each dataset's runs record its name, template and ``provenance.data_fingerprint``; the app, the ranking and the
forecast read any dataset name in the records, registered here or not.
"""
from __future__ import annotations

import inspect
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.base import LabeledImages, check_split, is_whole_number
from core.data.errors import DatasetUnavailableError
from core.data import world2
from core.data.world import FINETUNE_TASKS, TASKS, load_world_split
from core.network import DOWNLOAD_STALL_S, is_stall, stall_timeout
from core.text import did_you_mean

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """name, where it comes from, its single prompt template, and a one-line description."""

    name: str
    source: str  # world | world-v2 | torchvision | folder
    template: str
    description: str
    tv_class: str | None = None  # torchvision.datasets class name

    def __post_init__(self) -> None:
        """ValueError naming what a registry entry gets wrong: one with source 'torchvison' was loaded as a
        torchvision set and failed on its class None ('attribute name must be string'), far from the typo."""
        if self.source not in SOURCES:
            raise ValueError(f"dataset {self.name!r}: unknown source {self.source!r}; use one of {list(SOURCES)}")
        if "{c}" not in self.template:
            raise ValueError(f"dataset {self.name!r}: its template must contain '{{c}}', got {self.template!r}")
        if (self.source == "torchvision") != bool(self.tv_class):
            raise ValueError(f"dataset {self.name!r}: a torchvision dataset, and only one, names its "
                             f"torchvision.datasets class (tv_class), got source {self.source!r}, tv_class "
                             f"{self.tv_class!r}")


#: Where a dataset comes from (DatasetSpec.source).
SOURCES = ("world", "world-v2", "torchvision", "folder")

# SPEC section 6: one template per dataset, no ensembling.
_TORCHVISION = (
    DatasetSpec("cars", "torchvision", "a photo of a {c}", "Stanford Cars", "StanfordCars"),
    DatasetSpec("cifar100", "torchvision", "a photo of a {c}", "CIFAR-100", "CIFAR100"),
    DatasetSpec("dtd", "torchvision", "a photo of a {c} texture", "Describable Textures", "DTD"),
    DatasetSpec("eurosat", "torchvision", "a centered satellite photo of a {c}", "EuroSAT", "EuroSAT"),
    DatasetSpec("gtsrb", "torchvision", 'a photo of a "{c}" traffic sign', "GTSRB", "GTSRB"),
    DatasetSpec("mnist", "torchvision", 'a photo of the number: "{c}"', "MNIST", "MNIST"),
    DatasetSpec("stl10", "torchvision", "a photo of a {c}", "STL-10", "STL10"),
    DatasetSpec("sun397", "torchvision", "a photo of a {c}", "SUN397", "SUN397"),
    DatasetSpec("svhn", "torchvision", 'a photo of the number: "{c}"', "SVHN", "SVHN"),
)
_REGISTRY: dict[str, DatasetSpec] = {
    **{t.name: DatasetSpec(t.name, "world", t.template, t.description) for t in TASKS},
    **{t.name: DatasetSpec(t.name, "world-v2", t.template, f"world v2, {t.subworld}: {', '.join(t.attrs)}")
       for t in world2.TASKS},
    **{d.name: d for d in _TORCHVISION},
}


def list_datasets(source: str | None = None) -> list[DatasetSpec]:
    """Registered datasets, optionally of one source ('world', 'world-v2' or 'torchvision'); ValueError for
    another source (it gave an empty list, as if that source had no datasets)."""
    sources = sorted({d.source for d in _REGISTRY.values()})
    if source is not None and source not in sources:
        raise ValueError(f"unknown dataset source {source!r}{did_you_mean(source, sources)}; use one of {sources}")
    return [d for d in _REGISTRY.values() if source is None or d.source == source]


def world_finetune_tasks() -> tuple[str, ...]:
    """Names of the world v1 tasks that methods are fine-tuned on (every task outside the OOD panel)."""
    return FINETUNE_TASKS


def get_dataset(name: str) -> DatasetSpec:
    """The spec of a registered dataset or a ``folder:`` path; ValueError for unknown names (and non-strings)."""
    if not isinstance(name, str):
        raise ValueError(f"a dataset name must be a string, got {name!r}; known: {', '.join(_REGISTRY)} "
                         "or folder:/path")
    if name.startswith("folder:"):
        if not name[7:].strip():  # 'folder:' read the working folder, '.', and said it had no images
            raise ValueError(f"dataset {name!r} names no folder; give its path, e.g. folder:/path/to/images")
        return DatasetSpec(name, "folder", "a photo of a {c}", f"image folder {name[7:]}")
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}{did_you_mean(name, _REGISTRY)}; known: {', '.join(_REGISTRY)} "
                         "or folder:/path")
    return _REGISTRY[name]


def train_size(name: str) -> int | None:
    """How many images the train split of ``name`` holds, where that is known without loading it (the
    generated worlds' tasks); None for other datasets and unknown names."""
    spec = _REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        return None
    if spec.source == "world":
        return next(t.n_train for t in TASKS if t.name == name)
    if spec.source == "world-v2":
        return world2.get_task(name).n_train
    return None


def load_split(name: str, split: str, *, max_items: int | None = None) -> LabeledImages:
    """A dataset split ('train' or 'test') as LabeledImages; see the module docstring for names.

    max_items: None for the whole split, else a positive whole number: the split's first max_items items
    (all of them where it holds fewer). ValueError for anything else, which used to give an empty set
    (0, negative numbers) or an IndexError (2.0)."""
    check_split(split)
    if max_items is not None and not is_whole_number(max_items, 1):
        raise ValueError(f"max_items must be a positive whole number or None (the whole split), got {max_items!r}")
    spec = get_dataset(name)
    if spec.source == "world":
        data = load_world_split(name, split)
    elif spec.source == "world-v2":
        data = world2.load_split(name, split)
    elif spec.source == "folder":
        data = _load_folder(Path(name[7:]), split, spec.template)
    else:
        data = _load_torchvision(spec, split, max_items)
    if max_items is not None and len(data) > max_items:
        data = data.subset(np.arange(max_items))
    return data


def _load_folder(root: Path, split: str, template: str) -> LabeledImages:
    from core.data.folder import FolderDatasetError, load_folder

    try:
        return load_folder(root, split, template)
    except FolderDatasetError as exc:
        raise DatasetUnavailableError(str(exc)) from None


NO_DOWNLOAD = ("StanfordCars",)  # torchvision cannot download it any more (its source URL is gone)


def split_argument(tv_class: type) -> str | None:
    """How a torchvision dataset class is asked for a split, read from its signature: ``"train"`` (a bool,
    CIFAR-100, MNIST), ``"split"`` (the split's name, SVHN, DTD, GTSRB...) or None: it has neither and gives the
    dataset whole (EuroSAT, SUN397), which is then split within each class as image folders are. The classes
    were listed by name: one added to the registry in neither list got no split argument, so its 'test' split
    was torchvision's default ('train' for Food101 and Flowers102) and every run tested on its training images."""
    params = inspect.signature(tv_class).parameters
    return "train" if "train" in params else "split" if "split" in params else None


def _targets(ds: object) -> list[int]:
    """Every item's label, read without decoding images where the dataset keeps them."""
    for attr in ("targets", "labels", "_labels"):
        if isinstance(getattr(ds, attr, None), (list, tuple, np.ndarray)):
            return [int(t) for t in getattr(ds, attr)]
        if hasattr(getattr(ds, attr, None), "tolist"):  # MNIST's tensor
            return [int(t) for t in getattr(ds, attr).tolist()]
    if isinstance(getattr(ds, "_samples", None), list):  # GTSRB: (path, label) pairs
        return [int(label) for _, label in ds._samples]
    return [int(ds[i][1]) for i in range(len(ds))]


def _item_keys(ds: object, root: Path) -> list[str]:
    """Each item's file path under ``root`` (EuroSAT's ImageFolder samples, SUN397's image files), the key its
    split is decided by: SUN397 lists its files in the file system's order, so an item's position names
    another image on another machine. Positions only where a dataset names no files."""
    files = getattr(ds, "_image_files", None) or [path for path, _ in getattr(ds, "samples", [])]
    if len(files) != len(ds):
        return [str(i) for i in range(len(ds))]
    return [Path(f).relative_to(root).as_posix() if Path(f).is_relative_to(root) else str(f) for f in files]


#: What each of GTSRB's 43 class ids (0-42) shows, in words: torchvision names its classes by number only, and a
#: prompt about a '"14" traffic sign' tells a text tower nothing (the meanings are the German road signs').
GTSRB_CLASS_NAMES = (
    *(f"speed limit {v} km/h" for v in (20, 30, 50, 60, 70, 80)), "end of speed limit 80 km/h",
    "speed limit 100 km/h", "speed limit 120 km/h", "no overtaking", "no overtaking by trucks",
    "right of way at the next junction", "priority road", "give way", "stop", "no vehicles", "no trucks",
    "no entry", "danger", "bend to the left", "bend to the right", "double bend", "uneven road",
    "slippery road", "road narrowing on the right", "road works", "traffic lights", "pedestrians",
    "children crossing", "cyclists crossing", "ice or snow", "wild animals crossing",
    "end of all speed and overtaking limits", "turn right ahead", "turn left ahead", "ahead only",
    "ahead or right only", "ahead or left only", "keep right", "keep left", "roundabout",
    "end of no overtaking", "end of no overtaking by trucks")


def _prompt_name(spec: DatasetSpec, name: str) -> str:
    """A torchvision class name as the dataset's prompt names it: MNIST's '7 - seven' is the number its
    template quotes ('a photo of the number: "7"', as SVHN's are), EuroSAT's 'AnnualCrop' is 'annual crop',
    and '_' reads as a space as it does in image folders (CIFAR-100's 'aquarium_fish', SUN397's
    'airplane_cabin'). GTSRB's ids are named by :data:`GTSRB_CLASS_NAMES`."""
    if spec.tv_class == "MNIST":
        name = name.split(" - ", 1)[0]
    if spec.tv_class == "EuroSAT":  # 'AnnualCrop', 'SeaLake': the words of the name, as a sentence has them
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()
    return name.replace("_", " ")


def data_root() -> Path:
    """Where torchvision datasets are read from and downloaded to: ``$IIMM_DATA`` (``~`` expanded), else
    ``~/.cache/iimm-data``. Set but empty counts as not set (``Path("")`` is the working folder, where a download
    would have landed); the home folder is looked up only when it is needed. DatasetUnavailableError where it is
    needed and there is none to find (no $HOME and a user id the password database does not know)."""
    from core.env_folders import NoHomeFolderError, env_folder

    env = os.environ.get("IIMM_DATA", "").strip()
    try:
        return env_folder("IIMM_DATA", lambda: Path.home() / ".cache" / "iimm-data")
    except (NoHomeFolderError, RuntimeError):  # RuntimeError: Path.home's "Could not determine home directory."
        where = f"IIMM_DATA={env}" if env else "the default ~/.cache/iimm-data"
        raise DatasetUnavailableError(
            f"no home folder can be found here for {where}: set IIMM_DATA to the folder, without '~', that holds "
            "(or is to hold) the torchvision datasets") from None


def _load_torchvision(spec: DatasetSpec, split: str, max_items: int | None) -> LabeledImages:
    import torchvision.datasets as tvd

    from core.data.lazy import DatasetItemImage, LazyImages

    # '~' expanded as torchvision expands it: the split keys are paths under this root (see _item_keys)
    root = data_root()
    if root.exists() and not root.is_dir():  # was a download tried and 'this machine may be offline'
        raise DatasetUnavailableError(f"{spec.description} cannot be read from or downloaded into {root}: it is a file, "
                                      "not a folder; set IIMM_DATA to a folder (unset, the datasets go to "
                                      "~/.cache/iimm-data)")
    cls = getattr(tvd, spec.tv_class, None)
    if not isinstance(cls, type):  # a typo in a registry entry: AttributeError from deep in the loader
        raise ValueError(f"dataset {spec.name!r}: torchvision.datasets has no dataset class {spec.tv_class!r} "
                         "(its tv_class in core.data.registry)")
    kwargs: dict = {"root": str(root)}
    asked_by = split_argument(cls)
    if asked_by == "train":
        kwargs["train"] = split == "train"
    elif asked_by == "split":
        kwargs["split"] = split
    where = (f"put the files in {root} as torchvision.datasets.{spec.tv_class} lays them out (the IIMM_DATA "
             "environment variable names another folder)")
    params = inspect.signature(cls).parameters
    # ImageNet takes no download argument (its **kwargs go to ImageFolder, which refuses one): asking it for
    # download=False raised a TypeError read as missing files, then "could not be downloaded ... offline"
    named_download = "download" in params
    try:  # files already in place: read them, without a download attempt (Stanford Cars' always raises)
        ds = cls(**kwargs, download=False) if named_download else cls(**kwargs)
    except ValueError as exc:
        if asked_by == "split" and "argument split" in str(exc):  # torchvision's verify_str_arg, before any file
            raise ValueError(f"dataset {spec.name!r}: torchvision.datasets.{spec.tv_class} has no split {split!r} "
                             f"({exc}); core.data.registry asks for 'train' and 'test' by those names") from None
        missing: Exception = exc
        ds = None
    except Exception as exc:  # noqa: BLE001 (torchvision raises RuntimeError, scipy/PIL others)
        missing, ds = exc, None
    if ds is None:
        cannot_download = DatasetUnavailableError(
            f"{spec.description} is not in {root} ({type(missing).__name__}: {missing}) and torchvision "
            f"{'can no longer' if spec.tv_class in NO_DOWNLOAD else 'cannot'} download it; {where}, or use a "
            "generated-world task such as 'shape-kind'.")
        takes_keywords = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if spec.tv_class in NO_DOWNLOAD or not (named_download or takes_keywords):
            raise cannot_download from missing
        try:
            with stall_timeout(DOWNLOAD_STALL_S):
                ds = cls(**kwargs, download=True)
        except Exception as exc:  # network errors take many forms; all mean the same to a user
            # download passed on through **kwargs: refused by a parent (ImageFolder's TypeError), or ignored, the
            # same error again (ImageNet checks its archives first: no download was tried, none can be)
            if not named_download and ((isinstance(exc, TypeError) and "download" in str(exc))
                                       or (type(exc) is type(missing) and str(exc) == str(missing))):
                raise cannot_download from missing
            stalled = f", no data for {DOWNLOAD_STALL_S:g} s" if is_stall(exc) else ""
            raise DatasetUnavailableError(
                f"{spec.description} could not be downloaded into {root} ({type(exc).__name__}{stalled}); this "
                f"machine may be offline — {where}, or use a generated-world task such as 'shape-kind' instead."
            ) from exc
    indices = list(range(len(ds)))
    # ImageNet's classes are tuples of synonyms ('tench', 'Tinca tinca'): the first is the common name
    classes = [str(c[0] if isinstance(c, (tuple, list)) and c else c) for c in getattr(ds, "classes", [])]
    targets = _targets(ds) if asked_by is None or not classes else []
    if asked_by is None:  # torchvision gives these whole: split within each class, as image folders do
        from core.data.folder import split_within_class

        keys = _item_keys(ds, root)
        indices = []
        for label in sorted(set(targets)):
            mine = [i for i, t in enumerate(targets) if t == label]
            indices += [mine[k] for k in split_within_class([keys[i] for i in mine], split)]
        indices.sort(key=lambda i: keys[i])
    if max_items is not None:
        indices = indices[:max_items]
    n_classes = max(targets) + 1 if targets else 0
    if not classes and spec.tv_class == "GTSRB" and n_classes <= len(GTSRB_CLASS_NAMES):
        classes = list(GTSRB_CLASS_NAMES[:n_classes])  # torchvision gives the ids only
    names = [_prompt_name(spec, c) for c in classes] or [str(i) for i in range(n_classes)]
    labels = targets or _targets(ds)
    # read when used (SUN397's 87,000 training photos held decoded take far more memory than a laptop has)
    return LabeledImages(LazyImages(DatasetItemImage(ds), indices),
                         np.array([labels[i] for i in indices], np.int64), names, spec.template, spec.name,
                         {"source": "torchvision", "split": split})
