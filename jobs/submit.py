"""Accept a submission for the hosted leaderboard: a zip of grid records, validated by the same
rules as every other path into the store, stored apart as "submitted, unverified".

    python -m jobs.submit submission.zip [--into DIR]

DIR defaults to $IIMM_SUBMISSIONS or results-submitted/. A record whose run_id is already stored
(shipped, local or submitted) with other content is refused; the same record sent again is a
no-op. Exit status (jobs.cli's, as every job): 0 when every record is now stored, 1 when any was refused (one
``error:`` line on stderr, the reasons on stdout), 2 when the zip itself is refused or holds no record.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from core import store
from jobs.cli import (EXIT_FAILED, EXIT_USER_ERROR, check_folder_out, job_parser, no_runs, refused_records, user_facing,
                      work_begins)


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.submit", description=__doc__.split("\n\n")[0])
    parser.add_argument("zip", type=Path, help="a zip of .json / .jsonl grid records")
    parser.add_argument("--into", type=Path, default=None, metavar="DIR",
                        help="where submissions are stored (default: $IIMM_SUBMISSIONS or results-submitted/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.zip.is_file():
        print(f"error: {args.zip} is not a file", file=sys.stderr)
        return EXIT_USER_ERROR
    check_folder_out(args.into or store.submissions_dir(), "--into" if args.into else "the submissions store")
    work_begins()
    # the host: reasons may name this machine's folders (the app's page never does); UploadError etc.:
    # user_facing says why
    report = store.accept_submission(args.zip, target=args.into, public=False)
    if not report.accepted and not report.unchanged and not report.refused:
        raise no_runs("record", [args.zip], "zip the .json/.jsonl records of a grid")
    print(f"{report.summary()} (stored as {store.SUBMITTED_SOURCE!r})")
    for where, reason in report.refused:
        print(f"  refused {where}: {reason}")
    if error := refused_records(report, args.zip):  # was exit 1 with nothing on stderr
        print(error, file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
