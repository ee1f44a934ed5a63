"""Half-line cells in the box-linear mixture (opgraph.dcg.boxtails): sound against references, tighter, taken."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg import boxlinear, boxtails, switches

from .sobolref import sobol_reference

# The other second-order certificates would win on these small programs: off where the test is about the mixture.
ONLY_MIXTURE = {"box_linear": True, "semi_discrete": False, "exact_law": False, "affine": False}


_sobol_reference = functools.partial(sobol_reference, log2=20, seed=70, clip=1e-15)


CASES = {
    "tanh": (
        lambda x, y: np.tanh(0.9 * x - 0.6 * y) + 0.2 * np.sin(x),
        [od.Normal(0, 1), od.Normal(0.5, 0.8)],
    ),
    "product": (lambda x, y: x * y + 0.5 * x, [od.Normal(1, 0.5), od.Normal(-0.5, 1)]),
    "gamma_lognormal": (
        lambda x, y: 0.5 * x * y + np.tanh(y),
        [od.Gamma(2, 0.5), od.LogNormal(0, 0.3)],
    ),
}


def _evaluate(fn, laws, atoms, tails):
    with switches.scope({**ONLY_MIXTURE, "box_linear_tails": tails}):
        return od.evaluate(fn, *laws, atoms=atoms, progress=False)


@pytest.mark.parametrize("atoms", [6, 16])
@pytest.mark.parametrize("name", sorted(CASES))
def test_bound_holds_against_sobol_references(name, atoms):
    fn, laws = CASES[name]
    ref, err = _sobol_reference(fn, laws)
    r = _evaluate(fn, laws, atoms, True)
    old = _evaluate(fn, laws, atoms, False)
    assert r.info["bound_method"] == "box-linear mixture"
    assert r.info["box_linear"]["tail_boxes_mixed"] > 0  # the half-line path is taken
    assert r.w1_bound <= old.w1_bound  # never worse than the finite-cells-only mixture
    true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
    assert r.w1_bound >= true - 3 * err, (r.w1_bound, true, err)
    assert np.isclose(np.sum(r.weights), 1.0)


def test_tails_tighten_the_tanh_program():
    fn, laws = CASES["tanh"]
    on, off = _evaluate(fn, laws, 16, True), _evaluate(fn, laws, 16, False)
    assert on.w1_bound < 0.8 * off.w1_bound
    info = on.info["box_linear"]
    assert info["point_mass_boxes"] < 0.1 * off.info["box_linear"]["point_mass_boxes"]
    assert on.w1_bound == pytest.approx(info["remainder"] + info["discretization"] + info["point_mass_boxes"])


def test_finite_cells_unchanged():
    # all-uniform inputs: no half-line, the answer and bound are the same with the switch on and off
    fn = lambda x, y, z: x * y + np.sin(z) * x + y * z * z  # noqa: E731
    laws = [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)]
    on, off = _evaluate(fn, laws, 8, True), _evaluate(fn, laws, 8, False)
    assert on.w1_bound == off.w1_bound
    assert np.array_equal(on.atoms, off.atoms) and np.array_equal(on.weights, off.weights)
    assert on.info["box_linear"]["tail_boxes_mixed"] == 0


def test_switch_travels():
    assert switches.capture()["box_linear_tails"] is True
    with switches.scope({"box_linear_tails": False}):
        assert boxtails.ENABLED.get() is False
    assert boxtails.ENABLED.get() is True


@pytest.mark.parametrize(
    "law", [od.Normal(0.3, 1.7), od.LogNormal(0.2, 0.5), od.Gamma(2.5, 0.7), od.Exponential(1.5)], ids=repr
)
def test_tail_bin_rounding_cost_matches_quadrature(law):
    # E|X - s| on bins that reach +inf (and -inf for the Normal), in both edge directions: an upper bound, close
    lo = float(law.ppf(0.9))
    rows = [[lo, lo + 0.3, lo + 0.5, np.inf], [np.inf, lo + 0.5, lo + 0.3, lo]]
    pts = [[lo + 0.1, lo + 0.45, lo + 0.9], [lo + 1.4, lo + 0.35, lo + 0.3]]
    if isinstance(law, od.Normal):
        hi = float(law.ppf(0.1))
        rows.append([-np.inf, hi - 0.6, hi - 0.2, hi])
        pts.append([hi - 1.1, hi - 0.3, hi - 0.15])
    x, s = np.array(rows), np.array(pts)
    got = boxlinear._cost_bins(law, x, np.asarray(law.cdf(x), dtype=float), s)
    dens = law.to_scipy().pdf
    for r in range(x.shape[0]):
        for j in range(3):
            a, b = sorted((x[r, j], x[r, j + 1]))
            sj = s[r, j]
            want = integrate.quad(lambda u, sj=sj: abs(u - sj) * dens(u), a, b, epsabs=1e-14)[0]
            assert np.isfinite(got[r, j])
            assert got[r, j] >= want - 1e-12, (r, j, got[r, j], want)
            assert got[r, j] <= want * (1 + 1e-6) + 1e-11


@pytest.mark.parametrize("law", [od.Normal(-1, 2), od.LogNormal(0.5, 0.8), od.Gamma(0.7, 2.0)], ids=repr)
def test_far_ends_meet_the_collapse_target(law):
    # the far point t of a half-line: |c| E[(X - t)^+ | cell] <= TAIL_SHARE * delta (quadrature), finite cells kept
    q = np.array([0.0, 0.2, 0.8, 1.0])
    e = np.asarray(law.ppf(q), dtype=float)
    lo, hi = e[:-1], e[1:]
    c = np.array([0.7, -2.0, 0.05])
    delta = 1e-3
    lo_eff, hi_eff = boxtails.far_ends(law, lo, hi, c, delta)
    assert np.all(np.isfinite(lo_eff) & np.isfinite(hi_eff))
    fin = np.isfinite(lo) & np.isfinite(hi)
    assert np.array_equal(lo_eff[fin], lo[fin]) and np.array_equal(hi_eff[fin], hi[fin])
    dens = law.to_scipy().pdf
    for i in np.flatnonzero(~fin):
        if hi[i] == np.inf:
            t, mass = hi_eff[i], float(law.to_scipy().sf(lo[i]))
            assert t >= lo[i]
            excess = integrate.quad(lambda u, t=t: (u - t) * dens(u), t, np.inf, epsabs=1e-15)[0]
        else:
            t, mass = lo_eff[i], float(law.to_scipy().cdf(hi[i]))
            assert t <= hi[i]
            excess = integrate.quad(lambda u, t=t: (t - u) * dens(u), -np.inf, t, epsabs=1e-15)[0]
        assert abs(c[i]) * excess / mass <= boxtails.TAIL_SHARE * delta * 1.001 + 1e-15


LAWS = {
    "normal": lambda m, s: od.Normal(m, s),
    "lognormal": lambda m, s: od.LogNormal(0.3 * m, 0.2 + 0.3 * s),
    "gamma": lambda m, s: od.Gamma(1.0 + 2 * s, 0.5 + 0.5 * abs(m)),
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(0.2, 2.0),
    b=st.floats(-1.5, 1.5),
    c=st.floats(-1.5, 1.5),
    d=st.floats(-0.5, 0.5),
    kind=st.sampled_from(sorted(LAWS)),
    m=st.floats(-1.0, 1.0),
    s=st.floats(0.3, 1.5),
    atoms=st.sampled_from([4, 6, 8]),
)
def test_property_bound_holds(a, b, c, d, kind, m, s, atoms):
    laws = [od.Normal(m, s), LAWS[kind](m, s)]

    def fn(x, y):
        return a * np.tanh(b * x + c * y) + d * x * y

    ref, err = _sobol_reference(fn, laws, log2=15, seed=90)
    r = _evaluate(fn, laws, atoms, True)
    true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
    assert r.w1_bound >= true - 3 * err - 1e-12, (r.w1_bound, true, err, r.info.get("bound_method"))
