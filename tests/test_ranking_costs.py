"""core.ranking._cost_columns reads the cost figures in DuckDB where it reads the text as Python's json does: the
figures must be those of parsing each run's provenance in Python, on awkward texts too."""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from core import ranking

AWKWARD = [
    '{"trainable_params": 14336, "wall_time_s": 12.5, "peak_rss_mb": 2046.7}',
    '{"params_trainable": 7, "peak_memory_mb": 3, "peak_mb": 4}', '{"trainable_params": true, "params_trainable": 9}',
    '{"wall_time_s": "12", "peak_mb": null}', "not json", None, math.nan, "", "[1, 2]", "3", '"wall_time_s"',
    '{"method": {"trainable_params": 5}, "trainable_params": 6}',          # nested beside the run's own
    '{"wall_time_s": 1, "wall_time_s": 2}',                                 # Python: the last
    '{"wall_time_s": 1, "wall\\u005ftime_s": 3}', '{"wall\\u005ftime_s": 4.25, "host": "caf\\u00e9"}',
    '{"wall_time_s": NaN}', '{"wall_time_s": -Infinity, "peak_mb": 1e400, "trainable_params": -0}',
    '{"wall_time_s": 2,}', '{"wall_time_s": nan}', '{"wall_time_s": [3]}', '{"wall_time_s": {"s": 3}}',
    '{"trainable_params": 123456789012345678901234567890}', '{"trainable_params": 9007199254740993}',
    '{"trainable_params": 18446744073709551615, "peak_mb": 0.1000000000000000055511151231257827}',
    '{"wall_time_s": 5, "x": ' + "[" * 100 + "]" * 100 + "}", '{"wall_time_s": 5} trailing',
    '{"trainable_params": 1e2, "wall_time_s": 1E-400, "peak_mb": -0.0}', '{"peak_mb": 5, "peak_rss_mb": "x"}',
]


def per_row(provenance: pd.Series) -> pd.DataFrame:
    return pd.DataFrame([ranking._cost_row(t) for t in provenance], columns=list(ranking.COST_KEYS),
                        index=provenance.index, dtype=float)


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want)
    np.testing.assert_array_equal(np.signbit(got.to_numpy()), np.signbit(want.to_numpy()))  # -0.0 stays -0.0


@pytest.mark.parametrize("dtype", ["str", object])
def test_the_duckdb_path_gives_the_figures_parsing_each_text_gives(dtype):
    texts = pd.Series(AWKWARD, index=range(50, 50 + len(AWKWARD))).astype(dtype)
    got, want = ranking._cost_columns(texts), per_row(texts)
    same(got, want)
    assert want["wall_time_s"].tolist()[12:15] == [2.0, 3.0, 4.25] and want["trainable_params"].iloc[11] == 6
    for i in range(len(texts)):  # each alone, as a one-run store reads it
        same(ranking._cost_columns(texts.iloc[[i]]), per_row(texts.iloc[[i]]))



@pytest.mark.parametrize("missing", [pd.Series([math.nan], dtype=object), pd.Series([math.nan, None]),
                                     pd.Series([math.nan], index=[7])])
def test_runs_with_no_provenance_text_give_no_figures(missing):
    """pandas maps texts all missing to float64 NaN, which pyarrow before 20 refused as strings
    (ArrowNotImplementedError: a one-run store whose run names no provenance broke the leaderboard)."""
    got = ranking._cost_columns(missing)
    assert list(got.columns) == list(ranking.COST_KEYS) and got.index.equals(missing.index)
    assert got.isna().all().all()

def test_numbers_are_read_to_the_same_double_and_dicts_give_none():
    rng = np.random.default_rng(0)
    values = [*rng.standard_normal(300) * 10.0 ** rng.integers(-30, 30, 300), *rng.integers(-2**62, 2**62, 300),
              *(rng.random(300) * 1e308), *rng.integers(0, 10**6, 300) / 7]
    texts = pd.Series([json.dumps({"peak_rss_mb": v.item(), "wall_time_s": v.item() / 3}) for v in values] +
                      [{"wall_time_s": 3}], dtype=object)
    same(ranking._cost_columns(texts), per_row(texts))
    assert ranking._cost_columns(texts)["wall_time_s"].isna().tolist()[-1]  # a dict is no text: no figures


@pytest.mark.parametrize("text", ['{"wall_time_s": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}",
                                  '{"wall_time_s": 1, "x": 1' + "0" * 5000 + "}", '{"wall_time_s": 1' + "0" * 400 + "}"])
def test_text_python_cannot_read_fails_as_it_did(text):
    """Nesting past Python's recursion limit, an integer longer than it reads and a count float() cannot hold:
    DuckDB reads them all, so such text is left to Python, which raises as before (the store refuses the first
    two: core.store.validate)."""
    texts = pd.Series([text])
    for read in (ranking._cost_columns, per_row):
        with pytest.raises((RecursionError, ValueError, OverflowError), match="recursion|digits|Exceeds|too large"):
            read(texts)


def test_provenance_is_not_parsed_run_by_run(monkeypatch):
    """At 100,000 runs (jobs.bench_app) the ranking parsed each of one model's 25,000 provenance texts in Python
    for three figures: 0.15 s of the landing page's first view on short synthetic texts, more on longer ones (every record names its
    data since 2026-12-06; the shipped ones are 1.2 KB)."""
    calls = []
    real = json.loads
    monkeypatch.setattr(ranking, "json", SimpleNamespace(
        loads=lambda text: calls.append(text) or real(text), JSONDecodeError=json.JSONDecodeError, dumps=json.dumps))
    texts = pd.Series([json.dumps({"trainable_params": i, "wall_time_s": i / 4, "command": "x" * 200})
                       for i in range(2000)] + ["{broken"])
    got = ranking._cost_columns(texts)
    assert got["trainable_params"].iloc[1999] == 1999 and got["wall_time_s"].iloc[6] == 1.5
    assert len(calls) <= 1, f"{len(calls)} texts parsed in Python"
