"""Forecast: upload a labelled sample, get its IIMM and every method's predicted gain and forgetting."""
import os

import pandas as pd
import streamlit as st

from core import charts, predict, store
from core.text import plain
from core.models import DEFAULT_MODEL, ModelUnavailableError, list_models
from core.upload import DEFAULT_LIMITS, Deadline, UploadError, embedding_width, load_embeddings_npz, \
    load_image_folder_zip

NUM = st.column_config.NumberColumn
SPECS = {s.key: s for s in list_models()}


@st.cache_resource(show_spinner="Loading the model…", max_entries=2)
def get_model(key: str):
    from core.models import load_model  # torch + open_clip: imported only when a model is needed

    return load_model(key)


@st.cache_data(ttl=30, show_spinner="Reading the reference runs…")
def load(roots: tuple[str, ...]) -> pd.DataFrame:
    runs = store.load_runs(list(roots))
    return runs[runs["source"] != store.SUBMITTED_SOURCE]  # unverified submissions never feed a forecast


def run_forecast(upload, key: str, template: str, runs: pd.DataFrame) -> predict.ForecastResult:
    deadline = Deadline(DEFAULT_LIMITS.max_seconds)  # the whole request, with a clear message past it
    if upload.name.lower().endswith(".npz"):
        return predict.forecast_for_npz(load_embeddings_npz(upload, expected_dim=embedding_width(key)), runs, key)
    sample = load_image_folder_zip(upload, template=template, deadline=deadline)
    st.text(sample.summary())
    loaded, bar = get_model(key), st.progress(0.0, text="embedding the images…")
    return predict.forecast_for_sample(loaded, sample.data, runs, progress=lambda d, t: (
        deadline.check("embedding the images"), bar.progress(d / t, text=f"embedded {d} of {t} images")))


st.title("Forecast fine-tuning on your dataset")
st.write("Upload a zip of class folders (`cat/001.png`) or of images plus `labels.csv` (`file,label`), "
         "or an `.npz` of embeddings (`image_embeddings`, `text_embeddings`, `labels`, `class_names`).")
upload = st.file_uploader("labelled sample", type=["zip", "npz"], key="fc_upload")
keys, wanted = list(SPECS), os.environ.get("IIMM_FORECAST_MODEL", DEFAULT_MODEL)
c1, c2 = st.columns(2)
key = c1.selectbox("model", keys, index=keys.index(wanted) if wanted in keys else 0, key="fc_model",
                   format_func=lambda k: f"{k}: {SPECS[k].label}")
template = c2.text_input("prompt template", "a photo of a {c}", key="fc_template")
roots = tuple(str(r) for r in store.default_roots())
if st.button("Run forecast", key="fc_run", type="primary", disabled=upload is None):
    st.session_state.pop("fc_result", None)
    try:
        with st.status("Forecasting…", expanded=True) as status:
            result = run_forecast(upload, key, template, load(roots))
            status.update(label="Forecast ready", state="complete", expanded=False)
        st.session_state["fc_result"] = (upload.name, result)
    except (UploadError, ModelUnavailableError, ValueError) as exc:
        st.error(plain(str(exc), max_chars=1000))

if "fc_result" in st.session_state:
    name, res = st.session_state["fc_result"]
    st.header(plain(f"{name} — {res.title}", max_chars=300))
    for note in res.notes:
        (st.warning if "RANDOM" in note else st.info)(plain(note, max_chars=1000))
    m = st.columns(4)
    m[0].metric("IIMM", f"{res.iimm:.3f}", help=predict.MEASURE_NOTES["iimm"])
    m[0].caption(f"95% bootstrap interval [{res.iimm_lo:.3f}, {res.iimm_hi:.3f}]")
    for col, k in zip(m[1:], ("inter_modal", "intra_image", "zs_acc")):
        col.metric(k, f"{res.zero_shot[k]:.3f}", help=predict.MEASURE_NOTES[k])
    if not res.enough_runs:
        st.warning(plain(res.message, max_chars=1000))
        st.code(res.command, language="bash")
    else:
        st.subheader("Forecast per method (95% prediction intervals; LODO = leave-one-dataset-out error)")
        st.dataframe(res.forecasts, hide_index=True, key="fc_table", column_config={
            c: NUM(format="%+.2f" if c in predict.OUTCOMES or c.endswith(("_lo", "_hi")) else "%.3f")
            for c in res.forecasts.columns if c not in ("method", "n_datasets", "extrapolation", "status")})
        method = st.selectbox("method for the charts", list(res.forecasts["method"]), key="fc_method")
        ref = predict.reference_runs(load(roots), res.model, res.pretrained, method)
        for col, outcome in zip(st.columns(2), predict.OUTCOMES):
            try:
                col.altair_chart(charts.iimm_vs_outcome(ref, outcome,
                                                        highlight=res.highlight(outcome, method)))
            except ValueError as exc:  # this method has no runs with both values
                col.info(plain(f"No chart: {exc}", max_chars=400))
    left, right = st.columns(2)
    left.write("Zero-shot measures")
    left.dataframe(res.measures, hide_index=True, key="fc_measures",
                   column_config={c: NUM(format="%.4f") for c in ("value", "lo", "hi")})
    right.write("Transferability baselines (higher = more transferable)")
    right.dataframe(res.baselines, hide_index=True, key="fc_baselines",
                    column_config={"score": NUM(format="%.4f")})
