"""Which half-line cell of a box :mod:`opgraph.dcg.tailpieces` cuts: not one in which ``f`` is exactly log-linear.

:mod:`opgraph.dcg.tailpieces` lowers the point-mass bound of the boxes with a half-line cell (a LogNormal's first cell
reaching 0 or its last reaching infinity) by cutting that cell into geometric pieces, within a budget of sub-boxes,
the boxes ranked by the bound they hold. It cut the half-line axis that the path moves first. Where the program is
exactly log-linear in that input on the box (``h = log|f|`` has the constant slope ``dh/du_j = c`` there: the damped
oscillator's white-noise intensity ``S0`` enters as ``sqrt(S0)`` times a function of the other inputs), cutting it
gains nothing: its own leg already has a zero radius, and since ``d^2 h / du_i du_j = 0`` on the box the other legs'
slopes do not depend on ``u_j`` either, so the pieces see the same enclosures. On DampedOsc's target grid (6^6 x 4
atoms, ``S0`` with 4 atoms: its two half-line cells carry 42 % of the mass) the heaviest boxes with a half-line cell
are ``S0``'s, so the pass spent most of its budget on them.

Here the candidates (the boxes the pass would rank first, :data:`CANDIDATES` times its budget) get one interval pass of
the elasticity enclosures of :func:`opgraph.dcg.elastic.elasticities` over the whole box (each input over its cell:
the legs' regions lie inside it, so a point enclosure there is a point on every leg); an axis whose enclosure has a
width of at most :data:`EXACT_TOL` times its magnitude counts as exact. Per box the pass then cuts the first half-line
axis in the path's order that is not exact, and skips the boxes whose half-line axes are all exact (their budget
goes to the next boxes). This only decides where the pass's work goes: every partition gives a valid bound
(docs/dcg.md, "Sub-box remainder of the log-linear models"), and per box the smaller of the held and the new bound is
kept, as before.

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``tail_axis``) switches it off (the pass then
cuts the first half-line axis, exact or not).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Whether the half-line pieces skip the axes in which ``f`` is exactly log-linear on the box (``ENABLED.set(False)``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_tail_axis", default=True)

#: Candidates per box of the pass's budget that get the exactness test (the skipped ones free budget for the next).
CANDIDATES = 3

#: An axis whose whole-box slope enclosure ``[lo, hi]`` has ``hi - lo <= EXACT_TOL * (1 + |lo| + |hi|)`` counts as
#: exact (outward rounding may widen a constant slope by a few ulps).
EXACT_TOL = 1e-12


def exact_axes(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    idx: tuple[np.ndarray, ...],
) -> np.ndarray:
    """Per box ``idx`` and grid dimension, whether ``dh/du_j`` is enclosed by a point over the whole box.

    Args:
        graph: The (restricted) graph.
        output: Its output node id.
        axes: Input node ids, one per grid dimension (all LogNormal: log coordinates).
        cells: Per input node id, ``(lo, hi, atoms)`` of its cells (``x``-space).
        idx: The boxes, one index array per grid dimension (as :func:`numpy.unravel_index` gives).

    Returns:
        A boolean array ``(len(idx[0]), len(axes))``; all False where the pass does not apply (an unsupported op).
    """
    from opgraph.dcg import elastic

    k = len(axes)
    nb = int(idx[0].size)
    out = np.zeros((nb, k), dtype=bool)
    if nb == 0:
        return out
    flat = {}
    for j, a in enumerate(axes):
        lo, hi, _ = (np.asarray(x, dtype=float).reshape(-1) for x in cells[a])
        flat[a] = (lo[idx[j]], hi[idx[j]])
    with np.errstate(all="ignore"):
        res = elastic.elasticities(graph, output, axes, flat, [True] * k, None, flat=True)
        if res is None:
            return out
        for j in range(k):
            g = res[1].get(j)
            if g is None:  # the output does not depend on this input: constant slope 0
                out[:, j] = True
                continue
            glo, ghi = (np.broadcast_to(np.asarray(x, dtype=float), (nb,)) for x in g)
            ok = np.isfinite(glo) & np.isfinite(ghi)
            out[:, j] = ok & (ghi - glo <= EXACT_TOL * (1 + np.abs(glo) + np.abs(ghi)))
    return out


def first_cut(half: np.ndarray, exact: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Per box the first half-line, non-exact dimension in the path's ``order`` (-1 where none).

    Args:
        half: ``(n, k)``: whether each box's cell of each dimension is a half-line.
        exact: ``(n, k)``: whether ``f`` is exactly log-linear in that dimension on the box.
        order: The path's order of the grid dimensions.
    """
    first = np.full(half.shape[0], -1)
    for j in reversed(list(order)):
        first = np.where(half[:, j] & ~exact[:, j], j, first)
    return first
