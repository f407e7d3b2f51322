"""core.charts with awkward inputs: clashing or odd method names, non-finite values, huge stores, labels."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core import charts, ranking, store
from tests.fixtures import chart_subtitle, make_fixture_records


def _runs(**kwargs) -> pd.DataFrame:
    return store.records_to_frame(make_fixture_records(**kwargs))


def _colour_scales(spec: dict) -> list[dict]:
    """The scale of every colour encoding with a domain, in any layer or panel of ``spec``."""
    layers = [layer for panel in spec.get("concat", [spec]) for layer in panel["layer"]]
    return [layer["encoding"]["color"]["scale"] for layer in layers
            if "domain" in layer.get("encoding", {}).get("color", {}).get("scale", {})]


def test_methods_that_share_a_title_keep_their_own_colour_and_legend_entry():
    """'lora', 'LoRA' and 'Lora' are all titled 'LoRA': the colour domain held 'LoRA' three times, so Vega-Lite
    drew the three methods in the first colour under one legend entry."""
    runs = _runs(n_datasets=4, methods=("lora", "LoRA", "Lora"))
    for chart in (charts.gain_vs_forgetting(ranking.method_ranking(runs)), charts.iimm_vs_outcome(runs, "id_gain")):
        (scale, *_) = _colour_scales(chart.to_dict())
        assert len(set(scale["domain"])) == 3 and len(set(scale["range"])) == 3, scale
        assert sorted(label.split(" (")[0] for label in scale["domain"]) == ["LoRA · LoRA", "LoRA · Lora",
                                                                             "LoRA · lora"]
    panels = charts.iimm_vs_outcome_by_method(runs, "id_gain").to_dict()["concat"]
    assert sorted(p["title"]["text"] for p in panels) == ["LoRA · LoRA", "LoRA · Lora", "LoRA · lora"]
    assert charts.method_titles(["full", "lora"]) == {"full": "Full", "lora": "LoRA"}  # unique titles unchanged


def test_a_method_named_by_a_number_is_drawn():
    """A hand-made frame's method 1: colours and titles are keyed by the name's text, so every chart raised
    KeyError: 1."""
    runs = _runs(n_datasets=4, methods=("lora", "full"))
    runs["method"] = runs["method"].map({"lora": 1, "full": 2})
    rows = ranking.method_ranking(runs)
    for chart in (charts.iimm_vs_outcome(runs, "id_gain"), charts.gain_vs_forgetting(rows)):
        (scale, *_) = _colour_scales(chart.to_dict())
        assert sorted(label.split(" (")[0] for label in scale["domain"]) == ["1", "2"]
    panels = charts.iimm_vs_outcome_by_method(runs, "id_gain").to_dict()["concat"]
    assert [p["title"]["text"] for p in panels] == ["1", "2"] and all("n=4" in p["title"]["subtitle"] for p in panels)


def test_the_tradeoff_chart_refuses_rows_of_several_models():
    """The rows of two models drew each method twice in one colour under one label, and the legend's domain
    lost one of the two distinct titles (left uncoloured): the chart draws one model's ranking."""
    two = pd.concat([_runs(n_datasets=4, methods=("lora", "full")),
                     _runs(n_datasets=4, methods=("lora", "full"), model="ViT-B-32", pretrained="random")])
    with pytest.raises(ValueError, match=r"one row .*\['full', 'lora'\]"):
        charts.gain_vs_forgetting(ranking.method_ranking(two))


@pytest.mark.parametrize("column", ["iimm", "id_gain"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_value_leaves_its_point_out_of_the_iimm_charts(column, value):
    """A run with an infinite IIMM or gain: its point had no place on an axis and the fit raised 'x and y must
    be finite' (for the whole chart, and the compare page showed 'Nothing to draw'). Its point is left out, as
    the ranking's means leave it, and the other four datasets are fitted."""
    runs = _runs(n_datasets=5, methods=("full",))
    runs.loc[runs["dataset"] == "fx-set-0", column] = value
    spec = charts.iimm_vs_outcome(runs, "id_gain").to_dict()
    assert '"Full (R\\u00b2=1.00, \\u03c4=1.00, n=4)"' in json.dumps(spec)
    points = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    drawn = sorted(r["dataset"] for r in spec["datasets"][points["data"]["name"]])
    assert drawn == [f"fx-set-{k}" for k in (1, 2, 3, 4)]
    panels = charts.iimm_vs_outcome_by_method(runs, "id_gain").to_dict()["concat"]
    assert panels[0]["title"]["subtitle"] == "R²=1.00 · τ=1.00 · n=4"


def test_the_iimm_charts_refuse_runs_of_several_models():
    """A model's pretrained and random-weight runs (one model name, two tags) were averaged into one point per
    dataset and fitted as one line; two model names drew two points per dataset on one line."""
    pretrained = _runs(n_datasets=4, methods=("full",), model="ViT-B-32", pretrained="openai")
    untrained = _runs(n_datasets=4, methods=("full",), model="ViT-B-32", pretrained="random")
    untrained["id_gain"] = 0.0
    both = pd.concat([pretrained, untrained], ignore_index=True)
    for draw in (charts.iimm_vs_outcome, charts.iimm_vs_outcome_by_method):
        with pytest.raises(ValueError, match="one model; these hold 2: ViT-B-32 openai, ViT-B-32 random"):
            draw(both, "id_gain")
    assert len(charts._points(both, "iimm", "id_gain")) == 8  # one point per tag and dataset
    charts.iimm_vs_outcome(untrained, "id_gain").to_dict()  # one model alone is drawn


def _tooltips(spec: dict) -> list[dict]:
    """Every tooltip entry of every layer (and panel) of ``spec``."""
    layers = [layer for panel in spec.get("concat", [spec]) for layer in panel["layer"]]
    return [tip for layer in layers for tip in layer.get("encoding", {}).get("tooltip", [])]


def test_tooltips_name_fields_in_words_and_format_every_number():
    """Tooltips read 'id_gain', 'n_seeds', 'method_title', 'x' and 'label', the IIMM points named the method by its
    key ('full'), and trainable parameters showed two decimals ('1,000.00')."""
    runs = _runs(n_datasets=4, methods=("full", "lora"), seeds=(0, 1))
    rows = ranking.method_ranking(runs)
    specs = [charts.iimm_vs_outcome(runs, "id_gain", highlight={"x": 0.3, "y": 5.0, "lo": 2.0, "hi": 8.0}),
             charts.iimm_vs_outcome_by_method(runs, "ood_change"), charts.gain_vs_forgetting(rows),
             charts.gain_vs_forgetting(rows, x="trainable_params", y="net"),
             charts.dataset_heatmap(ranking.dataset_matrix(runs, "ft_acc", model="worldclip-tiny",
                                                           pretrained="world-v1"), "ft_acc")]
    for chart in specs:
        tips = _tooltips(chart.to_dict())
        assert tips, chart
        for tip in tips:
            assert tip.get("title") and "_" not in tip["title"] and tip["title"] not in ("x", "y", "label"), tip
            assert tip["type"] != "quantitative" or "+" not in tip.get("format", "+"), tip  # '+' shows '−0.00'
    titles = {tip["title"]: tip for tip in _tooltips(specs[0].to_dict())}
    assert {"model", "dataset", "method", "IIMM", "in-domain gain (points)", "seeds averaged", "marked",
            "interval"} <= set(titles)
    assert titles["method"]["field"] == "method_title"  # 'Full', not the key 'full'
    params = {tip["field"]: tip for tip in _tooltips(specs[3].to_dict())}["trainable_params"]
    assert params["format"] == ",.0f" and params["title"] == "trainable parameters (log scale)"
    heat = [tip for tip in _tooltips(specs[4].to_dict()) if tip["field"] == "value"]
    assert heat and all(tip["title"] == "accuracy after fine-tuning (%)" for tip in heat)
    spec = specs[0].to_dict()
    circles = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "circle")
    assert {r["method_title"] for r in spec["datasets"][circles["data"]["name"]]} == {"Full", "LoRA"}


def _heatmap_labels(values: list[float], outcome: str = "id_gain") -> list[str]:
    cells = pd.DataFrame({"method_title": "LoRA", "dataset": [f"d{i}" for i in range(len(values))],
                          "value": values, "best": False, "n_seeds": 1})
    spec = charts.dataset_heatmap(cells, outcome).to_dict()
    return [r["label"] for r in next(iter(spec["datasets"].values()))]


def test_heatmap_cells_write_zero_and_missing_values_plainly():
    """A negative zero or a change of -0.04 was written '-0.0', a missing value '+nan' and an infinite one '+inf'."""
    assert _heatmap_labels([-0.0, -0.04, 0.04, -0.06, 2.0, np.nan, np.inf, -np.inf]) == [
        "+0.0", "+0.0", "+0.0", "-0.1", "+2.0", "—", "+∞", "−∞"]
    assert _heatmap_labels([-0.0, -0.004, 71.346, np.nan], "ft_acc") == ["0.00", "0.00", "71.35", "—"]


def test_every_outcome_and_score_axis_is_named_in_words_with_its_unit():
    """Axes of outcomes or scores other than IIMM, gain and OOD change read their keys ('ft_acc', 'inter_modal'),
    and normalised gain lost its unit ('normalised gain', where the tables say 'share of headroom')."""
    runs = _runs(n_datasets=4, methods=("full",))

    def axis_titles(chart) -> set[str]:
        layer = next(lay for lay in chart.to_dict()["layer"] if lay["mark"]["type"] == "circle")
        return {layer["encoding"]["x"]["title"], layer["encoding"]["y"]["title"]}

    assert axis_titles(charts.iimm_vs_outcome(runs, "ft_acc", predictor="inter_modal")) == {
        "accuracy after fine-tuning (%)", "IIMM's inter-modal term"}
    assert axis_titles(charts.iimm_vs_outcome(runs, "norm_gain", predictor="zs_acc")) == {
        "normalised gain (share of headroom)", "zero-shot accuracy (%)"}
    assert axis_titles(charts.iimm_vs_outcome(runs, "ood_change")) == {"IIMM", "out-of-domain change (points)"}


def test_the_iimm_subtitle_speaks_of_lines_only_when_some_are_drawn():
    """With two datasets, or one IIMM value for all, no line or band is drawn; the subtitle still explained
    'lines: straight-line fit per method; bands: 95% confidence'."""
    for runs in (_runs(n_datasets=2, methods=("full",)), _runs(n_datasets=4, methods=("full",)).assign(iimm=0.3)):
        spec = charts.iimm_vs_outcome(runs, "id_gain").to_dict()
        assert {layer["mark"]["type"] for layer in spec["layer"]} == {"circle"}
        assert chart_subtitle(spec) == "no line fitted: a fit needs 3 or more datasets with differing values"
    fitted = charts.iimm_vs_outcome(_runs(n_datasets=3, methods=("full", "bitfit")), "id_gain").to_dict()
    assert chart_subtitle(fitted).startswith("lines: straight-line fit per method; bands: 95% confidence")
    # one method drawn (the forecast page's chart): its subtitle spoke of a fit "per method"
    alone = charts.iimm_vs_outcome(_runs(n_datasets=3, methods=("full",)), "id_gain").to_dict()
    assert chart_subtitle(alone) == "line: straight-line fit; band: 95% confidence of the fitted mean"


def test_the_mark_leaves_out_an_interval_or_prediction_it_cannot_place():
    """A forecast whose interval is NaN: the mark's tooltip said 'interval [nan, nan]' beside a prediction."""
    runs = _runs(n_datasets=4, methods=("full",))
    spec = json.dumps(charts.iimm_vs_outcome(runs, "id_gain", highlight={
        "x": 0.3, "y": 5.0, "lo": float("nan"), "hi": float("nan")}).to_dict())
    assert "nan" not in spec.lower() and '"interval"' not in spec and '"shape": "diamond"' in spec
    spec = charts.iimm_vs_outcome(runs, "id_gain", highlight={"x": 0.3, "y": np.inf, "lo": 1.0, "hi": 2.0}).to_dict()
    assert not any(layer["mark"].get("shape") == "diamond" for layer in spec["layer"])  # no prediction to mark


def test_charts_of_a_100000_run_store_draw_one_model_s_points_under_altair_s_row_limit():
    """What each chart receives from a large store: 100 models x 20 methods x 10 datasets x 5 seeds (100,000
    runs). Each draws one model's seed means (at most methods x datasets rows), never the runs: Altair's
    to_dict refuses a data set of more than 5,000 rows (MaxRowsError)."""
    methods = tuple(f"m{i:02d}" for i in range(20))
    one = _runs(n_datasets=10, methods=methods, seeds=(0, 1, 2, 3, 4))
    big = pd.concat([one.assign(model=f"model-{k}") for k in range(100)], ignore_index=True)
    assert len(big) == 100_000
    mine = big[big["model"] == "model-7"]
    cells = ranking.dataset_matrix(big, "id_gain", model="model-7", pretrained="world-v1")
    for chart in (charts.iimm_vs_outcome(mine[mine["method"] == "m03"], "id_gain"),
                  charts.iimm_vs_outcome_by_method(mine, "ood_change"),
                  charts.gain_vs_forgetting(ranking.method_ranking(mine)), charts.dataset_heatmap(cells, "id_gain")):
        spec = chart.to_dict()  # raises MaxRowsError past 5,000 rows in one data set
        assert max(len(rows) for rows in spec["datasets"].values()) <= 20 * 10


def test_past_twenty_methods_every_method_still_has_a_colour_of_its_own():
    """With 25 methods the 20-colour palette repeated: m00 and m20 were one colour on the plot and in the legend."""
    methods = tuple(f"m{i:02d}" for i in range(40))
    colours = charts.method_colours([*methods, "zero_shot"])
    assert {colours[m] for m in methods[:21]} == set(charts.METHOD_PALETTE)  # the palette is used up first
    tuned = [colours[m] for m in methods]
    assert len(set(tuned)) == 40 and charts.BASELINE_COLOUR not in tuned
    assert all(_contrast_on_white(c) >= 3 for c in tuned)  # each still visible on a white page
    rows = ranking.method_ranking(_runs(n_datasets=4, methods=methods[:25]))
    (scale, *_) = _colour_scales(charts.gain_vs_forgetting(rows).to_dict())
    assert len(set(scale["range"])) == len(scale["domain"]) == 25


def _contrast_on_white(colour: str) -> float:
    """WCAG contrast ratio of a #rrggbb colour against white (computed here, not by the module under test)."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 1.05 / (0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2] + 0.05)


def test_a_long_method_name_is_cut_to_its_panel_and_keeps_every_column_on_the_page():
    """A 140-character method name (the schema allows 200) titled its compare panel at full length: the grid
    widened every column to it and, in Chromium at 1440 px, the chart drew 1,697 px into a 980 px column, so one
    panel in three was off the page. Each panel's title is now cut (…) to the panel's width."""
    runs = _runs(n_datasets=4, methods=("x" * 140, "lora", "full"))
    panels = charts.iimm_vs_outcome_by_method(runs, "id_gain").to_dict()["concat"]
    assert [p["title"].get("limit") for p in panels] == [p["width"] for p in panels] == [220] * 3
    # drawn as its start and end (core.text.shorten keep_end), and whole in the panel's description
    assert panels[2]["title"]["text"] == "X" + "x" * 14 + "…" + "x" * 14
    single = charts.iimm_panels_by_method(runs, "id_gain")[2].to_dict()
    assert "X" + "x" * 139 in single["description"]


def test_the_heatmap_keeps_its_cell_colours_and_text_ink_on_separate_scales():
    """Merged into one shared colour scale (a quantitative one and the ink's scale None), Vega-Lite failed in the
    browser and the matrix page drew nothing (tests/test_browser.py draws it in Chromium)."""
    cells = pd.DataFrame({"method_title": ["A", "B"], "dataset": "d1", "value": [4.0, -1.0], "best": [True, False],
                          "n_seeds": 1})
    assert charts.dataset_heatmap(cells, "id_gain").to_dict()["resolve"] == {"scale": {"color": "independent"}}


def test_the_tradeoff_subtitle_speaks_of_bars_only_when_some_are_drawn():
    """On axes with no interval (net gain against trainable parameters) no bar is drawn; the subtitle still said
    'bars: 95 % interval over datasets'."""
    rows = ranking.method_ranking(_runs(n_datasets=4, methods=("full", "lora"), seeds=(0, 1)))

    def drawn(chart) -> tuple[bool, str]:
        spec = chart.to_dict()
        return any(layer["mark"]["type"] == "rule" for layer in spec["layer"]), chart_subtitle(spec)

    assert drawn(charts.gain_vs_forgetting(rows, x="trainable_params", y="net")) == (
        False, "ringed: nothing beats them on both gain and forgetting")
    assert drawn(charts.gain_vs_forgetting(rows)) == (
        True, "bars: 95 % interval over datasets; ringed: nothing beats them on both gain and forgetting")
    assert drawn(charts.gain_vs_forgetting(rows, subtitle="mine"))[1] == "mine"  # a caller's own is kept


@pytest.mark.parametrize("n_datasets", [16, 17, 40])
def test_the_heatmap_writes_values_in_only_while_its_cells_can_hold_them(n_datasets):
    """Streamlit fits the heatmap to the page: with world-v2's 40 datasets a cell was 17 px wide and every value
    was written over its neighbours. Past 16 datasets only the star is written; values are on hover."""
    cells = pd.DataFrame({"method_title": "LoRA", "dataset": [f"d{i:02d}" for i in range(n_datasets)],
                          "value": -1.25, "best": [i == 0 for i in range(n_datasets)], "n_seeds": 1})
    spec = charts.dataset_heatmap(cells, "id_gain").to_dict()
    labels = [r["label"] for r in next(iter(spec["datasets"].values()))]
    if n_datasets <= 16:
        assert labels == ["-1.2 ★"] + ["-1.2"] * (n_datasets - 1) and "hover" not in json.dumps(spec["title"])
    else:
        assert labels == ["★"] + [""] * (n_datasets - 1)
        assert chart_subtitle(spec).endswith("values on hover (too many datasets to write them in)")


def test_subtitles_come_in_lines_a_narrow_chart_writes_whole():
    """Vega cuts a title line at the chart's width, mid-word: at 800 px the ranking's subtitle read '... on both gain
    and f…', the heatmap's '... (too many datasets …', the forecast's IIMM chart (304 px) 'bands: 95% conf…'."""
    runs = _runs(n_datasets=4, methods=("full", "lora")).assign(random_weights=True)
    cells = pd.DataFrame({"method_title": "LoRA", "dataset": [f"d{i:02d}" for i in range(20)], "value": 1.0,
                          "best": True, "n_seeds": 1})
    for chart in (charts.gain_vs_forgetting(ranking.method_ranking(runs), random_weights=True),
                  charts.iimm_vs_outcome(runs, "id_gain"),
                  charts.dataset_heatmap(cells, "id_gain", random_weights=True)):
        lines = chart.to_dict()["title"]["subtitle"]
        assert lines[0] == "RANDOM WEIGHTS: an untrained network;" and all(len(line) <= 62 for line in lines), lines
    assert charts.gain_vs_forgetting(ranking.method_ranking(runs), random_weights=False).to_dict()["title"][
        "subtitle"] == ["bars: 95 % interval over datasets;", "ringed: nothing beats them on both gain and forgetting"]


@pytest.mark.parametrize("values, domain", [([3.0, 12.0], [0.0, 12.0]), ([-4.0, -1.0], [-4.0, 0.0]),
                                           ([-2.0, 5.0], [-2.0, 5.0])])
def test_the_heatmap_colours_gains_blue_and_losses_red_when_all_lie_on_one_side(values, domain):
    """Every gain positive (a random-weight fixture): Vega dropped the scale's middle at 0 ("domainMid exceeds domain
    min or max") and drew the smallest gains (+3.0) on the red, losing side."""
    cells = pd.DataFrame({"method_title": "LoRA", "dataset": ["a", "b"], "value": values, "best": True, "n_seeds": 1})
    layer = charts.dataset_heatmap(cells, "id_gain").to_dict()["layer"][0]
    assert layer["encoding"]["color"]["scale"] == {"scheme": "redblue", "domainMid": 0, "domain": domain}


def test_a_log_axis_asks_nothing_vega_lite_drops():
    """Ranking with a log axis (trainable parameters, time): Chromium's console warned 'x-scale's "zero" is dropped as
    it does not work with log scale' once per layer."""
    rows = ranking.method_ranking(_runs(n_datasets=4, methods=("full", "lora"), seeds=(0, 1)))
    spec = charts.gain_vs_forgetting(rows, x="trainable_params", y="id_gain").to_dict()
    scales = [(layer["encoding"][axis]["scale"], axis) for layer in spec["layer"] for axis in ("x", "y")
              if "scale" in layer["encoding"].get(axis, {})]
    assert scales and all("zero" not in scale for scale, axis in scales if axis == "x")
    assert all(scale["type"] == "log" for scale, axis in scales if axis == "x")
    assert all(scale["zero"] is False for scale, axis in scales if axis == "y")  # a linear axis keeps its own range


def test_tooltips_write_counts_as_whole_numbers():
    """The default tooltip format (',.2f') wrote '2.00' seeds averaged and '4.00' datasets."""
    runs = _runs(n_datasets=4, methods=("full", "lora"), seeds=(0, 1))
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    for chart in (charts.iimm_vs_outcome(runs, "id_gain"), charts.gain_vs_forgetting(ranking.method_ranking(runs)),
                  charts.dataset_heatmap(cells, "id_gain")):
        counts = [tip for tip in _tooltips(chart.to_dict()) if tip["field"] in ("n_seeds", "n_datasets")]
        assert counts and all(tip["format"] == ",.0f" for tip in counts), counts


def test_every_layer_names_its_own_tooltip():
    """Streamlit's theme gives a layer without a tooltip one of its raw fields: hovering a heatmap cell hit its
    text ('method_title BitFit', 'ink #111', 'label 75.45'; the cell's own tooltip was never seen), a trade-off
    label read 'predicted in-domain gain (points) 15.0172894871', the fit band 'x', 'lo', 'hi'. Every layer now
    has a titled tooltip, or none (the Pareto line's mark says tooltip null)."""
    runs = _runs(n_datasets=4, methods=("full", "lora"), seeds=(0, 1))
    rows = ranking.method_ranking(runs)
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    for chart in (charts.iimm_vs_outcome(runs, "id_gain", highlight={"x": 0.3, "y": 5.0, "lo": 2.0, "hi": 8.0}),
                  charts.iimm_vs_outcome_by_method(runs, "id_gain"), charts.gain_vs_forgetting(rows),
                  charts.dataset_heatmap(cells, "id_gain")):
        spec = chart.to_dict()
        for layer in [lay for panel in spec.get("concat", [spec]) for lay in panel["layer"]]:
            tips = layer.get("encoding", {}).get("tooltip")
            assert tips or layer["mark"].get("tooltip", "unset") is None, layer["mark"]
            assert all(tip.get("title") and "_" not in tip["title"] for tip in tips or []), tips


def test_the_marks_interval_end_that_rounds_to_zero_is_not_written_minus_zero():
    """A forecast interval from -0.001 to 4: the mark's tooltip and the chart's description wrote its low end
    '-0.00' (Python's format), where the chart's own tooltips (d3, no '+' flag) and the forecast table write a
    value that rounds to zero without a minus sign."""
    runs = _runs(n_datasets=4, methods=("full",))
    spec = charts.iimm_vs_outcome(runs, "id_gain", highlight={"x": 0.3, "y": 2.0, "lo": -0.001, "hi": 4.0}).to_dict()
    (mark,) = [row for rows in spec["datasets"].values() for row in rows if "interval" in row]
    assert mark["interval"] == "[0.00, 4.00]", mark
    assert "(interval 0.00 to 4.00)" in spec["description"], spec["description"]
