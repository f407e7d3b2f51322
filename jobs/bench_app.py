"""Benchmark the app's two heavy paths against their goals.

    python -m jobs.bench_app [--runs 100000] [--images 500] [--no-apptest]
    python -m jobs.bench_app --browser [--images 160] [--index warm|cold|off] [--script serve.py|app.py]
    python -m jobs.bench_app --compare 44x300

(d) --compare METHODSxDATASETS: only the Compare page's first view (:mod:`jobs.bench_compare`), through AppTest with
    Streamlit's caches cleared, three times on a synthetic store of one model's METHODS x DATASETS runs, then three
    times on the shipped store.

(c) --browser: the real app on a freshly started server with the shipped store, driven by
    Chromium (1440x900) as a user would: the leaderboard's first view (navigation start to the
    ranking table and chart drawn, the run finished), a filter rerun (pick a "rank by" option to
    the new table), and the first forecast of M uploaded images (click on "Run forecast" to the
    advice shown; the model is not loaded before the click). Goals: <= 4 s, <= 1.5 s, <= 10 s.
    The server's store index (core.store.index) lives in a temporary folder: ``warm`` (default)
    as an earlier server left it, ``cold`` empty (the first start after a clone), ``off`` unused.
    ``--script``: the server as the README starts it (``serve.py``: imports warmed before the first
    visitor, default) or ``app.py`` (the first visitor's page imports them).

(a) The runs table with N runs in the store (a synthetic compacted Parquet in a temp folder,
    source='synthetic-bench'): the page's core path — load, filter and model options, query,
    labels and Arrow bytes of the shown rows — cold, then an AppTest run of
    pages/runs.py against the same store (first run with cold caches, a filter
    change, and a plain rerun), then of the landing page (app.py: the method ranking) with caches
    cleared and after a "rank by" change. Goal: < 1 s.
(b) A forecast for M generated 32x32 images (5 classes) end to end: zip on disk ->
    core.upload -> core.predict (embedding, zero-shot measures with bootstrap,
    transferability baselines, per-method forecasts on fixture reference runs) with the
    offline default model; when its weights are missing the random-weight tiny model is
    used and the figure is labelled so. Model loading is timed separately (the app caches
    the model across uploads). Goal: < 15 s.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from core import store
from jobs.cli import EXIT_USER_ERROR, job_parser, user_facing, work_begins

REPO = Path(__file__).resolve().parent.parent
LEADERBOARD_GOAL_S = 1.0
FORECAST_GOAL_S = 15.0


def _line(label: str, seconds: float, goal: float | None = None) -> None:
    verdict = "" if goal is None else ("  OK" if seconds < goal else f"  SLOWER than the {goal:g} s goal")
    print(f"  {label:<58} {seconds:7.3f} s{verdict}", flush=True)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def build_store(root: Path, n: int) -> None:
    from jobs.bench_store import synthetic_records  # the store benchmark's realistic fake runs

    records = synthetic_records(n)
    for rec in records:  # as jobs.grid writes them (core.experiment): model metadata in provenance
        rec["provenance"].setdefault("embed_dim", 512)
        rec["provenance"].setdefault("weights_source", "synthetic-bench")
    store.write_records_parquet(records, root)


def bench_leaderboard(n: int, apptest: bool) -> dict[str, float]:
    print(f"(a) leaderboard with {n} runs (goal < {LEADERBOARD_GOAL_S:g} s)")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="iimm-bench-app-") as tmp:
        root = Path(tmp) / "results"
        _, dt = _timed(lambda: build_store(root, n))
        print(f"  built the synthetic store in {dt:.1f} s (not part of any figure)")
        runs, t_load = _timed(lambda: store.load_runs([root]))
        _line("store.load_runs (cold)", t_load)

        def overview():  # what pages/runs.py shows above the table: filter options, models by ok runs
            opts = {k: sorted(runs[k].dropna().astype(str).unique()) for k in store.FILTER_KEYS}
            return opts, (runs["status"] == "ok").groupby([runs["model"], runs["pretrained"]]).sum()

        _, t_over = _timed(overview)
        _line("filter options + model options", t_over)
        view, t_q = _timed(lambda: store.query_runs(runs, sort_by="id_gain"))
        _line(f"store.query_runs, no filter, sorted ({len(view)} rows)", t_q)
        narrow, t_qf = _timed(lambda: store.query_runs(runs, filters={"method": ["lora"], "model": ["ViT-B-32"]},
                                                       search="svhn", sort_by="iimm", descending=False))
        _line(f"store.query_runs, 2 filters + search ({len(narrow)} rows)", t_qf)

        def formatting():  # pages/runs.py: the shown rows' labels, then the Arrow bytes st.dataframe sends
            from core import cards

            top = view[list(store.LEADERBOARD_COLUMNS)].head(1000)
            shown = top.assign(model_label=top["model"] + " · " + top["pretrained"],
                               method_title=top["method"].map(cards.method_title))
            import pyarrow as pa

            table, sink = pa.Table.from_pandas(shown), pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:  # the bytes sent to the browser
                writer.write_table(table)
            return sink.getvalue()

        _, t_fmt = _timed(formatting)
        _line("formatting of the 1000 shown rows (labels, Arrow)", t_fmt)
        out["core_cold_s"] = t_load + t_over + t_q + t_fmt
        _line("core path, cold total (load + overview + query + format)", out["core_cold_s"], LEADERBOARD_GOAL_S)
        out["core_rerun_s"] = t_q + t_fmt
        _line("core path without the load (a rerun with a new query)", out["core_rerun_s"], LEADERBOARD_GOAL_S)
        _, t_csv = _timed(lambda: store.to_csv_bytes(view.drop(columns=[store.EXTRA_COLUMN])))
        _line("CSV of every run (built only when Download is clicked)", t_csv)
        if apptest:
            with app_store(root, Path(tmp) / "shipped"):
                out.update(_bench_apptest())
    return out


@contextmanager
def app_store(root: Path, empty: Path) -> Iterator[None]:
    """For the block, pages run in this process read only ``root``: the store variable names it, and the empty
    folder ``empty`` stands in for the shipped results (they stay out of the figures). Put back afterwards, as
    jobs.bench runs other parts in the same process."""
    saved = os.environ.get(store.ENV_VAR), store.SHIPPED_DIR
    empty.mkdir(exist_ok=True)
    os.environ[store.ENV_VAR], store.SHIPPED_DIR = str(root), empty
    try:
        yield
    finally:
        store.SHIPPED_DIR = saved[1]
        if saved[0] is None:
            os.environ.pop(store.ENV_VAR, None)
        else:
            os.environ[store.ENV_VAR] = saved[0]


def _bench_apptest() -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "pages" / "runs.py"), default_timeout=300)
    out = {}
    _, out["apptest_first_s"] = _timed(at.run)
    if at.exception:
        print(f"  AppTest failed: {at.exception[0].message}")
        return out
    _line(f"AppTest first run, cold caches ({len(at.dataframe[0].value)} rows shown)", out["apptest_first_s"],
          LEADERBOARD_GOAL_S)
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    _, out["apptest_cold_cache_s"] = _timed(at.run)
    _line("AppTest run, caches cleared (a warm server's first visitor)", out["apptest_cold_cache_s"],
          LEADERBOARD_GOAL_S)
    at.multiselect(key="method").select("lora")
    _, out["apptest_filter_s"] = _timed(at.run)
    _line("AppTest rerun after a filter change (new query)", out["apptest_filter_s"], LEADERBOARD_GOAL_S)
    _, out["apptest_rerun_s"] = _timed(at.run)
    _line("AppTest rerun, same view (cached)", out["apptest_rerun_s"], LEADERBOARD_GOAL_S)
    at.selectbox(key="run").set_value(at.dataframe[0].value["run_id"].iloc[0])  # options show labels, values are ids
    _, out["apptest_details_s"] = _timed(at.run)
    _line("AppTest rerun showing one run's details", out["apptest_details_s"], LEADERBOARD_GOAL_S)
    out.update(_bench_landing())
    return out


def _bench_landing() -> dict[str, float]:
    """The landing page (the method ranking, app.py's default page) on the same store."""
    from streamlit.testing.v1 import AppTest
    import streamlit as st

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    out: dict[str, float] = {}
    _, first = _timed(at.run)
    if at.exception:
        print(f"  AppTest of the landing page failed: {at.exception[0].message}")
        return out
    rows = len(at.dataframe[0].value) if at.dataframe else 0
    _line(f"landing page (ranking), first run ({rows} methods ranked)", first, LEADERBOARD_GOAL_S)
    st.cache_data.clear()
    st.cache_resource.clear()
    _, out["landing_cold_cache_s"] = _timed(at.run)
    _line("landing page, caches cleared (a warm server's first visitor)", out["landing_cold_cache_s"],
          LEADERBOARD_GOAL_S)
    from core.ranking import RANK_BY

    at.selectbox(key="rank").set_value(list(RANK_BY)[1])  # a value: the widget's options are its labels
    _, out["landing_rank_by_s"] = _timed(at.run)
    _line("landing page rerun after a 'rank by' change", out["landing_rank_by_s"], LEADERBOARD_GOAL_S)
    return out


def sample_zip(path: Path, n: int, n_classes: int = 5, size: int = 32, seed: int = 0) -> None:
    """n PNG images in class folders: a coloured disc per class on a noisy background."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for i in range(n):
            k = i % n_classes
            px = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
            cx, cy, r = rng.integers(8, size - 8, 2).tolist() + [int(rng.integers(4, 8))]
            px[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = np.array(
                [(37 * k) % 256, (97 * k + 80) % 256, (180 - 53 * k) % 256], np.uint8)
            buf = io.BytesIO()
            Image.fromarray(px).save(buf, format="PNG")
            zf.writestr(f"class-{k}/{i:05d}.png", buf.getvalue())


def bench_forecast(n_images: int) -> dict[str, float]:
    from core import predict
    from core.models import ASSET_DIR, DEFAULT_MODEL, list_models, load_model, spec_for
    from core.upload import load_image_folder_zip
    from tests.fixtures import make_fixture_records

    default = spec_for(DEFAULT_MODEL)
    key = DEFAULT_MODEL if (ASSET_DIR / (default.shipped_weights or "")).is_file() else "worldclip-tiny-random"
    spec = next(s for s in list_models() if s.key == key)
    note = "" if key == DEFAULT_MODEL else f"  [weights of {DEFAULT_MODEL} missing: {spec.label}]"
    print(f"(b) forecast on {n_images} generated 32x32 images with {key}{note} (goal < {FORECAST_GOAL_S:g} s)")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="iimm-bench-fc-") as tmp:
        path = Path(tmp) / "sample.zip"
        sample_zip(path, n_images)
        print(f"  sample zip: {path.stat().st_size / 1e6:.2f} MB")
        runs = store.records_to_frame(make_fixture_records(model=spec.arch, pretrained=spec.pretrained_tag,
                                                           methods=("full", "bitfit", "lora", "adapter")))
        loaded, out["model_load_s"] = _timed(lambda: load_model(key))
        _line("load the model (cached by the app after the first upload)", out["model_load_s"])
        t0 = time.perf_counter()
        sample, t_up = _timed(lambda: load_image_folder_zip(path))
        res = predict.forecast_for_sample(loaded, sample.data, runs)
        out["forecast_s"] = time.perf_counter() - t0
        _line("core.upload.load_image_folder_zip", t_up)
        for k, v in res.timings.items():
            _line(f"core.predict: {k.removesuffix('_s')}", v)
        _line(f"upload + forecast end to end{' (RANDOM WEIGHTS model)' if spec.random_weights else ''}",
              out["forecast_s"], FORECAST_GOAL_S)
        _line("the same including the model load", out["forecast_s"] + out["model_load_s"], FORECAST_GOAL_S)
        print(f"  result: {res.title}; IIMM {res.iimm:.3f} [{res.iimm_lo:.3f}, {res.iimm_hi:.3f}]; "
              f"{int((res.forecasts['status'] == 'ok').sum())} methods forecast")
    return out


RUNS_DEFAULT = 100_000


def _print_machine() -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}")


def _options_not_applying(args: argparse.Namespace) -> str | None:
    """A sentence naming the options given that the chosen benchmark would ignore (None where none is): they were
    dropped without a word, so a figure could be read as measured under a setting it never had."""
    given = {"--browser": args.browser, "--no-apptest": args.no_apptest, "--runs": args.runs != RUNS_DEFAULT,
             "--images": args.images is not None, "--index": args.index != "warm", "--script": args.script != "serve.py"}
    if args.compare is not None:
        extra = [name for name, set_ in given.items() if set_]
        return f"--compare times the Compare page alone; {', '.join(extra)} would be ignored" if extra else None
    if not args.browser:
        extra = [name for name in ("--index", "--script") if given[name]]
        return f"{', '.join(extra)} only apply with --browser" if extra else None
    extra = [name for name in ("--runs", "--no-apptest") if given[name]]
    return f"{', '.join(extra)} do not apply with --browser" if extra else None


@user_facing
def main(argv: list[str] | None = None) -> int:
    parser = job_parser("python -m jobs.bench_app", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=RUNS_DEFAULT, help="runs in the synthetic store (default 100000)")
    parser.add_argument("--images", type=int, default=None, help="default 500 (160 with --browser)")
    parser.add_argument("--no-apptest", action="store_true", help="skip the AppTest run of the leaderboard")
    parser.add_argument("--browser", action="store_true", help="only the issue's goals, measured in Chromium")
    parser.add_argument("--index", choices=("warm", "cold", "off"), default="warm",
                        help="with --browser: the server's store index as an earlier server left it (warm), "
                             "empty (cold), or not used (off)")
    parser.add_argument("--script", choices=("serve.py", "app.py"), default="serve.py",
                        help="with --browser: the script the server runs (default serve.py, as the README)")
    parser.add_argument("--compare", metavar="METHODSxDATASETS", default=None,
                        help="only the Compare page's first view (AppTest, caches cleared), 3 times each on a synthetic "
                             "store of METHODS x DATASETS runs of one model (e.g. 44x300) and on the shipped store")
    args = parser.parse_args(argv)
    ignored = _options_not_applying(args)
    if ignored:
        print(f"error: {ignored}", file=sys.stderr)
        return EXIT_USER_ERROR
    if args.compare is not None:
        size = args.compare.lower().split("x")
        if len(size) != 2 or not all(part.isdigit() and int(part) > 0 for part in size):
            print(f"error: --compare takes METHODSxDATASETS, e.g. 44x300 (got {args.compare!r})", file=sys.stderr)
            return EXIT_USER_ERROR
        work_begins()
        from jobs.bench_compare import bench_compare

        _print_machine()
        bench_compare(int(size[0]), int(size[1]))
        return 0
    args.images = args.images or (160 if args.browser else 500)
    if args.runs < 1 or args.images < 10:
        print("error: --runs must be >= 1 and --images >= 10", file=sys.stderr)
        return EXIT_USER_ERROR
    work_begins()
    _print_machine()
    if args.browser:
        from jobs.bench_browser import bench_browser

        bench_browser(args.images, index=args.index, script=args.script)
        return 0
    bench_leaderboard(args.runs, not args.no_apptest)
    bench_forecast(args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
