"""Leaderboard: every stored run; filters, search and sort live in the URL so a view can be shared."""
import pandas as pd
import streamlit as st

from core import schema, store

META = ["total_params", "embed_dim", "weights_source"]
ORDER = ["model", "pretrained", "method", "dataset", "seed", "zs_acc", "ft_acc", "id_gain", "norm_gain",
         "ood_change", "iimm", "status", *META, "source", "run_id"]
NUM, BAR = st.column_config.NumberColumn, st.column_config.ProgressColumn
COLUMNS = {"zs_acc": BAR("zero-shot %", min_value=0, max_value=100, format="%.1f"),
           "ft_acc": BAR("fine-tuned %", min_value=0, max_value=100, format="%.1f"),
           "id_gain": NUM("ID gain", format="%+.2f"), "norm_gain": NUM("norm. gain", format="%+.3f"),
           "ood_change": NUM("OOD change", format="%+.2f"), "iimm": NUM("IIMM", format="%.3f"),
           "total_params": NUM("params", format="compact"), "embed_dim": NUM("embed width")}
CHOICES = {"sort": list(schema.SCALAR_FIELDS), "desc": ["1", "0"], "rows": ["100", "500", "2000"]}


@st.cache_data(ttl=30, show_spinner="Reading the result store…")
def load(roots: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = store.load_runs(list(roots))
    return runs, store.model_metadata(runs)


@st.cache_data(ttl=30, max_entries=16)
def query(roots: tuple[str, ...], filters: tuple, search: str, sort_by: str, desc: bool) -> pd.DataFrame:
    return store.query_runs(load(roots)[0], filters=dict(filters), search=search, sort_by=sort_by,
                            descending=desc)


def from_url(key: str, default, options: list | None = None, many: bool = False) -> None:
    """Seed widget state from the URL once per session; drop values not among ``options``."""
    k, values = f"lb_{key}", st.query_params.get_all(key)
    if k not in st.session_state:
        st.session_state[k] = values if many else (values[0] if values else default)
    if options is not None and many:
        st.session_state[k] = [v for v in st.session_state[k] if v in options]
    elif options is not None and st.session_state[k] not in options:
        st.session_state[k] = default


st.title("Leaderboard")
roots = tuple(str(r) for r in store.default_roots())
runs, meta = load(roots)
st.caption(f"{len(runs)} runs from {', '.join(roots)}")
if runs.empty:
    st.info("The store has no runs yet. Produce some with "
            "`python -m jobs.grid jobs/configs/smoke.toml --results results/smoke`.")
    st.stop()
filters, cols = {}, st.columns(3)
for i, key in enumerate(store.FILTER_KEYS):
    options = sorted(runs[key].dropna().astype(str).unique())
    from_url(key, None, options, many=True)
    filters[key] = cols[i % 3].multiselect(key, options, key=f"lb_{key}")
for key, default in (("q", ""), ("sort", "id_gain"), ("desc", "1"), ("rows", "500"), ("run", None)):
    from_url(key, default, CHOICES.get(key))
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
search = c1.text_input("search (model, method, dataset, source, run id)", key="lb_q")
sort_by = c2.selectbox("sort by", CHOICES["sort"], key="lb_sort")
desc = c3.selectbox("order", CHOICES["desc"], key="lb_desc", format_func={"1": "desc", "0": "asc"}.get)
rows = c4.selectbox("rows shown", CHOICES["rows"], key="lb_rows")
st.query_params.from_dict({**{k: v for k, v in filters.items() if v}, "q": search, "sort": sort_by,
                           "desc": desc, "rows": rows})

view = query(roots, tuple((k, tuple(v)) for k, v in filters.items()), search, sort_by, desc == "1")
shown = view.head(int(rows))[list(store.LEADERBOARD_COLUMNS)].merge(
    meta[["model", "pretrained", *META]], on=["model", "pretrained"], how="left")
styled = shown.style.map(lambda v: "" if pd.isna(v) else f"color: {'#1a7f37' if v >= 0 else '#cf222e'}",
                         subset=["id_gain", "norm_gain", "ood_change"])
st.write(f"**{len(view)}** of {len(runs)} runs match; showing the first {len(shown)}.")
st.dataframe(styled, column_config=COLUMNS, hide_index=True, key="lb_table",
             column_order=ORDER)
export, d1, d2 = view.drop(columns=[store.EXTRA_COLUMN]), *st.columns(2)
d1.download_button("Download CSV", lambda: store.to_csv_bytes(export), "runs.csv", "text/csv", key="lb_csv")
d2.download_button("Download Parquet", lambda: store.to_parquet_bytes(export), "runs.parquet",
                   "application/vnd.apache.parquet", key="lb_parquet")

st.subheader("Run details")
if st.session_state["lb_run"] not in set(shown["run_id"]):
    st.session_state["lb_run"] = None
if run_id := st.selectbox("run", list(shown["run_id"]), key="lb_run", placeholder="pick a run_id"):
    st.query_params["run"] = run_id
    rec = store.run_details(view, run_id)
    prov = rec.get("provenance") or {}
    st.write(f"`{rec['model']}` ({rec['pretrained']}) · **{rec['method']}** on **{rec['dataset']}** · "
             f"seed {rec['seed']} · {rec['status']} · source {rec['source']} · {rec.get('created_at')}")
    if rec.get("error"):
        st.error(rec["error"])
    left, right = st.columns(2)
    left.write("Out-of-domain accuracy before → after fine-tuning (%)")
    left.dataframe(pd.DataFrame(rec["ood_table"], columns=["set", "before", "after", "change"]),
                   hide_index=True, key="lb_ood")
    right.write(f"Reproduce (git revision `{prov.get('git_revision', 'unknown')}`):")
    right.code(rec["command"] or "(no reproducing command recorded)", language="bash")
    for title, value in (("config", rec.get("config")), ("package versions", prov.get("versions")),
                         ("full provenance", prov)):
        right.expander(title).json(value or {})
