"""The app, warmed before its first visitor: ``streamlit run serve.py``.

The same app as ``streamlit run app.py``, served through Streamlit's ``st.App`` so that a startup hook
imports what the landing page needs (pandas, Altair, SciPy, the ``core`` modules; about 0.7 s on two
cores) before the server accepts connections. Started with ``streamlit run app.py`` the server imports
them during its first visitor's page, who waits for them.
"""
from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

import streamlit as st

log = logging.getLogger("serve")


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
