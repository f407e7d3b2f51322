"""The shipped predictor tables as the Compare page shows them: one row per predictor and outcome, and the
job's winners and coverage summaries with readable headers and numbers. Nothing here imports Streamlit."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from core import cards
from core.ranking import OUTCOME_TITLES

if TYPE_CHECKING:  # a Styler needs jinja2, imported only when one is made
    from pandas.io.formats.style import Styler


def read_each(paths: Iterable[Any], read: Callable[[Any], pd.DataFrame]) -> dict[Any, pd.DataFrame | Exception]:
    """``read(path)`` for each path, or the OSError or ValueError (pandas' ParserError, EmptyDataError) reading it
    raised, for :func:`table_for_model`: one unreadable table hid every model's table."""
    out: dict[Any, pd.DataFrame | Exception] = {}
    for path in paths:
        try:
            out[path] = read(path)
        except (OSError, ValueError) as exc:
            out[path] = exc
    return out


def table_for_model(tables: Mapping[Any, pd.DataFrame | Exception], model: str,
                    pretrained: str) -> tuple[Any, pd.DataFrame]:
    """The key and the (model, pretrained) rows of the table in ``tables`` (key -> a ``jobs.predictors`` table,
    e.g. by path, or what reading it raised: :func:`read_each`) that holds most rows of that model; on a tie the
    last in the mapping's order. Raises ValueError when no table has a row of it, naming the tables without model
    columns and those that could not be read."""
    best, rows, unusable = None, None, []
    for key, table in tables.items():
        if isinstance(table, Exception):
            unusable.append(f"{key}: cannot be read ({table})")
            continue
        if not {"model", "pretrained"} <= set(table.columns):
            unusable.append(f"{key}: no model column")
            continue
        mine = table[(table["model"] == model) & (table["pretrained"] == pretrained)]
        if len(mine) and (rows is None or len(mine) >= len(rows)):
            best, rows = key, mine.reset_index(drop=True)
    if rows is None:
        lacking = f" ({'; '.join(unusable)})" if unusable else ""
        raise ValueError(f"no shipped predictor table has runs of {model} {pretrained}{lacking}")
    return best, rows


def predictor_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The predictor comparison (``jobs.predictors`` CSV: one row per model, method, predictor and
    outcome) condensed to one row per (predictor, family, outcome): mean |Kendall tau| and mean
    leave-one-dataset-out error over the methods, and the number of methods; ordered by outcome, best |tau|
    first within each (rows of a ``status`` other than 'ok' left out where the table has that column).
    Raises ValueError when a needed column is missing."""
    needed = ["predictor", "outcome", "kendall_tau", "lodo_mae"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(f"the predictor table has no column(s) {missing}")
    ok = table[table["status"] == "ok"] if "status" in table.columns else table
    ok = ok.assign(abs_tau=ok["kendall_tau"].abs(),
                   family=ok["family"] if "family" in ok.columns else "")
    out = ok.groupby(["outcome", "predictor", "family"], sort=True).agg(
        mean_abs_tau=("abs_tau", "mean"), mean_lodo_mae=("lodo_mae", "mean"),
        n_methods=("abs_tau", "size")).reset_index()
    return out.sort_values(["outcome", "mean_abs_tau"], ascending=[True, False]).reset_index(drop=True)


#: Headers of the shipped predictor tables as shown: the job's column names (``best_tau_mean_abs``) meant
#: nothing to a reader.
WINNER_HEADERS = {"outcome": "outcome", "cells": "cells (model, method)", "best_tau": "best by mean |τ|",
                  "best_tau_mean_abs": "its mean |τ|", "iimm_mean_abs_tau": "IIMM's mean |τ|",
                  "tau_margin": "lead over IIMM", "best_tau_cells_ci_excludes_0": "cells its τ interval excludes 0",
                  "iimm_cells_ci_excludes_0": "cells IIMM's τ interval excludes 0",
                  "best_mae": "best by LODO error", "best_mae_value": "its LODO error",
                  "iimm_lodo_mae": "IIMM's LODO error", "mae_margin": "IIMM's extra error"}  # unit: the outcome's
COVERAGE_HEADERS = {"outcome": "outcome", "cells": "cells (model, method)", "iimm_cells": "cells with an IIMM line",
                    "level": "interval", "coverage": "coverage", "iimm_coverage": "IIMM line's coverage",
                    "mean_width": "mean width", "iimm_mean_width": "IIMM line's mean width",
                    "nested_lodo_mae": "nested LODO error", "iimm_lodo_mae": "IIMM line's LODO error",
                    "cells_no_worse_than_iimm": "cells no worse than IIMM"}


def _shown(table: pd.DataFrame, headers: dict[str, str], shares: tuple[str, ...] = ()) -> Styler:
    """``table`` for reading: outcomes and predictors by name, only the columns of ``headers``, renamed by it, as a
    Styler that writes each number with two decimals (``shares`` as percentages). The cells keep their numbers, so a
    click on a header sorts by value (as text, '10.08' came before '7.65'); a column holding a missing number is
    text, with a dash for it (Streamlit writes a missing number 'None', whatever the Styler says)."""
    def number(v: Any, share: bool) -> str:
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "–"
        return f"{100 * v:.1f} %" if share else f"{v:.2f}"

    out, formats = table.copy(), {}
    for column in out.columns:
        if column == "outcome":
            out[column] = [OUTCOME_TITLES.get(o, o) for o in out[column]]
        elif column in ("best_tau", "best_mae"):
            out[column] = out[column].map(cards.predictor_title)
        elif pd.api.types.is_float_dtype(out[column]):
            share = column in shares
            if np.isfinite(out[column].to_numpy()).all():
                formats[headers.get(column, column)] = lambda v, share=share: number(v, share)
            else:
                out[column] = [number(v, share) for v in out[column]]
    out = out[[c for c in out.columns if c in headers]].rename(columns=headers)
    return out.style.format({c: f for c, f in formats.items() if c in out.columns})


def winners_shown(winners: pd.DataFrame) -> Styler:
    """``core.predictor_eval.winners`` as the Compare page shows it (see :func:`_shown`)."""
    return _shown(winners, WINNER_HEADERS)


def coverage_shown(summary: pd.DataFrame) -> Styler:
    """``core.forecast_select.coverage_summary`` as the Compare page shows it: coverage and level in percent;
    the pooled row's widths and errors (outcomes in different units) as dashes (see :func:`_shown`)."""
    return _shown(summary, COVERAGE_HEADERS, shares=("level", "coverage", "iimm_coverage"))
