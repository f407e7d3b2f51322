"""The app, warmed before its first visitor: ``streamlit run serve.py``.

The same app as ``streamlit run app.py``, served through Streamlit's ``st.App`` so that a startup hook,
before the server answers its first request (a connection made meanwhile waits), imports what the
landing page needs (pandas, Altair, SciPy, the ``core`` modules; about 0.7 s on two cores) and reads the
result store once, which brings its index (:mod:`core.store.index`) up to date: the first visitor's read
then parses only the index. Started with ``streamlit run app.py`` the first visitor's page waits for both.

Stopping differs from ``app.py``: uvicorn, which serves an ``st.App``, shuts the app down and then re-raises
the signal, so SIGTERM ends the process by that signal (status 143 in a shell) and Ctrl-C prints
"Aborted!" with status 1, where ``streamlit run app.py`` exits 0.
"""
from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import AsyncIterator

import streamlit as st
from streamlit.logger import get_logger

log = get_logger("serve")  # formatted like Streamlit's own lines (a plain logger has no handler here)


def console_format() -> None:
    """Give the root logger Streamlit's full line format (time, level, logger), where it has no handler yet: the
    library's warnings (core's loggers propagate to it) were bare text until open_clip's first module-level
    ``logging.info`` gave it Python's own handler ('WARNING:core.models:…') partway through the server's life,
    neither with a time."""
    import logging

    from streamlit.logger import DEFAULT_LOG_MESSAGE

    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    shown = logging.Formatter(DEFAULT_LOG_MESSAGE)  # time, level and logger: a host reads where a line came from
    shown.default_msec_format = "%s.%03d"  # as Streamlit writes its own lines' times
    handler.setFormatter(shown)
    root.addHandler(handler)


console_format()


def warm_up() -> None:
    """Import the modules the landing page (pages/ranking.py) and the shared helpers (app.py) use, and read
    the store the app reads, as it reads it, so the index is current (a fresh clone's, or one left behind
    by records added since)."""
    import app as shared  # app.py's helpers: pandas, core.store, core.cards ...
    from core import charts, ranking, store  # noqa: F401 (Altair, SciPy)

    runs = store.load_runs(list(shared.store_roots()), index_dir=store.default_index_dir())
    log.info("warmed up: %d runs in the store", len(runs))


@asynccontextmanager
async def warm(_app: st.App) -> AsyncIterator[None]:
    try:
        await asyncio.to_thread(warm_up)
    except Exception:  # a failed warm-up must not stop the server: the page then meets (and reports) it
        log.exception("warming up failed; the first visitor's page will import and read what it needs")
    yield


app = st.App("app.py", lifespan=warm)
