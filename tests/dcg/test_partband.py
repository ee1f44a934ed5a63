"""CDF bands of independent parts combined (opgraph.dcg.partband): lo <= exact CDF <= hi."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import disjoint, partband
from opgraph.dcg.band import CdfBand
from opgraph.dcg.disjoint import Part

T = np.linspace(-3.0, 3.0, 6001)


def _uniform_band(m: int, a: float = 0.0, b: float = 1.0) -> CdfBand:
    """The band of U(a, b) from m exact cells [a + k h, a + (k + 1) h] of mass 1 / m."""
    e = a + (b - a) * np.arange(m + 1) / m
    return CdfBand.from_cells(np.full(m, 1.0 / m), e[:-1], e[1:])


def _prod_cdf(s):  # P(U1 U2 <= s), U1, U2 ~ U(0, 1)
    s = np.clip(np.asarray(s, float), 1e-300, 1.0)
    return s - s * np.log(s)


def _sum_cdf(t):  # P(U1 + U2 <= t)
    t = np.clip(np.asarray(t, float), 0.0, 2.0)
    return np.where(t <= 1.0, t**2 / 2, 1.0 - (2.0 - t) ** 2 / 2)


def _contains(band, cdf, t=T, tol=1e-12):
    lo, hi = band.cdf_bounds(t)
    exact = cdf(t)
    assert np.all(lo <= exact + tol), float(np.max(lo - exact))
    assert np.all(exact <= hi + tol), float(np.max(exact - hi))
    return float(np.mean(hi - lo))


@pytest.mark.parametrize("n", [16, 256])
def test_sum_and_product_of_two_parts_contain_the_exact_cdf(n):
    a, b = Part("leaf"), Part("leaf")
    bands = {id(a): _uniform_band(50), id(b): _uniform_band(70)}
    w_sum = _contains(partband.combine(Part("sum", children=[a, b]), bands, n=n), _sum_cdf)
    w_prod = _contains(partband.combine(Part("prod", children=[a, b]), bands, n=n), _prod_cdf)
    assert w_sum < 0.1 and w_prod < 0.1  # a band, not [0, 1]


def test_coefficients_shifts_and_nesting():
    # Y = 1 - 2 U1 U2 (a product with coef -2 under a one-child sum with shift 1): P(Y <= t) = 1 - G((1 - t) / 2)
    a, b = Part("leaf"), Part("leaf")
    bands = {id(a): _uniform_band(64), id(b): _uniform_band(64)}
    tree = Part("sum", children=[Part("prod", children=[a, b], coef=-2.0)], shift=1.0)
    _contains(partband.combine(tree, bands, n=256), lambda t: 1.0 - _prod_cdf((1.0 - np.asarray(t)) / 2.0))
    # (U1 + U2) + U3 through a nested sum (re-sliced once): the exact CDF of the sum of three uniforms
    c = Part("leaf")
    bands[id(c)] = _uniform_band(64)

    def irwin_hall3(t):
        t = np.clip(np.asarray(t, float), 0.0, 3.0)
        return np.where(
            t <= 1, t**3 / 6, np.where(t <= 2, (-2 * t**3 + 9 * t**2 - 9 * t + 3) / 6, 1 - (3 - t) ** 3 / 6)
        )

    tree3 = Part("sum", children=[Part("sum", children=[a, b]), c])
    _contains(partband.combine(tree3, bands, n=256), irwin_hall3, t=np.linspace(-0.5, 3.5, 4001))


def test_narrower_is_inside_both_and_still_contains_the_exact_cdf():
    a, b = Part("leaf"), Part("leaf")
    fine = partband.combine(Part("sum", children=[a, b]), {id(a): _uniform_band(200), id(b): _uniform_band(200)})
    coarse = _uniform_band(5, 0.0, 1.0)  # U(0,1) is not this law: build a second valid band of U1 + U2 instead
    coarse = partband.combine(Part("sum", children=[a, b]), {id(a): coarse, id(b): _uniform_band(9)}, n=32)
    both = partband.narrower(fine, coarse)
    t = np.linspace(-0.5, 2.5, 3001)
    lo, hi = both.cdf_bounds(t)
    for x in (fine, coarse):
        xl, xh = x.cdf_bounds(t)
        assert np.all(lo >= xl - 1e-15) and np.all(hi <= xh + 1e-15)
    _contains(both, _sum_cdf, t)
    assert partband.narrower(None, fine) is fine and partband.narrower(fine, None) is fine


def _split(fn, laws, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, target_w1=target, progress=False)
    assert r.info["method"] == "disjoint split"
    return r


def test_split_band_from_parts_sum_of_squares():
    # U1^2 + U2^2: P(Y <= t) = the area of the disc of radius sqrt(t) inside the unit square
    def cdf(t):
        t = np.clip(np.asarray(t, float), 0.0, 2.0)
        c = np.sqrt(np.maximum(t - 1.0, 0.0))
        outer = c + t / 2 * (np.pi / 2 - 2 * np.arccos(np.minimum(1.0, 1.0 / np.sqrt(np.maximum(t, 1e-300)))))
        return np.where(t <= 1.0, np.pi * t / 4, np.minimum(outer, 1.0))

    r = _split(lambda x, y: x**2 + np.square(y), [od.Uniform(0, 1), od.Uniform(0, 1)], 3e-3)
    parts = disjoint.parts_band(r)
    t = np.linspace(-0.2, 2.2, 4801)
    w_parts = _contains(parts, cdf, t)
    w_kept = _contains(r.cdf_band(), cdf, t)  # the result's band: the grid run's intersected with the parts'
    assert w_kept <= w_parts + 1e-12
    assert w_parts < 0.02


def test_split_band_from_parts_product():
    r = _split(lambda x, y: x**2 * np.square(y), [od.Uniform(0, 1), od.Uniform(0, 1)], 2e-3)
    t = np.linspace(-0.1, 1.1, 2401)

    def cdf(t):  # U1^2 U2^2 = (U1 U2)^2
        t = np.asarray(t, float)
        return np.where(t <= 0, 0.0, _prod_cdf(np.sqrt(np.clip(t, 0.0, 1.0))))

    _contains(disjoint.parts_band(r), cdf, t)
    _contains(r.cdf_band(), cdf, t)


def test_ishigami_band_from_parts_is_narrower_than_the_grid_band():
    # no closed form: the band against 2^16 scrambled Sobol points (lo <= empirical CDF + 4 / sqrt(n) etc.)
    from scipy.stats import qmc

    def ish(x1, x2, x3):
        return np.sin(x1) + 7.0 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)

    u = od.Uniform(-math.pi, math.pi)
    r = _split(ish, [u, u, u], 1e-2 * 3.72)
    pts = qmc.Sobol(3, scramble=True, seed=5).random(2**16) * 2 * np.pi - np.pi
    y = np.sort(ish(*pts.T))
    t = np.linspace(-10.0, 17.0, 541)
    emp = np.searchsorted(y, t, side="right") / y.size
    lo, hi = r.cdf_band().cdf_bounds(t)
    tol = 4.0 / math.sqrt(y.size)
    assert np.all(lo <= emp + tol) and np.all(emp <= hi + tol)
    with pytest.MonkeyPatch.context() as mp:  # the grid run's band alone (as before)
        mp.setattr(disjoint, "parts_band", lambda res: None)
        g = _split(ish, [u, u, u], 1e-2 * 3.72).cdf_band()
    assert partband.mean_width(r.cdf_band(), -10.8, 17.8) < 0.5 * partband.mean_width(g, -10.8, 17.8)


def test_split_band_survives_an_explicit_truncation():
    # truncate= copies the result (dropped_mass set): the split's band source must travel with the copy, and the
    # band is widened by the dropped mass (its parts' bands enclose the truncated laws)
    from scipy.special import ndtri
    from scipy.stats import qmc

    def fn(x, y):
        return np.sin(x) + np.cos(y) ** 2

    laws = [od.Normal(0.0, 1.0), od.Normal(0.5, 0.7)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, target_w1=1e-3, truncate=1e-9, progress=False)
    assert r.info["method"] == "disjoint split" and r.dropped_mass > 0
    z = ndtri(qmc.Sobol(2, scramble=True, seed=3).random_base2(16))
    y = np.sort(fn(z[:, 0], 0.5 + 0.7 * z[:, 1]))
    t = np.linspace(-1.2, 2.2, 341)
    emp = np.searchsorted(y, t, side="right") / y.size
    lo, hi = r.cdf_bounds(t)
    tol = 4.0 / math.sqrt(y.size)
    assert np.all(lo <= emp + tol) and np.all(emp <= hi + tol)
    assert float(np.mean(hi - lo)) < 0.05
    assert np.all(hi - lo >= r.dropped_mass - 1e-15)  # widened by the dropped mass
