"""What every chart of :mod:`core.charts` shares: method colours, shapes and titles, axis titles, tooltip entries, the
random-weights note, and the frame checks."""
from __future__ import annotations

import colorsys
import logging
import textwrap
from typing import Any

import altair as alt
import pandas as pd

from core import cards, ranking
from core.cards import method_titles  # the tables' titles: one label per colour, 'LoRA · Lora'

log = logging.getLogger(__name__)

#: Method colours: 21 that each keep at least 3:1 contrast on a white page (WCAG's bar for graphics), in three
#: blocks of 7 (:data:`METHOD_BLOCK`), one per :data:`METHOD_SHAPES` shape. Within a block every two colours stay
#: at least 18 apart (CIEDE2000) for normal vision and as protanopes and deuteranopes see them (simulated:
#: :mod:`core.charts.colour_vision`), so up to 7 methods are told apart by colour alone and more by colour within a
#: shape; any two of the 21 are at least 13 apart for normal vision. The 20 hues before (worst pair 5.7 for
#: normal vision) had pairs under 1 as a deuteranope sees them. Chosen by a search over sRGB for the widest smallest
#: difference, each colour also 18 from :data:`BASELINE_COLOUR`.
METHOD_PALETTE = ("#dd7700", "#0000ff", "#559999", "#005500", "#bb4455", "#aa77ff", "#990066",
                  "#cc00ff", "#ff4400", "#889977", "#663388", "#882200", "#885566", "#aa88aa",
                  "#999900", "#6699bb", "#444466", "#666611", "#336655", "#bb8888", "#2255ee")
#: The marks' shapes, one per block of :data:`METHOD_BLOCK` colours: the methods past the first block differ from
#: those before them in shape as well (the trade-off chart draws them so; its Pareto methods are ringed).
METHOD_SHAPES = ("circle", "square", "triangle-up")
METHOD_BLOCK = 7
BASELINE_COLOUR = "#222222"
#: The project's fine-tuning methods, each at its own place of :data:`METHOD_PALETTE` (and so its shape): the same
#: colour on every chart and page, whichever other methods are drawn. Taken by name order of the methods drawn,
#: LoRA was one colour on a world-v1 model's ranking and another on a world-v2 model's or on the forecast (other
#: methods beside it), and a user's new method moved the colour of every method named after it. Other names take
#: the places left (:func:`method_colours`).
METHOD_COLOUR_ORDER = ("full_ft", "bitfit", "attention", "lora", "clip_adapter", "linear_probe", "orthogonal",
                       "clip_cite", "wise_ft", "peft_lora", "peft_dora", "peft_oft", "peft_boft", "peft_ia3",
                       "peft_vera", "peft_loha", "peft_lokr", "peft_hra", "peft_ln_tuning", "peft")
_PLACES = {name: place for place, name in enumerate(METHOD_COLOUR_ORDER)}
#: Axis and legend text: Streamlit's chart theme writes it in #808495, 3.7:1 on white, under WCAG AA's 4.5:1 for
#: text; this grey keeps it quieter than the titles at 6.3:1.
AXIS_INK = "#5C5F6E"


def readable(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """``chart`` with its axis and legend labels and titles in :data:`AXIS_INK`, as a page shows it: a top-level
    setting, which Streamlit's chart theme leaves in place (and which a chart can carry only once it is no longer
    combined with others, so the builders leave it to the page)."""
    # as configure_axis(...).configure_legend(...) set them, on one copy: each copy of a layer chart copies its
    # layers (~10 ms a panel)
    out = chart.copy(deep=["config"])
    if out.config is alt.Undefined:
        out.config = alt.Config()
    out.config["axis"] = alt.AxisConfig(labelColor=AXIS_INK, titleColor=AXIS_INK)
    out.config["legend"] = alt.LegendConfig(labelColor=AXIS_INK, titleColor=AXIS_INK)
    return out


def _middle_cut(chars: int) -> str:
    """A Vega label expression that writes a label longer than ``chars`` characters as its start, '…' and its end.
    Cut at the end (a legend's or axis's ``labelLimit``), two long method titles that share their start ('My custom
    adapter with a long name variant alpha', '… beta') were one 'My custom adapter with a long …' twice."""
    return f"truncate(datum.label, {int(chars)}, 'center')"


def axis_title(column: str) -> str:
    """The title of an axis showing ``column``, in the words the pages and tables use, with its unit: an
    outcome as :data:`core.ranking.OUTCOME_TITLES` names it, any other zero-shot score as
    :func:`core.cards.predictor_title` does (the compare panels once said "ID gain" beside "in-domain gain";
    an axis of ft_acc or a transferability score read its key)."""
    return ranking.OUTCOME_TITLES.get(column) or cards.predictor_title(column)


#: d3 formats of tooltip values, by column (default :data:`TOOLTIP_FORMAT`): none has a '+' flag, with which
#: d3 writes a negative zero or a tiny negative as '−0.00'.
TOOLTIP_FORMATS = {"iimm": ".3f", "trainable_params": ",.0f", "wall_time_s": ",.1f", "peak_mb": ",.0f",
                   "n_seeds": ",.0f", "n_datasets": ",.0f"}  # counts: whole numbers
TOOLTIP_FORMAT = ",.2f"


def _tip(field: str, title: str, kind: str = "Q") -> alt.Tooltip:
    """A tooltip entry named in words (``title``; the column's key read 'id_gain', 'n_seeds'), a number
    (``kind`` "Q") formatted by :data:`TOOLTIP_FORMATS`."""
    if kind != "Q":
        return alt.Tooltip(f"{field}:{kind}", title=title)
    return alt.Tooltip(f"{field}:Q", title=title, format=TOOLTIP_FORMATS.get(field, TOOLTIP_FORMAT))


def _spoken(data: pd.DataFrame, tips: list[alt.Tooltip], extra: list[list[str]] | None = None) -> list[str]:
    """Each row of ``data`` in words, as its tooltip ``tips`` write it ('method: LoRA; in-domain gain (points):
    12.35; …'; a number in its tooltip's format, none as 'no value'), then the row's ``extra`` phrases: a mark's
    description (encoded as ``description``), which Vega makes the mark's aria-label. Without one, a screen reader
    read each point as its raw fields ('method_title: CLIP-CITE; id_gain_hi: 27.9664591753')."""
    columns = []  # each entry's words for every row, a column at a time (row by row took ~25 ms per 300 rows)
    for entry in (tip.to_dict() for tip in tips):
        name = entry.get("title", entry["field"])
        values = data[entry["field"]].tolist() if entry["field"] in data.columns else [None] * len(data)
        if entry["type"] == "quantitative":
            fmt = entry.get("format", TOOLTIP_FORMAT)
            numeric = entry["field"] in data.columns and pd.api.types.is_numeric_dtype(data[entry["field"]])
            values = [_number_words(v if numeric else pd.to_numeric(v, errors="coerce"), fmt) for v in values]
        columns.append([f"{name}: {value}" for value in values])
    spoken = []
    for i, parts in enumerate(zip(*columns, strict=True) if columns else [()] * len(data)):
        spoken.append("; ".join([*parts, *(extra[i] if extra else [])]))
    return spoken


def _number_words(number: Any, fmt: str) -> str:
    """A number as a tooltip of format ``fmt`` writes it, 'no value' for none; never '-0.00'."""
    value = "no value" if pd.isna(number) else format(float(number), fmt)
    return value[1:] if value.startswith("-") and not value.strip("-0.,") else value  # '-0.00': '0.00'


#: The line a chart's subtitle starts with when its numbers come from an untrained network (the pages warn
#: above the chart, but a chart saved from its menu, or read on its own, said nothing).
RANDOM_WEIGHTS_NOTE = ("RANDOM WEIGHTS: an untrained network; these numbers describe random weights, "
                       "not a pretrained model")


def _untrained(frame: pd.DataFrame, random_weights: bool | None) -> bool:
    """Whether a chart of ``frame`` carries :data:`RANDOM_WEIGHTS_NOTE`: as the caller says, or (None) when the
    frame's (model, pretrained) columns name a model that :func:`core.cards.untrained_models` calls untrained."""
    if random_weights is not None:
        return bool(random_weights)
    return {"model", "pretrained"} <= set(frame.columns) and bool(cards.untrained_models(frame))


#: Longest subtitle line of a chart (characters): Vega cuts a title line at the chart's width, mid-word, and
#: Streamlit fits charts to their column: at 800 px the ranking's subtitle read '... on both gain and f…', the
#: forecast's 304 px IIMM chart 'bands: 95% conf…'. 62 characters take about 365 px of the theme's subtitle
#: font (the 468 px chart of an 800 px page); a clause broken off is shorter (the 304 px chart's are).
SUBTITLE_CHARS = 62


def _wrapped(line: str) -> list[str]:
    """``line`` if it is at most :data:`SUBTITLE_CHARS` long, else broken after each clause's ';' and wrapped
    between words (a longer word alone): joined with spaces the lines are ``line`` again."""
    if len(line) <= SUBTITLE_CHARS:
        return [line]
    clauses = line.split("; ")
    clauses = [c + ";" for c in clauses[:-1]] + clauses[-1:]
    return [part for clause in clauses for part in textwrap.wrap(clause, SUBTITLE_CHARS, break_long_words=False,
                                                                 break_on_hyphens=False) or [clause]]


def _subtitle(lines: Any, untrained: bool) -> str | list[str] | None:
    """A subtitle (``lines``: one string, a list of them, or None) led by :data:`RANDOM_WEIGHTS_NOTE` when
    ``untrained``, each line wrapped by :func:`_wrapped`: one line as a string, several as a list, none as None."""
    lines = [] if lines is None else [lines] if isinstance(lines, str) else list(lines)
    lines = [part for line in ([RANDOM_WEIGHTS_NOTE, *lines] if untrained else lines) for part in _wrapped(line)]
    return None if not lines else lines[0] if len(lines) == 1 else lines


def _description(title: str, subtitle: str | list[str] | None, *facts: str) -> str:
    """A chart's text alternative, its Vega-Lite ``description`` (Vega makes it the chart's aria-label, where a screen
    reader announced every chart as "Vega visualization"): its title, its subtitle's lines joined again, and
    ``facts`` (what it shows), as sentences."""
    lines = [] if subtitle is None else [subtitle] if isinstance(subtitle, str) else list(subtitle)
    parts = [title, " ".join(lines), *facts]
    return " ".join(part.strip().rstrip(".") + "." for part in parts if part and part.strip())


def _fits():
    """core.forecast, imported on first use: it pulls in scipy.stats, which the ranking's charts never need."""
    from core import forecast

    return forecast


def _require(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"the runs frame has no column(s) {missing}")


def _contrast_on_white(colour: str) -> float:
    """WCAG contrast ratio of a #rrggbb colour against white."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 1.05 / (0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2] + 0.05)


def extra_colours(n: int) -> list[str]:
    """``n`` colours past :data:`METHOD_PALETTE`, each distinct from it and from the others: hues a golden
    angle apart (neighbours differ most), darkened until they keep 3:1 contrast on white."""
    taken, out = set(METHOD_PALETTE) | {BASELINE_COLOUR}, []
    i = 0
    while len(out) < n:
        hue, lightness = (0.07 + i * 0.381966) % 1.0, 0.42
        while True:
            r, g, b = colorsys.hls_to_rgb(hue, lightness, 0.65)
            colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
            if _contrast_on_white(colour) >= 3 or lightness < 0.1:
                break
            lightness -= 0.02
        if colour not in taken:
            taken.add(colour)
            out.append(colour)
        i += 1
    return out


def _tuned_in_order(methods: Any) -> tuple[list[str], set[str]]:
    """The distinct method names of ``methods``, baselines (zero-shot) apart: the others in name order, and the
    baselines."""
    names = sorted({str(m) for m in methods})
    baseline = {m for m in names if cards.method_card(m).baseline}
    return [m for m in names if m not in baseline], baseline


def _slots(ordered: list[str]) -> dict[str, int]:
    """Palette places of the tuned methods ``ordered``: the project's their :data:`METHOD_COLOUR_ORDER` place;
    others (a user's method, or a record's unknown name), in name order, the places none of the project's holds,
    then those of the project's methods not drawn here (a store of only its own methods keeps the whole palette),
    then places past the palette."""
    drawn = {_PLACES[m] for m in ordered if m in _PLACES}
    free = [k for k in range(len(METHOD_PALETTE)) if k not in _PLACES.values()]
    free += [k for k in sorted(_PLACES.values()) if k not in drawn]
    others = [m for m in ordered if m not in _PLACES]
    free += range(len(METHOD_PALETTE), len(METHOD_PALETTE) + max(0, len(others) - len(free)))
    return {m: _PLACES[m] for m in ordered if m in _PLACES} | dict(zip(others, free))


def method_colours(methods: Any) -> dict[str, str]:
    """One colour per distinct method name in ``methods`` (any iterable of str): the project's methods their own
    place of :data:`METHOD_PALETTE` (:data:`METHOD_COLOUR_ORDER`), the same on every chart and page whichever other
    methods are drawn; other names the places left, in name order; baselines (zero-shot)
    :data:`BASELINE_COLOUR`. Past the palette's 21 places, :func:`extra_colours` (the palette repeated, so two
    methods' points and legend entries were one colour); they are harder to tell apart (logged)."""
    ordered, baseline = _tuned_in_order(methods)
    slots = _slots(ordered)
    palette = list(METHOD_PALETTE)
    needed = max(slots.values(), default=-1) + 1
    if needed > len(palette):
        log.warning("%d methods: %d colours past the %d-colour palette are close to others; read the labels",
                    len(ordered), needed - len(palette), len(palette))
        palette += extra_colours(needed - len(palette))
    return {m: palette[slots[m]] for m in ordered} | {m: BASELINE_COLOUR for m in baseline}


def method_shapes(methods: Any) -> dict[str, str]:
    """One mark shape per distinct method name in ``methods``, by the palette place :func:`method_colours` gives
    it: the places of the palette's first block of :data:`METHOD_BLOCK` colours (and baselines) circles, the next
    block squares, the third triangles, then round again. Two methods of one shape differ in colour as people with
    red-green colour-vision deficiency see it too (:data:`METHOD_PALETTE`)."""
    ordered, baseline = _tuned_in_order(methods)
    shapes = {m: METHOD_SHAPES[i // METHOD_BLOCK % len(METHOD_SHAPES)] for m, i in _slots(ordered).items()}
    return shapes | {m: METHOD_SHAPES[0] for m in baseline}


def _colour_scale(labels: dict[str, str], colours: dict[str, str]) -> alt.Scale:
    """The colour scale that draws each method's label (method -> label) in its colour (method -> colour); also a
    shape scale, given shapes (method -> :func:`method_shapes`' shape)."""
    return alt.Scale(domain=list(labels.values()), range=[colours[m] for m in labels])
