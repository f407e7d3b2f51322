"""The forecast page's layer over the job's tables: the shipped selection tables read (coverage of the
forecast's intervals, measured by ``python -m jobs.predictors``), a new forecast's coverage filled from them,
and its selection rows as the page shows them."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.forecast_select.procedure import DEFAULT_RULE, check_rule
from core.forecast_select.tables import GAIN_COLUMNS, ties_as_zero

log = logging.getLogger(__name__)


def with_measured_coverage(forecasts: pd.DataFrame, selection: pd.DataFrame, *, model: str,
                           pretrained: str, rule: str = DEFAULT_RULE) -> pd.DataFrame:
    """``forecast_new``'s frame with the coverage columns filled from :func:`selection_table` rows
    (e.g. the job's ``forecast-selection*.csv``) of the same model, matched on (method, outcome).
    Measuring coverage takes seconds per method, so the page reads it from the job. ``rule``: the
    rule the forecasts were made under; rows measured under another rule are not used (their
    coverage is another procedure's), and a row whose forecast was not made (status not "ok") gets
    none. The procedure's coverage is shown only where this forecast chose among as many candidate
    sets on as many reference datasets as a measured one (a sample missing a baseline, or one whose
    baselines were left out, runs another procedure: the job measures the one on zero-shot measures only
    too); IIMM's line needs the same datasets only. Of several matching rows the last is used. A copy, with the
    ``rule`` in a last column: the coverage is that rule's, which a saved table or JSON must say as the page does."""
    check_rule(rule)
    out = forecasts.assign(rule=rule)
    if out.empty or selection.empty:
        return out
    mine = selection[(selection["model"] == model) & (selection["pretrained"] == pretrained)]
    if "rule" in mine.columns:
        mine = mine[mine["rule"] == rule]
    measured = {key: rows for key, rows in mine.groupby(["method", "outcome"], sort=False)}
    made = (out["status"] == "ok").to_numpy() if "status" in out.columns else np.ones(len(out), bool)
    cover, cover_iimm, cover_jp = [], [], []
    for (key, row), ok in zip(out.set_index(["method", "outcome"]).iterrows(), made, strict=True):
        rows = measured.get(key) if ok else None  # a forecast not made has no coverage of its own to show
        if rows is None:
            cover.append(np.nan), cover_iimm.append(np.nan), cover_jp.append(np.nan)
            continue
        same_data = rows[_matching(rows, "n_datasets", row.get("n_datasets"))]
        same = same_data[_matching(same_data, "n_sets", row.get("n_sets"))]
        cover.append(same["coverage"].iloc[-1] if len(same) else np.nan)
        cover_jp.append(same["jackknife_plus_coverage"].iloc[-1]  # older tables lack it
                        if len(same) and "jackknife_plus_coverage" in same else np.nan)
        cover_iimm.append(same_data["iimm_coverage"].iloc[-1] if len(same_data) else np.nan)
    out["coverage"], out["iimm_coverage"], out["jackknife_plus_coverage"] = cover, cover_iimm, cover_jp
    return out[[*out.columns.drop("rule"), "rule"]]


def _matching(rows: pd.DataFrame, column: str, value: Any) -> list[bool]:
    """Which ``rows`` have ``value`` in ``column`` (none where the column is missing)."""
    return [_same(value, n) for n in rows[column]] if column in rows else [False] * len(rows)


def _same(a: Any, b: Any) -> bool:
    """Two counts equal (NaN/None on either side: unknown, not equal)."""
    try:
        return bool(np.isfinite(float(a)) and float(a) == float(b))
    except (TypeError, ValueError):
        return False


#: The name columns of a ``forecast-selection.csv``, read as text whatever they look like.
_NAMES = ("model", "pretrained", "method", "outcome", "rule")
#: Columns a ``forecast-selection.csv`` needs for the forecast page's measured coverage.
SELECTION_NEEDS = {"model", "pretrained", "method", "outcome", "coverage", "iimm_coverage"}


def read_selections(root: Path) -> pd.DataFrame:
    """Every ``forecast-selection*.csv`` under ``root`` (coverage of the forecast's intervals, measured by
    jobs.predictors: world v1's in ``jobs/results``, world v2's beside its records; ``-zero-shot``: the
    procedure on zero-shot measures only), one frame; empty when there is none. Rows keep their ``rule``,
    so a page uses only those of its own rule; where two files score the same (model, method, outcome, rule,
    candidate sets), the one later in path order wins. A file that is not a
    CSV, or lacks :data:`SELECTION_NEEDS`, is skipped with a logged warning (a forecast works without it)."""
    frames = []
    for path in sorted(Path(root).rglob("forecast-selection*.csv")):
        try:
            frame = pd.read_csv(path, dtype=dict.fromkeys(_NAMES, str))  # a tag 2024 read as a number matched no model
        except (OSError, ValueError) as exc:
            log.warning("not reading %s: %s", path, exc)
            continue
        if SELECTION_NEEDS.issubset(frame.columns):
            frames.append(frame)
        else:
            log.warning("not reading %s: it lacks %s", path, sorted(SELECTION_NEEDS - set(frame)))
    if not frames:
        return pd.DataFrame()
    keys = [c for c in ("model", "pretrained", "method", "outcome", "rule", "n_sets") if all(c in f for f in frames)]
    return pd.concat(frames, ignore_index=True).drop_duplicates(keys, keep="last", ignore_index=True)


#: Headers of a forecast's selection table as the forecast page shows it (the frame's own names are keys).
SELECTION_SHOWN = {"method": "method", "outcome": "outcome", "status": "status", "predictors": "predicted from",
                   "prediction": "prediction", "lo": "interval low", "hi": "interval high",
                   "nested_lodo_mae": "nested LODO error", "coverage": "measured coverage",
                   "jackknife_plus_lo": "jackknife+ low", "jackknife_plus_hi": "jackknife+ high",
                   "jackknife_plus_coverage": "jackknife+ coverage",
                   "iimm_prediction": "IIMM line", "iimm_lodo_mae": "IIMM line's LODO error",
                   # not "gain": beside an in-domain gain's prediction and its IIMM line, it read as their difference
                   "iimm_coverage": "IIMM line's coverage", "gain_vs_iimm": "LODO error saved vs IIMM line",
                   "gain_vs_iimm_lo": "error saved: interval low", "gain_vs_iimm_hi": "error saved: interval high",
                   "n_datasets": "reference datasets",
                   "n_sets": "candidate sets", "extrapolation": "extrapolates", "rule": "selection rule"}

#: How the page formats those headers (Streamlit number formats): coverage as a percentage, as the Compare page
#: shows it (a bare 0.9333 read as a score), the rest to 2 decimals (points, or a share of headroom).
SELECTION_FORMATS = {**{SELECTION_SHOWN[c]: "percent"
                        for c in ("coverage", "jackknife_plus_coverage", "iimm_coverage")},
                     **{SELECTION_SHOWN[c]: "%.2f" for c in (
                         "prediction", "lo", "hi", "nested_lodo_mae", "jackknife_plus_lo", "jackknife_plus_hi",
                         "iimm_prediction", "iimm_lodo_mae", "gain_vs_iimm", "gain_vs_iimm_lo", "gain_vs_iimm_hi")}}


def selection_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """A forecast's selection rows (:func:`forecast_new`, :func:`with_measured_coverage`) for reading: methods,
    outcomes and predictors by name, the columns of :data:`SELECTION_SHOWN` renamed by it; numbers kept, but a
    gain over the IIMM line or an end of its interval within :data:`NO_WORSE_TOLERANCE` of 0 is shown as 0
    (a rounding-level tie), and an infinite jackknife+ end (fewer than 19 reference datasets) as missing."""
    from core import cards
    from core.ranking import OUTCOME_TITLES

    out = frame.copy()
    if "method" in out:
        out["method"] = out["method"].map(lambda m: cards.method_title(str(m)))
    if "outcome" in out:
        out["outcome"] = out["outcome"].map(lambda o: OUTCOME_TITLES.get(o, o))
    if "predictors" in out:
        out["predictors"] = out["predictors"].map(lambda text: cards.predictor_set_title(text)
                                                  if isinstance(text, str) else text)
    for column in GAIN_COLUMNS:
        if column in out:
            out[column] = ties_as_zero(pd.to_numeric(out[column], errors="coerce"))
    for column in ("jackknife_plus_lo", "jackknife_plus_hi"):  # infinite (too few datasets): left blank
        if column in out:
            out[column] = pd.to_numeric(out[column], errors="coerce").where(lambda v: np.isfinite(v))
    return out[[c for c in SELECTION_SHOWN if c in out.columns]].rename(columns=SELECTION_SHOWN)
