"""core.charts: the specs build, carry the expected fields, and summaries are right."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core import cards, charts, ranking, store
from tests.fixtures import LINES, SHIPPED_METHODS, make_fixture_records


@pytest.fixture()
def runs():
    return store.records_to_frame(make_fixture_records(
        n_datasets=5, methods=("full", "bitfit", "lora"), seeds=(0, 1), noise=0.3, n_failed=1))


def _spec(chart) -> str:
    return json.dumps(chart.to_dict())  # to_dict validates against the Vega-Lite schema


def test_iimm_charts_name_the_outcomes_as_the_pages_do(runs):
    """The compare panels' axes said 'ID gain (points)' and 'OOD change (points)' where every page and table
    says in-domain gain and out-of-domain change."""
    for outcome in ("id_gain", "ood_change"):
        for chart in (charts.iimm_vs_outcome(runs, outcome), charts.iimm_vs_outcome_by_method(runs, outcome)):
            spec = _spec(chart)
            assert f'"{charts.OUTCOME_TITLES[outcome]}"' in spec and "ID gain" not in spec and "OOD change" not in spec


def test_iimm_vs_outcome_spec(runs):
    spec = _spec(charts.iimm_vs_outcome(runs, "id_gain"))
    for needle in ('"iimm"', '"id_gain"', '"dataset"', '"model"', '"method"', "R\\u00b2=", "\\u03c4=",
                   '"mark": {"type": "area"', '"type": "line"'):
        assert needle in spec, needle


def test_iimm_vs_outcome_highlight_and_labels(runs):
    chart = charts.iimm_vs_outcome(runs, "ood_change", highlight={"x": 0.33, "y": -2, "lo": -3,
                                                                  "hi": -1, "label": "my set"})
    spec = _spec(chart)
    assert "my set" in spec and '"shape": "diamond"' in spec and "strokeDash" in spec
    assert len(chart.layer) == 7  # band, line, points, rule, its text label, diamond, interval
    assert any(layer.mark.type == "text" for layer in chart.layer if hasattr(layer.mark, "type"))
    # the legend label of every method names it readably, with its fit
    labels = {v for layer in chart.layer if layer.data is not None and "series" in layer.data
              for v in layer.data["series"]}
    assert {lab.split(" ")[0] for lab in labels} == {"Full", "BitFit", "LoRA"}
    assert all("R²=" in lab for lab in labels)


def test_iimm_vs_outcome_bad_input(runs):
    with pytest.raises(ValueError, match="no column"):
        charts.iimm_vs_outcome(runs, "not_an_outcome")
    with pytest.raises(ValueError, match="no ok runs"):
        charts.iimm_vs_outcome(runs[runs["status"] == "failed"], "id_gain")
    with pytest.raises(ValueError, match="finite 'x'"):
        charts.iimm_vs_outcome(runs, "id_gain", highlight={"label": "no x"})


def test_method_summary_and_pareto():
    exact = store.records_to_frame(make_fixture_records(n_datasets=4, methods=("full", "bitfit", "lora")))
    summary = charts.method_summary(exact).set_index("method")
    iimm_mean = (0.2 + 0.35) / 2  # datasets 0..3 have iimm 0.2, .25, .3, .35
    for method in ("full", "bitfit", "lora"):
        a, b, c = LINES[method]
        assert summary.loc[method, "id_gain_mean"] == pytest.approx(a + b * iimm_mean)
        assert summary.loc[method, "ood_change_mean"] == pytest.approx(-c * iimm_mean)
        assert summary.loc[method, "n_runs"] == 4 and summary.loc[method, "n_datasets"] == 4
    # full gains most, bitfit forgets least, lora lies between on both axes: no method beats
    # another on both, so all three are on the front; a lora with no gain and heavy loss is not.
    assert summary["pareto"].to_dict() == {"bitfit": True, "full": True, "lora": True}
    worse = exact.assign(id_gain=exact["id_gain"].where(exact["method"] != "lora", 0.0),
                         ood_change=exact["ood_change"].where(exact["method"] != "lora", -100.0))
    assert not charts.method_summary(worse).set_index("method").loc["lora", "pareto"]


def test_gain_vs_forgetting_names_every_method_and_marks_the_front(runs):
    rows = ranking.method_ranking(runs)
    chart = charts.gain_vs_forgetting(rows)
    spec = _spec(chart)
    for needle in ('"id_gain_lo"', '"ood_change_hi"', "Pareto: best trade-off", '"filled": false', "points)"):
        assert needle in spec, needle
    texts = [layer for layer in chart.layer if getattr(layer.mark, "type", None) == "text"]
    assert len(texts) == 1 and texts[0].encoding.text.shorthand == "method_title:N"  # labels, no hover needed
    legends = json.loads(spec)
    assert "symbolFillColor" in json.dumps(legends)  # the Pareto legend symbols are not white on white
    for axis in ("id_gain", "net", "trainable_params"):  # the fixture records no time or memory
        _spec(charts.gain_vs_forgetting(rows, x=axis, y="ood_change"))
    with pytest.raises(ValueError, match="no method has both 'wall_time_s'"):
        charts.gain_vs_forgetting(rows, x="wall_time_s")
    assert "predicted in-domain gain" in _spec(charts.gain_vs_forgetting(rows, prefix="predicted"))
    with pytest.raises(ValueError, match="unknown axis"):
        charts.gain_vs_forgetting(rows, x="speed")
    with pytest.raises(ValueError, match="no method has both"):
        charts.gain_vs_forgetting(rows.iloc[0:0])


def test_dataset_heatmap_marks_best_and_centres_changes(runs):
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    spec = _spec(charts.dataset_heatmap(cells, "id_gain"))
    assert "\\u2605" in spec and '"domainMid": 0' in spec and "in-domain gain" in spec
    assert '"domainMid"' not in _spec(charts.dataset_heatmap(
        ranking.dataset_matrix(runs, "ft_acc", model="worldclip-tiny", pretrained="world-v1"), "ft_acc"))
    with pytest.raises(ValueError, match="no values"):
        charts.dataset_heatmap(cells.iloc[0:0], "id_gain")


def test_iimm_vs_outcome_by_method_has_one_titled_panel_per_method(runs):
    chart = charts.iimm_vs_outcome_by_method(runs, "id_gain", columns=2)
    assert len(chart.concat) == 3
    assert sorted(panel.title.text for panel in chart.concat) == ["BitFit", "Full", "LoRA"]
    assert all("R²=" in p.title.subtitle and "n=5" in p.title.subtitle for p in chart.concat)
    spec = json.loads(_spec(chart))
    # the panel titles name the methods: no colour encoding may draw a legend (one per panel crowded the page)
    colours = [layer["encoding"]["color"] for panel in spec["concat"] for layer in panel["layer"]
               if "color" in layer.get("encoding", {})]
    assert len(colours) == 9 and all(c.get("legend", "missing") is None for c in colours)
    with pytest.raises(ValueError, match="no ok runs"):
        charts.iimm_vs_outcome_by_method(runs[runs["status"] == "failed"], "id_gain")


def test_iimm_panels_drawn_apart_share_axes_that_hold_every_point_and_band(runs):
    """The compare page draws each method's panel as a chart of its own: its axes must still be the others'."""
    panels = [panel.to_dict() for panel in charts.iimm_panels_by_method(runs, "id_gain")]
    assert [p["title"]["text"] for p in panels] == ["BitFit", "Full", "LoRA"]
    scales = {json.dumps([layer["encoding"][axis]["scale"]["domain"] for axis in ("x", "y")])
              for panel in panels for layer in panel["layer"]}
    assert len(scales) == 1
    (x_lo, x_hi), (y_lo, y_hi) = json.loads(scales.pop())
    for panel in panels:
        for rows in panel["datasets"].values():
            for row in rows:
                if "iimm" in row:
                    assert x_lo <= row["iimm"] <= x_hi and y_lo <= row["id_gain"] <= y_hi
                if "lo" in row:
                    assert y_lo <= row["lo"] <= row["hi"] <= y_hi


def test_no_zero_shot_panel():
    runs = store.records_to_frame(make_fixture_records(n_datasets=4, methods=("lora", "zero_shot")))
    chart = charts.iimm_vs_outcome_by_method(runs, "id_gain")
    assert [panel.title.text.split(" ")[0] for panel in chart.concat] == ["LoRA"]


def _contrast_on_white(colour: str) -> float:
    """WCAG contrast ratio of a #rrggbb colour against white."""
    channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)


def _colour_encoding(layered_spec: dict) -> dict:
    """The colour encoding of the first layer that has one."""
    return next(layer["encoding"]["color"] for layer in layered_spec["layer"] if "color" in layer.get("encoding", {}))


def make_runs_of(methods: tuple[str, ...]):
    return store.records_to_frame(make_fixture_records(n_datasets=4, methods=methods))


def test_every_method_keeps_one_distinct_visible_colour_on_every_chart():
    # All 19 shipped methods: a 10-colour scheme repeated colours, and a one-method panel drew near-white.
    runs = make_runs_of(SHIPPED_METHODS)
    colours = charts.method_colours(runs["method"])
    tuned = [colours[m] for m in SHIPPED_METHODS if m != "zero_shot"]
    assert len(set(tuned)) == 19 and all(_contrast_on_white(c) >= 3 for c in colours.values())
    assert charts.method_colours(["lora", "zero_shot", "bitfit"]) == {  # the registry's places, not name order
        "bitfit": charts.METHOD_PALETTE[1], "lora": charts.METHOD_PALETTE[3], "zero_shot": charts.BASELINE_COLOUR}

    def method_of_scale(encoding_scale, titles):
        return dict(zip((titles[label] for label in encoding_scale["domain"]), encoding_scale["range"]))

    rows = ranking.method_ranking(runs)
    tradeoff = json.loads(_spec(charts.gain_vs_forgetting(rows)))
    scale = _colour_encoding(tradeoff)["scale"]
    assert method_of_scale(scale, dict(zip(rows["method_title"], rows["method"]))) == {
        m: colours[m] for m in rows["method"]}
    legend = _colour_encoding(tradeoff)["legend"]
    assert legend["columns"] == 2  # 19 methods in one column overflow the chart and get clipped
    # below the plot, and the chart grows by its 10 rows: at the right it took the plot's width (a sliver on a
    # phone), and Streamlit fits legends and plot into the chart's height (the plot was 253 of 440 px)
    assert legend["orient"] == "bottom" and tradeoff["height"] >= 560 + 10 * charts.LEGEND_ROW_PX
    few = json.loads(_spec(charts.gain_vs_forgetting(ranking.method_ranking(make_runs_of(("lora", "bitfit"))))))
    assert _colour_encoding(few)["legend"]["columns"] == 1

    panels = json.loads(_spec(charts.iimm_vs_outcome_by_method(runs, "id_gain")))
    assert panels["resolve"]["scale"]["color"] == "independent"
    for panel in panels["concat"]:
        method = next(m for m in SHIPPED_METHODS if cards.method_title(m) == panel["title"]["text"])
        scales = [layer["encoding"]["color"]["scale"] for layer in panel["layer"] if "color" in layer["encoding"]]
        assert scales and all(s["range"] == [colours[method]] for s in scales), method


def _layers(chart) -> list[dict]:
    return chart.to_dict()["layer"]


def _field(layer: dict, channel: str) -> str | None:
    return layer.get("encoding", {}).get(channel, {}).get("field")


def test_each_chart_puts_each_column_on_its_own_axis(runs):
    """A mark's fields, not only their presence in the spec: axes swapped or a bar ending at _lo still passed."""
    scatter = _layers(charts.iimm_vs_outcome(runs, "id_gain"))
    circles = [layer for layer in scatter if layer["mark"]["type"] == "circle"]
    assert [(_field(c, "x"), _field(c, "y")) for c in circles] == [("iimm", "id_gain")]
    (line,) = [layer for layer in scatter if layer["mark"]["type"] == "line"]
    (area,) = [layer for layer in scatter if layer["mark"]["type"] == "area"]
    assert (_field(line, "x"), _field(line, "y")) == ("x", "fit") and (_field(area, "y"), _field(area, "y2")) == (
        "lo", "hi")

    trade = _layers(charts.gain_vs_forgetting(ranking.method_ranking(runs)))
    points = [layer for layer in trade if layer["mark"]["type"] == "point"]  # the methods' marks, the Pareto rings
    assert [(_field(p, "x"), _field(p, "y")) for p in points] == [("id_gain", "ood_change")] * 2
    bars = {(_field(r, "x"), _field(r, "x2"), _field(r, "y"), _field(r, "y2"))
            for r in trade if r["mark"]["type"] == "rule"}
    assert bars == {("id_gain_lo", "id_gain_hi", "ood_change", None),
                    ("id_gain", None, "ood_change_lo", "ood_change_hi")}


def test_one_point_per_model_method_and_dataset(runs):
    other = store.records_to_frame([dict(r, run_id=r["run_id"] + "-m2", model="ViT-B-32", pretrained="random")
                                    for r in make_fixture_records(n_datasets=5, methods=("full",), seeds=(0, 1))])
    both = pd.concat([runs, other], ignore_index=True)
    points = charts._points(both[both["method"] == "full"], "iimm", "id_gain")
    assert len(points) == 10 and set(points["n_seeds"]) <= {1, 2}  # 5 datasets x 2 models, seeds averaged


def test_the_heatmap_lists_the_best_method_first(runs):
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    order = charts.dataset_heatmap(cells, "id_gain").to_dict()["layer"][0]["encoding"]["y"]["sort"]
    means = cells.groupby("method_title")["value"].mean()
    assert order[0] == means.idxmax() and order == means.sort_values(ascending=False).index.tolist()


def test_gain_vs_forgetting_names_the_methods_it_cannot_draw():
    rows = pd.DataFrame({"method": ["full", "lora", "bitfit"], "method_title": ["Full", "LoRA", "BitFit"],
                         "pareto": [True, False, True], "id_gain": [10.0, 8.0, 5.0],
                         "ood_change": [-5.0, np.nan, -1.0], "trainable_params": [1000.0, np.inf, 0.0],
                         "n_datasets": [1, 1, 1]})
    spec = json.loads(_spec(charts.gain_vs_forgetting(rows)))
    drawn = [r["method"] for data in spec["datasets"].values() for r in data]
    assert sorted(set(drawn)) == ["bitfit", "full"]
    assert "LoRA" in json.dumps(spec["title"])  # LoRA has no OOD change: said, not silently left out
    spec = json.loads(_spec(charts.gain_vs_forgetting(rows, x="trainable_params", y="id_gain")))
    assert sorted({r["method"] for data in spec["datasets"].values() for r in data}) == ["full"]
    title = " ".join([spec["title"]["text"], *spec["title"]["subtitle"]])  # long subtitle lines come wrapped
    assert "LoRA" in title and "BitFit" in title and "log axis" in title  # inf, and 0 on a log axis
    assert "not drawn" not in json.dumps(json.loads(_spec(charts.gain_vs_forgetting(rows.iloc[[0, 2]])))["title"])


def test_failed_runs_with_numbers_are_left_out_of_points_and_summaries():
    """A failed run may still carry outcomes (schema allows it): neither a chart point nor a summary counts it."""
    runs = store.records_to_frame(make_fixture_records(n_datasets=3, methods=("full", "bitfit")))
    runs.loc[0, ["status", "id_gain"]] = ["failed", 90.0]  # full on fx-set-0
    points = charts._points(runs, "iimm", "id_gain").set_index(["method", "dataset"])
    assert ("full", "fx-set-0") not in points.index and len(points) == 5
    summary = charts.method_summary(runs).set_index("method")
    a, b, _ = LINES["full"]
    assert summary.loc["full", "n_runs"] == 2 and summary.loc["full", "n_datasets"] == 2
    assert summary.loc["full", "id_gain_mean"] == pytest.approx(a + b * 0.275)  # datasets 1, 2: iimm .25, .3


def test_a_method_on_two_datasets_gets_no_fit_in_its_label():
    """Two points always fit a line exactly: an R² of 1.00 from them would read as a perfect predictor."""
    runs = store.records_to_frame(make_fixture_records(n_datasets=2, methods=("full",)))
    spec = _spec(charts.iimm_vs_outcome(runs, "id_gain"))
    assert '"series": "Full (n=2)"' in spec and "R\\u00b2" not in spec


@pytest.mark.parametrize("outcome", ["ood_change", "norm_gain"])
def test_the_heatmap_centres_every_change_on_zero(runs, outcome):
    cells = ranking.dataset_matrix(runs, outcome, model="worldclip-tiny", pretrained="world-v1")
    assert '"domainMid": 0' in _spec(charts.dataset_heatmap(cells, outcome))


def test_the_heatmap_writes_white_on_its_darkest_cells():
    """Dark text on the darkest blues and reds could hardly be read; the palest cells keep dark text."""
    cells = pd.DataFrame({"method_title": ["A", "A", "B", "B"], "dataset": ["d1", "d2", "d1", "d2"],
                          "value": [40.0, 2.0, -10.0, -1.0], "best": [True, True, False, False], "n_seeds": 1})
    spec = charts.dataset_heatmap(cells, "id_gain").to_dict()
    text = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "text")
    assert text["encoding"]["color"] == {"field": "ink", "scale": None, "type": "nominal"}
    ink = {(r["dataset"], r["method_title"]): r["ink"] for r in next(iter(spec["datasets"].values()))}
    assert ink == {("d1", "A"): "white", ("d2", "A"): "black", ("d1", "B"): "white", ("d2", "B"): "black"}
    accuracy = charts.dataset_heatmap(cells.assign(value=[90.0, 10.0, 50.0, 20.0]), "ft_acc").to_dict()
    assert [r["ink"] for r in next(iter(accuracy["datasets"].values()))] == ["white", "black", "black", "black"]
