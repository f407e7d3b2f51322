import numpy as np
import pytest
from scipy.stats import kendalltau

from core.nested_bootstrap import kendall_tau, nested_bootstrap_tau


def test_tau_hand_checked_and_constant_counts_as_zero():
    assert kendall_tau(np.array([1, 2, 3]), np.array([1, 3, 2])) == pytest.approx(1 / 3)
    assert kendall_tau(np.array([1, 2, 3]), np.array([5, 5, 5])) == 0.0


def test_interval_brackets_tau_and_is_deterministic():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(7), 4)
    x = groups + rng.normal(0, 0.5, 28)
    y = x + rng.normal(0, 1.0, 28)
    a = nested_bootstrap_tau(x, y, groups, n_boot=300, seed=3)
    b = nested_bootstrap_tau(x, y, groups, n_boot=300, seed=3)
    assert a == b and a.lo <= a.tau <= a.hi and a.excludes_zero()
    assert a.tau == pytest.approx(kendalltau(x, y).statistic)
    assert (a.n_items, a.n_groups) == (28, 7)


@pytest.mark.slow
def test_mostly_constant_outcome_gives_no_false_significance():
    """14 of 15 groups with outcome 0 and a noise predictor: the interval must rarely exclude 0."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(100):
        groups = np.repeat(np.arange(15), 2)
        y = np.zeros(30)
        y[groups == 0] = rng.normal(0, 1, 2)
        hits += nested_bootstrap_tau(rng.normal(size=30), y, groups, n_boot=200,
                                     seed=int(rng.integers(1 << 30))).excludes_zero()
    assert hits <= 7


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="at least 2 groups"):
        nested_bootstrap_tau(np.arange(4.0), np.arange(4.0), np.zeros(4))
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau(np.arange(3.0), np.arange(4.0))
    with pytest.raises(ValueError, match="finite"):
        kendall_tau(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    x = np.arange(6.0)
    # a NaN label equals nothing, not even itself: its items would silently never be drawn
    with pytest.raises(ValueError, match="groups must not contain missing"):
        nested_bootstrap_tau(x, x, np.array([np.nan, 0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="groups must not contain missing"):
        nested_bootstrap_tau(x, x, np.array([None, "a", "a", "b", "b", "c"], dtype=object))
    for seed in (-1, 1.5, True):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            nested_bootstrap_tau(x, x, np.array([0, 0, 1, 1, 2, 2]), seed=seed)


def test_options_and_mixed_group_labels():
    x = np.arange(6.0)
    groups = np.array([0, 0, 1, 1, 2, 2])
    for kw, match in (({"n_boot": 2.5}, "n_boot must be an integer >= 1"), ({"n_boot": 0}, "n_boot must be"),
                      ({"level": "0.9"}, "level must be a number between 0 and 1"),
                      ({"level": float("nan")}, "level must be"), ({"level": 1.0}, "level must be")):
        with pytest.raises(ValueError, match=match):
            nested_bootstrap_tau(x, x, groups, **kw)
    mixed = np.array([1, 1, "a", "a", 2.5, 2.5], dtype=object)  # labels that cannot be sorted together
    got = nested_bootstrap_tau(x, x, mixed, n_boot=50)
    assert got.n_groups == 3 and got.tau == pytest.approx(1.0)
    # sortable labels keep their sorted order, so moving whole groups does not change an interval
    order = np.array([4, 5, 0, 1, 2, 3])
    assert nested_bootstrap_tau(x, x, groups, n_boot=50) == nested_bootstrap_tau(x[order], x[order],
                                                                                groups[order], n_boot=50)


def test_groups_are_resampled_so_a_replicate_can_draw_one_group_twice():
    """x is constant within each of 2 groups: only a replicate drawing one group twice has no order."""
    rng = np.random.default_rng(5)
    groups = np.repeat([0, 1], 5)
    got = nested_bootstrap_tau(groups.astype(float), rng.standard_normal(10), groups, n_boot=200, seed=1)
    assert 50 < got.n_undefined < 150  # about half the replicates; none if groups were not resampled


def test_interval_ends_are_the_two_sided_percentiles(monkeypatch):
    import itertools
    import types

    import core.nested_bootstrap as nb

    given = []
    values = itertools.cycle(np.linspace(-1, 1, 37))

    def fake_tau(a, b):  # known replicate values, so the interval's ends can be computed by hand
        given.append(next(values))
        return types.SimpleNamespace(statistic=given[-1])

    monkeypatch.setattr(nb, "kendalltau", fake_tau)
    x = np.arange(12.0)
    got = nb.nested_bootstrap_tau(x, np.tile([1.0, 2.0, 3.0], 4), np.repeat(np.arange(4), 3), n_boot=400,
                                  level=0.9, seed=0)
    replicates = given[len(given) - (400 - got.n_undefined):] + [0.0] * got.n_undefined  # undefined: 0
    assert (got.lo, got.hi) == pytest.approx(tuple(np.quantile(replicates, [0.05, 0.95])))
