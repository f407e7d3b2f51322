"""Helpers shared by the grid runner's test modules (tests/test_grid_*.py) and tests/test_reliability.py: a tiny
grid file, and the grid job as a child process."""
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

TINY_GRID = """
models = ["worldclip-tiny-random"]
datasets = ["chart-trend"]
methods = {methods}
ood = ["scene-kind"]
source = "test"
[train]
optimizer = "adamw"
lr = 1e-3
batch_size = 16
epochs = 1000
max_steps = 2
{extra}
"""


def write_grid(tmp_path: Path, methods='["zero_shot", "bitfit"]', extra="") -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(TINY_GRID.format(methods=methods, extra=extra), encoding="utf-8")
    return path


def runner_command(config: Path, results: Path) -> tuple[list[str], dict[str, str]]:
    """The grid job as a child process (command, environment), as a user would start it."""
    return ([sys.executable, "-m", "jobs.grid", str(config), "--results", str(results)],
            {**os.environ, "PYTHONPATH": str(REPO)})
