"""Helpers shared by the predictor test modules (tests/test_predictors_*.py): a fixture store, and the job run
on it with its one-line error read back.

The fixture store is built so that every outcome is an exact straight line in one chosen
predictor (seed noise of +d / -d cancels in the per-dataset mean), while every other
predictor holds a fixed permutation of the datasets' ranks.
"""
from __future__ import annotations

import numpy as np

from core import predictor_eval as pe
from core import schema, store
from jobs import predictors as job
from tests.fixtures import OOD_BEFORE, make_fixture_records


N_SETS = 8
#: A rank order of the 8 datasets with Kendall tau 0 against 0..7: the "independent" predictor.
INDEPENDENT = [3, 6, 1, 7, 0, 5, 2, 4]
LINE = {"full": (2.0, 40.0, 10.0), "bitfit": (1.0, 20.0, 3.0)}  # id_gain = a + b x, ood = -c x
ZS_TEST = 60.0  # constant test zero-shot accuracy: norm_gain is then linear in id_gain too


def _records(chosen: str, independent: str, seeds=(0, 1), n_sets: int = N_SETS,
             methods=("full", "bitfit")) -> list[dict]:
    names = [*pe.ZERO_SHOT_PREDICTORS, *pe.TRANSFERABILITY_PREDICTORS]
    rng = np.random.default_rng(7)
    ranks = {n: rng.permutation(n_sets) for n in names}
    ranks[chosen] = np.arange(n_sets)
    ranks[independent] = np.array(INDEPENDENT[:n_sets]) if n_sets == N_SETS else rng.permutation(n_sets)
    recs = make_fixture_records(n_datasets=n_sets, methods=methods, seeds=seeds)
    for rec in recs:
        k = int(rec["dataset"].rsplit("-", 1)[1])
        values = {n: 0.2 + 0.05 * float(ranks[n][k]) for n in names}
        x = values[chosen]
        a, b, c = LINE[rec["method"]]
        d = 0.05 if rec["seed"] % 2 == 0 else -0.05  # smaller than any step of the line
        gain, change = a + b * x + d, -c * x + d
        ood_after = {n: v + change for n, v in OOD_BEFORE.items()}
        rec.update(zs_acc=ZS_TEST, ft_acc=ZS_TEST + gain, ood_after=ood_after,
                   **schema.outcome_fields(ZS_TEST, ZS_TEST + gain, OOD_BEFORE, ood_after),
                   iimm=values["iimm"], inter_modal=values["inter_modal"], intra_image=values["intra_image"],
                   zero_shot={n: values[n] for n in pe.ZERO_SHOT_PREDICTORS},
                   transferability={n: values[n] for n in pe.TRANSFERABILITY_PREDICTORS})
    return recs


def _store(tmp_path, records) -> str:
    root = tmp_path / "store"
    for rec in records:
        store.write_record(rec, root)
    return str(root)


def _run(tmp_path, root, *extra):
    out = tmp_path / "out" / "predictors.csv"
    code = job.main(["--results", root, "--out", str(out), "--bootstrap", "200", *extra])
    return code, out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err
