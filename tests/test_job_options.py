"""Every job's options are described in its --help, and every job command README.md shows parses.

The parser a job builds inside ``main`` is caught at ``parse_args`` (nothing after it runs), so these
tests read the real options without running a job.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import pkgutil
import re
import runpy
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Pre-registered analysis scripts (``python jobs/NAME.py``): kept as committed, no argparse of their own.
SCRIPTS = {"forecast_replication_summary", "forecast_confirmation_summary", "forecast_extension_summary"}


class _Parsed(BaseException):
    """Raised in place of parsing: carries the parser and the namespace it made (BaseException, so that a
    job's own error handling never catches it)."""


def _catching(monkeypatch: pytest.MonkeyPatch) -> None:
    real = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, args=None, namespace=None):
        raise _Parsed(self, real(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)


@functools.cache
def _commands() -> list[str]:
    """Job names with a ``main``: every module of jobs/ that is a command."""
    names = []
    for info in pkgutil.iter_modules([str(REPO / "jobs")]):
        if info.name in SCRIPTS:
            continue
        if hasattr(importlib.import_module(f"jobs.{info.name}"), "main"):
            names.append(info.name)
    return names


def _parse(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, job: str,
           argv: list[str]) -> argparse.ArgumentParser | None:
    """The parser ``jobs.JOB.main(argv)`` builds, once it has parsed ``argv`` (None for ``--help``, which
    exits 0 while parsing); a failure names argparse's error."""
    _catching(monkeypatch)
    try:
        importlib.import_module(f"jobs.{job}").main(argv)
    except _Parsed as parsed:
        return parsed.args[0]
    except SystemExit as done:
        if done.code == 0 and "--help" in argv:
            return None
        pytest.fail(f"jobs.{job} {shlex.join(argv)} does not parse: {capsys.readouterr().err.strip()}")
    pytest.fail(f"jobs.{job}.main returned without parsing its arguments")


# Arguments a job requires, so that parsing gets as far as the parser.
_NEEDS_ARGS = {"grid": ["g.toml", "--results", "r"], "bench_cell": ["r"], "check_before": ["r"],
               "ingest": ["p"], "submit": ["z.zip"], "reproduce": ["a.json"], "forecast": ["s.zip"],
               "forecast_test_summary": ["t.csv", "--pairs", "a:b"]}


def test_the_commands_are_found():
    assert {"grid", "predictors", "pretrain", "bench_methods", "world_v2_report"} <= set(_commands())


@pytest.mark.parametrize("job", _commands())
def test_every_option_has_help(job, monkeypatch, capsys):
    parser = _parse(monkeypatch, capsys, job, _NEEDS_ARGS.get(job, []))
    undescribed = [a.option_strings[0] if a.option_strings else a.dest for a in parser._actions
                   if not (a.help and a.help.strip()) and a.help != argparse.SUPPRESS]
    assert not undescribed, f"jobs.{job} --help describes no {undescribed}"


@pytest.mark.parametrize("job", _commands())
def test_help_runs(job, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"jobs.{job}").main(["--help"])
    assert done.value.code == 0
    assert f"python -m jobs.{job}" in capsys.readouterr().out


def readme_job_commands(text: str) -> list[str]:
    """Every ``python -m jobs.NAME ...`` README shows, in a code block or inline, comments and redirections cut."""
    found = []
    fenced = False
    prose = []
    for line in text.splitlines():
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            command = line.split(" #")[0].strip()
            if "python -m jobs." in command:
                found.append(command)
        else:
            prose.append(line)
    for inline in re.findall(r"`([^`]+)`", "\n".join(prose)):
        command = " ".join(inline.split())
        if "python -m jobs." in command:
            found.append(command)
    return found


def _argv(command: str) -> tuple[str, list[str]]:
    """The job and its arguments, placeholders made concrete: ``N`` a number, ``a|b`` its first choice."""
    words = shlex.split(re.split(r"\s[>|]\s", command)[0])
    start = words.index("-m") + 1
    job, argv = words[start].removeprefix("jobs."), words[start + 1:]
    return job, ["2" if w == "N" else w.split("|")[0] for w in argv]


def test_readme_commands_are_found():
    commands = readme_job_commands((REPO / "README.md").read_text(encoding="utf-8"))
    assert len(commands) > 40
    assert "python -m jobs.grid jobs/configs/default.toml --results jobs/results/default --workers 2" in commands
    assert _argv("MKL_X=1 python -m jobs.reproduce FILE --threads N") == ("reproduce", ["FILE", "--threads", "2"])


@pytest.mark.parametrize("command", sorted(set(readme_job_commands((REPO / "README.md").read_text(encoding="utf-8")))))
def test_readme_command_parses(command, monkeypatch, capsys):
    job, argv = _argv(command)
    assert job in _commands(), f"README names jobs.{job}, which is no job"
    _parse(monkeypatch, capsys, job, argv)


def test_readme_scripts_exist():
    scripts = re.findall(r"python (jobs/\w+\.py)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert scripts and all((REPO / s).is_file() for s in scripts), scripts


def _library_modules() -> list[str]:
    """Modules of jobs/ that are no command (no ``main``): run, each names a command to run instead."""
    return [info.name for info in pkgutil.iter_modules([str(REPO / "jobs")])
            if info.name not in SCRIPTS and info.name not in _commands() and info.name != "__init__"]


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")  # runpy on an imported module
@pytest.mark.parametrize("module", _library_modules())
def test_what_a_library_module_says_to_run_parses(module, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        runpy.run_module(f"jobs.{module}", run_name="__main__")
    said = capsys.readouterr().err
    suggested = re.findall(r"python -m (jobs\.\w+(?: (?!or\b)[^\s(]+)*)", said)
    assert suggested, said
    for command in suggested:
        job, argv = _argv(f"python -m {command}")
        _parse(monkeypatch, capsys, job, argv)


def test_bench_runs_the_parts_its_usage_names(monkeypatch, capsys):
    """``--only`` takes one part and repeats (``--only a b`` is refused): the usage and help say so, and the
    parts it runs are the ones named."""
    import jobs.bench as bench

    ran = []
    monkeypatch.setattr(importlib, "import_module", lambda name: type("Part", (), {
        "main": staticmethod(lambda argv: ran.append(name) or 0)}))
    assert bench.main(["--only", "bench_store", "--only", "bench_metrics"]) == 0
    assert ran == ["jobs.bench_store", "jobs.bench_metrics"]
    assert "[--only PART]..." in bench.__doc__
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    assert "repeatable" in capsys.readouterr().out


@pytest.mark.parametrize("job", _commands())
def test_a_repeatable_option_is_shown_repeated(job, monkeypatch, capsys):
    """An option given once per value (action "append") says "repeatable" in its help, and the job's usage
    lines never show it taking several values at once (``[--results DIR ...]`` read as ``--results a b``,
    which argparse refuses)."""
    parser = _parse(monkeypatch, capsys, job, _NEEDS_ARGS.get(job, []))
    doc = importlib.import_module(f"jobs.{job}").__doc__ or ""
    for action in parser._actions:
        if isinstance(action, argparse._AppendAction):
            flag = action.option_strings[-1]
            assert "repeatable" in action.help, f"jobs.{job} {flag}: help does not say it repeats"
            assert not re.search(rf"\[{flag} [^\]\s]+ \.\.\.\]", doc), f"jobs.{job}'s usage shows {flag} X ..."


def _first_usage(doc: str) -> str:
    """The first command of a job's docstring with its continuation lines (later ones are examples)."""
    lines = doc.split("\n\n")[1].splitlines() if "\n\n" in doc else []
    return " ".join([lines[0]] + [line for line in lines[1:] if not line.strip().startswith("python")]) if lines else ""


def _same(shown: str, default: object) -> bool:
    if isinstance(default, (list, tuple)):
        return shown == ",".join(map(str, default))
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        return float(shown) == float(default)
    return str(default) == shown or str(default).endswith("/" + shown)  # a default made absolute from the repo


@pytest.mark.parametrize("job", _commands())
def test_a_value_the_usage_shows_is_the_default(job, monkeypatch, capsys):
    """``[--steps 40]`` in a job's usage line is what it does without the option (a value in capitals, a choice
    ``a|b`` or an example ``a,b`` is no default)."""
    parser = _parse(monkeypatch, capsys, job, _NEEDS_ARGS.get(job, []))
    usage = _first_usage(importlib.import_module(f"jobs.{job}").__doc__ or "")
    for flag, shown in re.findall(r"\[(--[\w-]+) ([^\]\s]+)\]", usage):
        if shown.isupper() or "|" in shown or shown in ("a,b", "...") or shown.endswith(",..."):
            continue
        action = next(a for a in parser._actions if flag in a.option_strings)
        if action.default is not None:
            assert _same(shown, action.default), \
                f"jobs.{job}'s usage shows {flag} {shown}, its default is {action.default!r}"


def test_every_benchmark_make_bench_leaves_out_is_named_as_run_on_its_own():
    """``make bench`` (jobs.bench) runs its PARTS only: every other jobs/bench_*.py is named as run on its own
    in jobs.bench's docstring and in README's sentence on ``make bench`` (which said it ran them all)."""
    import jobs.bench as bench

    others = sorted(p.stem for p in (REPO / "jobs").glob("bench_*.py") if p.stem not in bench.PARTS)
    assert "bench_cell" in others and "bench_folder" in others
    own = bench.__doc__.split("run on their own")[1]
    said = (REPO / "README.md").read_text(encoding="utf-8").split("`make bench` (= `python -m")[1].split("\n\n")[0]
    assert "run on their own" in said
    for name in others:
        assert name in own, f"jobs.bench's docstring does not name {name}"
        assert name in said.split("run on their own")[0], f"README's make bench sentence does not name {name}"
