"""What every job does with a user's mistake: one clear line on stderr, no traceback, exit code 2.

A bad path, a bad config value, an unknown model or dataset, an unreachable weights hub: these are
user errors and get their message. Set IIMM_DEBUG=1 to see the traceback instead.
"""
from __future__ import annotations

import functools
import os
import sys
from typing import Callable

from core.data.registry import DatasetUnavailableError
from core.models import ModelUnavailableError

USER_ERRORS = (ValueError, OSError, ModelUnavailableError, DatasetUnavailableError)
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def user_facing(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Wrap a job's ``main(argv)`` so user errors end in one message and a non-zero exit code."""

    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except USER_ERRORS as exc:
            if os.environ.get("IIMM_DEBUG"):
                raise
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR

    return wrapper
