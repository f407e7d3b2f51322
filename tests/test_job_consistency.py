"""One option, one meaning across the jobs: what a user learned in one job holds in the others."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from jobs import world_check


@pytest.mark.parametrize("models", [["worldclip-v2-a,worldclip-v2-c"], ["worldclip-v2-a", "worldclip-v2-c"],
                                    ["worldclip-v2-a,", "worldclip-v2-c"]])
def test_world_check_takes_models_as_a_comma_list_as_every_other_job_does(tmp_path, models):
    # jobs.grid, check_before and the benches take --models a,b; world_check refused 'a,b' as one unknown key
    args = world_check.parse_args(["--models", *models, "--out", str(tmp_path)])
    assert args.models == ["worldclip-v2-a", "worldclip-v2-c"]
    assert args.departures == ("--models worldclip-v2-a worldclip-v2-c",)


def test_world_check_still_names_an_unknown_model_in_a_comma_list(tmp_path):
    with pytest.raises(ValueError, match="'worldclip-v2-x' is not a world-v2 model"):
        world_check.parse_args(["--models", "worldclip-v2-a,worldclip-v2-x", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--models names no model"):
        world_check.parse_args(["--models", ",", "--out", str(tmp_path)])


@pytest.mark.parametrize("job, argv, name", [
    ("world_v2_report", ["--boot", "10"], "report.md"),
    ("world_check", ["--max-items", "2"], "check.csv"),
    ("world_check", ["--max-items", "2"], "manipulation-check.md"),
])
def test_a_world_jobs_folder_out_named_as_a_file_is_refused(tmp_path, capsys, job, argv, name):
    # --out is a file in every other job; here it is a folder, and --out r.md made a folder r.md silently
    import importlib

    main = importlib.import_module(f"jobs.{job}").main
    assert main([*argv, "--out", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    # the folder it suggests is the name without its suffix: its parent was '.' for a bare 'r.md'
    assert err.startswith(f"error: --out {tmp_path / name} names a file")
    assert f"(e.g. {tmp_path / Path(name).stem})" in err
    assert not (tmp_path / name).exists()


def test_a_bare_file_name_as_a_folder_out_is_told_a_folder_name_not_dot(tmp_path, monkeypatch, capsys):
    from jobs import world_v2_report

    monkeypatch.chdir(tmp_path)
    assert world_v2_report.main(["--boot", "10", "--out", "r.md"]) == 2
    err = capsys.readouterr().err
    assert "name a folder (e.g. r)" in err and not (tmp_path / "r.md").exists()


def test_a_world_jobs_out_folder_says_it_is_a_folder_in_its_help(capsys):
    from jobs import world_v2_report

    for main in (world_check.main, world_v2_report.main):
        with pytest.raises(SystemExit):
            main(["--help"])
        assert "[--out FOLDER]" in capsys.readouterr().out


@pytest.mark.parametrize("job", ["world_check", "world_v2_report"])
def test_the_world_jobs_take_bootstrap_as_jobs_predictors_spells_it(tmp_path, capsys, job):
    # jobs.predictors --bootstrap B (and --boot, once argparse's abbreviation of it, now its second name); the world
    # jobs took --boot alone, and --bootstrap was argparse's "unrecognized arguments"
    import importlib

    main = importlib.import_module(f"jobs.{job}").main
    assert main(["--bootstrap", "0", "--out", str(tmp_path)]) == 2
    assert "--boot must be a positive number of bootstrap replicates, got 0" in capsys.readouterr().err
    assert world_check.parse_args(["--bootstrap", "10", "--out", str(tmp_path)]).boot == 10
    assert world_check.parse_args(["--boot", "10", "--out", str(tmp_path)]).boot == 10


def test_a_grid_selection_naming_what_the_grid_lacks_says_what_it_has(caplog):
    # was "--methods names ['bitfi'], not in grid 'smoke'": no word of the grid's methods, while bench_methods,
    # split_audit and predictors list the names they know
    from jobs import grid

    argv = ["jobs/configs/smoke.toml", "--results", "unused", "--dry-run"]
    assert grid.main([*argv, "--methods", "bitfi,zero_shot"]) == 2
    said = caplog.records[-1].getMessage()
    assert said == ("error: --methods names 'bitfi' (did you mean 'bitfit'?), not in grid 'smoke'; "
                    "its methods: bitfit, linear_probe, zero_shot")
    # a name in other capitals: jobs' suggestions ignore case, as core's do (core.text.did_you_mean)
    assert grid.main([*argv, "--methods", "ZERO_SHOT"]) == 2
    assert caplog.records[-1].getMessage().startswith("error: --methods names 'ZERO_SHOT' (did you mean 'zero_shot'?), ")
    assert grid.main([*argv, "--seeds", "7"]) == 2
    assert caplog.records[-1].getMessage().endswith("--seeds names 7, not in grid 'smoke'; its seeds: 0")


def test_peft_check_says_which_method_has_no_runs_and_what_the_folder_has(capsys):
    # was "no successful runs of both 'lor' and 'peft_lora' in ...": neither which of the two nor the folder's methods
    from jobs import peft_check

    assert peft_check.main(["--ours", "lor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no successful runs of --ours 'lor' (did you mean 'lora'?) in ")
    assert "jobs/results/default: its methods with successful runs: " in err  # the repository's, named in full
    assert "peft_lora" in err.split("successful runs: ")[1] and err.count("\n") == 1


def test_check_before_names_the_models_its_folder_has_for_an_unknown_one(capsys):
    # was "--models: no records of worldclip-tny in jobs/results/default", the folder's models unsaid
    from jobs import check_before

    assert check_before.main(["jobs/results/default", "--models", "worldclip-tny"]) == 2
    assert capsys.readouterr().err == ("error: --models: no records of worldclip-tny (did you mean 'worldclip-tiny'?) "
                                       "in jobs/results/default; its models: worldclip-tiny\n")


@pytest.mark.parametrize("job, argv, said", [
    ("check_before", ["jobs/results/default", "--models", "worldclip-tiny, nope"],
     "--models: no records of nope in jobs/results/default"),
    ("bench_pretrain", ["--models", "worldclip-v2-a, nope"], "--models: unknown model(s) nope; known:"),
    ("bench_methods", ["--methods", "lora, nope"], "--methods: unknown method(s) nope; known:"),
    ("bench_embed", ["--models", "worldclip-tiny, nope"], "Unknown model 'nope'"),
    ("bench_pretrain", ["--models", ","], "--models ',' names nothing"),
    ("bench_methods", ["--models", " "], "--models ' ' names nothing"),
])
def test_a_comma_list_with_spaces_reads_as_jobs_grid_reads_it(capsys, job, argv, said):
    # jobs.grid and jobs.predictors strip each name ("--models 'm, n'"); these jobs took ' nope' (and
    # ' worldclip-tiny', a known model) as the name, so only the first name of "a, b" was ever known
    import importlib

    try:
        code = importlib.import_module(f"jobs.{job}").main(argv)
    except SystemExit as stop:  # a bench's parser.error
        code = stop.code
    assert code == 2
    assert said in capsys.readouterr().err


@pytest.mark.parametrize("job", ["grid", "check_before", "reproduce"])
def test_every_cache_option_names_the_folder_it_uses_by_default(capsys, job):
    # jobs.grid's --help named $IIMM_CACHE and .cache/embeddings; check_before's and reproduce's said "the usual one"
    import importlib

    with pytest.raises(SystemExit):
        importlib.import_module(f"jobs.{job}").main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--cache" in text and "$IIMM_CACHE, else .cache/embeddings" in text


def test_pretrain_refuses_a_negative_seed_before_any_work(tmp_path, capsys):
    # every other option of jobs.pretrain was checked up front; --seed -1 began the run, then exit 2 with a
    # failed-run record left in --work, an error line that named no option ("seed must be ...")
    from jobs import pretrain

    argv = ["--seed", "-1", "--steps", "1", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "w.safetensors")]
    with pytest.raises(SystemExit) as stop:
        pretrain.main(argv)
    assert stop.value.code == 2
    assert "error: --seed must be a whole number of at least 0, got -1" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("option", ["--threads", "--steps", "--repeats", "--large-batch"])
def test_bench_methods_refuses_a_count_below_one_as_the_other_jobs_do(capsys, option):
    # jobs.grid, reproduce and pretrain refuse --threads 0 (exit 2, one line); bench_methods ran into torch's
    # "set_num_threads expects a positive integer" traceback, exit 1
    from jobs import bench_methods

    with pytest.raises(SystemExit) as stop:
        bench_methods.main([option, "0", "--models", "worldclip-tiny-random", "--methods", "lora"])
    assert stop.value.code == 2
    assert f"error: {option} must be at least 1, got 0" in capsys.readouterr().err


def test_peft_check_reads_every_results_folder_as_the_other_jobs_do(tmp_path, capsys):
    # --results repeats in export, forecast, grid_report and predictors; peft_check kept the last one given, so a
    # missing first folder went unsaid and the check ran (exit 0) on the second alone
    from jobs import peft_check

    assert peft_check.main(["--results", str(tmp_path / "nowhere"), "--results", "jobs/results/default"]) == 2
    assert capsys.readouterr().err == f"error: --results {tmp_path / 'nowhere'} does not exist\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert peft_check.main(["--results", "jobs/results/default", "--results", str(empty)]) == 0
    assert peft_check.main(["--results", str(empty), "--ours", "lor"]) == 2
    assert f"in {empty}: " in capsys.readouterr().err


@pytest.mark.parametrize("job, argv", [
    ("grid", ["jobs/configs/smoke.toml", "--dry-run", "--results", "{tmp}/a", "--results", "{tmp}/b"]),
    ("world_v2_report", ["--results", "{tmp}/a", "--results", "jobs/results/world-v2", "--out", "{tmp}/r"]),
])
def test_a_one_folder_results_given_twice_is_refused(tmp_path, capsys, job, argv):
    # elsewhere --results repeats and every folder is read; here the second silently replaced the first
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"jobs.{job}").main([a.format(tmp=tmp_path) for a in argv])
    assert stop.value.code == 2
    assert f"error: --results takes one value in this job, given twice: {tmp_path / 'a'} and " \
           in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_value_a_usage_line_shows_for_an_option_without_a_default_is_the_one_its_help_names(monkeypatch):
    # jobs.grid_report's usage showed [--results jobs/results/default] [--out jobs/results/default-report.md], read
    # as defaults (as [--steps 40] is in every other job) while it reads the app's store and writes no file without
    # them; tests/test_job_options.py checks the shown values of options that have a default in argparse
    import importlib
    import re

    from tests.test_job_options import _NEEDS_ARGS, _commands, _first_usage, _Parsed

    def stop(self, args=None, namespace=None):
        raise _Parsed(self, None)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    wrong = []
    for job in _commands():
        module = importlib.import_module(f"jobs.{job}")
        try:
            module.main(_NEEDS_ARGS.get(job, []))
        except _Parsed as parsed:
            parser = parsed.args[0]
        for flag, shown in re.findall(r"\[(--[\w-]+) ([^\]\s]+)\]", _first_usage(module.__doc__ or "")):
            if shown.isupper() or "|" in shown or shown in ("a,b", "...") or shown.endswith(",..."):
                continue
            action = next(a for a in parser._actions if flag in a.option_strings)
            if action.default is None and not re.search(rf"default:? {re.escape(shown)}\b", action.help or ""):
                wrong.append(f"jobs.{job} {flag} {shown}")
    assert not wrong, f"usage values that are no default: {wrong}"


def test_bench_pretrain_refuses_no_threads_itself_before_its_table(capsys):
    # was its table header on stdout, then jobs.pretrain's usage and "python -m jobs.pretrain: error: ..."
    from jobs import bench_pretrain

    with pytest.raises(SystemExit) as stop:
        bench_pretrain.main(["--threads", "0", "--models", "worldclip-v2-a"])
    out, err = capsys.readouterr()
    assert stop.value.code == 2 and out == ""
    assert "python -m jobs.bench_pretrain: error: --threads must be at least 1, got 0" in err
    assert "jobs.pretrain" not in err.replace("jobs.pretrain's", "")


def test_fault_injection_says_a_runner_that_failed_in_one_line_exit_1(tmp_path, capsys):
    # a runner past --timeout (or exiting non-zero) was a RuntimeError traceback out of main; jobs.cli: a job that
    # ran and failed is exit 1 with one error line, a bad option exit 2
    from jobs import fault_injection

    work = tmp_path / "work"
    assert fault_injection.main(["--timeout", "0", "--work", str(work)]) == 2
    assert capsys.readouterr().err == "error: --timeout must be a number of seconds above 0, got 0\n"  # as load_test
    assert not work.exists()
    argv = ["--timeout", "0.01", "--kills", "1", "--seeds", "0", "--workers", "1", "--work", str(work)]
    assert fault_injection.main(argv) == 1
    err = capsys.readouterr().err
    assert f"error: runner did not finish within 0.01s (--timeout); see {work / 'reference.log'}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("job, argv, said", [
    ("bench_embed", ["--models", "worldclip-tiny", "--repeats", "0"], "--repeats must be at least 1, got 0"),
    ("bench_embed", ["--models", "worldclip-tiny", "--images", "0"], "--images must be at least 1, got 0"),
    ("bench_metrics", ["--sizes", "100", "--classes", "0"], "--classes must be at least 1, got 0"),
    ("bench_metrics", ["--sizes", "100", "--dim", "0"], "--dim must be at least 1, got 0"),
    ("bench_metrics", ["--sizes", "100", "--seed", "-1"], "--seed must be at least 0, got -1"),
])
def test_a_benchs_count_below_one_is_refused_naming_it(capsys, job, argv, said):
    # were "max() arg is an empty sequence", "batch_size must be ...", numpy's "high <= 0": no option named
    import importlib

    with pytest.raises(SystemExit) as stop:
        importlib.import_module(f"jobs.{job}").main([*argv, "--skip-baselines"] if job == "bench_metrics" else argv)
    assert stop.value.code == 2 and said in capsys.readouterr().err


def test_world_report_takes_cards_as_world_check_spells_it(capsys):
    # jobs.world_check --cards writes the world-v2 cards; world_report's --card alone, so --cards was argparse's
    # "unrecognized arguments" (world_check --card already worked as argparse's abbreviation of --cards; it is now
    # --cards' second name, as no job takes an abbreviation)
    from jobs import world_report

    assert world_report.main(["--model", "worldclip-v2-a", "--cards"]) == 2
    assert "error: --card writes the card of worldclip-tiny" in capsys.readouterr().err  # before any embedding
    assert world_check.parse_args(["--card"]).cards


def _parsed_or_refused(monkeypatch, capsys, job: str, argv: list[str]) -> tuple[int | str | None, str]:
    """The job's ``main(argv)`` stopped once its arguments are parsed: (None, "") when they parse, else the exit
    code argparse ended it with (0 for --help) and what it wrote on stderr."""
    import importlib

    from tests.test_job_options import _catching, _Parsed

    _catching(monkeypatch)
    try:
        importlib.import_module(f"jobs.{job}").main(argv)
    except _Parsed:
        return None, ""
    except SystemExit as stop:
        return stop.code, capsys.readouterr().err
    pytest.fail(f"jobs.{job}.main returned without parsing its arguments")


def _an_option_and_its_prefix(parser: argparse.ArgumentParser, given: list[str]) -> tuple[str, str, list[str]]:
    """One of the parser's long options not in ``given``, a prefix of it that no other option starts with (which
    argparse took for it) and a value it takes (none for a switch); switches first, as they need no value."""
    longs = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    for action in sorted(parser._actions, key=lambda a: a.nargs != 0):
        for flag in action.option_strings:
            prefix = flag[:-1]
            if flag == "--help" or not flag.startswith("--") or flag in given:
                continue
            if sum(o.startswith(prefix) for o in longs) == 1:
                return flag, prefix, [] if action.nargs == 0 else [str(next(iter(action.choices or ["2"])))]
    pytest.fail(f"no long option of {parser.prog} to abbreviate")


def test_every_job_refuses_an_abbreviated_option(monkeypatch, capsys):
    # argparse took any unique prefix of a long option: `python -m jobs.grid --wor 2` ran as --workers 2, a typo
    # such as --ou was read as --out, and a command changed meaning (or stopped working) once its job got a new
    # option with the same prefix. Every job's parser (jobs.cli.job_parser) now refuses a prefix: exit 2.
    from tests.test_job_options import _NEEDS_ARGS, _commands, _parse

    wrong = []
    for job in _commands():
        given = _NEEDS_ARGS.get(job, [])
        flag, prefix, value = _an_option_and_its_prefix(_parse(monkeypatch, capsys, job, given), given)
        assert _parsed_or_refused(monkeypatch, capsys, job, [*given, flag, *value]) == (None, ""), (job, flag)
        for argv in ([*given, prefix, *value], [*given, "--hel"]):  # --hel: --help's prefix, in every job
            code, err = _parsed_or_refused(monkeypatch, capsys, job, argv)
            if code != 2 or f"unrecognized arguments: {argv[len(given)]}" not in err:
                wrong.append(f"jobs.{job} {' '.join(argv)}: exit {code}")
    assert not wrong, f"abbreviations taken: {wrong}"
