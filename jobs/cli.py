"""The shared conventions of the jobs (``python -m jobs.<name>``): what each exit code means, where messages go.

Exit codes, the same for every job (a job's docstring adds only what is its own):

- 0: done.
- 1 (``EXIT_FAILED``): the job ran on usable input and what it did or checked failed: records refused
  (``ingest``, ``submit``), values that differ (``check_before``, ``reproduce``), cells lost (``grid``), errors
  under load (``load_test``), a sample that could not be used while others were forecast (``forecast``); and in
  every job a system error (an ``OSError``: a full disk, a folder removed while writing) once its work had begun,
  i.e. after the job called :func:`work_begins` (``grid`` says so itself): its ``error:`` line says the job
  stopped after its work had begun, and to fix the cause and run the same command again.
- 2 (``EXIT_USER_ERROR``): the input cannot be used, and nothing was computed or written: a bad flag or flag
  value (argparse's own refusal too, a long option's prefix among them: :func:`job_parser`), a missing input
  path, an input with no runs or records to work on (an empty or wrong ``--results`` folder), an output that
  cannot be written (a folder where a file goes, a file where a folder goes, a folder this user may not write in;
  checked before the work). An ``OSError`` is exit 2
  only before the job's checks are done (before :func:`work_begins`); a ``ValueError`` and the other user
  errors are exit 2 wherever raised.
- 3 (``EXIT_INCOMPLETE``): done as far as this host could: some part is not here yet or cannot be done here
  (``grid``: cells another runner holds; ``check_before``: a model or dataset not available here; ``forecast``: too
  few reference runs for the model, its zero-shot measures given).
- 130 (``EXIT_INTERRUPTED``): interrupted (Ctrl-C; SIGTERM too for ``grid`` and ``pretrain``): one line, no traceback (``grid`` and
  ``pretrain`` say first what is kept and to rerun the same command to resume).

Results and reports go to stdout; every error is one ``error: …`` line on stderr that names the option or path
and what to do. A character stdout's encoding cannot show (a Windows code page has no τ or −) is written as a
backslash escape, never an error. An output file that exists is replaced (the jobs regenerate their tables) and
an output's missing folders are made (:func:`check_file_out`, :func:`check_folder_out` check the rest before the
work). Set IIMM_DEBUG=1 to see a user error's traceback instead of its line.
"""
from __future__ import annotations

import argparse
import codecs
import contextlib
import contextvars
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from core.data.registry import DatasetUnavailableError
from core.models import ModelUnavailableError
from core.text import did_you_mean  # noqa: F401 (re-exported: the jobs' unknown-name errors add it, as core's do)
from jobs.option_checks import (  # noqa: F401 (re-exported: the jobs import every convention from here)
    check_cache_folder, check_csv_out, check_device, check_file_out, check_folder_not_file_name, check_folder_out,
    check_results_folder, check_writable_folder)

if TYPE_CHECKING:
    import pandas as pd

USER_ERRORS = (ValueError, OSError, ModelUnavailableError, DatasetUnavailableError)
EXIT_FAILED = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_INCOMPLETE = 3  # jobs.grid: cells another runner holds; jobs.check_before: a model not available here;
#                     jobs.forecast: too few reference runs for the model


class JobMain(Protocol):
    """A job's entry point as :func:`user_facing` returns it: ``main()`` reads ``sys.argv``, ``main(argv)`` a list."""

    def __call__(self, argv: list[str] | None = None) -> int: ...


@dataclass
class _Work:
    """Whether the job :func:`user_facing` runs has begun its work (called :func:`work_begins`)."""

    begun: bool = False


# One _Work per wrapped call (a nested call gets its own); a mutable holder, so that work_begins called in a
# copy of the context (an asyncio task, as jobs.load_test's drive runs in) still marks the job's own call.
_WORK: contextvars.ContextVar[_Work | None] = contextvars.ContextVar("iimm_job_work", default=None)


def stopped_line(exc: OSError) -> str:
    """The ``error:`` line of a system error after :func:`work_begins`: what stopped the job, and what to do."""
    return f"error: the job stopped after its work had begun: {exc}; fix the cause and run the same command again"


def work_begins() -> None:
    """Say that the job's checks are done and its work (the first computation or write) begins: from here an
    ``OSError`` (a full disk, a folder removed while writing) is a failure of the run, exit 1, no longer an input
    that cannot be used (exit 2). Call it once, after the last check; outside :func:`user_facing` it does nothing."""
    work = _WORK.get()
    if work is not None:
        work.begun = True


def user_facing(main: Callable[[list[str] | None], int]) -> JobMain:
    """Wrap a job's ``main(argv)`` so user errors end in one message and a non-zero exit code; the wrapper's
    ``argv`` defaults to None (``sys.argv``), as ``if __name__ == "__main__": raise SystemExit(main())`` needs.
    An ``OSError`` raised after the job called :func:`work_begins` is exit 1 (its line says the job stopped
    after its work had begun), before it exit 2; the other user errors are exit 2 wherever raised."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        work = _Work()
        token = _WORK.set(work)
        restore = _tolerant_stdout()
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except USER_ERRORS as exc:
            if os.environ.get("IIMM_DEBUG"):
                raise
            if isinstance(exc, OSError) and work.begun:
                print(stopped_line(exc), file=sys.stderr)
                return EXIT_FAILED
            print(f"error: {exc}{_locale_hint(exc)}", file=sys.stderr)
            return EXIT_USER_ERROR
        finally:
            restore()
            _WORK.reset(token)

    return wrapper


def _locale_hint(exc: BaseException) -> str:
    """Why a path could not be encoded, when the cause is the locale: Python decodes file names in the locale's
    encoding (ASCII under LC_ALL=C with PYTHONUTF8=0), so a path with 'é' holds surrogates that torch, DuckDB and
    UTF-8 files refuse. The job said only "'utf-8' codec can't encode characters ...: surrogates not allowed"."""
    encoding = sys.getfilesystemencoding()
    if (not isinstance(exc, UnicodeError) or "surrogate" not in str(exc)
            or encoding.lower().replace("-", "") == "utf8"):
        return ""
    return (f" (Python reads file names as {encoding} here, not UTF-8, so a path with letters outside it cannot be "
            "used: run with PYTHONUTF8=1 or a UTF-8 locale, e.g. LANG=C.UTF-8)")


def _escape_keeping_file_names(exc: UnicodeError) -> tuple[str | bytes, int]:
    """An encoding error handler: a file name's undecodable byte (a lone surrogate U+DC80-U+DCFF, as
    ``surrogateescape`` makes it) as that byte again, any other character as a backslash escape."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    char = exc.object[exc.start]
    if 0xDC80 <= ord(char) <= 0xDCFF:
        return bytes([ord(char) - 0xDC00]), exc.start + 1
    one = UnicodeEncodeError(exc.encoding, exc.object, exc.start, exc.start + 1, exc.reason)
    return codecs.lookup_error("backslashreplace")(one)


codecs.register_error("iimm-escape-keeping-file-names", _escape_keeping_file_names)


def _tolerant_stdout() -> Callable[[], None]:
    """Let stdout write what its encoding cannot show as backslash escapes (``\\u03c4`` for τ), as Python's own
    stderr does, instead of raising: on Windows a job's stdout redirected to a file or a pipe takes the ANSI code
    page (cp1252 has no τ or −, cp1251 and cp932 no ²), and a report's first such character made the job exit 2
    after its work, before it wrote its ``--out``. Under the C locale without UTF-8 mode (``LC_ALL=C`` with
    ``PYTHONUTF8=0``) stdout is ASCII with ``surrogateescape``, which raised at ² as well: there file names keep
    their bytes, and the rest is escaped. Returns what puts the stream's error handler back."""
    stream = sys.stdout
    errors = getattr(stream, "errors", None)
    handler = {"strict": "backslashreplace", "surrogateescape": "iimm-escape-keeping-file-names"}.get(errors or "")
    if handler is None or not callable(getattr(stream, "reconfigure", None)):
        return lambda: None
    stream.reconfigure(errors=handler)
    return lambda: stream.reconfigure(errors=errors)


def raise_interrupt(signum: int, frame: Any) -> None:
    """A signal handler that ends the job as Ctrl-C does (KeyboardInterrupt: its cleanup, one line, exit 130)."""
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a cluster's time limit, ``kill``) ends the block as Ctrl-C does, the previous handler restored after
    it: by Python's default a SIGTERM ends the process at once, exit 143, nothing said and nothing cleaned up.
    Outside the main thread (where no handler can be set) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


PROGRESS_FORMAT = "%(asctime)s %(message)s"  # a job's progress lines: time, then the message


class ZonedTimes(logging.Formatter):
    """A log line's ``%(asctime)s`` in ISO 8601 with this host's UTC offset, to the millisecond
    (``2026-12-07T00:17:34.878+01:00``): logging's own form (``2026-12-07 00:17:34,878``) named no zone, so a
    cluster node's log could not be set beside another's, or beside a record's created_at (UTC).

    An error logged as ``error: …`` is written as it is, with no time before it: the one ``error: …`` line every
    job answers a user error with (jobs.grid's began with its time, ``2026-12-07T20:49:42.985+00:00 error: …``).

    ``tag`` goes before each other line's message (``… [worker 2/4] running …``): which of a job's worker
    processes wrote it, where their lines interleave on stderr; none in a job's own process."""

    def __init__(self, fmt: str = PROGRESS_FORMAT, tag: str = "") -> None:
        super().__init__(fmt.replace("%(message)s", tag.replace("%", "%%") + " %(message)s") if tag else fmt)
        self.fmt = fmt  # what progress_settings hands a worker process, without this process's tag

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR and message.startswith("error: ") and not record.exc_info:
            return message
        return super().format(record)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's)
        return datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds")


def log_progress(fmt: str = PROGRESS_FORMAT, level: int = logging.INFO, tag: str = "") -> None:
    """:func:`logging.basicConfig` for a job's progress lines on stderr, each time ISO 8601 with its UTC offset
    (:class:`ZonedTimes`), ``tag`` before each message in a worker process (``[worker 2/4]``); as basicConfig,
    nothing when the root logger has handlers already."""
    handler = logging.StreamHandler()
    handler.setFormatter(ZonedTimes(fmt, tag))
    logging.basicConfig(level=level, handlers=[handler])


def progress_settings() -> tuple[str, int]:
    """This process's progress format and level (``log_progress(*progress_settings())`` in a worker process logs
    as its parent does): the format :func:`log_progress` set on the root logger, its default where the root
    has another handler or none, and the root logger's level. A worker started by ``spawn`` begins with no
    logging set up: its warnings came out as ``WARNING:root:…`` and its INFO lines, a cell's progress, nowhere."""
    root = logging.getLogger()
    fmt = next((h.formatter.fmt for h in root.handlers if isinstance(h.formatter, ZonedTimes)), PROGRESS_FORMAT)
    return fmt, root.level


class _LibraryChatter(logging.Filter):
    """Drops open_clip's INFO lines: it logs them on the root logger, about ten per model built ("Parsing model
    identifier", "Instantiating model architecture", ...), half of jobs.grid's lines on the smoke grid."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or f"{os.sep}open_clip{os.sep}" not in record.pathname


def quiet_libraries() -> None:
    """Keep a job's INFO log to its own progress: open_clip's INFO lines are dropped (its warnings still show,
    e.g. a model initialised randomly). Once per process, however often called."""
    root = logging.getLogger()
    if not any(isinstance(f, _LibraryChatter) for f in root.filters):
        root.addFilter(_LibraryChatter())


#: What to do about an input with no runs to work on.
NAME_A_GRID = "name a results folder that holds grid records (made by python -m jobs.grid or jobs.ingest)"


def no_runs(what: str, roots: Iterable[str | Path] | None, todo: str = NAME_A_GRID) -> ValueError:
    """The error for an input with nothing to work on (exit 2 through :func:`user_facing`): ``no {what} in
    {roots}: {todo}``; ``roots`` None or empty reads as the app's store (the jobs' default input)."""
    where = ", ".join(str(r) for r in roots) if roots else "the app's store (jobs/results and the local store)"
    return ValueError(f"no {what} in {where}: {todo}")


def job_parser(prog: str, **options: Any) -> argparse.ArgumentParser:
    """The ``argparse`` parser of a job (``prog`` its command, e.g. ``python -m jobs.grid``; ``options`` argparse's):
    a long option must be given in full. argparse took any unique prefix (``--wor 2`` for ``--workers 2``), so a
    typo such as ``--ou`` was read as ``--out``, and a command that worked changed meaning, or stopped working,
    once the job got a new option with the same prefix; such a prefix is now argparse's error, exit 2."""
    return argparse.ArgumentParser(prog=prog, allow_abbrev=False, **options)


class Once(argparse.Action):
    """An option that takes one value in this job and is refused when given again (argparse's error, exit 2):
    ``--results`` repeats in the jobs that read several folders, and where it takes one (``jobs.grid``'s output,
    ``jobs.world_v2_report``'s grid) a second one silently replaced the first."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if getattr(self, "_seen_in", None) is namespace:
            parser.error(f"{option_string} takes one value in this job, given twice: "
                         f"{getattr(namespace, self.dest)} and {values}")
        self._seen_in = namespace
        setattr(namespace, self.dest, values)


def check_at_least(parser: argparse.ArgumentParser, args: argparse.Namespace, *names: str,
                   least: int = 1) -> None:
    """argparse's error (exit 2) naming the first option of ``names`` (dests, e.g. ``large_steps``) below ``least``:
    a count of 0 (threads, steps, repeats, images) is refused up front in every job, not met as an internal error."""
    for name in names:
        value = getattr(args, name)
        if value < least:
            parser.error(f"--{name.replace('_', '-')} must be at least {least}, got {value}")


def comma_list(text: str, flag: str | None = None) -> list[str]:
    """The names of a comma-separated option (``--models a,b``, ``--methods``), each stripped, empty ones left
    out: ``a, b`` (quoted, with a space) is ``a`` and ``b`` in every job, as jobs.grid and jobs.predictors read it.
    With ``flag``, ValueError naming it when no name is left (an option whose empty value means nothing to do)."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if flag is not None and not names:
        raise ValueError(f"{flag} {text!r} names nothing: give one or more names, comma-separated")
    return names


def refused_records(report: Any, source: str | Path) -> str | None:
    """The ``error:`` line (None when nothing was refused) of a batch of records read from ``source`` of which some
    were refused, ``report`` a ``core.store`` ingest report (``accepted``, ``unchanged``, ``refused``): the job
    ran, so exit 1, and the reasons are the report's own lines on stdout."""
    if not report.refused:
        return None
    kept = len(report.accepted) + len(report.unchanged)
    total = kept + len(report.refused)
    if not kept:  # a refusal may be a valid record in conflict with a stored one: "no valid record" would be false
        return f"error: none of the {total} record(s) in {source} was stored (refusals above); mend them and run again"
    return (f"error: {len(report.refused)} of {total} record(s) in {source} refused (refusals above), the other "
            f"{kept} stored; mend the refused ones and run again (stored ones are no-ops)")


def not_a_command(module: str, instead: str) -> None:
    """For a library module of jobs/ run as ``python -m``: say what to run instead, exit 2 (it did
    nothing and exited 0, even for --help)."""
    print(f"error: {module} is a library module of the jobs, not a command; run {instead}", file=sys.stderr)
    raise SystemExit(EXIT_USER_ERROR)


def script_csv(argv: list[str], default: str, doc: str) -> str:
    """The CSV a summary script reads (``argv[1]`` or ``default``); ``-h``/``--help`` prints ``doc`` and
    exits 0, a missing or unreadable file is one ``error:`` line and exit 2 (was: a traceback)."""
    if any(a in ("-h", "--help") for a in argv[1:]):
        print(doc.strip())
        raise SystemExit(0)
    path = argv[1] if len(argv) > 1 else default
    if not Path(path).is_file():
        print(f"error: {path} is not a file (usage: see --help)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
    return path


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    """``pandas.read_csv(path)``, or ValueError naming the file and ``what`` it should be when it is not a
    CSV table (empty, not text; pandas' own message names no file)."""
    import pandas as pd

    try:
        return pd.read_csv(path)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path} is not a {what} (not a CSV table: {exc})") from None


def script_table(argv: list[str], default: str, doc: str, columns: Iterable[str], what: str) -> pd.DataFrame:
    """:func:`script_csv`'s file read by :func:`read_table`; a file that is not a CSV table, or one without
    any of ``columns`` (the summary reads them), is one ``error:`` line naming ``what`` it should be, exit 2
    (was: a pandas or KeyError traceback, e.g. for the predictors.csv that lies beside forecast-rules.csv)."""
    path = script_csv(argv, default, doc)
    try:
        rows = read_table(path, what)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR) from None
    missing = [c for c in columns if c not in rows.columns]
    if missing:
        print(f"error: {path} is not a {what} (no {', '.join(missing)} column)", file=sys.stderr)
        raise SystemExit(EXIT_USER_ERROR)
    return rows


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.cli", "one of the jobs, e.g. python -m jobs.grid --help")
