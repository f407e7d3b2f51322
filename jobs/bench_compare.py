"""The Compare page's first view, timed: ``python -m jobs.bench_app --compare 44x300``.

A synthetic store of one model's runs, METHODS x DATASETS (one seed each; source='synthetic-bench'), in a temporary
folder, then the shipped store: each three times, AppTest's run of pages/compare.py with Streamlit's caches cleared
before it (a warm server's first visitor of the page: the store is read again, every panel and fit is built).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from core import store

REPO = Path(__file__).resolve().parent.parent
#: What the benchmark's synthetic model is called (one model: the page draws one at a time).
MODEL, PRETRAINED = "ViT-B-32", "synthetic-bench"


def compare_records(n_methods: int, n_datasets: int, seed: int = 0) -> list[dict]:
    """Schema-valid fake runs of one model, every method on every dataset (for timing only): a method's outcomes
    follow IIMM with its own slope plus noise, as the page expects to fit them."""
    rng = np.random.default_rng(seed)
    before = {"imagenet-v2": 55.0, "imagenet-sketch": 40.0}
    iimms = rng.uniform(0.1, 0.5, n_datasets)
    out = []
    for m in range(n_methods):
        method, slope = f"bench-method-{m:02d}", float(rng.uniform(5, 40))
        for d, iimm in enumerate(iimms.tolist()):
            zs = 70.0 - 40.0 * (iimm - 0.1)
            gain = float(np.clip(slope * iimm + rng.normal(0, 2), -zs, 100 - zs))
            after = {k: v - slope * iimm / 4 + float(rng.normal(0, 1)) for k, v in before.items()}
            run_id = f"bench-cmp-{m:03d}-{d:04d}"
            out.append({
                "run_id": run_id, "schema_version": 1, "status": "ok", "error": "", "model": MODEL,
                "pretrained": PRETRAINED, "model_key": MODEL, "random_weights": False, "method": method,
                "dataset": f"bench-set-{d:03d}", "seed": 0, "zs_acc": zs, "ft_acc": zs + gain, "id_gain": gain,
                "norm_gain": gain / (100 - zs), "ood_change": float(np.mean([after[k] - before[k] for k in before])),
                "iimm": iimm, "inter_modal": iimm - 0.05, "intra_image": iimm + 0.05, "source": "synthetic-bench",
                "created_at": f"2025-01-01T00:00:{len(out) % 60:02d}+00:00",
                "config": {"method": method, "lr": 1e-5, "epochs": 10}, "ood_sets": sorted(before),
                "ood_before": before, "ood_after": after, "zero_shot": {"iimm": iimm, "zs_acc": zs},
                "provenance": {"command": f"python -m jobs.grid --only {run_id}", "host": "bench", "embed_dim": 512,
                               "weights_source": "synthetic-bench"}})
    return out


def _first_views(repeats: int) -> tuple[list[float], list[float]]:
    """``repeats`` runs of the Compare page, each after Streamlit's caches are cleared: their wall-clock and CPU
    seconds (this process's, every thread's: on a shared machine the wall clock also counts others' work). Raises
    RuntimeError when the page fails (a figure of a failed page would say nothing)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    times, cpu = [], []
    for _ in range(repeats + 1):  # the first, untimed, imports what a running server has imported already
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(REPO / "pages" / "compare.py"), default_timeout=600)
        t0, c0 = time.perf_counter(), time.process_time()
        at.run()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if at.exception:
            raise RuntimeError(f"the Compare page failed: {at.exception[0].message}")
    return times[1:], cpu[1:]


def _line(label: str, times: tuple[list[float], list[float]]) -> None:
    for kind, values in zip(("wall", "CPU"), times, strict=True):
        print(f"  {label + ', ' + kind:<58} " + "  ".join(f"{t:6.2f} s" for t in values)
              + f"   median {np.median(values):6.2f} s", flush=True)


def bench_compare(n_methods: int, n_datasets: int, repeats: int = 3) -> dict[str, tuple[list[float], list[float]]]:
    """The Compare page's first view on the synthetic store, then on the shipped one (see the module docstring)."""
    from jobs.bench_app import app_store

    print(f"(d) Compare page, first view (AppTest, caches cleared), {repeats} runs each")
    out: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="iimm-bench-compare-") as tmp:
        root = Path(tmp) / "results"
        store.write_records_parquet(compare_records(n_methods, n_datasets), root)
        with app_store(root, Path(tmp) / "shipped"):
            out["synthetic_s"] = _first_views(repeats)
        _line(f"{n_methods} methods x {n_datasets} datasets (synthetic, 1 model)", out["synthetic_s"])
        with app_store(Path(tmp) / "no-local-results", store.SHIPPED_DIR):
            out["shipped_s"] = _first_views(repeats)
        _line(f"the shipped store ({len(store.load_runs([store.SHIPPED_DIR]))} runs)", out["shipped_s"])
    return out


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.bench_compare", "python -m jobs.bench_app --compare 44x300")
