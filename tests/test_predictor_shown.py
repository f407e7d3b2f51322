"""core.predictor_shown: which shipped predictor table the Compare page shows for a model."""
from __future__ import annotations

import pandas as pd
import pytest

from core import predictor_shown


def _table(*models):
    return pd.DataFrame({"model": [m for m, _ in models], "pretrained": [p for _, p in models],
                         "predictor": ["iimm"] * len(models)})


def test_the_table_with_most_rows_of_the_model_is_shown_and_only_its_rows():
    tables = {"v1": _table(("tiny", "world-v1")), "v2": _table(("tiny", "a"), ("tiny", "a"), ("tiny", "b")),
              "v2-part": _table(("tiny", "a"), ("tiny", "b"), ("tiny", "b"))}
    key, rows = predictor_shown.table_for_model(tables, "tiny", "a")
    assert key == "v2" and len(rows) == 2 and set(rows["pretrained"]) == {"a"}
    assert predictor_shown.table_for_model(tables, "tiny", "world-v1")[0] == "v1"
    # a tie goes to the last table, as the forecast page keeps the last selection table
    assert predictor_shown.table_for_model(tables, "tiny", "b")[0] == "v2-part"
    assert predictor_shown.table_for_model({"x": _table(("m", "p")), "y": _table(("m", "p"))}, "m", "p")[0] == "y"


def test_a_model_no_table_has_is_named():
    tables = {"v1": _table(("tiny", "world-v1")), "old.csv": pd.DataFrame({"predictor": ["iimm"]})}
    with pytest.raises(ValueError, match=r"no shipped predictor table has runs of tiny other \(old.csv: no model column\)"):
        predictor_shown.table_for_model(tables, "tiny", "other")
    with pytest.raises(ValueError, match=r"runs of tiny world-v2$"):
        predictor_shown.table_for_model({"v1": _table(("tiny", "world-v1"))}, "tiny", "world-v2")


def test_a_table_that_cannot_be_read_hides_no_other_and_is_named_when_none_is_left():
    def read(path):
        if path == "broken.csv":
            raise pd.errors.EmptyDataError("No columns to parse from file")
        return _table(("tiny", "a"))

    tables = predictor_shown.read_each(["broken.csv", "v2.csv"], read)
    assert isinstance(tables["broken.csv"], ValueError)
    assert predictor_shown.table_for_model(tables, "tiny", "a")[0] == "v2.csv"
    with pytest.raises(ValueError, match=r"runs of tiny b \(broken.csv: cannot be read \(No columns to parse"):
        predictor_shown.table_for_model(tables, "tiny", "b")
