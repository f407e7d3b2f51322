"""The app: a ranking of fine-tuning methods, the runs behind it, and a forecast for your dataset.

    streamlit run app.py

Besides the navigation, this module holds the few Streamlit helpers every page shares (the cached
store, the model picker, the URL state a link carries), so each page stays a thin script.

Deep links. Streamlit discovers the ``pages/`` folder next to this script and, until some run on
the server has executed ``st.navigation``, serves a deep link such as ``/compare`` through that
folder's automatic navigation (file names as titles, no app layout). Every page therefore calls
:func:`ensure_navigation` first: in that mode it declares this app's navigation (which switches
the automatic mode off for the whole server, as ``st.navigation`` is documented to do) and reruns
the same URL, which then enters through :func:`main` like every later request.
"""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import cards, garbage, store
from core.cards import model_labels, model_option, model_options  # noqa: F401 (pages use them from app)
from core.model_pool import ModelPool
from core.text import (counted, model_key, model_pair, option_labels, option_text, plain,  # noqa: F401 (pages)
                       unmatched_link_text)
from core.turns import BusyError, Turns
from core.upload.pool import BudgetPool, parsed_bytes

log = logging.getLogger("app")
ICON = "📈"  # an emoji favicon is drawn inline by the browser: no icon fetched from a font server
URL = "query-params"  # widgets bound to the URL share a view: st.multiselect(..., bind=URL)


def pages() -> list:
    return [
        st.Page("pages/ranking.py", title="Ranking", icon=":material/leaderboard:", default=True),
        st.Page("pages/matrix.py", title="Per dataset", icon=":material/grid_on:"),
        st.Page("pages/compare.py", title="Compare methods", icon=":material/scatter_plot:"),
        st.Page("pages/runs.py", title="All runs", icon=":material/table_rows:"),
        st.Page("pages/forecast.py", title="Forecast your dataset", icon=":material/online_prediction:"),
        st.Page("pages/cards.py", title="Methods and models", icon=":material/badge:"),
        st.Page("pages/submit.py", title="Submit runs", icon=":material/upload:"),
        st.Page("pages/about.py", title="About", icon=":material/info:"),
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
    """What a page with no run to show says (:func:`core.store.no_runs_text`: also when only submissions are left out)."""
    return store.no_runs_text(load_runs(roots, True), advice)


def forecast_runs() -> pd.DataFrame:
    """The runs a forecast may fit on: the whole store less unverified submissions."""
    return load_runs(store_roots())


def source_controls(roots: tuple[str, ...], container=st) -> bool:
    """Name the records the store skipped, and offer unverified submissions (a URL-bound toggle, shown
    only when there are some). Returns whether to include them."""
    every = load_runs(roots, True)
    if skipped := store.skipped_summary(store.skipped_records(every), roots=roots):  # no server path
        container.warning(plain(skipped, max_chars=600))
    submitted = store.submitted_count(every)
    return bool(submitted) and container.toggle(f"include {submitted} submitted, unverified runs",
                                                key="submitted", bind=URL)


def pick_model(runs: pd.DataFrame, container=st, key: str = "model") -> tuple[str, str]:
    """A model selectbox bound to the URL (``?model=arch@tag``); default: the model with most ok runs."""
    labels = model_labels(runs)
    return model_pair(link_select(container, "model", labels, key) or next(iter(labels)))


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


def link_select(container, what: str, labels: dict, key: str, none_shown: str = "nothing is chosen", **kwargs):
    """A selectbox of ``labels`` (option -> label) bound to the URL that warns when the link asks for an option
    it lacks (Streamlit shows the default instead, silently); ``none_shown``: what no choice shows."""
    index = kwargs.get("index", 0)
    missed, before = _unmatched(key, labels, lambda v: v if v in labels else None if index is None else [*labels, None][index])
    choice = container.selectbox(what, list(labels), key=key, bind=URL, format_func=labels.get, **kwargs)
    if missed:
        st.warning(unmatched_link_text(what, missed, none_shown if choice is None else f"showing {labels[choice]}", before))
    return choice


def link_multiselect(container, label: str, labels: dict, key: str, what: str) -> list:
    """:func:`link_select` for a filter (none chosen = every ``what``)."""
    missed, before = _unmatched(key, labels, lambda v: [c for c in v if c in labels])
    chosen = container.multiselect(label, list(labels), key=key, bind=URL, format_func=labels.get)
    if missed:
        st.warning(unmatched_link_text(what, missed, "filtering on the others" if chosen else f"showing every {what}",
                                       chosen_before=before))
    return chosen


def model_notice(model: str, pretrained: str, runs: pd.DataFrame | None = None) -> None:
    """A warning under the title when the numbers come from a toy or an untrained model (``runs``: also
    when any of this model's records says it had random weights)."""
    card = cards.model_card(model, pretrained)
    mine = None if runs is None else runs.loc[(runs["model"] == model) & (runs["pretrained"] == pretrained),
                                              [c for c in ("model", "pretrained", "random_weights") if c in runs]]
    if card.random_weights or (mine is not None and (model, pretrained) in cards.untrained_models(mine)):
        st.warning(f"{plain(card.title)}: an untrained network. Its numbers describe random weights.")
    elif card.toy:
        st.info(f"**{plain(card.title)} is a toy model**: a tiny CLIP pretrained offline on this project's "
                "generated world of shapes, textures, letters and charts. Its results show how the method "
                "works; they are not results of real CLIP models. Add your own runs to rank real models.")


@st.cache_data(ttl=60)
def _read_csv(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def shipped_csv(path: str | Path) -> pd.DataFrame:
    """A table a job wrote (e.g. ``predictors.csv``), read once per version of the file."""
    return _read_csv(str(path), Path(path).stat().st_mtime)


@st.cache_data(ttl=60)
def forecast_selection() -> pd.DataFrame:
    """Every shipped ``forecast-selection.csv``, one frame (:func:`core.forecast_select.read_selections`)."""
    from core.forecast_select import read_selections

    return read_selections(store.SHIPPED_DIR)


def forecast_table(rows: pd.DataFrame) -> None:
    """The forecast's per-method rows (``core.advice.forecast_rows``) as a readable table."""
    def interval(lo, hi):
        return [f"[{a:+.1f}, {b:+.1f}]" if pd.notna(a) else "" for a, b in zip(rows[lo], rows[hi])]

    num, txt = st.column_config.NumberColumn, st.column_config.TextColumn
    st.dataframe(rows.assign(gain_ci=interval("id_gain_lo", "id_gain_hi"),
                             ood_ci=interval("ood_change_lo", "ood_change_hi"),
                             front=rows["pareto"].map({True: "✔ best", False: ""}),
                             note=[("extrapolates: a predictor outside its reference range; " if e else "")
                                   + ("" if s == "ok" else str(s))
                                   for e, s in zip(rows["extrapolation"], rows["status"])]),
                 hide_index=True, key="fc_table", column_order=[
                     "method_title", "id_gain", "gain_ci", "ood_change", "ood_ci", "front", "gain_basis",
                     "iimm_gain", "gain_lodo", "n_datasets", "note"], column_config={
                     "method_title": txt("method"), "id_gain": num("in-domain gain", format="%+.1f"),
                     "gain_ci": txt("95 % interval"), "ood_change": num("OOD change", format="%+.1f"),
                     "ood_ci": txt("95 % interval"), "front": txt("Pareto"),
                     "gain_basis": txt("gain predicted from", help="predictor set chosen by nested "
                                       "leave-one-dataset-out error (IIMM alone unless another set is clearly better)"),
                     "iimm_gain": num("IIMM line (gain)", format="%+.1f", help="the IIMM-only line's forecast, "
                                      "for comparison"),
                     "gain_lodo": num("typical error (points)", format="%.1f", help="leave-one-dataset-out mean "
                                      "absolute error of the gain forecast"),
                     "n_datasets": num("reference datasets", help="the fewest datasets behind its gain or OOD forecast"),
                     "note": txt("note")})


# Models load in one background thread, started when the forecast page opens (core.model_pool): the toy
# models stay, and of the others only the MAX_LARGE_MODELS asked for last.
MAX_LARGE_MODELS = 2
MODELS = ModelPool(max_large=MAX_LARGE_MODELS)


def warm_model(key: str) -> Future:
    """The loading (or loaded) model ``key`` (:meth:`core.model_pool.ModelPool.warm`)."""
    return MODELS.warm(key)


# A parsed upload is held in one pool for all sessions, not in its session (core.upload.pool: 2,000
# thumbnails take 375 MiB, from a zip of under 1 MiB); a session whose upload was dropped parses it again.
PARSED_BUDGET_BYTES = 768 << 20
_PARSED = BudgetPool()


class Checked:
    """What a page keeps of a parsed upload: its summary (None for an .npz), never its images."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def summary(self) -> str | None:
        return self.text


def held_parsed_bytes() -> int:
    """The memory all sessions' parsed uploads hold together (at most one over PARSED_BUDGET_BYTES)."""
    return _PARSED.held_bytes()


def _upload_key(upload, template: str, model_key: str) -> tuple:
    """(this session, the file, template, model): a token drawn once per session, so no session reaches
    another's upload."""
    if "fc_session" not in st.session_state:
        st.session_state["fc_session"] = uuid.uuid4().hex
    return (st.session_state["fc_session"], upload.file_id, template, model_key)


def parsed_upload(upload, template: str, model_key: str, deadline=None):
    """The parsed upload (``core.upload`` output), from the shared pool or parsed now; UploadError says
    why it cannot be used. Embeddings must have the chosen model's width; decoding images has the upload
    time budget (``deadline``: a forecast's own, which its embedding then shares; default a new one)."""
    from core.upload import (DEFAULT_LIMITS, Deadline, embedding_width, load_embeddings_npz,
                             load_image_folder_zip)

    key = _upload_key(upload, template, model_key)
    if (parsed := _PARSED.get(key)) is not None:
        return parsed
    upload.seek(0)
    deadline = deadline or Deadline(DEFAULT_LIMITS.max_seconds)
    parsed = (load_embeddings_npz(upload, expected_dim=embedding_width(model_key))
              if upload.name.lower().endswith(".npz")
              else load_image_folder_zip(upload, template=template, deadline=deadline))
    _PARSED.put(key, parsed, parsed_bytes(parsed), budget=PARSED_BUDGET_BYTES,
                replaces=lambda k: k[0] == key[0])  # a session holds one upload
    return parsed


def check_upload(upload, template: str, model_key: str):
    """The upload checked as soon as it arrives, so its problems show before the run: a :class:`Checked`
    (its summary) or the UploadError saying why it cannot be used; kept per (file, template, model) in the
    session, the parsed data itself in the shared budget (:func:`parsed_upload`). Reading it takes a forecast's
    turn (uploads arriving at once were all read at once: four of 2,000 images took 2.1 GB); with none within
    FORECAST_WAIT_S, an empty Checked, not kept: later reruns check it only in a turn free at once, and the run
    reads it in its own turn."""
    from core.upload import UploadError

    def waiting() -> None:
        st.write(f"The server reads uploads and runs forecasts {_FORECAST_TURNS.slots} at a time, all busy now; "
                 "your upload is read when one ends…")
    state, ident = st.session_state.get("fc_checked"), (upload.file_id, template, model_key)
    if state is None or state[0] != ident:
        waited = st.session_state.get("fc_check_busy") == ident  # once: later reruns (the run's) wait no more
        try:
            with _FORECAST_TURNS.turn(wait_s=0 if waited else FORECAST_WAIT_S, what="forecasts are",
                                      on_wait=None if waited else waiting):
                parsed = parsed_upload(upload, template, model_key)
            checked: Any = Checked(parsed.summary() if hasattr(parsed, "summary") else None)
        except UploadError as exc:  # its message alone: its traceback held every image read (525 MB a tab)
            checked = type(exc)(str(exc))  # its kind kept: a TemplateError is the template's, not the file's
        except BusyError:
            st.session_state["fc_check_busy"] = ident
            return Checked(None)
        state = (ident, checked)
        st.session_state["fc_checked"] = state
    return state[1]


# Forecasts take turns (core.turns): each uses every core, so more at once only makes all of them slower.
FORECAST_SLOTS, FORECAST_WAIT_S = 2, 120.0
_FORECAST_TURNS = Turns(FORECAST_SLOTS)


def run_forecast(upload, template: str, model_key: str):
    """The forecast for a checked upload: an embeddings ``.npz`` directly, an image sample after the
    (warmed) model embeds it, with a progress bar and the upload time budget (which starts with its turn:
    raises core.turns.BusyError when no turn comes within FORECAST_WAIT_S)."""
    from core import predict
    from core.upload import DEFAULT_LIMITS, Deadline

    def waiting() -> None:
        st.write(f"The server runs {counted(_FORECAST_TURNS.slots, 'forecast')} at a time, all busy now; "
                 "yours starts when one ends…")
    with _FORECAST_TURNS.turn(wait_s=FORECAST_WAIT_S, what="forecasts are", on_wait=waiting):
        deadline = Deadline(DEFAULT_LIMITS.max_seconds)  # one budget: parsing a dropped upload again counts
        parsed = parsed_upload(upload, template, model_key, deadline)
        if upload.name.lower().endswith(".npz"):
            return predict.forecast_for_npz(parsed, forecast_runs(), model_key)
        with st.spinner("Loading the model…"):
            loaded = warm_model(model_key).result()
        bar = st.progress(0.0, text="embedding the images…")

        def progress(done: int, total: int) -> None:
            deadline.check("embedding the images")
            bar.progress(done / total, text=f"embedded {done} of {total} images")

        return predict.forecast_for_sample(loaded, parsed.data, forecast_runs(), progress=progress)


def measures_expander(res) -> None:
    """Every zero-shot measure and transferability score of a forecast, named as the forecast's other tables
    name them, to 4 significant digits (a fixed 4 decimals showed EMMS -2.1e-23 and GBC -2.6e-08 as -0.0000);
    IIMM's interval as text (the other measures have none: their cells showed "None")."""
    number, m, b = st.column_config.NumberColumn, res.measures, res.baselines
    interval = [f"[{lo:.4g}, {hi:.4g}]" if pd.notna(lo) else "" for lo, hi in zip(m["lo"], m["hi"])]
    with st.expander("Every zero-shot measure and transferability score"):
        st.dataframe(m.assign(measure=m["measure"].map(cards.predictor_title), interval=interval), hide_index=True,
                     key="fc_measures", column_order=["measure", "value", "interval", "note"], column_config={
                         "value": number(format="%.4g"), "interval": st.column_config.TextColumn(
                             "95 % interval", help="bootstrap over the images (IIMM only)")})
        st.dataframe(b.assign(baseline=b["baseline"].map(cards.predictor_title)), hide_index=True, key="fc_baselines",
                     column_config={"score": number(format="%.4g")})


def verdict_box(verdict) -> None:
    """The forecast's verdict (``core.advice.Advice``) in a box coloured by its confidence."""
    box = {"good": st.success, "moderate": st.info, "weak": st.warning}[verdict.confidence]
    box(f"**Confidence: {verdict.confidence}.** " + " ".join(plain(h, max_chars=400) for h in verdict.headline)
        + "  \n" + " ".join(plain(r, max_chars=400) for r in verdict.reasons))


def zero_shot_metrics(res) -> None:
    """One row of metrics for a forecast: IIMM with its bootstrap interval, zero-shot accuracy beside
    chance level, and IIMM's two terms."""
    from core.predict import MEASURE_NOTES

    cols = st.columns(4)
    cols[0].metric("IIMM", f"{res.iimm:.3f}", help=MEASURE_NOTES["iimm"])
    cols[0].caption(f"95% bootstrap interval [{res.iimm_lo:.3f}, {res.iimm_hi:.3f}]")
    cols[1].metric("zero-shot accuracy", f"{res.zero_shot['zs_acc']:.1f} %", help=MEASURE_NOTES["zs_acc"])
    cols[1].caption(f"chance level {100 / res.n_classes:.1f} % ({res.n_classes} classes)")
    for col, k in zip(cols[2:], ("inter_modal", "intra_image")):
        col.metric(k.replace("_", "-") + " term", f"{res.zero_shot[k]:.3f}", help=MEASURE_NOTES[k])


def carried(*keys: str) -> dict[str, list[str]]:
    """The current URL values of ``keys``, for a link that opens another page on the same view."""
    return {k: st.query_params.get_all(k) for k in keys if st.query_params.get_all(k)}


if __name__ == "__main__":
    main()
