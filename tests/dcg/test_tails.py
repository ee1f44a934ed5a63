"""Closed-form partial moments (opgraph.dcg.tails) against numerical quadrature of the density."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from scipy.integrate import quad

from opgraph import dcg as od
from opgraph.dcg.tails import partial_moment, tail_mass, tail_quantile


def _g(kind: str, a: float):
    if kind == "power":
        return lambda x: x**a
    return lambda x: math.exp(a * x)


def _quad_moment(dist, kind: str, a: float, t: float, side: str) -> float:
    """E[g(X); X in T] by adaptive quadrature of g * density (split at the bulk for accuracy)."""
    frozen = dist.to_scipy()
    lo_s, hi_s = frozen.support()
    lo, hi = (max(t, lo_s), hi_s) if side == "upper" else (lo_s, min(t, hi_s))
    if lo >= hi:
        return 0.0
    g = _g(kind, a)
    if kind == "exp":
        f = lambda x: math.exp(min(a * x + float(frozen.logpdf(x)), 700.0))  # noqa: E731
    else:
        f = lambda x: g(x) * frozen.pdf(x)  # noqa: E731
    # Break points inside the bulk so quad sees the mass.
    qs = [float(v) for v in frozen.ppf([0.01, 0.1, 0.5, 0.9, 0.99, 1 - 1e-9])]
    pts = sorted({lo, *(p for p in qs if lo < p < hi), hi})
    total = 0.0
    for u, v in zip(pts[:-1], pts[1:], strict=True):
        if u == lo_s == 0 and math.isfinite(v):
            # x = u^4 removes an integrable singularity of g * density at the support's edge 0
            val, _ = quad(lambda y: f(y**4) * 4 * y**3, 0.0, v**0.25, epsabs=0.0, epsrel=1e-12, limit=500)
        else:
            val, _ = quad(f, u, v, epsabs=0.0, epsrel=1e-12, limit=500)
        total += val
    return total


LAWS = [
    od.Normal(0, 1),
    od.Normal(1.5, 0.4),
    od.Normal(-2, 3),
    od.Normal(9.81, 0.05),
    od.LogNormal(0, 0.5),
    od.LogNormal(1.2, 1.0),
    od.LogNormal(-0.5, 0.2),
    od.Gamma(0.5, 2.0),
    od.Gamma(3.0, 0.7),
    od.Gamma(7.5, 1.3),
    od.Exponential(1.0),
    od.Exponential(4.0),
    od.Uniform(0, 1),
    od.Uniform(2, 5),
    od.Uniform(-1, 3),
]


def _thresholds(dist) -> list[float]:
    return [float(v) for v in dist.to_scipy().ppf([0.001, 0.2, 0.5, 0.8, 0.999])]


def _powers(dist) -> list[float]:
    lo = dist.to_scipy().support()[0]
    if lo >= 0:
        return [0, 1, 2, 3.5, 0.5, -0.5, -1, -2.5]
    return [0, 1, 2, 3, 4]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


@pytest.mark.parametrize("dist", LAWS, ids=repr)
@pytest.mark.parametrize("side", ["upper", "lower"])
def test_power_moments_match_quadrature(dist, side):
    for p in _powers(dist):
        for t in _thresholds(dist):
            got = partial_moment(dist, "power", p, t, side)
            if not math.isfinite(got):
                # The only infinite cases here: powers <= -k (Gamma) or <= -1 (Uniform) down to 0.
                k = getattr(dist, "k", 1.0)
                assert side == "lower" and p <= -k, (dist, p, t, side)
                continue
            ref = _quad_moment(dist, "power", p, t, side)
            assert _rel(got, ref) < 1e-7 or abs(got - ref) < 1e-12, (dist, p, t, side, got, ref)


@pytest.mark.parametrize("dist", LAWS, ids=repr)
@pytest.mark.parametrize("side", ["upper", "lower"])
def test_exp_moments_match_quadrature(dist, side):
    sd = float(dist.to_scipy().std())
    for a in (-2.0 / sd, -0.3 / sd, 0.0, 0.3 / sd, 1.0 / sd):
        for t in _thresholds(dist):
            got = partial_moment(dist, "exp", a, t, side)
            if not math.isfinite(got):
                assert a > 0 and side == "upper" and isinstance(dist, od.LogNormal | od.Gamma), (dist, a, t, side)
                continue
            ref = _quad_moment(dist, "exp", a, t, side)
            assert _rel(got, ref) < 1e-7 or abs(got - ref) < 1e-12, (dist, a, t, side, got, ref)


@pytest.mark.parametrize(
    ("mu", "sigma", "p", "k"),
    [(0.0, 0.5, 1.0, 1.0), (0.3, 0.8, -1.0, 0.7), (-1.0, 0.25, 2.0, 0.5), (2.0, 1.0, -2.5, 3.0), (0.0, 1.0, 0.5, 10)],
)
def test_lognormal_black_scholes_form(mu, sigma, p, k):
    # E[X^p; X > k] = e^{p mu + p^2 s^2/2} Phi((mu + p s^2 - ln k) / s), independent of quadrature.
    want = math.exp(p * mu + 0.5 * p * p * sigma**2) * st.norm.cdf((mu + p * sigma**2 - math.log(k)) / sigma)
    assert partial_moment(od.LogNormal(mu, sigma), "power", p, k, "upper") == pytest.approx(want, rel=1e-12)
    # upper + lower = the full moment
    full = math.exp(p * mu + 0.5 * p * p * sigma**2)
    lo = partial_moment(od.LogNormal(mu, sigma), "power", p, k, "lower")
    assert lo + want == pytest.approx(full, rel=1e-12)


def test_normal_exp_moment_closed_form():
    d = od.Normal(1.0, 0.1)
    for a in (-3.0, 0.5, 4.0):
        for t in (0.7, 1.0, 1.4):
            want = math.exp(a + 0.005 * a * a) * st.norm.sf((t - 1.0 - 0.01 * a) / 0.1)
            assert partial_moment(d, "exp", a, t, "upper") == pytest.approx(want, rel=1e-12)
    # the whole line: the MGF
    assert partial_moment(d, "exp", 2.0, -math.inf, "upper") == pytest.approx(math.exp(2 + 0.02), rel=1e-13)


def test_full_moments_and_probability():
    assert partial_moment(od.Normal(0, 1), "power", 4, -math.inf) == pytest.approx(3.0)
    assert partial_moment(od.Normal(2, 1), "power", 2, -math.inf) == pytest.approx(5.0)
    assert partial_moment(od.Gamma(3.0, 2.0), "power", 1, 0.0) == pytest.approx(6.0)
    assert partial_moment(od.Gamma(3.0, 2.0), "power", -1, 0.0) == pytest.approx(1 / (2.0 * 2))  # 1/(theta (k-1))
    assert partial_moment(od.Exponential(2.0), "exp", 1.0, 0.0) == pytest.approx(2.0)  # rate / (rate - a)
    assert partial_moment(od.Uniform(0, 2), "power", 0, 1.5) == pytest.approx(0.25)
    assert tail_mass(od.Normal(0, 1), 1.0) == pytest.approx(st.norm.sf(1.0), rel=1e-14)
    assert tail_mass(od.Normal(0, 1), 37.0) == pytest.approx(st.norm.sf(37.0), rel=1e-12)  # no 1 - (1 - p)
    # a huge MGF factor times a tiny tail probability (each alone under/overflows)
    want = math.exp(0.5 * 30.0**2 + st.norm.logsf(68.0 - 30.0))
    assert partial_moment(od.Normal(0, 1), "exp", 30.0, 68.0) == pytest.approx(want, rel=1e-10)
    assert partial_moment(od.Normal(0, 1), "power", 1, math.inf) == 0.0
    assert partial_moment(od.Gamma(2.0), "power", 1, -1.0, "lower") == 0.0


def test_non_existence_is_inf():
    inf = math.inf
    # Normal: x^-1 near 0 is not integrable (density positive at 0)
    assert partial_moment(od.Normal(0, 1), "power", -1, -1.0, "upper") == inf
    assert partial_moment(od.Normal(9.81, 0.05), "power", -1, 1.0, "lower") == inf
    assert partial_moment(od.Normal(1, 1), "power", -2, 0.0, "upper") == inf
    # ... but finite away from 0 (numerical quadrature, no closed form)
    v = partial_moment(od.Normal(9.81, 0.05), "power", -1, 9.0, "upper")
    assert v == pytest.approx(_quad_moment(od.Normal(9.81, 0.05), "power", -1, 9.0, "upper"), rel=1e-9)
    # Gamma(k): E X^p finite iff p > -k
    assert partial_moment(od.Gamma(0.5), "power", -0.5, 0.0, "upper") == inf
    assert partial_moment(od.Gamma(0.5), "power", -0.7, 1.0, "lower") == inf
    assert math.isfinite(partial_moment(od.Gamma(0.5), "power", -0.4, 0.0, "upper"))
    # p <= -k away from 0: the upper incomplete Gamma of order <= 0 (recurrence)
    for k, p, t in ((0.5, -0.5, 0.3), (0.5, -2.0, 1.0), (2.0, -3.0, 0.5), (1.0, -1.0, 2.0), (1.5, -4.25, 0.8)):
        got = partial_moment(od.Gamma(k, 1.3), "power", p, t, "upper")
        assert got == pytest.approx(_quad_moment(od.Gamma(k, 1.3), "power", p, t, "upper"), rel=1e-8), (k, p, t)
    # Exponential moments beyond the MGF's domain
    assert partial_moment(od.Gamma(2.0, 0.5), "exp", 2.0, 1.0, "upper") == inf
    assert partial_moment(od.Exponential(1.0), "exp", 1.5, 0.0, "upper") == inf
    assert partial_moment(od.LogNormal(0, 0.5), "exp", 0.01, 3.0, "upper") == inf
    # ... but the lower side is finite (hypergeometric form; LogNormal by quadrature)
    for k, a, t in ((2.0, 3.0, 1.5), (0.5, 2.0, 0.7), (3.0, 0.5, 4.0)):
        got = partial_moment(od.Gamma(k, 0.5), "exp", a, t, "lower")
        assert got == pytest.approx(_quad_moment(od.Gamma(k, 0.5), "exp", a, t, "lower"), rel=1e-8), (k, a, t)
    got = partial_moment(od.LogNormal(0, 0.5), "exp", 1.0, 3.0, "lower")
    assert got == pytest.approx(_quad_moment(od.LogNormal(0, 0.5), "exp", 1.0, 3.0, "lower"), rel=1e-8)
    # Uniform through 0: x^-1 diverges, x^-0.5 from the right converges
    assert partial_moment(od.Uniform(-1, 1), "power", -1, -0.5, "upper") == inf
    assert partial_moment(od.Uniform(0, 1), "power", -1, 0.5, "lower") == inf
    assert partial_moment(od.Uniform(0, 1), "power", -0.5, 0.25, "lower") == pytest.approx(1.0)  # 2 sqrt(.25)


def test_tail_quantile_inverts_tail_mass():
    for d in (od.Normal(1, 2), od.LogNormal(0.3, 0.7), od.Gamma(2.5, 1.5), od.Exponential(3.0), od.Uniform(-1, 4)):
        for eps in (1e-3, 1e-8, 1e-14):
            for side in ("upper", "lower"):
                t = tail_quantile(d, eps, side)
                assert tail_mass(d, t, side) == pytest.approx(eps, rel=1e-6), (d, eps, side)
    # far beyond the reach of ppf(1 - eps)
    assert tail_quantile(od.Normal(0, 1), 1e-100) == pytest.approx(21.27, abs=0.01)


def test_bad_arguments_name_the_fix():
    with pytest.raises(od.DistError, match="kind"):
        partial_moment(od.Normal(), "log", 1, 0)
    with pytest.raises(od.DistError, match="side"):
        partial_moment(od.Normal(), "power", 1, 0, "left")
    with pytest.raises(od.DistError, match="integer power"):
        partial_moment(od.Normal(), "power", 0.5, 0)
    with pytest.raises(od.DistError, match="integer power"):
        partial_moment(od.Uniform(-1, 1), "power", 1.5, -0.5)
    with pytest.raises(od.DistError, match="Normal, LogNormal"):
        partial_moment(od.Beta(2, 3), "power", 1, 0.5)
    with pytest.raises(od.DistError, match="eps"):
        tail_quantile(od.Normal(), 0.0)
    with pytest.raises(od.DistError, match="finite"):
        partial_moment(od.Normal(), "exp", np.inf, 0)
