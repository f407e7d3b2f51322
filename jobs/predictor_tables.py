"""The Markdown and text tables of ``python -m jobs.predictors``: the predictor summary, the forecast
procedure's selection and the selection rules compared (a library module of that job)."""
from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import pandas as pd

from core import cards
from core import forecast_select as fsel
from core import predictor_eval as pe
from core.text import formatted

HEADLINE = "iimm"


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _rank_text(ranking: pd.DataFrame, column: str) -> str:
    hit = ranking[ranking["predictor"] == HEADLINE]
    if hit.empty or pd.isna(hit[column].iloc[0]):
        return "not scored"
    return f"{int(hit[column].iloc[0])} of {int(ranking[column].notna().sum())}"


def _winner(ranking: pd.DataFrame, column: str) -> pd.Series | None:
    best = ranking[ranking[column] == 1]
    return None if best.empty else best.sort_values("predictor").iloc[0]


def _interval_note(table: pd.DataFrame) -> str:
    ok = table[table["status"] == "ok"]
    with_ci = ok["tau_interval"].str.contains("bootstrap", na=False)
    if with_ci.all() and len(ok):
        return f"Kendall tau intervals: {ok['tau_interval'].iloc[0]}, per cell in the CSV."
    if with_ci.any():
        return (f"Kendall tau intervals ({ok.loc[with_ci, 'tau_interval'].iloc[0]}) only for the "
                f"{int(with_ci.sum())} of {len(ok)} scored rows with 2+ seeds; the others are point values.")
    return "One seed per dataset: point values only, no interval for tau."


def summary_lines(table: pd.DataFrame, outcomes: tuple[str, ...]) -> list[str]:
    """The compact stdout summary: per outcome the winners and IIMM's rank."""
    lines = []
    for outcome in outcomes:
        ranking = pe.rank_predictors(table, outcome)
        label, unit = pe.OUTCOME_LABELS[outcome], pe.OUTCOME_UNITS[outcome]
        if ranking.empty:
            lines.append(f"{label}: no cell scored")
            continue
        total = int(ranking["cells_total"].iloc[0])
        tau_best, mae_best = _winner(ranking, "rank_tau"), _winner(ranking, "rank_mae")
        parts = [f"{label} ({total} cells):"]
        if tau_best is not None:
            parts.append(f"best |tau| {tau_best['predictor']} {_fmt(tau_best['mean_abs_tau'])}"
                         f" (over {int(tau_best['n_cells'])} cells);")
        if mae_best is not None:
            parts.append(f"lowest LODO MAE {mae_best['predictor']} {_fmt(mae_best['mean_lodo_mae'], 4)} {unit};")
        iimm = ranking[ranking["predictor"] == HEADLINE]
        if iimm.empty:
            parts.append("IIMM not scored")
        else:
            parts.append(f"IIMM |tau| {_fmt(iimm['mean_abs_tau'].iloc[0])} rank {_rank_text(ranking, 'rank_tau')}, "
                         f"MAE {_fmt(iimm['mean_lodo_mae'].iloc[0], 4)} rank {_rank_text(ranking, 'rank_mae')}")
        lines.append(" ".join(parts))
    fewer = _fewer_datasets_note(table)
    if fewer:
        lines.append(fewer)
    lines.append(_interval_note(table))
    return lines


def _fewer_datasets_note(table: pd.DataFrame) -> str | None:
    """Which predictors were scored on fewer datasets than others of the same cell and outcome (a baseline added
    after some records were made: those records lack it), so their means and ranks rest on other data; None where
    every predictor of a cell has its datasets."""
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return None
    most = ok.groupby(["model", "pretrained", "method", "outcome"])["n_datasets"].transform("max")
    short = ok[ok["n_datasets"] < most].assign(most=most[ok["n_datasets"] < most])
    if short.empty:
        return None
    parts = [f"{name} in {len(rows)} cell outcome(s) (as few as {int(rows['n_datasets'].min())} where others have "
             f"{int(rows['most'].max())})" for name, rows in short.groupby("predictor", sort=True)]
    return ("Scored on fewer datasets than other predictors of the same cell, so their means and ranks rest on "
            "other data: " + "; ".join(parts) + ".")


def summary_markdown(table: pd.DataFrame, outcomes: tuple[str, ...], *, n_runs: int, min_datasets: int,
                     untrained: AbstractSet[tuple[str, str]] = frozenset()) -> str:
    """A short Markdown block a README can quote: one table, predictors by mean |tau| on the
    first outcome, and per outcome the winners and IIMM's rank. ``untrained``: the (model, pretrained)
    pairs with random weights (:func:`core.cards.untrained_models`), named as such."""
    ok = table[table["status"] == "ok"]
    cells = ok[["model", "pretrained", "method"]].drop_duplicates()
    rankings = {o: pe.rank_predictors(table, o).set_index("predictor") for o in outcomes}
    head = ["predictor", "family"]
    for o in outcomes:
        unit = "pts" if pe.OUTCOME_UNITS[o] == "points" else "fraction"
        head += [f"{pe.OUTCOME_LABELS[o]} mean abs(tau)", f"{pe.OUTCOME_LABELS[o]} LODO MAE ({unit})"]
    order = list(rankings[outcomes[0]].index) if len(rankings[outcomes[0]]) else []
    for o in outcomes[1:]:
        order += [p for p in rankings[o].index if p not in order]
    out = [f"Predictors of fine-tuning outcomes: {n_runs} ok runs, {len(cells)} (model, method) cells "
           f"with at least {min_datasets} datasets ({', '.join(cards.model_names(cells, untrained)[0])}; methods "
           f"{', '.join(sorted(cells['method'].unique()))}); {int(ok['n_datasets'].min())}-"
           f"{int(ok['n_datasets'].max())} datasets per cell, up to {int(ok['max_seeds'].max())} seed(s) "
           "per dataset. One point per dataset (mean over seeds); "
           "mean over cells; rank in brackets (1 = best).", "",
           "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out[1:1] = [line for note in cards.model_notes(cells, untrained) for line in ("", note)]
    for p in order:
        fam = next((rankings[o].loc[p, "family"] for o in outcomes if p in rankings[o].index), "")
        cellv = []
        for o in outcomes:
            r = rankings[o]
            if p not in r.index:
                cellv += ["n/a", "n/a"]
                continue
            cellv += [f"{_fmt(r.loc[p, 'mean_abs_tau'])} ({r.loc[p, 'rank_tau']})",
                      f"{_fmt(r.loc[p, 'mean_lodo_mae'], 4)} ({r.loc[p, 'rank_mae']})"]
        name = f"**{p}**" if p == HEADLINE else p
        out.append("| " + " | ".join([name, fam, *cellv]) + " |")
    out.append("")
    out += [f"- {line}" for line in summary_lines(table, outcomes)]
    win = pe.winners(table, outcomes, HEADLINE)
    if not win.empty:
        out += ["", "Which predictor wins, by how much over IIMM, and in how many cells its 95 % tau interval "
                "excludes 0:", "",
                "| outcome | best by mean abs(tau) | vs IIMM | intervals excluding 0 (winner / IIMM) "
                "| lowest LODO MAE | vs IIMM |", "|---|---|---|---|---|---|"]
        for r in win.itertuples(index=False):
            out.append(f"| {pe.OUTCOME_LABELS[r.outcome]} | {r.best_tau} {r.best_tau_mean_abs:.3f} | "
                       f"{_num(r.tau_margin, '+.3f')} | {r.best_tau_cells_ci_excludes_0} / "
                       f"{r.iimm_cells_ci_excludes_0} of {r.cells} | {r.best_mae} {r.best_mae_value:.4g} | "
                       f"{_num(-r.mae_margin, '+.4g')} {r.mae_unit} |")  # margins: '—' where IIMM is not scored
    return "\n".join(out) + "\n"


RULE_TEXT = {"one-se": "IIMM alone is kept unless a set beats it by one standard error",
             "bonferroni": "IIMM alone is kept unless a set beats it in a one-sided paired t test at 0.05 / "
                           "(number of competing sets)",
             "gated": "IIMM alone is kept unless a set beats it by one standard error and the selection's own "
                      "nested LODO error on the reference datasets is below IIMM's"}


def _summary_rows(selection: pd.DataFrame) -> list[str]:
    out = ["| outcome | cells | LODO coverage | IIMM-only coverage | mean nested LODO MAE | mean IIMM-only LODO MAE "
           "| cells no worse than IIMM-only |", "|---|---|---|---|---|---|---|"]
    for r in fsel.coverage_summary(selection).itertuples(index=False):
        out.append(f"| {r.outcome} | {r.cells} | {_num(r.coverage, '.1%')} | {_num(r.iimm_coverage, '.1%')} | "
                   f"{_num(r.nested_lodo_mae, '.3g')} | {_num(r.iimm_lodo_mae, '.3g')} | "
                   f"{r.cells_no_worse_than_iimm} of {r.iimm_cells} |")
    return out + ["", "Errors are compared on the cells where the IIMM-only line exists; the all-outcomes row "
                  "pools coverage and counts only (its outcomes' errors are in different units)."]


def _gain(r: Any) -> str:
    """``+0.12 [-0.3, +0.54]``: the procedure's gain over IIMM-only with its paired interval (tables written
    before the interval existed have only the gain)."""
    gain, lo, hi = fsel.ties_as_zero([getattr(r, c, math.nan) for c in fsel.GAIN_COLUMNS])
    text = _num(gain, "+.3g")
    return text if not (math.isfinite(lo) and math.isfinite(hi)) else f"{text} [{lo:+.3g}, {hi:+.3g}]"


def _gain_lines(ok: pd.DataFrame) -> list[str]:
    """Per outcome, in how many cells the gain's interval lies wholly above 0 (the procedure better than the
    datasets' spread), wholly below (worse), or holds 0; an end within the rounding tolerance
    (:data:`core.forecast_select.NO_WORSE_TOLERANCE`) of 0 counts as 0."""
    if not {"gain_vs_iimm_lo", "gain_vs_iimm_hi"}.issubset(ok.columns):
        return []
    out = ["", "Gain over IIMM-only (its LODO MAE minus the procedure's nested LODO MAE; > 0: the procedure is "
           "better), with a paired t interval over the datasets of the per-dataset difference in absolute error "
           f"(descriptive; the folds share datasets; an end within {fsel.NO_WORSE_TOLERANCE:g} of 0 counts as 0):", ""]
    for outcome, g in ok.groupby("outcome", sort=False):
        lo, hi = fsel.ties_as_zero(g["gain_vs_iimm_lo"]), fsel.ties_as_zero(g["gain_vs_iimm_hi"])
        known = np.isfinite(lo) & np.isfinite(hi)
        above, below = lo[known] > 0, hi[known] < 0
        out.append(f"- {outcome}: of {int(known.sum())} cells with an interval, it lies above 0 in "
                   f"{int(above.sum())}, below 0 in {int(below.sum())}, and holds 0 in {int((~above & ~below).sum())}")
    return out


def jackknife_plus_summary(selection: pd.DataFrame) -> pd.DataFrame:
    """Per outcome, over the ok cells whose jackknife+ coverage was measured (finite held-out intervals):
    its pooled LODO coverage (held-out datasets covered / held-out datasets) and mean width, beside the t
    interval's on the same cells; ``not_finite``: ok cells where it was not (too few datasets)."""
    cols = ["outcome", "cells", "not_finite", "jackknife_plus_coverage", "coverage", "jackknife_plus_mean_width",
            "mean_width"]
    ok = selection[selection["status"] == "ok"]
    if ok.empty or "jackknife_plus_coverage" not in ok.columns:
        return pd.DataFrame(columns=cols)
    rows = []
    for outcome, g in ok.groupby("outcome", sort=False):
        measured = g[np.isfinite(g["jackknife_plus_coverage"].to_numpy(float))]
        mean = (lambda c: float(measured[c].mean())) if len(measured) else (lambda c: math.nan)
        rows.append({"outcome": outcome, "cells": len(measured), "not_finite": len(g) - len(measured),
                     "jackknife_plus_coverage": fsel.pooled_coverage(measured, "jackknife_plus_coverage"),
                     "coverage": fsel.pooled_coverage(measured, "coverage"),
                     "jackknife_plus_mean_width": mean("jackknife_plus_mean_width"), "mean_width": mean("mean_width")})
    return pd.DataFrame(rows, columns=cols)


def _jackknife_lines(selection: pd.DataFrame) -> list[str]:
    summary = jackknife_plus_summary(selection)
    if summary.empty:
        return []
    if not summary["cells"].any():
        cells = int(summary["not_finite"].sum())
        return ["", f"Jackknife+ intervals (distribution-free) are not finite in any of the {cells} cells: at 95 % "
                "they need at least 19 reference datasets, so their coverage needs 20 per cell."]
    out = ["", "Jackknife+ intervals beside the t intervals (distribution-free: coverage >= 90 % at 95 % for "
           "exchangeable datasets; infinite on fewer than 19 reference datasets, so a cell with fewer than 20 has "
           "no measured coverage). Pooled LODO coverage and mean width over the cells where it was measured, "
           "the t interval's on the same cells:", "",
           "| outcome | cells measured | not finite | jackknife+ coverage | t coverage | jackknife+ mean width "
           "| t mean width |", "|---|---|---|---|---|---|---|"]
    for r in summary.itertuples(index=False):
        out.append(f"| {r.outcome} | {r.cells} | {r.not_finite} | {_num(r.jackknife_plus_coverage, '.1%')} | "
                   f"{_num(r.coverage, '.1%')} | {_num(r.jackknife_plus_mean_width, '.3g')} | "
                   f"{_num(r.mean_width, '.3g')} |")
    return out


def _num(value: float, spec: str) -> str:
    """``value`` in ``spec``; '—' for a non-finite one; one that is written as zero ('-0', '-0.000': a negated
    zero margin, or a tiny negative) with '+' or no sign, as the pages write a zero (:func:`core.text.formatted`)."""
    return formatted(value, spec) if math.isfinite(value) else "—"


def rules_markdown(selections: dict[str, pd.DataFrame], untrained: AbstractSet[tuple[str, str]] = frozenset()) -> str:
    """The forecast procedure's summary under each selection rule, scored on the same runs; its models named
    (``untrained``: the random-weight ones, :func:`core.cards.untrained_models`)."""
    scored = pd.concat(selections.values(), ignore_index=True)
    scored = scored[scored["status"] == "ok"]
    names = ", ".join(cards.model_names(scored, untrained)[0])
    out = ["# Forecast selection rules compared", "",
           "Written by `python -m jobs.predictors --compare-rules`: the same runs, candidate sets and intervals; "
           "only the rule that decides when a set may replace IIMM alone differs. Every rule's error is nested "
           f"(the rule is redone without each held-out dataset). Model(s): {names}."]
    out += [line for note in cards.model_notes(scored, untrained) for line in ("", note)]
    for rule, selection in selections.items():
        out += (["", f"## {rule}", "", f"{RULE_TEXT[rule]}.", ""] + _summary_rows(selection)
                + _gain_lines(selection[selection["status"] == "ok"]))
    return "\n".join(out) + "\n"


def selection_markdown(selection: pd.DataFrame) -> str:
    """The forecast procedure per (method, outcome), and model where there are several, and its measured coverage,
    as Markdown."""
    ok = selection[selection["status"] == "ok"]
    if ok.empty:
        return ""
    level = round(float(ok["level"].iloc[0]) * 100)
    rule = str(ok["rule"].iloc[0]) if "rule" in ok.columns else fsel.DEFAULT_RULE
    # a model column where the table holds several: their rows of one method and outcome read alike without it
    several = int({"model", "pretrained"} <= set(ok.columns) and len(ok[["model", "pretrained"]].drop_duplicates()) > 1)
    out = ["", f"Forecast procedure (core.forecast_select, rule {rule}): predictor set chosen by "
           f"leave-one-dataset-out error (the choice scored by nested LODO) among {int(ok['n_sets'].max())} candidate "
           f"sets (the mean, each predictor, every pair); {RULE_TEXT[rule]}. {level} % intervals from the "
           "procedure's own LODO residuals; coverage measured on held-out datasets.", "",
           f"| {'model | ' * several}method | outcome | chosen set (all datasets) | folds agreeing | nested LODO MAE "
           f"| IIMM-only LODO MAE | gain over IIMM-only [{level} % interval] | {level} % half-width | LODO coverage "
           "| IIMM-only coverage | jackknife+ coverage |", "|---" * (11 + several) + "|"]
    if several:  # each model's label as every table writes it, marked where its weights are random
        ok = ok.assign(model_label=cards.model_label_column(ok, cards.untrained_models(ok)))
    for r in ok.sort_values(["outcome", "method", *(["model_label"] if several else [])]).itertuples(index=False):
        model = f"{r.model_label} | " if several else ""
        out.append(f"| {model}{r.method} | {r.outcome} | {r.chosen} | {r.fold_agreement:.0%} | "
                   f"{r.nested_lodo_mae:.3g} | "
                   f"{_num(r.iimm_lodo_mae, '.3g')} | {_gain(r)} | {r.interval_half_width:.3g} | {r.coverage:.0%} | "
                   f"{_num(r.iimm_coverage, '.0%')} | {_num(getattr(r, 'jackknife_plus_coverage', math.nan), '.0%')} |")
    out += [""] + _summary_rows(selection) + _gain_lines(ok) + _jackknife_lines(ok)
    return "\n".join(out) + "\n"


def zero_shot_markdown(selection: pd.DataFrame) -> str:
    """The procedure with the zero-shot measures alone competing (:func:`selection_markdown`'s summary only):
    the coverage the forecast page shows beside a sample too small for the baselines."""
    ok = selection[selection["status"] == "ok"]
    if ok.empty:
        return ""
    out = ["", f"The same procedure with the zero-shot measures alone competing ({int(ok['n_predictors'].max())} "
           f"predictors, up to {int(ok['n_sets'].max())} candidate sets): what the forecast page runs for a sample "
           "smaller than the reference datasets' train splits, whose baselines it leaves out of the choice "
           "(`forecast-selection-zero-shot.csv`).", ""]
    return "\n".join(out + _summary_rows(selection) + _gain_lines(ok) + _jackknife_lines(ok)) + "\n"


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.predictor_tables", "python -m jobs.predictors (it writes these tables)")
