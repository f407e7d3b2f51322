"""Outcome, time and peak memory of the upload loaders on every hostile case, each in a fresh process.

Run: ``python -m tests.measure_hostile [case ...]``. Peak RSS comes from each child's own rusage
(os.wait4). Linux carries the parent's RSS high-water mark into a forked child, so this script stays
lean (numpy, PIL and the corpus builder run in subprocesses only) and the floor is the baseline row:
a child that only imports the loader. The difference is what parsing the upload cost.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = r"""
import json, sys
from tests.hostile_uploads import build_corpus
cases = build_corpus(sys.argv[1], sys.argv[2:] or None)
print(json.dumps([[c.name, c.kind, c.expect, str(c.path)] for c in cases]))
"""
CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")  # PIL's own bomb warning; the outcome is what we report
from core.upload import UploadError, load_embeddings_npz, load_image_folder_zip
kind, path = sys.argv[1], sys.argv[2]
start, out = time.perf_counter(), {}
try:
    if kind == "npz":
        load_embeddings_npz(path)
        out["outcome"] = "ok"
    elif kind == "zip":
        sample = load_image_folder_zip(path)
        out["outcome"] = "skip" if sample.skipped else "ok"
        out["detail"] = "; ".join(f"{m}: {r}" for m, r in sample.skipped[:1]) or sample.summary()
    else:
        out["outcome"] = "-"
except UploadError as e:
    out["outcome"], out["detail"] = "error", str(e)
out["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def measure(kind: str, path: str) -> dict:
    """Run one load in a fresh interpreter; its result plus the child's peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, path], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    text = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
    proc.returncode = os.waitstatus_to_exitcode(status)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    try:
        result = json.loads(last)
    except json.JSONDecodeError:
        result = {"outcome": f"CRASH rc={proc.returncode}", "detail": last[-120:], "seconds": float("nan")}
    result["peak_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main(names: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        built = subprocess.run([sys.executable, "-c", BUILD, tmp, *names], cwd=ROOT, check=True,
                               capture_output=True, text=True)
        cases = json.loads(built.stdout)
        base = measure("none", "-")["peak_mib"]
        print(f"baseline (python + numpy + PIL + core.upload imported): peak RSS {base:.0f} MiB\n")
        print(f"{'case':40} {'expect':6} {'got':6} {'ms':>7} {'peak MiB':>8} {'+MiB':>6}  detail")
        worst, mismatches = 0.0, 0
        for name, kind, expect, path in cases:
            r = measure(kind, path)
            worst = max(worst, r["peak_mib"] - base)
            mismatches += r["outcome"] != expect
            flag = "" if r["outcome"] == expect else "  <-- UNEXPECTED"
            detail = r.get("detail", "").replace("\n", " | ")[:90]
            print(f"{name:40} {expect:6} {r['outcome']:6} {1000 * r['seconds']:7.1f} "
                  f"{r['peak_mib']:8.0f} {r['peak_mib'] - base:6.0f}  {detail}{flag}")
    print(f"\n{len(cases)} cases, {mismatches} unexpected outcomes, worst extra peak RSS {worst:.0f} MiB")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
