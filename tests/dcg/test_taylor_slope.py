"""The mean-value (slope) remainder of the Taylor box bound and its affine-arithmetic gradients.

``opgraph.dcg.taylor._slope`` bounds ``E[|f(X) - f(x') - c . d| | box]`` by ``sum_i mag(G_i - c_i) E|d_i|`` (``G_i``
enclosures of ``df/dx_i`` over the box, or over the thinner boxes of a walk); ``opgraph.dcg.affgrad`` encloses the
gradients in affine arithmetic. Checked here: the enclosures contain sampled gradients (a hypothesis property), the
per-box statements against samples inside every box, never worse than the Hessian form, the path taken, and a whole
bound against a scrambled Sobol reference with the box-linear mixture on.
"""

from __future__ import annotations

import contextvars
import functools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opgraph import dcg as od
from opgraph.dcg import affgrad, exactlaw, switches, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off", default=False))


PROGRAMS = {
    "quotient": lambda x, y: x / (x + y),
    "reused_sqrt": lambda x, y: 1.0 / (np.sqrt(x**2 + 4.0 * y) - x) ** 2,
    "exp_log": lambda x, y: np.exp(0.3 * x * y) + np.log(x + 2.0 * y),
    "trig_tanh": lambda x, y: np.sin(x - y) * np.tanh(x + 0.5 * y) + np.cos(2.0 * x),
    "powers": lambda x, y: x**0.7 * y**-1.3 + x**3 * y**2,
}


def _grid_jets(fn, lo, hi, n):
    g = trace(fn, "x", "y")
    out = g.outputs[0]
    ids = [nd.id for nd in g.nodes if nd.op == "input"]
    box = {
        a: (
            np.array([lo[i]]).reshape([-1 if t == i else 1 for t in range(2)]),
            np.array([hi[i]]).reshape([-1 if t == i else 1 for t in range(2)]),
        )
        for i, a in enumerate(ids)
    }
    return g, out, ids, box


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    x0=st.floats(0.3, 3.0),
    y0=st.floats(0.3, 3.0),
    wx=st.floats(1e-4, 0.8),
    wy=st.floats(1e-4, 0.8),
    seed=st.integers(0, 2**16),
)
def test_affine_gradients_contain_sampled_gradients(name, x0, y0, wx, wy, seed):
    fn = PROGRAMS[name]
    g, out, ids, box = _grid_jets(fn, (x0, y0), (x0 + wx, y0 + wy), 1)
    enc = affgrad.gradients(g, out, ids, box, ids)
    rng = np.random.default_rng(seed)
    xs = np.concatenate([[x0, x0 + wx], rng.uniform(x0, x0 + wx, 200)])
    ys = np.concatenate([[y0 + wy, y0], rng.uniform(y0, y0 + wy, 200)])
    pts = taylor.jets(g, out, {ids[0]: (xs, xs), ids[1]: (ys, ys)}, hess=False)
    for a in ids:
        lo, hi = (float(np.ravel(e)[0]) for e in enc[a])
        gl, gh = pts.g[a]
        assert np.all(gl >= lo) and np.all(gh <= hi), (name, a, lo, hi, gl.min(), gh.max())


def test_affine_gradient_enclosure_is_second_order():
    # x / (x + y): the interval enclosure of df/dx stays 2.7x the true range as the box shrinks; the affine one
    # tends to it (its overestimate is second order in the width).
    fn = PROGRAMS["quotient"]
    for w, cap in ((0.1, 1.25), (0.01, 1.05)):
        g, out, ids, box = _grid_jets(fn, (1 - w, 2 - w), (1 + w, 2 + w), 1)
        enc = affgrad.gradients(g, out, ids, box, ids)
        interval = taylor.jets(g, out, box, hess=False).g[ids[0]]
        xs, ys = np.meshgrid(np.linspace(1 - w, 1 + w, 41), np.linspace(2 - w, 2 + w, 41))
        gx = ys / (xs + ys) ** 2
        true = gx.max() - gx.min()
        width = float(np.ravel(enc[ids[0]][1] - enc[ids[0]][0])[0])
        assert true <= width <= cap * true
        assert width < 0.6 * float(np.ravel(interval[1] - interval[0])[0])


def _setup(fn, names, laws, atoms, quantizer="meansplit"):
    g = trace(fn, *names)
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    qs = [law.quantize(atoms, quantizer) for law in laws]
    k = len(ids)

    def lay(x, i):
        return np.asarray(x).reshape([-1 if t == i else 1 for t in range(k)])

    cells = {a: (q.lo, q.hi, q.atoms) for a, q in zip(ids, qs, strict=True)}
    moments = {a: (q.weights, q.err, q.bias, q.m2) for a, q in zip(ids, qs, strict=True)}
    wbox = np.ones([q.atoms.size for q in qs])
    for i, q in enumerate(qs):
        wbox = wbox * lay(q.weights, i)
    pt = fn(*[lay(q.atoms, i) for i, q in enumerate(qs)]) * np.ones(wbox.shape)
    return g, out, ids, qs, cells, moments, wbox, pt


def _run(setup, slope, affine=True, walk=True, uniform=True):
    g, out, ids, qs, cells, moments, wbox, pt = setup
    old = taylor.SLOPE, taylor.SLOPE_AFFINE, taylor.SLOPE_WALK
    taylor.SLOPE, taylor.SLOPE_AFFINE, taylor.SLOPE_WALK = slope, affine, walk
    try:
        parts: dict[str, float] = {}
        lin: dict = {}
        uni = frozenset(ids) if uniform else frozenset()
        tb = taylor.box_bound(g, out, tuple(ids), pt, cells, moments, wbox, parts, uniform=uni, linear=lin)
    finally:
        taylor.SLOPE, taylor.SLOPE_AFFINE, taylor.SLOPE_WALK = old
    assert tb is not None
    return tb, parts, lin


def _piston_like(a, b, c):
    v = np.sqrt(a**2 + 4.0 * b * c) - a
    return c**1.5 / v**2 + 0.2 * a * b


PISTON_LAWS = [od.Uniform(0.5, 2.0), od.Uniform(0.2, 1.0), od.Uniform(1.0, 3.0)]


@pytest.mark.parametrize("variant", ["affine_walk", "interval_walk", "whole_box"])
def test_rest_holds_on_every_box_against_samples(variant):
    """``rest >= E[|f(X) - V' - c . d| | box]`` (sampled, 5 standard errors) on every box; slope taken somewhere."""
    setup = _setup(_piston_like, ["a", "b", "c"], PISTON_LAWS, 4)
    g, out, ids, qs, cells, moments, wbox, pt = setup
    affine = variant == "affine_walk"
    walk = variant != "whole_box"
    tb, parts, lin = _run(setup, True, affine=affine, walk=walk)
    tb_off, _, lin_off = _run(setup, False)
    rest, c = lin["rest"], lin["c"]
    assert parts["slope_mass"] > 0  # the slope form won on some boxes
    assert np.all(rest <= lin_off["rest"] * (1 + 1e-12))  # never worse than the Hessian form, per box
    assert np.all(tb <= tb_off * (1 + 1e-12))
    assert np.any(rest < 0.5 * lin_off["rest"])
    rng = np.random.default_rng(3)
    m = 4000
    for idx in np.ndindex(*wbox.shape):
        xs = [rng.uniform(q.lo[j], q.hi[j], m) for q, j in zip(qs, idx, strict=True)]
        lin_part = sum(c[a][idx] * (x - q.atoms[j]) for a, x, q, j in zip(ids, xs, qs, idx, strict=True))
        dev = np.abs(_piston_like(*xs) - pt[idx] - lin_part)
        assert rest[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(m), idx
        dev0 = np.abs(_piston_like(*xs) - pt[idx]) * wbox[idx]
        assert tb[idx] >= dev0.mean() - 5 * dev0.std() / math.sqrt(m), idx


def test_jumps_keep_the_slope_form_unbounded():
    # floor straddled on a box: the interval derivative is the whole line, so the slope form is infinite there and
    # the box keeps the Hessian form's (also infinite) bound; on decided boxes both are finite and sound.
    def fn(a, b):
        return np.floor(2.0 * a) + a * b

    setup = _setup(fn, ["a", "b"], [od.Uniform(0.1, 1.9), od.Uniform(0.0, 1.0)], 4)
    g, out, ids, qs, cells, moments, wbox, pt = setup
    tb, _, lin = _run(setup, True)
    tb_off, _, lin_off = _run(setup, False)
    np.testing.assert_array_equal(np.isfinite(lin["rest"]), np.isfinite(lin_off["rest"]))
    rng = np.random.default_rng(4)
    for idx in np.ndindex(*wbox.shape):
        xs = [rng.uniform(q.lo[j], q.hi[j], 3000) for q, j in zip(qs, idx, strict=True)]
        dev = np.abs(fn(*xs) - pt[idx]) * wbox[idx]
        assert tb[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(3000)


def test_slope_on_normal_tails_stays_sound():
    # Tail cells: E|d| is finite where E d^2 is used by the Hessian form; bounded derivatives (tanh) make the slope
    # form finite there.
    def fn(x, y):
        return np.tanh(x - 0.5 * y) + 0.3 * np.tanh(x * 0.7 + y)

    laws = [od.Normal(0, 1), od.Normal(0.5, 0.7)]
    setup = _setup(fn, ["x", "y"], laws, 4, quantizer="quantile")
    g, out, ids, qs, cells, moments, wbox, pt = setup
    tb, _, _ = _run(setup, True, uniform=False)
    tb_off, _, _ = _run(setup, False, uniform=False)
    assert np.all(tb <= tb_off * (1 + 1e-12))
    rng = np.random.default_rng(5)
    sps = [law.to_scipy() for law in laws]
    for idx in np.ndindex(*wbox.shape):
        if not np.isfinite(tb[idx]):
            continue
        xs = [
            sp.ppf(rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), 3000)) for sp, q, j in zip(sps, qs, idx, strict=True)
        ]
        dev = np.abs(fn(*xs) - pt[idx]) * wbox[idx]
        assert tb[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(3000), idx


def test_affine_gradients_in_slices_match(monkeypatch):
    setup = _setup(_piston_like, ["a", "b", "c"], PISTON_LAWS, 6)
    g, out, ids, qs, cells, moments, wbox, pt = setup
    box = {
        a: (
            q.lo.reshape([-1 if t == i else 1 for t in range(3)]),
            q.hi.reshape([-1 if t == i else 1 for t in range(3)]),
        )
        for i, (a, q) in enumerate(zip(ids, qs, strict=True))
    }
    whole = affgrad.gradients(g, out, ids, box, ids)
    monkeypatch.setattr(affgrad, "MAX_SLICE", 40)
    sliced = affgrad.gradients(g, out, ids, box, ids)
    for a in ids:
        for e in (0, 1):
            np.testing.assert_allclose(
                np.broadcast_to(sliced[a][e], wbox.shape), np.broadcast_to(whole[a][e], wbox.shape), rtol=1e-12
            )


_sobol_reference = functools.partial(sobol_reference, log2=15, seed=40)


@pytest.mark.parametrize("box_linear", [False, True])
def test_whole_bound_sound_and_not_looser(box_linear):
    ref, err = _sobol_reference(_piston_like, PISTON_LAWS)
    got = {}
    for slope in (False, True):
        old = taylor.SLOPE
        taylor.SLOPE = slope
        try:
            with switches.scope({"box_linear": box_linear}), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got[slope] = od.evaluate(_piston_like, *PISTON_LAWS, atoms=6)
        finally:
            taylor.SLOPE = old
    for r in got.values():
        true = w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size))
        assert r.w1_bound >= true - 3 * err
    assert got[True].w1_bound <= got[False].w1_bound * (1 + 1e-9)


@pytest.mark.parametrize(("walk", "affine", "want"), [(False, False, 0.02), (True, False, 0.01), (True, True, 0.01)])
def test_slope_form_exact_on_a_product(walk, affine, want):
    # f = x y on [1, 1.2] x [2, 2.4], atoms at the centres, E|d| = width / 4 (uniform cells): the gradient
    # enclosures are exact, so the whole-box form is 0.2 * 0.05 + 0.1 * 0.1 = 0.02; the walk holds y at its atom while
    # x moves (G_x = 2.2 = c_x: no term) and pays 0.01 for y; the true E|d_x d_y| is 0.005.
    g = trace(lambda x, y: x * y, "x", "y")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    box = {ids[0]: (np.array([[1.0]]), np.array([[1.2]])), ids[1]: (np.array([[2.0]]), np.array([[2.4]]))}
    at = {ids[0]: (np.array([[1.1]]),) * 2, ids[1]: (np.array([[2.2]]),) * 2}
    got: list = []
    outer = taylor.jets(g, out, box, hess=True, centre={a: at[a][0] for a in ids}, point_out=got)
    r1 = {ids[0]: np.array([[0.05]]), ids[1]: np.array([[0.1]])}
    s = taylor._slope(g, out, ids, outer, got[0], box, at, r1, walk=walk, affine=affine)
    np.testing.assert_allclose(np.ravel(s)[0], want, rtol=1e-6)


def _quotient3(a, b, c):
    return a * b / (1.0 + c * a) + np.exp(0.3 * b * c)


def _square_pole(a, b, c):
    return c / (a * a - 2.0 * a * b + b * b + 0.1)  # (a - b)^2 + 0.1 > 0; its natural enclosure reaches 0


@pytest.mark.parametrize(("fn", "centres"), [(_square_pole, True), (_quotient3, False)])
def test_walk_shortcuts_give_the_same_bound(monkeypatch, fn, centres):
    """The walk's one-seed pass and reused point values (``WALK_ONE_SEED``, ``WALK_POINTS``) change no bound.

    On ``c / ((a - b)^2 + 0.1)`` the walk's boxes reach the pole (the divisor's natural enclosure reaches 0, its
    value enclosures are centred): the one-seed pass stops and the full pass runs with the box pass's point values;
    on the quotient no operand of a pole reaches 0, and the one-seed pass is the answer.
    """
    setup = _setup(fn, ["a", "b", "c"], PISTON_LAWS, 4)
    seen = {"returned": 0, "stopped": 0, "points": 0}
    jets = taylor.jets

    def spy(*args, **kw):
        if kw.get("points") is not None:
            seen["points"] += 1
        if kw.get("pole_check") is None:
            return jets(*args, **kw)
        try:
            out = jets(*args, **kw)
        except taylor._WouldCentre:
            seen["stopped"] += 1
            raise
        seen["returned"] += 1
        return out

    got = {}
    for on in (False, True):
        monkeypatch.setattr(taylor, "WALK_ONE_SEED", on)
        monkeypatch.setattr(taylor, "WALK_POINTS", on)
        monkeypatch.setattr(taylor, "jets", spy if on else jets)
        got[on] = _run(setup, True)
    # the same operations on the same values: equal up to the last-bit noise of NumPy's vectorised transcendental
    # kernels (exp / log / power, which depends on the arrays' memory alignment: two runs of the same code differ so)
    for x, y in ((got[True][0], got[False][0]), (got[True][2]["rest"], got[False][2]["rest"])):
        assert np.array_equal(np.isinf(x), np.isinf(y))
        fin = np.isfinite(y)
        np.testing.assert_allclose(x[fin], y[fin], rtol=1e-13, atol=0)
    if centres:
        assert seen["stopped"] > 0 and seen["points"] > 0
    else:
        assert seen["returned"] == 2 and seen["stopped"] == 0  # k - 1 walk steps, each one pass
