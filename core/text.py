"""Record-derived text made safe to show: no Markdown, links, images or HTML from data.

Streamlit renders Markdown in titles, captions, ``st.markdown``/``st.write`` and widget labels, so any
string that comes from a stored record or an upload must pass through :func:`plain` before it reaches
one of those. Tables (``st.dataframe``) and Altair tooltips do not render Markdown and need no escaping.
"""
from __future__ import annotations

import re

__all__ = ["plain"]

# Every character Markdown (CommonMark + GitHub extensions + Streamlit's :colour[...] and emoji
# shortcodes) can give meaning to, plus HTML's angle brackets and entities.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>&:$=\"'])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069]")
# GitHub-flavoured Markdown turns bare URLs and e-mail addresses into links even when their characters
# are escaped ("http\://x" still links). An invisible word joiner (U+2060) breaks each such pattern.
_AUTOLINK = re.compile(r"(?i)(\\:)(//)|(www)(\\\.)|(@)")
_JOINER = "\u2060"


def plain(text: object, *, max_chars: int = 200) -> str:
    """``text`` as a string that Markdown shows literally, on one line, at most ``max_chars`` long.

    Control and bidirectional-format characters are removed, newlines become spaces, every
    Markdown/HTML special character is backslash-escaped, and bare URLs and e-mail addresses get an
    invisible word joiner (U+2060) so GFM cannot autolink them; ``[x](http://e)``, ``<img>`` or
    ``http://e`` from a record renders as those characters, never as a link or an element.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    value = _CONTROL.sub("", str(text).replace("\r", " ").replace("\n", " ").replace("\t", " "))
    if len(value) > max_chars:
        value = value[: max_chars - 1] + "…"
    escaped = _SPECIAL.sub(r"\\\1", value)
    return _AUTOLINK.sub(lambda m: _JOINER.join(g for g in m.groups() if g is not None) + (
        _JOINER if m.group(5) else ""), escaped)
