"""Benchmark: exact closed-form IIMM vs the reference study's blocked pairwise computation.

    python -m jobs.bench_metrics [--sizes 20000,100000] [--dim 512] [--classes 100] [--skip-baselines]

For each N: random unit embeddings (seeded, with a shared direction so the
cosines look CLIP-like), then the best-of-3 time of ``core.metrics.iimm``, of one
plain float64 pass ``x.sum(axis=0)``, and one run of the pairwise reference
(float32 Gram blocks of ``--block`` rows, upper triangle summed, plus the full
N x C image-prompt matrix). Then every transferability baseline at N = 20,000.
Goals (SPEC §1 and the task brief): pairwise/iimm >= 100x at N = 20,000, iimm
within 5x of one pass, each baseline <= 30 s with IIMM the cheapest.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from core import metrics, transferability
from jobs.cli import check_at_least, comma_list, job_parser, user_facing, work_begins


def _best(fn: Callable[[], object], repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def make_data(n: int, d: int, c: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 unit image rows (n, d), unit prompts (c, d), labels (n,); built in place to spare memory."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(d).astype(np.float32)
    u *= np.sqrt(d) / np.linalg.norm(u)  # shared direction as long as the noise: cosines ~0.5
    x = rng.standard_normal((n, d), dtype=np.float32)
    x += u
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t = rng.standard_normal((c, d)).astype(np.float32) + 0.5 * u
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return x, t, rng.integers(0, c, n)


def pairwise_iimm(x: np.ndarray, t: np.ndarray, y: np.ndarray, block: int = 4096) -> float:
    """The reference study's way: normalise, blocked float32 Gram matrices, upper triangles, N x C matrix."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    tn = t / np.linalg.norm(t, axis=1, keepdims=True)
    n = len(xn)
    pair_sum = 0.0
    for i in range(0, n, block):
        xi = xn[i:i + block]
        for j in range(i, n, block):
            g = xi @ xn[j:j + block].T
            pair_sum += float(np.triu(g, 1).sum(dtype=np.float64) if i == j else g.sum(dtype=np.float64))
    sims = xn @ tn.T  # N x C
    wrong = float(sims.sum(dtype=np.float64)) - float(sims[np.arange(n), y].sum(dtype=np.float64))
    intra = pair_sum / (n * (n - 1) / 2)
    inter = wrong / (n * (len(tn) - 1))
    return (intra + inter) / 2


def bench_iimm(sizes: list[int], d: int, c: int, block: int, seed: int) -> None:
    print(f"IIMM, d={d}, C={c} (times in seconds; iimm and one pass best of 3, pairwise once)")
    head = (f"{'N':>8} {'iimm':>9} {'one pass':>9} {'iimm/pass':>10} {'pairwise':>9} "
            f"{'pair/iimm':>10} {'|diff|':>9}  goals")
    print(head)
    print("-" * len(head))
    for n in sizes:
        x, t, y = make_data(n, d, c, seed)
        t_fast, value = _best(lambda: metrics.iimm(x, t, y))
        t_pass, _ = _best(lambda: x.sum(axis=0, dtype=np.float64))
        t_pair, ref = _best(lambda: pairwise_iimm(x, t, y, block), repeats=1)
        ratio_pass, speedup = t_fast / t_pass, t_pair / t_fast
        goals = (f"pair/iimm>=100x {'ok' if speedup >= 100 else 'MISS'}, "
                 f"iimm<=5x pass {'ok' if ratio_pass <= 5 else 'MISS'}")
        print(f"{n:>8} {t_fast:>9.4f} {t_pass:>9.4f} {ratio_pass:>9.1f}x {t_pair:>9.2f} "
              f"{speedup:>9.0f}x {abs(value - ref):>9.1e}  {goals}")
        del x, t, y


def _zero_shot_probs(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    logits = 100.0 * (x @ t.T)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


def bench_baselines(n: int, d: int, c: int, seed: int) -> None:
    x, t, y = make_data(n, d, c, seed)
    t_probs, probs = _best(lambda: _zero_shot_probs(x, t), repeats=1)
    print(f"\nTransferability baselines, N={n}, d={d}, C={c} (seconds, one run; goal <= 30 s each)")
    print(f"LEEP/NCE include the {t_probs:.3f} s of turning embeddings into zero-shot probabilities (N x C)")
    print(f"{'name':>10} {'seconds':>9} {'value':>12}  goal")
    rows = [("iimm", lambda: metrics.iimm(x, t, y), 0.0)]
    for name, (fn, _) in transferability.BASELINES.items():  # each on its own input, as all_scores calls it
        extra = t_probs if transferability.baseline_input(fn) == "probs" else 0.0
        rows.append((name, transferability.baseline_call(fn, x, y, probs=probs, label_embeddings=t), extra))
    times = {}
    for name, fn, extra in rows:
        secs, value = _best(fn, repeats=1)
        times[name] = secs + extra
        print(f"{name:>10} {times[name]:>9.3f} {value:>12.5g}  {'ok' if times[name] <= 30 else 'MISS'}")
    cheapest = min(times, key=times.get)
    print(f"cheapest: {cheapest}" + ("" if cheapest == "iimm" else "  (goal: iimm)"))


def _sizes(text: str) -> list[int]:
    """--sizes: comma-separated row counts, each at least 2."""
    try:
        sizes = [int(s) for s in comma_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 2:
        raise argparse.ArgumentTypeError(f"expected integers >= 2, got {text!r}")
    return sizes


@user_facing
def main(argv: list[str] | None = None) -> int:
    p = job_parser("python -m jobs.bench_metrics", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=_sizes, default="20000,100000", help="comma-separated N values")
    p.add_argument("--dim", type=int, default=512, help="embedding width d")
    p.add_argument("--classes", type=int, default=100, help="classes C")
    p.add_argument("--block", type=int, default=4096, help="rows per Gram block of the pairwise reference")
    p.add_argument("--baseline-n", type=int, default=20000, help="N for the transferability baselines")
    p.add_argument("--seed", type=int, default=0, help="seed of the random embeddings")
    p.add_argument("--skip-baselines", action="store_true", help="time IIMM only")
    a = p.parse_args(argv)
    check_at_least(p, a, "dim", "classes", "block", "baseline_n")  # --classes 0 was numpy's "high <= 0"
    check_at_least(p, a, "seed", least=0)
    work_begins()
    bench_iimm(a.sizes, a.dim, a.classes, a.block, a.seed)
    if not a.skip_baselines:
        bench_baselines(a.baseline_n, a.dim, a.classes, a.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
