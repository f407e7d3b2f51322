"""Report the generated task suite under a model: chance, zero-shot accuracy, IIMM and its terms.

    python -m jobs.world_report [--model worldclip-tiny] [--card]

Prints a Markdown table. With ``--card`` it also writes the model card of worldclip-tiny
(core/assets/MODEL_CARD.md) and its per-task JSON beside the weights, combining the
table with the pretraining log (settings, loss curve, wall time). ``--card`` is refused for any
other model: those files describe worldclip-tiny only (world-v2 models' cards are written by
``python -m jobs.world_check --cards``).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path


from core import metrics
from core import models as model_zoo
from core.data.registry import load_split
from core.data.world import OOD_PANEL, TASKS
from core.embed import embed_dataset
from core.models import DEFAULT_MODEL, load_model, spec_for
from core.store import write_files_together
from jobs.cli import job_parser, quiet_libraries, user_facing, work_begins

log = logging.getLogger("jobs.world_report")
CARD_MODEL = "worldclip-tiny"  # the only model MODEL_CARD.md and worldclip-tiny_world-v1.tasks.json describe


def check_card_model(model_name: str) -> None:
    """Refuse to write worldclip-tiny's card and task JSON with another model's numbers."""
    if spec_for(model_name).key != CARD_MODEL:
        raise ValueError(f"--card writes the card of {CARD_MODEL} (core/assets/MODEL_CARD.md and "
                         f"{CARD_MODEL}_world-v1.tasks.json), not of {model_name!r}; world-v2 models' cards "
                         "are written by `python -m jobs.world_check --cards`. Leave out --card to see the table")


def task_rows(model_name: str) -> list[dict]:
    """One row per world task: zero-shot accuracy on test, IIMM and terms on train."""
    loaded = load_model(model_name)
    rows = []
    for task in TASKS:
        train = embed_dataset(loaded, load_split(task.name, "train"))
        test = embed_dataset(loaded, load_split(task.name, "test"))
        rows.append({
            "task": task.name, "family": task.family, "classes": len(task.class_names),
            "chance": round(100.0 / len(task.class_names), 1),
            "zs_acc": round(metrics.zero_shot_accuracy(test.image, test.text, test.labels), 1),
            "iimm": round(metrics.iimm(train.image, train.text, train.labels), 3),
            "inter_modal": round(metrics.inter_modal_score(train.image, train.text, train.labels), 3),
            "intra_image": round(metrics.intra_image_score(train.image), 3),
            "ood_panel": task.name in OOD_PANEL, "template": task.template, "model": loaded.label,
        })
    return rows


def model_line(model_name: str) -> str:
    """The line that names the model above the printed table, with where its weights come from: the
    numbers of a random-weight model or of a toy pretrained offline must say so wherever they are shown."""
    spec = spec_for(model_name)
    return f"Model: {spec.key}, {spec.label}; weights: {spec.weights_source}.\n"


def markdown(rows: list[dict]) -> str:
    head = "| task | family | classes | chance % | zero-shot % | IIMM | inter-modal | intra-image | role |\n"
    head += "|---|---|---|---|---|---|---|---|---|\n"
    body = "".join(
        f"| {r['task']} | {r['family']} | {r['classes']} | {r['chance']} | {r['zs_acc']} | {r['iimm']} | "
        f"{r['inter_modal']} | {r['intra_image']} | {'OOD panel' if r['ood_panel'] else 'fine-tune'} |\n"
        for r in rows)
    ft = [r for r in rows if not r["ood_panel"]]
    spread = lambda k: max(r[k] for r in ft) - min(r[k] for r in ft)  # noqa: E731
    in_range = sum(15 <= r["zs_acc"] <= 85 for r in ft)
    summary = (f"\nFine-tuning tasks: {len(ft)}; IIMM spread {spread('iimm'):.3f}; intra-image spread "
               f"{spread('intra_image'):.3f}; zero-shot accuracy within 15-85 %: {in_range} tasks; "
               f"max zero-shot {max(r['zs_acc'] for r in ft)} %.\n")
    return head + body + summary


def write_card(rows: list[dict], model_name: str) -> Path:
    check_card_model(model_name)
    assets = model_zoo.ASSET_DIR  # read here, as jobs.pretrain (its --out default) and core.embed read it
    log_path = assets / "worldclip-tiny_world-v1.train.json"
    train = json.loads(log_path.read_text()) if log_path.exists() else {}
    curve = train.get("loss_curve", [])
    picks = [c for c in curve if c[0] % 200 == 0 or c is curve[-1]]
    curve_md = " → ".join(f"{s}: {loss:.2f}" for s, loss in picks)
    card = f"""# Model card: worldclip-tiny (pretrained tag `world-v1`)

**What it is.** A tiny CLIP-style dual encoder (open_clip architecture `worldclip-tiny`: ViT with 4 blocks of
width 128 on 32x32 images in 8x8 patches; a 3-layer text transformer of width 128 with open_clip's default
tokenizer, context 32; 128-d joint embedding; about 7.8 M parameters, 6.3 M of them the
token-embedding table). Weights ship as fp16 safetensors.

**What it is not.** A substitute for real CLIP models: it knows only the generated world of this repository
(object scenes, textures, letters, printed and handwritten digits, satellite-like land cover, charts). It exists
so the whole method — zero-shot measures, fine-tuning grid, forecasts — runs and can be checked offline.
Every number it produces is labelled `worldclip-tiny (world-v1)`.

**Data.** Fresh captioned pairs every step from `core.data.world.pretraining_batch(seed, step)`: seven sub-worlds
mixed by fixed shares, captions in varied phrasings with attribute-specific mention rates, covering every word of
every task prompt (a test checks this). Handwritten digits come from scikit-learn's `load_digits`, even-indexed
images only (the tasks use the odd-indexed ones).

**Training.** {json.dumps(train.get('settings', {}))}; AdamW (betas 0.9/0.98), warm-up then cosine decay,
multi-positive InfoNCE (identical captions in a batch are positives of each other), gradient clipping 1.0,
{train.get('threads', '?')} CPU thread(s) at the end, wall time {train.get('wall_time_s', '?')} s, torch {train.get('torch', '?')}.
The wall time of the shipped weights was measured on 2 CPU cores shared with other jobs throughout (and one
restart from the step-200 checkpoint). Re-run on 2 quiet cores (2026-12-01, `python -m jobs.pretrain`, 2 threads):
902 s (15.0 min), the same loss curve to 3 decimals (2.533 at step 200, 1.213 at 2000), weights within 0.018 of these.

**Loss curve** (mean of each 25 steps): {curve_md}

**Reproduce.** `python -m jobs.pretrain --steps {train.get('steps', '?')}` then `python -m jobs.world_report --card`.

## Zero-shot results on the task suite (model: {rows[0]['model']})

{markdown(rows)}
"""
    path = assets / "MODEL_CARD.md"
    # one set, whole or not at all: a full disk keeps the old card and its rows, never one beside the other
    write_files_together({path: card, assets / "worldclip-tiny_world-v1.tasks.json": json.dumps(rows, indent=1)})
    return path


@user_facing
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_libraries()
    p = job_parser("python -m jobs.world_report", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model registry key (default {DEFAULT_MODEL})")
    p.add_argument("--card", "--cards", dest="card", action="store_true",
                   help=f"also write {CARD_MODEL}'s card (core/assets/MODEL_CARD.md) and task JSON; "
                        f"only with --model {CARD_MODEL} (--cards as in jobs.world_check)")
    args = p.parse_args(argv)
    if args.card:
        check_card_model(args.model)  # before any embedding
    work_begins()
    rows = task_rows(args.model)
    print(model_line(args.model))
    print(markdown(rows))
    if args.card:
        print(f"wrote {write_card(rows, args.model)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
