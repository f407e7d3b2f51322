"""Every job command the app, the library's messages and the shipped model cards tell a user to run parses:
the commands written out in the source's strings (a page's ``st.code``, a log warning), those the code builds
(the forecast page's grid command, a missing-weights error), and those in the cards the Cards page shows.
README's commands are tests/test_job_options.py's."""
from __future__ import annotations

import ast
import functools
import re
import shlex
from pathlib import Path

import pytest

from tests.test_job_options import _argv, _commands, _parse

REPO = Path(__file__).resolve().parent.parent
# a job command up to the end of its line, a closing quote or backtick, or a comment
COMMAND = re.compile(r"python -m (jobs\.\w+[^`'\"\n#)]*)")


def _shown_sources() -> list[Path]:
    return sorted([*REPO.glob("pages/*.py"), REPO / "app.py", REPO / "forecast_ui.py", *REPO.glob("core/**/*.py"),
                   *REPO.glob("jobs/*.py")])


def _strings(path: Path) -> list[str]:
    """The string constants of a module but its docstrings and the pieces of f-strings (adjacent literals are
    one constant in the tree; what an f-string fills in is checked by calling the code that builds it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    left_out = {id(node.body[0].value) for node in ast.walk(tree)
                if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body
                and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    left_out |= {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr) for part in node.values}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in left_out]


def commands_in(text: str) -> list[str]:
    """Each ``python -m jobs.NAME ARGS`` of a text, cut at a comment, a comma, an ``or`` between two commands
    and a format placeholder (``%s``: what the code fills in is checked apart). A job named with no arguments
    (a program name, "as ``python -m jobs.grid`` writes them") is no command to run."""
    found = []
    for match in COMMAND.finditer(text):
        command = re.split(r"\s(?:or|then)\s|\s%[sd]\b|\s\(|,\s", match.group(1))[0].strip().rstrip(".,;:")
        if " " in command:
            found.append(f"python -m {command}")
    return found


@functools.cache
def _written_out() -> list[tuple[str, str]]:
    return sorted({(str(path.relative_to(REPO)), command) for path in _shown_sources()
                   for text in _strings(path) for command in commands_in(text)})


def _parses(command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    job, argv = _argv(command)
    assert job in _commands(), f"{command!r} names jobs.{job}, which is no job"
    _parse(monkeypatch, capsys, job, argv)


def test_the_commands_are_found():
    found = _written_out()
    assert ("pages/about.py", "python -m jobs.grid MY_GRID.toml --results results/mine --executor slurm") in found
    assert ("core/predictor_columns.py", "python -m jobs.ingest FILE --into NEWDIR") in found
    assert ("pages/runs.py", "python -m jobs.grid jobs/configs/smoke.toml --results results/smoke") in found
    assert commands_in("(python -m jobs.export --results %s lists them)") == ["python -m jobs.export --results"]


@pytest.mark.parametrize(("where", "command"), _written_out())
def test_a_command_written_in_the_code_parses(where, command, monkeypatch, capsys):
    if command.endswith(" --results"):  # jobs.grid's log lines: the folder filled in (tests/test_grid_runner.py)
        command += " DIR"
    _parses(command, monkeypatch, capsys)


@pytest.mark.parametrize("card", sorted((REPO / "core" / "assets").glob("*.md")), ids=lambda p: p.name)
def test_a_command_a_model_card_shows_parses(card, monkeypatch, capsys):
    shown = commands_in(card.read_text(encoding="utf-8"))
    assert shown, f"{card.name} names no command to reproduce it"
    for command in shown:
        _parses(command, monkeypatch, capsys)


@pytest.mark.parametrize(("model", "tag"), [("worldclip-tiny", None), ("ViT-B-32", "/data/my weights.pt")])
def test_the_grid_command_the_forecast_page_shows_parses(model, tag, monkeypatch, capsys):
    from core.predict import grid_command

    command = grid_command(model, tag).rpartition(" && ")[2]
    assert command.startswith("python -m jobs.grid ")
    _parses(command, monkeypatch, capsys)
    config = shlex.split(command)[3]
    made = grid_command(model, tag).rpartition(" && ")[0]  # the cp and sed that make another model's grid
    assert (REPO / config).is_file() if not made else f" {config} && sed" in made, config


def test_a_missing_weights_error_names_a_pretrain_command_that_parses(tmp_path, monkeypatch, capsys):
    from core import models

    monkeypatch.setattr(models, "ASSET_DIR", tmp_path)  # every shipped weights file missing
    shipped = [key for key, spec in models._REGISTRY.items() if spec.shipped_weights]
    assert len(shipped) >= 2
    for key in shipped:
        with pytest.raises(models.ModelUnavailableError, match="python -m jobs.pretrain") as error:
            models.load_model(key)
        (command,) = commands_in(str(error.value))
        _parses(command, monkeypatch, capsys)
