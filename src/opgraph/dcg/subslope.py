"""Slope (mean-value) remainder on sub-boxes: the box-linear model's remainder where box-wide enclosures blow up.

:func:`opgraph.dcg.taylor._slope` bounds ``E[|f(X) - f(x') - c . d| | box]`` (``d = X - x'``, ``c`` the midpoints of
the gradient enclosures at the atom ``x'``) by ``sum_i mag(G_i - c_i) E|d_i|`` with ``G_i`` an enclosure of
``df/dx_i`` over the whole box (or a walk's thinner boxes). Where a variable is used several times along a long
chain (piston's volume ``sqrt(A^2 + B) - A`` in a quotient), the interval and affine enclosures over a box a quarter
of each range wide are tens to thousands of times the gradient's true range, and that overestimate falls faster
than the box's width: on piston's 4-atom grid halving three axes' cells cuts the remainder total 75x, quartering
them 800x (docs/dcg.md, "Sub-box slope remainder").

**Theorem.** Split each cell ``i`` of a box ``B`` into pieces ``P_ij`` (so ``B`` into sub-boxes ``s``, the products
of pieces), with a point ``x_s`` in each sub-box. Then

    E[|f(X) - f(x') - c . d| | B] <= sum_s q_s ( sum_i mag(G^s_i - c_i) E[|X_i - x_si| | P_i,s_i]
                                                 + |f(x_s) - f(x') - c . (x_s - x')| ),

with ``q_s = P(X in s | B)`` (the product of the pieces' shares: the coordinates are independent on a box) and
``G^s_i`` an enclosure of ``df/dx_i`` over ``s``. *Proof.* For ``X`` in ``s`` (convex, containing ``x_s``),
``f(X) - f(x_s) = grad f(xi) . (X - x_s)`` with ``xi`` in ``s``, so ``f(X) - f(x') - c . d = (grad f(xi) - c) .
(X - x_s) + (f(x_s) - f(x') - c . (x_s - x'))``; the absolute value is at most ``sum_i mag(G^s_i - c_i) |X_i - x_si|
+ |f(x_s) - f(x') - c . (x_s - x')|``; take the expectation given ``s`` (each ``|X_i - x_si|`` has the marginal law of
``X_i`` on its piece) and sum over ``s`` with the weights ``q_s``. The point term is computed from rigorous
enclosures of ``f(x_s)`` and ``f(x')`` (interval point passes), padded for the rounding of ``c . (x_s - x')``. Both
terms are second order: ``G^s_i - c_i`` is ``O(width)`` and so is ``E|X_i - x_si|`` on a piece, and the point term is
the expansion's own curvature at ``x_s``. Where ``G^s`` is unbounded on some sub-box (a pole, a tail cell) the
bound is infinite there and the caller keeps its other bound (per box, the minimum).

The pieces of a cell have equal masses under the input's law (quantile function), ``x_si`` is the piece's
conditional median, and ``E[|X_i - x_si|; piece]`` comes from :func:`opgraph.dcg.boxlinear._cost_bins` (closed-form
partial moments; an upper bound); a cell with an unbounded end, of mass below :data:`MIN_CELL_MASS`, or whose law is
not continuous (:class:`opgraph.dcg.distributions.Continuous`) is not split (all its pieces are the whole cell at its atom, with its own ``E|d|``: the same
statement with one piece). Used by :func:`opgraph.dcg.taylor.box_bound` where the box-linear mixture asked for
linear models and the whole-box remainder is large against the linear term (:data:`TRIGGER`), within a CPU budget
(:func:`allowance`). ``ENABLED`` (a ContextVar, default on; switch ``sub_slope``) turns it off.
"""

from __future__ import annotations

import contextvars
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import fixedbudget, subpieces
from opgraph.dcg import intervals as iv

#: Whether the Taylor pass tries the sub-box slope remainder (``ENABLED.set(False)`` or the switch ``sub_slope``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_subslope", default=True)
#: Most sub-boxes per box (the product of the pieces per axis). 64: branch mix-slack raised it to 256 (OTL at 4
#: atoms, 4,096 boxes: remainder 0.0372 -> 0.0295 std, 1.9 -> 3.8 CPU s), which made Borehole's 4-atom bound (0.182
#: std) worse than its 2-atom one (0.158) and needed the halved request of :func:`fewer_pieces` on every mid-size
#: fixed-atoms grid; with both the test suite took 31 instead of 18 minutes (over the CI limit), so 64 again.
MAX_PIECES = 64
#: Whether :func:`fewer_pieces` may answer True wherever a grid gets fewer than :data:`MAX_PIECES` pieces per box
#: (a fixed-atoms call then also evaluates the halved request). Off: with :data:`MAX_PIECES` = 64 the allowance's
#: pieces do not make more atoms worse on the suite, and the halved request doubled the cost of mid-size
#: fixed-atoms mixtures (see :data:`MAX_PIECES`). The wide pieces (:mod:`opgraph.dcg.subpieces`) ask for the halved
#: request only where the coarser grid got more than :data:`MAX_PIECES`.
HALVE_WHERE_FEWER = False
#: Predicted CPU seconds per sub-box and graph node (an interval pass and one affine gradient pass with every axis
#: seeded; measured 4.6e-7 on piston's 4-atom grid, 39 nodes, 1 thread, load 2-3, 2026-12-07).
SECONDS_PER_BOX_NODE = 5e-7
#: Inside a ``target_w1`` call: most share of the seconds left of its ``max_seconds`` that one pass may be predicted
#: to take (the later rounds keep the rest).
TARGET_SHARE = 0.25
#: The pass runs only where the whole-box remainder (mass-weighted, an unbounded box counted as ``INF_AS`` times its
#: linear term) exceeds this share of the linear term's total: where the remainder is already small against the
#: linear term (OTL, the MLP), a finer remainder cannot change the mixture's bound much.
TRIGGER = 0.5
#: ... and only where the whole-box remainder of the boxes where it is finite is at most this many times the linear
#: term's total. Beyond, the enclosures are dominated by a near-pole that pieces within the budget do not fix:
#: piston's program as written (``V**2`` in a denominator; the cancellation pair's other graph) has 4.6e14 against
#: a linear total of 0.033, and its sub-box remainder still summed to 141 (5-6 CPU s at 4 atoms for nothing), where
#: the rewrite has 21 and gets 0.041.
HOPELESS = 1e6
#: An unbounded whole-box remainder counts as this many times the box's linear term in :data:`TRIGGER`'s test.
INF_AS = 10.0
#: Cells with less mass are not split (their pieces' masses would lose relative precision in the CDF differences).
MIN_CELL_MASS = 1e-6
#: Most sub-boxes of one pass: the pieces of the axes with the most pieces are laid out on the grid up to this many
#: (fewer passes over more boxes: a pass over a small grid is mostly per-node overhead), the others looped over.
LAYOUT_MAX = 2**16
#: Model of an axis's term against its pieces in :func:`plan` (``term / m ** DECAY``).
DECAY = 1.3
_EPS = float(np.finfo(float).eps)


def allowance(boxes: int, nodes: int, axes: int | None = None) -> int:
    """Most sub-boxes per box that the pass may use on a grid of ``boxes`` boxes and ``nodes`` graph nodes (1: none).

    Outside a ``target_w1`` call the pass is predicted (:data:`SECONDS_PER_BOX_NODE`) within the fixed-atoms
    allowance ``"sub_slope"`` (:mod:`opgraph.dcg.fixedbudget`: 12 CPU s); inside one, within :data:`TARGET_SHARE` of
    the seconds left of its ``max_seconds`` (with the budget's safety margin; a mixture-first round evaluated again:
    :attr:`opgraph.dcg.roundbudget.RoundBudget.pass_share` instead where set), at most :data:`MAX_PIECES`; beyond
    that, up to :data:`opgraph.dcg.subpieces.WIDE_PIECES` on a grid of ``axes`` axes, at least
    :data:`opgraph.dcg.subpieces.MIN_AXES` (:func:`opgraph.dcg.subpieces.wide`; ``axes=None``: the old cap).
    Deterministic for a fixed-atoms call (the grid's size), so the same call gives the same bound on any machine.
    """
    if not ENABLED.get() or boxes <= 0 or nodes <= 0:
        return 1
    from opgraph.dcg import radial, roundbudget

    per = SECONDS_PER_BOX_NODE * boxes * nodes * radial.pass_factor()  # the radial slices' extra passes
    rb = roundbudget.current()
    fixed = fixedbudget.allowance("sub_slope")
    seconds = fixed if rb is None else (rb.pass_share or TARGET_SHARE) * rb.left() / roundbudget.SAFETY
    # beyond MAX_PIECES only on many axes (opgraph.dcg.subpieces; switch sub_pieces)
    return int(max(1, min(MAX_PIECES, math.floor(seconds / per)), subpieces.wide(per, seconds, fixed, axes)))


def fewer_pieces(
    restricted: Sequence[tuple[Any, int]],
    counts: Mapping[str, int],
    coarser: Mapping[str, int],
    sub_ran: bool = True,
) -> bool:
    """Whether some output's grid at ``counts`` atoms per input gets fewer sub-box pieces per box than at ``coarser``.

    Outside a ``target_w1`` call only (a fixed-atoms call; :func:`allowance` is then a function of the grid's size),
    with the pass on, and only where the coarser grid got wide pieces (more than :data:`MAX_PIECES`,
    :mod:`opgraph.dcg.subpieces`, switch ``sub_pieces``) or, with :data:`HALVE_WHERE_FEWER`, wherever this grid gets
    fewer than :data:`MAX_PIECES`. A fixed-atoms call for which this holds also evaluates the halved request and keeps
    the smaller bound (``opgraph.dcg.api._mixture_smaller_request``). With 256 pieces Borehole's 2-atom grid (256
    boxes, 256 pieces each) certified 0.158 std and its 4-atom grid (65,536 boxes, 10-14 pieces) 0.182.

    Args:
        restricted: Per output, its graph and output id (the grid's axes are the graph's input nodes).
        counts: Atoms per input name of the requested grid.
        coarser: Atoms per input name of the halved request's grid.
        sub_ran: Whether the sub-box pass ran on the requested grid (``info["taylor"]["sub_slope"]``): the wide pieces
            ask for the halved request only then (where the pass did not trigger on the finer grid, or no Taylor
            pass or mixture ran, as on the LogNormal oscillators, the coarser grid's pieces are not what the call is
            missing).
    """
    from opgraph.dcg import roundbudget

    wide = subpieces.ENABLED.get() and sub_ran
    if not (HALVE_WHERE_FEWER or wide) or not ENABLED.get() or roundbudget.current() is not None:
        return False
    for g, _ in restricted:
        names = [n.attrs["name"] for n in g.nodes if n.op == "input"]
        here = allowance(math.prod(counts[n] for n in names), len(g.nodes), len(names))
        there = allowance(math.prod(coarser[n] for n in names), len(g.nodes), len(names))
        if here < there and ((HALVE_WHERE_FEWER and here < MAX_PIECES) or (wide and there > MAX_PIECES)):
            return True
    return False


def plan(scores: Mapping[int, float], allow: int) -> dict[int, int]:
    """Pieces per axis, their product at most ``allow``: greedily to the axis whose modelled term is largest.

    ``scores``: per splittable axis, its whole-box slope term (any positive scale; ``inf`` first). An axis's term is
    modelled as ``score / m ** DECAY`` with ``m`` pieces.
    """
    m = {a: 1 for a in scores}
    live = {a for a, s in scores.items() if s > 0}
    prod = 1
    while live:
        a = max(live, key=lambda t: (scores[t] / m[t] ** DECAY, -t))
        nxt = prod // m[a] * (m[a] + 1)
        if nxt > allow:
            live.discard(a)
            continue
        prod = nxt
        m[a] += 1
    return m


def pieces(
    dist: Any,
    lo: np.ndarray,
    hi: np.ndarray,
    atoms: np.ndarray,
    e1: np.ndarray,
    m: int,
    ratio: float | None = None,
) -> tuple[np.ndarray, ...]:
    """Per cell, ``m`` equal-mass pieces: ``(lo, hi, point, E[|X - point| | piece], share)``, each of shape (n, m).

    Args:
        dist: The input's law (``cdf``, ``ppf``; ``partial_moment`` where closed-form).
        lo: The cells' lower ends.
        hi: The cells' upper ends.
        atoms: The cells' atoms.
        e1: The cells' ``E[|X - atom| | cell]`` (upper bounds), used for the cells that are not split.
        m: Pieces per cell.
        ratio: With a value in (0, 1], a half-line cell (one finite end) is cut too, into pieces of geometric
            masses: each piece ``ratio`` times the next one inward, so the last, unbounded piece carries the least
            (:mod:`opgraph.dcg.tailsub`); its ``E[|X - point| | piece]`` is the closed-form partial moments' (finite:
            the law has a finite mean). None: half-lines are not cut.

    A cell that is not split (an unbounded end without ``ratio``, mass below :data:`MIN_CELL_MASS` or a piece of a
    half-line below it, a law that is not continuous or without a closed-form partial moment on a half-line,
    ``m == 1``) gets ``m`` copies of itself at its atom, each with share ``1 / m``.
    """
    from opgraph.dcg.boxlinear import _cost_bins

    lo, hi, atoms, e1 = (np.asarray(x, dtype=float).reshape(-1) for x in (lo, hi, atoms, e1))
    n = lo.size
    whole = (
        np.repeat(lo[:, None], m, 1),
        np.repeat(hi[:, None], m, 1),
        np.repeat(atoms[:, None], m, 1),
        np.repeat(e1[:, None], m, 1),
        np.full((n, m), 1.0 / m),
    )
    from opgraph.dcg.distributions import Continuous

    ppf = getattr(dist, "ppf", None)
    if m == 1 or ppf is None or not isinstance(dist, Continuous):  # a discrete law's cells are not cut
        return whole
    with np.errstate(all="ignore"):
        flo, fhi = np.asarray(dist.cdf(lo), dtype=float), np.asarray(dist.cdf(hi), dtype=float)
        fin = np.isfinite(lo) & np.isfinite(hi)
        up = np.isfinite(lo) & (hi == np.inf)  # half-lines (lo, inf) and (-inf, hi), cut only with ``ratio``
        down = (lo == -np.inf) & np.isfinite(hi)
        half = (up | down) if ratio is not None and 0 < ratio <= 1 else np.zeros(n, dtype=bool)
        ok = (fin | half) & (fhi - flo >= MIN_CELL_MASS) & (hi > lo)
        if not np.any(ok):
            return whole
        t = np.broadcast_to(np.arange(m + 1) / m, (n, m + 1))
        if np.any(half):  # geometric masses, the smallest at the unbounded end (t = 0 below, t = 1 above)
            g = float(ratio) ** np.arange(m - 1, -1, -1.0)  # type: ignore[arg-type]
            tg = np.concatenate([[0.0], np.cumsum(g) / np.sum(g)])
            tg[-1] = 1.0
            t = np.where(down[:, None], tg[None, :], np.where(up[:, None], 1.0 - tg[None, ::-1], t))
        u = flo[:, None] + (fhi - flo)[:, None] * t
        edges = np.asarray(ppf(np.clip(u, 0.0, 1.0)), dtype=float)
        edges[:, 0], edges[:, -1] = lo, hi
        edges = np.maximum.accumulate(np.clip(edges, lo[:, None], hi[:, None]), axis=1)
        tm = np.where(half[:, None], 0.5 * (t[:, :-1] + t[:, 1:]), t[:, :-1] + 0.5 / m)  # the pieces' medians
        mid = flo[:, None] + (fhi - flo)[:, None] * tm
        point = np.clip(np.asarray(ppf(np.clip(mid, 0.0, 1.0)), dtype=float), edges[:, :-1], edges[:, 1:])
        f = np.asarray(dist.cdf(edges), dtype=float)
        mass = np.maximum(np.diff(f, axis=1), 0.0)
        total = mass.sum(axis=1, keepdims=True)
        cost = _cost_bins(dist, edges, f, point)  # upper bounds on E[|X - point|; piece]
        # the inner edges finite (only a half-line's outer end may be infinite)
        good = ok[:, None] & np.isfinite(edges[:, 1:-1]).all(axis=1, keepdims=True) & np.isfinite(point)
        good = good & np.isfinite(cost) & (total > 0)
        # a half-line's pieces each carry at least MIN_CELL_MASS (the relative rounding of the CDF differences)
        good &= ~half[:, None] | (mass >= MIN_CELL_MASS).all(axis=1, keepdims=True)
        safe = np.where(mass > 0, mass, 1.0)
        # E[|X - point| | piece], padded for the relative rounding of the CDF differences (mass >= MIN_CELL_MASS)
        cond = np.where(mass > 0, cost / safe, 0.0) * (1 + 1e-8)
        share = np.where(total > 0, mass / np.where(total > 0, total, 1.0), 0.0)
        good &= np.isfinite(cond)
        good = np.broadcast_to(np.all(good, axis=1, keepdims=True), (n, m))
    return (
        np.where(good, edges[:, :-1], whole[0]),
        np.where(good, edges[:, 1:], whole[1]),
        np.where(good, point, whole[2]),
        np.where(good, cond, whole[3]),
        np.where(good, share, whole[4]),
    )


def remainder(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    e1: Mapping[int, np.ndarray],
    laws: Mapping[int, Any],
    c: Mapping[int, np.ndarray],
    fx: tuple[np.ndarray, np.ndarray],
    split: Mapping[int, int],
    affine: bool = True,
    hessian: bool = False,
    ratio: float | None = None,
    walk: Sequence[int] = (),
    exact_slices: int | None = None,
) -> np.ndarray:
    """Per box, the sub-box bound on ``E[|f(X) - f(x') - c . d| | box]`` (module docstring), ``inf`` where unknown.

    Args:
        graph: The output's graph (every input node's id is its axis).
        output: The output node's id.
        axes: The grid's axes.
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        e1: Per axis, ``E[|X - atom| | cell]`` per cell (1-D; upper bounds).
        laws: Per axis, the input's law (axes without one are not split).
        c: Per axis, the linear model's coefficients (broadcastable to the grid).
        fx: An enclosure ``(lo, hi)`` of the exact ``f`` at the atoms (broadcastable to the grid).
        split: Pieces per axis (missing axes: 1).
        affine: Also enclose the sub-boxes' gradients in affine arithmetic (:mod:`opgraph.dcg.affgrad`), intersected
            with the interval ones.
        hessian: With the re-centred forms on (:mod:`opgraph.dcg.subcentre`), also the second-order form on each
            sub-box (Hessian enclosures over the sub-boxes: about 1.3-1.8x the pass's CPU).
        ratio: Half-line cells are cut too, into pieces of geometric masses (:func:`pieces`; :mod:`opgraph.dcg.tailsub`).
        walk: Axes whose gradients are also enclosed over the sub-boxes' walk boxes, in this order
            (:func:`opgraph.dcg.subwalk.gradients`; empty: none).
        exact_slices: The affine ray form's slices ``K`` (:func:`opgraph.dcg.radial.ray_forms`; None:
            :data:`opgraph.dcg.radial.EXACT_SLICES`; :mod:`opgraph.dcg.radialchoose` picks it per grid).
    """
    from opgraph.dcg import affgrad, radial, subcentre, subwalk, taylor

    k = len(axes)
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    cut = {}
    for a in axes:
        lo, hi, at = cells[a]
        law = laws.get(a)
        cut[a] = pieces(law, lo, hi, at, e1[a], int(split.get(a, 1)) if law is not None else 1, ratio)
    npc = {a: cut[a][0].shape[1] for a in axes}
    # the pieces' means and second moments for the re-centred form (opgraph.dcg.subcentre)
    centred = subcentre.ENABLED.get()
    mom = {a: subcentre.piece_moments(laws.get(a), *cut[a][:4]) for a in axes} if centred else {}
    if centred and ratio is not None:  # the half-line pieces' second moments (closed forms; opgraph.dcg.tailsub)
        from opgraph.dcg import tailsub

        mom = {a: tailsub.half_line_moments(laws.get(a), *cut[a][:3], mom[a]) for a in axes}
    hs = centred and hessian
    # axes whose pieces are laid out on the grid (one pass over more boxes: the per-pass overhead of a small grid);
    # the others' pieces are looped over (bounded memory)
    inline: set[int] = set()
    boxes = math.prod(shape)
    for a in sorted(axes, key=lambda t: -npc[t]):
        if npc[a] > 1 and boxes * npc[a] <= LAYOUT_MAX:
            inline.add(a)
            boxes *= npc[a]

    def lay(x: np.ndarray, a: int) -> np.ndarray:
        return np.asarray(x, dtype=float).reshape([x.size if t == a else 1 for t in axes])

    def expand(x: Any) -> np.ndarray:
        """A grid-shaped (broadcastable) array of the boxes, repeated over the inline axes' pieces."""
        x = np.asarray(x, dtype=float)
        x = x.reshape((1,) * (k - x.ndim) + x.shape)
        for i, a in enumerate(axes):
            if a in inline and x.shape[i] > 1:
                x = np.repeat(x, npc[a], axis=i)
        return x

    def column(a: int, t: int, j: int | None, src: Mapping[int, tuple[np.ndarray, ...]] = cut) -> np.ndarray:
        """Field ``t`` of axis ``a``'s pieces: piece ``j`` of every cell, or all pieces cell-major (inline)."""
        return lay(src[a][t].reshape(-1) if j is None else src[a][t][:, j], a)

    zero = (np.zeros(()), np.zeros(()))
    vlo, vhi = expand(fx[0]), expand(fx[1])
    cx = {a: expand(c[a]) for a in axes}
    atoms = {a: lay(np.repeat(np.asarray(cells[a][2], dtype=float), npc[a] if a in inline else 1), a) for a in axes}
    acc: Any = 0.0
    ranges = [[None] if a in inline else range(npc[a]) for a in axes]
    # the ray split (opgraph.dcg.radial): the axes the walk does not move, scaled about x_s together
    ray_on = radial.ENABLED.get() and radial.RAY and radial.SLICES > 1
    exact_on = radial.ENABLED.get() and radial.EXACT and centred  # the affine ray form (radial.affine_ray)
    walked = list(walk)[: k - 1]
    with np.errstate(all="ignore"):
        for combo in itertools.product(*ranges):
            box = {a: (column(a, 0, j), column(a, 1, j)) for a, j in zip(axes, combo, strict=True)}
            ctr = {a: column(a, 2, j) for a, j in zip(axes, combo, strict=True)}
            got: list[Any] = []
            kept: dict[int, Any] = {}
            outer = taylor.jets(
                graph,
                output,
                box,
                hess=hs,
                centre=ctr,
                point_out=got,
                centred=True,
                keep_points=kept if walk or ray_on else None,
            )
            thin = subwalk.gradients(graph, output, axes, walk, box, ctr, kept, affine) if walk else {}
            seeds = [a for a in axes if a in outer.g]
            forms: dict[int, Any] | None = {} if exact_on and affine else None
            whole = affgrad.gradients(graph, output, axes, box, seeds, forms) if affine and seeds else {}
            if ray_on:  # the last segment's axes: their enclosures averaged over the scaled sub-boxes
                moving = [a for a in seeds if a not in walked]
                last = {a: taylor.meet(outer.g[a], whole.get(a)) for a in moving}
                thin = {**thin, **radial.enclose(graph, output, axes, moving, box, ctr, last, kept, affine)}
            term: Any = 0.0
            shift: Any = 0.0  # c . (x_s - x')
            size: Any = 0.0  # sum |c_i (x_si - x'_i)|: the rounding scale of the shift
            share: Any = 1.0
            rc = subcentre.Accumulator() if centred else None
            rh = subcentre.Accumulator() if hs else None
            e_by: dict[int, Any] = {}
            m2_by: dict[int, Any] = {}
            g_by: dict[int, Any] = {}
            for a, j in zip(axes, combo, strict=True):
                ca = cx[a]
                g = taylor.meet(taylor.meet(outer.g.get(a, zero), whole.get(a)), thin.get(a))
                e = column(a, 3, j)
                term = term + np.where(e > 0, iv.mag(iv.isub(g, (ca, ca))) * e, 0.0)
                if rc is not None:
                    rc.add(g, ca, e, *(column(a, t, j, mom) for t in range(3)))
                if forms:
                    g_by[a] = g
                    e_by[a], m2_by[a] = e, column(a, 2, j, mom)
                if rh is not None:
                    gp = got[0].g.get(a, zero)
                    rh.add(gp, ca, e, *(column(a, t, j, mom) for t in range(3)))
                    e_by[a], m2_by[a] = e, column(a, 2, j, mom)
                step = ca * (ctr[a] - atoms[a])
                shift = shift + step
                size = size + np.abs(step)
                share = share * column(a, 4, j)
            slo, shi = got[0].v
            gap = np.maximum(np.abs(shi - vlo - shift), np.abs(slo - vhi - shift))
            pad = 8 * _EPS * (np.abs(shi) + np.abs(slo) + np.abs(vlo) + np.abs(vhi) + (k + 2) * size)
            part = term + gap + pad
            if rc is not None:  # the re-centred forms (opgraph.dcg.subcentre), the smallest kept per sub-box
                a_lo, a_hi = slo - vhi - shift, shi - vlo - shift  # f(x_s) - f(x') - c . (x_s - x')
                part = np.fmin(np.where(np.isnan(part), np.inf, part), rc.bound(a_lo, a_hi, pad))
                if rh is not None:  # second order on the sub-box: Taylor at x_s, the Hessian enclosed over s
                    rh.spread = rh.spread + subcentre.hessian_term(outer.h, e_by, m2_by)
                    part = np.fmin(part, rh.bound(a_lo, a_hi, pad))
                if forms:  # the affine ray form on the last segment's axes (opgraph.dcg.radial.affine_ray)
                    moving = [a for a in seeds if a not in walked]
                    # with a walk, also the ray over every axis from x_s (the pass without the walk has it: so the
                    # walk never makes a sub-box's bound larger than the same pieces without it)
                    for mv in [moving, seeds] if walked and moving != seeds else [moving]:
                        ray = radial.ray_forms(graph, output, axes, mv, box, ctr, forms, exact_slices)
                        g_ray, quad = radial.affine_ray(axes, mv, ray, ctr, e_by, m2_by)
                        rq = subcentre.Accumulator()
                        for a, j in zip(axes, combo, strict=True):
                            gq = g_ray.get(
                                a, g_by[a] if mv is moving else taylor.meet(outer.g.get(a, zero), whole.get(a))
                            )
                            rq.add(gq, cx[a], e_by[a], *(column(a, t, j, mom) for t in range(3)))
                        rq.spread = rq.spread + quad
                        part = np.fmin(part, np.where(np.isnan(quad), np.inf, rq.bound(a_lo, a_hi, pad)))
            acc = acc + np.where(share > 0, share * np.where(np.isnan(part), np.inf, part), 0.0)
    acc = np.broadcast_to(
        np.asarray(acc, dtype=float),
        tuple(n * (npc[a] if a in inline else 1) for n, a in zip(shape, axes, strict=True)),
    )
    if inline:  # the inline axes' pieces summed back into their boxes
        split_shape: list[int] = []
        for n, a in zip(shape, axes, strict=True):
            split_shape += [n, npc[a] if a in inline else 1]
        acc = acc.reshape(split_shape).sum(axis=tuple(2 * i + 1 for i in range(k)))
    out = np.asarray(acc, dtype=float) * (1 + 1e-9)
    return np.where(np.isnan(out), np.inf, out)
