"""Cross-check two methods that should agree (peft's LoRA and ours) on a stored grid.

    python -m jobs.peft_check [--results jobs/results/default]... [--ours lora] [--theirs peft_lora] [--table]

For every dataset where both ran: |ID gain(theirs) − ID gain(ours)| on the same seed, averaged over the
seeds both have. Seed noise: for our method, |ID gain(seed a) − ID gain(seed b)| over its seed pairs per
dataset, averaged over datasets. Goal: mean Δ ≤ 2 × seed noise. Also the trainable-parameter counts the
records carry (they must be equal) and the same comparison for OOD change.

``--table`` adds every method's mean ID gain and OOD change over the (model, dataset, seed) cells that
every method in the store ran (so a partly run grid still compares like with like), with its family.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd

from core import store
from core.method_info import family_of_run
from core.text import signed
from jobs.cli import check_results_folder, did_you_mean, job_parser, no_runs, user_facing, work_begins


def _trainable(provenance: object) -> int | None:
    data = json.loads(provenance) if isinstance(provenance, str) else provenance
    return (data or {}).get("trainable_params") if isinstance(data, dict) else None


def seed_noise(runs: pd.DataFrame, column: str) -> float:
    """Mean over datasets of the mean |difference| of ``column`` between two seeds (NaN if no pairs)."""
    per_dataset = []
    for _, group in runs.groupby("dataset"):
        values = group.groupby("seed")[column].mean().tolist()
        pairs = [abs(a - b) for a, b in itertools.combinations(values, 2)]
        if pairs:
            per_dataset.append(sum(pairs) / len(pairs))
    return float(sum(per_dataset) / len(per_dataset)) if per_dataset else float("nan")


def cross_check(runs: pd.DataFrame, ours: str, theirs: str) -> dict:
    """Per-dataset |Δ| (same seeds), means, seed noise of ``ours`` and the trainable counts."""
    ok = runs[runs["status"] == "ok"]
    a, b = ok[ok["method"] == ours], ok[ok["method"] == theirs]
    if a.empty or b.empty:
        raise ValueError(f"the store needs successful runs of both {ours!r} and {theirs!r}")
    keys = ["model_key", "dataset", "seed"]
    paired = a[keys + ["id_gain", "ood_change"]].merge(b[keys + ["id_gain", "ood_change"]], on=keys,
                                                      suffixes=("_ours", "_theirs"))
    if paired.empty:
        raise ValueError(f"{ours!r} and {theirs!r} share no (model, dataset, seed)")
    out = {"datasets": int(paired["dataset"].nunique()), "pairs": int(len(paired))}
    for column in ("id_gain", "ood_change"):
        delta = (paired[f"{column}_theirs"] - paired[f"{column}_ours"]).abs()
        out[f"{column}_delta"] = float(delta.groupby(paired["dataset"]).mean().mean())
        out[f"{column}_noise"] = seed_noise(a[a["dataset"].isin(paired["dataset"])], column)
    out["trainable"] = {m: sorted({t for t in map(_trainable, g["provenance"]) if t is not None})
                        for m, g in ((ours, a), (theirs, b))}
    return out


def shared_cells_table(runs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per method: family, trainable count, mean ID gain and OOD change over the cells all methods share.

    Returns (table sorted by ID gain, number of shared cells)."""
    ok = runs[runs["status"] == "ok"]
    keys = ["model_key", "dataset", "seed"]
    methods = ok["method"].nunique()
    counts = ok.groupby(keys)["method"].nunique()
    shared = counts[counts == methods].index
    rows = ok.set_index(keys).loc[shared].reset_index() if len(shared) else ok.iloc[:0]
    rows = rows.assign(trainable=[_trainable(p) for p in rows["provenance"]])
    table = rows.groupby("method").agg(id_gain=("id_gain", "mean"), ood_change=("ood_change", "mean"),
                                       provenance=("provenance", "first"), trainable=("trainable", "min"),
                                       trainable_max=("trainable", "max")).reset_index()
    table["family"] = [family_of_run(m, p) for m, p in zip(table["method"], table["provenance"], strict=True)]
    for column in ("trainable", "trainable_max"):  # a linear probe's count differs by task (its classes)
        table[column] = [None if pd.isna(v) else int(v) for v in table[column]]
    return table.drop(columns="provenance").sort_values("id_gain", ascending=False), len(shared)


def trainable_text(low: int | None, high: int | None) -> str:
    """A trainable count, or its range over the cells when it differs between them ("" if unknown)."""
    if low is None or high is None:
        return ""
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


DEFAULT_RESULTS = store.SHIPPED_DIR / "default"  # the repository's, from any working folder


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.peft_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, action="append", metavar="DIR",
                   help="a results folder (repeatable, as in the other jobs; default jobs/results/default)")
    p.add_argument("--ours", default="lora", help="the reference method")
    p.add_argument("--theirs", default="peft_lora", help="the method compared with it")
    p.add_argument("--table", action="store_true", help="also compare every method on the cells all share")
    args = p.parse_args(argv)
    if args.ours == args.theirs:
        raise ValueError(f"--ours and --theirs must name two different methods, got {args.ours!r} twice")
    roots = [check_results_folder(r) for r in args.results or [DEFAULT_RESULTS]]  # each named; was the last alone
    runs = store.load_runs(roots)
    have = sorted(set(runs.loc[runs["status"] == "ok", "method"]))
    missing = [(flag, method) for flag, method in (("--ours", args.ours), ("--theirs", args.theirs))
               if method not in have]
    if missing:  # which one, what the folder has and the closest name, as the other jobs say an unknown name
        named = " or ".join(f"{flag} {method!r}{did_you_mean(method, have)}" for flag, method in missing)
        raise no_runs(f"successful runs of {named}", roots,
                      f"its methods with successful runs: {', '.join(have) or 'none'}; name the grid that ran both "
                      "with --results, or the methods with --ours and --theirs")
    work_begins()
    result = cross_check(runs, args.ours, args.theirs)
    print(f"{args.theirs} vs {args.ours}: {result['pairs']} paired runs on {result['datasets']} datasets")
    print(f"trainable parameters in the records: {result['trainable']}")
    for column in ("id_gain", "ood_change"):
        delta, noise = result[f"{column}_delta"], result[f"{column}_noise"]
        verdict = "within" if delta <= 2 * noise else "NOT within"
        print(f"{column}: mean |Δ| {delta:.2f} points; seed noise of {args.ours} {noise:.2f} -> {verdict} 2× noise")
    if args.table:
        table, cells = shared_cells_table(runs)
        print(f"\n{cells} cell(s) (model, dataset, seed) where every method ran:\n")
        print("| method | family | trainable (this model) | ID gain | OOD change |\n|---|---|---|---|---|")
        for row in table.itertuples():
            trainable = trainable_text(row.trainable, row.trainable_max)
            print(f"| {row.method} | {row.family} | {trainable} | {signed(row.id_gain)} | {signed(row.ood_change)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
