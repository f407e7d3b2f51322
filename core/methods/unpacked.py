"""Exact, reversible "unpacked" attention for open_clip towers, so peft can target q/k/v by name.

open_clip (<= 3.3) builds its blocks with ``torch.nn.MultiheadAttention``: q, k and v live in one
packed ``in_proj_weight`` and ``out_proj.weight`` is read directly (``out_proj.forward`` never runs,
so a hook or adapter on it is a silent no-op). :func:`unpack_attention` swaps every such module for
an :class:`UnpackedAttention` with four ordinary ``nn.Linear`` layers named ``q_proj``, ``k_proj``,
``v_proj`` and ``out_proj`` (the weights are row blocks of the packed ones, copied bit for bit) and
the same call signature, so every peft tuner can target them like any Hugging Face model.
:func:`pack_attention` is the way back: after ``merge_and_unload`` the model packs into the plain
open_clip layout and its ``state_dict`` loads into ``open_clip.create_model``.

Equality: the unpacked forward runs the same projections and ``scaled_dot_product_attention``;
logits agree with the packed model to float32 rounding (tests check <= 1e-5 on both towers).
Only ``nn.MultiheadAttention`` without ``add_bias_kv``/``add_zero_attn`` is converted (that is every
attention of open_clip's CLIP/CoCa/SigLIP-text towers in 3.3); timm towers already use Linear layers.
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)


class UnpackedAttention(nn.Module):
    """Multi-head attention with separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` Linears.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights or None)``, shapes as
    ``nn.MultiheadAttention`` with the same ``batch_first``. Dropout on attention weights as there.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, kdim: int | None = None, vdim: int | None = None,
                 bias: bool = True, batch_first: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim, self.vdim = kdim or embed_dim, vdim or embed_dim
        self.batch_first, self.dropout = batch_first, dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_packed(cls, mha: nn.MultiheadAttention) -> "UnpackedAttention":
        """An equivalent module holding copies of ``mha``'s weights (same device and dtype)."""
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("cannot unpack nn.MultiheadAttention with add_bias_kv or add_zero_attn")
        d = mha.embed_dim
        bias = mha.in_proj_bias is not None
        new = cls(d, mha.num_heads, kdim=mha.kdim, vdim=mha.vdim, bias=bias, batch_first=mha.batch_first,
                  dropout=mha.dropout)
        ref = mha.out_proj.weight
        new.to(device=ref.device, dtype=ref.dtype)
        if mha._qkv_same_embed_dim:
            weights = mha.in_proj_weight.detach().split(d)
        else:
            weights = (mha.q_proj_weight.detach(), mha.k_proj_weight.detach(), mha.v_proj_weight.detach())
        biases = mha.in_proj_bias.detach().split(d) if bias else (None, None, None)
        with torch.no_grad():
            for linear, w, b in zip((new.q_proj, new.k_proj, new.v_proj), weights, biases, strict=True):
                linear.weight.copy_(w)
                if b is not None:
                    linear.bias.copy_(b)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if bias:
                new.out_proj.bias.copy_(mha.out_proj.bias)
        new.train(mha.training)
        return new

    def to_packed(self) -> nn.MultiheadAttention:
        """The inverse of :meth:`from_packed`: a plain ``nn.MultiheadAttention`` with these weights.

        Raises ValueError while a q/k/v/out layer is still wrapped (by a peft tuner, say): merge
        and unload the adapter first.
        """
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            if type(getattr(self, name)) is not nn.Linear:
                raise ValueError(f"{name} is a {type(getattr(self, name)).__name__}, not nn.Linear: "
                                 "merge the adapter (peft merge_and_unload) before packing")
        bias = self.q_proj.bias is not None
        ref = self.out_proj.weight
        mha = nn.MultiheadAttention(self.embed_dim, self.num_heads, dropout=self.dropout, bias=bias,
                                    kdim=self.kdim, vdim=self.vdim, batch_first=self.batch_first,
                                    device=ref.device, dtype=ref.dtype)
        with torch.no_grad():
            if mha._qkv_same_embed_dim:
                mha.in_proj_weight.copy_(torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight]))
            else:
                mha.q_proj_weight.copy_(self.q_proj.weight)
                mha.k_proj_weight.copy_(self.k_proj.weight)
                mha.v_proj_weight.copy_(self.v_proj.weight)
            if bias:
                mha.in_proj_bias.copy_(torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]))
                mha.out_proj.bias.copy_(self.out_proj.bias)
            mha.out_proj.weight.copy_(self.out_proj.weight)
        mha.train(self.training)
        return mha

    def _float_mask(self, attn_mask, key_padding_mask, batch: int, tgt: int, src: int,
                    dtype: torch.dtype) -> torch.Tensor | None:
        """One additive float mask of shape broadcastable to (B, H, L, S), or None."""
        def additive(mask: torch.Tensor) -> torch.Tensor:
            if mask.dtype == torch.bool:
                return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, float("-inf"))
            return mask.to(dtype)

        mask = None
        if attn_mask is not None:
            mask = additive(attn_mask)
            if mask.dim() == 3:  # (B*H, L, S) as nn.MultiheadAttention takes it
                mask = mask.view(batch, self.num_heads, tgt, src)
        if key_padding_mask is not None:
            pad = additive(key_padding_mask).view(batch, 1, 1, src)
            mask = pad if mask is None else mask + pad
        return mask

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        batch, tgt, _ = query.shape
        src = key.shape[1]
        heads, head_dim = self.num_heads, self.embed_dim // self.num_heads
        q = self.q_proj(query).view(batch, tgt, heads, head_dim).transpose(1, 2)
        k = self.k_proj(key).view(batch, src, heads, head_dim).transpose(1, 2)
        v = self.v_proj(value).view(batch, src, heads, head_dim).transpose(1, 2)
        mask = self._float_mask(attn_mask, key_padding_mask, batch, tgt, src, q.dtype)
        if is_causal and mask is None:
            mask = torch.full((tgt, src), float("-inf"), dtype=q.dtype, device=q.device).triu(1)
        dropout = self.dropout if self.training else 0.0
        weights = None
        if need_weights:  # explicit softmax so the weights can be returned (open_clip never asks)
            scores = (q * head_dim ** -0.5) @ k.transpose(-2, -1)
            weights = torch.softmax(scores if mask is None else scores + mask, dim=-1)
            out = F.dropout(weights, dropout, self.training) @ v
            weights = weights.mean(1) if average_attn_weights else weights
            if unbatched:
                weights = weights.squeeze(0)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        out = self.out_proj(out.transpose(1, 2).reshape(batch, tgt, self.embed_dim))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights


def _swap(model: nn.Module, kind: type, convert) -> int:
    targets = [(name, module) for name, module in model.named_modules() if type(module) is kind]
    for name, module in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, convert(module))
    return len(targets)


def unpack_attention(model: nn.Module) -> int:
    """Replace, in place, every ``nn.MultiheadAttention`` of ``model`` by an equivalent
    :class:`UnpackedAttention`; returns how many were replaced. Frozen/trainable flags are copied."""
    def convert(mha: nn.MultiheadAttention) -> UnpackedAttention:
        new = UnpackedAttention.from_packed(mha)
        trainable = any(p.requires_grad for p in mha.parameters())
        for p in new.parameters():
            p.requires_grad_(trainable)
        return new

    count = _swap(model, nn.MultiheadAttention, convert)
    log.debug("unpacked %d attention modules of %s", count, type(model).__name__)
    return count


def pack_attention(model: nn.Module) -> int:
    """Inverse of :func:`unpack_attention`, in place; returns how many modules were packed back.
    ValueError if an adapter still wraps a projection (merge it first)."""
    return _swap(model, UnpackedAttention, UnpackedAttention.to_packed)
