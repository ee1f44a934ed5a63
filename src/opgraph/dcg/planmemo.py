"""Memo of a ``target_w1`` call's work function: the planner asks the same counts' cost many times per round.

The round planner (:func:`opgraph.dcg.roundbudget.plan_step`, :func:`opgraph.dcg.api._budget_step`) prices every
candidate step with the call's work function (:func:`opgraph.dcg.api._work`: the compression plan of each output's
graph at the counts, :func:`opgraph.dcg.engine.grid_work`). On a long program that costs about 10 ms a call
(a 5,000-node graph), and one round's plan asks it about 100-200 times, mostly for counts it asked before (the
time-budget shrink, the fill by terms and the lean-pass reserves retry the same grids): ODE-log at
``target_w1 = 1e-2 std`` with a slow clock spent 2.0 of its 10 CPU s there (196 calls), time the rounds then lacked.

:func:`memoized` keeps each answer per counts for the call (the function is pure: the graphs, laws and
``max_joint`` of a call are fixed), so the plans are the same and cost one call per distinct grid.

``ENABLED`` (ContextVar, switch ``plan_memo`` in :mod:`opgraph.dcg.switches`) turns it off (bit for bit the same
plans, only slower).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping

#: Whether a ``target_w1`` call's work function keeps its answers per counts.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_planmemo", default=True)


def memoized(work: Callable[[Mapping[str, int]], float | None]) -> Callable[[Mapping[str, int]], float | None]:
    """``work`` with its answers kept per counts (``work`` itself where the switch is off).

    Args:
        work: A pure function of the counts (atoms per input and the compression size; box-node units out).
    """
    if not ENABLED.get():
        return work
    memo: dict[tuple[tuple[str, int], ...], float | None] = {}

    def cached(counts: Mapping[str, int]) -> float | None:
        key = tuple(sorted((str(k), int(v)) for k, v in counts.items()))
        if key not in memo:
            memo[key] = work(counts)
        return memo[key]

    return cached
