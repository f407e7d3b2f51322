"""Where things are inside an open_clip model: towers, transformer blocks, q/k/v and MLP weights.

Works on the model classes open_clip builds: ``CLIP`` (text parts at top level), ``CustomTextCLIP``
(SigLIP, EVA-02: ``text.*``; timm vision trunk ``visual.trunk.blocks``) and ``CoCa`` (``text.*``;
its captioning ``text_decoder`` is not used for classification and belongs to no tower).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from core.text import did_you_mean

TOWER_CHOICES = {"both": ("image", "text"), "image": ("image",), "text": ("text",)}
_BLOCK_LISTS = ("resblocks", "blocks")  # open_clip Transformer / timm ViT and EVA
_MLP_IN = ("c_fc", "fc1", "fc1_g", "fc1_x")  # open_clip MLP / timm Mlp / timm SwiGLU


def tower_of(name: str) -> str | None:
    """'image', 'text' or None (temperature, bias, CoCa decoder) for a parameter or module name."""
    if name.startswith("visual.") or name == "visual":
        return "image"
    if name.startswith(("logit_scale", "logit_bias", "text_decoder")):
        return None
    return "text"


def parse_towers(value: str) -> tuple[str, ...]:
    """'both' | 'image' | 'text' -> tuple of tower names; ValueError otherwise."""
    if value not in TOWER_CHOICES:
        raise ValueError(f"towers must be one of {sorted(TOWER_CHOICES)}, got {value!r}"
                         f"{did_you_mean(value, sorted(TOWER_CHOICES))}")
    return TOWER_CHOICES[value]


def block_lists(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, list) for every list of transformer blocks in ``model`` (open_clip ``resblocks``, timm
    ``blocks``), in model order; :func:`tower_of` its name says whose it is."""
    return [(name, module) for name, module in model.named_modules()
            if isinstance(module, (nn.ModuleList, nn.Sequential)) and name.rsplit(".", 1)[-1] in _BLOCK_LISTS]


def transformer_blocks(model: nn.Module, towers: tuple[str, ...]) -> list[tuple[str, nn.Module]]:
    """(name, block) for every transformer block of the chosen towers, in model order."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in block_lists(model):
        if tower_of(name) in towers:
            found.extend((f"{name}.{i}", block) for i, block in enumerate(module))
    for tower in towers:
        if not any(tower_of(n) == tower for n, _ in found):
            raise ValueError(f"no transformer blocks found in the {tower} tower of "
                             f"{type(model).__name__}; this method needs a transformer tower")
    return found


@dataclass(frozen=True)
class WeightTarget:
    """One weight tensor to adapt. ``parts``: row ranges of q/k/v inside it (empty for MLP weights)."""

    name: str
    owner: nn.Module = field(repr=False)
    attr: str
    parts: dict[str, slice] = field(default_factory=dict)

    @property
    def weight(self) -> nn.Parameter:
        """The owner's weight tensor, read at call time (a method may have replaced it)."""
        return getattr(self.owner, self.attr)


def _thirds(rows: int) -> dict[str, slice]:
    d = rows // 3
    return {"q": slice(0, d), "k": slice(d, 2 * d), "v": slice(2 * d, 3 * d)}


def qkv_targets(model: nn.Module, towers: tuple[str, ...]) -> list[WeightTarget]:
    """The q/k/v projection weight(s) of every block.

    open_clip ``nn.MultiheadAttention`` (and upstream's replacement): the packed ``in_proj_weight``;
    timm attention: the fused ``qkv`` Linear, or separate ``q_proj``/``k_proj``/``v_proj`` Linears
    (EVA-02 CLIP towers). Anything else raises ValueError saying what was found.
    """
    targets: list[WeightTarget] = []
    for bname, block in transformer_blocks(model, towers):
        attn = getattr(block, "attn", None)
        packed = getattr(attn, "in_proj_weight", None)
        if packed is not None and packed.dim() == 2 and packed.shape[0] == 3 * packed.shape[1]:
            targets.append(WeightTarget(f"{bname}.attn.in_proj_weight", attn, "in_proj_weight",
                                        _thirds(packed.shape[0])))
        elif isinstance(getattr(attn, "qkv", None), nn.Linear):
            targets.append(WeightTarget(f"{bname}.attn.qkv.weight", attn.qkv, "weight",
                                        _thirds(attn.qkv.out_features)))
        elif all(isinstance(getattr(attn, f"{k}_proj", None), nn.Linear) for k in "qkv"):
            targets.extend(WeightTarget(f"{bname}.attn.{k}_proj.weight", getattr(attn, f"{k}_proj"),
                                        "weight", {k: slice(None)}) for k in "qkv")
        else:
            raise ValueError(
                f"block {bname} has no q/k/v projection this method can adapt (attention module "
                f"{type(attn).__name__}); supported: open_clip in_proj_weight, timm qkv or "
                f"q_proj/k_proj/v_proj Linear layers")
    return targets


def mlp_in_targets(model: nn.Module, towers: tuple[str, ...]) -> list[WeightTarget]:
    """The first MLP layer weight(s) of every block (open_clip c_fc, timm fc1 / SwiGLU fc1_g+fc1_x)."""
    targets: list[WeightTarget] = []
    for bname, block in transformer_blocks(model, towers):
        mlp = getattr(block, "mlp", None)
        names = [n for n in _MLP_IN if isinstance(getattr(mlp, n, None), nn.Linear)]
        if not names:
            raise ValueError(f"block {bname} has no MLP input Linear ({'/'.join(_MLP_IN)})")
        targets.extend(WeightTarget(f"{bname}.mlp.{n}.weight", getattr(mlp, n), "weight") for n in names)
    return targets


def block_bias_names(model: nn.Module, towers: tuple[str, ...]) -> list[str]:
    """Names of every bias inside the transformer blocks (attention, LayerNorms, MLP)."""
    return [f"{bname}.{n}" for bname, block in transformer_blocks(model, towers)
            for n, _ in block.named_parameters() if n.endswith("bias")]
