"""The grid file ``python -m jobs.fault_injection`` writes for its failing-cells run is one the grid reads."""
from __future__ import annotations

import pytest

from core.grid_config import load_grid
from jobs import fault_injection


class _Stop(Exception):
    pass


@pytest.mark.parametrize("folder", ['a "quoted" work', "C:\\Users\\me\\work", "travail-é"], ids=["quote", "backslash",
                                                                                                  "non-ascii"])
def test_the_failing_cells_grid_file_is_toml_whatever_the_work_folder(tmp_path, monkeypatch, folder):
    """The folder was pasted between TOML quotes: a '"' in --work, or a Windows path's '\\U', made the file no TOML,
    and the grid run refused it."""
    def stop(cmd, *args, **kwargs):
        raise _Stop
    work = tmp_path / folder
    work.mkdir()
    monkeypatch.setattr(fault_injection, "_run", stop)
    with pytest.raises(_Stop):
        fault_injection.failing_cells(work, workers=1, timeout=1)
    grid = load_grid(work / "failing.toml")
    assert f"folder:{work / 'no-such-image-folder'}" in {cell["dataset"] for cell in grid.cells}
