"""How each shipped summary under jobs/results was made: README names every summary file, and a summary whose
header names the command that printed it is what that command prints now, byte for byte (a user can make it
again from the committed tables)."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
SUMMARIES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "jobs" / "results").rglob("summary*.md"))
HEADER = re.compile(r"^# .*output of `(python [^`]+)`(.*)$")


def test_there_are_shipped_summaries():
    assert "jobs/results/world-v2/extension/summary.md" in SUMMARIES
    assert "jobs/results/world-v2/completion/summary.md" in SUMMARIES


@pytest.mark.parametrize("path", SUMMARIES)
def test_readme_names_each_shipped_summary(path):
    """README named neither the extension's nor the completion's summary file, nor how the extension's first
    output (printed by the script before its mend) can be printed again."""
    assert f"`{path}`" in README, f"README does not name {path}"
    if "first-output" in path:  # the script that printed it is no longer the one in jobs/: README names its revision
        sentence = README.split(f"`{path}`", 1)[1][:400]
        assert re.search(r"git show [0-9a-f]{7,40}:jobs/forecast_extension_summary\.py", sentence), sentence


def _made(path: str) -> tuple[str, str, bool]:
    """(command, body, earlier) of a summary: the command its header names, its text, and whether the header says
    it was printed before that command's script changed ('before')."""
    lines = (REPO / path).read_text(encoding="utf-8").split("\n")
    match = HEADER.match(lines[0])
    assert match, f"{path}: its first line does not name the command that printed it"
    assert lines[1:3] == ["", "```text"] and lines[-2:] == ["```", ""], f"{path}: not one text block"
    return match.group(1), "\n".join(lines[3:-2]) + "\n", "before" in match.group(2)


@pytest.mark.parametrize("path", SUMMARIES)
def test_each_summary_is_what_its_command_prints_unless_it_says_it_came_before(path):
    command, body, earlier = _made(path)
    argv = shlex.split(command)
    assert argv[0] == "python"
    done = subprocess.run([sys.executable, *argv[1:]], cwd=REPO, capture_output=True, text=True, encoding="utf-8",
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    if earlier:  # its header says an earlier revision of the script printed it: today's prints something else
        assert done.stdout != body
    else:
        assert done.stdout == body
