"""Second-order Taylor bound per grid box: the gradient at the atom, a Hessian enclosure over the box.

The engine's cellwise bound multiplies each input's cell transport ``E[|X_i - x'_i|; cell]`` by the *largest*
partial derivative on the part of the box its walk visits. Where the output is a sum of many smooth terms whose
derivatives cancel (a tanh MLP: ``df/dx_i = sum_j w2_j w1_ji sech^2(p_j)``, sixteen terms of both signs), the
interval enclosure of that derivative adds the terms' widths and loses the cancellation; on a box with an
unbounded (tail) cell it also spans the whole saturation range. This module bounds the same quantity from a
second-order expansion at the box's atom ``x'`` instead:

    f(X) - f(x') = g . d + 1/2 d^T H(xi) d,   d = X - x',   g = grad f(x'),   xi on the segment [x', X],

with ``g`` enclosed by interval forward mode at the atom (a degenerate box: tight, and the cancellation between
the terms is exact) and ``H`` by second-order interval forward mode over the whole box (valid for every ``xi`` in
it: the box is convex and contains ``x'``). On a box the coordinates ``X_i`` are independent (a product of cells
of independent inputs), so with the per-cell moments ``E_i = E[|d_i| | cell]``, ``b_i >= |E[d_i | cell]|`` and
``M_i >= E[d_i^2 | cell]`` (closed forms of the quantizer) and ``g = c + (g - c)``, ``|g_i - c_i| <= r_i``
(midpoint and radius of the enclosure):

    E[|f(X) - f(x')| | box] <= min( sqrt(sum_i c_i^2 M_i) + sum_i |c_i| b_i, sum_i |c_i| E_i )
                               + sum_i r_i E_i
                               + 1/2 sum_i |H_ii| M_i + sum_{i<k} |H_ik| E_i E_k,

(``E(sum_i c_i d_i)^2 = sum_i c_i^2 Var(d_i) + (sum_i c_i E d_i)^2``, Jensen and ``sqrt(u + v^2) <= sqrt(u) +
v``; ``E|d_i d_k| = E_i E_k`` for ``i != k``; the square-root form is not used on a box where a square
underflowed). The computed value ``V'`` at the atom enters through the width of its enclosure ``[v_lo, v_hi]`` (the
exact ``f(x')`` lies in it): ``+ max(V' - v_lo, v_hi - V')``. The linear part is first order in the cell size
but keeps the cancellation between the terms; the remainder is second order, and finite on unbounded cells where
the Hessian is bounded (``tanh``, ``sin``, ``sigmoid`` of affine forms of Normal inputs), since the Normal
tails' ``E[d^2]`` are closed forms.

Supported: graphs made of ``add sub mul div neg`` (and the identity-like ops), constants, and the smooth unary
ops of :data:`SECOND` (``tanh sigmoid exp sin cos sinh cosh square log arctan erf``). Anything else (a jump, a
kink, ``pow``, ``sqrt`` ...) makes :func:`box_bound` return ``None`` and the engine keeps its own bound. The engine
keeps per box the smaller of this and its cellwise bound (:func:`opgraph.dcg.engine.evaluate_output`, after the
sub-cell pass; per chunk in :mod:`opgraph.dcg.chunks`), so the bound never grows; it skips the pass where boxes of
finite cells carry less than ``opgraph.dcg.engine.TAYLOR_MIN_FINITE`` of the mass (a cost guard). ``ENABLED`` (a ContextVar, default on) switches it off; it travels to workers with the other
switches (:mod:`opgraph.dcg.switches`).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

#: Whether the engine tries the second-order Taylor bound (``ENABLED.set(False)`` turns it off for the context).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_taylor", default=True)

#: Most Hessian entries times grid elements one evaluation may hold per node (memory guard: 2 arrays of 8 bytes).
MAX_WORK = 2**25
#: Most axes (Hessian entries grow as k (k + 1) / 2).
MAX_AXES = 12
#: Squares below this count as underflowed (the square-root form is not used on that box).
_NORMAL = 1e-280

Interval = iv.Interval
#: ``f''`` enclosure of a unary op from ``(u, v, d)``: the operand's, the value's and ``f'``'s enclosures.
SecondRule = Callable[[Interval, Interval, Interval], Interval | None]


def _zero(u: Interval, v: Interval, d: Interval) -> Interval | None:
    return None


def _tanh2(u: Interval, v: Interval, d: Interval) -> Interval:
    # tanh'' = -2 tanh sech^2, with tanh(x) in v and sech^2(x) = tanh'(x) in d for x in u.
    return iv.iscale(-2.0, iv.imul(v, d))


def _sigmoid2(u: Interval, v: Interval, d: Interval) -> Interval:
    # s'' = s (1 - s) (1 - 2 s) = s' (1 - 2 s).
    return iv.imul(d, iv.isub(iv.const(1.0, v[0]), iv.iscale(2.0, v)))


def _self2(u: Interval, v: Interval, d: Interval) -> Interval:
    return v  # exp'' = exp, sinh'' = sinh, cosh'' = cosh


def _neg_self2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.ineg(v)  # sin'' = -sin, cos'' = -cos


def _square2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.const(2.0, np.asarray(u[0], dtype=float))


def _log2nd(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.ineg(iv.isq(d))  # log'' = -1/x^2 = -(log')^2


def _arctan2nd(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(-2.0, iv.imul(u, iv.isq(d)))  # arctan'' = -2x / (1 + x^2)^2 = -2 x (arctan')^2


def _erf2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(-2.0, iv.imul(u, d))  # erf'' = -2 x erf'


#: Second-derivative enclosures of the supported unary ops (``None``: a linear op, no second-order term).
SECOND: dict[str, SecondRule] = {
    "neg": _zero,
    "identity": _zero,
    "copy": _zero,
    "contiguous": _zero,
    "convert": _zero,
    "tanh": _tanh2,
    "sigmoid": _sigmoid2,
    "exp": _self2,
    "sinh": _self2,
    "cosh": _self2,
    "sin": _neg_self2,
    "cos": _neg_self2,
    "square": _square2,
    "log": _log2nd,
    "arctan": _arctan2nd,
    "erf": _erf2,
}
#: Binary ops with a second-order rule.
BINARY = frozenset({"add", "sub", "mul", "div"})


def supported(graph: Any, output: int) -> bool:
    """Whether every node of ``graph`` up to ``output`` has a second-order rule here."""
    return all(n.op in ("input", "const") or n.op in SECOND or n.op in BINARY for n in graph.nodes if n.id <= output)


class _Jet:
    """A node's value enclosure, gradient enclosures by axis and Hessian enclosures by axis pair ``(i, k)``."""

    __slots__ = ("g", "h", "v")

    def __init__(self, v: Interval, g: dict[int, Interval], h: dict[tuple[int, int], Interval]) -> None:
        self.v, self.g, self.h = v, g, h


def _acc(d: dict[Any, Interval], key: Any, x: Interval) -> None:
    d[key] = x if key not in d else iv.iadd(d[key], x)


def _second_partials(op: str, u: Interval, w: Interval) -> dict[tuple[int, int], Interval]:
    """Nonzero second partials of a binary op over the box, by operand pair (0: ``u``, 1: ``w``)."""
    if op == "mul":
        one = iv.const(1.0, np.asarray(u[0], dtype=float))
        return {(0, 1): one, (1, 0): one}
    if op == "div":
        r = iv.irecip(w)
        r2 = iv.isq(r)
        uw = iv.ineg(r2)  # d2(u/w)/du dw = -1/w^2
        return {(0, 1): uw, (1, 0): uw, (1, 1): iv.iscale(2.0, iv.imul(u, iv.imul(r2, r)))}  # 2 u / w^3
    return {}


def _node(n: Any, ops: list[_Jet], hess: bool) -> _Jet:
    args = [o.v for o in ops]
    v, parts = iv.rule(n.op, args, n.attrs)
    g: dict[int, Interval] = {}
    h: dict[tuple[int, int], Interval] = {}
    for o, p in zip(ops, parts, strict=True):
        for i, gi in o.g.items():
            _acc(g, i, iv.imul(p, gi))
        if hess:
            for ik, hik in o.h.items():
                _acc(h, ik, iv.imul(p, hik))
    if hess:
        if len(ops) == 1:
            sec = SECOND[n.op](args[0], v, parts[0])
            q = {} if sec is None else {(0, 0): iv.widen(*sec)}
        else:
            q = {ab: iv.widen(*x) for ab, x in _second_partials(n.op, args[0], args[1]).items()}
        for (a, b), qab in q.items():
            ga, gb = ops[a].g, ops[b].g
            # H_ik = sum_ab q_ab g_ai g_bk; only i <= k is stored (H is symmetric: the terms with i > k are those
            # of H_ki, which the pairs with the indices in order already give in full).
            for i, gai in ga.items():
                for k, gbk in gb.items():
                    if i <= k:
                        _acc(h, (i, k), iv.imul(qab, iv.imul(gai, gbk)))
    return _Jet(
        iv.widen(*v),
        {i: iv.widen(*x) for i, x in g.items()},
        {ik: iv.widen(*x) for ik, x in h.items()},
    )


def jets(graph: Any, output: int, cells: dict[int, Interval], hess: bool) -> _Jet:
    """Forward-mode value / gradient (/ Hessian) enclosures of ``graph``'s last node.

    Args:
        graph: An :class:`opgraph.graph.Graph` whose nodes all have rules here (see :func:`supported`).
        output: The output node's id.
        cells: Per input node id (its axis), the interval of each cell (or of each atom, for the point pass), laid
            out to broadcast over the output's axes.
        hess: Also compute the Hessian enclosures (the box pass).
    """
    last = graph.last_uses()
    vals: dict[int, _Jet] = {}
    with iv.quiet():  # one np.errstate for the pass (the interval kernels' own are skipped; same values)
        for n in graph.nodes:
            if n.id > output:
                break
            if n.op == "input":
                lo, hi = cells[n.id]
                one = iv.const(1.0, np.zeros(()))
                jet = _Jet((lo, hi), {n.id: one}, {})
            elif n.op == "const":
                c = np.asarray(float(np.asarray(n.attrs["value"], dtype=float)))
                jet = _Jet((c, c), {}, {})
            else:
                jet = _node(n, [vals[j] for j in n.inputs], hess)
            vals[n.id] = jet
            for j in set(n.inputs):
                if last.get(j, math.inf) <= n.id and j != output:
                    vals.pop(j, None)
    return vals[output]


def box_bound(
    graph: Any,
    output: int,
    axes: Sequence[int],
    pt: np.ndarray,
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    wbox: np.ndarray,
) -> np.ndarray | None:
    """Per-box bound on ``E[|f(X) - V'|; box]`` (module docstring), or ``None`` where it does not apply.

    Args:
        graph: The output's graph (every input node's id is its axis).
        output: The output node's id.
        axes: The output's axes (the layout of ``pt``, ``wbox`` and the result).
        pt: The computed values ``V'`` at the atoms (broadcastable to the grid).
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        moments: Per axis, ``(P(cell), E[|d|; cell], |E[d; cell]| bound, E[d^2; cell])`` (upper bounds, as masses),
            with ``d = X - atom``.
        wbox: The boxes' masses on the grid of ``axes``.
    """
    k = len(axes)
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    size = int(np.prod(shape)) if shape else 1
    if not k or k > MAX_AXES or size * k * (k + 1) // 2 > MAX_WORK or not supported(graph, output):
        return None

    def lay(x: np.ndarray, a: int) -> np.ndarray:
        return np.asarray(x, dtype=float).reshape([x.size if t == a else 1 for t in axes])

    with np.errstate(all="ignore"):
        box = {a: (lay(cells[a][0], a), lay(cells[a][1], a)) for a in axes}
        at = {a: (lay(cells[a][2], a), lay(cells[a][2], a)) for a in axes}
        outer = jets(graph, output, box, hess=True)
        point = jets(graph, output, at, hess=False)
        w = np.asarray(wbox, dtype=float)
        r1, rb, r2 = {}, {}, {}
        for a in axes:
            mass, e1, b1, m2 = (np.asarray(x, dtype=float) for x in moments[a])
            inv = np.where(mass > 0, 1.0 / np.where(mass > 0, mass, 1.0), 0.0)
            r1[a], rb[a], r2[a] = lay(e1 * inv, a), lay(b1 * inv, a), lay(m2 * inv, a)
            # E[d^2] >= E|d|^2: a second moment at the underflow range with E|d| > 0 has lost its value (a law at
            # scale ~1e-160): taken as unknown, so the boxes that need it keep the engine's bound.
            r2[a] = np.where((r1[a] > 0) & ~(r2[a] > _NORMAL), np.inf, r2[a])
        lin_sq: Any = 0.0
        bias: Any = 0.0
        lin1: Any = 0.0
        rad: Any = 0.0
        exact: Any = True  # where no square underflowed (a tiny gradient, or a tiny second moment)
        for a in axes:
            gl, gh = point.g.get(a, (np.zeros(()), np.zeros(())))
            c = 0.5 * (gl + gh)
            r = 0.5 * (gh - gl)
            sq = c * c * r2[a]
            exact = exact & ((np.abs(c) * r1[a] == 0) | (sq > _NORMAL))
            lin_sq = lin_sq + sq
            bias = bias + np.abs(c) * rb[a]
            lin1 = lin1 + np.abs(c) * r1[a]
            rad = rad + r * r1[a]
        # sqrt(sum c^2 M + (sum |c| b)^2) <= sqrt(sum c^2 M) + sum |c| b (b is not squared: it is often ~1e-300);
        # the square-root form only where no square underflowed (a gradient ~1e-197 squares to 0).
        lin = np.where(exact, np.minimum(np.sqrt(lin_sq) + bias, lin1), lin1) + rad
        rem: Any = 0.0
        for (i, j), hij in outer.h.items():
            m = iv.mag(hij)
            rem = rem + (0.5 * m * r2[i] if i == j else m * r1[i] * r1[j])
        vlo, vhi = point.v
        p = np.asarray(pt, dtype=float)
        gap = np.maximum(np.maximum(p - vlo, vhi - p), 0.0)
        tot = (lin + rem + gap) * (1 + 1e-9) * w
        tot = np.where(w == 0, 0.0, tot)
        tot = np.where(np.isnan(tot), np.inf, tot)
    return np.broadcast_to(tot, shape)
