"""Exact-duplicate images within and across datasets' splits, and optionally in a shipped model's pretraining data.

    python -m jobs.split_audit                                  # both shipped grids: tasks and OOD panels
    python -m jobs.split_audit folder:/data/mine                # a folder's train and test splits
    python -m jobs.split_audit shape-kind letters --ood scene-kind
    python -m jobs.split_audit --grid jobs/configs/default.toml --pretraining worldclip-tiny --steps 200

Each dataset's train and test splits, and each OOD set's test split, are hashed by their decoded pixels
(core.data.overlap): the report names every split that repeats an image and every pair of splits that share
one (an OOD test image in a training split would understate forgetting; a test image in its train split would
inflate accuracy). With --pretraining, the first --steps batches that jobs.pretrain draws for that model
(seed 0, batch 256, as the shipped weights were trained) are checked too: all 2,000 batches take several
minutes and up to 2 GB of memory. Exact pixels only: a re-rendered or re-augmented copy of the same source is
not found. Without datasets or --grid, the two shipped grids (jobs/configs/default.toml and world-v2.toml)
are checked, about two minutes on two cores.

Exit codes (jobs.cli): 0 no duplicate found; 1 duplicates found (listed); 2 an unknown dataset, model or
unreadable grid file.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from core.data import world2
from core.data.overlap import image_hashes, overlaps_of_hashes
from core.data.registry import get_dataset, load_split
from core.data.world import pretraining_batch
from core.grid_config import load_grid
from jobs.cli import EXIT_FAILED, job_parser, quiet_libraries, user_facing, work_begins

SHIPPED_GRIDS = tuple(Path(__file__).resolve().parent / "configs" / f for f in ("default.toml", "world-v2.toml"))
SHIPPED_STEPS, SHIPPED_BATCH, SHIPPED_SEED = 2000, 256, 0
PROGRESS_EVERY_S = 10.0  # the pretraining check takes minutes: say how far it is at most this often
log = logging.getLogger("split_audit")


def datasets_of(grid_paths: list[Path]) -> tuple[list[str], list[str]]:
    """(fine-tuning datasets, OOD sets) named by the grid files, each once, in their order."""
    datasets: dict[str, None] = {}
    ood: dict[str, None] = {}
    for path in grid_paths:
        for cell in load_grid(path).cells:
            datasets.setdefault(cell["dataset"])
            for name in cell.get("ood", []):
                ood.setdefault(name)
    return list(datasets), [o for o in ood if o not in datasets]


def pretraining_hashes(model: str, steps: int) -> list[bytes]:
    """Digests of the images of the first ``steps`` pretraining batches of ``model``'s recipe."""
    from jobs.pretrain import RECIPES

    world, mix, _ = RECIPES[model]
    out: list[bytes] = []
    last = time.monotonic()
    for step in range(steps):
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            log.warning("pretraining images: %d of %d batches hashed", step, steps)
            last = time.monotonic()
        if world == "v1":
            images = pretraining_batch(SHIPPED_SEED, step, SHIPPED_BATCH)[0]
        else:
            images = world2.pretraining_batch(world2.mix_by_name(mix), SHIPPED_SEED, step, SHIPPED_BATCH)[0]
        out += image_hashes(images)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = job_parser("python -m jobs.split_audit", description=__doc__.split("\n")[0])
    p.add_argument("datasets", nargs="*", metavar="DATASET",
                   help="datasets whose train and test splits are checked (registry names or folder:PATH)")
    p.add_argument("--ood", nargs="+", default=[], metavar="NAME",
                   help="OOD sets: their test split is checked against every dataset's splits")
    p.add_argument("--grid", type=Path, action="append", default=[], metavar="FILE",
                   help="take the datasets and OOD sets of this grid file (repeatable)")
    p.add_argument("--pretraining", default=None, metavar="MODEL",
                   help="also check against this shipped model's pretraining images (a model of jobs.pretrain's "
                        "RECIPES, e.g. worldclip-tiny)")
    p.add_argument("--steps", type=int, default=SHIPPED_STEPS,
                   help=f"pretraining batches to check with --pretraining (default {SHIPPED_STEPS}: all the "
                        "shipped weights saw, several minutes)")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.pretraining is not None:
        from jobs.pretrain import RECIPES  # torch comes with it: only when asked for (--help took 3.5 s)

        if args.pretraining not in RECIPES:
            p.error(f"--pretraining {args.pretraining!r}: not a shipped model; use one of {', '.join(sorted(RECIPES))}")
    if not (args.datasets or args.ood or args.grid):
        args.grid = list(SHIPPED_GRIDS)
    return args


@user_facing
def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    quiet_libraries()
    args = parse_args(argv)
    from_grids, ood_of_grids = datasets_of(args.grid)
    datasets = list(dict.fromkeys(args.datasets + from_grids))
    ood = [o for o in dict.fromkeys(args.ood + ood_of_grids) if o not in datasets]
    for name in datasets + ood:
        get_dataset(name)  # an unknown name is refused before anything is generated
    work_begins()
    hashes: dict[str, list[bytes]] = {}
    if args.pretraining:
        hashes[f"pretraining:{args.pretraining}[:{args.steps}]"] = pretraining_hashes(args.pretraining, args.steps)
    splits = [(name, split, f"{name}/{split}") for name in datasets for split in ("train", "test")]
    splits += [(name, "test", f"{name}/test (OOD)") for name in ood]
    last = time.monotonic()
    for done, (name, split, label) in enumerate(splits):
        if time.monotonic() - last >= PROGRESS_EVERY_S:
            log.warning("splits: %d of %d hashed", done, len(splits))
            last = time.monotonic()
        hashes[label] = image_hashes(load_split(name, split))
    report = overlaps_of_hashes(hashes)
    print("\n".join(report.lines()))
    return 0 if report.clean else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
