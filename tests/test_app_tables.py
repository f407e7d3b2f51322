"""What the app's tables hold, read as a demanding user reads them (AppTest, on fixture stores in temp folders):
every method told apart, numbers without a negative zero, missing values said, not left blank."""
import pytest

from core import store
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
