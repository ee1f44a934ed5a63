"""Mutation tests of opgraph.dcg.multienv, sixth pass (issue 13): survivors of the seed-15 sample.

References: the envelopes evaluated on dense random samples of the inputs (``|F| <= sum of terms`` and
``0 < low <= F`` point by point; tightness as the smallest ratio over the samples).
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg import multienv as me

RNG = np.random.default_rng(15)
X = np.exp(RNG.uniform(-6, 6, (2, 100_000)))  # positive samples over 12 decades
S = RNG.normal(0, 3, (2, 100_000))  # signed samples


def _value(terms: tuple, pts: np.ndarray) -> np.ndarray:
    out = np.zeros(pts.shape[1])
    for c, facs in terms:
        term = np.full(pts.shape[1], c)
        for ax, kind, a in facs:
            term = term * (np.exp(a * pts[ax]) if kind == "exp" else np.abs(pts[ax]) ** a)
        out += term
    return out


def test_power_zero_is_exactly_one():
    # F^0 = 1 for any F: the envelope and the lower bound are both exactly 1 (a lower bound above 1 is unsound)
    a, b = me.variable(0, True), me.variable(1, False)
    for u, nn in ((a, True), (me.rule("add", [a, b], [None, None], [True, False]), False)):
        e = me.rule("pow", [u, me.constant(0.0)], [None, 0.0], [nn, True])
        assert e is not None and e.nonneg
        pts = X if nn else S
        np.testing.assert_array_equal(_value(e.terms, pts), 1.0)
        assert e.low is not None and _value((e.low,), pts).max() <= 1.0
        assert _value((e.low,), pts).min() == 1.0


def test_bounded_ops_are_bounded_by_their_supremum():
    # |sin|, |cos|, |tanh|, |erf|, sigmoid <= 1 and |arctan| <= pi / 2, each approached on wide samples
    import scipy.special as sp

    x = np.concatenate([S[0] * 1e3, S[1]])
    fns = {
        "sin": np.sin,
        "cos": np.cos,
        "tanh": np.tanh,
        "arctan": np.arctan,
        "erf": sp.erf,
        "sigmoid": sp.expit,
    }
    v = me.variable(0, False)
    for op, f in fns.items():
        e = me.rule(op, [v], [None], [False])
        assert e is not None and e.low is None and not e.nonneg, op
        env = _value(e.terms, x[None, :])
        vals = np.abs(f(x))
        assert np.all(env >= vals), op
        assert np.min(env - vals) < 1e-3, op


def _mono_value(m, x: np.ndarray) -> np.ndarray:
    return _value((m,), x)


def test_am_gm_lower_bound_of_a_sum_is_sound_and_exact_at_the_typical_point():
    # u + w >= (u / th)^th (w / (1 - th))^(1 - th), th = u0 / (u0 + w0) at the inputs' means: equality where
    # u / w = u0 / w0, so at the typical point itself. Exponential and power factors, on one and two axes.
    cases = [
        ((1.0, ((0, "exp", 1.0),)), (2.0, ((0, "exp", -0.5),)), {0: 0.7}),
        ((0.5, ((0, "power", 2.0),)), (3.0, ((1, "power", 0.5),)), {0: 1.5, 1: 4.0}),
        ((1.0, ((0, "exp", 0.3), (1, "power", 1.0))), (1.0, ((1, "power", 2.5),)), {0: -2.0, 1: 0.8}),
    ]
    for u, w, typ in cases:
        eu, ew = me.MEnv((u,), u, True), me.MEnv((w,), w, True)
        s = me.rule("add", [eu, ew], [None, None], [True, True], typ)
        assert s is not None and s.low is not None and s.low not in (u, w)
        pts = np.vstack([RNG.uniform(-3, 3, 50_000), np.exp(RNG.uniform(-4, 4, 50_000))])
        total = _mono_value(u, pts) + _mono_value(w, pts)
        assert np.all(_mono_value(s.low, pts) <= total * (1 + 1e-12))
        at = np.array([[typ.get(0, 1.0)], [typ.get(1, 1.0)]])
        want = _mono_value(u, at) + _mono_value(w, at)
        np.testing.assert_allclose(_mono_value(s.low, at), want, rtol=1e-12)


def test_am_gm_at_degenerate_typical_points_keeps_a_valid_lower_bound():
    # Where the typical values make th 0, 1 or 0/0 (one or both terms vanish there, or one is 1e20 times the
    # other), the weighted AM-GM form does not apply: the sum keeps one operand's lower bound (u + w >= u).
    u, w = (1.0, ((0, "power", 1.0),)), (1.0, ((0, "power", 2.0),))
    eu, ew = me.MEnv((u,), u, True), me.MEnv((w,), w, True)
    for typ in ({0: 0.0}, {0: 1e-25}, {0: 1e25}, {}):
        s = me.rule("add", [eu, ew], [None, None], [True, True], typ)
        assert s is not None and s.low in (u, w), typ
        pts = np.abs(S[:1])
        assert np.all(_mono_value(s.low, pts) <= _mono_value(u, pts) + _mono_value(w, pts))


def test_factor_moment_of_a_zero_mass_cell_is_zero():
    # E[g(X); X in C] = 0 for P(C) = 0, even where g is unbounded on C (|x|^-1 on a cell through 0)
    lo, hi = np.array([-1.0, 1.0, 0.0]), np.array([1.0, 2.0, 3.0])
    w = np.array([0.0, 0.5, 0.0])
    got = me.factor_moment("power", -1.0, lo, hi, w)
    np.testing.assert_array_equal(got, [0.0, 0.5, 0.0])
    np.testing.assert_array_equal(me.factor_moment("power", -1.0, lo, hi, np.array([0.2, 0.5, 0.3]))[[0, 2]], np.inf)
    np.testing.assert_array_equal(me.factor_moment("exp", 800.0, lo, hi, w), [0.0, np.inf, 0.0])


def test_box_bound_upper_end_form_on_a_box_of_small_mass():
    # F ~ U(-2, -1) on a box of mass p, v = -1.1: |F - v| = (v - F) + 2 (F - v)^+ <= (v - F) + 2 (fhi - v), so
    # E[|F - v|; B] <= m + v p + 2 (fhi - v) p = 0.6 p (m = E|F| p = 1.5 p), against the exact 0.41 p (midpoint
    # rule); the other two forms give 2.6 p and 2.6 p.
    u = -2.0 + (np.arange(200_000) + 0.5) / 200_000
    v = -1.1
    for p in (0.25, 1e-3, 0.9):
        exact = p * float(np.mean(np.abs(u - v)))
        got = float(me.box_bound(np.array(1.5 * p), np.array(v), np.array(p), np.array(-2.0), np.array(-1.0)))
        assert exact <= got == pytest.approx(0.6 * p, rel=1e-7), p
        assert exact == pytest.approx(0.41 * p, rel=1e-6)
