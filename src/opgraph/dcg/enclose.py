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
