"""jobs.check_before: which stored accuracies before fine-tuning the current scoring path does not give."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest

from jobs import check_before


def _runs() -> pd.DataFrame:
    return pd.DataFrame([
        {"model_key": "m", "dataset": "a", "run_id": "r1", "method": "zero_shot", "status": "ok",
         "zs_acc": 50.0, "ood_before": json.dumps({"b": 80.0, "c": 70.0})},
        {"model_key": "m", "dataset": "a", "run_id": "r2", "method": "lora", "status": "ok",
         "zs_acc": 50.125, "ood_before": {"b": 80.0}},
        {"model_key": "m", "dataset": "b", "run_id": "r3", "method": "lora", "status": "failed",
         "zs_acc": None, "ood_before": None},
    ])


def test_lists_exactly_the_stored_values_the_current_path_does_not_give():
    now = {("m", "a"): 50.125, ("m", "b"): 80.0, ("m", "c"): 70.125}
    asked = []

    def score(model, name):
        asked.append((model, name))
        return now[model, name]

    found = check_before.differing(_runs(), score)
    assert found.to_dict("records") == [
        {"model_key": "m", "dataset": "a", "run_id": "r1", "method": "zero_shot", "field": "zs_acc",
         "stored": 50.0, "now": 50.125},
        {"model_key": "m", "dataset": "a", "run_id": "r1", "method": "zero_shot", "field": "ood_before[c]",
         "stored": 70.0, "now": 70.125}]
    assert ("m", "b") in asked and all(name != "r3" for _, name in asked)  # a failed record is not scored


def test_nothing_differs_gives_an_empty_table_with_the_columns():
    found = check_before.differing(_runs(), lambda m, n: {"a": 50.0, "b": 80.0, "c": 70.0}[n])
    assert list(found["run_id"]) == ["r2"] and list(found.columns) == check_before.COLUMNS
    none = check_before.differing(_runs().iloc[2:], lambda m, n: 0.0)
    assert none.empty and list(none.columns) == check_before.COLUMNS


@pytest.mark.parametrize("extra, message", [(["--models", "nope"], "no records of nope"),
                                             (["--out", "."], "is a folder")])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, extra, message):
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "res")
    assert check_before.main([str(tmp_path / "res"), *extra]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_a_fresh_record_passes_and_an_edited_one_is_found(tmp_path, capsys):
    from core.experiment import run_cell
    from core.schema import outcome_fields
    from core.store import write_record

    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = run_cell(cell, cache_dir=tmp_path / "cache")
    assert record["status"] == "ok", record["error"]
    write_record(record, tmp_path / "res")
    args = [str(tmp_path / "res"), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "d.csv")]
    assert check_before.main(args) == 0
    assert "0 of 1 ok records differ" in capsys.readouterr().out
    edited = {"scene-kind": record["ood_before"]["scene-kind"] + 0.125}  # as an old cell's near-tie could
    write_record({**record, "ood_before": edited, **outcome_fields(record["zs_acc"], record["ft_acc"], edited,
                                                                   record["ood_after"])}, tmp_path / "res")
    assert check_before.main(args) == 1
    table = pd.read_csv(tmp_path / "d.csv")
    out = capsys.readouterr().out
    assert list(table["field"]) == ["ood_before[scene-kind]"] and "1 of 1 ok records differ" in out
    assert out.splitlines()[-1] == f"wrote the differing values to {tmp_path / 'd.csv'}"  # the CSV was not named


def test_a_model_or_dataset_not_available_here_is_named_and_skipped():
    from core.data.registry import DatasetUnavailableError
    from core.models import ModelUnavailableError

    def score(model, name):
        if name == "b":
            raise DatasetUnavailableError("b needs a download")
        if name == "c":
            raise ModelUnavailableError("no weights offline")
        return 50.0

    unchecked = {}
    found = check_before.differing(_runs(), score, unchecked)
    assert list(found["field"]) == ["zs_acc"] and list(found["run_id"]) == ["r2"]  # 'a' still checked
    assert unchecked == {("m", "b"): "b needs a download", ("m", "c"): "no weights offline"}


def test_an_unloadable_model_is_tried_once_and_the_job_says_it_is_incomplete(tmp_path, monkeypatch, capsys):
    import core.models
    from core.models import ModelUnavailableError
    from tests.fixtures import write_fixture_store

    tries = []

    def load_model(key, **kw):
        tries.append(key)
        raise ModelUnavailableError(f"{key}: weights not available offline")

    monkeypatch.setattr(core.models, "load_model", load_model)
    write_fixture_store(tmp_path / "res")
    assert check_before.main([str(tmp_path / "res")]) == 3
    out = capsys.readouterr().out
    assert "0 of" in out and "not checked:" in out and "weights not available offline" in out
    assert len(tries) == len(set(tries)) >= 1


@pytest.mark.slow
def test_fresh_records_of_a_random_weight_model_pass(tmp_path, capsys):
    """A random-weight model's weights come from the torch seed a cell sets before loading it (one network per
    seed); the check loaded one unseeded network for every record, so records run by the current code were listed
    as differing (zs_acc 48.0 stored, 52.0 'now')."""
    from core.experiment import run_cell
    from core.store import write_record

    for seed in (0, 1):
        cell = {"model": "worldclip-tiny-random", "dataset": "shape-size", "method": "zero_shot", "seed": seed,
                "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
        record = run_cell(cell, cache_dir=tmp_path / "cache")
        assert record["status"] == "ok", record["error"]
        write_record(record, tmp_path / "res")
    assert check_before.main([str(tmp_path / "res"), "--cache", str(tmp_path / "cache")]) == 0
    assert "0 of 2 ok records differ" in capsys.readouterr().out


def test_an_ood_set_that_is_the_task_is_checked_and_named_as_itself():
    """stored_before keyed the values by dataset name, so an OOD set named like the task replaced zs_acc: a differing
    OOD value was listed as field 'zs_acc' (stored 11.0, where the record's zs_acc is 50.0), and a differing zs_acc
    was never checked."""
    runs = pd.DataFrame([{"model_key": "m", "dataset": "a", "run_id": "r1", "method": "lora", "status": "ok",
                          "zs_acc": 50.0, "ood_before": json.dumps({"a": 11.0})}])
    found = check_before.differing(runs, lambda m, n: 50.0)
    assert found[["field", "stored", "now"]].to_dict("records") == [
        {"field": "ood_before[a]", "stored": 11.0, "now": 50.0}]
    found = check_before.differing(runs.assign(zs_acc=49.0, ood_before=json.dumps({"a": 50.0})), lambda m, n: 50.0)
    assert found[["field", "stored", "now"]].to_dict("records") == [{"field": "zs_acc", "stored": 49.0, "now": 50.0}]


@pytest.mark.parametrize("ood_before", ['{"b": null, "c": 70.0}', "null", None])
def test_a_record_without_a_stored_ood_value_is_checked_for_the_rest(ood_before):
    """The schema lets an ok record hold null for an OOD accuracy (or for the whole map); float(None) and
    None.items() ended the whole check with a traceback."""
    runs = pd.DataFrame([{"model_key": "m", "dataset": "a", "run_id": "r1", "method": "lora", "status": "ok",
                          "zs_acc": 50.0, "ood_before": ood_before}])
    found = check_before.differing(runs, lambda m, n: {"a": 50.125, "b": 1.0, "c": 70.0}[n])
    assert list(found["field"]) == ["zs_acc"]


def test_a_dataset_the_registry_does_not_know_is_named_and_skipped(tmp_path, capsys):
    """The fixture store's datasets ('fx-set-0', ...) are not in the registry: the check ended with exit 2 at
    the first one instead of naming it."""
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "res", n_datasets=1, methods=("full",))
    assert check_before.main([str(tmp_path / "res"), "--cache", str(tmp_path / "cache")]) == 3
    out = capsys.readouterr().out
    assert "not checked:" in out and "fx-set-0" in out


def test_one_network_is_held_at_a_time_and_each_is_loaded_once(monkeypatch):
    import gc
    import weakref

    import core.experiment
    import core.models

    class Network:
        pass

    loads, alive = [], []

    def load_model(key, **kw):
        loads.append(key)
        network = Network()
        alive.append(weakref.ref(network))
        return network

    monkeypatch.setattr(core.models, "load_model", load_model)
    monkeypatch.setattr(core.experiment, "accuracies_before", lambda loaded, data, ood, frozen: {"test_acc": 50.0})
    monkeypatch.setattr("core.data.registry.load_split", lambda name, split: name)
    runs = pd.DataFrame([{"model_key": m, "dataset": d, "run_id": f"{m}{d}", "method": "lora", "status": "ok",
                          "zs_acc": 50.0, "ood_before": {"x": 50.0}, "seed": 0, "random_weights": False}
                         for d in ("b", "a") for m in ("m2", "m1")])
    score = check_before.current_scorer(None)
    assert check_before.differing(runs, score).empty
    gc.collect()
    assert loads == ["m1", "m2"]  # each model once, though its records were interleaved
    assert alive[-1]() is not None and alive[-2]() is None  # m1's network let go once m2's was loaded


@pytest.mark.parametrize("argv, message", [(["--device", "tpu"], "--device 'tpu' is not one the jobs run on: use cpu"),
                                           # a missing folder is made now, as in every job (jobs.cli)
                                           (["--out", "{tmp}/a-file/d.csv"], "a-file is a file, not a folder")])
def test_device_and_out_folder_are_checked_before_any_scoring(tmp_path, capsys, argv, message):
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "res")
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert check_before.main([str(tmp_path / "res"), *[a.format(tmp=tmp_path) for a in argv]]) == 2
    assert message in capsys.readouterr().err


def test_scoring_a_random_weight_record_leaves_the_callers_torch_generator_alone(monkeypatch):
    """The scorer re-seeded the global torch generator itself before loading a random-weight network, so code
    around it drew other numbers afterwards; it now asks load_model for the seed's network (init_seed)."""
    import torch

    import core.experiment

    monkeypatch.setattr(core.experiment, "accuracies_before", lambda loaded, data, ood, frozen: {"test_acc": 50.0})
    monkeypatch.setattr(core.experiment, "frozen_embeddings_of",  # a stand-in that embedded nothing
                        lambda loaded, cache: SimpleNamespace(fingerprint=lambda data: None))
    monkeypatch.setattr("core.data.registry.load_split", lambda name, split: name)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_before.current_scorer(None)("worldclip-tiny-random", "shape-size", seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_a_value_measured_on_other_data_is_not_blamed_on_the_scoring_path(tmp_path, monkeypatch, capsys):
    """A user's folder changed after its grid ran: every record was listed as differing 'from the current
    scoring path' (exit 1), where the data, not the path, had changed. Records naming the data scored, or none
    (older ones), are still compared."""
    runs = _runs().assign(provenance=[json.dumps({"data_fingerprint": {"test": "old", "ood": {"b": "b1"}}}),
                                      None, None])

    def score(model, name):
        return {"a": 50.125, "b": 81.0, "c": 70.0}[name]

    score.fingerprint = {"a": "new", "b": "b1", "c": "c1"}.get
    other = []
    found = check_before.differing(runs, score, {}, other)
    assert other == [("r1", "a")]  # r1's task was scored on other data; its OOD set b on the same
    assert found[["run_id", "field"]].values.tolist() == [["r1", "ood_before[b]"], ["r2", "ood_before[b]"]]
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "res", n_datasets=1, methods=("full",))
    record = next((tmp_path / "res").glob("*.json"))
    doc = json.loads(record.read_text(encoding="utf-8"))
    doc["provenance"]["data_fingerprint"] = {"test": "old", "ood": {name: "old" for name in doc["ood_before"]}}
    record.write_text(json.dumps(doc), encoding="utf-8")

    def scorer(*args):
        def score(model, name, seed=None):
            return doc["zs_acc"] + 12.5  # the changed folder scores otherwise
        score.fingerprint = lambda name: "new"
        return score

    monkeypatch.setattr(check_before, "current_scorer", scorer)
    assert check_before.main([str(tmp_path / "res")]) == 3
    out = capsys.readouterr().out
    assert "0 of 1 ok records differ" in out
    assert f"not compared: {1 + len(doc['ood_before'])} value(s) of 1 record(s), measured on other data than " \
           f"{', '.join(sorted({'fx-set-0', *doc['ood_before']}))} now hold(s)" in out
