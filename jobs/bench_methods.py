"""Benchmark: core.train's loop vs a bare PyTorch loop, per fine-tuning method and model.

    python -m jobs.bench_methods [--models worldclip-tiny-random,ViT-B-32-random] [--steps 5] [--batch 32]
                                 [--large-steps 1] [--large-batch 4] [--repeats 5] [--large-repeats 1]
                                 [--threads 1]
                                 [--methods a,b] [--skip-counts]

For each model and trained method: build it (a fresh copy of the model), one untimed warm-up step,
then ``--steps`` optimizer steps through ``core.train.train`` (SGD, no validation) and the same number
through a bare loop doing the same work (same images_to_tensor batches, train_transform, forward,
cross-entropy + the method's extra loss, zero_grad/backward/step on the same trainable parameters).
Throughput is samples/s measured around each whole run (best of ``--repeats``, core and bare runs
interleaved); ratio = core time / bare time (goal <= 1.3).
Models above 50 M parameters use ``--large-steps``/``--large-batch`` (default 1 step of 4: ViT-B/32 steps
take seconds on CPU, so loop overhead is negligible there and the default run stays under ~5 minutes).
Memory: peak RSS of the process minus RSS before the method was built (after gc and glibc
malloc_trim), sampled every 5 ms by psutil from build to the end of both runs, so it covers the model
copy, optimizer state, activations and any frozen teacher (CPU only). Then the trainable-parameter
counts on ViT-B/32 against the registry's stated counts (``core.method_info.MethodInfo.trainable_vit_b32``;
SPEC §4 gives BitFit 168,960 and attention 30,670,848). peft methods (``--methods peft_lora,peft_dora,...``) are
benchmarked the same way: the bare loop runs the same peft-adapted module.
"""
from __future__ import annotations

import ctypes
import gc
import threading
import time

import numpy as np
import psutil
import torch
import torch.nn.functional as F

from core.data.base import LabeledImages
from core.imaging import images_to_tensor
from core.method_info import method_info
from core.methods import METHODS, build_method, count_parameters
from core.models import check_model, load_model
from core.train import TrainRecipe, make_optimizer, train
from jobs.cli import check_at_least, comma_list, job_parser, user_facing, work_begins

SPEC_COUNTS = {"bitfit": 168_960, "attention": 30_670_848}
CLASSES = ["cat", "dog", "car", "tree", "boat", "house", "bird", "flower"]


class PeakRSS:
    """Samples this process's RSS every ``interval`` seconds in a thread; ``peak`` is the maximum."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc, self.interval, self._stop = psutil.Process(), interval, threading.Event()
        self.start_rss = self.peak = self.proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def bare_loop(module, data: LabeledImages, recipe: TrainRecipe, steps: int) -> None:
    """The reference: the same per-step work as core.train, nothing else."""
    params = module.trainable_parameters()
    optimizer = make_optimizer(params, recipe)
    labels = torch.from_numpy(data.labels)
    order = np.random.default_rng(0).permutation(len(data))
    module.train()
    for step in range(steps):
        index = order[(step * recipe.batch_size) % len(data):][:recipe.batch_size]
        x = module.train_transform(images_to_tensor(data.images, index, module.loaded))
        y = labels[index]
        logits = module(x)
        loss = F.cross_entropy(logits, y)
        extra = module.extra_loss(x, y, logits)
        if extra is not None:
            loss = loss + extra
        loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS baselines are honest."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def bench_one(loaded, method: str, data: LabeledImages, steps: int, batch: int, repeats: int) -> dict:
    release_memory()
    recipe = TrainRecipe(lr=1e-6, batch_size=batch, max_steps=steps, epochs=None, val_fraction=0.0,
                         best_checkpoint=False)
    t_core = t_bare = float("inf")
    with PeakRSS() as mem:
        module = build_method(method, loaded, data.class_names, data.template)
        trainable, _ = count_parameters(module)
        bare_loop(module, data, recipe, 1)  # warm-up: allocator, kernels, caches
        for _ in range(repeats):  # best of `repeats`, runs interleaved (the machine is shared)
            t0 = time.perf_counter()
            train(module, data, recipe)
            t_core = min(t_core, time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare_loop(module, data, recipe, steps)
            t_bare = min(t_bare, time.perf_counter() - t0)
    del module
    return {"model": loaded.spec.key, "method": method, "trainable": trainable, "steps": steps, "batch": batch,
            "core_sps": steps * batch / t_core, "bare_sps": steps * batch / t_bare, "ratio": t_core / t_bare,
            "peak_mb": (mem.peak - mem.start_rss) / 2**20}


def synthetic(n: int, size: int) -> LabeledImages:
    rng = np.random.default_rng(0)
    return LabeledImages(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
                         rng.integers(0, len(CLASSES), n), CLASSES, "a photo of a {c}", "bench")


def report(rows: list[dict]) -> None:
    head = f"{'model':<22} {'method':<15} {'trainable':>12} {'bs':>3} {'core s/s':>9} {'bare s/s':>9} " \
           f"{'ratio':>6} {'peak RSS MB':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<22} {r['method']:<15} {r['trainable']:>12,} {r['batch']:>3} {r['core_sps']:>9.1f} "
              f"{r['bare_sps']:>9.1f} {r['ratio']:>5.2f}x {r['peak_mb']:>11.0f}"
              + ("" if r["ratio"] <= 1.3 else "  (goal <= 1.3x)"))


def check_counts(rows: list[dict]) -> None:
    """Trainable counts on ViT-B/32 vs SPEC, reusing the benchmark rows when ViT-B/32 was benchmarked."""
    counts = {r["method"]: r["trainable"] for r in rows if r["model"] == "ViT-B-32-random"}
    methods = [m for m, e in METHODS.items() if not e.needs_config]
    missing = [m for m in methods if m not in counts]
    if missing:
        loaded = load_model("ViT-B-32-random")
        for method in missing:
            counts[method] = count_parameters(build_method(method, loaded, CLASSES, "a photo of a {c}"))[0]
    print("\nTrainable parameters on ViT-B/32 (stated in the registry; SPEC §4 where given)")
    for method in methods:
        stated, spec = method_info(method).trainable_vit_b32, SPEC_COUNTS.get(method)
        verdict = "" if stated is None else f"  stated {stated:,}: {'ok' if counts[method] == stated else 'MISMATCH'}"
        verdict += "" if spec is None else f"  SPEC {spec:,}: {'ok' if counts[method] == spec else 'MISMATCH'}"
        print(f"  {method:<15} {counts[method]:>12,}{verdict}")


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.bench_methods", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="worldclip-tiny-random,ViT-B-32-random", help="comma-separated models")
    parser.add_argument("--methods", default=",".join(n for n, e in METHODS.items()
                                                      if e.trains and not e.needs_config),
                        help="comma-separated methods (default: every trained method that needs no config)")
    parser.add_argument("--steps", type=int, default=5, help="optimizer steps per run")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--large-steps", type=int, default=1, help="optimizer steps per run for models > 50 M")
    parser.add_argument("--large-batch", type=int, default=4, help="batch size for models > 50 M")
    parser.add_argument("--repeats", type=int, default=5, help="best-of repeats")
    parser.add_argument("--large-repeats", type=int, default=1, help="best-of repeats for models > 50 M")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--skip-counts", action="store_true",
                        help="skip the check of trainable counts on ViT-B/32 against the registry")
    args = parser.parse_args(argv)
    # as jobs.grid and jobs.pretrain (--threads 0 was torch's traceback, exit 1)
    check_at_least(parser, args, "steps", "batch", "large_steps", "large_batch", "repeats", "large_repeats", "threads")
    unknown = [m for m in comma_list(args.methods, "--methods") if m not in METHODS]
    if unknown:  # before any model is loaded
        parser.error(f"--methods: unknown method(s) {', '.join(unknown)}; known: {', '.join(sorted(METHODS))}")
    for name in comma_list(args.models, "--models"):
        check_model(name)  # an unknown name is refused before the first model is timed
    work_begins()
    torch.set_num_threads(args.threads)
    rows = []
    for name in comma_list(args.models):
        loaded = load_model(name)
        large = count_parameters(loaded.model)[1] > 50_000_000
        steps, batch, repeats = ((args.large_steps, args.large_batch, args.large_repeats) if large
                                 else (args.steps, args.batch, args.repeats))
        data = synthetic(max(64, 2 * steps * batch), loaded.image_size)
        for method in comma_list(args.methods):
            rows.append(bench_one(loaded, method, data, steps, batch, repeats))
        del loaded
    print(f"Training throughput, core.train vs bare loop ({args.threads} thread(s); samples/s over whole runs)")
    report(rows)
    if not args.skip_counts:
        check_counts(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
