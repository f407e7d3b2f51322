"""core.upload against the generated hostile corpus (tests/hostile_uploads.py) plus a few direct checks: the
good archives parsed exactly, nothing written anywhere, bombs and lying members, limits, templates, labels, the
time budget."""
from __future__ import annotations

import dataclasses
import io
import re
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core import upload
from core.upload import DEFAULT_LIMITS, UploadError, UploadLimits, label_problem, load_embeddings_npz, \
    load_image_folder_zip
from tests.hostile_uploads import GOOD_CLASSES, build_corpus, case_names, load_case
from tests.upload_helpers import class_counts


# The 10000x10000 PNG case makes PIL warn before our own (stricter) pixel guard skips it.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def corpus(corpus_dir) -> dict:
    return {c.name: c for c in build_corpus(corpus_dir)}


def colour(im) -> str:
    r, g, b = np.asarray(im, dtype=float).reshape(-1, 3).mean(0)
    return "red" if r > b + 50 else "blue" if b > r + 50 else "other"


def test_corpus_is_big_enough(corpus):
    kinds = [c.expect for c in corpus.values()]
    assert kinds.count("error") + kinds.count("skip") >= 25 and kinds.count("ok") >= 3


@pytest.mark.parametrize("name", case_names())
def test_case(corpus, name):
    c = corpus[name]
    if c.expect == "error":
        with pytest.raises(UploadError, match=c.match):
            load_case(c)
        return
    result = load_case(c)
    if c.kind.startswith("npz"):
        assert set(result) == {"image_embeddings", "text_embeddings", "labels", "class_names"}
        return
    entries = [f"{m}: {r}" for m, r in result.skipped]
    if c.expect == "ok":
        assert entries == []
    else:
        assert any(re.search(c.match, e) for e in entries), entries
    assert class_counts(result) == c.classes
    if c.classes == GOOD_CLASSES:  # every good member is red for cat, blue for dog
        names = result.data.class_names
        assert [colour(im) for im in result.data.images] == \
               ["red" if names[y] == "cat" else "blue" for y in result.data.labels]


def test_good_folders_are_parsed_exactly(corpus):
    sample = load_case(corpus["good_folders"])
    assert sample.data.class_names == ["cat", "dog"]
    assert sample.data.labels.tolist() == [0, 0, 1, 1] and sample.data.labels.dtype == np.int64
    assert [im.size for im in sample.data.images] == [(16, 16), (256, 128), (16, 16), (16, 16)]  # 600x300 thumbnailed
    assert {im.mode for im in sample.data.images} == {"RGB"}
    assert sample.data.name == "good_folders" and sample.data.meta["layout"] == "folders"
    assert sample.data.prompts == ["a photo of a cat", "a photo of a dog"]
    assert sample.summary() == "4 images in 2 classes: cat (2), dog (2)"


def test_csv_manifest_labels_come_from_the_manifest(corpus):
    sample = load_case(corpus["good_csv_manifest"])
    assert sample.data.meta["layout"] == "csv"
    assert [colour(im) for im in sample.data.images] == ["red", "red", "blue", "blue"]
    assert sample.data.labels.tolist() == [0, 0, 1, 1]


def test_summary_reports_skips_and_dropped_classes(corpus):
    sample = load_case(corpus["three_classes_one_empty"])
    assert sample.warnings == ["class 'bird' dropped: 0 usable image(s), need at least 1"]
    assert sample.summary().splitlines() == [
        "4 images in 2 classes: cat (2), dog (2)",
        "skipped 1 file(s): 1× not an image file (accepted: .bmp .gif .jpeg .jpg .png .tif .tiff .webp)",
        "class 'bird' dropped: 0 usable image(s), need at least 1"]


def test_nothing_is_written_anywhere(corpus, corpus_dir, tmp_path, monkeypatch):
    watched, cwd = tmp_path / "tmp", tmp_path / "cwd"
    watched.mkdir(), cwd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(watched))  # any temp file would land here
    monkeypatch.chdir(cwd)

    def listing(root: Path) -> set:
        # lstat: pytest leaves "...current" links to passed tests' folders it has already removed
        return {(str(p), p.lstat().st_size) for p in root.rglob("*")}

    before = listing(tmp_path), listing(corpus_dir.parent)
    probe = Path("/tmp/hostile_abs_probe.png")
    probe_existed = probe.exists()
    for c in corpus.values():
        try:
            load_case(c)
        except UploadError:
            pass
    assert (listing(tmp_path), listing(corpus_dir.parent)) == before
    assert not any(watched.iterdir()) and not any(cwd.iterdir())
    assert probe.exists() == probe_existed


def test_big_bomb_is_rejected_quickly(corpus):
    start = time.perf_counter()
    with pytest.raises(UploadError, match="zip bomb"):
        load_case(corpus["zip_bomb_1gib"])
    assert time.perf_counter() - start < 1.0  # inflating its 1 GiB would take seconds


class _LyingZip:
    """A zip whose member yields far more bytes than its header declares."""

    def open(self, info):
        return io.BytesIO(bytes(16 << 20))


def test_member_reads_do_not_trust_declared_sizes():
    info = zipfile.ZipInfo("cat/x.png")
    info.file_size = info.compress_size = 10
    with pytest.raises(upload._Skip, match="zip bomb"):
        upload._read_member(_LyingZip(), info, upload._Budget(1 << 30), DEFAULT_LIMITS)
    budget = upload._Budget(1 << 20)
    with pytest.raises(UploadError, match="expands to more than 1 MiB"):
        upload._read_member(_LyingZip(), info, budget, DEFAULT_LIMITS, cap=64 << 20)


def test_file_objects_are_accepted(corpus):
    with open(corpus["good_folders"].path, "rb") as fh:
        assert class_counts(load_image_folder_zip(fh)) == GOOD_CLASSES


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(UploadError, match="cannot open the upload"):
        load_image_folder_zip(tmp_path / "nope.zip")


def test_custom_limits_apply(corpus):
    path = corpus["good_folders"].path
    small = load_image_folder_zip(path, limits=UploadLimits(max_side=8))
    assert max(max(im.size) for im in small.data.images) == 8
    with pytest.raises(UploadError, match="holds 4 images; the limit is 3"):
        load_image_folder_zip(path, limits=UploadLimits(max_images=3))
    with pytest.raises(UploadError, match="at least 2 classes"):
        load_image_folder_zip(path, limits=UploadLimits(min_images_per_class=3))
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_LIMITS.max_side = 1024


@pytest.mark.parametrize("template", ["{c.__class__}", "a photo", "{c} and {c}", "{0} {c}", "{c} }"])
def test_template_must_have_one_plain_slot(corpus, template):
    with pytest.raises(UploadError, match="template must contain"):
        load_image_folder_zip(corpus["good_folders"].path, template=template)


def test_custom_template_is_used(corpus):
    sample = load_image_folder_zip(corpus["good_folders"].path, template="a blurry photo of a {c}.")
    assert sample.data.prompts[0] == "a blurry photo of a cat."


@pytest.mark.parametrize("label, problem", [
    ("cat", None), ("C++ code", None), ("قطة", None), ("=1+2", "formula"), ("+1", "formula"), ("-1", "formula"),
    ("@SUM(A1)", "formula"), ("\tx", "control"), ("a\x00b", "control"), ("  ", "empty"), ("x" * 201, "longer")])
def test_label_problem(label, problem):
    found = label_problem(label)
    assert found is None if problem is None else problem in found


def test_embeddings_are_returned_typed(corpus):
    out = load_embeddings_npz(corpus["good_embeddings"].path)
    assert out["image_embeddings"].shape == (6, 8) and out["image_embeddings"].dtype == np.float32
    assert out["text_embeddings"].shape == (2, 8)
    assert out["labels"].tolist() == [0, 0, 0, 1, 1, 1] and out["labels"].dtype == np.int64
    assert out["class_names"] == ["cat", "dog"]


@pytest.mark.parametrize("name", ["png_16bit_grey", "tiff_16bit_grey", "tiff_float_unit_range", "tiff_float_0_255"])
def test_high_bit_depth_and_float_images_keep_their_brightness(corpus, name):
    sample = load_case(corpus[name])
    grey = sample.data.class_names.index("grey")
    levels = [np.asarray(im, dtype=float).mean() for im, y in zip(sample.data.images, sample.data.labels)
              if y == grey]
    assert len(levels) == 2 and all(126 <= v <= 129 for v in levels), levels  # mid grey, not white/black


def test_time_budget_stops_a_slow_parse(corpus):
    deadline = upload.Deadline(0.0)
    time.sleep(0.01)
    with pytest.raises(UploadError, match="time budget of 0 s"):
        load_image_folder_zip(corpus["good_folders"].path, deadline=deadline)
