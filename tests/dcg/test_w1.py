"""The exact W1 helpers against independent references (SciPy, closed forms, quadrature)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg.w1 import w1_discrete, w1_to_cdf, w1_to_continuous


@pytest.mark.parametrize("seed", range(6))
def test_w1_discrete_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 30, 2)
    a, b = rng.normal(size=n), rng.normal(0.3, 2, size=m)
    wa, wb = rng.random(n) + 0.01, rng.random(m) + 0.01
    ref = st.wasserstein_distance(a, b, wa, wb)
    assert w1_discrete(a, wa, b, wb) == pytest.approx(ref, rel=1e-12, abs=1e-14)
    assert w1_discrete(a, 3 * wa, b, wb) == pytest.approx(ref, rel=1e-12, abs=1e-14)  # weights are normalised


def test_w1_discrete_by_hand():
    assert w1_discrete([0.0], [1.0], [2.5], [1.0]) == pytest.approx(2.5)
    assert w1_discrete([0.0, 1.0], [1, 1], [0.0, 1.0], [1, 1]) == 0.0
    assert w1_discrete([0.0, 1.0], [1, 3], [0.0], [1.0]) == pytest.approx(0.75)


def _quad_w1(atoms, weights, sp):
    """Integral of |F - G| by adaptive quadrature between the atoms and over both tails."""
    order = np.argsort(atoms)
    x = np.asarray(atoms, float)[order]
    w = np.asarray(weights, float)[order] / np.sum(weights)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    lo, hi = sp.ppf(1e-15), sp.ppf(1 - 1e-15)
    edges = [min(lo, x[0]), *x, max(hi, x[-1])]
    total = 0.0
    for k in range(len(edges) - 1):
        total += integrate.quad(lambda t, c=cum[k]: abs(sp.cdf(t) - c), edges[k], edges[k + 1], limit=200)[0]
    return total


LAWS = [od.Normal(1, 2), od.Uniform(-1, 2), od.Exponential(2), od.Gamma(3, 0.5), od.LogNormal(0, 0.5), od.Beta(2, 3)]


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_w1_to_continuous_and_to_cdf_match_quadrature(law):
    sp = law.to_scipy()
    rng = np.random.default_rng(1)
    atoms = np.sort(sp.ppf(rng.uniform(0.02, 0.98, 7)))
    weights = rng.random(7) + 0.1
    ref = _quad_w1(atoms, weights, sp)
    assert w1_to_continuous(atoms, weights, law) == pytest.approx(ref, rel=1e-6, abs=1e-10)
    lo, hi = sp.ppf([1e-13, 1 - 1e-13])
    assert w1_to_cdf(atoms, weights, sp.cdf, lo, hi) == pytest.approx(ref, rel=1e-6, abs=1e-8)


def test_w1_to_cdf_closed_forms():
    # U(0, 1) against a point mass at c: c^2 / 2 + (1 - c)^2 / 2.
    for c in (0.0, 0.3, 0.5, 1.0, 1.5):
        true = (c * c + (1 - c) ** 2) / 2 if 0 <= c <= 1 else c - 0.5
        assert w1_to_cdf([c], [1.0], lambda t: np.clip(t, 0.0, 1.0), 0.0, 1.0) == pytest.approx(true, rel=1e-9)
    # N(0, 1) against a point mass at 0: E|X| = sqrt(2 / pi).
    got = w1_to_cdf([0.0], [1.0], st.norm.cdf, -40.0, 40.0, n_grid=400_001)
    assert got == pytest.approx(math.sqrt(2 / math.pi), rel=1e-8)
    # Atoms outside [lo, hi] widen the grid.
    assert w1_to_cdf([3.0], [1.0], lambda t: np.clip(t, 0.0, 1.0), 0.0, 1.0) == pytest.approx(2.5, rel=1e-9)
