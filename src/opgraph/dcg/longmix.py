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
``max_seconds`` (:func:`opgraph.dcg.boxlinear.affordable`), or, in a fixed-atoms call, :data:`FIXED_MAX_SECONDS`
(a function of the grid's size: the same answer on any machine).

``ENABLED`` (ContextVar, switch ``long_mixture`` in :mod:`opgraph.dcg.switches`) turns it off: long graphs then get
no Taylor pass, as before.
"""

from __future__ import annotations

import contextvars

#: Whether the lean Taylor pass runs on long graphs where the box-linear mixture wants linear models.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_longmix", default=True)
#: CPU s per box, graph node and input axis of the lean pass (the affine walk's passes; calibrated on ODE-log,
#: 1,000 steps, 3 inputs, 16 atoms per input: about 10 s for 4,096 boxes x 5,000 nodes at load ~5).
SECONDS_PER_BOX_NODE = 8e-8
#: CPU s per graph node of one lean pass whatever the grid (the NumPy-call floor of its ``k + 1`` passes).
SECONDS_PER_NODE = 2.5e-4
#: Fixed-atoms calls (no time budget): the most predicted CPU s of the lean pass.
FIXED_MAX_SECONDS = 20.0


def seconds(boxes: int, nodes: int, k: int) -> float:
    """Predicted CPU s of the lean pass on ``boxes`` boxes of a ``k``-input grid and a graph of ``nodes`` nodes."""
    return float(nodes) * (SECONDS_PER_NODE * (k + 1) + SECONDS_PER_BOX_NODE * k * boxes)


def runs(boxes: int, nodes: int, k: int) -> bool:
    """Whether the lean pass runs on such a grid (switch on; predicted within the call's budget)."""
    from opgraph.dcg import boxlinear, roundbudget

    if not ENABLED.get() or not boxlinear.ENABLED.get():
        return False
    s = seconds(boxes, nodes, k)
    if roundbudget.current() is None:
        return s <= FIXED_MAX_SECONDS
    return boxlinear.affordable(s, "the lean Taylor pass of a long program")
