"""What README.md names exists: the repository's files and folders, the Makefile targets, and the
dotted names of project code (``core.x.y``, ``jobs.x``, ``app.x``, ``forecast_ui.x``, ``tests.x``), which
the docstrings, comments and texts (the app's help and captions among them) of every .py file must name
rightly too."""
from __future__ import annotations

import importlib
import io
import re
import tokenize
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
# Folders a command creates (a pretraining checkpoint) or that are the user's own, not the repository's.
MADE_BY_COMMANDS = ("jobs/checkpoints/",)
FILE_SUFFIXES = {"py", "md", "toml", "csv", "json", "parquet", "txt"}
# Tests whose texts hold placeholder names (``core.x.y``, ``jobs.NAME``) on purpose.
ABOUT_NAMES = {"test_readme_references.py", "test_job_options.py", "test_shown_commands.py"}


def repository_paths(text: str) -> list[str]:
    """Paths under the repository's own folders that ``text`` names (``core/…``, ``jobs/…``, ``tests/…``…)."""
    found = re.findall(r"(?<![\w/.$-])((?:core|jobs|tests|pages|\.streamlit|\.ci)/[\w./*-]*[\w/*])", text)
    return sorted({p for p in found if not p.startswith(MADE_BY_COMMANDS)})


def dotted_names(text: str) -> list[str]:
    """Dotted names of project code in ``text``; file names (``app.py``) are paths, not names."""
    found = re.findall(r"(?<![\w./-])((?:core|jobs|app|forecast_ui|tests)(?:\.[A-Za-z_]\w*)+)", text)
    return sorted({n for n in found if n.rsplit(".", 1)[1] not in FILE_SUFFIXES})


def resolve(name: str) -> object:
    """The module or attribute ``name`` names; LookupError saying which part is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # this prefix is no module: an attribute of a shorter one
            raise
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                raise LookupError(f"{'.'.join(parts[:parts.index(attribute)])} has no {attribute!r}")
            found = getattr(found, attribute)
        return found
    raise LookupError(f"no module {parts[0]!r}")


def test_the_helpers_find_and_check_names_and_paths():
    text = "see `core.metrics.iimm`, core/metrics.py, `app.py`, jobs/checkpoints/MODEL and core.metrics.nothing"
    assert dotted_names(text) == ["core.metrics.iimm", "core.metrics.nothing"]
    assert repository_paths(text) == ["core/metrics.py"]
    assert resolve("core.metrics.iimm").__name__ == "iimm"
    with pytest.raises(LookupError, match="core.metrics has no 'nothing'"):
        resolve("core.metrics.nothing")


@pytest.mark.parametrize("path", repository_paths(README))
def test_every_path_readme_names_exists(path):
    assert list(REPO.glob(path)) if "*" in path else (REPO / path).exists(), f"README names {path}, which is missing"


@pytest.mark.parametrize("name", [n for n in dotted_names(README) if not n.startswith("tests.measure_")])
def test_every_dotted_name_readme_names_exists(name):
    resolve(name)  # tests.measure_* are scripts that measure when imported: their files are checked as paths


def source_texts() -> str:
    """The comments and string literals (docstrings, help texts, captions) of the project's .py files."""
    texts = []
    for path in sorted(REPO.rglob("*.py")):
        if {".venv", ".git", "node_modules"} & set(path.relative_to(REPO).parts) or path.name in ABOUT_NAMES:
            continue
        for token in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
            if token.type in (tokenize.COMMENT, tokenize.STRING) or token.type == getattr(tokenize, "FSTRING_MIDDLE",
                                                                                              None):
                texts.append(token.string)
    return "\n".join(texts)


@pytest.mark.parametrize("name", [n for n in dotted_names(source_texts()) if not n.startswith("tests.measure_")])
def test_every_dotted_name_the_code_names_exists(name):
    resolve(name)


def test_every_make_target_readme_names_is_in_the_makefile():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(encoding="utf-8"), re.M))
    named = set(re.findall(r"(?:`|^)make ([\w-]+)", README, re.M))  # commands, not the verb
    assert named and named <= targets, named - targets


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives ``markdown``'s headings (outside code blocks): lower case, punctuation but ``-``
    and ``_`` dropped, spaces as ``-``, a repeated heading's anchor numbered ``-1``, ``-2``…"""
    anchors: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6} (.+)", line)):
            slug = re.sub(r"[^\w\- ]", "", match[1].strip().lower()).replace(" ", "-")
            anchor, n = slug, 0
            while anchor in anchors:
                n += 1
                anchor = f"{slug}-{n}"
            anchors.add(anchor)
    return anchors


def test_heading_anchors_follow_githubs_rule():
    text = "# A `b`: c's (d)\n```\n# not a heading\n```\n## open_clip v2\n## open_clip v2\n"
    assert heading_anchors(text) == {"a-b-cs-d", "open_clip-v2", "open_clip-v2-1"}


def test_every_link_within_readme_has_its_heading():
    links = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert links and links <= heading_anchors(README), sorted(links - heading_anchors(README))


def test_the_jobs_readme_says_answer_a_user_error_in_one_line_are_every_such_job():
    """'every job (`grid`, …) answers a user error with one `error: …` line': the list names each job whose
    main is wrapped by jobs.cli.user_facing (``bench_*`` stands for the benchmark jobs), and no other."""
    listed = re.search(r"every job \(([^)]*)\) answers a user error", " ".join(README.split()))
    assert listed, "README no longer lists the jobs that answer a user error in one line"
    names = set(re.findall(r"`(\w+\*?)`", listed[1]))
    wrapped = {p.stem for p in (REPO / "jobs").glob("*.py") if "@user_facing" in p.read_text(encoding="utf-8")}
    patterns = {n[:-1] for n in names if n.endswith("*")}
    missing = {j for j in wrapped if j not in names and not any(j.startswith(p) for p in patterns)}
    assert not missing, f"README's list leaves out {sorted(missing)}"
    assert not (names - wrapped - {n for n in names if n.endswith("*")}), names - wrapped
