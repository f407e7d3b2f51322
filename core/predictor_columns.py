"""The zero-shot predictors and transferability baselines of stored runs as columns (``zs_<name>``, ``tf_<name>``),
read from the records' JSON columns, leaving out baselines scored under definitions used before 2026-12-02.
Split from :mod:`core.forecast`, which re-exports both public functions."""
from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def _json_object(text: Any) -> dict:
    value = json.loads(text) if isinstance(text, str) else {}
    return value if isinstance(value, dict) else {}


def earlier_baselines(runs: pd.DataFrame) -> list[bool]:
    """Per row of ``runs``: whether its transferability baselines were scored under the definitions the grid
    used before 2026-12-02 (GBC, H-score, EMMS, LEEP... changed then; EMMS of about -0.02 became -30,000). The
    grid's records (their provenance names a git revision) say how their baselines were scored in
    ``provenance.transferability`` since then; one with baselines and without it is older. Records of no grid
    (hand-made, another tool's) are never counted."""
    if "transferability" not in runs.columns or "provenance" not in runs.columns:
        return [False] * len(runs)
    # the JSON text of provenance is searched, not parsed (parsing took 46 ms for the 2,200 shipped runs): its
    # key "transferability" is the string "transferability" in quotes, which no other provenance entry is
    return [isinstance(prov, str) and '"git_revision"' in prov and '"transferability"' not in prov
            and bool(_json_object(baselines))
            for baselines, prov in zip(runs["transferability"], runs["provenance"], strict=True)]


def expand_predictor_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``runs`` with every numeric entry of the JSON columns ``zero_shot`` and
    ``transferability`` as a float column ``zs_<name>`` / ``tf_<name>`` (NaN where absent).

    The baselines of grid records made before their definitions changed (:func:`earlier_baselines`) are
    left out (NaN), with a logged warning saying how to score them again, so that they are never fitted or
    ranked beside current ones."""
    out = runs.copy()
    earlier = earlier_baselines(runs)
    if any(earlier):
        log.warning("%d grid records hold transferability baselines scored under the definitions used before "
                    "2026-12-02 (no provenance.transferability): left out of every predictor table and forecast. "
                    "'python -m jobs.predictors --rescore --results DIR' scores the JSON records at the top of DIR "
                    "again; records merged into a compacted Parquet file must first be written out as JSON, with "
                    "'python -m jobs.ingest FILE --into NEWDIR'", sum(earlier))
    for column, prefix in (("zero_shot", "zs_"), ("transferability", "tf_")):
        if column not in runs.columns:
            continue
        parsed = [json.loads(t) if isinstance(t, str) else {} for t in runs[column]]
        if column == "transferability":
            parsed = [{} if old else d for d, old in zip(parsed, earlier, strict=True)]
        names = sorted({k for d in parsed for k, v in d.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})
        for name in names:
            out[prefix + name] = [float(d[name]) if isinstance(d.get(name), (int, float))
                                  and not isinstance(d.get(name), bool) else np.nan for d in parsed]
    return out
