"""Per dataset: every method on every dataset for one model and one outcome; the best of each dataset marked."""
import streamlit as st

import app
from core import cards, charts, data_versions, ranking, store
from core.text import fixed, plain, signed

app.ensure_navigation()
OUTCOMES = {k: charts.OUTCOME_TITLES[k] for k in ("id_gain", "ood_change", "norm_gain", "ft_acc")}


@st.cache_data(ttl=30, max_entries=32)
def matrix(roots: tuple, version: int, outcome: str, model: str, pretrained: str, include: bool) -> tuple:
    """The cells, the warning when a cell's seeds ran on different data (cached: it parses provenance), and the
    same per method (:func:`core.data_versions.mixed_data_methods`), which the table keeps in a column."""
    runs = app.load_runs(roots, include)
    cells = ranking.dataset_matrix(runs, outcome, model=model, pretrained=pretrained)
    mine = runs[(runs["model"] == model) & (runs["pretrained"] == pretrained)]  # rows resting on submissions say so
    mixed = data_versions.mixed_data(mine)
    return (ranking.unverified_marked(cells, mine, store.SUBMITTED_SOURCE), data_versions.mixed_data_text(mixed),
            data_versions.mixed_data_methods(mixed))


st.title("Every method on every dataset")
st.write("The ranking averages over datasets; here is what it averages. Each cell is one method fine-tuned "
         "on one dataset (the mean of its seeds); ★ marks the best method of each dataset.")
roots = app.store_roots()
include = app.source_controls(roots)
runs = app.load_runs(roots, include)
if runs.empty:
    st.info(app.no_runs_text(roots, "No runs yet; the About page says how to add some."))
    st.stop()
c1, c2 = st.columns(2)
model, pretrained = app.pick_model(runs, c1)
outcome = app.link_select(c2, "outcome", OUTCOMES, "outcome")  # a link's unknown outcome is said, not dropped
untrained = app.model_notice(model, pretrained, runs)  # the table says it as the heatmap does
cells, mixed, differ = matrix(roots, app.store_version(roots), outcome, model, pretrained, include)
if mixed:
    st.warning(mixed)
if cells.empty:
    st.info("No successful runs with this outcome for this model.")
    st.stop()
st.altair_chart(charts.readable(charts.dataset_heatmap(cells, outcome, random_weights=untrained)))
wins = cells[cells["best"]].groupby("method_title").size().sort_values(ascending=False)
st.write("Datasets won (ties count for each): " + ", ".join(f"{plain(t)} {n}" for t, n in wins.items()))
wide = cells.pivot_table(index="method_title", columns="dataset", values="value").rename_axis(
    index="method" + (cards.UNTRAINED_MARK if untrained else ""))
datasets, method_of = list(wide.columns), dict(zip(cells["method_title"], cells["method"], strict=False))
if differ:  # the warning above, per method: a saved table keeps it
    wide["averaged"] = [differ.get(method_of[title], "") for title in wide.index]
st.dataframe(app.styled(wide).format(signed if outcome in ("id_gain", "ood_change") else fixed, na_rep="—",  # no -0.0
                                     subset=datasets)
             .highlight_max(axis=0, subset=datasets,  # bold: not colour alone
                            props="background-color: #d4f0d4; font-weight: bold"))
