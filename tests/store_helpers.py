"""Helpers shared by the core.store test modules (tests/test_store_*.py)."""


def _record(run_id="r1", **kw):
    rec = {"run_id": run_id, "status": "ok", "model": "m", "pretrained": "p", "method": "full",
           "dataset": "d", "seed": 0, "source": "test", "zs_acc": 50.0, "ft_acc": 60.0}
    rec.update(kw)
    return rec
