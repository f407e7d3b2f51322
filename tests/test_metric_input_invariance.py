"""The pure measures give the same answer for the same values whatever the inputs' dtype, memory layout or label
container, leave the caller's arrays alone, and refuse malformed input with a ValueError naming it.

Every float array here holds values exactly representable in float16, so its float16, float32 and float64 copies
hold the same values; 37 x 13 with 5 classes keeps each call fast and every size odd.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from core import metrics as m
from core import transferability as tr
from core.predict import content_order

N, D, C = 37, 13, 5
NAMES = ["cat", "ant", "dog", "emu", "bee"]


def _base() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, D)) + 0.3
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float16).astype(np.float64)
    t = rng.standard_normal((C, D)).astype(np.float16).astype(np.float64)
    y = np.r_[np.arange(C), rng.integers(0, C, N - C)]
    probs = tr.classifier_probs(x, t, logit_scale=30.0).astype(np.float16).astype(np.float64)
    return x, t, y, probs


X, T, Y, P = _base()


def _quiet(fn):
    def call(*args):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(fn(*args), dtype=np.float64).ravel()
    return call


# name -> f(x, t, y, probs): every public measure of core.metrics and core.transferability, and content_order
MEASURES = {
    "iimm": lambda x, t, y, p: m.iimm(x, t, y),
    "inter_modal": lambda x, t, y, p: m.inter_modal_score(x, t, y),
    "intra_image": lambda x, t, y, p: m.intra_image_score(x),
    "correct_pair": lambda x, t, y, p: m.correct_pair_cosine(x, t, y),
    "modality_gap": lambda x, t, y, p: m.modality_gap(x, t),
    "intra_text": lambda x, t, y, p: m.intra_text_score(t),
    "zs_acc": lambda x, t, y, p: m.zero_shot_accuracy(x, t, y),
    "silhouette_classes": lambda x, t, y, p: m.silhouette_classes(x, y),
    "silhouette_modality": lambda x, t, y, p: m.silhouette_modality(x, t),
    "zero_shot_scores": lambda x, t, y, p: list(m.zero_shot_scores(x, t, y).values()),
    "bootstrap_iimm": lambda x, t, y, p: m.bootstrap_iimm(x, t, y, n_boot=20),
    "classifier_probs": lambda x, t, y, p: tr.classifier_probs(x, t, logit_scale=30.0, logit_bias=-1.0),
    **{name: (lambda f: lambda x, t, y, p: f(x, y))(fn) for name, (fn, _) in tr.BASELINES.items()
       if tr.baseline_input(fn) == "features"},
    "gbc_project": lambda x, t, y, p: tr.gbc(x, y, covariance="diagonal", convention="project", pca_dim=4),
    "h_score_project": lambda x, t, y, p: tr.h_score(x, y, convention="project"),
    "transrate_project": lambda x, t, y, p: tr.transrate(x, y, convention="project"),
    "ncti_terms": lambda x, t, y, p: list(tr.ncti_terms(x, y).values()),
    "leep": lambda x, t, y, p: tr.leep(p, y),
    "nce": lambda x, t, y, p: tr.nce(p, y),
    "emms": lambda x, t, y, p: tr.emms(x, y, label_embeddings=[t, t[:, :7]]),
    "emms_project": lambda x, t, y, p: tr.emms(x, y, label_embeddings=[t], convention="project"),
    "emms_stack": lambda x, t, y, p: tr.emms(x, y, label_embeddings=np.asarray(t)[Y][:, :, None]),  # (N, D, K)
    "label_embedding_stack": lambda x, t, y, p: tr.label_embedding_stack([t], y).ravel(),
    "all_scores": lambda x, t, y, p: list(tr.all_scores(x, y, probs=p, label_embeddings=[t]).values()),
    "content_order": lambda x, t, y, p: content_order(x, y, NAMES),
}
REFERENCE = {name: _quiet(fn)(X, T, Y, P) for name, fn in MEASURES.items()}
# measures whose labels are class ids of any value (mapped to 0..K-1 inside), not rows of the prompts
ANY_IDS = {"silhouette_classes", "emms_stack", *(n for n in MEASURES if n.split("_")[0] in
                                   ("gbc", "h", "transrate", "sfda", "ncti", "logme", "leep", "nce"))}
LABEL_FREE = {"intra_image", "modality_gap", "intra_text", "silhouette_modality", "classifier_probs"}


def _memmap(a: np.ndarray, folder, dtype) -> np.ndarray:
    path = folder / f"a{a.shape[0]}x{a.shape[1]}.{np.dtype(dtype).name}"
    w = np.memmap(path, dtype=dtype, mode="w+", shape=a.shape)
    w[:] = a
    w.flush()
    del w
    return np.memmap(path, dtype=dtype, mode="r", shape=a.shape)


def _strided(a: np.ndarray) -> np.ndarray:
    wide = np.full((a.shape[0], 2 * a.shape[1]), 9.0)
    wide[:, ::2] = a
    return wide[:, ::2]


def _read_only(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.setflags(write=False)
    return a


# name -> (transform of each float array, relative tolerance against the float64 C-order reference)
LAYOUTS = {
    "float32": (lambda a, tmp: a.astype(np.float32), 1e-6),
    "float16": (lambda a, tmp: a.astype(np.float16), 1e-6),
    "bfloat16_values_as_float32": (None, 1e-6),  # values rounded to bfloat16: own reference, below
    "fortran": (lambda a, tmp: np.asfortranarray(a), 1e-12),
    "strided_view": (lambda a, tmp: _strided(a), 1e-12),
    "reversed_twice_view": (lambda a, tmp: a[::-1][::-1] if a.ndim == 1 else a[::-1, ::-1][::-1, ::-1], 1e-12),
    "read_only": (lambda a, tmp: _read_only(a), 0.0),
    "read_only_float16": (lambda a, tmp: _read_only(a.astype(np.float16)), 1e-6),
    "memmap_float32": (lambda a, tmp: _memmap(a, tmp, np.float32), 1e-6),
    "memmap_float64": (lambda a, tmp: _memmap(a, tmp, np.float64), 1e-12),
    "dataframe": (lambda a, tmp: pd.DataFrame(a, index=np.arange(len(a)) * 3 + 11), 1e-12),
}


def _bfloat16(a: np.ndarray) -> np.ndarray:
    """float32 values whose low 16 bits are zero: what a bfloat16 tensor's .float() holds."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) & np.uint32(0xFFFF0000)
    return bits.view(np.float32)


def _close(got: np.ndarray, want: np.ndarray, rel: float, what: str) -> None:
    assert got.shape == want.shape, what
    if rel == 0.0:
        assert np.array_equal(got, want), what
    else:
        np.testing.assert_allclose(got, want, rtol=rel, atol=rel * 1e-3, err_msg=what)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", list(MEASURES))
def test_same_values_give_the_same_answer_in_any_dtype_and_layout(name, layout, tmp_path):
    make, rel = LAYOUTS[layout]
    fn = _quiet(MEASURES[name])
    if make is None:
        bx, bt = _bfloat16(X), _bfloat16(T)
        bp = _bfloat16(P).astype(np.float64)
        bp /= bp.sum(axis=1, keepdims=True)
        want = fn(bx.astype(np.float64), bt.astype(np.float64), Y, bp)
        got = fn(bx, bt, Y, bp.astype(np.float32))
    else:
        want = REFERENCE[name]
        other = (lambda a, tmp: a) if layout == "dataframe" else make  # a table of the image rows only
        got = fn(make(X, tmp_path), other(T, tmp_path), Y, other(P, tmp_path))
    if name == "content_order":  # a permutation: the code promises float32 rows and their float64 copy agree
        rel = 0.0
    _close(got, want, rel, f"{name} on {layout}")


LABELS = {
    **{f"{np.dtype(dt).name}": (lambda dt: lambda y: y.astype(dt))(dt)
       for dt in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint64)},
    "integral_float": lambda y: y.astype(np.float32),
    "list": lambda y: [int(v) for v in y],
    "numpy_scalars_list": lambda y: list(y.astype(np.int16)),
    "series_odd_index": lambda y: pd.Series(y, index=np.arange(len(y))[::-1] * 7 + 3),
    "series_nullable": lambda y: pd.Series(y, dtype="Int64"),
    "read_only": _read_only,
    "strided_view": lambda y: np.repeat(y, 2)[::2],
}


@pytest.mark.parametrize("kind", list(LABELS))
@pytest.mark.parametrize("name", list(MEASURES))
def test_labels_in_any_integer_container_give_the_same_answer(name, kind):
    got = _quiet(MEASURES[name])(X, T, LABELS[kind](Y), P)
    _close(got, REFERENCE[name], 0.0, f"{name} with labels as {kind}")


@pytest.mark.parametrize("ids", [[3, 7, 100, 5, 2 ** 40], [1, 2, 3, 4, 5], [10, 8, 6, 4, 2]])
@pytest.mark.parametrize("name", sorted(ANY_IDS))
def test_measures_of_class_ids_ignore_which_ids_name_the_classes(name, ids):
    # their docstrings allow any non-negative ids, gaps included; only the grouping matters
    got = _quiet(MEASURES[name])(X, T, np.asarray(ids)[Y], P)
    _close(got, REFERENCE[name], 1e-12, f"{name} with ids {ids}")


@pytest.mark.parametrize("name", sorted(set(MEASURES) - ANY_IDS - LABEL_FREE))
def test_measures_of_prompt_rows_refuse_labels_outside_the_prompts(name):
    # labels index the C prompt rows (0..C-1): an id past them, or a negative one, is refused by name
    for labels, msg in ((Y + 1, "labels out of range: max label 5"), (Y - 1, "labels must be >= 0, got -1")):
        with pytest.raises(ValueError, match=msg):
            _quiet(MEASURES[name])(X, T, labels, P)


@pytest.mark.parametrize("name", sorted(ANY_IDS))
def test_measures_of_class_ids_refuse_negative_ids(name):
    with pytest.raises(ValueError, match="labels must be >= 0, got -2"):
        _quiet(MEASURES[name])(X, T, Y - 2, P)


@pytest.mark.parametrize("name", sorted(set(MEASURES) - {"bootstrap_iimm", "content_order", "emms_stack"}))
def test_reordered_rows_give_the_same_answer(name):
    # x[::-1] with its labels reversed alike: the same sample, stored the other way up
    if name in ("classifier_probs", "label_embedding_stack"):  # row-wise outputs: reversed alike
        got = _quiet(MEASURES[name])(X[::-1], T, Y[::-1], P[::-1])
        want = (REFERENCE[name].reshape(N, -1)[::-1]).ravel()
    else:
        got, want = _quiet(MEASURES[name])(X[::-1], T, Y[::-1], P[::-1]), REFERENCE[name]
    _close(got, want, 1e-9, f"{name} on reversed rows")


def test_bootstrap_drawn_in_content_order_ignores_the_rows_order():
    rev = X[::-1], T, Y[::-1]
    want = m.bootstrap_iimm(X, T, Y, n_boot=20, order=content_order(X, Y, NAMES))
    got = m.bootstrap_iimm(*rev, n_boot=20, order=content_order(rev[0], rev[2], NAMES))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.array_equal(X[content_order(X, Y, NAMES)], rev[0][content_order(rev[0], rev[2], NAMES)])


@pytest.mark.parametrize("name", list(MEASURES))
def test_no_measure_writes_to_its_inputs(name):
    x, t, y, p = (a.copy() for a in (np.asfortranarray(X), _strided(T), Y.astype(np.int8), P.astype(np.float32)))
    before = [a.copy() for a in (x, t, y, p)]
    _quiet(MEASURES[name])(x, t, y, p)
    for a, b in zip((x, t, y, p), before, strict=True):
        assert np.array_equal(a, b) and a.dtype == b.dtype, name


def _with(a: np.ndarray, index, value) -> np.ndarray:
    a = a.astype(np.float64)
    a[index] = value
    return a


# name -> inputs the docstrings reject, with what the ValueError must say
BAD = {
    "nan image": (lambda: (_with(X, (3, 2), np.nan), T, Y, P), "NaN or inf"),
    "inf image": (lambda: (_with(X, (30, 0), -np.inf), T, Y, P), "NaN or inf"),
    "1-D image": (lambda: (X[:, 0], T, Y, P), "must be 2-D"),
    "3-D image": (lambda: (X[:, :, None], T, Y, P), "must be 2-D"),
    "short labels": (lambda: (X, T, Y[:-1], P), "labels has length 36 but there are 37"),
    "2-D labels": (lambda: (X, T, Y[:, None], P), "labels must be 1-D"),
    "nan label": (lambda: (X, T, np.where(np.arange(N) == 4, np.nan, Y), P), "labels must be integers"),
    "fractional label": (lambda: (X, T, Y + 0.5, P), "labels must be integers"),
    "string labels": (lambda: (X, T, np.array([NAMES[v] for v in Y]), P), "labels must be integers"),
    "one image": (lambda: (X[:1], T, Y[:1], P[:1]), "at least 2"),
    "complex image": (lambda: (X.astype(np.complex128), T, Y, P), "real numeric array"),
}
# measures that read the image rows and the labels (the rest read fewer arguments)
READS_BOTH = sorted(set(MEASURES) - LABEL_FREE - {"leep", "nce", "label_embedding_stack", "content_order"})


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("name", READS_BOTH)
def test_rejected_input_raises_a_value_error_naming_it(name, bad):
    make, msg = BAD[bad]
    with pytest.raises(ValueError, match=msg):
        MEASURES[name](*make())


@pytest.mark.parametrize("name", sorted(ANY_IDS - {"silhouette_classes"}))
def test_baselines_refuse_a_single_class(name):
    with pytest.raises(ValueError, match="at least 2 distinct classes"):
        _quiet(MEASURES[name])(X, T, np.full(N, 3), P)


@pytest.mark.parametrize("probs, msg", [(_with(P, (2, 1), np.nan), "probs contains NaN or inf"),
                                        (P[:, :, None], "probs must be 2-D"),
                                        (np.log(P + 1e-9), "probs must be non-negative"),
                                        (P * 2, "rows must sum to 1"),
                                        (P[:-1], "labels has length 37 but there are 36")])
@pytest.mark.parametrize("fn", [tr.leep, tr.nce])
def test_probability_baselines_refuse_what_are_not_probabilities(fn, probs, msg):
    with pytest.raises(ValueError, match=msg):
        fn(probs, Y)


def _scatter(d: int = 13) -> np.ndarray:
    a = np.random.default_rng(3).standard_normal((3 * d, d))
    return (a.T @ a / d).astype(np.float16).astype(np.float64)  # float16 values, entries near 3


@pytest.mark.parametrize("make", [lambda a: a.astype(np.float16), lambda a: a.astype(np.float32),
                                  np.asfortranarray, lambda a: _read_only(a.astype(np.float16))])
def test_power_iteration_gives_the_same_eigenvalue_in_any_dtype(make):
    # float16 input was iterated in float16: its norms overflowed (65504) and the exact fallback then raised
    # TypeError (float16 is unsupported in linalg); on smaller matrices it was off by 4e-4
    a = _scatter()
    assert tr.power_iteration_eigenvalue(make(a)) == pytest.approx(tr.power_iteration_eigenvalue(a), rel=1e-6)


@pytest.mark.parametrize("a", [np.full((3, 3), "a"), np.ones((3, 3), dtype=bool), np.ones((2, 2), dtype=complex)])
def test_power_iteration_refuses_a_matrix_that_is_not_real_numbers(a):
    with pytest.raises(ValueError, match="real numeric matrix"):
        tr.power_iteration_eigenvalue(a)


@pytest.mark.parametrize("image, labels, msg", [
    (X, Y - 1, "labels must be >= 0, got -1"),  # was read as the last class name (negative indexing)
    (X, Y + 1, "labels out of range: max label 5 but only 5 class names"),  # was an IndexError
    (X, np.where(np.arange(N) == 4, np.nan, Y), "labels must be integers"),  # was an IndexError
    (X, Y[:-1], "labels has length 36 but there are 37"),  # was lexsort's "need the same shape"
    (X[:, 0], Y, "image_embeddings must be 2-D"),  # was an IndexError
    (X.astype(np.complex64), Y, "real numeric array"),
])
def test_content_order_refuses_what_the_measures_refuse(image, labels, msg):
    with pytest.raises(ValueError, match=msg):
        content_order(image, labels, NAMES)


@pytest.mark.parametrize("rows", [lambda: X * 3e-43, lambda: np.where(X > 0, 3e38, -3e38)],
                         ids=["subnormal", "norm_past_float32_max"])
def test_float32_rows_at_the_range_ends_score_as_their_float64_copy(rows):
    # zero_shot_accuracy scored float32 rows unnormalised in float32: subnormal products kept a few bits and
    # rows whose norm passes float32's max overflowed (inf - inf = NaN), so the accuracy moved (8.1% -> 5.4%)
    # while every other measure, normalising first, did not
    x32 = rows().astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = m.zero_shot_scores(x32, T, Y)
    want = m.zero_shot_scores(x32.astype(np.float64), T, Y)
    assert got == pytest.approx(want, rel=1e-6)


# ----------------------------------------------------------------------------- the predictor fits' (x, y) helpers
def _fits():
    from core import forecast as f, nested_bootstrap as nb, predictor_eval as pe

    def lodo(x, y, g):
        out = f.leave_one_group_out(x, y, g)
        return [out["mae"], *out["predictions"]]

    return {
        "fit_linear": lambda x, y, g: [f.fit_linear(x, y).slope, f.fit_linear(x, y).intercept,
                                       *f.fit_linear(x, y).predict(0.3)],
        "pearson_r": lambda x, y, g: f.pearson_r(x, y),
        "kendall_tau": lambda x, y, g: f.kendall_tau(x, y),
        "leave_one_group_out": lodo,
        "nested_kendall_tau": lambda x, y, g: nb.kendall_tau(x, y),
        "nested_bootstrap_tau": lambda x, y, g: list(vars(nb.nested_bootstrap_tau(x, y, g, n_boot=30)).values()),
        "kendall_tau_rows": lambda x, y, g: pe.kendall_tau_rows(np.asarray(x)[None], np.asarray(y)[None],
                                                                np.asarray(g)[None]),
    }


FITS = _fits()
FX = np.random.default_rng(1).standard_normal(N).astype(np.float16).astype(np.float64)
FY = (FX + np.random.default_rng(2).standard_normal(N)).astype(np.float16).astype(np.float64)
FG = np.random.default_rng(3).integers(0, 6, N)
FIT_VALUES = {"float32": lambda a: a.astype(np.float32), "float16": lambda a: a.astype(np.float16), "list": list,
              "series_odd_index": lambda a: pd.Series(a, index=np.arange(N)[::-1] * 5 + 2), "read_only": _read_only,
              "strided_view": lambda a: np.repeat(a, 2)[::2], "negative_strides": lambda a: a[::-1].copy()[::-1]}
FIT_GROUPS = {"int8": lambda g: g.astype(np.int8), "uint8": lambda g: g.astype(np.uint8), "list": list,
              "series_odd_index": lambda g: pd.Series(g, index=np.arange(N) + 100),
              "names": lambda g: np.array([f"set{v}" for v in g]), "ids_with_gaps": lambda g: g * 17 + 3}


@pytest.mark.parametrize("kind", [*FIT_VALUES, *(f"groups_{k}" for k in FIT_GROUPS)])
@pytest.mark.parametrize("name", list(FITS))
def test_predictor_fits_give_the_same_answer_for_the_same_values(name, kind):
    x, y, g = FX.copy(), FY.copy(), FG.copy()
    if kind.startswith("groups_"):
        g = FIT_GROUPS[kind[len("groups_"):]](g)
    else:
        x, y = FIT_VALUES[kind](x), FIT_VALUES[kind](y)
    before = [np.array(a, copy=True) for a in (x, y, g)]
    got = np.asarray(FITS[name](x, y, g), dtype=np.float64).ravel()
    want = np.asarray(FITS[name](FX, FY, FG), dtype=np.float64).ravel()
    assert np.array_equal(got, want, equal_nan=True), f"{name} with {kind}"
    assert all(np.array_equal(np.asarray(a), b) for a, b in zip((x, y, g), before, strict=True)), "an input changed"
