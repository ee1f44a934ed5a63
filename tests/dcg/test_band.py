"""Certified CDF bands: never exclude the exact CDF (closed forms, quadrature), and as narrow as the cells allow."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg import switches
from opgraph.dcg.band import CdfBand, GridCells

SETTINGS = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-9  # probability tolerance of the reference CDFs (quadrature, special functions)
EXACT = 10**9  # max_steps that keeps every cell (no shrinking)


def _contains(r, cdf, ts, tol=TOL):
    lo, hi = r.cdf_bounds(ts)
    f = cdf(ts)
    assert np.all(lo <= f + tol), float(np.max(lo - f))
    assert np.all(f <= hi + tol), float(np.max(f - hi))


def _quantiles_contained(r, ppf, qs=(0.01, 0.05, 0.3, 0.5, 0.7, 0.95, 0.99), tol=1e-9):
    lo, hi = r.quantile_bounds(np.array(qs))
    x = np.array([ppf(q) for q in qs])
    scale = 1.0 + np.abs(x)
    assert np.all(lo <= x + tol * scale) and np.all(x <= hi + tol * scale), (lo, x, hi)


def _area(band, a, b):
    """int_a^b (F_up - F_low) dt of a band without its rounding slack (exact: the band is piecewise constant)."""
    xs = np.unique(np.concatenate([[a, b], band.up_x, band.low_x]))
    xs = xs[(xs >= a) & (xs <= b)]
    lo, hi = band.cdf_bounds(xs[:-1])
    width = np.maximum(hi - lo - 2 * band.slack, 0.0)
    return float(np.sum(width * np.diff(xs)))


def _cells_area(lo, hi, p, a, b):
    """sum_c p_c |[lo_c, hi_c] intersected with [a, b]|: what the band's area over [a, b] must not exceed."""
    return float(np.sum(p * np.maximum(np.minimum(hi, b) - np.maximum(lo, a), 0.0)))


def _grid(qs):
    """Cell ends and masses of the joint grid of independent quantized inputs (one grid axis per input)."""
    k = len(qs)
    shape = [1] * k
    out = []
    for i, q in enumerate(qs):
        s = list(shape)
        s[i] = -1
        out.append((q.lo.reshape(s), q.hi.reshape(s), q.weights.reshape(s)))
    p = np.ones(())
    for _, _, w in out:
        p = p * w
    return out, p


def _quantized(r, dists):
    methods = list(r.info["quantizers"].values())
    return [d.quantize(n, m) for d, n, m in zip(dists, r.info["atoms_per_input"].values(), methods, strict=True)]


# ---------------------------------------------------------------------------------------------------------------
# The band of given cells
# ---------------------------------------------------------------------------------------------------------------
@hs.composite
def cell_sets(draw):
    n = draw(hs.integers(1, 60))
    centers = np.array(draw(hs.lists(hs.floats(-5, 5), min_size=n, max_size=n)))
    widths = np.array(draw(hs.lists(hs.floats(0, 2), min_size=n, max_size=n)))
    split = np.array(draw(hs.lists(hs.floats(0, 1), min_size=n, max_size=n)))
    m = np.array(draw(hs.lists(hs.floats(0.01, 1), min_size=n, max_size=n)))
    lo, hi = centers - split * widths, centers + (1 - split) * widths
    k_inf = draw(hs.integers(0, 2))
    lo[:k_inf] = -np.inf
    hi[n - draw(hs.integers(0, min(2, n))) :] = np.inf
    return m / m.sum(), lo, hi, split


@SETTINGS
@given(cells=cell_sets(), steps=hs.integers(1, 12))
def test_band_of_cells_is_the_dempster_shafer_band_and_shrinking_keeps_it(cells, steps):
    m, lo, hi, split = cells
    band = CdfBand.from_cells(m, lo, hi, max_steps=EXACT)
    small = band.shrink(steps)
    assert small.up_x.size <= steps and small.low_x.size <= steps
    ts = np.unique(np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)], np.linspace(-8, 8, 33)]))
    ts = np.concatenate([ts, np.nextafter(ts, -np.inf)])
    f_up = (m[None, :] * (lo[None, :] <= ts[:, None])).sum(1)
    f_low = (m[None, :] * (hi[None, :] <= ts[:, None])).sum(1)
    b_lo, b_hi = band.cdf_bounds(ts)
    assert np.allclose(b_lo, np.clip(f_low, 0, 1), atol=1e-12) and np.allclose(b_hi, np.clip(f_up, 0, 1), atol=1e-12)
    s_lo, s_hi = small.cdf_bounds(ts)
    assert np.all(s_lo <= b_lo) and np.all(s_hi >= b_hi)
    # A law inside the structure (each cell's mass at one point of the cell) lies in the band, and so do its
    # quantiles in the quantile bounds.
    with np.errstate(invalid="ignore"):
        inner = lo + split * (hi - lo)
    pts = np.where(np.isfinite(inner), inner, np.where(np.isfinite(lo), lo, hi) - 1)
    pts = np.where(np.isfinite(pts), pts, 0.0)
    pts = np.clip(pts, lo, hi)
    law = od.Discrete(pts, m)
    for b in (band, small):
        lo_t, hi_t = b.cdf_bounds(ts)
        assert np.all(lo_t <= law.cdf(ts) + 1e-12) and np.all(law.cdf(ts) <= hi_t + 1e-12)
        for q in (0.1, 0.37, 0.5, 0.9):
            ql, qh = b.quantile_bounds(q)
            c = np.cumsum(law.probs)
            x = law.values[min(np.searchsorted(c, q - 1e-12), c.size - 1)]
            assert ql <= x <= qh, (q, ql, x, qh)


def test_band_json_round_trip_and_errors(tmp_path):
    band = CdfBand.from_cells([0.25, 0.5, 0.25], [-np.inf, 0.0, 1.0], [0.5, 1.0, np.inf], max_steps=EXACT)
    path = band.save(tmp_path / "band.json")
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    back = CdfBand.load(path)
    for a in ("up_x", "up_p", "low_x", "low_p"):
        assert np.array_equal(getattr(back, a), getattr(band, a))
    assert band.cdf_bounds(0.7) == pytest.approx((0.25, 0.75), abs=1e-12)
    assert band.cdf_bounds(-1e300) == pytest.approx((0.0, 0.25), abs=1e-12)
    assert band.quantile_bounds(0.5) == (0.0, 1.0)
    assert band.quantile_bounds(0.9) == (1.0, math.inf)
    assert band.area() == math.inf
    assert band.support == (-math.inf, math.inf) and band.open_above and back.open_above
    assert band.width(0.7) == pytest.approx(0.5, abs=1e-12)
    with pytest.raises(od.DistError, match="strictly between 0 and 1"):
        band.quantile_bounds(1.0)
    with pytest.raises(od.DistError, match="nan"):
        band.cdf_bounds(np.nan)


# ---------------------------------------------------------------------------------------------------------------
# Against exact output laws
# ---------------------------------------------------------------------------------------------------------------
@SETTINGS
@given(
    mus=hs.lists(hs.floats(-3, 3), min_size=1, max_size=3),
    sig=hs.lists(hs.floats(0.1, 3), min_size=3, max_size=3),
    coef=hs.lists(hs.floats(-3, 3).filter(lambda c: abs(c) > 1e-2), min_size=3, max_size=3),
    shift=hs.floats(-5, 5),
    atoms=hs.sampled_from([4, 9, 16, 33, 64]),
    quant=hs.sampled_from(["quantile", "meansplit", "auto"]),
)
def test_sums_of_normals(mus, sig, coef, shift, atoms, quant):
    k = len(mus)
    dists = [od.Normal(m, s) for m, s in zip(mus, sig, strict=False)]
    c = coef[:k]
    fns = {
        1: lambda x: c[0] * x + shift,
        2: lambda x, y: c[0] * x + c[1] * y + shift,
        3: lambda x, y, z: c[0] * x + c[1] * y + c[2] * z + shift,
    }
    r = od.evaluate(fns[k], *dists, atoms=atoms, quantizer=quant)
    exact = st.norm(
        sum(ci * m for ci, m in zip(c, mus, strict=False)) + shift,
        math.sqrt(sum((ci * s) ** 2 for ci, s in zip(c, sig, strict=False))),
    )
    ts = exact.ppf(np.linspace(1e-6, 1 - 1e-6, 301))
    _contains(r, exact.cdf, ts)
    _quantiles_contained(r, exact.ppf)
    # Narrow: over the central 98%, the band's area is what the cells give (sum of |c_i| x cell widths).
    axes, p = _grid(_quantized(r, dists))
    lo = sum(np.minimum(ci * a_lo, ci * a_hi) for ci, (a_lo, a_hi, _) in zip(c, axes, strict=False)) + shift
    hi = sum(np.maximum(ci * a_lo, ci * a_hi) for ci, (a_lo, a_hi, _) in zip(c, axes, strict=False)) + shift
    a, b = exact.ppf(0.01), exact.ppf(0.99)
    band = r.cdf_band(max_steps=EXACT)
    assert _area(band, a, b) <= _cells_area(lo, hi, p, a, b) * (1 + 1e-9) + 1e-12 * (b - a)
    # The default (shrunk) band contains the exact-cell band.
    ts2 = np.linspace(a, b, 997)
    lo_s, hi_s = r.cdf_bounds(ts2)
    lo_e, hi_e = band.cdf_bounds(ts2)
    assert np.all(lo_s <= lo_e) and np.all(hi_s >= hi_e)


def _irwin_hall(n):
    def cdf(t):
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        for k in range(n + 1):
            out += (-1) ** k * math.comb(n, k) * np.where(t > k, t - k, 0.0) ** n
        return np.clip(out / math.factorial(n), 0, 1)

    return cdf


@SETTINGS
@given(n=hs.integers(1, 3), atoms=hs.sampled_from([3, 8, 16, 50]), quant=hs.sampled_from(["quantile", "meansplit"]))
def test_uniform_sums_irwin_hall(n, atoms, quant):
    fns = {1: lambda x: x, 2: lambda x, y: x + y, 3: lambda x, y, z: x + y + z}
    dists = [od.Uniform(0, 1) for _ in range(n)]
    r = od.evaluate(fns[n], *dists, atoms=atoms, quantizer=quant)
    ts = np.concatenate([np.linspace(-0.1, n + 0.1, 401), np.arange(n + 1.0)])
    _contains(r, _irwin_hall(n), ts)
    # Bounded cells: the band's whole area is sum_c p_c (hi_c - lo_c) = the sum of the inputs' mean cell widths.
    qs = _quantized(r, dists)
    expected = sum(float(q.weights @ (q.hi - q.lo)) for q in qs)
    area = r.cdf_band(max_steps=EXACT).area()
    assert area == pytest.approx(expected, rel=1e-9)
    lo_s, hi_s = r.cdf_band().support
    assert -1e-12 <= lo_s <= 1e-12 and n - 1e-12 <= hi_s <= n + 1e-12
    assert r.cdf_band().area() <= expected * (1 + 1e-3) + 1e-9  # shrunk: at most slightly wider


def test_uniform_sum_through_compressions_stays_valid():
    dists = [od.Uniform(0, 1) for _ in range(6)]

    def f(a, b, c, d, e, g):
        return a + b + c + d + e + g

    widths = []
    for compress, max_joint in ((64, 2**12), (256, 2**16)):
        # the box-linear mixture off: with its smoothed rounding the halved request's uncompressed mixture answers
        # here (0.0031 against the compressed grid's 0.0059 at 256 atoms), and this test's subject is the compressed path
        with switches.scope({"box_linear": False}):
            r = od.evaluate(f, *dists, atoms=32, max_joint=max_joint, compress_atoms=compress)
        assert r.info["compressions"], "this test needs the compressed path"
        _contains(r, _irwin_hall(6), np.linspace(-0.1, 6.1, 2001))
        band = r.cdf_band()
        assert math.isfinite(band.area())
        widths.append(band.quantile_width([0.05, 0.5, 0.95]))
    # Hulls of groups widen the band (the exact grid's area would be 6 / 32), but it stays informative (below the
    # output's std) and narrows as the compressed nodes get more atoms.
    assert np.all(widths[0] < math.sqrt(6 / 12))
    assert np.all(widths[1] < widths[0])


@SETTINGS
@given(mu=hs.floats(-1, 1), sigma=hs.floats(0.1, 1.5), atoms=hs.sampled_from([8, 64, 256]))
def test_exp_of_normal_is_lognormal(mu, sigma, atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        r = od.evaluate(lambda x: np.exp(x), od.Normal(mu, sigma), atoms=atoms)
    exact = st.lognorm(sigma, scale=math.exp(mu))
    ts = exact.ppf(np.linspace(1e-6, 1 - 1e-6, 401))
    _contains(r, exact.cdf, ts)
    _quantiles_contained(r, exact.ppf)
    (axes, p) = _grid(_quantized(r, [od.Normal(mu, sigma)]))
    a, b = exact.ppf(0.01), exact.ppf(0.99)
    lo, hi = np.exp(axes[0][0]), np.exp(axes[0][1])
    assert _area(r.cdf_band(max_steps=EXACT), a, b) <= _cells_area(lo, hi, p, a, b) * (1 + 1e-9) + 1e-12


def _product_cdf(a, b, m, s):
    """P(X Y <= t) for X ~ U(a, b), a > 0, and Y ~ N(m, s): int Phi((t / x - m) / s) dx / (b - a)."""

    def cdf(ts):
        out = []
        for t in np.atleast_1d(ts):
            v = integrate.quad(lambda x, t=t: st.norm.cdf((t / x - m) / s), a, b, epsabs=1e-13, epsrel=1e-12)[0]
            out.append(v / (b - a))
        return np.array(out)

    return cdf


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    a=hs.floats(0.2, 2),
    w=hs.floats(0.1, 3),
    m=hs.floats(-2, 2),
    s=hs.floats(0.2, 2),
    atoms=hs.sampled_from([8, 32, 128]),
)
def test_product_uniform_times_normal(a, w, m, s, atoms):
    b = a + w
    dists = [od.Uniform(a, b), od.Normal(m, s)]
    r = od.evaluate(lambda x, y: x * y, *dists, atoms=atoms)
    cdf = _product_cdf(a, b, m, s)
    ref = np.sort(np.random.default_rng(0).uniform(a, b, 20_000) * np.random.default_rng(1).normal(m, s, 20_000))
    ts = np.quantile(ref, np.linspace(0.002, 0.998, 41))
    _contains(r, cdf, ts)
    # Narrow: the band's area over the central part is what the cells' interval products give.
    (ax, ay), p = _grid(_quantized(r, dists))
    corners = [x * y for x in (ax[0], ax[1]) for y in (ay[0], ay[1])]
    lo, hi = np.minimum.reduce(corners), np.maximum.reduce(corners)
    lo_t, hi_t = ts[0], ts[-1]
    assert _area(r.cdf_band(max_steps=EXACT), lo_t, hi_t) <= _cells_area(lo, hi, p, lo_t, hi_t) * (1 + 1e-9) + 1e-12


def test_product_of_normals_by_quadrature():
    r = od.evaluate(lambda x, y: x * y, od.Normal(0.5, 1.0), od.Normal(1.0, 0.5), atoms=128)

    def cdf(ts):
        out = []
        for t in ts:
            pos = integrate.quad(
                lambda x, t=t: st.norm.pdf(x, 0.5, 1) * st.norm.cdf((t / x - 1) / 0.5), 0, np.inf, epsabs=1e-13
            )
            neg = integrate.quad(
                lambda x, t=t: st.norm.pdf(x, 0.5, 1) * st.norm.sf((t / x - 1) / 0.5), -np.inf, 0, epsabs=1e-13
            )
            out.append(pos[0] + neg[0])
        return np.array(out)

    ts = np.linspace(-3, 4, 29)
    _contains(r, cdf, ts, tol=1e-8)
    assert np.all(r.cdf_band().width(ts) < 0.08)


def test_max_of_uniforms_grid_free_path():
    r = od.evaluate(lambda x, y: np.maximum(x, y), od.Uniform(0, 1), od.Uniform(0, 1), atoms=64)
    assert r.info["extremes"], "this test needs the grid-free max path"
    ts = np.linspace(-0.1, 1.1, 1201)
    _contains(r, lambda t: np.clip(t, 0, 1) ** 2, ts)
    assert r.cdf_band().area() <= 2.5 / 64


# ---------------------------------------------------------------------------------------------------------------
# Shared inputs: exact dependence
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dist", [od.Normal(1, 0.1), od.Uniform(-1, 2), od.LogNormal(0, 0.5)])
def test_x_minus_x_is_a_step_at_zero(dist):
    r = od.evaluate(lambda x: x - x, dist, atoms=64)
    lo, hi = r.cdf_bounds([-1e-300, 0.0])
    assert hi[0] <= 1e-9 and lo[1] >= 1 - 1e-9
    qlo, qhi = r.quantile_bounds([0.05, 0.5, 0.95])
    assert np.all(qlo == 0.0) and np.all(qhi == 0.0)


@pytest.mark.parametrize("atoms", [16, 64])
def test_x_plus_x_is_two_x(atoms):
    d = od.Normal(1, 0.1)
    r = od.evaluate(lambda x: x + x, d, atoms=atoms)
    exact = st.norm(2, 0.2)
    _contains(r, exact.cdf, exact.ppf(np.linspace(1e-6, 1 - 1e-6, 301)))
    (axes, p) = _grid(_quantized(r, [d]))
    a, b = exact.ppf(0.01), exact.ppf(0.99)
    expected = _cells_area(2 * axes[0][0], 2 * axes[0][1], p, a, b)
    assert _area(r.cdf_band(max_steps=EXACT), a, b) <= expected * (1 + 1e-9) + 1e-12


@settings(max_examples=10, deadline=None, derandomize=True)
@given(a=hs.floats(0.5, 5), b=hs.floats(0.5, 5), atoms=hs.sampled_from([16, 64, 128]))
def test_gamma_share_is_beta(a, b, atoms):
    # X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b) independent is Beta(a, b) exactly (X used twice, unbounded).
    r = od.evaluate(lambda x, y: x / (x + y), od.Gamma(a, 1.0), od.Gamma(b, 1.0), atoms=atoms)
    exact = st.beta(a, b)
    _contains(r, exact.cdf, np.linspace(-0.01, 1.01, 409))
    _quantiles_contained(r, exact.ppf)
    # Informative where the tail cells hold little mass: the mean-value form keeps the cells of x / (x + y)
    # narrow (the natural form gives [lo_x / (hi_x + hi_y), hi_x / (lo_x + lo_y)]).
    if atoms >= 64:
        assert np.all(r.cdf_band().quantile_width([0.05, 0.5, 0.95]) < 8.0 / atoms)


def test_quadratic_with_a_shared_input_uses_the_mean_value_form():
    # Y = X^2 - X, X ~ U(0, 1): P(Y <= t) = sqrt(1 + 4 t) on [-1/4, 0].
    r = od.evaluate(lambda x: x * x - x, od.Uniform(0, 1), atoms=64, quantizer="quantile")
    ts = np.linspace(-0.3, 0.05, 701)
    _contains(r, lambda t: np.sqrt(np.clip(1 + 4 * t, 0, 1)), ts)
    q = od.Uniform(0, 1).quantize(64, "quantile")
    natural = float(q.weights @ ((q.hi**2 - q.lo**2) + (q.hi - q.lo)))  # [l^2 - h, h^2 - l] per cell
    assert r.cdf_band().area() <= 0.5 * natural


def test_compressed_nodes_with_a_reused_input_keep_narrow_cells():
    # Y = sum of (X_i^2 - X_i), X_i ~ U(0, 1): each X_i is used twice upstream of the compressed partial sum.
    # P(Y <= t) = int_0^1 int_0^1 F(t - (u^2 - 1) / 4 - (v^2 - 1) / 4) du dv with F(s) = sqrt(1 + 4 s) on [-1/4, 0].
    def f1(s):
        return math.sqrt(min(max(1 + 4 * s, 0.0), 1.0))

    def cdf(ts):
        out = []
        for t in ts:
            inner = lambda u, t=t: integrate.quad(  # noqa: E731
                lambda v: f1(t - (u * u - 1) / 4 - (v * v - 1) / 4), 0, 1, epsabs=1e-11, limit=200
            )[0]
            out.append(integrate.quad(inner, 0, 1, epsabs=1e-10, limit=200)[0])
        return np.array(out)

    def g(a, b, c):
        return (a * a - a) + (b * b - b) + (c * c - c)

    dists = [od.Uniform(0, 1) for _ in range(3)]
    # the compressed grid's own band: with the box-linear mixture the halved request's whole grid would answer
    with switches.scope({"box_linear": False}):
        full = od.evaluate(g, *dists, atoms=64)
        comp = od.evaluate(g, *dists, atoms=64, max_joint=2**12, compress_atoms=64)
    assert not full.info["compressions"] and comp.info["compressions"]
    ts = np.linspace(-0.74, 0.01, 10)
    _contains(comp, cdf, ts)
    # The compressed node's cells are hulls of mean-value enclosures, not of the loose natural ones
    # ([l^2 - h, h^2 - l] per input cell): the band stays within 2x of the uncompressed grid's.
    levels = [0.05, 0.5, 0.95]
    assert np.all(comp.cdf_band().quantile_width(levels) <= 2 * full.cdf_band().quantile_width(levels))


@hs.composite
def expressions(draw, depth=3):
    if depth == 0 or (draw(hs.booleans()) and depth < 3):
        return ("x",)
    if draw(hs.booleans()):
        return ("u", draw(hs.sampled_from(["sin", "tanh", "sq", "abs", "exp"])), draw(expressions(depth=depth - 1)))
    op = draw(hs.sampled_from(["add", "sub", "mul", "max"]))
    return ("b", op, draw(expressions(depth=depth - 1)), draw(expressions(depth=depth - 1)))


_U = {"sin": np.sin, "tanh": np.tanh, "sq": np.square, "abs": np.abs, "exp": lambda v: np.exp(0.3 * v)}
_B = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum}


def _build(e):
    if e[0] == "x":
        return lambda x: x
    if e[0] == "u":
        g, inner = _U[e[1]], _build(e[2])
        return lambda x: g(inner(x))
    g, left, right = _B[e[1]], _build(e[2]), _build(e[3])
    return lambda x: g(left(x), 0.7 * right(x) + 0.2)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(e=expressions(), which=hs.sampled_from(["uniform", "normal"]), atoms=hs.sampled_from([3, 8, 20]))
def test_cell_enclosures_contain_the_function_on_every_cell(e, which, atoms):
    """Soundness of the per-cell enclosures (natural and mean-value forms) on random graphs that reuse x."""
    body = _build(e)

    def f(x):
        return body(x) + 0.0 * x

    d = od.Uniform(-1, 1.5) if which == "uniform" else od.Normal(0.3, 0.8)
    frozen = st.uniform(-1, 2.5) if which == "uniform" else st.norm(0.3, 0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        r = od.evaluate(f, d, atoms=atoms, quantizer="quantile")
    cells = r.cells
    assert isinstance(cells, GridCells) and cells.lo.shape == (atoms,)
    q = d.quantize(atoms, "quantile")
    u = np.linspace(0, 1, 41)
    p_lo, p_hi = frozen.cdf(q.lo), frozen.cdf(q.hi)
    x = frozen.ppf(p_lo[:, None] + (p_hi - p_lo)[:, None] * np.clip(u[None, :], 1e-9, 1 - 1e-9))
    x = np.clip(x, q.lo[:, None], q.hi[:, None])
    y = f(x)
    tol = 1e-9 * (1 + np.abs(y))
    assert np.all(cells.lo[:, None] <= y + tol) and np.all(y <= cells.hi[:, None] + tol)


def _build2(e):
    """A random graph of two inputs: leaves alternate between x and y by depth-first position."""
    count = [0]

    def build(node):
        if node[0] == "x":
            k = count[0]
            count[0] += 1
            return (lambda x, y: x) if k % 2 == 0 else (lambda x, y: y)
        if node[0] == "u":
            g, inner = _U[node[1]], build(node[2])
            return lambda x, y: g(inner(x, y))
        g, left, right = _B[node[1]], build(node[2]), build(node[3])
        return lambda x, y: g(left(x, y), 0.7 * right(x, y) + 0.2)

    return build(e)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(e=expressions(), atoms=hs.sampled_from([2, 3, 6]))
def test_cell_enclosures_with_two_inputs_one_unbounded(e, atoms):
    """Soundness of the enclosures on a 2-D grid (the mean-value walk visits a bounded and an unbounded axis)."""
    body = _build2(e)

    def f(x, y):
        return body(x, y) + 0.0 * x + 0.0 * y

    dx, dy = od.Uniform(-1, 1.5), od.Normal(0.3, 0.8)
    fx, fy = st.uniform(-1, 2.5), st.norm(0.3, 0.8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", od.UnboundedWarning)
        r = od.evaluate(f, dx, dy, atoms=atoms, quantizer="quantile")
    cells = r.cells
    names = [lab.split()[1] for lab in cells.labels]
    assert sorted(names) == ["x", "y"] and cells.lo.shape == (atoms, atoms)
    lo, hi = (cells.lo, cells.hi) if names == ["x", "y"] else (cells.lo.T, cells.hi.T)
    u = np.clip(np.linspace(0, 1, 9), 1e-9, 1 - 1e-9)
    pts = []
    for d, fr in ((dx, fx), (dy, fy)):
        q = d.quantize(atoms, "quantile")
        p_lo, p_hi = fr.cdf(q.lo), fr.cdf(q.hi)
        pts.append(np.clip(fr.ppf(p_lo[:, None] + (p_hi - p_lo)[:, None] * u[None, :]), q.lo[:, None], q.hi[:, None]))
    x = pts[0][:, None, :, None]
    y = pts[1][None, :, None, :]
    val = f(x, y)
    tol = 1e-9 * (1 + np.abs(val))
    assert np.all(lo[:, :, None, None] <= val + tol) and np.all(val <= hi[:, :, None, None] + tol)


def test_failure_probability_of_a_limit_state():
    # P(R - S <= 0) for R ~ N(5, 0.5), S ~ LogNormal(0.5, 0.3): a reliability question, by quadrature.
    r = od.evaluate(lambda r_, s_: r_ - s_, od.Normal(5, 0.5), od.LogNormal(0.5, 0.3), atoms=512)
    sl = st.lognorm(0.3, scale=math.exp(0.5))
    exact = integrate.quad(lambda s: sl.pdf(s) * st.norm(5, 0.5).cdf(s), 0, np.inf, epsabs=1e-15)[0]
    lo, hi = r.cdf_bounds(0.0)
    assert lo <= exact <= hi
    assert hi <= 3 * exact and lo >= exact / 3  # informative at the 1e-4 level (meansplit's small tail cells)


# ---------------------------------------------------------------------------------------------------------------
# Where there is no band, and the looks
# ---------------------------------------------------------------------------------------------------------------
def test_no_band_for_qmc_or_previous_results():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(lambda x, y: x * y, od.Normal(1, 0.3), od.Normal(2, 0.5), atoms=2048, max_joint=3)
    assert not r.certified
    with pytest.raises(od.DistError, match="quasi-Monte Carlo.*max_joint"):
        r.cdf_bounds(1.0)
    r1 = od.evaluate(lambda x: x + 1, od.Normal(0, 1), atoms=32)
    r2 = od.evaluate(lambda y: 2 * y, r1, atoms=32)
    with pytest.raises(od.DistError, match="previous result"):
        r2.quantile_bounds(0.5)
    assert r2.to_dict()["cdf_band"] is None


def test_constant_output_plot_and_save(tmp_path):
    r = od.evaluate(lambda x: x - x + 3.0, od.Normal(0, 1), atoms=8)
    lo, hi = r.cdf_bounds([3.0 - 1e-12, 3.0 + 1e-12])  # a step at 3 (up to rounding pads of a few ulps)
    assert hi[0] <= 1e-9 and lo[1] >= 1 - 1e-9
    r = od.evaluate(lambda x, y: x * y, od.Uniform(0, 1), od.Uniform(0, 1), atoms=64)
    fig = r.plot()
    assert len(fig.axes[1].collections) >= 1  # the shaded band
    assert "certified" in r._repr_html_()
    path = r.save(tmp_path / "r.json")
    data = json.loads(path.read_text())
    saved = CdfBand.from_dict(data["cdf_band"])
    ts = np.linspace(0, 1, 501)
    exact = np.where(ts > 0, ts - ts * np.log(np.maximum(ts, 1e-300)), 0.0)
    lo, hi = saved.cdf_bounds(ts)
    assert np.all(lo <= exact + TOL) and np.all(exact <= hi + TOL)
    lo_full, hi_full = r.cdf_bounds(ts)
    assert np.all(lo <= lo_full) and np.all(hi >= hi_full)


def test_cli_prints_certified_quantile_intervals():
    from click.testing import CliRunner

    from opgraph.dcg.cli import group

    res = CliRunner().invoke(group, ["x - x", "--var", "x=normal:1,0.1", "--atoms", "16", "--plot", ""])
    assert res.exit_code == 0, res.output
    assert "certified interval" in res.output and "[0, 0]" in res.output
