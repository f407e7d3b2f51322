"""Compare methods: does IIMM (or another zero-shot score) predict the gain and the forgetting?"""
import pandas as pd
import streamlit as st

import app
from core import cards, charts, forecast, forecast_select, predictor_eval, predictor_shown, ranking, store
from core.text import plain

app.ensure_navigation()
MODEL_KEYS = ["model", "pretrained"]
PREDICTOR_CSVS = sorted(store.SHIPPED_DIR.rglob("predictors.csv"))  # world v1's, world v2's analyses
NUM, TXT = st.column_config.NumberColumn, st.column_config.TextColumn
OUTCOME_NAMES = {"id_gain": "in-domain gain", "ood_change": "out-of-domain change", "norm_gain": "normalised gain"}


@st.cache_data(ttl=30, max_entries=32)  # keyed by a URL-chosen subset of methods: bounded
def fit_table(roots: tuple, version: int, model: str, pretrained: str, methods: tuple, include: bool) -> pd.DataFrame:
    runs = store.query_runs(app.load_runs(roots, include), filters={"model": [model], "pretrained": [pretrained],
                                                             "method": list(methods)})
    out = forecast.predictor_table(runs, ["iimm"], outcomes=("id_gain", "ood_change"))
    out = ranking.without_baselines(out)
    return out.assign(method=out["method"].map(cards.method_title), outcome=out["outcome"].map(OUTCOME_NAMES),
                      note=forecast.fit_notes(out))  # why a row has no statistics: blank cells said nothing


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
app.model_notice(model, pretrained, all_runs)
runs = mine if not methods else mine[mine["method"].isin(methods)]
for tab, outcome in zip(st.tabs(["IIMM vs in-domain gain", "IIMM vs out-of-domain change"]),
                        ("id_gain", "ood_change")):
    try:
        tab.altair_chart(charts.iimm_vs_outcome_by_method(runs, outcome))
    except ValueError as exc:  # no runs with the values this chart needs
        tab.info(f"Nothing to draw: {exc}")

st.subheader("How well IIMM explains each outcome, per method")
fits = fit_table(roots, app.store_version(roots), model, pretrained, tuple(methods), include)
if fits.empty:
    st.info("No fine-tuning runs of this model to fit (the zero-shot baseline trains nothing and is left out).")
else:
    st.dataframe(fits, hide_index=True, key="cmp_fit", column_order=[
        "method", "outcome", "n", "pearson_r", "kendall_tau", "r2", "lodo_mae", "note"], column_config={
        "n": NUM("datasets"), "pearson_r": NUM("Pearson r", format="%.2f"),
        "kendall_tau": NUM("Kendall τ", format="%.2f"), "r2": NUM("R²", format="%.2f"),
        "lodo_mae": NUM("leave-one-dataset-out error (points)", format="%.1f"), "note": TXT("note")})

if PREDICTOR_CSVS:
    st.subheader("IIMM against the other zero-shot and transferability scores")
    try:  # the shipped table with most rows of the model picked above, those rows
        tables = predictor_shown.read_each(PREDICTOR_CSVS, app.shipped_csv)  # one unreadable table hides no other
        source, raw = predictor_shown.table_for_model(tables, model, pretrained)
        st.caption(f"From `python -m jobs.predictors` on the shipped runs of this model "
                   f"(`{source.relative_to(store.SHIPPED_DIR)}`): mean |Kendall τ| over methods (higher = ranks "
                   "datasets better) and mean leave-one-dataset-out error of a straight-line fit (lower = better).")
        table = predictor_shown.predictor_summary(raw)
        table = table.assign(outcome=table["outcome"].map(OUTCOME_NAMES).fillna(table["outcome"]))
        if table.empty:
            raise ValueError(f"{source.name} has no scored (ok) rows of this model")
        if asked := [v for v in st.query_params.get_all("pred_outcome") if v not in set(table["outcome"])]:  # a link's
            st.warning(app.unmatched_link_text("outcome", asked, f"showing {table['outcome'].iloc[0]}"))  # unknown one
        pick = st.segmented_control("outcome", list(table["outcome"].unique()), key="pred_outcome", bind=app.URL,
                                    default=table["outcome"].iloc[0]) or table["outcome"].iloc[0]
        shown = table[table["outcome"] == pick].reset_index(drop=True)
        where = shown.index[shown["predictor"] == "iimm"]
        if len(where):
            st.write(f"IIMM ranks {where[0] + 1} of {len(shown)} by mean |τ| for {plain(pick)}.")
        st.dataframe(shown.assign(predictor=shown["predictor"].map(cards.predictor_title)), hide_index=True,
                     key="cmp_predictors", column_order=["predictor", "family", "mean_abs_tau", "mean_lodo_mae",
                                                          "n_methods"], column_config={
            "mean_abs_tau": NUM("mean |τ|", format="%.2f"), "mean_lodo_mae": NUM("mean LODO error", format="%.2f"),
            "n_methods": NUM("methods")})
        st.caption("Which predictor wins, by how much over IIMM, and in how many methods its 95 % τ interval "
                   "excludes 0 (two-level bootstrap: datasets, then seeds):")
        st.dataframe(predictor_shown.winners_shown(predictor_eval.winners(raw)), hide_index=True, key="cmp_winners")
        selection_csv = source.with_name("forecast-selection.csv")  # the procedure scored on the same runs
        selection = app.shipped_csv(selection_csv) if selection_csv.is_file() else pd.DataFrame(columns=MODEL_KEYS)
        if len(selection := selection[(selection["model"] == model) & (selection["pretrained"] == pretrained)]):
            rules = ", ".join(map(str, selection["rule"].unique())) if "rule" in selection else "not recorded"
            st.caption(f"The forecast's predictor choice (nested leave-one-dataset-out; selection rule {rules}) and "
                       "the measured coverage of its 95 % intervals on held-out datasets, beside the IIMM-only line's:")
            st.dataframe(predictor_shown.coverage_shown(forecast_select.coverage_summary(selection)), hide_index=True,
                         key="cmp_coverage")
    except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as exc:
        st.warning(f"No shipped predictor table to show: {plain(exc)}")
