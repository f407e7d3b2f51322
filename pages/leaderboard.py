"""Leaderboard: every stored run; filters, search and sort live in the URL so a view can be shared."""
import pandas as pd
import streamlit as st

from core import schema, store
from core.text import plain

META = ["total_params", "embed_dim", "weights_source"]
ORDER = ["model", "pretrained", "method", "dataset", "seed", "zs_acc", "ft_acc", "id_gain", "norm_gain",
         "ood_change", "iimm", "status", *META, "source", "run_id"]
NUM, BAR = st.column_config.NumberColumn, st.column_config.ProgressColumn
COLUMNS = {"zs_acc": BAR("zero-shot %", min_value=0, max_value=100, format="%.1f"),
           "ft_acc": BAR("fine-tuned %", min_value=0, max_value=100, format="%.1f"),
           "id_gain": NUM("ID gain", format="%+.2f"), "norm_gain": NUM("norm. gain", format="%+.3f"),
           "ood_change": NUM("OOD change", format="%+.2f"), "iimm": NUM("IIMM", format="%.3f"),
           "total_params": NUM("params", format="compact"), "embed_dim": NUM("embed width")}
SORTS = list(schema.SCALAR_FIELDS)
SHOWN = 1000  # rows sent to the browser; downloads hold every matching run


# The whole store is held once, read-only, by reference (cache_resource): copying 100k runs out of
# cache_data on every query costs more than the query. Everything derived from it is cache_data.
@st.cache_resource(ttl=30, max_entries=4, show_spinner="Reading the result store…")
def load(roots: tuple[str, ...]) -> pd.DataFrame:
    return store.load_runs(list(roots))


@st.cache_data(ttl=30)
def overview(roots: tuple[str, ...]) -> tuple[int, dict[str, list[str]], pd.DataFrame]:
    runs = load(roots)  # small results only, so a rerun never copies the whole store
    return len(runs), {k: sorted(runs[k].dropna().astype(str).unique()) for k in store.FILTER_KEYS}, \
        store.model_metadata(runs)[["model", "pretrained", *META]]


@st.cache_data(ttl=30, max_entries=16)
def query(roots: tuple[str, ...], filters: tuple, search: str, sort_by: str, desc: bool,
          full: bool = False) -> pd.DataFrame:
    view = store.query_runs(load(roots), filters=dict(filters), search=search, sort_by=sort_by,
                            descending=desc)
    return view.drop(columns=[store.EXTRA_COLUMN]) if full else view[list(store.LEADERBOARD_COLUMNS)]


@st.cache_data(ttl=30, max_entries=64)
def details(roots: tuple[str, ...], run_id: str) -> dict:
    return store.run_details(load(roots), run_id)


st.title("Leaderboard")
roots = tuple(str(r) for r in store.default_roots())
n_runs, options, meta = overview(roots)
st.caption(plain(f"{n_runs} runs from {', '.join(roots)}", max_chars=600))
if skipped := store.skipped_summary(store.skipped_records(load(roots))):
    st.warning(plain(skipped, max_chars=600))
if not n_runs:
    st.info("No runs yet: `python -m jobs.grid jobs/configs/smoke.toml --results results/smoke`")
    st.stop()
# Every widget is bound to a URL query parameter named by its key, so a view can be shared.
filters, cols, url = {}, st.columns(3), "query-params"
for i, key in enumerate(store.FILTER_KEYS):
    filters[key] = cols[i % 3].multiselect(key, options[key], key=key, bind=url)
c1, c2, c3 = st.columns([3, 2, 1])
search = c1.text_input("search (model, method, dataset, source, run id)", key="q", bind=url)
sort_by = c2.selectbox("sort by", SORTS, index=SORTS.index("id_gain"), key="sort", bind=url)
order = c3.selectbox("order", ["desc", "asc"], key="order", bind=url)
args = (roots, tuple((k, tuple(v)) for k, v in filters.items()), search, sort_by, order == "desc")
view = query(*args)
shown = view.head(SHOWN).merge(meta, on=["model", "pretrained"], how="left")
styled = shown.style.map(lambda v: "" if pd.isna(v) else f"color: {'#1a7f37' if v >= 0 else '#cf222e'}",
                         subset=["id_gain", "norm_gain", "ood_change"])
st.write(f"**{len(view)}** of {n_runs} runs match; showing the first {len(shown)}.")
st.dataframe(styled, column_config=COLUMNS, hide_index=True, key="lb_table", column_order=ORDER)
d1, d2 = st.columns(2)  # built on click only: every matching run with all its fields
d1.download_button("Download CSV", lambda: store.to_csv_bytes(query(*args, True)), "runs.csv", key="lb_csv")
d2.download_button("Download Parquet", lambda: store.to_parquet_bytes(query(*args, True)), "runs.parquet",
                   key="lb_parquet")

st.subheader("Run details")
if run_id := st.selectbox("run", list(shown["run_id"]), index=None, key="run", bind=url,
                          placeholder="pick a run_id"):
    rec = details(roots, run_id)
    prov = rec.get("provenance") or {}
    st.write(" · ".join(plain(v) for v in (
        f"{rec['model']} ({rec['pretrained']})", f"{rec['method']} on {rec['dataset']}", f"seed {rec['seed']}",
        rec["status"], rec["source"], f"git {prov.get('git_revision') if isinstance(prov, dict) else None}")))
    if rec.get("error"):
        st.error(plain(rec["error"], max_chars=2000))
    left, right = st.columns(2)
    left.caption("Out-of-domain accuracy before → after fine-tuning (%)")
    left.dataframe(pd.DataFrame(rec["ood_table"], columns=["set", "before", "after", "change"]), key="lb_ood")
    right.caption("Reproduce with")
    right.code(rec["command"] or "(no reproducing command recorded)", language="bash")
    right.expander("config, package versions and the rest of the provenance").json(
        {"config": rec.get("config"), **prov})
