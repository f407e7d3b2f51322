"""Models loaded in one background thread and kept for a server's visitors, within a bound.

Why a background thread: importing torch and open_clip and building a model take most of a first
forecast, and a visitor choosing a file hides them. Why a bound: every model a visitor's link named
stayed loaded for the life of the process, and a link alone (``?fc_model=ViT-B-32-random``) built one of
604 MB, so visitors' links held GBs. The toy models (about 58 MB each) always stay, so the default is
never queued again behind other visitors' downloads; of the others only the ``max_large`` asked for last.
The loader calls no Streamlit API.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


def _load(key: str) -> Any:
    """Registry model ``key``; a random-weight one drawn under seed 0, so a model loaded again after leaving
    the pool is the same network (the grid's seed-0 one), not another draw that would change a forecast."""
    from core.models import load_model  # torch + open_clip: imported only when a model is needed

    return load_model(key, init_seed=0)


def is_toy(key: str) -> bool:
    """Whether registry model ``key`` is one of the project's small offline models (False for a key the
    registry does not know: its load fails and it is treated as large, so it never stays)."""
    from core.models import spec_for

    try:
        return spec_for(key).family == "tiny"
    except ValueError:
        return False


class ModelPool:
    """Loads registry models in one background thread and keeps the toy ones and the ``max_large`` others
    asked for last. ``load``: key -> model (default :func:`core.models.load_model`)."""

    def __init__(self, *, max_large: int = 2, load: Callable[[str], Any] = _load) -> None:
        if isinstance(max_large, bool) or not isinstance(max_large, int) or max_large < 1:
            raise ValueError(f"max_large must be a whole number of models, at least 1; got {max_large!r}")
        self.max_large = max_large
        self._load = load
        self._futures: OrderedDict[str, Future] = OrderedDict()
        self._lock = threading.Lock()
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-warm-up")

    def warm(self, key: str) -> Future:
        """The loading (or loaded) model ``key``; a load that failed is started again (and dropped when another
        model is asked for). A forecast running on a model dropped meanwhile keeps it until it ends (it holds
        the model itself)."""
        with self._lock:
            for old in [k for k, f in self._futures.items() if k != key and f.done() and f.exception() is not None]:
                del self._futures[old]  # a failed load holds only its error: it must not take a loaded model's place
            future = self._futures.get(key)
            if future is None or (future.done() and future.exception() is not None):
                future = self._futures[key] = self._loader.submit(self._load, key)
            self._futures.move_to_end(key)
            large = [k for k in self._futures if not is_toy(k)]
            for old in large[:-self.max_large]:
                del self._futures[old]
            return future

    def held(self) -> list[str]:
        """The keys kept now, least recently asked for first."""
        with self._lock:
            return list(self._futures)
