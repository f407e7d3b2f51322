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
``_REGISTRY`` (``family`` clip, siglip, coca, eva02, or tiny for a toy); a new architecture is a JSON config in
``core/model_configs`` (:func:`register_configs`); a shipped model adds its safetensors in ``core/assets`` and a
spec with ``shipped_weights`` and ``shipped_tag`` as ``_world_v2`` makes them (``jobs.pretrain`` trains the keys
of its ``RECIPES``; a ``<weights>.card.md`` beside the file is its card: ``core.cards.model_card_path``).
"""
from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.network import DOWNLOAD_STALL_S, is_stall, stall_timeout

log = logging.getLogger(__name__)

CONFIG_DIR = Path(__file__).parent / "model_configs"
_CONFIGS_SEEN: set[tuple[Path, int]] = set()  # register_configs: the config files (path, mtime) registered
ASSET_DIR = Path(__file__).parent / "assets"

#: The model the app, the jobs and the tests use unless told otherwise.
DEFAULT_MODEL = "worldclip-tiny"
OFFLINE_PRETRAINED_TAG = "world-v1"
RANDOM_TAG = "random"


class ModelUnavailableError(RuntimeError):
    """A model could not be built or its weights could not be obtained."""


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model.

    key: registry name users type. arch: open_clip architecture name (or ``hf-hub:`` id).
    pretrained: open_clip pretrained tag, a path to shipped weights, or None for random weights.
    family: clip | siglip | coca | eva02 | tiny. weights_source: where the weights come from, in words.
    """

    key: str
    arch: str
    pretrained: str | None
    family: str
    weights_source: str
    description: str = ""
    shipped_weights: str | None = None  # file name inside core/assets
    shipped_tag: str = OFFLINE_PRETRAINED_TAG  # the pretrained tag of shipped weights

    @property
    def pretrained_tag(self) -> str:
        """The tag stored in records: the open_clip tag, hub id, or 'random'."""
        if self.shipped_weights:
            return self.shipped_tag
        if self.arch.startswith("hf-hub:"):
            return self.arch.removeprefix("hf-hub:")
        return self.pretrained or RANDOM_TAG

    @property
    def random_weights(self) -> bool:
        return self.pretrained is None and not self.shipped_weights and not self.arch.startswith("hf-hub:")

    @property
    def label(self) -> str:
        """Human label; always says 'random weights' for untrained models."""
        base = f"{self.arch} ({self.pretrained_tag})"
        return f"{self.arch} (RANDOM WEIGHTS, untrained)" if self.random_weights else base

    @property
    def weights_file(self) -> bool:
        """Whether ``pretrained`` names a weights file that exists (a user's own checkpoint): nothing to download."""
        return (bool(self.pretrained) and not self.shipped_weights and not self.arch.startswith("hf-hub:")
                and looks_like_weights_path(self.pretrained) and Path(self.pretrained).is_file())

    @property
    def needs_download(self) -> bool:
        return not self.shipped_weights and not self.random_weights and not self.weights_file


def _world_v2(key: str, arch: str, letter: str, what: str) -> ModelSpec:
    return ModelSpec(key, arch, None, "tiny", "shipped in core/assets (trained by jobs.pretrain on world v2)",
                     f"Tiny {what}, pretrained offline on world v2", shipped_weights=f"{arch}_world-v2-{letter}.safetensors",
                     shipped_tag=f"world-v2-{letter}")


#: World v2's four models (issue: long-tailed world): same size and step budget, one change each.
WORLD_V2_MODELS: tuple[ModelSpec, ...] = (
    _world_v2("worldclip-v2-a", "worldclip-tiny", "a", "CLIP (contrastive), long-tailed mix, permutation 0"),
    _world_v2("worldsiglip-v2-b", "worldclip-tiny-sigmoid", "b", "SigLIP (sigmoid loss), long-tailed mix, permutation 0"),
    _world_v2("worldclip-v2-c", "worldclip-tiny", "c", "CLIP, uniform-mix control (every sub-world 10 %)"),
    _world_v2("worldclip-v2-d", "worldclip-tiny", "d", "CLIP, long-tailed mix, permutation 1"),
)

_REGISTRY: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec("worldclip-tiny", "worldclip-tiny", None, "tiny",
                  "shipped in core/assets (trained by jobs.pretrain on the generated world)",
                  "Tiny CLIP (ViT 4x128 on 32 px, 3-layer text) pretrained offline on the generated world",
                  shipped_weights="worldclip-tiny_world-v1.safetensors"),
        *WORLD_V2_MODELS,
        ModelSpec("worldclip-tiny-random", "worldclip-tiny", None, "tiny",
                  "none: random initialisation", "The tiny architecture with random weights"),
        ModelSpec("CLIP", "ViT-B-32", "openai", "clip", "OpenAI, via open_clip download",
                  "CLIP ViT-B/32 (OpenAI)"),
        ModelSpec("SigLIP", "hf-hub:timm/ViT-B-16-SigLIP", None, "siglip",
                  "Hugging Face hub timm/ViT-B-16-SigLIP", "SigLIP ViT-B/16"),
        ModelSpec("CoCa", "coca_ViT-B-32", "laion2B-s13B-b90k", "coca",
                  "LAION-2B, via open_clip download", "CoCa ViT-B/32"),
        ModelSpec("EVA-02", "EVA02-B-16", "merged2b_s8b_b131k", "eva02",
                  "Merged-2B, via open_clip download", "EVA-02 CLIP B/16"),
        ModelSpec("ViT-B-32-random", "ViT-B-32", None, "clip", "none: random initialisation",
                  "ViT-B/32 architecture with random weights (for benchmarks)"),
    )
}


def list_models() -> list[ModelSpec]:
    """Every registered model spec, offline default first."""
    return list(_REGISTRY.values())


def _family_of(arch: str) -> str:
    lowered = arch.lower()
    for needle, family in (("siglip", "siglip"), ("coca", "coca"), ("eva", "eva02")):
        if needle in lowered:
            return family
    return "clip"


WEIGHTS_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


def looks_like_weights_path(tag: str) -> bool:
    """Whether a pretrained value names a weights file (a path with a folder, or a weights file suffix) rather
    than an open_clip tag; decided by its form alone."""
    return "/" in tag or "\\" in tag or tag.lower().endswith(WEIGHTS_SUFFIXES)


def spec_for(name: str, pretrained: str | None = None) -> ModelSpec:
    """Resolve a registry key, or any open_clip ``(arch, pretrained)`` pair, to a spec.

    ``spec_for("CLIP")`` gives the registered entry; ``spec_for("ViT-B-16", "laion2b_s34b_b88k")``
    builds an ad-hoc spec; ``spec_for("ViT-B-16")`` means that architecture with random weights.
    Raises ValueError for an empty name or an empty pretrained tag.
    """
    if not name or not isinstance(name, str):
        raise ValueError("model name must be a non-empty string")
    if pretrained is None and name not in _REGISTRY and ":" in name and not name.startswith("hf-hub:"):
        name, pretrained = name.split(":", 1)  # "ARCH:TAG", the form of an ad-hoc spec's key
    if pretrained is not None and not pretrained.strip():  # 'ViT-B-32:' made an unlabelled random-weight model
        raise ValueError(f"model {name!r} has an empty pretrained tag; give an open_clip tag, a weights file, "
                         f"or '{RANDOM_TAG}' for random weights")
    if name in _REGISTRY and pretrained in (None, _REGISTRY[name].pretrained_tag):
        return _REGISTRY[name]
    for spec in _REGISTRY.values():  # "worldclip-tiny", "world-v1" style pairs
        if spec.arch == name and pretrained is not None and spec.pretrained_tag == pretrained:
            return spec
    if pretrained == RANDOM_TAG:
        pretrained = None
    key = f"{name}:{pretrained}" if pretrained else f"{name}:random"
    # by the tag's form, never by probing the disk: a record's text must not tell who reads a card which
    # files exist on the server (and a file in the working folder named like a tag is not taken for it)
    # (an 'hf-hub:' model's records store its hub id, 'org/name', as the tag: a '/' that names no file)
    source = (f"Hugging Face hub {name.removeprefix('hf-hub:')}" if name.startswith("hf-hub:")
              else "none: random initialisation" if not pretrained else f"the weights file {pretrained}"
              if looks_like_weights_path(pretrained) else "open_clip download")
    return ModelSpec(key, name, pretrained, _family_of(name), source)


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
        if isinstance(name, ModelSpec):
            typed = repr(name.key)
        else:  # what the caller typed, not the ad-hoc key ('NAME:random') spec_for made of it
            typed = repr(name) + (f" (pretrained {pretrained!r})" if pretrained is not None else "")
        raise ModelUnavailableError(
            f"Unknown model {typed}: neither a registered name ({', '.join(_REGISTRY)}) nor an open_clip "
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
            f"{spec.arch} has no pretrained weights {spec.pretrained!r}: neither an open_clip tag of this "
            f"architecture ({known or 'it has none'}) nor a weights file that exists (a file is named by a path "
            f"with a folder, e.g. ./{spec.pretrained}, or a {'/'.join(WEIGHTS_SUFFIXES)} name); the offline default "
            f"is '{DEFAULT_MODEL}'.")
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


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 3.0) -> bool:
    """Whether the weights hub answers at all: a quick check so offline users are not kept waiting."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class _DropRandomInitWarning(logging.Filter):
    """open_clip warns 'Model initialized randomly' before our shipped weights are loaded: not true."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("No pretrained weights loaded")


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


def _create(spec: ModelSpec, device: str):
    import open_clip

    quiet = _DropRandomInitWarning() if spec.shipped_weights else None
    root = logging.getLogger()
    if quiet:
        root.addFilter(quiet)
    try:
        return open_clip.create_model_and_transforms(spec.arch, pretrained=spec.pretrained, device=device,
                                                     force_quick_gelu=needs_quick_gelu(spec))
    finally:
        if quiet:
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
        return _create(spec, device)
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
                torch.manual_seed(int(init_seed))
            if spec.needs_download:
                model, _, preprocess = _create_from_cache_or_hub(spec, device)
            else:
                model, _, preprocess = _create(spec, device)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # network, hub, or checksum errors all mean: weights unavailable
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
