"""The grid runner's config: parsing and expanding a grid into cells, and what it refuses (bad grids, bad
options, settings only a built method can check) before any cell runs. Running cells is in test_grid_runner.py,
what one cell measures and records in test_grid_cell.py."""
import pytest

from core.experiment import cell_id
from core.grid_config import GridConfigError, parse_grid
from jobs import grid as grid_job
from tests.grid_helpers import write_grid


@pytest.fixture(scope="module")
def known():
    return grid_job._known()


def test_cells_expand_models_datasets_methods_seeds_and_sweeps(known):
    grid = parse_grid({"models": ["m"], "datasets": ["shape-kind", "letters"], "methods": ["lora", "bitfit"],
                       "seeds": [0, 1], "ood": "world-panel", "sweep": {"lora.rank": [2, 8]}},
                      known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    assert len(grid.cells) == 2 * (2 + 1) * 2
    assert {c["method_config"].get("rank") for c in grid.cells if c["method"] == "lora"} == {2, 8}
    assert grid.cells[0]["ood"] == ["scene-kind", "shape-colour", "texture-colour", "printed-digits"]


def test_a_methods_own_recipe_and_settings_override_the_grids_and_a_sweep_overrides_both(known):
    grid = parse_grid({"models": ["m"], "datasets": ["letters"], "methods": ["lora", "bitfit"],
                       "train": {"lr": 1e-3, "batch_size": 32},
                       "method": {"lora": {"rank": 8, "scale": 0.5, "train": {"lr": 1e-4}}},
                       "sweep": {"lora.rank": [4, 16]}},
                      known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    lora = [c for c in grid.cells if c["method"] == "lora"]
    assert {c["train"]["lr"] for c in lora} == {1e-4} and {c["train"]["batch_size"] for c in lora} == {32}
    assert sorted(c["method_config"]["rank"] for c in lora) == [4, 16]  # the sweep, not the table's 8
    assert {c["method_config"]["scale"] for c in lora} == {0.5} and len({cell_id(c) for c in lora}) == 2
    (bitfit,) = [c for c in grid.cells if c["method"] == "bitfit"]
    assert bitfit["train"]["lr"] == 1e-3 and bitfit["method_config"] == {}


def test_cell_id_ignores_key_order_and_changes_with_config():
    a = {"model": "m", "dataset": "d", "method": "x", "seed": 0}
    assert cell_id(a) == cell_id(dict(reversed(list(a.items()))))
    assert cell_id(a) != cell_id({**a, "seed": 1})


@pytest.mark.parametrize("data, match", [
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "colour": 1}, "unknown grid key"),
    ({"models": "m", "datasets": [], "methods": ["bitfit"]}, "'datasets' must be a non-empty list"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["magic"]}, "unknown method 'magic'"),
    ({"models": ["m"], "datasets": ["nope"], "methods": ["bitfit"]}, "unknown dataset 'nope'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "ood": ["letters"]}, "both trained on"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "train": {"lrr": 1}}, "unknown training"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["lora"], "method": {"lora": {"rnk": 2}}},
     "unknown setting.*'rnk'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [True]}, "'seeds'"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [-1]}, "seeds must lie in"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "seeds": [2**32]}, "seeds must lie in"),
    ({"models": ["m"], "datasets": ["folder:/" + "d" * 200], "methods": ["bitfit"]},
     "'datasets'.* is 208 characters long; a record's text field holds at most 200"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "source": 5}, "'source' must be a non-empty"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "source": "s" * 201}, "'source'.* 201 char"),
    ({"models": [" "], "datasets": ["letters"], "methods": ["bitfit"]}, "'models' holds an empty name"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "name": 5}, "'name' must be a non-empty"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "name": " "}, "'name' must be a non-empty"),
    ({"models": ["m"], "datasets": ["letters"], "methods": ["bitfit"], "description": [["a"]]},
     "'description' must be text"),
])
def test_bad_grids_name_the_problem(data, match, known):
    with pytest.raises(GridConfigError, match=match):
        parse_grid(data, **known)


def test_cli_bad_config_exits_nonzero_with_message(tmp_path, caplog):
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [\n", encoding="utf-8")
    assert grid_job.main([str(bad), "--results", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in caplog.text
    assert grid_job.main([str(tmp_path / "missing.toml"), "--results", str(tmp_path / "r")]) == 2
    assert grid_job.main([str(tmp_path), "--results", str(tmp_path / "r")]) == 2
    assert f"grid file {tmp_path} is a folder, not a TOML file" in caplog.text


@pytest.mark.parametrize("extra_args, message", [
    (["--cache", "{file}"], "--cache {file} is a file, not a folder"),
    (["--slurm-partition", "gpu"], "--slurm-partition only applies with --executor slurm"),
    (["--cpus-per-task", "4"], "--cpus-per-task only applies with --executor slurm"),
    (["--parallelism", "8"], "--parallelism only applies with a submitit executor"),
    (["--executor", "slurm", "--parallelism", "0"], "--parallelism must be at least 1"),
    (["--executor", "slurm", "--timeout-min", "-5"], "--timeout-min must be at least 1"),
    (["--executor", "slurm", "--cpus-per-task", "0"], "--cpus-per-task must be at least 1"),
    (["--executor", "slurm", "--gpus-per-task", "-1"], "--gpus-per-task must be at least 0"),
])
def test_options_are_checked_before_any_cell_runs(tmp_path, caplog, extra_args, message):
    a_file = tmp_path / "cache.csv"
    a_file.write_text("x", encoding="utf-8")
    results = tmp_path / "r"
    args = [a.format(file=a_file) for a in extra_args]
    assert grid_job.main([str(write_grid(tmp_path)), "--results", str(results), *args]) == 2
    assert message.format(file=a_file) in caplog.text
    assert not results.exists()  # refused before anything was written


@pytest.mark.parametrize("method, table, message", [
    ("orthogonal", "block_size = 7", "block_size 7 does not divide"),
    ("peft_lora", 'peft = { target_modules = ["qproj"] }', "qproj"),
    ("peft_vera", "peft = { r = 0 }", "method 'peft_vera' on worldclip-tiny-random"),
    ("clip_adapter", "reduction = 1000", "leaves no hidden unit"),
    ("peft_oft", "peft = { oft_block_size = 7 }", "peft changed a requested setting"),  # peft would run 8
])
def test_settings_only_a_built_method_can_check_are_refused_before_any_cell(tmp_path, caplog, method, table,
                                                                             message):
    results = tmp_path / "r"
    config = write_grid(tmp_path, methods=f'["{method}"]', extra=f"[method.{method}]\n{table}")
    assert grid_job.main([str(config), "--results", str(results), "--dry-run"]) == 2  # was: accepted
    assert message in caplog.text
    assert grid_job.main([str(config), "--results", str(results)]) == 2 and not results.exists()


def test_dry_run_writes_nothing(tmp_path, capsys):
    results = tmp_path / "r"
    assert grid_job.main([str(write_grid(tmp_path)), "--results", str(results), "--dry-run"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2 and not results.exists()


def test_help_names_the_cache_the_cells_use_by_default(capsys):
    """--cache's help names the folder core.embed uses without it: $IIMM_CACHE when set, not only
    .cache/embeddings (the help said the latter alone while the cells wrote to $IIMM_CACHE)."""
    with pytest.raises(SystemExit) as stop:
        grid_job.main(["--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "$IIMM_CACHE" in text and ".cache/embeddings" in text


def test_a_grid_can_run_some_methods_seeds_and_models_first(known):
    grid = parse_grid({"models": ["m", "n"], "datasets": ["shape-kind", "letters"], "methods": ["lora", "bitfit"],
                       "seeds": [0, 1]}, known_methods=known["known_methods"], known_datasets=known["known_datasets"])
    assert [c["seed"] for c in grid.cells] == [0] * 8 + [1] * 8  # seeds outermost
    part = grid_job.select_cells(grid, "bitfit", "1", "n")
    assert [(c["method"], c["seed"], c["model"]) for c in part.cells] == [("bitfit", 1, "n")] * 2
    assert {cell_id(c) for c in part.cells} < {cell_id(c) for c in grid.cells}
    assert len(grid_job.select_cells(grid, None, None, "m, n").cells) == len(grid.cells)
    with pytest.raises(GridConfigError, match="'o'"):
        grid_job.select_cells(grid, None, None, "m,o")
    with pytest.raises(GridConfigError, match="'attention'"):
        grid_job.select_cells(grid, "attention", None)
    with pytest.raises(GridConfigError, match="integers"):
        grid_job.select_cells(grid, None, "zero")


@pytest.mark.parametrize("train", [5, "lr", [1]])
def test_a_methods_train_key_that_is_not_a_table_is_named(train, known):
    """[method.lora] train = 5 raised a bare TypeError (a traceback from jobs.grid); train = "lr" was
    reported as unknown settings ['l', 'r']."""
    data = {"models": ["m"], "datasets": ["letters"], "methods": ["lora"], "method": {"lora": {"train": train}}}
    with pytest.raises(GridConfigError, match=r"\[method.lora\] key 'train' must be a table"):
        parse_grid(data, **known)


@pytest.mark.parametrize("extra, match", [({"methods": ["lora", "bitfit", "lora"]}, "'methods' lists 'lora' more"),
                                          ({"seeds": [0, 1, 0]}, "'seeds' lists 0 more"),
                                          ({"datasets": ["letters", "letters"]}, "'datasets' lists 'letters'"),
                                          ({"sweep": {"lora.rank": [4, 8, 4]}}, "sweep lora.rank lists 4 more")])
def test_a_name_or_value_listed_twice_is_refused(extra, match, known):
    """Repeats made cells with one id: counted twice, run once, and with workers the copy could come back as
    'held by another runner' (exit code 3)."""
    data = {"models": ["m"], "datasets": ["letters"], "methods": ["lora", "bitfit"], **extra}
    with pytest.raises(GridConfigError, match=match):
        parse_grid(data, **known)


def test_only_datasets_may_be_folders(known):
    """The "folder:" exemption of the dataset check also let a method "folder:lora" through: preflight then
    ended in a bare KeyError traceback."""
    with pytest.raises(GridConfigError, match="unknown method 'folder:lora'"):
        parse_grid({"models": ["m"], "datasets": ["letters"], "methods": ["folder:lora"]}, **known)
    grid = parse_grid({"models": ["m"], "datasets": ["folder:/data/x"], "methods": ["lora"]}, **known)
    assert grid.cells[0]["dataset"] == "folder:/data/x"


def test_more_workers_than_windows_allows_are_refused_naming_the_option(tmp_path, caplog, monkeypatch):
    """Python's process pool takes at most 61 workers on Windows: --workers 64 there got past every check, marked
    the results folder, and then ended in "error: max_workers must be <= 61", which names no option."""
    import sys
    import types
    from concurrent.futures import process

    monkeypatch.setattr(grid_job, "_WINDOWS", True)
    # the pool's own look at the platform (sys.platform itself stays: torch reads it on import)
    monkeypatch.setattr(process, "sys", types.SimpleNamespace(**{**vars(sys), "platform": "win32"}))
    results = tmp_path / "r"
    workers = str(process._MAX_WINDOWS_WORKERS + 1)
    assert grid_job.main([str(write_grid(tmp_path)), "--results", str(results), "--workers", workers]) == 2
    assert f"--workers {workers}: Windows runs at most 61 worker processes" in caplog.text
    assert not results.exists()  # refused before anything was written
