"""Charts of many methods (a registry past the shipped 19): every method keeps its legend entry, and the legend keeps
to the width of the chart on a narrow page."""
import json

from core import charts, ranking, store
from tests.fixtures import SHIPPED_METHODS, make_fixture_records

#: The shipped methods and 25 a user's registry adds: 44 fine-tuning methods and the zero-shot baseline.
MANY = (*SHIPPED_METHODS, *(f"my_method_{i:02d}" for i in range(25)))


def _colour_legend(spec: dict) -> dict:
    return next(layer["encoding"]["color"]["legend"] for layer in spec["layer"]
                if "color" in layer.get("encoding", {}) and "legend" in layer["encoding"]["color"])


def test_tradeoff_legend_keeps_every_method_of_a_large_registry_within_two_columns():
    """Vega-Lite's legend draws 30 entries and then '…15 entries': 15 of 45 methods had no legend entry, their
    marks no name but a tooltip. And a column per 10 methods made 5 columns, 1,060 px wide: on an 800 px page the
    chart (468 px) cut the third to fifth off at its right edge."""
    rows = ranking.method_ranking(store.records_to_frame(make_fixture_records(n_datasets=3, methods=MANY)))
    spec = json.loads(charts.gain_vs_forgetting(rows).to_json())
    legend = _colour_legend(spec)
    assert legend["symbolLimit"] == 0  # 0: no limit, every entry drawn
    assert legend["columns"] == 2 and 2 * charts.tradeoff.LEGEND_LABEL_PX <= 468
    assert len(rows) == 44 and spec["height"] == 560 + charts.LEGEND_ROW_PX * 22  # 2 columns of 22: the chart grows
    few = json.loads(charts.gain_vs_forgetting(rows.head(4)).to_json())
    assert _colour_legend(few)["columns"] == 1 and few["height"] == 560 + charts.LEGEND_ROW_PX * 4


def test_iimm_chart_legend_keeps_every_method_of_a_large_registry():
    runs = store.records_to_frame(make_fixture_records(n_datasets=3, methods=MANY))
    legend = _colour_legend(json.loads(charts.iimm_vs_outcome(runs, "id_gain").to_json()))
    assert legend["symbolLimit"] == 0


def test_heatmap_of_hundreds_of_datasets_names_those_that_fit_rather_than_writing_all_over_each_other():
    """300 datasets: every name was drawn (labelOverlap off) into 550 px, one grey smear where no name could be
    read (seen in Chromium at 1440 px). Up to 60 every dataset is still named; past it those that fit apart."""
    import pandas as pd

    def axis_and_subtitle(n):
        cells = pd.DataFrame({"method_title": "LoRA", "dataset": [f"d{i:03d}" for i in range(n)], "value": 1.0,
                              "best": True, "n_seeds": 1})
        spec = charts.dataset_heatmap(cells, "id_gain").to_dict()
        axis = next(layer["encoding"]["x"]["axis"] for layer in spec["layer"])
        return axis["labelOverlap"], " ".join(spec["title"]["subtitle"])

    assert axis_and_subtitle(60) == (False, "★ = best method on that dataset (seed means); values on hover (too "
                                            "many datasets to write them in)")
    overlap, subtitle = axis_and_subtitle(300)
    assert overlap == "greedy" and "some dataset names on hover" in subtitle


def test_long_method_titles_that_share_their_start_keep_their_ends_in_the_legend_and_on_the_heatmap():
    """'My custom adapter with a long name variant alpha' and '… beta': the legend (200 px) and the heatmap's axis
    cut both at the end into one 'My custom adapter with a long …' (Chromium), two entries no one could tell apart.
    Vega now keeps a long label's start and end."""
    methods = ("lora", "my_custom_adapter_with_a_long_name_variant_alpha", "my_custom_adapter_with_a_long_name_"
               "variant_beta")
    runs = store.records_to_frame(make_fixture_records(n_datasets=3, methods=methods))
    legend = _colour_legend(json.loads(charts.gain_vs_forgetting(ranking.method_ranking(runs)).to_json()))
    assert legend["labelExpr"] == "truncate(datum.label, 30, 'center')" and legend["labelLimit"] == 200
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    spec = charts.dataset_heatmap(cells, "id_gain").to_dict()
    axis = next(layer["encoding"]["y"]["axis"] for layer in spec["layer"])
    assert axis["labelExpr"] == "truncate(datum.label, 40, 'center')"


def test_compare_panels_tell_long_method_titles_with_a_shared_start_apart():
    """A panel's title was cut at its end (Vega's ``limit``): 'My custom adapter with a long name, variant alpha'
    and '… beta' were one text on two panels. Now each keeps its start and its end."""
    methods = ("my_custom_adapter_with_a_long_name_variant_alpha", "my_custom_adapter_with_a_long_name_variant_beta")
    runs = store.records_to_frame(make_fixture_records(n_datasets=4, methods=methods))
    titles = [panel.to_dict()["title"]["text"] for panel in charts.iimm_panels_by_method(runs, "id_gain")]
    assert len(set(titles)) == 2 and all(len(t) <= charts.iimm.PANEL_TITLE_CHARS and "…" in t for t in titles)
    assert titles[0].endswith("alpha") and titles[1].endswith("beta")
