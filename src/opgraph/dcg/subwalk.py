"""The walk on sub-boxes: gradient enclosures over thinner boxes in the sub-box slope remainder (issue 14 §3).

The sub-box slope remainder (:mod:`opgraph.dcg.subslope`, re-centred by :mod:`opgraph.dcg.subcentre`) pays, per
sub-box ``s`` with point ``x_s`` and ``e = X - x_s``, the spread ``sum_i mag(G_i - c_i - b_i) E|e_i|`` of enclosures
``G_i`` of ``df/dx_i`` over the whole sub-box. Where a variable is used more than once along a chain (piston's
``sqrt(A^2 + B) + A`` inside ``M / (k + R^2 T_0 / (4 P_0 V_0 T_a))``, every input in several factors), these
enclosures over a box free in all 7 coordinates were 9-90x (interval) and 3-14x (affine) the gradient's sampled range
on piston's 4-atom sub-boxes; with only the coordinate ``i`` free, 0.3-0.6x the full sub-box's sampled range (affine):
the overestimate comes from the other coordinates moving at the same time.

**Theorem (the walk on a sub-box).** Order the axes ``o_1, ..., o_k`` and let ``B_n`` be the box with the axes
``o_1 .. o_n`` free on their pieces and the others at ``x_s``. If ``G_{o_n}`` encloses ``df/dx_{o_n}`` over ``B_n``
(for ``n`` past a walked prefix, over the whole sub-box ``s``, which contains ``B_n``), then for every ``X`` in ``s``

    f(X) - f(x_s) = sum_n gamma_n e_{o_n},   gamma_n in G_{o_n},

so :mod:`opgraph.dcg.subcentre`'s theorem and :mod:`opgraph.dcg.subslope`'s hold with these ``G_i``. *Proof.* Let
``y_n`` be ``X`` in the coordinates ``o_1 .. o_n`` and ``x_s`` in the others (``y_0 = x_s``, ``y_k = X``). Then
``f(X) - f(x_s) = sum_n (f(y_n) - f(y_{n-1}))``; ``y_n`` and ``y_{n-1}`` differ in the coordinate ``o_n`` alone, so
by the mean-value theorem in one variable ``f(y_n) - f(y_{n-1}) = df/dx_{o_n}(xi_n) e_{o_n}`` with ``xi_n`` on the
segment between them, which lies in ``B_n`` (a box: its coordinates ``o_1 .. o_{n-1}`` are ``X``'s, ``o_n`` between
``x_s`` and ``X``, the others ``x_s``'s). Both proofs used only ``f(X) - f(x_s) = sum_i gamma_i e_i`` with ``gamma_i``
in ``G_i`` (pointwise, then expectations on the sub-box). ∎ Each ``G_i`` is also intersected with the sub-box's own
enclosure (both contain ``gamma_i``), so with the same pieces no sub-box's bound is above the pass without the walk.

Cost: per walked axis one interval pass (one seed, no point pass where no value enclosure is centred) and one
affine pass with one seed, about :data:`COST_PER_STEP` of the sub-box pass each; :func:`opgraph.dcg.taylor._sub_slope`
walks the :data:`STEPS` axes with the largest whole-box slope terms and pays for them with fewer pieces (the same
predicted CPU: the allowance divided by ``1 + COST_PER_STEP * steps``), where a sample of boxes finds that this pays
(:func:`choose`). Measured on piston's 4-atom grid (docs/benchmarks/dcg.md,
branch piston-hess): the sub-box remainder 0.0381 -> 0.0221 at 24 instead of 32 pieces, 7.1 -> 7.4 CPU s.
``ENABLED`` (a ContextVar, default on; switch ``sub_walk``) turns it off.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

#: Whether the sub-box slope remainder walks its largest axes (``ENABLED.set(False)`` or the switch ``sub_walk``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_subwalk", default=True)
#: Most walked axes per sub-box pass (each costs about :data:`COST_PER_STEP` of the pass). Measured on piston's
#: 4-atom grid at its 32 pieces: 0, 3, 6 steps -> remainder 0.0381, 0.0179, 0.0162 (7.1, 10.3, 13.6 CPU s).
STEPS = 3
#: Whether each step takes the affine enclosure (with the pass's own affine gradients on).
AFFINE = True
#: Whether each step also takes the interval enclosure (affine steps alone where False and ``affine``).
INTERVAL = True
#: Whether the sample also tries the walk's pieces all on the axis with the largest whole-box slope term.
ONE_AXIS = True
#: CPU of one walk step as a share of the sub-box pass without the walk (measured 0.15-0.18 on piston, 2026-12-07).
COST_PER_STEP = 0.18


#: The decision's sample of boxes (:func:`choose`): per axis the cells that carry the most of the whole-box remainder
#: (summed over the other axes, weighted by mass), :data:`SAMPLE_CELLS` of them on the :data:`SAMPLE_AXES` axes with
#: the largest whole-box slope terms, one on the others. Fixed fractions of the cells (1/4 and 3/4, or the ends and
#: the middle) missed where Borehole's remainder sits and chose the plain plan where the walk saves 6-14 %.
SAMPLE_CELLS = 2
SAMPLE_AXES = 5
#: The walk is considered only where the sub-box pass is predicted (``subslope.SECONDS_PER_BOX_NODE``) to take at
#: least this many CPU seconds: on smaller grids the sample's passes (about 0.05-0.15 s, per-node overhead) would
#: cost a large share of the pass (WingWeight and Borehole at 2 atoms: 13-18 %, no gain), and the small programs of
#: the test suite would pay it on every call. 1.5 takes in Borehole's target grids (4 x 3 x 2 x 4 x 3 x 4 x 4 x 4 at
#: 10-12 pieces, predicted 2.3-2.8 s; their bound 0.115 -> 0.0985 std) and piston's (3^7 boxes).
MIN_SECONDS = 1.5
#: The walk (with fewer pieces) is taken only where its sample total is below this share of the pass without it.
#: Not 0.97: a smaller remainder can make the whole bound larger where it brings boxes kept as point masses into the
#: box-linear mixture, whose lattice step grows with the mean remainder of the boxes it takes in
#: (:func:`opgraph.dcg.boxlinear.mixture`): Borehole at 4 atoms, sub-box remainders -14 % and -6 % (the walk chosen at
#: 0.97), 0.92 -> 0.99 of the mass mixed, its step 0.031 -> 0.036, bound 0.1819 -> 0.1941 std. Piston's 4-atom
#: remainder falls by 42 % (its boxes were all mixed already).
MIN_GAIN = 0.8


def _total(r: Any, w: Any) -> float:
    """The sample's mass-weighted total of the per-box remainders ``r`` (``w`` the boxes' masses)."""
    with np.errstate(all="ignore"):
        tot = np.where(w > 0, np.broadcast_to(r, np.broadcast_shapes(np.shape(r), np.shape(w))) * w, 0.0)
    return float(np.sum(tot))


def _take(x: Any, idx: Sequence[np.ndarray]) -> Any:
    """``x`` (laid out on the grid, broadcastable) restricted to the cells ``idx`` per axis."""
    x = np.asarray(x, dtype=float)
    k = len(idx)
    for i, ix in enumerate(idx):
        pos = x.ndim - k + i
        if pos >= 0 and x.shape[pos] > 1:
            x = np.take(x, ix, axis=pos)
    return x


def choose(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    e1: Mapping[int, np.ndarray],
    laws: Mapping[int, Any],
    c: Mapping[int, np.ndarray],
    fx: tuple[np.ndarray, np.ndarray],
    w: np.ndarray,
    scores: Mapping[int, float],
    sub: int,
    hessian: bool = False,
    rest: np.ndarray | None = None,
    slices_out: list[int] | None = None,
) -> tuple[dict[int, int], list[int]]:
    """Pieces per axis and walked axes for the sub-box pass: with or without the walk, by a sample of boxes.

    Without the walk (also where the pass is predicted under :data:`MIN_SECONDS`): :func:`opgraph.dcg.subslope.plan`
    at ``sub`` pieces, no walk. With it: the plan at :func:`pieces_allowed` pieces (the same predicted CPU) and the
    :data:`STEPS` axes with the largest whole-box slope terms ``scores`` walked first. Both are evaluated on a sample
    of the grid's boxes (:data:`SAMPLE_CELLS`, :data:`SAMPLE_AXES`: where the whole-box remainder ``rest`` sits) and
    the walk is kept where its mass-weighted total is below :data:`MIN_GAIN` of the other's.
    Either choice gives a valid bound (the sub-box theorems hold for any pieces); the sample only picks the smaller.

    Args:
        graph: The output's graph.
        output: The output node's id.
        axes: The grid's axes.
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        e1: Per axis, ``E[|X - atom| | cell]`` per cell (1-D).
        laws: Per axis, the input's law.
        c: Per axis, the linear model's coefficients (broadcastable to the grid).
        fx: An enclosure of ``f`` at the atoms (broadcastable to the grid).
        w: The boxes' masses (broadcastable to the grid).
        scores: Per splittable axis, its whole-box slope term (:func:`opgraph.dcg.subslope.plan`).
        sub: The most sub-boxes per box.
        hessian: Passed to :func:`opgraph.dcg.subslope.remainder`.
        rest: The whole-box remainder per box (broadcastable to the grid; where the sample's cells are taken).
        slices_out: Where given and :mod:`opgraph.dcg.radialchoose` is on, the best ``K = 1`` plan is also tried with
            :data:`opgraph.dcg.radialchoose.SLICES` affine ray slices (pieces from
            :func:`opgraph.dcg.radialchoose.pieces_allowed`), and
            the chosen slice count is appended (1 where none was chosen); pass it to
            :func:`opgraph.dcg.subslope.remainder`'s ``exact_slices``.
    """
    from opgraph.dcg import radial, radialchoose, subslope

    if slices_out is not None:
        slices_out.append(1)

    base = subslope.plan(scores, sub)
    nodes = len(getattr(graph, "nodes", ()))
    boxes = math.prod(int(np.size(cells[a][2])) for a in axes)
    if subslope.SECONDS_PER_BOX_NODE * boxes * nodes * sub < MIN_SECONDS:  # a cheap pass: the sample would not pay
        return base, []
    steps = min(STEPS, len(axes) - 1)
    fewer = pieces_allowed(sub, steps)
    if steps <= 0 or fewer < 2:
        return base, []
    split = subslope.plan(scores, fewer)
    if math.prod(split.values()) <= 1:
        return base, []
    # the axes with the largest whole-box slope terms walk first (their walk boxes are the thinnest)
    walk = sorted((a for a in scores if scores[a] > 0), key=lambda a: (-scores[a], a))[:steps]
    if not walk:
        return base, []
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    ranked = sorted(axes, key=lambda a: -scores.get(a, 0.0))[:SAMPLE_AXES]
    with np.errstate(all="ignore"):  # where the whole-box remainder sits: per axis its cells' shares
        part = np.broadcast_to(np.asarray(w, dtype=float), shape)
        if rest is not None:
            r = np.broadcast_to(np.asarray(rest, dtype=float), shape)
            part = part * np.where(np.isfinite(r), r, 0.0)
        part = np.where(np.isfinite(part), part, 0.0)
    idx = []
    for i, a in enumerate(axes):
        marg = part.sum(axis=tuple(t for t in range(len(axes)) if t != i))
        top = np.argsort(-marg, kind="stable")[: SAMPLE_CELLS if a in ranked else 1]
        idx.append(np.sort(top))
    cs = {a: tuple(np.asarray(x)[i] for x in cells[a]) for a, i in zip(axes, idx, strict=True)}
    es = {a: np.asarray(e1[a])[i] for a, i in zip(axes, idx, strict=True)}
    c_s = {a: _take(c[a], idx) for a in axes}
    f_s = (_take(fx[0], idx), _take(fx[1], idx))
    w_s = _take(w, idx)
    plans: list[tuple[dict[int, int], list[int]]] = [(base, []), (split, walk)]
    if ONE_AXIS:  # the pieces all on the axis with the largest term (the walk takes the others' spread)
        one = {a: (fewer if a == walk[0] else 1) for a in scores}
        if one != split:
            plans.append((one, walk))
    got = []
    for sp, wk in plans:
        r = subslope.remainder(graph, output, axes, cs, es, laws, c_s, f_s, sp, hessian=hessian, walk=wk)
        got.append(_total(r, w_s))
    best = min(range(1, len(plans)), key=lambda j: got[j])
    pick = best if got[best] < MIN_GAIN * got[0] else 0
    # K = 2 affine ray slices (opgraph.dcg.radialchoose): the twin of the K = 1 plan with the smallest sample total
    # (one more sample pass), with the pieces the extra pass leaves; taken where it beats every K = 1 plan's total
    if slices_out is not None and radialchoose.ENABLED.get() and radial.ENABLED.get() and radial.EXACT:
        kk = radialchoose.SLICES
        j1 = min(range(len(plans)), key=lambda j: got[j])
        sp, wk = plans[j1]
        n = radialchoose.pieces_allowed(max(math.prod(sp.values()), 1), kk)
        sp2 = (
            sp
            if n >= math.prod(sp.values())
            else (subslope.plan(scores, n) if j1 != 2 else {a: min(v, n) for a, v in sp.items()})
        )
        r = subslope.remainder(
            graph, output, axes, cs, es, laws, c_s, f_s, sp2, hessian=hessian, walk=wk, exact_slices=kk
        )
        if _total(r, w_s) < radialchoose.MIN_GAIN * got[j1]:
            slices_out[-1] = kk
            return sp2, list(wk)
    if pick == 0:
        return base, []
    return plans[pick]


def pieces_allowed(sub: int, steps: int) -> int:
    """The pieces per box left to the sub-box pass of ``sub`` allowed pieces once ``steps`` walk steps are paid."""
    return max(1, int(sub / (1.0 + COST_PER_STEP * steps)))


def gradients(
    graph: Any,
    output: int,
    axes: Sequence[int],
    order: Sequence[int],
    box: dict[int, iv.Interval],
    point: dict[int, np.ndarray],
    points: dict[int, iv.Interval] | None = None,
    affine: bool = True,
) -> dict[int, iv.Interval]:
    """Per axis of ``order``, an enclosure of ``df/dx_a`` over its walk box (module docstring).

    The box of ``order[n]`` has the axes ``order[: n + 1]`` free on their pieces and every other axis at the
    sub-box's point; enclosed in interval and (``affine``) affine arithmetic, intersected
    (:func:`opgraph.dcg.taylor.thin_interval`, :func:`opgraph.dcg.taylor.thin_affine`). An axis whose walk box would be
    the whole sub-box (the last of an ``order`` holding every axis) is left out: its sub-box enclosure is the same.

    Args:
        graph: The output's graph.
        output: The output node's id.
        axes: The grid's axes.
        order: The walked axes, in walk order.
        box: Per axis, the sub-boxes' pieces ``(lo, hi)`` (laid out on the pass's grid).
        point: Per axis, the sub-boxes' points ``x_s`` (laid out as ``box``).
        points: The point pass's values of the operands of poles at ``point`` (:func:`opgraph.dcg.taylor.jets`'
            ``keep_points``), for the passes that centre.
        affine: Also the affine enclosures.
    """
    from opgraph.dcg import radial, taylor

    affine = affine and AFFINE
    at = {a: (point[a], point[a]) for a in axes}
    out: dict[int, iv.Interval] = {}
    steps = list(order)[: len(axes) - 1]
    ray = radial.ENABLED.get() and radial.WALK and radial.SLICES > 1
    for n, a in enumerate(steps):
        free = steps[: n + 1]
        g = taylor.thin_interval(graph, output, axes, free, box, at, points) if INTERVAL or not affine else None
        if affine:
            g_af = taylor.thin_affine(graph, output, axes, free, box, at)
            g = g_af if g is None else taylor.meet(g, g_af)
        if g is not None and ray:  # the step's axis scaled about x_s (opgraph.dcg.radial, M = {a})
            thin = taylor._thin_box(axes, free, box, at)
            g = radial.enclose(graph, output, axes, [a], thin, point, {a: g}, points, affine)[a]
        if g is not None:
            out[a] = g
    return out
