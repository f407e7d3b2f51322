"""jobs.bench_folder: an image folder read when used vs held decoded, same embeddings."""
from __future__ import annotations

import pytest

from jobs import bench_folder


def test_bench_folder_prints_both_loads_and_their_ratio(capsys):
    assert bench_folder.main(["--images", "24", "--side", "64", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    assert "24 images of 64 px in 3 classes" in out
    assert "read when used (now)" in out and "all decoded (old)" in out
    assert "ratio now/old: held memory" in out and "embeddings equal" in out


def test_bench_folder_refuses_too_few_images_for_its_classes(capsys):
    with pytest.raises(SystemExit):
        bench_folder.main(["--images", "5", "--classes", "3"])
    assert "--images >= 2 x --classes" in capsys.readouterr().err
