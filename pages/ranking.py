"""Ranking: one row per fine-tuning method of a model, seeds and datasets averaged; the landing page."""
from urllib.parse import quote

import streamlit as st

import app
from core import cards, charts, ranking
from core.text import zeros_unsigned
from ranking_ui import mixed, table

app.ensure_navigation()
NUM, TXT, SMALL = st.column_config.NumberColumn, st.column_config.TextColumn, "small"


st.title("Which fine-tuning method should you use?")
st.write("Each row is one way of fine-tuning a vision-language model: the accuracy points it **adds** on the "
         "task it is trained for (*in-domain gain*) and what it **costs** on tasks it never saw "
         "(*out-of-domain change*; closer to 0 = less forgetting), averaged over datasets and seeds. "
         "Low and high: the 95 % interval over datasets. [What the numbers mean](/about)")
roots = app.store_roots()
include = app.source_controls(roots)
runs = app.load_runs(roots, include)
if runs.empty:
    st.info(app.no_runs_text(roots, "No runs yet. Run a grid (`python -m jobs.grid jobs/configs/smoke.toml "
                             "--results results/smoke`) and reload; the About page says more."))
    st.stop()
row = st.container(horizontal=True)  # each select as wide as its options (a column cut them): a narrow page wraps
model, pretrained = app.pick_model(runs, row, fit=True)
rank_by = app.link_select(row, "rank by", {k: v[1] for k, v in ranking.RANK_BY.items()}, "rank", fit=True)
mine = runs[(runs["model"] == model) & (runs["pretrained"] == pretrained)]
names = app.option_labels(sorted(mine["dataset"].dropna().unique()))
datasets = app.link_multiselect(row, "datasets (none = all)", names, "dataset", "dataset", width=320)
untrained = app.model_notice(model, pretrained, runs)  # said in the table and on the chart: either may be saved alone
version, picked = app.store_version(roots), (model, pretrained, tuple(datasets))
texts, averaged = mixed(roots, version, *picked, include)
for text in texts:
    st.warning(text)
rows = table(roots, version, *picked, rank_by, include)
if rows.empty:
    st.info("No successful fine-tuning runs for this choice.")
    st.stop()
labels = cards.card_options(app.load_runs(roots)["method"].dropna())  # the cards page's options: its link values
same = ranking.same_datasets(rows)  # then the sentence says how many and the table drops the column
st.markdown(ranking.verdict_text(rows))

if rows["rank"].isna().any():
    st.caption(f"Methods without a measured {ranking.RANK_BY[rank_by][1]} are not ranked.")
shown = rows.assign(
    model_label=cards.model_label_column(rows, {(model, pretrained)} if untrained else set()),
    **{c: zeros_unsigned(rows[c], 1) for c in ("id_gain", "ood_change")},  # no '-0.0' beside an end's '+0.0'
    **app.interval_ends(rows, "id_gain"), **app.interval_ends(rows, "ood_change"),  # numbers: sorted as numbers
    front=rows["pareto"].map({True: "✔ best", False: ""}), averaged=[averaged.get(m, "") for m in rows["method"]],
    card=["/cards?card=" + quote(labels.get(str(m)) or app.option_text(cards.method_title(m)))
          for m in rows["method"]])  # or: a method only submissions hold, which the cards page does not list
st.dataframe(shown, hide_index=True, key="rk_table", column_order=[*(["model_label"] if untrained else []),
    "rank", "method_title", "id_gain", "id_gain_lo", "id_gain_hi", "ood_change", "ood_change_lo", "ood_change_hi",
    "front", "trainable_params", "wall_time_s", "peak_mb", *([] if same else ["n_datasets", "n_ood_datasets"]), "card",
    *(["averaged"] if averaged else [])], column_config={  # averaged: a saved table keeps the warnings above
    "model_label": TXT("model"), "rank": NUM("rank", width=40), "method_title": TXT("method", width=180),
    "id_gain": NUM("gain", format="%+.1f", width=SMALL, help="in-domain gain: mean accuracy points gained on the "
                                                              "trained task"),
    **app.interval_config(rows, "id_gain", "the in-domain gain's 95 % interval over datasets", width=52),
    "ood_change": NUM("OOD change", format="%+.1f", width=90, help="out-of-domain: mean accuracy change on held-out "
                                                                   "tasks; 0 = no forgetting"),
    **app.interval_config(rows, "ood_change", "the OOD change's 95 % interval over datasets", width=52),
    "front": TXT("Pareto", width=64),
    "trainable_params": NUM("trainable", format="compact", width=SMALL, help="trainable parameters"),
    "wall_time_s": NUM("time/run (s)", format="%.0f", width=90, help="mean wall time of one run"),
    "peak_mb": NUM("memory (MB)", format="%.0f", width=100, help="peak memory of a run's process"),
    "n_datasets": NUM("datasets", width=SMALL, help="datasets averaged (each the mean of its seeds)"),
    "n_ood_datasets": NUM("OOD datasets", width=SMALL, help="datasets behind the OOD change (its panel measured)"),
    "card": st.column_config.LinkColumn("card", display_text="card", width=50),
    "averaged": TXT("averaged", help="what the row averages that its numbers do not say (the warnings above)")})

row, axes = st.container(horizontal=True), {k: v[0] for k, v in charts.TRADEOFF_AXES.items()}  # a row as above
x, y = app.link_select(row, "x axis", axes, "x", fit=True), app.link_select(row, "y axis", axes, "y", index=1, fit=True)
a3 = row.container(width="content")  # the links beside them, or below on a narrow page
try:
    st.altair_chart(charts.readable(charts.gain_vs_forgetting(rows, x=x, y=y, random_weights=untrained)))
except ValueError as exc:
    st.info(f"Nothing to draw: {exc}")
opened = mine[mine["dataset"].isin(datasets)] if datasets else mine  # the runs the link shows
a3.page_link("pages/runs.py", label=f"All {len(opened)} runs of this model" + (" on these datasets" if datasets else ""),
             icon=":material/table_rows:", query_params=app.carried("model", "dataset", "submitted"))
a3.page_link("pages/matrix.py", label="Every method on every dataset", icon=":material/grid_on:",
             query_params=app.carried("model", "submitted"))  # the runs counted are the runs opened
