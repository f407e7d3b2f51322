"""A job's log as a fresh process writes it, for tests that check which stream its lines reach."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def fresh_process_logging(caplog: pytest.LogCaptureFixture, logger: str) -> Iterator[None]:
    """For the block, the root logger has no handlers, as in a fresh process, so a job's ``logging.basicConfig``
    (jobs.cli.log_progress among them) takes effect and its lines reach the stream it names: pytest's own
    handlers on the root logger made every such call do nothing, so a job that logged on stdout passed a test of
    stderr. ``caplog`` listens on ``logger`` instead. The root's handlers and level are put back afterwards."""
    root, own = logging.getLogger(), logging.getLogger(logger)
    kept, level = root.handlers[:], root.level
    root.handlers = []
    own.addHandler(caplog.handler)
    try:
        yield
    finally:
        own.removeHandler(caplog.handler)
        root.handlers = kept
        root.setLevel(level)
