"""The walk on sub-boxes (:mod:`opgraph.dcg.subwalk`): enclosures, per-box soundness, the choice, the path taken."""

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
from opgraph.dcg import exactlaw, subslope, subwalk, switches, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference
from .test_subcentre import OTL_LAWS, _otl_like, _sampled
from .test_subslope import PISTON_LAWS, _piston_like, _setup


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_subwalk", default=False))


def _piston_volume(m, s, k, p):
    """Piston's chain with every input used several times: ``sqrt(A^2 + B) + A`` inside a quotient."""
    a = p * s + 19.62 * m - k * 0.004 / s
    r = np.sqrt(a**2 + 4.0 * k * p * 0.004 * 0.8) + a
    return 2.0 * np.pi * np.sqrt(m / (k + r**2 / (4.0 * p * 0.004 * 0.8)))


VOLUME_RANGES = [(30.0, 60.0), (0.005, 0.02), (1000.0, 5000.0), (9e4, 1.1e5)]
VOLUME_LAWS = [od.Uniform(a, b) for a, b in VOLUME_RANGES]

PROGRAMS = {
    "reused_sqrt": lambda x, y: np.sqrt(x**2 + 4.0 * y) - x + x * y,
    "quotient": lambda x, y: x * y / (x + y) + y / x,
    "exp_log": lambda x, y: np.exp(0.3 * x * y) + np.log(x + 2.0 * y) * x,
    "three": lambda x, y: (x + y) ** 2 / (1.0 + x * y) - np.sqrt(x * y + x),
}


def _gradients_at(fn_graph, out, ids, pts):
    """The gradient at points (the point pass: degenerate intervals, tight up to rounding)."""
    pj = taylor.jets(fn_graph, out, {a: (pts[a], pts[a]) for a in ids}, hess=False)
    return {a: pj.g[a] for a in ids if a in pj.g}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(sorted(PROGRAMS)),
    x0=st.floats(0.2, 3.0),
    y0=st.floats(0.2, 3.0),
    wx=st.floats(1e-3, 2.0),
    wy=st.floats(1e-3, 2.0),
    first=st.integers(0, 1),
    seed=st.integers(0, 2**16),
)
def test_walk_enclosure_contains_sampled_gradients(name, x0, y0, wx, wy, first, seed):
    """Each walk box's enclosure of ``df/dx_a`` contains the gradient at random points of that walk box."""
    g = trace(PROGRAMS[name], "x", "y")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    lo = {ids[0]: np.array([x0]), ids[1]: np.array([y0])}
    hi = {ids[0]: np.array([x0 + wx]), ids[1]: np.array([y0 + wy])}
    rng = np.random.default_rng(seed)
    point = {a: lo[a] + rng.uniform(0, 1) * (hi[a] - lo[a]) for a in ids}
    box = {a: (lo[a], hi[a]) for a in ids}
    order = [ids[first], ids[1 - first]]
    kept: dict = {}
    taylor.jets(g, out, box, hess=False, centre=point, centred=True, keep_points=kept)
    got = subwalk.gradients(g, out, ids, order, box, point, kept)
    assert set(got) == {order[0]}  # the last axis of a full walk has the whole sub-box: left out
    a = order[0]
    m = 400  # the walk box of the first axis: it alone free, the other at the sub-box's point
    pts = {t: (rng.uniform(lo[t], hi[t], m) if t == a else np.full(m, point[t][0])) for t in ids}
    pts[a][:2] = lo[a][0], hi[a][0]
    gl, gh = _gradients_at(g, out, ids, pts)[a]
    glo, ghi = got[a]
    tol = 1e-9 * (np.abs(gl) + np.abs(gh) + 1e-300)
    assert np.all(glo[0] <= gh + tol) and np.all(gl - tol <= ghi[0]), name


def test_walk_enclosure_is_tighter_than_the_sub_box_on_a_reused_chain():
    g = trace(_piston_volume, "m", "s", "k", "p")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    box = {
        a: (np.array([lo + 0.40 * (hi - lo)]), np.array([lo + 0.55 * (hi - lo)]))
        for a, (lo, hi) in zip(ids, VOLUME_RANGES, strict=True)
    }
    point = {a: 0.5 * (box[a][0] + box[a][1]) for a in ids}
    kept: dict = {}
    whole = taylor.jets(g, out, box, hess=False, centre=point, centred=True, keep_points=kept)
    got = subwalk.gradients(g, out, ids, ids, box, point, kept)
    assert set(got) == set(ids[:-1])
    for a in ids[:-1]:
        assert got[a][1][0] - got[a][0][0] < 0.5 * (whole.g[a][1][0] - whole.g[a][0][0]), a


def _remainders(fn, laws, split, walk_of, atoms=4):
    g, out, ids, qs, cells, e1, c, fx = _setup(fn, laws, atoms)
    laws_by = dict(zip(ids, laws, strict=True))
    sp = dict(zip(ids, split, strict=True))
    got = {
        key: subslope.remainder(g, out, ids, cells, e1, laws_by, c, fx, sp, walk=wk, hessian=True)
        for key, wk in (("old", []), ("walk", walk_of(ids)))
    }
    shape = tuple(q.atoms.size for q in qs)
    return {k: np.broadcast_to(v, shape) for k, v in got.items()}, (ids, qs, c, fx, shape)


CASES = [
    (_otl_like, OTL_LAWS, (3, 3, 2)),
    (_piston_like, PISTON_LAWS, (3, 3, 3)),
    (_piston_volume, VOLUME_LAWS, (2, 3, 2, 1)),
    (lambda a, b: a * b / (a + b), [od.LogNormal(0.0, 0.4), od.Gamma(3.0, 1.0)], (2, 3)),
]


@pytest.mark.parametrize(("fn", "laws", "split"), CASES, ids=["otl_like", "piston_3x3x3", "piston_volume", "ln_gamma"])
def test_remainder_with_the_walk_holds_and_never_exceeds_the_same_pieces_without(fn, laws, split):
    """``E[|f(X) - f(x') - c . d| | box] <=`` the walk's bound (sampled, 20,000 points) ``<=`` the bound without."""
    got, (ids, qs, c, fx, shape) = _remainders(fn, laws, split, lambda ids: ids[::-1])
    mid = np.broadcast_to(0.5 * (fx[0] + fx[1]), shape)
    rng = np.random.default_rng(11)
    finite = 0
    for idx in np.ndindex(*shape):
        old, new = got["old"][idx], got["walk"][idx]
        assert new <= old * (1 + 1e-9) or not np.isfinite(old), idx
        if not np.isfinite(new):
            continue
        finite += 1
        if finite <= 24:  # the sampled check on the first boxes (cost)
            assert new >= _sampled(fn, laws, qs, ids, c, mid, idx, rng, 20000) - 1e-12, idx
    assert finite >= len(got["old"].flat) // 4


def test_the_walk_pays_on_a_reused_chain():
    # The walk's own gain, against the pieces' remainder with the chain rule's quotient Hessians (the quotient form,
    # opgraph.dcg.hessdiv, tightens the pieces without the walk too: old 5.05, walk 4.06, 0.80x) and without the
    # radial forms (opgraph.dcg.radial, which also tighten the pass without the walk).
    with switches.scope({"hess_quotient": False, "radial_slope": False}):
        got, _ = _remainders(_piston_volume, VOLUME_LAWS, (2, 3, 2, 1), lambda ids: ids[::-1])
    assert float(np.sum(got["walk"])) < 0.8 * float(np.sum(got["old"]))


def test_pieces_allowed_pays_the_steps():
    assert subwalk.pieces_allowed(64, 0) == 64
    assert subwalk.pieces_allowed(64, 3) == int(64 / (1 + 3 * subwalk.COST_PER_STEP))
    assert subwalk.pieces_allowed(1, 3) == 1


def test_take_restricts_broadcast_layouts():
    x = np.arange(12.0).reshape(3, 4)
    idx = [np.array([0, 2]), np.array([1])]
    np.testing.assert_array_equal(subwalk._take(x, idx), [[1.0], [9.0]])
    np.testing.assert_array_equal(subwalk._take(np.ones((1, 4)), idx), np.ones((1, 1)))
    assert float(subwalk._take(np.float64(2.0), idx)) == 2.0


def _run(fn, laws, atoms, on):
    # the walk's own gain: without the radial forms (opgraph.dcg.radial; with them the walk does not change this bound)
    with switches.scope({"sub_walk": on, "radial_slope": False}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, atoms=atoms)


_sobol = functools.partial(sobol_reference, log2=15, seed=43)


def test_the_path_is_taken_and_the_whole_bound_is_sound(monkeypatch):
    seen: list = []
    orig = subslope.remainder

    def spy(*a, **k):
        seen.append(list(k.get("walk", ())))
        return orig(*a, **k)

    monkeypatch.setattr(subslope, "remainder", spy)
    monkeypatch.setattr(subwalk, "MIN_SECONDS", 0.0)  # a small grid: the sample decides even there
    off = _run(_piston_volume, VOLUME_LAWS, 4, False)
    assert seen and not any(seen)  # the switch off: no walk anywhere
    n_off = len(seen)
    on = _run(_piston_volume, VOLUME_LAWS, 4, True)
    assert any(seen[n_off:])  # the sample found the walk pays: the pass walked
    assert on.info["bound_method"] == "box-linear mixture"
    assert on.w1_bound < off.w1_bound
    ref, err = _sobol(_piston_volume, VOLUME_LAWS)
    for r in (off, on):
        assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err


def test_a_cheap_pass_is_not_walked(monkeypatch):
    """Under ``MIN_SECONDS`` of predicted pass the choice is the plain plan, without running the sample."""
    g, out, ids, qs, cells, e1, c, fx = _setup(_piston_volume, VOLUME_LAWS, 2)
    scores = dict.fromkeys(ids, 1.0)
    calls: list = []
    monkeypatch.setattr(subslope, "remainder", lambda *a, **k: calls.append(1))
    split, walk = subwalk.choose(g, out, ids, cells, e1, dict(zip(ids, VOLUME_LAWS)), c, fx, 1.0, scores, 16)
    assert walk == [] and split == subslope.plan(scores, 16) and not calls


@pytest.mark.parametrize("one_axis", [False, True])
def test_the_choice_pays_the_walk_with_fewer_pieces(monkeypatch, one_axis):
    """A walking plan has at most ``pieces_allowed`` sub-boxes, its axes the largest terms; else the plain plan."""
    monkeypatch.setattr(subwalk, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(subwalk, "ONE_AXIS", one_axis)
    g, out, ids, qs, cells, e1, c, fx = _setup(_piston_volume, VOLUME_LAWS, 4)
    scores = {a: float(s) for a, s in zip(ids, (4.0, 3.0, 2.0, 1.0), strict=True)}
    w = np.ones(tuple(q.atoms.size for q in qs)) / 256
    laws = dict(zip(ids, VOLUME_LAWS, strict=True))
    split, walk = subwalk.choose(g, out, ids, cells, e1, laws, c, fx, w, scores, 24, rest=w)
    if walk:
        assert walk == ids[: subwalk.STEPS]
        assert math.prod(split.values()) <= subwalk.pieces_allowed(24, subwalk.STEPS)
        if not one_axis:
            assert split == subslope.plan(scores, subwalk.pieces_allowed(24, subwalk.STEPS))
    else:
        assert split == subslope.plan(scores, 24)


def test_the_switch_travels():
    assert "sub_walk" in switches.capture()
    with switches.scope({"sub_walk": False}):
        assert switches.capture()["sub_walk"] is False
        assert subwalk.ENABLED.get() is False
    assert math.isfinite(subwalk.COST_PER_STEP)
