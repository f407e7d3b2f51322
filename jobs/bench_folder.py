"""An image folder's memory and time: images read from their files when used vs all held decoded (the old load).

    python -m jobs.bench_folder [--images 1000] [--side 512] [--classes 100] [--model worldclip-tiny]

Writes ``--images`` JPEGs of ``--side`` pixels in ``--classes`` class folders to a temporary folder, loads its
train split with ``core.data.registry.load_split`` (images read when used, ``core.data.lazy``), then embeds it
(``core.embed.embed_dataset``, no cache); then the same with every image decoded into one list first, as
``load_folder`` held them until 2026-12-06. Prints, for each, the resident memory the loaded split holds
(psutil, after the load), the load and embedding times, and the ratios; the two embeddings must be equal.
"""
from __future__ import annotations

import gc
import tempfile
import time
from pathlib import Path

import numpy as np

from jobs.cli import job_parser, user_facing, work_begins


def write_folder(root: Path, n: int, side: int, classes: int) -> None:
    """``n`` JPEG photos-to-be (smooth random colours) of ``side`` px, image i in class folder i % classes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        folder = root / f"class_{i % classes:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        small.resize((side, side), Image.BILINEAR).save(folder / f"{i:06d}.jpg", quality=90)


def measure(loaded, root: Path, eager: bool) -> tuple[float, float, float, np.ndarray]:
    """(MiB the loaded split holds, load seconds, embedding seconds, embeddings)."""
    import psutil

    from core.data.base import LabeledImages
    from core.data.registry import load_split
    from core.embed import embed_dataset

    gc.collect()
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    data = load_split(f"folder:{root}", "train")
    if eager:
        data = LabeledImages(list(data.images), data.labels, data.class_names, data.template, data.name)
    load_s = time.perf_counter() - start
    held = (psutil.Process().memory_info().rss - before) / 2**20
    start = time.perf_counter()
    image = embed_dataset(loaded, data, use_cache=False).image
    return held, load_s, time.perf_counter() - start, image


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_folder", description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=1000, help="images in the folder (80 %% of them are the train split)")
    p.add_argument("--side", type=int, default=512, help="each image's width and height in pixels")
    p.add_argument("--classes", type=int, default=100, help="class folders")
    p.add_argument("--model", default="worldclip-tiny", help="the model that embeds the images")
    args = p.parse_args(argv)
    if args.images < 2 * args.classes or args.classes < 2 or args.side < 1:
        p.error("need --classes >= 2, --images >= 2 x --classes and --side >= 1")
    from core.models import check_model, load_model

    check_model(args.model)
    work_begins()
    loaded = load_model(args.model)
    with tempfile.TemporaryDirectory(prefix="iimm-bench-folder-") as tmp:
        write_folder(Path(tmp), args.images, args.side, args.classes)
        lazy = measure(loaded, Path(tmp), eager=False)
        eager = measure(loaded, Path(tmp), eager=True)
    if not np.array_equal(lazy[3], eager[3]):
        raise RuntimeError("the embeddings of the lazily read folder differ from the eager ones")
    print(f"{args.images} images of {args.side} px in {args.classes} classes, model {args.model}")
    print(f"{'':22s} {'held MiB':>9s} {'load s':>7s} {'embed s':>8s}")
    for name, (held, load_s, embed_s, _) in (("read when used (now)", lazy), ("all decoded (old)", eager)):
        print(f"{name:22s} {held:9.0f} {load_s:7.2f} {embed_s:8.2f}")
    print(f"ratio now/old: held memory {lazy[0] / max(eager[0], 1.0):.3f}, load {lazy[1] / eager[1]:.2f}, "
          f"embed {lazy[2] / eager[2]:.2f}; embeddings equal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
