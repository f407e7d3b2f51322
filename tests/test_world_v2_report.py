"""The pre-registered world-v2 analysis on synthetic runs whose answer is known."""
import numpy as np
import pandas as pd
import pytest

from core.data import world2
from jobs import world_v2_report as rep


def _runs(models, gain_slope: float, ood_slope: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for model in models:
        for method in rep.STUDY_METHODS:
            for name in world2.FINETUNE_TASKS:
                iimm = rng.uniform(0.4, 0.8)
                rows.append({"model_key": model, "method": method, "dataset": name, "iimm": iimm,
                             "inter_modal": iimm - 0.2, "intra_image": iimm + 0.2, "zs_acc": rng.uniform(20, 90),
                             "id_gain": gain_slope * iimm * 100 + rng.normal(0, 1),
                             "ood_change": ood_slope * iimm * 10 + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_the_claim_holding_is_called_supported():
    tab = rep.method_table(_runs(rep.LONG_TAILED, 1.0, -1.0), n_boot=100)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(tab)}
    assert crit == {"F1": False, "F2": False, "F3": False, "Support:": True}
    assert (tab["tau_id_gain"] > 0.8).all() and (tab["tau_ood_change"] < -0.5).all()


def test_no_relation_falsifies_and_missing_models_stay_undecided():
    tab = rep.method_table(_runs(rep.LONG_TAILED, 0.0, 0.0), n_boot=100)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(tab)}
    assert crit["F1"] is True and crit["Support:"] is False
    only_a = rep.method_table(_runs([rep.MODEL_A], 1.0, -1.0), n_boot=50)
    crit = {name.split(" ")[0]: held for name, held, _ in rep.criteria(only_a)}
    assert crit["F2"] is None and crit["Support:"] is None
    assert "not decidable yet" in rep.markdown(only_a, rep.criteria(only_a), 200, 50)


def test_partial_tau_removes_a_shared_cause():
    rng = np.random.default_rng(0)
    z = rng.normal(size=200)
    x, y = z + rng.normal(0, 0.3, 200), z + rng.normal(0, 0.3, 200)
    assert rep.partial_tau(x, y, z) < 0.5 * rep.kendall_tau(x, y)


def test_duplicate_runs_are_refused():
    runs = _runs([rep.MODEL_A], 1.0, -1.0)
    with pytest.raises(ValueError, match="one run per task"):
        rep.method_table(pd.concat([runs, runs.iloc[:1]]), n_boot=10)
