"""What a grid found, as Markdown: gain and forgetting per method, and how both relate to IIMM.

    python -m jobs.grid_report [--results jobs/results/default] [--out jobs/results/default-report.md]

Numbers are computed from the stored records (mean over seeds per dataset first); the
Kendall-tau interval is the two-level bootstrap of core.predictor_eval (datasets, then seeds).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from core import charts, store
from core.predictor_eval import evaluate_predictors
from jobs.cli import check_results_folder, user_facing

log = logging.getLogger("jobs.grid_report")


def _fmt(value: float, spec: str = "+.1f") -> str:
    return "–" if pd.isna(value) else format(value, spec)


def report(runs: pd.DataFrame) -> str:
    """Markdown: one table of outcomes per method, one of IIMM's relation to them."""
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        raise ValueError("no successful runs in the store")
    models = ", ".join(sorted(f"{m} ({p})" for m, p in ok[["model", "pretrained"]].drop_duplicates().values))
    seeds = ok.groupby(["method", "dataset"])["seed"].nunique().max()
    lines = [f"Model(s): {models}; {ok['dataset'].nunique()} datasets, {len(ok)} successful runs "
             f"({int((runs['status'] != 'ok').sum())} failed), up to {seeds} seed(s) per cell.", "",
             "| method | datasets | ID gain, mean ± sd (points) | OOD change, mean ± sd (points) | Pareto |",
             "|---|---|---|---|---|"]
    per_dataset = ok.groupby(["model", "method", "dataset"], as_index=False)[["id_gain", "ood_change"]].mean()
    per_dataset["status"] = "ok"
    summary = charts.method_summary(per_dataset).sort_values("id_gain_mean", ascending=False)
    for r in summary.itertuples(index=False):
        lines.append(f"| {r.method} | {r.n_datasets} | {_fmt(r.id_gain_mean)} ± {_fmt(r.id_gain_std, '.1f')} | "
                     f"{_fmt(r.ood_change_mean)} ± {_fmt(r.ood_change_std, '.1f')} | {'yes' if r.pareto else ''} |")
    table = evaluate_predictors(runs, outcomes=("id_gain", "ood_change"))
    iimm = table[(table["predictor"] == "iimm") & (table["status"] == "ok")]
    lines += ["", "| method | outcome | Pearson r | Kendall τ [95 % interval] | R² | LODO MAE (points) |",
              "|---|---|---|---|---|---|"]
    for r in iimm.sort_values(["outcome", "method"]).itertuples(index=False):
        interval = f" [{r.tau_lo:+.2f}, {r.tau_hi:+.2f}]" if pd.notna(r.tau_lo) else ""
        lines.append(f"| {r.method} | {r.outcome} | {_fmt(r.pearson_r, '+.2f')} | {_fmt(r.kendall_tau, '+.2f')}"
                     f"{interval} | {_fmt(r.r2, '.2f')} | {_fmt(r.lodo_mae, '.1f')} |")
    lines += ["", "τ intervals: two-level bootstrap (datasets, then seeds), 1,000 replicates, every replicate "
              "counted; a replicate whose drawn values are all equal (no order) counts as τ = 0."]
    return "\n".join(lines) + "\n"


@user_facing
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    p = argparse.ArgumentParser(prog="python -m jobs.grid_report", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, action="append", help="results folder(s); default: the app's store")
    p.add_argument("--out", type=Path, help="also write the Markdown here")
    args = p.parse_args(argv)
    for root in args.results or []:
        check_results_folder(root)
    text = report(store.load_runs(args.results))  # ValueError (no runs): user_facing says why, exit 2
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
