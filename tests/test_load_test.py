"""jobs.load_test without an app server or a browser: the app, Chromium and Playwright are stand-ins
(each step of a page takes the time a test gives it), so what runs is the job's own handling of its
options, its timeouts and its report."""
from __future__ import annotations

import asyncio
import json
import os
import threading
from types import SimpleNamespace

import pytest

from jobs import load_test

FAST = ["--sessions", "1", "--views", "1", "--forecasts", "0", "--images", "1"]


class FakePage:
    """A page whose steps are instant, except those named in ``steps``: seconds to sleep, or an
    exception to raise. Step names: "warm-up" (the first /runs), "view" (a leaderboard view), "compare"."""

    def __init__(self, steps: dict) -> None:
        self.steps = steps

    async def _step(self, name: str) -> None:
        what = self.steps.get(name, 0)
        if isinstance(what, BaseException):
            raise what
        await asyncio.sleep(what)

    def on(self, event, handler) -> None:
        pass

    async def goto(self, url: str, timeout=None) -> None:
        await self._step("warm-up" if url.endswith("/runs") else "view")

    def get_by_text(self, text):
        return FakeLocator(self, None)

    def get_by_role(self, role, name=None):
        return FakeLocator(self, "compare" if name == "Compare methods" else None)

    def locator(self, selector):
        return FakeLocator(self, None)

    async def close(self) -> None:
        pass


class FakeLocator:
    def __init__(self, page: FakePage, step: str | None) -> None:
        self.page, self.step = page, step

    @property
    def first(self):
        return self

    async def wait_for(self, timeout=None) -> None:
        pass

    async def count(self) -> int:
        return 0

    async def click(self) -> None:
        if self.step:
            await self.page._step(self.step)


class FakeBrowser:
    def __init__(self, steps: dict) -> None:
        self.steps = steps

    async def new_context(self, **kwargs):
        steps = self.steps

        class Context:
            def set_default_timeout(self, ms):
                pass

            async def new_page(self):
                return FakePage(steps)

            async def close(self):
                pass

        return Context()

    async def new_page(self):
        return FakePage(self.steps)

    async def close(self) -> None:
        pass


@pytest.fixture
def fake_load(tmp_path, monkeypatch):
    """Stand-ins for Chromium, the app server, its watcher, the writer and Playwright; returns the dict of
    page steps to set, and the list of files written with core.store.write_file_atomic."""
    import playwright.async_api

    from core import store
    from jobs import bench_app

    steps: dict = {}
    chromium = tmp_path / "chromium"
    chromium.write_text("", encoding="utf-8")
    monkeypatch.setattr(load_test, "CHROMIUM", chromium)
    monkeypatch.setattr(bench_app, "sample_zip", lambda path, n: path.write_bytes(b"zip"))
    monkeypatch.setattr(load_test, "free_port", lambda: 1)

    def start_app(port, env, log_path):
        log_path.write_text("app started\n", encoding="utf-8")
        return SimpleNamespace(pid=os.getpid())

    monkeypatch.setattr(load_test, "start_app", start_app)
    monkeypatch.setattr(load_test, "stop_app", lambda app: None)

    class Idle:
        def __init__(self, *args):
            self.peak_mb, self.cpu_s, self.written, self.stop = 1.0, 0.0, 0, threading.Event()

        def start(self):
            pass

    monkeypatch.setattr(load_test, "ServerWatch", Idle)
    monkeypatch.setattr(load_test, "Writer", Idle)

    class Playwright:
        chromium = SimpleNamespace(launch=lambda **kwargs: asyncio.sleep(0, FakeBrowser(steps)))

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

    monkeypatch.setattr(playwright.async_api, "async_playwright", Playwright)
    written = []
    real_write = store.write_file_atomic

    def write_file_atomic(path, data):
        written.append(path)
        return real_write(path, data)

    monkeypatch.setattr(store, "write_file_atomic", write_file_atomic)
    return SimpleNamespace(steps=steps, written=written)


def test_a_load_past_timeout_is_named_and_keeps_the_figures_it_gathered(fake_load, tmp_path, capsys, caplog):
    fake_load.steps["compare"] = 30  # the leaderboard view finishes, the compare page never does
    report = tmp_path / "report.json"
    code = load_test.main([*FAST, "--timeout", "0.5", "--report", str(report)])
    out, err = capsys.readouterr()
    text = out + err + caplog.text
    assert code == 1, text  # an error of the load, not a user error
    assert "the load did not finish within 0.5 s (--timeout): 1 of 2 views and forecasts had completed" in text
    assert "1 views/forecasts completed" in out and "leaderboard  n=  1" in out
    assert "error: \n" not in err + "\n"
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert figures["timed_out"] and figures["completed"] == 1 and figures["latency"]["leaderboard"]["n"] == 1


@pytest.mark.parametrize("value", ["0", "-3", "nan", "inf"])
def test_timeout_must_be_seconds_above_zero(value, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(load_test, "CHROMIUM", tmp_path / "no-chromium")  # nothing heavy can start anyway
    assert load_test.main([*FAST, "--timeout", value]) == 2
    assert "error: --timeout must be a number of seconds above 0" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["-1", "0", "nan"])
def test_view_timeout_must_be_seconds_above_zero(value, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(load_test, "CHROMIUM", tmp_path / "no-chromium")
    assert load_test.main([*FAST, "--view-timeout", value]) == 2
    assert "error: --view-timeout must be a number of seconds above 0" in capsys.readouterr().err


def test_a_warm_up_that_fails_is_one_message_not_a_traceback(fake_load, capsys):
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    fake_load.steps["warm-up"] = PlaywrightTimeout("Page.goto: Timeout 2000ms exceeded.\nCall log:\n  - navigating")
    assert load_test.main([*FAST, "--view-timeout", "2"]) == 2
    err = capsys.readouterr().err
    assert "error: the app did not show its runs page within 2 s (--view-timeout) before the load started: " \
           "Page.goto: Timeout 2000ms exceeded." in err and "Call log" not in err


@pytest.mark.parametrize("where, match", [
    # a missing folder is made now, as every job's output (jobs.cli): no longer refused
    ("a-file/r.json", "--report {tmp}/a-file/r.json: {tmp}/a-file is a file, not a folder"),
    (".", "is a folder: name a file"),
])
def test_an_unwritable_report_is_refused_before_the_load(where, match, fake_load, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    monkeypatch.setattr(load_test, "start_app", lambda *a: pytest.fail("the load started"))
    assert load_test.main([*FAST, "--report", str(tmp_path / where)]) == 2
    assert match.format(tmp=tmp_path) in capsys.readouterr().err


def test_the_report_is_written_atomically(fake_load, tmp_path):
    report = tmp_path / "report.json"
    report.write_text("an older report", encoding="utf-8")
    assert load_test.main([*FAST, "--report", str(report)]) == 0
    assert fake_load.written == [report]
    figures = json.loads(report.read_text(encoding="utf-8"))
    assert figures["completed"] == 2 and not figures["errors"] and not figures["timed_out"]


def test_an_app_that_does_not_start_is_one_message_quoting_its_log(fake_load, monkeypatch, capsys):
    def start_app(port, env, log_path):
        from jobs.app_server import AppDidNotStart

        log_path.write_text("Traceback (most recent call last):\nModuleNotFoundError: No module named 'altair'\n",
                            encoding="utf-8")
        raise AppDidNotStart("the app exited with 1", log_path)  # a log in a folder about to be deleted

    monkeypatch.setattr(load_test, "start_app", start_app)
    assert load_test.main(FAST) == 2
    err = capsys.readouterr().err
    assert "error: the app exited with 1: " in err and "No module named 'altair'" in err and "see /" not in err


def test_a_chromium_that_does_not_start_is_one_message(fake_load, monkeypatch, capsys):
    import playwright.async_api
    from playwright.async_api import Error as PlaywrightError

    async def broken(**kwargs):
        raise PlaywrightError("BrowserType.launch: Failed to launch chromium\n=== logs ===\nmissing libnss3")

    monkeypatch.setattr(playwright.async_api.async_playwright.chromium, "launch", broken)
    assert load_test.main(FAST) == 2
    err = capsys.readouterr().err
    assert "did not start: BrowserType.launch: Failed to launch chromium" in err and "Traceback" not in err
