"""Coverage of the upload forecast's 95 % intervals on small samples of the world-v1 tasks (leave-task-out).

    python -m tests.measure_small_sample_coverage [--label new] [--out .cache/coverage]

For each of the 15 world-v1 fine-tuning tasks, a seeded sample of 20 images per class and one of 300 images
from its train split is embedded with worldclip-tiny (world-v1) and forecast by core.predict from the shipped
runs of the other 14 tasks (jobs/results/default); each method's measured outcome (mean over seeds) is then
inside or outside the forecast's 95 % interval. Writes <label>_rows.csv and <label>_summary.csv to --out.
The protocol was fixed before any result was seen (README, "Forecasting your dataset").
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

torch.set_num_threads(1)

from core import predict  # noqa: E402
from core.data.registry import load_split, world_finetune_tasks  # noqa: E402
from core.embed import embed_images, embed_prompts  # noqa: E402
from core.models import load_model  # noqa: E402
from core.store import load_runs  # noqa: E402
from core.transferability import BASELINES as _BASELINES, classifier_params  # noqa: E402

_parser = argparse.ArgumentParser(prog="python -m tests.measure_small_sample_coverage",
                                  description=__doc__.split("\n")[0])
_parser.add_argument("--label", default="current", help="names the output files")
_parser.add_argument("--out", type=Path, default=Path(".cache/coverage"), help="folder for the CSV files")
_args = _parser.parse_args()
LABEL, OUT = _args.label, _args.out
OUT.mkdir(parents=True, exist_ok=True)
BASELINES = set(_BASELINES)  # a set chosen with any of them is a baseline set
OUTCOMES = ("id_gain", "ood_change")
SIZES = ("20_per_class", "300_total")
MODEL, PRETRAINED = "worldclip-tiny", "world-v1"

t_start = time.perf_counter()
runs_dir = Path(__file__).resolve().parent.parent / "jobs" / "results" / "default"
runs = load_runs([runs_dir])
if set(runs["pretrained"]) != {PRETRAINED} or set(runs["model"]) != {MODEL}:
    raise SystemExit(f"error: {runs_dir} should hold only {MODEL} ({PRETRAINED}) runs")
loaded = load_model("worldclip-tiny")
scale, bias = classifier_params(loaded.model)
print(f"[{LABEL}] runs={len(runs)} logit_scale={scale:.4f} logit_bias={bias}", flush=True)


def draw(labels: np.ndarray, n_classes: int, size: str) -> np.ndarray:
    rng = np.random.default_rng(12345)
    if size == "20_per_class":
        idx = [rng.choice(np.flatnonzero(labels == c), 20, replace=False) for c in range(n_classes)]
        return np.sort(np.concatenate(idx))
    return np.sort(rng.choice(len(labels), 300, replace=False))


def kind(predictors: str) -> str:
    names = set(str(predictors).split(" + "))
    if names & BASELINES:
        return "baseline"
    if predictors == "mean (no predictor)":
        return "mean_only"
    return "zero_shot_only"


rows = []
for task in world_finetune_tasks():
    data = load_split(task, "train")
    others = runs[runs["dataset"] != task]
    mine = runs[(runs["dataset"] == task) & (runs["status"] == "ok") & (runs["method"] != "zero_shot")]
    truth = mine.groupby("method")[list(OUTCOMES)].mean()
    text = embed_prompts(loaded, data.class_names, data.template)
    for size in SIZES:
        t0 = time.perf_counter()
        idx = draw(data.labels, len(data.class_names), size)
        sub = data.subset(idx)
        image = embed_images(loaded, sub.images)
        res = predict.forecast_for_embeddings(image, text, sub.labels, list(sub.class_names), others,
                                              model=MODEL, pretrained=PRETRAINED, model_label="m",
                                              random_weights=False, logit_scale=scale, logit_bias=bias)
        sel = res.selected
        for _, r in sel.iterrows():
            if r["method"] not in truth.index:
                continue
            y = float(truth.loc[r["method"], r["outcome"]])
            ok = r.get("status") == "ok"
            rows.append({
                "clone": LABEL, "task": task, "size": size, "n_images": len(idx), "method": r["method"],
                "outcome": r["outcome"], "status": r.get("status"), "n_datasets": r.get("n_datasets"),
                "n_sets": r.get("n_sets"), "predictors": r.get("predictors"),
                "kind": kind(r.get("predictors")) if ok else None, "truth": y,
                "prediction": r.get("prediction"), "lo": r.get("lo"), "hi": r.get("hi"),
                "hit": bool(r["lo"] <= y <= r["hi"]) if ok else None,
                "iimm_prediction": r.get("iimm_prediction"), "iimm_lo": r.get("iimm_lo"), "iimm_hi": r.get("iimm_hi"),
                "iimm_hit": bool(r["iimm_lo"] <= y <= r["iimm_hi"]) if ok and pd.notna(r.get("iimm_lo")) else None,
            })
        print(f"[{LABEL}] {task} {size}: n={len(idx)} rows={len(sel)} {time.perf_counter() - t0:.1f}s", flush=True)

df = pd.DataFrame(rows)
df.to_csv(OUT / f"{LABEL}_rows.csv", index=False)

summ = []
ok = df[df["status"] == "ok"].copy()
for size, g in ok.groupby("size", sort=False):
    s = {"clone": LABEL, "size": size, "n": len(g), "n_not_ok": int((df[df["size"] == size]["status"] != "ok").sum()),
         "coverage": g["hit"].mean()}
    for o in OUTCOMES:
        go = g[g["outcome"] == o]
        s[f"cov_{o}"], s[f"n_{o}"] = go["hit"].mean(), len(go)
    gi = g[g["iimm_hit"].notna()]
    s["iimm_coverage"], s["n_iimm"] = gi["iimm_hit"].astype(bool).mean(), len(gi)
    s["mean_width"] = (g["hi"] - g["lo"]).mean()
    s["iimm_mean_width"] = (gi["iimm_hi"] - gi["iimm_lo"]).mean()
    s["mae"] = (g["prediction"] - g["truth"]).abs().mean()
    s["iimm_mae"] = (gi["iimm_prediction"] - gi["truth"]).abs().mean()
    for k in ("baseline", "zero_shot_only", "mean_only"):
        gk = g[g["kind"] == k]
        s[f"cov_{k}"], s[f"n_{k}"] = (gk["hit"].mean() if len(gk) else np.nan), len(gk)
    summ.append(s)
sm = pd.DataFrame(summ)
sm.to_csv(OUT / f"{LABEL}_summary.csv", index=False)
pd.set_option("display.width", 250)
print(sm.T.to_string())
print(f"[{LABEL}] total runtime {time.perf_counter() - t_start:.1f}s")
