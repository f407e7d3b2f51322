"""The Forecast page on a store of methods that share a title ('lora' of the grid, 'LoRA' and 'Lora' of a user's
registry, all titled 'LoRA'), through AppTest on a fixture store in a temp folder (never the real store)."""
import json

import pytest

from core import store
from tests.app_helpers import embeddings_npz, page, run_upload
from tests.fixtures import make_fixture_records


@pytest.mark.slow  # a forecast through AppTest: about 15 s here
def test_the_forecast_page_names_methods_that_share_a_title_as_its_table_does(tmp_path, monkeypatch):
    """The table read 'LoRA · LoRA', 'LoRA · Lora', 'LoRA · lora', but the IIMM chart's method picker offered
    'LoRA', 'LoRA (2)', 'LoRA (3)' (which row is 'LoRA (2)'?) and the chart marked 'your dataset (LoRA, IIMM
    line)' for any of them."""
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "results"))
    monkeypatch.setattr(store, "SHIPPED_DIR", tmp_path / "none")
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    for record in make_fixture_records(n_datasets=8, pretrained="random", noise=0.5, methods=("lora", "LoRA", "Lora")):
        store.write_record(record, tmp_path / "results")
    at = run_upload(page("forecast").run(), "emb.npz", embeddings_npz(128))
    assert not at.exception
    titles = set(at.dataframe[0].value["method_title"])
    assert titles == {"LoRA · LoRA", "LoRA · Lora", "LoRA · lora"}
    picker = at.selectbox(key="fc_method")
    assert set(picker.options) == titles
    picker.set_value("Lora").run()
    assert not at.exception and at.selectbox(key="fc_method").value == "Lora"
    spec = json.dumps(json.loads(at.get("vega_lite_chart")[1].proto.spec), ensure_ascii=False)
    assert "Marked: your dataset (LoRA · Lora, IIMM line)" in spec  # the chart's description names the mark
