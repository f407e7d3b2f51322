"""Pretraining time of the world-v2 models, projected to their full budget, against the 45-minute goal.

    python -m jobs.bench_pretrain [--models worldclip-v2-a,worldsiglip-v2-b,worldclip-v2-c] [--steps 40] [--threads 2]

Runs ``jobs.pretrain`` for a few steps of each model's own recipe (batch, data mix, loss) into a
temporary folder (the shipped weights are not touched), reads the loop's wall time from the run's
log, and prints seconds per step, the projected time of the 2,000-step budget and its ratio to the
goal (<= 45 min per model on this machine). C and D share A's architecture and loss, so A, B and one
of them cover every cost; ``--models`` picks others. Run it on a quiet machine: other jobs on the
same cores slow every step.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

from jobs.cli import comma_list, job_parser, user_facing, work_begins

GOAL_MIN = 45.0
BUDGET_STEPS = 2000


def time_model(model: str, *, steps: int, threads: int) -> float:
    """Seconds per pretraining step of ``model``'s recipe, measured over ``steps`` steps."""
    from jobs import pretrain

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "weights.safetensors"
        code = pretrain.main(["--model", model, "--steps", str(steps), "--warmup", "1", "--threads", str(threads),
                       "--work", str(Path(tmp) / "work"), "--out", str(out), "--ckpt-every", str(steps)])
        if code != 0:
            raise ValueError(f"pretraining {model} failed (exit {code}; its error is above)")
        log = json.loads(out.with_suffix(".train.json").read_text())
    return float(log["wall_time_s"]) / steps


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_pretrain", description=__doc__.split("\n")[0])
    p.add_argument("--models", default="worldclip-v2-a,worldsiglip-v2-b,worldclip-v2-c",
                   help="comma-separated models of jobs.pretrain's RECIPES")
    p.add_argument("--steps", type=int, default=40, help="steps timed per model (at least 5)")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    args = p.parse_args(argv)
    if args.steps < 5:
        p.error(f"--steps must be at least 5, got {args.steps}")
    if args.threads < 1:  # was jobs.pretrain's usage and error, under this job's table header
        p.error(f"--threads must be at least 1, got {args.threads}")
    from jobs.pretrain import RECIPES

    unknown = [m for m in comma_list(args.models, "--models") if m not in RECIPES]
    if unknown:
        p.error(f"--models: unknown model(s) {', '.join(unknown)}; known: {', '.join(sorted(RECIPES))}")
    work_begins()
    print(f"{'model':<18} {'s/step':>7} {'projected min':>14} {'/ 45-min goal':>14}")
    worst = 0.0
    for model in comma_list(args.models):
        per_step = time_model(model, steps=args.steps, threads=args.threads)
        minutes = per_step * BUDGET_STEPS / 60
        worst = max(worst, minutes)
        print(f"{model:<18} {per_step:7.3f} {minutes:14.1f} {minutes / GOAL_MIN:14.2f}", flush=True)
    print(f"{BUDGET_STEPS} steps, {args.threads} thread(s), measured over {args.steps} steps: "
          f"slowest {worst:.1f} min, goal {'met' if worst <= GOAL_MIN else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
