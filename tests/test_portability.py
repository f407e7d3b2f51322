"""What a user on Windows or macOS meets that Linux hides, simulated here on Linux: code pages on stdout and
pipes, functions Windows lacks or gives another meaning (os.fchmod, os.kill(pid, 0), /proc, os.open's text
mode) and files saved with a byte-order mark."""
from __future__ import annotations

import io
import json
import locale
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs import grid_report
from jobs.cli import user_facing
from tests.fixtures import write_fixture_store

REPO = Path(__file__).resolve().parent.parent


def _code_page_stdout(monkeypatch, encoding: str) -> io.BytesIO:
    """stdout as Windows gives a job whose output is redirected to a file or pipe: the ANSI code page, strict."""
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding=encoding, errors="strict", write_through=True))
    return raw


def test_a_jobs_report_in_a_code_page_without_tau_is_printed_and_written(tmp_path, monkeypatch):
    """jobs.grid_report's tables name Kendall's τ, which cp1252 (Western Windows) cannot encode: with stdout
    redirected the job exited 2 ("'charmap' codec can't encode character '\\u03c4'") and wrote no --out."""
    write_fixture_store(tmp_path / "r", n_datasets=4, methods=("full",))
    raw = _code_page_stdout(monkeypatch, "cp1252")
    out = tmp_path / "report.md"
    assert grid_report.main(["--results", str(tmp_path / "r"), "--out", str(out)]) == 0
    printed = raw.getvalue().decode("cp1252")
    assert "counts as \\u03c4 = 0." in printed and "counts as τ = 0." in out.read_text(encoding="utf-8")  # UTF-8 file


def test_a_job_leaves_stdout_as_it_found_it(monkeypatch):
    raw = _code_page_stdout(monkeypatch, "ascii")

    @user_facing
    def main(argv=None):
        print("−3.6 points, τ 0.4")
        return 0

    assert main([]) == 0
    assert raw.getvalue() == b"\\u22123.6 points, \\u03c4 0.4\n" and sys.stdout.errors == "strict"


@pytest.mark.skipif(not shutil.which("git"), reason="needs git")
@pytest.mark.parametrize("code_page", ["cp1252", "cp932"])
def test_a_checkout_under_a_non_ascii_folder_records_its_commit_under_a_windows_code_page(
        tmp_path, monkeypatch, code_page):
    """Windows decodes a text pipe in its ANSI code page, git writes paths in UTF-8: a checkout under
    C:\\Users\\José recorded git_revision "unknown" in every grid record, forecast and report (cp1252 read the path
    as "JosÃ©", cp932 as "Josﾃｩ"), not this checkout's commit."""
    from core import experiment

    root = tmp_path / "José" / "ユーザー" / "repo"
    root.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for args in (["init", "-q"], ["commit", "-q", "--allow-empty", "-m", "x"]):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, check=True, capture_output=True).stdout.decode()
    monkeypatch.setattr(locale, "getencoding", lambda: code_page)  # what subprocess's text mode decodes with
    monkeypatch.setattr(experiment, "REPO_ROOT", root.resolve())
    experiment.git_revision.cache_clear()
    try:
        assert experiment.git_revision() == head.strip()
    finally:
        experiment.git_revision.cache_clear()


def test_the_store_writes_where_os_has_no_fchmod(tmp_path, monkeypatch):
    """os.fchmod exists on Windows only from Python 3.13: on 3.11 and 3.12 every atomic write (each grid record,
    report, --out, ingest, submission) raised AttributeError and left nothing."""
    from core import store
    from tests.fixtures import make_fixture_records

    monkeypatch.delattr(os, "fchmod")
    record = make_fixture_records(n_datasets=1)[0]
    path = store.write_record(record, tmp_path / "results")
    assert json.loads(path.read_text(encoding="utf-8"))["run_id"] == record["run_id"]
    assert store.write_file_atomic(tmp_path / "report.md", "τ −1\n").read_text(encoding="utf-8") == "τ −1\n"
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_a_windows_runner_judges_a_local_lock_without_sending_ctrl_c(tmp_path, monkeypatch):
    """On Windows os.kill(pid, 0) is GenerateConsoleCtrlEvent(CTRL_C_EVENT): a grid that met a lock of this host
    (a re-run after a crash, a second runner) sent Ctrl-C to its console and stopped itself (exit 130)."""
    from core.store import locks

    real_kill = os.kill

    def ctrl_c(pid, sig):  # psutil's POSIX pid_exists, standing in for its Windows one here, may still call it
        if sys._getframe(1).f_code.co_filename == locks.__file__:
            raise AssertionError(f"os.kill({pid}, {sig}) on Windows sends Ctrl-C to the console")
        return real_kill(pid, sig)

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = locks.lock_path(tmp_path, "cell")
    path.parent.mkdir(parents=True)
    monkeypatch.setattr(locks, "_WINDOWS", True)
    monkeypatch.setattr(os, "kill", ctrl_c)
    here = {"host": socket.gethostname(), "started": time.time()}
    path.write_text(json.dumps({**here, "pid": os.getpid()}), encoding="utf-8")
    assert not locks.lock_is_stale(path)  # this live process's lock
    path.write_text(json.dumps({**here, "pid": dead.pid}), encoding="utf-8")
    assert locks.lock_is_stale(path) and locks.acquire_lock(tmp_path, "cell")  # a dead runner's


def test_a_lock_whose_pid_was_reused_is_stale_without_proc(tmp_path, monkeypatch):
    """macOS and Windows have no /proc: a lock whose pid now belongs to a newer process (Windows reuses pids
    soon) was held for the whole expiry (600 s), the grid's re-run saying its cells were another runner's."""
    from core.store import locks

    real = Path.read_text

    def no_proc(self, *args, **kwargs):
        if str(self).startswith("/proc"):
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real(self, *args, **kwargs)

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.5)
        path = locks.lock_path(tmp_path, "cell")
        path.parent.mkdir(parents=True)
        mine = {"host": socket.gethostname(), "pid": sleeper.pid}
        monkeypatch.setattr(Path, "read_text", no_proc)
        path.write_text(json.dumps({**mine, "started": time.time()}), encoding="utf-8")
        assert not locks.lock_is_stale(path)  # the sleeper's own lock
        path.write_text(json.dumps({**mine, "started": time.time() - 3600}), encoding="utf-8")  # made before it began
        assert locks.lock_is_stale(path)
    finally:
        sleeper.kill()
        sleeper.wait()


_O_BINARY = 0o40000000000  # a flag bit Linux's open() does not define, standing in for Windows' O_BINARY


def _windows_os_open(monkeypatch, tmp_path):
    """os.open as Windows' C runtime has it: without O_BINARY a file is read in text mode (CR LF read as LF,
    a Ctrl-Z byte read as the end of the file)."""
    real_open = os.open
    monkeypatch.setattr(os, "O_BINARY", _O_BINARY, raising=False)

    def open_(path, flags, mode=0o777, **kwargs):
        if flags & _O_BINARY or flags & (os.O_WRONLY | os.O_RDWR) or not os.path.isfile(path):
            return real_open(path, flags & ~_O_BINARY, mode, **kwargs)
        with open(path, "rb") as fh:
            text = fh.read().replace(b"\r\n", b"\n").split(b"\x1a", 1)[0]
        translated = tmp_path / f"text-mode-{len(os.listdir(tmp_path))}"
        translated.write_bytes(text)
        return real_open(translated, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", open_)


def test_an_exported_parquet_file_is_ingested_as_written_on_windows(tmp_path, monkeypatch):
    """jobs.export's Parquet file, ingested on Windows, was read in text mode: a CR LF pair or a Ctrl-Z byte
    in its compressed pages made it 'unreadable parquet' and every run refused."""
    from core import store
    from tests.fixtures import make_fixture_records

    records = make_fixture_records(n_datasets=6)
    exported = store.write_records_parquet(records, tmp_path / "export")  # as jobs.export writes it
    raw = exported.read_bytes()
    assert b"\r\n" in raw or b"\x1a" in raw  # what a text-mode read changes (11 KB of compressed pages)
    (tmp_path / "fake").mkdir()
    _windows_os_open(monkeypatch, tmp_path / "fake")
    report = store.ingest(exported, tmp_path / "copy")
    assert not report.refused and len(report.accepted) == len(records)


def test_the_store_index_is_read_on_windows(tmp_path, monkeypatch):
    """The store's index (Arrow IPC behind a hash) was read in text mode on Windows, judged damaged on every
    load and rebuilt: the app never had its fast first read there."""
    from core import store
    from core.store import index
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "r", n_datasets=6)
    now = index.time_ns
    monkeypatch.setattr(index, "time_ns", lambda: now() + index.RACY_NS + 10**9)  # the records have settled
    store.load_runs([tmp_path / "r"], index_dir=tmp_path / "index")
    (written,) = (tmp_path / "index").iterdir()
    raw = written.read_bytes()
    assert b"\r\n" in raw or b"\x1a" in raw  # what a text-mode read changes
    (tmp_path / "fake").mkdir()
    _windows_os_open(monkeypatch, tmp_path / "fake")
    table = index._read_index(written)
    assert table is not None and table.num_rows == len(list((tmp_path / "r").glob("*.json")))


def test_a_grid_file_and_an_adapter_config_saved_with_a_bom_are_read(tmp_path):
    """Windows Notepad may save UTF-8 with a byte-order mark: a grid TOML so saved was 'not valid TOML: Invalid
    statement (at line 1, column 1)', an adapter_config.json 'not valid JSON: Unexpected UTF-8 BOM'."""
    from core.grid_config import load_grid
    from core.methods import get_method

    bom = "\ufeff".encode()
    grid = tmp_path / "smoke.toml"
    grid.write_bytes(bom + (REPO / "jobs" / "configs" / "smoke.toml").read_bytes())
    assert len(load_grid(grid).cells) == len(load_grid(REPO / "jobs" / "configs" / "smoke.toml").cells)
    (tmp_path / "adapter_config.json").write_bytes(bom + json.dumps({"peft_type": "LORA", "r": 2}).encode())
    config = get_method("peft").config_cls.from_overrides({"adapter_config": str(tmp_path)})
    assert config.resolved()["r"] == 2


def test_tables_end_lines_with_newline_whatever_the_systems_line_separator(monkeypatch):
    import pandas as pd

    from core import store
    from core.schema import csv_text

    monkeypatch.setattr(os, "linesep", "\r\n")  # Windows': pandas ends CSV lines with it
    frame = pd.DataFrame({"method": ["lora", "bitfit"], "gain": [1.5, -0.25]})
    assert csv_text(frame, float_format="%.2f") == "method,gain\nlora,1.50\nbitfit,-0.25\n"
    assert store.to_csv_bytes(frame) == b"method,gain\nlora,1.5\nbitfit,-0.25\n"


def test_every_job_and_core_csv_is_written_through_csv_text():
    import re

    calls = {str(p.relative_to(REPO)) for folder in ("core", "jobs") for p in (REPO / folder).rglob("*.py")
             if re.search(r"\.to_csv\(", p.read_text(encoding="utf-8"))}
    assert calls == {"core/schema.py"}, "write CSV with core.schema.csv_text (newline line ends on every system)"


def test_a_grid_worker_on_windows_sees_its_runner_die(monkeypatch):
    """Windows never changes a process's parent id: a worker watching os.getppid() went on after its runner was
    killed (it finished its cell and only then found the queue broken)."""
    from jobs import grid

    runner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.3)
        monkeypatch.setattr(grid, "_WINDOWS", True)
        monkeypatch.setattr(os, "getppid", lambda: runner.pid)  # as Windows reports it, before and after the kill
        alive = grid.runner_watch(runner.pid)
        assert alive()
        runner.kill()
        runner.wait()
        assert not alive()
    finally:
        runner.kill()
    monkeypatch.undo()
    monkeypatch.setattr(grid, "_WINDOWS", False)
    assert grid.runner_watch(os.getppid())() and not grid.runner_watch(-5)()  # POSIX: is it still my parent


@pytest.mark.parametrize("device", ["mps", "tpu", "cuda:x", "cuda:", "CPU"])
def test_a_device_the_jobs_do_not_run_on_is_named_so_not_called_absent(monkeypatch, device):
    """On a Mac with Apple silicon, --device mps said "'mps' is not on this host (it has cpu and 0 CUDA
    device(s))": untrue there (MPS is), and no hint of what to pass. A device the jobs do not run on is now
    said to be so, with the ones they do; a CUDA device this host lacks is still "not on this host"."""
    import torch

    from jobs.cli import check_device

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)  # a Mac with Apple silicon
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=rf"^--device '{device}' is not one the jobs run on: use cpu, cuda or "
                                         r"cuda:N \(this host has cpu and 0 CUDA device\(s\)\)$"):
        check_device(device)
    with pytest.raises(ValueError, match=r"^--device 'cuda:1' is not on this host \(it has cpu and 0 CUDA"):
        check_device("cuda:1")
    assert check_device("cpu") == "cpu"
