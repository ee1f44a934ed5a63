"""Sub-box remainder on half-line cells (:mod:`opgraph.dcg.tailsub`): pieces, per-box statements, whole bounds."""

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
from opgraph.dcg import exactlaw, fixedbudget, roundbudget, subslope, switches, tailsub, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_tailsub", default=False))


@pytest.mark.parametrize(
    "law", [od.Normal(0.5, 2.0), od.LogNormal(0.0, 0.5), od.Gamma(2.0, 1.5), od.Exponential(1.3)], ids=str
)
def test_half_line_pieces_against_quadrature(law):
    q = law.quantize(4, "meansplit")
    e1 = q.err / q.weights
    m, ratio = 4, 0.5
    lo, hi, pt, cond, share = subslope.pieces(law, q.lo, q.hi, q.atoms, e1, m, ratio)
    sp = law.to_scipy()
    halves = 0
    for i in range(q.lo.size):
        np.testing.assert_allclose(share[i].sum(), 1.0, rtol=1e-12)
        assert lo[i, 0] == q.lo[i] and hi[i, -1] == q.hi[i]
        np.testing.assert_array_equal(hi[i, :-1], lo[i, 1:])
        half = np.isfinite(q.lo[i]) != np.isfinite(q.hi[i])
        halves += int(half)
        if half:  # geometric masses, the smallest at the unbounded end
            far = -1 if np.isinf(q.hi[i]) else 0
            s = share[i] if far == -1 else share[i, ::-1]
            np.testing.assert_allclose(s[1:] / s[:-1], ratio, rtol=1e-6)
            assert s[-1] == s.min()
        for j in range(m):
            assert lo[i, j] <= pt[i, j] <= hi[i, j] and np.isfinite(pt[i, j])
            mass = sp.cdf(hi[i, j]) - sp.cdf(lo[i, j])
            parts = [(lo[i, j], pt[i, j]), (pt[i, j], hi[i, j])]
            exact = sum(integrate.quad(lambda x, s=pt[i, j]: abs(x - s) * sp.pdf(x), a, b)[0] for a, b in parts)
            assert cond[i, j] >= exact / mass * (1 - 1e-7)
            assert cond[i, j] <= exact / mass * 1.001 + 1e-12
    assert halves >= 1
    # without a ratio a half-line cell is not cut (copies of itself), as before
    old = subslope.pieces(law, q.lo, q.hi, q.atoms, e1, m)
    for i in range(q.lo.size):
        if np.isfinite(q.lo[i]) != np.isfinite(q.hi[i]):
            np.testing.assert_array_equal(old[3][i], e1[i])


@pytest.mark.parametrize(
    "law", [od.Normal(0.5, 2.0), od.LogNormal(0.0, 0.5), od.Gamma(2.0, 1.5), od.Exponential(1.3)], ids=str
)
def test_half_line_second_moments_against_quadrature(law):
    q = law.quantize(4, "meansplit")
    lo, hi, pt, cond, _ = subslope.pieces(law, q.lo, q.hi, q.atoms, q.err / q.weights, 4, 0.5)
    unknown = (np.zeros(lo.shape), cond, np.full(lo.shape, np.inf))
    _, _, m2 = tailsub.half_line_moments(law, lo, hi, pt, unknown)
    sp = law.to_scipy()
    checked = 0
    for i, j in np.ndindex(*lo.shape):
        if np.isfinite(lo[i, j]) and np.isfinite(hi[i, j]):
            assert m2[i, j] == np.inf  # finite pieces: left to subcentre.piece_moments
            continue
        mass = sp.cdf(hi[i, j]) - sp.cdf(lo[i, j])
        exact = integrate.quad(lambda x, s=pt[i, j]: (x - s) ** 2 * sp.pdf(x), lo[i, j], hi[i, j])[0] / mass
        assert exact * (1 - 1e-7) <= m2[i, j] <= exact * (1 + 1e-6) + 1e-12
        checked += 1
    assert checked >= 1


def _setup(fn, laws, atoms):
    names = [chr(ord("a") + i) for i in range(len(laws))]
    g = trace(fn, *names)
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    qs = [law.quantize(atoms, "meansplit") for law in laws]
    k = len(ids)

    def lay(x, i):
        return np.asarray(x, dtype=float).reshape([-1 if t == i else 1 for t in range(k)])

    cells = {a: (q.lo, q.hi, q.atoms) for a, q in zip(ids, qs, strict=True)}
    moments = {a: (q.weights, q.err) for a, q in zip(ids, qs, strict=True)}
    pj = taylor.jets(g, out, {a: (lay(q.atoms, i), lay(q.atoms, i)) for i, (a, q) in enumerate(zip(ids, qs))}, False)
    c = {a: 0.5 * (pj.g[a][0] + pj.g[a][1]) for a in ids}
    w = functools.reduce(np.multiply, [lay(q.weights, i) for i, q in enumerate(qs)])
    return g, out, ids, qs, cells, moments, c, pj.v, w


def _sampled(fn, laws, qs, ids, c, fx_mid, idx, rng, m):
    """A low estimate of ``E[|f(X) - f(x') - c . d| | box]``: the sample mean less 3 standard errors.

    A bound below it is below the true value with a probability of about 1e-3 (the test fails on an unsound form); a
    high estimate would fail on tight bounds (relu-like box (1, 3): bound 0.00297, exact 0.00271 by quadrature).
    """
    sps = [law.to_scipy() for law in laws]
    xs = []
    for sp, q, j in zip(sps, qs, idx, strict=True):
        u = rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), m)
        xs.append(np.clip(sp.ppf(np.clip(u, 1e-300, 1 - 1e-16)), q.lo[j], q.hi[j]))
    lin = sum(np.broadcast_to(c[a], fx_mid.shape)[idx] * (x - q.atoms[j]) for a, x, q, j in zip(ids, xs, qs, idx))
    dev = np.abs(fn(*xs) - fx_mid[idx] - lin)
    return dev.mean() - 3 * dev.std() / math.sqrt(m)


def _tail_boxes(qs):
    shape = tuple(q.atoms.size for q in qs)
    for idx in np.ndindex(*shape):
        if any(np.isfinite(q.lo[j]) != np.isfinite(q.hi[j]) for q, j in zip(qs, idx, strict=True)):
            yield idx


def _run(fn, laws, atoms):
    """The pass on every box with a half-line cell (a large finite held remainder: nothing kept from it)."""
    g, out, ids, qs, cells, moments, c, fx, w = _setup(fn, laws, atoms)
    shape = tuple(q.atoms.size for q in qs)
    held = np.full(shape, 1e9)
    stats: dict[str, float] = {}
    got = tailsub.remainder(g, out, ids, cells, moments, dict(zip(ids, laws, strict=True)), c, fx, held, w, stats)
    return got, stats, ids, qs, c, np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)


def _mlp(a, b):
    return 0.8 * np.tanh(0.9 * a - 0.5 * b + 0.1) - 0.6 * np.tanh(0.3 * a + 0.7 * b - 0.2) + 0.2 * a * b


PROGRAMS = {
    "mlp": _mlp,
    "tanh_product": lambda a, b: np.tanh(a - 0.5 * b) * (1.0 + 0.3 * a * b),
    "sin_square": lambda a, b: np.sin(a) + 0.1 * (a + b) ** 2,
    "arctan": lambda a, b: np.arctan(2.0 * a + b) + 0.5 * b,
    "relu": lambda a, b: np.maximum(a - 0.3 * b, 0.0) + 0.2 * np.tanh(b),
}
#: Half-line boxes (of 12) where the pass must be finite: a product of the inputs has unbounded second derivatives
#: on a half-line (the whole-box forms are infinite there too), a kink (relu) an unbounded Hessian where it straddles.
FINITE = {"mlp": 12, "tanh_product": 0, "sin_square": 12, "arctan": 12, "relu": 1}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_remainder_holds_on_every_tail_box_against_samples(name):
    """``tailsub >= E[|f(X) - f(x') - c . d| | box]`` (30,000 samples, 3 standard errors) on every half-line box."""
    fn = PROGRAMS[name]
    laws = [od.Normal(0.2, 1.0), od.Normal(-0.3, 0.8)]
    got, stats, ids, qs, c, mid = _run(fn, laws, 4)
    assert got is not None and stats["tail_sub_boxes"] == 12  # 16 boxes, the 2 x 2 inner ones have no half-line
    rng = np.random.default_rng(5)
    finite = 0
    for idx in _tail_boxes(qs):
        if np.isfinite(got[idx]) and got[idx] < 1e9:
            finite += 1
            assert got[idx] >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 30000) - 1e-12, idx
    assert finite >= FINITE[name]
    # the inner boxes keep the held remainder
    assert got[1, 1] == got[1, 2] == got[2, 1] == got[2, 2] == 1e9


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    mu=st.floats(-1.0, 1.0),
    s0=st.floats(0.2, 2.0),
    s1=st.floats(0.2, 2.0),
    atoms=st.sampled_from([2, 3]),
    ratio=st.sampled_from([0.25, 0.5, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_remainder_property_on_random_normal_tails(name, mu, s0, s1, atoms, ratio, seed):
    fn = PROGRAMS[name]
    laws = [od.Normal(mu, s0), od.Normal(-mu, s1)]
    old = tailsub.RATIO
    tailsub.RATIO = ratio
    try:
        got, _, ids, qs, c, mid = _run(fn, laws, atoms)
    finally:
        tailsub.RATIO = old
    assert got is not None
    rng = np.random.default_rng(seed)
    for idx in _tail_boxes(qs):
        if np.isfinite(got[idx]) and got[idx] < 1e9:
            assert got[idx] >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 4000) - 1e-12, (name, idx)


def test_pieces_tighten_the_whole_box_form():
    """On the MLP-like program the pass beats the whole-box forms on the half-line boxes (the path pays)."""
    fn = PROGRAMS["mlp"]
    laws = [od.Normal(0.0, 1.0), od.Normal(0.0, 1.0)]
    got, _, ids, qs, c, _ = _run(fn, laws, 8)
    g, out, ids, qs, cells, moments, c, fx, w = _setup(fn, laws, 8)
    laws_by = dict(zip(ids, laws, strict=True))
    e1 = {a: m[1] / m[0] for a, m in moments.items()}
    # the same forms on the whole boxes (one piece each; the half-line cells' second moments in closed form)
    whole = subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, {}, hessian=True, ratio=tailsub.RATIO)
    whole = np.broadcast_to(whole, got.shape)
    tails = [idx for idx in _tail_boxes(qs)]
    w = np.broadcast_to(w, got.shape)
    new = sum(w[i] * got[i] for i in tails)
    before = sum(w[i] * whole[i] for i in tails)
    assert np.isfinite(before) and new < 0.5 * before


_sobol = functools.partial(sobol_reference, log2=15, seed=41)


def _mlp3(a, b, c):
    h1 = np.tanh(0.7 * a - 0.4 * b + 0.3 * c + 0.1)
    h2 = np.tanh(-0.2 * a + 0.6 * b + 0.5 * c - 0.2)
    h3 = np.tanh(0.5 * a + 0.5 * b - 0.6 * c)
    return 0.9 * h1 - 0.7 * h2 + 0.5 * h3


def test_whole_bound_sound_smaller_and_taken(monkeypatch):
    laws = [od.Normal(0.0, 1.0)] * 3
    ref, err = _sobol(_mlp3, laws)
    calls = []
    orig = tailsub.remainder

    def counted(*a, **k):
        got = orig(*a, **k)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(tailsub, "remainder", counted)
    got = {}
    for on in (False, True):
        calls.clear()
        with switches.scope({"tail_sub": on}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got[on] = od.evaluate(_mlp3, *laws, atoms=8)
        assert any(calls) == on  # the path is taken only with the switch on
    for r in got.values():
        assert r.info["bound_method"] == "box-linear mixture"
        true = w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size))
        assert r.w1_bound >= true - 3 * err
    assert got[True].w1_bound < 0.8 * got[False].w1_bound  # and it pays
    t_on = w1_discrete(got[True].atoms, got[True].weights, ref, np.ones(ref.size))
    t_off = w1_discrete(got[False].atoms, got[False].weights, ref, np.ones(ref.size))
    assert t_on <= t_off + 3 * err  # the answer is not less accurate (its lattice step follows the remainder)


def test_budget_and_switch(monkeypatch):
    fn = PROGRAMS["mlp"]
    laws = [od.Normal(0.0, 1.0), od.Normal(0.0, 1.0)]
    assert _run(fn, laws, 4)[0] is not None
    with switches.scope({"tail_sub": False}):
        assert _run(fn, laws, 4)[0] is None
    assert "tail_sub" in switches.capture()
    monkeypatch.setitem(fixedbudget.SECONDS, "tail_sub", 0.0)
    assert _run(fn, laws, 4)[0] is None  # no allowance: the pass does not run
    monkeypatch.setitem(fixedbudget.SECONDS, "tail_sub", 4.0)
    with roundbudget.scope(1e-9):  # a target_w1 call with (almost) no time left
        assert _run(fn, laws, 4)[0] is None


def test_uniform_inputs_have_no_blocks():
    g, out, ids, qs, cells, moments, c, fx, w = _setup(lambda a, b: np.tanh(a * b), [od.Uniform(0, 1)] * 2, 4)
    assert tailsub.blocks(ids, cells, dict(zip(ids, [od.Uniform(0, 1)] * 2, strict=True))) == []
    got = tailsub.remainder(g, out, ids, cells, moments, {}, c, fx, np.ones((4, 4)), w)
    assert got is None


def test_tight_relu_box_against_quadrature():
    """The relu-like program's box (1, 3) reduces to ``0.2 tanh(b)`` (the kink inactive): its exact value by quadrature."""
    from scipy import stats

    laws = [od.Normal(0.0, 1.0), od.Normal(0.0, 2.0)]
    old = tailsub.RATIO
    tailsub.RATIO = 1.0
    try:
        got, _, ids, qs, c, mid = _run(PROGRAMS["relu"], laws, 4)
    finally:
        tailsub.RATIO = old
    sp = stats.norm(0.0, 2.0)
    lo, at = qs[1].lo[3], qs[1].atoms[3]
    cb = float(np.broadcast_to(c[ids[1]], got.shape)[1, 3])
    f0 = float(mid[1, 3])

    def g(b):
        return abs(0.2 * np.tanh(b) - f0 - cb * (b - at)) * sp.pdf(b)

    exact = (integrate.quad(g, lo, at, epsabs=1e-14)[0] + integrate.quad(g, at, np.inf, epsabs=1e-14)[0]) / sp.sf(lo)
    assert qs[0].hi[1] <= 0 and lo > 0  # a - 0.3 b < 0 on the box: f = 0.2 tanh(b) there
    assert exact <= got[1, 3] <= 1.5 * exact
