"""The forecast page's example sample: a valid upload, out of sample for the shipped grid, deterministic."""
import io
import tomllib
from pathlib import Path

import numpy as np
import pytest

from core.data import example, world
from core.upload import load_image_folder_zip

CONFIGS = Path(__file__).resolve().parents[1] / "jobs" / "configs"


def test_example_parses_as_an_upload_with_the_task_images():
    raw = example.example_sample_zip()
    sample = load_image_folder_zip(io.BytesIO(raw))
    split = world.load_world_split(example.EXAMPLE_TASK, "test")
    assert not sample.skipped and not sample.warnings
    assert sorted(sample.data.class_names) == sorted(split.class_names)
    counts = np.bincount(sample.data.labels, minlength=len(sample.data.class_names))
    assert counts.tolist() == [example.EXAMPLE_PER_CLASS] * len(split.class_names)
    # each class folder holds that class's first test images, pixel for pixel
    label = sample.data.class_names.index("chart")
    first = int(np.flatnonzero(split.labels == split.class_names.index("chart"))[0])
    got = [np.asarray(im.convert("RGB")) for im, y in zip(sample.data.images, sample.data.labels) if y == label]
    assert any(np.array_equal(g, split.images[first]) for g in got)
    assert example.example_sample_zip() == raw  # same bytes each call


def test_example_is_out_of_sample_and_matches_the_page_defaults():
    for path in CONFIGS.glob("*.toml"):
        grid = tomllib.loads(path.read_text(encoding="utf-8"))
        assert example.EXAMPLE_TASK not in grid.get("datasets", []), path.name
    assert example.EXAMPLE_TASK in world.OOD_PANEL
    assert world.get_world_task(example.EXAMPLE_TASK).template == "a photo of a {c}"  # the page's default


def test_example_rejects_bad_arguments():
    with pytest.raises(ValueError, match="per_class must be at least 1"):
        example.example_sample_zip(per_class=0)
    with pytest.raises(ValueError, match="unknown world task"):
        example.example_sample_zip("no-such-task")
