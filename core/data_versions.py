"""Which data a run ran on, from its record's ``provenance.data_fingerprint``, and runs that name different data.

A grid record made since 2026-12-06 names each split it used by :func:`core.embed.data_fingerprint` (the hash
the embedding cache keys the split by): ``{"train": ..., "test": ..., "ood": {set: ...}}``. Splits can change
under one dataset name (a folder's, EuroSAT's and SUN397's did on 2026-12-05), and a store then holds runs
on both; a table that averages them averages different data. Records that name no fingerprint (older ones,
submissions) are never counted as different: there is nothing to compare. Nothing here imports Streamlit.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from core.json_text import top_level_members
from core.text import plain, utc_moments, utc_text

MIXED_DATA_COLUMNS = ["model", "pretrained", "dataset", "split", "n_versions", "methods", "sources", "versions",
                      "method_names"]
_KEY = '"data_fingerprint"'  # in a provenance's JSON text: only those texts are parsed
_ROW_KEYS = ["model", "pretrained", "method", "dataset", "source", "created_at"]


def split_fingerprints(dataset: Any, provenance: Mapping[str, Any] | str | None) -> dict[tuple[str, str], str]:
    """{(dataset name, split): fingerprint} of one record: its own dataset's train and test splits and each OOD
    set's test split, as ``provenance.data_fingerprint`` names them (JSON text or a dict); {} where it names
    none, or the provenance is not a JSON object. Values that are not non-empty strings are left out."""
    if isinstance(provenance, str):
        if _KEY not in provenance:
            return {}
        try:
            provenance = json.loads(provenance)
        except json.JSONDecodeError:
            return {}
    prints = provenance.get("data_fingerprint") if isinstance(provenance, Mapping) else None
    if not isinstance(prints, Mapping):
        return {}
    found = {(str(dataset), split): prints.get(split) for split in ("train", "test")}
    ood = prints.get("ood")
    if isinstance(ood, Mapping):
        found.update({(str(name), "test"): value for name, value in ood.items()})
    return {key: value for key, value in found.items() if isinstance(value, str) and value}


def mixed_data(runs: pd.DataFrame) -> pd.DataFrame:
    """The (model, pretrained, dataset, split) whose ok fine-tuning runs name more than one data fingerprint
    (the dataset's own splits, and its test split where it is another run's OOD set): the runs of one dataset
    name that a ranking or matrix row averages, or sets side by side, ran on different data.

    Columns :data:`MIXED_DATA_COLUMNS`: n_versions (distinct fingerprints), methods and sources of the runs that
    name one (sorted, ', '-joined), versions (each version's runs: how many and when they were made, oldest
    version first, so a user can tell which runs to move), method_names (the methods as a tuple: a name may hold
    ', '). Baselines are left out, as the ranking leaves them out.
    Runs whose records name no fingerprint count for nothing. Empty when nothing is mixed or there is no provenance."""
    from core.ranking import without_baselines

    needed = {"status", "model", "pretrained", "method", "dataset", "provenance"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=MIXED_DATA_COLUMNS)
    ok = without_baselines(runs.loc[runs["status"] == "ok", [c for c in (*needed, "source", "created_at")
                                                             if c in runs.columns]])
    found = _fingerprint_rows(ok)
    if found.empty:
        return pd.DataFrame(columns=MIXED_DATA_COLUMNS)
    out = []
    for (model, pretrained, dataset, split), g in found.groupby(["model", "pretrained", "dataset", "split"],
                                                                sort=True, dropna=False):
        if g["fingerprint"].nunique() > 1:
            names = sorted(map(str, g["method"].dropna().unique()))
            out.append({"model": model, "pretrained": pretrained, "dataset": dataset, "split": split,
                        "n_versions": int(g["fingerprint"].nunique()), "methods": ", ".join(names),
                        "sources": ", ".join(sorted(map(str, g["source"].dropna().unique()))),
                        "versions": _versions_text(g), "method_names": tuple(names)})
    return pd.DataFrame(out, columns=MIXED_DATA_COLUMNS)


def _when(moments: pd.Series) -> str:
    """' made FIRST – LAST UTC' (to the second) of some runs' created_at, read by :func:`core.text.utc_moments`;
    '' when none names one. By the moment each names: runs recorded on hosts in other time zones ('+05:30',
    '-08:00') are ordered as they happened, and shown on one clock, named."""
    made = moments.dropna()
    if made.empty:
        return ""
    first, last = (utc_text(t) for t in (made.min(), made.max()))
    return f" made {first} UTC" if first == last else f" made {first} – {last} UTC"


_NEVER = pd.Timestamp.min.tz_localize("UTC")


def _versions_text(group: pd.DataFrame) -> str:
    """Each fingerprint's runs of one (dataset, split): 'N runs made FIRST – LAST UTC', oldest version first
    (by its newest run; versions whose runs name no time first)."""
    parts = []
    for fingerprint, runs in group.groupby("fingerprint"):
        moments = utc_moments(runs["created_at"])  # once: the order and the text both need them
        newest = moments.max()
        parts.append((_NEVER if pd.isna(newest) else newest, fingerprint,
                      f"{len(runs)} run{'s' if len(runs) != 1 else ''}{_when(moments)}"))
    parts = [text for *_, text in sorted(parts)]
    return ", ".join(parts)


_FOUND_COLUMNS = ["model", "pretrained", "dataset", "split", "fingerprint", "method", "source", "created_at"]


def _fingerprint_rows(ok: pd.DataFrame) -> pd.DataFrame:
    """A row (:data:`_FOUND_COLUMNS`: the dataset named is the split's own) per fingerprint of each of the runs
    ``ok`` (columns :data:`_ROW_KEYS` and provenance): what :func:`split_fingerprints` of each row gives,
    without parsing every text in Python (0.5-0.8 s for one model's 25,000 runs). DuckDB takes
    ``data_fingerprint`` out of the texts it reads as Python does (:mod:`core.json_text`), each distinct object
    parsed once and joined back to its runs; other texts that name the key, and dict provenance, go through
    :func:`split_fingerprints`."""
    ok = ok.assign(**{c: None for c in ("source", "created_at") if c not in ok.columns})  # a run may name neither
    prov = ok["provenance"]
    if pd.api.types.is_string_dtype(prov) and not pd.api.types.is_object_dtype(prov):  # text or missing, as loaded
        named, slow = prov.str.contains(_KEY, regex=False).fillna(False).to_numpy(dtype=bool), []
    else:  # any objects: dicts (a frame built from records) are read as they are, below
        named = np.array([isinstance(p, str) and _KEY in p for p in prov], dtype=bool)
        slow = [ok[np.array([isinstance(p, Mapping) for p in prov], dtype=bool)]]
    candidates = ok[named]
    frames = []
    if len(candidates):
        safe, found = top_level_members(pa.array(candidates["provenance"], pa.large_string()), ["data_fingerprint"],
                                        {"prints": "m[1]"})
        prints = np.array(found["prints"].to_pylist(), dtype=object)
        parsed = {}
        for value in set(prints[safe]) - {None}:
            try:
                parsed[value] = {"data_fingerprint": json.loads(value)}
            except ValueError:  # not expected of DuckDB's own output: those rows' texts are parsed instead
                safe &= prints != value
        slow.append(candidates[~safe])
        shown = candidates.loc[safe, _ROW_KEYS].assign(prints=prints[safe])
        pairs = shown[["dataset", "prints"]].drop_duplicates()  # each distinct object read once, then joined back
        expanded = pd.DataFrame([(dataset, value, name, split, fp)
                                 for dataset, value in zip(pairs["dataset"], pairs["prints"], strict=True)
                                 for (name, split), fp in split_fingerprints(dataset, parsed.get(value)).items()],
                                columns=["dataset", "prints", "name", "split", "fingerprint"])
        joined = shown.merge(expanded, on=["dataset", "prints"], sort=False)  # no per-run Python: 25,000 runs
        frames.append(joined.drop(columns="dataset").rename(columns={"name": "dataset"})[_FOUND_COLUMNS])
    rest = pd.concat(slow) if slow else ok.iloc[:0]
    rows = [(model, pretrained, name, split, fp, method, source, made)
            for model, pretrained, method, dataset, source, made, p in zip(*(rest[c] for c in
                                                                             [*_ROW_KEYS, "provenance"]), strict=True)
            for (name, split), fp in split_fingerprints(dataset, p).items()]
    frames.append(pd.DataFrame(rows, columns=_FOUND_COLUMNS))
    frames = [f for f in frames if len(f)]
    if len(frames) > 1:  # one dtype per column, whichever path a row took
        return pd.concat([f.astype(object) for f in frames], ignore_index=True)
    return frames[0] if frames else pd.DataFrame(columns=_FOUND_COLUMNS)


def mixed_data_text(mixed: pd.DataFrame) -> str:
    """:func:`mixed_data` as one Markdown warning, record-supplied text escaped ('' when none)."""
    if mixed.empty:
        return ""
    splits: dict[str, list[str]] = {}
    for r in mixed.itertuples():
        splits.setdefault(str(r.dataset), []).append(f"{r.split} ({r.n_versions} versions: {plain(r.versions)})")
    names = "; ".join(f"{plain(name)}: {', '.join(parts)}" for name, parts in splits.items())
    sources = ", ".join(sorted({s for text in mixed["sources"] for s in text.split(", ") if s}))
    return (f"**Runs on different data are averaged together** for {names}: the records of one dataset name "
            f"give different fingerprints of its images and labels (`provenance.data_fingerprint`; sources: "
            f"{plain(sources)}), e.g. runs made before and after its files or splits changed. Move the runs you do "
            "not mean to compare out of the results folders (`results/` or `$IIMM_RESULTS`). A grid skips every "
            "cell that has a record, so to run cells again on the data as it is now, move their records out "
            "first, then run the grid again.")


def averaged_caveats(runs: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """What a ranking of ``runs`` (one model's) averages that its numbers alone do not say: the page's warnings
    (:func:`core.ranking.mixed_recipes_text`, :func:`mixed_data_text`; those that apply) and, per method, the same in
    a few plain words for the table's ``averaged`` column, so a saved table keeps them ({method: text}, only the
    methods concerned): 'runs of 2 training recipes'; 'runs on different data: letters train, letters test'."""
    from core.ranking import mixed_recipes, mixed_recipes_text

    recipes, data = mixed_recipes(runs), mixed_data(runs)
    texts = [text for text in (mixed_recipes_text(recipes), mixed_data_text(data)) if text]
    notes: dict[str, list[str]] = {}
    for r in recipes.itertuples():
        notes.setdefault(str(r.method), []).append(f"runs of {r.n_recipes} training recipes")
    for method, text in mixed_data_methods(data).items():
        notes.setdefault(method, []).append(text)
    return texts, {method: "; ".join(parts) for method, parts in notes.items()}


def mixed_data_methods(mixed: pd.DataFrame) -> dict[str, str]:
    """:func:`mixed_data` per method, for a table's column: {method: 'runs on different data: letters train, ...'},
    only the methods whose runs name one of the fingerprints that differ."""
    splits: dict[str, list[str]] = {}
    for r in mixed.itertuples():
        for method in r.method_names:  # not methods split on ', ': a submitted name may hold one
            splits.setdefault(method, []).append(f"{r.dataset} {r.split}")
    return {method: "runs on different data: " + ", ".join(named) for method, named in splits.items()}


def other_data(recorded: Mapping[str, Any], again: Mapping[str, Any]) -> list[str]:
    """The splits that two records of one cell (a record and its re-run) both fingerprint, and differently:
    'shape-size train (recorded 1a2b..., here 3c4d...)' each, in name order; [] where they agree or either
    names none. The dataset is the one the cell ran (its config's), whatever the record's field says."""
    config = recorded.get("config") if isinstance(recorded.get("config"), Mapping) else {}
    dataset = config.get("dataset", recorded.get("dataset"))
    old = split_fingerprints(dataset, recorded.get("provenance"))
    new = split_fingerprints(again.get("dataset", dataset), again.get("provenance"))
    return [f"{name} {split} (recorded {old[(name, split)]}, here {new[(name, split)]})"
            for name, split in sorted(old) if (name, split) in new and old[(name, split)] != new[(name, split)]]


def kept_on_other_data(runs: pd.DataFrame, fresh: set[str]) -> dict[str, list[str]]:
    """{run_id: ['shape-size train', ...]} of the ok runs not in ``fresh`` that fingerprint a split otherwise
    than every run in ``fresh`` does (a grid's cells just run, on the data as it is now): the cells a resumed
    grid skipped although their data has changed since. Zero-shot baselines count too (a grid's cells all
    ran). Runs of splits that no fresh run names, or that name no fingerprint, are not counted."""
    if runs.empty or not {"run_id", "status", "dataset", "provenance"} <= set(runs.columns):
        return {}
    ok = runs[runs["status"] == "ok"]
    now: dict[tuple[str, str], set[str]] = {}
    ran = ok[ok["run_id"].isin(fresh)]
    for dataset, prov in zip(ran["dataset"], ran["provenance"], strict=True):
        for key, value in split_fingerprints(dataset, prov).items():
            now.setdefault(key, set()).add(value)
    kept = {}
    for run_id, dataset, prov in zip(ok["run_id"], ok["dataset"], ok["provenance"], strict=True):
        if run_id in fresh:
            continue
        other = [f"{name} {split}" for (name, split), value in sorted(split_fingerprints(dataset, prov).items())
                 if (name, split) in now and value not in now[(name, split)]]
        if other:
            kept[str(run_id)] = other
    return kept


def kept_on_other_data_text(kept: Mapping[str, list[str]], results: str) -> str:
    """:func:`kept_on_other_data` as one warning for a grid's log ('' when none)."""
    if not kept:
        return ""
    splits = sorted({s for found in kept.values() for s in found})
    files = [f"{run_id}.json" for run_id in sorted(kept)]
    return (f"{len(kept)} finished cell(s) of this grid ran on other data than the cells run now "
            f"({', '.join(splits[:5])}{' …' if len(splits) > 5 else ''}: their records' provenance.data_fingerprint "
            "differs, e.g. files of the folder changed since); they were skipped, not run again, and the app's "
            f"ranking averages both. To run them on the data as it is now, move their records out of {results} "
            f"and run this command again: {', '.join(files[:10])}{' …' if len(files) > 10 else ''}")


def kept_on_other_data_warning(results: str | os.PathLike, cells: set[str], fresh: set[str]) -> str:
    """:func:`kept_on_other_data_text` of a grid's records in ``results`` (``cells``: its cell ids; ``fresh``:
    those of the cells that ran just now), read as the grid reads them."""
    from core.store import load_runs

    runs = load_runs([results])
    return kept_on_other_data_text(kept_on_other_data(runs[runs["run_id"].isin(cells)], fresh), str(results))
