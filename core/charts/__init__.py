"""Altair chart builders for the comparison and forecast pages.

Every function takes the runs frame it should draw (as returned by ``core.store``) and
returns an ``alt.Chart``; nothing here loads data or knows about Streamlit. Points are
per (method, dataset): the mean over seeds, as in ``core.forecast``.

* :mod:`core.charts.base` -- method colours, shapes and titles, axis titles, tooltips, the random-weights note, and
  :func:`readable`, which a page applies to a chart it shows (axis and legend text at WCAG AA contrast);
* :mod:`core.charts.colour_vision` -- colours as protanopes, deuteranopes and tritanopes see them, and CIEDE2000;
* :mod:`core.charts.iimm` -- IIMM against an outcome (:func:`iimm_vs_outcome`, per method), :func:`method_summary`;
* :mod:`core.charts.tradeoff` -- gain against forgetting per method (:func:`gain_vs_forgetting`);
* :mod:`core.charts.heatmap` -- the method x dataset matrix (:func:`dataset_heatmap`).
"""
from __future__ import annotations

from core.charts.base import (AXIS_INK, BASELINE_COLOUR, METHOD_BLOCK, METHOD_COLOUR_ORDER, METHOD_PALETTE,
                              METHOD_SHAPES, RANDOM_WEIGHTS_NOTE, TOOLTIP_FORMAT, TOOLTIP_FORMATS, axis_title,
                              method_colours, method_shapes, method_titles, readable)
from core.charts.heatmap import INKS, OUTCOME_TITLES, SCHEME_STOPS, dataset_heatmap
from core.charts.iimm import (_points, iimm_panels_by_method, iimm_vs_outcome,  # noqa: F401
                              iimm_vs_outcome_by_method, method_summary)
from core.charts.tradeoff import LEGEND_ROW_PX, LEGEND_ROWS, PLOT_DECOR_PX, TRADEOFF_AXES, gain_vs_forgetting

__all__ = ["AXIS_INK", "BASELINE_COLOUR", "INKS", "LEGEND_ROWS", "LEGEND_ROW_PX", "METHOD_BLOCK",
           "METHOD_COLOUR_ORDER", "METHOD_PALETTE", "METHOD_SHAPES", "OUTCOME_TITLES",
           "PLOT_DECOR_PX", "RANDOM_WEIGHTS_NOTE", "SCHEME_STOPS", "TOOLTIP_FORMAT", "TOOLTIP_FORMATS", "TRADEOFF_AXES",
           "axis_title", "dataset_heatmap", "gain_vs_forgetting", "iimm_panels_by_method", "iimm_vs_outcome",
           "iimm_vs_outcome_by_method", "method_colours", "method_shapes", "method_summary", "method_titles",
           "readable"]
