"""Run the project's benchmarks in turn and print their figures.

    python -m jobs.bench [--only PART]...    # --only repeats: --only bench_metrics --only bench_app

Each part is also a job of its own: bench_metrics (IIMM vs pairwise, transferability
baselines), bench_embed (embedding pipeline vs raw forward), bench_methods (training
throughput per method vs a bare PyTorch loop), bench_store (leaderboard queries at
100,000 runs), bench_app (leaderboard page and a 500-image forecast) and bench_pretrain
(world-v2 pretraining time projected to the 2,000-step budget). Four benchmarks are run on their own:
bench_cell (a grid's per-cell overhead; it reads that grid's results), bench_memory (a long-running
server's memory), bench_folder (an image folder's memory and time, read when used vs held decoded) and
bench_compare (the Compare page's first view, run as bench_app --compare) and bench_browser (the app in Chromium,
run as bench_app --browser).
"""
from __future__ import annotations

import importlib

from jobs.cli import EXIT_INTERRUPTED, job_parser, user_facing

PARTS = ("bench_metrics", "bench_embed", "bench_methods", "bench_store", "bench_app", "bench_pretrain")


@user_facing
def main(argv: list[str] | None = None) -> int:
    """Run the parts in turn; the exit code is the highest a part gave, and Ctrl-C stops the whole run (a part's
    own main answers it with exit 130, which used to start the next part)."""
    p = job_parser("python -m jobs.bench", description=__doc__.split("\n")[0])
    p.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable: --only A --only B)")
    args = p.parse_args(argv)
    status = 0
    for part in args.only or PARTS:
        print(f"\n=== {part} ===", flush=True)
        code = importlib.import_module(f"jobs.{part}").main([]) or 0
        if code == EXIT_INTERRUPTED:
            return code
        status = max(status, code)  # not OR'd: 1 | 2 read as 3, "incomplete"
    return status


if __name__ == "__main__":
    raise SystemExit(main())
