"""CPU time and extra peak memory of one embeddings-only forecast at the upload caps.

Run: ``python -m tests.measure_forecast_bounds [N d C]`` (default: the UploadLimits caps for .npz, i.e.
4,000 rows, width 1,152, 250 classes). Random embeddings; the reference runs are the app's store.
This is the cost the .npz caps in core/upload/limits.py were chosen from. The optional MiniLM text model
(EMMS's second label source) is loaded first and reported apart: a server loads it once, on its first
forecast, and keeps it, so the forecast's own figures are what every later request costs.
"""
from __future__ import annotations

import resource
import sys
import time

import numpy as np


def main(argv: list[str]) -> int:
    from core import predict, store
    from core.upload import DEFAULT_LIMITS as L

    n, d, c = (int(a) for a in argv) if argv else (L.max_embedding_rows, L.max_embedding_dim,
                                                    L.max_embedding_classes)
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(c, d)).astype(np.float32)
    runs = store.load_runs()
    from core.transferability.label_sources import minilm_available

    rss, wall = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    loaded = minilm_available()
    print(f"MiniLM {'loaded' if loaded else 'not installed'}: {time.perf_counter() - wall:.1f} s, "
          f"+{(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024:.0f} MiB (once per process)")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    predict.forecast_for_embeddings(x, t, np.arange(n) % c, [f"c{i}" for i in range(c)], runs,
                                    model="ViT-B-32", pretrained="openai", model_label="bound check",
                                    random_weights=False)
    extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    print(f"N={n} d={d} C={c}: CPU {time.process_time() - cpu:.1f} s, wall {time.perf_counter() - wall:.1f} s, "
          f"extra peak RSS {extra:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
