"""How many threads the BLAS libraries loaded in this process use: NumPy's and SciPy's BLAS (not torch's threads)
compute the transferability baselines, and EMMS and SFDA of one train split differ in their last digits with 1 and
2 BLAS threads. ``OPENBLAS_NUM_THREADS`` names the count only when it is set; unset, the library picks one (the
cores it sees), which a record did not say."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def blas_threads() -> dict[str, int]:
    """Each BLAS library loaded in this process, by its file's prefix ('libscipy_openblas', 'libmkl_rt'), -> the
    threads it uses now; {} where none is loaded or threadpoolctl (a dependency of scikit-learn) cannot tell.
    Libraries load on first use: call it after the numerical work, to name those that did it."""
    try:
        from threadpoolctl import threadpool_info

        found = threadpool_info()
    except Exception as exc:  # noqa: BLE001 (an unusual build it cannot read): the record stands without it
        log.debug("could not list BLAS libraries: %s", exc)
        return {}
    return {str(lib.get("prefix") or lib.get("internal_api")): int(lib["num_threads"])
            for lib in sorted(found, key=lambda lib: str(lib.get("prefix")))
            if lib.get("user_api") == "blas" and isinstance(lib.get("num_threads"), int)}
