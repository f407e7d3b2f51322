"""serve.py: the app behind st.App, whose startup hook imports the landing page's modules first. Each test
imports serve.py in a fresh interpreter: constructing an st.App pins process-wide Streamlit config."""
from __future__ import annotations

import http.client
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _python(code: str, **env: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_streamlit_finds_the_app_object_and_serves_app_py():
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(REPO / "serve.py")
    assert found.is_asgi_app and found.import_string.endswith(":app")
    assert _python("import serve, pathlib; print(pathlib.Path(serve.app.script_path).name)") == "app.py"


def test_the_warm_up_imports_the_landing_pages_modules_and_brings_the_store_index_up_to_date(tmp_path):
    from tests.fixtures import write_fixture_store

    write_fixture_store(tmp_path / "results", pretrained="random")
    index = tmp_path / "index"
    printed = _python(
        "import sys, asyncio, serve\n"
        "assert 'altair' not in sys.modules and 'core.ranking' not in sys.modules\n"
        "async def go():\n"
        "    async with serve.warm(serve.app):\n"
        "        pass\n"
        "asyncio.run(go())\n"
        "print(sorted(m for m in ('app', 'altair', 'pandas', 'scipy', 'core.charts', 'core.ranking', 'core.store')"
        " if m in sys.modules))", IIMM_RESULTS=str(tmp_path / "results"), IIMM_STORE_INDEX=str(index))
    assert printed == str(['altair', 'app', 'core.charts', 'core.ranking', 'core.store', 'pandas', 'scipy'])
    assert any(index.rglob("*")), "the warm-up wrote no store index"


def test_a_failed_warm_up_is_logged_and_the_server_still_starts():
    printed = _python(
        "import asyncio, logging, io, serve\n"
        "log = io.StringIO(); logging.getLogger('serve').addHandler(logging.StreamHandler(log))\n"
        "def broken():\n"
        "    raise ImportError('no altair here')\n"
        "serve.warm_up = broken\n"
        "async def go():\n"
        "    async with serve.warm(serve.app):\n"
        "        return 'served'\n"
        "print(asyncio.run(go()), 'warming up failed' in log.getvalue(), 'no altair here' in log.getvalue())")
    assert printed == "served True True"


@pytest.mark.parametrize("script", ["serve.py", "app.py"])
def test_the_readme_names_the_command_that_runs_the_app(script):
    assert f"streamlit run {script}" in (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, http.client.BadStatusLine])
def test_start_app_stops_the_server_when_its_wait_is_interrupted(monkeypatch, tmp_path, interrupt):
    """Ctrl-C (or an error that is no OSError) during the health-check wait left the server running, holding
    its port: no caller had the process yet to stop it."""
    from jobs import app_server

    started, real_popen = [], subprocess.Popen

    def popen(*_args, **kwargs):  # a stand-in server that would run for a minute
        started.append(real_popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                        stdout=kwargs.get("stdout")))
        return started[0]

    def urlopen(*_args, **_kwargs):
        raise interrupt("x")

    monkeypatch.setattr(app_server.subprocess, "Popen", popen)
    monkeypatch.setattr(app_server.urllib.request, "urlopen", urlopen)
    try:
        with pytest.raises(interrupt):
            app_server.start_app(app_server.free_port(), {}, tmp_path / "log")
        assert started[0].poll() is not None, "the server was left running"
    finally:
        for proc in started:
            proc.kill()
            proc.wait()


def test_the_server_console_keeps_one_line_format_after_open_clip_logs_on_the_root_logger():
    """open_clip logs with module-level ``logging.info(...)``, which gives the root logger a handler of Python's
    own format when it has none: the app's warnings changed from bare text ('x has random weights') to
    'WARNING:core.models:x …' partway through a server's life, neither with a time. serve.py gives the root logger
    Streamlit's format first, so every line is alike from the start."""
    code = ("import logging, serve\n"
            "mine = logging.getLogger('core.models')\n"
            "mine.warning('before open_clip')\n"
            "logging.info('as open_clip logs')\n"
            "mine.warning('after open_clip')\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} WARNING core\.models: "
    lines = [line for line in out.stderr.splitlines() if "open_clip" in line]
    assert len(lines) == 2 and all(re.fullmatch(stamp + r"(before|after) open_clip", line) for line in lines), lines
