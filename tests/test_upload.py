"""core.upload against the generated hostile corpus (tests/hostile_uploads.py) plus a few direct checks."""
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


def class_counts(sample) -> dict:
    counts = np.bincount(sample.data.labels, minlength=len(sample.data.class_names))
    return dict(zip(sample.data.class_names, counts.tolist()))


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


def test_class_names_stored_as_bytes_are_text(tmp_path):
    path = tmp_path / "e.npz"
    rng = np.random.default_rng(0)
    np.savez(path, image_embeddings=rng.normal(size=(4, 8)).astype(np.float32),
             text_embeddings=rng.normal(size=(2, 8)).astype(np.float32), labels=np.array([0, 0, 1, 1]),
             class_names=np.array([b"cat", "dög".encode()]))  # h5py-style bytes (UTF-8 encoded)
    assert load_embeddings_npz(path)["class_names"] == ["cat", "dög"]


@pytest.mark.parametrize("labels, message", [
    ([0, 0, 1, 1, 3, 3], r"1 of the 4 classes have no image \(labels never name class index 2\)"),
    ([0, 0, 0, 0, 0, 0], "3 of the 4 classes have no image"),  # one class only: no task
])
def test_embeddings_with_classes_that_have_no_image_are_refused(tmp_path, labels, message):
    path = tmp_path / "e.npz"
    rng = np.random.default_rng(0)
    np.savez(path, image_embeddings=rng.normal(size=(6, 8)).astype(np.float32),
             text_embeddings=rng.normal(size=(4, 8)).astype(np.float32), labels=np.array(labels),
             class_names=np.array(["a", "b", "c", "d"]))
    with pytest.raises(UploadError, match=message):  # was accepted and forecast (README: empty classes refused)
        load_embeddings_npz(path)


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _good_npz_arrays(rng) -> dict:
    return dict(image_embeddings=rng.normal(size=(4, 8)), text_embeddings=rng.normal(size=(2, 8)),
                labels=np.array([0, 0, 1, 1]), class_names=np.array(["cat", "dog"]))


@pytest.mark.parametrize("as_path", [False, True])
@pytest.mark.parametrize("locator_offset", [2**63, 2**40])
def test_a_zip64_locator_pointing_outside_the_file_is_refused(tmp_path, as_path, locator_offset):
    import struct

    raw = bytearray(_npz_bytes(**_good_npz_arrays(np.random.default_rng(0))))
    end = raw.rfind(b"PK\x05\x06")
    raw[end + 10:end + 12] = b"\xff\xff"  # entry count 0xFFFF: "look in the zip64 record"
    locator = b"PK\x06\x07" + struct.pack("<IQI", 0, locator_offset, 1)
    raw = raw[:end] + locator + raw[end:]
    source = io.BytesIO(bytes(raw))
    if as_path:
        (tmp_path / "x.npz").write_bytes(bytes(raw))
        source = tmp_path / "x.npz"
    with pytest.raises(UploadError, match="zip64 end record lies outside the file"):
        load_embeddings_npz(source)
    source = io.BytesIO(bytes(raw)) if not as_path else source
    with pytest.raises(UploadError, match="zip64 end record lies outside the file"):
        load_image_folder_zip(source)


def test_a_npy_header_with_negative_dimensions_is_refused(tmp_path):
    arrays = _good_npz_arrays(np.random.default_rng(0))
    arrays["image_embeddings"] = np.zeros(10)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.save(member, value)
            data = member.getvalue()
            if key == "image_embeddings":  # (-2, -5) has the right product, 10, but is no shape
                data = data.replace(b"(10,)", b"(-2,-5)".ljust(5, b" ")[:7], 1)
                header_len = int.from_bytes(data[8:10], "little")
                data = data[:10] + data[10:10 + header_len + 2].replace(b"  \n", b"\n", 1) + data[12 + header_len:]
            zf.writestr(key + ".npy", data)
    with pytest.raises(UploadError, match="negative dimension"):
        load_embeddings_npz(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("scale, message", [(1e300, "beyond float32's range"), (1e-300, "all zeros")])
def test_npz_values_are_checked_after_the_float32_cast(scale, message):
    arrays = _good_npz_arrays(np.random.default_rng(0))
    arrays["image_embeddings"] = arrays["image_embeddings"] * scale  # float64: finite and non-zero
    with pytest.raises(UploadError, match=message):
        load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)))


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


def test_embedding_row_limit_is_inclusive():
    arrays = _good_npz_arrays(np.random.default_rng(0))  # 4 rows
    at_limit = dataclasses.replace(DEFAULT_LIMITS, max_embedding_rows=4)
    assert load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)), limits=at_limit)["labels"].shape == (4,)
    with pytest.raises(UploadError, match=r"too large: 4 rows \(limit 3\)"):
        load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)),
                            limits=dataclasses.replace(at_limit, max_embedding_rows=3))


def test_an_archive_expanding_past_the_overall_ratio_is_refused_before_reading(tmp_path):
    """Each member stays under its own ratio cap; together they pass the archive's (zip bomb guard)."""
    with zipfile.ZipFile(tmp_path / "z.zip", "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for c in ("a", "b"):
            for i in range(3):
                zf.writestr(f"{c}/{i}.png", b"\0" * 64 * 1024)  # 64 KiB each, deflated to ~100 bytes
    limits = dataclasses.replace(DEFAULT_LIMITS, ratio_floor_bytes=1024, max_overall_ratio=50, max_member_ratio=10**6)
    with pytest.raises(UploadError, match=r"declares 384 KiB of content, more than the \d+ KiB allowed.*bomb guard"):
        load_image_folder_zip(tmp_path / "z.zip", limits=limits)


@pytest.mark.parametrize("change, words", [
    (dict(labels=np.array([0, 1, 1, 2])), r"labels must lie in 0\.\.1, found 0\.\.2"),  # one past the last class
    (dict(class_names=np.array(["cat", "cat"])), "class_names must be distinct"),
    (dict(text_embeddings=np.ones((1, 8)), labels=np.zeros(4, np.int64), class_names=np.array(["cat"])),
     "at least 2 classes"),
    (dict(text_embeddings=np.array([[np.nan] * 8, [1.0] * 8])), "NaN or infinite"),
])
def test_npz_label_past_the_last_class_repeated_names_one_class_or_nan_text_are_refused(change, words):
    arrays = _good_npz_arrays(np.random.default_rng(0)) | change
    with pytest.raises(UploadError, match=words):
        load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)))


def test_embedding_width_reads_the_models_config():
    assert upload.embedding_width("worldclip-tiny") == 128  # core/model_configs/worldclip-tiny.json
    assert upload.embedding_width("CLIP") == 512  # open_clip's ViT-B-32.json


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


def test_the_budget_pool_drops_the_least_recently_used_and_always_keeps_the_newest():
    from core.upload.pool import BudgetPool, parsed_bytes

    pool = BudgetPool()
    pool.put("a", "A", 40, budget=100)
    pool.put("b", "B", 40, budget=100)
    assert pool.get("a") == "A"  # a is now the most recently used
    pool.put("c", "C", 40, budget=100)  # 120 > 100: b, the least recently used, goes
    assert pool.get("b") is None and pool.get("a") == "A" and pool.get("c") == "C" and pool.held_bytes() == 80
    pool.put("huge", "H", 500, budget=100)  # larger than the budget: held alone
    assert len(pool) == 1 and pool.get("huge") == "H" and pool.held_bytes() == 500
    pool.put(("s1", "x"), 1, 10, budget=100)
    pool.put(("s1", "y"), 2, 10, budget=100, replaces=lambda k: k[0] == "s1")  # a session's earlier upload
    assert pool.get(("s1", "x")) is None and pool.get(("s1", "y")) == 2
    with pytest.raises(ValueError, match="size and budget must be >= 0"):
        pool.put("bad", 0, -1, budget=100)
    pool.clear()
    assert len(pool) == 0 and pool.held_bytes() == 0
    assert parsed_bytes({"image_embeddings": np.zeros((4, 8), np.float32), "labels": np.zeros(4, np.int64)}) == 160
    assert parsed_bytes("neither") == 0
