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
    """Counts the sub-cell passes run (a deferred pass's probe-only call is not one)."""
    calls: list[int] = []
    real = engine._subcell_bound

    def counted(*a, **kw):
        if not kw.get("probe_only"):
            calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(engine, "_subcell_bound", counted)
    return calls


def _rounds(monkeypatch) -> list[tuple[int, bytes]]:
    """Records each fine-grid evaluation of the pass: (its coarse evaluator's id, the cells it was restricted to)."""
    seen: list[tuple[int, bytes]] = []
    real = engine._subcell_round

    def recorded(ev, sub, out, plan, quantized, labels, dists, rules, only=None):
        seen.append((id(ev), b"" if only is None else only[0].encode() + np.asarray(only[1]).tobytes()))
        return real(ev, sub, out, plan, quantized, labels, dists, rules, only)

    monkeypatch.setattr(engine, "_subcell_round", recorded)
    return seen


def _eval(fn, atoms):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *TC.LAWS[fn], atoms=atoms)


def test_pair_loser_is_stopped_by_its_own_probe(monkeypatch):
    """_bore at 3 atoms: the rewrite's pass runs; the original's probe extrapolates a bound (22.2) far above the
    rewrite's (10.8), so the original's pass stops after its probe, evaluated once (kept from probe() for the run)."""
    seen = _rounds(monkeypatch)
    r = _eval(TC._bore, 3)
    rec = r.info["cancelled"]["subcell_passes"]
    assert rec["first"] == "rewrite" and rec["first_ran"]
    assert rec["second"].startswith("stopped by its probe"), rec
    assert rec["probed"]["rewrite"] < rec["probed"]["original"]
    assert len(seen) == len(set(seen)), seen  # no probe evaluated twice
    per_graph = sorted(sum(1 for e, _ in seen if e == g) for g in {e for e, _ in seen})
    assert len(per_graph) == 2 and per_graph[0] == 1, per_graph  # the loser: its probe only


def test_loser_runs_where_its_own_probe_says_it_wins(monkeypatch):
    """The piston volume at 3 atoms: the rewrite has the smaller bound before the passes, but its pass gains 0.2 %
    and the original's 7x: the original's probe puts it first, its pass runs, and its answer is kept (skipping it:
    bound 0.0046 instead of 0.00068)."""
    calls = _counting(monkeypatch)
    r = _eval(TC._vol, 3)
    rec = r.info["cancelled"]["subcell_passes"]
    assert rec["first"] == "original" and rec["first_ran"]
    assert rec["probed"]["original"] < rec["probed"]["rewrite"]
    assert len(calls) == 2
    assert not r.info["cancelled"]["used"] and r.w1_bound < 0.5 * r.info["cancelled"]["other_bound"]


def _probed(bound: float, after: float, predicted: float, log: list[tuple[str, float]], name: str) -> Evaluation:
    e = Evaluation(np.array([0.0]), np.array([1.0]), bound, {}, True, (0.0, 0.0), {})

    def run(ceiling: float) -> Evaluation:
        log.append((name, ceiling))
        return Evaluation(e.atoms, e.weights, after, {}, True, (0.0, 0.0), {})

    e.resume = DeferredPass(run, lambda factor: bound / factor, lambda: predicted)
    return e


def test_pair_order_comes_from_each_graphs_own_probe():
    """Borehole at 4 atoms lost 2.4 %: the rewrite (smaller bound before the passes) gained 1.42x, from which the
    original's pass (12x on its own) was judged unable to win and skipped. Each graph's probe now decides."""
    log: list[tuple[str, float]] = []
    a, b = _probed(1.0, 0.1, 0.12, log, "original"), _probed(0.9, 0.6, 0.63, log, "rewrite")
    a_r, b_r = a.resume, b.resume
    a.resume = b.resume = None
    oa, ob, rec = engine._pair_passes(a, a_r, b, b_r, 5.0)
    assert rec["first"] == "original" and [n for n, _ in log] == ["original", "rewrite"]
    assert log[0][1] == 5.0 and log[1][1] == pytest.approx(engine.PAIR_SLACK * 0.1)
    assert min(oa.w1_bound, ob.w1_bound) == 0.1
    # a refused rewrite: only the original's pass, first, whatever the probes say
    log.clear()
    a, b = _probed(1.0, 0.7, 0.8, log, "original"), _probed(0.9, 0.1, 0.12, log, "rewrite")
    oa, ob, rec = engine._pair_passes(a, a.resume, b, b.resume, 5.0, refused=True)
    assert rec["first"] == "original" and [n for n, _ in log] == ["original"] and ob.w1_bound == 0.9


def _both_passes(a, ra, b, rb, ceiling, refused=False, **kw):
    """The schedule before this change: both graphs' passes, each without a ceiling from the other."""
    return (a if ra is None else ra(ceiling)), (b if rb is None else rb(ceiling)), {"first": "both"}


@pytest.mark.parametrize("fn", [TC._bore, TC._vol, TC._powers, TC._clear, TC._distribute, TC._divide])
@pytest.mark.parametrize("atoms", [3, 4, 6])
def test_pair_bound_no_worse_than_running_both_passes(monkeypatch, fn, atoms):
    sched = _eval(fn, atoms)
    monkeypatch.setattr(engine, "_pair_passes", _both_passes)
    both = _eval(fn, atoms)
    # the same answer, bit for bit (the second evaluation draws other affine error-symbol ids: opgraph.dcg.affine.mul
    # sums the symbols in the forms' order, so the ids do not change the rounding)
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


# subject: the round schedule of the sub-cell passes (the mixture meets the target in fewer rounds), not the mixture
@pytest.mark.usefixtures("point_mass_answers")
def test_target_loop_skips_early_passes_and_runs_them_on_the_final_round(monkeypatch):
    """An unreachable target: round 1's grid cannot reach it even with the pass (skipped); the kept round runs it."""
    from opgraph.dcg import subcells

    def run(on: bool):
        tok = subcells.ENABLED.set(on)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # max_seconds=None: the refinement without the time budget's affine probe (opgraph.dcg.roundbudget),
                # whose affine-free later rounds make the pair schedule run both passes of the kept round
                return od.evaluate(TC._powers, *TC.LAWS[TC._powers], target_w1=1e-5, max_seconds=None)
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
        # max_seconds=None: the time budget's own rule (a round predicted to gain < 5 % is not run) stops this too
        r2 = od.evaluate(TC._divide, *TC.LAWS[TC._divide], target_w1=1e-9, max_joint=2**14, max_seconds=None)
    assert len(r2.info["refinement"]) >= 2
    monkeypatch.setattr(api, "_next_round", real)


class _NoDefer:
    """Stands in for engine.DEFER_SUBCELLS: never deferred, so every evaluation runs its own pass at once."""

    def get(self) -> bool:
        return False

    def set(self, value: bool) -> None:
        return None

    def reset(self, token: None) -> None:
        return None


@pytest.mark.parametrize("fn", [TC._bore, TC._vol, TC._powers, TC._clear, TC._distribute, TC._divide])
@pytest.mark.parametrize("atoms", [3, 4, 6])
def test_pair_bound_no_worse_than_every_pass_run_at_once(monkeypatch, fn, atoms):
    """Against no deferral at all (every graph, both association orders included, runs its own pass): the same
    atoms and a bound no worse (_divide at 4 atoms: 0.02548 with the winner's-gain rule, 0.02503 now)."""
    sched = _eval(fn, atoms)
    monkeypatch.setattr(engine, "DEFER_SUBCELLS", _NoDefer())
    every = _eval(fn, atoms)
    assert np.array_equal(sched.atoms, every.atoms) and np.array_equal(sched.weights, every.weights)
    assert sched.w1_bound <= every.w1_bound * (1 + 1e-12)


def _counted_probe(e: Evaluation, probes: list[str], name: str) -> Evaluation:
    """``e`` whose deferred pass's probe records each call in ``probes``."""
    r = e.resume
    assert r is not None
    e.resume = DeferredPass(r.run, r.predict, lambda: (probes.append(name), r.probe())[1])
    return e


def test_deferred_reassociation_pair_chooses_after_the_passes():
    """Two association orders with deferred passes: the one with the larger bound before the passes but the
    smaller probe is run first and returned (Borehole at 4 atoms: 23.51 vs 23.99 before; the order kept before
    dcg-pairfix reached 16.91, the other 16.51: +2.4 %). The second order's probe (0.63) read at the first's
    realised / probed ratio (0.2 / 0.25) lands at 0.504 >= 0.2: its pass is skipped (Borehole's 3.7 s ran both)."""
    log: list[tuple[str, float]] = []
    probes: list[str] = []
    old = _counted_probe(_probed(1.0, 0.2, 0.25, log, "original"), probes, "original")
    new = _counted_probe(_probed(0.9, 0.6, 0.63, log, "rewrite"), probes, "rewrite")
    ro, rn = old.resume, new.resume
    old.resume = new.resume = None

    def pick(a: Evaluation, b: Evaluation) -> Evaluation:
        return b if b.w1_bound < a.w1_bound else a

    pre = engine._deferred_pair(old, ro, new, rn, pick, "reassociated_passes")
    assert pre.w1_bound == 0.9 and pre.resume is not None
    # the pair's probe is the order returned before the passes (its orders' probes lie close): one probe
    assert pre.resume.predict(1.0) == 0.9 and pre.resume.probe() == 0.63 and probes == ["rewrite"]
    done = engine.run_deferred(pre)
    rec = done.info["reassociated_passes"]
    assert done.w1_bound == 0.2 and rec["first"] == "original"
    assert [n for n, _ in log] == ["original"], log
    assert rec["second"].startswith("skipped") and "0.504" in rec["second"], rec
    assert rec["probed"] == {"original": 0.25, "rewrite": 0.63}


def test_association_orders_skip_only_a_probed_second_pass():
    """The skip needs both orders probed and an association pair: a second order without a probe runs under the
    first's bound times PAIR_SLACK, and a cancellation pair (two different graphs) keeps running its second."""
    log: list[tuple[str, float]] = []
    a, b = _probed(1.0, 0.2, 0.25, log, "original"), _probed(0.9, 0.19, 0.26, log, "rewrite")
    ra, rb = a.resume, b.resume
    a.resume = b.resume = None
    x, y, rec = engine._pair_passes(a, ra, b, rb, 5.0, same_law_orders=True)
    assert [n for n, _ in log] == ["original"] and (x.w1_bound, y.w1_bound) == (0.2, 0.9)  # heuristic: 0.19 lost
    log.clear()
    x, y, rec = engine._pair_passes(a, ra, b, rb, 5.0)  # a cancellation pair: both run
    assert [n for n, _ in log] == ["original", "rewrite"] and y.w1_bound == 0.19
    assert log[1][1] == pytest.approx(engine.PAIR_SLACK * 0.2)
    log.clear()
    rb_np = DeferredPass(rb.run, rb.predict, lambda: None)  # the second order has no probe: its pass runs
    x, y, rec = engine._pair_passes(a, ra, b, rb_np, 5.0, same_law_orders=True)
    assert [n for n, _ in log] == ["original", "rewrite"] and rec["second"] == "ran"


def test_association_pair_above_its_ceiling_probes_one_order():
    """A losing cancellation graph's association orders (Borehole's original, probed 66.9 against the rewrite's
    16.5): where the order returned before the passes probes at or above the ceiling, the other order is neither
    probed nor run; the lead's pass is called (it stops on its kept probe)."""
    log: list[tuple[str, float]] = []
    probes: list[str] = []
    old = _counted_probe(_probed(1.0, 0.7, 0.8, log, "original"), probes, "original")
    new = _counted_probe(_probed(0.9, 0.6, 0.75, log, "rewrite"), probes, "rewrite")
    x, y, rec = engine._pair_passes(old, old.resume, new, new.resume, 0.5, same_law_orders=True)
    assert probes == ["rewrite"] and log == [("rewrite", 0.5)] and x is old and y.w1_bound == 0.6
    assert rec["second"].startswith("not run") and rec["first"] == "rewrite"
    # below the ceiling both are probed and the order follows the probes
    probes.clear()
    log.clear()
    x, y, rec = engine._pair_passes(old, old.resume, new, new.resume, 0.78, same_law_orders=True)
    assert sorted(probes) == ["original", "rewrite"] and [n for n, _ in log] == ["rewrite"]


def _bore5(rw, r, tu, kw, hu):
    """The borehole's structure with a head difference: a cancellation pair whose graphs are reassociated."""
    lg = np.log(r / rw)
    return 6.283185307179586 * tu * (hu - 800.0) / (lg * (1 + 2 * 1400.0 * tu / (lg * rw**2 * kw) + tu / 89.0))


_BORE5 = [od.Uniform(0.05, 0.15), od.Uniform(100.0, 50000.0), od.Uniform(63070.0, 115600.0), od.Uniform(9985, 12045)]
_BORE5 += [od.Uniform(990.0, 1110.0)]


def _old_pair_rule(monkeypatch):
    """engine._pair_passes without the association orders' rules (the schedule of dcg-pairfix)."""
    real = engine._pair_passes

    def old(*a, same_law_orders=False, **kw):
        return real(*a, **kw)

    monkeypatch.setattr(engine, "_pair_passes", old)


@pytest.mark.parametrize(("atoms", "second"), [(3, "skipped"), (4, "skipped"), (6, "ran")])
def test_association_orders_one_pass_same_bound(monkeypatch, atoms, second):
    """_bore5: a cancellation pair of reassociated graphs. The second order's pass is skipped (at 6 atoms the
    second order has no probe: it runs) and the losing graph's second order is not probed: fewer fine-grid
    evaluations, the same atoms, and the bound of every pass run at once (equal at 3, 4, 6 atoms: 16.22, 12.40,
    6.291)."""
    seen = _rounds(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = od.evaluate(_bore5, *_BORE5, atoms=atoms)
        n_new = len(seen)
        seen.clear()
        _old_pair_rule(monkeypatch)
        before = od.evaluate(_bore5, *_BORE5, atoms=atoms)
        n_old = len(seen)
        monkeypatch.setattr(engine, "DEFER_SUBCELLS", _NoDefer())
        every = od.evaluate(_bore5, *_BORE5, atoms=atoms)
    assert sched.info["reassociated_passes"]["second"].startswith(second), sched.info["reassociated_passes"]
    assert n_new < n_old, (n_new, n_old)
    for other in (before, every):
        assert np.array_equal(sched.atoms, other.atoms) and np.array_equal(sched.weights, other.weights)
    assert sched.w1_bound <= every.w1_bound * (1 + 1e-12) and sched.w1_bound <= before.w1_bound * (1 + 1e-12)


def test_association_pair_under_no_ceiling_probes_both_orders():
    """No ceiling (not a cancellation pair's loser): an infinite bound and probe of the lead order (both orders
    infinite before the passes) does not stop the other order, which is probed and run first."""
    inf = float("inf")
    log: list[tuple[str, float]] = []
    probes: list[str] = []
    old = _counted_probe(_probed(inf, inf, inf, log, "original"), probes, "original")
    new = _counted_probe(_probed(inf, 0.6, 0.8, log, "rewrite"), probes, "rewrite")
    x, y, rec = engine._pair_passes(old, old.resume, new, new.resume, inf, same_law_orders=True)
    assert sorted(probes) == ["original", "rewrite"] and log[0] == ("rewrite", inf)
    assert rec["first"] == "rewrite" and y.w1_bound == 0.6
