"""core.upload's image-folder zips, built in each test: 16-bit scans (large, scaled by the bit depth their values
need, thumbnailed as the image folder scales them), class folder names and prompts, layouts (a note beside the
classes, train/test splits, a class named like a split), manifests (Unicode spellings, a file listed twice),
repeated images, the archive's overall ratio, an empty class folder."""
from __future__ import annotations

import dataclasses
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.upload import DEFAULT_LIMITS, UploadError, load_image_folder_zip
from tests.upload_helpers import class_counts


# The filter of tests/test_upload_corpus.py (whose 10000x10000 PNG case makes PIL warn): these tests
# keep the markers they had before the upload tests were split
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_large_16_bit_scans_are_loaded(tmp_path):
    ramp = (np.arange(1024 * 1024, dtype=np.uint32) % 65536).astype(np.uint16).reshape(1024, 1024)
    members = {f"{c}/{i}.png": _png(ramp) for c in ("healthy", "tumour") for i in range(2)}
    sample = load_image_folder_zip(_zip(tmp_path / "scans.zip", members))
    assert class_counts(sample) == {"healthy": 2, "tumour": 2}


@pytest.mark.parametrize("high, expected_max", [(255, 255), (4095, 255), (65535, 255), (1023, 255), (256, 128)])
def test_16_bit_images_are_scaled_by_the_bit_depth_their_values_need(tmp_path, high, expected_max):
    image = np.linspace(0, high, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    members = {f"{c}/{i}.png": _png(image) for c in ("a", "b") for i in range(2)}
    sample = load_image_folder_zip(_zip(tmp_path / "x.zip", members))
    assert max(int(np.asarray(im).max()) for im in sample.data.images) == expected_max  # 12-bit data not near black


def test_a_thumbnailed_16_bit_image_is_scaled_as_the_image_folder_scales_the_whole_image(tmp_path):
    """The bit depth is read from the full-size image, as core.data.imaging.to_rgb reads it for image-folder
    datasets: the thumbnail's resampling averaged this 12-bit image's one 4095 pixel below 2048, and the
    upload scaled it as 11-bit data, twice as bright (mean 124.6 against the folder's 62.3)."""
    from PIL import Image

    from core.data.imaging import to_rgb

    image = np.random.default_rng(0).integers(0, 2000, (1024, 1024)).astype(np.uint16)
    image[10, 10] = 4095
    members = {f"{c}/{i}.png": _png(image) for c in ("a", "b") for i in range(2)}
    sample = load_image_folder_zip(_zip(tmp_path / "x.zip", members))
    uploaded = np.asarray(sample.data.images[0], dtype=float)
    with Image.open(io.BytesIO(_png(image))) as im:
        folder = np.asarray(to_rgb(im).resize(sample.data.images[0].size, Image.BICUBIC), dtype=float)
    assert abs(uploaded.mean() - folder.mean()) < 1.0, (uploaded.mean(), folder.mean())


def _tiff(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="TIFF")
    return buf.getvalue()


@pytest.mark.parametrize("low, high, dtype", [(0, 4095, np.uint16), (1000, 4095, np.uint16), (0, 1, np.float32)],
                         ids=["12-bit on black", "12-bit on grey", "float on black"])
def test_a_thumbnailed_scan_with_a_sharp_edge_keeps_the_range_of_the_whole_image(tmp_path, low, high, dtype):
    """Resampling rings past a sharp edge (a 12-bit object on black became -176 to 4287, a float one -0.04 to
    1.05): the upload refused such a thumbnail ('negative values') or scaled it by the ringing's peak (13-bit,
    half as bright; a float past 1 as 0-255 data, black), where the image folder reads the whole image's 0 to
    4095 (0 to 1). The thumbnail now keeps to the whole image's range, so both scale it alike."""
    from PIL import Image

    from core.data.imaging import to_rgb

    image = np.full((300, 400), low, dtype=dtype)
    image[:, 200:] = high
    members = {f"{c}/{i}.tif": _tiff(image) for c in ("a", "b") for i in range(2)}
    sample = load_image_folder_zip(_zip(tmp_path / "x.zip", members))
    assert sample.skipped == [] and len(sample.data) == 4
    uploaded = np.asarray(sample.data.images[0], dtype=float)
    with Image.open(io.BytesIO(_tiff(image))) as im:
        folder = np.asarray(to_rgb(im).resize(sample.data.images[0].size, Image.BICUBIC), dtype=float)
    assert uploaded.max() == folder.max() == 255 and abs(uploaded.mean() - folder.mean()) < 1.0


def test_class_folders_give_the_prompts_a_folder_dataset_gives(tmp_path):
    """An upload of a folder names its classes as the grid's ``folder:`` dataset of that folder does ('_' reads
    as a space): the upload's prompts were 'a photo of a big_cat', and IIMM on worldclip-tiny of the same
    images 0.6668 against the grid's 0.6554."""
    from core.data.registry import load_split

    grey = _png(np.full((8, 8), 128, dtype=np.uint8))
    members = {f"train/{c}/{i}.png": grey for c in ("big_cat", "small_dog", "red fox") for i in range(3)}
    for name, data in members.items():
        (tmp_path / "ds" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / name).write_bytes(data)
        (tmp_path / "ds" / name.replace("train/", "test/", 1)).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ds" / name.replace("train/", "test/", 1)).write_bytes(data)
    grid = load_split(f"folder:{tmp_path / 'ds'}", "train")
    sample = load_image_folder_zip(_zip(tmp_path / "ds.zip", members)).data
    assert sample.prompts == grid.prompts == ["a photo of a big cat", "a photo of a red fox",
                                                  "a photo of a small dog"]


def test_two_class_folders_of_one_class_name_are_refused(tmp_path):
    grey = _png(np.full((8, 8), 128, dtype=np.uint8))
    members = {f"{c}/{i}.png": grey for c in ("big_cat", "big cat", "dog") for i in range(3)}
    with pytest.raises(UploadError, match="give the same class name 'big cat'"):
        load_image_folder_zip(_zip(tmp_path / "x.zip", members))


def test_a_note_beside_the_class_folders_does_not_break_the_layout(tmp_path):
    grey = _png(np.full((8, 8), 128, dtype=np.uint8))
    members = {f"pets/{c}/{i}.png": grey for c in ("cat", "dog") for i in range(3)}
    members["pets/README.txt"] = b"my pets"
    sample = load_image_folder_zip(_zip(tmp_path / "pets.zip", members))
    assert class_counts(sample) == {"cat": 3, "dog": 3}


def test_manifest_labels_in_two_unicode_spellings_are_one_class(tmp_path):
    red = _png(np.full((8, 8), 200, dtype=np.uint8))
    members = {f"img/{i}.png": red for i in range(6)}
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # both display as "café"
    members["labels.csv"] = ("file,label\n" + "".join(
        f"img/{i}.png,{label}\n" for i, label in enumerate([composed, decomposed, composed, "tea", "tea", "tea"]))
    ).encode()
    sample = load_image_folder_zip(_zip(tmp_path / "m.zip", members))
    assert sample.data.class_names == ["café", "tea"] and class_counts(sample) == {"café": 3, "tea": 3}


@pytest.mark.parametrize("prefix, splits, used", [
    ("data/", ("train", "test"), ("train",)), ("", ("Train", "val"), ("Train",)),
    ("", ("test", "val"), ("test", "val")),
])
def test_a_train_test_layout_is_read_from_its_train_split(tmp_path, prefix, splits, used):
    """data/train/cat/1.png + data/test/cat/2.png was refused: 'not directly inside a class folder'."""
    grey = _png(np.full((8, 8), 128, dtype=np.uint8))
    members = {f"{prefix}{s}/{c}/{i}.png": grey for s in splits for c in ("cat", "dog") for i in range(3)}
    sample = load_image_folder_zip(_zip(tmp_path / "s.zip", members))
    assert class_counts(sample) == {"cat": 3 * len(used), "dog": 3 * len(used)}
    assert sample.data.meta["layout"] == "split folders"
    assert sample.warnings[0].startswith(f"split folders {', '.join(s + '/' for s in sorted(splits))}: the sample is "
                                         f"{' + '.join(s + '/' for s in used)}")
    assert len(sample.skipped) == 6 * (len(splits) - len(used))


def test_a_class_named_like_a_split_is_still_a_class(tmp_path):
    grey = _png(np.full((8, 8), 128, dtype=np.uint8))
    members = {f"{c}/{i}.png": grey for c in ("train", "test") for i in range(3)}  # classes, not splits
    sample = load_image_folder_zip(_zip(tmp_path / "s.zip", members))
    assert class_counts(sample) == {"test": 3, "train": 3} and sample.data.meta["layout"] == "folders"


def test_repeated_images_are_kept_and_counted_in_a_warning(tmp_path):
    grey, white = _png(np.full((8, 8), 128, dtype=np.uint8)), _png(np.full((8, 8), 255, dtype=np.uint8))
    members = {"cat/a.png": grey, "cat/b.png": grey, "cat/c.png": white, "dog/a.png": grey, "dog/b.png": _png(
        np.full((8, 8), 7, dtype=np.uint8)), "dog/c.png": _png(np.full((8, 8), 9, dtype=np.uint8))}
    sample = load_image_folder_zip(_zip(tmp_path / "d.zip", members))
    assert class_counts(sample) == {"cat": 3, "dog": 3}
    assert "2 image(s) repeat an earlier file byte for byte, 1 of them under another class" in sample.warnings
    distinct = {f"{c}/{i}.png": _png(np.full((8, 8), 10 * i + (c == "dog"), dtype=np.uint8))
                for c in ("cat", "dog") for i in range(3)}
    assert not any("repeat" in w for w in load_image_folder_zip(_zip(tmp_path / "e.zip", distinct)).warnings)


def test_an_archive_expanding_past_the_overall_ratio_is_refused_before_reading(tmp_path):
    """Each member stays under its own ratio cap; together they pass the archive's (zip bomb guard)."""
    with zipfile.ZipFile(tmp_path / "z.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for c in ("a", "b"):
            for i in range(3):
                zf.writestr(f"{c}/{i}.png", b"\0" * 64 * 1024)  # 64 KiB each, deflated to ~100 bytes
    limits = dataclasses.replace(DEFAULT_LIMITS, ratio_floor_bytes=1024, max_overall_ratio=50, max_member_ratio=10**6)
    with pytest.raises(UploadError, match=r"declares 384 KiB of content, more than the \d+ KiB allowed.*bomb guard"):
        load_image_folder_zip(tmp_path / "z.zip", limits=limits)


def test_a_file_listed_twice_in_the_manifest_counts_once(tmp_path):
    members = {f"img/{i}.png": _png(np.full((8, 8), 40 * i, dtype=np.uint8)) for i in range(4)}
    members["labels.csv"] = b"file,label\nimg/0.png,cat\nimg/1.png,cat\nimg/2.png,dog\nimg/3.png,dog\nimg/0.png,dog\n"
    sample = load_image_folder_zip(_zip(tmp_path / "m.zip", members))
    assert class_counts(sample) == {"cat": 2, "dog": 2}
    assert ("labels.csv row 6: img/0.png", "listed twice") in sample.skipped


def test_an_empty_class_folder_is_named_as_a_dropped_class(tmp_path):
    with zipfile.ZipFile(tmp_path / "f.zip", "w") as zf:
        for k, cls in enumerate(("cat", "dog")):
            for i in range(2):
                zf.writestr(f"{cls}/{i}.png", _png(np.full((8, 8), 50 * k + 10 * i, dtype=np.uint8)))
        zf.writestr(zipfile.ZipInfo("fish/"), b"")  # the user's class folder, left empty
    sample = load_image_folder_zip(tmp_path / "f.zip")
    assert sample.data.class_names == ["cat", "dog"]
    assert sample.warnings == ["class 'fish' dropped: 0 usable image(s), need at least 1"]
