"""Tail envelopes ``|x|^a`` on a tail cell that contains 0 (a Normal's tail past its mean): closed form, sound."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from opgraph import dcg as od
from opgraph.dcg import envelope


def _exact(mu, sigma, side, t, a):
    f = lambda x: abs(x) ** a * stats.norm.pdf(x, mu, sigma)  # noqa: E731
    lo, hi = (-math.inf, t) if side == "lower" else (t, math.inf)
    parts = [(lo, 0.0), (0.0, hi)]  # split at 0 (the kink of |x|^a)
    return sum(integrate.quad(f, p, q, epsabs=0, epsrel=1e-13, limit=200)[0] for p, q in parts)


@pytest.mark.parametrize(
    ("side", "t"), [("lower", 0.2268), ("lower", 0.9), ("lower", -0.05), ("upper", -0.1), ("upper", 0.3)]
)
@pytest.mark.parametrize("a", [1.0, 3.0, 5.0, 1.5, 2.5])
def test_abs_power_moment_on_a_tail_cell_across_zero_is_finite_and_an_upper_bound(side, t, a):
    law = od.Normal(0.5, 0.2)
    region = envelope.Region(law, side, t, -math.inf if side == "lower" else t, t if side == "lower" else math.inf)
    got = envelope.moment(envelope.Env(((1.0, "power", a),)), region)
    exact = _exact(0.5, 0.2, side, t, a)
    assert math.isfinite(got)  # odd and fractional powers across 0 were inf
    assert got >= exact * (1 - 1e-9)
    if float(a).is_integer():
        assert got <= exact * (1 + 1e-6) + 1e-15  # closed form: tight
    else:  # |x|^a <= x^(2j) + x^(2j+2) around a: finite, no larger than that
        j = 2 * math.floor(a / 2)
        assert got <= (_exact(0.5, 0.2, side, t, j) + _exact(0.5, 0.2, side, t, j + 2)) * (1 + 1e-6)


def test_cubes_of_normals_get_a_finite_cellwise_bound_at_every_atom_count():
    """uqtestfuns' HyperSphere ``1 - x**3 - y**3`` with N(0.5, 0.2) inputs: 8 atoms was worse than 4 (0.63 vs 0.13)."""
    x, y = od.Normal(0.5, 0.2), od.Normal(0.5, 0.2)
    f = lambda a, b: 1 - a**3 - b**3  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rs = {n: od.evaluate(f, x, y, atoms=n) for n in (4, 8)}
    assert math.isfinite(rs[8].info["cellwise_bound"])
    assert rs[8].w1_bound < rs[4].w1_bound
    g = np.random.default_rng(3)
    ref = f(g.normal(0.5, 0.2, 2**20), g.normal(0.5, 0.2, 2**20))
    for r in rs.values():  # sound against 2^20 Monte Carlo samples (their own W1 error is about 1e-4 here)
        assert r.w1_bound >= od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 2e-3
