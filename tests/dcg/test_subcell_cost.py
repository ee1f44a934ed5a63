"""The sub-cell pass pays for itself (issue 14 section 6): its probe, the skip rules, soundness when it stops early."""

from __future__ import annotations

import contextvars

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import boxlinear, engine
from opgraph.dcg import subcells as S
from opgraph.dcg.w1 import w1_discrete

from .fastpath import euler_oscillator


def _osc(steps: int, t_end: float = 10.0):
    return euler_oscillator(steps, t_end / steps)


LAWS = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]


def _run(monkeypatch, **consts):
    for k, v in consts.items():
        monkeypatch.setattr(S, k, v)
    return od.evaluate(_osc(60), *LAWS, atoms=4)


def test_probe_cells_picks_the_cells_carrying_the_bound():
    box = np.full((4, 3), 0.01)
    box[2, :] = 1.0  # cell 2 of input "a" carries most of the bound
    name, mask = S.probe_cells(box, ["a", "b"], {"a": 2, "b": 2})
    assert name == "a" and mask.tolist() == [False, False, True, False]
    box[0, 0] = np.inf  # an infinite cell is always probed
    name, mask = S.probe_cells(box, ["a", "b"], {"a": 2})
    assert name == "a" and mask.tolist() == [True, False, True, False]
    assert S.probe_cells(box, ["a", "b"], {"c": 2}) is None  # no split input on the grid
    assert S.probe_cells(np.ones((2, 3)), ["a", "b"], {"a": 2}, max_fraction=0.4) is None  # 1 of 2 cells > 0.4


def test_pass_runs_whole_where_it_pays(monkeypatch):
    r = _run(monkeypatch)
    sc = r.info["subcells"]
    assert "stopped" not in sc, sc
    assert sc["bound_after"] < (1 - S.MIN_GAIN) * sc["bound_before"]


def test_probe_stops_a_round_that_gains_too_little_and_stays_sound(monkeypatch):
    # the point-mass answers (box-linear mixture off): this test compares the sub-cell pass's bounds on one answer,
    # and a mixture answer (built where the pass's bound leaves it something to gain) has other atoms
    monkeypatch.setattr(boxlinear, "ENABLED", contextvars.ContextVar("boxlinear_off_subcell_cost", default=False))
    full = _run(monkeypatch, MIN_GAIN=0.0)
    stopped = _run(monkeypatch, MIN_GAIN=1.0)  # no round can gain 100 %: the probe stops it
    tok = S.ENABLED.set(False)
    try:
        off = od.evaluate(_osc(60), *LAWS, atoms=4)
    finally:
        S.ENABLED.reset(tok)
    sc = stopped.info.get("subcells")
    if sc is not None:  # the probe's boxes may still have gained
        assert sc["stopped"].startswith("probe") and sc["fine_boxes"] < full.info["subcells"]["fine_boxes"]
    # every box keeps the smaller of valid bounds: full pass <= probe only <= no pass, same atoms
    assert full.w1_bound <= stopped.w1_bound <= off.w1_bound
    assert np.array_equal(full.atoms, stopped.atoms) and np.array_equal(stopped.atoms, off.atoms)
    fine = od.evaluate(_osc(60), *LAWS, atoms=24)  # a lower bound on the true W1 of the stopped answer
    assert w1_discrete(stopped.atoms, stopped.weights, fine.atoms, fine.weights) - fine.w1_bound <= stopped.w1_bound


def test_no_second_round_after_a_round_that_gained_too_little(monkeypatch):
    r = _run(monkeypatch, PROBE_MAX_FRACTION=0.0, MIN_GAIN=1.0)  # no probe: round 1 runs whole, then stops
    sc = r.info["subcells"]
    assert sc["stopped"] == "round 1 gain below MIN_GAIN" and "second_splits" not in sc


def test_pass_skipped_where_the_other_bounds_are_lower(monkeypatch):
    real = engine._subcell_bound

    def low_ceiling(*a, **kw):
        return real(*a, **{**kw, "ceiling": 0.0})  # as if the path / law-level bound were 0

    monkeypatch.setattr(engine, "_subcell_bound", low_ceiling)
    r = od.evaluate(_osc(60), *LAWS, atoms=4)
    sc = r.info.get("subcells")
    assert sc is None or "above the other bounds" in sc["stopped"]
    monkeypatch.undo()
    assert "stopped" not in od.evaluate(_osc(60), *LAWS, atoms=4).info["subcells"]


@pytest.mark.parametrize("share", [0.1, 0.9])
def test_probe_share_only_moves_the_cost(monkeypatch, share):
    """Whatever the probe holds, a round that goes on covers every box: the same bound as without a probe."""
    whole = _run(monkeypatch, PROBE_MAX_FRACTION=0.0)
    probed = _run(monkeypatch, PROBE_MAX_FRACTION=1.0, PROBE_SHARE=share)
    assert probed.w1_bound == pytest.approx(whole.w1_bound, rel=1e-9)


def test_a_bound_the_caller_holds_stops_the_pass():
    """``subcells.CEILING`` (set by the cancellation pair around its second evaluation): at 0 no round can pay."""
    tok = S.CEILING.set(0.0)
    try:
        r = od.evaluate(_osc(60), *LAWS, atoms=4)
    finally:
        S.CEILING.reset(tok)
    sc = r.info.get("subcells")
    assert sc is None or "above the other bounds" in sc["stopped"]
    assert S.CEILING.get() == float("inf")
