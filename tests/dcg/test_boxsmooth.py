"""Smoothed lattice rounding of the box-linear mixture (opgraph.dcg.boxsmooth): sound against fine references."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, signal

from opgraph import dcg as od
from opgraph.dcg import boxlinear, boxsmooth, switches

from .sobolref import sobol_reference

U, N, LN, G = od.Uniform, od.Normal, od.LogNormal, od.Gamma

# one box: per term (law, cell lo, cell hi, atom), and the coefficients
BOXES = {
    "uniform2": ([(U(0, 1), 0.0, 0.25, 0.125), (U(0, 1), 0.5, 0.75, 0.625)], [1.0, 0.7]),
    "normal2": ([(N(0, 1), -0.5, 0.5, 0.0), (N(0, 1), 0.2, 0.9, 0.5)], [1.0, -0.8]),
    "mixed3": (
        [(U(0, 1), 0.0, 0.25, 0.125), (LN(0, 0.5), 0.8, 1.3, 1.0), (G(2, 1.0), 1.0, 2.0, 1.5)],
        [1.0, 0.9, -0.6],
    ),
    "mixed4": (
        [(N(1, 2), 0.0, 1.5, 0.7), (U(0, 1), 0.0, 0.2, 0.1), (G(0.7, 1.0), 0.3, 0.9, 0.5), (LN(0, 0.5), 0.8, 1.3, 1.0)],
        [0.5, 2.0, 1.0, -0.9],
    ),
    "lognormal_star": ([(LN(0, 0.5), 0.5, 2.0, 1.0), (G(3, 0.5), 1.0, 1.2, 1.1), (N(0, 1), 0.0, 0.1, 0.05)], [1, 1, 1]),
    # half-line cells (opgraph.dcg.boxtails): their terms are clipped at a far point, then hat-rounded
    "tails3": ([(N(0, 1), 1.0, np.inf, 1.5), (LN(0, 0.5), 1.5, np.inf, 2.0), (U(0, 1), 0.0, 0.3, 0.15)], [1, 0.8, 1.2]),
    "tails_lower": (
        [(N(0, 1), -np.inf, -0.5, -1.0), (G(2, 1.0), 3.0, np.inf, 3.8), (N(0, 1), -0.3, 0.2, 0.0)],
        [1, -0.5, 2],
    ),
}
V0 = 0.3


def _one_box(name: str, delta: float, on: bool) -> tuple[np.ndarray, np.ndarray, float, dict]:
    """:func:`boxlinear.mixture` on one box of ``BOXES[name]``, its remainder set so that the step is ``delta``."""
    laws, coefs = BOXES[name]
    k = len(laws)
    cells = {a: (np.array([lo]), np.array([hi]), np.array([x])) for a, (_, lo, hi, x) in enumerate(laws)}
    dists = {a: law for a, (law, *_) in enumerate(laws)}
    coarse = all(type(law).__name__ == "Uniform" for law, *_ in laws)
    per_delta = math.sqrt((k + 1) / 6) if coarse else (k + 1) / 4
    lin = {
        "c": {a: np.array([float(c)]) for a, c in enumerate(coefs)},
        "rest": np.array([delta * per_delta / boxlinear.DISC_SHARE]),
    }
    one = [1] * k
    with switches.scope({"box_smooth": on}):
        got = boxlinear.mixture(list(range(k)), np.full(one, V0), cells, dists, np.ones(one), np.full(one, 1e9), lin)
    assert got is not None
    return got


def _fine_law(name: str, h: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The box's linear model's law on a lattice of step ``h`` (each term's mass on ``h``-bins at their midpoints).

    Returns the atoms, weights and a bound on its W1 error (``h / 2`` per term: the coupling to the midpoints).
    """
    laws, coefs = BOXES[name]
    pmf, off = None, V0
    for (law, lo, hi, x), c in zip(laws, coefs, strict=True):
        # a half-line cut where 1e-14 of the law is left beyond (its W1 share is far below the margins)
        lo, hi = max(lo, float(law.ppf(1e-14))), min(hi, float(law.ppf(1 - 1e-14)))
        tlo, thi = sorted((c * (lo - x), c * (hi - x)))
        n = int(math.ceil((thi - tlo) / h)) + 1
        t = tlo + h * np.arange(n + 1)
        f = np.asarray(law.cdf(np.clip(x + t / c, lo, hi)), dtype=float)
        p = np.abs(np.diff(f))
        p /= p.sum()
        off += tlo + h / 2
        pmf = p if pmf is None else np.maximum(signal.fftconvolve(pmf, p), 0.0)
    return off + h * np.arange(pmf.size), pmf, len(laws) * h / 2


# the half-line boxes at the finest step are left out: their reference law takes minutes at delta / 500
_ONE_BOX = [(n, d) for n in sorted(BOXES) for d in (0.003, 0.02, 0.1) if not (n.startswith("tails") and d < 0.01)]


@pytest.mark.parametrize(("name", "delta"), _ONE_BOX)
def test_smoothed_rounding_bound_holds_on_one_box(name, delta):
    ref, wref, err = _fine_law(name, delta / 500)
    for on in (False, True):
        atoms, weights, _, info = _one_box(name, delta, on)
        true = float(od.w1_discrete(atoms, weights, ref, wref))
        assert info["discretization"] >= true - err, (on, info["discretization"], true, err)
        if on and delta <= 0.02:
            assert info["boxes_smoothed"] == 1.0
            assert info["discretization"] <= 1.1 * true + err  # near exact where the widest term is wide


_FAMILIES = [
    lambda lo, w: (U(-5, 5), lo, lo + w),
    lambda lo, w: (N(0, 1), lo, lo + w),
    lambda lo, w: (LN(0, 0.5), math.exp(lo / 3), math.exp(lo / 3) + w),
    lambda lo, w: (G(2.5, 0.7), 2 + lo / 3, 2 + lo / 3 + w),
    lambda lo, w: (N(0, 1), lo, np.inf),  # an upper half-line
]


@settings(max_examples=20, deadline=None)
@given(
    terms=st.lists(
        st.tuples(
            st.integers(0, len(_FAMILIES) - 1),
            st.floats(-2, 2),
            st.floats(0.05, 1.5),
            st.floats(-3, 3).filter(lambda c: abs(c) > 0.05),
        ),
        min_size=2,
        max_size=4,
    ),
    rel_step=st.floats(0.01, 0.5),
)
def test_property_smoothed_rounding_bound_holds(terms, rel_step):
    laws = []
    for fam, lo, w, _ in terms:
        law, a, b = _FAMILIES[fam](lo, w)
        x = a + 0.4 * (min(b, a + 3) - a)
        laws.append((law, a, b, x))
    coefs = [t[3] for t in terms]
    widest = max(abs(c) * (min(b, a + 3) - a) for (_, a, b, _), c in zip(laws, coefs, strict=True))
    delta = rel_step * widest
    BOXES["random"] = (laws, coefs)
    try:
        ref, wref, err = _fine_law("random", delta / 300)
        for on in (False, True):
            atoms, weights, _, info = _one_box("random", delta, on)
            true = float(od.w1_discrete(atoms, weights, ref, wref))
            assert info["discretization"] >= true - err, (on, info["discretization"], true, err)
    finally:
        del BOXES["random"]


@pytest.mark.parametrize("name", ["mixed3", "mixed4", "lognormal_star", "tails3", "tails_lower"])
def test_smoothed_rounding_is_tighter(name):
    off = _one_box(name, 0.01, False)[3]["discretization"]
    on = _one_box(name, 0.01, True)[3]["discretization"]
    assert on < 0.8 * off


def test_many_term_box_at_least_halved():
    laws = [(U(0, 1), 0.0, 0.3, 0.15), (N(0, 1), 0.0, 0.4, 0.2), (U(2, 3), 2.0, 2.5, 2.25)] * 2
    BOXES["six"] = (laws, [1.0, -1.2, 0.8, 0.9, 1.1, -0.7])
    try:
        ref, wref, err = _fine_law("six", 0.01 / 500)
        off = _one_box("six", 0.01, False)[3]["discretization"]
        atoms, weights, _, info = _one_box("six", 0.01, True)
        assert info["discretization"] <= 0.5 * off
        assert info["discretization"] >= float(od.w1_discrete(atoms, weights, ref, wref)) - err
    finally:
        del BOXES["six"]


@pytest.mark.parametrize(
    "law,lo,hi",
    [(U(-1, 3), -0.5, 1.3), (N(0.3, 1.7), -1.0, 2.0), (LN(0.2, 0.5), 0.7, 2.5), (G(2.5, 0.8), 0.5, 3.0)],
)
@pytest.mark.parametrize("c", [1.3, -0.6, 0.0])
def test_hat_law_preserves_the_mean(law, lo, hi, c):
    x0, o, delta = 0.5 * (lo + hi), 0.37, 0.11
    tlo, thi = sorted((o + c * (lo - x0), o + c * (hi - x0)))
    args = [np.array([v]) for v in (c, o, tlo, thi)]
    kb, n = boxsmooth.hat_range(args[2], args[3], delta)
    if type(law).__name__ == "Uniform":
        pm, e2, tv = boxsmooth.hat_uniform(*args, kb, n, delta)
    else:
        xs = [np.array([v]) for v in (x0, lo, hi)]
        pm, e2, tv, _ = boxsmooth.hat_generic(law, args[0], *xs, *args[1:], kb, n, delta)
    pts = (kb[0] + np.arange(pm.shape[1])) * delta
    mass = float(law.cdf(hi) - law.cdf(lo))
    ex = float(law.partial_moment(hi) - law.partial_moment(lo)) / mass
    want = o + c * (ex - x0)
    assert float(np.sum(pm)) == pytest.approx(1.0, abs=1e-12)
    assert float(np.sum(pm[0] * pts)) == pytest.approx(want, abs=1e-12)
    assert np.all(pm >= 0) and tv[0] < 1e-9
    if c != 0:  # E e^2 = delta^2 E f (1 - f), by quadrature: exact for a Uniform input, else an upper bound
        dens = law.to_scipy().pdf

        def g(t):
            f = t / delta - np.floor(t / delta)
            return f * (1 - f) * dens(x0 + (t - o) / c) / abs(c) / mass

        quad = integrate.quad(g, tlo, thi, limit=400, points=list(pts))[0] * delta**2
        assert e2[0] >= quad * (1 - 1e-9)
        if type(law).__name__ == "Uniform":
            assert e2[0] <= quad * (1 + 1e-6) + 1e-15


@pytest.mark.parametrize(
    "law,lo,hi",
    [
        (U(-1, 3), -0.5, 1.3),
        (N(0.3, 1.7), -1.0, 2.0),
        (N(0, 1), 1.0, np.inf),
        (LN(0.2, 0.5), 0.7, 2.5),
        (G(2.5, 0.8), 0.5, 3.0),
        (G(2.5, 0.8), 0.0, 0.5),
        (od.Exponential(2.0), 0.1, 0.4),
    ],
)
def test_density_tv_bounds_the_variation(law, lo, hi):
    got = float(boxsmooth.density_tv(law, np.array([lo]), np.array([hi]))[0])
    hi_f = min(hi, 60.0)
    x = np.linspace(lo, hi_f, 200_001)
    p = law.to_scipy().pdf(x)
    mass = float(law.cdf(hi) - law.cdf(lo))
    want = (p[0] + (p[-1] if np.isfinite(hi) else 0.0) + np.sum(np.abs(np.diff(p)))) / mass
    assert got >= want * (1 - 1e-9)
    assert got <= want * (1 + 1e-6) + 1e-9


def _hat_uniform_bins(tlo, thi, kb, n, delta):
    """The Uniform term's hat law and ``E e^2`` bin by bin (the reference of the closed form)."""
    j = np.arange(max(int(np.max(n)), 2))
    ln = thi - tlo
    pts = (kb[:, None] + j[None, :]) * delta
    t = np.clip(pts, tlo[:, None], thi[:, None])
    u, v = t[:, :-1] - pts[:, :-1], t[:, 1:] - pts[:, :-1]
    mass = (v - u) / ln[:, None]
    right = (v - u) * (v + u) / (2 * delta) / ln[:, None]
    pm = np.zeros((kb.size, j.size))
    pm[:, :-1] += mass - right
    pm[:, 1:] += right
    e2 = delta * ((v * v - u * u) / 2 - (v**3 - u**3) / (3 * delta)).sum(axis=1) / ln
    return pm, e2


def test_uniform_hat_closed_form_matches_bin_by_bin():
    rng = np.random.default_rng(3)
    delta = 0.07
    tlo = rng.uniform(-1, 1, 400)
    thi = tlo + np.concatenate([rng.uniform(0, 0.1, 200), rng.uniform(0, 1, 200)])
    thi[:5] = np.ceil(thi[:5] / delta) * delta  # ends on the lattice
    tlo[5:10] = np.floor(tlo[5:10] / delta) * delta
    kb, n = boxsmooth.hat_range(tlo, thi, delta)
    pm, e2, _ = boxsmooth.hat_uniform(np.ones(tlo.size), np.zeros(tlo.size), tlo, thi, kb, n, delta)
    ref, e2_ref = _hat_uniform_bins(tlo, thi, kb, n, delta)
    assert np.allclose(pm, ref[:, : pm.shape[1]], atol=1e-12)
    assert np.all(e2 >= e2_ref) and np.allclose(e2, e2_ref, rtol=1e-6, atol=1e-14)


_sobol_reference = functools.partial(sobol_reference, log2=16, seed=50)


def _piston(m, s, v0, k, p0, ta, t0):
    a = p0 * s + 19.62 * m - k * v0 / s
    v = s / (2 * k) * (np.sqrt(a**2 + 4 * k * p0 * v0 * ta / t0) - a)
    return 2 * np.pi * np.sqrt(m / (k + s**2 * p0 * v0 * ta / (t0 * v**2)))


GRAPHS = {
    "uniform_sum": (lambda a, b, c, d: a + 2 * b - c + 0.5 * d, [U(0, 1), U(0, 2), U(-1, 1), U(1, 3)], 6),
    "three": (lambda x, y, z: x * y + np.sin(z) * x + y * z * z, [U(0, 1), U(1, 2), U(-1, 1)], 12),
    "four_wing": (
        lambda a, b, c, d: a**0.6 * b**0.3 / np.cos(c) + 0.1 * a * d,
        [U(1, 2), U(2, 4), U(-0.3, 0.4), U(0, 3)],
        8,
    ),
    "piston": (
        _piston,
        [U(30, 60), U(0.005, 0.02), U(0.002, 0.01), U(1000, 5000), U(90000, 110000), U(290, 296), U(340, 360)],
        3,
    ),
    "normal_mix": (lambda a, b, c: np.exp(0.3 * a) + b * c, [N(0, 1), U(1, 2), LN(0, 0.3)], 10),
}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_whole_mixture_tighter_and_sound(name):
    fn, laws, atoms = GRAPHS[name]
    with switches.scope({"box_smooth": False}):
        off = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    on = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    assert "box_linear" in on.info
    assert on.w1_bound <= off.w1_bound * (1 + 1e-12)
    ref, err = _sobol_reference(fn, laws)
    true = float(od.w1_discrete(on.atoms, on.weights, ref, np.ones(ref.size)))
    assert on.w1_bound >= true - 3 * err, (on.w1_bound, true, err)


def test_switch_registered():
    assert switches.capture()["box_smooth"] is True
    with switches.scope({"box_smooth": False}):
        assert boxsmooth.ENABLED.get() is False
