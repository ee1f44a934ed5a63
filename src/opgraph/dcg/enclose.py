"""Enclosures of subexpressions in which a value occurs more than once (the interval dependency problem).

Naive interval arithmetic treats every occurrence of a value as a separate variable, so a cancellation such as
``sqrt(a**2 + b) - a`` (the piston's force difference, the stable root of a quadratic) gets an enclosure that
contains 0 and negative values although the function is positive; a later division by it then manufactures a
singularity the function does not have. This module recognises such subexpressions in a graph and encloses them
as functions of their operands' enclosures, with the *monotonicity form*: where a function is monotone in each of
its arguments over the box, its range is spanned by two corners, which are evaluated in a numerically stable
form with outward rounding.

Forms (``b`` is any value, ``a`` the value that occurs twice):

* ``sqrt(a**2 + b) - a`` (also written with ``a * a`` or ``square(a)``, the sum in either order) and its negation
  ``a - sqrt(a**2 + b)``. For ``b > 0`` the function ``G(a, b) = sqrt(a^2 + b) - a`` is decreasing in ``a``
  (``dG/da = -G / sqrt(a^2 + b) < 0``) and increasing in ``b`` (``dG/db = 1 / (2 sqrt(a^2 + b)) > 0``), so over
  ``[a] x [b]`` its range is ``[G(a_hi, b_lo), G(a_lo, b_hi)]``. ``G`` is evaluated as ``b / (sqrt(a^2 + b) + a)``
  for ``a >= 0`` (no cancellation) and as ``sqrt(a^2 + b) - a`` for ``a < 0``. Its partial derivatives enclose as
  ``-[G] / [s]`` and ``1 / (2 [s])`` with ``[s]`` the enclosure of ``sqrt(a^2 + b)``, both sign-definite.

The engine (:meth:`opgraph.dcg.engine.Evaluator._op`) intersects the node's ordinary enclosure (value and
per-axis derivative) with the form's on every box where the form applies (``b_lo > 0``); both are valid
enclosures, so the intersection is too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opgraph.dcg import intervals as iv
from opgraph.dcg import logic
from opgraph.graph import Graph

Interval = iv.Interval


@dataclass(frozen=True)
class SqrtDiff:
    """``sign * (sqrt(a**2 + b) - a)`` at a ``sub`` node: the node ids of ``a`` and ``b``."""

    a: int
    b: int
    sign: float


def _square_of(graph: Graph, p: int) -> int | None:
    """The node ``a`` when node ``p`` is ``a ** 2``, ``a * a`` or ``square(a)`` (else None)."""
    n = graph.nodes[p]
    if n.op == "square" and len(n.inputs) == 1:
        return n.inputs[0]
    if n.op == "mul" and len(n.inputs) == 2 and n.inputs[0] == n.inputs[1]:
        return n.inputs[0]
    if n.op == "pow" and len(n.inputs) == 2:
        c = graph.nodes[n.inputs[1]]
        if c.op == "const" and np.ndim(c.attrs["value"]) == 0 and float(c.attrs["value"]) == 2.0:
            return n.inputs[0]
    return None


def _sqrt_sum(graph: Graph, x: int, a: int) -> int | None:
    """The node ``b`` when node ``x`` is ``sqrt(a**2 + b)`` or ``sqrt(b + a**2)`` for the given ``a`` (else None)."""
    s = graph.nodes[x]
    if s.op != "sqrt" or len(s.inputs) != 1:
        return None
    u = graph.nodes[s.inputs[0]]
    if u.op != "add" or len(u.inputs) != 2:
        return None
    for p, b in ((u.inputs[0], u.inputs[1]), (u.inputs[1], u.inputs[0])):
        if _square_of(graph, p) == a:
            return b
    return None


def find_forms(graph: Graph) -> dict[int, SqrtDiff]:
    """The nodes of ``graph`` that one of this module's forms encloses, by node id."""
    out: dict[int, SqrtDiff] = {}
    for n in graph.nodes:
        if n.op != "sub" or len(n.inputs) != 2:
            continue
        x, y = n.inputs
        b = _sqrt_sum(graph, x, y)
        if b is not None:
            out[n.id] = SqrtDiff(y, b, 1.0)
            continue
        b = _sqrt_sum(graph, y, x)
        if b is not None:
            out[n.id] = SqrtDiff(x, b, -1.0)
    return out


def _sqrt_iv(u: Interval) -> Interval:
    with np.errstate(invalid="ignore"):
        return iv.widen(np.sqrt(np.maximum(u[0], 0.0)), np.sqrt(np.maximum(u[1], 0.0)))


def sqrt_diff_point(a: np.ndarray, b: np.ndarray) -> Interval:
    """An outward-rounded enclosure of ``sqrt(a**2 + b) - a`` at the points ``(a, b)`` (``b > 0``), cancellation-free.

    Args:
        a: Values of ``a`` (any shape, broadcast with ``b``).
        b: Values of ``b``.

    Returns:
        ``(lo, hi)`` arrays containing the exact value.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    pa, pb = iv.point(a), iv.point(b)
    with np.errstate(all="ignore"):
        s = _sqrt_iv(iv.widen(*iv.iadd(iv.widen(*iv.isq(pa)), pb)))
        pos = iv.widen(*iv.idiv(pb, iv.widen(*iv.iadd(s, pa))))  # a >= 0: b / (s + a)
        neg = iv.widen(*iv.isub(s, pa))  # a < 0: s - a, no cancellation
    return np.where(a >= 0, pos[0], neg[0]), np.where(a >= 0, pos[1], neg[1])


def sqrt_diff(
    a: Interval, b: Interval, der_a: dict[int, Interval], der_b: dict[int, Interval], axes: list[int]
) -> tuple[np.ndarray, Interval, dict[int, Interval]]:
    """Monotonicity-form enclosure of ``G = sqrt(a**2 + b) - a`` over boxes ``[a] x [b]``, with its derivatives.

    Args:
        a: Enclosure of ``a`` on each box (arrays broadcast together with ``b``).
        b: Enclosure of ``b`` on each box.
        der_a: Enclosure of ``da/dx_s`` on each box, for each axis ``s`` that ``a`` depends on.
        der_b: The same for ``b``.
        axes: The axes ``s`` to return derivative enclosures for.

    Returns:
        ``(ok, value, der)``: ``ok`` marks the boxes where the form applies (``b_lo > 0``, finite ends); ``value``
        encloses ``G`` there and ``der[s]`` encloses ``dG/dx_s`` (chain rule through the sign-definite partials
        ``-G / sqrt(a^2 + b)`` and ``1 / (2 sqrt(a^2 + b))``). Outside ``ok`` the arrays are meaningless.
    """
    (al, ah), (bl, bh) = a, b
    with np.errstate(all="ignore"):
        ok = (bl > 0) & np.isfinite(al) & np.isfinite(ah) & np.isfinite(bh)
        bl_safe = np.where(ok, bl, 1.0)
        bh_safe = np.where(ok, bh, 1.0)
        al_safe = np.where(ok, al, 0.0)
        ah_safe = np.where(ok, ah, 0.0)
        lo = sqrt_diff_point(ah_safe, bl_safe)[0]  # decreasing in a, increasing in b
        hi = sqrt_diff_point(al_safe, bh_safe)[1]
        value = (np.maximum(lo, 0.0), hi)  # G > 0 for b > 0
        s = _sqrt_iv(iv.widen(*iv.iadd(iv.isq((al_safe, ah_safe)), (bl_safe, bh_safe))))
        rs = iv.irecip(s)
        d_a = iv.widen(*iv.ineg(iv.imul(value, rs)))
        d_b = iv.widen(*iv.iscale(0.5, rs))
        der: dict[int, Interval] = {}
        for t in axes:
            acc: Interval | None = None
            for part, d in ((d_a, der_a), (d_b, der_b)):
                if t in d:
                    term = iv.imul(part, d[t])
                    acc = term if acc is None else iv.iadd(acc, term)
            der[t] = iv.widen(*acc) if acc is not None else (np.zeros(()), np.zeros(()))
    return ok, value, der


# ----------------------------------------------------------------------------------------------------------------
# Cell subdivision
# ----------------------------------------------------------------------------------------------------------------
#: Ops whose enclosure is infinite because the function jumps: subdividing a box does not remove that.
JUMP_OPS = frozenset({"lt", "le", "gt", "ge", "eq", "ne", "where", "sign", "floor", "ceil", "rint", "mod", *logic.OPS})
#: Ops with a pole or a non-Lipschitz point at 0 of one operand (op -> operand index): where that operand's
#: enclosure on a box comes closer to 0 than :data:`POLE_RATIO` times its own width, the op's derivative
#: enclosure is loose (``1/d^2`` varies by more than ``(1 + 1/POLE_RATIO)^2`` over it) and bisecting the box pays.
POLE_OPERAND = {
    "div": 1,
    "reciprocal": 0,
    "log": 0,
    "log2": 0,
    "log10": 0,
    "sqrt": 0,
    "rsqrt": 0,
    "cbrt": 0,
    "pow": 0,
}
POLE_RATIO = 4.0
#: Most sub-boxes per box (a box of k axes is bisected along all of them, L times, while (2^k)^L <= this).
MAX_PIECES = 64

#: Subdivision re-evaluates a node's whole subexpression in Python, one interval op at a time (vectorised over the
#: boxes): a node whose subexpression has more than this many nodes is not subdivided (a 1,000-step unrolled loop
#: would otherwise cost O(steps^2)), and one evaluation re-evaluates at most :data:`MAX_SUBDIVISION_WORK` nodes in
#: all. Boxes left out keep their (sound, wider) enclosures.
MAX_SUBEXPR = 256
MAX_SUBDIVISION_WORK = 20_000


def near_pole(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """True where ``[lo, hi]`` contains 0 or lies closer to 0 than :data:`POLE_RATIO` times its width (finite ends)."""
    with np.errstate(invalid="ignore"):
        dist = np.where((lo > 0) | (hi < 0), np.minimum(np.abs(lo), np.abs(hi)), 0.0)
        return np.isfinite(lo) & np.isfinite(hi) & (dist < POLE_RATIO * (hi - lo))


def levels_for(k: int, max_pieces: int = MAX_PIECES) -> int:
    """Bisection levels for a box of ``k`` axes: the largest ``L`` with ``2^(k L) <= max_pieces`` (0 if none)."""
    if k < 1:
        return 0
    level = 0
    while 2 ** (k * (level + 1)) <= max_pieces:
        level += 1
    return level


def ancestors_to(graph: Graph, target: int, leaves: dict[int, int]) -> list[int]:
    """Node ids of the subexpression of ``target`` down to its leaves (axis nodes) and constants, in graph order."""
    need: set[int] = set()
    stack = [target]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        if i not in leaves and graph.nodes[i].op not in ("input", "const"):
            stack.extend(graph.nodes[i].inputs)
    return sorted(need)


def subdivided_enclosure(
    graph: Graph,
    target: int,
    leaves: dict[int, int],
    cells: dict[int, Interval],
    levels: int,
) -> tuple[Interval, dict[int, Interval]]:
    """Value and gradient enclosures of node ``target`` over boxes, from the hull over bisected sub-boxes.

    The subexpression of ``target`` (down to the nodes in ``leaves``, which are independent coordinates) is
    re-evaluated with the interval rules of :data:`opgraph.dcg.intervals.RULES` and forward-mode interval
    derivatives on every sub-box; the hull over a box's sub-boxes encloses the value and each partial derivative
    over the whole box. Sub-boxes are narrower, so a reused value inflates less, and an enclosure that put 0 in a
    denominator on the whole box may exclude it on every sub-box.

    Args:
        graph: The graph.
        target: The node to enclose.
        leaves: Node id -> axis id for every node that is a coordinate (an input or a compressed node).
        cells: Axis id -> ``(lo, hi)`` arrays of shape ``(m,)``: the ``m`` boxes (all finite).
        levels: Bisections of every axis (``2^(k levels)`` sub-boxes per box for ``k`` axes).

    Returns:
        ``(value, der)``: arrays of shape ``(m,)``; ``der[axis]`` for every axis in ``cells``.
    """
    axes = sorted(cells)
    k = len(axes)
    per = 2**levels
    pieces = per**k
    m = int(np.size(cells[axes[0]][0])) if axes else 1
    # Sub-box p of box i: axis t takes its (p // per^r) % per -th piece (r = position of t).
    p = np.arange(pieces)
    sub: dict[int, Interval] = {}
    for r, t in enumerate(axes):
        lo, hi = (np.asarray(x, dtype=float).reshape(m, 1) for x in cells[t])
        j = (p // per**r) % per
        with np.errstate(invalid="ignore", over="ignore"):
            a = lo + (hi - lo) * (j / per)
            b = np.where(j == per - 1, hi, lo + (hi - lo) * ((j + 1) / per))
        sub[t] = (np.minimum(a, hi).reshape(-1), np.maximum(b, lo).reshape(-1))
    vals: dict[int, Interval] = {}
    ders: dict[int, dict[int, Interval]] = {}
    one = (np.ones(()), np.ones(()))
    for i in ancestors_to(graph, target, leaves):
        n = graph.nodes[i]
        if i in leaves:
            t = leaves[i]
            vals[i], ders[i] = sub[t], {t: one}
            continue
        if n.op == "const":
            c = np.asarray(float(np.asarray(n.attrs["value"], dtype=float)))
            vals[i], ders[i] = (c, c), {}
            continue
        v, parts = iv.rule(n.op, [vals[j] for j in n.inputs], n.attrs)
        d: dict[int, Interval] = {}
        for j, part in zip(n.inputs, parts, strict=True):
            for t, dj in ders[j].items():
                term = iv.imul(part, dj)
                d[t] = term if t not in d else iv.iadd(d[t], term)
        vals[i] = iv.widen(*v)
        ders[i] = {t: iv.widen(*x) for t, x in d.items()}
    shape = (m, pieces)

    def hull(x: Interval) -> Interval:
        lo = np.broadcast_to(x[0], (m * pieces,)).reshape(shape)
        hi = np.broadcast_to(x[1], (m * pieces,)).reshape(shape)
        bad = np.isnan(lo).any(axis=1) | np.isnan(hi).any(axis=1)
        lo, hi = np.min(lo, axis=1), np.max(hi, axis=1)
        return np.where(bad, -np.inf, lo), np.where(bad, np.inf, hi)

    zero = (np.zeros(m), np.zeros(m))
    return hull(vals[target]), {t: hull(ders[target][t]) if t in ders[target] else zero for t in axes}
