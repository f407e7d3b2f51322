"""Submissions for a hosted leaderboard: a zip of grid records from a stranger, checked by the same
rules as every other path into the store and stored apart, labelled "submitted, unverified".

A submission can never replace or shadow a measured run: its records go to their own root (last
in :func:`core.store.default_roots`, so a run_id already loaded from the shipped or local store
wins), every run_id already stored there or in the shipped or local store with other content is
refused, and its ``source`` is overwritten with :data:`SUBMITTED_SOURCE` (the claimed source is
kept as ``claimed_source``), so the leaderboard's source filter separates submissions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from core.store.formulas import formula_problem  # noqa: F401 (re-exported: the check lives there, with the readers')
from core.store.ingest import IngestReport, ingest_items
from core.store.validate import INPUT_DEPTH_NOTE, MAX_INPUT_DEPTH, MAX_RECORD_BYTES, RecordError, parse_json_bytes
from core.turns import Turns, WaitShown
from core.upload.archive import Source, _member_name, _open_zip, _opened, _read_member
from core.upload.limits import MiB, UploadError, UploadLimits, _Budget, _printable, _Skip

#: Limits for a submission zip: small members (records), few of them.
SUBMISSION_LIMITS = UploadLimits(max_archive_bytes=32 * MiB, max_total_uncompressed_bytes=128 * MiB,
                                 max_member_bytes=32 * MiB, max_members=20_000)
MAX_SUBMITTED_RECORDS = 10_000
#: The most runs the submissions store takes from the page: every view rereads the store and every submission
#: reads it whole (a 1.5 MiB zip stored 10,000 files; 30,000 took 5.1 s to read), so strangers could fill it
#: without end. The host reviews them (``python -m jobs.reproduce``), then moves or removes them;
#: ``jobs.submit`` is not limited.
MAX_STORED_SUBMISSIONS = 20_000
#: Submissions the page reads at once, and how long another waits for a turn (s) before it is told to try again:
#: parsing one costs up to ~0.7 GB (a 31 MiB stored zip of 10 million empty records: 735 MiB extra peak, 4.5 s,
#: before the record limit refused it), so strangers submitting together could exhaust the server's memory.
SUBMISSION_SLOTS, SUBMISSION_WAIT_S = 2, 60.0
_SUBMISSION_TURNS = Turns(SUBMISSION_SLOTS)


def _items(zf: Any, limits: UploadLimits) -> Iterator[tuple[str, Any]]:
    budget, count = _Budget(limits.max_total_uncompressed_bytes), 0
    for info in zf.infolist():
        if info.is_dir():
            continue
        try:
            name = _member_name(info, limits)
        except _Skip as exc:
            yield _printable(info.filename), RecordError(str(exc))
            continue
        if not name.endswith((".json", ".jsonl")):
            yield _printable(name), RecordError("not a record file (.json or .jsonl)")
            continue
        try:
            raw = bytes(_read_member(zf, info, budget, limits))
        except _Skip as exc:
            yield _printable(name), RecordError(str(exc))
            continue
        lines = raw.split(b"\n") if name.endswith(".jsonl") else [raw]
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{_printable(name)}:{i}" if len(lines) > 1 else _printable(name)
            count += 1
            if count > MAX_SUBMITTED_RECORDS:
                raise UploadError(f"a submission may hold at most {MAX_SUBMITTED_RECORDS} records")
            try:
                if len(line) > MAX_RECORD_BYTES and name.endswith(".jsonl"):
                    raise RecordError(f"line is {len(line)} bytes; the limit is {MAX_RECORD_BYTES}")
                data = parse_json_bytes(line, max_depth=MAX_INPUT_DEPTH, note=INPUT_DEPTH_NOTE)
            except RecordError as exc:
                yield where, exc
                continue
            if isinstance(data, list):
                count += len(data) - 1
                if count > MAX_SUBMITTED_RECORDS:
                    raise UploadError(f"a submission may hold at most {MAX_SUBMITTED_RECORDS} records")
                yield from ((f"{where}[{k}]", item) for k, item in enumerate(data, 1))
            else:
                yield where, data


def accept_submission(source: Source, *, target: str | Path | None = None,
                      limits: UploadLimits = SUBMISSION_LIMITS, public: bool = True,
                      turn_wait: WaitShown | None = None, store_wait: WaitShown | None = None) -> IngestReport:
    """Validate and store the records in a submitted zip (``.json`` records or lists, ``.jsonl``).

    target: where submissions are stored (default :func:`core.store.submissions_dir`).
    public: the report goes to the stranger who submitted (the app's page): its reasons name the stores in
    words, never by their paths on this machine; False for the host (``jobs.submit``), who is told which file
    blocks a run_id and that removing it helps.
    Returns the IngestReport: accepted run_ids, unchanged re-submissions, refused (where, reason); with ``public``,
    a submission whose new runs would take the store past :data:`MAX_STORED_SUBMISSIONS` is refused whole.
    Raises UploadError when the zip itself is refused (size, entry count, corrupt, too many records); with
    ``public``, :class:`core.turns.BusyError` when :data:`SUBMISSION_SLOTS` submissions are being read and none
    ends within :data:`SUBMISSION_WAIT_S` seconds.
    turn_wait, store_wait: how the waits are shown (``core.turns.WaitShown``: told as each begins, every
    :data:`core.turns.TICK_S` of it, and done once it has ended; what they raise ends the wait, holding nothing,
    or the submission before any record is written): ``turn_wait`` for a turn (with ``public``),
    ``store_wait`` for the submissions store's lock, held by another writer (an ingest, another submission).
    """
    if not public:  # the host's own job: one at a time by hand, not strangers at once
        return _accept(source, target, limits, public, store_wait)
    with _SUBMISSION_TURNS.turn(wait_s=SUBMISSION_WAIT_S, what="submissions", wait=turn_wait):
        return _accept(source, target, limits, public, store_wait)


def _accept(source: Source, target: str | Path | None, limits: UploadLimits, public: bool,
            store_wait: WaitShown | None = None) -> IngestReport:
    import core.store as package

    folder = Path(target) if target is not None else package.submissions_dir()
    local = package.local_results_dir()  # checked as the app checks it: never walk a home folder or "/"
    conflicts = [package.SHIPPED_DIR] + ([] if package.is_results_folder(local) else [local])
    with _opened(source) as fh:
        zf, _ = _open_zip(fh, limits)
        with zf:
            items = [(where, RecordError(problem) if (problem := formula_problem(item)) else item)
                     for where, item in _items(zf, limits)]
    if not items:
        raise UploadError("the zip holds no record files (.json or .jsonl)")
    return ingest_items(items, folder, conflict_roots=conflicts, source=package.SUBMITTED_SOURCE, public=public,
                        max_stored=MAX_STORED_SUBMISSIONS if public else None, lock_wait=store_wait)
