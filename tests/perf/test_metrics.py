from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from opgraph.perf.metrics import (
    inter_round_tau,
    kaggle_tile_score,
    kendall_tau,
    ordered_pair_accuracy,
    score_graph,
    slowdown_at_k,
)


def test_perfect_and_reversed_order():
    rt = np.array([3.0, 1.0, 2.0, 5.0])
    assert kendall_tau(rt, rt) == pytest.approx(1.0)
    assert kendall_tau(-rt, rt) == pytest.approx(-1.0)
    assert ordered_pair_accuracy(rt, rt) == 1.0
    assert ordered_pair_accuracy(-rt, rt) == 0.0
    assert slowdown_at_k(rt, rt, 1) == 0.0


def test_slowdown_and_kaggle_by_hand():
    rt = np.array([10.0, 12.0, 20.0, 11.0, 30.0, 15.0])
    pred = np.array([5.0, 1.0, 0.0, 9.0, 2.0, 3.0])  # predicted order: 2, 1, 4, 5, 0, 3
    assert slowdown_at_k(pred, rt, 1) == pytest.approx(1.0)  # picks 20 vs best 10
    assert slowdown_at_k(pred, rt, 2) == pytest.approx(0.2)  # best of {20, 12}
    assert slowdown_at_k(pred, rt, 5) == pytest.approx(0.0)
    assert kaggle_tile_score(pred, rt) == pytest.approx(1.0)
    assert kaggle_tile_score(-rt, rt) == pytest.approx(2 - 11 / 10)  # worst five: best of them is 11


def test_tau_b_matches_scipy_with_ties():
    rt = np.array([1, 2, 2, 3, 3, 3, 4.0])
    pred = np.array([1, 1, 2, 2, 3, 4, 4.0])
    assert kendall_tau(pred, rt) == pytest.approx(kendalltau(pred, rt).statistic)
    assert kendall_tau(np.ones(4), np.arange(4)) == 0.0  # undefined -> 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1, 100), min_size=2, max_size=20, unique=True), st.integers(0, 1000))
def test_opa_relates_to_tau_without_ties(values, seed):
    rt = np.array(values)
    pred = np.random.default_rng(seed).permutation(len(rt)).astype(float)
    # with no ties, tau = 2 * OPA - 1
    assert kendall_tau(pred, rt) == pytest.approx(2 * ordered_pair_accuracy(pred, rt) - 1)
    assert 0 <= slowdown_at_k(pred, rt, 3) <= slowdown_at_k(pred, rt, 1)


def test_inter_round_tau_and_score():
    rounds = np.array([[1, 1.1], [2, 2.1], [3, 2.9], [4, 4.2]])
    assert inter_round_tau(rounds) == pytest.approx(1.0)
    assert np.isnan(inter_round_tau(rounds[:, :1]))
    s = score_graph("g", [1, 2, 3, 4], [1, 2, 3, 4], "tile", ceiling_tau=0.9)
    assert set(s.slowdown) == {1, 5, 10} and s.kaggle_tile == 1.0
    with pytest.raises(ValueError, match="4 values"):
        kendall_tau([1, 2, 3, 4], [1, 2])


def test_ordered_pair_accuracy_counts_ties_in_pred_as_half():
    rt = np.array([1.0, 2.0, 3.0])
    # Pairs with runtime_i < runtime_j: (0,1), (0,2), (1,2). pred ties 0 and 1; orders (0,2) right and (1,2) wrong.
    pred = np.array([5.0, 5.0, 4.0])
    assert ordered_pair_accuracy(pred, rt) == pytest.approx((0.5 + 0.0 + 0.0) / 3)
    pred = np.array([1.0, 1.0, 2.0])
    assert ordered_pair_accuracy(pred, rt) == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert ordered_pair_accuracy(np.zeros(4), np.arange(4.0)) == 0.5  # all tied: a coin flip per pair
    # Ties in runtime are not pairs at all; with no ordered pair the score is 1/2.
    assert ordered_pair_accuracy([1.0, 2.0, 3.0], [7.0, 7.0, 8.0]) == pytest.approx(1.0)
    assert ordered_pair_accuracy([3.0, 2.0], [7.0, 7.0]) == 0.5


def test_slowdown_when_k_reaches_or_exceeds_the_number_of_configs():
    rt = np.array([4.0, 2.0, 3.0, 8.0])
    pred = np.array([0.0, 1.0, 2.0, 3.0])  # the true best (index 1) is predicted second...
    worst_first = np.array([3.0, 9.0, 1.0, 0.0])  # ... and here last
    assert slowdown_at_k(worst_first, rt, 1) == pytest.approx((8.0 - 2.0) / 2.0)
    assert slowdown_at_k(worst_first, rt, 3) == pytest.approx((3.0 - 2.0) / 2.0)
    for k in (4, 5, 100):  # k >= n: every config is in the top k, so the best one is found
        assert slowdown_at_k(worst_first, rt, k) == 0.0
        assert slowdown_at_k(pred, rt, k) == 0.0
    assert slowdown_at_k(pred, rt, 1) == pytest.approx(1.0)
    assert slowdown_at_k(pred, rt, 0) == pytest.approx(1.0)  # k < 1 still looks at one config
    s = score_graph("g", worst_first, rt, "layout")
    assert s.slowdown == {1: pytest.approx(3.0), 10: 0.0, 100: 0.0}


def test_kaggle_tile_score_by_hand_with_fewer_than_five_configs():
    rt = np.array([5.0, 4.0, 10.0])
    assert kaggle_tile_score([2.0, 1.0, 0.0], rt) == pytest.approx(1.0)  # top-5 covers all three
    rt6 = np.array([5.0, 6.0, 7.0, 8.0, 9.0, 1.0])
    assert kaggle_tile_score(np.arange(6.0), rt6) == pytest.approx(2 - 5.0 / 1.0)


def test_single_config_and_empty_input():
    assert kendall_tau([3.0], [5.0]) == 0.0  # one config: no pair, tau undefined -> 0
    assert ordered_pair_accuracy([3.0], [5.0]) == 0.5
    assert slowdown_at_k([3.0], [5.0], 1) == 0.0
    with pytest.raises(ValueError, match="empty"):
        kendall_tau([], [])


def test_slowdown_with_a_zero_best_runtime_is_absolute():
    rt = np.array([0.0, 2.0, 3.0])
    assert slowdown_at_k([2.0, 0.0, 1.0], rt, 1) == pytest.approx(2.0)  # no division by a zero best
    assert slowdown_at_k([2.0, 1.0, 0.0], rt, 2) == pytest.approx(2.0)
    assert slowdown_at_k([1.0, 0.0], [0.5, 1.0], 1) == pytest.approx(1.0)  # a best below 1 is still relative


def test_inter_round_tau_is_the_mean_over_distinct_round_pairs():
    rounds = np.array([[1.0, 2.0, 1.0], [2.0, 1.0, 2.0], [3.0, 3.0, 4.0], [4.0, 4.0, 3.0]])
    pairs = [(0, 1), (0, 2), (1, 2)]
    expected = np.mean([kendalltau(rounds[:, i], rounds[:, j]).statistic for i, j in pairs])
    assert inter_round_tau(rounds) == pytest.approx(expected)
    assert expected < 0.9  # not a trivially perfect agreement
    assert np.isnan(inter_round_tau(np.arange(4.0)))  # one round given as a 1-D array


def test_collection_summary_keys_per_kind_and_frozen_scores():
    import dataclasses

    from opgraph.perf.metrics import CollectionScore

    rt = np.array([1.0, 2.0, 3.0, 4.0])
    g = score_graph("g", rt, rt, "layout")
    assert set(g.slowdown) == {1, 10, 100}
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.opa = 0.0  # type: ignore[misc]
    lay = CollectionScore("m", "layout", [g])
    assert tuple(lay.ks) == (1, 10, 100)
    assert set(lay.summary()) == {"kendall_tau", "opa", "ceiling_tau", "slowdown@1", "slowdown@10", "slowdown@100"}
    t = score_graph("t", -rt, rt, "tile")
    tile = CollectionScore("m", "tile", [t, score_graph("u", rt, rt, "tile")])
    with pytest.raises(dataclasses.FrozenInstanceError):
        tile.kind = "layout"  # type: ignore[misc]
    assert tuple(tile.ks) == (1, 5, 10)
    s = tile.summary()
    assert set(s) == {"kendall_tau", "opa", "ceiling_tau", "slowdown@1", "slowdown@5", "slowdown@10", "kaggle_tile"}
    assert s["kendall_tau"] == pytest.approx(0.0) and s["opa"] == pytest.approx(0.5)
    assert s["slowdown@1"] == pytest.approx((4.0 - 1.0) / 1.0 / 2)
