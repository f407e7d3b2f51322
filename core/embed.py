"""Embeddings from one forward pass: images in batches, class prompts from templates, and a disk cache.

Embedding and scoring are separate steps: this module returns arrays, ``core.metrics``
scores them. Every array computed here is float32 and L2-normalised per row.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from core import models as model_zoo
from core.data.base import LabeledImages, check_not_one_string, check_prompt_template
from core.file_modes import shared_mkstemp
from core.imaging import images_to_tensor
from core.metrics import check_count
from core.models import LoadedModel, needs_quick_gelu

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]  # (done, total)


#: images per forward pass of :func:`embed_images` and :func:`embed_dataset` unless told otherwise
DEFAULT_IMAGE_BATCH = 256


def embed_images(loaded: LoadedModel, images: np.ndarray | Sequence, *, batch_size: int = DEFAULT_IMAGE_BATCH,
                 progress: Progress | None = None) -> np.ndarray:
    """Image embeddings, shape (N, d), float32, rows L2-normalised, in input order.

    images: uint8 array (N, H, W, 3) or a sequence of N PIL images.
    progress: called with (images done, total) after every batch.
    """
    # 2.5 raised TypeError from range() once the model was set up, "4" a TypeError from '<=', and True was 1
    batch_size = check_count(batch_size, "batch_size")
    n = len(images)
    if n == 0:
        raise ValueError("images is empty: nothing to embed")
    model = loaded.model
    device = _device_of(model)
    was_training = model.training
    model.eval()
    chunks = []
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                index = np.arange(start, min(start + batch_size, n))
                x = images_to_tensor(images, index, loaded).to(device)
                chunks.append(model.encode_image(x, normalize=True).float().cpu().numpy())
                if progress is not None:
                    progress(int(index[-1]) + 1, n)
    finally:
        model.train(was_training)
    return np.concatenate(chunks)


# Prompts per text-encoder batch. A template's prompts went in one batch whatever the class count
# (1,000 classes: +1.8 GiB on ViT-B-32; 21,000 would not fit a laptop). Up to this many classes the
# batch is unchanged, so every embedding (and cache entry) of such a dataset stays bit-identical.
PROMPT_BATCH = 256


def embed_prompts(loaded: LoadedModel, class_names: Sequence[str], templates: str | Sequence[str], *,
                  batch_size: int = PROMPT_BATCH) -> np.ndarray:
    """Class-prompt embeddings, shape (C, d), float32, rows L2-normalised.

    One template (the dataset's own, the default of the study) or several: with several,
    each class's prompt embeddings are averaged and re-normalised (prompt ensembling).
    The prompts of a template go through the text encoder ``batch_size`` at a time.
    """
    templates = [templates] if isinstance(templates, str) else list(templates)
    if not templates:
        raise ValueError("every template must contain '{c}'; none was given")
    for template in templates:  # 'a {c} of {size}' failed on the first prompt with a bare KeyError('size')
        check_prompt_template(template)
    check_not_one_string(class_names)
    if len(class_names) == 0:
        raise ValueError("class_names is empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model = loaded.model
    device = _device_of(model)
    was_training = model.training
    model.eval()

    def encode(prompts: list[str]) -> torch.Tensor:
        return torch.cat([model.encode_text(loaded.tokenizer(prompts[i:i + batch_size]).to(device),
                                            normalize=True).float().cpu()
                          for i in range(0, len(prompts), batch_size)])

    try:
        with torch.inference_mode():
            per_template = [encode([t.format(c=c) for c in class_names]) for t in templates]
    finally:
        model.train(was_training)
    mean = torch.stack(per_template).mean(0)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


def _device_of(model: torch.nn.Module) -> torch.device:
    """Where the model's weights are (a grid cell on a GPU moves the model there): inputs go there too."""
    return next(iter(model.parameters()), torch.empty(0)).device


def data_fingerprint(data: LabeledImages) -> str:
    """A hash of the images' bytes, the labels and the class names (cache key part)."""
    h = hashlib.sha256()
    if isinstance(data.images, np.ndarray):
        h.update(str(data.images.shape).encode())
        h.update(np.ascontiguousarray(data.images).tobytes())
    else:
        for im in data.images:
            h.update(f"{im.size}{im.mode}".encode())
            h.update(im.tobytes())
    h.update(np.asarray(data.labels, np.int64).tobytes())
    h.update("\x1f".join(data.class_names).encode())
    return h.hexdigest()[:24]


@lru_cache(maxsize=8)
def _weights_fingerprint(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _initialisation_fingerprint(model: Any) -> str:
    """A random-weight network's identity. Its weights depend on the torch seed at build time, so
    architecture and tag do not name it; a fixed sample of every tensor does (cheap even for ViT-B)."""
    import torch

    h = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            h.update(f"{name}{tuple(tensor.shape)}".encode())
            h.update(tensor.detach().reshape(-1)[:1024].to("cpu", torch.float64).numpy().tobytes())
    return h.hexdigest()[:16]


def model_fingerprint(loaded: LoadedModel) -> str:
    """Model identity for cache keys: architecture, pretrained tag, and the hash of the weights file (shipped
    weights, or a file given as the pretrained tag) or, for random weights, a sample of the initialised
    tensors (two seeds are two networks), and the device type of a model not on the CPU."""
    spec = loaded.spec
    parts = [spec.arch, spec.pretrained_tag]
    if needs_quick_gelu(spec):  # entries computed before such models were built with QuickGELU are not theirs
        parts.append("quick-gelu")
    # read at each call, as load_model reads it: a moved weights folder is hashed where the weights came from
    weights = model_zoo.ASSET_DIR / spec.shipped_weights if spec.shipped_weights else None
    if weights is None and spec.weights_file:
        weights = Path(spec.pretrained)  # a user's own weights file: its path does not say what it holds
    if weights is not None:
        st = weights.stat()
        parts.append(_weights_fingerprint(str(weights), st.st_size, st.st_mtime))
    elif spec.random_weights:
        parts.append("init-" + _initialisation_fingerprint(loaded.model))
    device = _device_of(loaded.model)
    if device.type != "cpu":  # a GPU rounds otherwise (its convolutions may use TF32): entries of its own, so a
        parts.append(f"device-{device.type}")  # CPU check never reads a GPU's; CPU keys stay as they were
    return "|".join(parts)


def library_versions() -> str:
    """The versions of the libraries that compute an embedding, for cache keys: torch (the forward pass and the
    image array's resize), open_clip (the models, tokenizer and preprocess), torchvision and Pillow (the
    preprocess of PIL images), e.g. ``"torch 2.14.1|open_clip 3.3.0|torchvision 0.29.1|PIL 13.0.0"``; an
    upgrade of any may change the numbers, so entries computed before it are not served after it."""
    import PIL
    import open_clip
    import torchvision

    return "|".join(f"{name} {getattr(module, '__version__', 'unknown')}" for name, module in
                    (("torch", torch), ("open_clip", open_clip), ("torchvision", torchvision), ("PIL", PIL)))


@dataclass
class Embeddings:
    """What one forward pass over a dataset gives: everything the zero-shot measures need."""

    image: np.ndarray  # (N, d)
    text: np.ndarray  # (C, d)
    labels: np.ndarray  # (N,)
    class_names: list[str]
    model_label: str
    random_weights: bool
    data_fingerprint: str | None = None  # :func:`data_fingerprint` of the data (None: not computed, not cached)


_UNWRITABLE: set[str] = set()  # cache folders already warned about


#: A cache temporary (``.tmp-*.npz``) not modified for this long was left by a write killed midway: no write takes it.
ABANDONED_TMP_S = 3600.0


def _remove_abandoned(folder: Path, now: float) -> None:
    """Delete the temporaries of writes killed midway (SIGKILL, a pre-empted job), each as large as its entry and
    never read: older than :data:`ABANDONED_TMP_S` by ``now``, the folder's own clock (another process's write
    in progress is younger)."""
    for left in folder.glob(".tmp-*.npz"):
        try:
            if now - left.stat().st_mtime > ABANDONED_TMP_S:
                left.unlink()
                log.info("removed %s, left in the embedding cache by a write killed midway", left.name)
        except OSError:
            continue


def _save_to_cache(path: Path, image: np.ndarray, text: np.ndarray) -> None:
    """Write one cache entry atomically, best effort: a cache that cannot be written (read-only,
    disk full) costs speed, never the run, and leaves no half-written temporary behind (one a killed
    write left goes at a later write, :func:`_remove_abandoned`)."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # readable by the other users of a shared cache (one $IIMM_CACHE), not mkstemp's 0600
        fd, tmp = shared_mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
        now = os.fstat(fd).st_mtime
        with os.fdopen(fd, "wb") as f:
            np.savez(f, image=image, text=text)
        os.replace(tmp, path)
        _remove_abandoned(path.parent, now)
    except BaseException as exc:
        if tmp is not None:  # a Ctrl-C mid-write too: its temporary, as large as an entry, was left for an hour
            Path(tmp).unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        if str(path.parent) not in _UNWRITABLE:
            _UNWRITABLE.add(str(path.parent))
            log.warning("embeddings not cached in %s (%s); going on without the cache", path.parent, exc)


def default_cache_dir() -> Path:
    """The embedding cache folder: ``$IIMM_CACHE`` if set (``~`` expanded), else ``.cache/embeddings`` under the
    working folder. Set but empty counts as not set, as for the other folder variables (``IIMM_RESULTS``) and in
    ``make clean-cache``: ``Path("")`` is the working folder itself, where the cache's files were strewn."""
    from core.env_folders import env_folder

    return env_folder("IIMM_CACHE", lambda: Path.cwd() / ".cache" / "embeddings")


def embed_dataset(loaded: LoadedModel, data: LabeledImages, *, templates: str | Sequence[str] | None = None,
                  cache_dir: Path | None = None, use_cache: bool = True, batch_size: int = DEFAULT_IMAGE_BATCH,
                  progress: Progress | None = None, image_embeddings: np.ndarray | None = None) -> Embeddings:
    """Embed a labelled dataset and its class prompts, reading/writing the on-disk cache.

    The cache key is (model fingerprint, data fingerprint, :func:`library_versions`, prompts and, when not
    :data:`DEFAULT_IMAGE_BATCH`, the image batch size: a batch's matrix products round otherwise); a hit skips the
    forward pass entirely (entries of other library versions, those written before 2026-12-06 included, are misses
    and computed again). The result carries the data fingerprint (records name the data a cell ran on by it).
    Files are written atomically, so a crash never leaves a broken entry.
    ``image_embeddings``: the images' embeddings by this very model, kept by the caller (one row per image,
    in order); then only the prompts are embedded, the disk cache is neither read nor written, the result's
    ``image`` is that very array (not copied, cast or normalised) and its ``data_fingerprint`` is None.
    """
    templates = data.template if templates is None else templates
    if image_embeddings is not None:
        if np.ndim(image_embeddings) != 2 or len(image_embeddings) != len(data):
            raise ValueError(f"image_embeddings must hold one row per image ({len(data)}), got shape "
                             f"{np.shape(image_embeddings)}")
        text = embed_prompts(loaded, data.class_names, templates)
        return Embeddings(image_embeddings, text, data.labels.copy(), list(data.class_names), loaded.label,
                          loaded.random_weights)
    prompts = [templates] if isinstance(templates, str) else list(templates)
    batch_size = check_count(batch_size, "batch_size")
    data_key = data_fingerprint(data)
    parts = [model_fingerprint(loaded), data_key, library_versions(), *prompts]
    if batch_size != DEFAULT_IMAGE_BATCH:  # a batch rounds otherwise (batch 1: every row, by up to 1e-7); entries
        parts.append(f"image-batch-{batch_size}")  # of the default batch keep the keys they had
    key = hashlib.sha256("\x1e".join(parts).encode()).hexdigest()[:32]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{key}.npz"
    if use_cache and path.exists():
        try:
            # our own handle: np.load leaves the file it opened unclosed when the archive will not parse
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
                image, text = z["image"], z["text"]
            if image.shape[0] != len(data) or text.shape[0] != len(data.class_names):
                raise ValueError(f"entry holds {image.shape[0]} images and {text.shape[0]} classes")
            log.info("embedding cache hit %s", path.name)
            if progress is not None:
                progress(len(data), len(data))
            return Embeddings(image, text, data.labels.copy(), list(data.class_names),
                              loaded.label, loaded.random_weights, data_key)
        except Exception as exc:  # noqa: BLE001 (empty, truncated or foreign file: any failure means recompute)
            log.warning("ignoring unreadable cache entry %s (%s); recomputing it", path, type(exc).__name__)
    image = embed_images(loaded, data.images, batch_size=batch_size, progress=progress)
    text = embed_prompts(loaded, data.class_names, templates)
    if use_cache:
        _save_to_cache(path, image, text)
    return Embeddings(image, text, data.labels.copy(), list(data.class_names), loaded.label, loaded.random_weights,
                      data_key)
