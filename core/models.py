"""Model zoo: one registry of vision-language models, loadable by name.

Three kinds of entry share one ``ModelSpec``:

* the study's four models (SPEC section 3), downloaded through open_clip's normal path;
* any ``open_clip`` (architecture, pretrained) pair, via :func:`spec_for`;
* the project's own offline default, ``worldclip-tiny``, whose architecture config
  ships in ``core/model_configs`` (registered with ``open_clip.add_model_config``)
  and whose weights ship in ``core/assets``. An architecture of your own is one more JSON
  config there, named by its file name (``"NAME"``: random weights; ``"NAME:/path/weights.pt"``).

A spec whose ``pretrained`` is ``None`` builds a model with *random weights*; every
``LoadedModel`` carries ``random_weights`` and a ``label`` that says so, and every
record or table built from it repeats that label.

To add a model: an open_clip pair needs no code (``"ARCH:TAG"``, ``"ARCH:/path/weights.pt"``; :func:`check_model`
refuses a bad architecture, tag or file in one sentence before a grid runs); a short name is a ``ModelSpec`` in
``core.model_specs._REGISTRY`` (``family`` clip, siglip, coca, eva02, or tiny for a toy); a new architecture is a
JSON config in ``core/model_configs`` (:func:`register_configs`); a shipped model adds its safetensors in
``core/assets`` and a spec with ``shipped_weights`` and ``shipped_tag`` as ``core.model_specs._world_v2`` makes
them (``jobs.pretrain`` trains the keys of its ``RECIPES``; a ``<weights>.card.md`` beside the file is its card:
``core.model_cards.model_card_path``). The registry itself (``ModelSpec``, :func:`spec_for`, the names) is
``core.model_specs``, re-exported here.
"""
from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.model_specs import (  # noqa: F401 (re-exported: older code imports the registry from here)
    DEFAULT_MODEL, OFFLINE_PRETRAINED_TAG, RANDOM_TAG, WEIGHTS_SUFFIXES, WORLD_V2_MODELS, ModelSpec, _REGISTRY,
    list_models, looks_like_weights_path, spec_for)
from core.network import DOWNLOAD_STALL_S, is_stall, stall_timeout
from core.text import did_you_mean

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "model_configs"
_CONFIGS_SEEN: set[tuple[Path, int]] = set()  # register_configs: the config files (path, mtime) registered
ASSET_DIR = Path(__file__).parent / "assets"


class ModelUnavailableError(RuntimeError):
    """A model could not be built or its weights could not be obtained."""


def check_model(name: str | ModelSpec, pretrained: str | None = None) -> ModelSpec:
    """Resolve ``name`` (see spec_for) and check that open_clip knows its architecture.

    Cheap (builds nothing); raises ModelUnavailableError with one sentence for an unknown name, naming
    it as typed (``name``, and ``pretrained`` if given), and for a pretrained value that is neither an
    open_clip tag of the architecture nor an existing weights file.
    """
    import open_clip

    spec = name if isinstance(name, ModelSpec) else spec_for(name, pretrained)
    register_configs()
    if spec.arch not in open_clip.list_models() and not spec.arch.startswith("hf-hub:"):
        if spec.arch in _REGISTRY:  # a short name given other weights ('CLIP' with 'laion', 'CLIP:random')
            own, tag = _REGISTRY[spec.arch], spec.pretrained_tag
            instead = ("give another 'hf-hub:' model id" if own.arch.startswith("hf-hub:")
                       else f"name the architecture: '{own.arch}:{tag}', or {own.arch!r} with pretrained {tag!r}")
            raise ModelUnavailableError(
                f"{spec.arch!r} is a registered name with its own weights ({own.arch}, pretrained "
                f"{own.pretrained_tag!r}), so it takes no pretrained {tag!r}; for other weights "
                f"{instead}.")
        if isinstance(name, ModelSpec):
            typed = repr(name.key)
        else:  # what the caller typed, not the ad-hoc key ('NAME:random') spec_for made of it
            typed = repr(name) + (f" (pretrained {pretrained!r})" if pretrained is not None else "")
        close = did_you_mean(spec.arch, [*_REGISTRY, *open_clip.list_models()])
        raise ModelUnavailableError(
            f"Unknown model {typed}{close}: neither a registered name ({', '.join(_REGISTRY)}) nor an open_clip "
            f"architecture (see open_clip.list_models()); the offline default is '{DEFAULT_MODEL}'.")
    if (spec.pretrained and not spec.arch.startswith("hf-hub:") and not spec.shipped_weights
            and not open_clip.get_pretrained_cfg(spec.arch, spec.pretrained) and not spec.weights_file):
        if looks_like_weights_path(spec.pretrained):  # named as a file: say that file is missing, not how to name one
            raise ModelUnavailableError(
                f"{spec.arch}: the weights file {spec.pretrained} does not exist (or is not a file); check the path, "
                f"or use an open_clip tag; the offline default is '{DEFAULT_MODEL}'.")
        tags = open_clip.list_pretrained_tags_by_model(spec.arch)  # a typo is not 'offline': say what is known
        known = ", ".join(tags[:8]) + (", … see open_clip.list_pretrained_tags_by_model" if len(tags) > 8 else "")
        raise ModelUnavailableError(
            f"{spec.arch} has no pretrained weights {spec.pretrained!r}{did_you_mean(spec.pretrained, tags)}: "
            f"neither an open_clip tag of this architecture ({known or 'it has none'}) nor a weights file that "
            f"exists (a file is named by a path with a folder, e.g. ./{spec.pretrained}, or a "
            f"{'/'.join(WEIGHTS_SUFFIXES)} name); the offline default is '{DEFAULT_MODEL}'.")
    return spec


def register_configs() -> None:
    """Register every architecture config in ``core/model_configs`` with open_clip (idempotent): one added or
    edited while a process runs (the app's, a notebook's) is registered at the next call."""
    import open_clip

    # each file once as it stands (name, mtime): open_clip skips a JSON that is no config (no text_cfg) and keeps
    # every folder added, so re-adding it on each check made every later check read the folder once more
    files = {(path, path.stat().st_mtime_ns) for path in CONFIG_DIR.glob("*.json")}
    if any(path.stem not in open_clip.list_models() for path, _ in files - _CONFIGS_SEEN):
        open_clip.add_model_config(CONFIG_DIR)
    _CONFIGS_SEEN.update(files)


@dataclass
class LoadedModel:
    """A built model with everything needed to embed and fine-tune it."""

    spec: ModelSpec
    model: Any  # open_clip CLIP / CustomTextCLIP / CoCa (a torch.nn.Module)
    preprocess: Any  # PIL image -> tensor (eval transform)
    tokenizer: Any  # list[str] -> LongTensor
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def random_weights(self) -> bool:
        return self.spec.random_weights

    @property
    def label(self) -> str:
        return self.spec.label


def _offline_message(spec: ModelSpec, exc: BaseException) -> str:
    return (f"Could not obtain the pretrained weights of {spec.arch} ({spec.pretrained_tag}): "
            f"the download failed ({type(exc).__name__}); this machine may be offline — "
            f"use the offline default model '{DEFAULT_MODEL}' instead.")


def _weights_file_message(spec: ModelSpec, exc: BaseException) -> str:
    """A user's weights file that open_clip could not load: said as that, not as a failed download."""
    detail = " ".join(str(exc).split())
    detail = detail if len(detail) <= 200 else detail[:200] + " …"
    return (f"The weights file {spec.pretrained} could not be loaded into {spec.arch} ({type(exc).__name__}: "
            f"{detail}); is it a checkpoint (a state dict) of this architecture? Check the file, or name the "
            f"architecture it was saved from.")


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """Whether the weights hub answers at all: a quick check so offline users are not kept waiting."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _DropOpenClipLines(logging.Filter):
    """Drops open_clip's root-logger lines that begin with one of ``starts``: its 'Model initialized randomly' before
    our shipped weights are loaded (not true; for a random-weights spec true, but :func:`load_model` says so itself,
    in its own logger's line), and its 'Failed to download weights' on a try at the local cache only (expected
    offline; it raises the same text, which :func:`load_model` turns into its one sentence for the user)."""

    def __init__(self, *starts: str) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


def needs_quick_gelu(spec: ModelSpec) -> bool:
    """Whether open_clip records the spec's pretrained tag as trained with QuickGELU (OpenAI's CLIP weights,
    some LAION-400M ones) while the architecture's own config uses GELU: such weights must be built with
    QuickGELU, or they compute another function than the published model."""
    import open_clip

    if not spec.pretrained or spec.arch.startswith("hf-hub:"):
        return False
    if (open_clip.get_model_config(spec.arch) or {}).get("quick_gelu", False):
        return False  # a '-quickgelu' architecture builds it anyway: nothing to force, and its cache keys stand
    return bool(open_clip.get_pretrained_cfg(spec.arch, spec.pretrained).get("quick_gelu", False))


def _create(spec: ModelSpec, device: str, *, cache_only: bool = False):
    import open_clip

    random_init = ("No pretrained weights loaded",) if spec.shipped_weights or spec.random_weights else ()
    quiet = _DropOpenClipLines(*random_init, *(("Failed to download weights",) if cache_only else ()))
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        return open_clip.create_model_and_transforms(spec.arch, pretrained=spec.pretrained, device=device,
                                                     force_quick_gelu=needs_quick_gelu(spec))
    finally:
        root.removeFilter(quiet)


def _create_from_cache_or_hub(spec: ModelSpec, device: str):
    """Download through open_clip when the hub answers; otherwise only the local hub cache is tried."""
    if hub_reachable():
        try:
            with stall_timeout():
                return _create(spec, device)
        except OSError as exc:
            if is_stall(exc):  # a server that stopped sending: one sentence, not a hung job or a traceback
                raise ModelUnavailableError(
                    f"The download of {spec.arch} ({spec.pretrained_tag}) received nothing for "
                    f"{DOWNLOAD_STALL_S:g} s; try again later, or use the offline default model "
                    f"'{DEFAULT_MODEL}'.") from exc
            raise
    import huggingface_hub.constants as hub

    saved, hub.HF_HUB_OFFLINE = hub.HF_HUB_OFFLINE, True  # fail at once instead of retrying for a minute
    try:
        return _create(spec, device, cache_only=True)
    except Exception as exc:
        raise ModelUnavailableError(_offline_message(spec, exc)) from exc
    finally:
        hub.HF_HUB_OFFLINE = saved


def _check_device(device: object, torch: Any) -> None:
    """ValueError unless ``device`` names a torch device this machine has: a bad one ('bogus', 'cuda' on a host
    without CUDA) failed inside the build and was reported as weights that could not be downloaded."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ValueError(f"device {device!r} is not a torch device (e.g. 'cpu', 'cuda', 'cuda:0'): {exc}") from None
    if dev.type == "cuda" and (not torch.cuda.is_available()
                               or (dev.index is not None and dev.index >= torch.cuda.device_count())):
        raise ValueError(f"device {device!r} is not on this machine (CUDA devices here: "
                         f"{torch.cuda.device_count() if torch.cuda.is_available() else 0})")


def load_model(name: str | ModelSpec = DEFAULT_MODEL, *, device: str = "cpu",
               pretrained: str | None = None, init_seed: int | None = None) -> LoadedModel:
    """Build a model (and its weights) by registry key, spec, or open_clip pair.

    Weights already in the local hub cache load without a network. Otherwise, when the hub
    cannot be reached, or the download fails, ModelUnavailableError carries one clear sentence.
    ``init_seed``: a random-weight model's weights are drawn under this torch seed, the global generator
    left as it was; the grid seeds that generator with the run seed just before loading, so its seed-s
    network is ``init_seed=s``'s. None draws them from the global generator as it stands. A model with
    weights ignores it. Raises ValueError for an ``init_seed`` that is not a non-negative integer, and for a
    ``device`` that is not a torch device of this machine.
    """
    import open_clip
    import torch

    if init_seed is not None:
        if isinstance(init_seed, bool) or not isinstance(init_seed, numbers.Integral) or init_seed < 0:
            raise ValueError(f"init_seed must be a non-negative integer or None, got {init_seed!r}")
    spec = check_model(name, pretrained)
    _check_device(device, torch)
    try:
        with torch.random.fork_rng(devices=[], enabled=spec.random_weights and init_seed is not None):
            if spec.random_weights and init_seed is not None:
                # the CPU's generator only: open_clip builds the network there and then moves it, and fork_rng
                # restores only that one (torch.manual_seed reseeded every CUDA device for good)
                torch.random.default_generator.manual_seed(int(init_seed))
            if spec.needs_download:
                model, _, preprocess = _create_from_cache_or_hub(spec, device)
            else:
                model, _, preprocess = _create(spec, device)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # network, hub, or checksum errors all mean: weights unavailable
        if spec.weights_file:  # nothing was downloaded: the user's own file is what failed
            raise ModelUnavailableError(_weights_file_message(spec, exc)) from exc
        raise ModelUnavailableError(_offline_message(spec, exc)) from exc
    if spec.shipped_weights:
        path = ASSET_DIR / spec.shipped_weights
        if not path.exists():
            raise ModelUnavailableError(
                f"The weights of {spec.key} are missing ({path.name} not in core/assets); "
                f"run `python -m jobs.pretrain --model {spec.key}` to recreate them.")
        from safetensors.torch import load_file

        try:
            state = {k: v.float() for k, v in load_file(str(path)).items()}
            model.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 (a Git LFS pointer, a cut copy: safetensors and torch raise many)
            raise ModelUnavailableError(
                f"The weights of {spec.key} in core/assets/{path.name} cannot be read ({type(exc).__name__}); a "
                f"Git LFS pointer or a cut copy? Fetch the real file, or run `python -m jobs.pretrain --model "
                f"{spec.key}` to recreate it.") from exc
        model.to(device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(spec.arch)
    visual = model.visual
    size = visual.image_size if hasattr(visual, "image_size") else 224
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(getattr(visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    if spec.random_weights:
        log.warning("%s has random weights: its numbers measure an untrained model", spec.arch)
    torch.set_grad_enabled(True)
    return LoadedModel(spec, model, preprocess, tokenizer, size, mean, std)
