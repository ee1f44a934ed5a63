"""Mutation tests of opgraph.dcg.truncation, sixth pass (issue 13): survivors of the seed-15 sample.

References: the SciPy twins of the base laws (``(F(x) - F(lo)) / (F(hi) - F(lo))``), exact values where the
documented quantity is exact (a range that covers the support drops nothing).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import scipy.stats as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg.band import CdfBand
from opgraph.dcg.truncation import Truncated, domain_hint, dropped_mass, truncate_inputs, widen_band


@pytest.mark.parametrize(
    "law, lo, hi",
    [
        (od.Uniform(0.0, 1.0), -1.0, 2.0),  # the range covers the whole support
        (od.Uniform(0.0, 1.0), None, None),
        (od.Normal(0.0, 1.0), None, None),
        (od.Gamma(2.0, 1.0), -3.0, None),
    ],
)
def test_a_range_that_covers_the_support_drops_nothing(law, lo, hi):
    t = Truncated(law, lo, hi)
    assert t.mass_below == 0.0 and t.mass_above == 0.0
    assert t.dropped == 0.0  # "P(X < lo) + P(X > hi), rounded up": 0 rounds up to 0
    _, record = truncate_inputs({"x": law}, {"x": (lo, hi)})
    assert record["x"]["dropped"] == 0.0


def test_dropped_is_the_tail_masses_rounded_up_by_little():
    t = Truncated(od.Normal(0.0, 1.0), -2.0, 1.0)
    want = st.norm.cdf(-2.0) + st.norm.sf(1.0)
    assert want <= t.dropped <= want * (1 + 1e-8)
    assert dropped_mass({"x": {"dropped": t.dropped}}) >= t.dropped


@pytest.mark.parametrize(
    "law, ref, hi",
    [
        (od.Normal(1.0, 2.0), st.norm(1.0, 2.0), 0.5),  # open below, the range left of the median ("lower")
        (od.Normal(0.0, 1.0), st.norm(0.0, 1.0), 1.5),  # open below, the range across the median ("mid")
        (od.Normal(-1.0, 0.5), st.norm(-1.0, 0.5), 3.0),
    ],
)
def test_moments_of_a_range_open_below_against_quadrature(law, ref, hi):
    t = Truncated(law, None, hi)
    m = float(ref.cdf(hi))

    def quad(g, a, b):
        return integrate.quad(lambda x: g(x) * ref.pdf(x) / m, a, b, epsabs=1e-13, epsrel=1e-11, limit=200)[0]

    assert t.mean() == pytest.approx(quad(lambda x: x, -np.inf, hi), rel=1e-9, abs=1e-12)
    for c in (hi - 2.0, hi - 0.3, -1.2):
        if c < hi:
            want = quad(lambda x: x, -np.inf, c)
            assert float(t.partial_moment(c)) == pytest.approx(want, rel=1e-8, abs=1e-12), c


def test_widened_band_contains_the_exact_extreme_mixtures():
    # Cells of dyadic masses: the band's cumulative sums are exact, so its slack is 0. Widened by delta, the exact
    # law is (1 - delta) L + delta G for an unknown G: the extremes put G at -inf (F_up) and +inf (F_low). The
    # products keep * F and 1 - delta round: the widened band's slack must cover them, compared exactly.
    m = np.array([0.25, 0.25, 0.125, 0.375])
    lo = np.array([0.0, 1.0, 2.0, 3.0])
    b = CdfBand.from_cells(m, lo, lo + 0.5, slack=0.0)
    for delta in (0.1, 0.3, 1e-3, 0.7):
        w = widen_band(b, delta)
        d = Fraction(delta)
        for t in (-1.0, 0.0, 0.25, 0.5, 1.0, 2.75, 3.0, 3.5, 10.0):
            f_up = sum((Fraction(float(p)) for p, c in zip(m, lo, strict=True) if c <= t), Fraction(0))
            f_low = sum((Fraction(float(p)) for p, c in zip(m, lo + 0.5, strict=True) if c <= t), Fraction(0))
            got_lo, got_hi = w.cdf_bounds(t)
            assert Fraction(got_hi) >= min((1 - d) * f_up + d, Fraction(1)), (delta, t)
            assert Fraction(got_lo) <= (1 - d) * f_low, (delta, t)
        assert w.cdf_bounds(10.0)[1] == 1.0 and w.cdf_bounds(10.0)[0] == pytest.approx(1 - delta)


def _trace(f, *names):
    from opgraph.graph import trace

    return trace(f, *names)


def test_domain_hint_is_empty_when_nothing_is_unbounded():
    # "Empty when ... nothing is unbounded": 1 / x of x ~ U(0, 1) has an infinite enclosure (x reaches 0), and
    # cutting x's tails by mass would make it finite, but x has no tails to cut.
    g = _trace(lambda x: 1.0 / x, "x")
    assert domain_hint(g, {"x": od.Uniform(0.0, 1.0)}) == ""
    assert domain_hint(_trace(lambda x, y: x / y, "x", "y"), {"x": od.Normal(0, 1), "y": od.Uniform(0, 1)}) == ""
    # the same graph with an unbounded input that reaches 0 from above only through its tail gets a hint
    assert "truncate=" in domain_hint(g, {"x": od.Normal(8.0, 1.0)})


def test_domain_hint_for_an_output_unbounded_only_at_infinity_suggests_the_smallest_rung():
    # 2 x of x ~ N(0, 1): the enclosure is finite for every cut, infinite without one; the suggestion is the
    # smallest rung of the (decade) ladder, 1e-15, and at most 2e-15 is dropped.
    msg = domain_hint(_trace(lambda x: 2.0 * x + 1.0, "x"), {"x": od.Normal(0.0, 1.0)})
    assert "any cut of their tails makes it finite" in msg
    assert "truncate=1e-15 " in msg and "drop at most 2e-15 " in msg


def test_domain_hint_probability_counts_every_input_that_needs_the_cut():
    # log(x) + log(y), x ~ N(4, 1), y ~ N(5, 1): both need the cut, at the smallest p with a finite enclosure
    # (Phi(-4), set by x; y's quantile box is then inside (0, inf) too). The event "some input beyond its two p
    # tails" has probability 1 - (1 - 2p)^2, about 4 p: the hint's bound must not be below it.
    msg = domain_hint(
        _trace(lambda x, y: np.log(x) + np.log(y), "x", "y"), {"x": od.Normal(4.0, 1.0), "y": od.Normal(5.0, 1.0)}
    )
    p = float(msg.split("beyond their ")[1].split(" tail")[0])
    total = float(msg.split("probability <= ")[1].split(")")[0])
    assert "x, y fall beyond" in msg
    assert p == pytest.approx(st.norm.cdf(-4.0), rel=0.03)
    assert total >= 1 - (1 - 2 * p) ** 2
    assert total == pytest.approx(4 * st.norm.cdf(-4.0), rel=0.03)
