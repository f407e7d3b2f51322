"""The model registry: how each model is built (``ModelSpec``), the registered names, and how a typed name or an
open_clip ``(architecture, pretrained)`` pair resolves to a spec (:func:`spec_for`). Decided by names and forms
alone: nothing here imports open_clip or reads weights (``core.models`` checks and builds a spec).

A short name is a ``ModelSpec`` in ``_REGISTRY`` (``family`` clip, siglip, coca, eva02, or tiny for a toy); a
shipped model's spec names its safetensors in ``core/assets`` with ``shipped_weights`` and ``shipped_tag``, as
``_world_v2`` makes them. ``core.models`` re-exports every public name here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The model the app, the jobs and the tests use unless told otherwise.
DEFAULT_MODEL = "worldclip-tiny"
OFFLINE_PRETRAINED_TAG = "world-v1"
RANDOM_TAG = "random"


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
    Raises ValueError for an empty name, an empty or non-string pretrained tag, and an 'hf-hub:' with no id.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"model name must be a non-empty string, got {name!r}")
    if pretrained is not None and not isinstance(pretrained, str):  # 5 failed on 'int' object has no attribute 'strip'
        raise ValueError(f"pretrained must be a string (an open_clip tag, a weights file's path, or '{RANDOM_TAG}') "
                         f"or None, got {pretrained!r}")
    if name.startswith("hf-hub:") and not name.removeprefix("hf-hub:").strip():  # built as a download that failed
        raise ValueError(f"model {name!r} names no Hugging Face hub model; give its id, e.g. "
                         "'hf-hub:timm/ViT-B-16-SigLIP'")
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
