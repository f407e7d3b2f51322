"""``python -m jobs.grid``'s command line (:func:`parse_args`) and its ``--methods``/``--seeds``/``--models``
selection of cells (:func:`select_cells`); ``jobs.grid`` re-exports both. The checks of option values that need
the runner's state stay in ``jobs.grid._option_problem``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from core.grid_config import MAX_CELLS, Grid, GridConfigError
from jobs.cli import Once, comma_list, did_you_mean, job_parser
from jobs.grid_slurm import DEFAULT_PARALLELISM, DEFAULT_TIMEOUT_MIN


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = job_parser("python -m jobs.grid", description="Run a fine-tuning grid (TOML).",
                   epilog="Exit codes: 0 every cell has its record (failed ones included); 1 a cluster "
                          "task ended without a result, or a system error (e.g. a full disk) "
                          "stopped the grid after it began; 2 a mistake found before any cell ran; 3 another "
                          "runner still holds some cells (re-run later); 130 interrupted (Ctrl-C or "
                          "SIGTERM; workers and queued cells stop too).")
    p.add_argument("config", type=Path, help="grid TOML file, e.g. jobs/configs/smoke.toml")
    p.add_argument("--results", type=Path, required=True, action=Once,
                   help="folder for the result records (one: the other jobs read from several)")
    p.add_argument("--cache", type=Path, default=None,
                   help="embedding cache folder (default: $IIMM_CACHE, else .cache/embeddings)")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: one per GPU, else 1)")
    p.add_argument("--executor", choices=("local", "slurm", "submitit-local", "submitit-debug"), default="local",
                   help="where cells run: here (local), a SLURM array, or submitit's local or debug executor")
    p.add_argument("--slurm-partition", default=None, help="SLURM: the partition to submit to")
    p.add_argument("--timeout-min", type=int, default=None,
                   help=f"per-task time limit of a submitit executor (default {DEFAULT_TIMEOUT_MIN})")
    p.add_argument("--parallelism", type=int, default=None,
                   help=f"max array tasks running at once with a submitit executor (default {DEFAULT_PARALLELISM})")
    p.add_argument("--gpus-per-task", type=int, default=None, help="SLURM: GPUs per array task (default 0)")
    p.add_argument("--cpus-per-task", type=int, default=None, help="SLURM: CPUs per array task")
    p.add_argument("--wait", action="store_true", help="with a submitit executor: wait for the array")
    p.add_argument("--retry-failed", action="store_true", help="re-run cells whose record says failed")
    p.add_argument("--dry-run", action="store_true", help="list the cells and exit")
    p.add_argument("--max-cells", type=int, default=MAX_CELLS,
                   help=f"refuse grids with more cells than this (default {MAX_CELLS:,})")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per CPU worker (default: the CPU cores divided among the workers)")
    p.add_argument("--methods", default=None, help="run only these methods' cells (comma-separated); "
                   "the ids are those of the whole grid, so the rest can be run later")
    p.add_argument("--seeds", default=None, help="run only these seeds' cells (comma-separated)")
    p.add_argument("--models", default=None, help="run only these models' cells (comma-separated)")
    return p.parse_args(argv)


def select_cells(grid: Grid, methods: str | None, seeds: str | None, models: str | None = None) -> Grid:
    """The grid restricted to some methods, seeds and/or models; GridConfigError naming any the grid lacks."""
    cells = grid.cells
    for key, wanted in (("method", methods), ("seed", seeds), ("model", models)):
        if wanted is None:
            continue
        try:
            values = [int(v) if key == "seed" else v for v in comma_list(wanted)]
        except ValueError as exc:
            raise GridConfigError(f"--{key}s must be comma-separated integers, got {wanted!r}") from exc
        have = sorted({c[key] for c in grid.cells}, key=str)
        missing = sorted(set(values) - set(have), key=str)
        if missing or not values:  # said as the other jobs say an unknown name: what it has, the closest one
            named = ", ".join(f"{v!r}{did_you_mean(v, have)}" for v in missing) if missing else repr(wanted)
            raise GridConfigError(f"--{key}s names {named}, not in grid {grid.name!r}; "
                                  f"its {key}s: {', '.join(map(str, have))}")
        cells = [c for c in cells if c[key] in values]
    return Grid(grid.name, cells, grid.source)


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.grid_options", "python -m jobs.grid --help")
