"""Summary of the pre-registered forecast extension
(jobs/results/world-v2/FORECAST-EXTENSION-PREREGISTRATION.md): models A, D, C, B x orthogonal, CLIP-CITE,
WiSE-FT, read from forecast-rules.csv; a pair is a test pair only with 40 ok tasks, and then each of its scored
outcomes is a test cell. Committed before any of those records existed (the test-pair rule mended after its
first output, see the pre-registration's dated notes). From the repository root:

    python jobs/forecast_extension_summary.py [forecast-rules.csv]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for core
from jobs.cli import script_table  # noqa: E402
from jobs.forecast_test_summary import READ_COLUMNS, summary_lines  # noqa: E402

ORDER = [(model, method) for model in ("world-v2-a", "world-v2-d", "world-v2-c", "world-v2-b")
         for method in ("orthogonal", "clip_cite", "wise_ft")]
TASKS = 40
rows = script_table(sys.argv, "jobs/results/world-v2/extension/forecast-rules.csv", __doc__, READ_COLUMNS,
                    "forecast-rules table")
print("\n".join(summary_lines(rows, ORDER, tasks=TASKS, criteria="E")))
