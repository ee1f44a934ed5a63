"""Mixture first: a ``target_w1`` call whose first round would be compressed or shrunk starts on a small whole grid.

The first round of a ``target_w1`` call is sized from first-order terms: 8 atoms per input, shrunk to fit
``max_joint`` and the time budget. On programs of many inputs that grid is either compressed (the piston's
``div`` node: compressed cells, so no box-linear mixture, :mod:`opgraph.dcg.boxlinear`) or so large that one round
with the mixture takes the whole ``max_seconds`` (the borehole at ``8^6 x 2^2`` boxes: 25 CPU s for a bound of
0.53 std). A small whole grid with the mixture certifies far less than either (3 atoms per input: the piston 0.67
std in 3 CPU s against 1.0-2.3 std in 24 s, the borehole 0.17 std in 4.5 s), because the mixture's second-order
remainder falls faster with the box width than the first-order coupling bound does with the atoms.

Where the first round would compress a node other than a sum (:data:`SUM_OPS`) or had to be shrunk to fit
``max_joint``, the call's first round is instead the whole grid of the largest equal atom count per input whose boxes stay within :data:`MAX_BOXES` (inputs
asked for fewer keep theirs). The rounds after it are planned as before, and the call keeps the round with the
smallest bound, so a later round that certifies less changes nothing (more atoms never give a worse answer).

**Mixture first again** (:data:`AGAIN`, :data:`PASS_SHARE`, :data:`AGAIN_MIN_LEFT`). On such a grid the bound is
mostly the mixture's per-box remainder, which the sub-box slope pass (:mod:`opgraph.dcg.subslope`) makes small
with pieces; inside a ``target_w1`` call that pass takes at most :data:`opgraph.dcg.subslope.TARGET_SHARE` (a
quarter) of the seconds left, so that later rounds keep the rest. Where the later rounds certify less (planned
from first-order terms: the piston at 1e-2 std, round 0 at 3 atoms per input 0.0501, round 1 at ``{3, 3, 3, 5,
5, 3, 4}`` 0.109 before its passes) the call keeps round 0 and ends with seconds left (0.359 std in 7.5 of its 20
CPU s, where the same 3-atom grid at fixed atoms, with the fixed-atoms allowance of 12 s, certifies 0.139 std).
So where the kept round is the mixture-first round, the target is not met and at least :data:`AGAIN_MIN_LEFT`
times that round's seconds are left, the round is evaluated again with its sub-box pass allowed
:data:`PASS_SHARE` of the seconds left, less where the round's first time would then not fit (:func:`again_share`) (:attr:`opgraph.dcg.roundbudget.RoundBudget.pass_share`), and kept where
its bound is smaller (the piston at 1e-2 and 1e-3 std: 0.359 -> 0.164 std, 7.3 -> 13.2 CPU s of its 20; a share
of 0.6 gave 0.183 in 12.1 s, 0.9 gave 0.149 in 14.0 s but needs 3.6x the round's seconds left, more than the
piston has). Giving the first round the larger share from the start was measured worse: the borehole,
whose later rounds do pay, lost them (its cost model learns the round's larger time) and went 0.067 -> 0.082-0.096
std at 1e-2/1e-3, while the piston went 0.359 -> 0.140. Only the pass's pieces change: each bound is the same
theorem's, and the call keeps the smaller.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from typing import Any

#: Whether a ``target_w1`` call whose first round would be compressed or shrunk starts on a small whole grid with
#: the box-linear mixture (off: the first round as before). Registered in :mod:`opgraph.dcg.switches`
#: (``mixture_first``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_mixfirst", default=True)

#: Whether a kept mixture-first round that missed the target is evaluated again with a larger sub-box pass share
#: where time is left (off: the call ends with it as it was). Registered in :mod:`opgraph.dcg.switches`
#: (``mixture_first_again``).
AGAIN: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_mixfirst_again", default=True)
#: The share of the seconds left that the sub-box slope pass of the round evaluated again may be predicted to take.
PASS_SHARE = 0.8
#: The round is evaluated again only where at least this many times its first evaluation's seconds are left.
AGAIN_MIN_LEFT = 2.0

#: Compressed nodes of these ops do not call for mixture first: a compressed sum keeps its law-level bound (its
#: rounds met a sum of 8 Uniforms' 1e-2 target, which the rounds after a mixture-first round missed by 1.6x).
SUM_OPS = frozenset({"add", "sub", "neg"})

#: Most boxes of the mixture-first grid, per output (a function of the grid's size, so the same call gives the same
#: first round on any machine): 3 atoms per input on 7-8 inputs (2,187 and 6,561 boxes), 2 on 9-13.
MAX_BOXES = 2**13


def counts(
    inputs_per_output: Sequence[Sequence[str]], requested: Mapping[str, int], max_boxes: int = MAX_BOXES
) -> dict[str, int] | None:
    """The mixture-first grid: one atom count ``k`` for every input, the largest whose grids fit ``max_boxes``.

    Args:
        inputs_per_output: Per output, the names of the inputs its graph reads (the grid's axes).
        requested: Atoms per input the first round asked for; an input asked for fewer than ``k`` keeps its count.
        max_boxes: Most boxes of any output's whole grid.

    Returns:
        Atoms per input, or ``None`` where not even 2 per input fits, or where the grid would be the request itself.
    """
    widest = max((len(set(names)) for names in inputs_per_output), default=0)
    if widest == 0:
        return None
    k = max(int(math.floor(max_boxes ** (1.0 / widest) + 1e-9)), 0)

    def grid(c: int) -> dict[str, int]:
        return {n: min(int(a), c) for n, a in requested.items()}

    def boxes(g: Mapping[str, int]) -> int:
        return max(math.prod(g[n] for n in set(names)) for names in inputs_per_output)

    while k >= 2 and boxes(grid(k)) > max_boxes:
        k -= 1
    top = max(int(a) for a in requested.values())
    while 2 <= k < top and boxes(grid(k + 1)) <= max_boxes:
        k += 1  # inputs asked for fewer atoms leave room for the others
    if k < 2:
        return None
    out = grid(k)
    return None if out == dict(requested) else out


def input_names(restricted: Sequence[tuple[Any, int]]) -> list[list[str]]:
    """Per output (its graph and output id, ``opgraph.dcg.engine.restrict``), the names of its input nodes."""
    return [[n.attrs["name"] for n in g.nodes if n.op == "input"] for g, _ in restricted]


def again_share(left: float, first_seconds: float, safety: float) -> float:
    """The sub-box pass share of the round evaluated again (at most :data:`PASS_SHARE`).

    Smaller where needed so that the pass's predicted seconds (``share * left / safety``,
    :func:`opgraph.dcg.subslope.allowance`) and the round's first evaluation's seconds (an upper bound on the rest
    of the round: it included a pass) fit in ``left``.

    Args:
        left: Seconds left of the call's budget.
        first_seconds: Seconds of the round's first evaluation.
        safety: The round budget's safety factor (:data:`opgraph.dcg.roundbudget.SAFETY`).
    """
    if not left > 0:
        return 0.0
    return max(0.0, min(PASS_SHARE, safety * (1.0 - first_seconds / left)))
