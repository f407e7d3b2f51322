"""Summary of the pre-registered forecast confirmation
(jobs/results/world-v2/FORECAST-CONFIRMATION-PREREGISTRATION.md): model D x LoRA, CLIP-Adapter,
linear probe, from forecast-rules.csv. Committed before any of those records existed. From the
repository root:

    python jobs/forecast_confirmation_summary.py [forecast-rules.csv]
"""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for core
from core import forecast_select as fsel  # noqa: E402
from jobs.cli import script_table  # noqa: E402
from jobs.forecast_test_summary import READ_COLUMNS  # noqa: E402

PAIRS = [("world-v2-d", m) for m in ("lora", "clip_adapter", "linear_probe")]
rows = script_table(sys.argv, "jobs/results/world-v2/confirmation/forecast-rules.csv", __doc__, READ_COLUMNS,
                    "forecast-rules table")
keys = list(zip(rows["pretrained"], rows["method"], strict=True))
cells = rows[pd.Series([k in PAIRS for k in keys], index=rows.index) & (rows["status"] == "ok")]
present = sorted({(p, m) for p, m in zip(cells["pretrained"], cells["method"], strict=True)})
print("pairs with a scored cell:", present, "of", PAIRS)
for rule, t in cells.groupby("rule", sort=False):
    print(f"== {rule}: {len(t)} confirmation cells")
    print(fsel.coverage_summary(t).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(t[["method", "outcome", "chosen", "nested_lodo_mae", "iimm_lodo_mae", "coverage"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
b = cells[cells["rule"] == "bonferroni"]
# a cell without IIMM's line counts as not "no worse" (coverage_summary leaves it out of both counts)
worse = b[~fsel.no_worse_than_iimm(b["gain_vs_iimm"])]
print(f"C1 (bonferroni no worse than IIMM-only in every confirmation cell): {len(b) - len(worse)} of {len(b)} ->",
      bool(len(b)) and worse.empty)
