"""Synthetic, clearly fake result records for tests only (source = 'synthetic-fixture').

Each method m gets a known straight line: id_gain = a_m + b_m * iimm (+ noise) and
ood_change = -c_m * iimm (+ noise), so tests know what a fit should find.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from core import schema, store

FIXTURE_SOURCE = "synthetic-fixture"
#: method -> (a, b, c): id_gain = a + b * iimm, ood_change = -c * iimm
LINES = {"full": (2.0, 40.0, 10.0), "bitfit": (1.0, 20.0, 2.0), "lora": (1.5, 30.0, 5.0),
         "adapter": (0.5, 10.0, 1.0)}
#: The method names of the shipped grid (19 fine-tuning methods and the zero-shot baseline).
SHIPPED_METHODS = ("attention", "bitfit", "clip_adapter", "clip_cite", "full_ft", "linear_probe", "lora",
                   "orthogonal", "peft_boft", "peft_dora", "peft_hra", "peft_ia3", "peft_ln_tuning", "peft_loha",
                   "peft_lokr", "peft_lora", "peft_oft", "peft_vera", "wise_ft", "zero_shot")
OOD_BEFORE = {"ood-a": 60.0, "ood-b": 50.0}


def fixture_run_id(model: str, pretrained: str, method: str, dataset: str, seed: int) -> str:
    key = f"{model}|{pretrained}|{method}|{dataset}|{seed}".encode()
    return "fx-" + hashlib.sha1(key).hexdigest()[:12]


def make_fixture_records(n_datasets: int = 6, methods: tuple[str, ...] = ("full", "bitfit", "lora"),
                         seed: int = 0, model: str = "worldclip-tiny", pretrained: str = "world-v1",
                         seeds: tuple[int, ...] = (0,), noise: float = 0.0,
                         n_failed: int = 0) -> list[dict[str, Any]]:
    """Schema-valid records for every (method, dataset, seed); the last ``n_failed`` are failed runs.

    Dataset k has iimm = 0.2 + 0.05 k and zs_acc = 70 - 40 (iimm - 0.2). With noise=0 every
    method's outcomes lie exactly on its line in :data:`LINES` (methods not there get (1, 10, 1)).
    """
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    records = []
    for method in methods:
        a, b, c = LINES.get(method, (1.0, 10.0, 1.0))
        for k in range(n_datasets):
            dataset, iimm = f"fx-set-{k}", 0.2 + 0.05 * k
            zs = 70.0 - 40.0 * (iimm - 0.2)
            for s in seeds:
                gain = a + b * iimm + noise * rng.standard_normal()
                change = -c * iimm + noise * rng.standard_normal()
                ood_after = {n: v + change for n, v in OOD_BEFORE.items()}
                run_id = fixture_run_id(model, pretrained, method, dataset, s)
                records.append({
                    "run_id": run_id, "schema_version": schema.SCHEMA_VERSION, "status": "ok",
                    "error": "", "model": model, "pretrained": pretrained, "model_key": model,
                    "random_weights": False, "method": method, "dataset": dataset, "seed": s,
                    "zs_acc": zs, "ft_acc": zs + gain,
                    **schema.outcome_fields(zs, zs + gain, OOD_BEFORE, ood_after),
                    "iimm": iimm, "inter_modal": iimm - 0.05, "intra_image": iimm + 0.05,
                    "source": FIXTURE_SOURCE,
                    "created_at": (start + timedelta(seconds=len(records))).isoformat(),
                    "config": {"method": method, "lr": 1e-5, "epochs": 1},
                    "ood_sets": sorted(OOD_BEFORE), "ood_before": dict(OOD_BEFORE),
                    "ood_after": ood_after,
                    "zero_shot": {"iimm": iimm, "zs_acc": zs, "modality_gap": 1.0 - iimm},
                    "transferability": {"logme": -iimm, "gbc": 2.0 * iimm},
                    "provenance": {"command": f"python -m jobs.grid --only {run_id}",
                                   "total_params": 1_000_000, "embed_dim": 128,
                                   "weights_source": "synthetic", "trainable_params": 1000},
                })
    for rec in records[len(records) - n_failed:] if n_failed else []:
        rec.update(status="failed", error="synthetic failure", ft_acc=None, id_gain=None,
                   norm_gain=None, ood_change=None, ood_after=None)
    return [schema.validate_record(r) for r in records]


def write_fixture_store(directory: str | Path, **kwargs: Any) -> list[Path]:
    """Write :func:`make_fixture_records` (kwargs passed on) as JSON files in ``directory``."""
    return [store.write_record(r, directory) for r in make_fixture_records(**kwargs)]


def disk_full_from(monkeypatch: Any, nth: int = 1) -> None:
    """Make the ``nth`` and every later fsync of a regular file fail as a full disk does (ENOSPC), as a
    write of a file's contents would; fsyncs of folders pass. For checking that writers keep the old file."""
    import os
    import stat

    real, seen = os.fsync, []

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            seen.append(fd)
            if len(seen) >= nth:
                raise OSError(28, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)


def chart_subtitle(spec: dict) -> str:
    """A chart's subtitle as one text (its lines joined: long ones are wrapped)."""
    lines = spec["title"]["subtitle"]
    return lines if isinstance(lines, str) else " ".join(lines)
