"""Mutation tests of opgraph.dcg.tails, sixth pass (issue 13): survivors of the seed-15 sample (fast tests).

References: closed forms written out here (``E[X; X < t] = mu Phi(z) - s phi(z)`` of a Normal and its second
moment), ``scipy.integrate.quad`` of the density, and what is exact by definition (an empty region has moment 0,
``x^p``, ``p <= -1``, is not integrable where the density at 0 is positive).
"""

from __future__ import annotations

import math

import pytest
import scipy.stats as st
from scipy.integrate import quad

from opgraph import dcg as od
from opgraph.dcg.tails import partial_moment
from opgraph.dcg.truncation import Truncated


@pytest.mark.parametrize("mu, s, t", [(0.0, 1.0, 0.3), (1.5, 2.0, -0.5), (-2.0, 0.5, -1.0), (3.0, 1.0, 6.0)])
def test_normal_lower_side_power_moments_closed_form(mu, s, t):
    d = od.Normal(mu, s)
    z = (t - mu) / s
    phi, cdf = st.norm.pdf(z), st.norm.cdf(z)
    m1 = mu * cdf - s * phi  # E[X; X < t]
    m2 = (mu * mu + s * s) * cdf - s * (mu + t) * phi  # E[X^2; X < t]
    assert partial_moment(d, "power", 1.0, t, "lower") == pytest.approx(m1, rel=1e-10, abs=1e-14)
    assert partial_moment(d, "power", 2.0, t, "lower") == pytest.approx(m2, rel=1e-10, abs=1e-14)
    for p in (1, 3):
        want = quad(lambda x, p=p: x**p * st.norm.pdf(x, mu, s), -math.inf, t, epsabs=1e-13, epsrel=1e-11)[0]
        assert partial_moment(d, "power", float(p), t, "lower") == pytest.approx(want, rel=1e-8, abs=1e-12), p


@pytest.mark.parametrize("t, side", [(0.5, "lower"), (1.0, "lower"), (1e-3, "lower"), (-0.5, "upper"), (-1.0, "upper")])
def test_normal_negative_powers_over_a_region_that_holds_zero_are_infinite(t, side):
    for p in (-1.0, -2.0):
        assert partial_moment(od.Normal(0.3, 1.0), "power", p, t, side) == math.inf, p
    # away from 0 they are finite (and equal to the quadrature)
    far = 2.0 if side == "upper" else -2.0
    want = quad(lambda x: x**-1 * st.norm.pdf(x, 0.3, 1.0), *((far, math.inf) if side == "upper" else (-math.inf, far)))
    assert partial_moment(od.Normal(0.3, 1.0), "power", -1.0, far, side) == pytest.approx(want[0], rel=1e-8)


def test_truncated_moments_of_an_empty_region_are_zero():
    d = Truncated(od.Normal(0.0, 1.0), -1.0, 1.0)
    for kind, a in (("power", 0.0), ("power", 1.0), ("power", 2.0), ("exp", 0.5)):
        assert partial_moment(d, kind, a, 1.5, "upper") == 0.0
        assert partial_moment(d, kind, a, -1.5, "lower") == 0.0
    g = Truncated(od.Gamma(2.0, 1.0), 1.0, 3.0)
    assert partial_moment(g, "power", 0.5, 4.0, "upper") == 0.0
    assert partial_moment(g, "power", 1.0, 0.5, "lower") == 0.0


@pytest.mark.parametrize("t, side", [(0.5, "upper"), (0.05, "upper"), (-0.5, "lower"), (-0.05, "lower")])
def test_normal_negative_powers_just_off_zero_are_finite(t, side):
    # the region (t, inf) with 0 < t < 1 (or (-inf, t), -1 < t < 0) does not hold 0: x^-1 and x^-2 are integrable
    d = od.Normal(0.3, 1.0)
    for p in (-1, -2):
        lo, hi = (t, math.inf) if side == "upper" else (-math.inf, t)
        want = quad(lambda x, p=p: x**p * st.norm.pdf(x, 0.3, 1.0), lo, hi, epsabs=0.0, epsrel=1e-10, limit=200)[0]
        got = partial_moment(d, "power", float(p), t, side)
        assert math.isfinite(got) and got == pytest.approx(want, rel=1e-7), p


@pytest.mark.parametrize("t", [0.0, -1.0])
def test_lognormal_exp_moment_over_the_whole_support(t):
    # E[e^{aX}; X > t], a < 0, t <= 0: the region is the whole support, E[e^{aX}] by quadrature of the density
    d, ref = od.LogNormal(0.2, 0.5), st.lognorm(0.5, scale=math.exp(0.2))
    for a in (-1.0, -0.1):
        want = quad(lambda x, a=a: math.exp(a * x) * ref.pdf(x), 0.0, math.inf, epsabs=0.0, epsrel=1e-11)[0]
        assert partial_moment(d, "exp", a, t, "upper") == pytest.approx(want, rel=1e-8), a


def test_gamma_moments_at_infinite_thresholds():
    # (-inf, inf) is the whole support (full moments); (inf, inf) is empty (0), even beyond the MGF's domain
    g = od.Gamma(2.0, 1.5)  # k = 2, theta = 1.5
    assert partial_moment(g, "power", 0.0, math.inf, "lower") == pytest.approx(1.0)
    assert partial_moment(g, "power", 1.0, math.inf, "lower") == pytest.approx(3.0)  # k theta
    assert partial_moment(g, "power", 2.0, math.inf, "lower") == pytest.approx(2.0 * 3.0 * 1.5**2)  # k(k+1) th^2
    assert partial_moment(g, "exp", 0.2, math.inf, "lower") == pytest.approx((1 - 0.2 * 1.5) ** -2)
    for kind, a in (("power", 1.0), ("exp", 0.2), ("exp", 1.0)):  # exp 1.0: a >= 1 / theta
        assert partial_moment(g, kind, a, math.inf, "upper") == 0.0, (kind, a)
