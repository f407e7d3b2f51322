"""core.ranking's verdict: who gains most, who forgets least, the front, and when it says the methods rest on
the same datasets or on a single one."""
from __future__ import annotations

import numpy as np
import pandas as pd

from core import ranking
from tests.ranking_helpers import frame


def test_verdict_text_names_best_gentlest_and_front_and_escapes_titles():
    rows = ranking.method_ranking(frame(n_datasets=3))
    text = ranking.verdict_text(rows)
    best = rows.loc[rows["id_gain"].idxmax()]
    assert text.startswith(f"**Most gain:** Full, {best['id_gain']:+.1f} points in-domain")
    assert "**Least forgetting for at least half that gain:** BitFit" in text
    assert text.endswith("Every method is averaged over the same 3 datasets.")
    hostile = rows.assign(method_title=["[x](http://e.org)"] * len(rows))
    assert "](http" not in ranking.verdict_text(hostile) and "\\[x\\]" in ranking.verdict_text(hostile)
    mixed = rows.assign(n_datasets=range(1, len(rows) + 1))
    assert "averaged over the same" not in ranking.verdict_text(mixed)
    assert ranking.verdict_text(rows.assign(id_gain=np.nan)) == ""


def test_verdict_text_says_when_out_of_domain_was_not_measured():
    # ood_change is nullable in a record: a method whose runs had no OOD panel has no OOD mean
    rows = ranking.method_ranking(frame(n_datasets=3))
    rows.loc[rows["id_gain"].idxmax(), "ood_change"] = np.nan
    text = ranking.verdict_text(rows)
    assert "nan" not in text.lower()
    assert "points in-domain, out-of-domain not measured." in text


def test_verdict_says_same_datasets_only_when_the_datasets_are_the_same():
    runs = frame(n_datasets=3, methods=("full", "bitfit"))
    # two datasets each, but not the same two: Full on sets 1 and 2, BitFit on sets 0 and 1
    runs = runs[~(((runs["method"] == "full") & (runs["dataset"] == "fx-set-0"))
                  | ((runs["method"] == "bitfit") & (runs["dataset"] == "fx-set-2")))]
    rows = ranking.method_ranking(runs)
    assert rows["n_datasets"].tolist() == [2, 2]
    assert "averaged over the same" not in ranking.verdict_text(rows)
    assert not ranking.same_datasets(rows)  # so the ranking page keeps its datasets column
    same = ranking.method_ranking(runs[runs["dataset"] == "fx-set-1"])
    assert ranking.same_datasets(same)
    text = ranking.verdict_text(same)  # one dataset: no interval, said in the verdict (it read "the same 1 datasets")
    assert "**From a single dataset:** every method is measured on the same one dataset" in text
    assert "1 datasets" not in text


def test_verdict_says_which_named_methods_rest_on_a_single_dataset():
    runs = frame(n_datasets=3, methods=("full", "bitfit", "lora"))
    runs = runs[(runs["method"] != "full") | (runs["dataset"] == "fx-set-0")]  # Full measured on one dataset
    rows = ranking.method_ranking(runs)
    assert rows.set_index("method")["n_datasets"].to_dict() == {"full": 1, "bitfit": 3, "lora": 3}
    text = ranking.verdict_text(rows)
    assert text.startswith("**Most gain:** Full")  # from its one dataset: the verdict must say so
    assert "**From a single dataset:** Full is measured on one dataset only" in text, text
    assert "LoRA is" not in text and "BitFit is" not in text
    three = ranking.verdict_text(ranking.method_ranking(frame(n_datasets=3)))
    assert "single dataset" not in three and three.endswith("Every method is averaged over the same 3 datasets.")


def test_a_method_with_no_out_of_domain_mean_does_not_break_same_datasets():
    """n_ood_datasets 0 means 'not measured', not 'fewer datasets': rows that average the same datasets,
    one of them without any OOD panel, still count as the same (the page drops the datasets column)."""
    runs = frame(n_datasets=2, methods=("full", "lora"))
    runs.loc[runs["method"] == "lora", "ood_change"] = np.nan
    rows = ranking.method_ranking(runs)
    assert sorted(rows["n_ood_datasets"]) == [0, 2] and ranking.same_datasets(rows)
    assert ranking.verdict_text(rows).endswith("Every method is averaged over the same 2 datasets.")


def _verdict_rows(n_datasets: list[int]) -> pd.DataFrame:
    # Full: most gain; BitFit: gentlest (least forgetting with half Full's gain); LoRA: on the front only
    # (nothing beats its OOD change, its gain is under half); Adapter: dominated, named nowhere
    return pd.DataFrame({"method": ["full", "bitfit", "lora", "adapter"],
                         "method_title": ["Full", "BitFit", "LoRA", "Adapter"],
                         "id_gain": [10.0, 8.0, 2.0, 1.0], "ood_change": [-5.0, -1.0, 1.0, -6.0],
                         "pareto": [True, True, True, False], "n_datasets": n_datasets,
                         "n_ood_datasets": n_datasets, "datasets": [f"{n}" for n in n_datasets]})


def test_verdict_flags_a_single_dataset_method_named_on_the_front_not_only_the_best():
    """Not only the best method: the gentlest and the front are named too, so each resting on one dataset is said to."""
    gentlest = ranking.verdict_text(_verdict_rows([3, 1, 3, 1]))
    assert "**From a single dataset:** BitFit is measured on one dataset only" in gentlest, gentlest
    assert "Adapter" not in gentlest  # named nowhere, so not flagged
    front = ranking.verdict_text(_verdict_rows([3, 3, 1, 3]))
    assert "**From a single dataset:** LoRA is measured on one dataset only" in front, front


def test_verdict_says_are_for_several_single_dataset_methods():
    text = ranking.verdict_text(_verdict_rows([1, 1, 3, 3]))
    assert "**From a single dataset:** Full, BitFit are measured on one dataset only" in text, text
