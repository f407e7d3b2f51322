"""Zips of labelled images: class folders or a CSV manifest, parsed without touching the disk."""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.base import LabeledImages
from core.data.folder import folder_label
from core.upload.archive import Source, _member_name, _open_zip, _opened, _read_member
from core.upload.images import PixelBudget, _decode_image
from core.upload.limits import (ARCHIVE_EXTS, DEFAULT_LIMITS, IMAGE_EXTS, MiB, Deadline, TemplateError,
                                UploadError, UploadLimits, _Budget, _class_counts, _printable, _reason_counts, _Skip,
                                label_problem)

log = logging.getLogger("core.upload")


@dataclass
class UploadedSample:
    """A parsed upload: the usable images, what was skipped (member name, reason), and warnings."""

    data: LabeledImages
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines: images per class, skipped files grouped by reason, warnings."""
        n_classes, per_class = _class_counts(self.data.labels, self.data.class_names)
        lines = [f"{len(self.data)} images in {n_classes} classes: {per_class}"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} file(s): {_reason_counts(self.skipped)}")
        return "\n".join(lines + self.warnings)



def _dataset_name(source: Source) -> str:
    raw = os.fsdecode(source) if isinstance(source, (str, os.PathLike)) else str(getattr(source, "name", ""))
    return re.sub(r"[^\w.-]+", "_", Path(raw).stem)[:60].strip("._") or "upload"


def _common_root(names: list[str]) -> str:
    """The single top folder every member sits in (``sample/cat/1.png``), or '' if there is none."""
    firsts = {n.split("/", 1)[0] for n in names}
    if len(firsts) != 1 or any("/" not in n for n in names):
        return ""
    images = [n for n in names if Path(n).suffix.lower() in IMAGE_EXTS]
    # a README or notes file beside the class folders does not make the top folder a class
    deeper = bool(images) and all(n.count("/") >= 2 for n in images)  # else the top folder is the only class
    manifest_here = any(n.count("/") == 1 and n.lower().endswith(".csv") for n in names)
    return firsts.pop() + "/" if deeper or manifest_here else ""


SPLIT_FOLDERS = ("train", "training", "val", "valid", "validation", "test", "testing")


def _split_layout(names: list[str], root: str) -> list[str]:
    """The split folders of a ``train/cat/1.png``, ``test/cat/2.png`` layout under ``root`` (every image
    exactly at split/class/image, every split folder named as in SPLIT_FOLDERS), or [] for any other."""
    images = [n[len(root):] for n in names if n.startswith(root) and Path(n).suffix.lower() in IMAGE_EXTS]
    if not images or any(n.count("/") != 2 for n in images):
        return []
    splits = sorted({n.split("/", 1)[0] for n in images})
    return splits if all(s.lower() in SPLIT_FOLDERS for s in splits) else []


def _folder_items(names: list[str], root: str, limits: UploadLimits,
                  skipped: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(member, label) for members laid out as ``class/image``; a folder's label is the class image-folder
    datasets give it (:func:`core.data.folder.folder_label`: '_' reads as a space). UploadError when two
    folders give one label."""
    items, folder_of = [], {}
    for n in sorted(names):
        parts = n[len(root):].split("/")
        label = _label(parts[0])
        problem = (label_problem(label, limits) if len(parts) == 2
                   else "not directly inside a class folder (expected class/image.png)")
        if problem:
            skipped.append((_printable(n), problem))
            continue
        if folder_of.setdefault(label, parts[0]) != parts[0]:
            raise UploadError(f"the class folders {_printable(folder_of[label])!r} and {_printable(parts[0])!r} "
                              f"give the same class name {_printable(label)!r} ('_' reads as a space); rename one")
        items.append((n, label))
    return items


def _label(folder: str) -> str:
    """The class label of a class folder's name, as image-folder datasets name it."""
    return folder_label(folder.strip()).strip()


def _manifest_items(text: str, manifest: str, members: dict, root: str, limits: UploadLimits,
                    skipped: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """(member, label) from a CSV manifest with the columns file,label; bad rows are skipped."""
    reader = csv.reader(io.StringIO(text))  # read lazily: a 4 MiB CSV of blank lines stays cheap
    items, listed, n_rows = [], set(), 0
    try:
        header = [c.strip().lower() for c in next(reader, [])]
        if "file" not in header or "label" not in header:
            raise UploadError(f"the manifest {manifest} needs a header row with the columns file,label")
        fi, li = header.index("file"), header.index("label")
        for k, row in enumerate(reader, start=2):
            if not any(c.strip() for c in row):
                continue
            n_rows += 1
            if n_rows > limits.max_members:
                raise UploadError(f"the manifest has more than {limits.max_members} rows; that is the limit")
            file, label = (row[fi].strip(), row[li].strip()) if len(row) > max(fi, li) else ("", "")
            label = unicodedata.normalize("NFC", label)  # as folder names are: one class per spelling
            problem, target = _row_problem(file, label, root, members, listed, limits)
            if problem:
                skipped.append((f"{manifest} row {k}: {_printable(file)}", problem))
            else:
                listed.add(target)
                items.append((target, label))
    except csv.Error as e:
        raise UploadError(f"the manifest {manifest} is not a valid CSV ({e})") from None
    skipped += [(_printable(n), "not listed in the manifest")
                for n in sorted(members) if n not in listed and n != manifest]
    return items


def _row_problem(file: str, label: str, root: str, members: dict, listed: set,
                 limits: UploadLimits) -> tuple[str | None, str]:
    """(why the manifest row is unusable or None, the member it names)."""
    target = root + "/".join(p for p in file.replace("\\", "/").split("/") if p not in ("", "."))
    target = unicodedata.normalize("NFC", target)
    if not file or not label:
        return "row lacks a file or a label", target
    if file.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", file) or ".." in target.split("/"):
        return "points outside the archive", target
    if target not in members or target.lower().endswith(".csv"):
        return "not in the archive (or refused, see its own entry)", target
    if target in listed:
        return "listed twice", target
    return label_problem(label, limits), target


def check_template(template: str, limits: UploadLimits = DEFAULT_LIMITS) -> str:
    """``template`` when it is a usable prompt template, else TemplateError: one ``{c}`` slot, no other braces,
    at most ``limits.max_name_length`` characters."""
    # str.format would evaluate attribute lookups such as {c.__class__}: allow the one {c} slot only.
    if (not isinstance(template, str) or template.count("{c}") != 1 or "{" in template.replace("{c}", "")
            or "}" in template.replace("{c}", "") or len(template) > limits.max_name_length):
        raise TemplateError("The prompt template must contain '{c}' exactly once, no other braces, "
                          f"and at most {limits.max_name_length} characters")
    return template


def load_image_folder_zip(path: Source, *, limits: UploadLimits = DEFAULT_LIMITS,
                          template: str = "a photo of a {c}", deadline: Deadline | None = None) -> UploadedSample:
    """Parse an uploaded zip of labelled images without extracting anything to disk.

    Layouts: class folders (``cat/001.png``, optionally under one common top folder), or a CSV
    manifest (``labels.csv``, or the only ``.csv`` at the top) with columns ``file,label`` naming
    members of the archive. Unusable members are listed in ``.skipped``; classes left without
    ``limits.min_images_per_class`` usable images are dropped with a warning.
    ``path`` may be a filesystem path or an open binary file. Decoding stops with UploadError past
    ``limits.max_total_pixels`` declared pixels or past ``deadline``.
    Raises UploadError when the archive is refused or fewer than 2 usable classes remain.
    """
    check_template(template, limits)
    with _opened(path) as fh:
        zf, size = _open_zip(fh, limits)
        with zf:
            try:
                sample = _parse(zf, size, limits, template, _dataset_name(path), deadline or Deadline(None))
            except UploadError as e:
                log.info("upload refused: %s", e)
                raise
    log.info("upload parsed: %s", sample.summary().replace("\n", " | "))
    return sample


def _parse(zf: zipfile.ZipFile, archive_size: int, limits: UploadLimits, template: str,
           name: str, deadline: Deadline) -> UploadedSample:
    infos = zf.infolist()  # at most limits.max_members: core.upload.archive._open_zip counted them
    total_cap = min(limits.max_total_uncompressed_bytes,
                    max(limits.ratio_floor_bytes, int(archive_size * limits.max_overall_ratio)))
    declared = sum(i.file_size for i in infos)
    if declared > total_cap:
        raise UploadError(f"the archive declares {_size(declared)} of content, more than the "
                          f"{_size(total_cap)} allowed for this upload; refusing it (zip bomb guard)")
    budget, skipped = _Budget(total_cap), []
    members: dict[str, zipfile.ZipInfo] = {}
    folders: set[str] = set()
    for info in infos:
        try:
            rel = _member_name(info, limits)
        except _Skip as e:
            skipped.append((_printable(info.filename), str(e)))
            continue
        if info.is_dir():
            folders.add(rel)
        elif rel in members:
            skipped.append((_printable(info.filename), "duplicate name (another member has the same name)"))
        elif rel:
            members[rel] = info
    if not members:
        raise UploadError("the archive has no usable files" + _why(skipped))
    root = _common_root(list(members))
    tops = [n for n in members if n.startswith(root) and "/" not in n[len(root):]]
    csvs = [n for n in tops if n.lower().endswith(".csv")]
    manifest = next((n for n in csvs if n[len(root):].lower() == "labels.csv"), csvs[0] if len(csvs) == 1 else None)
    if len(csvs) > 1 and manifest is None:
        raise UploadError("the archive has several CSV files at its top; name the manifest labels.csv")
    split_note = ""
    if manifest:
        try:
            raw = _read_member(zf, members[manifest], budget, limits, cap=limits.max_manifest_bytes)
            text = raw.decode("utf-8-sig")
        except _Skip as e:
            raise UploadError(f"cannot use the manifest {manifest}: {e}") from None
        except UnicodeDecodeError:
            raise UploadError(f"the manifest {manifest} is not UTF-8 text") from None
        items = _manifest_items(text, manifest, members, root, limits, skipped)
        empty_folders: set[str] = set()
    elif splits := _split_layout(list(members), root):
        # the reference runs' zero-shot measures come from their train split: take train/ where there is one
        use = [s for s in splits if s.lower() in ("train", "training")][:1] or splits
        items, empty_folders = [], set()
        for split in use:
            base = f"{root}{split}/"
            items += _folder_items([n for n in members if n.startswith(base)], base, limits, skipped)
            empty_folders |= {_label(f[len(base):].split("/")[0]) for f in folders if f.startswith(base)} - {""}
        unused = sorted(n for n in members if n.startswith(root) and n[len(root):].split("/")[0] not in use)
        skipped += [(_printable(n), f"in {n[len(root):].split('/')[0]}/, not the split used") for n in unused]
        split_note = (f"split folders {', '.join(s + '/' for s in splits)}: the sample is "
                      f"{' + '.join(s + '/' for s in use)}" + (" (reference runs measure zero-shot scores on "
                                                               "their train split)" if len(use) < len(splits) else ""))
    else:
        items = _folder_items(list(members), root, limits, skipped)
        empty_folders = {_label(f[len(root):].split("/")[0]) for f in folders if f.startswith(root)}
    seen = {label for _, label in items} | {f for f in empty_folders if not label_problem(f, limits)}
    _check_classes(items, seen, limits)
    images, labels, pixels = [], [], PixelBudget(limits.max_total_pixels)
    first_label: dict[bytes, str] = {}  # digest of a file's bytes -> the label it was first seen with
    repeats = across = 0
    for member, label in items:
        deadline.check("decoding the images")
        try:
            image, digest = _decode_member(zf, members[member], budget, limits, pixels)
        except _Skip as e:
            skipped.append((_printable(member), str(e)))
            continue
        images.append(image)
        labels.append(label)
        if digest in first_label:
            repeats += 1
            across += first_label[digest] != label
        else:
            first_label[digest] = label
    sample = _assemble(images, labels, seen, skipped, limits, template, name, "csv" if manifest else
                       "split folders" if split_note else "folders")
    if split_note:
        sample.warnings.insert(0, split_note)
    if repeats:  # kept (a user may mean it), but IIMM's image-image term counts such pairs as identical
        sample.warnings.append(f"{repeats} image(s) repeat an earlier file byte for byte"
                               + (f", {across} of them under another class" if across else ""))
    return sample


def _size(n_bytes: int) -> str:
    """A byte count for people: MiB from 1 MiB up, else KiB (a small archive's cap is not '0 MiB')."""
    return f"{n_bytes / MiB:.1f} MiB" if n_bytes >= MiB else f"{n_bytes / 1024:.0f} KiB"


def _why(skipped: list[tuple[str, str]]) -> str:
    return f" (skipped {len(skipped)} file(s): {_reason_counts(skipped)})" if skipped else ""


def _check_classes(items: list[tuple[str, str]], seen: set[str], limits: UploadLimits) -> None:
    """Refuse, before any decoding, too many images or classes, and classes differing only in case."""
    if len(items) > limits.max_images:
        raise UploadError(f"the archive holds {len(items)} images; the limit is {limits.max_images}")
    if len(seen) > limits.max_classes:
        raise UploadError(f"the archive has {len(seen)} classes; the limit is {limits.max_classes}")
    by_fold: dict[str, set[str]] = {}
    for c in seen:
        by_fold.setdefault(c.casefold(), set()).add(c)
    clash = next((sorted(v) for v in by_fold.values() if len(v) > 1), None)
    if clash:
        raise UploadError(f"class names {clash} differ only in letter case; rename or merge them")


def _decode_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget,
                   limits: UploadLimits, pixels: PixelBudget):
    """(the decoded image, a digest of the file's bytes)."""
    ext = os.path.splitext(info.filename)[1].lower()
    if ext in ARCHIVE_EXTS:
        raise _Skip("nested archive (not opened)")
    if ext not in IMAGE_EXTS:
        raise _Skip(f"not an image file (accepted: {' '.join(sorted(IMAGE_EXTS))})")
    raw = _read_member(zf, info, budget, limits)
    return _decode_image(raw, limits, pixels), hashlib.blake2b(raw, digest_size=16).digest()


def _assemble(images: list, labels: list[str], seen: set[str], skipped: list[tuple[str, str]],
              limits: UploadLimits, template: str, name: str, layout: str) -> UploadedSample:
    """Drop classes with too few usable images (with a warning) and build the sample."""
    counts = Counter(labels)
    keep = sorted((c for c, k in counts.items() if k >= limits.min_images_per_class), key=str.casefold)
    warnings = [f"class '{c}' dropped: {counts.get(c, 0)} usable image(s), need at least "
                f"{limits.min_images_per_class}" for c in sorted(seen - set(keep))]
    if not images:
        raise UploadError("the archive has no usable images" + _why(skipped))
    if len(keep) < 2:
        found = f": {', '.join(keep)}" if keep else ""
        raise UploadError(f"a sample needs at least 2 classes with usable images; found {len(keep)}{found}"
                          + _why(skipped))
    index = {c: i for i, c in enumerate(keep)}
    rows = [i for i, label in enumerate(labels) if label in index]
    data = LabeledImages([images[i] for i in rows], np.array([index[labels[i]] for i in rows], dtype=np.int64),
                         keep, template, name, meta={"source": "upload", "layout": layout})
    return UploadedSample(data, skipped, warnings)

