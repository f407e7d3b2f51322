"""The Makefile's venv target says which Python it needs, before anything is installed."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _make_venv_with(tmp_path: Path, version: str) -> subprocess.CompletedProcess:
    fake = tmp_path / "python"  # answers every call with the version: stands for a Python of that version
    fake.write_text(f"#!/bin/sh\necho \"$*\" >> {tmp_path / 'calls'}\necho {version}\n", encoding="utf-8")
    fake.chmod(0o755)
    venv = tmp_path / "venv"
    return subprocess.run(["make", "-s", "-C", str(ROOT), f"{venv}/.installed", f"VENV={venv}", f"PYTHON={fake}"],
                          capture_output=True, text=True, timeout=60)


def _calls(tmp_path: Path) -> list[str]:
    """The arguments of each call the recipe made to the stand-in Python, in order."""
    calls = tmp_path / "calls"
    return calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("version", ["3.10", "3.9", "2.7"])
def test_an_older_python_is_refused_with_what_to_do(tmp_path, version):
    done = _make_venv_with(tmp_path, version)
    assert done.returncode != 0
    assert f"needs Python 3.11 or newer; {tmp_path / 'python'} is Python {version}: run PYTHON=python3.11 make" \
        in done.stderr
    # refused before a venv was made: the version query was the recipe's only call (the stand-in makes no venv,
    # so the folder's absence alone said nothing)
    calls = _calls(tmp_path)
    assert len(calls) == 1 and calls[0].startswith("-c "), calls


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
@pytest.mark.parametrize("version", ["3.11", "3.13", "3.20"])
def test_python_3_11_and_newer_pass_the_check(tmp_path, version):
    done = _make_venv_with(tmp_path, version)  # fails later (the stand-in makes no venv), not at the check
    assert "needs Python" not in done.stderr
    # past the check: the recipe went on to make the venv (a check that refused silently also left no message)
    assert f"-m venv {tmp_path / 'venv'}" in _calls(tmp_path), done.stderr
