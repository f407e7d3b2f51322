"""The pages' notice for a world-v2 model: its world's pre-registered manipulation check failed, so its runs
(shown on the Compare page under "Does IIMM predict what fine-tuning does?") are description, not evidence on the
study's claim (jobs/results/world-v2/manipulation-check.md: FAILED)."""
from core import store
from tests.app_helpers import page
from tests.fixtures import write_fixture_store


def _compare_notices(tmp_path, monkeypatch, pretrained: str) -> list[str]:
    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    write_fixture_store(results, pretrained=pretrained)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    at = page("compare").run()
    assert not at.exception
    return [box.value for box in at.info]


def test_a_world_v2_models_notice_says_its_runs_do_not_test_the_claim(tmp_path, monkeypatch):
    notices = _compare_notices(tmp_path, monkeypatch, "world-v2-a")
    toy = [n for n in notices if "is a toy model" in n]
    assert len(toy) == 1 and "manipulation check failed" in toy[0], notices
    assert "they do not test whether IIMM predicts gain or forgetting" in toy[0]


def test_world_v1s_notice_does_not_borrow_world_v2s_failed_check(tmp_path, monkeypatch):
    notices = _compare_notices(tmp_path, monkeypatch, "world-v1")
    toy = [n for n in notices if "is a toy model" in n]
    assert len(toy) == 1 and "manipulation check" not in toy[0], notices
