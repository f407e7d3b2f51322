"""The forecast page's parts (pages/forecast.py): uploads checked as they arrive and held in one memory budget
for all sessions, forecasts taking turns at the CPU, models loading in the background, and the result's
tables and verdict. Shared page helpers stay in app.py; the computing is in core (core.predict, core.advice)."""
from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from app import forecast_runs, interval_config, interval_ends
from core import cards, charts, forecast_select, predict, reference_overlap, store
from core.model_pool import ModelPool
from core.text import counted, option_labels, plain, zeros_unsigned
from core.turns import TICK_S, BusyError, Turns
from core.upload.pool import BudgetPool, parsed_bytes
from page_waits import waiting


@st.cache_data(ttl=60)
def forecast_selection(shipped: Path) -> pd.DataFrame:
    """Every ``forecast-selection.csv`` under ``shipped`` (the shipped results, ``store.SHIPPED_DIR``), one frame
    (:func:`core.forecast_select.read_selections`); cached per folder, so another folder is never given this one's."""
    from core.forecast_select import read_selections

    return read_selections(shipped)


def forecast_table(rows: pd.DataFrame, untrained_model: str | None = None, caveats: dict[str, str] | None = None
                   ) -> None:
    """The forecast's per-method rows (``core.advice.forecast_rows``) as a readable table; ``untrained_model``: the
    model's label (``core.cards.model_label``, marked RANDOM WEIGHTS) when its numbers (or its reference runs')
    come from random weights, shown in a column, as the charts beside it say (a table too may be saved alone);
    ``caveats``: ``ForecastResult.saved_caveats``, each a last column, for the same reason."""
    num, txt = st.column_config.NumberColumn, st.column_config.TextColumn
    caveats = caveats or {}
    st.dataframe(rows.assign(model=untrained_model, **caveats,  # and no '-0.0' cell:
                             **{c: zeros_unsigned(rows[c], 1) for c in ("id_gain", "ood_change", "iimm_gain")},
                             # as the ranking shows them: numbers (sorted as numbers), no '-0.0', no '+inf'
                             **interval_ends(rows, "id_gain"), **interval_ends(rows, "ood_change"),
                             front=rows["pareto"].map({True: "✔ best", False: ""}),
                             note=[("extrapolates: a predictor outside its reference range; " if e else "")
                                   + ("" if s == "ok" else str(s))
                                   for e, s in zip(rows["extrapolation"], rows["status"], strict=True)]),
                 hide_index=True, key="fc_table", column_order=[*(["model"] if untrained_model else []),
                     "method_title", "id_gain", "id_gain_lo", "id_gain_hi", "ood_change", "ood_change_lo",
                     "ood_change_hi", "front", "gain_basis", "iimm_gain", "gain_lodo", "n_datasets", "note", *caveats],
                 column_config={
                     "method_title": txt("method"), "id_gain": num("in-domain gain", format="%+.1f"),
                     **interval_config(rows, "id_gain", "the in-domain gain's 95 % prediction interval"),
                     "ood_change": num("OOD change", format="%+.1f"),
                     **interval_config(rows, "ood_change", "the OOD change's 95 % prediction interval"),
                     "front": txt("Pareto"),
                     "gain_basis": txt("gain predicted from", help="predictor set chosen by "
                                       "leave-one-dataset-out error (IIMM alone unless another set is clearly better)"),
                     "iimm_gain": num("IIMM line (gain)", format="%+.1f", help="the IIMM-only line's forecast, "
                                      "for comparison"),
                     "gain_lodo": num("typical error (points)", format="%.1f", help="leave-one-dataset-out mean "
                                      "absolute error of the gain forecast"),
                     "n_datasets": num("reference datasets", help="the fewest datasets behind its gain or OOD forecast"),
                     "note": txt("note"), "left_out": txt("reference datasets left out", help="they hold some "
                                                          "of your images, so the forecast is fitted without them"),
                     "not_checked": txt("not checked for your images"), "upload_warnings": txt("upload warnings"),
                     "warnings": txt("warnings", help="the verdict's warnings, shown above")})


# Models load in one background thread, started when the forecast page opens (core.model_pool): the toy
# models stay, and of the others only the MAX_LARGE_MODELS asked for last.
MAX_LARGE_MODELS = 2
MODELS = ModelPool(max_large=MAX_LARGE_MODELS)


def warm_model(key: str) -> Future:
    """The loading (or loaded) model ``key`` (:meth:`core.model_pool.ModelPool.warm`)."""
    return MODELS.warm(key)


# A parsed upload is held in one pool for all sessions, not in its session (core.upload.pool: 2,000
# thumbnails take 505 MiB, from a zip of under 1 MiB); a session whose upload was dropped parses it again.
# Its images' embeddings by each model it was forecast with are held in the same pool and budget (memory
# only: strangers' data never reach the disk), so a repeat or another template embeds no image again.
PARSED_BUDGET_BYTES = 768 << 20
_PARSED = BudgetPool()


class Checked:
    """What a page keeps of a parsed upload: its summary, never its images or embeddings."""

    def __init__(self, text: str | None) -> None:
        self.text = text

    def summary(self) -> str | None:
        return self.text


def held_parsed_bytes() -> int:
    """The memory all sessions' parsed uploads and their image embeddings hold together (at most one value
    over PARSED_BUDGET_BYTES)."""
    return _PARSED.held_bytes()


def _session_token() -> str:
    """A token drawn once per session: every pool key starts with it, so no session reaches another's upload."""
    if "fc_session" not in st.session_state:
        st.session_state["fc_session"] = uuid.uuid4().hex
    return st.session_state["fc_session"]


def parsed_upload(upload, template: str, model_key: str, deadline=None, *, parse: bool = True):
    """The parsed upload (``core.upload`` output), from the shared pool or parsed now (``parse`` False: None
    where the pool holds none); UploadError says why it cannot be used. Embeddings must have the chosen model's
    width; decoding images has the upload time budget (``deadline``: a forecast's own, which its embedding then
    shares; default a new one).
    An image sample is pooled per (session, file): the template only names its prompts and the model only
    embeds it, so changing either parses nothing again (an ``.npz`` is pooled per model: its width is checked)."""
    from core.upload import (DEFAULT_LIMITS, Deadline, check_template, embedding_width, load_embeddings_npz,
                             load_image_folder_zip)

    npz = upload.name.lower().endswith(".npz")
    if not npz:
        check_template(template)  # a bad template is refused before the pool is looked at, as a parse refuses it
    session = _session_token()
    key = (session, upload.file_id, ("parsed", model_key if npz else ""))
    if (parsed := _PARSED.get(key)) is None:
        if not parse:
            return None
        upload.seek(0)
        deadline = deadline or Deadline(DEFAULT_LIMITS.max_seconds)
        parsed = (load_embeddings_npz(upload, expected_dim=embedding_width(model_key)) if npz
                  else load_image_folder_zip(upload, template=template, deadline=deadline))
        # a session holds one upload: its other files' entries go, and this file's other parse (an .npz's)
        _PARSED.put(key, parsed, parsed_bytes(parsed), budget=PARSED_BUDGET_BYTES,
                    replaces=lambda k: k[0] == session and (k[1] != key[1] or k[2][0] == "parsed"))
    if npz or parsed.data.template == template:
        return parsed
    return replace(parsed, data=replace(parsed.data, template=template))  # the same images, other prompts


def check_upload(upload, template: str, model_key: str):
    """The upload checked as soon as it arrives, so its problems show before the run: a :class:`Checked`
    (its summary) or the UploadError saying why it cannot be used; kept per (file, template, model) in the
    session, the parsed data itself in the shared budget (:func:`parsed_upload`). Reading it takes a forecast's
    turn (uploads arriving at once were all read at once: four of 2,000 images took 2.1 GB), one the pool holds
    already (read for another template or model) none; with none within FORECAST_WAIT_S, an empty Checked, not kept
    (the page says the run reads it): later reruns check it only in a turn free at once, and the run reads it in its
    own turn."""
    from core.upload import UploadError, embeddings_summary

    state, ident = st.session_state.get("fc_checked"), (upload.file_id, template, model_key)
    if state is None or state[0] != ident:
        waited = st.session_state.get("fc_check_busy") == ident  # once: later reruns (the run's) wait no more
        try:  # held already (read for another template or model): no turn to wait for, as nothing is read
            if (parsed := parsed_upload(upload, template, model_key, parse=False)) is None:
                with _forecast_turn(0 if waited else FORECAST_WAIT_S, None if waited else (
                        f"The server reads uploads and runs forecasts {_FORECAST_TURNS.slots} at a time, all busy "
                        "now; your upload is read when one ends…")):
                    parsed = parsed_upload(upload, template, model_key)
            checked: Any = Checked(parsed.summary() if hasattr(parsed, "summary") else embeddings_summary(parsed))
            if hasattr(parsed, "summary"):  # images: the reference splits the run checks them against, hashed ahead
                warm_overlap_check(parsed.data.images, parsed.data.class_names, model_key)
        except UploadError as exc:  # its message alone: its traceback held every image read (525 MB a tab)
            checked = type(exc)(str(exc))  # its kind kept: a TemplateError is the template's, not the file's
        except BusyError:  # said in place of the wait's line, cleared
            st.session_state["fc_check_busy"] = ident
            st.caption("Not read yet: the server is busy. “Run forecast” reads your upload in its own turn.")
            return Checked(None)
        state = (ident, checked)
        st.session_state["fc_checked"] = state
    return state[1]


def reference_datasets(model_key: str) -> list[str]:
    """The datasets of the stored runs a forecast with model ``model_key`` is fitted on (none for a bad key)."""
    from core.models import spec_for

    try:
        spec, runs = spec_for(model_key), forecast_runs()
    except ValueError:  # an empty IIMM_FORECAST_MODEL: the page picks its first model, and the run says the rest
        return []
    return reference_overlap.reference_datasets(runs, spec.arch, spec.pretrained_tag)


def warm_overlap_check(images, class_names, model_key: str) -> None:
    """Start hashing the splits of the model's reference datasets that could hold these images, so the run finds
    them ready (core.reference_overlap.warm: a world task only for 32x32 images of one of its classes, once per
    process)."""
    reference_overlap.warm(images, reference_datasets(model_key), class_names=class_names)


# Forecasts take turns (core.turns): each uses every core, so more at once only makes all of them slower.
FORECAST_SLOTS, FORECAST_WAIT_S = 2, 120.0
# The most a forecast waits for the reference datasets' images to be hashed (core.reference_overlap: a world v1
# task takes under 1 s, a folder of 2,000 JPEGs 14 s here, one of 50,000 minutes); one not ready is named in a note.
OVERLAP_WAIT_S = 30.0
_FORECAST_TURNS = Turns(FORECAST_SLOTS)


@contextmanager
def _forecast_turn(wait_s: float, told: str | None) -> Iterator[None]:
    """A turn of :data:`_FORECAST_TURNS` for the block, waiting up to ``wait_s`` (BusyError after). Without a free
    one, ``told`` (None: nothing) is shown while it waits (:class:`page_waits.Wait`), cleared when the turn comes (or
    none).
    Clearing it sends the page a message, where Streamlit ends a run whose visitor left or changed the page during the
    wait (StopException, RerunException): with no Streamlit call between the turn and the work, such a run read a
    whole upload (505 MiB into the pool every session shares) for a page no one would see, holding the turn others
    waited for. The wait says how long it has waited every second, so such a run ends within one, not after up to
    ``wait_s``."""
    with waiting(told or "") as wait:  # told None: never shown
        with _FORECAST_TURNS.turn(wait_s=wait_s, what="forecasts", wait=None if told is None else wait):
            yield


def run_forecast(upload, template: str, model_key: str):
    """The forecast for a checked upload: an embeddings ``.npz`` directly, an image sample after the
    (warmed) model embeds it, with a progress bar and the upload time budget (which starts with its turn:
    raises core.turns.BusyError when no turn comes within FORECAST_WAIT_S), or with the image embeddings
    this session's earlier forecast of the same file and model left (:func:`image_embeddings`)."""
    from core.upload import DEFAULT_LIMITS, Deadline, upload_warnings

    with _forecast_turn(FORECAST_WAIT_S, f"The server runs {counted(_FORECAST_TURNS.slots, 'forecast')} at a time, "
                        "all busy now; yours starts when one ends…"):
        deadline = Deadline(DEFAULT_LIMITS.max_seconds)  # one budget: parsing a dropped upload again counts
        parsed = parsed_upload(upload, template, model_key, deadline)
        if upload.name.lower().endswith(".npz"):
            res = predict.forecast_for_npz(parsed, forecast_runs(), model_key)
        else:
            loaded = _loaded_model(model_key)
            images = image_embeddings(upload, model_key, loaded, parsed.data, deadline)
            with waiting("Looking for your images in the reference datasets…") as wait:  # cleared as the look ends
                res = predict.forecast_for_sample(loaded, parsed.data, forecast_runs(), image_embeddings=images,
                                                  overlap_wait_s=OVERLAP_WAIT_S, overlap_while_waiting=wait.tell,
                                                  overlap_done=wait.done)
    res.upload_warnings = upload_warnings(parsed)  # shown under the upload: its saved table keeps them
    return res


def _loaded_model(model_key: str):
    """The model ``model_key`` (:func:`warm_model`), waited for with a message updated every second while it loads
    (a download takes minutes): a run whose visitor changed the model or left is stopped there by Streamlit within
    a second, not kept waiting for the load, holding its forecast turn."""
    future = warm_model(model_key)
    if future.done():
        return future.result()
    start = time.monotonic()
    with waiting("Loading the model…") as wait:
        while True:
            wait.tell(time.monotonic() - start)
            try:
                return future.result(timeout=TICK_S)
            except FutureTimeout:
                continue


def image_embeddings(upload, model_key: str, loaded, data, deadline):
    """The upload's images embedded by ``loaded`` (model ``model_key``): held for this session and file from an
    earlier forecast, or embedded now with a progress bar under ``deadline`` and held (read-only, in memory) in
    the uploads' pool and budget. The key holds the model's fingerprint: a random-weight model loaded again is
    another network."""
    from core.embed import embed_images, model_fingerprint

    session = _session_token()
    key = (session, upload.file_id, ("images", model_key, model_fingerprint(loaded)))
    if (held := _PARSED.get(key)) is not None:
        return held
    bar = st.progress(0.0, text="embedding the images…")

    def progress(done: int, total: int) -> None:
        deadline.check("embedding the images")
        bar.progress(done / total, text=f"embedded {done} of {total} images")

    images = embed_images(loaded, data.images, progress=progress)
    images.setflags(write=False)  # shared by this session's later forecasts: none may change it
    _PARSED.put(key, images, images.nbytes, budget=PARSED_BUDGET_BYTES,
                replaces=lambda k: k[0] == session and k[1] != key[1])  # another file's: that upload was replaced
    return images


def measures_expander(res) -> None:
    """Every zero-shot measure and transferability score of a forecast, named as the forecast's other tables
    name them, to 4 significant digits (a fixed 4 decimals showed EMMS -2.1e-23 and GBC -2.6e-08 as -0.0000);
    IIMM's interval as text (the other measures have none: their cells showed "None"); the upload's warnings
    (images repeated exactly, which IIMM counts as identical pairs) in a last column where there are any."""
    label = cards.model_label(res.model, res.pretrained, True) if res.random_weights else None  # measured by it
    number, m, b = st.column_config.NumberColumn, *(frame if label is None else frame.assign(model=label)[
        ["model", *frame.columns]] for frame in (res.measures, res.baselines))
    interval = [f"[{lo:.4g}, {hi:.4g}]" if pd.notna(lo) else "" for lo, hi in zip(m["lo"], m["hi"], strict=True)]
    warned = {"upload_warnings": "; ".join(res.upload_warnings)} if res.upload_warnings else {}  # kept when saved
    with st.expander("Every zero-shot measure and transferability score"):
        st.dataframe(m.assign(measure=m["measure"].map(cards.predictor_title), interval=interval, **warned),
                     hide_index=True, key="fc_measures", column_order=[*(["model"] if label else []), "measure",
                                                                        "value", "interval", "note", *warned],
                     column_config={"upload_warnings": st.column_config.TextColumn("upload warnings"),
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
    for col, k in zip(cols[2:], ("inter_modal", "intra_image"), strict=True):
        col.metric(k.replace("_", "-") + " term", f"{res.zero_shot[k]:.3f}", help=MEASURE_NOTES[k])


def outcome_views(res, rows: pd.DataFrame, warnings: Sequence[str] = ()) -> None:
    """A forecast's per-method predictions (``core.advice.forecast_rows``): the table, gain against forgetting,
    and for a method picked here its reference runs' IIMM against gain with this dataset on the IIMM line.
    ``warnings``: the verdict's (a toy model...), shown above it and kept in the table's last column (' | '-joined)."""
    st.subheader("Predicted outcome per method (95 % prediction intervals)")
    st.caption("Shown as fitted: straight lines are not bounded, so a prediction or interval can leave what is "
               "possible (an in-domain gain lies between minus the zero-shot accuracy and 100 minus it).")
    untrained = res.untrained  # the model, or its reference runs
    forecast_table(rows, cards.model_label(res.model, res.pretrained, True) if untrained else None,
                   {**res.saved_caveats(), **({"warnings": " | ".join(warnings)} if warnings else {})})
    try:
        st.altair_chart(charts.readable(charts.gain_vs_forgetting(rows[rows["ok"]], prefix="predicted", subtitle=(
            "bars: 95 % prediction interval; ringed: best predicted trade-offs"), random_weights=untrained)))
    except ValueError as exc:  # no method forecast on both axes (e.g. no reference run has an OOD panel)
        st.info(f"No trade-off chart: {plain(exc)}")
    left, right = st.columns([1, 2])
    # as the table names them: 'LoRA · Lora', not 'LoRA (2)'
    named = dict(zip(rows["method"], rows["method_title"], strict=True))
    titles = option_labels(list(rows["method"]), named.get)
    method = left.selectbox("method for the IIMM chart", list(titles), key="fc_method", format_func=titles.get)
    ref = predict.reference_runs(forecast_runs(), res.model, res.pretrained, method)
    ref = ref[~ref["dataset"].isin(list(res.left_out))]  # as the forecast: without a dataset holding its images
    # the chart's axis is IIMM: its mark is the IIMM line's forecast, which the table may not use
    mark = {**res.highlight("id_gain", method), "label": f"your dataset ({named[method]}, IIMM line)"}
    try:
        right.altair_chart(charts.readable(charts.iimm_vs_outcome(ref, "id_gain", highlight=mark, width=520,
                                                                  height=300, legend=False, random_weights=untrained)))
    except ValueError as exc:  # this method has no runs with both values
        right.info(f"No chart: {plain(exc)}")


def selection_expander(res) -> None:
    """How each of a forecast's predictions was chosen, with the measured coverage of its procedure."""
    if res.selected.empty:
        return
    with st.expander(f"How each forecast was chosen (rule {forecast_select.DEFAULT_RULE}): predictors, nested LODO "
                     "error, error saved vs the IIMM line, coverage, a jackknife+ interval (19+ datasets)"):
        shown = forecast_select.selection_shown(forecast_select.with_measured_coverage(
            res.selected, forecast_selection(store.SHIPPED_DIR), model=res.model, pretrained=res.pretrained))
        if res.untrained:  # said as the forecast table says it
            shown.insert(0, "model", cards.model_label(res.model, res.pretrained, True))
        st.dataframe(shown, hide_index=True, key="fc_selected", column_config={  # coverage in %, the rest to 2 decimals
                h: st.column_config.NumberColumn(format=f) for h, f in forecast_select.SELECTION_FORMATS.items()})
