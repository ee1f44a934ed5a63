"""Box-linear mixture answer (opgraph.dcg.boxlinear): sound against exact laws and Sobol references, tighter."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg import boxlinear, switches

from .sobolref import sobol_reference

# The other second-order certificates (semi-discrete, exact-law recognition, affine rewrites) would win on these
# small programs: switched off where the test is about the mixture itself.
ONLY_MIXTURE = {"semi_discrete": False, "exact_law": False, "affine": False}


@pytest.fixture(autouse=True)
def _box_linear_on():
    """The mixture is opt-in (``opgraph.dcg.boxlinear.ENABLED`` defaults to off): every test here turns it on."""
    with switches.scope({"box_linear": True}):
        yield


def _w1_to_cdf(atoms, weights, cdf, lo, hi, n=200_001):
    """W1 between a discrete law and an exact CDF on [lo, hi] (the support), by the trapezoid rule on a fine grid."""
    t = np.linspace(lo, hi, n)
    order = np.argsort(atoms)
    cum = np.cumsum(np.asarray(weights)[order])
    fg = np.concatenate([[0.0], cum])[np.searchsorted(np.asarray(atoms)[order], t, side="right")]
    return float(np.trapezoid(np.abs(cdf(t) - fg), t))


def _product_cdf(t):
    # X ~ U(1, 2), Y ~ U(0.5, 1.5): P(XY <= t) = int_1^2 P(Y <= t / x) dx
    return np.array([integrate.quad(lambda x, s=s: np.clip(s / x - 0.5, 0.0, 1.0), 1.0, 2.0)[0] for s in t])


def _sine_square_cdf(t):
    # X ~ U(0, 2), Y ~ U(0, 1): P(sin X + Y^2 <= t) = E_X[ P(Y <= sqrt(t - sin X)) ]
    def inner(x, s):
        r = s - np.sin(x)
        return 0.0 if r <= 0 else min(1.0, np.sqrt(r))

    return np.array([integrate.quad(inner, 0.0, 2.0, args=(s,), limit=200)[0] / 2.0 for s in t])


@pytest.mark.parametrize("atoms", [4, 8, 16])
@pytest.mark.parametrize(
    "case",
    [
        ("product", lambda x, y: x * y, [od.Uniform(1, 2), od.Uniform(0.5, 1.5)], _product_cdf, (0.5, 3.0)),
        ("sine", lambda x, y: np.sin(x) + y**2, [od.Uniform(0, 2), od.Uniform(0, 1)], _sine_square_cdf, (0, 2)),
    ],
    ids=lambda c: c[0],
)
def test_bound_holds_against_exact_laws(case, atoms):
    _, fn, laws, cdf, (lo, hi) = case
    with switches.scope(ONLY_MIXTURE):
        r = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    assert r.info["bound_method"] == "box-linear mixture"
    # a fine grid of the exact CDF (quadrature), then the 1-D W1 by the trapezoid rule on 2e5 points
    t = np.linspace(lo, hi, 4001)
    f_t = cdf(t)
    true = _w1_to_cdf(r.atoms, r.weights, lambda s: np.interp(s, t, f_t), lo, hi)
    # interpolating the CDF on 4001 points: error <= span * max step of F between knots; far below the margin
    slack = (hi - lo) * float(np.max(np.diff(f_t))) / 2
    assert r.w1_bound >= true - slack, (r.w1_bound, true)
    assert r.w1_bound <= 10 * true  # second order: near the true error (point masses: 6-30x)


_sobol_reference = functools.partial(sobol_reference, log2=16, seed=30)


CASES = {
    "three": (
        lambda x, y, z: x * y + np.sin(z) * x + y * z * z,
        [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)],
    ),
    "four_wing": (
        lambda a, b, c, d: a**0.6 * b**0.3 / np.cos(c) + 0.1 * a * d,
        [od.Uniform(1, 2), od.Uniform(2, 4), od.Uniform(-0.3, 0.4), od.Uniform(0, 3)],
    ),
    "five_normal": (  # Normal inputs: boxes with a tail cell keep their point masses
        lambda a, b, c, d, e: np.tanh(0.5 * a - 0.3 * b) + 0.2 * c * d + np.exp(0.1 * e),
        [od.Normal(0, 1), od.Normal(1, 0.5), od.Normal(0, 1), od.Uniform(1, 2), od.Normal(0, 0.3)],
    ),
    "six_otl": (
        lambda a, b, c, d, e, f: (a + 0.5 * b) / (c + d) + e * f / (1 + c),
        [
            od.Uniform(50, 150),
            od.Uniform(25, 70),
            od.Uniform(0.5, 3),
            od.Uniform(1.2, 2.5),
            od.Uniform(0.25, 1.2),
            od.Uniform(50, 300),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bound_holds_against_sobol_references(name):
    fn, laws = CASES[name]
    atoms = {3: 12, 4: 8, 5: 5, 6: 4}[len(laws)]
    ref, err = _sobol_reference(fn, laws)
    with switches.scope({"box_linear": False}):
        off = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    r = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    assert r.w1_bound <= off.w1_bound  # the engine keeps the mixture only where it wins
    assert "box_linear" in r.info  # used on every case here
    true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
    assert r.w1_bound >= true - 3 * err, (r.w1_bound, true, err)
    # the CDF band still brackets the (reference) law: it comes from the cells, not from the answer
    t = np.quantile(ref, [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99])
    lo, hi = r.cdf_bounds(t)
    emp = np.searchsorted(ref, t, side="right") / ref.size
    assert np.all(lo <= emp + 0.01) and np.all(emp <= hi + 0.01)


def test_mixture_below_point_mass_taylor_bound():
    fn, laws = CASES["four_wing"]
    with switches.scope({"box_linear": False}):
        off = od.evaluate(fn, *laws, atoms=8, progress=False)
    on = od.evaluate(fn, *laws, atoms=8, progress=False)
    info = on.info["box_linear"]
    assert on.info["bound_method"] == "box-linear mixture"
    assert on.w1_bound < 0.5 * off.w1_bound
    assert on.w1_bound < on.info["taylor"]["after"]  # the point-mass Taylor total on the same grid
    parts = info["remainder"] + info["discretization"] + info["point_mass_boxes"]
    assert on.w1_bound == pytest.approx(parts, rel=1e-8)
    assert np.isclose(np.sum(on.weights), 1.0)


def test_switch_off_gives_the_point_mass_answer():
    fn, laws = CASES["three"]
    with switches.scope({"box_linear": False}):
        off = od.evaluate(fn, *laws, atoms=6, progress=False)
        assert "box_linear" not in off.info
    with switches.scope({"taylor": False}):  # no linear models without the Taylor pass
        assert "box_linear" not in od.evaluate(fn, *laws, atoms=6, progress=False).info
    assert switches.capture()["box_linear"] is True


def test_cost_guard_declines_large_grids(monkeypatch):
    fn, laws = CASES["three"]
    monkeypatch.setattr(boxlinear, "MAX_WORK", 64)
    r = od.evaluate(fn, *laws, atoms=8, progress=False)
    assert "box_linear" not in r.info


def test_lattice_rounding_cost_matches_quadrature():
    # E|X - s| on bins of a Normal and a Uniform law, against quadrature: an upper bound, and close
    for law in (od.Normal(0.3, 1.7), od.Uniform(-1, 3), od.LogNormal(0.2, 0.5)):
        x = np.array([[0.1, 0.4, 0.45, 1.2], [1.3, 1.0, 0.2, 0.2]])
        s = np.array([[0.0, 0.43, 2.0], [1.05, 0.7, 0.2]])
        got = boxlinear._cost_bins(law, x, np.asarray(law.cdf(x), dtype=float), s)
        dens = law.to_scipy().pdf
        for r in range(2):
            for j in range(3):
                a, b = sorted((x[r, j], x[r, j + 1]))
                sj = s[r, j]
                want = integrate.quad(lambda u, sj=sj, dens=dens: abs(u - sj) * dens(u), a, b, epsabs=1e-14)[0]
                assert got[r, j] >= want - 1e-13
                assert got[r, j] <= want * (1 + 1e-6) + 1e-12
