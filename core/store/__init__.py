"""The result store: run records on disk <-> one pandas DataFrame, queried through DuckDB.

Layout. A *root* is a folder of records, one ``<run_id>.json`` per run (any depth), plus
optional ``compacted-<hash>.parquet`` files made by :func:`compact`. Three roots are read by
default, in priority order: the shipped ``jobs/results``, the user's local store
(``$IIMM_RESULTS`` or ``results/``), and hosted submissions (``$IIMM_SUBMISSIONS`` or
``results-submitted/``, labelled "submitted, unverified").

Where each rule lives (one guess each):

* :mod:`core.schema` -- the one schema: fields, types, ranges, consistency of derived outcomes;
* :mod:`core.store.validate` -- file-level rules (size, nesting, run_id) and the same schema
  applied to Parquet rows; :class:`Skipped` names a quarantined record and why;
* :mod:`core.store.records` -- safe listing and reading of files, atomic writes;
* :mod:`core.store.compaction` -- many records merged into one Parquet file;
* :mod:`core.store.load` -- :func:`load_runs` (quarantine, de-duplication across roots);
* :mod:`core.store.queries` -- parameterised filters, run details, exports;
* :mod:`core.store.ingest` -- atomic, conflict-aware ingest of records made elsewhere;
* :mod:`core.store.formulas` -- submitted text a spreadsheet would run, refused when taken and when read;
* :mod:`core.store.locks` -- per-cell lock files with host, pid and heartbeat.

Concurrency, without locks on the read side: writers create ``.tmp-*`` files and
``os.replace`` them into place; readers use short-lived in-memory DuckDB connections; every
file or folder whose name starts with ``.`` is ignored by readers.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.env_folders import NoHomeFolderError, env_folder

if TYPE_CHECKING:
    import pandas as pd

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SHIPPED_DIR = REPO_ROOT / "jobs" / "results"
ENV_VAR = "IIMM_RESULTS"
SUBMISSIONS_ENV_VAR = "IIMM_SUBMISSIONS"
from core.store.formulas import SUBMITTED_SOURCE  # noqa: E402


def local_results_dir() -> Path:
    """The user's own store: ``$IIMM_RESULTS`` when set, else ``results/`` in the repo (NoHomeFolderError, a
    ValueError, where its ``~`` cannot be expanded)."""
    return env_folder(ENV_VAR, lambda: REPO_ROOT / "results")


def submissions_dir() -> Path:
    """Where hosted submissions are stored: ``$IIMM_SUBMISSIONS``, else ``results-submitted/`` (NoHomeFolderError
    as :func:`local_results_dir`)."""
    return env_folder(SUBMISSIONS_ENV_VAR, lambda: REPO_ROOT / "results-submitted")


def verified_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` without unverified submissions (source :data:`SUBMITTED_SOURCE`): the frame itself, not a
    copy, when there are none (copying 100,000 runs costs a tenth of a second per view)."""
    if "source" not in runs.columns:
        return runs
    submitted = runs["source"] == SUBMITTED_SOURCE
    return runs[~submitted] if submitted.any() else runs


def submitted_count(runs: pd.DataFrame) -> int:
    """How many of ``runs`` are unverified submissions (source :data:`SUBMITTED_SOURCE`)."""
    return int((runs["source"] == SUBMITTED_SOURCE).sum()) if "source" in runs.columns else 0


def no_runs_text(every: pd.DataFrame, advice: str) -> str:
    """What a page with no run to show says: ``advice`` (how to add runs), or, where ``every`` run of the store
    (submissions included) is an unverified submission the view leaves out, that they are there and how to
    include them: "No runs yet" over a store of submissions told their submitter theirs were lost."""
    submitted = submitted_count(every)
    if not submitted:
        return advice
    return (f"No verified runs yet: the store holds only {submitted} submitted, unverified run(s), left out "
            f"until you switch on *include {submitted} submitted, unverified runs* above.")


def default_roots() -> list[Path]:
    """The roots the app reads, in priority order: shipped, local store, submissions.

    A run_id found in an earlier root can never be replaced by a later one (see load_runs). A root
    from the environment that is not a results folder (``IIMM_RESULTS=/``) is left out with a
    warning, so a typo cannot make every page walk the machine.
    """
    roots: list[Path] = []
    named = [SHIPPED_DIR]
    for folder in (local_results_dir, submissions_dir):
        try:
            named.append(folder())
        except NoHomeFolderError as exc:  # the app goes on with the other stores, as for a folder it will not read
            logging.getLogger("core.store").warning("not reading it: %s", exc)
    for root in named:
        if root != SHIPPED_DIR and (problem := is_results_folder(root)):
            logging.getLogger("core.store").warning("not reading %s: %s", root, problem)
            continue
        if all(root.resolve() != r.resolve() for r in roots):
            roots.append(root)
    return roots


from core.store.atomic import (  # noqa: E402
    TMP_PREFIX, _atomic_write, remove_temporaries_of, write_file_atomic, write_files_together)
from core.store.records import (  # noqa: E402  (the paths above are used by these modules)
    ARROW_SCHEMA, COLUMNS, EXTRA_COLUMN, is_results_folder, records_to_frame, row_to_record, write_record)
from core.store.compaction import LOCK_NAME, compact, write_records_parquet  # noqa: E402
from core.store.validate import (  # noqa: E402
    MAX_PARQUET_BYTES, MAX_RECORD_BYTES, RecordError, Skipped, check_record, parse_record_bytes,
    skipped_summary)
from core.store.index import INDEX_ENV_VAR, default_index_dir  # noqa: E402
from core.store.load import load_runs, load_runs_report, skipped_records, stored_run_ids  # noqa: E402
from core.store.queries import (  # noqa: E402
    FILTER_KEYS, LEADERBOARD_COLUMNS, PROVENANCE_KEYS, SEARCH_COLUMNS, matching_runs, model_metadata,
    query_runs, run_details, to_csv_bytes, to_parquet_bytes)
from core.store.ingest import IngestReport, ingest, ingest_items  # noqa: E402


def accept_submission(*args: Any, **kwargs: Any) -> IngestReport:  # lazy: core.upload loads PIL
    """Validate and store a submitted zip of records: :func:`core.store.submissions.accept_submission`, imported
    on first call."""
    from core.store.submissions import accept_submission as accept

    return accept(*args, **kwargs)

__all__ = [
    "ARROW_SCHEMA", "COLUMNS", "accept_submission", "ingest_items", "ENV_VAR", "EXTRA_COLUMN", "FILTER_KEYS", "INDEX_ENV_VAR", "IngestReport",
    "LEADERBOARD_COLUMNS", "LOCK_NAME", "MAX_PARQUET_BYTES", "MAX_RECORD_BYTES", "PROVENANCE_KEYS",
    "REPO_ROOT", "RecordError", "SEARCH_COLUMNS", "SHIPPED_DIR", "SUBMISSIONS_ENV_VAR",
    "SUBMITTED_SOURCE", "Skipped", "verified_runs", "TMP_PREFIX", "check_record", "compact", "default_index_dir", "default_roots",
    "ingest", "is_results_folder", "load_runs", "load_runs_report", "local_results_dir",
    "no_runs_text", "submitted_count",
    "matching_runs", "model_metadata", "parse_record_bytes", "query_runs", "records_to_frame", "row_to_record",
    "run_details", "skipped_records", "skipped_summary", "stored_run_ids", "submissions_dir",
    "to_csv_bytes", "to_parquet_bytes", "write_file_atomic", "write_files_together", "remove_temporaries_of",
    "write_record", "write_records_parquet",
]
