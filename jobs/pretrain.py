"""Pretrain the offline models on the generated world (v1: worldclip-tiny; v2: four models).

    python -m jobs.pretrain [--model worldclip-tiny] [--steps 2000] [--batch 256] [--lr 1e-3] [--seed 0]
    python -m jobs.pretrain --model worldclip-v2-a      # world v2: see RECIPES for B, C, D

Fresh pairs every step (deterministic in seed and step), so nothing is seen twice.
Checkpoints every ``--ckpt-every`` steps to ``--work`` and resumes from there when
restarted with the same settings, so a crash loses at most that many steps; a checkpoint of
other settings (--steps included: the learning-rate schedule depends on it) is not resumed but
moved to ckpt.superseded.pt, with a warning naming the settings that differ; an unreadable one
(cut by a full disk, not a checkpoint of this job) is moved to ckpt.unreadable.pt likewise. At the end it
writes the fp16 weights to core/assets and a JSON training log (settings, command, provenance) beside
them, each atomically. A run that fails (diverges, runs out of disk...) leaves its record in --work as
failed-<UTC time>.train.json instead, so the log beside shipped weights always describes them.
"""
from __future__ import annotations

import argparse
import datetime
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.data import world2
from core.data.world import pretraining_batch
from core.imaging import uint8_batch_to_tensor
from core.experiment import cpu_model, cpu_signature, git_revision, numerics_environment, package_versions
from core import models as model_zoo
from core.models import load_model, spec_for
from core.store import write_file_atomic
from jobs.cli import (check_writable_folder, job_parser, log_progress, quiet_libraries, sigterm_as_interrupt,
                      user_facing, work_begins)

log = logging.getLogger("jobs.pretrain")
#: model key -> (world, pretraining mix, loss). World v2's four models differ in exactly one of these
#: from A: B the loss, C the mix (uniform control), D the permutation seed of the long tail.
RECIPES: dict[str, tuple[str, str | None, str]] = {
    "worldclip-tiny": ("v1", None, "clip"),
    "worldclip-v2-a": ("v2", "long-tail-p0", "clip"),
    "worldsiglip-v2-b": ("v2", "long-tail-p0", "siglip"),
    "worldclip-v2-c": ("v2", "uniform", "clip"),
    "worldclip-v2-d": ("v2", "long-tail-p1", "clip"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = job_parser("python -m jobs.pretrain", description=__doc__.split("\n")[0])
    p.add_argument("--model", default="worldclip-tiny", choices=sorted(RECIPES),
                   help="which shipped model to pretrain (its world, mix and loss come from RECIPES)")
    p.add_argument("--steps", type=int, default=2000, help="optimizer steps (the shipped weights: 2000)")
    p.add_argument("--batch", type=int, default=256, help="image-caption pairs per step")
    p.add_argument("--lr", type=float, default=1e-3, help="AdamW peak learning rate, in (0, 1]")
    p.add_argument("--warmup", type=int, default=100, help="linear warm-up steps before the cosine decay")
    p.add_argument("--weight-decay", type=float, default=0.1, help="AdamW weight decay")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the data")
    p.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1),
                   help="torch threads (default: every CPU core)")
    p.add_argument("--ckpt-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--work", type=Path, default=None,
                   help="checkpoint folder (default: the repository's .cache/pretrain for v1, "
                        "jobs/checkpoints/MODEL for v2)")
    p.add_argument("--out", type=Path, default=None, help="weights file (default: the model's file in core/assets)")
    args = p.parse_args(argv)
    if args.work is None:
        args.work = default_work(args.model)
    if args.out is None:
        # read now, not copied at import: where core.models looks for the weights when this runs
        args.out = model_zoo.ASSET_DIR / spec_for(args.model).shipped_weights
    for name in ("steps", "batch", "warmup", "ckpt_every", "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if args.seed < 0:  # was refused by the world's batch maker once training had begun, a failed record left behind
        p.error(f"--seed must be a whole number of at least 0, got {args.seed}")
    if not (math.isfinite(args.lr) and 0 < args.lr <= 1):  # AdamW above 1 only diverges (1e38 overflowed)
        p.error(f"--lr must be a number in (0, 1], got {args.lr}")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        p.error(f"--weight-decay must be a finite number >= 0, got {args.weight_decay}")
    return args


class Diverged(ValueError):
    """The loss became NaN or infinite: a user-facing error (lower --lr), not a crash."""


def check_paths(args: argparse.Namespace) -> None:
    """Refuse an --out or --work that could only fail after training (which takes up to 45 minutes)."""
    out = args.out
    if out.is_dir():
        example = out / Path(spec_for(args.model).shipped_weights).name
        raise ValueError(f"--out: {out} is a folder; give the weights file, e.g. {example}")
    if out.suffix != ".safetensors":
        raise ValueError(f"--out: {out} must end in .safetensors (its training log goes beside it as .train.json)")
    if out.with_suffix(".train.json").is_dir():
        raise ValueError(f"--out: the training log {out.with_suffix('.train.json')} would overwrite a folder")
    check_writable_folder(out.parent, "--out", "the weights and their training log")
    check_writable_folder(args.work, "--work", "checkpoints")


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, caption_ids: torch.Tensor):
    """Symmetric InfoNCE where identical captions in a batch count as positives of each other."""
    logits = scale * img @ txt.T
    same = (caption_ids[:, None] == caption_ids[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def sigmoid_loss(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
                 caption_ids: torch.Tensor) -> torch.Tensor:
    """SigLIP's pairwise sigmoid loss, with identical captions positives of each other (as in
    contrastive_loss; open_clip's SigLipLoss counts only the diagonal, which would make frequent
    short captions negatives of themselves)."""
    logits = scale * img @ txt.T + bias
    sign = 2.0 * (caption_ids[:, None] == caption_ids[None, :]).float() - 1.0
    return -F.logsigmoid(sign * logits).sum() / len(img)


def batch_for(args: argparse.Namespace, step: int) -> tuple[np.ndarray, list[str]]:
    world, mix, _ = RECIPES[args.model]
    if world == "v1":
        return pretraining_batch(args.seed, step, args.batch)
    images, captions, _ = world2.pretraining_batch(world2.mix_by_name(mix), args.seed, step, args.batch)
    return images, captions


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def set_aside(ckpt: Path, saved: dict, settings: dict) -> Path:
    """Move a checkpoint of other settings out of the way (never overwrite it) and say why it is not resumed.

    Resuming it would not give the run asked for: every setting shapes the steps already taken, --steps too
    (the cosine learning-rate schedule decays over --steps), so a different one means training from step 0."""
    old = saved.get("settings", {})
    differ = [f"{k} {old.get(k, '(unset)')} -> {settings.get(k, '(unset)')}"
              for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
    kind = "superseded" if "settings" in saved else "unreadable"
    aside = ckpt.with_name(f"ckpt.{kind}.pt")
    n = 1
    while aside.exists():
        n += 1
        aside = ckpt.with_name(f"ckpt.{kind}-{n}.pt")
    os.replace(ckpt, aside)
    if "settings" not in saved:  # unreadable: nothing to compare
        log.warning("the checkpoint in %s cannot be resumed (%s); starting from step 0. It is kept as %s. %s",
                    ckpt.parent, saved["why"], aside, set_aside_note(ckpt.parent))
        return aside
    note = " (the learning-rate schedule depends on --steps)" if any(d.startswith("steps ") for d in differ) else ""
    log.warning("not resuming the checkpoint in %s (step %d): its settings differ: %s%s; starting from step 0. "
                "It is kept as %s: move it back to %s and rerun with its settings to resume it. %s",
                ckpt.parent, saved["state"]["step"], ", ".join(differ), note, aside, ckpt,
                set_aside_note(ckpt.parent))
    return aside


#: The checkpoints :func:`set_aside` keeps; nothing removes them (a worldclip-tiny one holds about 93 MB).
SET_ASIDE_GLOBS = ("ckpt.superseded*.pt", "ckpt.unreadable*.pt")


def set_aside_note(work: Path) -> str:
    """How many set-aside checkpoints ``work`` holds, their size, and how to remove them: each run of other
    settings keeps one more, so a sweep of settings fills the disk unless someone deletes them."""
    found = {pattern: sorted(work.glob(pattern)) for pattern in SET_ASIDE_GLOBS}
    kept = sorted({p for paths in found.values() for p in paths})
    size = sum(p.stat().st_size for p in kept if p.is_file())
    # only patterns that match: zsh (macOS's shell) runs no command with a pattern that matches nothing
    patterns = " ".join(f"{shlex.quote(str(work))}/{pattern}" for pattern, paths in found.items() if paths)
    return (f"{work} now holds {len(kept)} checkpoint(s) set aside ({size / 1e6:.0f} MB); delete those you will not "
            f"resume (rm {patterns})")


def load_checkpoint(ckpt: Path) -> dict:
    """The saved checkpoint, or ``{"why": reason}`` when it cannot be one of this job's (cut, foreign).

    Read with ``weights_only=True``: this job saves only tensors, numbers, text, lists and dicts, and a pickle of
    anything else (a checkpoint handed on, or planted in --work) could run code as it loads; it is refused
    (UnpicklingError) and set aside as unreadable."""
    try:
        saved = torch.load(ckpt, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... on a damaged file
        return {"why": f"unreadable: {type(exc).__name__}"}
    if not (isinstance(saved, dict) and {"settings", "model", "opt", "state"} <= set(saved)):
        return {"why": "not a checkpoint of jobs.pretrain"}
    return saved


def settings_of(args: argparse.Namespace) -> dict:
    """What a checkpoint must match to be resumed, and what the run's record says it trained with (seed included)."""
    world, mix, loss_kind = RECIPES[args.model]
    settings = {k: v for k, v in vars(args).items() if k in ("steps", "batch", "lr", "warmup", "weight_decay", "seed")}
    if world != "v1":  # v1's settings keep their old form, so its checkpoints and log stay comparable
        settings.update(model=args.model, world=world, mix=mix, loss=loss_kind)
    return settings


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


REPO = Path(__file__).resolve().parent.parent


def default_work(model: str) -> Path:
    """The checkpoint folder of ``model`` without ``--work``: the repository's ``.cache/pretrain`` (world v1) or
    ``jobs/checkpoints/MODEL`` (world v2), whatever the working folder; it was relative to the working folder
    while the weights go to the repository's ``core/assets``, so a run resumed from another folder began again."""
    return REPO / ".cache" / "pretrain" if RECIPES[model][0] == "v1" else REPO / "jobs" / "checkpoints" / model


@user_facing
def main(argv: list[str] | None = None) -> int:
    log_progress("%(asctime)s %(name)s %(message)s")
    quiet_libraries()
    args = parse_args(argv)
    check_paths(args)
    work_begins()
    world, mix, loss_kind = RECIPES[args.model]
    record = {"status": "failed", "error": "", "model": args.model, "world": world, "mix": mix, "loss": loss_kind,
              "command": "python -m jobs.pretrain " + shlex.join(sys.argv[1:] if argv is None else argv),
              "threads": args.threads, "started_at": _utc_now(), "git_revision": git_revision(),
              "resumed_from_step": 0,
              "versions": package_versions(), "device": "cpu", "host": platform.node(),
              "host_cpu": platform.processor() or platform.machine(), "cpu": cpu_model(),
              "cpu_signature": cpu_signature(), "numerics_env": numerics_environment(),
              "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # as in grid records: kernels round
              "settings": settings_of(args)}
    record["sessions_started_at"] = [record["started_at"]]
    try:
        with sigterm_as_interrupt():  # a cluster's time limit: the failed record and the resume hint, as Ctrl-C
            train(args, record)
    except BaseException as exc:  # every run leaves one record; a failed one beside its checkpoints
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", ended_at=_utc_now())
        # named by this session's start: a resumed run's started_at is its first session's, shared by each failure
        failed = args.work / f"failed-{record['sessions_started_at'][-1].replace(':', '')}.train.json"
        try:
            write_file_atomic(failed, json.dumps(record, indent=1))
            log.info("the failed run's record is %s", failed)
        except OSError as write_exc:
            log.warning("could not write the failed run's record %s (%s)", failed, write_exc)
        if isinstance(exc, KeyboardInterrupt):
            log.warning(resume_hint(args, record["settings"]))
        raise
    return 0


def resume_hint(args: argparse.Namespace, settings: dict) -> str:
    """What an interrupted run has kept and how to go on: the step of its checkpoint in ``--work``, if one of
    these ``settings`` is there, and the command to rerun."""
    ckpt = args.work / "ckpt.pt"
    saved = load_checkpoint(ckpt) if ckpt.exists() else {}
    if saved.get("settings") == settings:
        return (f"stopped; the checkpoint {ckpt} holds step {saved['state']['step']} of {args.steps}: rerun the same "
                "command to resume from there")
    return (f"stopped before the first checkpoint of these settings (one every {args.ckpt_every} steps, in "
            f"{args.work}): rerun the same command to start again")


def train(args: argparse.Namespace, record: dict) -> None:
    """Pretrain (resuming from --work), then write the weights and, beside them, ``record`` completed."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    world, _, loss_kind = RECIPES[args.model]
    loaded = load_model("worldclip-tiny-random" if world == "v1" else spec_for(spec_for(args.model).arch))
    model = loaded.model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98))
    settings = record["settings"]
    ckpt = args.work / "ckpt.pt"
    state = {"step": 0, "losses": [], "elapsed": 0.0, "window": []}
    if ckpt.exists():
        saved = load_checkpoint(ckpt)
        if saved.get("settings") == settings:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["opt"])
            state = saved["state"]
            log.info("resuming from step %d", state["step"])
            # started_at: the first session's (wall_time_s sums every session's training); a checkpoint written
            # before sessions were kept names none, and this session's start stands for them
            earlier = list(state.get("sessions_started_at", []))
            record.update(started_at=(earlier or record["sessions_started_at"])[0], resumed_from_step=state["step"],
                          sessions_started_at=[*earlier, record["sessions_started_at"][-1]])
        else:
            set_aside(ckpt, saved, settings)
    args.work.mkdir(parents=True, exist_ok=True)
    # the losses since the last logged point travel in the checkpoint: a resumed curve equals an unbroken one
    window: list[float] = list(state.get("window", []))
    # elapsed: the training time of every session so far (a resumed run adds its own, not the time it was
    # stopped), kept in the checkpoint; measured on the monotonic clock, which no NTP step or clock change moves
    t0 = time.monotonic() - state["elapsed"]
    for step in range(state["step"], args.steps):
        images, captions = batch_for(args, step)
        _, ids = np.unique(np.array(captions), return_inverse=True)
        x = uint8_batch_to_tensor(images, size=loaded.image_size, mean=loaded.mean, std=loaded.std)
        tokens = loaded.tokenizer(captions)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args)
        out = model(x, tokens)
        img, txt, logit_scale = out[:3]
        if loss_kind == "siglip":
            loss = sigmoid_loss(img, txt, logit_scale.exp().clamp(max=100), out[3], torch.from_numpy(ids))
        else:
            loss = contrastive_loss(img, txt, logit_scale.exp().clamp(max=100), torch.from_numpy(ids))
        if not torch.isfinite(loss):
            kept = f"; the last checkpoint (step {state['step']}) is kept in {ckpt}" if ckpt.exists() else ""
            raise Diverged(f"pretraining diverged at step {step} (loss {loss.item()}); lower --lr "
                           f"(now {args.lr:g}) or raise --warmup{kept}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        window.append(loss.item())
        if (step + 1) % 25 == 0:
            state["losses"].append([step + 1, float(np.mean(window))])
            window = []
            elapsed = time.monotonic() - t0
            eta = elapsed / (step + 1 - 0) * (args.steps - step - 1) if step else 0
            log.info("step %d/%d loss %.3f lr %.2e elapsed %.0fs eta %.0fs", step + 1, args.steps,
                     state["losses"][-1][1], lr_at(step, args), elapsed, eta)
        if (step + 1) % args.ckpt_every == 0 or step + 1 == args.steps:
            state.update(step=step + 1, elapsed=time.monotonic() - t0, window=list(window),
                         sessions_started_at=record["sessions_started_at"])
            tmp = ckpt.with_suffix(".tmp")
            try:
                torch.save({"settings": settings, "model": model.state_dict(), "opt": opt.state_dict(),
                            "state": state}, tmp)
                os.replace(tmp, ckpt)
            except BaseException:  # a Ctrl-C or a full disk mid-save: the cut file goes, the last checkpoint stays
                tmp.unlink(missing_ok=True)
                raise
    curve = list(state["losses"])
    if window:  # the steps after the last multiple of 25 are a point of their own
        curve.append([args.steps, float(np.mean(window))])
    from safetensors.torch import save

    weights = save({k: v.detach().half().contiguous() for k, v in model.state_dict().items()})
    log_path = args.out.with_suffix(".train.json")
    record.update(status="ok", steps=args.steps, wall_time_s=round(time.monotonic() - t0, 1), loss_curve=curve,
                  torch=torch.__version__, ended_at=_utc_now())
    # weights first, then the log that describes them; each whole or not at all
    for target, data in ((args.out, weights), (log_path, json.dumps(record, indent=1))):
        try:
            write_file_atomic(target, data)
        except BaseException as exc:  # a full disk, Ctrl-C: the training is in the checkpoint, say how to save it
            if target == log_path:  # the new weights are in place: an older log beside them would describe others
                log_path.unlink(missing_ok=True)
            if not isinstance(exc, OSError):
                raise
            raise OSError(f"could not write {target} ({exc.strerror or exc}); the trained model is kept in "
                          f"{ckpt}: rerun the same command (any --out) to write the weights and their "
                          "training log without training again") from exc
    log.info("saved %s (%.1f MB) and its training log %s in %.0fs", args.out, args.out.stat().st_size / 1e6, log_path,
             record["wall_time_s"])


if __name__ == "__main__":
    raise SystemExit(main())
