"""What a killed job leaves on disk is removed by the next run of that job, never left to accumulate."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from core import store
from tests.fixtures import make_fixture_records

REPO = Path(__file__).resolve().parent.parent

# An ingest killed (SIGKILL: a server restarted mid-submission) while it stages its batch: either inside the
# atomic write of one staged file, or after staging, before the renames.
_KILLED_INGEST = """
import json, os, signal, sys
sys.path.insert(0, {repo!r})
from core import store
from tests.fixtures import make_fixture_records
ingest = sys.modules["core.store.ingest"]
real, after = os.replace, {after}
def replace(a, b):
    if after == 0 or not os.path.basename(str(a)).startswith(".tmp-.tmp-"):
        os.kill(os.getpid(), signal.SIGKILL)
    real(a, b)
    if os.path.basename(str(b)).startswith(".tmp-ingest-"):
        globals()["after"] -= 1
ingest.os.replace = replace
store.ingest({src!r}, {target!r})
"""


def _batch(tmp_path: Path) -> Path:
    src = tmp_path / "batch.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in make_fixture_records(n_datasets=3, methods=("full", "lora"))))
    return src


def _kill_an_ingest(tmp_path: Path, target: Path, after: int) -> None:
    code = _KILLED_INGEST.format(repo=str(REPO), src=str(_batch(tmp_path)), target=str(target), after=after)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def test_the_next_ingest_removes_what_a_killed_ingest_staged(tmp_path):
    target = tmp_path / "submitted"
    _kill_an_ingest(tmp_path, target, after=0)  # inside the first staged file's own atomic write
    _kill_an_ingest(tmp_path, target, after=3)  # three files staged, the fourth being written, none renamed
    left = sorted(p.name for p in target.glob(".tmp-*"))
    assert not list(target.glob("fx-*.json")), left  # no record, but staged files of both kinds:
    assert {n.startswith(".tmp-ingest-") for n in left} == {True, False}, left
    (target / ".tmp-0123456789abcdef-abcdefgh.json").write_text("{}")  # a grid writer's temporary: not ingest's
    report = store.ingest(_batch(tmp_path), target)
    assert len(report.accepted) == 6
    assert sorted(p.name for p in target.glob(".tmp-*")) == [".tmp-0123456789abcdef-abcdefgh.json"]
    assert len(store.load_runs([target])) == 6


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_cache_empties_the_cache_the_jobs_use(tmp_path):
    """With $IIMM_CACHE set, the jobs cache embeddings there (core.embed.default_cache_dir), and README's
    `make clean-cache` must free that folder, not only .cache/embeddings; it removes cache entries alone."""
    cache = tmp_path / "my cache"
    cache.mkdir()
    for name in ("0123abcd.npz", ".tmp-k1ll3d.npz"):  # an entry, and the temporary of a write killed midway
        (cache / name).write_bytes(b"x" * 1000)
    (cache / "notes.txt").write_text("not the cache's")
    env = {**os.environ, "IIMM_CACHE": str(cache)}
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "clean-cache"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in cache.iterdir()) == ["notes.txt"]
    assert str(cache) in proc.stdout


def test_release_locks_of_removes_only_the_locks_of_the_stopped_processes_that_are_gone(tmp_path):
    from core.store.locks import acquire_lock, lock_path, release_lock, release_locks_of

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead_pid = int(gone.stdout)
    assert acquire_lock(tmp_path, "live")  # this process's: alive, kept
    for run_id, host, pid in (("dead", None, dead_pid), ("elsewhere", "another-host", dead_pid),
                              ("not-ours", None, dead_pid + 1_000_000)):
        path = lock_path(tmp_path, run_id)
        owner = json.loads(lock_path(tmp_path, "live").read_text(encoding="utf-8"))
        path.write_text(json.dumps({**owner, "pid": pid, **({"host": host} if host else {})}), encoding="utf-8")
    removed = release_locks_of(tmp_path, [os.getpid(), dead_pid])
    assert removed == ["dead.lock"]
    assert sorted(p.name for p in (tmp_path / ".locks").glob("*.lock")) == ["elsewhere.lock", "live.lock",
                                                                             "not-ours.lock"]
    release_lock(tmp_path, "live")
