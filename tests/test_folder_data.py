"""Image-folder datasets (core.data.folder): layouts, bad files, pixel conversion, splits, refusals."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from core.data.folder import TEST_EVERY, _flat_split, image_files, load_folder, split_within_class
from core.data.registry import DatasetUnavailableError, load_split


def _png(path, value=(200, 0, 0), size=(8, 6), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_flat_layout_splits_each_class_80_20_and_keeps_tiny_classes_in_train(tmp_path):
    for name, n in (("cat", 100), ("dog", 1), ("bird", 3)):
        for i in range(n):
            _png(tmp_path / name / f"{name}{i}.png")
    (tmp_path / "dog" / "dog0.png").rename(tmp_path / "dog" / "dog3.png")  # a name the old hash rule sent to test
    train = load_split(f"folder:{tmp_path}", "train")
    test = load_split(f"folder:{tmp_path}", "test")
    counts = lambda d: dict(zip(d.class_names, np.bincount(d.labels, minlength=3)))  # noqa: E731
    assert counts(train) == {"bird": 3, "cat": 80, "dog": 1}  # was: dog 0, cat 81
    assert counts(test) == {"bird": 0, "cat": 20, "dog": 0}
    assert split_within_class([str(i) for i in range(12)], "test") == sorted(
        set(range(12)) - set(split_within_class([str(i) for i in range(12)], "train")))
    assert len(split_within_class([str(i) for i in range(12)], "test")) == 12 // TEST_EVERY


def test_bad_files_are_skipped_and_named_not_fatal(tmp_path, caplog):
    for cls in ("cat", "dog"):
        for i in range(3):
            _png(tmp_path / "train" / cls / f"{i}.png")
            _png(tmp_path / "test" / cls / f"{i}.png")
    bad = tmp_path / "train" / "cat"
    (bad / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # macOS resource fork
    (bad / "cut.png").write_bytes((bad / "0.png").read_bytes()[:40])  # truncated
    (bad / "album.png").mkdir()  # a folder with an image's name
    (bad / "gone.png").symlink_to(tmp_path / "nowhere.png")  # broken link
    _png(bad / "deeper" / "nested.png")  # images in a sub-folder of the class belong to it
    (tmp_path / "train" / "__MACOSX").mkdir()  # not a class
    data = load_folder(tmp_path, "train", "a photo of a {c}")
    assert data.class_names == ["cat", "dog"]
    assert list(np.bincount(data.labels)) == [4, 3] and data.meta["skipped"] == 1
    assert "skipped 1 unreadable image(s): train/cat/cut.png" in caplog.text


def test_pixels_are_converted_as_uploads_are(tmp_path):
    grey16 = np.full((6, 8), 32768, np.uint16)  # half of the 16-bit range: mid grey, not white
    for cls in ("a", "b"):
        Image.fromarray(grey16).save(_dir(tmp_path / cls) / "grey16.png")
        exif = Image.Exif()
        exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees
        buf = io.BytesIO()
        Image.new("RGB", (16, 8), (0, 200, 0)).save(buf, format="JPEG", exif=exif)
        (tmp_path / cls / "rotated.jpg").write_bytes(buf.getvalue())
    data = load_split(f"folder:{tmp_path}", "train")
    grey = [im for im in data.images if im.size == (8, 6)]
    rotated = [im for im in data.images if im.size == (8, 16)]
    assert grey and 120 <= np.asarray(grey[0])[0, 0, 0] <= 135  # was 255: every 16-bit image white
    assert rotated  # EXIF orientation applied (was: stored 16 x 8)


def _dir(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.mark.parametrize("layout, message", [
    ({"train/cat": 2, "train/dog": 2, "train/fish": 2, "test/cat": 2, "test/fish": 2},
     r"hold different classes \(only in train: \['dog'\]"),
    ({"big_cat": 2, "big cat": 2}, "give the same class name 'big cat'"),
    ({"cre\u0300me": 2, "cr\u00e8me": 2}, "give the same class name 'cr\u00e8me'"),  # one name, two spellings
    ({"train/cat": 2, "train/dog": 2}, "has a train/ folder but no test/ folder"),
    ({"cat": 2}, "needs at least two class sub-folders"),
])
def test_unusable_folders_are_refused_with_a_reason(tmp_path, layout, message):
    for folder, n in layout.items():
        for i in range(n):
            _png(tmp_path / folder / f"{i}.png")
    with pytest.raises(DatasetUnavailableError, match=message):
        load_split(f"folder:{tmp_path}", "test")


def test_a_folder_path_that_is_a_file_empty_or_with_a_tilde_is_named_for_what_it_is(tmp_path):
    # a zip given for the folder was 'does not exist'; 'folder:' read the working folder and said '. has no readable
    # images'; '~' (which no shell expands after 'folder:') was only 'does not exist'
    from core.data.registry import get_dataset

    archive = tmp_path / "photos.zip"
    archive.write_bytes(b"PK")
    with pytest.raises(DatasetUnavailableError, match=r"image folder .*photos\.zip is a file, not a folder; give the "
                                                      r"folder that holds the class folders"):
        load_split(f"folder:{archive}", "train")
    for name in ("folder:", "folder: "):
        with pytest.raises(ValueError, match=rf"dataset '{name}' names no folder; give its path, e\.g\. folder:/"):
            get_dataset(name)
    with pytest.raises(DatasetUnavailableError, match=r"image folder ~/no-such-photos does not exist; '~' is not "
                                                      r"expanded here, give the full path"):
        load_split("folder:~/no-such-photos", "train")
    with pytest.raises(DatasetUnavailableError, match=r"^image folder /no/such/photos does not exist$"):
        load_split("folder:/no/such/photos", "train")


def test_a_label_means_the_same_class_in_train_and_test_however_the_folders_are_spelled(tmp_path):
    for split, names in (("train", ("big_cat", "big-dog")), ("test", ("big cat", "big-dog"))):
        for k, name in enumerate(names):
            _png(tmp_path / split / name / "0.png", value=(200 * (name.startswith("big") and "cat" in name), 0, 0))
    train, test = (load_split(f"folder:{tmp_path}", s) for s in ("train", "test"))
    assert train.class_names == test.class_names == ["big cat", "big-dog"]  # was ['big-dog', 'big cat'] in train
    cat = train.class_names.index("big cat")
    assert np.asarray(train.images[list(train.labels).index(cat)])[0, 0, 0] == 200
    assert np.asarray(test.images[list(test.labels).index(cat)])[0, 0, 0] == 200


def test_torchvision_sets_without_a_split_are_split_within_each_class(tmp_path, monkeypatch):
    # EuroSAT as torchvision lays it out once downloaded (offline here: a fake of 2 classes x 10 images)
    for cls in ("Forest", "River"):
        for i in range(10):
            _png(tmp_path / "eurosat" / "2750" / cls / f"{cls}_{i}.jpg")
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    train, test = (load_split("eurosat", s) for s in ("train", "test"))
    assert train.class_names == test.class_names == ["forest", "river"]  # as prompts name them
    assert list(np.bincount(train.labels)) == [8, 8] and list(np.bincount(test.labels)) == [2, 2]  # was 10 and 10


def test_labels_are_read_without_decoding_where_a_dataset_keeps_them():
    from core.data.registry import _targets

    class Samples:  # GTSRB keeps (path, label) pairs and names no classes
        _samples = [("a.ppm", 0), ("b.ppm", 42)]

        def __getitem__(self, i):
            raise AssertionError("decoded an image to read a label")

    assert _targets(Samples()) == [0, 42]


def _rotated_16bit_png() -> bytes:
    """A 40 x 20 (wide) 16-bit PNG whose EXIF says: show it turned 90 degrees (20 x 40)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.fromarray((np.arange(20 * 40).reshape(20, 40) * 50).astype(np.uint16)).save(buf, format="PNG", exif=exif)
    return buf.getvalue()


def test_high_bit_depth_images_keep_their_exif_rotation(tmp_path):
    import zipfile

    from core.upload import load_image_folder_zip

    for cls in ("a", "b"):
        (_dir(tmp_path / "data" / cls) / "scan.png").write_bytes(_rotated_16bit_png())
    folder = load_split(f"folder:{tmp_path / 'data'}", "train")
    assert {im.size for im in folder.images} == {(20, 40)}  # was (40, 20): to_8bit dropped the EXIF
    with zipfile.ZipFile(tmp_path / "u.zip", "w") as zf:
        for cls in ("a", "b"):
            for i in range(2):
                zf.writestr(f"{cls}/{i}.png", _rotated_16bit_png())
    uploaded = load_image_folder_zip(tmp_path / "u.zip")
    assert {im.size for im in uploaded.data.images} == {(20, 40)}


def test_a_class_spelled_decomposed_in_train_and_composed_in_test_is_one_class(tmp_path):
    # macOS writes 'crème' decomposed (NFD); a test/ made elsewhere composed (NFC): 'different classes' before
    for split, name in (("train", "cre\u0300me"), ("test", "cr\u00e8me")):
        for other in (name, "tart"):
            _png(tmp_path / split / other / "0.png")
    train, test = (load_split(f"folder:{tmp_path}", s) for s in ("train", "test"))
    assert train.class_names == test.class_names == ["cr\u00e8me", "tart"]


def test_upper_case_suffixes_count_and_hidden_sub_folders_do_not(tmp_path):
    """A camera's 'IMG_0001.JPG' is an image; a thumbnail cache ('cat/.thumbs/…') is not part of the class."""
    for cls in ("cat", "dog"):
        for split in ("train", "test"):
            _png(tmp_path / split / cls / "0.png")
    Image.new("RGB", (8, 6), (0, 0, 200)).save(tmp_path / "train" / "cat" / "IMG_0001.JPG", format="JPEG")
    _png(tmp_path / "train" / "dog" / ".thumbs" / "t.png")
    _png(tmp_path / "train" / "dog" / "sub" / ".cache" / "c.png")
    data = load_folder(tmp_path, "train", "a photo of a {c}")
    assert data.class_names == ["cat", "dog"] and list(np.bincount(data.labels)) == [2, 1]


def test_the_flat_split_is_keyed_by_the_path_inside_the_class_folder(tmp_path):
    """Two images of one name in different sub-folders are different items, each split by its own path."""
    keys = [f"{sub}/{i}.png" for sub in ("day", "night") for i in range(10)]
    for cls in ("cat", "dog"):
        for key in keys:
            _png(tmp_path / cls / key)
    test = load_folder(tmp_path, "test", "a photo of a {c}")
    want = sorted(keys)
    expected = [want[i] for i in split_within_class(want, "test")]
    assert len(test.labels) == 2 * len(expected) == 8
    assert test.meta["skipped"] == 0
    cat = tmp_path / "cat"
    assert [p.relative_to(cat).as_posix() for p in _flat_split(image_files(cat), cat, "test")] == expected


def test_a_split_is_the_same_for_names_spelled_composed_or_decomposed():
    """macOS often gives 'café' decomposed (e + combining accent); its images went to other splits than Linux's."""
    import unicodedata

    composed = [f"café_{i:02d}.png" for i in range(25)]
    decomposed = [unicodedata.normalize("NFD", k) for k in composed]
    assert decomposed != composed
    assert split_within_class(decomposed, "test") == split_within_class(composed, "test")
    assert split_within_class(["b.png", "a.png"], "train") == [0, 1]  # fewer than TEST_EVERY: all train


def test_images_are_ordered_the_same_on_every_system():
    """Path order is case-insensitive on Windows and a name's accents may be decomposed on macOS: the order is
    by each part's NFC text, case-sensitive, the order Linux's Path gives for ASCII names."""
    from pathlib import PurePosixPath, PureWindowsPath

    from core.data.folder import file_order_key

    names = ["b.png", "B.png", "a/z.png", "a-c.png", "é.png"]
    linux = sorted(PurePosixPath(n) for n in names)
    for flavour in (PurePosixPath, PureWindowsPath):
        assert [PurePosixPath(*p.parts) for p in sorted((flavour(n) for n in names), key=file_order_key)] == linux
    assert file_order_key(PurePosixPath("e\u0301.png")) == file_order_key(PurePosixPath("é.png"))


def test_two_files_one_name_in_two_spellings_keep_one_order_and_split(tmp_path, monkeypatch):
    """Linux can hold 'é.png' composed and decomposed side by side, two files: their NFC keys tie, and their
    order and split followed the folder's listing order (tmpfs lists newest first), so a copy of the folder
    could swap which of the two was a test image. Ties are broken by the names as spelled."""
    import unicodedata
    from pathlib import Path

    composed, decomposed = "é.png", unicodedata.normalize("NFD", "é.png")
    keys = [composed, decomposed, *(f"{i}.png" for i in range(4))]  # one of the pair is a test item
    chosen = [keys[i] for i in split_within_class(keys, "test")]
    assert {composed, decomposed} & set(chosen) and not {composed, decomposed} <= set(chosen)  # one test, one train
    assert [keys[::-1][i] for i in split_within_class(keys[::-1], "test")] == [k for k in keys[::-1] if k in chosen]
    cat = tmp_path / "cat"
    cat.mkdir()
    for name in keys:
        (cat / name).write_bytes(b"")
    real = Path.rglob
    orders = []
    for flip in (False, True):
        monkeypatch.setattr(Path, "rglob", lambda self, p: sorted(real(self, p), reverse=flip))
        orders.append([p.name for p in image_files(cat)])
    assert orders[0] == orders[1]


def test_image_files_are_listed_in_nfc_order(tmp_path):
    """A Mac's decomposed 'éz.png' sorts before 'éa.png' by its raw code points (e < é); listed by NFC it follows."""
    folder = tmp_path / "cat"
    for name in ("e\u0301z.png", "\u00e9a.png"):
        _png(folder / name)
    assert [p.name for p in image_files(folder)] == ["\u00e9a.png", "e\u0301z.png"]


def test_adding_a_file_to_a_flat_class_can_move_others_between_splits_as_documented():
    """What split_within_class's docstring and README say of the flat layout: an item's place in the hashed order
    is fixed, but an added item moves the ranks after it (one file added to a class of 50 moved 7 of its 10 test
    items); the same files always split alike."""
    keys = [f"c/img{i:03d}.png" for i in range(50)]
    before = {keys[i] for i in split_within_class(keys, "test")}
    grown = [*keys, "c/new.png"]
    after = {grown[i] for i in split_within_class(grown, "test")}
    assert len(before) == len(after) == 10 and len(before - after) == 7
    assert {list(reversed(keys))[i] for i in split_within_class(list(reversed(keys)), "test")} == before


def test_load_folder_takes_its_folder_as_a_string_too(tmp_path):
    # load_folder("/photos", ...) failed on "'str' object has no attribute 'is_dir'"; a missing one then said nothing
    # of the folder
    for cls in ("cat", "dog"):
        for i in range(2):
            _png(tmp_path / cls / f"{i}.png")
    assert load_folder(str(tmp_path), "train", "a photo of a {c}").class_names == ["cat", "dog"]
    from core.data.folder import FolderDatasetError

    with pytest.raises(FolderDatasetError, match=r"image folder /no/such/photos does not exist"):
        load_folder("/no/such/photos", "train", "a photo of a {c}")


def test_a_split_without_images_says_what_its_class_folders_hold_instead(tmp_path):
    # each was only '<folder> has no readable images for the train split': an iPhone's .heic photos, empty class
    # folders and classes too small to give the flat layout a test image read alike
    heic, empty, small = _dir(tmp_path / "heic"), _dir(tmp_path / "empty"), _dir(tmp_path / "small")
    for cls in ("cat", "dog"):
        for i in range(3):
            _dir(heic / cls).joinpath(f"{i}.heic").write_bytes(b"x")
            _png(small / cls / f"{i}.png")
        _dir(empty / cls)
    with pytest.raises(DatasetUnavailableError, match=r"no readable images for the train split: its class folders hold "
                                                      r"only files of other types \(6 \.heic\); images are read from "
                                                      r"\.bmp, .*\.webp files"):
        load_split(f"folder:{heic}", "train")
    with pytest.raises(DatasetUnavailableError, match=r"for the train split \(its class folders hold no files\)"):
        load_split(f"folder:{empty}", "train")
    with pytest.raises(DatasetUnavailableError, match=rf"for the test split \(its classes hold 6 image\(s\), fewer than "
                                                      rf"{TEST_EVERY} each, which the flat layout keeps in train"):
        load_split(f"folder:{small}", "test")


def test_a_folder_one_level_above_its_classes_names_the_folder_to_give(tmp_path):
    # a zip unpacked with its top folder ('photos/cat', 'photos/dog') was only 'needs at least two class sub-folders'
    for cls in ("cat", "dog"):
        _png(tmp_path / "photos" / cls / "0.png")
    with pytest.raises(DatasetUnavailableError, match=rf"needs at least two class sub-folders; it holds one folder, "
                                                      rf"'photos', whose sub-folders look like the classes: give "
                                                      rf"folder:{tmp_path}/photos$"):
        load_split(f"folder:{tmp_path}", "train")


def test_a_split_folder_one_level_above_its_classes_is_not_sent_to_its_one_sub_folder(tmp_path):
    # 'train/photos/{cat,dog}' said 'give folder:<root>/train/photos', which loads train/ alone as a flat dataset
    # (its test split drawn from train images) and drops test/: the hint names the layout instead
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            _png(tmp_path / split / "photos" / cls / "0.png")
    with pytest.raises(DatasetUnavailableError, match=r"needs at least two class sub-folders; it holds one folder, "
                                                      r"'photos', whose sub-folders look like the classes: put the "
                                                      r"class folders directly in train/ and test/$") as raised:
        load_split(f"folder:{tmp_path}", "train")
    assert "give folder:" not in str(raised.value)
