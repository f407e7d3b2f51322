"""What a grid found, as Markdown: gain and forgetting per method, and how both relate to IIMM.

    python -m jobs.grid_report [--results DIR]... [--out FILE]
    python -m jobs.grid_report --results jobs/results/default --out jobs/results/default-report.md   # as shipped

Numbers are computed from the stored records (mean over seeds per dataset first); the
Kendall-tau interval is the two-level bootstrap of core.predictor_eval (datasets, then seeds).
Without --results it reads the app's store as the app ranks it: submitted, unverified runs left out
(as in jobs.predictors and jobs.export).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd

from core import cards, charts, data_versions, ranking, store
from core.predictor_eval import evaluate_predictors
from core.text import formatted
from jobs.cli import check_file_out, check_results_folder, job_parser, no_runs, user_facing, work_begins

log = logging.getLogger("jobs.grid_report")


def _fmt(value: float, spec: str = "+.1f") -> str:
    """``value`` in ``spec`` ('+.1f', '.2f'), a value that rounds to zero as '+0.0' / '0.00', never '-0.0' (as the
    pages and the forecast job write it: :func:`core.text.formatted`); '–' for none."""
    return "–" if pd.isna(value) else formatted(value, spec)


def _method_table(ok: pd.DataFrame) -> list[str]:
    """Gain and forgetting per method of one model's ok runs (seeds averaged per dataset first)."""
    lines = ["| method | datasets | ID gain, mean ± sd (points) | OOD change, mean ± sd (points) | Pareto |",
             "|---|---|---|---|---|"]
    per_dataset = ok.groupby(["method", "dataset"], as_index=False)[["id_gain", "ood_change"]].mean()
    per_dataset["status"] = "ok"
    summary = charts.method_summary(ranking.without_baselines(per_dataset))
    for r in summary.sort_values("id_gain_mean", ascending=False).itertuples(index=False):
        lines.append(f"| {r.method} | {r.n_datasets} | {_fmt(r.id_gain_mean)} ± {_fmt(r.id_gain_std, '.1f')} | "
                     f"{_fmt(r.ood_change_mean)} ± {_fmt(r.ood_change_std, '.1f')} | {'yes' if r.pareto else ''} |")
    return lines


def _iimm_table(table: pd.DataFrame, min_datasets: int) -> list[str]:
    """IIMM's relation to each outcome, per method (rows of one model's evaluate_predictors table)."""
    iimm = table[(table["predictor"] == "iimm") & (table["status"] == "ok")]
    if iimm.empty:
        return [f"IIMM's relation to the outcomes is not scored: no method has {min_datasets} datasets "
                "with IIMM and an outcome."]
    lines = ["| method | outcome | Pearson r | Kendall τ [95 % interval] | R² | LODO MAE (points) |",
             "|---|---|---|---|---|---|"]
    for r in iimm.sort_values(["outcome", "method"]).itertuples(index=False):
        interval = f" [{_fmt(r.tau_lo, '+.2f')}, {_fmt(r.tau_hi, '+.2f')}]" if pd.notna(r.tau_lo) else ""
        lines.append(f"| {r.method} | {r.outcome} | {_fmt(r.pearson_r, '+.2f')} | {_fmt(r.kendall_tau, '+.2f')}"
                     f"{interval} | {_fmt(r.r2, '.2f')} | {_fmt(r.lodo_mae, '.1f')} |")
    return lines


def report(runs: pd.DataFrame, *, min_datasets: int = 5) -> str:
    """Markdown: per model (model, pretrained tag), one table of outcomes per method (the zero-shot
    baseline left out: its outcomes are 0 by definition) and one of IIMM's relation to them.
    Raises ValueError when no run succeeded."""
    ok = runs[runs["status"] == "ok"]
    if ok.empty:
        raise ValueError("no successful runs in the store")
    models = ok.groupby(["model", "pretrained"], sort=True)
    seeds = ok.groupby(["model", "pretrained", "method", "dataset"])["seed"].nunique().max()
    untrained = cards.untrained_models(runs)  # the registry's, and those the records themselves flag
    lines = [f"Model(s): {', '.join(cards.model_names(ok, untrained)[0])}; {ok['dataset'].nunique()} datasets, "
             f"{len(ok)} successful runs ({int((runs['status'] != 'ok').sum())} failed), up to {seeds} seed(s) "
             "per cell."]
    lines += [line for note in cards.model_notes(ok, untrained) for line in ("", note)]
    # as the ranking warns above its table: means over runs of several recipes, or of one dataset on different data
    lines += [line for text in data_versions.averaged_caveats(runs)[0] for line in ("", text)]
    table = evaluate_predictors(runs, min_datasets=min_datasets, outcomes=("id_gain", "ood_change"))
    for (model, pretrained), mine in models:
        if len(models) > 1:  # never pool models: each gets its own tables
            lines += ["", f"### {cards.model_names(mine, untrained)[0][0]}"]
        lines += ["", *_method_table(mine), ""]
        lines += _iimm_table(table[(table["model"] == model) & (table["pretrained"] == pretrained)], min_datasets)
    lines += ["", "τ intervals: two-level bootstrap (datasets, then seeds), 1,000 replicates, every replicate "
              "counted; a replicate whose drawn values are all equal (no order) counts as τ = 0."]
    return "\n".join(lines) + "\n"


@user_facing
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    p = job_parser("python -m jobs.grid_report", description=__doc__.split("\n")[0])
    p.add_argument("--results", type=Path, action="append",
                   help="a results folder (repeatable); default: the app's store, without submitted, unverified runs")
    p.add_argument("--out", type=Path, help="also write the Markdown here")
    args = p.parse_args(argv)
    for root in args.results or []:
        check_results_folder(root)
    if args.out is not None:
        check_file_out(args.out, "--out")
    runs = store.load_runs(args.results)
    if not args.results:  # the app's store: as the ranking shows it, without unverified submissions
        runs = store.verified_runs(runs)
    if not (runs["status"] == "ok").any():  # said here: report() cannot name the folder
        raise no_runs("successful runs", args.results)
    work_begins()
    text = report(runs)
    print(text)
    if args.out:
        store.write_file_atomic(args.out, text)  # its missing folders made, as every job's output
        print(f"wrote {args.out}", file=sys.stderr)  # stdout is the report alone
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
