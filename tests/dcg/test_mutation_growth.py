"""Growth majorants: exact coefficients worked out by hand, and soundness by dense sampling (issue 13).

A majorant that is only checked for soundness (``|F| <= Pv``) survives any loosening; the coefficients below are
the ones the rules in the module docstring give, so a dropped term, a wrong factor or a swapped operand fails.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from opgraph.dcg import growth as gr

X = gr.variable()


def _eq(poly, expected):
    np.testing.assert_array_equal(np.asarray(poly, dtype=float), np.asarray(expected, dtype=float))


def _horner(p, r):
    return np.polyval(np.asarray(p, dtype=float)[::-1], r)


def test_polynomial_helpers():
    _eq(gr.padd(np.array([1.0, 2.0]), np.array([3.0, 0.0, 5.0])), [4, 2, 5])
    _eq(gr.padd(np.array([1.0, 2.0, 3.0]), np.array([1.0])), [2, 2, 3])
    _eq(gr.pmul(np.array([1.0, 2.0]), np.array([3.0, 0.0, 5.0])), [3, 6, 5, 10])
    _eq(gr.const(-2.5), [2.5])
    _eq(X[0], [0, 1])
    _eq(X[1], [1])


@pytest.mark.parametrize(
    ("op", "args", "consts", "pv", "pd"),
    [
        # (x) + (x*x): |x| + x^2 and 1 + 2|x|
        ("add", [X, (np.array([0.0, 0.0, 1.0]), np.array([0.0, 2.0]))], [None, None], [0, 1, 1], [1, 2]),
        ("sub", [X, (np.array([3.0]), np.array([0.0]))], [None, 3.0], [3, 1], [1]),
        ("maximum", [X, X], [None, None], [0, 2], [2]),
        ("minimum", [X, (np.array([0.0, 0.0, 1.0]), np.array([0.0, 2.0]))], [None, None], [0, 1, 1], [1, 2]),
        # (1 + |x|) * |x|^2: value 1*r^2 + r^3; derivative d1 v2 + v1 d2 = 1 * r^2 + (1 + r) * 2r = 2r + 3r^2
        (
            "mul",
            [(np.array([1.0, 1.0]), np.array([1.0])), (np.array([0.0, 0.0, 1.0]), np.array([0.0, 2.0]))],
            [None, None],
            [0, 0, 1, 1],
            [0, 2, 3],
        ),
        ("mul", [(np.array([2.0]), np.array([0.0])), X], [2.0, None], [0, 2], [2, 0]),  # d1 v2 + v1 d2 = 0 * r + 2 * 1
        ("square", [(np.array([1.0, 1.0]), np.array([1.0]))], [None], [1, 2, 1], [2, 2]),
        # (2x)^2: value 4 r^2, derivative 2 * (2 r) * 2 = 8 r
        ("square", [(np.array([0.0, 2.0]), np.array([2.0]))], [None], [0, 0, 4], [0, 8]),
        ("neg", [(np.array([1.0, 3.0]), np.array([3.0]))], [None], [1, 3], [3]),
        ("abs", [X], [None], [0, 1], [1]),
        ("relu", [X], [None], [0, 1], [1]),
        ("identity", [X], [None], [0, 1], [1]),
        ("copy", [X], [None], [0, 1], [1]),
        ("contiguous", [X], [None], [0, 1], [1]),
        ("convert", [X], [None], [0, 1], [1]),
        # bounded ops: |f| <= value, |d f| <= deriv * |d a|
        ("sin", [(np.array([0.0, 3.0]), np.array([3.0]))], [None], [1], [3]),
        ("cos", [X], [None], [1], [1]),
        ("tanh", [(np.array([0.0, 2.0]), np.array([2.0]))], [None], [1], [2]),
        ("arctan", [X], [None], [np.pi / 2], [1]),
        ("erf", [X], [None], [1], [2 / np.sqrt(np.pi)]),
        ("sigmoid", [(np.array([0.0, 4.0]), np.array([4.0]))], [None], [1], [1]),
    ],
)
def test_rules_give_the_hand_worked_majorants(op, args, consts, pv, pd):
    v, d = gr.rule(op, args, consts)
    np.testing.assert_allclose(v, pv, rtol=0, atol=1e-15)
    np.testing.assert_allclose(d, pd, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("k", "pv", "pd"),
    [
        (0, [1], [0]),
        (1, [1, 1], [1]),
        (2, [1, 2, 1], [2, 2]),
        # (1 + r)^3 = 1 + 3r + 3r^2 + r^3; 3 (1 + r)^2 * 1
        (3, [1, 3, 3, 1], [3, 6, 3]),
    ],
)
def test_integer_powers(k, pv, pd):
    v, d = gr.rule(
        "pow", [(np.array([1.0, 1.0]), np.array([1.0])), (np.array([float(k)]), np.array([0.0]))], [None, float(k)]
    )
    _eq(v, pv)
    _eq(d, pd)


def test_powers_without_a_polynomial_majorant_and_the_degree_cap():
    base = [X, (np.array([2.0]), np.array([0.0]))]
    for c in (None, -1.0, 2.5, 13.0):
        assert gr.rule("pow", base, [None, c]) is None
    v12, d12 = gr.rule("pow", base, [None, 12.0])
    assert v12.size == 13 and v12[12] == 1.0 and d12.size == 12 and d12[11] == 12.0
    # a product whose degree passes MAX_DEGREE = 12 has no majorant; degree 12 exactly is kept
    r6 = gr.rule("pow", base, [None, 6.0])
    r7 = gr.rule("pow", base, [None, 7.0])
    assert gr.rule("mul", [r6, r6], [None, None])[0].size == 13
    assert gr.rule("mul", [r6, r7], [None, None]) is None
    assert gr.rule("square", [r7], [None]) is None
    # value of degree 12 but a derivative of degree 12 too (1 + x^12 has derivative 12 x^11: kept)
    big = (np.r_[np.zeros(12), 1.0], np.r_[np.zeros(12), 1.0])
    assert gr.rule("identity", [big], [None]) is not None
    assert gr.rule("identity", [(np.r_[np.zeros(12), 1.0], np.r_[np.zeros(13), 1.0])], [None]) is None


def test_ops_without_majorants_and_missing_operands():
    for op in ("exp", "log", "div", "sqrt", "where", "lt", "tan", "reciprocal", "hypot", "no-such-op"):
        assert gr.rule(op, [X, X][: 1 if op not in ("div", "where", "lt", "hypot") else 2], [None, None]) is None
    assert gr.rule("add", [X, None], [None, None]) is None
    assert gr.rule("sin", [None], [None]) is None


@pytest.mark.parametrize(
    ("f", "df", "build"),
    [
        (
            lambda x: x * x * x - 2 * x,
            lambda x: 3 * x * x - 2,
            lambda: gr.rule(
                "sub",
                [
                    gr.rule("pow", [X, (np.array([3.0]), np.array([0.0]))], [None, 3.0]),
                    gr.rule("mul", [(np.array([2.0]), np.array([0.0])), X], [2.0, None]),
                ],
                [None, None],
            ),
        ),
        (
            lambda x: np.sin(x) * x,
            lambda x: np.cos(x) * x + np.sin(x),
            lambda: gr.rule("mul", [gr.rule("sin", [X], [None]), X], [None, None]),
        ),
        (
            lambda x: np.tanh(x * x),
            lambda x: 2 * x * (1 - np.tanh(x * x) ** 2),
            lambda: gr.rule("tanh", [gr.rule("square", [X], [None])], [None]),
        ),
        (
            lambda x: 1 / (1 + np.exp(-3 * x)),
            lambda x: 3 * np.exp(-3 * x) / (1 + np.exp(-3 * x)) ** 2,
            lambda: gr.rule("sigmoid", [gr.rule("mul", [(np.array([3.0]), np.array([0.0])), X], [3.0, None])], [None]),
        ),
    ],
)
def test_majorants_hold_on_a_dense_grid(f, df, build):
    v, d = build()
    x = np.linspace(-20, 20, 100_001)
    r = np.abs(x)
    assert np.all(np.abs(f(x)) <= _horner(v, r) * (1 + 1e-12) + 1e-12)
    assert np.all(np.abs(df(x)) <= _horner(d, r) * (1 + 1e-12) + 1e-12)


def test_bounded_constants_are_the_suprema():
    x = np.linspace(-10, 10, 400_001)
    from scipy.special import erf, expit

    h = x[1] - x[0]
    for name, fn, value in (("erf", erf, 2 / np.sqrt(np.pi)), ("sigmoid", expit, 0.25), ("arctan", np.arctan, 1.0)):
        deriv = np.abs(np.gradient(fn(x), h))
        assert deriv.max() == pytest.approx(value, rel=1e-6), name
        _, d = gr.rule(name, [X], [None])
        _eq(d, [value])
    assert np.abs(np.arctan(1e12)) <= gr.rule("arctan", [X], [None])[0][0] == np.pi / 2


def test_tail_bound_is_the_binomial_expansion():
    # Pd = 2 + 0 r + 5 r^2: Q(r) = 2 (r + A) + 5 (r + A)^3, expanded by hand per cell
    pd = np.array([2.0, 0.0, 5.0])
    atom = np.array([-1.5, 0.0, 2.0])
    moments = [
        np.array([0.2, 0.5, 0.3]),
        np.array([0.7, 0.1, 0.9]),
        np.array([3.0, 0.05, 4.0]),
        np.array([11.0, 0.01, 20.0]),
    ]
    A = np.abs(atom)
    q0 = 2 * A + 5 * A**3
    q1 = 2 + 15 * A**2
    q2 = 15 * A
    q3 = 5.0
    expected = (q0 * moments[0] + q1 * moments[1] + q2 * moments[2] + q3 * moments[3]) * (1 + 1e-12)
    got = gr.tail_bound(pd, atom, moments)
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    assert np.all(got > q0 * moments[0] + q1 * moments[1] + q2 * moments[2] + q3 * moments[3])
    # one coefficient: Pd = c gives c (|a| m0 + m1)
    np.testing.assert_allclose(
        gr.tail_bound(np.array([3.0]), atom, moments[:2]), 3 * (A * moments[0] + moments[1]) * (1 + 1e-12), rtol=1e-14
    )
    assert comb(3, 1) == 3  # the binomial used for the r^1 term of (r + A)^3


def test_tail_bound_with_unit_and_zero_coefficients():
    # Pd = 1 + 0 r: Q(r) = r + |a|; a zero coefficient adds nothing even where its moment is infinite
    atom = np.array([0.5, -3.0])
    moments = [np.array([0.25, 0.5]), np.array([1.0, 2.0]), np.array([np.inf, np.inf])]
    got = gr.tail_bound(np.array([1.0, 0.0]), atom, moments)
    np.testing.assert_allclose(got, (np.abs(atom) * moments[0] + moments[1]) * (1 + 1e-12), rtol=1e-14)
