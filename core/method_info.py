"""What users see about a fine-tuning method: family, summary, paper, trainable count, peft config.

Imports neither torch nor the method implementations (pages that show the leaderboard stay light):
our methods' facts are in :data:`OURS`, peft methods' in ``core/methods/peft_catalogue.toml``, the file
that also defines their registry entries. ``tests/test_peft_adapters.py`` checks that every registered
method has an entry here and that the stated ViT-B/32 counts match real builds.

    from core.method_info import method_info, all_method_info, family_of_run
    method_info("peft_dora").family          # 'reparameterised'
    family_of_run("peft", provenance)        # a generic peft run: the family its record carries
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

#: none (zero-shot), full (every weight), and the PEFT families of the survey literature.
FAMILIES = ("none", "full", "selective", "additive", "reparameterised", "hybrid")
PEFT_FAMILIES = ("additive", "selective", "reparameterised", "hybrid")
PEFT_CATALOGUE = Path(__file__).resolve().parent / "methods" / "peft_catalogue.toml"
GENERIC_PEFT = "peft"


@dataclass(frozen=True)
class MethodInfo:
    """family: one of FAMILIES ('' for the generic ``peft`` method: its runs' records say);
    trainable_vit_b32: trainable parameters on ViT-B/32 with the defaults (None: not a fixed number);
    source: 'ours' or 'peft'; peft_type/peft_config: the catalogue's peft config ('' / {} otherwise)."""

    name: str
    family: str
    summary: str
    paper: str = ""
    trainable_vit_b32: int | None = None
    trains: bool = True
    source: str = "ours"
    peft_type: str = ""
    peft_config: dict = field(default_factory=dict)


OURS: dict[str, MethodInfo] = {info.name: info for info in (
    MethodInfo("zero_shot", "none", "no training: the pretrained model with class prompts (the baseline row)",
               "https://arxiv.org/abs/2103.00020", 0, trains=False),
    MethodInfo("full_ft", "full", "every parameter of both towers and the temperature", "", 151_277_313),
    MethodInfo("bitfit", "selective", "every bias inside the transformer blocks of both towers",
               "https://arxiv.org/abs/2106.10199", 168_960),
    MethodInfo("attention", "selective", "the packed Q/K/V input-projection weight of every block (A-CLIP)",
               "", 30_670_848),
    MethodInfo("lora", "reparameterised", "LoRA, rank 4, scale 0.2, on the Q and V rows of every block",
               "https://arxiv.org/abs/2106.09685", 245_760),
    MethodInfo("clip_adapter", "additive", "CLIP-Adapter: a bottleneck MLP on each tower's output, mixed 0.2/0.8",
               "https://arxiv.org/abs/2110.04544", 262_144),
    MethodInfo("linear_probe", "additive", "a linear head on frozen image features, from the zero-shot head",
               "https://arxiv.org/abs/2103.00020", None),
    MethodInfo("orthogonal", "reparameterised", "OrthCR-style Cayley rotations of q/k/v and MLP-in weights, "
               "cross-regularised to the zero-shot embeddings", "https://arxiv.org/abs/2407.08374", 10_208_256),
    MethodInfo("clip_cite", "full", "CLIP-CITE-style full fine-tuning: CE + image-text loss + KL to zero-shot",
               "https://arxiv.org/abs/2407.04003", 151_277_313),
    MethodInfo("wise_ft", "full", "full fine-tuning, then weights interpolated with the zero-shot ones",
               "https://arxiv.org/abs/2109.01903", 151_277_313),
)}


def normalise_peft(table: Mapping[str, Any]) -> dict[str, Any]:
    """A peft config table with ``type`` renamed ``peft_type`` (upper case) and the keys peft writes
    into adapter_config.json but does not take back dropped. ValueError if two types disagree."""
    out = {k: v for k, v in table.items() if k not in ("base_model_name_or_path", "revision", "task_type",
                                                       "auto_mapping", "peft_version")}
    if "type" in out:
        if "peft_type" in out and str(out["peft_type"]).upper() != str(out["type"]).upper():
            raise ValueError(f"peft config names two types: type={out['type']!r}, peft_type={out['peft_type']!r}")
        out["peft_type"] = out.pop("type")
    if "peft_type" in out:
        out["peft_type"] = str(out["peft_type"]).upper()
    return out


@lru_cache(maxsize=4)
def peft_catalogue(path: Path = PEFT_CATALOGUE) -> dict[str, MethodInfo]:
    """The catalogue file's methods; ValueError naming an entry that lacks a family or a peft table."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    out = {}
    for name, table in data.items():
        unknown = set(table) - {"family", "paper", "summary", "vit_b32_trainable", "peft"}
        if unknown or not isinstance(table.get("peft"), dict) or table.get("family") not in PEFT_FAMILIES:
            raise ValueError(f"{path}: entry [{name}] needs family in {PEFT_FAMILIES} and a peft table"
                             + (f"; unknown keys {sorted(unknown)}" if unknown else ""))
        config = normalise_peft(table["peft"])
        out[name] = MethodInfo(name, table["family"], table.get("summary", ""), table.get("paper", ""),
                               table.get("vit_b32_trainable"), source="peft", peft_type=config.get("peft_type", ""),
                               peft_config=config)
    return out


def _generic() -> MethodInfo:
    return MethodInfo(GENERIC_PEFT, "", "any peft tuner, configured by peft = {...} and/or adapter_config",
                      "https://github.com/huggingface/peft", None, source="peft")


def all_method_info() -> list[MethodInfo]:
    """Every method the registry knows, ours first, in registry order."""
    return [*OURS.values(), *peft_catalogue().values(), _generic()]


def method_info(name: str) -> MethodInfo:
    """Facts about method ``name``; ValueError for a name no registry entry has."""
    for info in all_method_info():
        if info.name == name:
            return info
    raise ValueError(f"unknown fine-tuning method {name!r}; known methods: "
                     f"{', '.join(i.name for i in all_method_info())}")


def family_of_run(method: str, provenance: Mapping[str, Any] | str | None = None) -> str:
    """The family of one run: the one its record carries (``provenance.method.family``, JSON text or a
    dict), else the method's catalogue family, else '' (unknown method, e.g. an ingested record)."""
    if isinstance(provenance, str):
        try:
            provenance = json.loads(provenance)
        except json.JSONDecodeError:
            provenance = None
    recorded = (provenance or {}).get("method") if isinstance(provenance, Mapping) else None
    if isinstance(recorded, Mapping) and recorded.get("family"):
        return str(recorded["family"])
    try:
        return method_info(method).family
    except ValueError:
        return ""
