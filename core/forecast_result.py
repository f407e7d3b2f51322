"""The result of a forecast (:class:`ForecastResult`, made by ``core.predict``): plain values and display-ready
DataFrames, with what every surface showing it must say (random weights, the datasets left out)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: The outcomes forecast for every method, with the words the page uses for them.
OUTCOMES = {"id_gain": "ID gain (points)", "ood_change": "OOD change (points)"}


@dataclass
class ForecastResult:
    """Everything the forecast page shows, as plain values and display-ready DataFrames.

    measures: one row per zero-shot measure (measure, value, lo, hi, note); IIMM carries the
    bootstrap interval. baselines: one row per transferability baseline (baseline, score, note); the
    note says why a score is blank, scored on a subsample or left out of the forecast's choice ('' when none).
    forecasts: one row per method (predicted ID gain and OOD change, their prediction
    intervals, leave-one-dataset-out error, fit quality, status) from the IIMM-only line.
    ``raw_forecasts`` is ``core.forecast.forecast_methods``'s long frame. ``selected``: the
    forecast of ``core.forecast_select.forecast_new`` per (method, outcome): the predictor set
    chosen by leave-one-dataset-out error among every measure of this sample, its
    prediction and LODO-calibrated interval, its nested LODO error, and the IIMM-only line beside
    it (coverage columns are left empty here: the job ``jobs.predictors`` measures them). ``enough_runs`` is False when no method
    could be forecast; ``message`` then says why and ``command`` gives the grid command that
    would produce the reference runs.
    """

    model: str
    pretrained: str
    model_label: str
    random_weights: bool
    n_images: int
    n_classes: int
    iimm: float
    iimm_lo: float
    iimm_hi: float
    zero_shot: dict[str, float]
    transferability: dict[str, float]
    measures: pd.DataFrame
    baselines: pd.DataFrame
    forecasts: pd.DataFrame
    raw_forecasts: pd.DataFrame
    enough_runs: bool
    message: str | None = None
    command: str | None = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    selected: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: The reference runs' records say they ran with random weights (the model itself may be trained): the
    #: forecast's gains and forgetting then describe an untrained network.
    reference_random_weights: bool = False
    #: Reference datasets left out as they hold some of the sample's images, with how many (core.reference_overlap)
    left_out: dict[str, int] = field(default_factory=dict)
    not_checked: dict[str, str] = field(default_factory=dict)  #: reference datasets not checked for them, and why
    #: What the upload's summary warned of (``core.upload.upload_warnings``: repeated images, dropped classes)
    upload_warnings: list[str] = field(default_factory=list)

    def saved_caveats(self) -> dict[str, str]:
        """What a per-method table of this forecast must keep when it is saved without the page, as columns
        ({name: text}, only those that apply): the reference datasets left out as they hold some of the sample's
        images, those not checked for them, and the upload's warnings ('; '-joined, as ``jobs.forecast``'s CSV)."""
        said = {"left_out": "; ".join(self.left_out), "not_checked": "; ".join(self.not_checked),
                "upload_warnings": "; ".join(self.upload_warnings)}
        return {name: text for name, text in said.items() if text}

    @property
    def untrained(self) -> bool:
        """Whether the forecast's numbers describe random weights: the model is untrained, or the reference runs
        it is fitted on record random weights (what every surface showing it must say)."""
        return bool(self.random_weights or self.reference_random_weights)

    @property
    def title(self) -> str:
        """One line naming the model; says RANDOM WEIGHTS when the model is untrained."""
        label = self.model_label
        if self.random_weights and "RANDOM WEIGHTS" not in label.upper():
            label += " (RANDOM WEIGHTS, untrained)"
        return f"{label}: {self.n_images} images in {self.n_classes} classes"

    def highlight(self, outcome: str, method: str | None = None) -> dict[str, Any]:
        """The user's dataset as a ``core.charts`` highlight: the IIMM value, and with ``method``
        the predicted outcome and its interval when that method's forecast succeeded."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; use one of {list(OUTCOMES)}")
        out: dict[str, Any] = {"x": self.iimm, "label": "your dataset"}
        if method is not None:
            row = self.raw_forecasts[(self.raw_forecasts["method"] == method)
                                     & (self.raw_forecasts["outcome"] == outcome)]
            if not row.empty and row.iloc[0]["status"] == "ok":
                out.update(y=float(row.iloc[0]["prediction"]), lo=float(row.iloc[0]["lo"]),
                           hi=float(row.iloc[0]["hi"]), label=f"your dataset ({method}, IIMM line)")
        return out
