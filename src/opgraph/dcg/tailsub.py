"""Sub-box remainder on the boxes with a half-line cell: the half-line cut into pieces of geometric masses.

The box-linear mixture's remainder ``E[|f(X) - f(x') - c . d| | B]`` (:func:`opgraph.dcg.taylor.box_bound`) is the
whole-box Hessian or slope form, or the sub-box form of :mod:`opgraph.dcg.subslope` where that pass runs. That pass
never cuts a half-line cell (a Normal's first and last quantizer cells, a LogNormal's last one), so on a box with
one the enclosures range over the whole half-line: on the 4-16-1 tanh MLP (Normal inputs, 16 atoms per input) the
boxes with a tail cell carry 24.5 % of the mass and 73 % of the certified remainder, 12x what they bound
(docs/benchmarks/dcg.md, "mix-slack"), and the sub-box pass does not even trigger there (the remainder is small
against the linear term, which the mixture does not pay).

Here the boxes with a half-line cell are taken in product blocks: for each non-empty set ``S`` of inputs, the
half-line cells of the inputs in ``S`` times the finite cells of the others (the blocks partition those boxes). On a
block, each half-line cell is cut into ``PIECES[|S| - 1]`` pieces whose masses shrink geometrically towards its
unbounded end (:data:`RATIO`: each piece ``RATIO`` times the next one inward; :func:`opgraph.dcg.subslope.pieces`),
the finite cells kept whole, and the sub-box remainder of :func:`opgraph.dcg.subslope.remainder` is taken: per
sub-box the smallest of the slope form, the re-centred slope form and the re-centred second-order form
(:mod:`opgraph.dcg.subcentre`). The finite pieces near the cell's end, which carry most of its mass, get narrow
enclosures; the last piece is still a half-line (its enclosures as wide as the whole cell's) but carries the
smallest share, its ``E[|X - x_s| | piece]`` from the family's closed-form partial moments (finite: the law has a
finite mean). The statement is :mod:`opgraph.dcg.subslope`'s theorem (any partition of the box into sub-boxes, any
point in each; docs/dcg.md, "Sub-box remainder on half-line cells"); per box the smaller of the held and the new
remainder is kept (never worse). The linear models (``c``, ``V'``) are unchanged: only the remainders fall, and the
lattice step and the mixture's choice of boxes follow them.

Cost: one sub-box pass per block over its boxes times their pieces (:func:`predict`). It runs where the boxes with
a half-line cell hold at least :data:`TRIGGER` of the grid's finite mass-weighted remainder, within a CPU allowance:
a fixed-atoms call's ``"tail_sub"`` allowance (:mod:`opgraph.dcg.fixedbudget`), a ``target_w1`` call's
:data:`TARGET_SHARE` of its seconds left (its seconds are taken off the round's time model, as the sub-cell
passes'). The blocks go in the order of their remainder per sub-box; one that does not fit keeps the finite cells
that carry the most of its remainder (a product of per-input selections). ``ENABLED`` (a ContextVar, default on;
:mod:`opgraph.dcg.switches` name ``tail_sub``) switches it off.
"""

from __future__ import annotations

import contextvars
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Whether the boxes with a half-line cell also get the sub-box remainder on geometric pieces (``ENABLED.set(False)``
#: or the switch ``tail_sub``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_tailsub", default=True)

#: Pieces of a cut half-line cell, by the number of half-line cells of the box (a box with two is cut on both, its
#: sub-boxes the products of their pieces): one 8, two 4, three 3, four 2.
PIECES = (8, 4, 3, 2)
#: Each piece of a half-line carries this share of the mass of the next one inward (1: equal masses).
RATIO = 0.5
#: The pass runs where the boxes with a half-line cell hold at least this share of the mass-weighted finite remainder.
TRIGGER = 0.2
#: Predicted CPU seconds per sub-box and graph node (an interval pass with Hessians at the sub-boxes and a point
#: pass at their points; measured 3.2e-8 to 3.5e-8 on the MLP's 277-node graph, 1 thread, load 3-4, 2026-12-07).
SECONDS_PER_SUB_BOX_NODE = 4e-8
#: Predicted CPU seconds per block and graph node (the per-pass overhead of a small block; measured 8e-5 on the
#: MLP at 8 atoms).
SECONDS_PER_BLOCK_NODE = 8e-5
#: Inside a ``target_w1`` call: most share of the seconds left of its ``max_seconds`` that the pass may be predicted
#: to take.
TARGET_SHARE = 0.2
#: Whether the sub-boxes' gradients are also enclosed in affine arithmetic (:mod:`opgraph.dcg.affgrad`; on the MLP
#: it doubled the pass's CPU for the same bound).
AFFINE = False


def _tail_law(law: Any) -> bool:
    """Whether a half-line cell of ``law`` can be cut: a continuous family with closed-form partial moments."""
    from opgraph.dcg.distributions import Continuous

    return isinstance(law, Continuous) and type(law).__name__ != "ScipyContinuous"


def half_cells(law: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Indices of the cells ``(lo, hi)`` of ``law`` with exactly one infinite end (none where they cannot be cut)."""
    lo, hi = np.asarray(lo, dtype=float).reshape(-1), np.asarray(hi, dtype=float).reshape(-1)
    if not _tail_law(law):
        return np.zeros(0, dtype=int)
    return np.flatnonzero(np.isfinite(lo) ^ np.isfinite(hi))


def half_line_moments(
    law: Any, lo: np.ndarray, hi: np.ndarray, point: np.ndarray, mom: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pieces' moments ``mom`` with ``E[(X - x_s)^2 | piece]`` filled in on the half-line pieces.

    ``mom``: :func:`opgraph.dcg.subcentre.piece_moments` of the pieces, whose second moment is ``inf`` on a
    half-line piece (no ``h E|X - x_s|`` bound there); here it comes from the family's closed-form moments.

    ``E[(Z - a)^2; piece] = E[Z^2; piece] - 2 a E[Z; piece] + a^2 P(piece)`` in the law's standard units (its
    tail-cell form, ``_cell_bias_m2``, padded for the cancellation), divided by the piece's mass; the means keep
    their (unknown: 0 within ``E|X - x_s|``) values. A law without closed-form moments keeps ``inf``.
    """
    from opgraph.dcg import subslope

    lo, hi, point = (np.asarray(x, dtype=float) for x in (lo, hi, point))
    half = np.isfinite(lo) != np.isfinite(hi)
    if not np.any(half) or not _tail_law(law) or not hasattr(law, "_cell_bias_m2"):
        return mom
    with np.errstate(all="ignore"):
        zl, zr, za = ((x - law.loc) / law.scale for x in (lo, hi, point))
        try:
            _, m2z = law._cell_bias_m2(zl.reshape(-1), za.reshape(-1), zr.reshape(-1), np.full(zl.size, np.inf))
        except (TypeError, ValueError):  # pragma: no cover - a family without the tail form
            return mom
        # the pieces' masses from the family's tail-side formulas; at least MIN_CELL_MASS, so that their relative
        # rounding stays far below the 1e-9 pad
        mass = np.asarray(law._cell_mass_moment(zl.reshape(-1), zr.reshape(-1))[0], dtype=float).reshape(lo.shape)
        m2 = np.asarray(m2z, dtype=float).reshape(lo.shape) * law.scale**2
        big = mass >= subslope.MIN_CELL_MASS
        cond = np.where(big, m2 / np.where(big, mass, 1.0), np.inf) * (1 + 1e-9)
        ok = half & np.isfinite(cond) & big
    return mom[0], mom[1], np.where(ok, np.minimum(mom[2], cond), mom[2])


def seconds_allowed() -> float:
    """The CPU seconds the pass may be predicted to take (fixed-atoms allowance, or a share of a target call's)."""
    from opgraph.dcg import fixedbudget, roundbudget

    rb = roundbudget.current()
    if rb is None:
        return fixedbudget.allowance("tail_sub")
    return max(0.0, TARGET_SHARE * rb.left() / roundbudget.SAFETY)


def predict(sub_boxes: int, blocks: int, nodes: int) -> float:
    """Predicted CPU seconds of the pass over ``sub_boxes`` sub-boxes in ``blocks`` blocks, ``nodes`` graph nodes."""
    return (SECONDS_PER_SUB_BOX_NODE * sub_boxes + SECONDS_PER_BLOCK_NODE * blocks) * nodes


def _select(score: np.ndarray, fixed: Sequence[int], fit: int) -> list[np.ndarray]:
    """Per grid dimension, the block's cells kept so that at most ``fit`` boxes remain (all where they fit).

    ``score``: the block's mass-weighted remainder per box (the block's shape). The dimensions in ``fixed`` keep
    their cells; each other one keeps its cells with the largest marginal score, the counts shrunk in turn (the
    largest count first) until their product fits. Positions are into the block's own cells.
    """
    k = score.ndim
    order = []
    for d in range(k):
        marg = np.sum(score, axis=tuple(t for t in range(k) if t != d))
        order.append(np.arange(score.shape[d]) if d in fixed else np.argsort(-marg, kind="stable"))
    n = [o.size for o in order]
    free = [d for d in range(k) if d not in fixed]
    while math.prod(n) > fit and free:
        d = max(free, key=lambda t: (n[t], -t))
        if n[d] <= 1:
            break
        n[d] -= 1
    return [np.sort(order[d][: n[d]]) for d in range(k)]


def blocks(
    axes: Sequence[int], cells: Mapping[int, tuple[np.ndarray, ...]], laws: Mapping[int, Any]
) -> list[tuple[list[np.ndarray], dict[int, int]]]:
    """The grid's boxes with a half-line cell, as product blocks: ``(cells per grid dimension, pieces per axis)``.

    Each block takes the half-line cells of a non-empty set of dimensions and the finite cells of the others, so the
    blocks partition the boxes with a half-line cell; its half-line cells are cut (:data:`PIECES` by the set's size).
    """
    k = len(axes)
    half, inner = [], []
    for a in axes:
        lo, hi, _ = cells[a]
        law = laws.get(a)
        h = half_cells(law, lo, hi) if law is not None else np.zeros(0, dtype=int)
        half.append(h)
        inner.append(np.setdiff1d(np.arange(np.size(lo)), h))
    out = []
    for choice in itertools.product((False, True), repeat=k):
        fixed = [d for d in range(k) if choice[d]]
        if not fixed:
            continue
        sel = [half[d] if choice[d] else inner[d] for d in range(k)]
        if any(x.size == 0 for x in sel):
            continue
        m = PIECES[min(len(fixed), len(PIECES)) - 1]
        out.append((sel, {axes[d]: m for d in fixed}))
    return out


def remainder(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: Mapping[int, tuple[np.ndarray, ...]],
    laws: Mapping[int, Any],
    c: Mapping[int, np.ndarray],
    fx: tuple[np.ndarray, np.ndarray],
    held: np.ndarray,
    w: np.ndarray,
    stats: dict[str, float] | None = None,
) -> np.ndarray | None:
    """Per box the smaller of ``held`` and the half-line blocks' sub-box remainder (module docstring), or None.

    Args:
        graph: The output's graph (every input node's id is its axis).
        output: The output node's id.
        axes: The grid's axes.
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        moments: Per axis, ``(P(cell), E[|d|; cell], ...)`` (upper bounds, as masses; :func:`opgraph.dcg.taylor.
            box_bound`'s ``moments``).
        laws: Per axis, the input's law.
        c: Per axis, the linear model's coefficients (broadcastable to the grid).
        fx: An enclosure ``(lo, hi)`` of the exact ``f`` at the atoms (broadcastable to the grid).
        held: Per box the remainder held (unweighted; broadcastable to the grid; ``inf`` where unknown).
        w: The boxes' masses (broadcastable to the grid).
        stats: If given, receives ``"tail_sub_boxes"`` (boxes refined), ``"tail_sub_before"`` / ``"tail_sub_after"``
            (their mass-weighted remainder) and ``"tail_sub_seconds"`` (the prediction).

    Returns:
        The new remainder on the grid (``held`` where nothing was gained), or None where the pass did not run.
    """
    from opgraph.dcg import subslope

    if not ENABLED.get():
        return None
    k = len(axes)
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    todo = blocks(axes, cells, laws)
    if not todo:
        return None
    hg = np.broadcast_to(np.asarray(held, dtype=float), shape)
    wg = np.broadcast_to(np.asarray(w, dtype=float), shape)
    with np.errstate(all="ignore"):
        score = np.where(np.isfinite(hg) & (wg > 0), hg * wg, 0.0)
    total = float(np.sum(score))
    scored = []
    for sel, split in todo:
        bs = score[np.ix_(*sel)]
        got = float(np.sum(bs))
        if got > 0:
            scored.append((got / (bs.size * math.prod(split.values())), got, sel, split, bs))
    on_tails = sum(x[1] for x in scored)
    if not (total > 0 and on_tails >= TRIGGER * total):
        return None
    nodes = len(graph.nodes)
    left = seconds_allowed()
    from opgraph.dcg import roundbudget

    rb = roundbudget.current()
    t0 = rb.clock() if rb is not None else 0.0
    scored.sort(key=lambda x: -x[0])  # the most remainder per sub-box first
    from opgraph.dcg import taylor

    e1 = taylor.cell_abs_dev(axes, moments)
    cg = {a: np.broadcast_to(np.asarray(c[a], dtype=float), shape) for a in axes}
    flo = np.broadcast_to(np.asarray(fx[0], dtype=float), shape)
    fhi = np.broadcast_to(np.asarray(fx[1], dtype=float), shape)
    out = np.array(hg, dtype=float)
    done = 0
    spent = before = after = 0.0
    for _, _, sel, split, bs in scored:
        per = math.prod(split.values())
        fit = int((left - spent - predict(0, 1, nodes)) / (SECONDS_PER_SUB_BOX_NODE * nodes * per))
        if fit < 1:
            continue
        fixed = [d for d in range(k) if axes[d] in split]
        keep = _select(bs, fixed, fit)
        sel = [sel[d][keep[d]] for d in range(k)]
        ix = np.ix_(*sel)
        got = subslope.remainder(
            graph,
            output,
            axes,
            {b: tuple(np.asarray(x, dtype=float).reshape(-1)[sel[t]] for x in cells[b]) for t, b in enumerate(axes)},
            {b: e1[b].reshape(-1)[sel[t]] for t, b in enumerate(axes)},
            laws,
            {b: cg[b][ix] for b in axes},
            (flo[ix], fhi[ix]),
            split,
            affine=AFFINE,
            hessian=True,
            ratio=RATIO,
        )
        old = out[ix]
        new = np.minimum(old, np.where(np.isnan(got), np.inf, got))
        before += float(np.sum(np.where(np.isfinite(old), old * wg[ix], 0.0)))
        after += float(np.sum(np.where(np.isfinite(new), new * wg[ix], 0.0)))
        out[ix] = new
        n_boxes = int(np.size(old))
        done += n_boxes
        spent += predict(n_boxes * per, 1, nodes)
    if rb is not None:  # the round's time model predicts its graph evaluation: the pass is costed on its own
        rb.pass_seconds += max(0.0, rb.clock() - t0)
    if not done:
        return None
    if stats is not None:
        stats["tail_sub_boxes"] = float(done)
        stats["tail_sub_before"] = before
        stats["tail_sub_after"] = after
        stats["tail_sub_seconds"] = spent
    return out
