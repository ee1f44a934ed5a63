"""The radial slope remainder (:mod:`opgraph.dcg.radial`): scaled boxes, the averaged enclosure, per-box soundness."""

from __future__ import annotations

import contextvars
import functools
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from opgraph import dcg as od
from opgraph.dcg import exactlaw, radial, subslope, switches, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference
from .test_subcentre import OTL_LAWS, _otl_like, _sampled
from .test_subslope import PISTON_LAWS, _piston_like, _setup
from .test_subwalk import VOLUME_LAWS, _piston_volume


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_radial", default=False))


PROGRAMS = {
    "reused_sqrt": lambda x, y, z: np.sqrt(x**2 + 4.0 * y) - x + x * y * z,
    "quotient": lambda x, y, z: x * y / (x + y) + z / x,
    "exp_log": lambda x, y, z: np.exp(0.3 * x * y) + np.log(x + 2.0 * y) * z,
    "tanh": lambda x, y, z: np.tanh(x - 0.5 * y * z) * (1.0 + z * z),
}


@settings(max_examples=60, deadline=None)
@given(
    lo=st.floats(-5.0, 5.0),
    w=st.floats(0.0, 4.0),
    u=st.floats(0.0, 1.0),
    t=st.sampled_from([0.25, 1 / 3, 0.5, 2 / 3, 0.75, 1.0]),
)
@example(lo=0.0, w=5e-324, u=0.0, t=0.25)  # underflow: 0.25 x the smallest subnormal rounds to 0 (found by CI)
def test_scaled_box_contains_the_exact_scaled_box(lo, w, u, t):
    """``centre + t (B - centre)`` (exact, in rationals of the floats) lies in the scaled box, inside ``B``."""
    from fractions import Fraction as Fr

    hi = lo + w
    c = lo + u * (hi - lo)
    slo, shi = radial.scaled((np.array([lo]), np.array([hi])), np.array([c]), t)
    for end in (lo, hi):
        exact = Fr(c) + Fr(t) * (Fr(end) - Fr(c))
        assert Fr(float(slo[0])) <= exact <= Fr(float(shi[0]))
    assert lo <= slo[0] <= shi[0] <= hi


def test_scaled_box_keeps_infinite_ends():
    slo, shi = radial.scaled((np.array([-np.inf, 0.0]), np.array([1.0, np.inf])), np.array([0.5, 2.0]), 0.5)
    assert slo[0] == -np.inf and shi[1] == np.inf
    assert 0.75 <= shi[0] <= 0.75 + 1e-14 and 1.0 - 1e-14 <= slo[1] <= 1.0


def _gamma(fn_graph, out, ids, y, x, moving, nodes=24):
    """``int_0^1 df/dx_i(y + t (x - y)) dt`` per moving axis (Gauss-Legendre; the gradient at points is tight)."""
    ts, ws = np.polynomial.legendre.leggauss(nodes)
    ts, ws = 0.5 * (ts + 1.0), 0.5 * ws
    pts = {a: y[a] + ts * (x[a] - y[a]) for a in ids}
    pj = taylor.jets(fn_graph, out, {a: (pts[a], pts[a]) for a in ids}, hess=False)
    return {a: float(np.sum(ws * 0.5 * (pj.g[a][0] + pj.g[a][1]))) for a in moving}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    x0=st.floats(0.2, 3.0),
    w=st.floats(1e-3, 1.5),
    free=st.integers(0, 1),
    k=st.sampled_from([2, 3, 4]),
    seed=st.integers(0, 2**16),
)
def test_averaged_enclosure_contains_the_mean_gradient_along_the_ray(name, x0, w, free, k, seed):
    """``gamma_i`` of random points (the ray from ``y``, ``x_s`` on the moving axes) lies in the averaged enclosure."""
    g = trace(PROGRAMS[name], "x", "y", "z")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    rng = np.random.default_rng(seed)
    lo = {a: np.array([x0 + 0.3 * i]) for i, a in enumerate(ids)}
    hi = {a: lo[a] + w * (1.0 + 0.5 * i) for i, a in enumerate(ids)}
    ctr = {a: lo[a] + rng.uniform(0, 1) * (hi[a] - lo[a]) for a in ids}
    moving = ids if not free else ids[1:]  # free: the first axis free on its range (a walk's last segment)
    box = {a: (lo[a], hi[a]) for a in ids}
    kept: dict = {}
    whole = taylor.jets(g, out, box, hess=False, centre=ctr, centred=True, keep_points=kept)
    last = {a: whole.g[a] for a in moving}
    got = radial.enclose(g, out, ids, moving, box, ctr, last, kept, slices=k)
    for _ in range(20):
        x = {a: rng.uniform(lo[a], hi[a]) for a in ids}
        y = {a: (x[a] if a not in moving else ctr[a]) for a in ids}
        gam = _gamma(g, out, ids, y, x, moving)
        for a in moving:
            glo, ghi = float(got[a][0][0]), float(got[a][1][0])
            tol = 1e-9 * (abs(glo) + abs(ghi) + 1e-300)
            assert glo - tol <= gam[a] <= ghi + tol, (name, a)
            assert glo >= float(last[a][0][0]) and ghi <= float(last[a][1][0])


def test_averaged_enclosure_shrinks_on_a_reused_chain():
    """On piston's volume chain the averaged enclosure is well inside the whole box's (interval and affine)."""
    g = trace(_piston_volume, "m", "s", "k", "p")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    ranges = [(30.0, 60.0), (0.005, 0.02), (1000.0, 5000.0), (9e4, 1.1e5)]
    box = {
        a: (np.array([lo + 0.40 * (hi - lo)]), np.array([lo + 0.55 * (hi - lo)])) for a, (lo, hi) in zip(ids, ranges)
    }
    ctr = {a: 0.5 * (box[a][0] + box[a][1]) for a in ids}
    kept: dict = {}
    whole = taylor.jets(g, out, box, hess=False, centre=ctr, centred=True, keep_points=kept)
    got = radial.enclose(g, out, ids, ids, box, ctr, dict(whole.g), kept, slices=4)
    pj = taylor.jets(g, out, {a: (ctr[a], ctr[a]) for a in ids}, hess=False)
    for a in ids:
        c = 0.5 * (pj.g[a][0][0] + pj.g[a][1][0])
        old = max(abs(whole.g[a][0][0] - c), abs(whole.g[a][1][0] - c))
        new = max(abs(got[a][0][0] - c), abs(got[a][1][0] - c))
        assert new <= 0.75 * old, a


def _remainders(fn, laws, split, walk, slices=(4, 1), atoms=4):
    """The sub-box remainder per box with the switch off and on (``slices``: ``SLICES``, ``EXACT_SLICES``)."""
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, atoms)
    laws_by = dict(zip(ids, laws, strict=True))
    sp = dict(zip(ids, split, strict=True))
    wk = walk(ids)
    got = {}
    for key, on in (("old", False), ("radial", True)):
        with switches.scope({"radial_slope": on}):
            old = radial.SLICES, radial.EXACT_SLICES
            radial.SLICES, radial.EXACT_SLICES = slices
            try:
                got[key] = subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, sp, walk=wk, hessian=True)
            finally:
                radial.SLICES, radial.EXACT_SLICES = old
    shape = tuple(q.atoms.size for q in qs)
    return {k: np.broadcast_to(v, shape) for k, v in got.items()}, (ids, qs, c, fx, shape)


CASES = [
    (_otl_like, OTL_LAWS, (3, 3, 2)),
    (_piston_like, PISTON_LAWS, (3, 3, 3)),
    (_piston_volume, VOLUME_LAWS, (2, 3, 2, 1)),
    (lambda a, b: np.tanh(a - 0.5 * b) * np.exp(0.3 * a * b), [od.Normal(0, 1), od.Normal(0.5, 0.7)], (3, 2)),
    (lambda a, b: a * b / (a + b), [od.LogNormal(0.0, 0.4), od.Gamma(3.0, 1.0)], (2, 3)),
]
IDS = ["otl_like", "piston_3x3x3", "piston_volume", "normal_tanh", "ln_gamma"]


@pytest.mark.parametrize("slices", [(1, 1), (4, 1), (1, 3)], ids=["exact", "slices4", "exact3"])
@pytest.mark.parametrize("walked", [False, True], ids=["ray", "walk"])
@pytest.mark.parametrize(("fn", "laws", "split"), CASES, ids=IDS)
def test_remainder_holds_on_every_box_and_never_exceeds_the_pass_without(fn, laws, split, walked, slices):
    """``E[|f(X) - f(x') - c . d| | box] <=`` the radial bound (sampled, 20,000 points) ``<=`` the bound without."""
    walk = (lambda ids: ids[::-1][:2]) if walked else (lambda ids: [])
    got, (ids, qs, c, fx, shape) = _remainders(fn, laws, split, walk, slices)
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)
    rng = np.random.default_rng(5)
    finite = 0
    for idx in np.ndindex(*shape):
        old, new = got["old"][idx], got["radial"][idx]
        assert new <= old * (1 + 1e-9) or not np.isfinite(old), idx
        if not np.isfinite(new):
            continue
        finite += 1
        if finite <= 16:  # the sampled check on the first boxes (cost)
            assert new >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 20000) - 1e-12, idx
    assert finite >= len(got["old"].flat) // 4


@pytest.mark.parametrize(
    ("slices", "share"), [((1, 1), 0.99), ((4, 1), 0.9), ((1, 2), 0.9)], ids=["exact", "slices4", "exact2"]
)
@pytest.mark.parametrize("walked", [False, True], ids=["ray", "walk"])
def test_the_radial_remainder_pays_on_a_reused_chain(walked, slices, share):
    walk = (lambda ids: ids[::-1][:2]) if walked else (lambda ids: [])
    got, _ = _remainders(_piston_volume, VOLUME_LAWS, (2, 3, 2, 1), walk, slices)
    assert float(np.sum(got["radial"])) < share * float(np.sum(got["old"]))


_sobol = functools.partial(sobol_reference, log2=15, seed=47)

BOUND_CASES = [
    (_piston_volume, VOLUME_LAWS, 4),
    (_piston_like, PISTON_LAWS, 6),
    (_otl_like, OTL_LAWS, 6),
    (lambda a, b, c: np.exp(0.4 * a * b) / (1.0 + c * c), [od.Uniform(-1, 2), od.Uniform(0, 1.5), od.Normal(0, 1)], 6),
]


@pytest.mark.parametrize(("fn", "laws", "atoms"), BOUND_CASES, ids=["piston_volume", "piston_like", "otl", "exp_q"])
def test_the_whole_bound_with_the_switch_on_is_sound(fn, laws, atoms):
    """Certified bound ``>=`` the answer's W1 to a scrambled-Sobol reference (2 x 2^15 points, 3 error estimates)."""
    with switches.scope({"radial_slope": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, atoms=atoms)
    ref, err = _sobol(fn, laws)
    assert np.isfinite(r.w1_bound)
    assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err


def test_the_switch_travels():
    assert "radial_slope" in switches.capture()
    with switches.scope({"radial_slope": True}):
        assert switches.capture()["radial_slope"] is True
        assert radial.ENABLED.get() is True
    assert radial.fractions(4) == [0.25, 0.5, 0.75, 1.0]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    x0=st.floats(0.2, 3.0),
    w=st.floats(1e-3, 1.5),
    walked=st.integers(0, 2),
    k=st.sampled_from([1, 2, 3]),
    seed=st.integers(0, 2**16),
)
def test_affine_ray_contains_the_mean_gradient_along_the_ray(name, x0, w, walked, k, seed):
    """``gamma_i`` lies in ``C_i + sum_j Q_ij e_j +- R_i`` (the affine ray form's claim), ``K`` slices."""
    from opgraph.dcg import affgrad

    g = trace(PROGRAMS[name], "x", "y", "z")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    rng = np.random.default_rng(seed)
    lo = {a: np.array([x0 + 0.3 * i]) for i, a in enumerate(ids)}
    hi = {a: lo[a] + w * (1.0 + 0.5 * i) for i, a in enumerate(ids)}
    ctr = {a: lo[a] + rng.uniform(0, 1) * (hi[a] - lo[a]) for a in ids}
    box = {a: (lo[a], hi[a]) for a in ids}
    moving = ids[walked:]  # the first ``walked`` axes at X all along the segment (a walk's prefix)
    forms: dict = {}
    affgrad.gradients(g, out, ids, box, ids, forms)
    slices = radial.ray_forms(g, out, ids, moving, box, ctr, forms, slices=k)
    coefs = radial.ray_coefficients(moving, slices, ctr)
    for _ in range(12):
        x = {a: rng.uniform(lo[a], hi[a]) for a in ids}
        y = {a: (x[a] if a not in moving else ctr[a]) for a in ids}
        gam = _gamma(g, out, ids, y, x, [a for a in moving if a in forms])
        for a, val in gam.items():
            (glo, ghi), q = coefs[a]
            lin = sum(float(q[j][0]) * (x[j][0] - ctr[j][0]) for j in q)
            lo_, hi_ = float(glo[0]) + lin, float(ghi[0]) + lin
            tol = 1e-9 * (abs(lo_) + abs(hi_) + 1e-300)
            assert lo_ - tol <= val <= hi_ + tol, (name, a)


def test_the_slices_are_paid_with_fewer_pieces(monkeypatch):
    """The default costs no extra pass (the allowance unchanged); the slices divide it by their predicted CPU."""
    assert radial.pass_factor() == 1.0
    base = subslope.allowance(4096, 40, 6)
    monkeypatch.setattr(radial, "EXACT_SLICES", 2)
    assert radial.pass_factor() == 1.0 + radial.SLICE_COST
    assert subslope.allowance(4096, 40, 6) <= base
    with switches.scope({"radial_slope": False}):
        assert radial.pass_factor() == 1.0


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(["quotient", "reused_sqrt", "exp_log", "powers"]),
    x0=st.floats(0.3, 3.0),
    y0=st.floats(0.3, 3.0),
    wx=st.floats(1e-3, 1.5),
    wy=st.floats(1e-3, 1.5),
    mx=st.integers(1, 4),
    my=st.integers(1, 4),
)
def test_remainder_on_random_uniform_boxes_against_quadrature(name, x0, y0, wx, wy, mx, my):
    """Per box, the sub-box remainder with the switch on ``>=`` ``E|f - f(x') - c . d|`` by a 600 x 600 midpoint rule.

    Uniform inputs (the box's law is uniform on the box): the midpoint rule of the smooth-on-the-box integrand is
    accurate to far below the 2 % margin (checked against 1200 x 1200 on the failing example of the sampled check).
    """
    from .test_subslope import PROGRAMS as SUB_PROGRAMS

    fn = SUB_PROGRAMS[name]
    laws = [od.Uniform(x0, x0 + wx), od.Uniform(y0, y0 + wy)]
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, 2)
    with switches.scope({"radial_slope": True}):
        sub = subslope.remainder(g, out, ids, cells, e1, dict(zip(ids, laws)), c, fx, {ids[0]: mx, ids[1]: my})
    sub = np.broadcast_to(sub, (2, 2))
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), (2, 2))
    n = 600
    for idx in np.ndindex(2, 2):
        if not np.isfinite(sub[idx]):
            continue
        xs = [q.lo[j] + (np.arange(n) + 0.5) / n * (q.hi[j] - q.lo[j]) for q, j in zip(qs, idx, strict=True)]
        x, y = np.meshgrid(xs[0], xs[1], indexing="ij")
        lin = sum(
            np.broadcast_to(c[a], mid.shape)[idx] * (v - q.atoms[j])
            for a, v, q, j in zip(ids, (x, y), qs, idx, strict=True)
        )
        with np.errstate(all="ignore"):
            dev = np.abs(fn(x, y) - mid[idx] - lin)
        assert sub[idx] >= 0.98 * float(dev.mean()) - 1e-12, (name, idx)
