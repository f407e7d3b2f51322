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


def test_the_summarys_coverage_and_counts_are_the_tests_tables():
    """'What it found' and the running totals repeat the forecast tests' figures: world v1's per-outcome coverage
    range and no-worse count, and over the fresh-cell world-v2 tests (all but the first) bonferroni's."""
    from core import forecast_select as fsel
    from tests.test_readme_figures import WORLD_V2_TESTS

    def summary(table: pd.DataFrame) -> pd.DataFrame:
        return fsel.coverage_summary(table[table["rule"] == "bonferroni"] if "rule" in table else table)

    v1 = summary(pd.read_csv(RESULTS.parent / "forecast-selection.csv")).set_index("outcome")
    fresh = []
    for path, pairs in WORLD_V2_TESTS[1:]:
        rules = pd.read_csv(RESULTS / path)
        fresh.append(summary(rules[[(p, m) in pairs for p, m in zip(rules["pretrained"], rules["method"])]])
                     .set_index("outcome"))
    per_outcome = pd.concat([s.drop("all outcomes") for s in fresh])["coverage"]
    said = re.search(r"covered (\S+)–(\S+) % of held-out datasets per outcome on world v1 and (\S+)–(\S+) % in the "
                     r"four pre-registered world-v2 tests on fresh cells\. It was no worse than the IIMM-only line in "
                     r"(\d+) of those (\d+) cells, but in only (\d+) of (\d+) world-v1", PROSE)
    no_worse = [int(s.loc["all outcomes", "cells_no_worse_than_iimm"]) for s in fresh]
    cells = [int(s.loc["all outcomes", "cells"]) for s in fresh]
    v1_cov = 100 * v1.drop("all outcomes")["coverage"]
    check(list(said.groups()), [v1_cov.min(), v1_cov.max(), 100 * per_outcome.min(), 100 * per_outcome.max(),
                                sum(no_worse), sum(cells), v1.loc["all outcomes", "cells_no_worse_than_iimm"],
                                v1.loc["all outcomes", "cells"]], "What it found")
    for k, end in ((2, ";"), (3, "."), (4, ".")):  # the running totals after the 2nd, 3rd and 4th fresh test
        phrase = "is no worse than IIMM alone in {} of {}" + end
        assert phrase.format(sum(no_worse[:k]), sum(cells[:k])) in PROSE, (k, no_worse, cells)
