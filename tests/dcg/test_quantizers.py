"""Quantizers: the exact per-cell W1 error agrees with numerical integration; regrouping costs are exact."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg.regroup import regroup
from opgraph.dcg.w1 import w1_discrete, w1_to_continuous

FAMILIES = [
    (od.Normal(1.0, 0.3), st.norm(1.0, 0.3)),
    (od.Uniform(-1.0, 2.0), st.uniform(-1.0, 3.0)),
    (od.Exponential(2.0), st.expon(scale=0.5)),
    (od.Gamma(2.5, 1.5), st.gamma(2.5, scale=1.5)),
    (od.LogNormal(0.2, 0.5), st.lognorm(0.5, scale=np.exp(0.2))),
    (od.Beta(2.0, 0.7), st.beta(2.0, 0.7)),
]


def _numeric_cell(frozen, lo, a, hi):
    total = 0.0
    for l, r in ((lo, a), (a, hi)):
        if r > l:
            total += integrate.quad(lambda x: abs(x - a) * frozen.pdf(x), l, r, epsabs=1e-13, limit=200)[0]
    return total


@pytest.mark.parametrize("method", ["quantile", "meansplit"])
@pytest.mark.parametrize("k", range(len(FAMILIES)))
def test_cell_errors_match_quadrature(k, method):
    dist, frozen = FAMILIES[k]
    q = dist.quantize(16, method)
    assert q.atoms.size == 16
    assert np.isclose(q.weights.sum(), 1.0)
    assert np.all(np.diff(q.atoms) > 0)
    assert np.all((q.atoms >= q.lo) & (q.atoms <= q.hi))
    # Cell masses are the weights.
    mass = frozen.cdf(q.hi) - frozen.cdf(q.lo)
    np.testing.assert_allclose(mass, q.weights, rtol=1e-7, atol=1e-12)
    num = np.array([_numeric_cell(frozen, lo, a, hi) for lo, a, hi in zip(q.lo, q.atoms, q.hi, strict=True)])
    np.testing.assert_allclose(q.err, num, rtol=1e-6, atol=1e-11)
    assert np.all(q.err >= num - 1e-12)


@pytest.mark.parametrize("k", range(len(FAMILIES)))
def test_total_error_is_w1(k):
    dist, frozen = FAMILIES[k]
    q = dist.quantize(64, "auto")
    # W1 between the continuous law and the atoms, computed independently from the CDFs.
    exact = w1_to_continuous(q.atoms, q.weights, dist)
    assert q.w1 == pytest.approx(exact, rel=1e-6)
    lo, hi = frozen.ppf([1e-13, 1 - 1e-13])
    grid = np.linspace(lo, hi, 400_001)
    g = np.concatenate([[0.0], np.cumsum(q.weights)])[np.searchsorted(q.atoms, grid, side="right")]
    numeric = np.trapezoid(np.abs(frozen.cdf(grid) - g), grid)
    assert q.w1 == pytest.approx(numeric, rel=2e-3)


def test_quantile_is_better_than_meansplit_for_uniform_and_auto_picks_smaller():
    u = od.Uniform(0, 1)
    a, b = u.quantize(64, "quantile"), u.quantize(64, "meansplit")
    assert a.w1 == pytest.approx(1 / (4 * 64), rel=1e-9)
    assert u.quantize(64, "auto").w1 == min(a.w1, b.w1)


def test_meansplit_preserves_the_mean():
    g = od.Gamma(2.0, 1.0)
    q = g.quantize(128, "meansplit")
    assert q.atoms @ q.weights == pytest.approx(2.0, rel=1e-12)


def test_regroup_cost_is_exact_w1():
    rng = np.random.default_rng(1)
    v = rng.normal(size=5000)
    w = rng.uniform(0.1, 1, size=5000)
    rg = regroup(v, w, 100)
    assert rg.atoms.size == 100
    assert np.all(np.diff(rg.atoms) >= 0)
    exact = w1_discrete(v, w, rg.atoms, rg.weights)
    assert rg.w1 == pytest.approx(exact, rel=1e-9)
    assert rg.atoms @ rg.weights == pytest.approx((v @ w) / w.sum(), rel=1e-9)


def test_discrete_and_empirical():
    d = od.Discrete([3.0, 1.0, 2.0, 1.0], [0.25, 0.25, 0.25, 0.25])
    q = d.quantize(10)
    assert q.method == "exact" and q.w1 == 0
    np.testing.assert_allclose(q.atoms, [1, 2, 3])
    np.testing.assert_allclose(q.weights, [0.5, 0.25, 0.25])
    e = od.Empirical(np.random.default_rng(0).exponential(size=1000))
    q = e.quantize(50)
    assert q.atoms.size == 50
    assert q.w1 == pytest.approx(w1_discrete(e.values, e.probs, q.atoms, q.weights), rel=1e-9)


def test_from_scipy_maps_known_families_and_wraps_others():
    assert isinstance(od.from_scipy(st.norm(1, 2)), od.Normal)
    assert isinstance(od.from_scipy(st.gamma(3, scale=2)), od.Gamma)
    lg = od.from_scipy(st.logistic(0, 1))
    q = lg.quantize(8, "quantile")
    num = np.array([_numeric_cell(st.logistic(0, 1), lo, a, hi) for lo, a, hi in zip(q.lo, q.atoms, q.hi, strict=True)])
    assert np.all(q.err >= num * (1 - 1e-9))
