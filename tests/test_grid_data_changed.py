"""A resumed grid whose data changed since some of its cells ran: the cells skipped as finished are named."""
from pathlib import Path

from core import store
from core.experiment import cell_id
from jobs import grid as grid_job
from tests.fixtures import make_fixture_records

GRID = """
models = ["worldclip-tiny-random"]
datasets = ["chart-trend"]
methods = ["zero_shot", "bitfit"]
seeds = [0, 1]
ood = ["scene-kind"]
source = "test"
[train]
max_steps = 2
"""


def _fake_cells(monkeypatch, train: str) -> None:
    """execute_cell writes an ok record for the cell, as if run on data whose train split hashes to ``train``."""
    template = make_fixture_records(n_datasets=1, methods=("bitfit",))[0]

    def execute(cell, results, *args, **kwargs):
        store.write_record({**template, "run_id": cell_id(cell), "method": cell["method"], "seed": cell["seed"],
                            "dataset": cell["dataset"], "provenance": {**template["provenance"], "data_fingerprint": {
                                "train": train, "test": "same", "ood": {"scene-kind": "same"}}}}, Path(results))
        return "done"

    monkeypatch.setattr(grid_job, "execute_cell", execute)


def test_a_resumed_grid_names_the_finished_cells_that_ran_on_other_data(tmp_path, monkeypatch, caplog):
    """A user's folder changed between seeds: resuming the grid skipped the cells finished on the old files,
    said only '2 already finished', and the ranking then averaged old and new data."""
    config, results = tmp_path / "grid.toml", tmp_path / "results"
    config.write_text(GRID, encoding="utf-8")
    cells = grid_job.load_grid(config, **grid_job._known()).cells
    _fake_cells(monkeypatch, "old-files")
    assert grid_job.main([str(config), "--results", str(results), "--seeds", "0"]) == 0
    _fake_cells(monkeypatch, "new-files")
    caplog.clear()
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    (warning,) = [r.getMessage() for r in caplog.records if "ran on other data" in r.getMessage()]
    old = sorted(f"{cell_id(c)}.json" for c in cells if c["seed"] == 0)
    assert warning.startswith("2 finished cell(s) of this grid ran on other data than the cells run now "
                              "(chart-trend train: ")
    assert "skipped, not run again" in warning and f"move their records out of {results}" in warning
    assert warning.endswith(", ".join(old))


def test_a_resumed_grid_on_the_same_data_says_nothing_of_it(tmp_path, monkeypatch, caplog):
    caplog.set_level("INFO", logger="jobs.grid")
    config, results = tmp_path / "grid.toml", tmp_path / "results"
    config.write_text(GRID, encoding="utf-8")
    _fake_cells(monkeypatch, "same-files")
    assert grid_job.main([str(config), "--results", str(results), "--seeds", "0"]) == 0
    assert grid_job.main([str(config), "--results", str(results)]) == 0
    assert "2 already finished" in caplog.text and "ran on other data" not in caplog.text
