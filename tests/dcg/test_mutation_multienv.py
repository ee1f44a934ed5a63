"""Mutation-killing tests of ``opgraph.dcg.multienv`` against independent references.

References: the envelopes evaluated on dense random samples of the inputs (``|F| <= sum of terms`` and
``0 < low <= F`` checked point by point, and tightness seen as the smallest ratio over the samples), closed-form
suprema of ``|x|^a`` on a cell, and ``E|F - v|`` of a uniform ``F`` computed by a fine midpoint rule.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg import multienv as me

RNG = np.random.default_rng(7)
X = np.exp(RNG.uniform(-6, 6, (2, 200_000)))  # positive samples over 12 decades
S = RNG.normal(0, 3, (2, 200_000))  # signed samples


def _value(env_terms: tuple, pts: np.ndarray) -> np.ndarray:
    out = np.zeros(pts.shape[1])
    for c, facs in env_terms:
        term = np.full(pts.shape[1], c)
        for ax, kind, a in facs:
            term = term * (np.exp(a * pts[ax]) if kind == "exp" else np.abs(pts[ax]) ** a)
        out += term
    return out


def test_constants_sign_and_lower_bound() -> None:
    z = me.constant(0.0)
    assert z.nonneg and z.terms == () and z.low is None  # F = 0 >= 0, but no positive lower monomial
    n = me.constant(-2.0)
    assert not n.nonneg and n.terms == ((2.0, ()),) and n.low is None
    p = me.constant(3.0)
    assert p.nonneg and p.low == (3.0, ())
    # x * 0 is nonneg only if both are: a zero constant keeps the sum of nonneg operands nonneg
    a = me.variable(0, True)
    s = me.rule("add", [a, z], [None, 0.0], [True, True])
    assert s is not None and s.nonneg


def test_sqrt_of_a_sum_is_subadditive_and_tight() -> None:
    """(x + y)^q <= x^q + y^q for 0 < q <= 1 (coefficient 1, not more): equality where one of them is 0."""
    a, b = me.variable(0, True), me.variable(1, True)
    s = me.rule("add", [a, b], [None, None], [True, True])
    for op, q, consts in (("sqrt", 0.5, [None]), ("pow", 0.25, [None, 0.25])):
        args = [s] if op == "sqrt" else [s, me.constant(q)]
        e = me.rule(op, args, consts, [True] * len(args))
        f = (X[0] + X[1]) ** q
        env = _value(e.terms, X)
        assert np.all(env >= f * (1 - 1e-12))
        assert np.min(env / f) < 1.2  # approached where one input is much smaller than the other (mutants: 2)


def test_square_of_a_sum_and_its_sign() -> None:
    a, b = me.variable(0, False), me.variable(1, False)
    s = me.rule("add", [a, b], [None, None], [False, False])
    sq = me.rule("square", [s], [None], [False])
    f = (S[0] + S[1]) ** 2
    env = _value(sq.terms, S)
    assert np.all(env >= f * (1 - 1e-12)) and np.min(env / np.maximum(f, 1e-300)) < 1.1  # (x + y)^2 <= 2x^2 + 2y^2
    assert sq.nonneg  # an even power is >= 0
    p4 = me.rule("pow", [a, me.constant(4.0)], [None, 4.0], [False, False])
    assert p4.nonneg
    # an odd power of a signed input is NOT known to be >= 0
    for q in (1.0, 3.0):
        pq = me.rule("pow", [a, me.constant(q)], [None, q], [False, False])
        assert not pq.nonneg and np.any(S[0] ** q < 0)


def test_products_quotients_and_lower_bounds_dominate_samples() -> None:
    a, b = me.variable(0, True), me.variable(1, True)
    s = me.rule("add", [a, b], [None, None], [True, True], {0: 1.0, 1: 2.0})
    d = me.rule("div", [me.rule("mul", [a, a], [None] * 2, [True] * 2), s], [None] * 2, [True] * 2, {0: 1.0, 1: 2.0})
    f = X[0] ** 2 / (X[0] + X[1])
    assert np.all(_value(d.terms, X) >= f * (1 - 1e-12))
    assert np.all(_value((s.low,), X) <= (X[0] + X[1]) * (1 + 1e-12))
    r = me.rule("rsqrt", [s], [None], [True], {0: 1.0, 1: 2.0})
    assert np.all(_value(r.terms, X) >= (X[0] + X[1]) ** -0.5 * (1 - 1e-12))
    e = me.rule("tanh", [d], [None], [True])
    assert e.terms == ((1.0, ()),) and not e.nonneg


@pytest.mark.parametrize("a", [0.0, 0.5, 2.0])
def test_factor_moment_is_the_sup_of_the_power_on_cells_across_zero(a: float) -> None:
    lo, hi, w = np.array([-1.0, 0.0, -3.0, 2.0]), np.array([2.0, 1.5, -0.5, 4.0]), np.array([0.1, 0.2, 0.3, 0.4])
    got = me.factor_moment("power", a, lo, hi, w)
    x = np.linspace(lo, hi, 100_001)  # columns: the cells
    sup = np.max(np.abs(x) ** a, axis=0)
    np.testing.assert_allclose(got, sup * w, rtol=1e-12)
    assert np.all(np.isfinite(got))  # a nonnegative power is bounded on a bounded cell, even one through 0
    neg = me.factor_moment("power", -0.5, lo, hi, w)
    assert np.isinf(neg[0]) and np.isinf(neg[1]) and np.all(np.isfinite(neg[2:]))
    ex = me.factor_moment("exp", -1.5, lo, hi, w)
    np.testing.assert_allclose(ex, np.max(np.exp(-1.5 * x), axis=0) * w, rtol=1e-12)


@pytest.mark.parametrize("v", [-1.5, -0.3, 0.0, 0.2, 0.5, 0.9, 1.4])
@pytest.mark.parametrize(("a", "b"), [(0.0, 1.0), (-1.0, 0.5), (2.0, 3.0)])
def test_box_bound_bounds_the_exact_mean_absolute_deviation(v: float, a: float, b: float) -> None:
    """F ~ U(a, b) on one box of mass p: E[|F - v|; B] by a midpoint rule must lie below each form's value."""
    p = 0.3
    f = a + (b - a) * (np.arange(200_000) + 0.5) / 200_000
    m = p * np.mean(np.abs(f))  # the envelope moment taken exact
    exact = p * np.mean(np.abs(f - v))
    for flo, fhi in ((a, b), (-np.inf, b), (a, np.inf), (-np.inf, np.inf)):
        got = me.box_bound(np.array([m]), np.array([v]), np.array([p]), np.array([flo]), np.array([fhi]))[0]
        assert got >= exact * (1 - 1e-9)
        assert got <= (m + abs(v) * p) * (1 + 1e-7) + 1e-300  # never above the plain form
    assert me.box_bound(np.array([m]), np.array([v]), np.array([0.0]), np.array([a]), np.array([b]))[0] == 0.0
