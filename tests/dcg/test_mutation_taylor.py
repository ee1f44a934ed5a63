"""Mutation pass on opgraph.dcg.taylor (docs/testing.md, eighth pass): the box bound's arithmetic and its guards.

The box bound is a formula of the per-cell moments (module docstring of opgraph.dcg.taylor). Here it is written
out by hand for graphs whose gradient and Hessian are known exactly (``3x - 2y + 5``, ``x y``, ``x^2``), on
hand-chosen cells and moments, with a computed value ``V'`` moved off the exact ``f(x')`` (the bound is stated for
the rounded value, so the gap must be added). Soundness against samples is tests/dcg/test_taylor.py's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph.dcg import taylor
from opgraph.graph import trace

# two cells per axis: (lo, hi, atom) and per-cell (mass, E|d|, |E d| bound, E d^2) with d = X - atom, as masses;
# conditional values (b <= E <= sqrt(M)): x E = 0.4, b = 0.2, M = 0.2 | 0.1, 0.0, 0.0125; y E = 0.3, b = 0.1, M = 0.15 | 0.2, 0.0, 0.05
X_CELLS = (np.array([-1.0, 0.5]), np.array([0.5, 2.0]), np.array([-0.25, 1.0]))
Y_CELLS = (np.array([0.0, 1.0]), np.array([1.0, 3.0]), np.array([0.5, 2.0]))
X_COND = {"e": np.array([0.4, 0.1]), "b": np.array([0.2, 0.0]), "m": np.array([0.2, 0.0125])}
Y_COND = {"e": np.array([0.3, 0.2]), "b": np.array([0.1, 0.0]), "m": np.array([0.15, 0.05])}
X_MASS, Y_MASS = np.array([0.5, 0.5]), np.array([0.25, 0.75])


def _moments(mass, cond):
    return (mass, cond["e"] * mass, cond["b"] * mass, cond["m"] * mass)


def _setup(fn):
    g = trace(fn, "x", "y")
    ids = {n.attrs["name"]: n.id for n in g.nodes if n.op == "input"}
    ax, ay = ids["x"], ids["y"]
    cells = {ax: X_CELLS, ay: Y_CELLS}
    moments = {ax: _moments(X_MASS, X_COND), ay: _moments(Y_MASS, Y_COND)}
    return g, (ax, ay), cells, moments


def _grid(cond_x, cond_y):
    return {k: (cond_x[k][:, None], cond_y[k][None, :]) for k in cond_x}


SHIFT = np.array([[0.1, -0.05], [0.0, 0.2]])  # V' - f(x') per box


def test_linear_graph_bound_is_the_documented_formula():
    # f = 3x - 2y + 5: g = (3, -2) exactly, H = 0. Kills taylor:273#1 (radius 0.5 / width), :274#1 (c^2 / M),
    # :276#1 (sum of squares with -), :282#2 (min -> max), :282#3 (+ bias -> -), :289#1/#3/#4 (the gap to V').
    g, axes, cells, moments = _setup(lambda x, y: 3.0 * x - 2.0 * y + 5.0)
    xa, ya = X_CELLS[2][:, None], Y_CELLS[2][None, :]
    pt = 3.0 * xa - 2.0 * ya + 5.0 + SHIFT
    w = X_MASS[:, None] * Y_MASS[None, :]
    tb = taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w)
    c = _grid(X_COND, Y_COND)
    ex, ey = c["e"]
    bx, by = c["b"]
    mx, my = c["m"]
    lin = np.minimum(np.sqrt(9 * mx + 4 * my) + 3 * bx + 2 * by, 3 * ex + 2 * ey)
    expected = (lin + np.abs(SHIFT)) * (1 + 1e-9) * w
    np.testing.assert_allclose(tb, expected, rtol=1e-11)
    # both forms of the linear part are taken somewhere (so the min is tested both ways)
    sq = np.sqrt(9 * mx + 4 * my) + 3 * bx + 2 * by
    assert np.any(sq < 3 * ex + 2 * ey) and np.any(sq > 3 * ex + 2 * ey)


def test_product_graph_adds_the_cross_hessian_term():
    # f = x y: g = (y', x') at the atom, H_xy = 1 on every box: remainder E_x E_y. Kills taylor:286#1 (rem -),
    # :286#7 (m / E_i), :290#4 (lin - rem).
    g, axes, cells, moments = _setup(lambda x, y: x * y)
    xa, ya = X_CELLS[2][:, None], Y_CELLS[2][None, :]
    pt = xa * ya + SHIFT
    w = X_MASS[:, None] * Y_MASS[None, :]
    tb = taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w)
    c = _grid(X_COND, Y_COND)
    ex, ey = c["e"]
    bx, by = c["b"]
    mx, my = c["m"]
    lin = np.minimum(
        np.sqrt(ya**2 * mx + xa**2 * my) + np.abs(ya) * bx + np.abs(xa) * by, np.abs(ya) * ex + np.abs(xa) * ey
    )
    expected = (lin + ex * ey + np.abs(SHIFT)) * (1 + 1e-9) * w
    np.testing.assert_allclose(tb, expected, rtol=1e-11)


def test_square_adds_the_diagonal_hessian_term():
    # f = x^2 (one axis): g = 2x', H_xx = 2: remainder 1/2 * 2 * M_x.
    g = trace(lambda x: np.square(x), "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    xa = X_CELLS[2]
    shift = np.array([0.0, -0.125])
    tb = taylor.box_bound(g, g.outputs[0], (ax,), xa**2 + shift, {ax: X_CELLS}, {ax: _moments(X_MASS, X_COND)}, X_MASS)
    c2 = 2 * np.abs(xa)
    lin = np.minimum(np.sqrt(c2**2 * X_COND["m"]) + c2 * X_COND["b"], c2 * X_COND["e"])
    expected = (lin + X_COND["m"] + np.abs(shift)) * (1 + 1e-9) * X_MASS
    np.testing.assert_allclose(tb, expected, rtol=1e-11)


def test_an_underflowed_second_moment_is_unknown_and_a_small_normal_one_is_used():
    # Kills taylor:264#3 (the guard `E|d| > 0` -> `E|d| > 1`) and :59#1 (the underflow threshold 1e-280 doubled).
    # E[d^2] >= E|d|^2 > 0, so a second moment of 0 with E|d| = 1e-170 has underflowed: the box bound is unknown
    # (inf), and the engine keeps its own. 1.5e-280 is a normal float with full precision: it is used.
    g = trace(lambda x: np.square(x), "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    cells = {ax: (np.array([-1e-169, 0.0]), np.array([0.0, 1e-169]), np.array([-5e-170, 5e-170]))}
    mass = np.array([0.5, 0.5])
    pt = np.array([2.5e-339, 2.5e-339])
    lost = {ax: (mass, 1e-170 * mass, 0.0 * mass, 0.0 * mass)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), pt, cells, lost, mass)
    assert np.all(np.isinf(tb))
    kept = {ax: (mass, 1e-141 * mass, 0.0 * mass, 1.5e-280 * mass)}
    cells2 = {ax: (np.array([-2e-140, 0.0]), np.array([0.0, 2e-140]), np.array([-1e-140, 1e-140]))}
    tb2 = taylor.box_bound(g, g.outputs[0], (ax,), np.array([1e-280, 1e-280]), cells2, kept, mass)
    assert np.all(np.isfinite(tb2)) and np.all(tb2 > 0)


def test_the_memory_guard_declines_before_any_work():
    # Kills taylor:55#2 (MAX_WORK 2**25 -> 3**25): 4 x 2731 x 4096 cells x 3 Hessian entries is just above
    # MAX_SLICES (4) slices of 2**25, so the bound declines at once; it never reads the moments (an empty dict here
    # would raise if it went on).
    g = trace(lambda x, y: x + y, "x", "y")
    ids = [n.id for n in g.nodes if n.op == "input"]
    assert 4 * 2731 * 4096 * 3 > 4 * 2**25 >= 4 * 2730 * 4096 * 3
    one = np.zeros(1)
    cells = {ids[0]: (one, one, np.zeros(4 * 2731)), ids[1]: (one, one, np.zeros(4096))}
    assert taylor.box_bound(g, g.outputs[0], tuple(ids), np.zeros(()), cells, {}, np.zeros(())) is None
    assert taylor.MAX_WORK == 2**25 and math.isfinite(taylor.MAX_WORK) and taylor.MAX_SLICES == 4


@pytest.mark.parametrize("op", ["where", "mod", "gt"])
def test_unsupported_ops_decline(op):
    fn = {
        "where": lambda x: np.where(x > 0.0, x, 0.0),
        "mod": lambda x: np.mod(x, 1.0),
        "gt": lambda x: (x > 0.5) * 1.0,
    }[op]
    g = trace(fn, "x")
    assert not taylor.supported(g, g.outputs[0])


def test_gradient_radius_enters_times_the_cell_moment_on_narrow_cells():
    # Kills taylor:279#2 (r * E -> r / E): the atom's gradient enclosure is a few ulps wide (r ~ 1e-15), so on a
    # cell with E|d| = 1e-9 its term is ~1e-24, far below the linear term 3e-9; divided by E it would be ~1e-6.
    g = trace(lambda x: 3.0 * x, "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    atoms = np.array([1.0, 2.0])
    cells = {ax: (atoms - 1e-9, atoms + 1e-9, atoms)}
    mass = np.array([0.5, 0.5])
    moments = {ax: (mass, 1e-9 * mass, 0.0 * mass, 1e-18 * mass)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), 3.0 * atoms, cells, moments, mass)
    # plus the distance of V' to the few-ulp enclosure of f(x') (measured 16 ulps of V'; 64 allowed)
    ulps = 64 * np.finfo(float).eps * 3.0 * atoms
    assert np.all(tb >= 3e-9 * (1 + 1e-9) * mass) and np.all(tb <= (3e-9 + ulps) * (1 + 1e-9) * mass)


def test_memory_guard_boundary_is_inclusive(monkeypatch):
    # Kills taylor:245#7 (`> MAX_WORK` -> `>=`): a grid whose cells times Hessian entries equal MAX_WORK is still
    # bounded (2 x 2 cells, 2 axes: 4 * 3 = 12), one above it declines (the limit lowered here to keep it small).
    g, axes, cells, moments = _setup(lambda x, y: 3.0 * x - 2.0 * y + 5.0)
    pt = 3.0 * X_CELLS[2][:, None] - 2.0 * Y_CELLS[2][None, :] + 5.0
    w = X_MASS[:, None] * Y_MASS[None, :]
    monkeypatch.setattr(taylor, "MAX_WORK", 12)
    tb = taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w)
    assert tb is not None and np.all(np.isfinite(tb))
    monkeypatch.setattr(taylor, "MAX_WORK", 11)
    sliced = taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w)  # two slices of the first axis
    np.testing.assert_allclose(sliced, tb, rtol=1e-12)
    monkeypatch.setattr(taylor, "MAX_SLICES", 1)
    assert taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w) is None
