"""Summary of the pre-registered forecast extension
(jobs/results/world-v2/FORECAST-EXTENSION-PREREGISTRATION.md): models A, D, C, B x orthogonal, CLIP-CITE,
WiSE-FT, read from forecast-rules.csv; a pair is a test pair only with 40 ok tasks, and then each of its scored
outcomes is a test cell. Committed before any of those records existed (the test-pair rule mended after its
first output, see the pre-registration's dated notes). From the repository root:

    python jobs/forecast_extension_summary.py [forecast-rules.csv]
"""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for core
from core import forecast_select as fsel  # noqa: E402
from jobs.cli import script_csv  # noqa: E402

ORDER = [(model, method) for model in ("world-v2-a", "world-v2-d", "world-v2-c", "world-v2-b")
         for method in ("orthogonal", "clip_cite", "wise_ft")]
TASKS = 40
rows = pd.read_csv(script_csv(sys.argv, "jobs/results/world-v2/extension/forecast-rules.csv", __doc__))
pair = pd.Series(list(zip(rows["pretrained"], rows["method"])), index=rows.index)
# a pair's ok tasks are its ID-gain cell's datasets (every ok record has an ID gain); its normalised gain may
# rest on fewer, since it is undefined where zero-shot accuracy is already 100 %
id_rows = rows[pair.isin(ORDER) & (rows["outcome"] == "id_gain") & (rows["status"] == "ok")]
test_pairs = {key for key, n in zip(zip(id_rows["pretrained"], id_rows["method"]), id_rows["n_datasets"]) if n == TASKS}
tested = rows[pair.isin(test_pairs) & (rows["status"] == "ok")]
for key in ORDER:
    print(f"{key[0]} x {key[1]}:", "test pair" if key in test_pairs else f"not run (fewer than {TASKS} ok tasks)")
summaries = {}
for rule, cells in tested.groupby("rule", sort=False):
    print(f"== {rule}: {len(cells)} test cells")
    summaries[rule] = fsel.coverage_summary(cells)
    print(summaries[rule].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(cells[["pretrained", "method", "outcome", "chosen", "nested_lodo_mae", "iimm_lodo_mae", "coverage"]]
          .to_string(index=False, float_format=lambda v: f"{v:.4f}"))
default = tested[tested["rule"] == "bonferroni"]
# a cell without IIMM's line counts as not "no worse" (coverage_summary leaves it out of both counts)
no_worse = int((default["gain_vs_iimm"] >= -1e-12).sum())
print(f"E1 (bonferroni no worse than IIMM-only in every test cell): {no_worse} of {len(default)} ->",
      bool(len(default)) and no_worse == len(default))
coverage = summaries["bonferroni"].set_index("outcome")["coverage"] if len(default) else pd.Series(dtype=float)
per_outcome = coverage.drop("all outcomes", errors="ignore")  # E2 is per outcome; the pooled row is shown only
print("E2 (bonferroni coverage in [0.90, 0.99] per outcome):", coverage.round(4).to_dict(), "->",
      bool(len(per_outcome)) and bool(((per_outcome >= 0.90) & (per_outcome <= 0.99)).all()))
