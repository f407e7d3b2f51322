"""What the environment a user runs in changes: folder variables set but empty or starting with '~', a home
folder that cannot be looked up, the working folder. The jobs must do what they do on the developer's machine,
or say why they cannot."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_iimm_cache_is_the_default_cache_not_the_working_folder(tmp_path, monkeypatch, value):
    """`IIMM_CACHE= python -m jobs.grid ...` (set but empty, as a blank line of an .env file or docker-compose
    gives it) cached embeddings as loose .npz files in the working folder itself (Path("") is '.'), the
    repository's root when run from there, where `make clean-cache` (which reads empty as unset) never looked."""
    from core.embed import default_cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IIMM_CACHE", value)
    assert default_cache_dir() == tmp_path / ".cache" / "embeddings"


def test_iimm_cache_under_home_is_expanded_as_the_other_folder_variables_are(tmp_path, monkeypatch):
    """IIMM_RESULTS, IIMM_SUBMISSIONS and IIMM_STORE_INDEX expand a leading '~'; IIMM_CACHE='~/emb' (quoted, as
    in a systemd unit or an .env file) made a folder literally named '~' in the working folder."""
    from core.embed import default_cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IIMM_CACHE", "~/emb")
    assert default_cache_dir() == tmp_path / "home" / "emb"


def test_an_empty_iimm_data_is_the_default_data_folder(tmp_path, monkeypatch):
    """IIMM_DATA set but empty read (and would download) torchvision datasets in the working folder, and the
    message told the user to put Stanford Cars' files in '.', not in ~/.cache/iimm-data as README says."""
    from core.data.registry import DatasetUnavailableError, load_split

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("IIMM_DATA", "")
    with pytest.raises(DatasetUnavailableError,
                       match=re.escape(f"put the files in {tmp_path / 'home' / '.cache' / 'iimm-data'} as")):
        load_split("cars", "train")


def test_iimm_data_needs_no_home_folder(tmp_path, monkeypatch):
    """The default was built even when IIMM_DATA named a folder: a user id with no home folder to find (no
    $HOME, no passwd entry: `docker run -u 1234`) got 'Could not determine home directory' from every
    torchvision dataset, whatever IIMM_DATA said."""
    from core.data.registry import DatasetUnavailableError, load_split

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.setenv("IIMM_DATA", str(tmp_path))
    with pytest.raises(DatasetUnavailableError, match=re.escape(f"put the files in {tmp_path} as")):
        load_split("cars", "train")


@pytest.mark.parametrize("value", [None, "~/data"])
def test_where_no_home_folder_can_be_found_the_data_folder_is_asked_for(monkeypatch, value):
    """IIMM_DATA unset (its default is under the home folder) or starting with '~', where no home folder can be
    found: every torchvision dataset said only 'Could not determine home directory.' (a RuntimeError, a traceback
    out of the jobs), naming neither the folder nor IIMM_DATA."""
    from core.data.registry import DatasetUnavailableError, load_split

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # what it gives where it finds no home
    if value is None:
        monkeypatch.delenv("IIMM_DATA", raising=False)
    else:
        monkeypatch.setenv("IIMM_DATA", value)
    with pytest.raises(DatasetUnavailableError, match=r"no home folder can be found here for .*: set IIMM_DATA to"):
        load_split("cars", "train")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_cache_finds_a_cache_under_home(tmp_path):
    """`make clean-cache` empties the folder the jobs use, and the jobs expand IIMM_CACHE's leading '~'."""
    cache = tmp_path / "home" / "emb"
    cache.mkdir(parents=True)
    (cache / "0123abcd.npz").write_bytes(b"x" * 100)
    env = {**os.environ, "HOME": str(tmp_path / "home"), "IIMM_CACHE": "~/emb"}
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "clean-cache"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert list(cache.iterdir()) == [] and f"emptied the embedding cache {cache}" in proc.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_cache_reads_iimm_cache_as_the_jobs_do_around_spaces(tmp_path, monkeypatch):
    """The jobs strip IIMM_CACHE (' /data/emb ', as an .env line with a space after '=' gives it, is /data/emb);
    `make clean-cache` took it as written and said 'no embedding cache at  /data/emb', the cache left full."""
    from core.embed import default_cache_dir

    cache = tmp_path / "emb"
    cache.mkdir()
    (cache / "0123abcd.npz").write_bytes(b"x" * 100)
    monkeypatch.setenv("IIMM_CACHE", f" {cache} ")
    assert default_cache_dir() == cache
    proc = subprocess.run(["make", "-s", "-C", str(REPO), "clean-cache"], env=dict(os.environ), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert list(cache.iterdir()) == [] and f"emptied the embedding cache {cache}\n" in proc.stdout


def _without_utf8_locale() -> dict[str, str]:
    """The environment of a machine whose locale has no UTF-8 (LC_ALL=C, with Python's coercion to C.UTF-8 and
    its UTF-8 mode turned off, as a Latin-1 locale also does): Python then decodes file names as ASCII."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LC_") and k != "LANG"}
    return {**env, "LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0", "PYTHONPATH": str(REPO)}


def test_a_store_under_a_non_ascii_folder_without_a_utf8_locale_says_why_its_records_are_skipped(tmp_path):
    """A checkout under /home/josé run in such a locale: the app showed no run, every record skipped as 'its
    path is not valid UTF-8; rename it' (it is UTF-8, and renaming the records helped nothing)."""
    import sys

    from tests.fixtures import write_fixture_store

    root = tmp_path / "josé" / "results"
    write_fixture_store(root, n_datasets=2, methods=("full",))
    code = ("import sys; from pathlib import Path; from core import store\n"
            "runs, skipped = store.load_runs_report([Path(sys.argv[1])])\n"
            "print(len(runs), len(skipped), ascii(sorted({s.reason for s in skipped})))")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], env=_without_utf8_locale(), cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ("0 2 ['Python reads file names as ascii here, not UTF-8 (the locale): run with "
                                   "PYTHONUTF8=1 or a UTF-8 locale (LANG=C.UTF-8)']")


def test_a_job_that_cannot_encode_a_path_in_the_locale_says_how_to_run_it(monkeypatch, capsys):
    """torch, DuckDB and UTF-8 files refuse the surrogates such a locale gives a path with 'é': jobs.grid run
    from /home/josé/checkout said only "error: 'utf-8' codec can't encode characters in position 11-12:
    surrogates not allowed"."""
    import sys

    from jobs.cli import user_facing

    @user_facing
    def main(argv=None):
        "/home/jos\udcc3\udca9".encode("utf-8")
        return 0

    monkeypatch.setattr(sys, "getfilesystemencoding", lambda: "ascii")
    assert main([]) == 2
    assert re.search(r"surrogates not allowed \(Python reads file names as ascii here, not UTF-8, .*: run with "
                     r"PYTHONUTF8=1 or a UTF-8 locale, e\.g\. LANG=C\.UTF-8\)", capsys.readouterr().err)


def test_a_job_prints_under_the_c_locale_without_utf8_mode(monkeypatch):
    """There (LC_ALL=C, PYTHONUTF8=0, PYTHONCOERCECLOCALE=0) stdout is ASCII with 'surrogateescape', not
    'strict', so the jobs' escaping of what it cannot show did not apply: `python -m jobs.forecast sample.zip
    --out f.json` stopped at the R² of its verdict ("'ascii' codec can't encode character '\\xb2'"), exit 2,
    after the whole forecast and before writing f.json. A file name's undecodable bytes still print as they
    are, as surrogateescape prints them."""
    import io
    import sys

    from jobs.cli import user_facing

    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", errors="surrogateescape", write_through=True)
    monkeypatch.setattr(sys, "stdout", stream)

    @user_facing
    def main(argv=None):
        print("R² 4 %, τ 0.1, 𝜏, wrote /home/jos\udcc3\udca9/f.json")
        return 0

    assert main([]) == 0
    assert raw.getvalue() == b"R\\xb2 4 %, \\u03c4 0.1, \\U0001d70f, wrote /home/jos\xc3\xa9/f.json\n"
    assert stream.errors == "surrogateescape"


def test_jobs_whose_default_is_a_shipped_folder_find_it_from_any_working_folder(tmp_path, monkeypatch, capsys):
    """`cd ~ && python -m jobs.peft_check` (and jobs.world_v2_report) said '--results jobs/results/default does
    not exist': their defaults were read from the working folder, where the other jobs' defaults (the app's store,
    jobs.world_check's --out) are the repository's."""
    from jobs import peft_check, world_v2_report

    monkeypatch.chdir(tmp_path)
    assert peft_check.main([]) == 0
    assert "peft_lora vs lora: 30 paired runs on 15 datasets" in capsys.readouterr().out
    assert world_v2_report.main(["--boot", "10", "--out", str(tmp_path / "report")]) == 0
    assert (tmp_path / "report" / "report.md").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_results_folder_is_checked_where_no_home_folder_can_be_found(tmp_path, monkeypatch):
    """No $HOME and a user id the password database does not know (`docker run -u 1234`): Path.home() raises,
    and every job's --results check (and the app's check of IIMM_RESULTS) stopped with 'Could not determine home
    directory' in a traceback."""
    from core import store

    def no_home():
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert store.is_results_folder(tmp_path / "results") is None
    assert "is the file-system root or your home folder" in store.is_results_folder("/")


def test_a_job_that_finds_no_run_as_the_locale_hides_them_says_so(tmp_path):
    """jobs.grid_report on such a folder said only 'no successful runs in /home/josé/results: name a results
    folder that holds grid records', and nothing about the records it had skipped or why."""
    import sys

    from tests.fixtures import write_fixture_store

    root = tmp_path / "josé" / "results"
    write_fixture_store(root, n_datasets=2, methods=("full",))
    proc = subprocess.run([sys.executable, "-m", "jobs.grid_report", "--results", str(root), "--out",
                           str(tmp_path / "report.md")], env=_without_utf8_locale(), cwd=str(tmp_path),
                          capture_output=True, timeout=120)
    err = proc.stderr.decode("ascii", "backslashreplace")
    assert proc.returncode == 2, err
    assert re.search(r"skipping the records under .*results: Python reads file names as ascii here, not UTF-8 "
                     r"\(the locale\): run with PYTHONUTF8=1", err)


def _nowhere_home(monkeypatch) -> None:
    """No $HOME and a user id the password database does not know: '~' cannot be expanded."""
    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # what it gives where it finds no home


@pytest.mark.parametrize("variable, read", [("IIMM_RESULTS", "core.store:local_results_dir"),
                                            ("IIMM_SUBMISSIONS", "core.store:submissions_dir"),
                                            ("IIMM_CACHE", "core.embed:default_cache_dir")])
def test_a_folder_variable_with_a_tilde_and_no_home_is_refused_by_name(monkeypatch, variable, read):
    """IIMM_RESULTS=~/runs where no home folder can be found raised pathlib's 'Could not determine home directory.',
    a RuntimeError naming neither the variable nor a way out (a traceback from every job; IIMM_DATA said why)."""
    import importlib

    module, name = read.split(":")
    monkeypatch.setenv(variable, "~/runs")
    _nowhere_home(monkeypatch)
    with pytest.raises(ValueError, match=rf"^{variable}=~/runs: no home folder can be found here .* set {variable} to"):
        getattr(importlib.import_module(module), name)()


def test_the_app_reads_its_other_stores_where_a_store_variable_cannot_be_expanded(tmp_path, monkeypatch, caplog):
    """The app's roots and its store index: a '~' that cannot be expanded is left out with a warning (as a folder
    that is not a results folder is), not a crash of every page."""
    from core import store

    monkeypatch.setenv("IIMM_RESULTS", "~/runs")
    monkeypatch.setenv("IIMM_SUBMISSIONS", str(tmp_path / "submitted"))
    monkeypatch.setenv("IIMM_STORE_INDEX", "~/index")
    _nowhere_home(monkeypatch)
    assert store.default_roots() == [store.SHIPPED_DIR, tmp_path / "submitted"]
    assert store.default_index_dir() is None
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "not reading it: IIMM_RESULTS=~/runs: no home folder" in said and "store index off: IIMM_STORE_INDEX=~/" in said
