"""Mutation tests of opgraph.dcg.band against independent references (issue 13, fourth pass).

References: the Dempster-Shafer band written out cell by cell (``sum_c p_c 1{lo_c <= t}``), quantiles found by
scanning that brute-force CDF, areas ``sum_c p_c (hi_c - lo_c)``, exact ranges of linear and quadratic functions
on boxes, and the exact CDF of closed-form output laws.
"""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import scipy.stats as st

from opgraph import dcg as od
from opgraph.dcg.band import CdfBand, GridCells, mean_value_enclosure

matplotlib.use("Agg")


def _cells(seed: int, n: int, unbounded: bool = False):
    rng = np.random.default_rng(seed)
    m = rng.uniform(0.2, 1.0, n)
    m[rng.integers(0, n)] = 0.0  # a cell of zero mass changes nothing
    m /= m.sum()
    lo = np.round(rng.normal(0, 2, n), 1)  # rounded: many ties between cells
    hi = lo + np.round(rng.uniform(0, 1.5, n), 1)
    if unbounded:
        lo[0], hi[1], hi[2] = -np.inf, np.inf, np.nan
    return m, lo, hi


def _ds(m, lo, hi, t):
    """The band cell by cell: ``(F_low, F_up)`` at the points ``t``."""
    lo = np.where(np.isnan(lo), -np.inf, lo)
    hi = np.where(np.isnan(hi), np.inf, hi)
    return (m * (hi <= t[:, None])).sum(1), (m * (lo <= t[:, None])).sum(1)


@pytest.mark.parametrize("unbounded", [False, True])
def test_band_is_the_cellwise_band_at_every_point_and_jump(unbounded):
    m, lo, hi = _cells(1, 60, unbounded)
    b = CdfBand.from_cells(m, lo, hi, slack=0.0)
    fin = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
    t = np.unique(np.concatenate([fin, np.nextafter(fin, -np.inf), np.nextafter(fin, np.inf), [-50.0, 50.0]]))
    f_low, f_up = _ds(m, lo, hi, t)
    got_lo, got_hi = b.cdf_bounds(t)
    np.testing.assert_allclose(got_lo, f_low, atol=1e-13)
    np.testing.assert_allclose(got_hi, f_up, atol=1e-13)
    assert b.open_above == unbounded
    assert b.cells == 60 and not b.shrunk
    # scalar queries give the same numbers
    assert b.cdf_bounds(float(t[7])) == pytest.approx((got_lo[7], got_hi[7]), abs=1e-13)
    # the slack is added to F_up and taken from F_low (clipped to [0, 1])
    s = CdfBand.from_cells(m, lo, hi, slack=1e-3)
    s_lo, s_hi = s.cdf_bounds(t)
    np.testing.assert_allclose(s_hi, np.clip(f_up + 1e-3, 0, 1), atol=1e-13)
    np.testing.assert_allclose(s_lo, np.clip(f_low - 1e-3, 0, 1), atol=1e-13)


def test_bad_masses_are_refused_and_nan_query_too():
    for m in ([], [0.5, np.nan], [1.2, -0.2], [np.inf, 0.0]):
        with pytest.raises(od.DistError):
            CdfBand.from_cells(np.asarray(m, dtype=float), np.zeros(len(m)), np.ones(len(m)))
    b = CdfBand.from_cells([0.5, 0.5], [0.0, 1.0], [1.0, 2.0])
    with pytest.raises(od.DistError):
        b.cdf_bounds([0.0, np.nan])


@pytest.mark.parametrize("steps", [1, 3, 7, 20])
def test_shrinking_contains_the_band_and_loses_at_most_one_group(steps):
    m, lo, hi = _cells(2, 200)
    b = CdfBand.from_cells(m, lo, hi, slack=0.0, max_steps=10**6)
    small = CdfBand.from_cells(m, lo, hi, slack=0.0, max_steps=steps)
    assert small.shrunk and small.up_x.size <= steps and small.low_x.size <= steps
    t = np.linspace(-8, 8, 4001)
    f_low, f_up = _ds(m, lo, hi, t)
    s_lo, s_hi = small.cdf_bounds(t)
    assert np.all(s_hi >= f_up - 1e-13) and np.all(s_lo <= f_low + 1e-13)
    # A group holds about 1 / steps of the mass (plus one step): the shrunk band is no wider than that.
    group = 1.0 / steps + max(np.diff(b.up_p).max(), np.diff(b.low_p).max(), b.up_p[0], b.low_p[0]) + 1e-12
    assert np.max(s_hi - f_up) <= group and np.max(f_low - s_lo) <= group
    # both ends reach the full mass at the same place as the band
    assert small.up_p[-1] == pytest.approx(b.up_p[-1]) and small.low_p[-1] == pytest.approx(b.low_p[-1])
    assert small.up_x[0] == b.up_x[0] and small.low_x[-1] == b.low_x[-1]
    again = b.shrink(steps)
    np.testing.assert_array_equal(again.up_x, small.up_x)
    np.testing.assert_array_equal(again.low_x, small.low_x)
    assert b.shrink(10**6).shrunk is False


def _brute_quantiles(m, lo, hi, q):
    """``[min{t: F_up(t) >= q}, inf{t: F_low(t) > q}]`` by scanning the cell ends."""
    f_low_at = lambda t: _ds(m, lo, hi, np.array([t]))[0][0]  # noqa: E731
    f_up_at = lambda t: _ds(m, lo, hi, np.array([t]))[1][0]  # noqa: E731
    ends_lo = np.sort(np.unique(np.where(np.isnan(lo), -np.inf, lo)[m > 0]))
    ends_hi = np.sort(np.unique(hi[np.isfinite(hi) & (m > 0)]))
    a = next((x for x in ends_lo if f_up_at(x) >= q), math.inf)
    b = next((x for x in ends_hi if f_low_at(x) > q), math.inf)
    return a, b


@pytest.mark.parametrize("unbounded", [False, True])
def test_quantile_bounds_match_the_brute_force_definition(unbounded):
    m, lo, hi = _cells(3, 40, unbounded)
    b = CdfBand.from_cells(m, lo, hi, slack=0.0)
    qs = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    got_lo, got_hi = b.quantile_bounds(qs)
    for q, gl, gh in zip(qs, got_lo, got_hi, strict=True):
        want = _brute_quantiles(m, lo, hi, q)
        assert (gl, gh) == pytest.approx(want), q
        assert b.quantile_bounds(float(q)) == pytest.approx(want)
        assert b.quantile_width(float(q)) == pytest.approx(want[1] - want[0]) if math.isfinite(want[1]) else True
    np.testing.assert_allclose(b.quantile_width(qs[:2]), got_hi[:2] - got_lo[:2])
    t = np.array([-1.0, 0.3, 2.0])
    f_low, f_up = _ds(m, lo, hi, t)
    np.testing.assert_allclose(b.width(t), f_up - f_low, atol=1e-13)
    assert b.width(0.3) == pytest.approx(f_up[1] - f_low[1])
    for q in (0.0, 1.0, -0.1):
        with pytest.raises(od.DistError):
            b.quantile_bounds(q)


def test_quantile_bounds_widen_by_the_slack():
    b = CdfBand.from_cells([0.5, 0.5], [0.0, 2.0], [1.0, 3.0], slack=0.0)
    assert b.quantile_bounds(0.5) == (0.0, 3.0)  # F_up(0) = 0.5 >= 0.5; F_low(1) = 0.5 is not > 0.5
    assert b.quantile_bounds(0.6) == (2.0, 3.0)
    s = CdfBand.from_cells([0.5, 0.5], [0.0, 2.0], [1.0, 3.0], slack=0.2)
    assert s.quantile_bounds(0.6) == (0.0, 3.0)  # F_up + 0.2 reaches 0.6 at 0
    assert s.quantile_bounds(0.35) == (0.0, 3.0)  # F_low - 0.2 is 0.3 on [1, 3): first above 0.35 at 3
    assert s.quantile_bounds(0.25) == (0.0, 1.0)
    assert s.quantile_bounds(0.85) == (2.0, math.inf)  # F_low - 0.2 never exceeds 0.8


def test_area_support_and_point():
    m, lo, hi = _cells(4, 30)
    b = CdfBand.from_cells(m, lo, hi)
    assert b.area() == pytest.approx(float(m @ (hi - lo)), rel=1e-12)
    assert b.support == (lo[m > 0].min(), hi[m > 0].max())
    mu, lu, hu = _cells(4, 30, unbounded=True)
    bu = CdfBand.from_cells(mu, lu, hu)
    assert bu.area() == math.inf and bu.support == (-math.inf, math.inf)
    only_low = CdfBand.from_cells([0.5, 0.5], [0.0, 1.0], [np.inf, 2.0])
    assert only_low.area() == math.inf and only_low.support == (0.0, math.inf)
    lo_inf = CdfBand.from_cells([0.5, 0.5], [-np.inf, 1.0], [1.0, 2.0])
    assert lo_inf.area() == math.inf and lo_inf.support == (-math.inf, 2.0)
    p = CdfBand.point(2.5)
    assert p.area() == 0.0 and p.support == (2.5, 2.5) and not p.shrunk and p.cells == 1
    assert p.cdf_bounds(2.5) == (1.0, 1.0) and p.cdf_bounds(2.4) == (0.0, 0.0)
    assert GridCells.point(2.5).band().support == (2.5, 2.5)


def test_grid_cells_mass_is_the_outer_product_and_band_uses_it():
    w = (np.array([0.2, 0.8]), np.array([0.1, 0.3, 0.6]))
    lo = np.arange(6.0).reshape(2, 3)
    hi = lo + 0.5
    g = GridCells(w, lo, hi)
    assert g.size == 6
    np.testing.assert_allclose(g.mass(), np.outer(w[0], w[1]), rtol=1e-15)
    b = g.band()
    t = np.linspace(-1, 7, 81)
    f_low, f_up = _ds(np.outer(w[0], w[1]).reshape(-1), lo.reshape(-1), hi.reshape(-1), t)
    got_lo, got_hi = b.cdf_bounds(t)
    assert np.all(got_hi >= f_up) and np.all(got_hi <= f_up + 1e-12)
    assert np.all(got_lo <= f_low) and np.all(got_lo >= f_low - 1e-12)


def test_repr_and_plot():
    b = CdfBand.from_cells([0.25] * 4, [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    text = repr(b)
    for q in (0.05, 0.5, 0.95):
        lo, hi = b.quantile_bounds(q)
        assert f"q{int(100 * q):02d} in [{lo:.4g}, {hi:.4g}]" in text
    assert "4 cells" in text and "shrunk" not in text
    import matplotlib.pyplot as plt

    ax = b.plot()  # a fresh axis: from the 0.1 % to the 99.9 % quantile bounds (it raised a TypeError before)
    assert ax.has_data()
    xs = np.concatenate([p.vertices[:, 0] for p in ax.collections[0].get_paths()])
    assert xs.min() == pytest.approx(b.quantile_bounds(1e-3)[0]) and xs.max() == pytest.approx(4.0)
    fig, ax2 = plt.subplots()
    ax2.set_xlim(-2.0, 6.0)
    ax2.plot([-2.0, 6.0], [0.0, 1.0])
    assert b.plot(ax2) is ax2
    plt.close("all")


# -- the mean-value enclosure -----------------------------------------------------------------------------------
def test_mean_value_enclosure_is_exact_for_linear_functions():
    rng = np.random.default_rng(5)
    xl = rng.uniform(-3, 1, 50)
    xh = xl + rng.uniform(0, 2, 50)
    yl = rng.uniform(-1, 2, 50)
    yh = yl + rng.uniform(0, 1, 50)
    ax, ay = xl + 0.3 * (xh - xl), yl + 0.6 * (yh - yl)
    pt = 2 * ax - 3 * ay
    two, three = np.full(50, 2.0), np.full(50, -3.0)
    lo, hi = mean_value_enclosure(pt, [(two, two, xl, ax, xh), (three, three, yl, ay, yh)])
    np.testing.assert_allclose(lo, 2 * xl - 3 * yh, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hi, 2 * xh - 3 * yl, rtol=1e-12, atol=1e-12)
    assert np.all(lo <= 2 * xl - 3 * yh) and np.all(hi >= 2 * xh - 3 * yl)


def test_mean_value_enclosure_contains_a_quadratic_and_is_tight_at_the_ends():
    # f(x) = x**2 on [l, h] around the atom a: derivative in [2 l, 2 h].
    l, h = np.array([-1.0, 0.5, -2.0]), np.array([2.0, 1.5, -1.0])
    a = np.array([0.0, 1.0, -1.5])
    lo, hi = mean_value_enclosure(a * a, [(2 * l, 2 * h, l, a, h)])
    xs = np.linspace(l, h, 2001)
    assert np.all(lo <= (xs * xs).min(0)) and np.all(hi >= (xs * xs).max(0))
    # by hand: a^2 + [min(2l (h - a), 2h (l - a)), max(2h (h - a), 2l (l - a))], each clipped at 0
    want_lo = a * a + np.minimum(np.minimum(2 * l * (h - a), 2 * h * (l - a)), 0)
    want_hi = a * a + np.maximum(np.maximum(2 * h * (h - a), 2 * l * (l - a)), 0)
    np.testing.assert_allclose(lo, want_lo, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(hi, want_hi, rtol=1e-12, atol=1e-12)
    # zero derivative times an unbounded offset moves nothing; NaN values become the whole line
    lo2, hi2 = mean_value_enclosure(np.array([1.0, np.nan]), [(np.zeros(2), np.zeros(2), -np.inf, 0.0, np.inf)])
    assert lo2[0] == pytest.approx(1.0) and hi2[0] == pytest.approx(1.0)
    assert lo2[1] == -np.inf and hi2[1] == np.inf


# -- end to end: the exact CDF lies in the band, and the band is not much wider than it must be -----------------
def test_band_of_a_normal_sum_contains_the_exact_cdf_and_is_narrow():
    r = od.evaluate(lambda x, y: 2 * x - y, od.Normal(0, 1), od.Normal(1, 0.5), atoms=24)
    band = r.cdf_band()
    exact = st.norm(-1.0, math.sqrt(4.25))
    t = np.linspace(-9, 7, 1601)
    lo, hi = band.cdf_bounds(t)
    f = exact.cdf(t)
    assert np.all(lo <= f + 1e-12) and np.all(f <= hi + 1e-12)
    # the median lies in its quantile interval, which is narrow in the middle of the law
    qlo, qhi = band.quantile_bounds(0.5)
    assert qlo <= exact.median() <= qhi and qhi - qlo < 1.0
    # unbounded tail cells: the band never reaches 0 or 1 (F_up > 0 everywhere, F_low < 1)
    assert band.open_above and band.support == (-math.inf, math.inf) and band.area() == math.inf
    assert np.all(hi > 0) and np.all(lo < 1)
