"""Per-cell overhead of a grid: the share of each cell's wall time not spent in the training loop.

    python -m jobs.bench_cell RESULTS_DIR [--goal 0.20]

Overhead = 1 - train_time_s / wall_time_s over the successful records of methods that train (model load,
data generation, zero-shot scoring, evaluation on the task and the OOD panel). Prints per method and
overall, with the ratio to the goal (the world-v2 issue asks for under 20 % of a cell's wall time), and
``from_cache``: the cells validated and evaluated from cached image embeddings (a frozen image tower).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from jobs.cli import check_results_folder, job_parser, no_runs, user_facing, work_begins


class NoTimedCells(ValueError):
    """The records hold no successful training cell with timings (the folder, not one record, is the problem)."""


def overhead_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per method: cells, mean wall and train seconds, mean and worst overhead share, and how many cells were
    validated and evaluated from cached image embeddings (training methods only; frozen image tower). Raises
    :class:`NoTimedCells` when no record has timings, ValueError naming a record whose timings are no numbers."""
    rows = []
    for _, run in runs[runs["status"] == "ok"].iterrows():
        prov = json.loads(run["provenance"]) if isinstance(run["provenance"], str) else run["provenance"]
        train = (prov or {}).get("train") or {}
        if not train.get("train_time_s") or not prov.get("wall_time_s"):
            continue  # evaluation-only cells (zero-shot) have no training loop to compare with
        try:
            wall_s, train_s = float(prov["wall_time_s"]), float(train["train_time_s"])
        except (TypeError, ValueError) as exc:
            raise ValueError(f"record {run['run_id']}: its wall or training time is no number ({exc})") from None
        rows.append({"method": run["method"], "wall_s": wall_s, "train_s": train_s,
                     "from_cache": prov.get("evaluation_input") == "cached image embeddings"})
    if not rows:
        raise NoTimedCells("no successful training cells with timings in these records")
    frame = pd.DataFrame(rows).assign(overhead=lambda d: 1 - d["train_s"] / d["wall_s"])
    per = frame.groupby("method").agg(cells=("wall_s", "size"), wall_s=("wall_s", "mean"), train_s=("train_s", "mean"),
                                      overhead=("overhead", "mean"), worst=("overhead", "max"),
                                      from_cache=("from_cache", "sum"))
    total = pd.DataFrame({"cells": [len(frame)], "wall_s": [frame["wall_s"].mean()], "train_s": [frame["train_s"].mean()],
                          "overhead": [1 - frame["train_s"].sum() / frame["wall_s"].sum()],
                          "worst": [frame["overhead"].max()], "from_cache": [frame["from_cache"].sum()]},
                         index=["ALL (time-weighted)"])
    return pd.concat([per, total])


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_cell", description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, help="a results folder (its records)")
    p.add_argument("--goal", type=float, default=0.20, help="overhead goal, a share of wall time (default 0.20)")
    args = p.parse_args(argv)
    if not 0 < args.goal <= 1:
        raise ValueError(f"--goal must be a share in (0, 1], got {args.goal}")
    from core import store

    runs = store.load_runs([check_results_folder(args.results, option="")])
    try:
        tab = overhead_table(runs)
    except NoTimedCells:  # overhead_table cannot say where; a record's own fault keeps its message
        raise no_runs("successful training cells with timings", [args.results]) from None
    work_begins()
    print(tab.round(3).to_string())
    overall = float(tab.loc["ALL (time-weighted)", "overhead"])
    print(f"overhead {overall:.1%} of cell wall time; goal < {args.goal:.0%}; ratio to goal {overall / args.goal:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
