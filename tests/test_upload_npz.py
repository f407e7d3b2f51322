"""core.upload's embeddings (.npz): class names stored as bytes, classes without an image, a zip64 locator
outside the file, negative dimensions, values after the float32 cast, the row limit, labels and names refused;
the embedding width read from a model's config; the budget pool of parsed uploads (core.upload.pool)."""
from __future__ import annotations

import dataclasses
import io
import zipfile

import numpy as np
import pytest

from core import upload
from core.upload import DEFAULT_LIMITS, UploadError, embeddings_summary, load_embeddings_npz, load_image_folder_zip


# The filter of tests/test_upload_corpus.py (whose 10000x10000 PNG case makes PIL warn): these tests
# keep the markers they had before the upload tests were split
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


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


def test_embedding_row_limit_is_inclusive():
    arrays = _good_npz_arrays(np.random.default_rng(0))  # 4 rows
    at_limit = dataclasses.replace(DEFAULT_LIMITS, max_embedding_rows=4)
    assert load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)), limits=at_limit)["labels"].shape == (4,)
    with pytest.raises(UploadError, match=r"too large: 4 rows \(limit 3\)"):
        load_embeddings_npz(io.BytesIO(_npz_bytes(**arrays)),
                            limits=dataclasses.replace(at_limit, max_embedding_rows=3))


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


def test_a_loaded_npz_is_summarised_in_one_line_like_an_image_upload():
    emb = {"image_embeddings": np.arange(1, 21, dtype=np.float32).reshape(5, 4),
           "text_embeddings": np.ones((3, 4), np.float32), "labels": np.array([0, 0, 2, 2, 2]),
           "class_names": ["cat", "dog", "émeu"]}
    assert embeddings_summary(emb) == "5 image embeddings (width 4) in 3 classes: cat (2), dog (0), émeu (3)"


def test_an_npz_whose_rows_repeat_says_so_as_an_image_upload_does():
    """Rows equal to an earlier one, as a zip's byte-for-byte repeated files, count as identical pairs in IIMM's
    image-image term: the image upload says so under its summary, and an .npz said nothing."""
    x = np.arange(20, dtype=np.float32).reshape(5, 4)
    emb = {"image_embeddings": x[[0, 1, 2, 0, 0]], "text_embeddings": np.ones((2, 4), np.float32),
           "labels": np.array([0, 0, 1, 0, 1]), "class_names": ["cat", "dog"]}
    assert embeddings_summary(emb).splitlines() == [
        "5 image embeddings (width 4) in 2 classes: cat (3), dog (2)",
        "2 image embedding(s) repeat an earlier row exactly, 1 of them under another class"]
    assert "\n" not in embeddings_summary({**emb, "image_embeddings": x})
