"""Image-folder datasets (``folder:/some/dir``): ``dir/train/<class>/…`` and ``dir/test/<class>/…``, or
``dir/<class>/…`` split 80/20 within each class.

Class folders are the top-level folders (hidden ones and ``__MACOSX`` left out); images may sit in
sub-folders of a class folder. Hidden files (``.DS_Store``, macOS ``._*``), other file types, folders and
broken links are left out; files with an image's name that cannot be decoded are skipped and named in one
warning (each file is decoded once to know; the images are then read from their files when used,
:class:`core.data.lazy.LazyImages`, so a folder of 10^5 photos is never held decoded in memory); pixels are
converted as uploads are (:mod:`core.data.imaging`: 16-bit scaled, EXIF rotation applied). Train and test
must hold the same classes, and two folders may not give one class name ("big_cat" and "big cat", or one name in two
Unicode spellings): both are refused.
"""
from __future__ import annotations

import logging
import unicodedata
import zlib
from pathlib import Path, PurePath

import numpy as np

from core.data.base import LabeledImages, check_split

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SPLITS = ("train", "test")
TEST_EVERY = 5  # the flat layout: every fifth image of a class, in a fixed order by hash, is a test image


class FolderDatasetError(RuntimeError):
    """An image folder that cannot be used as a dataset; the message says what to change."""


def _hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def folder_label(name: str) -> str:
    """The class a folder named ``name`` holds, as prompts name it ('_' reads as a space; composed Unicode,
    NFC, as uploads' labels are: macOS writes 'crème' decomposed, so a train/ copied from a Mac and a test/
    made elsewhere would otherwise hold two classes that look the same). Uploaded zips of class folders
    name their classes with it too, so a folder gives the same prompts in a grid and in an upload."""
    return unicodedata.normalize("NFC", name).replace("_", " ")


def class_name(folder: Path) -> str:
    """The class ``folder`` holds (:func:`folder_label` of its name)."""
    return folder_label(folder.name)


def class_dirs(root: Path) -> list[Path]:
    """The class folders of ``root``, sorted by class name (so a label means the same class in train and
    test even where their folders spell it differently, ``big_cat`` and ``big cat``)."""
    return sorted((p for p in root.iterdir() if p.is_dir() and not _hidden(p.name)),
                  key=lambda p: (class_name(p), p.name))


def image_files(folder: Path) -> list[Path]:
    """Image files anywhere under a class folder (not in hidden folders), sorted; broken links left out."""
    found = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if any(_hidden(p) for p in parts) or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        found.append(path)
    # two files whose names differ only in Unicode spelling (Linux can hold both): their names as spelled decide
    return sorted(found, key=lambda p: (file_order_key(p.relative_to(folder)), p.relative_to(folder).parts))


def file_order_key(relative: PurePath) -> tuple[str, ...]:
    """How image files are ordered: by their path's parts, each in NFC, compared as text. Not by ``Path`` itself,
    which compares case-insensitively on Windows, nor by the names as the file system spells them (macOS often
    decomposes accents): the same folder gives its images in the same order on every system."""
    return tuple(unicodedata.normalize("NFC", part) for part in relative.parts)


def _other_files(classes: list[Path]) -> str:
    """What a split without images holds instead, for its error: the file types left out (an iPhone's .heic photos
    were 'no readable images' with no word of why) and the types read; "" where the class folders hold no files."""
    other: dict[str, int] = {}
    for folder in classes:
        for path in folder.rglob("*"):
            parts = path.relative_to(folder).parts
            if (path.is_file() and not any(_hidden(p) for p in parts)
                    and path.suffix.lower() not in IMAGE_SUFFIXES):
                other[path.suffix.lower() or "(no suffix)"] = other.get(path.suffix.lower() or "(no suffix)", 0) + 1
    if not other:
        return " (its class folders hold no files)"
    found = ", ".join(f"{n} {suffix}" for suffix, n in sorted(other.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
    return (f": its class folders hold only files of other types ({found}); images are read from "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} files (convert the others, e.g. .heic to .jpg)")


def split_within_class(keys: list[str], split: str) -> list[int]:
    """The positions of one class's items that belong to ``split``: the items ordered by a hash of their
    key (an order no listing or renaming of other files changes), every TEST_EVERY-th is a test item, so each class
    keeps ~20 % for test and a class of fewer than TEST_EVERY items stays in train. Adding or removing an item moves
    the ranks after it, so others of its class can change split (one file added to a class of 50 moved 7 of its 10
    test items): a split that must stay put is given as train/ and test/ folders. Keys are hashed in NFC: macOS
    often gives ``café.png`` decomposed, and its images went to other splits than on Linux; two keys with one NFC
    form (two files on Linux) are ordered as spelled, not by their position. Sorted positions. ValueError for a ``split``
    other than 'train' or 'test' (any other, 'val' or 'Test', was given the train items)."""
    check_split(split)
    nfc = [unicodedata.normalize("NFC", k) for k in keys]
    order = sorted(range(len(keys)), key=lambda i: (zlib.crc32(nfc[i].encode()), nfc[i], keys[i]))
    return sorted(i for rank, i in enumerate(order) if (rank % TEST_EVERY == TEST_EVERY - 1) == (split == "test"))


def _flat_split(files: list[Path], folder: Path, split: str) -> list[Path]:
    """One class's files of ``split`` in the flat layout (:func:`split_within_class` of their paths)."""
    return [files[i] for i in split_within_class([p.relative_to(folder).as_posix() for p in files], split)]


def _one_level_down(folder: Path, *, split_folder: bool = False) -> str:
    """For a folder with fewer than two class folders, what it holds: its one sub-folder, named as the folder to give
    where that one holds the class folders (a zip unpacked with its top folder: 'photos/cat', 'photos/dog').
    ``split_folder``: ``folder`` is a dataset's train/ or test/, where giving a folder inside it would load that split
    alone as a flat dataset and drop the other; the layout is named instead."""
    subs = class_dirs(folder)
    if len(subs) == 1 and len(class_dirs(subs[0])) >= 2 and not any((subs[0] / s).is_dir() for s in SPLITS):
        instead = ("put the class folders directly in train/ and test/" if split_folder
                   else f"give folder:{subs[0]}")
        return f"; it holds one folder, {subs[0].name!r}, whose sub-folders look like the classes: {instead}"
    if len(subs) == 1 and not split_folder and any((subs[0] / s).is_dir() for s in SPLITS):
        return f"; it holds one folder, {subs[0].name!r}, with train/ or test/ inside: give folder:{subs[0]}"
    return f"; it holds {'one, ' + repr(subs[0].name) if subs else 'none'}"


def _check_classes(root: Path, explicit: bool, split: str) -> None:
    present = [s for s in SPLITS if (root / s).is_dir()]
    if explicit and split not in present:
        raise FolderDatasetError(f"{root} has a {present[0]}/ folder but no {split}/ folder; add it, or put the "
                                 f"class folders directly in {root} to have them split 80/20")
    if len(present) == 2:
        train, test = ({class_name(c) for c in class_dirs(root / s)} for s in SPLITS)
        if train != test:
            raise FolderDatasetError(
                f"{root}/train and {root}/test hold different classes (only in train: {sorted(train - test)[:5]}; "
                f"only in test: {sorted(test - train)[:5]}); a class's label must mean the same in both")
    for split_root in ([root / s for s in present] if explicit else [root]):
        names = [class_name(c) for c in class_dirs(split_root)]
        if len(names) < 2:
            raise FolderDatasetError(f"{split_root} needs at least two class sub-folders"
                                     f"{_one_level_down(split_root, split_folder=explicit)}")
        clash = sorted({n for n in names if names.count(n) > 1})
        if clash:
            raise FolderDatasetError(f"class folders in {split_root} give the same class name {clash[0]!r} "
                                     "('_' reads as a space); rename one")


def load_folder(root: str | Path, split: str, template: str) -> LabeledImages:
    """One split of an image-folder dataset (see the module docstring). Raises FolderDatasetError."""
    from core.data.lazy import LazyImages, decode_image_file, file_key, read_image_file

    root = Path(root)  # a str failed on "'str' object has no attribute 'is_dir'"
    if not root.is_dir():
        if root.exists():  # a zip or an image given for the folder: 'does not exist' sent users looking for a typo
            raise FolderDatasetError(f"image folder {root} is a file, not a folder; give the folder that holds the "
                                     "class folders (a zip must be unpacked first)")
        tilde = ("; '~' is not expanded here, give the full path" if str(root).startswith("~") else "")
        raise FolderDatasetError(f"image folder {root} does not exist{tilde}")
    explicit = any((root / s).is_dir() for s in SPLITS)
    _check_classes(root, explicit, split)
    classes = class_dirs(root / split if explicit else root)
    images, labels, skipped, listed = [], [], [], 0
    for label, folder in enumerate(classes):
        files = image_files(folder)
        listed += len(files)
        for path in files if explicit else _flat_split(files, folder, split):
            try:
                key = file_key(path)  # before decoding: a change after this check is caught when it is read
                decode_image_file(path)  # decoded to know it is usable, then let go
            except Exception as exc:  # noqa: BLE001 (PIL raises many types; any means "unusable")
                skipped.append(f"{path.relative_to(root)} ({type(exc).__name__})")
                continue
            images.append(key)
            labels.append(label)
    if skipped:
        log.warning("%s (%s): skipped %d unreadable image(s): %s%s", root, split, len(skipped),
                    ", ".join(skipped[:3]), " …" if len(skipped) > 3 else "")
    if not images:
        why = (f" (none of its {len(skipped)} image file(s) could be decoded: {', '.join(skipped[:3])})" if skipped
               else f" (its classes hold {listed} image(s), fewer than {TEST_EVERY} each, which the flat layout keeps "
                    "in train; add images, or give train/ and test/ folders)" if listed
               else _other_files(classes))
        raise FolderDatasetError(f"{root} has no readable images for the {split} split{why}")
    return LabeledImages(LazyImages(read_image_file, images), np.array(labels, np.int64),
                         [class_name(c) for c in classes], template, f"folder:{root}",
                         {"source": "folder", "split": split, "skipped": len(skipped)})
