"""Re-centred sub-box slope remainder (:mod:`opgraph.dcg.subcentre`): moments, per-box soundness, the path taken."""

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
from opgraph.dcg import exactlaw, fixedbudget, roundbudget, subcentre, subslope, switches, taylor
from opgraph.dcg.engine import restrict
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference
from .test_subslope import PISTON_LAWS, _piston_like, _setup


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_subc", default=False))


def _otl_like(a, b, c):
    """A smooth 3-input program of OTL's kind (a quotient of affine forms plus a product)."""
    vb = 12.0 * b / (a + b)
    return (vb + 0.74) * c * (a + 9.0) / (c * (a + 9.0) + a) + 11.35 * a / (c * (a + 9.0) + a)


OTL_LAWS = [od.Uniform(50.0, 150.0), od.Uniform(25.0, 70.0), od.Uniform(0.5, 3.0)]


@pytest.mark.parametrize(
    "law", [od.Uniform(-1.0, 3.0), od.Normal(0.5, 2.0), od.LogNormal(0.0, 0.5), od.Gamma(2.0, 1.5)], ids=str
)
def test_piece_moments_against_quadrature(law):
    q = law.quantize(4, "meansplit")
    lo, hi, pt, cond, _ = subslope.pieces(law, q.lo, q.hi, q.atoms, q.err / q.weights, 3)
    mu, err, m2 = subcentre.piece_moments(law, lo, hi, pt, cond)
    sp = law.to_scipy()
    for idx in np.ndindex(*lo.shape):
        a, b, s = lo[idx], hi[idx], pt[idx]
        if not (np.isfinite(a) and np.isfinite(b)):  # a tail cell: unknown second moment, the old form stays
            assert m2[idx] == np.inf
            continue
        mass = sp.cdf(b) - sp.cdf(a)
        mean = integrate.quad(lambda x, s=s: (x - s) * sp.pdf(x), a, b, points=[s])[0] / mass
        sec = integrate.quad(lambda x, s=s: (x - s) ** 2 * sp.pdf(x), a, b, points=[s])[0] / mass
        assert abs(mu[idx] - mean) <= err[idx] + 1e-9 * (b - a), idx
        assert m2[idx] >= sec * (1 - 1e-7), idx
        if type(law).__name__ == "Uniform":  # exact there
            np.testing.assert_allclose(m2[idx], sec, rtol=1e-6)
        assert m2[idx] <= 0.5 * (b - a) ** 2  # never worse than h E|e| with h <= the width


def test_piece_moments_without_a_law_are_unknown():
    lo, hi = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    mu, err, m2 = subcentre.piece_moments(None, lo, hi, 0.5 * (lo + hi), np.array([0.25, 0.25]))
    assert np.all(mu == 0) and np.all(err == 0.25) and np.all(np.isinf(m2))


def _sampled(fn, laws, qs, ids, c, fx_mid, idx, rng, m):
    """A lower confidence bound (3 standard errors) on ``E[|f(X) - f(x') - c . d| | box]`` from ``m`` points.

    The new forms come within a few percent of the truth (the second-order one on small boxes), so the check is
    against the lower end: an unsound bound below the truth by more than 3 standard errors fails.
    """
    sps = [law.to_scipy() for law in laws]
    xs = [sp.ppf(rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), m)) for sp, q, j in zip(sps, qs, idx, strict=True)]
    lin = sum(np.broadcast_to(c[a], fx_mid.shape)[idx] * (x - q.atoms[j]) for a, x, q, j in zip(ids, xs, qs, idx))
    dev = np.abs(fn(*xs) - fx_mid[idx] - lin)
    return dev.mean() - 3 * dev.std() / math.sqrt(m)


CASES = [
    (_otl_like, OTL_LAWS, (3, 3, 2)),
    (_piston_like, PISTON_LAWS, (3, 3, 3)),
    (lambda a, b: np.tanh(a - 0.5 * b) * np.exp(0.3 * a * b), [od.Normal(0, 1), od.Normal(0.5, 0.7)], (3, 2)),
    (lambda a, b: a * b / (a + b), [od.LogNormal(0.0, 0.4), od.Gamma(3.0, 1.0)], (2, 3)),
]


def _remainders(fn, laws, split, atoms=4):
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, atoms)
    laws_by = dict(zip(ids, laws, strict=True))
    sp = dict(zip(ids, split, strict=True))
    got = {}
    for name, on, hess in (("old", False, False), ("centred", True, False), ("hessian", True, True)):
        with switches.scope({"sub_centred": on}):
            got[name] = subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, sp, hessian=hess)
    shape = tuple(q.atoms.size for q in qs)
    return {k: np.broadcast_to(v, shape) for k, v in got.items()}, (g, out, ids, qs, c, fx, shape)


@pytest.mark.parametrize(("fn", "laws", "split"), CASES, ids=["otl_like", "piston_3x3x3", "normal_tanh", "ln_gamma"])
def test_remainder_holds_on_every_box_and_never_exceeds_the_old_form(fn, laws, split):
    """Both re-centred forms ``>= E[|f(X) - f(x') - c . d| | box]`` (sampled) and ``<=`` the old form."""
    got, (_, _, ids, qs, c, fx, shape) = _remainders(fn, laws, split)
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)
    rng = np.random.default_rng(5)
    finite = 0
    for idx in np.ndindex(*shape):
        old = got["old"][idx]
        for key in ("centred", "hessian"):
            x = got[key][idx]
            assert x <= old * (1 + 1e-9) or not np.isfinite(old), (key, idx)
        x = got["hessian"][idx]
        if not np.isfinite(x):
            continue
        finite += 1
        assert x >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 20000) - 1e-12, idx
    assert finite >= len(got["old"].flat) // 4


def test_the_new_forms_pay_where_the_slope_shift_dominates():
    got, _ = _remainders(_otl_like, OTL_LAWS, (3, 3, 2))
    old, centred, hess = (float(np.sum(got[k])) for k in ("old", "centred", "hessian"))
    assert centred < 0.95 * old  # the square root of the shift's terms
    assert hess < 0.8 * old  # second order on the sub-boxes


PROGRAMS = {
    "quotient": lambda x, y: x / (x + y),
    "exp_log": lambda x, y: np.exp(0.3 * x * y) + np.log(x + 2.0 * y),
    "powers": lambda x, y: x**0.7 * y**-1.3 + x**3 * y**2,
    "trig": lambda x, y: np.sin(2.0 * x) * np.cos(y) + x * y,
}


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    kind=st.sampled_from(["uniform", "normal"]),
    x0=st.floats(0.3, 3.0),
    y0=st.floats(0.3, 3.0),
    wx=st.floats(1e-3, 1.5),
    wy=st.floats(1e-3, 1.5),
    mx=st.integers(1, 4),
    my=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_remainder_property_on_random_boxes(name, kind, x0, y0, wx, wy, mx, my, seed):
    fn = PROGRAMS[name]
    if kind == "uniform":
        laws = [od.Uniform(x0, x0 + wx), od.Uniform(y0, y0 + wy)]
    else:  # Normal inputs far from 0 (the programs' poles): the inner cells are split, the tail cells are not
        laws = [od.Normal(x0 + 6.0 * wx, 0.5 * wx), od.Normal(y0 + 6.0 * wy, 0.5 * wy)]
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, 4)
    sub = {}
    for on in (False, True):
        with switches.scope({"sub_centred": on}):
            sub[on] = subslope.remainder(
                g, out, ids, cells, e1, dict(zip(ids, laws)), c, fx, {ids[0]: mx, ids[1]: my}, hessian=True
            )
    shape = tuple(q.atoms.size for q in qs)
    new, old = np.broadcast_to(sub[True], shape), np.broadcast_to(sub[False], shape)
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)
    rng = np.random.default_rng(seed)
    for idx in np.ndindex(*shape):
        assert new[idx] <= old[idx] * (1 + 1e-9) or not np.isfinite(old[idx])
        if np.isfinite(new[idx]):
            assert new[idx] >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 8000) - 1e-12, (name, idx)


_sobol = functools.partial(sobol_reference, log2=15, seed=41)


def _run(fn, laws, atoms, on):
    with switches.scope({"sub_centred": on}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, atoms=atoms)


@pytest.mark.parametrize(("fn", "laws"), [(_otl_like, OTL_LAWS), (_piston_like, PISTON_LAWS)], ids=["otl", "piston"])
def test_whole_bound_sound_and_never_larger(fn, laws):
    ref, err = _sobol(fn, laws)
    off, on = _run(fn, laws, 4, False), _run(fn, laws, 4, True)
    for r in (off, on):
        assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err
    assert on.info["bound_method"] == "box-linear mixture"
    assert on.w1_bound <= off.w1_bound * (1 + 1e-9)


def test_the_path_is_taken_with_the_hessian_where_finite(monkeypatch):
    seen = []
    orig = subslope.remainder

    def spy(*a, **k):
        seen.append(k.get("hessian"))
        return orig(*a, **k)

    monkeypatch.setattr(subslope, "remainder", spy)
    off = _run(_otl_like, OTL_LAWS, 4, False)
    n_off = len(seen)
    on = _run(_otl_like, OTL_LAWS, 4, True)
    assert seen[n_off:] and all(seen[n_off:])  # smooth: the whole boxes' Hessian form is finite, so it is tried
    assert on.w1_bound < 0.9 * off.w1_bound  # and it pays on the whole call


def test_the_hessian_gate_follows_the_finite_share():
    w = np.array([0.25, 0.25, 0.5])
    assert taylor._finite_share(np.array([1.0, np.inf, 2.0]), w, (3,)) == 0.75
    assert taylor._finite_share(np.array([np.inf, np.inf, np.nan]), w, (3,)) == 0.0
    assert taylor._finite_share(np.array([1.0, 1.0, 1.0]), np.zeros(3), (3,)) == 0.0
    assert subcentre.HESSIAN_MIN_FINITE <= 0.75


def test_hessian_term_counts_each_pair_once():
    iv1 = (np.array(-2.0), np.array(1.0))  # mag 2
    h = {(0, 0): iv1, (0, 1): iv1, (1, 1): (np.array(0.5), np.array(0.5))}
    e1 = {0: np.array(0.3), 1: np.array(0.1)}
    m2 = {0: np.array(0.2), 1: np.array(0.05)}
    got = subcentre.hessian_term(h, e1, m2)
    assert math.isclose(float(got), 0.5 * 2 * 0.2 + 2 * 0.3 * 0.1 + 0.5 * 0.5 * 0.05)
    e1[1] = np.array(0.0)  # e_1 = 0 almost surely: its terms vanish even with an unbounded entry
    h[(1, 1)] = (np.array(-np.inf), np.array(np.inf))
    assert math.isclose(float(subcentre.hessian_term(h, e1, m2)), 0.5 * 2 * 0.2)


def test_the_switch_travels():
    assert "sub_centred" in switches.capture()
    with switches.scope({"sub_centred": False}):
        assert switches.capture()["sub_centred"] is False
        assert subcentre.ENABLED.get() is False


def test_fewer_pieces_at_more_atoms_evaluate_the_halved_request(monkeypatch):
    """Where the grid of ``2N`` gets fewer sub-box pieces per box than that of ``N``, ``bound(2N) <= bound(N)``."""
    monkeypatch.setattr(subslope, "HALVE_WHERE_FEWER", True)  # off by default (its cost; subslope.MAX_PIECES)
    monkeypatch.setattr(subslope, "MAX_PIECES", 256)
    g = trace(_piston_like, "a", "b", "c")
    rg = restrict(g, g.outputs[0])
    nodes = len(rg[0].nodes)
    # the allowance: all pieces on the 4-atom grid (64 boxes), a few on the 8-atom grid (512 boxes)
    per = fixedbudget.allowance("sub_slope") / (subslope.MAX_PIECES * 64 * nodes)
    monkeypatch.setattr(subslope, "SECONDS_PER_BOX_NODE", per)
    assert subslope.allowance(64, nodes) == subslope.MAX_PIECES
    assert subslope.allowance(512, nodes) < subslope.MAX_PIECES // 4
    restricted = [rg]
    eight, four = dict.fromkeys("abc", 8), dict.fromkeys("abc", 4)
    assert subslope.fewer_pieces(restricted, eight, four)
    assert not subslope.fewer_pieces(restricted, four, four)
    with roundbudget.scope(100.0):  # inside a target_w1 call: its time budget decides, no halving
        assert not subslope.fewer_pieces(restricted, eight, four)
    with switches.scope({"sub_slope": False}):
        assert not subslope.fewer_pieces(restricted, eight, four)
    r4, r8 = _run(_piston_like, PISTON_LAWS, 4, True), _run(_piston_like, PISTON_LAWS, 8, True)
    note = r8.info["smaller_request"]
    assert note["requested"] == four  # the path is taken
    assert r8.w1_bound == min(note["requested_grid_bound"], r4.w1_bound)
    assert r8.w1_bound <= r4.w1_bound
    ref, err = _sobol(_piston_like, PISTON_LAWS)
    assert r8.w1_bound >= w1_discrete(r8.atoms, r8.weights, ref, np.ones(ref.size)) - 3 * err
