"""core.charts and the pages label every chart of a random-weight model as such, and no other (moved from
tests/test_charts_awkward.py when it passed 400 lines)."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from core import charts, ranking, store
from tests.fixtures import chart_subtitle, make_fixture_records


def _runs(**kwargs) -> pd.DataFrame:
    return store.records_to_frame(make_fixture_records(**kwargs))


def _title_text(spec: dict) -> str:
    title = spec.get("title", "")
    if isinstance(title, dict) and isinstance(title.get("subtitle"), list):  # long lines come wrapped
        title = {**title, "subtitle": " ".join(title["subtitle"])}
    return json.dumps(title)


@pytest.mark.parametrize("how", ["registry", "record flag"])
def test_a_random_weight_model_is_labelled_on_every_chart(how):
    """The pages warned above the chart, but a chart (saved from its menu, or read alone) gave no sign that its
    numbers came from random weights, where the runs table marks each such row RANDOM WEIGHTS."""
    if how == "registry":  # the registry knows ViT-B-32 'random' as untrained
        runs = _runs(n_datasets=4, methods=("full", "lora"), model="ViT-B-32", pretrained="random")
    else:  # a trained model's tag whose records say they ran untrained
        runs = _runs(n_datasets=4, methods=("full", "lora")).assign(random_weights=True)
    note = charts.RANDOM_WEIGHTS_NOTE
    scatter = charts.iimm_vs_outcome(runs, "id_gain").to_dict()
    assert chart_subtitle(scatter).startswith(note)
    assert all(r["model"].endswith(" (RANDOM WEIGHTS)") for data in scatter["datasets"].values() for r in data
               if "model" in r)  # the tooltip's model, marked as the runs table marks it
    panels = charts.iimm_vs_outcome_by_method(runs, "id_gain").to_dict()
    assert panels["title"]["text"] == note and note not in json.dumps(panels["concat"])  # once, above the panels
    rows = ranking.method_ranking(runs)
    if how == "registry":  # the ranking's rows name the model; a record's flag the caller passes
        assert note in _title_text(charts.gain_vs_forgetting(rows).to_dict())
    assert _title_text(charts.gain_vs_forgetting(rows, random_weights=True).to_dict()).count(note) == 1
    cells = ranking.dataset_matrix(runs, "id_gain", model=runs["model"][0], pretrained=runs["pretrained"][0])
    assert note not in _title_text(charts.dataset_heatmap(cells, "id_gain").to_dict())  # the matrix names no model
    assert note in _title_text(charts.dataset_heatmap(cells, "id_gain", random_weights=True).to_dict())


def test_a_pretrained_model_carries_no_random_weights_label():
    runs = _runs(n_datasets=4, methods=("full", "lora"))
    rows = ranking.method_ranking(runs)
    cells = ranking.dataset_matrix(runs, "id_gain", model="worldclip-tiny", pretrained="world-v1")
    for chart in (charts.iimm_vs_outcome(runs, "id_gain"), charts.iimm_vs_outcome_by_method(runs, "id_gain"),
                  charts.gain_vs_forgetting(rows), charts.dataset_heatmap(cells, "id_gain"),
                  charts.iimm_vs_outcome(runs.assign(random_weights=True), "id_gain", random_weights=False)):
        spec = json.dumps(chart.to_dict())
        assert "RANDOM WEIGHTS" not in spec
    scatter = charts.iimm_vs_outcome(runs, "id_gain").to_dict()
    assert {r["model"] for data in scatter["datasets"].values() for r in data if "model" in r} == {
        "worldclip-tiny · world-v1"}
    told = charts.iimm_vs_outcome(runs, "id_gain", random_weights=True).to_dict()  # a caller's word counts too
    assert {r["model"] for data in told["datasets"].values() for r in data if "model" in r} == {
        "worldclip-tiny · world-v1 (RANDOM WEIGHTS)"} and chart_subtitle(told).startswith(charts.RANDOM_WEIGHTS_NOTE)


def test_the_pages_label_the_charts_of_a_model_whose_records_say_random_weights(tmp_path, monkeypatch):
    """A trained model's tag whose records say they ran untrained: the ranking's rows and the matrix's cells
    carry no flag of their own, so the pages must pass what the records say (their warning above the chart
    said it; the charts did not)."""
    from tests.app_helpers import app_test, page

    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    for record in make_fixture_records(n_datasets=4, methods=("full", "lora"), pretrained="their-tag"):
        store.write_record({**record, "random_weights": record["method"] == "full"}, results)  # one method says it
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    for at in (app_test(), page("matrix"), page("compare")):
        at.run()
        assert not at.exception
        specs = [chart.proto.spec for chart in at.get("vega_lite_chart")]
        assert specs and all("RANDOM WEIGHTS: an untrained network" in spec for spec in specs), at
