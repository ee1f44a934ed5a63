"""Mutation-killing tests of ``opgraph.dcg.envelope`` against independent references.

References: ``E[|F(X) - v|; region]`` of uniform laws in closed form (``int |x - c| dx`` by hand), and envelopes
evaluated on dense samples of the region (``|F| <= sum of terms + off`` point by point).
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import envelope as ev

# X ~ U(0, 4), the region X < 2 (mass 1/2)
REG = ev.Region(od.Uniform(0.0, 4.0), "lower", 2.0, 0.0, 2.0)


def _abs_dev(c: float) -> float:
    """E[|X - c|; X < 2] for X ~ U(0, 4), by hand: (1/4) int_0^2 |x - c| dx."""
    if c <= 0:
        return (2.0 - 2.0 * c) / 4
    if c >= 2:
        return (2.0 * c - 2.0) / 4
    return (c * c / 2 + (2 - c) ** 2 / 2) / 4


@pytest.mark.parametrize("v", [-0.5, 0.1, 0.5, 0.9, 1.5, 1.9, 3.0])
@pytest.mark.parametrize("flo", [-1.0, -0.2, 0.0])
def test_cell_bound_with_any_valid_lower_end_bounds_the_exact_deviation(v: float, flo: float) -> None:
    """F = X >= 0 on the region, so any ``flo <= 0`` is a valid lower end (a loose one must not break it)."""
    x = ev.variable(REG)
    for fhi in (np.inf, 2.0, 5.0):
        got = ev.cell_bound(x, REG, v, flo, fhi)
        assert got >= _abs_dev(v) * (1 - 1e-12)


def test_cell_bound_takes_the_lower_end_form_where_it_is_smallest() -> None:
    """F = X + 1 >= 1 on the region, v = 1.5: m - v p + 2 (v - flo) p = 1 - 0.75 + 0.5 = 0.75 (the others 1.75)."""
    f = ev.rule("add", [ev.variable(REG), ev.constant(1.0)], [None, 1.0], REG)
    exact = _abs_dev(0.5)  # E[|X + 1 - 1.5|; X < 2] = 0.3125
    got = ev.cell_bound(f, REG, 1.5, 1.0, 3.0)
    assert exact <= got <= 0.75 * (1 + 1e-6)
    assert got >= 0.75  # rounded up, never down
    assert ev.moment(f, REG) >= 1.0  # E[1 + X; X < 2] = 1 exactly, rounded up


def test_power_of_a_sum_of_terms_dominates_samples() -> None:
    """(3 x + x^2)^q on X < 2 of U(0, 4) and on a Normal's upper tail: the envelope is >= it everywhere."""
    for reg, xs in (
        (REG, np.linspace(0.0, 2.0, 20_001)),
        (ev.Region(od.Normal(0.0, 1.0), "upper", 1.0, 1.0, np.inf), np.linspace(1.0, 60.0, 20_001)),
    ):
        x = ev.variable(reg)
        s = ev.rule(
            "add",
            [ev.rule("mul", [ev.constant(3.0), x], [3.0, None], reg), ev.rule("square", [x], [None], reg)],
            [None, None],
            reg,
        )
        for q in (0.5, 1.5, 3.0):
            e = ev.rule("pow", [s, ev.constant(q)], [None, q], reg)
            env = sum(c * (np.exp(a * xs) if k == "exp" else np.abs(xs) ** a) for c, k, a in e.terms) + e.off
            assert np.all(env >= (3 * xs + xs**2) ** q * (1 - 1e-12))


def test_log_below_one_is_bounded_by_the_negative_power() -> None:
    """|log x| <= (x^-h - 1) / h on (0, 1]: the offset -1/h is part of it, and it is tight near x = 1."""
    reg = ev.Region(od.Uniform(0.0, 1.0), "lower", 0.5, 0.0, 0.5)
    e = ev.rule("log", [ev.variable(reg)], [None], reg)
    xs = np.linspace(1e-6, 0.5, 10_001)
    env = sum(c * np.abs(xs) ** a for c, k, a in e.terms) + e.off
    assert np.all(env >= np.abs(np.log(xs)) * (1 - 1e-12))
    assert env[-1] <= abs(np.log(0.5)) * 1.05  # tight: the offset is -1/h, not +1/h
    full = ev.Region(od.Uniform(0.0, 1.0), "lower", 1.0, 0.0, 1.0)
    e1 = ev.rule("log", [ev.variable(full)], [None], full)
    assert e1.terms == ((1 / ev.LOG_H, "power", -ev.LOG_H),) and e1.off == pytest.approx(-1 / ev.LOG_H)
