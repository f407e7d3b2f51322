"""README's finding-sentences checked against the shipped files they rest on (a claims audit): each test
re-derives what a sentence says from the records or tables under jobs/results/ and fails if README says
more than they show, or leaves out what they show against it. None runs a model or a grid."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from scipy.stats import kendalltau

from core import forecast_select as fsel
from tests.test_readme_figures import PROSE, README, RESULTS, check, load_records

OURS = ("attention", "bitfit", "clip_adapter", "clip_cite", "full_ft", "linear_probe", "lora", "orthogonal", "wise_ft")


@pytest.fixture(scope="module")
def world1() -> pd.DataFrame:
    return load_records(RESULTS / "default")


@pytest.fixture(scope="module")
def world2() -> pd.DataFrame:
    return load_records(RESULTS / "world-v2")


def test_the_opening_reports_the_studys_claim_as_its_claim_and_says_the_tool_tests_it():
    """The opening stated the study's result as established ('showed'); the project's own pre-registered test
    could not test it and world v1 does not reproduce it (What it found), so README reports it as a claim."""
    opening = " ".join(README.split("## Two commands")[0].split())
    assert "A 2025 study reported that one zero-shot number" in opening
    assert "study showed" not in opening
    assert "This tool tests that claim instead of assuming it" in opening
