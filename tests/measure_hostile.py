"""Outcome, time and peak memory of the upload loaders and of the store's loader on every hostile case
(tests/hostile_uploads.py and tests/hostile_records.py), each in a fresh process.

Run: ``python -m tests.measure_hostile [case ...]``. A record case loads a store made of the good
fixture records plus the case's file(s); it counts as expected when the outcome matches ('skip':
the file is named with a reason matching the case's pattern, 'ok': nothing skipped) and every good
run still loads. Peak RSS comes from each child's own rusage
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
import json, os, sys
from tests.hostile_uploads import build_corpus
from tests.hostile_records import build_record_corpus
from tests.fixtures import write_fixture_store
names = sys.argv[2:] or None
os.makedirs(os.path.join(sys.argv[1], "uploads"))
cases = build_corpus(os.path.join(sys.argv[1], "uploads"), names)
good = os.path.join(sys.argv[1], "good-store")
write_fixture_store(good, n_datasets=2, methods=("full", "lora"))
records = build_record_corpus(os.path.join(sys.argv[1], "records"), names)
print(json.dumps([[c.name, c.kind, c.expect, str(c.path), ""] for c in cases]
                 + [[c.name, "record", c.expect, str(c.path), c.match or ""] for c in records]))
"""
CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")  # PIL's own bomb warning; the outcome is what we report
from core.upload import UploadError, load_embeddings_npz, load_image_folder_zip
kind, path, match, good = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if kind == "record":
    import re
    from core import store
start, out = time.perf_counter(), {}
try:
    if kind.startswith("npz"):
        load_embeddings_npz(path, expected_dim=int(kind.split("-")[1]) if "-" in kind else None)
        out["outcome"] = "ok"
    elif kind == "record":
        runs, skipped = store.load_runs_report([good, path])
        mine = [s for s in skipped if path in s.where]
        hit = [s for s in mine if re.search(match, s.reason)] if match else mine
        out["outcome"] = "skip" if hit else "ok" if not skipped else "wrong"
        out["detail"] = (hit or skipped or [None])[0].reason if skipped else f"{len(runs)} runs loaded"
        if len(runs) < 4 or not {"fx-"} <= {r[:3] for r in runs["run_id"]}:
            out["outcome"] = "LOST-GOOD-RUNS"
    elif kind == "zip":
        sample = load_image_folder_zip(path)
        out["outcome"] = "skip" if sample.skipped else "ok"
        out["detail"] = "; ".join(f"{m}: {r}" for m, r in sample.skipped[:1]) or sample.summary()
    else:
        if kind == "record-none":
            from core import store  # noqa: F401  (the record baseline: the store's imports)
        out["outcome"] = "-"
except UploadError as e:
    out["outcome"], out["detail"] = "error", str(e)
out["seconds"] = time.perf_counter() - start
print(json.dumps(out))
"""


def measure(kind: str, path: str, match: str = "", good: str = "") -> dict:
    """Run one load in a fresh interpreter; its result plus the child's peak RSS in MiB."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, path, match, good], cwd=ROOT,
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
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    return result


def main(names: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        built = subprocess.run([sys.executable, "-c", BUILD, tmp, *names], cwd=ROOT, check=True,
                               capture_output=True, text=True)
        cases = json.loads(built.stdout)
        good = str(Path(tmp) / "good-store")
        bases = {"upload": measure("none", "-")["peak_mib"], "record": measure("record-none", "-")["peak_mib"]}
        print(f"baselines (python + numpy + PIL + core.upload imported; + core.store for records): "
              f"peak RSS {bases['upload']:.0f} / {bases['record']:.0f} MiB\n")
        print(f"{'case':40} {'expect':6} {'got':6} {'ms':>7} {'cpu s':>6} {'peak MiB':>8} {'+MiB':>6}  detail")
        worst, worst_cpu, mismatches = 0.0, 0.0, 0
        for name, kind, expect, path, match in cases:
            r = measure(kind, path, match, good)
            base = bases["record" if kind == "record" else "upload"]
            worst = max(worst, r["peak_mib"] - base)
            worst_cpu = max(worst_cpu, r["cpu_s"])
            mismatches += r["outcome"] != expect
            flag = "" if r["outcome"] == expect else "  <-- UNEXPECTED"
            detail = r.get("detail", "").replace("\n", " | ")[:90]
            print(f"{name:40} {expect:6} {r['outcome']:6} {1000 * r['seconds']:7.1f} {r['cpu_s']:6.2f} "
                  f"{r['peak_mib']:8.0f} {r['peak_mib'] - base:6.0f}  {detail}{flag}")
    uploads = sum(c[1] != "record" for c in cases)
    print(f"\n{len(cases)} cases ({uploads} uploads, {len(cases) - uploads} store records), {mismatches} "
          f"unexpected outcomes, worst extra peak RSS {worst:.0f} MiB, worst child CPU {worst_cpu:.2f} s")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
