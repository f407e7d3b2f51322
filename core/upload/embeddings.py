"""Precomputed embeddings (.npz) from users with their own pipeline, under the same byte caps."""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from core.upload.archive import Source, _open_zip, _opened, _read_member
from core.upload.limits import (DEFAULT_LIMITS, NPZ_KEYS, UploadError, UploadLimits, _Budget, _class_counts,
                                _printable, _Skip, label_problem, over_limit)


def _load_npy(raw: bytes | bytearray, key: str) -> np.ndarray:
    """One .npy array; its header is checked against the data length before numpy allocates anything."""
    bio = io.BytesIO(raw)
    try:
        major, _ = np.lib.format.read_magic(bio)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(bio)
    except Exception as e:  # numpy raises ValueError, SyntaxError... on a hostile header
        raise UploadError(f"array {key} is not a valid .npy array ({type(e).__name__})") from None
    if dtype.kind not in "fiuUS" or dtype.hasobject:
        raise UploadError(f"array {key} has dtype {dtype}; only numbers and strings are accepted")
    if any(int(n) < 0 for n in shape):
        raise UploadError(f"array {key}: its header has a negative dimension (shape {shape})")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != len(raw) - bio.tell():
        raise UploadError(f"array {key}: its header (shape {shape}) does not match its data size")
    offset = bio.tell()
    if dtype.kind in "US":  # small (class names): numpy's own reader
        return np.load(io.BytesIO(raw), allow_pickle=False)
    # Numbers: a view on the bytes already read, so parsing costs no second copy.
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape, order="F" if fortran else "C")


def load_embeddings_npz(path: Source, *, limits: UploadLimits = DEFAULT_LIMITS,
                        expected_dim: int | None = None) -> dict:
    """Precomputed embeddings from an .npz, for users with their own pipeline.

    Expects ``image_embeddings`` (N, d) float, ``text_embeddings`` (C, d) float, ``labels`` (N,) int
    in 0..C-1 and ``class_names`` (C,) str. Loaded with ``allow_pickle=False`` under the same byte caps
    as zips, plus a compression-ratio cap per array and ``limits.max_npz_bytes`` in all.
    expected_dim: the embedding width of the model the embeddings are said to come from; a
    different width is refused (without it, widths up to ``limits.max_embedding_dim``).
    Returns those four keys as float32 / int64 arrays and a list of str.
    Raises UploadError on any problem (shapes, non-finite values, label range, sizes, names).
    """
    with _opened(path) as fh:
        zf, _ = _open_zip(fh, limits, what=".npz file")
        with zf:
            infos = {i.filename: i for i in zf.infolist()}
            missing = [k for k in NPZ_KEYS if k + ".npy" not in infos]
            if missing:
                raise UploadError(f"the .npz lacks {', '.join(missing)}; it needs {', '.join(NPZ_KEYS)}")
            total = sum(infos[k + ".npy"].file_size for k in NPZ_KEYS)
            if total > limits.max_npz_bytes:
                raise UploadError("the .npz declares {} of arrays; the limit is {}".format(
                    *over_limit(total, limits.max_npz_bytes)))
            budget, arrays = _Budget(limits.max_npz_bytes), {}
            for key in NPZ_KEYS:
                info = infos[key + ".npy"]
                cap = min(limits.max_npz_bytes,
                          max(limits.ratio_floor_bytes, int(info.compress_size * limits.max_member_ratio)))
                try:
                    raw = _read_member(zf, info, budget, limits, cap=cap)
                except _Skip as e:
                    raise UploadError(f"array {key}: {e}") from None
                arrays[key] = _load_npy(raw, key)
    return _validate_embeddings(arrays, limits, expected_dim)


def _validate_embeddings(a: dict[str, np.ndarray], limits: UploadLimits, expected_dim: int | None) -> dict:
    x, t, y, names = (a[k] for k in NPZ_KEYS)
    for key, arr in (("image_embeddings", x), ("text_embeddings", t)):
        if arr.ndim != 2 or arr.dtype.kind != "f" or 0 in arr.shape:
            raise UploadError(f"{key} must be a non-empty 2-D float array, got {arr.dtype} {arr.shape}")
    (n, d), c = x.shape, t.shape[0]
    if n > limits.max_embedding_rows or d > limits.max_embedding_dim or c > limits.max_embedding_classes:
        raise UploadError(f"too large: {n} rows (limit {limits.max_embedding_rows}), dimension {d} (limit "
                          f"{limits.max_embedding_dim}), {c} classes (limit {limits.max_embedding_classes})")
    if expected_dim is not None and d != expected_dim:
        raise UploadError(f"the embeddings are {d} wide but the chosen model's are {expected_dim}; "
                          "pick the model that made them")
    if t.shape[1] != d:
        raise UploadError(f"text_embeddings have dimension {t.shape[1]} but image_embeddings have {d}")
    if c < 2:
        raise UploadError("a sample needs at least 2 classes")
    if y.shape != (n,) or y.dtype.kind not in "iu":
        raise UploadError(f"labels must be {n} integers (one per image), got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= c:
        raise UploadError(f"labels must lie in 0..{c - 1}, found {y.min()}..{y.max()}")
    empty = np.flatnonzero(np.bincount(y, minlength=c) == 0)
    if len(empty):  # as for image zips: a class without images is no class of the sample
        raise UploadError(f"{len(empty)} of the {c} classes have no image (labels never name class index "
                          f"{', '.join(map(str, empty[:5]))}{' …' if len(empty) > 5 else ''}); drop their text "
                          "embeddings and names, or add their images")
    if names.dtype.kind == "S":  # bytes names, as h5py and .astype("S") write them
        try:
            names = np.char.decode(names, "utf-8")
        except UnicodeDecodeError:
            raise UploadError("class_names are bytes that are not UTF-8 text") from None
    if names.shape != (c,) or names.dtype.kind != "U":
        raise UploadError(f"class_names must be {c} strings (one per text embedding), got {names.dtype} {names.shape}")
    class_names = [str(s) for s in names]
    for s in class_names:
        problem = label_problem(s, limits)
        if problem:
            raise UploadError(f"class name {_printable(s)!r}: {problem}")
    if len(set(class_names)) != c:
        raise UploadError("class_names must be distinct")
    # Checked after the float32 cast the loader returns: float64 values beyond float32's range become
    # inf there, and values below its smallest subnormal become 0 (a zero row has no direction).
    with np.errstate(over="ignore"):
        x, t = x.astype(np.float32, copy=False), t.astype(np.float32, copy=False)
    if not (np.isfinite(x).all() and np.isfinite(t).all()):
        raise UploadError("the embeddings contain NaN or infinite values (or values beyond float32's range)")
    for key, arr in (("image_embeddings", x), ("text_embeddings", t)):
        zero = np.flatnonzero(~np.any(arr, axis=1))
        if len(zero):
            raise UploadError(f"{key} row {zero[0]} is all zeros (in float32); an embedding needs a direction")
    return {"image_embeddings": x, "text_embeddings": t,
            "labels": y.astype(np.int64, copy=False), "class_names": class_names}


def embeddings_summary(embeddings: dict) -> str:
    """One line about a loaded ``.npz`` (:func:`load_embeddings_npz` output), as an image upload's summary
    gives one: '30 image embeddings (width 128) in 3 classes: a (10), b (10), c (10)'; and, as an image upload's
    warnings say its repeated files, a second line where rows repeat an earlier one exactly."""
    n_classes, per_class = _class_counts(embeddings["labels"], embeddings["class_names"])
    x = embeddings["image_embeddings"]
    line = f"{len(x)} image embeddings (width {x.shape[1]}) in {n_classes} classes: {per_class}"
    return "\n".join([line, *embeddings_warnings(embeddings)])


def embeddings_warnings(embeddings: dict) -> list[str]:
    """What :func:`embeddings_summary` warns of beyond its counts: rows that repeat an earlier one exactly (as an
    image upload's repeated files are said, core.upload.folders: IIMM counts such pairs as identical)."""
    first: dict[bytes, int] = {}  # a digest of a row's bytes -> the label it was first seen with
    repeats = across = 0
    rows = np.ascontiguousarray(embeddings["image_embeddings"])
    for row, label in zip(rows, np.asarray(embeddings["labels"]).tolist(), strict=True):
        key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
        if key in first:
            repeats += 1
            across += first[key] != label
        else:
            first[key] = label
    if not repeats:
        return []
    return [f"{repeats} image embedding(s) repeat an earlier row exactly"
            + (f", {across} of them under another class" if across else "")]


def embedding_width(model_key: str) -> int | None:
    """The embedding width of a registry model, read from its config without importing torch
    (None when it cannot be found: the upload then gets the generic width cap only)."""
    import importlib.util

    from core.models import CONFIG_DIR, spec_for

    try:
        arch = spec_for(model_key).arch
    except (KeyError, ValueError):
        return None
    places = [CONFIG_DIR]
    found = importlib.util.find_spec("open_clip")
    if found is not None and found.submodule_search_locations:
        places += [Path(p) / "model_configs" for p in found.submodule_search_locations]
    for folder in places:
        path = Path(folder) / f"{arch}.json"
        if path.is_file():
            try:
                width = json.loads(path.read_text()).get("embed_dim")
            except (OSError, ValueError):
                return None
            return width if isinstance(width, int) else None
    return None
