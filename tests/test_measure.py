import math

import numpy as np
import pytest

from opgraph.errors import OpgraphError
from opgraph.measure import compare, cpu_ns, interleaved_rounds, median_ratio_ci, wall_ns


def test_median_ratio_ci_contains_the_median_and_narrows_with_more_data():
    rng = np.random.default_rng(0)
    small = median_ratio_ci(np.exp(rng.normal(np.log(2.0), 0.1, 8)))
    big = median_ratio_ci(np.exp(rng.normal(np.log(2.0), 0.1, 200)))
    for ci in (small, big):
        assert ci.low <= ci.median <= ci.high and ci.significant
    assert (big.high - big.low) < (small.high - small.low)
    assert big.low < 2.0 < big.high
    assert median_ratio_ci([2.0, 4.0, 8.0]).median == pytest.approx(4.0)


def test_median_ratio_ci_edge_cases():
    assert math.isnan(median_ratio_ci([]).median)
    assert math.isnan(median_ratio_ci([0.0, -1.0, math.inf, math.nan]).median)
    one = median_ratio_ci([1.5])
    assert one.median == 1.5 and math.isnan(one.low) and not one.significant
    same = median_ratio_ci([1.2] * 5)
    assert (same.low, same.median, same.high) == pytest.approx((1.2, 1.2, 1.2))
    assert median_ratio_ci([0.9, 1.1, 1.0, 1.05, 0.95]).significant is False
    with pytest.raises(OpgraphError, match="confidence"):
        median_ratio_ci([1.0, 2.0], confidence=1.5)
    assert median_ratio_ci([1, 2, 3, 5], seed=3) == median_ratio_ci([1, 2, 3, 5], seed=3)


def test_interleaved_rounds_shape_and_order():
    calls = []
    fns = [lambda k=k: calls.append(k) for k in range(3)]
    t = interleaved_rounds(fns, rounds=4, warmup=0, timer="wall", seed=1)
    assert t.shape == (3, 4) and t.dtype == np.int64 and (t >= 0).all()
    orders = [tuple(calls[i : i + 3]) for i in range(0, 12, 3)]
    assert all(sorted(o) == [0, 1, 2] for o in orders) and len(set(orders)) > 1  # shuffled each round
    with pytest.raises(OpgraphError, match="timer"):
        interleaved_rounds(fns, timer="gpu")
    with pytest.raises(OpgraphError, match="rounds"):
        interleaved_rounds(fns, rounds=0)


def test_compare_finds_the_slower_callable(monkeypatch):
    # A fake timer (no measured time in a test: under load a real ratio is noise): each callable returns its cost
    # and its k-th timed call (k from 0) costs cost * (1 + k / 100); reps=2 keeps the smaller of two calls.
    import opgraph.measure as measure

    calls = {}

    def fake(fn):
        cost = fn()
        k = calls.get(cost, 0)
        calls[cost] = k + 1
        return int(cost * (1 + k / 100))

    monkeypatch.setitem(measure.TIMERS, "cpu", fake)
    cmp = compare(lambda: 40_000, lambda: 4_000, rounds=7, reps=2, warmup=1)
    assert cmp.candidate_ns.tolist() == [int(40_000 * (1 + k / 100)) for k in range(0, 14, 2)]
    assert cmp.reference_ns.tolist() == [int(4_000 * (1 + k / 100)) for k in range(0, 14, 2)]
    assert cmp.ratio.median == pytest.approx(10.0) and cmp.ratio.significant and cmp.timer == "cpu"
    assert calls == {40_000: 14, 4_000: 14}  # 7 rounds x 2 reps timed (the warm-up call is not)


def test_timers_subtract_the_clock_around_one_call(monkeypatch):
    import opgraph.measure as measure

    ticks = iter([100, 350, 1_000, 1_900])
    monkeypatch.setattr(measure.time, "thread_time_ns", lambda: next(ticks))
    calls = []
    assert cpu_ns(lambda: calls.append(1)) == 250 and calls == [1]
    monkeypatch.setattr(measure.time, "perf_counter_ns", lambda: next(ticks))
    assert wall_ns(lambda: calls.append(2)) == 900 and calls == [1, 2]
