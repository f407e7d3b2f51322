"""jobs.bench_memory: reruns of the All runs page, with and without core.garbage's collection."""
from __future__ import annotations

import pytest

from core import garbage
from jobs import bench_memory


@pytest.fixture
def counted(monkeypatch):
    calls = []
    monkeypatch.setattr(garbage, "collect_if_grown", lambda **kw: calls.append(kw) or False)
    return calls


def test_it_reports_every_rerun_and_the_memory_it_ends_with(counted, capsys):
    assert bench_memory.main(["--runs", "300", "--reruns", "2"]) == 0
    out = capsys.readouterr().out
    assert "300 runs, 2 'sort by' changes; collection on" in out
    assert "first run" in out and "rerun 2" in out and "rerun 3" not in out
    assert "MB after the first run" in out
    assert len(counted) >= 3  # every page run offered a collection


def test_no_collect_turns_the_collection_off_for_the_run_only(counted, capsys):
    assert bench_memory.main(["--runs", "300", "--reruns", "1", "--no-collect"]) == 0
    assert counted == []
    assert "collection OFF" in capsys.readouterr().out
    garbage.collect_if_grown()  # put back afterwards: the counting stand-in again
    assert len(counted) == 1


@pytest.mark.parametrize("argv", [["--reruns", "0"], ["--runs", "-3"]])
def test_counts_below_one_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_memory.main(argv)
    assert exc.value.code == 2
    assert "must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--reruns", "two"], ["--runs", "1e5"]])
def test_counts_that_are_not_whole_numbers_are_refused_in_plain_words(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench_memory.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected a whole number" in err and "_positive" not in err


@pytest.mark.parametrize("env", [None, "/somewhere/results"])
def test_the_store_it_points_the_app_at_is_put_back(counted, capsys, monkeypatch, env):
    from core import store

    if env is None:
        monkeypatch.delenv(store.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(store.ENV_VAR, env)
    shipped = store.SHIPPED_DIR
    assert bench_memory.main(["--runs", "300", "--reruns", "1"]) == 0
    assert store.SHIPPED_DIR == shipped
    assert __import__("os").environ.get(store.ENV_VAR) == env
