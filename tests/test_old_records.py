"""Records made by older versions of the grid, read by the current code (a user upgrading keeps their store)."""
import logging
import zlib

import numpy as np
import pytest

from core import forecast, predictor_eval, store
from tests.fixtures import make_fixture_records

#: The transferability block of a grid record from before 2026-12-02 (written by the grid at 16bd9b7, smoke grid,
#: shape-size): baselines under the earlier definitions (EMMS of about -0.02 where the current one gives -30,784),
#: and no word in its provenance of how they were scored.
OLD_BASELINES = {"emms": -0.019449375639590472, "gbc": -1.590115611698262, "h_score": 0.37924098362658787,
                 "leep": -0.5898415979618773, "logme": -0.5548051935370866}
OLD_PROVENANCE = {"git_revision": "16bd9b79dd97a66355dbb2da9b26d57ba6f4450a", "device": "cpu",
                  "command": "python -m jobs.grid jobs/configs/smoke.toml --results results/smoke"}
NOW_INFO = {"convention": "study", "emms_sources": "model text tower (class prompts)"}


def _records(n_old: int):
    """Fixture records as the current grid writes them, the first ``n_old`` as the grid wrote them before
    2026-12-02."""
    recs = make_fixture_records(n_datasets=6, methods=("bitfit",))
    for k, rec in enumerate(recs):
        rec["transferability"] = {"emms": -30000.0 - 100 * k, "gbc": -0.5 - 0.01 * k}
        rec["provenance"] = {**OLD_PROVENANCE, "git_revision": "f654892", "transferability": NOW_INFO}
    for rec in recs[:n_old]:
        rec["transferability"] = dict(OLD_BASELINES)
        rec["provenance"] = dict(OLD_PROVENANCE)
    return recs


def test_baselines_of_grid_records_from_before_their_definitions_changed_are_not_mixed_in(caplog):
    frame = store.records_to_frame(_records(n_old=2))
    with caplog.at_level(logging.WARNING, logger="core.predictor_columns"):
        wide = forecast.expand_predictor_columns(frame)
    assert wide["tf_emms"].isna().tolist() == [True, True, False, False, False, False]
    assert wide["tf_gbc"].iloc[2:].tolist() == pytest.approx([-0.52, -0.53, -0.54, -0.55])
    assert "tf_leep" not in wide or wide["tf_leep"].isna().all()  # only the old records had LEEP
    assert wide["iimm"].notna().all() and wide["zs_iimm"].notna().all()  # the zero-shot measures stay
    assert len(caplog.records) == 1
    assert caplog.records[0].getMessage().startswith("2 grid records hold transferability baselines")
    assert "python -m jobs.predictors --rescore --results" in caplog.records[0].getMessage()
    assert "python -m jobs.ingest FILE --into NEWDIR" in caplog.records[0].getMessage()  # a compacted store


def test_predictor_table_uses_only_current_baselines():
    frame, predictors = predictor_eval.predictor_frame(store.records_to_frame(_records(n_old=3)))
    assert ("emms", "transferability") in predictors
    assert np.isnan(frame["emms"].iloc[:3]).all() and (frame["emms"].iloc[3:] < -1000).all()


def test_records_without_grid_provenance_keep_their_baselines(caplog):
    """Records not written by the grid (no git revision: hand-made, another tool's) say nothing of versions:
    their baselines are taken as they are, and nothing is logged."""
    recs = make_fixture_records(n_datasets=4, methods=("bitfit",))
    with caplog.at_level(logging.WARNING, logger="core.predictor_columns"):
        wide = forecast.expand_predictor_columns(store.records_to_frame(recs))
    assert wide["tf_logme"].notna().all() and not caplog.records


def test_old_grid_records_without_baselines_are_not_counted(caplog):
    """A grid record from before 2026-12-02 that holds no baselines (a failed cell's, or one made without them)
    has nothing to leave out: the warning would count it and send the user to --rescore for nothing."""
    recs = _records(n_old=3)
    recs[0]["transferability"], recs[1]["transferability"] = {}, None
    frame = store.records_to_frame(recs)
    assert forecast.earlier_baselines(frame) == [False, False, True, False, False, False]
    with caplog.at_level(logging.WARNING, logger="core.predictor_columns"):
        forecast.expand_predictor_columns(frame)
    assert [r.getMessage()[:40] for r in caplog.records] == ["1 grid records hold transferability base"]


def _fake_rescoring(monkeypatch):
    """load_model, load_split and embed_dataset replaced: the network a record is rescored on is named by the
    image embeddings it gives (one per (model key, init_seed)); returns the list of load_model calls."""
    import types

    import torch

    from core import embed, models
    from core.data import registry
    from core.transferability import label_sources

    calls = []

    def load_model(key, init_seed=None):
        calls.append((key, init_seed))
        return types.SimpleNamespace(model=types.SimpleNamespace(logit_scale=torch.tensor(np.log(14.3))),
                                     network=(key, init_seed))

    def embed_dataset(loaded, data):
        rng = np.random.default_rng(zlib.crc32(repr(loaded.network).encode()))
        return types.SimpleNamespace(image=rng.standard_normal((30, 6)), text=rng.standard_normal((3, 6)),
                                     labels=np.arange(30) % 3, class_names=["a", "b", "c"],
                                     data_fingerprint="train-now")

    monkeypatch.setattr(models, "load_model", load_model)
    monkeypatch.setattr(registry, "load_split", lambda name, split: name)
    monkeypatch.setattr(embed, "embed_dataset", embed_dataset)
    monkeypatch.setattr(label_sources, "_minilm", lambda: None)
    return calls


def test_rescore_scores_a_random_weight_record_on_its_own_seeds_network(tmp_path, monkeypatch):
    """The grid draws a random-weight model's network from the run's seed (load_model(key, init_seed=seed));
    --rescore loaded it from whatever state torch's generator was in, so every seed's record got the baselines
    of one unrelated network (measured: GBC -1.840 and -1.862 for seeds 2 and 1 both became -1.795)."""
    import json

    from jobs import predictors as job

    recs = _records(n_old=6)[:3]
    for k, rec in enumerate(recs):
        rec.update(model="worldclip-tiny", pretrained="random", model_key="worldclip-tiny-random",
                   random_weights=True, dataset="fx-set-0", seed=k, run_id=f"rand-{k}")
    recs.append({**recs[0], "model_key": "worldclip-tiny", "pretrained": "world-v1", "random_weights": False,
                 "run_id": "trained-0"})
    for rec in recs:
        store.write_record(rec, tmp_path)
    calls = _fake_rescoring(monkeypatch)
    assert job.rescore([tmp_path]) == 4
    assert sorted(calls, key=str) == [("worldclip-tiny", None), ("worldclip-tiny-random", 0),
                                      ("worldclip-tiny-random", 1), ("worldclip-tiny-random", 2)]
    gbc = {p.stem: json.loads(p.read_text())["transferability"]["gbc"] for p in tmp_path.glob("*.json")}
    assert len({gbc["rand-0"], gbc["rand-1"], gbc["rand-2"], gbc["trained-0"]}) == 4


def test_rescore_leaves_a_record_without_model_key_as_it_is(tmp_path, monkeypatch, caplog):
    """model_key is optional in the schema (a record made elsewhere may lack it): --rescore ended in a KeyError
    traceback; such a record is now left as it is and named."""
    from jobs import predictors as job

    rec = {k: v for k, v in _records(n_old=1)[0].items() if k != "model_key"}
    path = store.write_record(rec, tmp_path)
    before = path.read_bytes()
    _fake_rescoring(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="jobs.predictors"):
        assert job.rescore([tmp_path]) == 0
    assert path.read_bytes() == before
    assert any(path.name in r.getMessage() and "model_key" in r.getMessage() for r in caplog.records)


def test_rescore_skips_only_the_record_without_model_key_where_another_folder_has_its_run_id(tmp_path, monkeypatch):
    """Records without model_key were left out by file name, so a record of another --results folder with the same
    run id (a copy of one run, a store and its export) was left out too, without being named."""
    import json

    from jobs import predictors as job

    rec = _records(n_old=1)[0]
    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    store.write_record({k: v for k, v in rec.items() if k != "model_key"}, elsewhere)
    path = store.write_record(rec, here)
    _fake_rescoring(monkeypatch)
    assert job.rescore([elsewhere, here]) == 1
    assert "transferability" in json.loads(path.read_text())["provenance"]


def test_rescore_leaves_a_record_that_ran_on_other_data_as_it_is(tmp_path, monkeypatch, caplog):
    """A user's folder changed after seed 0 ran: --rescore wrote the baselines of the folder as it is now into the
    seed-0 record, beside zero-shot measures of the data it ran on. Such a record is now left as it is and named;
    records naming the data as it is now, or none (older ones), are rescored."""
    import json

    from jobs import predictors as job

    recs = _records(n_old=3)[:3]
    for rec, train in zip(recs, ("train-before", "train-now", None)):
        rec.update(dataset="fx-set-0", model_key="worldclip-tiny")
        if train:
            rec["provenance"] = {**rec.get("provenance", {}), "data_fingerprint": {"train": train}}
    paths = [store.write_record(rec, tmp_path) for rec in recs]
    before = paths[0].read_bytes()
    _fake_rescoring(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="jobs.predictors"):
        assert job.rescore([tmp_path]) == 2
    assert paths[0].read_bytes() == before
    assert all("transferability" in json.loads(p.read_text())["provenance"] for p in paths[1:])
    (warning,) = [r.getMessage() for r in caplog.records if "other data" in r.getMessage()]
    assert warning.endswith(str(paths[0]))
