"""The jobs' checks of the paths and the device their options name, before any work: an output folder or file
that cannot be written, a results folder that is not there, a device this host lacks; each a ValueError naming
the option (``jobs.cli.user_facing`` turns it into one line and exit 2). ``jobs.cli`` re-exports every name.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def check_writable_folder(folder: Path, flag: str, holds: str = "") -> None:
    """Create ``folder`` if needed and write a probe file in it, or raise ValueError naming ``flag``: run
    before long work, so an unusable output folder is not found only when the results are written.
    ``holds``: what goes in the folder, for the message."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag}: {folder} is a file, not a folder" + (f" ({holds} go in it)" if holds else ""))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as exc:
        above = _nearest_existing(folder.parent)
        why = f"{above} is a file, not a folder" if above.exists() and not above.is_dir() else exc.strerror or exc
        raise ValueError(f"{flag}: cannot write in {folder} ({why})") from None


def check_folder_not_file_name(folder: Path, flag: str, files: Iterable[str]) -> None:
    """ValueError naming ``flag`` when ``folder``, the folder a job writes ``files`` in, is not a folder yet and ends
    as one of them does (``--out /tmp/report.md``): most jobs' ``--out`` names a file, and such a name was made into
    a folder named like the file, the file inside it, with no word said."""
    names = list(files)
    if not folder.is_dir() and folder.suffix.lower() in {Path(name).suffix.lower() for name in names}:
        raise ValueError(f"{flag} {folder} names a file, but {flag} here is the folder {' and '.join(names)} "
                         f"{'is' if len(names) == 1 else 'are'} written in: name a folder (e.g. {folder.with_suffix('')})")


def check_file_out(path: Path, flag: str) -> None:
    """ValueError naming ``flag`` unless a file can be written at ``path`` once its missing folders are made:
    ``path`` is no folder, and the nearest existing folder above it is a folder this user may write in.
    Creates nothing; run before long work, so an unusable output is not found only when it is written. The
    jobs make an output's missing folders when they write it (as ``core.store.write_file_atomic`` does)."""
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder: name a file")
    _check_writable_above(path, path.parent, flag)


def check_folder_out(folder: Path, flag: str) -> None:
    """ValueError naming ``flag`` unless ``folder`` is, or can be made as, a folder this user may write in
    (what :func:`check_file_out` is for a file). Creates nothing."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{flag} {folder} is a file, not a folder: name a folder")
    _check_writable_above(folder, folder, flag)


def _nearest_existing(path: Path) -> Path:
    """``path``, or the nearest folder above it that exists (or is a link), up to the root."""
    while not path.exists() and not path.is_symlink() and path != path.parent:
        path = path.parent
    return path


def _check_writable_above(path: Path, above: Path, flag: str) -> None:
    """ValueError naming ``flag`` and ``path`` unless the nearest existing folder from ``above`` up is a folder
    this user may write in."""
    above = _nearest_existing(above)
    if not above.is_dir():
        raise ValueError(f"{flag} {path}: {above} is a file, not a folder; name a path under a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: cannot write in {above}; name a folder you may write in")


def check_results_folder(path: Path, option: str = "--results") -> Path:
    """``path`` if it is an existing folder; else ValueError naming the option (so a typo reads as
    one, not as "no runs found")."""
    what = f"{option} {path}" if option else str(path)
    if not path.exists():
        raise ValueError(f"{what} does not exist")
    if not path.is_dir():
        raise ValueError(f"{what} is a file, not a results folder")
    return path


def check_cache_folder(cache: Path | None) -> None:
    """ValueError when ``--cache`` names a file (a cache folder need not exist yet)."""
    if cache is not None and cache.exists() and not cache.is_dir():
        raise ValueError(f"--cache {cache} is a file, not a folder")


def check_csv_out(out: Path | None) -> None:
    """:func:`check_file_out` for an optional ``--out`` CSV (checked before long work, so the table is not lost
    at the end; its missing folders are made when it is written)."""
    if out is not None:
        check_file_out(out, "--out")


def check_device(device: str) -> str:
    """``device`` if this host has it ("cpu", "cuda", "cuda:N"), else ValueError: a device the jobs do not run
    on (e.g. "mps", which a Mac has) is said to be so, a CUDA device this host lacks to be absent; both say what
    this host has."""
    import torch

    if device == "cpu":
        return device
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    kind, colon, index = device.partition(":")
    if kind != "cuda" or (colon and not index.isdigit()):
        raise ValueError(f"--device {device!r} is not one the jobs run on: use cpu, cuda or cuda:N "
                         f"(this host has cpu and {gpus} CUDA device(s))")
    if gpus and (not colon or int(index) < gpus):
        return device
    raise ValueError(f"--device {device!r} is not on this host (it has cpu and {gpus} CUDA device(s))")


if __name__ == "__main__":
    from jobs.cli import not_a_command

    not_a_command("jobs.option_checks", "one of the jobs, e.g. python -m jobs.grid --help")
