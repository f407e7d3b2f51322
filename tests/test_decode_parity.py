"""The same image files reach the model alike as an uploaded sample (core.upload, a zip or jobs.forecast's folder)
and as an image-folder dataset (core.data.folder, what the grid embeds and fine-tunes on): the same upright RGB
pixels, the same embeddings, IIMM and zero-shot accuracy, for awkward files (EXIF and TIFF orientation, palettes
with transparency, alpha, greyscale, 16-bit and float, CMYK, animated GIF, tiny and wide images). Images larger
than the upload's ``max_side`` are thumbnailed by the upload only (its memory rule) and are not compared here."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core.data.folder import load_folder
from core.upload import DEFAULT_LIMITS, folder_as_zip, load_image_folder_zip

_RNG = np.random.default_rng(0)


def _ramp(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(h + w - 2, 1)],
                    -1).astype(np.uint8)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _alpha(h: int, w: int) -> np.ndarray:
    return np.dstack([_ramp(h, w), np.tile((np.arange(w) * 255 // max(w - 1, 1)).astype(np.uint8), (h, 1))])


def _gif(path):
    frames = [Image.fromarray(_ramp(24, 30)), Image.fromarray(255 - _ramp(24, 30))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


WRITERS = {  # file name -> how to write it
    "phone.jpg": lambda p: Image.fromarray(_ramp(30, 50)).save(p, exif=_exif(6), quality=95),
    "mirrored.png": lambda p: Image.fromarray(_ramp(30, 50)).save(p, exif=_exif(8)),
    # one band, uncompressed, rotated by its orientation tag (scanners and cameras write portrait TIFFs so): Pillow
    # mapped a file opened by its path into memory at the rotated size and scrambled its rows (the folder's read)
    "scan.tif": lambda p: Image.fromarray(_ramp(20, 40)[..., 0]).save(p, exif=_exif(6)),
    "scan16.tif": lambda p: Image.fromarray(_ramp(20, 40)[..., 0].astype(np.uint16) * 16).save(p, exif=_exif(5)),
    "palette.png": lambda p: Image.fromarray(_ramp(30, 30)).quantize(16).save(p, transparency=0),
    "palette.gif": lambda p: Image.fromarray(_ramp(30, 30)).quantize(8).save(p, transparency=3),
    "alpha.png": lambda p: Image.fromarray(_alpha(30, 30), "RGBA").save(p),
    "alpha.webp": lambda p: Image.fromarray(_alpha(30, 30), "RGBA").save(p, lossless=True),
    "grey_alpha.png": lambda p: Image.fromarray(_alpha(30, 30)[..., [0, 3]], "LA").save(p),
    "grey.jpg": lambda p: Image.fromarray(_ramp(30, 40)[..., 0], "L").save(p, quality=95),
    "one_bit.png": lambda p: Image.fromarray(_ramp(30, 40)[..., 0] > 128).save(p),
    "sixteen.png": lambda p: Image.fromarray(_ramp(30, 40)[..., 0].astype(np.uint16) * 200).save(p),
    "float.tif": lambda p: Image.fromarray(_ramp(30, 40)[..., 0].astype(np.float32) / 255, "F").save(p),
    "cmyk.jpg": lambda p: Image.fromarray(_ramp(40, 30)).convert("CMYK").save(p, quality=95),
    "animated.gif": _gif,
    "tiny.png": lambda p: Image.fromarray(_RNG.integers(0, 256, (3, 2, 3), dtype=np.uint8)).save(p),
    "wide.png": lambda p: Image.fromarray(_ramp(8, DEFAULT_LIMITS.max_side)).save(p),
    "bmp.bmp": lambda p: Image.fromarray(_ramp(30, 40)).save(p),
}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """(the folder dataset's train split, the upload of that folder's sample) of WRITERS' files in two classes."""
    root = tmp_path_factory.mktemp("awkward")
    for cls, flip in (("cat", False), ("dog", True)):
        for split in ("train", "test"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for name, write in WRITERS.items():
                write(folder / name)
                if flip:  # the second class's files differ from the first's (no byte-for-byte repeats)
                    with Image.open(folder / name) as im:
                        frames = getattr(im, "n_frames", 1)
                    if frames == 1 and name.endswith((".png", ".bmp")):
                        with Image.open(folder / name) as im:
                            im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / name, **im.info)
    folder = load_folder(root, "train", "a photo of a {c}")
    upload = load_image_folder_zip(folder_as_zip(root, limits=DEFAULT_LIMITS), template="a photo of a {c}")
    return folder, upload


def test_every_awkward_file_is_read_by_both_paths_in_the_same_order(both):
    folder, upload = both
    assert upload.skipped == [(f"test/{c}/{n}", "in test/, not the split used") for c in ("cat", "dog")
                              for n in sorted(WRITERS)]
    assert len(folder) == len(upload.data) == 2 * len(WRITERS)
    assert folder.class_names == upload.data.class_names and (folder.labels == upload.data.labels).all()


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_both_paths_give_the_same_upright_rgb_pixels(both, name):
    folder, upload = both
    for i, (path, *_) in enumerate(folder.images.keys):
        if path.endswith("/" + name):
            a, b = folder.images[i], upload.data.images[i]
            assert a.mode == b.mode == "RGB" and a.size == b.size
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"{path}: the folder and the upload read other pixels"


def test_rotated_uncompressed_tiffs_are_read_upright(both):
    """The folder's read of an uncompressed TIFF with orientation 6 is the image turned a quarter clockwise."""
    folder, _ = both
    want = np.asarray(Image.fromarray(_ramp(20, 40)[..., 0]).transpose(Image.Transpose.ROTATE_270).convert("RGB"))
    (i,) = [i for i, (p, *_) in enumerate(folder.images.keys) if p.endswith("/train/cat/scan.tif")]
    assert np.array_equal(np.asarray(folder.images[i]), want)


def test_both_paths_give_the_same_embeddings_iimm_and_zero_shot_accuracy(both):
    """On the offline default model (shipped weights), as a forecast and the grid embed them."""
    from core import metrics
    from core.embed import embed_dataset
    from core.models import DEFAULT_MODEL, load_model

    loaded = load_model(DEFAULT_MODEL)

    folder, upload = both
    a, b = (embed_dataset(loaded, d, use_cache=False) for d in (folder, upload.data))
    np.testing.assert_allclose(a.image, b.image, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.text, b.text)
    assert metrics.iimm(a.image, a.text, a.labels) == pytest.approx(metrics.iimm(b.image, b.text, b.labels), abs=1e-6)
    assert metrics.zero_shot_accuracy(a.image, a.text, a.labels) == metrics.zero_shot_accuracy(b.image, b.text, b.labels)
