"""A single-node SLURM cluster for tests, from Debian's slurmctld, slurmd and munge (run as root).

``with local_slurm(tmp) as env:`` writes a slurm.conf into ``tmp`` (proctrack/linuxproc, task/none,
cgroup plugin autodetect with IgnoreSystemd=yes, accounting off), starts munged, slurmctld and slurmd,
waits until the node is idle, yields the environment (``SLURM_CONF`` set) for client commands and
jobs, and stops the daemons it started. ``slurm_unavailable()`` says why it cannot run here.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
START_TIMEOUT_S = 180


def slurm_unavailable() -> str | None:
    """Why a local cluster cannot be started here (None when it can)."""
    if os.name != "posix" or os.geteuid() != 0:
        return "needs root (slurmd runs jobs as their user)"
    missing = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).exists()]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install slurmctld slurmd munge)"
    if not Path("/etc/munge/munge.key").exists():
        return "no /etc/munge/munge.key"
    return None


def _conf(folder: Path, host: str, cpus: int) -> str:
    return "\n".join([
        "ClusterName=iimm-test", f"SlurmctldHost={host}", "AuthType=auth/munge", "SlurmUser=root",
        "SlurmctldPort=16817", "SlurmdPort=16818",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core", "SchedulerType=sched/backfill",
        "ReturnToService=2", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
        f"StateSaveLocation={folder}/state", f"SlurmdSpoolDir={folder}/spool",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "SlurmctldDebug=info", "SlurmdDebug=info", "KillWait=5", "InactiveLimit=0", "MinJobAge=300",
        f"NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN",
        "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def local_slurm(folder: Path, *, cpus: int | None = None) -> Iterator[dict[str, str]]:
    folder = Path(folder)
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(_conf(folder, host, cpus or os.cpu_count() or 1), encoding="utf-8")
    (folder / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n", encoding="utf-8")
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started_munge = False
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    if subprocess.run(["munge", "-n"], capture_output=True).returncode != 0:
        subprocess.run(["munged", "--force", f"--pid-file={folder}/munged.pid"], check=True, env=env)
        started_munge = True
    try:
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env)
        subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env)
            if out.stdout.strip() == "idle":
                break
            if time.monotonic() > deadline:
                logs = "".join((folder / f).read_text(encoding="utf-8")[-2000:] for f in ("slurmctld.log", "slurmd.log")
                               if (folder / f).exists())
                raise RuntimeError(f"SLURM did not come up in {START_TIMEOUT_S} s: {out.stdout!r} "
                                   f"{out.stderr!r}\n{logs}")
            time.sleep(1)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], capture_output=True, env=env)
        for name in ("slurmd", "slurmctld") + (("munged",) if started_munge else ()):
            pid = _pid(folder / f"{name}.pid")
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        time.sleep(1)
