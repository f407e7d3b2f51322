"""What the app's tables hold, read as a demanding user reads them (AppTest, on fixture stores in temp folders):
every method told apart, numbers without a negative zero, missing values said, not left blank."""
import pytest

from core import advice, store
from tests.app_helpers import app_test, page
from tests.fixtures import write_fixture_store


@pytest.fixture
def case_store(tmp_path, monkeypatch):
    """A store of methods whose names differ only in case ('lora', 'LoRA', 'Lora': each titled 'LoRA')."""
    write_fixture_store(tmp_path / "results", n_datasets=3, methods=("full", "lora", "LoRA", "Lora"))
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    return tmp_path / "results"


def test_every_table_tells_methods_that_share_a_title_apart(case_store):
    """The ranking, the All runs table and the Compare fit table titled 'lora', 'LoRA' and 'Lora' each 'LoRA':
    three rows (or twelve runs) no reader could tell apart, where the charts and the matrix write 'LoRA · Lora'."""
    expected = {"full": "Full", "lora": "LoRA · lora", "LoRA": "LoRA · LoRA", "Lora": "LoRA · Lora"}
    ranking = app_test().run()
    assert not ranking.exception
    table = ranking.dataframe[0].value
    assert dict(zip(table["method"], table["method_title"])) == expected
    runs = page("runs").run()
    assert not runs.exception
    table = runs.dataframe[0].value
    assert dict(zip(table["method"], table["method_title"])) == expected
    compare = page("compare").run()
    assert not compare.exception
    assert set(compare.dataframe[0].value["method"]) == set(expected.values())


def test_each_card_link_of_the_ranking_opens_its_own_methods_card(case_store):
    """The ranking's card links of 'lora', 'LoRA' and 'Lora' all read ?card=LoRA, which the Methods and models page
    took as 'lora': two of the three links opened another method's card."""
    from urllib.parse import parse_qs, urlsplit

    ranking = app_test().run()
    assert not ranking.exception
    links = dict(zip(ranking.dataframe[0].value["method"], ranking.dataframe[0].value["card"]))
    assert len(set(links.values())) == len(links)
    for method, link in links.items():
        opened = page("cards")
        opened.query_params.update(parse_qs(urlsplit(link).query))
        opened.run()
        assert not opened.exception and not opened.warning, method
        assert opened.selectbox(key="card").value == method
        assert f"**Name in results and grids:** {method}" in " ".join(m.value for m in opened.markdown)


@pytest.fixture
def near_zero_store(tmp_path, monkeypatch):
    """Full, and BitFit with an out-of-domain change of -0.01 on every dataset (it rounds to zero)."""
    from core import schema
    from tests.fixtures import make_fixture_records

    for record in make_fixture_records(n_datasets=3, methods=("full", "bitfit")):
        if record["method"] == "bitfit":
            record = dict(record, ood_after={k: v - 0.01 for k, v in record["ood_before"].items()}, ood_change=-0.01)
        store.write_record(schema.validate_record(record), tmp_path / "results")
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")


def styled(element):
    """What a styled ``st.dataframe`` shows in its cells (the Styler's display values)."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    return convert_arrow_bytes_to_pandas_df(element.proto.arrow_data.styler.display_values)


def test_a_change_that_rounds_to_zero_is_written_plus_zero_not_minus_zero(near_zero_store):
    """An out-of-domain change of -0.01 read '-0.0' in the ranking's verdict and interval column, and in every cell
    of the matrix's table (the heatmap beside it writes '+0.0')."""
    ranking = app_test().run()
    assert not ranking.exception
    verdict = ranking.markdown[1].value
    assert "BitFit, +" in verdict and "+0.0 out-of-domain" in verdict and "-0.0" not in verdict
    table = ranking.dataframe[0].value.set_index("method")  # the interval's ends, shown '%+.1f': '+0.0', '+0.0'
    assert [f"{table.loc['bitfit', end]:+.1f}" for end in ("ood_change_lo", "ood_change_hi")] == ["+0.0", "+0.0"]
    matrix = page("matrix")
    matrix.query_params["outcome"] = "out-of-domain change (points)"
    matrix.run()
    assert not matrix.exception
    cells = styled(matrix.dataframe[0])
    assert list(cells.loc["BitFit"]) == ["+0.0"] * 3 and list(cells.loc["Full"]) == ["-2.0", "-2.5", "-3.0"]


def test_the_forecast_table_writes_a_missing_interval_as_the_ranking_does(fixture_store):
    """The forecast table left the interval of a method it could not forecast blank (the ranking wrote '—'), and
    wrote an end that rounds to zero as '-0.0' and an infinite one as '+inf'. Its ends are now numbers, as the
    ranking's: missing where the interval is, the others the forecast's own."""
    from tests.app_helpers import sample_zip
    from tests.fixtures import write_fixture_store as write

    write(fixture_store, pretrained="random", n_datasets=2, methods=("adapter",))  # too few datasets to forecast
    at = page("forecast").run()
    at.file_uploader(key="fc_upload").set_value(("sample.zip", sample_zip(), "application/octet-stream"))
    at.run()
    at.button(key="fc_run").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value.set_index("method")
    assert table.loc["adapter", "status"] != "ok"
    ends = ["id_gain_lo", "id_gain_hi", "ood_change_lo", "ood_change_hi"]
    assert table.loc["adapter", ends].isna().all() and table.loc["full", ends].notna().all()
    assert all(table[end].dtype == "float64" for end in ends)  # numbers: a click on a header sorts them as such
    forecast = advice.forecast_rows(at.session_state["fc_result"][1]).set_index("method")
    assert table.loc["full", ends].tolist() == pytest.approx(forecast.loc["full", ends].tolist())


def test_the_cards_measured_table_names_its_count_columns_in_words(fixture_store):
    """The Methods and models page's measured table headed two columns with their field names, 'n_datasets' and
    'n_runs', where every other column has a header in words."""
    import json

    at = page("cards")
    at.query_params["card"] = "Full"
    at.run()
    assert not at.exception
    (measured,) = [d for d in at.dataframe if "n_runs" in d.proto.column_order]
    config = json.loads(measured.proto.columns)
    shown = [config.get(c, {}).get("label", c) for c in measured.proto.column_order]
    assert not [h for h in shown if h.startswith("n_") or "_" in h], shown
    assert config["n_datasets"]["label"] == "datasets" and config["n_runs"]["label"] == "runs"


def test_every_table_of_a_random_weight_model_says_so(fixture_store):
    """The ranking, the matrix's table, the Compare fit table and the forecast table of a random-weight model
    said nothing of it (the page's warning and the charts did): a table copied or downloaded on its own lost it."""
    from tests.app_helpers import sample_zip

    def marked(element) -> bool:  # its first column says so, or (the matrix's pivot) its index's header
        values = element.value
        if str(values.index.name).endswith("(RANDOM WEIGHTS)"):
            return True
        first = (list(element.proto.column_order) or list(values.columns))[0]
        return values[first].astype(str).str.endswith("(RANDOM WEIGHTS)").all()

    ranking = app_test().run()
    matrix, compare = page("matrix").run(), page("compare").run()
    forecast = page("forecast").run()
    forecast.file_uploader(key="fc_upload").set_value(("sample.zip", sample_zip(), "application/octet-stream"))
    forecast.run()
    forecast.button(key="fc_run").click().run()
    for name, at in (("ranking", ranking), ("matrix", matrix), ("compare", compare), ("forecast", forecast)):
        assert not at.exception, name
        assert marked(at.dataframe[0]), name
    for column in ("measure", "baseline", "predicted from"):  # the forecast's other tables: its numbers too
        (table,) = [d for d in forecast.dataframe if column in d.value.columns]
        assert marked(table), column


def _headers(element) -> list[str]:
    """The headers a table shows, in order: its columns' labels (a column's own name where it has none)."""
    import json

    config = json.loads(element.proto.columns)
    return [config.get(c, {}).get("label", c) for c in element.proto.column_order]


def test_a_trained_models_tables_carry_no_model_column(case_store):
    """The model column is the random-weights mark: a trained model's tables stay as they were. (Read by header:
    the ranking's column is model_label, headed "model", so its name alone was never "model".)"""
    ranking, compare = app_test().run(), page("compare").run()
    for at in (ranking, compare):
        assert not at.exception
        headers = _headers(at.dataframe[0])
        assert "method" in headers and "model" not in headers, headers
    matrix = page("matrix").run()
    assert not matrix.exception and matrix.dataframe[0].value.index.name == "method"


def test_a_number_cell_that_rounds_to_zero_holds_zero_not_a_tiny_negative(near_zero_store):
    """Streamlit's '%+.1f' reads a number's sign before rounding: the ranking's OOD change cell of -0.01 showed
    '-0.0' beside its interval '[+0.0, +0.0]', and so did the cards page's measured table."""
    import numpy as np

    ranking = app_test().run()
    assert not ranking.exception
    cell = ranking.dataframe[0].value.set_index("method").loc["bitfit", "ood_change"]
    assert cell == 0 and not np.signbit(cell)
    full = ranking.dataframe[0].value.set_index("method").loc["full", "ood_change"]
    assert full == pytest.approx(-2.5)  # a value that shows as itself is sent as itself
    cards = page("cards")
    cards.query_params["card"] = "BitFit"
    cards.run()
    assert not cards.exception
    (measured,) = [d for d in cards.dataframe if "n_runs" in d.proto.column_order]
    assert (measured.value["ood_change"] == 0).all() and not np.signbit(measured.value["ood_change"]).any()


def test_the_compare_winners_table_holds_numbers_shown_with_two_decimals(fixture_store):
    """The Compare page's winners table held every number as text: a click on 'IIMM's LODO error' put 10.08 before
    2.50. Its cells now hold the numbers, written as before by the table's Styler."""
    head = "model,pretrained,method,predictor,family,outcome,kendall_tau,lodo_mae,status,pearson_r,r2,tau_lo,tau_hi\n"
    rows = ("iimm,zero-shot,id_gain,0.8,10.08", "zs_acc,zero-shot,id_gain,0.5,7.65",
            "iimm,zero-shot,ood_change,0.4,2.5", "zs_acc,zero-shot,ood_change,0.2,3.0")
    (store.SHIPPED_DIR / "predictors.csv").write_text(head + "".join(
        f"worldclip-tiny,random,a,{r},ok,0.5,0.25,0.1,0.9\n" for r in rows), encoding="utf-8")
    at = page("compare").run()
    assert not at.exception and not [w for w in at.warning if "predictor table" in w.value]
    (winners,) = [d for d in at.dataframe if "IIMM's LODO error" in d.value.columns]
    errors = winners.value["IIMM's LODO error"]
    assert errors.tolist() == pytest.approx([10.08, 2.5])  # numbers: sorted, 2.5 comes first
    assert errors.sort_values().tolist() == pytest.approx([2.5, 10.08])
    shown = styled(winners)
    assert shown["IIMM's LODO error"].tolist() == ["10.08", "2.50"]
    assert shown["its LODO error"].tolist() == ["7.65", "2.50"] and shown["lead over IIMM"].tolist() == ["0.00"] * 2
    assert shown["best by LODO error"].tolist() == ["zero-shot accuracy", "IIMM"]


def test_the_matrix_table_writes_a_normalised_gain_that_rounds_to_zero_as_the_heatmap_does(tmp_path, monkeypatch):
    """The matrix's table wrote a normalised gain of -0.001 as '-0.00' ('{:.2f}') where the heatmap beside it
    writes '0.00': the '-0.0' of the gain columns was mended, not that of the unsigned outcomes."""
    from core import schema
    from tests.fixtures import make_fixture_records

    for record in make_fixture_records(n_datasets=3, methods=("full", "bitfit")):
        if record["method"] == "bitfit":  # 0.03 points lost of 30 points of headroom: a share of -0.001
            record = dict(record, ft_acc=record["zs_acc"] - 0.03, id_gain=-0.03,
                          norm_gain=-0.03 / (100 - record["zs_acc"]))
        store.write_record(schema.validate_record(record), tmp_path / "results")
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    matrix = page("matrix")
    matrix.query_params["outcome"] = "normalised gain (share of headroom)"
    matrix.run()
    assert not matrix.exception
    cells = styled(matrix.dataframe[0])
    assert list(cells.loc["BitFit"]) == ["0.00"] * 3, cells


def test_the_compare_fit_table_writes_a_statistic_that_rounds_to_zero_without_a_sign(case_store, monkeypatch):
    """Pearson r, Kendall τ and R² (two decimals) showed -0.001 as '-0.00': Streamlit's format reads the sign
    before rounding, as in the other tables' outcome columns."""
    import numpy as np

    from core import forecast

    real = forecast.predictor_table

    def near_zero(*args, **kwargs):
        return real(*args, **kwargs).assign(pearson_r=-0.001, kendall_tau=-0.004, r2=-0.002)
    monkeypatch.setattr(forecast, "predictor_table", near_zero)
    at = page("compare").run()
    assert not at.exception
    (fits,) = [d for d in at.dataframe if "kendall_tau" in d.proto.column_order]
    for column in ("pearson_r", "kendall_tau", "r2"):
        assert (fits.value[column] == 0).all() and not np.signbit(fits.value[column]).any(), column


def test_an_interval_with_one_end_not_finite_shows_neither_end():
    """An interval is shown whole or not at all: one dataset leaves both ends missing, and an end that is not a
    finite number (inf, text) leaves the other end out too, as the one-text interval's '—' did; -0.0 and an end
    that rounds to 0 read '+0.0'."""
    import numpy as np
    import pandas as pd

    import app

    rows = pd.DataFrame({"g_lo": [-1.26, np.nan, -np.inf, "x", -0.0, -0.04],
                         "g_hi": [2.0, 3.0, 4.0, 5.0, 0.0, np.inf]})
    ends = app.interval_ends(rows, "g")
    assert ends["g_lo"].tolist()[:1] == [-1.26] and ends["g_hi"].tolist()[:1] == [2.0]
    assert ends["g_lo"].iloc[1:4].isna().all() and ends["g_hi"].iloc[1:4].isna().all() and ends["g_hi"].isna().iloc[5]
    assert np.signbit(ends["g_lo"].iloc[4]) == np.False_ and ends["g_hi"].iloc[4] == 0.0
    assert app.interval_config(rows.iloc[1:4], "g", "its interval") == {"g_lo": None, "g_hi": None}
