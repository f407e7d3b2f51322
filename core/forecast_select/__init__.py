"""A forecast people can trust: the predictor set chosen by leave-one-dataset-out (LODO) error and
the whole choice scored by *nested* LODO, intervals calibrated on LODO residuals, and their coverage measured on held-out datasets.

For one (model, method, outcome) the reference points are the datasets with runs (outcome and
predictors averaged over seeds). The candidate predictor sets are: no predictor (the mean of the
reference datasets), each single predictor (IIMM, its terms, zero-shot accuracy, every baseline...)
and every pair of two, each an OLS line with intercept. With one point per dataset, LODO is
leave-one-out, and the LODO error of every set comes from one fit (e_i / (1 - h_ii)).

* **Selection** (:func:`select_set`): the set with the lowest LODO mean absolute error on the
  reference datasets, but IIMM alone is kept unless the winner beats it by enough. How much is
  enough is the selection rule (``SELECTION_RULES``): ``"bonferroni"`` (default) a one-sided paired
  t test at 0.05 divided by the number of competing sets; ``"one-se"`` one standard error of the
  paired per-dataset difference; ``"gated"`` one-se, and then IIMM alone unless the selection's own
  nested LODO error on the reference datasets is below IIMM's LODO error. The default was chosen by
  a pre-registered out-of-sample test on world v2 (jobs/results/world-v2/
  FORECAST-REPLICATION-PREREGISTRATION.md): bonferroni was no worse than IIMM alone in 36 of 36
  fresh cells, one-se in 26.
* **Nested LODO** (:func:`nested_lodo`): each dataset in turn is held out, the *whole* selection is
  redone on the others, and the held-out dataset is predicted: the honest error of the procedure,
  selection included (the set chosen with the held-out dataset inside would flatter itself).
* **Interval** for a new dataset: prediction ± t_{n-1, (1+level)/2} · RMS(nested LODO residuals) ·
  sqrt(1 + 1/n), a jackknife interval on the procedure's own out-of-sample errors. (A distribution-
  free jackknife+ or split-conformal 95 % interval needs n >= 19 reference datasets to be finite;
  a grid of 15 has fewer, hence the t scaling.)
* **Jackknife+ interval** (:func:`jackknife_plus_interval`), shown beside it: from the nested folds'
  predictions at the new dataset and their held-out residuals, distribution-free (coverage >= 90 %
  at 95 % for exchangeable datasets) but infinite on fewer than 19 reference datasets. Added after
  the pre-registration jobs/results/world-v2/FORECAST-JACKKNIFE-PREREGISTRATION.md.
* **Coverage** (:func:`lodo_coverage`): each dataset in turn is held out, the interval is built
  from the others alone (selection and residual scale included) and we count how often it holds
  the held-out outcome. The same is measured for the jackknife+ interval and the IIMM-only line's
  OLS prediction interval.
* **Gain over IIMM alone** (:func:`paired_gain_interval`): IIMM-only LODO MAE minus the procedure's
  nested LODO MAE, with a paired t interval over the datasets of the per-dataset difference in
  absolute error (descriptive: it says whether a difference is larger than the datasets' spread).

Pure numpy/pandas: :mod:`.procedure` works on arrays (and checks them), :mod:`.tables` returns
DataFrames for the job and the pages, :mod:`.shown` reads the shipped tables for the forecast page.
"""
from __future__ import annotations

from core.forecast_select.procedure import (DEFAULT_RULE, HEADLINE, MEAN_ONLY, SELECTION_RULES, _loo_abs_errors,
                                            candidate_sets, check_arrays, check_rule, jackknife_plus_interval,
                                            lodo_coverage, nested_lodo, paired_gain_interval, select_set, set_label)
from core.forecast_select.shown import SELECTION_FORMATS, read_selections, selection_shown, with_measured_coverage
from core.forecast_select.tables import (FORECAST_COLUMNS, GAIN_COLUMNS, NO_WORSE_TOLERANCE, SELECTION_COLUMNS,
                                         coverage_summary, forecast_new, no_worse_than_iimm, pooled_coverage,
                                         reference_points, selection_table, ties_as_zero)

__all__ = ["DEFAULT_RULE", "FORECAST_COLUMNS", "GAIN_COLUMNS", "HEADLINE", "MEAN_ONLY", "NO_WORSE_TOLERANCE",
           "SELECTION_COLUMNS", "SELECTION_FORMATS", "SELECTION_RULES", "_loo_abs_errors", "candidate_sets",
           "check_arrays", "check_rule",
           "coverage_summary", "forecast_new", "jackknife_plus_interval", "lodo_coverage", "nested_lodo",
           "no_worse_than_iimm", "paired_gain_interval", "pooled_coverage", "read_selections", "reference_points",
           "select_set", "selection_shown", "selection_table", "set_label", "ties_as_zero", "with_measured_coverage"]
