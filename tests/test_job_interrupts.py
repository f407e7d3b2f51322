"""A job stopped by Ctrl-C or SIGTERM part-way: one line, no traceback, nothing cut or stale left behind."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# raised where a Ctrl-C lands most often when a job is started and stopped at once: while it imports pandas
CTRL_C_AT_IMPORT = """import sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise KeyboardInterrupt
sys.meta_path.insert(0, CtrlC())
"""


@pytest.mark.skipif(os.name == "nt", reason="POSIX exit status of a process stopped by SIGINT")
def test_ctrl_c_while_a_job_imports_its_libraries_is_one_line_not_a_traceback(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(CTRL_C_AT_IMPORT, encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    env.pop("IIMM_DEBUG", None)
    done = subprocess.run([sys.executable, "-m", "jobs.export", "--format", "csv"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.stderr == "interrupted\n"  # was: 20 lines of importlib's traceback
    assert done.returncode == -signal.SIGINT  # as Python ends on an uncaught Ctrl-C: the shell's 130
    assert done.stdout == ""


def test_importing_the_jobs_package_leaves_other_programs_tracebacks_alone():
    import jobs

    assert sys.excepthook is not jobs._interrupted_in_one_line  # only ``python -m jobs.<name>`` sets it


def ctrl_c_when_staging(monkeypatch, name: str) -> None:
    """A Ctrl-C as a job begins writing the output file ``name`` (every writer stages through core.store.atomic)."""
    import core.store.atomic

    real = core.store.atomic.shared_mkstemp

    def mkstemp(**kwargs):
        if f"{kwargs['prefix']}*{kwargs['suffix']}".endswith(f"{Path(name).stem}-*{Path(name).suffix}"):
            raise KeyboardInterrupt
        return real(**kwargs)

    monkeypatch.setattr(core.store.atomic, "shared_mkstemp", mkstemp)


def test_ctrl_c_while_predictors_writes_its_tables_keeps_the_whole_old_set(tmp_path, monkeypatch, capsys):
    from tests.predictor_helpers import _records, _run, _store

    root = _store(tmp_path, _records("iimm", "gbc", seeds=(0,)))
    out = tmp_path / "out"
    out.mkdir()
    names = ["predictors.csv", "predictors.md", "forecast-selection.csv"]
    for name in names:
        (out / name).write_text("old\n", encoding="utf-8")
    ctrl_c_when_staging(monkeypatch, "predictors.md")  # the table is written, its summary not yet
    code, _ = _run(tmp_path, root, "--no-selection")
    assert code == 130 and capsys.readouterr().err.strip().endswith("interrupted")
    assert {n: (out / n).read_text(encoding="utf-8") for n in names} == dict.fromkeys(names, "old\n")  # was: a new
    assert sorted(p.name for p in out.iterdir()) == sorted(names)  # CSV beside the old summary; no temporary left


def test_ctrl_c_while_world_check_writes_keeps_the_old_rows_and_report_together(tmp_path, monkeypatch, capsys):
    from jobs import world_check
    from tests.test_world_check import _rows

    # cheap stand-in rows (no model embeds anything): the writing is what is checked
    monkeypatch.setattr(world_check, "task_rows", lambda key, mix, tasks, *, max_items=None: _rows(key, 1.0, 0))
    out = tmp_path / "quick"
    out.mkdir()
    names = ["manipulation-check.csv", "manipulation-check.md"]
    for name in names:
        (out / name).write_text(f"previous {name}\n", encoding="utf-8")
    ctrl_c_when_staging(monkeypatch, "manipulation-check.md")  # the rows are written, the report not yet
    assert world_check.main(["--models", "worldclip-v2-a", "--max-items", "20", "--boot", "10",
                             "--out", str(out)]) == 130
    assert capsys.readouterr().err.strip().endswith("interrupted")
    # was: this run's rows beside the previous report, and jobs.world_v2_report takes its verdict from the rows
    assert {n: (out / n).read_text(encoding="utf-8") for n in names} == {n: f"previous {n}\n" for n in names}
    assert sorted(p.name for p in out.iterdir()) == names


def test_ctrl_c_while_an_embedding_is_cached_leaves_no_temporary_in_the_cache(tmp_path, monkeypatch):
    import numpy as np

    from core import embed

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(embed.np, "savez", ctrl_c)
    with pytest.raises(KeyboardInterrupt):  # it still stops the job (jobs.cli: 'interrupted', exit 130)
        embed._save_to_cache(tmp_path / "cache" / "0123abcd.npz", np.zeros((2, 3), np.float32),
                             np.ones((4, 3), np.float32))
    assert list((tmp_path / "cache").iterdir()) == []  # was: a .tmp-*.npz, removed only by a write an hour later
