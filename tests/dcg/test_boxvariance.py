"""Second-moment rounding bound and closed-form Uniform terms of the box-linear mixture (branch mix-many).

``opgraph.dcg.boxvariance``: ``E|sum_i e_i| <= sqrt(sum_i Var e_i + (sum_i E e_i)^2)`` for the independent rounding
errors of a box's terms; ``boxlinear._uniform_term``: a Uniform input's term in closed form; ``boxlinear.FIT_BUDGET``:
a ``target_w1`` call builds the mixture on the work that fits its time left.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from opgraph import dcg as od
from opgraph.dcg import boxlinear, boxvariance, roundbudget, switches

ONLY_MIXTURE = {"semi_discrete": False, "exact_law": False, "affine": False, "box_linear": True}


def _w1_to_cdf(atoms, weights, cdf, lo, hi, n=400_001):
    """W1 between a discrete law and an exact CDF on [lo, hi] (trapezoid rule on a fine grid)."""
    t = np.linspace(lo, hi, n)
    order = np.argsort(atoms)
    cum = np.cumsum(np.asarray(weights)[order])
    fg = np.concatenate([[0.0], cum])[np.searchsorted(np.asarray(atoms)[order], t, side="right")]
    return float(np.trapezoid(np.abs(cdf(t) - fg), t))


def _normal_sum(coef, mus, sigmas):
    mu = sum(c * m for c, m in zip(coef, mus))
    sd = math.sqrt(sum((c * s) ** 2 for c, s in zip(coef, sigmas)))
    return mu, sd


@settings(max_examples=12, deadline=None)
@given(
    coef=st.lists(st.floats(-3, 3).filter(lambda c: abs(c) > 0.05), min_size=3, max_size=4),
    atoms=st.integers(3, 8),
)
def test_linear_normal_sums_bound_holds_against_the_exact_law(coef, atoms):
    # a linear program: the remainder is 0, so the bound is the lattice rounding's (the second-moment bound here)
    mus, sigmas = [0.5, -1.0, 2.0, 0.0][: len(coef)], [1.0, 0.5, 2.0, 0.3][: len(coef)]
    laws = [od.Normal(m, s) for m, s in zip(mus, sigmas)]

    def fn(*x):
        return sum(c * xi for c, xi in zip(coef, x))

    with switches.scope(ONLY_MIXTURE):
        r = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    mu, sd = _normal_sum(coef, mus, sigmas)
    true = _w1_to_cdf(r.atoms, r.weights, stats.norm(mu, sd).cdf, mu - 12 * sd, mu + 12 * sd)
    assert r.w1_bound >= true * (1 - 1e-6) - 1e-9 * sd, (r.w1_bound, true)


def _irwin_hall(n):
    def cdf(t):
        t = np.asarray(t, dtype=float)
        out = np.zeros_like(t)
        for k in range(n + 1):
            out += (-1) ** k * math.comb(n, k) * np.clip(t - k, 0, None) ** n
        return np.clip(out / math.factorial(n), 0.0, 1.0)

    return cdf


@pytest.mark.parametrize("n,atoms", [(3, 4), (4, 3), (6, 2)])
def test_sums_of_uniforms_sound_and_tighter_with_the_second_moment(n, atoms):
    laws = [od.Uniform(0, 1)] * n
    # the smoothed rounding (opgraph.dcg.boxsmooth) replaces both bounds on these boxes: off, the subject here
    with switches.scope({**ONLY_MIXTURE, "box_smooth": False}):
        on = od.evaluate(lambda *x: sum(x), *laws, atoms=atoms, progress=False)
        with switches.scope({"box_linear_variance": False}):
            off = od.evaluate(lambda *x: sum(x), *laws, atoms=atoms, progress=False)
    assert on.info["bound_method"] == "box-linear mixture"
    for r in (on, off):
        true = _w1_to_cdf(r.atoms, r.weights, _irwin_hall(n), 0.0, float(n))
        assert r.w1_bound >= true * (1 - 1e-6), (r.w1_bound, true)
    # per unit of lattice step, the second-moment rounding cost is well below the triangle inequality's
    per_on = on.info["box_linear"]["discretization"] / on.info["box_linear"]["delta"]
    per_off = off.info["box_linear"]["discretization"] / off.info["box_linear"]["delta"]
    assert per_on < 0.8 * per_off


def test_uniform_terms_in_closed_form_match_the_bin_by_bin_path():
    fn = lambda a, b, c, d: a * b + np.sin(c) * d + b * c * c  # noqa: E731
    laws = [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1), od.Uniform(2, 5)]
    got = {}
    for closed in (True, False):
        for var in (True, False):
            old = boxlinear.UNIFORM_CLOSED
            boxlinear.UNIFORM_CLOSED = closed
            try:
                with switches.scope({**ONLY_MIXTURE, "box_linear_variance": var}):
                    got[closed, var] = od.evaluate(fn, *laws, atoms=5, progress=False)
            finally:
                boxlinear.UNIFORM_CLOSED = old
    for var in (True, False):
        a, b = got[True, var], got[False, var]
        assert a.info["bound_method"] == "box-linear mixture"
        assert a.info["box_linear"]["delta"] == b.info["box_linear"]["delta"]
        assert a.w1_bound == pytest.approx(b.w1_bound, rel=1e-9)
        assert np.allclose(a.atoms, b.atoms) and np.allclose(a.weights, b.weights, atol=1e-12)


@pytest.mark.parametrize("law", [od.Normal(0.3, 1.7), od.Uniform(-1, 3), od.LogNormal(0.2, 0.5)])
def test_bin_moments_against_quadrature(law):
    a = np.array([0.1, 0.4, 0.45, 1.2, 0.2])
    b = np.array([0.4, 0.45, 1.2, 1.3, 0.2])
    s = np.array([0.0, 0.43, 2.0, 1.25, 0.2])
    fa, fb = np.asarray(law.cdf(a), dtype=float), np.asarray(law.cdf(b), dtype=float)
    cost = boxlinear._cost_bins(law, np.stack([a, b], axis=1), np.stack([fa, fb], axis=1), s[:, None])[:, 0]
    mean, err, m2 = boxvariance.bin_moments(law, a, b, s, fa, fb, cost)
    dens = law.to_scipy().pdf
    for j in range(a.size):
        want_m = integrate.quad(lambda u, j=j: (s[j] - u) * dens(u), a[j], b[j], epsabs=1e-15)[0]
        want_2 = integrate.quad(lambda u, j=j: (u - s[j]) ** 2 * dens(u), a[j], b[j], epsabs=1e-15)[0]
        assert abs(mean[j] - want_m) <= err[j] + 1e-13
        assert m2[j] >= want_2 - 1e-13


def test_combine_is_never_above_the_triangle_inequality():
    rng = np.random.default_rng(3)
    dsum = rng.uniform(0, 1, 50)
    out = boxvariance.combine(dsum, rng.uniform(0, 1, 50), rng.normal(0, 1, 50), np.zeros(50), np.zeros(50))
    assert np.all(out <= dsum)
    inf = boxvariance.combine(dsum, np.full(50, np.inf), np.zeros(50), np.zeros(50), np.zeros(50))
    assert np.array_equal(inf, dsum)


def test_target_call_fits_the_mixture_to_the_time_left(monkeypatch):
    # a per-cell price at which the grid's whole work budget is predicted past the time left: with FIT_BUDGET the
    # mixture is built on the work that fits (log line, a step no finer), without it the call keeps its point masses
    fn = lambda a, b, c: a * b + np.sin(c) * a  # noqa: E731
    laws = [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)]
    boxes, full = 12**3, boxlinear.work_budget(12**3, 3)
    with switches.scope(ONLY_MIXTURE):
        free = od.evaluate(fn, *laws, atoms=12, progress=False)
    assert free.info["bound_method"] == "box-linear mixture"
    got = {}
    for fit in (True, False):
        monkeypatch.setattr(boxlinear, "FIT_BUDGET", fit)
        with switches.scope(ONLY_MIXTURE), roundbudget.scope(1000.0, True):
            monkeypatch.setattr(boxlinear, "SECONDS_PER_CELL", 2000.0 / full)
            assert not boxlinear.affordable(boxlinear.SECONDS_PER_CELL * full)
            assert boxlinear.wanted(boxes, 3) is fit
            assert boxlinear.cells_left() < full
            got[fit] = od.evaluate(fn, *laws, atoms=12, progress=False)
        monkeypatch.setattr(boxlinear, "SECONDS_PER_CELL", 2e-7)
    assert got[True].info["bound_method"] == "box-linear mixture"
    assert got[True].info["box_linear"]["delta"] >= free.info["box_linear"]["delta"]
    assert got[True].w1_bound >= free.w1_bound * (1 - 1e-12)
    assert got[False].info["bound_method"] != "box-linear mixture"


def test_a_refinish_of_the_same_grid_reuses_the_mixture(monkeypatch):
    # boxlinear.MEMO: the engine asking again for the same grid, linear models and per-box bounds gets the same
    # answer without a second build (OTL at 8 atoms built the same mixture twice)
    fn = lambda a, b, c: a * b + np.sin(c) * a  # noqa: E731
    laws = [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)]
    seen, builds = [], []
    answer, mixture = boxlinear.answer, boxlinear.mixture

    def spy(*a, **k):
        seen.append((a, k))
        return answer(*a, **k)

    monkeypatch.setattr(boxlinear, "answer", spy)
    with switches.scope(ONLY_MIXTURE):
        r = od.evaluate(fn, *laws, atoms=8, progress=False)
    assert r.info["bound_method"] == "box-linear mixture" and seen
    monkeypatch.setattr(boxlinear, "mixture", lambda *a, **k: builds.append(1) or mixture(*a, **k))
    a, k = seen[-1]
    with switches.scope(ONLY_MIXTURE):
        again = answer(*a, **k)
        assert not builds
        assert again is not None and again[2] == r.w1_bound
        monkeypatch.setattr(boxlinear, "MEMO", False)
        fresh = answer(*a, **k)
    assert builds and fresh[2] == again[2] and np.array_equal(fresh[0], again[0])
