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


def _env_at(e: ev.Env, xs: np.ndarray) -> np.ndarray:
    """The envelope ``sum(terms) + off`` evaluated point by point."""
    return sum(c * (np.exp(a * xs) if k == "exp" else np.abs(xs) ** a) for c, k, a in e.terms) + e.off


def test_affine_envelope_keeps_its_constant_term_where_x_is_below_one() -> None:
    """|x + 5| and |x - 5| on [0, 2]: the constant is a term ``5 |x|^0``; ``5 |x|`` would be below it for x < 1."""
    xs = np.linspace(0.0, 2.0, 2001)
    x = ev.variable(REG)
    for c, op in ((5.0, "add"), (5.0, "sub"), (-3.0, "add")):
        f = ev.rule(op, [x, ev.constant(c)], [None, c], REG)
        exact = np.abs(xs + c) if op == "add" else np.abs(xs - c)
        assert np.all(_env_at(f, xs) >= exact * (1 - 1e-12)), (op, c)
        # E[|X + 5|; X < 2] = (1/4) int_0^2 (x + 5) dx = 3 (and 2 for |X - 5|, 1 for |X - 3|), rounded up
        assert ev.moment(f, REG) >= {("add", 5.0): 3.0, ("sub", 5.0): 2.0, ("add", -3.0): 1.0}[(op, c)]


@pytest.mark.parametrize("t", [-1.0, -3.0])
def test_exp_on_a_lower_normal_tail_dominates_and_bounds_the_closed_form_moment(t: float) -> None:
    """exp(X + 1) on X < t < 0 of N(0, 1): the envelope is ``e e^x``; E[e^(X+1); X < t] = e^1.5 Phi(t - 1)."""
    from scipy.stats import norm

    reg = ev.Region(od.Normal(0.0, 1.0), "lower", t, -np.inf, t)
    x = ev.variable(reg)
    f = ev.rule("exp", [ev.rule("add", [x, ev.constant(1.0)], [None, 1.0], reg)], [None], reg)
    xs = np.linspace(t - 30.0, t, 30_001)
    assert np.all(_env_at(f, xs) >= np.exp(xs + 1.0) * (1 - 1e-12))
    exact = np.exp(1.5) * norm.cdf(t - 1.0)
    assert exact <= ev.moment(f, reg) <= exact * (1 + 1e-6)
    f2 = ev.rule("exp2", [x], [None], reg)  # 2^x = e^(x log 2): E = e^(log(2)^2 / 2) Phi(t - log 2)
    ln2 = np.log(2.0)
    exact2 = np.exp(ln2**2 / 2) * norm.cdf(t - ln2)
    assert exact2 <= ev.moment(f2, reg) <= exact2 * (1 + 1e-6)


def test_relu_keeps_its_operands_envelope_and_offset_and_products_with_it_work() -> None:
    """relu(log x) <= |log x| <= (x^-h - 1) / h on (0, 1/2]; relu(x) * x <= x^2 on an upper tail."""
    reg = ev.Region(od.Uniform(0.0, 1.0), "lower", 0.5, 0.0, 0.5)
    x = ev.variable(reg)
    lg = ev.rule("log", [x], [None], reg)
    r = ev.rule("relu", [lg], [None], reg)
    assert r.terms == lg.terms and r.off == pytest.approx(-1 / ev.LOG_H) and r.affine is None and r.mono is None
    xs = np.linspace(1e-6, 0.5, 10_001)
    assert np.all(_env_at(r, xs) >= np.maximum(np.log(xs), 0.0))
    up = ev.Region(od.Normal(0.0, 1.0), "upper", 1.0, 1.0, np.inf)
    xu = ev.variable(up)
    # one operand without an exact monomial (relu), one with (x >= 1): the product has none either
    p = ev.rule("mul", [ev.rule("relu", [xu], [None], up), xu], [None, None], up)
    assert p.mono is None and p.terms == ((1.0, "power", 2.0),)
    ys = np.linspace(1.0, 40.0, 4001)
    assert np.all(_env_at(p, ys) >= ys * ys * (1 - 1e-12))
    q = ev.rule("mul", [xu, ev.rule("relu", [xu], [None], up)], [None, None], up)
    assert q.mono is None and q.terms == p.terms


def test_regions_of_two_and_one_cell_inputs_by_hand() -> None:
    """Two cells of N(0, 1) split at 0: both are tail regions; one cell is the lower region up to +inf."""
    law = od.Normal(0.0, 1.0)
    two = ev.regions(law, np.array([-np.inf, 0.0]), np.array([0.0, np.inf]))
    assert two == {
        0: ev.Region(law, "lower", 0.0, -np.inf, 0.0),
        1: ev.Region(law, "upper", 0.0, 0.0, np.inf),
    }
    one = ev.regions(law, np.array([-np.inf]), np.array([np.inf]))
    assert one == {0: ev.Region(law, "lower", np.inf, -np.inf, np.inf)}
    three = ev.regions(od.Uniform(0.0, 3.0), np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert sorted(three) == [0, 2] and three[2] == ev.Region(three[2].law, "upper", 2.0, 2.0, 3.0)
