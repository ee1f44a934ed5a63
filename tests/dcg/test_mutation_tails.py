"""Mutation tests of opgraph.dcg.tails against independent references (issue 13, fourth pass).

References: ``scipy.integrate.quad`` of ``g(x) * pdf(x)`` with SciPy's frozen laws (on the truncated range for
:class:`~opgraph.dcg.truncation.Truncated` laws), SciPy's ``isf``/``ppf`` for tail quantiles, and elementary
integrals written out by hand.
"""

from __future__ import annotations

import math

import pytest
import scipy.stats as st
from scipy.integrate import quad

from opgraph import dcg as od
from opgraph.dcg.tails import partial_moment, tail_mass, tail_quantile
from opgraph.dcg.truncation import Truncated


def _ref(frozen, g, lo: float, hi: float, breaks=()) -> float:
    pts = sorted({lo, hi, *(b for b in breaks if lo < b < hi)})
    return sum(
        quad(lambda x: g(x) * frozen.pdf(x), u, v, epsabs=0.0, epsrel=1e-12, limit=500)[0]
        for u, v in zip(pts[:-1], pts[1:], strict=True)
    )


TRUNCATED = [
    # (base, scipy base, lo, hi)
    (od.Normal(1.0, 2.0), st.norm(1.0, 2.0), -0.5, 4.0),
    (od.Normal(1.0, 2.0), st.norm(1.0, 2.0), 0.5, math.inf),
    (od.Normal(0.0, 1.0), st.norm(0.0, 1.0), -math.inf, 0.7),
    (od.Gamma(2.5, 1.5), st.gamma(2.5, scale=1.5), 0.8, 9.0),
    (od.LogNormal(0.2, 0.6), st.lognorm(0.6, scale=math.exp(0.2)), 0.5, 3.0),
]


@pytest.mark.parametrize("case", range(len(TRUNCATED)))
@pytest.mark.parametrize(("kind", "a"), [("power", 0.0), ("power", 1.0), ("power", 2.0), ("exp", 0.3), ("exp", -0.7)])
@pytest.mark.parametrize("side", ["upper", "lower"])
def test_truncated_moments_match_quadrature_of_the_conditioned_density(case, kind, a, side):
    base, ref, lo, hi = TRUNCATED[case]
    d = Truncated(base, lo, hi)
    mass = ref.cdf(hi) - ref.cdf(lo)
    mid = float(ref.ppf(0.5 * (ref.cdf(lo) + ref.cdf(hi))))
    g = (lambda x: x**a) if kind == "power" else (lambda x: math.exp(a * x))
    for t in (lo - 1.0, mid, 0.5 * (mid + lo) if math.isfinite(lo) else mid - 1.0, hi + 1.0):
        u, v = (max(t, lo), hi) if side == "upper" else (lo, min(t, hi))
        want = 0.0 if not u < v else _ref(ref, g, max(u, -60.0), min(v, 80.0), (mid, base.loc)) / mass
        got = partial_moment(d, kind, a, t, side)
        assert got == pytest.approx(want, rel=1e-8, abs=1e-13), (t, got, want)


def test_truncated_moments_where_the_base_diverges_on_that_side_are_finite():
    # e^{0.3 X} of a LogNormal has no upper moment, x^-1 of a Normal none that reaches 0; both are finite on a
    # bounded range away from the divergence (these were inf - inf = NaN).
    ln, ln_ref = od.LogNormal(0.2, 0.6), st.lognorm(0.6, scale=math.exp(0.2))
    d = Truncated(ln, 0.5, 3.0)
    mass = ln_ref.cdf(3.0) - ln_ref.cdf(0.5)
    for t in (0.2, 1.0, 2.9):
        want = _ref(ln_ref, lambda x: math.exp(0.3 * x), max(t, 0.5), 3.0) / mass
        assert partial_moment(d, "exp", 0.3, t, "upper") == pytest.approx(want, rel=1e-9)
    nb, nb_ref = od.Normal(3.0, 1.0), st.norm(3.0, 1.0)
    d2 = Truncated(nb, 1.0, 5.0)
    mass2 = nb_ref.cdf(5.0) - nb_ref.cdf(1.0)
    for t in (1.5, 4.0, 6.0):
        want = _ref(nb_ref, lambda x: 1 / x, 1.0, min(t, 5.0), (3.0,)) / mass2
        assert partial_moment(d2, "power", -1, t, "lower") == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("a", [0.5, -0.5, 1.5])
def test_truncated_normal_non_integer_powers_on_the_positive_side(a):
    base, ref = od.Normal(1.0, 0.5), st.norm(1.0, 0.5)
    d = Truncated(base, 0.2, 3.0)
    mass = ref.cdf(3.0) - ref.cdf(0.2)
    for t, side in ((0.9, "upper"), (1.4, "lower"), (0.1, "upper"), (3.5, "lower")):
        u, v = (max(t, 0.2), 3.0) if side == "upper" else (0.2, min(t, 3.0))
        want = _ref(ref, lambda x: x**a, u, v, (1.0,)) / mass
        assert partial_moment(d, "power", a, t, side) == pytest.approx(want, rel=1e-9)
    with pytest.raises(od.DistError, match="integer power"):
        partial_moment(Truncated(base, -1.0, 3.0), "power", 0.5, -0.5, "upper")
    # x^-1 from 0: diverges
    assert partial_moment(Truncated(base, 0.0, 3.0), "power", -1.5, 0.0, "upper") == math.inf
    assert math.isfinite(partial_moment(Truncated(base, 0.0, 3.0), "power", -0.5, 0.0, "upper"))


@pytest.mark.parametrize(
    ("dist", "ref"),
    [
        (od.Normal(0.3, 1.2), st.norm(0.3, 1.2)),
        (od.Normal(-2.0, 0.4), st.norm(-2.0, 0.4)),
        (od.Gamma(0.7, 2.0), st.gamma(0.7, scale=2.0)),
        (od.Gamma(4.0, 0.5), st.gamma(4.0, scale=0.5)),
        (od.LogNormal(0.1, 0.8), st.lognorm(0.8, scale=math.exp(0.1))),
        (od.Uniform(-1.0, 2.5), st.uniform(-1.0, 3.5)),
        (od.Uniform(0.5, 2.0), st.uniform(0.5, 1.5)),
    ],
    ids=lambda v: "scipy" if hasattr(v, "dist") else repr(v),  # no object addresses: stable ids across workers
)
def test_moments_match_quadrature_on_a_grid_of_orders_and_thresholds(dist, ref):
    lo_s, hi_s = ref.support()
    positive = lo_s >= 0
    powers = [0, 1, 2, 3, 4] + ([0.5, 1.5, -0.5] if positive else [])
    exps = [-1.5, -0.3, 0.2, 0.9] if not isinstance(dist, od.LogNormal) else [-1.5, -0.3]
    for t in [float(x) for x in ref.ppf([0.05, 0.4, 0.75, 0.97])]:
        for side in ("upper", "lower"):
            u, v = (t, hi_s) if side == "upper" else (lo_s, t)
            for p in powers:
                if isinstance(dist, od.Gamma) and p <= -dist.k:
                    continue
                want = _ref(ref, lambda x, p=p: x**p, u, v, (float(ref.median()),))
                got = partial_moment(dist, "power", p, t, side)
                assert got == pytest.approx(want, rel=1e-7, abs=1e-12), (p, t, side, got, want)
            for a in exps:
                if isinstance(dist, od.Gamma) and side == "upper" and a >= 1 / dist.scale:
                    continue
                want = _ref(ref, lambda x, a=a: math.exp(min(a * x, 700.0)), u, v, (float(ref.median()),))
                got = partial_moment(dist, "exp", a, t, side)
                assert got == pytest.approx(want, rel=1e-7, abs=1e-12), (a, t, side, got, want)


def test_hand_written_values():
    # Uniform(0, 2): E[X^2; X > 1] = (8 - 1) / 6, E[e^X; X < 1] = (e - 1) / 2, E[1/X; X > 1] = ln 2 / 2
    u = od.Uniform(0, 2)
    assert partial_moment(u, "power", 2, 1.0) == pytest.approx(7 / 6, rel=1e-14)
    assert partial_moment(u, "exp", 1.0, 1.0, "lower") == pytest.approx((math.e - 1) / 2, rel=1e-14)
    assert partial_moment(u, "exp", 0.0, 0.5, "lower") == pytest.approx(0.25, rel=1e-14)
    assert partial_moment(u, "power", -1, 1.0) == pytest.approx(math.log(2) / 2, rel=1e-14)
    assert partial_moment(od.Uniform(-3, -1), "power", -1, -2.0, "lower") == pytest.approx(
        (math.log(2) - math.log(3)) / 2, rel=1e-14
    )
    assert partial_moment(u, "power", 1, 3.0) == 0.0 and partial_moment(u, "power", 1, -1.0, "lower") == 0.0
    # Exponential(1): E[X; X > t] = (t + 1) e^-t; E[X^-0.5] = Gamma(0.5) = sqrt(pi)
    e = od.Exponential(1.0)
    assert partial_moment(e, "power", 1, 2.0) == pytest.approx(3 * math.exp(-2), rel=1e-13)
    assert partial_moment(e, "power", -0.5, 0.0) == pytest.approx(math.sqrt(math.pi), rel=1e-12)
    # Gamma(1, 1), p = -1 away from 0: E1(t) (exponential integral); p = -2: e^-t / t - E1(t)
    import scipy.special as sc

    assert partial_moment(e, "power", -1, 0.5) == pytest.approx(float(sc.exp1(0.5)), rel=1e-12)
    assert partial_moment(e, "power", -2, 0.5) == pytest.approx(math.exp(-0.5) / 0.5 - float(sc.exp1(0.5)), rel=1e-11)
    # Normal full moments: E X^3 for N(mu, s) = mu^3 + 3 mu s^2
    assert partial_moment(od.Normal(1.5, 2.0), "power", 3, -math.inf) == pytest.approx(1.5**3 + 3 * 1.5 * 4, rel=1e-13)
    assert partial_moment(od.Normal(1.5, 2.0), "power", 3, math.inf, "lower") == pytest.approx(21.375, rel=1e-13)
    assert partial_moment(od.Normal(1.5, 2.0), "power", 2, math.inf) == 0.0
    # LogNormal: E[X^p] = e^{p mu + p^2 s^2 / 2}; nothing above +inf, nothing below 0
    ln = od.LogNormal(0.3, 0.5)
    assert partial_moment(ln, "power", 2.0, 0.0) == pytest.approx(math.exp(0.6 + 0.5), rel=1e-13)
    assert partial_moment(ln, "power", 2.0, -1.0, "lower") == 0.0
    assert partial_moment(ln, "power", 2.0, math.inf) == 0.0
    assert partial_moment(ln, "exp", -1.0, math.inf) == 0.0 and partial_moment(ln, "exp", -1.0, 0.0, "lower") == 0.0
    assert partial_moment(ln, "exp", 0.0, 1.0) == pytest.approx(st.lognorm(0.5, scale=math.exp(0.3)).sf(1.0))
    assert partial_moment(ln, "exp", 0.5, math.inf) == 0.0
    assert partial_moment(ln, "exp", 0.5, math.inf, "lower") == math.inf  # the whole E e^{aX}, a > 0: no MGF
    ln_ref = st.lognorm(0.5, scale=math.exp(0.3))
    for t, side, u, v in ((1.0, "upper", 1.0, math.inf), (math.inf, "lower", 0.0, math.inf)):
        want = _ref(ln_ref, lambda x: math.exp(-x), u, v, (1.35,))
        assert partial_moment(ln, "exp", -1.0, t, side) == pytest.approx(want, rel=1e-9)
    # Normal partial moments by the recurrence: E[Z^2; Z > z] = z phi(z) + Q(z), E[Z^3; Z > z] = (z^2 + 2) phi(z)
    z = 0.7
    phi, q = st.norm.pdf(z), st.norm.sf(z)
    assert partial_moment(od.Normal(0, 1), "power", 2, z) == pytest.approx(z * phi + q, rel=1e-13)
    assert partial_moment(od.Normal(0, 1), "power", 3, z) == pytest.approx((z * z + 2) * phi, rel=1e-13)
    # Gamma: lower side of e^{aX} with a >= 1/theta (finite), and at t <= 0
    g = od.Gamma(2.0, 1.0)
    want = quad(lambda x: math.exp(1.5 * x) * x * math.exp(-x), 0, 2.0, epsrel=1e-13)[0]
    assert partial_moment(g, "exp", 1.5, 2.0, "lower") == pytest.approx(want, rel=1e-10)
    assert partial_moment(g, "exp", 1.0, 2.0, "lower") == pytest.approx(2.0, rel=1e-10)  # int x dx = t^2 / 2
    assert partial_moment(g, "exp", 0.5, 0.0, "lower") == 0.0 and partial_moment(g, "exp", 0.5, math.inf) == 0.0


def test_tail_mass_and_quantile_far_out():
    for d, ref in ((od.Normal(1, 2), st.norm(1, 2)), (od.Gamma(2.5, 1.5), st.gamma(2.5, scale=1.5))):
        for eps in (1e-4, 1e-40):
            assert tail_quantile(d, eps) == pytest.approx(float(ref.isf(eps)), rel=1e-12)
            assert tail_quantile(d, eps, "lower") == pytest.approx(float(ref.ppf(eps)), rel=1e-12)
        assert tail_mass(d, 3.0) == pytest.approx(float(ref.sf(3.0)), rel=1e-12)
        assert tail_mass(d, 3.0, "lower") == pytest.approx(float(ref.cdf(3.0)), rel=1e-12)
    for bad in (0, 1, 1.5, -0.1, "0.1"):
        with pytest.raises(od.DistError, match="eps"):
            tail_quantile(od.Normal(), bad)
    with pytest.raises(od.DistError, match="side"):
        tail_quantile(od.Normal(), 0.1, "left")
    with pytest.raises(od.DistError, match="exponent"):
        partial_moment(od.Normal(), "power", math.inf, 0.0)
    with pytest.raises(od.DistError, match="threshold"):
        partial_moment(od.Normal(), "power", 1, math.nan)
    with pytest.raises(od.DistError, match="closed forms"):
        partial_moment(od.Discrete([0.0, 1.0], [0.5, 0.5]), "power", 1, 0.0)


def test_divergent_moments_are_infinite_and_convergent_ones_finite():
    inf = math.inf
    assert partial_moment(od.Normal(3, 1), "power", -1, 0.0, "upper") == inf  # region touches 0
    assert partial_moment(od.Normal(3, 1), "power", -1, 0.0, "lower") == inf
    assert partial_moment(od.Normal(-3, 1), "power", -2, 0.5, "lower") == inf
    want = _ref(st.norm(-3, 1), lambda x: x**-2, -40.0, -0.5)
    assert partial_moment(od.Normal(-3, 1), "power", -2, -0.5, "lower") == pytest.approx(want, rel=1e-9)
    assert partial_moment(od.Uniform(0, 1), "power", -0.5, 0.5, "lower") == pytest.approx(math.sqrt(2) * 0.5 * 2)
    assert partial_moment(od.Uniform(-1, 1), "power", -2, 0.5, "upper") == pytest.approx((2 - 1) / 2)
    assert partial_moment(od.Uniform(-1, 1), "power", -0.5 * 2, -0.5, "upper") == inf
    assert (
        partial_moment(od.Gamma(2.0), "power", -2.0, 0.0) == inf
        and partial_moment(od.Gamma(2.0), "power", -2.0, 1.0) < inf
    )
