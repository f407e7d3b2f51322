"""Helpers shared by the core.store test modules (tests/test_store_*.py)."""


def _record(run_id="r1", **kw):
    rec = {"run_id": run_id, "status": "ok", "model": "m", "pretrained": "p", "method": "full",
           "dataset": "d", "seed": 0, "source": "test", "zs_acc": 50.0, "ft_acc": 60.0}
    rec.update(kw)
    return rec


def submission_stores(tmp_path, monkeypatch):
    """A shipped store of 2 runs under ``tmp_path``, an empty local store and an empty submissions store, the app's
    roots pointed at them: (shipped, local, submitted)."""
    from core import store
    from tests.fixtures import write_fixture_store

    shipped, local, submitted = tmp_path / "shipped", tmp_path / "local", tmp_path / "submitted"
    write_fixture_store(shipped, n_datasets=2, methods=("full",))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv(store.ENV_VAR, str(local))
    monkeypatch.setenv(store.SUBMISSIONS_ENV_VAR, str(submitted))
    return shipped, local, submitted
