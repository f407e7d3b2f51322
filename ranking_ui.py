"""The ranking page's store reads (pages/ranking.py), cached apart so that a "rank by" change reads no configs
again: the ranked table of one model's methods, and the caveats of what its rows average."""
import streamlit as st

import app
from core import data_versions, ranking, store


@st.cache_data(ttl=30, max_entries=32)
def table(roots: tuple, version: int, model: str, pretrained: str, datasets: tuple, rank_by: str, include: bool):
    runs = store.query_runs(app.load_runs(roots, include), filters={  # cached: the ranking reads provenance
        "model": [model], "pretrained": [pretrained], "dataset": list(datasets)})
    return ranking.unverified_marked(ranking.method_ranking(runs, rank_by=rank_by), runs, store.SUBMITTED_SOURCE)


@st.cache_data(ttl=30, max_entries=32)  # apart from table, so that a "rank by" change does not parse configs again
def mixed(roots: tuple, version: int, model: str, pretrained: str, datasets: tuple, include: bool,
          methods: tuple = ()) -> tuple:
    """What a model's rows average (core.data_versions.averaged_caveats): the warnings and the tables' words per
    method, over some ``datasets`` and ``methods`` (none: all); the ranking's and the Compare page's."""
    runs = store.query_runs(app.load_runs(roots, include), filters={
        "model": [model], "pretrained": [pretrained], "dataset": list(datasets), "method": list(methods)})
    return data_versions.averaged_caveats(runs)
