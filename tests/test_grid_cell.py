"""One grid cell (core.experiment): its zero-shot block, peak memory, splits, scoring path and code revision."""
import os
import subprocess
from pathlib import Path

import pytest


def test_zero_shot_block_is_computed_once_per_model_and_dataset_in_a_process(loaded, tmp_path, monkeypatch):
    import copy
    from collections import OrderedDict

    import torch

    from core import experiment
    from core.transferability import label_sources

    monkeypatch.setattr(experiment, "_ZERO_SHOT_MEMO", OrderedDict())
    calls, real = [], label_sources.baseline_block

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(label_sources, "baseline_block", counted)
    first = experiment._zero_shot_block(loaded, "scene-kind", tmp_path)
    first[1]["leep"] = 1e9  # a caller editing its copy must not change the next one
    again = experiment._zero_shot_block(loaded, "scene-kind", tmp_path)
    assert len(calls) == 1 and again[1]["leep"] != 1e9 and again[0] == first[0] and again[1].keys() == first[1].keys()

    other = copy.deepcopy(loaded)
    with torch.no_grad():
        other.model.logit_scale.add_(1.0)  # another classifier: LEEP changes, so the block is recomputed
    assert experiment._zero_shot_block(other, "scene-kind", tmp_path)[1]["leep"] != again[1]["leep"]
    assert len(calls) == 2

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory (injected)")

    monkeypatch.setattr(experiment, "_ZERO_SHOT_MEMO", OrderedDict())
    monkeypatch.setattr(label_sources, "baseline_block", broken)
    assert experiment._zero_shot_block(loaded, "scene-kind", tmp_path)[1] == {}
    monkeypatch.setattr(label_sources, "baseline_block", counted)  # a failure is not remembered
    assert experiment._zero_shot_block(loaded, "scene-kind", tmp_path)[1].keys() == first[1].keys()
    assert len(calls) == 3


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_a_cells_peak_memory_is_its_own_not_an_earlier_cells():
    """ru_maxrss never goes down: every cell of a process reported the largest peak of any earlier one.
    The memory is mapped for the test, not taken from the allocator: np.ones(100 MB) could reuse memory earlier
    tests had freed inside malloc's heap, still resident, so the peak did not grow (after 44 files, reverse order)."""
    import mmap

    import numpy as np

    from core.experiment import peak_rss_mb, start_peak_window

    def touched(mb: int) -> mmap.mmap:
        """``mb`` MB of new pages, each written: resident until closed."""
        memory = mmap.mmap(-1, mb * 2**20)
        view = np.frombuffer(memory, dtype=np.uint8)
        view[:] = 1
        del view  # closing the map needs its last view gone
        return memory

    touched(400).close()  # 400 MB: an earlier cell's peak, given back
    process_peak = peak_rss_mb("process")
    assert start_peak_window() == "cell"
    small = peak_rss_mb("cell")
    assert small < process_peak - 300  # the window starts at the current size, not the old peak
    more = touched(100)
    assert peak_rss_mb("cell") >= small + 90
    more.close()


def test_a_cell_takes_zero_shot_measures_on_train_and_accuracies_on_test(monkeypatch, tmp_path):
    """SPEC: the predictors (IIMM, baselines) come from the training split; the accuracies before and after
    from the test split. Only a slow test caught a cell measuring zs_acc on train."""
    import core.embed
    import core.experiment as experiment

    embedded, accuracies = [], []
    real_embed, real_before = core.embed.embed_dataset, experiment.accuracies_before

    def embed(loaded, data, **kw):
        embedded.append((data.meta.get("split"), len(data)))
        return real_embed(loaded, data, **kw)

    def before(loaded, test_data, ood_data, frozen_embeddings):
        accuracies.extend((d.name, d.meta.get("split")) for d in (test_data, *ood_data.values()))
        return real_before(loaded, test_data, ood_data, frozen_embeddings)

    monkeypatch.setattr(core.embed, "embed_dataset", embed)
    monkeypatch.setattr(experiment, "accuracies_before", before)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert embedded[0] == ("train", 1500)  # the zero-shot block: IIMM and the baselines
    assert accuracies == [("shape-size", "test"), ("scene-kind", "test")]


def test_accuracies_before_and_after_come_from_one_scoring_path(monkeypatch, tmp_path):
    """A shipped zero-shot record had +0.125 in-domain gain: the accuracy before came from NumPy's cosine
    argmax, the one after from the model's logits, and a near-tie broke the two ways. Here the NumPy path is
    made to disagree on purpose; a method that trains nothing must still gain exactly 0, in and out of domain."""
    import core.experiment as experiment
    from core import metrics

    real = metrics.zero_shot_accuracy
    monkeypatch.setattr(metrics, "zero_shot_accuracy", lambda *a: real(*a) + 0.125)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["zs_acc"] == record["ft_acc"] and record["id_gain"] == 0.0
    assert record["ood_before"] == record["ood_after"] and record["ood_change"] == 0.0


@pytest.mark.skipif(not __import__("shutil").which("git"), reason="needs git")
def test_git_revision_is_unknown_unless_the_code_is_its_own_checkout(tmp_path, monkeypatch):
    # a copy without .git inside another repository recorded that repository's commit; a repository without
    # commits recorded "HEAD+dirty" (git prints the name it could not resolve)
    from core import experiment

    def git(cwd, *args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
               "GIT_COMMITTER_EMAIL": "t@t"}
        return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout

    outer, inner, empty = tmp_path / "outer", tmp_path / "outer" / "copy", tmp_path / "empty"
    for folder in (inner, empty):
        folder.mkdir(parents=True)
        (folder / "f.py").write_text("x = 1\n", encoding="utf-8")
    git(outer, "init", "-q")
    git(outer, "commit", "-q", "--allow-empty", "-m", "outer")
    git(empty, "init", "-q")
    git(empty, "add", "f.py")
    cases = {inner: "unknown", empty: "unknown", outer: git(outer, "rev-parse", "HEAD").strip()}
    try:
        for root, expected in cases.items():
            monkeypatch.setattr(experiment, "REPO_ROOT", root.resolve())
            experiment.git_revision.cache_clear()
            assert experiment.git_revision() == expected, root
    finally:
        experiment.git_revision.cache_clear()


def test_a_cell_on_a_gpu_initialises_cuda_before_resetting_its_peak_memory(monkeypatch, tmp_path):
    """A fresh process (the in-process runner, each spawned worker) has not initialised CUDA, and torch's
    allocator refuses ``reset_peak_memory_stats('cuda:0')`` until it has ('Invalid device argument'), which run_cell
    called before its model touched the GPU: every cell of a GPU grid failed with that error. Here CUDA is a
    stand-in that behaves so (torch here, without a GPU, raises exactly that), and the model stays on the CPU."""
    import torch

    import core.experiment as experiment
    import core.models

    if hasattr(torch._C, "_cuda_resetPeakMemoryStats") and not torch.cuda.is_initialized():
        with pytest.raises(RuntimeError, match="Invalid device argument"):  # the behaviour the stand-in copies
            torch.cuda.reset_peak_memory_stats("cuda:0")
    cuda = {"initialised": False}
    real_load = core.models.load_model

    def reset(device=None):
        if not cuda["initialised"]:
            raise RuntimeError("Invalid device argument : did you call init?")

    def load_model(name, *, device="cpu", **kw):
        cuda["initialised"] = True  # moving a model to the GPU initialises CUDA
        return real_load(name, **kw)

    monkeypatch.setattr(torch.cuda, "init", lambda: cuda.update(initialised=True))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", reset)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"Stand-in GPU ({device})")
    monkeypatch.setattr(core.models, "load_model", load_model)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": [], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path, device="cuda:0")
    assert record["status"] == "ok", record["error"]
    assert record["provenance"]["device"] == "cuda:0" and record["provenance"]["peak_gpu_mb"] == 3.0
    assert record["provenance"]["gpu"] == "Stand-in GPU (cuda:0)"  # which GPU, as the CPU is named: rounding differs
    # a record the store refuses is replaced by a failure record that keeps the machine it ran on, the GPU included
    assert experiment.refused_record(record, "too big")["provenance"]["gpu"] == "Stand-in GPU (cuda:0)"


def test_a_record_names_the_data_it_ran_on_by_the_caches_fingerprints(monkeypatch, tmp_path):
    """Records did not say which data a cell ran on: EuroSAT's, SUN397's and image folders' splits changed on
    2026-12-05/06, and runs on the old and new splits of one dataset name were averaged as one. The record now
    carries each split's fingerprint, the very one the embedding cache keys it by, hashed once."""
    import core.embed
    import core.experiment as experiment
    from core.data.registry import load_split
    from core.store.validate import check_record

    hashed, real = [], core.embed.data_fingerprint

    def counted(data):
        hashed.append((data.name, data.meta.get("split")))
        return real(data)

    monkeypatch.setattr(core.embed, "data_fingerprint", counted)
    cell = {"model": "worldclip-tiny", "dataset": "shape-size", "method": "zero_shot", "seed": 0,
            "ood": ["scene-kind"], "method_config": {}, "train": {}, "source": "test"}
    record = experiment.run_cell(cell, cache_dir=tmp_path)
    assert record["status"] == "ok", record["error"]
    assert record["provenance"]["data_fingerprint"] == {
        "train": real(load_split("shape-size", "train")), "test": real(load_split("shape-size", "test")),
        "ood": {"scene-kind": real(load_split("scene-kind", "test"))}}
    assert sorted(hashed) == [("scene-kind", "test"), ("shape-size", "test"), ("shape-size", "train")]
    check_record(record)  # the store takes it
    refused = experiment.refused_record(record, "disk full")
    assert refused["provenance"]["data_fingerprint"] == record["provenance"]["data_fingerprint"]
