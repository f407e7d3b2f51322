"""Grid configs (TOML) -> validated cells. Pure data work: no torch, no model.

A grid names models x datasets x methods x seeds, one shared training recipe, per-method
overrides, optional hyper-parameter sweeps, and the out-of-domain sets. Unknown keys and
wrong types are rejected with one clear message naming the key.
"""
from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.schema import MAX_TEXT

MAX_CELLS = 10_000   # a grid larger than this needs an explicit max_cells (the CLI's --max-cells)
MAX_DEPTH = 6        # tables/arrays nested deeper than this are refused before anything else
TOP_KEYS = {"name", "description", "models", "datasets", "methods", "seeds", "ood", "train", "method",
            "sweep", "source", "workers"}
WORLD_PANEL = "world-panel"
WORLD_V2_PANEL = "world-v2-panel"


class GridConfigError(ValueError):
    """The grid file is invalid; the message names the key and the problem."""


@dataclass
class Grid:
    name: str
    cells: list[dict[str, Any]]
    source: Path | None = None


def _list_of(value: Any, key: str, kind: type) -> list:
    if isinstance(value, kind):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, kind) and not isinstance(v, bool)
                                                           for v in value):
        raise GridConfigError(f"grid key {key!r} must be a non-empty list of {kind.__name__}, got {value!r}")
    _refuse_repeats(value, f"grid key {key!r}")
    return value


def _refuse_repeats(values: list, what: str) -> None:
    """A value listed twice makes cells with the same id (run once, counted twice, and reported as held by
    another runner when two workers draw them): refuse it, naming it."""
    repeated = [v for i, v in enumerate(values) if v in values[:i]]
    if repeated:
        raise GridConfigError(f"{what} lists {repeated[0]!r} more than once")


def _check_known(names: list[str], known: set[str], what: str, *, folders: bool = False) -> None:
    """GridConfigError naming the names not in ``known`` (with ``folders``, "folder:..." datasets pass)."""
    unknown = [n for n in names if n not in known and not (folders and n.startswith("folder:"))]
    if unknown:
        raise GridConfigError(f"unknown {what} {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")


def parse_grid(data: dict[str, Any], *, name: str = "grid", known_methods: set[str] | None = None,
               known_datasets: set[str] | None = None, recipe_fields: set[str] | None = None,
               method_fields: dict[str, set[str]] | None = None, max_cells: int = MAX_CELLS) -> Grid:
    """Validate a parsed TOML mapping and expand it into cells (see module docstring).

    Refused with GridConfigError: unknown keys (sweep keys included: each must be
    ``"<method>.<setting>"`` for a method of the grid and one of its settings), nesting deeper
    than MAX_DEPTH, and more than ``max_cells`` cells (counted before any cell is built).
    """
    from core.schema import nesting_depth

    if nesting_depth(data, MAX_DEPTH) > MAX_DEPTH:
        raise GridConfigError(f"the grid is nested more than {MAX_DEPTH} levels deep (the file's top level is the "
                              "first: [a.b.c.d.e] is 6)")
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise GridConfigError(f"unknown grid key(s) {sorted(unknown)}; allowed: {sorted(TOP_KEYS)}")
    for key in ("models", "datasets", "methods"):
        if key not in data:
            raise GridConfigError(f"grid is missing required key {key!r}")
    models = _list_of(data["models"], "models", str)
    datasets = _list_of(data["datasets"], "datasets", str)
    methods = _list_of(data["methods"], "methods", str)
    seeds = _list_of(data.get("seeds", [0]), "seeds", int)
    if any(not 0 <= seed < 2**32 for seed in seeds):  # the range a record's seed may take (core.schema)
        raise GridConfigError(f"seeds must lie in [0, 2**32 - 1], got {[s for s in seeds if not 0 <= s < 2**32][:3]}")
    ood = data.get("ood", [])
    if ood == WORLD_PANEL:
        from core.data.world import OOD_PANEL

        ood = list(OOD_PANEL)
    elif ood == WORLD_V2_PANEL:
        from core.data.world2 import OOD_PANEL_TASKS

        ood = list(OOD_PANEL_TASKS)
    ood = [] if ood == [] else _list_of(ood, "ood", str)
    # the grid's name is logged and named in errors (str(5) or str([..]) named nothing); the description is prose
    if "name" in data and (not isinstance(data["name"], str) or not data["name"].strip()):
        raise GridConfigError(f"grid key 'name' must be a non-empty string, got {data['name']!r}")
    if "description" in data and not isinstance(data["description"], str):
        raise GridConfigError(f"grid key 'description' must be text, got {type(data['description']).__name__}")
    source = data.get("source", "measured:grid")
    if not isinstance(source, str) or not source.strip():
        raise GridConfigError(f"grid key 'source' must be a non-empty string, got {source!r}")
    for key, names in (("models", models), ("datasets", datasets), ("methods", methods), ("ood", ood),
                       ("source", [source])):
        for name in names:  # a record stores each as a text field: refuse now, not after a cell has run
            if not name.strip():
                raise GridConfigError(f"grid key {key!r} holds an empty name")
            if len(name) > MAX_TEXT:
                raise GridConfigError(f"grid key {key!r}: {name[:60]!r}... is {len(name)} characters long; "
                                      f"a record's text field holds at most {MAX_TEXT}")
    if known_methods is not None:
        _check_known(methods, known_methods, "method")
    if known_datasets is not None:
        _check_known(datasets + ood, known_datasets, "dataset", folders=True)
    overlap = set(datasets) & set(ood)
    if overlap:
        raise GridConfigError(f"dataset(s) {sorted(overlap)} are both trained on and used as OOD sets")
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise GridConfigError("grid key 'train' must be a table of training-recipe settings")
    per_method = data.get("method", {})
    if not isinstance(per_method, dict) or not all(isinstance(v, dict) for v in per_method.values()):
        raise GridConfigError("grid key 'method' must hold one table per method, e.g. [method.lora]")
    sweep = data.get("sweep", {})
    if not isinstance(sweep, dict):
        raise GridConfigError("grid key 'sweep' must be a table like {\"lora.rank\" = [4, 16]}")
    for method, table in per_method.items():
        if not isinstance(table.get("train", {}), dict):
            raise GridConfigError(f"[method.{method}] key 'train' must be a table of training-recipe settings "
                                  f"([method.{method}.train]), got {table['train']!r}")
    for key, settings in [("train", train)] + [(f"method.{m}.train", t.get("train", {}))
                                               for m, t in per_method.items()]:
        if recipe_fields is not None and set(settings) - recipe_fields:
            raise GridConfigError(f"unknown training setting(s) {sorted(set(settings) - recipe_fields)} in "
                                  f"[{key}]; allowed: {sorted(recipe_fields)}")
    for method, table in per_method.items():
        if method not in methods:
            raise GridConfigError(f"[method.{method}] configures a method that is not in 'methods'")
        fields = (method_fields or {}).get(method)
        extra = set(table) - {"train"} - (fields if fields is not None else set(table))
        if extra:
            raise GridConfigError(f"unknown setting(s) {sorted(extra)} for method {method!r}; "
                                  f"allowed: {sorted(fields or [])} and a [method.{method}.train] table")
    _check_sweep(sweep, methods, method_fields)
    count = len(models) * len(datasets) * len(seeds) * sum(
        _variant_count(sweep, m) for m in methods)
    if count > max_cells:
        raise GridConfigError(f"the grid has {count:,} cells, more than the cap of {max_cells:,}; "
                              "split it, or raise the cap with --max-cells if you mean it")
    cells = []
    # seeds outermost: a grid stopped half-way has whole seeds done, not half of every seed
    for seed, model, dataset, method in itertools.product(seeds, models, datasets, methods):
        table = dict(per_method.get(method, {}))
        recipe = {**train, **table.pop("train", {})}
        variants = _sweep_variants(sweep, method)
        for variant in variants:
            cells.append({"model": model, "dataset": dataset, "method": method, "seed": seed, "ood": ood,
                          "method_config": {**table, **variant}, "train": recipe, "source": source})
    return Grid(str(data.get("name", name)), cells)


def _check_sweep(sweep: dict[str, Any], methods: list[str],
                 method_fields: dict[str, set[str]] | None) -> None:
    for key, values in sweep.items():
        method, _, setting = key.partition(".")
        if not setting or method not in methods:
            raise GridConfigError(f"sweep key {key!r} must be \"<method>.<setting>\" for a method in "
                                  f"'methods' ({', '.join(methods)})")
        fields = (method_fields or {}).get(method)
        if fields is not None and setting not in fields:
            raise GridConfigError(f"sweep key {key!r}: {method!r} has no setting {setting!r}; "
                                  f"allowed: {sorted(fields)}")
        if not isinstance(values, list) or not values:
            raise GridConfigError(f"sweep {key} must be a non-empty list")
        _refuse_repeats(values, f"sweep {key}")


def _variant_count(sweep: dict[str, Any], method: str) -> int:
    count = 1
    for key, values in sweep.items():
        if key.split(".", 1)[0] == method:
            count *= len(values)
    return count


def _sweep_variants(sweep: dict[str, Any], method: str) -> list[dict[str, Any]]:
    axes = {k.split(".", 1)[1]: v for k, v in sweep.items() if k.split(".", 1)[0] == method}
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise GridConfigError(f"sweep {method}.{key} must be a non-empty list")
    if not axes:
        return [{}]
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


def load_grid(path: Path, **known: Any) -> Grid:
    """Read and validate a TOML grid file; GridConfigError for unreadable or invalid files."""
    path = Path(path)
    if path.is_dir():
        raise GridConfigError(f"grid file {path} is a folder, not a TOML file")
    if not path.is_file():
        raise GridConfigError(f"grid file {path} does not exist")
    if path.stat().st_size > 1 << 20:
        raise GridConfigError(f"grid file {path} is larger than 1 MiB")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as Windows Notepad may save, read past
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GridConfigError(f"grid file {path} is not valid TOML: {exc}") from exc
    except RecursionError:
        raise GridConfigError(f"grid file {path} is nested too deeply to read") from None
    grid = parse_grid(data, name=path.stem, **known)
    grid.source = path
    return grid
