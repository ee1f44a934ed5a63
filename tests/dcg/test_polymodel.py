"""Polynomial box models of long polynomial programs (:mod:`opgraph.dcg.polymodel`, branch ode-osc).

The per-box remainder ``rest >= E[|f(X) - V' - c . d| | box]`` is checked against samples drawn from each input's
law conditioned on its cell (half-line tail cells of a Normal included), its exact value on a bilinear program, the
path through the lean Taylor pass on an oscillator with a Normal input, the whole answer against scrambled-Sobol
references, and the switch.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opgraph import dcg as od
from opgraph.dcg import costguards, polymodel, switches, taylor
from opgraph.graph import trace

from .fastpath import euler_oscillator
from .test_longmix import OSC_LAWS, _grab, _sound


def _grid(fn, names, laws, atoms):
    """The traced graph, its grid's cells (laid out per axis) and moments, atoms' values and finite-difference slopes."""
    g = trace(fn, *names)
    out = g.outputs[0]
    ids = tuple(n.id for n in g.nodes if n.op == "input")
    qs = [law.quantize(atoms, "meansplit") for law in laws]
    k = len(ids)

    def lay(x, i):
        return np.asarray(x, dtype=float).reshape([-1 if t == i else 1 for t in range(k)])

    box = {a: (lay(q.lo, i), lay(q.hi, i)) for i, (a, q) in enumerate(zip(ids, qs, strict=True))}
    at = {a: lay(q.atoms, i) for i, (a, q) in enumerate(zip(ids, qs, strict=True))}
    r1 = {a: lay(q.err / q.weights, i) for i, (a, q) in enumerate(zip(ids, qs, strict=True))}
    r2 = {a: lay(q.m2 / q.weights, i) for i, (a, q) in enumerate(zip(ids, qs, strict=True))}
    shape = tuple(q.atoms.size for q in qs)
    xs = [at[a] for a in ids]
    pt = np.asarray(fn(*xs), dtype=float) * np.ones(shape)
    c = {}
    for i, a in enumerate(ids):
        e = 1e-6 * max(1.0, float(np.max(np.abs(xs[i]))))
        up = [x + (e if j == i else 0.0) for j, x in enumerate(xs)]
        dn = [x - (e if j == i else 0.0) for j, x in enumerate(xs)]
        c[a] = (np.asarray(fn(*up)) - np.asarray(fn(*dn))) / (2 * e) * np.ones(shape)
    return g, out, ids, qs, box, at, r1, r2, pt, c


def _conditional(law, lo, hi, n, rng):
    """``n`` draws of ``law`` conditioned on the cell ``[lo, hi]`` (inverse CDF; half-lines included)."""
    flo = 0.0 if not math.isfinite(lo) else float(law.cdf(lo))
    fhi = 1.0 if not math.isfinite(hi) else float(law.cdf(hi))
    u = flo + (fhi - flo) * (np.arange(n) + rng.random(n)) / n  # stratified
    x = np.asarray(law.ppf(u), dtype=float)
    return np.clip(x, lo, hi)


def _check(fn, laws, atoms, per_box=600, seed=0, degree=polymodel.DEGREE, boxes=None):
    """rest >= the sampled conditional mean of |f - V' - c . d| (4 standard errors) on the boxes; returns them."""
    g, out, ids, qs, box, at, r1, r2, pt, c = _grid(fn, [f"x{i}" for i in range(len(laws))], laws, atoms)
    rest = polymodel.rest(g, out, ids, box, at, pt, c, r1, r2, degree=degree)
    assert rest is not None
    rest = np.broadcast_to(rest, pt.shape)
    rng = np.random.default_rng(seed)
    idxs = list(np.ndindex(*pt.shape)) if boxes is None else [tuple(b % n for b, n in zip(x, pt.shape)) for x in boxes]
    for idx in idxs:
        xs = [_conditional(law, float(q.lo[i]), float(q.hi[i]), per_box, rng) for law, q, i in zip(laws, qs, idx)]
        ds = [x - float(q.atoms[i]) for x, q, i in zip(xs, qs, idx, strict=True)]
        lin = sum(float(c[a][idx]) * d for a, d in zip(ids, ds, strict=True))
        dev = np.abs(np.asarray(fn(*xs), dtype=float) - pt[idx] - lin)
        se = float(np.std(dev)) / math.sqrt(per_box)
        assert float(np.mean(dev)) - 4 * se <= float(rest[idx]), (idx, float(np.mean(dev)), float(rest[idx]))
    return rest


def test_exact_on_a_bilinear_program():
    """``x y + 0.3 x - y``: the remainder after the linear term is ``d_x d_y``, so ``rest = E|d_x| E|d_y|`` per box."""

    def fn(x, y):
        return x * y + 0.3 * x - y

    laws = [od.Uniform(1.0, 2.0), od.Uniform(-1.0, 0.5)]
    g, out, ids, qs, box, at, r1, r2, pt, c = _grid(fn, ["x", "y"], laws, 4)
    # the exact slopes at the atoms (y + 0.3, x - 1), so the linear terms cancel exactly
    c = {ids[0]: at[ids[1]] + 0.3 + 0 * pt, ids[1]: at[ids[0]] - 1.0 + 0 * pt}
    rest = np.broadcast_to(polymodel.rest(g, out, ids, box, at, pt, c, r1, r2), pt.shape)
    true = r1[ids[0]] * r1[ids[1]]
    np.testing.assert_allclose(rest, np.broadcast_to(true, pt.shape), rtol=1e-9, atol=1e-12)


def test_unsupported_ops_give_none_and_more_axes_too():
    g, out, ids, qs, box, at, r1, r2, pt, c = _grid(lambda x, y: x / y, ["x", "y"], [od.Uniform(1, 2)] * 2, 3)
    assert polymodel.rest(g, out, ids, box, at, pt, c, r1, r2) is None
    laws = [od.Uniform(0, 1)] * 4
    g, out, ids, qs, box, at, r1, r2, pt, c = _grid(lambda a, b, x, y: a * b + x * y, list("abxy"), laws, 2)
    assert polymodel.rest(g, out, ids, box, at, pt, c, r1, r2) is None  # more than MAX_AXES


def test_oscillator_with_a_normal_input_every_box_including_the_tails():
    fn = euler_oscillator(60, h=10.0 / 60)
    rest = _check(fn, OSC_LAWS, 4, per_box=400)
    assert np.all(np.isfinite(rest))  # the Normal's half-line cells too (x0 enters linearly)


def test_cube_of_an_unbounded_coordinate_is_infinite_on_the_tails_only():
    def fn(x, y):
        return x * x * x + x * y

    laws = [od.Normal(0.0, 1.0), od.Uniform(0.0, 1.0)]
    rest = _check(fn, laws, 4, per_box=400)
    assert np.all(np.isinf(rest[[0, -1], :])) and np.all(np.isfinite(rest[1:-1, :]))
    # a square of it is finite (E d^2 of the tail cell)
    rest2 = _check(lambda x, y: x * x + x * y, laws, 4, per_box=400)
    assert np.all(np.isfinite(rest2))


@settings(max_examples=10, deadline=None)
@given(
    w0=st.floats(0.5, 1.5),
    ww=st.floats(0.05, 0.5),
    z0=st.floats(0.0, 0.3),
    mu=st.floats(-1.0, 1.0),
    sd=st.floats(0.05, 0.5),
    steps=st.integers(5, 80),
    atoms=st.integers(2, 5),
    degree=st.integers(2, 6),
    seed=st.integers(0, 2**16),
)
def test_property_rest_bounds_the_conditional_remainder(w0, ww, z0, mu, sd, steps, atoms, degree, seed):
    fn = euler_oscillator(steps, h=6.0 / steps)
    laws = [od.Uniform(w0, w0 + ww), od.Uniform(z0, z0 + 0.1), od.Normal(mu, sd)]
    rng = np.random.default_rng(seed)
    boxes = [tuple(int(rng.integers(atoms)) for _ in range(3)) for _ in range(6)]
    _check(fn, laws, atoms, per_box=200, seed=seed, degree=degree, boxes=boxes)


@pytest.fixture
def long_graphs(monkeypatch):
    monkeypatch.setattr(costguards, "TAYLOR_MAX_NODES", 40)


def _evaluate(fn, laws, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, **kw)


def test_lean_pass_takes_the_models_on_an_oscillator_with_a_normal_input(long_graphs, monkeypatch):
    fn, laws = euler_oscillator(60, h=10.0 / 60), OSC_LAWS
    calls = []
    orig = polymodel.rest

    def spy(*a, **k):
        out = orig(*a, **k)
        calls.append(out)
        return out

    monkeypatch.setattr(polymodel, "rest", spy)
    seen = _grab(monkeypatch)
    r = _evaluate(fn, laws, atoms=6)
    assert calls and calls[-1] is not None
    assert r.info["taylor"].get("lean") is True and r.info["bound_method"] == "box-linear mixture"
    rest = np.asarray(seen[-1]["lin"]["rest"])
    assert np.all(np.isfinite(rest))  # tail boxes included: the mixture covers all the mass
    assert r.info["box_linear"]["boxes_mixed"] == pytest.approx(1.0)
    with switches.scope({"poly_model": False}):
        off = _evaluate(fn, laws, atoms=6)
    assert r.w1_bound < 0.5 * off.w1_bound
    _sound(r, fn, laws)
    _sound(off, fn, laws)


def test_never_worse_than_the_switch_off(long_graphs):
    for steps, atoms in ((30, 3), (60, 5)):
        fn = euler_oscillator(steps, h=10.0 / steps)
        on = _evaluate(fn, OSC_LAWS, atoms=atoms)
        with switches.scope({"poly_model": False}):
            off = _evaluate(fn, OSC_LAWS, atoms=atoms)
        assert on.w1_bound <= off.w1_bound * (1 + 1e-12)
        _sound(on, fn, OSC_LAWS, log2=14)


def test_models_only_where_the_walk_would_not_win_per_box(long_graphs, monkeypatch):
    """Per box the lean pass keeps the smaller of the walk's and the models' remainders (both valid)."""
    fn, laws = euler_oscillator(30, h=10.0 / 30), OSC_LAWS
    monkeypatch.setattr(taylor, "LEAN_MIN_GAIN", -1.0)  # the walk never gives up
    seen = _grab(monkeypatch)
    _evaluate(fn, laws, atoms=4)
    both = np.asarray(seen[-1]["lin"]["rest"])
    with switches.scope({"poly_model": False}):
        _evaluate(fn, laws, atoms=4)
    walk = np.asarray(seen[-1]["lin"]["rest"])
    assert np.all(both <= walk * (1 + 1e-9) + 1e-300)


def test_switch_is_registered_and_on_by_default():
    assert switches.capture()["poly_model"] is True
    with switches.scope({"poly_model": False}):
        assert polymodel.ENABLED.get() is False


def test_target_call_keeps_the_mixture_of_its_pilot_round(long_graphs):
    """The pilot round of a polynomial long program runs the lean pass (longmix.runs' ``polynomial``), and the answer
    keeps that round's mixture: its deferred sub-cell pass is dropped or, if run, the smaller answer is kept."""
    fn = euler_oscillator(60, h=10.0 / 60)
    r = _evaluate(fn, OSC_LAWS, target_w1=1e-5, max_seconds=8)
    assert r.info["bound_method"] == "box-linear mixture"
    fixed = (
        _evaluate(fn, OSC_LAWS, atoms=r.info["atoms_per_input"]["w"])
        if len(set(r.info["atoms_per_input"].values())) == 1
        else None
    )
    if fixed is not None:
        assert r.w1_bound <= fixed.w1_bound * (1 + 1e-9)
    _sound(r, fn, OSC_LAWS, log2=14)


@pytest.mark.parametrize("degree", [1, 2, 3, 6])
def test_truncated_monomials_go_to_the_remainder(degree):
    """``x^4 y^3`` kept to a low degree: the dropped monomials (most of the curvature) must be in ``rho``."""

    def fn(x, y):
        x2 = x * x
        return x2 * x2 * (y * y * y)

    rest = _check(fn, [od.Uniform(1.0, 3.0), od.Uniform(0.5, 1.5)], 2, per_box=2000, degree=degree)
    assert np.all(np.isfinite(rest))
