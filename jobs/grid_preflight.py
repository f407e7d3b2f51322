"""What jobs.grid checks before any cell runs: model names and offline weights, each cell's training recipe
and method settings, and -- by building each (model, method, settings) once -- what only a built method
can check. Every failure is one GridConfigError (exit code 2 in jobs.grid)."""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from core.grid_config import Grid, GridConfigError

log = logging.getLogger("jobs.grid")
#: What a bad method setting raises while the method is built (peft's NoMatchingPeftModuleError is a
#: ValueError; VeRA's r = 0 divides by zero); anything else (out of memory...) is not the config's fault.
SETTING_ERRORS = (ValueError, TypeError, KeyError, ZeroDivisionError)


def _known() -> dict[str, Any]:
    import dataclasses

    from core.data.registry import list_datasets
    from core.methods import METHODS
    from core.train import TrainRecipe

    return {"known_methods": set(METHODS), "known_datasets": {d.name for d in list_datasets()},
            "recipe_fields": {f.name for f in dataclasses.fields(TrainRecipe)} - {"seed"},
            "method_fields": {name: {f.name for f in dataclasses.fields(entry.config_cls)}
                              for name, entry in METHODS.items()}}


def preflight(grid: Grid) -> None:
    """Check what would otherwise fail in every cell, before any runs: model names, weights that
    cannot be fetched offline, training recipes and method settings of the wrong type or range.
    Raises GridConfigError with one message."""
    from core.methods import METHODS
    from core.models import ModelUnavailableError, check_model, hub_reachable, load_model
    from core.train import TrainRecipe

    for name in dict.fromkeys(c["model"] for c in grid.cells):
        try:
            spec = check_model(name)
            if spec.needs_download and not hub_reachable():
                load_model(spec)  # succeeds only when the weights are already in the local cache
        except (ModelUnavailableError, ValueError) as exc:
            raise GridConfigError(f"model {name!r}: {exc}") from exc
    seen: set[str] = set()
    last = time.monotonic()
    for i, cell in enumerate(grid.cells):
        if time.monotonic() - last > 2.0:
            log.info("preflight: checked %d of %d cells", i, len(grid.cells))
            last = time.monotonic()
        key = json.dumps([cell["method"], cell["method_config"], cell["train"]], sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        try:
            METHODS[cell["method"]].config_cls.from_overrides(cell["method_config"])
            if METHODS[cell["method"]].trains:
                TrainRecipe(**{**cell["train"], "seed": cell["seed"]})
        except (TypeError, ValueError) as exc:
            raise GridConfigError(f"method {cell['method']!r}: {exc}") from exc
    _build_each_method_once(grid)


def _structure(name: str) -> Any:
    """A loaded model with ``name``'s architecture, for checking method settings: its own weights where
    they need no download, else random ones (the structure is what matters); None for a hub model."""
    from core.models import check_model, load_model, spec_for

    spec = check_model(name)
    if spec.arch.startswith("hf-hub:"):
        return None
    import torch

    with torch.random.fork_rng(devices=[]):  # the runs' own seeding stays untouched
        return load_model(spec if not spec.needs_download else spec_for(spec.arch))


def _build_each_method_once(grid: Grid) -> None:
    """Settings only a built method can check (orthogonal's block size against the model's width, peft's
    target modules and ranks, an adapter's width): build each (model, method, settings) once, on two
    classes, so they fail here, not in every cell. Raises GridConfigError."""
    from core.methods import build_method

    per_model: dict[str, dict[str, tuple[str, dict]]] = {}  # model -> distinct (method, settings)
    for cell in grid.cells:
        key = json.dumps([cell["method"], cell["method_config"]], sort_keys=True, default=str)
        per_model.setdefault(cell["model"], {})[key] = (cell["method"], dict(cell["method_config"]))
    for model, builds in per_model.items():  # one model in memory at a time
        log.info("preflight: building each method once on %s to check its settings", model)
        try:
            loaded = _structure(model)
        except Exception as exc:  # noqa: BLE001 (e.g. out of memory): each cell then checks its own
            log.warning("preflight: could not load %s to check method settings (%s: %s); each cell will",
                        model, type(exc).__name__, str(exc)[:200])
            continue
        if loaded is None:
            continue
        for method, settings in builds.values():
            try:
                built = build_method(method, loaded, ["a", "b"], "a photo of a {c}", settings)
            except SETTING_ERRORS as exc:
                raise GridConfigError(f"method {method!r} on {model}: {type(exc).__name__}: "
                                      f"{str(exc).splitlines()[0][:300] if str(exc) else ''}") from exc
            except Exception as exc:  # noqa: BLE001 (out of memory...): not the settings' fault; cells will tell
                log.warning("preflight: could not build %s on %s to check its settings (%s: %s); each cell will",
                            method, model, type(exc).__name__, str(exc)[:200])
                continue
            # peft may replace a setting it cannot use ("Invalid oft_block_size (7)! Adjusted ... to (8)"): the
            # runs would not be what the grid asks for, so the grid must ask for what peft runs
            changed = [w for w in getattr(built, "peft_warnings", []) if "adjust" in w.lower()]
            if changed:
                raise GridConfigError(f"method {method!r} on {model}: peft changed a requested setting "
                                      f"({changed[0][:300]}); put the value peft uses in the grid's config")
        del loaded


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.grid_preflight", "python -m jobs.grid GRID.toml --results DIR --dry-run (it runs this check)")
