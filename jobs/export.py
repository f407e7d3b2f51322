"""Export every stored run as CSV or Parquet, one row per run.

    python -m jobs.export --format csv > runs.csv
    python -m jobs.export --results results/ --format parquet -o runs.parquet
    python -m jobs.export --results results/ --compact            # compact only, no export
    python -m jobs.export --results results/ --compact --format csv  # compact, then export to stdout

Without --results it reads the same store as the app (shipped jobs/results plus the local
store; submitted, unverified runs only with --include-submitted, as the app shows them only when asked).
The output file is written atomically (a failed export never leaves a cut file in its place).
Columns: the leaderboard columns first (run_id, model, pretrained, method, dataset,
seed, status, zs_acc, ft_acc, id_gain, norm_gain, ood_change, iimm, source), then the other
schema columns; nested fields are JSON text, so a Parquet export can be ingested again (a CSV is for reading).
A store with no run to export is exit 2 with nothing written, as every job's input with no runs (jobs.cli).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd

from core import store
from jobs.cli import EXIT_USER_ERROR, check_file_out, job_parser, no_runs, user_facing, work_begins


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """Leaderboard columns first, the rest in store order."""
    first = [c for c in store.LEADERBOARD_COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]]


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.export", description=__doc__.split("\n")[0])
    parser.add_argument("--results", action="append", type=Path, metavar="DIR",
                        help="a results folder (repeatable); default: the app's store")
    parser.add_argument("--format", choices=("csv", "parquet"), default=None,
                        help="default csv; with --compact, giving --format or -o also exports")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    parser.add_argument("--include-submitted", action="store_true",
                        help="also export submitted, unverified runs (read from the default store only)")
    parser.add_argument("--compact", action="store_true",
                        help="first merge each --results folder (default: the local store) "
                             "into one Parquet file; its JSON files are removed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for root in args.results or []:
        problem = store.is_results_folder(root)
        if problem and root.exists():  # a missing folder gets its own message below
            print(f"error: --results: {problem}", file=sys.stderr)
            return EXIT_USER_ERROR
    missing = [str(r) for r in args.results or [] if not r.exists()]
    if missing:
        print(f"error: results folder(s) not found: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.output:
        check_file_out(args.output, "-o")  # its missing folders are made, as every job's output
        if args.output.exists() and not args.output.is_file():
            raise ValueError(f"-o {args.output} is not a regular file (a device or a pipe): name a file")
    compacting = (args.results or [store.local_results_dir()]) if args.compact else []
    for root in compacting:  # every check before the first compaction: it deletes what it merged
        problem = "does not exist" if not root.is_dir() else store.is_results_folder(root)
        if problem:
            print(f"error: not compacting {root}: {problem}", file=sys.stderr)
            return EXIT_USER_ERROR
    work_begins()
    for root in compacting:
        made = store.compact(root)
        print(f"compacted {root} -> {made}" if made else f"{root}: nothing to compact", file=sys.stderr)
    if args.compact and args.format is None and args.output is None:
        return 0  # compacting a 100,000-run store must not also print it to the terminal
    args.format = args.format or "csv"
    df = store.load_runs(args.results)
    df = _ordered(df if args.include_submitted else store.verified_runs(df))
    if df.empty:  # was a header alone and exit 0, read as an export: now exit 2, nothing written
        raise no_runs("runs", args.results)
    data = store.to_csv_bytes(df) if args.format == "csv" else store.to_parquet_bytes(df)
    if args.output:
        store._atomic_write(args.output, lambda fh: fh.write(data))
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    print(f"exported {len(df)} runs as {args.format}" + (f" to {args.output}" if args.output else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
