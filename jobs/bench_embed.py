"""Embedding pipeline throughput vs the raw forward pass of the same model, on CPU.

    python -m jobs.bench_embed [--models worldclip-tiny,ViT-B-32-random] [--images 2048] [--batch 256]

Pipeline = core.embed.embed_images on uint8 images (N, 32, 32, 3): batching, resize to the
model's input size, normalisation, forward, L2-normalisation, copy to numpy. Raw = the
model's encode_image on pre-made, already-normalised tensors of the final size, same batches.
Goal: pipeline >= 85 % of raw throughput.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from core.embed import embed_images
from core.models import check_model, load_model, spec_for
from jobs.cli import check_at_least, comma_list, job_parser, user_facing, work_begins


def raw_forward(loaded, n: int, batch: int) -> float:
    x = torch.randn(batch, 3, loaded.image_size, loaded.image_size)
    loaded.model.eval()
    start = time.perf_counter()
    with torch.inference_mode():
        for s in range(0, n, batch):
            loaded.model.encode_image(x[: min(batch, n - s)])
    return n / (time.perf_counter() - start)


def pipeline(loaded, images: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    embed_images(loaded, images, batch_size=batch)
    return len(images) / (time.perf_counter() - start)


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_embed", description=__doc__.split("\n")[0])
    p.add_argument("--models", default="worldclip-tiny,ViT-B-32-random", help="comma-separated models to time")
    p.add_argument("--images", type=int, default=2048, help="images for the tiny model")
    p.add_argument("--big-images", type=int, default=128, help="images for a ViT-B-32-sized model")
    p.add_argument("--batch", type=int, default=256, help="batch size for the tiny model (larger ones use 32)")
    p.add_argument("--repeats", type=int, default=3, help="best-of repeats")
    args = p.parse_args(argv)
    check_at_least(p, args, "images", "big_images", "batch", "repeats")  # 0 was "max() arg is an empty sequence"
    for name in comma_list(args.models, "--models"):
        check_model(name)  # an unknown name is refused before any model is timed
    work_begins()
    rng = np.random.default_rng(0)
    print(f"torch threads: {torch.get_num_threads()}")
    print(f"{'model':34s} {'images':>7s} {'pipeline img/s':>15s} {'raw img/s':>10s} {'ratio':>7s}  goal >= 85 %")
    for name in comma_list(args.models):
        loaded = load_model(name)
        n = args.images if loaded.image_size <= 64 else args.big_images
        batch = min(args.batch, n) if loaded.image_size <= 64 else min(32, n)
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        pipeline(loaded, images[:batch], batch)  # warm-up
        raw = max(raw_forward(loaded, n, batch) for _ in range(args.repeats))
        pipe = max(pipeline(loaded, images, batch) for _ in range(args.repeats))
        ratio = pipe / raw
        print(f"{spec_for(name).label:34s} {n:7d} {pipe:15.1f} {raw:10.1f} {ratio:6.0%}  "
              f"{'ok' if ratio >= 0.85 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
