"""Box-linear mixture on long programs: a lean Taylor pass (affine slope walk only; docs/dcg.md, "Long programs").

On a graph of more than :data:`opgraph.dcg.costguards.TAYLOR_MAX_NODES` nodes (a 1,000-step Euler ODE: 5,000-7,000
nodes) the second-order Taylor pass did not run (:func:`opgraph.dcg.costguards.taylor_pays`): its interval
enclosures wrap over the chain (on ODE-log at 8 atoms per input the interval slope remainder is 1.6e185, the
interval Hessian form as large), and without the pass the box-linear mixture (:mod:`opgraph.dcg.boxlinear`) has no
linear models. But the affine gradient enclosures (:mod:`opgraph.dcg.affgrad`) over the thin boxes of a
one-coordinate-at-a-time walk do not wrap there: on ODE-log at 16 atoms per input their slope remainder is 0.19
(the sampled true remainder ``E|f - f(x') - g . d|`` is 0.014), so the mixture's bound is 0.27 where the point-mass
answer certifies 2.9.

Where the mixture is on and wants linear models, this module lets the Taylor pass run on long graphs in its *lean*
form (:func:`opgraph.dcg.taylor.box_bound`'s ``lean``): the point pass at the atoms (value and gradient enclosures on
degenerate boxes: no wrapping), then the slope form's affine walk only; no box interval pass, no Hessian
enclosures, no interval walk passes, no probe (on a long program a pass on the probe's 8 boxes costs the per-node
floor of a whole pass). Every part dropped only leaves a wider valid enclosure (the whole line) or an infinite
alternative form, so each box's remainder is the slope form's statement with valid enclosures (docs/dcg.md,
"Mean-value (slope) remainder"), and the engine still keeps per box the smaller of it and its own bound, and the
mixture only where it wins.

Cost guard: the lean pass costs about :data:`SECONDS_PER_BOX_NODE` CPU s per box, graph node and axis (the affine
walk's ``k`` passes), plus a per-node floor; it runs where that prediction fits the ``target_w1`` call's
``max_seconds`` (:func:`opgraph.dcg.boxlinear.affordable`), or, in a fixed-atoms call, the fixed-atoms allowance
``"long_mixture"`` (:mod:`opgraph.dcg.fixedbudget`: 20 CPU s; a function of the grid's size: the same answer on any
machine). A long program's ``target_w1`` call skips it on its pilot round (:data:`PILOT_SKIP`).

``ENABLED`` (ContextVar, switch ``long_mixture`` in :mod:`opgraph.dcg.switches`) turns it off: long graphs then get
no Taylor pass, as before.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping
from typing import Any

from opgraph.dcg import fixedbudget

#: Whether the lean Taylor pass runs on long graphs where the box-linear mixture wants linear models.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_longmix", default=True)
#: CPU s per box, graph node and input axis of the lean pass (the affine walk's passes; calibrated on ODE-log,
#: 1,000 steps, 3 inputs, 16 atoms per input: about 10 s for 4,096 boxes x 5,000 nodes at load ~5).
SECONDS_PER_BOX_NODE = 8e-8
#: CPU s per graph node of one lean pass whatever the grid (the NumPy-call floor of its ``k + 1`` passes).
SECONDS_PER_NODE = 2.5e-4
#: Whether a long program's ``target_w1`` call skips the lean pass on its pilot round (the first, sized by
#: ``costguards.LONG_ROUND_WORK`` to calibrate the time model: 4 atoms per input on the 1,000-step ODEs, where the
#: pass spent its ~3 s floor and left ODE-log's bound infinite; the time goes to a larger later round instead).
PILOT_SKIP = True
#: Whether a long program's ``target_w1`` rounds after the pilot are planned with the lean pass's predicted time
#: held back (:func:`reserve`; ``opgraph.dcg.api._budget_step``): a smaller round and its pass instead of a larger
#: round whose pass no longer fits.
RESERVE = True
#: The grids (fractions of the proposed atoms per input) whose lean pass a round's plan tries to hold back, in order.
RESERVE_FRACTIONS = (1.0, 0.8, 0.65, 0.5)


def seconds(boxes: int, nodes: int, k: int) -> float:
    """Predicted CPU s of the lean pass on ``boxes`` boxes of a ``k``-input grid and a graph of ``nodes`` nodes."""
    return float(nodes) * (SECONDS_PER_NODE * (k + 1) + SECONDS_PER_BOX_NODE * k * boxes)


def runs(boxes: int, nodes: int, k: int, polynomial: bool = False) -> bool:
    """Whether the lean pass runs on such a grid (switch on; predicted within the call's budget).

    ``polynomial``: the program has polynomial box models (:func:`opgraph.dcg.polymodel.applies`), whose remainder
    is finite on the pilot round's coarse grid too (ODE-osc at 4 atoms per input: 0.18 std against the point-mass
    0.219 / 0.213 = 1.03 std), so the pilot round is not skipped (:data:`PILOT_SKIP`).
    """
    from opgraph.dcg import boxlinear, roundbudget

    if not ENABLED.get() or not boxlinear.ENABLED.get():
        return False
    s = seconds(boxes, nodes, k)
    rb = roundbudget.current()
    if rb is None:
        return fixedbudget.allows("long_mixture", s)
    if PILOT_SKIP and not polynomial and rb.long_nodes and len(rb.rounds) <= rb.first_round:
        return False  # the pilot round of a long program's target_w1 call (see PILOT_SKIP)
    if boxlinear.affordable(s, "the lean Taylor pass of a long program"):
        return True
    from opgraph.dcg import roundcredit

    return roundcredit.pilot_grant(rb, s)  # the pilot round's committed sub-cell pass time (roundcredit)


def reserve(budget: Any, counts: Mapping[str, int]) -> float:
    """CPU s a long program's ``target_w1`` round at ``counts`` atoms per input holds back for the lean pass.

    0 where no lean pass is expected: switches off, a short program, or the call's lean pass already stopped with
    nothing to gain (``budget.lean_idle``). Else :data:`opgraph.dcg.roundbudget.SAFETY` times :func:`seconds` on
    the grid of ``counts`` (the proposal before the plan shrinks it: an upper bound on the planned round's pass).
    """
    from opgraph.dcg import boxlinear, costguards, roundbudget

    if not (ENABLED.get() and boxlinear.ENABLED.get() and RESERVE) or budget is None or budget.long_nodes <= 0:
        return 0.0
    if budget.lean_idle or len(counts) < boxlinear.MIN_AXES or costguards.taylor_pays_nodes(budget.long_nodes):
        return 0.0  # (a graph short enough for the full Taylor pass gets no lean pass)
    return roundbudget.SAFETY * seconds(math.prod(counts.values()), budget.long_nodes, len(counts))
