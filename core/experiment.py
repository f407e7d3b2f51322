"""One grid cell, start to finish: zero-shot scores, fine-tune, evaluate, one result record.

``run_cell(cell)`` never raises for a failure of the run itself: it returns a record with
status 'failed' and the error, so a grid goes on. The caller writes the record. What a record says about the
machine (CPU, kernel settings, versions, peak memory) comes from ``core.host``, whose names are re-exported here.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import socket
import subprocess
import threading
import time
import traceback
from collections import OrderedDict
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from core.blas import blas_threads
from core.host import (NUMERICS_VARIABLES, cpu_model, cpu_signature, numerics_environment,  # noqa: F401 (re-exported)
                       package_versions, peak_rss_mb, start_peak_window)
from core.schema import SCHEMA_VERSION, TEXT_LIMITS, outcome_fields
from core.text import shorten

if TYPE_CHECKING:
    from core.data.base import LabeledImages
    from core.models import LoadedModel

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parent.parent


def cell_id(cell: dict[str, Any]) -> str:
    """Stable id of a cell: a hash of its full config (key order does not matter)."""
    return hashlib.sha256(json.dumps(cell, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _git(*args: str) -> subprocess.CompletedProcess:
    """git's output decoded as the file system's names are (UTF-8 on Windows and macOS), not in the locale's
    encoding: Windows' code page read a checkout under C:\\Users\\José as "JosÃ©" (cp1252), not this checkout,
    and its records said git revision "unknown"."""
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, timeout=5)
    return subprocess.CompletedProcess(done.args, done.returncode, os.fsdecode(done.stdout), os.fsdecode(done.stderr))


@lru_cache(maxsize=1)
def git_revision() -> str:
    """The repository's HEAD commit, with "+dirty" when tracked files changed; "unknown" when the code
    is not a git checkout of its own (no git, a copy without .git, a copy inside another repository, a
    repository without commits), cached per process."""
    try:
        top = _git("rev-parse", "--show-toplevel")
        if top.returncode != 0 or not top.stdout.strip() or Path(top.stdout.strip()).resolve() != REPO_ROOT:
            return "unknown"  # not a checkout, or an enclosing repository's commit, which is not this code's
        rev = _git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
        if rev.returncode != 0 or not rev.stdout.strip():
            return "unknown"  # no commit yet (git prints "HEAD" for it)
        dirty = _git("status", "--porcelain", "--untracked-files=no")
        return rev.stdout.strip() + ("+dirty" if dirty.returncode != 0 or dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# Zero-shot blocks already computed in this process, by a hash of everything they are computed from: every
# method of a grid scores the same (model, dataset), and the scores are a deterministic function of these.
_ZERO_SHOT_MEMO: OrderedDict[str, tuple[dict, dict, dict]] = OrderedDict()
_ZERO_SHOT_MEMO_SIZE = 32
_ZERO_SHOT_LOCK = threading.Lock()


def _zero_shot_block(loaded, name: str, cache_dir: Path | None) -> tuple[dict, dict, dict, str | None]:
    """Zero-shot measures (train split) and transferability baselines, once per (model, dataset):
    (scores, baselines, how the baselines were made, the train split's :func:`core.embed.data_fingerprint`).
    LEEP uses the model's own classifier (exp(logit_scale), logit_bias); EMMS every offline text encoder
    (core.transferability.label_sources). A block already computed in this process from the same embeddings,
    labels and classifier is reused."""
    from core import metrics
    from core.data.registry import load_split
    from core.embed import embed_dataset
    from core.transferability import classifier_params

    emb = embed_dataset(loaded, load_split(name, "train"), cache_dir=cache_dir)
    scale, bias = classifier_params(loaded.model)
    digest = hashlib.sha256()
    for part in (emb.image, emb.text, np.asarray(emb.labels, dtype=np.int64)):
        digest.update(np.ascontiguousarray(part).tobytes() + str(part.shape).encode())
    digest.update(json.dumps([list(emb.class_names), scale, bias]).encode())
    key = digest.hexdigest()
    with _ZERO_SHOT_LOCK:
        if key in _ZERO_SHOT_MEMO:
            _ZERO_SHOT_MEMO.move_to_end(key)
            return (*copy.deepcopy(_ZERO_SHOT_MEMO[key]), emb.data_fingerprint)
    scores = {k: float(v) for k, v in metrics.zero_shot_scores(emb.image, emb.text, emb.labels).items()}
    try:
        from core.transferability.label_sources import baseline_block

        raw, info = baseline_block(emb.image, emb.text, emb.labels, emb.class_names,
                                   logit_scale=scale, logit_bias=bias)
        block = scores, {k: float(v) for k, v in raw.items()}, info
    except Exception as exc:  # a baseline failing must not fail the run (nor be remembered: it may be transient)
        log.warning("transferability baselines skipped for %s: %s", name, exc)
        return scores, {}, {}, emb.data_fingerprint
    with _ZERO_SHOT_LOCK:
        _ZERO_SHOT_MEMO[key] = copy.deepcopy(block)
        while len(_ZERO_SHOT_MEMO) > _ZERO_SHOT_MEMO_SIZE:
            _ZERO_SHOT_MEMO.popitem(last=False)
    return (*block, emb.data_fingerprint)


class FrozenEmbeddings:
    """data -> the untrained image tower's unit-norm embeddings of ``data``'s images (N, D), through the
    embedding cache; each dataset object is read once (a cell scores its test and OOD sets before and after
    training). :meth:`fingerprint` gives the :func:`core.embed.data_fingerprint` of data embedded so."""

    def __init__(self, loaded: LoadedModel, cache_dir: Path | None) -> None:
        self._loaded, self._cache_dir = loaded, cache_dir
        # id -> (the data, kept so its id is not reused; its embeddings; its fingerprint)
        self._held: dict[int, tuple[Any, np.ndarray, str | None]] = {}

    def __call__(self, data) -> np.ndarray:
        from core.embed import embed_dataset

        if id(data) not in self._held:
            emb = embed_dataset(self._loaded, data, cache_dir=self._cache_dir)
            self._held[id(data)] = (data, emb.image, emb.data_fingerprint)
        return self._held[id(data)][1]

    def fingerprint(self, data) -> str | None:
        """``data``'s fingerprint as its embeddings were looked up by; None when it was not embedded here."""
        held = self._held.get(id(data))
        return held[2] if held is not None else None


def frozen_embeddings_of(loaded: LoadedModel, cache_dir: Path | None) -> FrozenEmbeddings:
    """A :class:`FrozenEmbeddings` of ``loaded``'s untrained image tower (data -> its embeddings (N, D))."""
    return FrozenEmbeddings(loaded, cache_dir)


def data_fingerprints(train: str | None, test_data: Any, ood_data: Mapping[str, Any],
                      frozen: FrozenEmbeddings) -> dict[str, Any]:
    """A record's ``provenance.data_fingerprint``: the :func:`core.embed.data_fingerprint` of the train split
    (``train``, from the zero-shot block), the test split and each OOD set as the embedding cache looked them up
    (nothing hashed twice), e.g. ``{"train": ..., "test": ..., "ood": {name: ...}}``; one not known is left out."""
    ood = {name: frozen.fingerprint(data) for name, data in ood_data.items()}
    out = {"train": train, "test": frozen.fingerprint(test_data), "ood": {k: v for k, v in ood.items() if v}}
    return {key: value for key, value in out.items() if value}


def accuracies_before(loaded: LoadedModel, test_data: LabeledImages, ood_data: dict[str, LabeledImages],
                      frozen_embeddings: Callable[[Any], np.ndarray]) -> dict[str, Any]:
    """The untrained model's accuracies (%) on ``test_data`` and each of ``ood_data`` (name -> LabeledImages):
    :func:`core.evaluate.evaluate_run` of the zero-shot classifier, from ``frozen_embeddings`` (data -> the
    untrained image tower's embeddings). The accuracies after fine-tuning come from the same function, so a
    method that changes nothing has a gain of exactly 0 (NumPy's cosine argmax and the model's scaled logits
    can break a class tie to within float rounding differently)."""
    from core.evaluate import evaluate_run
    from core.methods import build_method

    zero_shot = build_method("zero_shot", loaded, test_data.class_names, test_data.template, {})
    zero_shot.train(loaded.model.training)  # evaluate_run restores this mode on the shared model
    return evaluate_run(zero_shot, test_data, ood_data, image_embeddings=frozen_embeddings)


IDENTITY_FIELDS = ("run_id", "schema_version", "model", "pretrained", "model_key", "random_weights", "method",
                   "dataset", "seed", "source", "config", "ood_sets", "created_at")
PROVENANCE_KEPT = ("git_revision", "versions", "device", "gpu", "host", "cpu", "cpu_signature", "cpu_capability",
                   "numerics_env", "data_fingerprint", "torch_threads", "blas_threads", "command", "wall_time_s",
                   "peak_rss_mb", "peak_rss_scope", "peak_gpu_mb")


def refused_record(record: dict[str, Any], problem: Exception | str) -> dict[str, Any]:
    """The failure record that replaces a run's record the store refused (``problem``: why), so the cell
    still leaves exactly one record: its identity, config and core provenance, status 'failed'."""
    prov = record.get("provenance") if isinstance(record.get("provenance"), dict) else {}
    error = f"the run's record was refused by the store ({record.get('status')} run): {problem}"
    return {**{k: record[k] for k in IDENTITY_FIELDS if k in record}, "status": "failed",
            "error": shorten(error, TEXT_LIMITS["error"]),
            "provenance": {k: prov[k] for k in PROVENANCE_KEPT if k in prov}}


def _model_fields(model: str) -> dict[str, Any]:
    """The record's model fields from the registry alone (no weights loaded), so a cell whose model
    fails to load still leaves a valid failure record; run_cell refines them once the model is loaded."""
    from core.models import spec_for  # no torch

    try:
        spec = spec_for(model)
    except ValueError:
        return {"model": model or "unknown", "pretrained": "unknown", "model_key": model or "unknown",
                "random_weights": False}
    return {"model": spec.arch, "pretrained": spec.pretrained_tag, "model_key": spec.key,
            "random_weights": spec.random_weights}


def run_cell(cell: dict[str, Any], *, cache_dir: Path | None = None, device: str = "cpu",
             progress: Callable[[dict], None] | None = None, command: str = "") -> dict[str, Any]:
    """Execute one cell and return its record (status 'ok' or 'failed'; never raises for run errors).

    cell keys: model, dataset, method, seed, ood (list of dataset names), method_config (dict),
    train (dict of core.train.TrainRecipe fields), source (str).
    """
    # a duration: the monotonic clock, which an NTP step or a clock set by hand during the cell never moves
    started, memory_scope = time.perf_counter(), start_peak_window()
    record: dict[str, Any] = {
        "run_id": cell_id(cell), "schema_version": SCHEMA_VERSION, "status": "failed", "error": "",
        **_model_fields(str(cell.get("model"))), "method": str(cell.get("method")), "dataset": str(cell.get("dataset")),
        "seed": int(cell.get("seed", 0)), "source": cell.get("source", f"measured:grid@{socket.gethostname()}"),
        "config": cell, "ood_sets": list(cell.get("ood", [])),
    }
    prov: dict[str, Any] = {"git_revision": git_revision(), "versions": package_versions(), "device": device,
                            "host": socket.gethostname(), "cpu": cpu_model(), "cpu_signature": cpu_signature(),
                            "numerics_env": numerics_environment(), "command": command}
    try:
        import torch

        from core.evaluate import evaluate_run
        from core.methods import build_method, count_parameters, get_method
        from core.models import load_model
        from core.data.registry import load_split
        from core.train import TrainRecipe, train

        torch.manual_seed(record["seed"])
        prov["torch_threads"] = torch.get_num_threads()  # CPU reductions round by how the work is split
        # the instruction set torch's CPU kernels use ("AVX512", "AVX2", ...): virtual hosts may all be named
        # "Intel(R) Xeon(R) Processor", yet round differently when their kernels differ
        prov["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        if device.startswith("cuda"):
            torch.cuda.init()  # the allocator of a fresh process refuses the reset for 'cuda:N' until CUDA is up
            torch.cuda.reset_peak_memory_stats(device)
            prov["gpu"] = torch.cuda.get_device_name(device)  # as "cpu": GPUs of two kinds may round differently
        loaded = load_model(cell["model"], device=device)
        spec = loaded.spec
        record.update(model=spec.arch, pretrained=spec.pretrained_tag, model_key=spec.key,
                      random_weights=spec.random_weights)
        zero_shot, baselines, baseline_info, train_fingerprint = _zero_shot_block(loaded, record["dataset"],
                                                                                  cache_dir)
        record["zero_shot"], record["transferability"] = zero_shot, baselines
        prov["transferability"] = baseline_info
        record.update(iimm=zero_shot["iimm"], inter_modal=zero_shot["inter_modal"],
                      intra_image=zero_shot["intra_image"])
        train_data, test_data = load_split(record["dataset"], "train"), load_split(record["dataset"], "test")
        ood_data = {name: load_split(name, "test") for name in record["ood_sets"]}

        # train and evaluate_run call this only for a frozen image tower, which they then score without image
        # forward passes
        frozen_embeddings = frozen_embeddings_of(loaded, cache_dir)
        before = accuracies_before(loaded, test_data, ood_data, frozen_embeddings)
        prov["data_fingerprint"] = data_fingerprints(train_fingerprint, test_data, ood_data, frozen_embeddings)
        zs_acc, ood_before = float(before["test_acc"]), {k: float(v) for k, v in before["ood_acc"].items()}
        module = build_method(record["method"], loaded, train_data.class_names, train_data.template,
                              dict(cell.get("method_config", {})))
        trainable, total = count_parameters(module)

        prov["method"] = module.method_details()  # family, counts (and the resolved peft config)
        prov.update(trainable_params=int(trainable), total_params=int(total),
                    embed_dim=int(loaded.model.text_projection.shape[-1])
                    if getattr(loaded.model, "text_projection", None) is not None else None,
                    weights_source=spec.weights_source)
        if get_method(record["method"]).trains:
            recipe = TrainRecipe(**{**cell.get("train", {}), "seed": record["seed"]})
            result = train(module, train_data, recipe, progress=progress, image_embeddings=frozen_embeddings)
            prov["train"] = {k: getattr(result, k) for k in ("steps", "train_time_s", "samples_per_s",
                                                             "best_val_acc", "best_step")}
        after = evaluate_run(module, test_data, ood_data, image_embeddings=frozen_embeddings)
        prov["evaluation_input"] = after["input"]
        ft_acc = float(after["test_acc"])
        ood_after = {name: float(after["ood_acc"][name]) for name in record["ood_sets"]}
        record.update(zs_acc=zs_acc, ft_acc=ft_acc, ood_before=ood_before, ood_after=ood_after,
                      **outcome_fields(zs_acc, ft_acc, ood_before, ood_after))
        record["status"] = "ok"
    except Exception as exc:  # recorded, not raised: one bad cell must not stop the grid
        error = f"{type(exc).__name__}: {exc}"
        # the store refuses a longer one, and the cell would then leave no record
        record["error"] = shorten(error, TEXT_LIMITS["error"])
        prov["traceback"] = traceback.format_exc(limit=8)[-4000:]
        log.warning("cell %s failed: %s", record["run_id"], record["error"])
    prov["blas_threads"] = blas_threads()  # after the scores: the BLAS libraries that computed them are loaded
    prov["wall_time_s"] = round(time.perf_counter() - started, 2)
    prov["peak_rss_mb"], prov["peak_rss_scope"] = round(peak_rss_mb(memory_scope), 1), memory_scope
    if device.startswith("cuda"):
        try:
            import torch

            prov["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
        except Exception:  # noqa: BLE001 (no CUDA after all): the record stands without it
            pass
    record["provenance"] = prov
    record["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return record
