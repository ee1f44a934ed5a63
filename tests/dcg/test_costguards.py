"""Cost guards for long programs on small grids (issue 14 sections 4 and 6): the same or tighter bounds, fewer
graph evaluations, linear-time compression planning, and ``target_w1`` calls on long programs that answer."""

from __future__ import annotations

import contextvars
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import costguards, engine, subslope
from opgraph.dcg.api import prepare, restrict
from opgraph.dcg.errors import TargetNotMetWarning
from opgraph.graph import Graph, trace

sys.path.insert(0, str(Path(__file__).parent))
import test_cancel as TC  # noqa: E402  (multi-input programs whose sub-cell passes run, with their laws)


def _osc(steps: int):
    h = 10.0 / steps

    def fn(w, zeta, x0):
        x, v = x0, 0.0 * x0
        for _ in range(steps):
            v = v - h * (2 * zeta * w * v + w * w * x)
            x = x + h * v
        return x

    return fn, [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]


def _logistic(steps: int):
    h = 5.0 / steps

    def fn(r, k, x0):
        x = x0
        for _ in range(steps):
            x = x + h * r * x * (1 - x / k)
        return x

    return fn, [od.Uniform(0.5, 1.0), od.Uniform(80.0, 120.0), od.Uniform(5.0, 15.0)]


def _both(fn, laws, **kw):
    """The result with the guards off, then on."""
    out = []
    for on in (False, True):
        tok = costguards.ENABLED.set(on)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.append(od.evaluate(fn, *laws, **kw))
        finally:
            costguards.ENABLED.reset(tok)
    return out


def _plan_reference(graph, output, sizes, max_joint, compress_atoms, soft_joint=None):
    """The compression planner as it was before the linear scan (a full size pass per tolerated node)."""
    limit = max_joint if soft_joint is None else min(max_joint, soft_joint)
    if math.prod(sizes.values()) <= limit:
        return set()
    seps = engine.separators(graph, output)
    extremes = engine.extreme_nodes(graph, output, seps)
    chosen: set[int] = set()
    tolerated: set[int] = set()
    for _ in range(2 * len(graph) + 1):
        size = engine._grid_sizes(graph, sizes, chosen, compress_atoms, extremes)
        bad = next((i for i, s in enumerate(size) if s > limit and i not in tolerated), None)
        if bad is None:
            return chosen
        cands = [
            u
            for u in graph.ancestors(bad)
            if u in seps and u not in chosen and size[u] > compress_atoms and size[u] <= max_joint
        ]
        if cands:
            chosen.add(max(cands, key=lambda u: (size[u], -u)))
        elif size[bad] <= max_joint:
            tolerated.add(bad)
        else:
            return None
    return None


def _chain(a, b, c, d):
    s = np.sin(a * b) + c
    t = np.exp(0.1 * s) * d
    return (t + s) * (a - t) + np.maximum(b, d)


def _seps(a, b, c, d):
    u = np.sin(a * b) + a  # separates a, b from the rest
    v = np.exp(0.1 * c) * d  # separates c, d
    return u * v + u - v


@pytest.mark.parametrize("fn", [_chain, _seps, TC._bore, _osc(15)[0], _logistic(15)[0]])
def test_plan_compression_matches_the_quadratic_planner(fn):
    """Same compressed set (or the same refusal) as the planner that re-scanned every node per tolerated node."""
    n = fn.__code__.co_argcount
    g = prepare(trace(fn, *[f"x{i}" for i in range(n)]), balance=True)
    sub, out = restrict(g, g.outputs[0])
    ins = [m.id for m in sub.nodes if m.op == "input"]
    checked = 0
    for atoms in (2, 8, 32, 128):
        for max_joint, comp, soft in ((2**12, 16, None), (2**16, 64, 2**10), (2**20, 256, 2**16), (2**8, 8, 64)):
            sizes = dict.fromkeys(ins, atoms)
            want = _plan_reference(sub, out, sizes, max_joint, comp, soft)
            got = engine.plan_compression(sub, out, sizes, max_joint, comp, soft)
            assert got == want, (atoms, max_joint, comp, soft)
            checked += want is not None and bool(want)
    assert checked or fn is not _seps  # a program with separators: some plans compress


def test_equal_or_tighter_bounds_on_short_odes(monkeypatch):
    """The guards on vs off (node thresholds lowered so that they apply): bounds equal, or tighter."""
    monkeypatch.setattr(costguards, "TAYLOR_MAX_NODES", 100)
    monkeypatch.setattr(costguards, "LONG_NODES", 100)
    # The sub-box slope remainder (opgraph.dcg.subslope) makes the Taylor pass that the guard skips win a little on
    # the 4-atom oscillator (0.1518 with the guard, 0.1504 without: another answer), so it is off here.
    monkeypatch.setattr(subslope, "ENABLED", contextvars.ContextVar("subslope_off_costguards", default=False))
    # Likewise the polynomial box models (opgraph.dcg.polymodel, branch ode-osc): the guarded lean pass gets the
    # mixture on the oscillator (a tighter bound, another answer)
    from opgraph.dcg import polymodel

    monkeypatch.setattr(polymodel, "ENABLED", contextvars.ContextVar("polymodel_off_costguards", default=False))
    for make, steps, atoms in ((_osc, 40, 2), (_logistic, 40, 2), (_osc, 40, 4)):
        fn, laws = make(steps)
        off, on = _both(fn, laws, atoms=atoms)
        assert on.w1_bound <= off.w1_bound, (make.__name__, atoms, off.w1_bound, on.w1_bound)
        np.testing.assert_array_equal(on.atoms, off.atoms)
        np.testing.assert_array_equal(on.weights, off.weights)
        assert math.isfinite(on.w1_bound)


@pytest.mark.parametrize("fn", list(TC.LAWS))
def test_equal_or_tighter_bounds_on_multi_input_programs(fn):
    """The cancellation tests' programs (sub-cell passes, probes, pairs): bounds equal, or tighter."""
    off, on = _both(fn, TC.LAWS[fn], atoms=3)
    assert on.w1_bound <= off.w1_bound, (fn.__name__, off.w1_bound, on.w1_bound)
    np.testing.assert_array_equal(on.atoms, off.atoms)


def test_fine_round_cell_only_gives_the_same_cellwise_bound(monkeypatch):
    """A sub-cell round's evaluator without path and law-level bounds: the same per-box bound bit for bit."""
    fn, laws = _osc(30)
    seen: dict[bool, list[np.ndarray]] = {True: [], False: []}
    real = engine._subcell_round
    mode = {"cell_only": True}

    def recorded(*a, **kw):
        res = real(*a, **kw)
        if res is not None:
            assert res[4].cell_only is mode["cell_only"]
            seen[mode["cell_only"]].append(np.array(res[1]))
        return res

    monkeypatch.setattr(engine, "_subcell_round", recorded)
    for cell_only in (True, False):
        mode["cell_only"] = cell_only
        monkeypatch.setattr(costguards, "fine_cell_only", lambda g, c=cell_only: c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            od.evaluate(fn, *laws, atoms=2)
    assert seen[True] and len(seen[True]) == len(seen[False])
    for x, y in zip(seen[True], seen[False], strict=True):
        np.testing.assert_array_equal(x, y)


def test_small_round_runs_whole_once(monkeypatch):
    """On a long program a round of at most WHOLE_ROUND_BOXES fine boxes is one evaluation (no probe), never
    repeated; a short program keeps its probe."""
    calls = []
    real = engine._subcell_round

    def recorded(ev, sub, out, plan, quantized, labels, dists, rules, only=None):
        calls.append((id(ev), tuple(sorted(plan.items())), only is None))
        return real(ev, sub, out, plan, quantized, labels, dists, rules, only)

    monkeypatch.setattr(engine, "_subcell_round", recorded)
    monkeypatch.setattr(costguards, "LONG_NODES", 100)
    fn, laws = _osc(30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, atoms=2)
    assert r.info["subcells"]["fine_boxes"] <= costguards.WHOLE_ROUND_BOXES
    assert calls and all(whole for _, _, whole in calls)
    assert len(calls) == len(set(calls))
    monkeypatch.setattr(costguards, "LONG_NODES", 10_000)
    calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        od.evaluate(fn, *laws, atoms=2)
    assert any(not whole for _, _, whole in calls)  # the probe (restricted to some cells) ran first


def test_long_program_target_call_answers_within_the_work_cap(monkeypatch):
    """A target out of reach on a long program: one certified round within the cap, and a message naming it."""
    fn, laws = _osc(60)
    monkeypatch.setattr(costguards, "LONG_NODES", 200)
    monkeypatch.setattr(costguards, "LONG_ROUND_WORK", 20_000)
    with pytest.warns(TargetNotMetWarning, match="work cap"):
        # without a time budget (with one, its per-node floor model sizes the rounds: tests/dcg/test_oderounds.py)
        r = od.evaluate(fn, *laws, target_w1=1e-6, max_seconds=None)
    assert r.certified and math.isfinite(r.w1_bound)
    hist = r.info["refinement"]
    assert len(hist) == 1 and hist[0]["atoms"] == {"w": 2, "zeta": 2, "x0": 2}
    assert "LONG_ROUND_WORK" in r.info["target_unmet"]
    # without the guards the pilot is the usual one (16 atoms per input for three inputs)
    assert costguards.pilot_counts(["a", "b"], {"a": 16, "b": 16}, lambda c: 10.0 * math.prod(c.values()), 700) == {
        "a": 8,
        "b": 8,
    }


def test_separators_memo_is_per_graph_object():
    """The separators are kept per graph object: the same answer as computed afresh, and a caller's copy."""
    g1 = prepare(trace(_seps, "a", "b", "c", "d"), balance=True)
    sub, out = restrict(g1, g1.outputs[0])
    first = engine.separators(sub, out)
    assert first == set(engine._separators(sub, out)) and first
    first.clear()  # the caller's set: the memo keeps its own
    assert engine.separators(sub, out) == set(engine._separators(sub, out))
    g2 = prepare(trace(_chain, "a", "b", "c", "d"), balance=True)
    sub2, out2 = restrict(g2, g2.outputs[0])
    assert engine.separators(sub2, out2) == set(engine._separators(sub2, out2))
    for _ in range(costguards._GRAPH_MEMO_SIZE + 2):  # the memo stays bounded
        costguards.memo_by_graph("t", Graph((), (), ()), None, lambda: 1)
    assert len(costguards._GRAPH_MEMO) <= costguards._GRAPH_MEMO_SIZE


def test_first_round_counts_caps_to_the_predicted_share(monkeypatch):
    """The counts are capped at the largest value predicted within the share; None where the round already fits."""
    monkeypatch.setattr(costguards, "FIRST_ROUND_FIXED", 0.0)
    monkeypatch.setattr(costguards, "FIRST_ROUND_RATE", 1e-3)
    monkeypatch.setattr(costguards, "FIRST_ROUND_SHARE", 0.5)

    def work(c):
        return 10.0 * math.prod(c.values())

    counts = {"a": 8, "b": 8, "c": 4}
    assert costguards.first_round_counts(counts, work, 1e6) is None  # 2.56 s predicted, 5e5 s allowed
    # 2 s allowed: 1e-2 * a * a * min(a, 4) s <= 2 s -> a = 7 (1.96 s; 8 is the requested 2.56 s)
    assert costguards.first_round_counts(counts, work, 4.0) == {"a": 7, "b": 7, "c": 4}
    # mean-split inputs stay powers of two
    assert costguards.first_round_counts(counts, work, 4.0, frozenset({"a"})) == {"a": 4, "b": 7, "c": 4}
    # nothing fits: the smallest grid (2 per input)
    assert costguards.first_round_counts(counts, work, 1e-6) == {"a": 2, "b": 2, "c": 2}
    tok = costguards.ENABLED.set(False)
    try:
        assert costguards.first_round_counts(counts, work, 4.0) is None
    finally:
        costguards.ENABLED.reset(tok)


def _five(a, b, c, d, e):
    return a * b / (1.0 + c * d) + np.sqrt(e + a) * c


FIVE_LAWS = [
    od.Uniform(1.0, 2.0),
    od.Uniform(0.5, 1.5),
    od.Uniform(0.2, 1.0),
    od.Uniform(1.0, 3.0),
    od.Uniform(0.0, 2.0),
]


def test_target_call_sizes_its_first_round_to_a_small_budget(monkeypatch):
    """Where the prior predicts the pilot round over a small max_seconds, the first round is smaller; certified, sound."""
    from opgraph.dcg.w1 import w1_discrete

    from .sobolref import sobol_reference

    # the prior made expensive, so that the 8-per-input pilot (32,768 boxes) is predicted far over 1 s
    monkeypatch.setattr(costguards, "FIRST_ROUND_RATE", 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetNotMetWarning)
        r = od.evaluate(_five, *FIVE_LAWS, target_w1=1e-7, max_seconds=1.0)
    hist = r.info["refinement"]
    sized = hist[0]["first_round_sized"]
    assert sized["requested"] == dict.fromkeys("abcde", 8)
    assert hist[0]["atoms"] == sized["used"]
    assert all(sized["used"][n] < sized["requested"][n] for n in "abcde")
    assert r.certified and math.isfinite(r.w1_bound)
    ref, err = sobol_reference(_five, FIVE_LAWS, log2=15)
    true = w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size))
    assert r.w1_bound >= true - 3 * err
    # the switch off: the pilot grid is the first round
    monkeypatch.setattr(costguards, "SIZE_FIRST_ROUND", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetNotMetWarning)
        r0 = od.evaluate(_five, *FIVE_LAWS, target_w1=1e-7, max_seconds=1.0)
    assert r0.info["refinement"][0]["atoms"] == dict.fromkeys("abcde", 8)
    assert "first_round_sized" not in r0.info["refinement"][0]
