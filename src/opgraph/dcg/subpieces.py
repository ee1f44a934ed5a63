"""Wide sub-box pieces on many-input grids: up to 256 sub-boxes per box where 64 cannot split every axis.

The sub-box slope remainder (:mod:`opgraph.dcg.subslope`) gets at most :data:`opgraph.dcg.subslope.MAX_PIECES` = 64
sub-boxes per box, within the fixed-atoms allowance (12 CPU s predicted, ``SECONDS_PER_BOX_NODE`` per sub-box and
graph node) or a ``target_w1`` call's time share. With the re-centred forms (:mod:`opgraph.dcg.subcentre`) more
pieces keep paying on the small and mid-size grids of the many-input UQ programs (branch mix-slack, 256 pieces: OTL
at 4 atoms 0.037 -> 0.030 std, Borehole at 2 atoms 0.26 -> 0.158 std), but a flat cap of 256 also quadrupled the pass
on the mid-size grids of the test suite's few-input programs and, with the halved request it then needed
everywhere, made the suite 31 instead of 18 minutes.

The rule here: a grid of at least :data:`MIN_AXES` axes may get up to :data:`WIDE_PIECES` sub-boxes per box, within
the same predicted time as the first 64 (:data:`WIDE_SECONDS`, the fixed-atoms allowance, or the ``target_w1`` call's
share): ``allowance = min(WIDE_PIECES, floor(T / per))`` with ``per`` the predicted seconds of one sub-box per box
over the grid. On 6 or more axes 64 sub-boxes cut at most six axes in two, so most of a box's slope terms stay
whole-cell; on the few-input programs (2-5 axes) 64 already give 2.3-8 pieces per axis, and they keep the old cap
(so the test suite's programs, almost all of 2-4 inputs, are evaluated as before). The rule is a function of the
grid's size, its axes and the graph's nodes alone (never a measured time), so the same call gives the same bound on
any machine. Inside a ``target_w1`` call the same rule applies to its rounds within their time share.

More atoms (``bound(2N) <= bound(N)``): where a fixed-atoms grid gets fewer pieces per box than the halved grid and
the halved grid got wide pieces (more than 64), and the grid's sub-box pass ran (``info["taylor"]["sub_slope"]``),
:func:`opgraph.dcg.subslope.fewer_pieces` says so and the call also
evaluates the halved request (``opgraph.dcg.api._mixture_smaller_request``), keeping the smaller bound per output.
Where neither grid gets more than 64 nothing changes (the halved request stays off there,
:data:`opgraph.dcg.subslope.HALVE_WHERE_FEWER`).

Nothing here changes a certificate: the pieces only choose which valid sub-box bound is computed. ``ENABLED`` (a
ContextVar, default on; switch ``sub_pieces``) turns the wide pieces and their halved request off (at most 64, as
before).
"""

from __future__ import annotations

import contextvars
import math

#: Whether many-input grids may get up to :data:`WIDE_PIECES` sub-boxes per box (switch ``sub_pieces``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_subpieces", default=True)
#: Most sub-boxes per box on a grid of at least :data:`MIN_AXES` axes.
WIDE_PIECES = 256
#: Fewest grid axes for the wide cap (OTL and the Undamped oscillator have 6 inputs, Piston 7, Borehole 8, WingWeight
#: 10; the MLP 4 and Ishigami 3 keep the old cap).
MIN_AXES = 6
#: Most predicted CPU seconds of a fixed-atoms pass with more than ``subslope.MAX_PIECES`` sub-boxes per box (the
#: work figure ``boxes x pieces x nodes x SECONDS_PER_BOX_NODE``): the fixed-atoms allowance of the pass itself (12 s).
#: A smaller value gives the wide pieces to smaller grids only; inside a ``target_w1`` call the same fraction of the
#: round's share.
WIDE_SECONDS = 12.0


def wide(per: float, seconds: float, fixed_seconds: float, axes: int | None) -> int:
    """Most sub-boxes per box from the wide rule: ``min(WIDE_PIECES, floor(share / per))`` (1 where it does not apply).

    Args:
        per: Predicted seconds of the pass per sub-box per box (``SECONDS_PER_BOX_NODE * boxes * nodes``).
        seconds: The pass's own allowance (the fixed-atoms 12 s, or a ``target_w1`` call's share).
        fixed_seconds: The fixed-atoms allowance of the pass (``fixedbudget.allowance("sub_slope")``): the wide share
            is ``seconds * min(1, WIDE_SECONDS / fixed_seconds)``.
        axes: The grid's axes (``None``: unknown, no wide pieces).
    """
    if not ENABLED.get() or axes is None or axes < MIN_AXES or not per > 0 or not fixed_seconds > 0:
        return 1
    share = seconds * min(1.0, WIDE_SECONDS / fixed_seconds)
    return int(max(1, min(WIDE_PIECES, math.floor(share / per))))
