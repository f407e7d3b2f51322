"""README's per-cell overhead figures (*World v2*), re-derived from the shipped world-v2 records with
jobs.bench_cell.overhead_table, the function ``python -m jobs.bench_cell jobs/results/world-v2`` prints."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from jobs.bench_cell import overhead_table
from tests.test_readme_figures import PROSE, check

RESULTS = Path(__file__).resolve().parent.parent / "jobs" / "results" / "world-v2"
SIX = ["full_ft", "lora", "attention", "bitfit", "clip_adapter", "linear_probe"]


def test_the_overhead_figures_are_the_shipped_records():
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(RESULTS.glob("*.json"))]
    runs = pd.DataFrame([{k: r[k] for k in ("run_id", "status", "method", "provenance")} for r in records])
    full = overhead_table(runs[runs["method"] == "full_ft"]).loc["ALL (time-weighted)"]
    now = re.search(r"full-FT cell's wall time .*? \(On the records shipped now the mean is (\S+) s:", PROSE)
    assert now, "README does not give full FT's mean wall time on the records shipped now"
    check([now[1]], [full["wall_s"]], "full FT's mean wall time")
    six = overhead_table(runs[runs["method"].isin(SIX)])
    said = re.search(r"On all (\d+) fine-tuning records of the six methods, the same command gives \*\*(\S+) %\*\* "
                     r"time-weighted \(ratio (\S+): goal missed\): full FT (\S+) %, LoRA (\S+) %, attention (\S+) %, "
                     r"BitFit (\S+) %, CLIP-Adapter (\S+) %, linear probe (\S+) %", PROSE)
    total = six.loc["ALL (time-weighted)"]
    check(list(said.groups()), [total["cells"], 100 * total["overhead"], total["overhead"] / 0.20,
                                *(100 * six.loc[m, "overhead"] for m in SIX)], "the six methods")
    every = overhead_table(runs)
    said = re.search(r"\(On the ([\d,]+) fine-tuning records shipped now it gives (\S+) %: the same six, and "
                     r"orthogonal FT (\S+) %, WiSE-FT (\S+) %, CLIP-CITE (\S+) %\.\)", PROSE)
    assert said, "README does not give the overhead of the records shipped now"
    total = every.loc["ALL (time-weighted)"]
    check(list(said.groups()), [total["cells"], 100 * total["overhead"],
                                *(100 * every.loc[m, "overhead"] for m in ("orthogonal", "wise_ft", "clip_cite"))],
          "all nine methods")
