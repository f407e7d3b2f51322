"""All runs: every stored run, one row each; filters, sort and the chosen run live in the URL."""
import pandas as pd
import streamlit as st

import app
from core import cards, ranking, store
from core.text import zeros_unsigned

app.ensure_navigation()
NUM, BAR = st.column_config.NumberColumn, st.column_config.ProgressColumn
#: Sortable columns, named as their table headers.
SORTS = {"id_gain": "in-domain gain", "ood_change": "out-of-domain change", "norm_gain": "normalised gain",
         "zs_acc": "zero-shot %", "ft_acc": "fine-tuned %", "iimm": "IIMM", "created_at": "date",
         "dataset": "dataset", "method": "method"}
# the outcomes beside what names the run: at 1440 px the sorted-by gain column began off-screen, after the bars
COLUMNS = {"model_label": "model", "method_title": "method", "dataset": "dataset",
           "id_gain": NUM(SORTS["id_gain"], format="%+.2f"), "ood_change": NUM(SORTS["ood_change"], format="%+.2f"),
           "norm_gain": NUM(SORTS["norm_gain"], format="%+.3f", help="in-domain gain / (100 − zero-shot %); "
                            "None where zero-shot accuracy was already 100 % (no headroom)"),
           "iimm": NUM("IIMM", format="%.3f"),
           "zs_acc": BAR(SORTS["zs_acc"], min_value=0, max_value=100, format="%.1f"),
           "ft_acc": BAR(SORTS["ft_acc"], min_value=0, max_value=100, format="%.1f"), "seed": "seed",
           "status": "status", "source": "source", "created_at": "date"}  # source: submitted, unverified or not
SHOWN = 1000  # rows sent to the browser; downloads hold every matching run


def matching(roots: tuple, model: str | None, filters: tuple, search: str, sort_by: str, desc: bool, include: bool,
             columns: tuple = ()):
    """The matching runs (core.store.matching_runs): every field, for downloads (built on click, uncached:
    275 MiB a view at 100k runs), or only ``columns``."""
    return store.matching_runs(app.load_runs(roots, include), model=app.model_pair(model) if model else None,
                               filters=dict(filters), search=search, sort_by=sort_by, descending=desc, columns=columns,
                               method_title=cards.method_title)  # the search matches the method names shown


@st.cache_data(ttl=30, max_entries=16)
def query(roots: tuple, version: int, *args) -> pd.DataFrame:  # args: those of matching() after roots
    return matching(roots, *args, columns=(*store.LEADERBOARD_COLUMNS, "created_at", "random_weights"))


st.title("All runs")
roots = app.store_roots()
include = app.source_controls(roots)
runs = app.load_runs(roots, include)
st.caption(f"{len(runs):,} runs in the store, one per row, each seed apart, zero-shot baselines and failed runs "
           "included; the ranking averages the successful fine-tuning runs.")
if runs.empty:
    st.info(app.no_runs_text(roots, "No runs yet: `python -m jobs.grid jobs/configs/smoke.toml --results "
                                    "results/smoke`"))
    st.stop()
f = st.columns(4)
models = app.model_labels(runs)
model = app.link_select(f[0], "model", models, "model", "showing all models", index=None, placeholder="all models")
filters = {}
for i, k in enumerate(("method", "dataset", "status"), start=1):
    labels = app.option_labels(sorted(runs[k].dropna().astype(str).unique()),
                               cards.method_title if k == "method" else str)
    filters[k] = app.link_multiselect(f[i], k, labels, k, k)
c1, c2, c3 = st.columns([3, 2, 1])
search = c1.text_input("search (method, dataset, model, source)", key="q", bind=app.URL)
sort_by = app.link_select(c2, "sort by", SORTS, "sort")  # a link's unknown sort or order is said, not dropped
order = app.link_select(c3, "order", {"desc": "largest first", "asc": "smallest first"}, "order")
args = (model, tuple((k, tuple(v)) for k, v in filters.items()), search, sort_by, order == "desc", include)
view = query(roots, app.store_version(roots), *args)
top = view.head(SHOWN)  # labels for the shown rows only: over all 100,000 runs they took a second
untrained = cards.untrained_models(top, flags_from=runs)  # a model's flag may sit on a record not shown
shown = top.assign(model_label=cards.model_label_column(top, untrained),  # and no '-0.00' cell (zeros_unsigned):
                   **{c: zeros_unsigned(top[c], d) for c, d in (("id_gain", 2), ("ood_change", 2), ("norm_gain", 3))},
                   method_title=top["method"].map(cards.method_titles(top["method"])))  # 'LoRA · Lora': distinct
if untrained:
    st.warning("Rows marked RANDOM WEIGHTS come from untrained networks: their numbers describe random weights.")
st.write(f"**{len(view):,}** of {len(runs):,} runs match; showing the first {len(shown):,}, sorted by "
         f"{SORTS[sort_by]} ({'largest' if order == 'desc' else 'smallest'} first).")
st.dataframe(shown, column_config=COLUMNS, hide_index=True, key="lb_table", column_order=list(COLUMNS))
for column, (kind, write) in zip(st.columns(2), {"CSV": store.to_csv_bytes, "Parquet": store.to_parquet_bytes}.items(), strict=True):
    column.download_button(f"Download {kind}", key=f"lb_{kind.lower()}", file_name=f"runs.{kind.lower()}",
                           data=lambda write=write: write(matching(roots, *args)))  # built on click: every field

st.header("One run in detail")
if len(view) > len(shown):
    st.caption(f"The picker lists the {len(shown):,} runs shown; filter or search to reach the other "
               f"{len(view) - len(shown):,}.")
rows = {r["run_id"]: r for r in shown.assign(random_weights=shown["model_label"].str.endswith(cards.UNTRAINED_MARK))
        .to_dict("records")}  # the picker marks untrained models as the table does
labels = app.option_labels(rows, lambda i: ranking.run_label(rows[i]), 200, tags=[f"run {i[:8]}" for i in rows])
if run_id := app.link_select(st, "run", labels, "run", index=None, placeholder="pick a run"):
    try:
        rec = store.run_details(app.load_runs(roots, include), run_id)
    except KeyError:  # removed from the store since this view's list was made
        st.info("That run is no longer in the store.")
        st.stop()
    app.run_details_view(rec, labels[run_id])
