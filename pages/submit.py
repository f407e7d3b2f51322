"""Submit runs: a zip of grid records, checked by the store's own rules, stored as "submitted, unverified"."""
import pandas as pd
import streamlit as st

import app
from core import store
from core.store.submissions import SUBMISSION_SLOTS
from core.text import counted, plain
from core.turns import BusyError
from core.upload import UploadError
from page_waits import waiting

app.ensure_navigation()
st.title("Submit runs")
st.write("Upload a zip of grid records (`.json` or `.jsonl`, as `python -m jobs.grid` writes them). "
         "Each record is checked with the same rules as the store; accepted runs appear on the "
         "leaderboard with the source *submitted, unverified* and never replace a measured run.")
TURN_TOLD = (f"The server reads {counted(SUBMISSION_SLOTS, 'submission')} at a time, all busy now; yours is read "
             "when one ends…")  # as the forecast page tells of its turns
upload = st.file_uploader("records (zip)", type=["zip"], key="sub_upload")
if st.button("Submit", key="sub_go", type="primary", disabled=upload is None):
    try:  # each wait says so every second, where Streamlit stops the run of a visitor who left (holding nothing)
        with st.spinner("Reading, checking and storing your records…"), waiting(TURN_TOLD) as turn, \
                waiting("Other runs are being stored; yours are stored when that ends…") as stored:
            report = store.accept_submission(upload, turn_wait=turn, store_wait=stored)
    except UploadError as exc:  # the zip itself: meant for whoever uploaded it
        st.error(plain(str(exc), max_chars=600))
    except BusyError as exc:  # others' submissions are being read: nothing stored, try again
        st.warning(plain(str(exc)))
    except (ValueError, OSError) as exc:  # the submissions folder is unusable or busy: its path stays in the log
        app.log.warning("submission not stored: %s", exc)
        st.error("The server cannot store submissions right now (its submissions folder is unusable or busy); "
                 "please try again later.")
    else:
        (st.success if report.accepted else st.info)(plain(report.summary()))
        if report.accepted:
            st.dataframe(pd.DataFrame({"accepted run_id": report.accepted}), hide_index=True, key="sub_ok")
        if report.refused:
            st.dataframe(pd.DataFrame(report.refused, columns=["where", "reason"]), hide_index=True,
                         key="sub_refused")
        st.caption("The leaderboard shows new runs within 30 s (it rereads the store at most that often).")
app.name_uploads()  # the upload's accessible name: its label
