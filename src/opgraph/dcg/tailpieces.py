"""Half-line cells of the log-space point-mass bound cut into geometric pieces (the boxes the mixture leaves).

:mod:`opgraph.dcg.logsubbox` bounds ``E[|f(X) - V'| | B]`` on a box ``B`` through sub-boxes ``s`` (pieces of its
cells in the inputs' Normal coordinates ``u``): with the box's slopes ``c``, ``C = c . (u - u')`` and the sub-box
path's radii ``R_s`` about ``c`` and point term ``t_s``,

    E[|f(X) - f(x')| | B] <= |f(x')| (sqrt(E[e^{2C} | B] - 2 E[e^C | B] + 1) + sum_s q_s e^{t_s} E[e^{C + R_s} | s]
                                      - E[e^C | B]).

That pass cuts the first two axes of the path into equal-mass pieces on the boxes whose bound is largest among those
with a finite log-linear model. On the damped oscillator the boxes that keep their point mass in the answer are
mostly boxes with a *half-line* cell (a LogNormal's first cell reaching 0 or its last reaching infinity; the
log-linear models across a half-line are poor, so the mixture leaves them as point masses), and there the slope
enclosures over the whole half-line are wide: on the lower tail of the secondary stiffness the held bound was about
twice the box's value ``V'`` while its true cost is a fraction of it.

Here, after that pass, the boxes with a half-line cell are ranked by the point-mass bound they hold; each gets its
half-line cell (the one the path moves first, where a box has several) cut into :data:`PIECES` pieces whose masses
shrink geometrically towards the unbounded end (:data:`RATIO`: each piece ``RATIO`` times the next one inward), so
the pieces near the cell's finite end, which carry most of its mass, have narrow slope enclosures, and the far piece,
still a half-line with a wide enclosure, carries little mass. The bound is the same theorem (docs/dcg.md, "Sub-box
remainder of the log-linear models": any partition into sub-boxes, any point in each), computed by
:func:`opgraph.dcg.logsubbox.refine_boxes`; per box the smaller of the held and the new bound is kept (never
worse). Only the point-mass bound is lowered: the boxes' log-linear models keep their remainders
(:data:`opgraph.dcg.logsubbox.MIX_TAILS`), so the mixture never takes a model across a half-line that it did not
take before. The main pass keeps its equal-mass pieces (geometric ones there were tried: DampedOsc's 6^6 x 4 grid
0.5-1 % lower, but its 2-atom grid, every cell a half-line, 0.01 % higher: not never-worse).

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``log_tail_pieces``) switches it off.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Whether the half-line boxes' point-mass bounds are also taken on geometric pieces (``ENABLED.set(False)``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_log_tail_pieces", default=True)

#: Pieces of the cut half-line cell (DampedOsc's fixed 6^6 x 4 grid, 2^15 sub-boxes, measured with the main pass's
#: half-line pieces geometric too: 4 / 6 / 10 pieces at ratio 0.2-0.3 give 1.001 / 1.003 / 1.005 std; 6 at 0.15 0.993).
PIECES = 6

#: Each piece of a half-line cell carries this share of the mass of the next one inward (a geometric partition; 1
#: gives equal masses). DampedOsc's fixed 6^6 x 4 grid, 2^15 sub-boxes, 6 pieces (main pass geometric too): equal
#: masses 1.051 std, 0.3 1.003, 0.15 0.993; main pass with equal masses, 0.15: 0.9985 (switch off: 1.0752).
RATIO = 0.15

#: Sub-boxes per grid in a fixed-atoms call (DampedOsc at 4 atoms per input, the pass runs on two grids: 2^13 / 2^14
#: / 2^15 sub-boxes lower the bound 5.8 / 6.6 / 7.5 % for +1.1 / +1.5 / +3.2 CPU s).
FIXED_MAX_SUB_BOXES = 2**14

#: Sub-boxes per grid in a ``target_w1`` call (within the time share of :func:`opgraph.dcg.logsubbox.allowance`).
MAX_SUB_BOXES = 2**16


def half_line(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Whether each cell ``(lo, hi]`` of a LogNormal input (``x``-space ends) is a half-line in ``u = log x``."""
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    return (lo <= 0) | ~np.isfinite(lo) | ~np.isfinite(hi)


def refine(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Any],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    order: Sequence[int],
    pt: np.ndarray,
    pt_err: np.ndarray,
    wbox: np.ndarray,
    shape: tuple[int, ...],
    linear: dict[str, Any],
    held: np.ndarray,
    max_sub: int | None = None,
) -> dict[str, float] | None:
    """Lower ``held`` on the boxes with a half-line cell by the bound on geometric pieces (module docstring).

    The arguments come in the order of :func:`opgraph.dcg.logsubbox.refine`'s.

    Args:
        graph: The (restricted) graph.
        output: Its output node id.
        axes: Input node ids, one per grid dimension (all LogNormal).
        laws: Per input node id, its law.
        cells: Per input node id, ``(lo, hi, atoms)`` of its cells (``x``-space).
        order: The path's order of the grid dimensions (:func:`opgraph.dcg.elastic.path_order`).
        pt: The computed output ``V'`` at the atoms (grid shape).
        pt_err: A bound on ``|f(x') - V'|`` per box.
        wbox: The boxes' masses (grid shape).
        shape: The grid shape.
        linear: The log-linear models (``"c"``: per axis ``V' c_j``), whose slopes the bound is centred on.
        held: Per box (flat) the point-mass bound it holds, weighted by its mass; lowered in place.
        max_sub: Sub-boxes in all (:func:`opgraph.dcg.logsubbox.allowance` with this module's caps when None).

    Returns:
        ``{"tail_boxes", "tail_held_before", "tail_held_after"}`` (boxes refined, their held bound before and after),
        or None where nothing ran.
    """
    from opgraph.dcg import logsubbox, tailaxis

    if not ENABLED.get() or PIECES < 2:
        return None
    k = len(axes)
    size = math.prod(shape)
    first = np.full(size, -1)  # per box the half-line axis that the path moves first (-1: none)
    for j in reversed(list(order)):
        lo, hi, _ = cells[axes[j]]
        sh = [1] * k
        sh[j] = np.size(lo)
        first = np.where(np.broadcast_to(half_line(lo, hi).reshape(sh), shape).reshape(-1), j, first)
    w = np.broadcast_to(wbox, shape).reshape(-1)
    hflat = held.reshape(-1)
    score = np.where((first >= 0) & (w > 0) & ~np.isnan(hflat), hflat, 0.0)  # unbounded boxes first
    budget = logsubbox.allowance(size, k, FIXED_MAX_SUB_BOXES, MAX_SUB_BOXES) if max_sub is None else max_sub
    nb = min(int(np.count_nonzero(score > 0)), budget // PIECES)
    if nb <= 0:
        return None
    pick = np.argsort(-score, kind="stable")[:nb]
    skipped = 0
    if tailaxis.ENABLED.get():  # skip the half-line axes in which f is exactly log-linear on the box
        ncand = min(int(np.count_nonzero(score > 0)), tailaxis.CANDIDATES * nb)
        cand = np.argsort(-score, kind="stable")[:ncand]
        cidx = np.unravel_index(cand, shape)
        half = np.stack([half_line(*cells[axes[j]][:2])[cidx[j]] for j in range(k)], axis=1)
        exact = tailaxis.exact_axes(graph, output, axes, cells, cidx)
        cfirst = tailaxis.first_cut(half, exact, order)
        first[cand] = cfirst
        skipped = int(np.count_nonzero(cfirst < 0))
        pick = cand[cfirst >= 0][:nb]
        nb = int(pick.size)
        if nb <= 0:
            return None
    before = float(np.sum(hflat[pick]))
    for j in range(k):
        pj = pick[first[pick] == j]
        if not pj.size:
            continue
        mj = [1] * k
        mj[j] = PIECES
        idx = np.unravel_index(pj, shape)
        _, pm = logsubbox.refine_boxes(
            graph, output, axes, laws, cells, order, idx, mj, linear, pt, pt_err, shape, RATIO
        )
        wp = w[pj]
        hflat[pj] = np.minimum(hflat[pj], np.where(wp > 0, wp * pm, hflat[pj]))
    return {
        "tail_boxes": float(nb),
        "tail_held_before": before,
        "tail_held_after": float(np.sum(hflat[pick])),
        "tail_exact_skipped": float(skipped),
    }
