"""The box-linear mixture on long programs (branch ode-mix): the lean Taylor pass of :mod:`opgraph.dcg.longmix`.

Long programs here are short Euler ODEs made "long" by lowering ``costguards.TAYLOR_MAX_NODES`` (the guard that kept
the Taylor pass, and so the mixture, off graphs of more than 2,048 nodes). The lean pass takes the point pass and
the affine slope walk only; its per-box remainder is checked against samples in every box, its answers against
scrambled-Sobol references, and the whole call against the switch off (never a larger bound).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opgraph import dcg as od
from opgraph.dcg import costguards, engine, fixedbudget, longmix, switches
from opgraph.dcg.w1 import w1_discrete

from .fastpath import euler_oscillator
from .sobolref import sobol_reference
from .test_ode_wrapping import LOG_LAWS, _logistic

OSC_LAWS = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]


@pytest.fixture
def long_graphs(monkeypatch):
    """Graphs of more than 40 nodes count as long for the Taylor pass (the lean pass applies to them)."""
    monkeypatch.setattr(costguards, "TAYLOR_MAX_NODES", 40)


def _grab(monkeypatch) -> list[dict]:
    """Records every lean Taylor pass: its linear models, the computed values and the cells of its grid."""
    seen: list[dict] = []
    orig = engine._taylor_boxes

    def wrap(ev, graph, val, box_bound, attr, chunk=False):
        out = orig(ev, graph, val, box_bound, attr, chunk)
        if out[2] is not None and out[2].get("lean") and ev.box_linear:
            axes = val.axes
            seen.append(
                {
                    "lin": ev.box_linear,
                    "pt": np.broadcast_to(np.asarray(val.pt, dtype=float), ev._shape(axes)),
                    "names": [graph.nodes[a].attrs["name"] for a in axes],
                    "cells": [(ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes],
                    "axes": axes,
                }
            )
        return out

    monkeypatch.setattr(engine, "_taylor_boxes", wrap)
    return seen


def _evaluate(fn, laws, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, **kw)


def _sound(r, fn, laws, log2: int = 15) -> float:
    sample, err = sobol_reference(fn, laws, log2=log2)
    true = w1_discrete(r.atoms, r.weights, sample, np.ones(sample.size))
    assert true - err <= r.w1_bound
    return true


def _check_rest(rec: dict, fn, order: list[str], per_box: int = 400, seed: int = 0) -> int:
    """``rest >= E|f(X) - V' - c . (X - x')|`` on every box of finite uniform cells (samples, 4 standard errors)."""
    g = np.random.default_rng(seed)
    lin, pt, cells, axes = rec["lin"], rec["pt"], rec["cells"], rec["axes"]
    rest = np.asarray(lin["rest"])
    shape = rest.shape
    checked = 0
    for idx in np.ndindex(*shape):
        if not math.isfinite(float(rest[idx])):
            continue
        xs, ds = {}, {}
        lin_part = 0.0
        for j, (a, name) in enumerate(zip(axes, rec["names"], strict=True)):
            lo, hi, at = (float(np.asarray(v)[idx[j]]) for v in cells[j])
            assert math.isfinite(lo) and math.isfinite(hi)
            x = g.uniform(lo, hi, per_box)
            xs[name], ds[name] = x, x - at
            lin_part = lin_part + float(np.asarray(lin["c"][a])[idx]) * ds[name]
        dev = np.abs(fn(*[xs[n] for n in order]) - float(pt[idx]) - lin_part)
        se = float(np.std(dev)) / math.sqrt(per_box)
        assert float(np.mean(dev)) - 4 * se <= float(rest[idx]) * (1 + 1e-12) + 1e-12, idx
        checked += 1
    return checked


def test_lean_pass_runs_on_a_long_logistic_ode_and_beats_the_point_mass_answer(long_graphs, monkeypatch):
    fn, laws = _logistic(40), LOG_LAWS
    seen = _grab(monkeypatch)
    r = _evaluate(fn, laws, atoms=10)
    assert r.info["taylor"].get("lean") is True
    assert r.info["bound_method"] == "box-linear mixture"
    with switches.scope({"long_mixture": False}):
        off = _evaluate(fn, laws, atoms=10)
    assert off.info.get("taylor") is None  # the guard as before: no Taylor pass on a long graph
    assert r.w1_bound < 0.5 * off.w1_bound
    _sound(r, fn, laws)
    _sound(off, fn, laws)
    assert seen and _check_rest(seen[-1], fn, ["r", "k", "x0"], per_box=200) == 10**3


def test_lean_rest_holds_on_every_box_of_the_oscillator_with_a_normal_input(long_graphs, monkeypatch):
    fn, laws = euler_oscillator(30), OSC_LAWS
    seen = _grab(monkeypatch)
    r = _evaluate(fn, laws, atoms=5)
    assert r.info["taylor"].get("lean") is True
    _sound(r, fn, laws)
    rec = seen[-1]
    # boxes of the Normal input's half-line cells have no affine enclosure: their rest is infinite (point masses)
    rest = np.asarray(rec["lin"]["rest"])
    assert np.isfinite(rest).any()
    finite_rec = dict(rec)
    finite_rec["lin"] = dict(rec["lin"])
    j = rec["names"].index("x0")
    lo, hi, _ = rec["cells"][j]
    tail = ~(np.isfinite(np.asarray(lo)) & np.isfinite(np.asarray(hi)))
    mask = np.broadcast_to(tail.reshape([-1 if t == j else 1 for t in range(rest.ndim)]), rest.shape)
    finite_rec["lin"]["rest"] = np.where(mask, np.inf, rest)
    assert _check_rest(finite_rec, fn, ["w", "z", "x0"]) > 0


def test_never_worse_than_the_switch_off_and_sound_on_both_odes(long_graphs):
    for fn, laws in ((_logistic(30), LOG_LAWS), (euler_oscillator(30), OSC_LAWS)):
        for atoms in (3, 8):
            on = _evaluate(fn, laws, atoms=atoms)
            with switches.scope({"long_mixture": False}):
                off = _evaluate(fn, laws, atoms=atoms)
            assert on.w1_bound <= off.w1_bound * (1 + 1e-12)
            _sound(on, fn, laws, log2=14)


def test_lean_pass_skipped_past_its_fixed_budget_and_without_the_mixture(long_graphs, monkeypatch):
    fn, laws = _logistic(30), LOG_LAWS
    monkeypatch.setitem(fixedbudget.SECONDS, "long_mixture", 0.0)
    assert _evaluate(fn, laws, atoms=4).info.get("taylor") is None
    monkeypatch.setitem(fixedbudget.SECONDS, "long_mixture", 1e9)
    with switches.scope({"box_linear": False}):
        assert _evaluate(fn, laws, atoms=4).info.get("taylor") is None
    assert _evaluate(fn, laws, atoms=4).info["taylor"].get("lean") is True


def test_short_graphs_are_unchanged_by_the_switch():
    fn, laws = _logistic(8), LOG_LAWS  # 40-odd nodes: not long, the full Taylor pass
    a = _evaluate(fn, laws, atoms=5)
    with switches.scope({"long_mixture": False}):
        b = _evaluate(fn, laws, atoms=5)
    assert a.w1_bound == b.w1_bound and np.array_equal(a.atoms, b.atoms)
    assert not a.info["taylor"].get("lean")


def test_switch_is_registered_and_on_by_default():
    assert switches.capture()["long_mixture"] is True
    with switches.scope({"long_mixture": False}):
        assert longmix.ENABLED.get() is False


def test_lean_pass_in_a_target_call(long_graphs, monkeypatch):
    fn, laws = _logistic(20), LOG_LAWS
    seen = _grab(monkeypatch)
    r = _evaluate(fn, laws, target_w1=0.5, max_seconds=1e4)
    assert r.certified and seen
    _sound(r, fn, laws, log2=14)


def test_lean_pass_gives_up_where_the_mixture_cannot_gain(long_graphs, monkeypatch):
    from opgraph.dcg import taylor

    fn, laws = _logistic(30), LOG_LAWS
    monkeypatch.setattr(taylor, "LEAN_MIN_GAIN", 2.0)  # no mixture can save twice the engine's bound
    r = _evaluate(fn, laws, atoms=6)
    assert "nothing to gain" in r.info["taylor"]["skipped"] and r.info["taylor"]["lean"]
    with switches.scope({"long_mixture": False}):
        off = _evaluate(fn, laws, atoms=6)
    assert r.w1_bound == off.w1_bound and np.array_equal(r.atoms, off.atoms)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    r0=st.floats(0.3, 1.0),
    rw=st.floats(0.05, 0.5),
    x0=st.floats(2.0, 20.0),
    steps=st.integers(12, 30),
    atoms=st.integers(2, 5),
)
def test_property_lean_rest_bounds_the_sampled_remainder(long_graphs, monkeypatch, r0, rw, x0, steps, atoms):
    fn = _logistic(steps)
    laws = [od.Uniform(r0, r0 + rw), od.Uniform(80.0, 120.0), od.Uniform(x0, x0 + 5.0)]
    seen = _grab(monkeypatch)
    r = _evaluate(fn, laws, atoms=atoms)
    if seen:
        _check_rest(seen[-1], fn, ["r", "k", "x0"], per_box=200)
    _sound(r, fn, laws, log2=13)


def test_lean_rest_is_the_slope_walk_on_a_long_product(long_graphs, monkeypatch):
    """``x y + sum 0.001 x`` (a long chain): ``E|f - f(x') - c . d| = E|d_x| E|d_y|`` per box, the walk gives 2x that."""

    def fn(x, y):
        t = x * y
        for _ in range(30):
            t = t + 0.001 * x
        return t

    monkeypatch.setattr(costguards, "TAYLOR_MAX_NODES", 3)  # the sums are regrouped into a few nodes
    seen = _grab(monkeypatch)
    with switches.scope({"poly_model": False}):  # the walk alone (the polynomial models give the true value here)
        _evaluate(fn, [od.Uniform(1.0, 2.0), od.Uniform(0.0, 1.0)], atoms=4)
    rec = seen[-1]
    rest = np.asarray(rec["lin"]["rest"])
    (lx, hx, ax), (ly, hy, ay) = (tuple(np.asarray(v, dtype=float) for v in c) for c in rec["cells"])
    # uniform cells with centred atoms: E|d| = width / 4; the true remainder E|d_x d_y| = E|d_x| E|d_y|
    ex, ey = (hx - lx) / 4, (hy - ly) / 4
    true = ex[:, None] * ey[None, :]
    assert rec["names"] == ["x", "y"]
    # the walk's first step holds the other input at its atom (df/dx_1 exact: term 0), its last step spans the other
    # input's cell: mag(x_1 - x_1') E|d_2| = (w_1 / 2) (w_2 / 4), twice the true remainder: exactly the theorem's value
    np.testing.assert_allclose(rest, 2 * true, rtol=1e-6, atol=1e-12)
    # with the polynomial models (opgraph.dcg.polymodel: x y is its own model) the rest is the true remainder
    _evaluate(fn, [od.Uniform(1.0, 2.0), od.Uniform(0.0, 1.0)], atoms=4)
    np.testing.assert_allclose(np.asarray(seen[-1]["lin"]["rest"]), true, rtol=1e-6, atol=1e-12)


def test_target_rounds_of_long_programs_skip_the_pilot_and_reserve_the_pass(monkeypatch):
    from opgraph.dcg import roundbudget

    monkeypatch.setattr(costguards, "TAYLOR_MAX_NODES", 2048)

    counts = {"r": 12, "k": 12, "x0": 12}
    assert longmix.reserve(None, counts) == 0.0
    with roundbudget.scope(1e6) as rb:
        assert rb is not None
        rb.start_long_call(5000)
        # the pilot round (no round measured yet in this call): no lean pass
        assert not longmix.runs(12**3, 5000, 3)
        want = roundbudget.SAFETY * longmix.seconds(12**3, 5000, 3)
        assert longmix.reserve(rb, counts) == pytest.approx(want)
        rb.record(1e6, 1.0)  # the pilot measured: later rounds run it where it fits
        assert longmix.runs(12**3, 5000, 3)
        rb.lean_idle = True  # a lean pass of this call stopped with nothing to gain: nothing held back for it
        assert longmix.reserve(rb, counts) == 0.0
        rb.start_long_call(0)  # a short program: no reservation
        assert longmix.reserve(rb, counts) == 0.0
        rb.start_long_call(1000)  # long for the rounds, short enough for the full Taylor pass: no lean pass
        assert longmix.reserve(rb, counts) == 0.0
        with switches.scope({"long_mixture": False}):
            assert not longmix.runs(12**3, 5000, 3)
