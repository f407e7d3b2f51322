"""Load test of the app on localhost: browsing sessions and forecasts at once, while a writer adds runs.

    python -m jobs.load_test [--sessions 20] [--forecasts 4] [--views 4] [--images 200]

Starts the app (`streamlit run app.py`) on a free port over the shipped store plus a scratch store,
then drives one headless Chromium (Debian's, through Playwright) with ``--sessions`` browser contexts
that each open ``--views`` leaderboard views (different filters and sorts) and the compare page, and
``--forecasts`` contexts that each upload a generated sample and wait for the forecast, all at the
same moment. Meanwhile a writer thread adds result records to the scratch store, atomically, the
way a grid does. Prints throughput, p50/p95 latency per kind of view, the server's peak memory, and
every error seen (a page exception, a timeout, a failed request). Exit code 0 only with no error; a load
that ``--timeout`` cuts short is one, and the figures of the views and forecasts that finished are still
reported.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from jobs.app_server import CHROMIUM, CHROMIUM_ARGS, AppDidNotStart, free_port, start_app, stop_app
from jobs.cli import EXIT_FAILED, check_file_out, job_parser, log_progress, user_facing, work_begins

log = logging.getLogger("jobs.load_test")
REPO = Path(__file__).resolve().parent.parent
# Runs-page views; bound widgets keep their option labels in the URL.
VIEWS = ["?sort=IIMM&order=smallest+first", "?method=Full+fine-tuning", "?method=LoRA&method=BitFit&sort=out-of-domain+change",
         "?q=shape", "?dataset=letters", "?sort=fine-tuned+%25", "?method=CLIP-CITE&order=smallest+first", "?q=texture"]


class ServerWatch(threading.Thread):
    """Peak resident memory and CPU seconds of a process tree, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        import psutil

        self.proc, self.peak_mb, self.cpu_s, self.stop = psutil.Process(pid), 0.0, 0.0, threading.Event()

    def run(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                tree = [self.proc, *self.proc.children(recursive=True)]
                self.peak_mb = max(self.peak_mb, sum(p.memory_info().rss for p in tree) / 2**20)
                self.cpu_s = sum(sum(p.cpu_times()[:2]) for p in tree)
            except psutil.Error:
                pass
            self.stop.wait(0.2)


class Writer(threading.Thread):
    """Adds a copy of a shipped record under a new run id every ``every`` seconds, like a running grid."""

    def __init__(self, target: Path, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        from core.store import SHIPPED_DIR

        self.target, self.every, self.written, self.stop = target, every, 0, threading.Event()
        self.templates = [json.loads(p.read_text()) for p in sorted(SHIPPED_DIR.glob("*/*.json"))[:50]]

    def run(self) -> None:
        from core.store import write_record

        while not self.stop.is_set() and self.templates:
            record = dict(self.templates[self.written % len(self.templates)])
            record.update(run_id=f"load{self.written:012d}", source="load-test-writer")
            write_record(record, self.target)
            self.written += 1
            self.stop.wait(self.every)


async def _timed(results: list, errors: list, kind: str, who: str, action) -> None:
    started = time.perf_counter()
    try:
        await action()
    except Exception as exc:  # every failure is a finding: recorded, never raised
        errors.append(f"{kind} ({who}): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return
    results.append((kind, time.perf_counter() - started))


async def _no_exception(page, kind: str) -> None:
    if await page.locator("[data-testid=stException]").count():
        raise RuntimeError(f"the {kind} page shows an exception")


async def browse(browser, url: str, i: int, views: int, timeout_ms: int, results: list, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"session {i}: page error {exc}"))

    async def view(query: str) -> None:
        await page.goto(url + "/runs" + query, timeout=timeout_ms)
        await page.get_by_text("runs match").first.wait_for(timeout=timeout_ms)
        await _no_exception(page, "leaderboard")

    async def compare() -> None:
        await page.get_by_role("link", name="Compare methods").click()
        await page.locator("[data-testid=stVegaLiteChart]").first.wait_for(timeout=timeout_ms)
        await _no_exception(page, "compare")

    for k in range(views):
        await _timed(results, errors, "leaderboard", f"session {i}", lambda q=VIEWS[(i + k) % len(VIEWS)]: view(q))
    await _timed(results, errors, "compare", f"session {i}", compare)
    await context.close()


async def forecast(browser, url: str, i: int, sample: Path, timeout_ms: int, results: list, errors: list) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"forecast {i}: page error {exc}"))

    async def run() -> None:
        await page.goto(url, timeout=timeout_ms)
        await page.get_by_role("link", name="Forecast your dataset").click()
        await page.get_by_text("Forecast fine-tuning on your dataset").wait_for()
        await page.locator("input[type=file]").set_input_files(str(sample))
        button = page.get_by_role("button", name="Run forecast")
        await page.locator("[data-testid=stFileChipName]").first.wait_for(timeout=timeout_ms)
        deadline = time.monotonic() + timeout_ms / 1000
        while not await button.is_enabled() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await page.wait_for_timeout(500)
        await button.click()
        await page.get_by_text("Predicted outcome per method").wait_for(timeout=timeout_ms)
        await _no_exception(page, "forecast")

    await _timed(results, errors, "forecast", f"forecast {i}", run)
    await context.close()


async def drive(url: str, args: argparse.Namespace, sample: Path) -> tuple[list, list, float, bool]:
    """Results (kind, seconds), errors, wall seconds of the load, and whether ``--timeout`` cut it short
    (the views and forecasts in flight then are cancelled; those that finished are kept)."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout
    from playwright.async_api import async_playwright

    results: list[tuple[str, float]] = []
    errors: list[str] = []
    timeout_ms = max(1, math.ceil(args.view_timeout * 1000))  # Playwright reads 0 ms as "no timeout"
    async with async_playwright() as p:
        try:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except PlaywrightError as exc:  # a broken or foreign Chromium: one message, not Playwright's traceback
            why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise OSError(f"Chromium ({CHROMIUM}) did not start: {why}") from exc
        warm = await browser.new_page()  # one view first, so the figures are those of a running server
        try:
            await warm.goto(url + "/runs", timeout=timeout_ms)
            await warm.get_by_text("runs match").first.wait_for(timeout=timeout_ms)
        except PlaywrightError as exc:  # no load can start: one message, not Playwright's traceback
            why = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            if isinstance(exc, PlaywrightTimeout):
                raise TimeoutError(f"the app did not show its runs page within {args.view_timeout:g} s "
                                   f"(--view-timeout) before the load started: {why}") from exc
            raise OSError(f"the app's runs page failed to load before the load started: {why}") from exc
        await warm.close()
        work_begins()  # the app and Chromium run: the load begins (a failure to start them is exit 2)
        started = time.perf_counter()
        tasks = [browse(browser, url, i, args.views, timeout_ms, results, errors) for i in range(args.sessions)]
        tasks += [forecast(browser, url, i, sample, timeout_ms, results, errors) for i in range(args.forecasts)]
        timed_out = False
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=args.timeout)
        except asyncio.TimeoutError:  # what is still in flight is cancelled; what finished is kept
            timed_out = True
        wall = time.perf_counter() - started
        await browser.close()
    return results, errors, wall, timed_out


def _check_seconds(option: str, value: float) -> None:
    """ValueError naming ``option`` unless ``value`` is a finite number of seconds above 0."""
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{option} must be a number of seconds above 0, got {value:g}")


def _check_report(path: Path) -> None:
    """ValueError unless a report can be written at ``path``: checked before the load, so a load that ran
    for twenty minutes does not end in an unwritable report. Its missing folders are made when it is written,
    as every job's output (jobs.cli)."""
    check_file_out(path, "--report")
    if path.parent.is_dir():  # a probe too: os.access says yes to root on a read-only mount's folders
        try:
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as exc:
            raise ValueError(f"--report {path}: cannot write in {path.parent} ({exc.strerror or exc})") from exc


def summarise(results: list[tuple[str, float]]) -> dict[str, dict[str, float]]:
    """Per kind of view: count, p50 and p95 latency (s), max."""
    out = {}
    for kind in sorted({k for k, _ in results}):
        t = np.array([s for k, s in results if k == kind])
        out[kind] = {"n": int(t.size), "p50_s": round(float(np.percentile(t, 50)), 2),
                     "p95_s": round(float(np.percentile(t, 95)), 2), "max_s": round(float(t.max()), 2)}
    return out


@user_facing
def main(argv: list[str] | None = None) -> int:
    log_progress()
    p = job_parser("python -m jobs.load_test", description=__doc__.split("\n")[0])
    p.add_argument("--sessions", type=int, default=20, help="concurrent browsing sessions")
    p.add_argument("--forecasts", type=int, default=4, help="concurrent forecasts")
    p.add_argument("--views", type=int, default=4, help="leaderboard views per session (then the compare page)")
    p.add_argument("--images", type=int, default=200, help="images in each uploaded sample")
    p.add_argument("--view-timeout", type=float, default=300, help="seconds allowed for one view or forecast")
    p.add_argument("--timeout", type=float, default=1200, help="seconds allowed for the whole load")
    p.add_argument("--report", type=Path, help="also write the figures here as JSON (its folder is checked first)")
    args = p.parse_args(argv)
    if min(args.sessions, args.views, args.images) < 1 or args.forecasts < 0:
        raise ValueError("--sessions, --views and --images must be at least 1, --forecasts at least 0")
    _check_seconds("--timeout", args.timeout)
    _check_seconds("--view-timeout", args.view_timeout)
    if args.report:
        _check_report(args.report)
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is absent; install it with `apt-get install -y chromium`")
    from core import store
    from jobs.bench_app import sample_zip

    with tempfile.TemporaryDirectory(prefix="iimm-load-") as tmp:
        work = Path(tmp)
        sample = work / "sample.zip"
        sample_zip(sample, args.images)
        port = free_port()
        # the store index goes with the temporary store, not into the repository's .cache
        try:
            app = start_app(port, {store.ENV_VAR: str(work / "results"),
                                   store.INDEX_ENV_VAR: str(work / "store-index")}, work / "app.log")
        except AppDidNotStart as exc:  # its log lives in this temporary folder: say what it said
            raise OSError(f"{exc.reason}: {' | '.join(exc.log_tail)[-600:] or 'it wrote nothing'}") from exc
        watch, writer = ServerWatch(app.pid), Writer(work / "results")
        watch.start()
        idle_mb = 0.0
        try:
            time.sleep(1.0)
            idle_mb = watch.peak_mb
            writer.start()
            cpu_before = watch.cpu_s
            log.info("app on port %d; %d sessions x %d views + compare, %d forecasts of %d images",
                     port, args.sessions, args.views, args.forecasts, args.images)
            results, errors, wall, timed_out = asyncio.run(drive(f"http://127.0.0.1:{port}", args, sample))
            time.sleep(0.3)
            server_cpu = watch.cpu_s - cpu_before  # includes the warm-up view and the model load
        finally:
            writer.stop.set()
            watch.stop.set()
            stop_app(app)
        server_log = (work / "app.log").read_text(errors="replace")
    server_errors = [line for line in server_log.splitlines() if "Traceback" in line or "Error" in line]
    if timed_out:
        planned = args.sessions * (args.views + 1) + args.forecasts
        errors.append(f"the load did not finish within {args.timeout:g} s (--timeout): {len(results)} of {planned} "
                      "views and forecasts had completed (the figures are theirs), the rest were stopped")
        log.error("%s", errors[-1])
    stats = summarise(results)
    summary: dict[str, Any] = {
        "sessions": args.sessions, "forecasts": args.forecasts, "views_per_session": args.views,
        "images_per_forecast": args.images, "wall_s": round(wall, 1), "completed": len(results),
        "throughput_views_per_s": round(len(results) / wall, 2), "latency": stats,
        "server_cpu_s": round(server_cpu, 1), "server_peak_rss_mb": round(watch.peak_mb, 1),
        "server_rss_before_load_mb": round(idle_mb, 1), "records_written_meanwhile": writer.written,
        "timed_out": timed_out, "errors": errors, "server_log_errors": server_errors[:20]}
    print(f"{len(results)} views/forecasts completed in {wall:.1f}s "
          f"({summary['throughput_views_per_s']} per second); {writer.written} records written meanwhile")
    for kind, s in stats.items():
        print(f"  {kind:12s} n={s['n']:3d}  p50 {s['p50_s']:6.2f}s  p95 {s['p95_s']:6.2f}s  max {s['max_s']:6.2f}s")
    print(f"server peak RSS {watch.peak_mb:.0f} MiB (before the load: {idle_mb:.0f} MiB); server CPU "
          f"{server_cpu:.0f} s in all, {server_cpu / max(len(results), 1):.2f} s per view or forecast "
          f"(the browsers share the same cores, so latencies include their rendering)")
    print(f"errors: {len(errors) + len(server_errors)}" + "".join(f"\n  {e}" for e in errors + server_errors))
    if args.report:
        store.write_file_atomic(args.report, json.dumps(summary, indent=2) + "\n")
    return 0 if not errors and not server_errors else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
