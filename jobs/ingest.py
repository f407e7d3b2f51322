"""Add result records produced elsewhere to the local store.

    python -m jobs.ingest PATH [--into DIR]

PATH is a folder of records (.json, .jsonl, .parquet, any depth) or one such file (a Parquet
column the store has no column for is kept as a custom field, as a JSON record's unknown key is). Every
record is checked against the schema (core.schema); a run_id repeated in the input is refused;
a run_id already stored in DIR or in the shipped results is a no-op when its content is the
same and refused when it differs (a stored run is never replaced). The batch is written
all-or-nothing under a lock, so concurrent ingests are safe. DIR defaults to the local store
($IIMM_RESULTS or results/). Exit status (jobs.cli's, as every job): 0 when every record is now stored
(accepted or already there, unchanged), 1 when any record was refused (one ``error:`` line on stderr, the
reasons on stdout), 2 for a missing or unsupported input, one that holds no record, or a DIR that is not a
results folder.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from core import store
from jobs.cli import EXIT_FAILED, check_folder_out, job_parser, no_runs, refused_records, user_facing, work_begins


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.ingest", description=__doc__.split("\n")[0])
    parser.add_argument("path", type=Path, help="a folder of records or one .json/.jsonl/.parquet")
    parser.add_argument("--into", type=Path, default=None, metavar="DIR",
                        help="target results folder (default: the local store)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    target = args.into or store.local_results_dir()
    # a file in the way was a bare "[Errno 20] Not a directory"
    check_folder_out(target, "--into" if args.into else "the local store ($IIMM_RESULTS or results/)")
    if not args.path.exists():  # checked here too: store.ingest's own check would come after work_begins (exit 1)
        raise FileNotFoundError(f"nothing to ingest: {args.path} does not exist")
    work_begins()
    report = store.ingest(args.path, target)  # bad input: user_facing says why (exit 2)
    if not report.accepted and not report.unchanged and not report.refused:  # nothing to ingest: exit 2
        raise no_runs("record", [args.path], "name a folder of .json/.jsonl/.parquet records or one such file")
    print(f"{report.summary()} (into {target})")
    for where, reason in report.refused:
        print(f"  refused {where}: {reason}")
    if error := refused_records(report, args.path):  # the job ran: exit 1, said on stderr as well
        print(error, file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
