"""core.data.overlap: exact-duplicate images within and across splits, on tiny hand-made sets; the shipped
worlds' splits are disjoint; jobs.split_audit's report and exit codes."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from core.data.base import LabeledImages
from core.data.overlap import image_hashes, overlaps_of_hashes, split_overlaps


def _images(*values: int, size: int = 4) -> np.ndarray:
    """One flat-coloured (size, size, 3) image per value."""
    return np.stack([np.full((size, size, 3), v, np.uint8) for v in values])


def test_disjoint_sets_are_clean():
    report = split_overlaps({"train": _images(1, 2, 3), "test": _images(4, 5)})
    assert report.clean
    assert report.sizes == {"train": 3, "test": 2}
    assert report.within == {"train": 0, "test": 0}
    assert report.across == {}
    assert report.lines()[-1] == "no exact duplicate within or across the sets"


def test_duplicates_within_and_across_are_counted():
    report = split_overlaps({"train": _images(1, 2, 2, 3), "test": _images(3, 3, 9), "ood": _images(2, 7)})
    assert not report.clean
    assert report.within == {"train": 1, "test": 1, "ood": 0}
    # every image of the second set found in the first counts, repeats included
    assert report.across == {("train", "test"): 2, ("train", "ood"): 1}
    text = "\n".join(report.lines())
    assert "test in train: 2 of the 3 images of test are also in train" in text
    assert "train: 1 of its 4 images repeat an earlier one of train" in text


def test_one_changed_pixel_is_another_image():
    a = _images(10)
    b = a.copy()
    b[0, 3, 3, 2] = 11
    assert split_overlaps({"a": a, "b": b}).clean


def test_same_bytes_in_another_shape_are_another_image():
    flat = np.zeros((1, 2, 8, 3), np.uint8)
    tall = np.zeros((1, 8, 2, 3), np.uint8)
    assert split_overlaps({"flat": flat, "tall": tall}).clean


def test_pil_images_arrays_and_labeled_images_hash_alike():
    arrays = _images(5, 6)
    pil = [Image.fromarray(a) for a in arrays]
    grey = [Image.fromarray(np.full((4, 4), 5, np.uint8))]  # mode L, converted to RGB as folders load it
    labeled = LabeledImages(arrays, np.array([0, 1]), ["a", "b"], "a photo of a {c}")
    assert image_hashes(pil) == image_hashes(arrays) == image_hashes(labeled)
    assert image_hashes(grey) == image_hashes(arrays[:1])


def test_bad_input_is_refused_with_a_message():
    with pytest.raises(ValueError, match="at least one named image set"):
        split_overlaps({})
    with pytest.raises(ValueError, match=r"uint8 \(H, W, 3\)"):
        image_hashes([np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(ValueError, match=r"shape \(N, H, W, 3\)"):
        image_hashes(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="list of bytes"):
        overlaps_of_hashes({"train": "not digests"})


def test_overlaps_of_hashes_reuses_digests():
    digests = image_hashes(_images(1, 2))
    report = overlaps_of_hashes({"pretraining": digests, "test": digests[1:]})
    assert report.across == {("pretraining", "test"): 1}


def test_folder_with_a_photo_copied_into_train_and_test_is_found(tmp_path, capsys):
    from jobs import split_audit

    for split, values in (("train", (1, 2, 3)), ("test", (3, 4, 5))):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for v in values:
                Image.fromarray(np.full((6, 6, 3), v + (100 if cls == "dog" else 0), np.uint8)).save(
                    tmp_path / split / cls / f"{v}.png")
    assert split_audit.main([f"folder:{tmp_path}"]) == 1  # EXIT_FAILED: duplicates found
    out = capsys.readouterr().out
    assert f"folder:{tmp_path}/test in folder:{tmp_path}/train: 2 of the 6 images" in out


def test_split_audit_exit_codes(tmp_path, capsys):
    from jobs import split_audit

    assert split_audit.main(["shape-size", "--ood", "printed-digits"]) == 0
    out = capsys.readouterr().out
    assert "3 image set(s), 2700 images" in out and "no exact duplicate" in out
    assert split_audit.main(["no-such-dataset"]) == 2
    assert "unknown dataset 'no-such-dataset'" in capsys.readouterr().err


def test_split_audit_says_how_far_it_is_on_long_work(monkeypatch, caplog):
    """Checking pretraining takes minutes (450 s for worldclip-tiny's 2,000 batches): it was silent until the
    report. With the progress interval at 0 every batch and split says so."""
    from jobs import split_audit

    monkeypatch.setattr(split_audit, "PROGRESS_EVERY_S", 0.0)
    with caplog.at_level(logging.WARNING, logger="split_audit"):
        assert split_audit.main(["shape-size", "--pretraining", "worldclip-tiny", "--steps", "3"]) == 0
    said = [r.getMessage() for r in caplog.records if r.name == "split_audit"]
    assert said == ["pretraining images: 0 of 3 batches hashed", "pretraining images: 1 of 3 batches hashed",
                    "pretraining images: 2 of 3 batches hashed", "splits: 0 of 2 hashed", "splits: 1 of 2 hashed"]


@pytest.mark.slow
def test_shipped_worlds_splits_are_disjoint():
    """Every train, test and OOD-panel split of both shipped grids (world v1 and v2): no image repeats within
    a split or appears in two (155,500 images; about a minute)."""
    from jobs import split_audit

    datasets, ood = split_audit.datasets_of(list(split_audit.SHIPPED_GRIDS))
    hashes = {f"{d}/{s}": image_hashes(split_audit.load_split(d, s)) for d in datasets for s in ("train", "test")}
    hashes.update({f"{o}/test": image_hashes(split_audit.load_split(o, "test")) for o in ood})
    report = overlaps_of_hashes(hashes)
    assert len(report.sizes) == 2 * 55 + 10
    assert report.clean, report.lines()
