"""The app: a leaderboard of measured fine-tuning runs, a comparison page, and a forecast page.

    streamlit run app.py
"""
import streamlit as st

st.set_page_config(page_title="IIMM fine-tuning leaderboard", page_icon=":material/query_stats:",
                   layout="wide")
st.navigation([
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:", default=True),
    st.Page("pages/compare.py", title="Compare methods", icon=":material/scatter_plot:"),
    st.Page("pages/forecast.py", title="Forecast your dataset", icon=":material/online_prediction:"),
    st.Page("pages/submit.py", title="Submit runs", icon=":material/upload:"),
]).run()
