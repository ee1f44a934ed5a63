"""Centred log-space box bound (opgraph.dcg.centredlog) and the ratio rule (opgraph.dcg.mobius); issue 14 section 3.

Checks: the centred bound *alone* (the point-mass bound of :mod:`opgraph.dcg.elastic` switched off per box) is above a
Monte Carlo estimate of ``E[|f(X) - f(x')|; box]`` on every box (LogNormal inputs with tails, Normal inputs in the
linear coordinate, random programs under hypothesis); it is the path taken (the damped oscillator's bound falls with
it); the engine's bound stays above a 2^20-point Sobol reference of the exact W1 on a lognormal program with the
oscillator's tuning ratio, and above the suite's reference on DampedOsc.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from opgraph import dcg as od
from opgraph.dcg import elastic
from opgraph.dcg.distributions import LogNormal, Normal
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .logprograms import PARAMS, box_costs, program
from .logprograms import laws as log_laws
from .sobolref import sobol_reference
from .test_cellmoments import OSC_LAWS, oscillator
from .test_elastic import _at_atoms, _grid, normal_prog, ratio_prog


def tuned_prog(a, b, c, d):
    """The damped oscillator's shape on four LogNormal inputs: a tuning ratio near 0 inside the bulk, a resonance."""
    wp = np.sqrt(a / b)
    ws = np.sqrt(c / b)
    theta = (wp - ws) / ((wp + ws) / 2.0)
    return np.sqrt(d / (d * d * (4.0 * 0.01 + theta**2) + 0.02) * wp**1.5 / ws)


TUNED_LAWS = [LogNormal(0.0, 0.15), LogNormal(-0.5, 0.1), LogNormal(0.1, 0.2), LogNormal(-2.5, 0.3)]


def _centred_only(fn, laws, n, monkeypatch):
    """Per box the centred bound alone (the point-mass bound made ``inf``), with the grid."""
    g = trace(fn, *[f"x{i}" for i in range(len(laws))])
    qs, cells, w = _grid(laws, n)
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(fn, qs)
    monkeypatch.setattr(elastic, "_bound", lambda *a, **k: np.full(a[-1], np.inf))
    b = elastic.box_bound(g, g.outputs[0], list(range(len(laws))), dict(enumerate(laws)), cells, pt, w, shape)
    monkeypatch.undo()
    assert b is not None
    return b, qs, pt, w, shape


def _box_coupling(fn, laws, qs, pt, shape, m=2**20, seed=7):
    """Per box a Monte Carlo estimate of ``E[|f(X) - pt|; box]`` and its standard error (flat)."""
    flat, d, size = box_costs(fn, laws, qs, pt, shape, m, seed)
    mean = np.bincount(flat, d, size) / m
    se = np.sqrt(np.bincount(flat, d * d, size) / m / m)
    return mean, se


@pytest.mark.parametrize(
    ("fn", "laws", "n"),
    [
        (ratio_prog, [LogNormal(0.1, 0.3), LogNormal(-0.2, 0.25), LogNormal(-1.0, 0.5)], 4),
        (ratio_prog, [LogNormal(0.1, 0.3), LogNormal(-0.2, 0.25), LogNormal(-1.0, 0.5)], 8),
        (normal_prog, [Normal(0.3, 0.8), Normal(-0.5, 1.2)], 8),
        (tuned_prog, TUNED_LAWS, 4),
    ],
)
def test_centred_bound_alone_is_above_the_coupling_cost_on_every_box(fn, laws, n, monkeypatch):
    b, qs, pt, w, shape = _centred_only(fn, laws, n, monkeypatch)
    fin = np.isfinite(b.reshape(-1))
    assert float(np.sum(np.broadcast_to(w, shape).reshape(-1)[fin])) > 0.5  # it applies on most of the mass
    mean, se = _box_coupling(fn, laws, qs, pt, shape)
    assert np.all(b.reshape(-1)[fin] >= mean[fin] - 5 * se[fin] - 1e-12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(**PARAMS)
def test_centred_bound_holds_on_random_programs(p, q, c, s1, s2, n, monkeypatch):
    fn, laws = program(p, q, c), log_laws(s1, s2)
    b, qs, pt, w, shape = _centred_only(fn, laws, n, monkeypatch)
    fin = np.isfinite(b.reshape(-1))
    assert fin.any()
    mean, se = _box_coupling(fn, laws, qs, pt, shape, m=2**17, seed=11)
    assert np.all(b.reshape(-1)[fin] >= mean[fin] - 5 * se[fin] - 1e-12)


def test_centred_bound_is_taken_on_the_oscillator():
    laws = [od.LogNormal(m, s) for m, s in OSC_LAWS]
    g = trace(oscillator, *[f"x{i}" for i in range(7)])
    qs, cells, w = _grid(laws, 4)
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(oscillator, qs)
    args = (g, g.outputs[0], list(range(7)), dict(enumerate(laws)), cells, pt, w, shape)
    with scope({"elastic_centred": False}):
        before = elastic.box_bound(*args)
    after = elastic.box_bound(*args)
    assert before is not None and after is not None
    assert np.all(after <= before)  # per box never worse
    fin = np.isfinite(after)
    assert float(np.sum(after[fin])) < float(np.sum(before[fin]))
    with scope({"elastic_centred": False}):
        r0 = od.evaluate(oscillator, *laws, atoms=4, progress=False)
    r1 = od.evaluate(oscillator, *laws, atoms=4, progress=False)
    assert r1.w1_bound <= r0.w1_bound


@pytest.mark.parametrize("n", [4, 8])
def test_tuned_program_bound_is_sound_against_sobol_and_tighter(n):
    old = elastic.MOBIUS
    elastic.MOBIUS = False
    try:
        with scope({"elastic_centred": False}):
            before = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=n, progress=False)
    finally:
        elastic.MOBIUS = old
    after = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=n, progress=False)
    assert after.w1_bound < before.w1_bound
    ref, err = sobol_reference(tuned_prog, TUNED_LAWS, log2=19)  # 2 x 2^19 points
    w = np.full(ref.size, 1.0 / ref.size)
    true = w1_discrete(after.atoms, after.weights, ref, w)
    assert after.w1_bound >= true - 3 * err


def test_damped_oscillator_suite_case_stays_above_its_reference():
    pytest.importorskip("uqtestfuns")
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "dcg"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("uq_bench_centred", bench / "uq.py")
        assert spec is not None and spec.loader is not None
        uq = importlib.util.module_from_spec(spec)
        sys.modules["uq_bench_centred"] = uq
        spec.loader.exec_module(uq)
        case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
        ref = uq.load_reference(case)
        with scope({"elastic_centred": False}):
            before = case.evaluate(atoms=4)
        r = case.evaluate(atoms=4)
    finally:
        sys.modules.pop("uq_bench_centred", None)
        sys.path.remove(str(bench))
    assert r.w1_bound < before.w1_bound
    assert r.w1_bound >= ref.w1(r.atoms, r.weights) - ref.err


def test_path_order_puts_the_largest_moves_first_and_any_order_is_sound(monkeypatch):
    laws = TUNED_LAWS
    g = trace(tuned_prog, *[f"x{i}" for i in range(4)])
    qs, cells, w = _grid(laws, 4)
    order = elastic.path_order(g, g.outputs[0], list(range(4)), dict(enumerate(laws)), cells)
    assert sorted(order) == [0, 1, 2, 3]
    # |dh/du_j| sigma_j at the central atom, by central differences: the order sorts it
    at = [float(q.atoms[q.atoms.size // 2]) for q in qs]
    h = 1e-6
    score = []
    for j, law in enumerate(laws):
        up, dn = list(at), list(at)
        up[j], dn[j] = at[j] * np.exp(h), at[j] * np.exp(-h)
        score.append(abs(np.log(tuned_prog(*up)) - np.log(tuned_prog(*dn))) / (2 * h) * law.sigma)
    assert order == sorted(range(4), key=lambda j: -score[j])
    # the bound holds along the reversed order as well (a path in any order is valid)
    monkeypatch.setattr(elastic, "path_order", lambda *a, **k: order[::-1])
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(tuned_prog, qs)
    b = elastic.box_bound(g, g.outputs[0], list(range(4)), dict(enumerate(laws)), cells, pt, w, shape)
    monkeypatch.undo()
    assert b is not None
    fin = np.isfinite(b.reshape(-1))
    assert fin.any()
    mean, se = _box_coupling(tuned_prog, laws, qs, pt, shape)
    assert np.all(b.reshape(-1)[fin] >= mean[fin] - 5 * se[fin] - 1e-12)


def test_log_segment_probabilities_match_high_precision():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 400
    rng = np.random.default_rng(5)
    a = rng.normal(size=300) * 8
    b = a + np.abs(rng.normal(size=300)) * rng.choice([1e-3, 0.1, 1.0, 10.0], size=300)
    got = elastic._log_seg(0.0, 1.0, a, b)
    want = []
    for lo, hi in zip(a, b):
        lo_m, hi_m = mpmath.mpf(float(lo)), mpmath.mpf(float(hi))
        p = mpmath.ncdf(-lo_m) - mpmath.ncdf(-hi_m) if lo > 0 else mpmath.ncdf(hi_m) - mpmath.ncdf(lo_m)
        want.append(float(mpmath.log(p)))
    assert np.max(np.abs(got - np.array(want))) < 1e-10
    assert elastic._log_seg(0.0, 1.0, np.array([-np.inf]), np.array([-40.0]))[0] < -800  # far tail: finite, log form
    assert elastic._log_seg(0.0, 1.0, np.array([1.0]), np.array([1.0]))[0] == -np.inf  # empty


def test_mass_guard_keeps_the_heaviest_boxes():
    from opgraph.dcg import centredlog

    w = np.random.default_rng(0).dirichlet(np.ones(2**13)).reshape(2**6, 2**7)
    keep = centredlog.select(w, w.shape, 0.95)
    assert w[keep].sum() >= 0.95 and keep.sum() < w.size
    assert w[keep].min() >= w[~keep].max()  # the heaviest first
    small = w[:8, :8]
    assert centredlog.select(small, small.shape, 0.5).all()  # small slabs: every box
