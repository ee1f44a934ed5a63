"""Round credit (``opgraph.dcg.roundcredit``) and the plan memo (``opgraph.dcg.planmemo``) of ``target_w1`` calls.

The long program is the 60-step logistic ODE counted as long (``costguards.LONG_NODES`` lowered, as in
``test_oderounds.py``): its first round (2 atoms per input) has an infinite bound before its sub-cell pass, which
stays pending. The budget's clock is a fake one that advances only when a round's grid is evaluated
(``unit`` seconds) or a pending pass runs (``2 unit``), so the schedules do not depend on the machine: a slow
machine is a larger ``unit`` against the same ``max_seconds``.
"""

from __future__ import annotations

import contextvars
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import api, costguards, planmemo, roundbudget, roundcredit, subslope, switches
from opgraph.dcg.w1 import w1_discrete

from .sobolref import sobol_reference
from .test_ode_wrapping import LOG_LAWS, _logistic

MAX_SECONDS = 10.0
#: A fast machine: a round costs this fraction of the budget.
FAST = 0.3


@pytest.fixture
def long_log(monkeypatch):
    """The 60-step logistic ODE as a long program whose first round's bound is infinite (``test_oderounds``)."""
    monkeypatch.setattr(costguards, "LONG_NODES", 200)
    monkeypatch.setattr(costguards, "LONG_ROUND_WORK", 5_000)
    monkeypatch.setattr(subslope, "ENABLED", contextvars.ContextVar("sub_slope_off_roundcredit", default=False))
    return _logistic(60)


def _slowed(monkeypatch, unit: float) -> None:
    """The budget's clock: ``unit`` seconds per grid evaluation, ``2 unit`` per deferred pass, nothing else."""
    now = {"t": 0.0}
    monkeypatch.setattr(roundbudget, "_clock", lambda: now["t"])
    evaluate, deferred = api.evaluate_output_chunked, api.run_deferred

    def evaluate_ticking(*a, **k):
        now["t"] += unit
        return evaluate(*a, **k)

    def deferred_ticking(*a, **k):
        now["t"] += 2 * unit
        return deferred(*a, **k)

    monkeypatch.setattr(api, "evaluate_output_chunked", evaluate_ticking)
    monkeypatch.setattr(api, "run_deferred", deferred_ticking)


def _target(fn, credit: bool = True):
    with warnings.catch_warnings(), switches.scope({"round_credit": credit}):
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *LOG_LAWS, target_w1=1e-6, max_seconds=MAX_SECONDS)


def test_slow_clock_answer_within_a_factor_of_the_fast_one(long_log, monkeypatch):
    fn = long_log
    _slowed(monkeypatch, FAST * MAX_SECONDS)  # fast
    fast = _target(fn)
    assert len(fast.info["refinement"]) >= 2 and not any("round_credit_s" in h for h in fast.info["refinement"])
    _slowed(monkeypatch, 0.5 * MAX_SECONDS)  # slow: the first round takes half the budget, no second round fits
    before = _target(fn, credit=False)
    after = _target(fn, credit=True)
    hb, ha = before.info["refinement"], after.info["refinement"]
    # before: the first round and its pending pass (the next round did not fit the time left)
    assert len(hb) == 1 and math.isinf(hb[0]["w1_bound"]) and hb[0]["subcell_passes"] == "ran (final round)"
    # after: a second round planned on the pass's predicted seconds replaces it, and the pass never runs
    assert len(ha) == 2 and ha[1]["round_credit_s"] > 0 and after.info["kept_round"] == 1
    assert ha[0]["subcell_passes"] != "ran (final round)"
    # the stated factor: within 10x of the fast call's answer (the slow call's second round, 8 atoms per input:
    # 1.78; the fast call runs more rounds), where the old schedule fell off a cliff (1346: the first round and
    # its pass)
    assert after.w1_bound <= 10.0 * fast.w1_bound < before.w1_bound
    sample, err = sobol_reference(fn, LOG_LAWS, log2=14)
    for r in (fast, before, after):
        assert w1_discrete(r.atoms, r.weights, sample, np.ones(sample.size)) - err <= r.w1_bound


def test_no_credit_where_the_next_round_fits(long_log, monkeypatch):
    """A round that fits without the credit is planned exactly as with the switch off."""
    fn = long_log
    _slowed(monkeypatch, FAST * MAX_SECONDS)
    on, off = _target(fn, credit=True), _target(fn, credit=False)
    assert repr(on.w1_bound) == repr(off.w1_bound)
    np.testing.assert_array_equal(on.atoms, off.atoms)
    keys = ("atoms", "compress_atoms", "w1_bound", "subcell_passes")
    assert [{k: h.get(k) for k in keys} for h in on.info["refinement"]] == [
        {k: h.get(k) for k in keys} for h in off.info["refinement"]
    ]


def test_credit_rules():
    b = roundbudget.RoundBudget(10.0, clock=lambda: 8.0)
    b.start = 0.0
    assert roundcredit.available(b) == 0.0  # a short program
    b.start_long_call(5000)
    assert roundcredit.available(b) == 0.0  # no pending pass
    b.pending_pass = 6.0
    assert roundcredit.available(b) == 6.0
    roundcredit.grant(b, 6.0)
    assert b.left() == pytest.approx(8.0)  # 10 - 8 + 6
    roundcredit.spend(b)
    assert b.left() == pytest.approx(2.0) and roundcredit.available(b) == 0.0  # once per call
    b.start_long_call(5000)
    b.pending_pass = 6.0
    with switches.scope({"round_credit": False}):
        assert roundcredit.available(b) == 0.0
    roundcredit.grant(b, 6.0)
    roundcredit.revoke(b)
    assert b.left() == pytest.approx(2.0)


def test_pilot_grant_rules():
    b = roundbudget.RoundBudget(10.0, clock=lambda: 8.0)
    b.start = 0.0
    b.start_long_call(5000)
    assert not roundcredit.pilot_grant(b, 3.0)  # the pilot's work is not known
    b.planned_work = 64 * 5000.0
    need = costguards.pass_seconds(8.0, b.planned_work, 5000)
    assert need > 3.0
    assert not roundcredit.pilot_grant(b, (2.0 + need) / roundbudget.SAFETY * 1.01)  # not even with the pass's time
    assert roundcredit.pilot_grant(b, 3.0)  # 3.75 s > the 2 s left, but within 2 s + the pass's seconds
    assert b.credit == pytest.approx(need) and b.left() == pytest.approx(2.0 + need)
    assert not roundcredit.pilot_grant(b, 3.0)  # granted once
    roundcredit.spend(b)
    b.start_long_call(5000)
    b.planned_work = 64 * 5000.0
    b.record(b.planned_work, 8.0)
    assert not roundcredit.pilot_grant(b, 3.0)  # a later round: its pass is not committed


def test_mixture_grace_only_in_a_credited_round():
    assert not roundcredit.grace(0.01)  # no target_w1 call
    with roundbudget.scope(10.0) as rb:
        assert rb is not None
        assert not roundcredit.grace(0.01)  # no credit
        roundcredit.grant(rb, 20.0)
        assert roundcredit.grace(0.01) and roundcredit.grace(roundcredit.GRACE * 20.0 / roundbudget.SAFETY)
        assert not roundcredit.grace(1.01 * roundcredit.GRACE * 20.0 / roundbudget.SAFETY)
        with switches.scope({"round_credit": False}):
            assert not roundcredit.grace(0.01)


def test_plan_memo_same_answers_one_call_per_grid():
    calls = []

    def work(counts):
        calls.append(dict(counts))
        return float(sum(counts.values()))

    cached = planmemo.memoized(work)
    assert cached({"a": 2, "b": 4}) == 6.0 and cached({"b": 4, "a": 2}) == 6.0 and cached({"a": 4, "b": 4}) == 8.0
    assert len(calls) == 2
    with switches.scope({"plan_memo": False}):
        assert planmemo.memoized(work) is work


def test_plan_memo_bit_for_bit(long_log, monkeypatch):
    """The target call's rounds and answer are the same with the memo on and off (deterministic clock)."""
    fn = long_log
    _slowed(monkeypatch, FAST * MAX_SECONDS)
    runs = []
    for on in (True, False):
        with switches.scope({"plan_memo": on}):
            runs.append(_target(fn))
    a, b = runs
    assert repr(a.w1_bound) == repr(b.w1_bound)
    np.testing.assert_array_equal(a.atoms, b.atoms)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert [h["atoms"] for h in a.info["refinement"]] == [h["atoms"] for h in b.info["refinement"]]


def test_switches_registered_and_on_by_default():
    got = switches.capture()
    assert got["round_credit"] is True and got["plan_memo"] is True
