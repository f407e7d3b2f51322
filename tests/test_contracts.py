"""Documented contracts of core's public functions, checked on the inputs their docstrings name."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from core import forecast, forecast_select, metrics, models, predictor_eval
from core.data.base import LabeledImages
from core.data.folder import split_within_class
from core.data.registry import list_datasets
from core.embed import embed_images, embed_prompts
from core.evaluate import accuracy
from core.methods import build_method


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


@pytest.mark.parametrize("labels", [np.array([0.5, 1.0]), np.array([True, False]), np.array(["0", "1"]),
                                    np.array([0.0, np.nan])])
def test_labeled_images_refuses_labels_that_are_not_whole_numbers(labels):
    # documented as an int64 array: 0.5, bools and text were kept as given (text raised a numpy UFuncTypeError)
    with pytest.raises(ValueError, match="labels must be whole numbers"):
        LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), labels, ["a", "b"], "a {c}")


@pytest.mark.parametrize("labels", [[0, 1], np.array([0, 1], np.int32), np.array([0.0, 1.0]),
                                    np.array([0, 1], np.uint8)])
def test_labeled_images_labels_are_int64(labels):
    data = LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), labels, ["a", "b"], "a {c}")
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [0, 1]
    assert data.subset(np.array([1])).labels.dtype == np.int64


@pytest.mark.parametrize("size", [0, -1, 2.5, True, "4", None])
def test_embed_images_refuses_a_batch_size_that_is_not_a_positive_integer(size):
    # checked before the model is touched, so no model is needed here
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        embed_images(None, np.zeros((2, 4, 4, 3), np.uint8), batch_size=size)


@pytest.mark.parametrize("bad", ["4", 4.5, True, None, 2])
def test_forecast_methods_refuses_a_min_runs_that_is_not_an_integer_of_at_least_3(bad):
    runs = pd.DataFrame({"model": ["m"], "pretrained": ["p"], "method": ["lora"], "dataset": ["d"],
                         "status": ["ok"], "iimm": [0.5], "id_gain": [1.0], "ood_change": [0.0]})
    with pytest.raises(ValueError, match=r"min_runs must be an integer >= 3"):
        forecast.forecast_methods(runs, {"iimm": 0.5}, model="m", pretrained="p", min_runs=bad)


def test_silhouette_modality_gives_a_numpy_seed_the_same_draw_as_the_int():
    # seed + 1 (the prompts' draw) wrapped for np.uint8(255) to 0, with a RuntimeWarning: another subsample
    rng = np.random.default_rng(0)
    x, t = rng.normal(size=(12, 4)), rng.normal(size=(12, 4))
    want = metrics.silhouette_modality(x, t, sample_size=3, seed=255)
    assert metrics.silhouette_modality(x, t, sample_size=3, seed=np.uint8(255)) == want


@pytest.mark.parametrize("kw, match", [({"min_datasets": "5"}, "min_datasets must be an integer >= 3"),
                                       ({"min_datasets": 4.5}, "min_datasets must be an integer >= 3"),
                                       ({"n_boot": -1}, r"n_boot must be an integer >= 0"),
                                       ({"n_boot": 2.5}, r"n_boot must be an integer >= 0"),
                                       ({"level": 1.5}, "level must be")])
def test_evaluate_predictors_checks_its_settings_whatever_the_runs(kw, match):
    # one seed per dataset: no cell is bootstrapped, so n_boot and level were never looked at
    runs = pd.DataFrame({"model": "m", "pretrained": "p", "method": "lora", "dataset": list("abcdef"), "seed": 0,
                         "status": "ok", "iimm": np.linspace(0.1, 0.6, 6), "id_gain": [3.0, 1, 4, 1, 5, 9],
                         "norm_gain": 0.1, "ood_change": -1.0})
    with pytest.raises(ValueError, match=match):
        predictor_eval.evaluate_predictors(runs, **kw)
    assert (predictor_eval.evaluate_predictors(runs, n_boot=0)["status"] == "ok").any()  # 0 = no bootstrap


@pytest.mark.parametrize("as_list", [False, True])
def test_labeled_images_subset_by_a_boolean_mask_keeps_images_and_labels_together(as_list):
    # a list of images took the mask's True/False as positions 1/0: image 1 twice, labels of rows 0 and 2
    images = np.arange(3, dtype=np.uint8)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3)
    data = LabeledImages(list(images) if as_list else images, [0, 1, 2], ["a", "b", "c"], "a {c}")
    part = data.subset(np.array([True, False, True]))
    assert part.labels.tolist() == [0, 2]
    assert [int(np.asarray(im)[0, 0, 0]) for im in part.images] == [0, 2]
    with pytest.raises(ValueError, match="one entry per image"):
        data.subset(np.array([True, False]))


@pytest.mark.parametrize("size", [0, 2.5, True, "8"])
def test_accuracy_refuses_a_batch_size_that_is_not_a_positive_integer(size):
    # checked before the module is touched, so no module is needed here
    data = LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), [0, 1], ["a", "b"], "a {c}")
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        accuracy(None, data, batch_size=size)


@pytest.mark.parametrize("bad", ["6", 5.5, True, 4])
def test_forecast_select_refuses_a_min_datasets_that_is_not_an_integer_of_at_least_5(bad):
    runs = pd.DataFrame({"model": "m", "pretrained": "p", "method": "lora", "dataset": list("abcdef"), "seed": 0,
                         "status": "ok", "iimm": np.linspace(0.1, 0.6, 6), "id_gain": [3.0, 1, 4, 1, 5, 9],
                         "norm_gain": 0.1, "ood_change": -1.0})
    with pytest.raises(ValueError, match="min_datasets must be an integer >= 5"):
        forecast_select.selection_table(runs, min_datasets=bad, coverage=False)
    with pytest.raises(ValueError, match="min_datasets must be an integer >= 5"):
        forecast_select.forecast_new(runs, {"iimm": 0.3}, model="m", pretrained="p", min_datasets=bad, coverage=False)


@pytest.mark.parametrize("device, match", [("bogus", "is not a torch device"), ("cuda:99", "is not on this machine")])
def test_load_model_names_a_bad_device_rather_than_a_failed_download(device, match):
    # it was ModelUnavailableError 'the download failed ...; use the offline default model worldclip-tiny
    # instead' -- for worldclip-tiny itself, whose weights ship with the code
    with pytest.raises(ValueError, match=match):
        models.load_model("worldclip-tiny", device=device)


def test_list_datasets_knows_its_three_sources_and_refuses_another():
    assert {d.source for d in list_datasets()} == {"world", "world-v2", "torchvision"}
    assert list_datasets("world-v2") and all(d.source == "world-v2" for d in list_datasets("world-v2"))
    with pytest.raises(ValueError, match="unknown dataset source 'World'"):  # it gave [], as if it had none
        list_datasets("World")


@pytest.mark.parametrize("split", ["val", "Test", None])
def test_split_within_class_refuses_a_split_that_is_neither_train_nor_test(split):
    # anything but 'test' was given the train items, so a typo read the training images as another split
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        split_within_class([f"{i}.png" for i in range(10)], split)


def test_fits_and_correlations_refuse_a_y_that_is_not_one_value_per_row():
    # a (2, 2) y was flattened to 4 values and fitted against the 4 rows of x: R² 1.0, r 1.0 from nothing
    x, y = [1.0, 2.0, 3.0, 4.0], [[1.0, 2.0], [3.0, 4.0]]
    for fn in (forecast.fit_linear, forecast.pearson_r, forecast.kendall_tau):
        with pytest.raises(ValueError, match=r"y must be 1-D .*shape \(2, 2\)"):
            fn(x, y)
    assert forecast.fit_linear(x, [[1.0], [2.0], [3.0], [5.0]]).n == 4  # one column is one value per row


def test_class_names_given_as_one_string_are_refused_not_read_as_letters(loaded):
    # "cat dog" was taken as the 7 classes 'c', 'a', 't', ' ', ...; prompts embedded one per letter
    with pytest.raises(ValueError, match="class_names must be a list of names, got one string 'cat dog'"):
        LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), "cat dog", "a {c}")
    with pytest.raises(ValueError, match="class_names must be a list of names, got one string 'cat'"):
        embed_prompts(loaded, "cat", "a photo of a {c}")
    assert embed_prompts(loaded, ["cat", "dog"], "a photo of a {c}").shape[0] == 2


@pytest.mark.parametrize("template, says", [("a photo of a {c} {size}", r"KeyError: 'size'"),
                                            ("a {c} {}", r"IndexError: "), ("a {c}}", r"ValueError: Single '\}'")])
def test_a_template_with_other_braces_than_its_c_slot_is_refused_by_name(template, says, loaded):
    # it passed the check for '{c}' and failed when the prompts were made, with a bare KeyError('size') or IndexError
    expected = rf"template '{re.escape(template)}' has braces other than its '\{{c\}}' slot \({says}.*a literal brace"
    with pytest.raises(ValueError, match=expected):
        LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), ["cat", "dog"], template)
    with pytest.raises(ValueError, match=expected):
        embed_prompts(loaded, ["cat", "dog"], template)
    with pytest.raises(ValueError, match=expected):
        build_method("zero_shot", loaded, ["cat", "dog"], template)  # on a copy: the fixture stays as it is
    with pytest.raises(ValueError, match="class_names must be a list of names, got None"):
        LabeledImages(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]), None, "a {c}")
