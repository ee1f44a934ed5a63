"""Weighted elasticity of positive sums (:func:`opgraph.dcg.elastic._convex`, ``elastic.WEIGHTED_SUMS``).

``d log(u + w) / d t = (u G_u + w G_w) / (u + w)``: the convex combination of the operands' elasticities with the
weight ``u / (u + w)``, whose enclosure comes from the operands' value enclosures. The tests check it pointwise against
the exact derivative (hypothesis), that it is never wider than the hull it replaces, that it is what the pass uses,
and that the box bound built on it stays above a Monte Carlo coupling cost and the engine's bound above a Sobol
reference of the exact W1.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import elastic
from opgraph.dcg.distributions import LogNormal
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace


def _enclosure(fn, lo, hi, weighted):
    """Value and elasticity enclosures of ``fn`` on the box ``[lo, hi]`` (log coordinates), one box."""
    g = trace(fn, *[f"x{i}" for i in range(len(lo))])
    cells = {i: (np.array([lo[i]]), np.array([hi[i]])) for i in range(len(lo))}
    old = elastic.WEIGHTED_SUMS
    elastic.WEIGHTED_SUMS = weighted
    try:
        res = elastic.elasticities(g, g.outputs[0], list(range(len(lo))), cells, [True] * len(lo))
    finally:
        elastic.WEIGHTED_SUMS = old
    assert res is not None
    return res


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=hs.floats(0.01, 100.0),
    b=hs.floats(0.01, 100.0),
    p=hs.floats(-3.0, 3.0),
    q=hs.floats(-3.0, 3.0),
    x0=hs.floats(0.05, 20.0),
    y0=hs.floats(0.05, 20.0),
    rx=hs.floats(1.0, 4.0),
    ry=hs.floats(1.0, 4.0),
    neg=hs.booleans(),
)
def test_weighted_sum_elasticity_holds_pointwise_and_is_inside_the_hull(a, b, p, q, x0, y0, rx, ry, neg):
    # f = s (a x^p + b y^q (x + y)) with s = -1 or 1: a sum of two terms of one sign, one of them itself a sum
    s = -1.0 if neg else 1.0

    def fn(x, y):
        return s * (a * x**p + b * y**q * (x + y))

    lo, hi = [x0, y0], [x0 * rx, y0 * ry]
    v, g = _enclosure(fn, lo, hi, True)
    _, g_hull = _enclosure(fn, lo, hi, False)
    rng = np.random.default_rng(0)
    x = np.concatenate([[lo[0], hi[0], lo[0], hi[0]], np.exp(rng.uniform(np.log(lo[0]), np.log(hi[0]), 256))])
    y = np.concatenate([[lo[1], lo[1], hi[1], hi[1]], np.exp(rng.uniform(np.log(lo[1]), np.log(hi[1]), 256))])
    f = fn(x, y)
    # exact elasticities: x df/dx / f and y df/dy / f
    gx = s * (a * p * x**p + b * y**q * x) / f
    gy = s * (b * q * y**q * (x + y) + b * y**q * y) / f
    for j, exact in ((0, gx), (1, gy)):
        glo, ghi = (float(np.ravel(t)[0]) for t in g[j])
        tol = 1e-9 * (1 + np.abs(exact))
        assert np.all(exact >= glo - tol) and np.all(exact <= ghi + tol), (j, exact.min(), exact.max(), glo, ghi)
        hlo, hhi = (float(np.ravel(t)[0]) for t in g_hull[j])
        assert glo >= hlo and ghi <= hhi  # never wider than the hull it replaces


def test_weighted_sum_is_the_rule_taken():
    # 1 + x on x in [1, 2]: d log(1 + x) / d log x = x / (1 + x) in [1/2, 2/3]; without the weights, the hull [0, 1]
    # of the operands' elasticities met with D / V = [1, 2] / [2, 3] gives [1/3, 1]
    _, g = _enclosure(lambda x: 1.0 + x, [1.0], [2.0], True)
    _, g_hull = _enclosure(lambda x: 1.0 + x, [1.0], [2.0], False)
    glo, ghi = (float(np.ravel(t)[0]) for t in g[0])
    assert 0.5 - 1e-9 <= glo <= 0.5 and 2 / 3 <= ghi <= 2 / 3 + 1e-9
    hlo, hhi = (float(np.ravel(t)[0]) for t in g_hull[0])
    assert hlo <= 1 / 3 + 1e-9 and hhi >= 1.0 - 1e-9


def sums_prog(x, y, z):
    """Nested positive sums with shared inputs (a resonance-like denominator)."""
    return (x**2 + 3.0 * y) * (1.0 + z) / (x * y + 0.2 * z**2 + 0.05) + 0.5 * z


@pytest.mark.parametrize("n", [4, 8])
def test_sum_program_bound_is_sound_and_tighter(n):
    from scipy.stats import norm, qmc

    laws = [LogNormal(0.1, 0.3), LogNormal(-0.2, 0.4), LogNormal(-1.0, 0.5)]
    old = elastic.WEIGHTED_SUMS
    elastic.WEIGHTED_SUMS = False
    try:
        before = od.evaluate(sums_prog, *laws, atoms=n, progress=False)
    finally:
        elastic.WEIGHTED_SUMS = old
    after = od.evaluate(sums_prog, *laws, atoms=n, progress=False)
    assert "after" in after.info["elastic"]
    assert after.w1_bound < before.w1_bound  # 1.92 -> 1.51 (4 atoms), 0.58 -> 0.44 (8)
    m = 2**18
    refs = []
    for seed in (1, 2):
        u = np.clip(qmc.Sobol(d=3, scramble=True, seed=seed).random(m), 1e-12, 1 - 1e-12)
        refs.append(np.sort(sums_prog(*[np.exp(law.mu + law.sigma * norm.ppf(u[:, k])) for k, law in enumerate(laws)])))
    w = np.full(m, 1.0 / m)
    ref_err = w1_discrete(refs[0], w, refs[1], w)
    assert after.w1_bound >= w1_discrete(after.atoms, after.weights, refs[0], w) - 3 * ref_err
