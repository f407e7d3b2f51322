"""Start the Streamlit app as a child process on a free local port (load test, browser test).

Chromium is Debian's (``apt-get install chromium``), driven by Playwright through ``executable_path``;
``playwright install`` is never needed.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppDidNotStart(RuntimeError):
    """The app exited or stayed silent. ``reason`` says which; ``log_tail`` holds the last lines of its log
    (read at once: the log may live in a temporary folder the caller is about to delete)."""

    def __init__(self, reason: str, log_path: Path) -> None:
        super().__init__(f"{reason}; see {log_path}")
        try:
            self.log_tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            self.log_tail = []
        self.reason = reason


def start_app(port: int, env: dict[str, str], log_path: Path, timeout: float = 120.0, *,
              script: str = "serve.py") -> subprocess.Popen:
    """``streamlit run serve.py`` (or ``script``, e.g. ``app.py``) on ``port`` with ``env`` added to this
    process's environment; returns once the app answers its health check. AppDidNotStart (a RuntimeError
    naming the log) when it exits or stays silent; the process is stopped whenever no process is returned
    (an interrupt or any error while waiting included)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    with open(log_path, "wb") as out:  # the child keeps its own handle
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
                                 "--server.headless", "true", "--server.fileWatcherType", "none",
                                 "--browser.gatherUsageStats", "false"], cwd=REPO, env=full_env, stdout=out,
                                stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout  # a clock set meanwhile must not end or stretch the wait
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AppDidNotStart(f"the app exited with {proc.returncode}", log_path)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1) as r:
                    if r.read() == b"ok":
                        return proc
            except OSError:
                time.sleep(0.5)
        raise AppDidNotStart(f"the app did not answer within {timeout:.0f} s", log_path)
    except BaseException:  # no caller holds the process yet: Ctrl-C or any error while waiting must not leave it
        stop_app(proc)
        raise


_IDLE_FOR = """(stableMs) => {
  const root = document.querySelector('[data-testid=stApp]');
  const idle = root !== null && root.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelector('[data-testid=stStatusWidget]') === null;
  if (!idle) { window.__idleSince = null; return false; }
  if (window.__idleSince === null || window.__idleSince === undefined) window.__idleSince = performance.now();
  return performance.now() - window.__idleSince >= stableMs;
}"""


def wait_until_idle(page: Any, timeout_ms: int = 120_000, settle_ms: int = 300, stable_ms: int = 250) -> None:
    """After ``settle_ms`` (for the run an interaction triggers to begin), until it has finished: the app's
    root says its script is not running and the running indicator is gone, and both stay so for
    ``stable_ms`` (a deep link's first run switches the navigation and reruns, 60-140 ms later). The
    indicator alone is not enough: Streamlit shows it only for a run that lasts, so a quick run (a warmed
    server's first page) never shows it and its page was read half drawn. ``page``: a Playwright page."""
    page.wait_for_timeout(settle_ms)
    page.evaluate("() => { window.__idleSince = null; }")
    page.wait_for_function(_IDLE_FOR, arg=stable_ms, polling=25, timeout=timeout_ms)


def stop_app(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.app_server", "python -m jobs.load_test or python -m jobs.bench_app (they start the app through it)")
