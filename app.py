"""The app: a ranking of fine-tuning methods, the runs behind it, and a forecast for your dataset.

    streamlit run app.py

Besides the navigation, this module holds the Streamlit helpers the pages share (the cached store, the
model picker, the URL state a link carries) and two views too long for their pages (a run's details, the
Compare page's shipped predictor tables), so each page stays a thin script; the forecast page's parts are
in forecast_ui.py.

Deep links. Streamlit discovers the ``pages/`` folder next to this script and, until some run on
the server has executed ``st.navigation``, serves a deep link such as ``/compare`` through that
folder's automatic navigation (file names as titles, no app layout). Every page therefore calls
:func:`ensure_navigation` first: in that mode it declares this app's navigation (which switches
the automatic mode off for the whole server, as ``st.navigation`` is documented to do) and reruns
the same URL, which then enters through :func:`main` like every later request.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from core import cards, garbage, store
from core.cards import model_labels, model_option, model_options  # noqa: F401 (pages use them from app)
from core.text import (model_key, model_pair, option_labels, option_text, plain,  # noqa: F401 (pages)
                       unmatched_link_text, zeros_unsigned)

log = logging.getLogger("app")
ICON = "📈"  # an emoji favicon is drawn inline by the browser: no icon fetched from a font server
URL = "query-params"  # widgets bound to the URL share a view: st.multiselect(..., bind=URL)


#: Where the landing page is: at the root, as Streamlit serves the default page.
RANKING = "pages/ranking.py"


def _to_landing() -> None:
    """The hidden page at ``/ranking`` (a path a visitor guesses or kept from a link): the ranking, at ``/``, with
    the link's query (its view). Without it Streamlit put "Page not found" over the landing page."""
    st.switch_page(RANKING, query_params={k: st.query_params.get_all(k) for k in st.query_params})


def pages() -> list:
    return [
        # served at / (its url_path only reserves a name: Streamlit answers none there), leaving /ranking free
        st.Page(RANKING, title="Ranking", icon=":material/leaderboard:", default=True, url_path="landing"),
        st.Page("pages/matrix.py", title="Per dataset", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare methods", icon=":material/scatter_plot:"),
        st.Page("pages/runs.py", title="All runs", icon=":material/table_rows:"),
        st.Page("pages/forecast.py", title="Forecast your dataset", icon=":material/online_prediction:"),
        st.Page("pages/cards.py", title="Methods and models", icon=":material/badge:"),
        st.Page("pages/submit.py", title="Submit runs", icon=":material/upload:"),
        st.Page("pages/about.py", title="About", icon=":material/info:"),
        st.Page(_to_landing, title="Ranking", url_path="ranking", visibility="hidden"),
    ]


def _automatic_pages_mode() -> bool:
    """True while Streamlit serves ``pages/`` through its automatic (legacy) navigation."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without that mode
        return False
    return bool(getattr(PagesManager, "uses_pages_directory", False))


def ensure_navigation() -> None:
    """Call first in every page: a run in the automatic pages/ mode switches to this app's navigation; frees
    earlier runs' reference cycles once they hold enough memory (:mod:`core.garbage`)."""
    garbage.collect_if_grown()
    if _automatic_pages_mode():
        st.navigation(pages())
        st.rerun()  # same URL path -> same page hash -> this time through main()


def main() -> None:
    st.set_page_config(page_title="IIMM fine-tuning leaderboard", page_icon=ICON, layout="wide")
    st.navigation(pages()).run()


# ------------------------------------------------------------------------------ shared page helpers
def store_roots() -> tuple[str, ...]:
    return tuple(str(r) for r in store.default_roots())


# One read-only frame per store, held by reference (copying it out of cache_data on every rerun
# costs more than any query); everything derived from it is cache_data.
@st.cache_resource(ttl=30, max_entries=4, show_spinner="Reading the result store…")
def _store_runs(roots: tuple[str, ...]) -> pd.DataFrame:
    # read once per store; both views below derive from it. The index spares a restarted server
    # re-reading every unchanged record (core.store.index).
    runs = store.load_runs(list(roots), index_dir=store.default_index_dir())
    runs.attrs[_VERSION] = time.monotonic_ns()  # a new read, a new version: see store_version
    return runs


_VERSION = "store_version"


def store_version(roots: tuple[str, ...]) -> int:
    """Which read of the store the pages see now: every cache derived from the runs takes it as an
    argument, so a new read (at most 30 s after a new record) reaches every table at once. Caches
    keyed by the roots alone each kept their own 30 s, stacked: a new run took up to 90 s to show."""
    return _store_runs(roots).attrs[_VERSION]


# Its own ttl: keyed by the version, an entry outlives its read, and where no run is unverified it *is* the
# read's frame (core.store.verified_runs), so without one up to 8 old reads of the whole store stayed held.
@st.cache_resource(ttl=30, max_entries=8)
def _verified_runs(roots: tuple[str, ...], version: int, _runs: pd.DataFrame) -> pd.DataFrame:
    # ``_runs`` (not hashed: the leading underscore) is the read ``version`` names, so an entry never holds
    # a newer read under an older version, and the store's cache is not asked twice
    return store.verified_runs(_runs)


def load_runs(roots: tuple[str, ...], include_submitted: bool = False) -> pd.DataFrame:
    """The store's runs; unverified submissions only when asked for (they never replace a measured run)."""
    runs = _store_runs(roots)
    return runs if include_submitted else _verified_runs(roots, runs.attrs[_VERSION], runs)


def no_runs_text(roots: tuple[str, ...], advice: str) -> str:
    """What a page with no run to show says (:func:`core.store.no_runs_text`: also when only submissions are
    left out)."""
    return store.no_runs_text(load_runs(roots, True), advice)


def forecast_runs() -> pd.DataFrame:
    """The runs a forecast may fit on: the whole store less unverified submissions."""
    return load_runs(store_roots())


def source_controls(roots: tuple[str, ...]) -> bool:
    """Name the records the store skipped, and offer unverified submissions (a URL-bound toggle, shown
    only when there are some). Returns whether to include them."""
    every = load_runs(roots, True)
    if skipped := store.skipped_summary(store.skipped_records(every), roots=roots):  # no server path
        st.warning(plain(skipped, max_chars=600))
    submitted = store.submitted_count(every)
    return bool(submitted) and st.toggle(f"include {submitted} submitted, unverified runs",
                                         key="submitted", bind=URL)


def pick_model(runs: pd.DataFrame, container=st, fit: bool = False) -> tuple[str, str]:
    """A model selectbox bound to the URL (``?model=arch@tag``); default: the model with most ok runs. ``fit``: as
    :func:`link_select`'s."""
    labels = model_labels(runs)
    return model_pair(link_select(container, "model", labels, "model", fit=fit) or next(iter(labels)))


#: What :func:`fitted_width` allows a select box: 14 px Source Sans, as Streamlit writes a chosen option, averages
#: 6.3 px a character on this app's labels in Chromium (7.2 leaves room for wide letters); the padding and the arrow
#: take 34 px; no narrower than its label needs, no wider than half a wide page.
SELECT_CHAR_PX, SELECT_DECOR_PX, SELECT_MIN_PX, SELECT_MAX_PX = 7.2, 44, 160, 560


def fitted_width(labels) -> int:
    """The width (px) of a select box that shows the longest of ``labels`` whole (clipped past SELECT_MAX_PX)."""
    longest = max((len(str(label)) for label in labels), default=0)
    return max(SELECT_MIN_PX, min(SELECT_MAX_PX, math.ceil(longest * SELECT_CHAR_PX) + SELECT_DECOR_PX))


def _unmatched(key: str, labels: dict, kept) -> tuple[list[str], bool]:
    """The URL's values of ``key`` that are none of the option ``labels`` (read before the widget drops them), and
    whether the widget was on the page before (its options changed: another model or filter picked); it is then set to
    ``kept(its value)``, taking them out of the URL, where every later rerun warned of them as a link's."""
    asked = st.query_params.get_all(key)
    offered = set(labels.values()) if asked else set()  # built once, and only when the link asks for something
    missed = [v for v in asked if v not in offered]
    if before := bool(missed) and key in st.session_state:
        st.session_state[key] = kept(st.session_state[key])
    return missed, before


def link_select(container, what: str, labels: dict, key: str, none_shown: str = "nothing is chosen",
                fit: bool = False, **kwargs):
    """A selectbox of ``labels`` (option -> label) bound to the URL that warns when the link asks for an option
    it lacks (Streamlit shows the default instead, silently); ``none_shown``: what no choice shows. ``fit``: as wide
    as its longest label (:func:`fitted_width`), for a row that wraps (``st.container(horizontal=True)``): in a
    column of a narrow page a select box cut its chosen option (at 800 px it showed 89 px of the rank's 245)."""
    index = kwargs.get("index", 0)
    if fit:
        kwargs["width"] = fitted_width(labels.values())
    default = None if index is None or not labels else list(labels)[index]  # what the widget falls back to
    missed, before = _unmatched(key, labels, lambda v: v if v in labels else default)
    choice = container.selectbox(what, list(labels), key=key, bind=URL, format_func=labels.get, **kwargs)
    if missed:
        shown = none_shown if choice is None else f"showing {labels[choice]}"
        st.warning(unmatched_link_text(what, missed, shown, before))
    return choice


def link_multiselect(container, label: str, labels: dict, key: str, what: str, **kwargs) -> list:
    """:func:`link_select` for a filter (none chosen = every ``what``); ``kwargs``: the multiselect's (``width``)."""
    missed, before = _unmatched(key, labels, lambda v: [c for c in v if c in labels])
    chosen = container.multiselect(label, list(labels), key=key, bind=URL, format_func=labels.get, **kwargs)
    if missed:
        st.warning(unmatched_link_text(what, missed, "filtering on the others" if chosen else f"showing every {what}",
                                       chosen_before=before))
    return chosen


def untrained(model: str, pretrained: str, runs: pd.DataFrame | None = None) -> bool:
    """Whether the numbers of (model, pretrained) come from random weights: the registry says so or (``runs``)
    any of this model's records does; the charts say it as :func:`model_notice` does."""
    mine = None if runs is None else runs.loc[(runs["model"] == model) & (runs["pretrained"] == pretrained),
                                              [c for c in ("model", "pretrained", "random_weights") if c in runs]]
    return cards.model_card(model, pretrained).random_weights or (
        mine is not None and (model, pretrained) in cards.untrained_models(mine))


def model_notice(model: str, pretrained: str, runs: pd.DataFrame | None = None) -> bool:
    """A warning under the title when the numbers come from a toy or an untrained model (``runs``: also
    when any of this model's records says it had random weights); returns :func:`untrained`, which the page's
    charts and tables then say too (one filter of the runs per view, not two)."""
    card = cards.model_card(model, pretrained)
    if is_untrained := untrained(model, pretrained, runs):
        st.warning(f"{plain(card.title)}: an untrained network. Its numbers describe random weights.")
    elif card.toy:  # a world-v2 model's numbers are not evidence on the study's claim (README, World v2)
        st.info(f"**{plain(card.title)} is a toy model**: a tiny CLIP pretrained offline on this project's "
                "generated world of shapes, textures, letters and charts. Its results show how the method "
                "works; they are not results of real CLIP models. Add your own runs to rank real models."
                + (" " + cards.WORLD_V2_FAILED if cards.world_v2(model, pretrained) else ""))
    return is_untrained


def interval_ends(rows: pd.DataFrame, column: str) -> dict[str, pd.Series]:
    """The ends of ``column``'s 95 % interval (``rows``' ``<column>_lo`` and ``_hi``) for a table: numbers, so a click
    on a header sorts them by value (the interval as one text, '[-10.0, +3.0]', sorted next to '[-1.0, +3.0]');
    both missing where either end is not a finite number (one dataset), each that rounds to 0 written '+0.0'
    (:func:`core.text.zeros_unsigned`). Shown by :func:`interval_config`'s columns."""
    ends = {f"{column}_{end}": pd.to_numeric(rows[f"{column}_{end}"], errors="coerce") for end in ("lo", "hi")}
    defined = pd.concat([v.abs() < float("inf") for v in ends.values()], axis=1).all(axis=1)
    return {name: zeros_unsigned(values.where(defined), 1) for name, values in ends.items()}


def interval_config(rows: pd.DataFrame, column: str, interval: str, **kwargs) -> dict:
    """The two number columns of :func:`interval_ends` of ``rows``, headed 'low' and 'high' (beside the number they
    bound), one decimal with its sign, their help naming the ``interval`` ('the in-domain gain's 95 % interval over
    datasets'); both hidden where no row has one (one dataset: two columns of 'None'). ``kwargs``: each column's
    (``width``)."""
    if not any(values.notna().any() for values in interval_ends(rows, column).values()):
        return {f"{column}_lo": None, f"{column}_hi": None}
    return {f"{column}_{end}": st.column_config.NumberColumn(end_name, format="%+.1f",
                                                             help=f"{side} end of {interval}", **kwargs)
            for end, end_name, side in (("lo", "low", "lower"), ("hi", "high", "upper"))}


@st.cache_data(ttl=60)
def _read_csv(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def shipped_csv(path: str | Path) -> pd.DataFrame:
    """A table a job wrote (e.g. ``predictors.csv``), read once per version of the file."""
    return _read_csv(str(path), Path(path).stat().st_mtime)


def run_details_view(rec: dict, label: str) -> None:
    """One stored run in detail (``core.store.run_details`` output) for the All runs page: what it is, its error,
    its out-of-domain accuracies, the command that reproduces it and its provenance."""
    prov = rec.get("provenance") or {}
    st.write(f"{plain(label)} · {plain(rec['status'])} · source {plain(rec['source'])} · "
             f"code revision {plain(str(prov.get('git_revision') or '')[:10] or 'not recorded')}")
    if rec.get("error"):
        st.error(plain(rec["error"], max_chars=2000))
    left, right = st.columns(2)
    left.caption("Out-of-domain accuracy before → after fine-tuning (%)")
    if not rec["ood_table"]:  # an empty table said nothing
        left.info("No out-of-domain accuracy recorded for this run (it had no out-of-domain panel).")
    number = st.column_config.NumberColumn
    left.dataframe(pd.DataFrame(rec["ood_table"], columns=["set", "before", "after", "change"]), key="lb_ood",
                   hide_index=True, column_config={"before": number(format="%.1f"), "after": number(format="%.1f"),
                                                   "change": number(format="%+.1f")})
    right.caption("Reproduce with")
    right.code(rec["command"] or "(no reproducing command recorded)", language="bash")
    right.expander("config, package versions and the rest of the provenance").json(
        {"config": rec.get("config"), **prov})


def predictor_tables(model: str, pretrained: str, outcome_names: dict[str, str]) -> None:
    """The Compare page's "IIMM against the other scores": the shipped ``jobs.predictors`` table with most rows
    of the model (world v1's, or one of world v2's analyses), condensed per predictor, its winners, and the
    coverage of the forecast procedure scored on the same runs; a message where none can be shown."""
    csvs = sorted(store.SHIPPED_DIR.rglob("predictors.csv"))  # world v1's, world v2's analyses
    if not csvs:
        return
    from core import forecast_select, predictor_eval, predictor_shown

    number = st.column_config.NumberColumn
    st.header("IIMM against the other zero-shot and transferability scores")
    try:  # the shipped table with most rows of the model picked above, those rows
        tables = predictor_shown.read_each(csvs, shipped_csv)  # one unreadable table hides no other
        source, raw = predictor_shown.table_for_model(tables, model, pretrained)
        st.caption(f"From `python -m jobs.predictors` on the shipped runs of this model "
                   f"(`{source.relative_to(store.SHIPPED_DIR)}`): mean |Kendall τ| over methods (higher = ranks "
                   "datasets better) and mean leave-one-dataset-out error of a straight-line fit (lower = better).")
        table = predictor_shown.predictor_summary(raw)
        table = table.assign(outcome=table["outcome"].map(outcome_names).fillna(table["outcome"]))
        if table.empty:
            raise ValueError(f"{source.name} has no scored (ok) rows of this model")
        if asked := [v for v in st.query_params.get_all("pred_outcome") if v not in set(table["outcome"])]:
            st.warning(unmatched_link_text("outcome", asked, f"showing {table['outcome'].iloc[0]}"))  # a link's
        pick = st.segmented_control("outcome", list(table["outcome"].unique()), key="pred_outcome", bind=URL,
                                    default=table["outcome"].iloc[0]) or table["outcome"].iloc[0]
        shown = table[table["outcome"] == pick].reset_index(drop=True)
        where = shown.index[shown["predictor"] == "iimm"]
        if len(where):
            st.write(f"IIMM ranks {where[0] + 1} of {len(shown)} by mean |τ| for {plain(pick)}.")
        st.dataframe(shown.assign(predictor=shown["predictor"].map(cards.predictor_title)), hide_index=True,
                     key="cmp_predictors", column_order=["predictor", "family", "mean_abs_tau", "mean_lodo_mae",
                                                          "n_methods"], column_config={
                         "mean_abs_tau": number("mean |τ|", format="%.2f"), "n_methods": number("methods"),
                         "mean_lodo_mae": number("mean LODO error", format="%.2f")})
        st.caption("Which predictor wins, by how much over IIMM, and in how many methods its 95 % τ interval "
                   "excludes 0 (two-level bootstrap: datasets, then seeds):")
        st.dataframe(predictor_shown.winners_shown(predictor_eval.winners(raw)), hide_index=True, key="cmp_winners")
        selection_csv = source.with_name("forecast-selection.csv")  # the procedure scored on the same runs
        selection = (shipped_csv(selection_csv) if selection_csv.is_file()
                     else pd.DataFrame(columns=["model", "pretrained"]))
        if len(selection := selection[(selection["model"] == model) & (selection["pretrained"] == pretrained)]):
            rules = ", ".join(map(str, selection["rule"].unique())) if "rule" in selection else "not recorded"
            st.caption(f"The forecast's predictor choice (nested leave-one-dataset-out; selection rule {rules}) and "
                       "the measured coverage of its 95 % intervals on held-out datasets, beside the IIMM-only line's:")
            st.dataframe(predictor_shown.coverage_shown(forecast_select.coverage_summary(selection)), hide_index=True,
                         key="cmp_coverage")
    except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
        st.warning(f"No shipped predictor table to show: {plain(exc)}")


#: Streamlit names a file uploader's file input "file upload" and its button "Upload", whatever the widget's label,
#: so a screen reader announced every upload alike. This names them after the label ('labelled sample', 'Upload
#: labelled sample'), now and whenever Streamlit draws them again (a rerun, an upload, a removed file).
_UPLOAD_NAMES = """<script>
(() => {
  const name = () => document.querySelectorAll('[data-testid=stFileUploader]').forEach((box) => {
    const label = box.querySelector('[data-testid=stWidgetLabel]')?.textContent.trim();
    if (!label) return;
    const input = box.querySelector('input[type=file]');
    if (input && input.getAttribute('aria-label') !== label) input.setAttribute('aria-label', label);
    const button = box.querySelector('[data-testid=stFileUploaderDropzone] button'), said = `Upload ${label}`;
    if (button && button.getAttribute('aria-label') !== said) button.setAttribute('aria-label', said);
  });
  name();
  if (!window.__iimmUploadNames) {  // one observer a browser tab, however often the page runs
    window.__iimmUploadNames = new MutationObserver(name);
    window.__iimmUploadNames.observe(document.body, {childList: true, subtree: true});
  }
})();
</script>"""


def name_uploads() -> None:
    """Give the page's file uploaders accessible names from their labels (:data:`_UPLOAD_NAMES`): call last on a
    page with one (its element, 0 px high, still takes a gap between two others). A constant script: no text of a
    visitor's reaches it. A Streamlit that refuses the script (``unsafe_allow_javascript`` renamed, or scripts turned
    off) leaves the default names and a warning in the log, not a traceback under the page."""
    try:
        st.html(_UPLOAD_NAMES, unsafe_allow_javascript=True)
    except (TypeError, StreamlitAPIException) as exc:
        log.warning("upload names not added (this Streamlit refused the page script): %s", exc)


class _PlainRows(pd.DataFrame):
    """A frame whose rows iterate as plain tuples: pandas' Styler walks its rows with ``itertuples()``, which names
    them by the column names, and Python reads two names that differ only in Unicode form ('Café' composed and
    decomposed, two datasets of a store) as one identifier: the page ended in 'SyntaxError: duplicate argument'."""

    @property
    def _constructor(self):
        return _PlainRows

    def itertuples(self, index: bool = True, name: str | None = None):
        return super().itertuples(index=index, name=None)


def styled(frame: pd.DataFrame):
    """``frame``'s Styler, for a table whose column names come from records (:class:`_PlainRows`)."""
    return _PlainRows(frame).style


def carried(*keys: str) -> dict[str, list[str]]:
    """The current URL values of ``keys``, for a link that opens another page on the same view."""
    return {k: st.query_params.get_all(k) for k in keys if st.query_params.get_all(k)}


if __name__ == "__main__":
    main()
