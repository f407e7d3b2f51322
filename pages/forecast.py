"""Forecast: upload a labelled sample, get advice on which method to fine-tune with, then the numbers."""
import os

import streamlit as st

import app
import forecast_ui as fui
from core import advice
from core.data import example
from core.models import DEFAULT_MODEL, ModelUnavailableError, list_models
from core.reference_overlap import NOTE_START, UNCHECKED_START
from core.text import plain
from core.turns import BusyError
from core.upload import TemplateError, UploadError

app.ensure_navigation()
SPECS = {s.key: s for s in list_models()}

st.title("Forecast fine-tuning on your dataset")
st.write("Upload a labelled sample of your task: a zip of class folders (`cat/001.png`, or "
         "`train/cat/001.png`: then `train/` is used), a zip of images plus "
         "`labels.csv` (`file,label`), or an `.npz` of embeddings (`image_embeddings`, `text_embeddings`, "
         "`labels`, `class_names`). One forward pass gives its IIMM; the stored runs of the same model turn it "
         "into a forecast of every method's gain and forgetting.")
upload = st.file_uploader("labelled sample", type=["zip", "npz"], key="fc_upload", help=(
    "The same forecast from a terminal, for a folder, a zip or an .npz, or many at once: "
    "`python -m jobs.forecast SAMPLE... --model KEY --out forecast.json`"))
st.download_button(f"No sample at hand? Download an example ({example.EXAMPLE_TASK})", help=example.EXAMPLE_NOTE,
                   data=example.example_sample_zip, file_name=f"{example.EXAMPLE_TASK}-example.zip",
                   mime="application/zip", key="fc_example", type="tertiary", icon=":material/download:",
                   on_click="ignore")
keys, wanted = list(SPECS), os.environ.get("IIMM_FORECAST_MODEL", DEFAULT_MODEL)
c1, c2 = st.columns(2)
key = app.link_select(c1, "model", {k: app.model_option(SPECS[k]) for k in keys}, "fc_model",
                      index=keys.index(wanted) if wanted in keys else 0)  # warns of a link's unknown model
if not SPECS[key].needs_download:
    fui.warm_model(key)  # starts loading now, in the background, so the run finds it ready
template = c2.text_input("prompt template ({c} = class name)", "a photo of a {c}", key="fc_template",  # an .npz has
                         disabled=upload is not None and upload.name.lower().endswith(".npz"))  # its own prompts
parsed = fui.check_upload(upload, template, key) if upload is not None else None
if isinstance(parsed, UploadError):
    blamed = "" if isinstance(parsed, TemplateError) else "This upload cannot be used: "  # a bad template: not the file
    st.error(blamed + plain(parsed, max_chars=1000))
elif parsed is not None and parsed.summary():
    st.caption("  \n".join(plain(line, max_chars=600) for line in parsed.summary().splitlines()))  # a line each
if st.button("Run forecast", key="fc_run", type="primary", disabled=parsed is None or isinstance(parsed, UploadError)):
    st.session_state.pop("fc_result", None)
    failed = None
    with st.status("Forecasting…", expanded=True) as status:
        try:
            made_with = advice.forecast_inputs(upload, key, template)  # a later change makes the result stale
            st.session_state["fc_result"] = (upload.name, fui.run_forecast(upload, template, key), made_with)
            status.update(label="Forecast ready", state="complete", expanded=False)
        except (UploadError, ModelUnavailableError, BusyError, ValueError) as exc:
            status.update(label="Forecast failed", state="error", expanded=False)
            failed = exc
    if failed is not None:  # below the box, which closes on failure: inside it the visitor saw only its label
        st.error(plain(failed, max_chars=1000))

if "fc_result" in st.session_state:
    name, res, made_with = st.session_state["fc_result"]
    if notice := advice.stale_notice(made_with, advice.forecast_inputs(upload, key, template)):
        st.info(notice)
    rows = advice.forecast_rows(res)
    verdict = advice.advise_forecast(res, rows)  # the model's card, random weights, the sample: as jobs.forecast
    st.header(plain(f"{name}: {res.title}"))
    if not res.enough_runs:
        st.warning(plain(res.message, max_chars=600))
        st.code(res.command, language="bash")
    else:  # the verdict first, then what to be careful about
        fui.verdict_box(verdict)
    for warning in verdict.warnings:
        st.warning(plain(warning, max_chars=400))
    for note in res.notes:  # what the forecast left out or assumed (LEEP without a logit scale, ...)
        # a dataset left out, or one not checked for the sample's images: said as plainly as the verdict
        (st.info if note.startswith((NOTE_START, UNCHECKED_START)) else st.caption)(plain(note, max_chars=600))
    fui.zero_shot_metrics(res)
    if res.enough_runs:
        fui.outcome_views(res, rows, verdict.warnings)  # the table keeps them: it may be saved alone
    fui.measures_expander(res)
    fui.selection_expander(res)
app.name_uploads()  # the upload's accessible name: its label
