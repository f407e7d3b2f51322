"""Fresh-cell summary of the pre-registered replication (FORECAST-REPLICATION-PREREGISTRATION.md):
models B, C, D x BitFit, attention, LoRA, CLIP-Adapter, linear probe, from forecast-rules.csv.
Committed before any fresh cell was analysed. From the repository root:

    python jobs/forecast_replication_summary.py [forecast-rules.csv] [pretrained,...]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for core
from core import forecast_select as fsel  # noqa: E402
from jobs.cli import script_table  # noqa: E402
from jobs.forecast_test_summary import READ_COLUMNS  # noqa: E402

rows = script_table(sys.argv, "jobs/results/world-v2/forecast-rules.csv", __doc__, READ_COLUMNS,
                    "forecast-rules table")
fresh = rows[rows["pretrained"].isin(sys.argv[2].split(",") if len(sys.argv) > 2 else ["world-v2-b", "world-v2-c", "world-v2-d"])
             & rows["method"].isin(["bitfit", "attention", "lora", "clip_adapter", "linear_probe"])
             & (rows["status"] == "ok")]
missing = {"bonferroni", "one-se"} - set(fresh["rule"])
if missing:  # the decision rule compares these two
    sys.exit(f"error: no ok fresh cells scored by {', '.join(sorted(missing))} in the rules table")
counts = {}
for rule, t in fresh.groupby("rule", sort=False):
    print(f"== {rule}: {len(t)} fresh cells")
    print(fsel.coverage_summary(t).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    # a cell without IIMM's line counts as not "no worse" (coverage_summary leaves it out of both counts)
    worse = t[~fsel.no_worse_than_iimm(t["gain_vs_iimm"])]
    counts[rule] = len(t) - len(worse)
    print("worse cells:")
    print(worse[["pretrained", "method", "outcome", "chosen", "nested_lodo_mae", "iimm_lodo_mae"]].to_string(index=False))
b = fresh[fresh["rule"] == "bonferroni"]
cov = fsel.coverage_summary(b).set_index("outcome")["coverage"]
print("H1 (bonferroni no worse in every fresh cell):", counts["bonferroni"] == len(b))
print("decision (a) bonferroni no-worse count > one-se:", counts["bonferroni"], ">", counts["one-se"],
      counts["bonferroni"] > counts["one-se"])
print("decision (b) bonferroni coverage in [0.90, 0.99] per outcome:", cov.round(4).to_dict(),
      bool(((cov >= 0.90) & (cov <= 0.99)).all()))
print("DEFAULT ->", "bonferroni" if counts["bonferroni"] > counts["one-se"] and ((cov >= 0.90) & (cov <= 0.99)).all()
      else "one-se (unchanged)")
