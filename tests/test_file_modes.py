"""Files other users of a shared store or cache must read get an ordinary file's mode, not mkstemp's 0600."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from core import embed
from core.file_modes import process_umask, shared_file_mode

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX mode bits")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027])
def test_process_umask_reads_the_umask_and_leaves_it_as_it_was(mask):
    old = os.umask(mask)
    try:
        assert process_umask() == mask
        assert shared_file_mode() == 0o666 & ~mask
        assert os.umask(mask) == mask  # unchanged by the read
    finally:
        os.umask(old)


@posix_only
def test_process_umask_falls_back_to_setting_it_back_where_proc_does_not_say(monkeypatch):
    import builtins

    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    old = os.umask(0o027)
    try:
        assert process_umask() == 0o027 and os.umask(0o027) == 0o027
    finally:
        os.umask(old)


@posix_only
def test_an_embedding_cache_entry_is_readable_by_the_other_users_of_a_shared_cache(tmp_path, umask_022):
    entry = tmp_path / "cache" / "0123abcd.npz"
    embed._save_to_cache(entry, np.zeros((2, 3), np.float32), np.ones((4, 3), np.float32))
    assert oct(entry.stat().st_mode & 0o777) == oct(0o644)  # was 0o600 (mkstemp's)
    with np.load(entry) as saved:
        assert saved["text"].shape == (4, 3)


@posix_only
def test_a_result_record_is_readable_by_the_other_users_of_a_shared_store(tmp_path, umask_022):
    from core.store.atomic import _atomic_write

    written = _atomic_write(tmp_path / "run.json", lambda fh: fh.write(b"{}"))
    assert oct(written.stat().st_mode & 0o777) == oct(0o644)
