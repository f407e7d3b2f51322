"""The command-line jobs, ``python -m jobs.<name>``; their shared conventions (exit codes, messages) are jobs.cli's."""
from __future__ import annotations

import sys
from types import TracebackType


def _interrupted_in_one_line(kind: type[BaseException], value: BaseException, tb: TracebackType | None,
                             previous=sys.excepthook) -> None:
    """Ctrl-C before a job's ``main`` runs (while it imports pandas or torch, a second or two) as jobs.cli's one
    ``interrupted`` line, not a traceback of the import machinery; Python still exits as stopped by SIGINT (the
    shell's 130). Any other uncaught error is shown as before."""
    if issubclass(kind, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return
    previous(kind, value, tb)


if sys.argv[:1] == ["-m"]:  # run as ``python -m jobs.<name>`` (argv[0] is "-m" while the module is found), not imported
    sys.excepthook = _interrupted_in_one_line
