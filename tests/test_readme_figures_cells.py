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


def test_the_analyses_on_the_current_records_are_those_readme_names():
    """Model C x full FT's cells changed when two of its records were re-run (e3c1d2c): README names the shipped
    selection files scored on the current records (their figures equal) and says how many there are."""
    columns = ["nested_lodo_mae", "iimm_lodo_mae", "coverage", "mean_width", "chosen"]
    figures = {}
    for path in sorted(RESULTS.rglob("forecast-selection.csv")):
        table = pd.read_csv(path)
        cells = table[(table["pretrained"] == "world-v2-c") & (table["method"] == "full_ft")]
        figures[path.parent.name if path.parent != RESULTS else "world-v2"] = cells.set_index("outcome")[columns]
    current = figures["zero-shot"]
    same = sorted(name for name, cells in figures.items() if cells.equals(current))
    assert same == ["completion", "extension", "jackknife", "zero-shot"], same
    said = re.search(r"the (\w+) and (\w+) tests' analyses \(2026-12-06;.*? and the later jackknife\+ and zero-shot "
                     r"runs scored the world-v2 cells on the current records.*?\(the same in all (\w+)\)", PROSE)
    assert said, "README does not name the analyses scored on the current records"
    assert sorted([said[1], said[2], "jackknife", "zero-shot"]) == same and said[3] == "four"
