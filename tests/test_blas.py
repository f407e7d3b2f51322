"""core.blas: the BLAS libraries a record names with their thread counts (provenance.blas_threads)."""
from __future__ import annotations

import numpy  # noqa: F401 (loads its BLAS, as a cell's scores do before the record is written)


def test_blas_threads_names_each_loaded_blas_and_its_count(monkeypatch):
    import threadpoolctl

    from core.blas import blas_threads

    threads = blas_threads()  # numpy's BLAS at least
    assert threads and all(isinstance(n, int) and n >= 1 for n in threads.values())
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert set(blas_threads().values()) == {1}
    monkeypatch.setattr(threadpoolctl, "threadpool_info", lambda: 1 / 0)
    assert blas_threads() == {}  # an unreadable build: the record stands without it
