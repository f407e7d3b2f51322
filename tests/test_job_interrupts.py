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
