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
