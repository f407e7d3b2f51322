"""Method and model cards: what each method trains, its defaults, cost and paper; what each model is."""
import re

import pandas as pd
import streamlit as st

import app
from core import cards, ranking
from core.text import plain, zeros_unsigned

app.ensure_navigation()


@st.cache_data(ttl=30)
def measured(roots: tuple, version: int) -> pd.DataFrame:
    return ranking.method_ranking(app.load_runs(roots), include_baselines=True)


st.title("Methods and models")
roots = app.store_roots()
runs = app.load_runs(roots)
untrained = cards.untrained_models(runs)  # the registry's and those whose records say random weights
left, right = st.columns(2)

with left:
    st.header("Method card")
    titles = cards.card_options(runs["method"].dropna())  # the ranking's card links use these labels
    name = app.link_select(st, "method", titles, "card")
    card = cards.method_card(name)
    st.subheader(plain(card.title))
    st.write(f"**Family:** {plain(card.family)}  \n**What trains:** {plain(card.trains, max_chars=400)}  \n"
             f"**Name in results and grids:** {plain(card.name)}")
    if card.paper_url:
        st.write(f"**Paper:** {card.paper_url}")
    if not card.known:
        st.info("This method is not described in the app's card registry yet (core/cards.py); the numbers "
                "below come from its stored runs.")
    if card.defaults:
        st.write(f"**Defaults** (override them in a grid TOML, section method.{plain(card.name)}):")
        written = [str(v) for v in card.defaults.values()]  # each value as written: a float column showed rank 4.0
        st.dataframe(pd.DataFrame({"setting": list(card.defaults), "default": written}), hide_index=True,
                     key="card_defaults")
    rows = measured(roots, app.store_version(roots))
    rows = rows[rows["method"] == name]
    if rows.empty:
        st.caption("No stored runs of this method yet.")
    else:
        st.write("**Measured** (one row per model; means over datasets):")
        counts = rows["trainable_params"].round()  # a mean over datasets: 799.8 read as a count
        st.dataframe(rows.assign(model=cards.model_label_column(rows, untrained), trainable_params=counts,
                                 **{c: zeros_unsigned(rows[c], 1) for c in ("id_gain", "ood_change")}),  # no -0.0
                     hide_index=True, key="card_measured", column_order=[
                         "model", "trainable_params", "id_gain", "ood_change", "wall_time_s", "n_datasets", "n_runs"],
                     column_config={"trainable_params": st.column_config.NumberColumn(
                         "trainable params", format="localized",
                         help="mean over datasets (a head grows with the classes)"),
                                    "id_gain": st.column_config.NumberColumn("in-domain gain", format="%+.1f"),
                                    "ood_change": st.column_config.NumberColumn("OOD change", format="%+.1f"),
                                    "wall_time_s": st.column_config.NumberColumn("time per run (s)", format="%.1f"),
                                    "n_datasets": st.column_config.NumberColumn("datasets", help="datasets averaged"),
                                    "n_runs": st.column_config.NumberColumn("runs", help="successful runs, seeds "
                                                                            "included")})  # headers, not field names
    if card.citation:
        paper = cards.CITATIONS[card.citation]
        st.write(f"**Paper:** [{paper.label}]({paper.url})")
        st.code(paper.bibtex, language="bibtex")

with right:
    st.header("Model card")
    model, pretrained = app.pick_model(runs) if not runs.empty else ("worldclip-tiny", "world-v1")
    mcard = cards.model_card(model, pretrained)
    weights = mcard.weights_source if mcard.random_weights or (model, pretrained) not in untrained else (
        f"random: its runs' records say they ran untrained (this tag would load {mcard.weights_source})")
    st.subheader(plain(mcard.title))
    st.write(f"**open_clip name:** {plain(mcard.open_clip_name)}  \n**pretrained tag:** "
             f"{plain(mcard.pretrained)}  \n**weights:** {plain(weights)}")
    app.model_notice(model, pretrained, runs)
    if mcard.markdown:
        with st.container(border=True, height=520):
            # the repository's own model card (not record data), its headings made smaller to fit the column
            st.markdown(re.sub(r"^(#+) ", r"###\1 ", mcard.markdown, flags=re.M))
