"""Tests of the grid-free law of max / min of independent one-axis values (opgraph.dcg.extremes)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import switches
from opgraph.dcg.extremes import OneAxis, extreme_law
from opgraph.dcg.w1 import w1_to_cdf


def _axis(rng: np.random.Generator, n: int, shift: float, monotone: bool) -> OneAxis:
    edges = np.sort(rng.uniform(0, 1, n + 1)) + shift
    lo, hi = edges[:-1], edges[1:]
    atoms = lo + rng.uniform(0, 1, n) * (hi - lo)
    weights = rng.uniform(0.1, 1, n)
    weights /= weights.sum()
    err = weights * (hi - lo) * rng.uniform(0, 0.5, n)
    if not monotone:  # a non-monotone function of the axis: cells in any order, wider enclosures
        perm = rng.permutation(n)
        atoms, lo, hi, err = atoms[perm], lo[perm] - 0.05, hi[perm] + 0.05, err[perm]
    return OneAxis(atoms, weights, lo, hi, err)


def _brute(a: OneAxis, b: OneAxis, op: str) -> tuple[dict[float, float], float, dict[float, tuple[float, float]]]:
    """The joint grid: law by atom value, the cellwise bound total, and each atom's hull of cell enclosures."""
    law: dict[float, float] = {}
    hull: dict[float, tuple[float, float]] = {}
    total = 0.0
    for i in range(a.atoms.size):
        for j in range(b.atoms.size):
            if op == "maximum":
                v = a.atoms[i] if a.atoms[i] >= b.atoms[j] else b.atoms[j]
                a_only, b_only = b.hi[j] <= a.lo[i], a.hi[i] <= b.lo[j]
                lo, hi = max(a.lo[i], b.lo[j]), max(a.hi[i], b.hi[j])
            else:
                v = a.atoms[i] if a.atoms[i] <= b.atoms[j] else b.atoms[j]
                a_only, b_only = a.hi[i] <= b.lo[j], b.hi[j] <= a.lo[i]
                lo, hi = min(a.lo[i], b.lo[j]), min(a.hi[i], b.hi[j])
            m = a.weights[i] * b.weights[j]
            law[v] = law.get(v, 0.0) + m
            total += (0 if b_only else a.err[i] * b.weights[j]) + (0 if a_only else a.weights[i] * b.err[j])
            h = hull.get(v, (np.inf, -np.inf))
            hull[v] = (min(h[0], lo), max(h[1], hi))
    return law, total, hull


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    n=hs.integers(1, 12),
    m=hs.integers(1, 12),
    shift=hs.floats(-0.5, 0.5),
    op=hs.sampled_from(["maximum", "minimum"]),
    monotone=hs.booleans(),
    seed=hs.integers(0, 2**16),
)
def test_extreme_law_matches_the_joint_grid(n, m, shift, op, monotone, seed):
    rng = np.random.default_rng(seed)
    a, b = _axis(rng, n, 0.0, monotone), _axis(rng, m, shift, monotone)
    law = extreme_law(a, b, op)
    grid, total, hull = _brute(a, b, op)
    got: dict[float, float] = {}
    for v, w in zip(law.atoms, law.weights, strict=True):
        got[float(v)] = got.get(float(v), 0.0) + float(w)
    assert np.all(np.diff(law.atoms) >= 0)
    assert set(got) == {v for v, w in grid.items() if w > 0}
    for v, w in got.items():
        assert w == pytest.approx(grid[v], rel=1e-9, abs=1e-15)
    # Every grid cell's error is charged (exactly the cellwise total when the cells are in atom order).
    assert law.err.sum() >= total * (1 - 1e-9)
    if monotone:
        assert law.err.sum() == pytest.approx(total, rel=1e-9, abs=1e-15)
    assert law.err_a + law.err_b == pytest.approx(law.err.sum(), rel=1e-9, abs=1e-15)
    # Each atom's cell encloses the value enclosures of all grid cells that produce it.
    for v, lo, hi in zip(law.atoms, law.lo, law.hi, strict=True):
        assert lo <= hull[float(v)][0] + 1e-12 and hi >= hull[float(v)][1] - 1e-12


def test_max_of_three_uniforms_needs_no_joint_grid_and_meets_1e_4():
    def f(a, b, c):
        return np.maximum(np.maximum(a, b), c)

    r = od.evaluate(f, od.Uniform(0, 1), od.Uniform(0, 1), od.Uniform(0, 1), target_w1=1e-4)
    assert r.info["target_met"] and r.w1_bound <= 1e-4
    assert len(r.info["extremes"]) == 2 and not r.info["compressions"]
    atoms = r.info["atoms_per_input"]
    assert r.info["joint_atoms"] <= sum(atoms.values())
    true = w1_to_cdf(r.atoms, r.weights, st.beta(3, 1).cdf, 0.0, 1.0, n_grid=200_001)
    assert true <= r.w1_bound <= 2 * true  # tight: the cellwise bound of the grid, summed per atom


def test_extremes_of_functions_of_independent_inputs_and_downstream_use():
    # max(2 U1, U2 + 0.5) then squared: the extreme node becomes an axis that a later op uses.
    def f(u, w):
        return np.square(np.maximum(2 * u, w + 0.5))

    r = od.evaluate(f, od.Uniform(0, 1), od.Uniform(0, 1), atoms=64)
    assert len(r.info["extremes"]) == 1

    def cdf(t):
        s = np.sqrt(np.clip(t, 0, None))
        return np.clip(s / 2, 0, 1) * np.clip(s - 0.5, 0, 1)

    true = w1_to_cdf(r.atoms, r.weights, cdf, 0.0, 4.0, n_grid=400_001)
    assert true <= r.w1_bound
    # Same law as evaluating the grid directly (the node is not a separator when the output reuses u); the grid's
    # point-mass answer (with the box-linear mixture on, the direct grid's answer is a lattice law, mean within 1e-6)
    with switches.scope({"box_linear": False}):
        g = od.evaluate(
            lambda u, w: np.square(np.maximum(2 * u, w + 0.5)) + 0 * u, od.Uniform(0, 1), od.Uniform(0, 1), atoms=64
        )
    assert not g.info["extremes"]
    assert r.mean() == pytest.approx(g.mean(), rel=1e-9)


def test_min_of_exponentials_is_exponential_and_the_bound_holds():
    r = od.evaluate(lambda a, b: np.minimum(a, b), od.Exponential(1), od.Exponential(2), target_w1=1e-3)
    assert r.info["target_met"] and len(r.info["extremes"]) == 1
    assert r.w1(st.expon(scale=1 / 3)) <= r.w1_bound <= 1e-3
