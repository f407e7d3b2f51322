"""Record-derived text made safe to show: no Markdown, links, images or HTML from data.

Streamlit renders Markdown in titles, captions, ``st.markdown``/``st.write`` and widget labels, so any
string that comes from a stored record or an upload must pass through :func:`plain` before it reaches
one of those. Tables (``st.dataframe``) and Altair tooltips do not render Markdown and need no escaping.
"""
from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: What a text cell may not start with in a CSV others open: spreadsheets run it as a formula (uploads' class names
#: and submitted records refuse such text; CSV downloads of the store and the CSVs of jobs.forecast and
#: jobs.reproduce put an apostrophe before it: :func:`formula_safe`).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

__all__ = ["closest_name", "date_span", "did_you_mean", "distinct_labels", "fixed", "formatted", "formula_safe", "model_key",
           "model_pair", "option_labels", "option_text", "plain", "shorten", "signed", "unmatched_link_text", "utc_moments",
           "utc_text", "zeros_unsigned"]

# Every character Markdown (CommonMark + GitHub extensions + Streamlit's :colour[...] and emoji
# shortcodes) can give meaning to, plus HTML's angle brackets and entities.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>&:$=\"'])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069]")
# GitHub-flavoured Markdown turns bare URLs and e-mail addresses into links even when their characters
# are escaped ("http\://x" still links). An invisible word joiner (U+2060) breaks each such pattern.
_AUTOLINK = re.compile(r"(?i)(\\:)(//)|(www)(\\\.)|(@)")
_JOINER = "\u2060"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 run', '2 runs', '1,720 runs': ``n`` with its noun in the right number (``plural``: default
    ``noun + 's'``)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def signed(value: float, digits: int = 1) -> str:
    """``value`` with its sign and ``digits`` decimals ('+1.2', '-3.4'); a value that rounds to zero as '+0.0',
    as the heatmap writes it: Python wrote -0.04 (an out-of-domain change of almost nothing) as '-0.0'."""
    value = float(value)
    return f"{0.0 if round(value, digits) == 0 else value:+.{digits}f}"


def fixed(value: float, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals and a sign only when negative ('71.35', '-1.50'); a value that rounds to
    zero as '0.00', not '-0.00' (:func:`signed`'s rule, for numbers written without '+': accuracies, shares)."""
    return signed(value, digits).removeprefix("+")



def formatted(value: float, spec: str) -> str:
    """``value`` in the format ``spec`` ('+.1f', '.3g', '.1%', '+.4g'), a finite value written as zero ('-0.0',
    '-0', '-0.000e+00': a negated zero, or a tiny negative) with '+' where ``spec`` asks for a sign and none
    otherwise, as :func:`signed` and :func:`fixed` write it; a non-finite value as ``format`` writes it."""
    written = format(value, spec)
    if (written.startswith("-") and math.isfinite(value)
            and not any(digit in written.split("e")[0] for digit in "123456789")):
        written = ("+" if "+" in spec else "") + written[1:]
    return written

def zeros_unsigned(values: Any, digits: int) -> Any:
    """``values`` (a pandas Series) for a table column that shows ``digits`` decimals, each value that rounds to
    zero there made 0.0 (missing values kept): Streamlit's number formats read the sign before rounding, so a
    cell of -0.01 showed '-0.0' ('%+.1f') beside an interval written '[+0.0, +0.0]' (:func:`signed`)."""
    import pandas as pd  # here: the rest of this module needs no pandas

    numbers = pd.to_numeric(values, errors="coerce")  # an object column (None beside numbers) could not round
    return values.where(numbers.round(digits) != 0, 0.0)


def formula_safe(frame: Any) -> Any:
    """``frame`` (a pandas DataFrame) for a CSV others open: each *text* cell that starts with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (:data:`FORMULA_PREFIXES`) gets a leading apostrophe, so Excel or LibreOffice
    show it as text instead of running it (CSV injection). Numeric columns are untouched, so negative numbers stay
    numbers; a text value like ``-3`` comes back as ``'-3``. A copy: ``frame`` is left as it is."""
    import pandas as pd  # here: the rest of this module needs no pandas

    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or pd.api.types.is_string_dtype(safe[col]):
            safe[col] = safe[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return safe


def shorten(text: str, max_chars: int, *, keep_end: bool = False) -> str:
    """``text`` cut to at most ``max_chars`` characters, an ellipsis marking the cut: its start kept, or with
    ``keep_end`` its start and its end ('My custom adapter…variant beta', where two titles sharing a long start
    would both read 'My custom adapter with a lo…'). Raises ValueError for a ``max_chars`` below 1."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if len(text) <= max_chars:
        return text
    if not keep_end:
        return text[: max_chars - 1] + "…"
    tail = (max_chars - 1) // 2
    return text[: max_chars - 1 - tail] + "…" + (text[-tail:] if tail else "")


def plain(text: object, *, max_chars: int = 200) -> str:
    """``text`` as a string that Markdown shows literally, on one line, at most ``max_chars`` long.

    Control and bidirectional-format characters are removed, newlines become spaces, every
    Markdown/HTML special character is backslash-escaped, and bare URLs and e-mail addresses get an
    invisible word joiner (U+2060) so GFM cannot autolink them; ``[x](http://e)``, ``<img>`` or
    ``http://e`` from a record renders as those characters, never as a link or an element. Each run of
    right-to-left text (Hebrew, Arabic: :func:`_isolated`) becomes a first-strong isolate (U+2068 … U+2069):
    in a left-to-right sentence 'שיטה, +14.7 in-domain' was drawn '14.7+ ,שיטה in-domain'.
    """
    value = shorten(_CONTROL.sub("", str(text).replace("\r", " ").replace("\n", " ").replace("\t", " ")), max_chars)
    escaped = _SPECIAL.sub(r"\\\1", value)
    shown = _AUTOLINK.sub(lambda m: _JOINER.join(g for g in m.groups() if g is not None) + (
        _JOINER if m.group(5) else ""), escaped)
    return _isolated(shown)


def _isolated(text: str) -> str:
    """``text`` with each run of right-to-left text, from a right-to-left letter to the last one before a left-to-right
    letter (the spaces, digits and signs between them included), between U+2068 and U+2069: the run is laid out on
    its own, and the signs and numbers around it read left to right. Text without right-to-left letters is unchanged."""
    runs, start, end = [], None, 0
    for i, char in enumerate(text):
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            start, end = i if start is None else start, i + 1
        elif kind == "L" and start is not None:
            runs.append((start, end))
            start = None
    if start is not None:
        runs.append((start, end))
    for start, end in reversed(runs):
        text = f"{text[:start]}\u2068{text[start:end]}\u2069{text[end:]}"
    return text


def utc_moments(times: Any) -> Any:
    """Records' ``created_at`` (ISO-8601 text with any UTC offset: 'Z', '+05:30', '-08:00') as a pandas Series of
    UTC moments, NaT where missing or unreadable: ordered and shown as the instants they name, not as text."""
    from datetime import datetime, timezone

    import numpy as np
    import pandas as pd

    texts = pd.Series(times, dtype=object)
    moments = pd.to_datetime(texts, utc=True, errors="coerce", format="ISO8601")
    for i in [i for i, missing in enumerate(moments.isna()) if missing]:
        # pandas reads no offset with seconds ('+05:30:15'), which the schema allows and Python reads; pandas
        # before 3 reads no moment outside 1677-2262 (its nanoseconds), nor Python one outside years 1-9999
        try:
            moment = datetime.fromisoformat(texts.iloc[i])
        except (TypeError, ValueError):  # missing, or not a time
            continue
        if moment.tzinfo is not None:
            if moments.dt.tz is None:  # all NaT so far: pandas before 3 gives them no time zone
                moments = moments.dt.tz_localize(timezone.utc).copy()
            if moments.dt.unit != "us":  # the schema's created_at has at most microseconds: none is lost
                moments = moments.astype("datetime64[us, UTC]")
            # in numpy's microseconds, which hold '0001-01-01T00:00:00+05:30' (year 0 in UTC) and year 10000
            utc = np.datetime64(moment.replace(tzinfo=None), "us") - np.timedelta64(moment.utcoffset(), "us")
            moments.iloc[i] = pd.Timestamp(utc).tz_localize(timezone.utc)
    return moments


def utc_text(moment: Any, *, seconds: bool = True) -> str:
    """A moment of :func:`utc_moments` as 'YYYY-MM-DD HH:MM:SS' (``seconds`` False: 'YYYY-MM-DD'), from its parts:
    a created_at the schema allows can name, in UTC, a moment outside Python's years 1-9999
    ('0001-01-01T00:00:00+05:30' is in year 0), where pandas' strftime raises."""
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    return f"{day} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}" if seconds else day


def date_span(times: Any) -> str:
    """The UTC dates of the first and last of ``times`` (records' created_at), named: '2026-12-05 to 2026-12-06
    (UTC)', or one date; '' when none is a time."""
    moments = utc_moments(times).dropna()
    if moments.empty:
        return ""
    first, last = (utc_text(t, seconds=False) for t in (moments.min(), moments.max()))
    return f"{first} (UTC)" if first == last else f"{first} to {last} (UTC)"


def distinct_labels(labels: Sequence[str], tags: Sequence[str] | None = None) -> list[str]:
    """``labels`` made pairwise distinct, for a select widget (Streamlit maps a repeated option label to
    the last option that has it, so the others could never be chosen).

    A label shared by several entries gets `` · <tag>`` (``tags``: one per label, e.g. a run id) or,
    without tags or where that is still not unique, `` (2)``, `` (3)``… in order. A unique label is
    returned unchanged. Labels are compared as a screen draws them: two that differ only in Unicode form ('Café'
    composed and decomposed, :func:`_drawn`) are one label. Raises ValueError when ``tags`` has another length than
    ``labels``.
    """
    labels = [str(label) for label in labels]
    if tags is not None and len(tags) != len(labels):
        raise ValueError(f"tags has {len(tags)} entries for {len(labels)} labels")
    counts = Counter(map(_drawn, labels))
    out = [label if counts[_drawn(label)] == 1 else "" for label in labels]  # unique labels first: kept as they are
    used = {_drawn(label) for label in out if label}
    for i, label in enumerate(labels):
        if counts[_drawn(label)] > 1:
            base = f"{label} · {tags[i]}" if tags is not None else label
            candidate, n = base, 1
            while _drawn(candidate) in used:
                n += 1
                candidate = f"{base} ({n})"
            used.add(_drawn(candidate))
            out[i] = candidate
    return out


def _drawn(label: str) -> str:
    """``label`` as a screen draws it: its composed Unicode form (NFC), the same for 'Café' written with 'é' or with
    'e' and a combining accent."""
    return unicodedata.normalize("NFC", label)


# Widget options are shown verbatim (no Markdown), so they lose control and bidi characters, not escape them.
_OPTION_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_KEY_UNESCAPE = re.compile("%(25|40)")


def option_text(value: object, max_chars: int = 120) -> str:
    """Record-derived text for a select/multiselect *option*: Streamlit 1.67 shows options verbatim
    (no Markdown; a backslash from :func:`plain` would show), so control and bidi characters
    are removed and the text shortened, nothing escaped. Labels, captions and Markdown use ``plain``."""
    text = _OPTION_CONTROL.sub("", " ".join(str(value).split()))
    return shorten(text, max_chars)


def option_labels(values: Iterable[Any], text: Callable[[Any], object] = str, max_chars: int = 120,
                  tags: Sequence[str] | None = None) -> dict[Any, str]:
    """value -> its option label (:func:`option_text` of ``text(value)``), labels made distinct
    (:func:`distinct_labels`): a select widget maps a repeated label to its last option. ``values``: any
    iterable, read once (a dict gives its keys)."""
    values = list(values)
    return dict(zip(values, distinct_labels([option_text(text(v), max_chars) for v in values], tags), strict=True))


def model_key(model: str, pretrained: str) -> str:
    """'model@pretrained', one key per pair: a '@' or '%' inside a name (the schema allows both, e.g. a tag
    'laion@2b') is %-escaped, so :func:`model_pair` splits the key back at its one bare '@'."""
    def escape(name: str) -> str:  # '%' first, so the '%' of '%40' is not escaped again
        return str(name).replace("%", "%25").replace("@", "%40")
    return f"{escape(model)}@{escape(pretrained)}"


def model_pair(key: str) -> tuple[str, str]:
    """The (model, pretrained) of a :func:`model_key`."""
    model, _, pretrained = key.partition("@")
    return _unescape_name(model), _unescape_name(pretrained)


def _unescape_name(text: str) -> str:
    return _KEY_UNESCAPE.sub(lambda m: "%" if m.group(1) == "25" else "@", text)  # one pass: '%2540' -> '%40'



def unmatched_link_text(what: str, asked: Sequence[str], instead: str, chosen_before: bool = False) -> str:
    """What a page says when a link (its URL) asks for ``what`` values (``asked``) that are none of the page's
    options (a model, dataset or run the store does not have), and what it shows ``instead``. Streamlit drops
    such values silently, so a shared link showed another model's numbers, or every dataset, as if asked for.
    ``chosen_before``: the visitor chose them on the page, whose options have changed since (no link's)."""
    shown = [plain(v, max_chars=120).strip() or "(a blank or unprintable value)" for v in asked[:5]]  # ?x=%00: not ''
    names = ", ".join(shown) + (f" and {len(asked) - 5} more" if len(asked) > 5 else "")
    if chosen_before:
        return (f"The {plain(what)} {names} chosen before {'is' if len(asked) == 1 else 'are'} not among this page's "
                f"choices now: {plain(instead)}.")
    return f"This link asks for the {plain(what)} {names}, which is not among this page's choices: {plain(instead)}."


def closest_name(name: object, known: Iterable[object]) -> str | None:
    """The one of ``known`` closest to a misspelt ``name`` (case ignored: 'clip' finds 'CLIP'), None when none is
    close (difflib's ratio below 0.6)."""
    names = {str(k).casefold(): str(k) for k in reversed(list(known))}  # the first spelled of two that fold alike
    typed = str(name).casefold()
    close = [typed] if typed in names else difflib.get_close_matches(typed, list(names), n=1)
    return names[close[0]] if close else None


def did_you_mean(name: object, known: Iterable[object]) -> str:
    """`` (did you mean 'x'?)`` for a misspelt ``name`` close to one of ``known`` (a registry's names, a config's
    keys; :func:`closest_name`), else "": an unknown-name error adds it after the name, then lists the known ones;
    the jobs' options say it alike (``jobs.cli.did_you_mean``)."""
    close = closest_name(name, known)
    return f" (did you mean {close!r}?)" if close is not None else ""
