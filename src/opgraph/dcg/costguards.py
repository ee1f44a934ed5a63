"""Cost guards for long programs on small grids (issue 14 sections 4 and 6: long programs, certified fast).

A 1,000-step Euler ODE unrolls to 5,000-7,000 graph nodes; at 2-8 atoms per input every graph evaluation costs
about 0.4-0.9 ms per node whatever the grid (the count of NumPy calls per node, not their size), so the work of a
call is the number of whole-graph evaluations it makes. Three of them could not pay on such programs:

- **the probe of a small sub-cell round on a long program** (:func:`whole_round`): a probe evaluates the graph on the sub-cells of a
  few cells, and the rest of the round evaluates it again; on a round of at most :data:`WHOLE_ROUND_BOXES` fine
  boxes the probe costs about as much as the whole round, so the round runs whole (one evaluation instead of two
  where the probe would let it go on; where the probe would have stopped it, the round now also lowers the bound
  of the other boxes, for about the same cost);
- **the path and law-level bounds of a sub-cell round's evaluation** (:func:`fine_cell_only`): the nested bound
  reads only the fine grid's per-box cellwise bounds, never the path (moment-weighted) or law-level bounds that
  every node also carries; the fine evaluator runs cell-only (the same box enclosures, derivative enclosures and
  affine forms: the cellwise bound is the same bit for bit);
- **the second-order Taylor box bound on long graphs** (:func:`taylor_pays`): its jets carry interval Hessian
  enclosures through every node, which wrap over a chain of thousands of ops (on the UQ suite's ODEs it won on 0
  boxes, for 1.6 CPU s per call); it runs on graphs of at most :data:`TAYLOR_MAX_NODES` nodes. Longer graphs get
  the *lean* pass (point pass and affine slope walk only) where the box-linear mixture wants linear models
  (:mod:`opgraph.dcg.longmix`).

Every guard only decides what is computed; each bound kept is one of the valid bounds the engine computes.
``ENABLED.set(False)`` restores the previous schedule (for the equal-bounds test and the before/after benchmark
``benchmarks/dcg/nodecost_bench.py``).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg.distributions import Quantized
from opgraph.graph import Graph

#: Whether the guards apply (``ENABLED.set(False)``: every probe, path bound and Taylor pass runs as before).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_costguards", default=True)
#: A graph of more than this many nodes is a long program (the guards on probes and target_w1 rounds apply).
LONG_NODES = 2048
#: A sub-cell round of at most this many fine boxes runs whole, without a probe (512: the fine grid of the
#: 1,000-step ODEs at 2 and 4 atoms per input, where one evaluation at 512 boxes cost 1.6x one at 8 boxes).
WHOLE_ROUND_BOXES = 512
#: The Taylor box bound runs on graphs of at most this many nodes (the MLPs it was made for have 100-300).
TAYLOR_MAX_NODES = 2048


def fine_boxes(plan: Mapping[str, int], sizes: Mapping[str, int], tails: Mapping[str, int], pieces: int) -> int:
    """Boxes of a sub-cell round's whole fine grid.

    Per split input ``atoms * p`` sub-cells plus ``pieces`` more per tail cell (:func:`opgraph.dcg.subcells.split`);
    the other inputs' cells as they are.
    """
    return math.prod(
        sizes[name] * plan[name] + tails.get(name, 0) * pieces if name in plan else sizes[name] for name in sizes
    )


def whole_round(n_fine: int, n_nodes: int) -> bool:
    """Whether a sub-cell round of ``n_fine`` fine boxes on a graph of ``n_nodes`` nodes runs whole (no probe).

    Only on long programs (more than :data:`LONG_NODES` nodes): a short graph's probe costs milliseconds, and a
    round evaluated whole is not the probe and the rest evaluated apart box for box (the affine forms' symbol
    pruning and the subdivision budget are per evaluation), so the bound may move either way by a few percent
    (the cancellation tests' piston volume at 3 atoms: +2.5 %); short programs keep their probes.
    """
    return ENABLED.get() and n_nodes > LONG_NODES and n_fine <= WHOLE_ROUND_BOXES


def fine_cell_only(graph: Graph) -> bool:
    """Whether a sub-cell round's evaluator on ``graph`` may skip the path and law-level bounds.

    The output of a round has every input as an axis; with at least two inputs, its cellwise bound
    reads no tail-growth series (those are kept on one-axis values only), and without ``maximum``/``minimum`` no
    grid-free extreme (whose axis is built from its operands' path terms) is formed.
    """
    ops = [n.op for n in graph.nodes]
    return ENABLED.get() and ops.count("input") >= 2 and "maximum" not in ops and "minimum" not in ops


def taylor_pays(graph: Graph) -> bool:
    """Whether the second-order Taylor box bound may run on ``graph`` (at most :data:`TAYLOR_MAX_NODES` nodes)."""
    return taylor_pays_nodes(len(graph.nodes))


def taylor_pays_nodes(nodes: int) -> bool:
    """:func:`taylor_pays` for a graph of ``nodes`` nodes."""
    return not ENABLED.get() or nodes <= TAYLOR_MAX_NODES


def round_runs_whole(plan: Mapping[str, int], quantized: Mapping[str, Quantized], pieces: int, n_nodes: int) -> bool:
    """Whether the sub-cell round of ``plan`` on the inputs' quantizations ``quantized`` (by name) runs whole."""
    if not ENABLED.get() or n_nodes <= LONG_NODES:
        return False
    sizes = {name: int(q.atoms.size) for name, q in quantized.items()}
    tails = {name: int(np.sum(~(np.isfinite(q.lo) & np.isfinite(q.hi)))) for name, q in quantized.items()}
    return whole_round(fine_boxes(plan, sizes, tails, pieces), n_nodes)


#: Under ``target_w1`` without a time budget (``max_seconds=None``), on a long program (more than LONG_NODES nodes)
#: each refinement round is capped at LONG_ROUND_WORK box-nodes (the sum over op nodes of their grid sizes,
#: :func:`opgraph.dcg.engine.grid_work`); the first round is the largest even grid within it either way (4 atoms per
#: input for the 1,000-step ODEs of 3 inputs: 448k box-nodes, about 5 CPU s before the sub-cell pass). Under a time
#: budget (the default ``max_seconds``) the rounds after the first are sized by the budget's per-node floor model
#: instead (:func:`opgraph.dcg.roundbudget.floor_seconds`, calibrated on the first round's own time): the cap was
#: set when an 8-atom round cost a minute, and now rules out rounds of 5-14 s (8-16 atoms per input).
LONG_ROUND_WORK = 2**19
#: Whether a time budget replaces the work cap of a long program's later rounds (module switch for the before/after
#: benchmark and the tests; read in the calling process).
TIME_MODEL = True


def long_nodes(graphs: Sequence[Graph]) -> int:
    """The node count of the longest of ``graphs`` where it is a long program (over :data:`LONG_NODES`), else 0.

    0 too where the long-program guards are off (:data:`ENABLED`).
    """
    n = max((len(g.nodes) for g in graphs), default=0)
    return n if ENABLED.get() and n > LONG_NODES else 0


def round_work_cap(n_long: int, timed: bool) -> float | None:
    """The per-round work cap of a ``target_w1`` call, None for short programs (``n_long == 0``).

    Args:
        n_long: :func:`long_nodes` of the call's output graphs.
        timed: Whether the call runs under a time budget (:func:`opgraph.dcg.roundbudget.current`).

    Under a time budget and :data:`TIME_MODEL`, a long program's cap is ``inf`` (the budget's prediction decides
    instead: its per-node floor model, :attr:`opgraph.dcg.roundbudget.RoundBudget.long_nodes`, which the caller
    sets with :meth:`~opgraph.dcg.roundbudget.RoundBudget.start_long_call`); the first round stays within
    :data:`LONG_ROUND_WORK` (:func:`pilot_counts`).
    """
    if not n_long:
        return None
    return math.inf if TIME_MODEL and timed else float(LONG_ROUND_WORK)


def pilot_counts(
    names: Sequence[str], counts: Mapping[str, int], work: Callable[[dict[str, int]], float | None], cap: float
) -> dict[str, int]:
    """The first round's atoms of a long program.

    The largest power of two per input (from 2, at most ``counts``) whose grid's work stays within ``cap`` and
    :data:`LONG_ROUND_WORK` (``work`` of a counts dict, None where it does not fit).
    """
    cap = min(cap, float(LONG_ROUND_WORK))
    a = 2
    while True:
        nxt = {n: min(counts[n], 2 * a) for n in names}
        if nxt == {n: min(counts[n], a) for n in names}:
            break
        w = work(nxt)
        if w is None or w > cap:
            break
        a *= 2
    return {n: min(counts[n], a) for n in names}


#: Under a time budget, a long program's round whose first-order bound is infinite is followed by a round with every
#: input's atoms times this (the allocator has no finite terms to plan from; the time budget shrinks the step
#: proportionally to the largest round predicted within it). ODE-log, 20 s budget: 4 -> 8 -> 10 atoms (two stepping
#: rounds of about 5 s each, bound 6.9) with a doubling; 4 -> 14 atoms with this.
INF_STEP = 4

#: A sub-cell pass is costed as this many graph evaluations on its fine grid (a pass has at most two rounds, each
#: one evaluation where it runs whole: ODE-log at 4 atoms, two rounds of 512 fine boxes, 10.5 CPU s against 4.7 s
#: for the round itself; ODE-osc one round, 5.2 s against 4.8 s).
PASS_EVALS = 2.0


def pass_fine_boxes(boxes: float, nodes: int) -> float:
    """The fine boxes a sub-cell pass evaluates on a grid of ``boxes`` boxes (:mod:`opgraph.dcg.subcells` caps)."""
    from opgraph.dcg import subcells

    return min(max(subcells.MAX_FACTOR * boxes, subcells.MIN_BOXES), subcells.MAX_WORK / max(nodes, 1))


def pass_seconds(round_seconds: float, round_work: float, nodes: int) -> float:
    """Predicted seconds of a long program's sub-cell pass after a round of ``round_work`` box-nodes.

    :data:`PASS_EVALS` evaluations on the pass's fine grid (:func:`pass_fine_boxes`), each predicted from the round's
    own seconds by the per-node floor model (:func:`opgraph.dcg.roundbudget.floor_seconds`).
    """
    from opgraph.dcg import roundbudget

    fine = pass_fine_boxes(round_work / max(nodes, 1), nodes) * nodes
    return PASS_EVALS * roundbudget.floor_seconds(round_seconds, round_work, fine, nodes)


#: Results of graph algorithms kept per graph object (the compression planner asks for the separators of the same
#: restricted graph at every allocation and fit check of a ``target_w1`` round: 0.1 s each on a 7,000-node ODE).
_GRAPH_MEMO: dict[tuple[str, int, Any], tuple[Graph, Any]] = {}
_GRAPH_MEMO_SIZE = 32


def memo_by_graph(kind: str, graph: Graph, key: Any, compute: Callable[[], Any]) -> Any:
    """``compute()`` for ``(kind, graph, key)``, kept while the graph object lives in the memo (checked by identity).

    The memo holds the graph (so its id is not reused while kept) and at most ``_GRAPH_MEMO_SIZE`` entries (the
    oldest dropped first). The value must not be changed by the caller.
    """
    k = (kind, id(graph), key)
    hit = _GRAPH_MEMO.get(k)
    if hit is not None and hit[0] is graph:
        return hit[1]
    value = compute()
    if len(_GRAPH_MEMO) >= _GRAPH_MEMO_SIZE:
        del _GRAPH_MEMO[next(iter(_GRAPH_MEMO))]
    _GRAPH_MEMO[k] = (graph, value)
    return value


#: Whether a ``target_w1`` call sizes its first round to the time budget (:func:`first_round_counts`; module switch
#: for the before/after benchmark, read in the calling process).
SIZE_FIRST_ROUND = True
#: Prior cost model of a first ``target_w1`` round, before any round of the call was measured:
#: ``FIRST_ROUND_FIXED + FIRST_ROUND_RATE * work`` CPU seconds (``work`` in box-nodes, :func:`opgraph.dcg.api._work`).
#: Set above the UQ suite's measured target rounds (2026-12-07, 1 thread, load 5-8): Piston 23k box-nodes 0.59 s,
#: 190k 0.47 s, 1.5M 3.6 s, 4.8M 12.8 s, 8.5M 23.6 s; DampedOsc 0.99M 6.8 s, 5.5M 24.6 s; MLP 272k 1.5 s.
FIRST_ROUND_FIXED = 0.5
FIRST_ROUND_RATE = 7e-6
#: The first round is shrunk where its predicted seconds exceed this share of the call's budget, to the largest
#: grid predicted within it (the rest of the budget for the rounds the measured cost model then plans).
FIRST_ROUND_SHARE = 0.8


def first_round_seconds(work: float) -> float:
    """The prior's predicted CPU seconds of a first round of ``work`` box-nodes (:data:`FIRST_ROUND_RATE`)."""
    return FIRST_ROUND_FIXED + FIRST_ROUND_RATE * max(work, 0.0)


def first_round_counts(
    counts: Mapping[str, int],
    work: Callable[[dict[str, int]], float | None],
    seconds: float,
    pow2: frozenset[str] = frozenset(),
) -> dict[str, int] | None:
    """Smaller first-round counts of a ``target_w1`` call whose predicted cost fits its time budget, or None.

    The first round of a ``target_w1`` call is planned before anything was measured (the pilot grid, or the grid
    shrunk to fit ``max_joint``), and the refinement's time budget (:mod:`opgraph.dcg.roundbudget`) applies only
    from the second round on: Piston's 8-per-input pilot (8.5M box-nodes) took 23.6 CPU s of a 20 s budget and
    DampedOsc's whole first grid 25-41 s (its ``uq.py`` calls time out at 30 s). Where the prior
    (:func:`first_round_seconds`) predicts more than :data:`FIRST_ROUND_SHARE` of ``seconds``, every count is
    capped at the largest ``a`` (from the largest count down to 2; inputs in ``pow2``, mean-split quantizers,
    rounded down to powers of two) whose grid is predicted within that share; the rounds after it are planned from
    their measured cost. Every round is a certified answer of its own, so a smaller first round only changes which
    grids the refinement visits (the best bound of the rounds is kept).

    Args:
        counts: The first round's atoms per input.
        work: The work of a round at given counts (box-nodes; None: over the memory budget).
        seconds: The time left of the call's budget (seconds).
        pow2: Inputs whose counts must stay powers of two.

    Returns:
        The smaller counts, or None where the first round is predicted within the share (or the switches are off).
    """
    if not (ENABLED.get() and SIZE_FIRST_ROUND) or not counts or not math.isfinite(seconds):
        return None
    allowed = FIRST_ROUND_SHARE * seconds
    w0 = work(dict(counts))
    if w0 is None or first_round_seconds(w0) <= allowed:
        return None

    def capped(a: int) -> dict[str, int]:
        out = {}
        for n, c in counts.items():
            k = min(c, a)
            out[n] = 1 << (k.bit_length() - 1) if n in pow2 else k
        return out

    for a in range(max(counts.values()) - 1, 1, -1):
        c = capped(a)
        w = work(c)
        if w is not None and first_round_seconds(w) <= allowed:
            return c
    smallest = capped(2)
    return smallest if smallest != dict(counts) else None
