"""A coarser answer's certificate carried to a finer answer (opgraph.dcg.carry; issue 14 section 3).

``W1(Y, A) <= bound(B) + W1(A, B)``: checked against exact laws, in the ``target_w1`` rounds (where a round's own
certificate is made worse on purpose, the carried one must take over and stay sound), and on fixed-atoms calls
(where the cause of the damped oscillator's growing bound is switched off again, the N/2 carry must catch it).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import api, carry, cellmoments, elastic, subcells
from opgraph.dcg.w1 import w1_discrete, w1_to_cdf

from .test_cellmoments import OSC_LAWS, _reference, oscillator


def _mul(x, y):
    return x * y


def _mul_cdf(t):
    """CDF of U1 * U2 (U(0, 1)): t - t ln t."""
    t = np.clip(np.asarray(t, dtype=float), 1e-300, 1.0)
    return t - t * np.log(t)


def _uu(atoms, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(_mul, od.Uniform(0, 1), od.Uniform(0, 1), atoms=atoms, progress=False, **kw)


@pytest.mark.usefixtures("point_mass_answers")
def test_carry_takes_the_smaller_bound_and_stays_sound():
    fine, coarse = _uu(4), _uu(64)
    c = carry.carry(fine, coarse, "atoms 64")
    via = coarse.w1_bound + w1_discrete(fine.atoms, fine.weights, coarse.atoms, coarse.weights)
    assert c.w1_bound == pytest.approx(min(fine.w1_bound, via), rel=1e-6)
    assert c.w1_bound < fine.w1_bound  # 64 atoms' bound plus the distance beats 4 atoms' own
    assert c.info["carried"]["own_bound"] == fine.w1_bound
    assert sum(c.bound_terms.values()) == pytest.approx(c.w1_bound, rel=1e-12)
    np.testing.assert_array_equal(c.atoms, fine.atoms)  # the answer is unchanged, only its certificate
    true = w1_to_cdf(c.atoms, c.weights, _mul_cdf, 0.0, 1.0)
    assert c.w1_bound >= true
    # the other way round nothing is gained: the coarse answer keeps its own certificate
    assert carry.carry(coarse, fine, "atoms 4") is coarse
    # an uncertified answer never lends its (absent) certificate
    assert carry.carry(fine, dataclasses.replace(coarse, certified=False), "qmc") is fine
    tok = carry.ENABLED.set(False)
    try:
        assert carry.carry(fine, coarse, "off") is fine
    finally:
        carry.ENABLED.reset(tok)


@pytest.mark.usefixtures("point_mass_answers")
def test_target_rounds_carry_an_earlier_certificate(monkeypatch):
    """Round 1 gets a 1000x worse certificate: the carried one (round 0's plus W1) takes over in that round."""
    real = api.evaluate_output_chunked
    calls = []

    def worse_second(*args, **kwargs):
        e = real(*args, **kwargs)
        calls.append(e.w1_bound)
        if len(calls) == 2:
            e = dataclasses.replace(e, w1_bound=1e3 * e.w1_bound, bound_terms={"inflated": 1e3 * e.w1_bound})
        return e

    monkeypatch.setattr(api, "evaluate_output_chunked", worse_second)
    tok = subcells.ENABLED.set(False)  # a deferred sub-cell pass would recompute the round's own bound
    try:
        r = _uu(8, target_w1=2e-3, max_seconds=None)  # no time budget: no affine probe (a 3rd patched call)
    finally:
        subcells.ENABLED.reset(tok)
    rounds = r.info["refinement"]
    assert len(rounds) >= 2
    assert rounds[1]["w1_bound"] == pytest.approx(1e3 * calls[1])
    assert rounds[1]["w1_bound_carried"] < rounds[1]["w1_bound"] / 10  # round 0's certificate plus W1
    assert rounds[1]["w1_bound_carried"] >= rounds[0]["w1_bound"]
    assert r.w1_bound <= min(h.get("w1_bound_carried", h["w1_bound"]) for h in rounds) * (1 + 1e-12)
    assert r.w1_bound >= w1_to_cdf(r.atoms, r.weights, _mul_cdf, 0.0, 1.0)


def _osc(atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(oscillator, *[od.LogNormal(m, s) for m, s in OSC_LAWS], atoms=atoms, progress=False)


def test_fixed_atoms_carry_catches_a_bound_that_grows(monkeypatch):
    """Without the exact inner-cell moments DampedOsc's bound grows 2 -> 4 atoms; the N/2 carry caps it."""
    monkeypatch.setattr(cellmoments, "exact_kind", lambda *a: False)
    monkeypatch.setattr(carry, "MIN_JOINT", 1)
    tok_f = carry.FIXED_ATOMS.set(True)
    tok_e = elastic.ENABLED.set(False)  # the log-space box bound alone keeps 4 atoms below 2
    try:
        _fixed_atoms_catches()
    finally:
        elastic.ENABLED.reset(tok_e)
        carry.FIXED_ATOMS.reset(tok_f)


def _fixed_atoms_catches():
    tok = carry.ENABLED.set(False)
    try:
        own2, own4 = _osc(2), _osc(4)
    finally:
        carry.ENABLED.reset(tok)
    assert own4.w1_bound > own2.w1_bound  # the regression the guard is for (734 > 664)
    r4 = _osc(4)
    d = w1_discrete(r4.atoms, r4.weights, own2.atoms, own2.weights)
    assert r4.info["carried"]["from"].startswith("atoms ")
    assert r4.w1_bound == pytest.approx(own2.w1_bound + d, rel=1e-6)
    assert r4.w1_bound < own4.w1_bound
    ref, w, ref_err = _reference()
    assert r4.w1_bound >= w1_discrete(r4.atoms, r4.weights, ref, w) - 3 * ref_err


def test_fixed_atoms_carry_is_off_by_default_and_skips_small_grids_and_single_inputs(monkeypatch):
    calls = []
    real = api._evaluate_graph

    def spy(*args, **kwargs):
        calls.append(kwargs.get("atoms"))
        return real(*args, **kwargs)

    monkeypatch.setattr(api, "_evaluate_graph", spy)
    monkeypatch.setattr(carry, "MIN_JOINT", 1)
    _uu(8)  # off by default: no N/2 call
    assert len(calls) == 1
    tok = carry.FIXED_ATOMS.set(True)
    try:
        calls.clear()
        r = _uu(8)  # on: 8 -> 4 -> 2 (never below 2 atoms)
        assert calls[1:] == [{"x": 4, "y": 4}, {"x": 2, "y": 2}]
        assert math.isfinite(r.w1_bound)
        monkeypatch.setattr(carry, "MIN_JOINT", 2**15)
        calls.clear()
        _uu(8)  # 64 joint atoms < MIN_JOINT: no N/2 call
        assert len(calls) == 1
        calls.clear()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            od.evaluate(lambda x: np.exp(x), od.Normal(0, 1), atoms=2**16, progress=False)  # one input: never
        assert len(calls) == 1
    finally:
        carry.FIXED_ATOMS.reset(tok)
