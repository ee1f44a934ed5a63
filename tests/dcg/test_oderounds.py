"""``target_w1`` rounds on long programs (branch ode-rounds): a time model instead of the work cap.

On a long program (more than ``costguards.LONG_NODES`` nodes) under a time budget, the rounds after the first are
sized by the budget's per-node floor model (``roundbudget.floor_seconds``) instead of
``costguards.LONG_ROUND_WORK``; an infinite first-order bound grows every input (``costguards.INF_STEP``); the first round's sub-cell pass
runs with it where its bound is finite, and a later round's pass runs with it where it fits the time left, else it
is dropped (``api._long_round_passes``). ``costguards.TIME_MODEL = False`` restores the previous schedule. The
long programs here are short ODEs made "long" by lowering ``LONG_NODES``, with a budget too large to bind, so the
schedules do not depend on the machine's speed.
"""

from __future__ import annotations

import contextvars
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import costguards, roundbudget, subslope
from opgraph.dcg.errors import TargetNotMetWarning
from opgraph.dcg.w1 import w1_discrete

from .fastpath import euler_oscillator
from .sobolref import sobol_reference
from .test_ode_wrapping import LOG_LAWS, _logistic

OSC_LAWS = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]


def _target(fn, laws, target, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, target_w1=target, **kw)


def _true_w1_within(r, fn, laws) -> None:
    sample, err = sobol_reference(fn, laws, log2=14)
    true = w1_discrete(r.atoms, r.weights, sample, np.ones(sample.size))
    assert true - err <= r.w1_bound


@pytest.fixture
def long_osc(monkeypatch):
    """The 60-step oscillator (about 420 nodes) counted as a long program, first round 2 atoms per input."""
    monkeypatch.setattr(costguards, "LONG_NODES", 200)
    monkeypatch.setattr(costguards, "LONG_ROUND_WORK", 20_000)
    return euler_oscillator(60), OSC_LAWS


def test_long_target_call_refines_past_the_first_round_and_stays_sound(long_osc):
    fn, laws = long_osc
    r = _target(fn, laws, 0.1, max_seconds=1e4)
    hist = r.info["refinement"]
    assert len(hist) >= 2 and r.info["target_met"] and r.certified
    assert hist[0]["atoms"] == {"w": 2, "z": 2, "x0": 2}
    # the first round's bound is finite: its pass ran with it, and the kept later round beat that bound
    assert hist[0]["subcell_passes"].startswith("ran (long program")
    assert r.w1_bound <= hist[0]["w1_bound_after_passes"]
    assert r.info["kept_round"] >= 1
    _true_w1_within(r, fn, laws)


def test_without_the_time_model_the_work_cap_stops_after_the_first_round(long_osc):
    fn, laws = long_osc
    old = costguards.TIME_MODEL
    costguards.TIME_MODEL = False
    try:
        with pytest.warns(TargetNotMetWarning, match="work cap"):
            r = od.evaluate(fn, *laws, target_w1=0.1, max_seconds=1e4)
    finally:
        costguards.TIME_MODEL = old
    assert len(r.info["refinement"]) == 1
    new = _target(fn, laws, 0.1, max_seconds=1e4)
    assert new.w1_bound <= r.w1_bound  # never worse than the previous schedule's answer


def test_infinite_first_order_bound_grows_every_input(monkeypatch):
    # 60 logistic steps at 2 atoms per input: x is used twice per step and the wide cells overflow (bound inf
    # before the pass); the next round grows every input by INF_STEP (finite there) and reaches the target.
    monkeypatch.setattr(costguards, "LONG_NODES", 200)
    monkeypatch.setattr(costguards, "LONG_ROUND_WORK", 5_000)
    # the sub-box slope remainder (opgraph.dcg.subslope) makes the 2-atom round finite: this test's subject is the
    # round schedule after an infinite bound, so it is pinned off
    monkeypatch.setattr(subslope, "ENABLED", contextvars.ContextVar("sub_slope_off_oderounds", default=False))
    fn = _logistic(60)
    r = _target(fn, LOG_LAWS, 20.0, max_seconds=1e4)
    hist = r.info["refinement"]
    assert math.isinf(hist[0]["w1_bound"]) and hist[0]["atoms"] == {"r": 2, "k": 2, "x0": 2}
    grown = costguards.INF_STEP * 2  # the budget does not bind here: the whole step
    assert hist[1]["atoms"] == {"r": grown, "k": grown, "x0": grown} and math.isfinite(hist[1]["w1_bound"])
    assert r.info["target_met"] and r.w1_bound <= 20.0
    _true_w1_within(r, fn, LOG_LAWS)
    # the previous schedule stopped on the infinite bound (its pass ran on the kept first round)
    monkeypatch.setattr(costguards, "TIME_MODEL", False)
    old = _target(fn, LOG_LAWS, 20.0, max_seconds=1e4)
    assert len(old.info["refinement"]) == 1 and "inf before its sub-cell pass" in old.info["target_unmet"]


@pytest.mark.parametrize("case", ["osc20", "product"])
def test_short_programs_schedules_unchanged(case):
    """Below LONG_NODES nothing changes: the same rounds, atoms and bounds with the time model on and off."""
    if case == "osc20":
        fn, laws, target = euler_oscillator(20), OSC_LAWS, 1e-2
    else:

        def fn(x, y, z):
            return x * np.exp(0.5 * y) + z * z

        laws, target = [od.Uniform(1.0, 2.0), od.Normal(0.0, 0.3), od.Uniform(-1.0, 1.0)], 1e-3
    runs = []
    for on in (True, False):
        old = costguards.TIME_MODEL
        costguards.TIME_MODEL = on
        try:
            runs.append(_target(fn, laws, target, max_seconds=1e4))
        finally:
            costguards.TIME_MODEL = old
    a, b = runs
    assert repr(a.w1_bound) == repr(b.w1_bound)
    np.testing.assert_array_equal(a.atoms, b.atoms)
    keys = ("atoms", "compress_atoms", "w1_bound", "subcell_passes")
    assert [{k: h.get(k) for k in keys} for h in a.info["refinement"]] == [
        {k: h.get(k) for k in keys} for h in b.info["refinement"]
    ]
    assert not any("long program" in str(h.get("subcell_passes")) for h in a.info["refinement"])


def test_floor_model_and_pass_cost():
    # calibrated on the measured round: a round of the same work costs the same, smaller ones no less
    assert roundbudget.floor_seconds(5.0, 3.2e5, 3.2e5, 5000) == 5.0
    assert roundbudget.floor_seconds(5.0, 3.2e5, 1e3, 5000) == 5.0
    per = 5.0 / (5000 * roundbudget.FLOOR_KNEE_BOXES + 3.2e5)
    assert roundbudget.floor_seconds(5.0, 3.2e5, 2.05e7, 5000) == pytest.approx(5.0 + (2.05e7 - 3.2e5) * per)
    # a measured line between two rounds wins where it predicts more
    assert roundbudget.floor_seconds(5.0, 3.2e5, 1e6, 5000, rate=1e-4) == pytest.approx(5.0 + 6.8e5 * 1e-4)
    # a pass: PASS_EVALS evaluations on its fine grid (8x the boxes, at least MIN_BOXES, capped by MAX_WORK)
    fine = costguards.pass_fine_boxes(64, 5000)
    assert fine == 512
    assert costguards.pass_seconds(5.0, 64 * 5000, 5000) == pytest.approx(
        costguards.PASS_EVALS * roundbudget.floor_seconds(5.0, 64 * 5000, 512 * 5000, 5000)
    )
    # the budget uses the floor model on long programs, and takes a round's pass seconds off its measured time
    b = roundbudget.RoundBudget(100.0, clock=lambda: 0.0, long_nodes=5000)
    b.pass_seconds = 3.0
    b.record(3.2e5, 8.0)
    assert b.rounds == [(3.2e5, 5.0)] and b.pass_seconds == 0.0
    assert b.predict(2.05e7) == pytest.approx(roundbudget.floor_seconds(5.0, 3.2e5, 2.05e7, 5000))


class _Eval:
    """The two fields of an Evaluation that ``_long_round_passes`` reads (its bound and its pending pass)."""

    def __init__(self, bound, after=None):
        self.w1_bound = bound
        self.resume = None if after is None else (lambda ceiling=math.inf: _Eval(after))


def _budget(left: float, rounds: int) -> roundbudget.RoundBudget:
    clock = {"t": 0.0}
    b = roundbudget.RoundBudget(left + 1.0, clock=lambda: clock["t"])
    clock["t"] = 1.0  # one second spent: ``left`` seconds left
    b.start_long_call(1000)
    b.planned_work = 64 * 1000.0
    b.rounds = [(64 * 1000.0, 0.5)] * rounds
    return b


@pytest.mark.parametrize(
    ("left", "rounds", "bound", "what", "kept"),
    [
        (0.0, 0, 5.0, "ran", 1.0),  # first round, finite: its pass runs whatever the time left
        (1e6, 0, math.inf, "skipped", math.inf),  # first round, infinite: pending as before
        (0.0, 1, 5.0, "dropped", 5.0),  # a later round whose pass does not fit: dropped
        (1e6, 1, 5.0, "ran", 1.0),  # ... and one whose pass fits: run with the round
    ],
)
def test_long_round_passes_schedule(left, rounds, bound, what, kept):
    from opgraph.dcg import api

    b = _budget(left, rounds)
    tok = roundbudget._CURRENT.set(b)
    try:
        out, did = api._long_round_passes([_Eval(bound, after=1.0)])
    finally:
        roundbudget._CURRENT.reset(tok)
    assert did.startswith(what)
    assert out[0].w1_bound == kept and b.held == kept
    assert (out[0].resume is None) == (what != "skipped")


def test_long_round_pass_dropped_where_it_cannot_beat_the_answer():
    """A first round whose answer is below what its pass could give even at ``subcells.MAX_GAIN`` (a box-linear
    mixture far below the cellwise bound, ODE-osc at 4 atoms): the pass is dropped instead of run (branch ode-osc)."""
    from opgraph.dcg import api, engine

    class _Pass:
        def __init__(self, predicted: float) -> None:
            self.predicted = predicted

        def predict(self, factor: float) -> float:
            return self.predicted

        def __call__(self, ceiling: float = math.inf) -> _Eval:
            return _Eval(1.0)

    for predicted, what, kept in ((0.5, "ran", 1.0), (5.0, "dropped", 5.0), (7.0, "dropped", 5.0)):
        b = _budget(0.0, 0)
        e = _Eval(5.0)
        e.resume = engine.DeferredPass(_Pass(predicted), _Pass(predicted).predict)
        tok = roundbudget._CURRENT.set(b)
        try:
            out, did = api._long_round_passes([e])
        finally:
            roundbudget._CURRENT.reset(tok)
        assert did.startswith(what), did
        assert out[0].w1_bound == kept and out[0].resume is None
