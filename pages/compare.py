"""Compare methods: does IIMM predict the in-domain gain and the out-of-domain change?"""
import pandas as pd
import streamlit as st

from core import charts, forecast, store
from core.text import plain

PREDICTORS_CSV = store.SHIPPED_DIR / "predictors.csv"


@st.cache_data(ttl=30, show_spinner="Reading the result store…")
def load(roots: tuple[str, ...]) -> pd.DataFrame:
    return store.load_runs(list(roots))


@st.cache_data(ttl=30)
def fit_table(roots: tuple[str, ...], models: tuple[str, ...], methods: tuple[str, ...]) -> pd.DataFrame:
    runs = store.query_runs(load(roots), filters={"model": models, "method": methods})
    return forecast.predictor_table(runs, ["iimm"], outcomes=("id_gain", "ood_change"))


@st.cache_data(ttl=60)
def predictors_csv(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_csv(path)


def draw(build, *args, **kwargs) -> None:
    try:
        st.altair_chart(build(*args, **kwargs))
    except ValueError as exc:  # no runs with the values this chart needs
        st.info(plain(f"Nothing to draw: {exc}", max_chars=400))


st.title("Compare fine-tuning methods")
roots = tuple(str(r) for r in store.default_roots())
all_runs = load(roots)
if all_runs.empty:
    st.info("The store has no runs yet; see the leaderboard page for how to produce them.")
    st.stop()
if skipped := store.skipped_summary(store.skipped_records(all_runs)):
    st.warning(plain(skipped, max_chars=600))
c1, c2 = st.columns(2)
models = c1.multiselect("model (none = all)", sorted(all_runs["model"].dropna().unique()), key="cmp_model")
methods = c2.multiselect("method (none = all)", sorted(all_runs["method"].dropna().unique()),
                         key="cmp_method")
runs = store.query_runs(all_runs, filters={"model": models, "method": methods})
st.caption(f"{len(runs)} runs ({int((runs['status'] == 'ok').sum())} ok). Each point is one "
           "(model, method, dataset), averaged over seeds.")

st.caption("One panel per method: a point per dataset, the OLS line and its 95 % confidence band.")
for tab, outcome in zip(st.tabs(["IIMM vs ID gain", "IIMM vs OOD change"]), ("id_gain", "ood_change")):
    with tab:
        draw(charts.iimm_vs_outcome_by_method, runs, outcome)
st.subheader("How well IIMM explains each outcome, per method")
table = fit_table(roots, tuple(models), tuple(methods))
st.dataframe(table, hide_index=True, key="cmp_fit", column_config={
    c: st.column_config.NumberColumn(format="%.3f") for c in ("pearson_r", "kendall_tau", "r2", "lodo_mae")})

st.subheader("Gain vs forgetting")
draw(charts.gain_vs_forgetting, runs)
summary = charts.method_summary(runs)
st.dataframe(summary, hide_index=True, key="cmp_summary", column_config={
    c: st.column_config.NumberColumn(format="%+.2f") for c in summary.columns
    if c.endswith(("_mean", "_std"))})

if PREDICTORS_CSV.is_file():
    st.subheader("Predictor comparison (IIMM vs transferability baselines)")
    try:
        st.dataframe(predictors_csv(str(PREDICTORS_CSV), PREDICTORS_CSV.stat().st_mtime),
                     hide_index=True, key="cmp_predictors")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        st.warning(plain(f"{PREDICTORS_CSV.name} exists but cannot be read: {exc}", max_chars=400))
