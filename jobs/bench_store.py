"""Benchmark the result store at scale: load and query a synthetic store of N runs.

    python -m jobs.bench_store [--runs 100000] [--json-files 200]

Builds, in a temporary folder, one compacted Parquet file of N synthetic runs (clearly
marked source='synthetic-bench') plus a few loose JSON records, then times a cold
``store.load_runs`` and a few ``store.query_runs`` calls against the 1 s goal.
"""
from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from core import store
from jobs.cli import EXIT_USER_ERROR, job_parser, user_facing, work_begins

GOAL_S = 1.0
METHODS = ("full", "bitfit", "attn", "lora", "adapter", "linear-probe", "orthcr", "cite")
DATASETS = ("cars", "cifar100", "dtd", "eurosat", "gtsrb", "mnist", "resisc45", "stl10", "sun397", "svhn")
MODELS = (("ViT-B-32", "openai"), ("timm/ViT-B-16-SigLIP", "timm/ViT-B-16-SigLIP"),
          ("coca_ViT-B-32", "laion2B-s13B-b90k"), ("EVA02-B-16", "merged2b_s8b_b131k"))


@lru_cache(maxsize=None)
def _fingerprint(name: str, split: str) -> str:
    """A stand-in for :func:`core.embed.data_fingerprint` of one split (24 hex digits, fixed per name)."""
    return hashlib.sha256(f"{name}/{split}".encode()).hexdigest()[:24]


def synthetic_records(n: int, seed: int = 0, start: int = 0) -> list[dict]:
    """n schema-valid fake runs with realistic nested fields (for timing only). Each names its data as a grid
    record does (core.experiment): ``provenance.data_fingerprint`` with its train and test splits' and each OOD
    set's hash, the same for every run of one name (one version of each split: no run is on other data)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        model, pretrained = MODELS[i % len(MODELS)]
        method, dataset = METHODS[(i // 4) % len(METHODS)], DATASETS[(i // 32) % len(DATASETS)]
        zs, iimm = float(rng.uniform(20, 90)), float(rng.uniform(0.1, 0.5))
        gain = float(np.clip(rng.normal(10, 5), -zs, 100 - zs))  # accuracies stay in [0, 100]
        before = {"imagenet-v2": 55.0, "imagenet-sketch": 40.0, "imagenet-r": 60.0, "imagenet-a": 30.0}
        after = {k: v + float(rng.normal(-2, 1)) for k, v in before.items()}
        out.append({
            "run_id": f"bench-{i:08d}", "schema_version": 1, "status": "ok", "error": "",
            "model": model, "pretrained": pretrained, "model_key": model, "random_weights": False,
            "method": method, "dataset": dataset, "seed": i // 320, "zs_acc": zs,
            "ft_acc": zs + gain, "id_gain": gain, "norm_gain": gain / (100 - zs),
            "ood_change": float(np.mean([after[k] - before[k] for k in before])), "iimm": iimm,
            "inter_modal": iimm - 0.05, "intra_image": iimm + 0.05, "source": "synthetic-bench",
            "created_at": f"2025-01-01T00:00:00.{i:06d}+00:00",
            "config": {"method": method, "lr": 1e-5, "epochs": 10, "batch_size": 128},
            "ood_sets": sorted(before), "ood_before": before, "ood_after": after,
            "zero_shot": {"iimm": iimm, "zs_acc": zs, "modality_gap": 0.8},
            "transferability": {"logme": 1.2, "gbc": -3.0},
            "provenance": {"command": f"python -m jobs.grid --only bench-{i:08d}", "host": "bench",
                           "total_params": 151_277_313, "trainable_params": 168_960,
                           "data_fingerprint": {"train": _fingerprint(dataset, "train"),
                                                "test": _fingerprint(dataset, "test"),
                                                "ood": {k: _fingerprint(k, "test") for k in sorted(before)}}},
        })
    return out


def _timed(label: str, fn, results: list) -> object:
    t0 = time.perf_counter()
    value = fn()
    dt = time.perf_counter() - t0
    results.append((label, dt))
    print(f"{label:<48} {dt:7.3f} s  {'OK' if dt < GOAL_S else 'SLOWER than'} {GOAL_S:.0f} s goal"
          + (f"  ({len(value)} rows)" if hasattr(value, "__len__") else ""))
    return value


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.bench_store", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the synthetic Parquet file")
    parser.add_argument("--json-files", type=int, default=200, help="loose JSON records beside the Parquet")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.json_files < 0:
        print("error: --runs must be >= 1 and --json-files >= 0", file=sys.stderr)
        return EXIT_USER_ERROR
    work_begins()
    with tempfile.TemporaryDirectory(prefix="iimm-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        path = store.write_records_parquet(synthetic_records(args.runs), root)
        for rec in synthetic_records(args.json_files, seed=1, start=args.runs):
            store.write_record(rec, root)
        print(f"built {args.runs} runs in {path.name} ({path.stat().st_size / 1e6:.1f} MB) + "
              f"{args.json_files} JSON files in {time.perf_counter() - t0:.1f} s")
        results: list = []
        df = _timed("load_runs (cold)", lambda: store.load_runs([root]), results)
        _timed("query: method=lora", lambda: store.query_runs(df, filters={"method": ["lora"]}), results)
        _timed("query: 2 filters + sort by id_gain + limit 100", lambda: store.query_runs(
            df, filters={"model": ["ViT-B-32"], "dataset": ["dtd", "svhn"]}, sort_by="id_gain",
            limit=100), results)
        _timed("query: search 'sigl' + sort by iimm asc", lambda: store.query_runs(
            df, search="sigl", sort_by="iimm", descending=False), results)
        _timed("query: no filter, sort by created_at", lambda: store.query_runs(
            df, sort_by="created_at"), results)
    slow = [label for label, dt in results if dt >= GOAL_S]
    print("all within the 1 s goal" if not slow else f"over the goal: {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
