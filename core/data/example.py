"""An example upload for the forecast page, cut from the offline world, so a new user can try it at once."""
from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from core.data.base import is_whole_number
from core.data.world import get_world_task, load_world_split

EXAMPLE_TASK = "scene-kind"  # an OOD-panel task: never fine-tuned on, so its forecast is out of sample
EXAMPLE_PER_CLASS = 20
EXAMPLE_NOTE = (f"{EXAMPLE_PER_CLASS} images of each of the {len(get_world_task(EXAMPLE_TASK).class_names)} classes of the offline world's {EXAMPLE_TASK} task, "
                "which the shipped grid never fine-tunes on, so its forecast is out of sample. Upload it above with the "
                "default model and template.")
_FIXED_TIME = (2026, 1, 1, 0, 0, 0)  # zip timestamps fixed so the same call gives the same bytes


def example_sample_zip(task: str = EXAMPLE_TASK, *, per_class: int = EXAMPLE_PER_CLASS) -> bytes:
    """A zip of class folders (``<class>/<task>-<index>.png``): the first ``per_class`` images of
    each class in the task's test split, in split order, as 32×32 PNGs.

    The layout is the one the forecast page accepts. Deterministic: the split comes from a fixed
    seed and the zip's timestamps are fixed. Raises ValueError for an unknown task or a
    ``per_class`` that is not a whole number of at least 1.
    """
    if not is_whole_number(per_class, 1):
        raise ValueError(f"per_class must be at least 1 and a whole number, got {per_class!r}")
    split = load_world_split(task, "test")  # raises ValueError naming the known tasks
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # PNGs are compressed already
        for label, name in enumerate(split.class_names):
            for index in np.flatnonzero(split.labels == label)[:per_class]:
                png = io.BytesIO()
                Image.fromarray(np.asarray(split.images[index])).save(png, format="PNG")
                archive.writestr(zipfile.ZipInfo(f"{name}/{task}-{index:04d}.png", _FIXED_TIME), png.getvalue())
    return buffer.getvalue()

