"""The README's Python blocks run as written: a user who copies one gets what the README says."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(encoding="utf-8"), re.S | re.M)


def test_the_readme_has_a_python_example_of_the_forecast():
    assert BLOCKS and any("forecast_for_sample" in block for block in BLOCKS)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_each_readme_python_block_runs(block, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "IIMM_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", block], cwd=REPO, env=env, capture_output=True, text=True,
                          encoding="utf-8", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    if "forecast_for_sample" in block:  # the example's sample, the shipped model and runs: its IIMM and methods
        assert re.search(r"^IIMM 0\.\d{3}$", done.stdout, re.M), done.stdout[:500]
        assert "CLIP-Adapter" in done.stdout and "Full fine-tuning" in done.stdout
