"""Documented contracts of core's public functions, checked on the inputs their docstrings name."""
from __future__ import annotations

import pandas as pd
import pytest

from core import forecast


def test_is_finite_number_is_false_for_an_int_too_large_for_a_float():
    # a predicate: an int past the float range (10**400) raised OverflowError from float()
    assert forecast.is_finite_number(10**400) is False
    assert forecast.is_finite_number(-(10**400)) is False
    assert forecast.is_finite_number(10**300) is True


def test_forecast_methods_refuses_a_huge_predictor_value_with_a_value_error():
    runs = pd.DataFrame({"model": ["m"], "pretrained": ["p"], "method": ["lora"], "dataset": ["d"],
                         "status": ["ok"], "iimm": [0.5], "id_gain": [1.0], "ood_change": [0.0]})
    with pytest.raises(ValueError, match="must be a finite number"):
        forecast.forecast_methods(runs, {"iimm": 10**400}, model="m", pretrained="p")
