"""Sub-box slope remainder (:mod:`opgraph.dcg.subslope`): pieces, per-box statements, whole bounds, the switch."""

from __future__ import annotations

import contextvars
import functools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate

from opgraph import dcg as od
from opgraph.dcg import exactlaw, fixedbudget, roundbudget, subslope, switches, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_sub", default=False))


def _piston_like(a, b, c):
    v = np.sqrt(a**2 + 4.0 * b * c) - a
    return c**1.5 / v**2 + 0.2 * a * b


def _piston4(a, b, c, d):
    v = np.sqrt(a**2 + 4.0 * b * c) - a
    return np.sqrt(d / (1.0 + c**1.5 / v**2))


PISTON_LAWS = [od.Uniform(0.5, 2.0), od.Uniform(0.2, 1.0), od.Uniform(1.0, 3.0)]


@pytest.mark.parametrize(
    "law", [od.Uniform(-1.0, 3.0), od.Normal(0.5, 2.0), od.LogNormal(0.0, 0.5), od.Gamma(2.0, 1.5)], ids=str
)
def test_pieces_against_quadrature(law):
    q = law.quantize(4, "meansplit")
    e1 = q.err / q.weights
    lo, hi, pt, cond, share = subslope.pieces(law, q.lo, q.hi, q.atoms, e1, 3)
    sp = law.to_scipy()
    for i in range(q.lo.size):
        np.testing.assert_allclose(share[i].sum(), 1.0, rtol=1e-12)
        if not (np.isfinite(q.lo[i]) and np.isfinite(q.hi[i])):  # a tail cell is not split: copies of itself
            np.testing.assert_array_equal(cond[i], e1[i])
            np.testing.assert_array_equal(pt[i], q.atoms[i])
            continue
        assert lo[i, 0] == q.lo[i] and hi[i, -1] == q.hi[i]
        np.testing.assert_array_equal(hi[i, :-1], lo[i, 1:])
        for j in range(3):
            assert lo[i, j] <= pt[i, j] <= hi[i, j]
            mass = sp.cdf(hi[i, j]) - sp.cdf(lo[i, j])
            exact = integrate.quad(lambda x, s=pt[i, j]: abs(x - s) * sp.pdf(x), lo[i, j], hi[i, j], points=[pt[i, j]])[
                0
            ]
            assert cond[i, j] >= exact / mass * (1 - 1e-7)
            assert cond[i, j] <= exact / mass * 1.001 + 1e-12
            np.testing.assert_allclose(share[i, j], mass / (sp.cdf(q.hi[i]) - sp.cdf(q.lo[i])), rtol=1e-6)


def test_plan_is_greedy_within_the_allowance():
    assert subslope.plan({1: 4.0, 2: 1.0, 3: 0.0}, 1) == {1: 1, 2: 1, 3: 1}
    got = subslope.plan({1: 16.0, 2: 1.0, 3: 0.0}, 8)
    assert math.prod(got.values()) <= 8 and got[1] >= got[2] and got[3] == 1
    got = subslope.plan({1: 1.0, 2: 1.0, 3: 1.0}, 64)
    assert got == {1: 4, 2: 4, 3: 4}


def test_allowance_follows_the_budget():
    assert subslope.allowance(512, 39) == subslope.MAX_PIECES  # fixed atoms: predicted within the allowance
    per = subslope.SECONDS_PER_BOX_NODE * 16384 * 39
    assert subslope.allowance(16384, 39) == min(subslope.MAX_PIECES, int(fixedbudget.allowance("sub_slope") / per))
    assert subslope.allowance(823543, 39) == 1  # too large for the fixed budget
    with switches.scope({"sub_slope": False}):
        assert subslope.allowance(16, 10) == 1
    with roundbudget.scope(1e-9):  # a target_w1 call with (almost) no time left
        assert subslope.allowance(16384, 39) == 1
    with roundbudget.scope(10.0):  # a larger pass share (a mixture-first round again: opgraph.dcg.mixfirst)
        rb = roundbudget.current()
        base = subslope.allowance(51282, 39)  # about 1 s per piece: 2 s of the 10 left
        rb.pass_share = 3 * subslope.TARGET_SHARE
        assert subslope.allowance(51282, 39) >= 2 * base + 1


def _setup(fn, laws, atoms, quantizer="meansplit"):
    names = [chr(ord("a") + i) for i in range(len(laws))]
    g = trace(fn, *names)
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    qs = [law.quantize(atoms, quantizer) for law in laws]
    k = len(ids)

    def lay(x, i):
        return np.asarray(x, dtype=float).reshape([-1 if t == i else 1 for t in range(k)])

    cells = {a: (q.lo, q.hi, q.atoms) for a, q in zip(ids, qs, strict=True)}
    e1 = {a: q.err / q.weights for a, q in zip(ids, qs, strict=True)}
    pj = taylor.jets(g, out, {a: (lay(q.atoms, i), lay(q.atoms, i)) for i, (a, q) in enumerate(zip(ids, qs))}, False)
    c = {a: 0.5 * (pj.g[a][0] + pj.g[a][1]) for a in ids}
    return g, out, ids, qs, cells, e1, c, pj.v


def _sampled(fn, laws, qs, ids, c, fx_mid, idx, rng, m):
    sps = [law.to_scipy() for law in laws]
    xs = [sp.ppf(rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), m)) for sp, q, j in zip(sps, qs, idx, strict=True)]
    lin = sum(np.broadcast_to(c[a], fx_mid.shape)[idx] * (x - q.atoms[j]) for a, x, q, j in zip(ids, xs, qs, idx))
    dev = np.abs(fn(*xs) - fx_mid[idx] - lin)
    return dev.mean() + 5 * dev.std() / math.sqrt(m)


@pytest.mark.parametrize(
    ("fn", "laws", "split"),
    [
        (_piston_like, PISTON_LAWS, (3, 3, 3)),
        (_piston_like, PISTON_LAWS, (1, 4, 2)),
        (lambda a, b: np.tanh(a - 0.5 * b) * np.exp(0.3 * a * b), [od.Normal(0, 1), od.Normal(0.5, 0.7)], (3, 2)),
        (lambda a, b: a * b / (a + b), [od.LogNormal(0.0, 0.4), od.Gamma(3.0, 1.0)], (2, 3)),
    ],
    ids=["piston_3x3x3", "piston_1x4x2", "normal_tanh", "lognormal_gamma"],
)
def test_remainder_holds_on_every_box_against_samples(fn, laws, split):
    """``sub >= E[|f(X) - f(x') - c . d| | box]`` (sampled, 5 standard errors) on every box where it is finite."""
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, 4)
    laws_by = dict(zip(ids, laws, strict=True))
    sub = subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, dict(zip(ids, split, strict=True)))
    whole = subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, {})  # one piece: the whole-box slope form
    shape = tuple(q.atoms.size for q in qs)
    sub, whole = np.broadcast_to(sub, shape), np.broadcast_to(whole, shape)
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)
    rng = np.random.default_rng(11)
    finite = 0
    for idx in np.ndindex(*shape):
        if not np.isfinite(sub[idx]):
            continue
        finite += 1
        assert sub[idx] >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 4000) - 1e-12, idx
    assert finite >= len(sub.flat) // 4
    fin = np.isfinite(whole)
    assert np.sum(np.where(fin, sub, 0)) < 0.7 * np.sum(np.where(fin, whole, 0))  # pieces do tighten it


PROGRAMS = {
    "quotient": lambda x, y: x / (x + y),
    "reused_sqrt": lambda x, y: 1.0 / (np.sqrt(x**2 + 4.0 * y) - x) ** 2,
    "exp_log": lambda x, y: np.exp(0.3 * x * y) + np.log(x + 2.0 * y),
    "powers": lambda x, y: x**0.7 * y**-1.3 + x**3 * y**2,
}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    x0=st.floats(0.3, 3.0),
    y0=st.floats(0.3, 3.0),
    wx=st.floats(1e-3, 1.5),
    wy=st.floats(1e-3, 1.5),
    mx=st.integers(1, 4),
    my=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_remainder_property_on_random_boxes(name, x0, y0, wx, wy, mx, my, seed):
    fn = PROGRAMS[name]
    laws = [od.Uniform(x0, x0 + wx), od.Uniform(y0, y0 + wy)]
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, 2)
    # this module's forms (the sampled check is an upper confidence bound: the radial forms of opgraph.dcg.radial
    # come within it of the truth; tests/dcg/test_radial.py checks them against a quadrature)
    with switches.scope({"radial_slope": False}):
        sub = subslope.remainder(g, out, ids, cells, e1, dict(zip(ids, laws)), c, fx, {ids[0]: mx, ids[1]: my})
    sub = np.broadcast_to(sub, (2, 2))
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), (2, 2))
    rng = np.random.default_rng(seed)
    for idx in np.ndindex(2, 2):
        if np.isfinite(sub[idx]):
            assert sub[idx] >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 2000) - 1e-12, (name, idx)


_sobol = functools.partial(sobol_reference, log2=15, seed=40)


@pytest.mark.parametrize(
    ("fn", "laws"), [(_piston_like, PISTON_LAWS), (_piston4, [*PISTON_LAWS, od.Uniform(1.0, 2.0)])], ids=["p3", "p4"]
)
def test_whole_bound_sound_smaller_and_taken(fn, laws):
    ref, err = _sobol(fn, laws)
    got = {}
    for on in (False, True):
        with switches.scope({"sub_slope": on}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got[on] = od.evaluate(fn, *laws, atoms=4)
    for r in got.values():
        true = w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size))
        assert r.w1_bound >= true - 3 * err
    assert got[True].info["bound_method"] == "box-linear mixture"
    assert got[True].w1_bound < 0.5 * got[False].w1_bound  # the path is taken, and it pays
    band = got[True].cdf_bounds(np.quantile(ref, [0.1, 0.5, 0.9]))
    emp = np.searchsorted(ref, np.quantile(ref, [0.1, 0.5, 0.9]), side="right") / ref.size
    assert np.all(band[0] <= emp + 1e-3) and np.all(emp <= band[1] + 1e-3)


def test_the_switch_travels():
    assert "sub_slope" in switches.capture()
    with switches.scope({"sub_slope": False}):
        assert switches.capture()["sub_slope"] is False


def test_discrete_cells_are_not_cut():
    law = od.Discrete([0.0, 1.0, 2.0, 3.0], [0.1, 0.2, 0.3, 0.4])
    lo, hi, at, e1 = np.array([0.0, 2.0]), np.array([1.0, 3.0]), np.array([0.5, 2.5]), np.array([0.5, 0.5])
    got = subslope.pieces(law, lo, hi, at, e1, 3)
    np.testing.assert_array_equal(got[0], np.repeat(lo[:, None], 3, 1))
    np.testing.assert_array_equal(got[3], np.repeat(e1[:, None], 3, 1))


def test_sliced_grid_gives_the_unsliced_bound(monkeypatch):
    # A grid over taylor.MAX_WORK is bounded in slices of its first axis; each slice runs the sub-box pass with the
    # same allowance (a regression: the slices' parts dict once shadowed the allowance, a TypeError on Borehole).
    def run() -> od.DistResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(_piston_like, *PISTON_LAWS, atoms=4)

    whole = run()
    assert whole.info["bound_method"] == "box-linear mixture"
    calls = []
    orig = taylor._box_piece

    def counted(*a, **k):
        calls.append(k.get("sub"))
        return orig(*a, **k)

    monkeypatch.setattr(taylor, "_box_piece", counted)
    monkeypatch.setattr(taylor, "MAX_WORK", 200)  # 4^3 boxes x 6 pairs = 384 > 200: two slices of the first axis
    sliced = run()
    assert len(calls) >= 2 and all(isinstance(s, int) and s > 1 for s in calls)  # the sub-box pass in every slice
    assert sliced.info["bound_method"] == "box-linear mixture"
    # the slices plan their pieces on their own boxes (not bit for bit the whole grid's plan): close, and sound
    assert sliced.w1_bound <= 1.1 * whole.w1_bound
    ref, err = _sobol(_piston_like, PISTON_LAWS)
    assert sliced.w1_bound >= w1_discrete(sliced.atoms, sliced.weights, ref, np.ones(ref.size)) - 3 * err
