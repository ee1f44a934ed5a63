"""Round credit: a long program's next round may spend the time its kept round's pending pass would spend anyway.

On a long program (:data:`opgraph.dcg.costguards.LONG_NODES`) a ``target_w1`` call's pilot round (4 atoms per input
on the 1,000-step ODEs) usually ends with an infinite bound before its sub-cell pass, and that pass stays *pending*
(:func:`opgraph.dcg.api._long_round_passes`): it runs at the end of the call if the pilot round is the one kept,
whatever the time left (``max_seconds`` does not stop it). Its predicted cost is about twice the round's
(:func:`opgraph.dcg.costguards.pass_seconds`: two evaluations on the pass's fine grid).

Where the machine is slow (load: the budget counts CPU seconds, and a loaded core gives fewer operations per CPU
second), the pilot round takes half of ``max_seconds`` or more, the next round no longer fits the time left, and
the call answered with the pilot round and its pass: ODE-log at ``target_w1 = 1e-2 std`` with the planner's clock
slowed 2x certified 1.29 std (pilot round plus pass, 4 atoms per input) against 0.144 std at normal speed (a
second round of 8 atoms per input with the box-linear mixture of :mod:`opgraph.dcg.longmix`); in other runs a
second round that fitted without its mixture (6 atoms per input, 2.10 std) replaced the pilot round and dropped its
pass. A 10-30x worse answer for a 2x slower clock.

**Rule.** Where the plan of the next round stops on the time budget, or fits only without the lean Taylor pass that
the round's mixture needs, and the kept round has such a pending pass, the plan is made once more with the pending
pass's predicted seconds (:attr:`opgraph.dcg.roundbudget.RoundBudget.credit`) added to the time left. A round
planned so runs with its mixture; if its bound is smaller than the kept round's (an infinite bound before the
pass: any finite bound), it replaces the kept round and the pending pass is dropped (it never runs), so the call
ends about when it would have ended with the pass. The credit is spent with that round: it is cleared once the round
is measured (:func:`spend`), and no later round gets it again.

**Pilot round** (:func:`pilot_grant`). A long program's pilot round with polynomial box models runs its lean pass
(:func:`opgraph.dcg.longmix.runs`); where that pass does not fit the time left, it runs where it fits the time left
plus the pilot round's own sub-cell pass (committed: the first round's pass runs whatever the time left). A mixture
answer the pass cannot beat then drops the pass (ODE-osc at 4 atoms per input: 0.0376 against the pass's 0.219).

**Mixture grace** (:func:`grace`). In a credited round the box-linear mixture (0.01-0.1 s after a lean pass of
5-10 s) runs past the time left where it is predicted within :data:`GRACE` of the credit.

**Cost.** The call's end moves from ``max_seconds`` plus the pending pass (as before) to at most ``max_seconds``
plus the predicted pass (``SAFETY`` margins included on the round's side); where the credited round does not beat
the kept round (not seen on the ODEs), both run. Nothing changes where a round fits without the credit (the calls
at normal speed plan exactly as before).

``ENABLED`` (ContextVar, switch ``round_credit`` in :mod:`opgraph.dcg.switches`) turns it off. No certificate
changes: the credit only chooses which certified round the call answers with.
"""

from __future__ import annotations

import contextvars
from typing import Any

#: Whether a long program's next round may spend the predicted time of the kept round's pending sub-cell pass.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_roundcredit", default=True)


#: A credited round's mixture runs past the time left where predicted at most this fraction of the credit (:func:`grace`).
GRACE = 0.05


def available(budget: Any) -> float:
    """Seconds a credited plan may add to the time left: the kept round's pending pass (0: no credit applies).

    Args:
        budget: The call's :class:`opgraph.dcg.roundbudget.RoundBudget` (or ``None``).
    """
    if not ENABLED.get() or budget is None or budget.long_nodes <= 0 or budget.credit_used:
        return 0.0
    return max(float(budget.pending_pass), 0.0)


def pilot_grant(budget: Any, seconds: float) -> bool:
    """Whether a long program's pilot round may run its lean pass (``seconds`` predicted) on its pass's time.

    The first round of a long program's ``target_w1`` call runs its sub-cell pass whatever the time left (or keeps
    it pending: :func:`opgraph.dcg.api._long_round_passes`), so that pass's predicted seconds
    (:func:`opgraph.dcg.costguards.pass_seconds` from the round's seconds so far) are committed. Where the lean pass
    (and the mixture after it) fits the time left plus them, the credit is granted for the rest of the round
    (cleared by :func:`spend`) and True returned. A mixture answer the pass cannot beat then drops the pass (ODE-osc
    at 4 atoms per input: 0.0376 against the pass's 0.219).
    """
    from opgraph.dcg import costguards, roundbudget

    if not ENABLED.get() or budget is None or budget.long_nodes <= 0 or budget.credit_used or budget.credit > 0:
        return False
    if len(budget.rounds) != budget.first_round or budget.planned_work <= 0:
        return False  # not the pilot round (or its work is not known)
    t_round = max(budget.elapsed(), 0.0)
    need = costguards.pass_seconds(t_round, budget.planned_work, budget.long_nodes)
    if not roundbudget.SAFETY * seconds <= budget.left() + need:
        return False
    grant(budget, need)
    return True


def grace(seconds: float) -> bool:
    """Whether a credited round's box-linear mixture, predicted at ``seconds``, runs past the time left.

    In a round planned or run on a credit, the lean pass (the expensive part: about 5-10 CPU s on the ODEs) has
    built the linear models before the mixture (0.01-0.1 s) is asked; where the round ran past its prediction
    (ODE-log at 1e-3 and a 2x clock: 1.6 s over), skipping the mixture throws that pass away (0.121 std
    cellwise where the mixture's rounds certify 0.03-0.07). So there the mixture runs where its predicted seconds,
    with the ``SAFETY`` margin, are at most :data:`GRACE` of the credit, whatever the time left.
    """
    from opgraph.dcg import roundbudget

    rb = roundbudget.current()
    if not ENABLED.get() or rb is None or rb.credit <= 0:
        return False
    return roundbudget.SAFETY * seconds <= GRACE * rb.credit


def grant(budget: Any, seconds: float) -> None:
    """Add ``seconds`` of credit to ``budget``'s time left (:meth:`opgraph.dcg.roundbudget.RoundBudget.left`)."""
    budget.credit = float(seconds)


def revoke(budget: Any) -> None:
    """Take a granted credit back (the credited plan found no round)."""
    budget.credit = 0.0


def spend(budget: Any) -> None:
    """Clear the credit once its round is measured: later rounds plan with the plain time left again."""
    if budget is not None and budget.credit > 0:
        budget.credit, budget.credit_used = 0.0, True
