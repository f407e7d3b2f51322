"""Streamlit says a deprecation in its log (``streamlit.deprecation_util``: "Please replace `use_container_width`
with `width` ... will be removed after ..."), not as a Python warning, so the test settings that fail a test on a
deprecation of our call (pyproject.toml's filterwarnings) never see one: a page could call what the next Streamlit
removes and every page test still passed. :func:`refused` fails a test on such a message, where the call Streamlit
names came from our code (the modules those settings name, ``__main__`` being the page script an AppTest runs);
one about a library's call is left to the log. tests/conftest.py wraps every test in it."""
from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

#: The logger of streamlit.deprecation_util.show_deprecation_warning, which every Streamlit deprecation goes through.
LOGGER = "streamlit.deprecation_util"
#: Our modules, as pyproject.toml's filterwarnings names them.
OURS = re.compile(r"(core|jobs|pages|tests|app|serve|forecast_ui|page_waits|ranking_ui|__main__)(\.|$)")

_open: list[list[str]] = []  # one list per refused() block, innermost last: a block inside another takes its messages


def _caller() -> str:
    """The module of the first frame outside logging, Streamlit and this module: the one that called Streamlit."""
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name not in (__name__, "logging", "streamlit") and not name.startswith(("logging.", "streamlit.")):
            return name
        frame = frame.f_back
    return ""


class _Handler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if _open and OURS.match(module := _caller()):
            _open[-1].append(f"{module}: {record.getMessage()}")


_HANDLER = _Handler(logging.WARNING)


@contextmanager
def refused() -> Iterator[list[str]]:
    """Fail (after the block) when Streamlit logged a deprecation of a call our code made inside it."""
    logger = logging.getLogger(LOGGER)  # Streamlit's get_logger keeps a handler added before it configures the logger
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    messages: list[str] = []
    _open.append(messages)
    try:
        yield messages
    finally:
        _open.remove(messages)
    if messages:
        pytest.fail("Streamlit deprecated a call of ours (mend it before the release that removes it): "
                    + " | ".join(" ".join(m.split()) for m in messages), pytrace=False)
