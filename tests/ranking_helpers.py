"""Helpers shared by the core.ranking and core.cards test modules (tests/test_ranking_*.py): the fixture
records as the store's frame."""
from __future__ import annotations

import pandas as pd

from core import store
from tests.fixtures import make_fixture_records


def frame(**kwargs) -> pd.DataFrame:
    return store.records_to_frame(make_fixture_records(**kwargs))
