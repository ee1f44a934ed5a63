"""The box-linear mixture's slope work: reused across an evaluation's finishes, gated by the probe, Hessian skipped.

``opgraph.dcg.engine._taylor_boxes`` reuses the Taylor pass of an evaluation's first ``finish`` in its second (after
the sub-cell pass; ``engine.MEMO_TAYLOR``). Where the mixture asks for linear models and its larger work caps would
run the walk or the affine gradients beyond the default caps, ``opgraph.dcg.taylor.box_bound``'s probe decides
(``taylor.MIX_GATE``): where ``2 rest`` saves under ``MIX_MIN_GAIN`` of the engine's bound on the probe's boxes, the
pass runs as without the mixture (no linear models); where the Hessian form wins on none of the probe's boxes, the
whole pass skips the Hessian enclosures (and, opt-in with ``taylor.WALK_TOL``, walk passes the probe finds idle).
Checked: the paths are taken, the results are those of the old paths where they should be (up to the last-bit
noise of NumPy's kernels), never below sampled per-box references, and whole answers against scrambled Sobol
references.
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
from opgraph.dcg import engine, exactlaw, switches, taylor
from opgraph.dcg.w1 import w1_discrete

from .sobolref import sobol_reference
from .test_taylor_slope import PISTON_LAWS, _piston_like, _setup

#: The piston-like boxes drawn by the property tests: positions and widths of the two inputs, the exponent.
_BOX_LAWS = {
    "a0": st.floats(0.3, 2.0),
    "aw": st.floats(0.05, 1.5),
    "b0": st.floats(0.1, 1.0),
    "bw": st.floats(0.05, 1.0),
    "k": st.floats(0.5, 6.0),
}


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off", default=False))


@pytest.fixture
def small_caps(monkeypatch):
    """Default slope caps below a 3-input grid's work and a probe on 8+ boxes: the gate acts on small grids."""
    monkeypatch.setattr(taylor, "WALK_MAX_WORK", 2**8)
    monkeypatch.setattr(taylor, "AFFINE_MAX_WORK", 2**8)
    monkeypatch.setattr(taylor, "PROBE_MIN_BOXES", 8)


def _same(x, y):
    """Equal up to the last-bit noise of NumPy's vectorised transcendental kernels (memory alignment)."""
    x, y = np.asarray(x), np.asarray(y)
    assert np.array_equal(np.isinf(x), np.isinf(y))
    fin = np.isfinite(y)
    np.testing.assert_allclose(x[fin], y[fin], rtol=1e-13, atol=0)


def _bound(setup, engine_bound, linear=True):
    g, out, ids, qs, cells, moments, wbox, pt = setup
    parts: dict[str, float] = {}
    lin: dict | None = {} if linear else None
    tb = taylor.box_bound(
        g,
        out,
        tuple(ids),
        pt,
        cells,
        moments,
        wbox,
        parts,
        (cells, moments),
        uniform=frozenset(ids),
        linear=lin,
        engine_bound=engine_bound,
    )
    return tb, parts, lin


def test_gate_closed_gives_the_pass_without_the_mixture(small_caps):
    setup = _setup(_piston_like, ["a", "b", "c"], PISTON_LAWS, 5)
    wbox = setup[6]
    tb, parts, lin = _bound(setup, 1e-30 * wbox)  # the engine's bound is already far below any 2 rest
    assert parts["mix_gated"] == 1.0 and parts["probe_mix_gain"] == 0.0
    assert lin == {}  # no linear models: the engine builds no mixture (as with the switch off)
    plain, _, _ = _bound(setup, None, linear=False)
    assert (tb is None) == (plain is None)
    if tb is not None:
        _same(tb, plain)


def _sampled_check(setup, tb, lin, seed):
    """rest >= E|f - V' - c . d| and tb >= E|f - V'| w on every box (sampled, 5 standard errors)."""
    g, out, ids, qs, cells, moments, wbox, pt = setup
    rng = np.random.default_rng(seed)
    m = 3000
    for idx in np.ndindex(*wbox.shape):
        xs = [rng.uniform(q.lo[j], q.hi[j], m) for q, j in zip(qs, idx, strict=True)]
        if lin:
            lin_part = sum(lin["c"][a][idx] * (x - q.atoms[j]) for a, x, q, j in zip(ids, xs, qs, idx, strict=True))
            dev = np.abs(_piston_like(*xs) - pt[idx] - lin_part)
            assert lin["rest"][idx] >= dev.mean() - 5 * dev.std() / math.sqrt(m), idx
        dev0 = np.abs(_piston_like(*xs) - pt[idx]) * wbox[idx]
        assert tb[idx] >= dev0.mean() - 5 * dev0.std() / math.sqrt(m), idx


@pytest.mark.parametrize("walk_tol", [None, 0.05, 10.0])
def test_gate_open_skips_the_hessian_and_walk_passes(monkeypatch, small_caps, walk_tol):
    monkeypatch.setattr(taylor, "WALK_TOL", walk_tol)
    setup = _setup(_piston_like, ["a", "b", "c"], PISTON_LAWS, 5)
    wbox = setup[6]
    huge = np.full(wbox.shape, 1e300)
    tb, parts, lin = _bound(setup, huge)
    assert "mix_gated" not in parts and parts["probe_mix_gain"] > 0.5
    # the paths are taken: the Hessian form won on no probe box and the pass without the mixture would not run
    assert parts["probe_hessian_wins"] == 0.0 and parts["probe_gain_off"] < taylor.PROBE_MIN_GAIN
    assert parts["hessian"] == 0.0
    decisions = [v for key, v in parts.items() if key.startswith("probe_walk_")]
    assert len(decisions) == 2  # every walk step but the last
    if walk_tol is None:
        assert all(v == 0.0 for v in decisions)  # the default: no walk pass skipped
    elif walk_tol > 1:
        assert all(v in (1.0, 2.0) for v in decisions)  # one pass of every step skipped
    assert lin and np.all(np.isfinite(lin["rest"]))
    monkeypatch.setattr(taylor, "MIX_GATE", False)
    tb_full, parts_full, lin_full = _bound(setup, huge)
    assert parts_full["slope_mass"] == parts_full["finite_mass"]  # the Hessian form won nowhere here either
    # one form and some passes fewer: never tighter than the full pass, per box
    assert np.all(tb >= tb_full * (1 - 1e-12))
    assert np.all(lin["rest"] >= lin_full["rest"] * (1 - 1e-12))
    if walk_tol is None:  # only the Hessian form dropped, which won on no box: the full pass's bound
        _same(tb, tb_full)
        _same(lin["rest"], lin_full["rest"])
    elif walk_tol < 1:
        assert np.sum(tb) <= 1.05 * np.sum(tb_full)
    # never worse than the pass without the mixture, which does not run here (probe) or takes no walk
    monkeypatch.setattr(taylor, "MIX_GATE", True)
    plain, _, _ = _bound(setup, None, linear=False)
    assert plain is None or np.all(tb <= plain * (1 + 1e-12))
    _sampled_check(setup, tb, lin, 11)


def _product(x, y, z):
    return x * y * z + 0.5 * x * y


def test_hessian_kept_where_it_wins_on_the_probe(small_caps):
    # a product: the Hessian form (exact second partials) wins on some boxes, so the whole pass keeps it
    laws = [od.Uniform(1.0, 3.0), od.Uniform(-1.0, 2.0), od.Uniform(0.5, 1.5)]
    setup = _setup(_product, ["x", "y", "z"], laws, 4)
    tb, parts, lin = _bound(setup, np.full(setup[6].shape, 1e300))
    assert parts["probe_hessian_wins"] > 0 and parts["hessian"] == 1.0
    old = taylor.MIX_GATE
    taylor.MIX_GATE = False
    try:
        tb_full, _, _ = _bound(setup, np.full(setup[6].shape, 1e300))
    finally:
        taylor.MIX_GATE = old
    _same(tb, tb_full)


@settings(max_examples=25, deadline=None)
@given(
    **_BOX_LAWS,
    n=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_slope_only_pass_is_sound_on_every_box(a0, aw, b0, bw, k, n, seed):
    """``hessian=False`` and random walk passes skipped: never below a sampled ``E|f(X) - V'| w`` on any box."""

    def fn(a, b, c):
        return c / (np.sqrt(a**2 + k * b * c) - a) + 0.3 * a * b

    laws = [od.Uniform(a0, a0 + aw), od.Uniform(b0, b0 + bw), od.Uniform(1.0, 2.0)]
    g, out, ids, qs, cells, moments, wbox, pt = _setup(fn, ["a", "b", "c"], laws, n)
    lin: dict = {}
    rng = np.random.default_rng(seed)
    steps = {a: tuple(bool(x) for x in rng.integers(0, 2, 2)) for a in ids}  # any passes of the walk skipped
    tb = taylor._box_piece(
        g, out, ids, pt, cells, moments, wbox, None, linear=lin, affine=True, walk=True, hessian=False, steps=steps
    )
    with_h = taylor._box_piece(g, out, ids, pt, cells, moments, wbox, None, affine=True, walk=True)
    assert np.all(tb >= with_h * (1 - 1e-12))  # one form fewer: never tighter than the full pass
    m = 2000
    for idx in np.ndindex(*wbox.shape):
        if not np.isfinite(tb[idx]):
            continue
        xs = [rng.uniform(q.lo[j], q.hi[j], m) for q, j in zip(qs, idx, strict=True)]
        dev = np.abs(fn(*xs) - pt[idx]) * wbox[idx]
        assert tb[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(m) - 1e-12, idx


def _count_passes(monkeypatch):
    calls: list[int] = []
    orig = taylor.box_bound

    def spy(*args, **kw):
        calls.append(1)
        return orig(*args, **kw)

    monkeypatch.setattr(taylor, "box_bound", spy)
    return calls


_sobol_reference = functools.partial(sobol_reference, log2=15, seed=41)


def test_memo_reuses_the_pass_with_the_same_answer(monkeypatch):
    """At 6 atoms both graphs (the program and its cancellation rewrite) finish twice (the sub-cell pass between)."""
    calls = _count_passes(monkeypatch)
    got = {}
    for memo in (False, True):
        monkeypatch.setattr(engine, "MEMO_TAYLOR", memo)
        calls.clear()
        with switches.scope({"box_linear": True}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = od.evaluate(_piston_like, *PISTON_LAWS, atoms=6)
        got[memo] = (r, len(calls))
    (r0, n0), (r1, n1) = got[False], got[True]
    assert n0 == 4 and n1 == 2  # the path is taken: one pass per graph
    assert r1.info["taylor"].get("reused") is True
    # the same pass reused (bit for bit) against a repeated one (the same up to the kernels' last-bit noise)
    assert r1.w1_bound == pytest.approx(r0.w1_bound, rel=1e-12)
    assert r1.atoms.shape == r0.atoms.shape
    np.testing.assert_allclose(r1.atoms, r0.atoms, rtol=1e-12)
    np.testing.assert_allclose(r1.weights, r0.weights, rtol=1e-12)
    ref, err = _sobol_reference(_piston_like, PISTON_LAWS)
    true = w1_discrete(r1.atoms, r1.weights, ref, np.ones(ref.size))
    assert r1.w1_bound >= true - 3 * err


@pytest.mark.parametrize("gate", [False, True])
def test_whole_answer_sound_with_the_gate(monkeypatch, small_caps, gate):
    monkeypatch.setattr(taylor, "MIX_GATE", gate)
    with switches.scope({"box_linear": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_piston_like, *PISTON_LAWS, atoms=8)
    if gate:
        assert "mix_gate" in r.info["taylor"]
    ref, err = _sobol_reference(_piston_like, PISTON_LAWS)
    true = w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size))
    assert r.w1_bound >= true - 3 * err
    with switches.scope({"box_linear": False}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        off = od.evaluate(_piston_like, *PISTON_LAWS, atoms=8)
    assert r.w1_bound <= off.w1_bound * (1 + 1e-9)  # never worse than the mixture off


@settings(max_examples=20, deadline=None)
@given(
    **_BOX_LAWS,
    n=st.integers(3, 5),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e300]),
)
def test_gate_never_above_the_pass_without_the_mixture(a0, aw, b0, bw, k, n, scale):
    """Per box, the gated pass (any engine bound: the gate closed or open) is at most the switch-off pass's."""

    def fn(a, b, c):
        return c / (np.sqrt(a**2 + k * b * c) - a) + 0.3 * a * b

    laws = [od.Uniform(a0, a0 + aw), od.Uniform(b0, b0 + bw), od.Uniform(1.0, 2.0)]
    setup = _setup(fn, ["a", "b", "c"], laws, n)
    saved = taylor.WALK_MAX_WORK, taylor.AFFINE_MAX_WORK, taylor.PROBE_MIN_BOXES
    taylor.WALK_MAX_WORK, taylor.AFFINE_MAX_WORK, taylor.PROBE_MIN_BOXES = 2**8, 2**8, 8
    try:
        tb, parts, _ = _bound(setup, scale * setup[6])
        plain, _, _ = _bound(setup, None, linear=False)
    finally:
        taylor.WALK_MAX_WORK, taylor.AFFINE_MAX_WORK, taylor.PROBE_MIN_BOXES = saved
    if plain is not None:
        assert tb is not None
        assert np.all(tb <= plain * (1 + 1e-12) + 1e-300), parts
