"""Every limit README states is the constant that enforces it, written from that constant here: a limit changed in
the code, or a README number edited (MiB for MB, 1,000 for 1,024, 'at most' for 'under'), fails this test. The
boundary behaviour of each is tested beside its code (tests/test_record_limits.py, tests/test_upload_limit_messages.py,
tests/test_locks_and_limits.py, tests/test_upload_npz.py, tests/test_submit.py)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import forecast_ui
from core import grid_config, network, schema
from core.store import locks, records, submissions, validate
from core.upload import DEFAULT_LIMITS as UP
from core.upload import MiB
from jobs import grid, grid_slurm

README = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8").split())


def _whole(n_bytes: int, unit: int = MiB) -> int:
    assert n_bytes % unit == 0, f"{n_bytes} is not a whole number of {unit}-byte units"
    return n_bytes // unit


LIMITS = {
    "grid names": f"names or a `source` longer than a record holds ({schema.MAX_TEXT} characters)",
    "grid seeds": "seeds outside 0 … 2³² − 1" if schema.RANGES["seed"] == (0, 2**32 - 1) else "(seed range changed)",
    "grid depth": f"TOML nested more than {grid_config.MAX_DEPTH} levels",
    "grid cells": f"more than {grid_config.MAX_CELLS:,} cells",
    "Windows workers": f"at most {grid.WINDOWS_MAX_WORKERS} on Windows",
    "squeue patience": f"has failed on every poll for {grid_slurm.SQUEUE_PATIENCE_S / 60:g} minutes",
    "lock expiry": f"(default {locks.DEFAULT_EXPIRY_S:g})",
    "empty lock": f"an empty one older than {locks.EMPTY_GRACE_S:g} s",
    "record fields": (f"text at most {schema.MAX_TEXT} characters, errors {schema.TEXT_LIMITS['error']:,}; nested "
                      f"fields at most {schema.MAX_NESTED_DEPTH} levels and {_whole(schema.MAX_NESTED_CHARS, 1024)} "
                      "KiB of JSON"),
    "record file": f"at most {_whole(validate.MAX_RECORD_BYTES)} MiB per record file",
    "ingest Parquet row": f"to more than {_whole(validate.MAX_RECORD_BYTES)} MiB a row",
    "stored row": f"({validate.MAX_STORED_ROW_BYTES / 1e6:.1f} MB, `core.store.validate.MAX_STORED_ROW_BYTES`)",
    "walk depth": f"descends at most {records.MAX_WALK_DEPTH} folders",
    "submission zip": (f"{_whole(submissions.SUBMISSION_LIMITS.max_archive_bytes)} MiB archive, "
                       f"{submissions.SUBMISSION_LIMITS.max_members:,} members, "
                       f"{submissions.MAX_SUBMITTED_RECORDS:,} records"),
    "stored submissions": f"up to {submissions.MAX_STORED_SUBMISSIONS:,} submitted runs in all",
    "submission wait": f"a third waits up to {submissions.SUBMISSION_WAIT_S:g} s for a turn",
    "pixels": (f"at most {UP.max_image_pixels / 1e6:g} megapixels decoded per image (a JPEG is decoded at up to ⅛ "
               "scale a side, so a larger JPEG whose reduced decode fits is read) and "
               f"{UP.max_total_pixels / 1e6:g} megapixels decoded per upload"),
    "npz bytes": (f"an `.npz` may expand to {_whole(UP.max_npz_bytes)} MiB in all and {UP.max_member_ratio:g}× per "
                  f"array above {_whole(UP.ratio_floor_bytes)} MiB"),
    "npz width": f"for a model whose width is unknown, at most {UP.max_embedding_dim:,};",
    "npz rows": f"at most {UP.max_embedding_rows:,} rows and {UP.max_embedding_classes} classes",
    "forecast time": f"the whole forecast has a {UP.max_seconds:g} s time budget",
    "thumbnail side": f"2,000 thumbnails of {UP.max_side} px",
    "upload memory": f"budget of {_whole(forecast_ui.PARSED_BUDGET_BYTES)} MiB shared by all sessions",
    "forecast wait": f"after {forecast_ui.FORECAST_WAIT_S:g} s without one it is told the server is busy",
    "upload read wait": f"with none in {forecast_ui.FORECAST_WAIT_S:g} s the run reads it",
    "overlap wait": f"at most {forecast_ui.OVERLAP_WAIT_S:g} s in all (`forecast_ui.OVERLAP_WAIT_S`)",
    "download stall": f"nothing for {network.DOWNLOAD_STALL_S:g} s fails",
}


@pytest.mark.parametrize("phrase", LIMITS.values(), ids=LIMITS.keys())
def test_each_limit_readme_states_is_its_constant(phrase):
    assert phrase in README, f"README does not say {phrase!r}"


def test_the_apps_upload_size_is_the_upload_limit():
    """Streamlit's server.maxUploadSize counts MiB (it multiplies by 1024 * 1024): the page must let through every
    upload core.upload takes, and no more."""
    config = (Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml").read_text(encoding="utf-8")
    (size,) = re.findall(r"(?m)^maxUploadSize = (\d+)$", config)
    assert int(size) * 1024 * 1024 == UP.max_archive_bytes  # 200 MiB
