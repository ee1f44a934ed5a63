"""Where the sub-cell pass runs (issue 14 section 6, certified fast): one graph of a cancellation pair, and in
``target_w1`` loops only on rounds that could reach the target, else on the final round. Bounds stay valid."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import api, engine
from opgraph.dcg.engine import DeferredPass, Evaluation

sys.path.insert(0, str(Path(__file__).parent))
import test_cancel as TC  # noqa: E402  (the cancellation tests' programs and laws)


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = engine._subcell_bound

    def counted(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(engine, "_subcell_bound", counted)
    return calls


def _eval(fn, atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *TC.LAWS[fn], atoms=atoms)


def test_pair_runs_the_pass_on_the_winner_only(monkeypatch):
    """_powers at 3 atoms: the rewrite wins before the passes and its pass gains 1.7x; the original's cannot catch
    up at that rate, so its pass is skipped (it ran too before this change: two calls)."""
    calls = _counting(monkeypatch)
    r = _eval(TC._powers, 3)
    rec = r.info["cancelled"]["subcell_passes"]
    assert rec["first"] == "rewrite" and rec["first_ran"]
    assert rec["second"].startswith("skipped"), rec
    assert len(calls) == 1


def test_loser_still_runs_where_the_winner_gained_nothing(monkeypatch):
    """The piston volume at 3 atoms: the rewrite wins before the passes but its pass gains 0.2 %; the original's
    pass (7x) must still run, and the original's answer is kept (skipping it: bound 0.0046 instead of 0.00068)."""
    calls = _counting(monkeypatch)
    r = _eval(TC._vol, 3)
    assert r.info["cancelled"]["subcell_passes"]["second"] == "ran"
    assert len(calls) == 2
    assert not r.info["cancelled"]["used"] and r.w1_bound < 0.5 * r.info["cancelled"]["other_bound"]


def _both_passes(a, ra, b, rb, ceiling, refused=False):
    """The schedule before this change: both graphs' passes, each without a ceiling from the other."""
    return (a if ra is None else ra(ceiling)), (b if rb is None else rb(ceiling)), {"first": "both"}


@pytest.mark.parametrize("fn", [TC._bore, TC._vol, TC._powers, TC._clear, TC._distribute, TC._divide])
@pytest.mark.parametrize("atoms", [3, 6])
def test_pair_bound_no_worse_than_running_both_passes(monkeypatch, fn, atoms):
    sched = _eval(fn, atoms)
    monkeypatch.setattr(engine, "_pair_passes", _both_passes)
    both = _eval(fn, atoms)
    assert np.array_equal(sched.atoms, both.atoms) and np.array_equal(sched.weights, both.weights)
    assert sched.w1_bound <= both.w1_bound * (1 + 1e-12)


def _fake(bound: float, predicted: float | None, after: float, log: list[str], name: str) -> Evaluation:
    e = Evaluation(np.array([0.0]), np.array([1.0]), bound, {}, True, (0.0, 0.0), {})
    if predicted is not None:

        def run(ceiling: float) -> Evaluation:
            log.append(name)
            return Evaluation(e.atoms, e.weights, after, {}, True, (0.0, 0.0), {})

        e.resume = DeferredPass(run, lambda factor: predicted)
    return e


def test_round_passes_run_only_where_the_round_can_reach_the_target():
    log: list[str] = []
    # every output above the target could reach it: the passes of those run, the one already below is not run
    ev = [_fake(5.0, 0.5, 0.8, log, "a"), _fake(0.9, 0.1, 0.05, log, "b")]
    out, what = api._round_passes(ev, 1.0)
    assert what == "ran" and log == ["a"] and [e.w1_bound for e in out] == [0.8, 0.9]
    assert all(e.resume is None for e in out)
    # one output cannot reach the target even with the pass: none runs, all stay pending for the final round
    log.clear()
    ev = [_fake(5.0, 0.5, 0.8, log, "a"), _fake(50.0, 3.0, 20.0, log, "b")]
    out, what = api._round_passes(ev, 1.0)
    assert what == "skipped" and log == [] and all(e.resume is not None for e in out)
    # an output above the target without a pending pass (compressed grid, QMC): the round cannot reach it
    ev = [_fake(5.0, 0.5, 0.8, log, "a"), _fake(2.0, None, 2.0, log, "b")]
    assert api._round_passes(ev, 1.0)[1] == "skipped" and log == []
    # all below the target: nothing runs, the pending passes are dropped
    ev = [_fake(0.5, 0.1, 0.05, log, "a")]
    out, what = api._round_passes(ev, 1.0)
    assert what == "not needed" and log == [] and out[0].resume is None


def test_target_loop_skips_early_passes_and_runs_them_on_the_final_round(monkeypatch):
    """An unreachable target: round 1's grid cannot reach it even with the pass (skipped); the kept round runs it."""
    from opgraph.dcg import subcells

    def run(on: bool):
        tok = subcells.ENABLED.set(on)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return od.evaluate(TC._powers, *TC.LAWS[TC._powers], target_w1=1e-5)
        finally:
            subcells.ENABLED.reset(tok)

    calls = _counting(monkeypatch)
    r = run(True)
    hist = r.info["refinement"]
    assert len(hist) >= 2 and not r.info["target_met"]
    assert hist[0]["subcell_passes"] == "skipped"
    assert hist[r.info["kept_round"]]["subcell_passes"] == "ran (final round)"
    assert all(h.get("subcell_passes") != "ran" for h in hist)
    assert len(calls) == sum(1 for h in hist if h.get("subcell_passes") == "ran (final round)")
    off = run(False)
    assert np.array_equal(r.atoms, off.atoms) and r.w1_bound <= off.w1_bound


def test_a_round_that_only_grows_the_compression_a_little_is_not_run(monkeypatch):
    """Piston at 1e-2 ran a whole 2M-box round for compression 256 -> 287 (bound -0.2 %): such a round is skipped
    where even a bound shrinking in proportion to the compression size would miss the target."""
    real = api._next_round
    seen: list[int] = []

    def compress_only(allocator, evals, labels, quantized, cur_atoms, cur_compress, *rest):
        seen.append(cur_compress)
        return dict(cur_atoms), int(cur_compress * 1.1), ""

    monkeypatch.setattr(api, "_next_round", compress_only)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(TC._divide, *TC.LAWS[TC._divide], target_w1=1e-9)
    assert len(r.info["refinement"]) == 1 and len(seen) == 1
    assert "only the compression size can grow" in r.info["target_unmet"]
    # growing it 2x is run (the rule is about small growth only)
    monkeypatch.setattr(api, "_next_round", lambda a, e, lb, q, ca, cc, *rest: (dict(ca), 2 * cc, ""))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = od.evaluate(TC._divide, *TC.LAWS[TC._divide], target_w1=1e-9, max_joint=2**14)
    assert len(r2.info["refinement"]) >= 2
    monkeypatch.setattr(api, "_next_round", real)
