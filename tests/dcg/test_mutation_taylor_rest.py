"""Mutation pass on opgraph.dcg.taylor, the mutants no earlier sample took (docs/testing.md, ninth pass).

The box bound written out by hand (module docstring of opgraph.dcg.taylor) where the earlier tests do not decide:
the axis limit at its real value, the Hessian enclosure's upper box end, and a gradient enclosure at the atom that
is wide (cancellation between two large terms), so the radius term is most of the bound.
"""

from __future__ import annotations

import numpy as np

from opgraph.dcg import taylor
from opgraph.graph import trace


def _sum_of(k: int):
    names = [f"x{i}" for i in range(k)]

    def fn(*xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out

    g = trace(fn, *names)
    return g, tuple(n.id for n in g.nodes if n.op == "input")


def _bound_of_sum(k: int):
    g, axes = _sum_of(k)
    one = np.ones(1)
    cells = {a: (np.array([-0.5]), np.array([0.5]), np.zeros(1)) for a in axes}
    moments = {a: (one, 0.25 * one, 0.0 * one, one / 12) for a in axes}  # U(-1/2, 1/2) about 0
    w = np.ones((1,) * k)
    return taylor.box_bound(g, g.outputs[0], axes, np.zeros((1,) * k), cells, moments, w)


def test_the_axis_limit_is_twelve():
    # Kills taylor:57#1 (MAX_AXES 12 -> 13): a sum of 13 inputs (one cell each, so the work guard is far) declines,
    # a sum of 12 is bounded: f = sum x_i with x_i ~ U(-1/2, 1/2) about the atoms 0 has the linear part
    # min(sqrt(12 / 12), 12 / 4) = 1 and no remainder.
    assert taylor.MAX_AXES == 12
    assert _bound_of_sum(13) is None
    tb = _bound_of_sum(12)
    assert tb is not None and tb.shape == (1,) * 12
    padded = 1.0 * (1 + 1e-9)  # the linear part 1, times the module's relative pad
    assert padded <= tb.item() <= padded * (1 + 1e-12)


def test_hessian_is_enclosed_up_to_the_upper_box_end():
    # Kills taylor:252#2 (the box's upper ends taken from the atoms): f = exp(x) on the cell [0, 1] with atom 1/2
    # has |f''| <= e (at x = 1), not e^(1/2) (at the atom): the remainder is 1/2 * e * E d^2.
    g = trace(lambda x: np.exp(x), "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    one = np.array([1.0])
    atom = np.array([0.5])
    cells = {ax: (np.array([0.0]), one, atom)}
    e, m = 0.25, 1 / 12  # X ~ U(0, 1): E|d| = 1/4, E d^2 = 1/12
    moments = {ax: (one, e * one, 0.0 * one, m * one)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), np.exp(atom), cells, moments, one)
    c = np.exp(0.5)
    lin = min(c * np.sqrt(m), c * e)
    lo = (lin + 0.5 * np.e * m) * (1 + 1e-9)
    assert lo <= tb[0] <= lo * (1 + 1e-9)


def test_a_wide_gradient_enclosure_at_the_atom_is_added_not_subtracted():
    # Kills taylor:282#1 (`+ rad` -> `- rad`). f = 1e16 x - 1e16 x + 3x: the gradient is 3, but its enclosure at
    # the atom is ~+-36 wide (the two 1e16 terms are each widened by a few ulps of 1e16), so the term r E|d| is
    # most of the bound; subtracted, the bound falls below the true E|f(X) - f(0)| = 3 E|X| = 3/4 for
    # X ~ U(-1/2, 1/2) (it goes negative). f(0) = 0 exactly, so the value gap is 0.
    g = trace(lambda x: 1e16 * x - 1e16 * x + 3.0 * x, "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    one, zero = np.ones(1), np.zeros(1)
    cells = {ax: (np.array([-0.5]), np.array([0.5]), zero)}
    moments = {ax: (one, 0.25 * one, 0.0 * one, one / 12)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), zero, cells, moments, one)
    assert tb[0] >= 0.75  # sound against the exact value
    gl, gh = taylor.jets(g, g.outputs[0], {ax: (zero, zero)}, hess=False).g[ax]
    r = float(0.5 * (gh - gl))
    assert r > 10.0  # the case this test is about: a radius far above c = 3
    expected = (min(3.0 * np.sqrt(1 / 12), 3.0 * 0.25) + r * 0.25) * (1 + 1e-9)
    np.testing.assert_allclose(tb[0], expected, rtol=1e-12)
