"""Model cards of the world-v2 models, written beside their weights from the pretraining log and the
manipulation check's per-task rows (``python -m jobs.world_check --cards``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import cast

import pandas as pd

from core import models as model_zoo
from core.cards import model_card_path
from core.data import world2
from core.data.world2.subworlds import caption_rates
from core.models import spec_for
from core.model_specs import ModelSpec

LOSSES = {"clip": "multi-positive InfoNCE (identical captions in a batch are positives of each other)",
          "siglip": "SigLIP's pairwise sigmoid loss, identical captions positives of each other; learnt bias"}


def _shipped_spec(model_key: str) -> ModelSpec:
    """The spec of a model with shipped weights (the world-v2 ones); ValueError for any other, which has no card."""
    spec = spec_for(model_key)
    if not spec.shipped_weights:
        raise ValueError(f"model {model_key!r} has no shipped weights, so no model card: "
                         "cards are written for the world-v2 models (jobs.pretrain RECIPES)")
    return spec


def card_path(model_key: str) -> Path:
    """Where the card of ``model_key`` is written; ValueError for a model without shipped weights."""
    path = model_card_path(_shipped_spec(model_key))
    return cast(Path, path)  # model_card_path is None only for a model without shipped weights, refused above


def check_paragraph(passed: bool | None) -> str:
    """What the card says of its world's pre-registered manipulation check (``jobs.world_check``'s verdict; None:
    not decided, said as nothing): a reader of a card must not take the model's runs for a test the world failed."""
    if passed is None:
        return ""
    said = ("PASSED: world v2 can test whether IIMM follows distance from pretraining" if passed else
            "FAILED: world v2 cannot test the claim, so this model's fine-tuning runs describe this world; they do "
            "not test whether IIMM predicts gain or forgetting")
    return (f"\n**Its world's manipulation check** (pre-registered; `jobs/results/world-v2/manipulation-check.md`): "
            f"{said}.\n")


def card_text(model_key: str, rows: pd.DataFrame, *, passed: bool | None = None) -> str:
    """The card of one world-v2 model: what it is, its world's manipulation check (``passed``: its verdict, None
    when not decided), its recipe and mix, its loss curve, its zero-shot results."""
    from jobs.pretrain import RECIPES
    from jobs.world_check import table

    spec = _shipped_spec(model_key)
    log_path = (model_zoo.ASSET_DIR / str(spec.shipped_weights)).with_suffix(".train.json")  # where pretrain wrote it
    train = json.loads(log_path.read_text()) if log_path.exists() else {}
    _, mix_name, loss = RECIPES[model_key]
    mix = world2.mix_by_name(mix_name)
    curve = train.get("loss_curve", [])
    picks = " → ".join(f"{s}: {loss:.2f}" for s, loss in curve if s % 200 == 0 or [s, loss] == curve[-1])
    rates = caption_rates()
    mix_rows = pd.DataFrame([{"sub-world": s, "share %": round(100 * mix.shares[s], 2),
                              "caption rates": ", ".join(f"{a} {rates[(s, a)]}" for a in world2.SUBWORLDS[i].attributes)}
                             for i, s in enumerate(w.name for w in world2.SUBWORLDS)]).sort_values("share %", ascending=False)
    per_task = rows[["task", "subworld", "classes", "coverage", "zs_acc", "iimm", "inter_modal", "intra_image"]]
    return f"""# Model card: {spec.key} (`{spec.arch}`, pretrained tag `{spec.pretrained_tag}`)

**What it is.** {spec.description}. A tiny open_clip dual encoder (ViT 4x128 on 32 px in 8 px patches,
3-layer text tower, open_clip's default tokenizer, 128-d embeddings, about 7.8 M parameters) pretrained
from scratch on the generated world v2 of this repository. **A toy model of a generated world**, not a
substitute for real CLIP models: it exists to test, offline, whether IIMM follows distance from pretraining.
{check_paragraph(passed)}
**Recipe** (`jobs/pretrain.py` RECIPES): loss: {LOSSES[loss]}; mix `{mix.name}`;
settings {json.dumps(train.get('settings', {}))}; wall time {train.get('wall_time_s', '?')} s on
{train.get('threads', '?')} CPU thread(s) (cores shared with other work), torch {train.get('torch', '?')}.

**Loss curve** (mean of each 25 steps): {picks or 'no training log found'}

**Pretraining mix and caption rates**

{table(mix_rows)}

**Zero-shot on the 40 fine-tuning tasks** (accuracy on test, IIMM and terms on train; coverage = share of
the task's sub-world):

{table(per_task)}

**Reproduce.** `python -m jobs.pretrain --model {spec.key}`, then `python -m jobs.world_check --cards`.
"""


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.world2_card", "python -m jobs.world_check --cards")
