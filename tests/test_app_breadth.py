"""The pages on stores of many, awkward names (Unicode forms, Markdown characters, case twins) through AppTest, on a
fixture store in a temp folder (never the real store)."""
import unicodedata

import streamlit as st

from core import store
from tests.app_helpers import page
from tests.fixtures import make_fixture_records

COMPOSED = "Café"
DECOMPOSED = unicodedata.normalize("NFD", COMPOSED)  # 'Cafe' + a combining acute: another name, shown alike


def renamed(records, **names):
    """``records`` with their datasets renamed (old -> new) and new run ids."""
    return [dict(r, dataset=names.get(r["dataset"], r["dataset"]), run_id=r["run_id"] + "-b") for r in records]


def test_per_dataset_page_shows_two_datasets_whose_names_differ_only_in_unicode_form(fixture_store):
    """Python reads 'Café' composed and decomposed as one identifier; pandas' Styler walked the table's rows as
    namedtuples of its column names (the datasets), so the page ended in 'SyntaxError: duplicate argument'."""
    for record in renamed(make_fixture_records(n_datasets=2, pretrained="random"),
                          **{"fx-set-0": COMPOSED, "fx-set-1": DECOMPOSED}):
        store.write_record(record, fixture_store / "unicode")
    st.cache_data.clear(), st.cache_resource.clear()
    at = page("matrix").run()
    assert not at.exception, at.exception[0].message if at.exception else ""
    columns = {unicodedata.normalize("NFC", c) for c in at.dataframe[0].value.columns}  # as a screen draws them
    assert {"Café", "Café (2)"} <= columns and len(columns) == 8  # the 6 fixture datasets and both, told apart


def test_runs_page_offers_two_methods_whose_names_differ_only_in_unicode_form_as_two_options(fixture_store):
    """Both were offered as 'Café': a visitor could not tell which of the two options filtered which method."""
    for record in make_fixture_records(n_datasets=1, methods=(COMPOSED.lower(), DECOMPOSED.lower()),
                                       pretrained="random"):
        store.write_record(record, fixture_store / "unicode")
    st.cache_data.clear(), st.cache_resource.clear()
    at = page("runs").run()
    assert not at.exception
    shown = [unicodedata.normalize("NFC", o) for o in at.multiselect(key="method").options]
    assert len(shown) == len(set(shown)) == 5 and {"Café", "Café (2)"} <= set(shown)


def test_a_right_to_left_method_name_keeps_to_itself_in_the_pages_sentences(fixture_store):
    """'Datasets won: שיטה 6': the count after a Hebrew name was drawn on its left, as if another method's."""
    for record in make_fixture_records(n_datasets=6, methods=("שיטה",), pretrained="rtl"):
        store.write_record(record, fixture_store / "rtl")
    st.cache_data.clear(), st.cache_resource.clear()
    at = page("matrix")
    at.query_params["model"] = "worldclip-tiny · rtl"  # bound widgets keep their option label in the URL
    at.run()
    assert not at.exception
    assert at.markdown[-1].value == "Datasets won (ties count for each): \u2068שיטה\u2069 6"
