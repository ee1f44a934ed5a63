"""Mutation pass on opgraph.dcg.taylor, second sample (seed 17; docs/testing.md, eighth pass).

The box bound written out by hand (module docstring of opgraph.dcg.taylor) on cases the first sample's tests do
not reach: an axis whose cells are points (``E|d| = 0``), one cell of mass 1, and the axis-count guard.
"""

from __future__ import annotations

import numpy as np

from opgraph.dcg import taylor
from opgraph.graph import trace


def _linear(cx: float, cy: float):
    g = trace(lambda x, y: cx * x + cy * y + 1.0, "x", "y")
    ids = {n.attrs["name"]: n.id for n in g.nodes if n.op == "input"}
    return g, (ids["x"], ids["y"])


def test_point_cells_keep_the_square_root_form():
    # Kills taylor:275#3 (`|c| * E|d| == 0` -> `|c| / E|d| == 0`) and :275#5 (`== 0` -> `== 1`): on an axis whose
    # cells are points (a discrete input's atoms: E|d| = E d^2 = 0), its square c^2 M is 0 but nothing underflowed,
    # so the box keeps min(sqrt(sum c^2 M) + sum |c| b, sum |c| E). f = 3x + 4y: x on points, y on two cells.
    g, (ax, ay) = _linear(3.0, 4.0)
    xa = np.array([0.0, 1.0])
    ya = np.array([-0.5, 0.5])
    cells = {ax: (xa, xa, xa), ay: (np.array([-1.0, 0.0]), np.array([0.0, 1.0]), ya)}
    mx, my = np.array([0.5, 0.5]), np.array([0.5, 0.5])
    # y: the E|d| bound 0.3 (the exact 0.25 raised: the moments are upper bounds), E d^2 = 1/12 (uniform halves),
    # so the square-root form 4 sqrt(1/12) = 1.155 beats the sum form 4 * 0.3 = 1.2
    moments = {ax: (mx, 0.0 * mx, 0.0 * mx, 0.0 * mx), ay: (my, 0.3 * my, 0.0 * my, my / 12)}
    w = mx[:, None] * my[None, :]
    pt = 3.0 * xa[:, None] + 4.0 * ya[None, :] + 1.0
    tb = taylor.box_bound(g, g.outputs[0], (ax, ay), pt, cells, moments, w)
    lin = min(4.0 * np.sqrt(1 / 12), 4.0 * 0.3)
    assert lin == 4.0 * np.sqrt(1 / 12)
    # plus the few-ulp distance of V' to the enclosure of f(x') (measured ~16 ulps of V'; 64 allowed)
    ulps = 64 * np.finfo(float).eps * np.abs(pt)
    assert np.all(tb >= lin * (1 + 1e-9) * w) and np.all(tb <= (lin + ulps) * (1 + 1e-9) * w * (1 + 1e-12))


def test_one_cell_of_mass_one_is_bounded():
    # Kills taylor:291#2 (zero-mass boxes tested as `w == 1`): a single cell carrying all the mass keeps its bound.
    g = trace(lambda x: 3.0 * x, "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    one = np.array([1.0])
    cells = {ax: (np.array([0.0]), np.array([2.0]), one)}
    moments = {ax: (one, 0.5 * one, 0.0 * one, 1 / 3 * one)}  # X ~ U(0, 2), atom 1: E|d| = 0.5, E d^2 = 1/3
    tb = taylor.box_bound(g, g.outputs[0], (ax,), 3.0 * one, cells, moments, one)
    assert tb.shape == (1,)
    padded = 1.5 * (1 + 1e-9)  # E|3 (X - 1)| = 1.5, times the module's relative pad
    assert padded <= tb[0] <= padded + 1e-13


def test_axis_count_guard_is_inclusive(monkeypatch):
    # Kills taylor:245#3 (`k > MAX_AXES` -> `>=`): a program with exactly MAX_AXES axes is bounded (the limit
    # lowered to 2 here to keep it small), one with more declines.
    g, axes = _linear(3.0, 4.0)
    a = np.array([0.0, 1.0])
    cells = {ax: (a - 0.5, a + 0.5, a) for ax in axes}
    m = np.array([0.5, 0.5])
    moments = {ax: (m, 0.25 * m, 0.0 * m, m / 12) for ax in axes}
    w = m[:, None] * m[None, :]
    pt = 3.0 * a[:, None] + 4.0 * a[None, :] + 1.0
    monkeypatch.setattr(taylor, "MAX_AXES", 2)
    assert taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w) is not None
    monkeypatch.setattr(taylor, "MAX_AXES", 1)
    assert taylor.box_bound(g, g.outputs[0], axes, pt, cells, moments, w) is None


# --- third sample (seed 18) ----------------------------------------------------------------------------------


def test_quotient_cross_hessian_is_enclosed():
    # Kills taylor:154#1 (the div rule's `(0, 1)` key -> `(1, 1)`, a duplicate that drops d2(u/w)/du dw): for
    # f = x / y the cross entry -1/y^2 must enclose central differences at points of the box.
    g = trace(lambda x, y: x / y, "x", "y")
    ids = {n.attrs["name"]: n.id for n in g.nodes if n.op == "input"}
    box = {ids["x"]: (np.array([0.5]), np.array([1.5])), ids["y"]: (np.array([1.0]), np.array([2.0]))}
    jet = taylor.jets(g, g.outputs[0], box, hess=True)
    hxy = jet.h[tuple(sorted((ids["x"], ids["y"])))]
    ys = np.linspace(1.0, 2.0, 101)
    assert np.all(-1 / ys**2 >= hxy[0] - 1e-12) and np.all(-1 / ys**2 <= hxy[1] + 1e-12)
    hyy = jet.h[(ids["y"], ids["y"])]
    xs = np.linspace(0.5, 1.5, 11)[:, None]
    assert np.all(2 * xs / ys**3 >= hyy[0] - 1e-12) and np.all(2 * xs / ys**3 <= hyy[1] + 1e-12)


def test_hessian_is_enclosed_over_the_whole_box_not_at_one_end():
    # Kills taylor:252#1 (the box's lower ends taken from `hi`): f = exp(-x) on the cell [0, 1] with atom 0.5 has
    # |f''| <= 1 (at x = 0), not e^-1 (at x = 1): the remainder is 1/2 * 1 * E d^2.
    g = trace(lambda x: np.exp(-x), "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    one = np.array([1.0])
    atom = np.array([0.5])
    cells = {ax: (np.array([0.0]), one, atom)}
    e, m = 0.25, 1 / 12  # X ~ U(0, 1): E|d| = 1/4, E d^2 = 1/12
    moments = {ax: (one, e * one, 0.0 * one, m * one)}
    pt = np.exp(-atom)
    tb = taylor.box_bound(g, g.outputs[0], (ax,), pt, cells, moments, one)
    c = np.exp(-0.5)
    lin = min(c * np.sqrt(m), c * e)
    lo = (lin + 0.5 * 1.0 * m) * (1 + 1e-9)
    assert lo <= tb[0] <= lo * (1 + 1e-9)


def test_a_square_that_underflowed_falls_back_to_the_sum_form():
    # Kills taylor:275#1 (`exact & (...)` -> `exact | (...)`: the square-root form taken everywhere): f = 5e-197 x
    # squares its gradient to 0, so sqrt(sum c^2 M) + sum |c| b = 0 would drop the whole term; the box keeps
    # |c| E|d| = 2e-197 (the case test_bound_property found first).
    c = 5e-197
    g = trace(lambda x: c * x, "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    m = np.array([0.5, 0.5])
    cells = {ax: (np.array([-1.0, 0.0]), np.array([0.0, 1.0]), np.array([-0.5, 0.5]))}
    moments = {ax: (m, 0.4 * m, 0.0 * m, 0.2 * m)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), c * np.array([-0.5, 0.5]), cells, moments, m)
    assert np.all(tb >= c * 0.4 * (1 + 1e-9) * m)
    assert np.all(tb <= c * 0.4 * (1 + 1e-9) * m * (1 + 1e-12))


def test_zero_mass_boxes_get_zero():
    # Kills taylor:291#3 (zero-mass boxes set to 1.0): a cell of mass 0 carries no bound.
    g = trace(lambda x: 3.0 * x, "x")
    (ax,) = [n.id for n in g.nodes if n.op == "input"]
    m = np.array([0.5, 0.0, 0.5])
    atoms = np.array([-1.0, 0.0, 1.0])
    cells = {ax: (atoms - 0.5, atoms + 0.5, atoms)}
    moments = {ax: (m, 0.25 * m, 0.0 * m, m / 12)}
    tb = taylor.box_bound(g, g.outputs[0], (ax,), 3.0 * atoms, cells, moments, m)
    assert tb[1] == 0.0 and np.all(tb[[0, 2]] > 0)
