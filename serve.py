"""The app, warmed before its first visitor: ``streamlit run serve.py``.

The same app as ``streamlit run app.py``, served through Streamlit's ``st.App`` so that a startup hook
imports what the landing page needs (pandas, Altair, SciPy, the ``core`` modules; about 0.7 s on two
cores) before the server answers its first request (a connection made meanwhile waits). Started with
``streamlit run app.py`` the server imports them during its first visitor's page, who waits for them.

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


def warm_imports() -> None:
    """Import the modules the landing page (pages/ranking.py) and the shared helpers (app.py) use."""
    import app as _shared  # noqa: F401 (app.py's helpers: pandas, core.store, core.cards ...)
    from core import charts, ranking, store  # noqa: F401 (Altair, SciPy)


@asynccontextmanager
async def warm(_app: st.App) -> AsyncIterator[None]:
    try:
        await asyncio.to_thread(warm_imports)
    except Exception:  # a failed warm-up must not stop the server: the page then imports (and reports) it
        log.exception("warming the imports failed; the first visitor will import them")
    yield


app = st.App("app.py", lifespan=warm)
