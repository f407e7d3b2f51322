"""World v2's manipulation check: does pretraining coverage move zero-shot accuracy and intra-image?

    python -m jobs.world_check [--cards]                  # the pre-registered check
    python -m jobs.world_check --max-items 64 --out /tmp/quick [--models ...] [--boot 200]   # a quick look

Run after pretraining and before any fine-tuning (jobs/results/world-v2/PREREGISTRATION.md, step 1).
Per model and task: zero-shot test accuracy, IIMM and its terms on the training split, and the task's
coverage (its sub-world's pretraining share under that model's mix). Per long-tailed model: Kendall
tau of coverage vs zero-shot accuracy and vs intra-image, across tasks and as the change against the
uniform control, with nested-bootstrap intervals (sub-worlds, then tasks). Writes
``manipulation-check.csv`` (rows; only its header when no model was checked, so no earlier run's rows
survive) and ``manipulation-check.md`` (tables, rule, verdict) and prints the Markdown. Models whose
weights are not there yet are listed as missing, not guessed.

Only the pre-registered check (all four models, full splits, B = 2000) writes the shipped
``jobs/results/world-v2/manipulation-check.*``, which ``jobs.world_v2_report`` reads its verdict from. A
quick look (``--max-items``), a subset of ``--models`` or another ``--boot`` must name its own ``--out``
folder (never the shipped one), and its report says it is not the pre-registered check; ``--cards`` (written
beside the weights) is refused with ``--max-items``.
"""
from __future__ import annotations

import argparse
import json
import logging
import shlex
import socket
import sys
import time
from pathlib import Path

import pandas as pd

from core import metrics, store
from core.data import world2
from core.nested_bootstrap import nested_bootstrap_tau
from core.schema import csv_text
from jobs.cli import (check_folder_not_file_name, check_writable_folder, comma_list, job_parser, log_progress,
                      quiet_libraries, user_facing, work_begins)

log = logging.getLogger("jobs.world_check")
CONTROL = "worldclip-v2-c"
LONG_TAILED = ("worldclip-v2-a", "worldsiglip-v2-b", "worldclip-v2-d")
MUST_PASS = ("worldclip-v2-a", "worldclip-v2-d")
THRESHOLD = 0.3  # pre-registered: |tau| above this counts as "coverage moves the outcome"
OUTCOMES = {"zs_acc": "zero-shot accuracy", "intra_image": "intra-image"}
ALL_MODELS = (*LONG_TAILED[:2], CONTROL, LONG_TAILED[2])
PREREGISTERED_BOOT = 2000  # PREREGISTRATION.md, step 1
BOOT_SEED = 0  # the nested bootstrap's seed (coverage_taus' default), named in the report's provenance
SHIPPED = store.SHIPPED_DIR / "world-v2"  # the shipped, pre-registered check
TASKS = world2.FINETUNE_TASKS  # every checked model gets one row per task, all 40 (quick looks too)
COLUMNS = ("model", "label", "task", "subworld", "classes", "chance", "coverage", "level", "zs_acc", "iimm",
           "inter_modal", "intra_image")  # of manipulation-check.csv, as task_rows makes them


def task_rows(model_key: str, mix: world2.CoverageMix, tasks: tuple[str, ...], *,
              max_items: int | None = None) -> pd.DataFrame:
    """One row per task under one model: coverage, chance, zero-shot accuracy (test), IIMM and terms (train)."""
    from core.data.registry import load_split
    from core.embed import embed_dataset
    from core.models import load_model

    loaded = load_model(model_key)
    rows = []
    for i, name in enumerate(tasks, 1):
        task = world2.get_task(name)
        train = embed_dataset(loaded, load_split(name, "train", max_items=max_items))
        test = embed_dataset(loaded, load_split(name, "test", max_items=max_items))
        rows.append({
            "model": model_key, "label": loaded.label, "task": name, "subworld": task.subworld,
            "classes": len(task.class_names), "chance": 100.0 / len(task.class_names),
            "coverage": mix.shares[task.subworld], "level": mix.levels[task.subworld],
            "zs_acc": metrics.zero_shot_accuracy(test.image, test.text, test.labels),
            "iimm": metrics.iimm(train.image, train.text, train.labels),
            "inter_modal": metrics.inter_modal_score(train.image, train.text, train.labels),
            "intra_image": metrics.intra_image_score(train.image),
        })
        log.info("[%d/%d] %s %s: zero-shot %.1f %%, IIMM %.3f", i, len(tasks), model_key, name, rows[-1]["zs_acc"],
                 rows[-1]["iimm"])
    return pd.DataFrame(rows)


def coverage_taus(rows: pd.DataFrame, *, control: pd.DataFrame | None, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """tau(coverage, outcome) for one model's rows, across tasks and (with ``control``) as the change vs C."""
    out = []
    for outcome, label in OUTCOMES.items():
        forms = [("across tasks", rows[outcome].to_numpy())]
        if control is not None:
            paired = rows.merge(control[["task", outcome]], on="task", suffixes=("", "_control"))
            if len(paired) != len(rows):
                raise ValueError("the control model must have a row for every task")
            forms.append(("change vs control", (paired[outcome] - paired[f"{outcome}_control"]).to_numpy()))
        for form, y in forms:
            res = nested_bootstrap_tau(rows["coverage"].to_numpy(), y, rows["subworld"].to_numpy(),
                                       n_boot=n_boot, seed=seed)
            out.append({"model": rows["model"].iloc[0], "outcome": label, "form": form, "tau": res.tau,
                        "lo": res.lo, "hi": res.hi, "undefined_replicates": res.n_undefined,
                        "moves": abs(res.tau) > THRESHOLD})
    return pd.DataFrame(out)


def verdict(taus: pd.DataFrame, *, why_unchecked: dict[str, str] | None = None) -> tuple[bool | None, list[str]]:
    """The pre-registered rule: coverage must move both outcomes (in either form) on A and on D.

    Returns (passed, reasons); passed is None when a required model has not been checked
    (``why_unchecked`` may say why, per model: "weights missing", "not in --models").
    """
    reasons: list[str] = []
    passed: bool | None = True
    for model in MUST_PASS:
        mine = taus[taus["model"] == model]
        if mine.empty:
            why = (why_unchecked or {}).get(model)
            return None, [f"{model} has not been checked yet" + (f" ({why})" if why else "")]
        with_control = "change vs control" in set(mine["form"])
        for label in OUTCOMES.values():
            moved = bool(mine[mine["outcome"] == label]["moves"].any())
            best = mine[mine["outcome"] == label]["tau"].abs().max()
            if moved:
                reasons.append(f"{model}: coverage moves {label} (max |tau| {best:.2f})")
            elif not with_control:  # form (ii) could still pass once the control is checked
                passed = None if passed else passed
                reasons.append(f"{model}: coverage does not move {label} across tasks (max |tau| {best:.2f}); "
                               "the change vs the control is still to be measured")
            else:
                passed = False
                reasons.append(f"{model}: coverage does NOT move {label} (max |tau| {best:.2f})")
    return passed, reasons


def table(frame: pd.DataFrame) -> str:
    """A DataFrame as a GitHub Markdown table (floats to 3 decimals)."""
    cells = frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)])


def checked_verdict(taus: pd.DataFrame, missing: list[str], left_out: tuple[str, ...] = ()) -> tuple[bool | None, list[str]]:
    """:func:`verdict` of a run that checked the models with ``taus``; ``missing`` (weights not there) and
    ``left_out`` (not in --models) are the reasons a required model went unchecked."""
    why = {**{m: "not in --models" for m in left_out}, **{m: "weights missing" for m in missing}}
    return verdict(taus, why_unchecked=why) if not taus.empty else (None, ["no long-tailed model checked"])


def markdown(rows: pd.DataFrame, taus: pd.DataFrame, missing: list[str], n_boot: int, *,
             left_out: tuple[str, ...] = (), departures: tuple[str, ...] = ()) -> str:
    """The check's report. missing: weights not there; left_out: not in --models; departures: how this run
    departs from the pre-registered one (none for the real check)."""
    passed, reasons = checked_verdict(taus, missing, left_out)
    head = ["# World v2 manipulation check", ""]
    if departures:
        head += [f"**Quick look, not the pre-registered check** ({', '.join(departures)}); the shipped check is "
                 "jobs/results/world-v2/manipulation-check.md.", ""]
    head += [
            "Pre-registered rule (PREREGISTRATION.md, step 1): coverage moves an outcome when |tau| > "
            f"{THRESHOLD} across tasks or as the change vs the uniform control C; the world can test the claim "
            "only if coverage moves both zero-shot accuracy and intra-image on A and on D. Intervals: 95 % "
            f"nested bootstrap (sub-worlds, then tasks), B = {n_boot}, constant replicates counted as tau = 0.", ""]
    state = {True: "PASSED: world v2 can test the claim", False: "FAILED: world v2 cannot test the claim",
             None: "NOT DECIDED YET"}[passed]
    head += [f"**Verdict: {state}.**", ""] + [f"- {r}" for r in reasons] + [""]
    if missing:
        head += [f"Not checked (weights not in core/assets yet): {', '.join(missing)}.", ""]
    if left_out:
        head += [f"Not checked (not in --models): {', '.join(left_out)}.", ""]
    if not taus.empty:
        t = taus.assign(interval=[f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(taus["lo"], taus["hi"], strict=True)])
        head += ["## Coverage vs outcome", "", table(t[["model", "outcome", "form", "tau", "interval",
                                                         "undefined_replicates"]]), ""]
    if not rows.empty:
        per = rows.groupby(["model", "subworld"]).agg(coverage=("coverage", "first"), zs_acc=("zs_acc", "mean"),
                                                       intra_image=("intra_image", "mean"), iimm=("iimm", "mean"))
        head += ["## Per sub-world means", "",
                 table(per.reset_index().sort_values(["model", "coverage"], ascending=[True, False])), ""]
    return "\n".join(head)


def provenance(argv: list[str] | None, started: float) -> str:
    """How this check was made, for the end of its report: command, code revision, package versions, device,
    host, the bootstrap's seed and the wall time (since ``started``, a :func:`time.monotonic` reading)."""
    from core.experiment import git_revision, package_versions

    command = "python -m jobs.world_check " + shlex.join(sys.argv[1:] if argv is None else argv)
    return "\n".join(["## Provenance", "", f"- command: `{command.strip()}`", f"- git revision: {git_revision()}",
                      f"- versions: {json.dumps(package_versions(), sort_keys=True)}",
                      f"- device: cpu; host: {socket.gethostname()}; bootstrap seed: {BOOT_SEED}",
                      f"- wall time: {time.monotonic() - started:.1f} s", ""])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = job_parser("python -m jobs.world_check", description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=list(ALL_MODELS), metavar="KEY",
                   help="world-v2 models to check, space- or comma-separated as the other jobs' --models "
                        "(default: all four; a subset needs --out)")
    p.add_argument("--boot", "--bootstrap", dest="boot", type=int, default=PREREGISTERED_BOOT, metavar="B",
                   help=f"bootstrap replicates, --bootstrap as in jobs.predictors (pre-registered: "
                        f"{PREREGISTERED_BOOT}; another value needs --out)")
    p.add_argument("--out", type=Path, default=None, metavar="FOLDER",
                   help="folder for manipulation-check.md/.csv; default, and only for the full pre-registered "
                        "check: jobs/results/world-v2. Required for a quick look, which may not write there")
    p.add_argument("--max-items", type=int, default=None,
                   help="cap images per split, at least 2 (quick looks only: needs --out, not with --cards)")
    p.add_argument("--cards", "--card", dest="cards", action="store_true",
                   help="also write each checked model's card beside its weights (--card as in jobs.world_report)")
    args = p.parse_args(argv)
    from jobs.pretrain import RECIPES

    # a comma list, as every other job's --models takes, was one unknown key 'a,b'
    args.models = [key for item in args.models for key in comma_list(item)]
    if not args.models:
        raise ValueError("--models names no model; leave it out to check all four")
    for key in args.models:
        if key not in RECIPES or RECIPES[key][0] != "v2":
            known = ", ".join(k for k in RECIPES if k != "worldclip-tiny")
            raise ValueError(f"{key!r} is not a world-v2 model; known: {known}")
    check_boot(args.boot)
    if args.max_items is not None and args.max_items < 2:  # intra-image compares a split's images with each other
        raise ValueError(f"--max-items must be at least 2 images per split, got {args.max_items} "
                         "(leave it out for the full check)")
    args.departures = tuple(departures(args))
    if args.departures:
        if args.out is None:
            raise ValueError(f"a quick look ({', '.join(args.departures)}) must not overwrite the shipped, "
                             f"pre-registered check in {SHIPPED}: give --out FOLDER for it")
        if args.out.resolve() == SHIPPED.resolve():
            raise ValueError(f"--out {args.out} is the shipped, pre-registered check; a quick look "
                             f"({', '.join(args.departures)}) must write elsewhere")
    if args.cards and args.max_items is not None:
        raise ValueError("--cards writes the shipped model cards beside the weights: not from a quick look "
                         "(--max-items); leave one of them out")
    args.out = SHIPPED if args.out is None else args.out
    return args


def check_boot(boot: int) -> None:
    """ValueError naming --boot unless it is a positive number of bootstrap replicates (both world-v2 jobs)."""
    if boot < 1:
        raise ValueError(f"--boot must be a positive number of bootstrap replicates, got {boot}")


def departures(args: argparse.Namespace) -> list[str]:
    """How a run departs from the pre-registered check (all four models, full splits, B = 2000)."""
    out = []
    if args.max_items is not None:
        out.append(f"--max-items {args.max_items}")
    if set(args.models) != set(ALL_MODELS):
        out.append("--models " + " ".join(args.models))
    if args.boot != PREREGISTERED_BOOT:
        out.append(f"B = {args.boot}, not {PREREGISTERED_BOOT}")
    return out


@user_facing
def main(argv: list[str] | None = None) -> int:
    log_progress("%(asctime)s %(name)s %(message)s")
    quiet_libraries()
    started = time.monotonic()  # a duration: a clock set during the check must not move it
    args = parse_args(argv)
    check_folder_not_file_name(args.out, "--out", ["manipulation-check.md", "manipulation-check.csv"])
    check_writable_folder(args.out, "--out", "manipulation-check.md/.csv")
    work_begins()
    from core.models import ASSET_DIR, spec_for
    from jobs.pretrain import RECIPES

    frames, missing = {}, []
    for n, key in enumerate(args.models, 1):
        if not (ASSET_DIR / spec_for(key).shipped_weights).exists():
            missing.append(key)
            continue
        log.info("checking %s, model %d of %d (%d tasks; elapsed %.0fs)", key, n, len(args.models), len(TASKS),
                 time.monotonic() - started)
        frames[key] = task_rows(key, world2.mix_by_name(RECIPES[key][1]), TASKS,
                                max_items=args.max_items)
    rows = pd.concat(frames.values(), ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    control = frames.get(CONTROL)
    taus = pd.concat([coverage_taus(frames[k], control=control, n_boot=args.boot, seed=BOOT_SEED)
                      for k in LONG_TAILED if k in frames],
                     ignore_index=True) if any(k in frames for k in LONG_TAILED) else pd.DataFrame()
    left_out = tuple(m for m in ALL_MODELS if m not in args.models)
    report = markdown(rows, taus, missing, args.boot, left_out=left_out, departures=args.departures)
    report += "\n" + provenance(argv, started)
    # Always rewritten, header only when nothing was checked: a previous run's rows must not outlive its report
    # (jobs.world_v2_report takes its verdict from this file).
    # Both new or both old: a full disk or a Ctrl-C while writing keeps the previous pair, never a new CSV (whose
    # rows jobs.world_v2_report's verdict comes from) beside the old report, nor a cut file.
    files = {args.out / "manipulation-check.csv": csv_text(rows, float_format="%.5g"),
             args.out / "manipulation-check.md": report + "\n"}
    cards: dict[Path, str] = {}
    if args.cards:  # in the same set: a card must not state a verdict its check's files no longer hold
        from jobs.world2_card import card_path, card_text

        if args.departures:  # decides nothing: the cards keep saying what the shipped, pre-registered check found
            from jobs.world_v2_report import manipulation_verdict

            passed = manipulation_verdict(SHIPPED)[0]
        else:
            passed = checked_verdict(taus, missing, left_out)[0]
        cards = {card_path(key): card_text(key, frame, passed=passed) for key, frame in frames.items()}
    store.write_files_together({**files, **cards})
    print(report)
    log.info("wrote %s and %s", args.out / "manipulation-check.md", args.out / "manipulation-check.csv")  # stderr
    for card in cards:
        log.info("wrote %s", card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
