"""What a record says about the machine that ran it: the CPU (model name and a signature that tells apart hosts
named alike), the environment variables that choose the numeric kernels, package versions, and the peak memory of
one cell. ``core.experiment`` re-exports every name here (records and jobs import them from there).
"""
from __future__ import annotations

import hashlib
import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import Mapping

from core.garbage import peak_resident_mb


def _cpuinfo_fields(path: str = "/proc/cpuinfo") -> dict[str, str]:
    """Each field of Linux's cpuinfo at its first occurrence (the first processor's), {} when unreadable."""
    fields: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep:
                    fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else platform.processor(); "unknown"): a record measured on
    other hardware can round differently (a shipped CLIP-Adapter record reproduced everywhere but in 5 OOD
    accuracies, by one or two images, even under its own code revision)."""
    fields = _cpuinfo_fields()
    if "model name" in fields:
        return fields["model name"] or "unknown"
    return platform.processor() or "unknown"


def cpu_signature(cpuinfo: str = "/proc/cpuinfo", cache_dir: str = "/sys/devices/system/cpu/cpu0/cache") -> str:
    """What tells apart virtual hosts that share one model name: the CPU's family/model/stepping, its cache
    sizes and a short hash of its feature flags, e.g. ``"6/167/1; L1d 48K L1i 64K L2 2048K L3 491520K; flags
    3f2a9c10"`` (Linux; a part it cannot read is left out, "unknown" when none is). Kernel libraries block
    their matrix products by cache size, so hosts with one instruction set can still round differently;
    a shipped CLIP-Adapter record reproduced differently on two days on hosts named alike."""
    fields = _cpuinfo_fields(cpuinfo)
    parts = []
    if all(k in fields for k in ("cpu family", "model", "stepping")):
        parts.append(f"{fields['cpu family']}/{fields['model']}/{fields['stepping']}")
    caches = []
    for index in sorted(Path(cache_dir).glob("index*")):
        try:
            level, kind, size = ((index / name).read_text().strip() for name in ("level", "type", "size"))
        except OSError:
            continue
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        caches.append(f"L{level}{suffix} {size}")
    if caches:
        parts.append(" ".join(caches))
    if fields.get("flags"):
        parts.append("flags " + hashlib.sha1(" ".join(sorted(fields["flags"].split())).encode()).hexdigest()[:8])
    return "; ".join(parts) or "unknown"


# environment variables that choose the CPU kernels' code path or threads, so change how reductions round:
# forcing MKL onto its AVX2 kernels turns one shipped CLIP-Adapter cell's task accuracy 49.375 into 49.625.
# OPENBLAS_NUM_THREADS: NumPy's BLAS (not torch's threads) computes the transferability baselines; EMMS and SFDA
# of one train split differ with 1 and 2 BLAS threads (e.g. EMMS -23523.09063774359 / -23523.090637736335)
NUMERICS_VARIABLES = ("MKL_ENABLE_INSTRUCTIONS", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA",
                      "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def numerics_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Those of :data:`NUMERICS_VARIABLES` that are set (in ``environ``, default ``os.environ``), by name;
    {} when none is."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in NUMERICS_VARIABLES if name in environ}


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Python's version and those of torch, open_clip_torch, peft, numpy, torchvision ("missing" where not
    installed), cached per process."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("torch", "open_clip_torch", "peft", "numpy", "torchvision"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


def start_peak_window() -> str:
    """Start measuring peak memory for one cell: "cell" where the kernel's peak (VmHWM) could be reset
    (Linux), else "process" (the process's peak so far: cells run one after another in a process, so a
    later cell would report an earlier one's peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # 5: reset the peak resident set size to the current one
        return "cell"
    except OSError:
        return "process"


def peak_rss_mb(scope: str) -> float:
    """Peak resident memory (MB) since :func:`start_peak_window` ("cell"), or of the process ("process")."""
    if scope == "cell":
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024.0
        except (OSError, ValueError, IndexError):
            pass
    return peak_resident_mb()
