"""Aggregations behind the leaderboard: the method ranking, the method x dataset matrix, run labels, outcome titles.

Every number here starts from the ok runs of the store frame (``core.store.load_runs``). Seeds are
averaged first, per (model, pretrained, method, dataset): a *dataset point*. A ranking row then
summarises one (model, pretrained, method) over its dataset points: the mean, and a t interval over
datasets (how much the mean would move with other datasets like these, not a seed spread). Nothing
here imports Streamlit or torch.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import stdtrit  # the t quantile; scipy.stats costs ~1 s more to import

from core import cards, json_text
from core.metrics import check_level
from core.text import distinct_labels, plain, signed

log = logging.getLogger(__name__)

MODEL_KEYS = ["model", "pretrained"]
POINT_KEYS = [*MODEL_KEYS, "method", "dataset"]
OUTCOME_COLUMNS = ("id_gain", "ood_change", "norm_gain", "zs_acc", "ft_acc", "iimm")
#: Cost figures read from each run's provenance (first alias found wins).
COST_KEYS = {"trainable_params": ("trainable_params", "params_trainable"),
             "wall_time_s": ("wall_time_s",), "peak_mb": ("peak_rss_mb", "peak_memory_mb", "peak_mb")}
#: What the ranking can be ordered by: key -> (column, words for people, larger is better).
RANK_BY = {"id_gain": ("id_gain", "in-domain gain", True),
           "ood_change": ("ood_change", "least forgetting (out-of-domain change)", True),
           "net": ("net", "gain + out-of-domain change", True)}
RANKING_COLUMNS = ["rank", "model", "pretrained", "method", "method_title", "family", "pareto",
                   "id_gain", "id_gain_lo", "id_gain_hi", "ood_change", "ood_change_lo", "ood_change_hi",
                   "net", "n_datasets", "n_ood_datasets", "n_runs", "datasets", "trainable_params", "wall_time_s",
                   "peak_mb"]


def _cost_row(text: Any) -> list[float]:
    try:
        prov = json.loads(text) if isinstance(text, str) else {}
    except json.JSONDecodeError:
        prov = {}
    prov = prov if isinstance(prov, dict) else {}  # valid JSON, but not an object: no figures
    return [float(next((prov[a] for a in aliases if isinstance(prov.get(a), (int, float))
                        and not isinstance(prov.get(a), bool)), math.nan)) for aliases in COST_KEYS.values()]


def _cost_columns(provenance: pd.Series) -> pd.DataFrame:
    """The :data:`COST_KEYS` figures of each run's provenance JSON text: the first alias whose value is a
    number (a bool is not); NaN where none is, or the text is not a JSON object. Read in DuckDB where it reads
    the text as Python does (:mod:`core.json_text`; parsing each text in Python took 0.15 s for 25,000 synthetic runs' short texts),
    the other texts as before."""
    # object, not the float64 that pandas makes of texts all missing, which pyarrow before 20 refuses as strings
    text = provenance if isinstance(provenance.dtype, pd.StringDtype) else \
        provenance.map(lambda p: p if isinstance(p, str) else None, na_action="ignore").astype(object)
    aliases = [a for names in COST_KEYS.values() for a in names]
    safe, found = json_text.top_level_members(pa.array(text, pa.large_string(), from_pandas=True), aliases, {
        key: f"coalesce({', '.join(json_text.number_sql(f'm[{aliases.index(a) + 1}]') for a in names)})"
        for key, names in COST_KEYS.items()}, numbers=True)
    out = pd.DataFrame({k: found[k].to_numpy(zero_copy_only=False) for k in COST_KEYS}, index=provenance.index,
                       dtype=float)
    slow = np.flatnonzero(~safe & text.notna().to_numpy())  # no text: no figures, as before
    if len(slow):
        out.iloc[slow] = [_cost_row(t) for t in text.iloc[slow]]
    return out


def without_baselines(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` whose ``method`` is not a baseline (zero-shot: outcomes 0 by definition)."""
    codes, methods = pd.factorize(frame["method"], use_na_sentinel=False)  # a card per method, not per row
    baseline = np.array([cards.method_card(str(m)).baseline for m in methods], dtype=bool)
    return frame[~baseline[codes]] if len(methods) else frame


def dataset_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Seed means of the ok runs, one row per (model, pretrained, method, dataset).

    Columns: the keys, every :data:`OUTCOME_COLUMNS` present, the :data:`COST_KEYS` figures and
    ``n_seeds``. Raises ValueError when a key column is missing.
    """
    missing = [c for c in [*POINT_KEYS, "status"] if c not in runs.columns]
    if missing:
        raise ValueError(f"the runs frame has no column(s) {missing}")
    wanted = [*POINT_KEYS, *OUTCOME_COLUMNS, "provenance"]
    # the columns needed, before the rows: taking every wide column of 100,000 runs cost a tenth of a second
    ok = runs.loc[runs["status"] == "ok", [c for c in wanted if c in runs.columns]]
    values = [c for c in OUTCOME_COLUMNS if c in ok.columns]
    if ok.empty:  # typed like a full frame, so callers' arithmetic works on zero rows too
        empty = {k: pd.Series(dtype=object) for k in POINT_KEYS}
        empty.update({c: pd.Series(dtype=float) for c in [*values, *COST_KEYS]})
        return pd.DataFrame({**empty, "n_seeds": pd.Series(dtype=np.int64)})
    frame = ok[POINT_KEYS + values].copy()
    for c in values:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    if "provenance" in ok.columns:
        frame = frame.join(_cost_columns(ok["provenance"]))
    else:
        frame = frame.assign(**{k: math.nan for k in COST_KEYS})
    grouped = frame.groupby(POINT_KEYS, sort=True, dropna=False)
    out = grouped[[*values, *COST_KEYS]].mean()
    out["n_seeds"] = grouped.size()
    return out.reset_index()


def mean_interval(values: Any, level: float = 0.95) -> tuple[float, float, float]:
    """Mean of the finite ``values`` (any shape: all its entries count) and its two-sided t interval at ``level``.

    One value gives (value, nan, nan); none gives three NaNs. Raises ValueError for a level
    outside (0, 1).
    """
    level = check_level(level)  # a string ("0.95") raised TypeError from '<'; a bool is no level
    x = np.asarray(values, dtype=float).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stdtrit(x.size - 1, 0.5 + level / 2) * x.std(ddof=1) / math.sqrt(x.size))
    return mean, mean - half, mean + half


def pareto_mask(gain: Any, change: Any) -> np.ndarray:
    """True where no other entry has both a higher-or-equal gain and a higher-or-equal change
    (one strictly): more in-domain gain and less forgetting. NaN entries are never on the front."""
    xs, ys = np.asarray(gain, dtype=float), np.asarray(change, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"gain and change must be 1-D of one length, got {xs.shape} and {ys.shape}")
    finite = np.isfinite(xs) & np.isfinite(ys)
    out = np.zeros(xs.shape, dtype=bool)
    for i in np.flatnonzero(finite):
        better = finite & (xs >= xs[i]) & (ys >= ys[i]) & ((xs > xs[i]) | (ys > ys[i]))
        out[i] = not better.any()
    return out


def method_ranking(runs: pd.DataFrame, *, rank_by: str = "id_gain", level: float = 0.95,
                   include_baselines: bool = False) -> pd.DataFrame:
    """One row per (model, pretrained, method): :data:`RANKING_COLUMNS`.

    ``id_gain``/``ood_change``: means over dataset points (points) with their t interval at
    ``level`` over datasets; ``net``: the mean of their per-dataset sum over the datasets where both were
    measured (their sum when that is every dataset); ``n_ood_datasets``: those datasets, where both were
    measured (a method's OOD panel may be missing for some); ``n_datasets`` and ``datasets``: the datasets
    whose ``id_gain`` was averaged, counted and named (a JSON list);
    costs are means over datasets of the seed means; ``method_title`` is distinct per method
    (:func:`core.cards.method_titles`). ``rank`` (1 = best; <NA> where the ranked outcome
    was not measured) and ``pareto`` are within each (model, pretrained). Baselines (zero-shot: no
    training, every outcome 0 by definition) are left out unless asked for.
    Rows are ordered by model, then rank. Raises ValueError for an unknown ``rank_by``.
    """
    if rank_by not in RANK_BY:
        raise ValueError(f"unknown rank_by {rank_by!r}; use one of {list(RANK_BY)}")
    points = dataset_points(runs)
    if not include_baselines:
        points = without_baselines(points)
    rows = []
    for (model, pretrained, method), group in points.groupby(["model", "pretrained", "method"], sort=True,
                                                             dropna=False):
        card = cards.method_card(method)
        # the datasets averaged are those with a gain: an ok run may lack one (the field is nullable)
        gained = group["dataset"][np.isfinite(group["id_gain"])] if "id_gain" in group else group["dataset"][:0]
        row: dict[str, Any] = {"model": model, "pretrained": pretrained, "method": method,
                               "method_title": card.title, "family": card.family,
                               "n_datasets": int(gained.nunique()), "n_runs": int(group["n_seeds"].sum()),
                               "datasets": json.dumps(sorted(map(str, gained.unique())))}
        for outcome in ("id_gain", "ood_change"):
            mean, lo, hi = mean_interval(group[outcome] if outcome in group else [], level)
            row.update({outcome: mean, f"{outcome}_lo": lo, f"{outcome}_hi": hi})
        measured = group.dropna(subset=["id_gain", "ood_change"]) if "ood_change" in group else group.iloc[:0]
        row["n_ood_datasets"] = int(measured["dataset"].nunique())
        # per dataset, so a gain over every dataset is never added to a change over only some of them
        row["net"] = float((measured["id_gain"] + measured["ood_change"]).mean()) if len(measured) else math.nan
        for key in COST_KEYS:
            row[key] = float(group[key].mean()) if group[key].notna().any() else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in RANKING_COLUMNS if c not in ("rank", "pareto")])
    if out.empty:
        return pd.DataFrame(columns=RANKING_COLUMNS)
    # 'lora', 'LoRA' and 'Lora' were three rows titled 'LoRA': titled as the charts title them ('LoRA · Lora')
    out["method_title"] = out["method"].astype(str).map(cards.method_titles(out["method"]))  # keyed by text
    column = RANK_BY[rank_by][0]
    out["pareto"] = False
    out["rank"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    for _, idx in out.groupby(MODEL_KEYS, sort=False, dropna=False).groups.items():
        part = out.loc[idx]
        out.loc[idx, "pareto"] = pareto_mask(part["id_gain"], part["ood_change"])
        # a method whose ranking value was not measured (no OOD panel) is not ranked, not tied first
        out.loc[idx, "rank"] = part[column].rank(ascending=False, method="min", na_option="keep").astype("Int64")
    out["pareto"] = out["pareto"].astype(bool)
    return out.sort_values([*MODEL_KEYS, "rank", "method"]).reset_index(drop=True)[RANKING_COLUMNS]


def recipe_key(config: Any) -> str:
    """What makes two runs of one method the same experiment: the training recipe and the method's
    settings of a record's ``config`` (JSON text or dict), as canonical JSON; '' when it has neither."""
    try:
        cfg = json.loads(config) if isinstance(config, str) else config
    except json.JSONDecodeError:
        cfg = None
    if not isinstance(cfg, dict):
        return ""
    return json.dumps({k: cfg.get(k) for k in ("train", "method_config")}, sort_keys=True, default=str)


def mixed_recipes(runs: pd.DataFrame) -> pd.DataFrame:
    """The (model, pretrained, method) whose ok runs come from more than one training recipe or method
    setting (e.g. a smoke grid's 12 steps beside the default grid's 80), which a ranking row averages.

    Columns: model, pretrained, method, method_title, n_recipes, sources (sorted, ', '-joined).
    Baselines are left out (zero-shot has no recipe). Empty when nothing is mixed or there is no config.
    """
    columns = ["model", "pretrained", "method", "method_title", "n_recipes", "sources"]
    if runs.empty or not {"config", "status", *MODEL_KEYS, "method"} <= set(runs.columns):
        return pd.DataFrame(columns=columns)
    ok = without_baselines(runs.loc[runs["status"] == "ok", [c for c in (*MODEL_KEYS, "method", "config", "source")
                                                              if c in runs.columns]])
    keys = {c: recipe_key(c) for c in ok["config"].unique()}  # a grid's runs share a few configs: parse each once
    ok = ok.assign(recipe=ok["config"].map(keys), source=ok.get("source", pd.Series("", index=ok.index)))
    rows = [{"model": m, "pretrained": p, "method": method, "method_title": cards.method_title(method),
             "n_recipes": int(g["recipe"].nunique()),
             "sources": ", ".join(sorted(map(str, g["source"].dropna().unique())))}
            for (m, p, method), g in ok.groupby([*MODEL_KEYS, "method"], sort=True, dropna=False)
            if g["recipe"].nunique() > 1]
    return pd.DataFrame(rows, columns=columns)


def mixed_recipes_text(mixed: pd.DataFrame) -> str:
    """:func:`mixed_recipes` as one Markdown warning, record-supplied text escaped ('' when none)."""
    if mixed.empty:
        return ""
    methods = ", ".join(f"{plain(r.method_title)} ({r.n_recipes})" for r in mixed.itertuples())
    sources = ", ".join(sorted({s for text in mixed["sources"] for s in text.split(", ") if s}))
    return (f"**Different experiments are averaged together** for {methods}: their runs come from several "
            f"training recipes or settings (sources: {plain(sources)}), e.g. a smoke grid's short runs beside "
            "a full grid's. Move the runs you do not mean to compare out of the results folders "
            "(`results/` or `$IIMM_RESULTS`).")


def verdict(rows: pd.DataFrame) -> dict[str, Any]:
    """The ranking of one model in three facts, for a sentence above the table.

    ``best``: the row with the largest mean in-domain gain; ``gentlest``: among methods with at
    least half that gain, the one with the least forgetting; ``front``: method titles on the Pareto
    front, by gain. Values are ranking rows as dicts (None when ``rows`` has no gain).
    """
    rows = rows.dropna(subset=["id_gain"])
    if rows.empty:
        return {"best": None, "gentlest": None, "front": []}
    best = rows.loc[rows["id_gain"].idxmax()]
    useful = rows[(rows["id_gain"] >= best["id_gain"] / 2) & rows["ood_change"].notna()]
    gentlest = useful.loc[useful["ood_change"].idxmax()] if not useful.empty else None
    front = rows[rows["pareto"]].sort_values("id_gain", ascending=False)["method_title"].tolist()
    return {"best": best.to_dict(), "gentlest": None if gentlest is None else gentlest.to_dict(),
            "front": front}


def _ood_text(ood) -> str:  # nullable: runs without an OOD panel have no OOD mean
    return "out-of-domain not measured" if pd.isna(ood) else f"{signed(ood)} out-of-domain"


def verdict_text(rows: pd.DataFrame) -> str:
    """:func:`verdict` as one Markdown sentence, record-supplied titles escaped ("" when no gain).

    When every row averages the same datasets (:func:`same_datasets`) the sentence says how many, so a
    table can drop that column; a method it names that was measured on a single dataset (no interval) is said
    to be so.
    """
    facts = verdict(rows)
    best, gentle = facts["best"], facts["gentlest"]
    if best is None:
        return ""
    tied = rows[rows["id_gain"] == best["id_gain"]]  # the rank column's ties: naming one of them contradicted it
    oods = [_ood_text(o) for o in tied["ood_change"]]
    text = (f"**Most gain:** {plain(best['method_title'])}, {signed(best['id_gain'])} points in-domain, {oods[0]}."
            if len(tied) < 2 else f"**Most gain** ({len(tied)} methods tied, {signed(best['id_gain'])} points "
            "in-domain each): " + ", ".join(f"{plain(t)} ({o})"
                                            for t, o in zip(tied["method_title"], oods, strict=True)) + ".")
    if gentle is not None and gentle["method"] != best["method"]:
        text += (f" **Least forgetting for at least half that gain:** {plain(gentle['method_title'])}, "
                 f"{signed(gentle['id_gain'])} in-domain, {signed(gentle['ood_change'])} out-of-domain.")
    if facts["front"]:  # empty when no method has an out-of-domain mean
        text += f" **Best trade-offs** (nothing beats them on both): {', '.join(plain(t) for t in facts['front'])}."
    if same_datasets(rows):
        if rows["n_datasets"].iloc[0] < 2:
            return text + (" **From a single dataset:** every method is measured on the same one dataset, so there "
                           "is no interval and this order may not hold on other datasets.")
        return text + f" Every method is averaged over the same {rows['n_datasets'].iloc[0]} datasets."
    # a named method measured on one dataset: its mean has no interval (the table shows a dash), say so here
    named = {best["method_title"], *facts["front"], *([] if gentle is None else [gentle["method_title"]])}
    single = rows.loc[rows["method_title"].isin(named) & (rows["n_datasets"] < 2), "method_title"].tolist()
    if single:
        text += (f" **From a single dataset:** {', '.join(plain(t) for t in single)} "
                 f"{'is' if len(single) == 1 else 'are'} measured on one dataset only, so "
                 "there is no interval and the order may not hold on other datasets.")
    return text


def same_datasets(rows: pd.DataFrame) -> bool:
    """Whether every ranking row averages the same datasets (not only as many), out-of-domain too where
    measured, so one sentence can say how many and a table can drop its datasets columns. False for no rows."""
    if rows.empty or rows["n_datasets"].nunique() != 1:
        return False
    if "n_ood_datasets" in rows.columns and not rows["n_ood_datasets"].isin([0, rows["n_datasets"].iloc[0]]).all():
        return False  # some method's out-of-domain mean rests on fewer datasets than its gain
    return "datasets" not in rows.columns or rows["datasets"].nunique(dropna=False) == 1


def dataset_matrix(runs: pd.DataFrame, outcome: str, *, model: str, pretrained: str,
                   include_baselines: bool = False) -> pd.DataFrame:
    """The method x dataset table of one model's seed-mean ``outcome`` (long form).

    Columns: method, method_title (distinct per method: a shared title gets `` · <method>``), dataset (its name,
    made distinct as drawn: :func:`core.text.distinct_labels`), value, n_seeds, best (the highest value of its
    dataset, ties all marked). Raises ValueError for an outcome the runs do not have.
    """
    if outcome not in OUTCOME_COLUMNS or outcome not in runs.columns:
        raise ValueError(f"unknown outcome {outcome!r}; use one of {list(OUTCOME_COLUMNS)}")
    # one model's runs first: the points (and their provenance JSON) of every other model are not needed
    points = dataset_points(runs[(runs["model"] == model) & (runs["pretrained"] == pretrained)])
    mine = points.dropna(subset=[outcome])
    if not include_baselines:
        mine = without_baselines(mine)
    out = mine[["method", "dataset", outcome, "n_seeds"]].rename(columns={outcome: "value"})
    # one title per method: two names with one title ('lora', 'Lora') would share a row of the page's pivot
    methods = sorted(out["method"].unique())
    titles = dict(zip(methods, distinct_labels([cards.method_card(m).title for m in methods], tags=methods),
                      strict=True))
    out.insert(1, "method_title", out["method"].map(titles))
    best = out.groupby("dataset")["value"].transform("max")
    out["best"] = np.isclose(out["value"], best, rtol=0, atol=1e-9)
    # one label per dataset as drawn: 'Café' composed and decomposed were two columns and two axis labels alike
    datasets = sorted(out["dataset"].unique())
    out["dataset"] = out["dataset"].map(dict(zip(datasets, distinct_labels(datasets), strict=True)))
    return out.reset_index(drop=True)


def interval_text(lo: float, hi: float) -> str:
    """'[+1.2, +3.4]' for a finite interval; '—' where it is undefined (one dataset, or none measured)."""
    if not (pd.notna(lo) and pd.notna(hi) and math.isfinite(lo) and math.isfinite(hi)):
        return "—"
    return f"[{signed(lo)}, {signed(hi)}]"


def interval_texts(lows: Any, highs: Any) -> list[str]:
    """:func:`interval_text` of each (low, high) pair of two equally long columns: a table's interval column."""
    return [interval_text(lo, hi) for lo, hi in zip(lows, highs, strict=True)]


#: The outcomes as the pages, tables and chart axes name them, with their units.
OUTCOME_TITLES = {"id_gain": "in-domain gain (points)", "ood_change": "out-of-domain change (points)",
                  "norm_gain": "normalised gain (share of headroom)", "zs_acc": "zero-shot accuracy (%)",
                  "ft_acc": "accuracy after fine-tuning (%)", "iimm": "IIMM"}


#: What a ranking or matrix row's method title gains when unverified submissions feed its numbers.
UNVERIFIED_MARK = " (with unverified runs)"


def unverified_marked(rows: pd.DataFrame, runs: pd.DataFrame, submitted: str) -> pd.DataFrame:
    """``rows`` (one model's ranking or matrix) with :data:`UNVERIFIED_MARK` after the title of each method of
    which ``runs`` (those rows' runs) hold an ok run whose source is ``submitted``: a failed one feeds no number
    here (rows average ok runs), so it marked a row that does not rest on it."""
    fed = runs[(runs["source"] == submitted) & (runs["status"] == "ok")] if "source" in runs else runs.iloc[:0]
    marked = set(fed["method"])
    return rows.assign(method_title=[f"{t}{UNVERIFIED_MARK}" if m in marked else t
                                     for m, t in zip(rows["method"], rows["method_title"], strict=True)])


def run_label(row: Any) -> str:
    """A readable one-line name of a run: 'LoRA on letters, seed 1 (worldclip-tiny world-v1)'."""
    status = "" if row.get("status") in (None, "ok") else f" [{row['status']}]"
    flag = row.get("random_weights")  # a bool, or NaN/None where the record does not say
    untrained = ", RANDOM WEIGHTS" if isinstance(flag, (bool, np.bool_)) and flag else ""
    return (f"{cards.method_card(str(row['method'])).title} on {row['dataset']}, seed {row['seed']} "
            f"({row['model']} {row['pretrained']}{untrained}){status}")


__all__ = ["without_baselines", "RANK_BY", "RANKING_COLUMNS", "dataset_matrix", "dataset_points", "interval_text",
           "interval_texts",           "mean_interval", "method_ranking", "pareto_mask", "run_label", "same_datasets",
           "unverified_marked", "verdict"]
