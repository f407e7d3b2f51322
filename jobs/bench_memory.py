"""A long-running server's memory: the *All runs* page rerun many times against a large store.

    python -m jobs.bench_memory [--runs 100000] [--reruns 24] [--no-collect]

Builds the synthetic store of ``jobs.bench_app`` (N runs, compacted Parquet, in a temporary folder), runs
pages/runs.py once in Streamlit's AppTest, then changes "sort by" (and, every nine changes, the order)
``--reruns`` times, as visitors would. Prints each rerun's time and the process's resident memory, then
the first and last readings. ``--no-collect`` turns off ``core.garbage.collect_if_grown`` (what every page
run calls) to show what the server did without it.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from core import garbage
from jobs.bench_app import REPO, app_store, build_store
from jobs.cli import job_parser, user_facing, work_begins

SORTS = ("id_gain", "ood_change", "norm_gain", "zs_acc", "ft_acc", "iimm", "created_at", "dataset", "method")


def rerun_memory(n_runs: int, reruns: int) -> list[tuple[float, float]]:
    """(seconds, resident MB) after the first run and after each of ``reruns`` "sort by" changes."""
    from streamlit.testing.v1 import AppTest

    with tempfile.TemporaryDirectory(prefix="iimm-bench-memory-") as tmp:
        root = Path(tmp) / "results"
        build_store(root, n_runs)
        with app_store(root, Path(tmp) / "shipped"):
            at = AppTest.from_file(str(REPO / "pages" / "runs.py"), default_timeout=300)
            readings = []
            for i in range(reruns + 1):
                if i:
                    at.selectbox(key="sort").set_value(SORTS[i % len(SORTS)])
                    at.selectbox(key="order").set_value(("desc", "asc")[(i // len(SORTS)) % 2])
                start = time.perf_counter()
                at.run()
                if at.exception:
                    raise RuntimeError(f"the page failed: {at.exception[0].message}")
                readings.append((time.perf_counter() - start, garbage.resident_mb()))
            return readings


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=_positive, default=100_000, help="runs in the synthetic store (default 100000)")
    p.add_argument("--reruns", type=_positive, default=24, help="'sort by' changes after the first run (default 24)")
    p.add_argument("--no-collect", action="store_true", help="turn off core.garbage.collect_if_grown")
    args = p.parse_args(argv)
    work_begins()
    saved = garbage.collect_if_grown
    if args.no_collect:
        garbage.collect_if_grown = lambda **kwargs: False
    try:
        readings = rerun_memory(args.runs, args.reruns)
    finally:
        garbage.collect_if_grown = saved
    print(f"All runs page, {args.runs} runs, {args.reruns} 'sort by' changes; collection "
          f"{'OFF (--no-collect)' if args.no_collect else 'on (core.garbage)'}")
    for i, (seconds, mb) in enumerate(readings):
        print(f"  {'first run' if i == 0 else f'rerun {i}':<10} {seconds:6.3f} s  resident {mb:7.0f} MB")
    times = [s for s, _ in readings[1:]]
    print(f"reruns: median {statistics.median(times):.3f} s, slowest {max(times):.3f} s; resident memory "
          f"{readings[0][1]:.0f} MB after the first run, {readings[-1][1]:.0f} MB after the last")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
