"""Fixtures shared by several test modules."""
from __future__ import annotations

import os
import sys

import pytest


def _folder_variable_in_temp(tmp_path_factory, name: str, folder: str):
    """Set the environment variable ``name`` to a new temporary folder for the session, then put it back."""
    saved = os.environ.get(name)
    os.environ[name] = str(tmp_path_factory.mktemp(folder))
    yield
    if saved is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = saved


@pytest.fixture(autouse=True, scope="session")
def _store_index_outside_the_repository(tmp_path_factory):
    """The app keeps an index of the store's records (core.store.index); under test, in a temporary
    folder rather than the repository's .cache (app servers started by tests inherit it)."""
    # core.store.INDEX_ENV_VAR; not imported, so collection stays light
    yield from _folder_variable_in_temp(tmp_path_factory, "IIMM_STORE_INDEX", "store-index")


@pytest.fixture(autouse=True, scope="session")
def _embedding_cache_outside_the_repository(tmp_path_factory):
    """A job run without --cache keeps embeddings in ``$IIMM_CACHE``, else ``.cache/embeddings`` under the working
    folder (core.embed.default_cache_dir): under test, in a temporary folder rather than the checkout, for jobs
    run in-process and the job processes tests start alike."""
    # not imported from core.embed, so collection stays light
    yield from _folder_variable_in_temp(tmp_path_factory, "IIMM_CACHE", "embedding-cache")


@pytest.fixture(autouse=True)
def _streamlit_deprecations_refused():
    """Streamlit logs its deprecations rather than warning (pyproject.toml's filters never see them): a test in
    which our code made a call Streamlit deprecates fails (tests/streamlit_deprecations.py)."""
    from tests.streamlit_deprecations import refused  # imports no Streamlit: collection stays light

    with refused():
        yield


@pytest.fixture(autouse=True)
def _torch_left_as_found():
    """Jobs run in-process change torch for the whole process: jobs.pretrain --threads and jobs.grid's in-process
    runner set its thread count, and both seed its global generator, as do tests that seed it without
    torch.random.fork_rng. Each test leaves both as it found them, so no test's speed or numbers depend on the
    tests before it. torch is not imported here (collection stays light): a test that imports it first is not
    watched. A page test's background model load (core.model_pool) may still be importing torch when the next test
    starts: ``import torch`` then waits for that import to finish, where the half-made module in sys.modules had
    no get_num_threads yet and the next tests of the file errored (tests/test_app_outline.py run alone)."""
    if "torch" not in sys.modules:
        yield
        return
    import torch  # waits while another thread is still importing it
    threads, state = torch.get_num_threads(), torch.random.get_rng_state()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    torch.random.set_rng_state(state)


@pytest.fixture(autouse=True)
def _job_loggers_left_as_found():
    """A job's main sets its own logger to INFO for its progress lines (jobs.forecast, jobs.predictors,
    jobs.check_before); run in-process, that level stayed for every later test. Each test leaves the levels of
    the jobs' loggers as it found them."""
    import logging

    def levels():
        return {name: logger.level for name, logger in logging.root.manager.loggerDict.items()
                if name.startswith("jobs") and isinstance(logger, logging.Logger)}

    before = levels()
    yield
    for name, level in levels().items():
        if level != before.get(name, logging.NOTSET):
            logging.getLogger(name).setLevel(before.get(name, logging.NOTSET))


@pytest.fixture
def later(monkeypatch):
    """Loads happen well after the files were written (past the store index's racy window, which the
    Parquet memo of core.store.load shares; a file's change time cannot be set back)."""
    from core.store import index as store_index

    real = store_index.time_ns
    monkeypatch.setattr(store_index, "time_ns", lambda: real() + 10 * store_index.RACY_NS)


@pytest.fixture
def fixture_store(tmp_path, monkeypatch):
    """18 fixture runs of the random tiny model (3 methods x 6 datasets, 2 of them failed) as the
    only store; the shipped folder is pointed at an empty one so real results never leak in."""
    from core import store
    from tests.fixtures import write_fixture_store

    results, shipped = tmp_path / "results", tmp_path / "shipped"
    shipped.mkdir()
    write_fixture_store(results, pretrained="random", n_failed=2)
    monkeypatch.setenv(store.ENV_VAR, str(results))
    monkeypatch.setattr(store, "SHIPPED_DIR", shipped)
    monkeypatch.setenv("IIMM_FORECAST_MODEL", "worldclip-tiny-random")
    return results


@pytest.fixture(scope="module")
def loaded():
    """The tiny random-weight model (``worldclip-tiny-random``), with torch on one thread while a module runs:
    the machine is shared, and one thread is also fastest for this model. Its weights are drawn from a fixed
    seed (without touching the global generator), so they do not depend on which tests ran before."""
    import torch

    from core.models import load_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = load_model("worldclip-tiny-random")
    yield model
    torch.set_num_threads(threads)
