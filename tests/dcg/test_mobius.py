"""The ratio rule of the log-space pass (opgraph.dcg.mobius): ``(alpha a + beta b) / (gamma a + delta b)``.

Checks: the recognition (the damped oscillator's tuning ratio, and what it must not take); the value and elasticity
enclosures hold pointwise on random boxes, unbounded ones included (hypothesis), and are never wider than the general
quotient rule's; a box with an unbounded cell gets a finite value enclosure (the general rule's is ``inf / inf``).
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph.dcg import elastic, mobius
from opgraph.graph import trace


def theta(a, b):
    return (a - b) / ((a + b) / 2.0)


def _enc(fn, lo, hi, on):
    g = trace(fn, "x0", "x1")
    cells = {i: (np.array([lo[i]], float), np.array([hi[i]], float)) for i in range(2)}
    old = elastic.MOBIUS
    elastic.MOBIUS = on
    try:
        res = elastic.elasticities(g, g.outputs[0], [0, 1], cells, [True, True])
    finally:
        elastic.MOBIUS = old
    assert res is not None
    v, G = res
    return [float(np.ravel(x)[0]) for x in v], {j: [float(np.ravel(x)[0]) for x in G[j]] for j in G}


def test_plan_finds_the_tuning_ratio_and_nothing_else():
    g = trace(lambda a, b: theta(np.sqrt(a), np.sqrt(b)) ** 2, "x0", "x1")
    need = set(range(len(g.nodes)))
    plan = mobius.plan(g, need)
    assert len(plan) == 1
    (a, b, alpha, beta, gamma, delta) = next(iter(plan.values()))
    assert {g.nodes[a].op, g.nodes[b].op} == {"sqrt"}
    assert (alpha, beta, gamma, delta) == (1.0, -1.0, 0.5, 0.5)
    # a denominator with a negative coefficient, a third base node, or a product of the bases: not taken
    for fn in (
        lambda a, b: (a + b) / (a - b),
        lambda a, b: (a + b) / (a + b * a),
        lambda a, b: (a + 2.0) / (a + b),
    ):
        g2 = trace(fn, "x0", "x1")
        assert mobius.plan(g2, set(range(len(g2.nodes)))) == {}


def test_unbounded_cell_gets_a_finite_value_enclosure():
    # a in [3, inf), b in [1, 2]: r = a / b in [1.5, inf], q = 2 (r - 1) / (r + 1) in [0.4, 2)
    v_old, g_old = _enc(theta, [3.0, 1.0], [math.inf, 2.0], False)
    v_new, g_new = _enc(theta, [3.0, 1.0], [math.inf, 2.0], True)
    assert not (math.isfinite(v_old[0]) and math.isfinite(v_old[1]))
    assert 0.4 - 1e-9 <= v_new[0] <= 0.4 and 2.0 <= v_new[1] <= 2.0 + 1e-9
    # and finite elasticities: d log q / d log a = r / (r - 1) - r / (r + 1) = 2 r / (r^2 - 1) in (0, 2.4]
    assert all(math.isfinite(x) for x in g_new[0]) and g_new[0][0] <= 1e-9 and 2.4 - 1e-9 <= g_new[0][1] < 2.5
    assert not all(math.isfinite(x) for x in g_old[0])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    alpha=hs.floats(-3.0, 3.0),
    beta=hs.floats(-3.0, 3.0),
    gamma=hs.floats(0.1, 3.0),
    delta=hs.floats(0.1, 3.0),
    a0=hs.floats(0.05, 20.0),
    b0=hs.floats(0.05, 20.0),
    ra=hs.floats(1.0, 5.0),
    rb=hs.floats(1.0, 5.0),
    open_a=hs.booleans(),
)
def test_ratio_rule_holds_pointwise_and_is_never_wider(alpha, beta, gamma, delta, a0, b0, ra, rb, open_a):
    def fn(a, b):
        return (alpha * a + beta * b) / (gamma * a + delta * b) + 3.0  # shifted: log|q| defined on most boxes

    lo = [a0, b0]
    hi = [math.inf if open_a else a0 * ra, b0 * rb]
    v, G = _enc(fn, lo, hi, True)
    v_old, G_old = _enc(fn, lo, hi, False)
    assert v[0] >= v_old[0] - 1e-12 * (1 + abs(v_old[0])) and v[1] <= v_old[1] + 1e-12 * (1 + abs(v_old[1]))
    for j in G:
        assert G[j][0] >= G_old[j][0] - 1e-9 * (1 + abs(G_old[j][0]))
        assert G[j][1] <= G_old[j][1] + 1e-9 * (1 + abs(G_old[j][1]))
    rng = np.random.default_rng(0)
    top = a0 * 1e6 if open_a else hi[0]
    a = np.concatenate([[lo[0], top], np.exp(rng.uniform(np.log(lo[0]), np.log(top), 400))])
    b = np.concatenate([[lo[1], hi[1]], np.exp(rng.uniform(np.log(lo[1]), np.log(hi[1]), 400))])
    f = fn(a, b)
    tol = 1e-9 * (1 + np.abs(f))
    assert np.all(f >= v[0] - tol) and np.all(f <= v[1] + tol)
    h = 1e-6
    for j in (0, 1):
        up = [a * math.exp(h), b] if j == 0 else [a, b * math.exp(h)]
        dn = [a * math.exp(-h), b] if j == 0 else [a, b * math.exp(-h)]
        num = (np.log(np.abs(fn(*up))) - np.log(np.abs(fn(*dn)))) / (2 * h)
        ok = np.isfinite(num) & (np.abs(f) > 1e-3)
        t = 1e-5 * (1 + np.abs(num))
        assert np.all(num[ok] >= G[j][0] - t[ok]) and np.all(num[ok] <= G[j][1] + t[ok])
