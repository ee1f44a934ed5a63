"""The ``geometric`` quantizer (cells equal in normal scores, light tail cells) and its ``auto`` use.

LogNormal inputs of a multi-input program that reuses values get these cells under ``quantizer="auto"``: every
box touching a tail cell is charged with a product-form envelope there, so light tail cells tighten the bound.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg import distributions as D

FAMILIES = [
    (od.Normal(1.0, 0.3), st.norm(1.0, 0.3)),
    (od.Uniform(-1.0, 2.0), st.uniform(-1.0, 3.0)),
    (od.Gamma(2.5, 1.5), st.gamma(2.5, scale=1.5)),
    (od.LogNormal(0.2, 0.5), st.lognorm(0.5, scale=np.exp(0.2))),
    (od.LogNormal(-4.6, 0.1), st.lognorm(0.1, scale=np.exp(-4.6))),
]


def _numeric_cell(frozen, lo, a, hi):
    total = 0.0
    for l, r in ((lo, a), (a, hi)):
        if r > l:
            total += integrate.quad(lambda x: abs(x - a) * frozen.pdf(x), l, r, epsabs=1e-15, limit=200)[0]
    return total


@pytest.mark.parametrize("n", [3, 5, 16])
@pytest.mark.parametrize("k", range(len(FAMILIES)))
def test_cells_are_exact_and_mean_preserving(k, n):
    dist, frozen = FAMILIES[k]
    q = dist.quantize(n, "geometric")
    assert q.method == "geometric" and q.atoms.size == n
    assert np.isclose(q.weights.sum(), 1.0) and np.all(np.diff(q.atoms) > 0)
    assert np.all((q.atoms >= q.lo) & (q.atoms <= q.hi)) and np.all(q.hi[:-1] == q.lo[1:])
    np.testing.assert_allclose(frozen.cdf(q.hi) - frozen.cdf(q.lo), q.weights, rtol=1e-7, atol=1e-12)
    assert float(q.atoms @ q.weights) == pytest.approx(frozen.mean(), rel=1e-9)  # conditional means
    num = np.array([_numeric_cell(frozen, lo, a, hi) for lo, a, hi in zip(q.lo, q.atoms, q.hi, strict=True)])
    np.testing.assert_allclose(q.err, num, rtol=1e-6, atol=1e-12 * frozen.std())
    assert np.all(q.err >= num - 1e-13 * frozen.std())


@pytest.mark.parametrize("n", [3, 7, 16, 64])
def test_lognormal_cells_are_geometric_with_light_tails(n):
    d = od.LogNormal(0.4, 0.1)
    q = d.quantize(n, "geometric")
    ratios = np.log(q.hi[1:-1] / q.lo[1:-1])
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-9)  # inner cells equal in log x
    c = math.sqrt(2 * math.log(D.GEOMETRIC_K * (n - 2)))
    assert ratios[0] == pytest.approx(2 * c * 0.1 / (n - 2), rel=1e-9)
    np.testing.assert_allclose(q.weights[[0, -1]], sc.ndtr(-c), rtol=1e-9)
    assert q.weights[0] < 0.5 / n  # mean-split tails carry about 1 / n each
    assert q.lo[0] == 0 and math.isinf(q.hi[-1])


def test_at_one_two_and_four_atoms_it_is_the_mean_split():
    d = od.LogNormal(0.0, 0.3)
    for n in (1, 2, 4):
        a, b = d.quantize(n, "geometric"), d.quantize(n, "meansplit")
        np.testing.assert_allclose(a.atoms, b.atoms)
        np.testing.assert_allclose(a.err, b.err)


L = od.LogNormal
INPUTS = [L(0.4, 0.1), L(-0.5, 0.1), L(0.0, 0.2), L(-0.3, 0.2)]


def _tuned(a, b, c, d):
    """A tuned-oscillator-like ratio: every input is used twice (no law-level bound composes)."""
    wa, wb = np.sqrt(c / a), np.sqrt(d / b)
    th = (wa - wb) / (wa + wb)
    return np.sqrt(a * c / (b * (4 * (c + d) ** 2 + th**2)))


def _eval(fn, *ins, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *ins, **kw)


def test_auto_uses_geometric_cells_only_where_values_are_reused():
    r = _eval(_tuned, *INPUTS, atoms=4)
    assert set(r.info["quantizers"].values()) == {"geometric"}
    r = _eval(lambda a, b, c: a * b * c, *INPUTS[:3], atoms=4)  # a product chain: the law-level rule
    assert set(r.info["quantizers"].values()) == {"meansplit"}
    r = _eval(lambda a, b: a * b + a, *INPUTS[:2], atoms=4)  # two inputs
    assert "geometric" not in r.info["quantizers"].values()
    n = od.Normal(1.0, 0.1)  # only LogNormal inputs change
    r = _eval(lambda a, b, c: a * b + b * c + c / a, INPUTS[0], n, INPUTS[2], atoms=4)
    assert r.info["quantizers"] == {"a": "geometric", "b": r.info["quantizers"]["b"], "c": "geometric"}
    assert r.info["quantizers"]["b"] != "geometric"
    r = _eval(_tuned, *INPUTS, atoms=4, quantizer="meansplit")  # an explicit choice is kept
    assert set(r.info["quantizers"].values()) == {"meansplit"}


@pytest.mark.parametrize("n", [6, 8])
def test_geometric_bound_is_sound_and_tighter_on_a_reused_program(n):
    g = np.random.default_rng(1)
    y = _tuned(*[g.lognormal(d.mu, d.sigma, 2**18) for d in INPUTS])
    slack = 10 * float(np.std(y)) / math.sqrt(y.size)  # the sample's own W1 error, generously
    geo = _eval(_tuned, *INPUTS, atoms=n)
    ms = _eval(_tuned, *INPUTS, atoms=n, quantizer="meansplit")
    for r in (geo, ms):
        assert st.wasserstein_distance(r.atoms, y, u_weights=r.weights) <= r.w1_bound + slack
        assert abs(r.mean() - float(np.mean(y))) <= r.w1_bound + slack
    assert geo.w1_bound < 0.6 * ms.w1_bound  # measured 1.05 vs 4.16 std at 8 atoms
