"""Mutation tests of opgraph.dcg.enclose against independent references (issue 13, fourth pass).

References: ``sqrt(a^2 + b) - a`` in 50-digit arithmetic (mpmath), its exact range over a box at the two corners
(the function is monotone in each argument), hand-derived partial derivatives, exact hulls over bisected boxes of
functions whose range per sub-box is known in closed form, and hand-counted levels and poles.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from opgraph.dcg import enclose
from opgraph.graph import trace

mpmath.mp.dps = 50


def _g(a: float, b: float) -> mpmath.mpf:
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    return mpmath.sqrt(a * a + b) - a


def test_point_enclosure_contains_the_50_digit_value_and_is_a_few_ulps_wide():
    a = np.array([-1e8, -3.0, -1e-9, 0.0, 1e-9, 0.5, 7.0, 1e8])
    b = np.array([1e-6, 2.0, 1.0, 3.0, 1e-12, 0.25, 1e-10, 5.0])
    lo, hi = enclose.sqrt_diff_point(a, b)
    for i in range(a.size):
        exact = _g(a[i], b[i])
        assert mpmath.mpf(lo[i]) <= exact <= mpmath.mpf(hi[i]), i
        assert hi[i] - lo[i] <= 1e-13 * float(exact), (i, lo[i], hi[i], float(exact))


def test_box_enclosure_is_the_corner_range_with_hand_derived_derivatives():
    rng = np.random.default_rng(7)
    m = 40
    al = rng.uniform(-3, 2, m)
    ah = al + rng.uniform(0, 1.5, m)
    bl = rng.uniform(0.1, 2, m)
    bh = bl + rng.uniform(0, 2, m)
    # a = 2 x (da/dx = 2), b = y (db/dy = 1): axes 0 and 1
    der_a = {0: (np.full(m, 2.0), np.full(m, 2.0))}
    der_b = {1: (np.ones(m), np.ones(m))}
    ok, (lo, hi), der = enclose.sqrt_diff((al, ah), (bl, bh), der_a, der_b, [0, 1, 2])
    assert ok.all()
    want_lo = np.array([float(_g(x, y)) for x, y in zip(ah, bl, strict=True)])
    want_hi = np.array([float(_g(x, y)) for x, y in zip(al, bh, strict=True)])
    np.testing.assert_allclose(lo, want_lo, rtol=1e-13)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-13)
    assert np.all(lo <= want_lo) and np.all(hi >= want_hi)
    # dG/da = -G / s, dG/db = 1 / (2 s), s = sqrt(a^2 + b): sampled on each box and chained with 2 and 1
    t = np.linspace(0, 1, 41)
    for i in range(m):
        a = al[i] + (ah[i] - al[i]) * t[:, None]
        b = bl[i] + (bh[i] - bl[i]) * t[None, :]
        s = np.sqrt(a * a + b)
        dx = 2 * (-(s - a) / s)
        dy = 1 / (2 * s)
        assert der[0][0][i] <= dx.min() + 1e-12 and dx.max() - 1e-12 <= der[0][1][i]
        assert der[1][0][i] <= dy.min() + 1e-12 and dy.max() - 1e-12 <= der[1][1][i]
    assert np.all(der[2][0] == 0) and np.all(der[2][1] == 0)  # an axis neither depends on


def test_box_enclosure_refuses_boxes_where_b_reaches_zero_or_ends_are_infinite():
    al = np.array([0.0, 0.0, -np.inf, 0.0, 0.0])
    ah = np.array([1.0, 1.0, 1.0, np.inf, 1.0])
    bl = np.array([0.5, 0.0, 0.5, 0.5, -1.0])
    bh = np.array([1.0, 1.0, 1.0, 1.0, np.inf])
    ok, _, _ = enclose.sqrt_diff((al, ah), (bl, bh), {}, {}, [])
    assert ok.tolist() == [True, False, False, False, False]


@pytest.mark.parametrize(
    ("fn", "sign"),
    [
        (lambda a, b: np.sqrt(a**2 + b) - a, 1.0),
        (lambda a, b: np.sqrt(b + a * a) - a, 1.0),
        (lambda a, b: np.sqrt(np.square(a) + b) - a, 1.0),
        (lambda a, b: a - np.sqrt(a**2 + b), -1.0),
        (lambda a, b: a - np.sqrt(b + np.square(a)), -1.0),
    ],
)
def test_find_forms_names_a_b_and_the_sign(fn, sign):
    g = trace(fn, "a", "b")
    forms = enclose.find_forms(g)
    assert list(forms) == [g.outputs[0]]
    (f,) = forms.values()
    names = {n.id: n.attrs.get("name") for n in g.nodes if n.op == "input"}
    assert names[f.a] == "a" and names[f.b] == "b" and f.sign == sign


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: np.sqrt(a**3 + b) - a,
        lambda a, b: np.sqrt(a * b + b) - a,
        lambda a, b: np.sqrt(b * b + a) - a,
        lambda a, b: np.sqrt(a**2 - b) - a,
        lambda a, b: np.exp(a**2 + b) - a,
        lambda a, b: np.sqrt(a**2 + b) + a,
    ],
)
def test_find_forms_ignores_look_alikes(fn):
    assert enclose.find_forms(trace(fn, "a", "b")) == {}


def test_levels_for_by_hand():
    # the largest L with 2^(k L) <= 64
    assert [enclose.levels_for(k) for k in range(0, 8)] == [0, 6, 3, 2, 1, 1, 1, 0]
    assert enclose.levels_for(2, max_pieces=16) == 2 and enclose.levels_for(3, max_pieces=7) == 0


def test_near_pole_by_hand():
    lo = np.array([1.0, 4.0, 4.1, -1.0, -5.0, -5.0, 0.0, -np.inf, 2.0])
    hi = np.array([2.0, 5.0, 5.1, 1.0, -4.0, -4.1, 3.0, 1.0, np.inf])
    # distance to 0 vs 4 x width: 1 < 4; 4 < 4 no; 4.1 < 4 no; contains 0; 4 < 4 no; 4.1 < 3.6 no; touches 0
    assert enclose.near_pole(lo, hi).tolist() == [True, False, False, True, False, False, True, False, False]
    assert enclose.near_pole(np.array([3.9]), np.array([4.9])).tolist() == [True]


def test_ancestors_stop_at_leaves_and_constants():
    g = trace(lambda x, y: np.exp(x * 2.0) + np.sin(y) * x, "x", "y")
    ids = {n.op: n.id for n in g.nodes}
    leaves = {ids["exp"]: 0}  # exp(.) as a coordinate: its inputs are not needed
    got = enclose.ancestors_to(g, g.outputs[0], leaves)
    assert got == sorted(got)
    ops = sorted(g.nodes[i].op for i in got)
    assert ops == sorted(["exp", "sin", "input", "input", "mul", "add"])
    assert all(g.nodes[i].op != "const" for i in got)


@pytest.mark.parametrize("levels", [0, 1, 3])
def test_subdivided_hull_of_x_minus_x_is_the_subbox_width(levels):
    # On a sub-box of width w, the naive enclosure of x - x is [-w, w]: the hull is exactly that.
    g = trace(lambda x: x - x, "x")
    (i,) = (n.id for n in g.nodes if n.op == "input")
    lo, hi = np.array([0.0, -2.0, 1.0]), np.array([1.0, 2.0, 1.0])
    (vlo, vhi), der = enclose.subdivided_enclosure(g, g.outputs[0], {i: i}, {i: (lo, hi)}, levels)
    w = (hi - lo) / 2**levels
    np.testing.assert_allclose(vhi, w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(vlo, -w, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(der[i][0], 0.0, atol=1e-15)
    np.testing.assert_allclose(der[i][1], 0.0, atol=1e-15)


def test_subdivided_hull_over_two_axes_is_exact_for_a_separable_reuse():
    # f = x*x - x + y*y - y: per sub-box the naive enclosure of u*u - u on [p, q] (0 <= p) is [p^2 - q, q^2 - p].
    g = trace(lambda x, y: (x * x - x) + (y * y - y), "x", "y")
    ix, iy = (n.id for n in g.nodes if n.op == "input")
    levels = 2
    xl, xh = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    yl, yh = np.array([0.5, 2.0]), np.array([1.5, 2.5])
    (vlo, vhi), der = enclose.subdivided_enclosure(
        g, g.outputs[0], {ix: ix, iy: iy}, {ix: (xl, xh), iy: (yl, yh)}, levels
    )
    per = 2**levels

    def part(lo, hi):
        e = np.linspace(lo, hi, per + 1)
        p, q = e[:-1], e[1:]
        return (p * p - q).min(0), (q * q - p).max(0)

    (a0, a1), (b0, b1) = part(xl, xh), part(yl, yh)
    np.testing.assert_allclose(vlo, a0 + b0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vhi, a1 + b1, rtol=1e-12, atol=1e-12)
    # derivatives 2x - 1 and 2y - 1: hull [2 lo - 1, 2 hi - 1] exactly
    np.testing.assert_allclose(der[ix][0], 2 * xl - 1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(der[ix][1], 2 * xh - 1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(der[iy][0], 2 * yl - 1, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(der[iy][1], 2 * yh - 1, rtol=1e-12, atol=1e-12)


def test_subdivided_enclosure_with_a_constant_an_unused_axis_and_a_nan_subbox():
    g = trace(lambda x, y: np.sqrt(x) * 3.0, "x", "y")
    ix, iy = (n.id for n in g.nodes if n.op == "input")
    xl, xh = np.array([1.0, -1.0]), np.array([4.0, 4.0])
    (vlo, vhi), der = enclose.subdivided_enclosure(
        g, g.outputs[0], {ix: ix, iy: iy}, {ix: (xl, xh), iy: (np.zeros(2), np.ones(2))}, 1
    )
    assert vlo[0] == pytest.approx(3.0) and vhi[0] == pytest.approx(6.0)
    assert der[iy][0].tolist() == [0.0, 0.0] and der[iy][1].tolist() == [0.0, 0.0]
    # d/dx 3 sqrt(x) = 1.5 / sqrt(x) on [1, 4]: [0.75, 1.5] (sub-boxes [1, 2.5], [2.5, 4])
    assert der[ix][0][0] == pytest.approx(0.75) and der[ix][1][0] == pytest.approx(1.5)
    # a box reaching below 0: sqrt is undefined there, the enclosure must not claim a finite range below
    assert vlo[1] <= 0.0 and vhi[1] >= 6.0


def test_a_division_is_subdivided_exactly_on_the_boxes_whose_denominator_cell_is_near_zero(monkeypatch):
    """``x / y``, X ~ U(1, 2), Y ~ U(1, 3), 4 atoms: the Y cells are [1, 1.5], ..., [2.5, 3] (width 0.5), and a
    denominator cell is near the pole when its distance to 0 is below 4 x 0.5 = 2 (by hand: the first two). So the
    division is re-evaluated on the 4 x 2 boxes with Y in [1, 2], and ``y / x`` (X cells of width 0.25, at least
    1 from 0: none near) and ``x / (y + 10)`` are not subdivided at all."""
    from opgraph import dcg as od

    calls: list[tuple[str, dict[int, tuple[list[float], list[float]]]]] = []
    real = enclose.subdivided_enclosure

    def spy(graph, target, leaves, cells, levels):
        calls.append((graph.nodes[target].op, {a: (c[0].tolist(), c[1].tolist()) for a, c in cells.items()}))
        return real(graph, target, leaves, cells, levels)

    monkeypatch.setattr(enclose, "subdivided_enclosure", spy)
    laws = (od.Uniform(1.0, 2.0), od.Uniform(1.0, 3.0))
    od.evaluate(lambda x, y: x / y, *laws, atoms=4)
    assert len(calls) == 1 and calls[0][0] == "div"
    boxes = sorted(zip(*calls[0][1][0], *calls[0][1][1], strict=True))
    expect = sorted((xl, xl + 0.25, yl, yl + 0.5) for xl in (1.0, 1.25, 1.5, 1.75) for yl in (1.0, 1.5))
    assert np.allclose(boxes, expect, rtol=0, atol=1e-12)
    calls.clear()
    od.evaluate(lambda x, y: y / x, *laws, atoms=4)
    od.evaluate(lambda x, y: x / (y + 10.0), *laws, atoms=4)
    assert calls == []
