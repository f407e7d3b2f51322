"""Compare methods: does IIMM (or another zero-shot score) predict the gain and the forgetting?"""
import pandas as pd
import streamlit as st

import app
import ranking_ui
from core import cards, charts, forecast, ranking, store
from core.text import zeros_unsigned

app.ensure_navigation()
NUM, TXT = st.column_config.NumberColumn, st.column_config.TextColumn
OUTCOME_NAMES = {"id_gain": "in-domain gain", "ood_change": "out-of-domain change", "norm_gain": "normalised gain"}


@st.cache_data(ttl=30, max_entries=32)  # keyed by a URL-chosen subset of methods: bounded
def fit_table(roots: tuple, version: int, model: str, pretrained: str, methods: tuple, include: bool) -> pd.DataFrame:
    runs = store.query_runs(app.load_runs(roots, include), filters={"model": [model], "pretrained": [pretrained],
                                                             "method": list(methods)})
    out = forecast.predictor_table(runs, ["iimm"], outcomes=("id_gain", "ood_change"))
    out = ranking.unverified_marked(ranking.without_baselines(out).assign(  # as the ranking marks its rows
        method_title=lambda t: t["method"].map(cards.method_titles(t["method"]))), runs, store.SUBMITTED_SOURCE)
    return out.assign(method_key=out["method"], method=out["method_title"], outcome=out["outcome"].map(OUTCOME_NAMES),
                      note=forecast.fit_notes(out))  # why a row has no statistics: blank cells said nothing


@st.cache_data(ttl=30, max_entries=32)  # the panels took 1-2 s to build on every rerun (~20 s at 44 methods)
def panels(roots: tuple, version: int, model: str, pretrained: str, methods: tuple, include: bool, outcome: str,
           untrained: bool) -> list:
    mine = store.query_runs(app.load_runs(roots, include), filters={"model": [model], "pretrained": [pretrained]})
    chosen = mine if not methods else mine[mine["method"].isin(methods)]
    return [charts.readable(p) for p in charts.iimm_panels_by_method(chosen, outcome, random_weights=untrained)]


st.title("Does IIMM predict what fine-tuning does?")
st.write("IIMM is measured once, on the task's images, before any training. Each panel shows one method: "
         "a point per dataset (seed mean) and a straight-line fit. A steep, tight line means IIMM tells you "
         "in advance how much that method will gain or forget.")
roots = app.store_roots()
include = app.source_controls(roots)
all_runs = app.load_runs(roots, include)
if all_runs.empty:
    st.info(app.no_runs_text(roots, "The store has no runs yet; the About page says how to add some."))
    st.stop()
c1, c2 = st.columns(2)
model, pretrained = app.pick_model(all_runs, c1)
mine = all_runs[(all_runs["model"] == model) & (all_runs["pretrained"] == pretrained)]
trained = [m for m in sorted(mine["method"].dropna().unique()) if not cards.method_card(m).baseline]  # zero-shot: 0
titles = app.option_labels(trained, cards.method_title)
methods = app.link_multiselect(c2, "methods (none = all)", titles, "method", "method")
untrained = app.model_notice(model, pretrained, all_runs)  # the charts say so too: one may be saved on its own
version = app.store_version(roots)
texts, mixed = ranking_ui.mixed(roots, version, model, pretrained, (), include, tuple(methods))  # as the ranking
for text in texts:  # each panel's points are seed means: they average such runs too
    st.warning(text)
for tab, outcome in zip(st.tabs(["IIMM vs in-domain gain", "IIMM vs out-of-domain change"]),
                        ("id_gain", "ood_change"), strict=True):
    try:
        drawn = panels(roots, version, model, pretrained, tuple(methods), include, outcome, bool(untrained))
    except ValueError as exc:  # no runs with the values this chart needs
        tab.info(f"Nothing to draw: {exc}")
        continue
    row = tab.container(horizontal=True)  # wraps: one chart of the panels ran past the page on narrow screens
    for panel in drawn:
        row.altair_chart(panel, width="content")

st.header("How well IIMM explains each outcome, per method")
fits = fit_table(roots, version, model, pretrained, tuple(methods), include)
if fits.empty:
    st.info("No fine-tuning runs of this model to fit (the zero-shot baseline trains nothing and is left out).")
else:
    marked = cards.model_label_column(fits, {(model, pretrained)} if untrained else set())  # as the charts say it
    averaged_column = {"averaged": [mixed.get(m, "") for m in fits["method_key"]]} if mixed else {}  # only then
    shown = fits.drop(columns="method_key").assign(model=marked, **averaged_column, **{
        c: zeros_unsigned(fits[c], 2) for c in ("pearson_r", "kendall_tau", "r2")})
    st.dataframe(shown, hide_index=True, key="cmp_fit", column_order=[  # no '-0.00' (zeros_unsigned)
        *(["model"] if untrained else []), "method", "outcome", "n", "pearson_r", "kendall_tau", "r2", "lodo_mae",
        "note", *(["averaged"] if mixed else [])], column_config={
        "n": NUM("datasets"), "pearson_r": NUM("Pearson r", format="%.2f"),
        "kendall_tau": NUM("Kendall τ", format="%.2f"), "r2": NUM("R²", format="%.2f"),
        "lodo_mae": NUM("leave-one-dataset-out error (points)", format="%.1f"), "note": TXT("note"),
        "averaged": TXT("averaged")})

app.predictor_tables(model, pretrained, OUTCOME_NAMES)  # IIMM against the other scores, from jobs.predictors
