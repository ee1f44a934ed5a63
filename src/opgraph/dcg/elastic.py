"""Log-space (elasticity) box bound: ``E[|f(X) - f(x')|; box]`` through the interval of ``d log|f| / d u_i``.

The engine's cellwise bound charges a box ``B = prod_i C_i`` with ``sum_i sup_B |df/dx_i| E[|X_i - x'_i|; B]``
(or with the product-form envelope of ``|f|`` on boxes that touch a tail). On a program that is a product of
powers and positive sums of its inputs (the damped oscillator's rms: 7 LogNormal inputs), ``sup_B |df/dx_i|``
carries the variation of ``f`` over the whole box (a product of the other inputs' ranges raised to their powers),
and on a tail box it is infinite. The *relative* derivative does not: with ``u_i = log x_i`` for an input of
positive support (``u_i = x_i`` otherwise) and ``h = log|f|``,

    d h / d u_i = (x_i / f) df/dx_i,

the elasticity, is a sum of the powers for a product, and a convex combination of the operands' for a positive
sum, whatever the box (a tail included). With ``L_i >= sup_B |dh/du_i|`` and ``f`` of one sign on ``B`` (the box is
convex in ``u``, so the segment from ``u'`` to ``u`` stays in it),

    |f(x) - f(x')| = |f(x')| |e^{h(u) - h(u')} - 1| <= |f(x')| (e^{sum_i L_i |u_i - u'_i|} - 1).

A tighter ``L_i`` comes from moving one coordinate at a time along the path from ``u'`` to ``u`` (dimension 1, then
2, ...): while dimension ``i`` moves, the dimensions before it range over their cells and those after it sit at
their atoms, so ``L_i`` is the supremum of ``|dh/du_i|`` over that smaller box (one interval pass per dimension;
``|h(u) - h(u')| <= sum_i L_i |u_i - u'_i|`` still holds, each leg of the path lying in its box). On a box of
independent inputs the expectation then factorises:

    E[|f(X) - f(x')|; B] <= |f(x')| (prod_i E[e^{L_i |U_i - u'_i|}; C_i] - prod_i P(C_i)),

each factor a closed form on the cell: for a LogNormal ``U_i = log X_i`` is Normal, and for a Normal input with
the linear coordinate, ``E[e^{L |Z - c|}; a < Z < b]`` is a difference of Normal CDFs at shifted arguments
(computed with ``log_ndtr``, no cancellation in the tails). Other laws give no bound here (``None``). The computed
value at the atom enters through the width of its enclosure (an interval pass at the atoms).

The interval propagation (vectorised over the grid, in slabs of the first axis) carries per node its value
enclosure ``V`` (plain interval arithmetic, with a structural sign: products, quotients and powers of positive
values stay positive where an end underflows to 0), its elasticities ``G_i`` and its ``u``-derivatives ``D_i``:

- products and quotients add and subtract ``G`` (exact: no dependency problem), constant powers scale it;
- a sum of two operands of one sign has ``G`` in the hull of the operands' ``G`` (``h`` of a sum of positives
  is a weighted mean of theirs); any other sum or difference goes through ``D`` (``D_u +- D_w``, ``G = D / V``);
- ``exp`` and ``log`` swap the two (``G(e^u) = D_u``, ``D(log u) = G_u``);
- a pole (a divisor, ``log`` or fractional-power argument not of one strict sign on the box) makes the box's
  enclosures infinite, so the box keeps the engine's bound;
- a quotient of two linear forms in the same two positive values (``(a - b) / ((a + b) / 2)``) is also enclosed as a
  monotone function of ``a / b`` (:mod:`opgraph.dcg.mobius`, ``MOBIUS``), met with the general rule's enclosures.

Where a rule gave ``D`` a form of its own (sums, differences, ``log``, and what they feed), ``G`` is intersected
with ``D / V`` and ``D`` with ``V G``; elsewhere ``D = V G``. Supported ops: :data:`OPS`; any other op makes
:func:`box_bound` return ``None``. The engine keeps per box the smaller of this and its own bound (after the
Taylor pass, on plain grids of exact inputs; not on the chunks of :mod:`opgraph.dcg.chunks`), so no bound grows.
``ENABLED`` (a ContextVar, default on) switches it off; it travels to workers with the other switches. Per box the
pass also takes the centred form of :mod:`opgraph.dcg.centredlog` (the same leg enclosures used signed; its own switch)
where it is smaller.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.special as sc

from opgraph.dcg import centredlog, mobius
from opgraph.dcg import intervals as iv
from opgraph.dcg.distributions import Distribution, LogNormal, Normal

#: Whether the engine tries the elasticity bound (``ENABLED.set(False)`` turns it off for the context).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_elastic", default=True)

#: Relative rounding pad on each box's bound (the closed forms and the products of factors).
PAD = 1e-9

#: Boxes per slab of the first axis (memory: a few live nodes of ``2 k + 1`` enclosures each on a slab).
MAX_BOXES = 2**15

#: Largest grid whose legs are bounded per half-cell (below / above the atom: two passes per input); larger grids
#: take one pass over the whole cell (DampedOsc at 7 atoms per input: 2.28 std in 7.2 CPU s against 2.61 in 3.6).
HALF_CELLS_MAX_BOXES = 2**18

#: The cost guard of :func:`apply`: on grids of PROBE_MIN_BOXES boxes or more, the cells at these fractions of each
#: axis form a probe sub-grid; the whole pass runs only where the probe's total falls by PROBE_MIN_GAIN or more.
PROBE_MIN_BOXES = 2**10
PROBE_AT = (0.25, 0.75)
PROBE_MIN_GAIN = 0.02

#: Whether the path moves the coordinates in :func:`path_order`'s order (largest ``|dh/du_j| sigma_j`` at the central
#: box first) instead of the grid's (a module constant for A/B).
ORDER_BY_SCALE = True

#: Whether quotients of two linear forms in the same two positive values take the monotone ratio rule of
#: :mod:`opgraph.dcg.mobius` (met with the general quotient rule; a module constant for A/B).
MOBIUS = True

#: Whether a sum of two operands of one sign bounds its elasticity by the convex combination with the enclosed
#: weights ``|u| / (|u| + |w|)`` (:func:`_convex`) instead of the hull of the operands' (a module constant for A/B).
WEIGHTED_SUMS = True

_EPS = float(np.finfo(float).eps)

#: Ops with a rule here (``pow`` needs a constant exponent).
OPS = frozenset(
    {"add", "sub", "mul", "div", "neg", "pow", "sqrt", "square", "reciprocal", "exp", "log", "identity", "pos"}
)

_INF = math.inf

Interval = tuple[np.ndarray, np.ndarray]


def applicable(law: Distribution) -> bool:
    """Whether an input of this law has a coordinate and a closed-form cell factor here."""
    return type(law) in (LogNormal, Normal)


def _w(a: Interval) -> Interval:
    return iv.widen(*a)


def _zero() -> Interval:
    z = np.zeros(())
    return z, z


def _inf() -> Interval:
    return np.full((), -_INF), np.full((), _INF)


def _meet(a: Interval, b: Interval) -> Interval:
    """Intersection of two enclosures of the same quantity (a NaN end means no information)."""
    lo = np.fmax(a[0], b[0])
    hi = np.fmin(a[1], b[1])
    return lo, hi


def _sgn(n: _Node) -> np.ndarray:
    return np.asarray(n.sign)


def _strict(v: Interval) -> np.ndarray:
    """Boxes where ``v`` has one strict sign (an infinite end allowed: the values themselves are finite)."""
    with iv.errstate(invalid="ignore"):
        return (v[0] > 0) | (v[1] < 0)


def _mask(a: Interval, ok: np.ndarray) -> Interval:
    """``a`` where ``ok``, the whole line elsewhere."""
    if np.all(ok):
        return a
    return np.where(ok, a[0], -_INF), np.where(ok, a[1], _INF)


class _Node:
    __slots__ = ("d", "dx", "g", "sign", "v")

    def __init__(
        self, v: Interval, g: dict[int, Interval], d: dict[int, Interval] | None, sign: Any = 0, dx: bool = False
    ) -> None:
        # dx: whether ``d`` came from a rule of its own (else it is ``V G``, and the rules downstream need not
        # carry the product-rule form of ``D``: the ``G`` form alone is as tight)
        self.v, self.g, self.d, self.sign, self.dx = v, g, d, sign, dx


def _finish(
    v: Interval,
    g: dict[int, Interval],
    d: dict[int, Interval] | None,
    ok: np.ndarray | None = None,
    sign: Any = 0,
) -> _Node:
    """Widen, cross-intersect ``G`` with ``D / V`` and ``D`` with ``V G``; the whole line where ``ok`` is False.

    ``sign``: per box +1 / -1 where the node's values are known to be strictly positive / negative by its
    structure (a product of positive values, ...), 0 where unknown: a lower end that underflowed to 0 is then
    raised to the smallest positive float (and likewise for negative values).
    """
    v = _w(v)
    sign = np.asarray(sign)
    if np.any(sign != 0):
        tiny = np.nextafter(0.0, 1.0)
        v = (np.where(sign > 0, np.maximum(v[0], tiny), v[0]), np.where(sign < 0, np.minimum(v[1], -tiny), v[1]))
    if ok is not None:
        v = _mask(v, ok)
        sign = np.where(ok, sign, 0)
    strict = _strict(v)
    sign = np.where(strict & (sign == 0), np.where(v[0] > 0, 1, -1), sign)
    gg: dict[int, Interval] = {}
    dd: dict[int, Interval] = {}
    if d is None:  # D = V G: no rule of its own, formed where a rule downstream asks for it (:func:`_dof`)
        for j in g:
            gj = _w(g[j])
            gg[j] = _mask(gj, ok) if ok is not None else gj
        return _Node(v, gg, None, sign, False)
    rv = iv.irecip(v)
    for j in set(g) | set(d):
        gj = _w(g[j]) if j in g else _inf()
        dj = _w(d[j]) if j in d else _inf()
        with iv.errstate(invalid="ignore", over="ignore"):
            g2 = _mask(_w(iv.imul(dj, rv)), strict)
            d2 = _w(iv.imul(v, gj))
        gj = _meet(gj, g2)
        dj = _meet(dj, d2)
        if ok is not None:
            gj, dj = _mask(gj, ok), _mask(dj, ok)
        gg[j], dd[j] = gj, dj
    return _Node(v, gg, dd, sign, True)


def _get(x: dict[int, Interval], j: int) -> Interval:
    return x[j] if j in x else _zero()


def _dof(n: _Node, j: int) -> Interval:
    """``D_j`` of a node: its own where a rule gave one, else ``V G_j`` (widened)."""
    if n.d is not None:
        return _get(n.d, j)
    if j not in n.g:
        return _zero()
    with iv.errstate(invalid="ignore", over="ignore"):
        return _w(iv.imul(n.v, n.g[j]))


def _keys(*ns: _Node) -> set[int]:
    out: set[int] = set()
    for n in ns:
        out |= set(n.g) | set(n.d or ())
    return out


def _const_of(n: _Node) -> float | None:
    lo, hi = n.v
    if n.g or n.d or np.ndim(lo) or float(lo) != float(hi):
        return None
    return float(lo)


def _weights(u: Interval, w: Interval) -> Interval:
    """An enclosure of ``t = |u| / (|u| + |w|)`` for values of one sign in ``u`` and ``w`` (outward, within [0, 1]).

    ``t`` is smallest at the smallest ``|u|`` and the largest ``|w|``, and largest the other way round. Where it is
    undefined (``0 / 0``, ``inf / inf``) the end falls back to 0 or 1, the hull's weight.
    """
    with iv.errstate(all="ignore"):
        mig_u = np.where(u[0] > 0, u[0], np.where(u[1] < 0, -u[1], 0.0))
        mig_w = np.where(w[0] > 0, w[0], np.where(w[1] < 0, -w[1], 0.0))
        mag_u, mag_w = np.maximum(np.abs(u[0]), np.abs(u[1])), np.maximum(np.abs(w[0]), np.abs(w[1]))
        lo = mig_u / (mig_u + mag_w) * (1 - 4 * _EPS)
        hi = mag_u / (mag_u + mig_w) * (1 + 4 * _EPS)
    lo = np.where(np.isfinite(lo), np.clip(lo, 0.0, 1.0), 0.0)
    hi = np.where(np.isfinite(hi), np.clip(hi, 0.0, 1.0), 1.0)
    return lo, np.maximum(lo, hi)


def _convex(ga: Interval, gb: Interval, t: Interval) -> Interval:
    """``{t x + (1 - t) y : x in ga, y in gb, t in t}`` (outward), within the hull of ``ga`` and ``gb``.

    For fixed ``t`` the set is ``[t ga_lo + (1 - t) gb_lo, t ga_hi + (1 - t) gb_hi]``, each end linear in ``t``: its
    extremes over ``t`` are at the ends of ``t``. Round-off is padded absolutely (the two products may cancel); a
    NaN end (``0 * inf``) or an infinite operand end keeps the hull's.
    """
    h = iv.hull(ga, gb)
    t0, t1 = t
    with iv.errstate(all="ignore"):
        ends = []
        for x, y in ((ga[0], gb[0]), (ga[1], gb[1])):
            p0, q0 = t0 * x, (1 - t0) * y
            p1, q1 = t1 * x, (1 - t1) * y
            pad = 4 * _EPS * np.maximum(np.abs(p0) + np.abs(q0), np.abs(p1) + np.abs(q1))
            ends.append((p0 + q0, p1 + q1, pad))
        lo = np.minimum(ends[0][0], ends[0][1]) - ends[0][2]
        hi = np.maximum(ends[1][0], ends[1][1]) + ends[1][2]
    lo = np.where(np.isfinite(lo), np.maximum(lo, h[0]), h[0])
    hi = np.where(np.isfinite(hi), np.minimum(hi, h[1]), h[1])
    return lo, hi


def _add(a: _Node, b: _Node, sign: float) -> _Node:
    bv = b.v if sign > 0 else iv.ineg(b.v)
    v = iv.iadd(a.v, bv)
    keys = _keys(a, b)
    d: dict[int, Interval] = {}
    g: dict[int, Interval] = {}
    with iv.errstate(invalid="ignore"):
        same = ((a.v[0] >= 0) & (bv[0] >= 0)) | ((a.v[1] <= 0) & (bv[1] <= 0))
        same = same | ((_sgn(a) != 0) & (_sgn(a) == _sgn(b) * sign))
    t = _weights(a.v, bv) if WEIGHTED_SUMS else None
    for j in keys:
        db = _dof(b, j)
        d[j] = iv.iadd(_dof(a, j), db if sign > 0 else iv.ineg(db))
        # log|u + w| = weighted mean of log|u|, log|w| (weights u / (u + w) in [0, 1]) where u, w share a sign
        ga, gb = _get(a.g, j), _get(b.g, j)
        g[j] = _mask(iv.hull(ga, gb) if t is None else _convex(ga, gb, t), same)
    sa, sb = _sgn(a), _sgn(b) * sign
    return _finish(v, g, d, sign=np.where(sa == sb, sa, 0))


def _mul(a: _Node, b: _Node) -> _Node:
    v = iv.imul(a.v, b.v)
    g: dict[int, Interval] = {}
    d: dict[int, Interval] | None = {} if a.dx or b.dx else None
    for j in _keys(a, b):
        g[j] = iv.iadd(_get(a.g, j), _get(b.g, j))
        if d is not None:
            d[j] = iv.iadd(iv.imul(_dof(a, j), b.v), iv.imul(a.v, _dof(b, j)))
    return _finish(v, g, d, sign=_sgn(a) * _sgn(b))


def _div(a: _Node, b: _Node) -> _Node:
    ok = _strict(b.v) | (_sgn(b) != 0)
    with np.errstate(over="ignore"):
        rb = _mask(iv.irecip(b.v), ok)
    v = iv.imul(a.v, rb)
    g: dict[int, Interval] = {}
    d: dict[int, Interval] | None = {} if a.dx or b.dx else None
    for j in _keys(a, b):
        g[j] = iv.isub(_get(a.g, j), _get(b.g, j))
        if d is not None:
            d[j] = iv.imul(iv.isub(_dof(a, j), iv.imul(v, _dof(b, j))), rb)
    return _finish(v, g, d, ok, _sgn(a) * _sgn(b))


def _ratio(gen: _Node, na: _Node, nb: _Node, coef: tuple[float, float, float, float]) -> _Node:
    """``gen`` (a quotient by the general rule) met with :mod:`opgraph.dcg.mobius`'s enclosures (never wider).

    The quotient is ``(alpha a + beta b) / (gamma a + delta b)`` of the nodes ``na``, ``nb``: its value is monotone in
    ``r = a / b`` and ``D_j = K psi(r) (G_a,j - G_b,j)``, where both ``a`` and ``b`` are known positive.
    """
    with iv.errstate(invalid="ignore"):
        ok = ((na.v[0] > 0) | (_sgn(na) > 0)) & ((nb.v[0] > 0) | (_sgn(nb) > 0))
    v, f = mobius.enclose(na.v, nb.v, ok, coef)
    d: dict[int, Interval] = {}
    for j in _keys(gen, na, nb):
        with iv.errstate(invalid="ignore", over="ignore"):
            dm = _mask(_w(iv.imul(f, iv.isub(_get(na.g, j), _get(nb.g, j)))), ok)
        d[j] = _meet(_dof(gen, j), dm)
    return _finish(_meet(gen.v, v), dict(gen.g), d, sign=gen.sign)


def _pow(a: _Node, q: float) -> _Node:
    integer = float(q).is_integer()
    sa = _sgn(a)
    ok = np.ones(np.shape(a.v[0]), dtype=bool) if integer and q > 0 else (_strict(a.v) | (sa != 0))
    if not integer:
        with iv.errstate(invalid="ignore"):
            ok = ok & ((a.v[0] > 0) | (sa > 0))
        sign = np.where(ok, 1, 0)
    else:
        sign = sa * sa if int(q) % 2 == 0 else sa
    v = _mask(iv.ipow_const(a.v, q), ok)
    g: dict[int, Interval] = {}
    d: dict[int, Interval] | None = None
    if a.dx:
        d = {}
        dq = iv.iscale(q, iv.ipow_const(a.v, q - 1)) if q != 1 else iv.point(np.ones(()))
    for j in _keys(a):
        g[j] = iv.iscale(q, _get(a.g, j))
        if d is not None:
            d[j] = iv.imul(dq, _dof(a, j))
    return _finish(v, g, d, ok, sign)


def _exp(a: _Node) -> _Node:
    with iv.errstate(over="ignore"):
        v = (np.exp(a.v[0]), np.exp(a.v[1]))
    g = {j: _dof(a, j) for j in _keys(a)}
    return _finish(v, g, None, sign=1)


def _log(a: _Node) -> _Node:
    with iv.errstate(invalid="ignore"):
        ok = (a.v[0] > 0) | (_sgn(a) > 0)
    with iv.errstate(all="ignore"):
        v = (np.log(np.where(ok, a.v[0], 1.0)), np.log(np.where(ok, a.v[1], 1.0)))
    d = {j: _get(a.g, j) for j in _keys(a)}
    return _finish(v, {}, d, ok)


def _input(
    j: int, k: int, lo: np.ndarray, hi: np.ndarray, log_coord: bool, wanted: bool = True, flat: bool = False
) -> _Node:
    shape = [1] * k
    shape[j] = lo.size
    if flat:  # a list of boxes: every input's cells along one axis (:mod:`opgraph.dcg.logsubbox`)
        shape = [lo.size]
    lo = np.asarray(lo, float)
    if log_coord:  # a law of positive support: its lowest cell is (0, t], no value at 0
        lo = np.maximum(lo, np.nextafter(0.0, 1.0))
    v = (lo.reshape(shape), np.asarray(hi, float).reshape(shape))
    one = iv.point(np.ones(()))
    if not wanted:
        return _finish(v, {}, None, sign=1 if log_coord else 0)
    if log_coord:
        return _finish(v, {j: one}, None, sign=1)  # D = V G = x: exact
    return _finish(v, {}, {j: one})


def elasticities(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray]],
    log: Sequence[bool],
    dims: set[int] | None = None,
    cache: dict[Any, Any] | None = None,
    state: Sequence[str] | None = None,
    flat: bool = False,
) -> tuple[Interval, dict[int, Interval]] | None:
    """The output's value enclosure and its elasticity enclosures per grid dimension, or None (unsupported op).

    Args:
        graph: The graph (:class:`opgraph.graph.Graph`), topologically ordered.
        output: The output node id.
        axes: Input node ids, one per grid dimension.
        cells: Per input node id, the lower and upper ends of its cells.
        log: Per grid dimension, whether its coordinate is ``log x`` (else ``x``).
        dims: The grid dimensions whose elasticities are wanted (all when None).
        cache: Nodes kept between calls on the same slab: a node none of whose grid dimensions is wanted, and whose
            dimensions' cells are in the same ``state`` as in an earlier call, is taken from it.
        state: Per grid dimension, a label of the cells passed (equal labels: equal cells); needed with ``cache``.
        flat: Whether the cells are a list of boxes (every input's arrays of one length, box ``b`` made of entry
            ``b`` of each) instead of the product grid of the inputs' cells.

    Returns:
        ``(V, G)``: ``V`` the output's enclosure per box, ``G[j]`` the enclosure of ``d log|f| / d u_j`` per box
        (arrays broadcastable to the grid shape).
    """
    k = len(axes)
    dim = {a: j for j, a in enumerate(axes)}
    need: set[int] = set()
    stack = [output]
    while stack:
        i = stack.pop()
        if i in need:
            continue
        need.add(i)
        stack.extend(graph.nodes[i].inputs)
    last: dict[int, int] = {}
    for i, n in enumerate(graph.nodes):
        if i in need:
            for x in n.inputs:
                last[x] = i
    mob = mobius.plan(graph, need) if MOBIUS else {}
    for i, (a, b, *_) in mob.items():  # the ratio rule reads its base nodes: keep them until then
        last[a] = max(last.get(a, i), i)
        last[b] = max(last.get(b, i), i)
    with np.errstate(over="ignore"):
        return _walk(graph, output, need, last, dim, cells, log, dims, k, cache, state, mob, flat)


def _walk(
    graph: Any,
    output: int,
    need: set[int],
    last: dict[int, int],
    dim: dict[int, int],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray]],
    log: Sequence[bool],
    dims: set[int] | None,
    k: int,
    cache: dict[Any, Any] | None = None,
    state: Sequence[str] | None = None,
    mob: Mapping[int, tuple[int, int, float, float, float, float]] | None = None,
    flat: bool = False,
) -> tuple[Interval, dict[int, Interval]] | None:
    vals: dict[int, _Node] = {}
    deps: dict[int, frozenset[int]] = {}
    for i, n in enumerate(graph.nodes):
        if i not in need:
            continue
        op = n.op
        deps[i] = frozenset([dim[i]]) if op == "input" and i in dim else frozenset().union(*(deps[x] for x in n.inputs))
        key = None
        if cache is not None and state is not None and (dims is not None and not (deps[i] & dims)):
            key = (i, tuple((jj, state[jj]) for jj in sorted(deps[i])))
            if key in cache:
                vals[i] = cache[key]
                continue
        if op == "input":
            if i not in dim:
                return None
            j = dim[i]
            lo, hi = cells[i]
            vals[i] = _input(j, k, lo, hi, bool(log[j]), dims is None or j in dims, flat)
            continue
        if op == "const":
            c = np.asarray(n.attrs["value"], dtype=float)
            if c.ndim:
                return None
            vals[i] = _Node(iv.point(c), {}, {}, np.sign(c))
            continue
        if op not in OPS:
            return None
        args = [vals[x] for x in n.inputs]
        if op in ("identity", "pos"):
            vals[i] = args[0]
        elif op == "neg":
            a = args[0]
            vals[i] = _Node(
                iv.ineg(a.v),
                dict(a.g),
                None if a.d is None else {j: iv.ineg(x) for j, x in a.d.items()},
                -_sgn(a),
                a.dx,
            )
        elif op in ("add", "sub"):
            vals[i] = _add(args[0], args[1], 1.0 if op == "add" else -1.0)
        elif op == "mul":
            vals[i] = _mul(args[0], args[1])
        elif op == "div":
            vals[i] = _div(args[0], args[1])
            if mob and i in mob:
                a, b, *coef = mob[i]
                vals[i] = _ratio(vals[i], vals[a], vals[b], tuple(coef))  # type: ignore[arg-type]
        elif op == "pow":
            q = _const_of(args[1])
            if q is None:
                return None
            vals[i] = _pow(args[0], q)
        elif op == "sqrt":
            vals[i] = _pow(args[0], 0.5)
        elif op == "square":
            vals[i] = _pow(args[0], 2.0)
        elif op == "reciprocal":
            vals[i] = _pow(args[0], -1.0)
        elif op == "exp":
            vals[i] = _exp(args[0])
        elif op == "log":
            vals[i] = _log(args[0])
        if key is not None:
            cache[key] = vals[i]  # type: ignore[index]
        for x in n.inputs:
            if last.get(x) == i and x != output:
                vals.pop(x, None)  # past its last use: bounded memory on large grids
    out = vals[output]
    return _mask(out.v, _strict(out.v) | (_sgn(out) != 0)), out.g


def _log_seg(mu: float, s: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log P(a < Z < b)`` for ``Z ~ N(mu, s^2)`` (elementwise, accurate in both tails; ``-inf`` if empty).

    ``log(Phi(hi) - Phi(lo))`` after mirroring a segment of the upper half into the lower one (the same conditioning
    as ``log Phi(hi) + log1p(-Phi(lo) / Phi(hi))``, at half the cost); where ``Phi(hi)`` is below 1e-280 (far lower
    tail) the ``log_ndtr`` form.
    """
    x, y = (a - mu) / s, (b - mu) / s
    flip = x > 0  # both in the upper tail: use the mirrored lower tail, P(-y < Z' < -x)
    lo = np.where(flip, -y, x)
    hi = np.where(flip, -x, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ph = sc.ndtr(hi)
        out = np.log(np.maximum(ph - sc.ndtr(lo), 0.0))
        far = ~(ph > 1e-280)
        if np.any(far):
            lo_f, hi_f = np.broadcast_arrays(lo, hi)
            lo_f, hi_f = np.broadcast_to(lo_f, out.shape)[far], np.broadcast_to(hi_f, out.shape)[far]
            lh, ll = sc.log_ndtr(hi_f), sc.log_ndtr(lo_f)
            out = np.array(out, dtype=float, copy=True)
            out[far] = lh + np.log1p(-np.exp(np.minimum(ll - lh, 0.0)))
        return out


def log_factor(
    mu: float, s: float, a: np.ndarray, b: np.ndarray, c: np.ndarray, lam: np.ndarray, lam_dn: np.ndarray | None = None
) -> np.ndarray:
    """``log( E[e^{L(Z) |Z - c|}; a < Z < b] / P(a < Z < b) )`` for ``Z ~ N(mu, s^2)``, ``a <= c <= b`` (elementwise).

    ``L = lam`` above ``c`` and ``lam_dn`` below it (``lam`` on both sides when None). The two sides in closed form:
    ``E[e^{lam (Z - c)}; c < Z < b] = e^{lam (mu - c) + lam^2 s^2 / 2} P(c < Z' < b)`` with ``Z' ~ N(mu + lam s^2,
    s^2)``, and likewise below ``c`` with ``-lam_dn``.
    """
    ld = lam if lam_dn is None else lam_dn
    up = lam * (mu - c) + 0.5 * lam * lam * s * s + _log_seg(mu + lam * s * s, s, c, b)
    dn = -ld * (mu - c) + 0.5 * ld * ld * s * s + _log_seg(mu - ld * s * s, s, a, c)
    return np.logaddexp(up, dn) - _log_seg(mu, s, a, b)


def box_bound(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    pt: np.ndarray,
    wbox: np.ndarray,
    shape: tuple[int, ...],
    pt_err: np.ndarray | float = 0.0,
    linear: dict[str, Any] | None = None,
) -> np.ndarray | None:
    """Per-box upper bound on ``E[|f(X) - pt|; box]`` (grid shape), ``inf`` where it does not apply; or None.

    Args:
        graph: The (restricted) graph.
        output: Its output node id.
        axes: Input node ids, one per grid dimension.
        laws: Per input node id, its law (LogNormal or Normal; any other gives None).
        cells: Per input node id, ``(lo, hi, atoms)`` of its cells.
        pt: The computed output at the boxes' atoms (broadcastable to ``shape``).
        wbox: The boxes' masses (broadcastable to ``shape``).
        shape: The grid shape.
        pt_err: A bound on ``|f(x') - pt|`` per box (rounding of the computed value).
        linear: Where a dict is given (and the centred bound runs), it receives the log-linear box models of
            :func:`opgraph.dcg.loglinear.models` on the same leg enclosures: ``"c"`` (per axis, the u-coefficients,
            grid shape) and ``"rest"`` (per box, the conditional remainder; ``inf`` where not modelled).

    Returns:
        The per-box bound, or None when some input's law or some op has no rule here.
    """
    if not axes or any(a not in laws or not applicable(laws[a]) for a in axes):
        return None
    if any(op not in OPS and op not in ("input", "const") for op in _ops(graph, output)):
        return None
    n0 = int(shape[0])
    half = math.prod(shape) <= HALF_CELLS_MAX_BOXES
    per = max(1, int(MAX_BOXES // max(1, math.prod(shape[1:]))))
    pt_b = np.broadcast_to(pt, shape)
    w_b = np.broadcast_to(wbox, shape)
    e_b = np.broadcast_to(np.asarray(pt_err, dtype=float), shape)
    order0 = path_order(graph, output, axes, laws, cells) if ORDER_BY_SCALE else None
    parts = []
    lins: list[dict[str, Any]] = []
    for start in range(0, n0, per):  # slices of the first axis: bounded memory, the same per-box values
        sl = slice(start, min(n0, start + per))
        sub = dict(cells)
        a0 = axes[0]
        sub[a0] = tuple(np.asarray(x)[sl] for x in cells[a0])  # type: ignore[assignment]
        lin: dict[str, Any] | None = {} if linear is not None else None
        part = _slab(
            graph,
            output,
            axes,
            laws,
            sub,
            pt_b[sl],
            w_b[sl],
            e_b[sl],
            (sl.stop - sl.start, *shape[1:]),
            half,
            order0,
            lin,
        )
        if part is None:
            return None
        parts.append(part)
        if lin is not None:
            lins.append(lin)
    if linear is not None and lins and all("rest" in x for x in lins):
        linear["rest"] = np.concatenate([x["rest"] for x in lins], axis=0)
        linear["c"] = {a: np.concatenate([x["c"][j] for x in lins], axis=0) for j, a in enumerate(axes)}
        linear["order"] = list(order0) if order0 is not None else list(range(len(axes)))
        linear["pt_err"] = e_b
    return np.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def path_order(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> list[int]:
    """The order in which the path moves the grid dimensions: largest ``|dh/du_j| sigma_j`` first.

    ``dh/du_j`` is enclosed at the central box's atom (one point pass; the midpoint of the enclosure, 0 where it is
    not finite) and ``sigma_j`` is the scale of the dimension's Normal coordinate. A dimension moved early has its
    slope enclosed while fewer of the others range over their cells, so the dimensions that move the output most go
    first (DampedOsc's 7^7 grid: 1.41 -> 1.32 std against the grid's order). Any order gives a valid bound.
    """
    k = len(axes)
    log = [isinstance(laws[a], LogNormal) for a in axes]
    mid = {}
    for a in axes:
        at = np.asarray(cells[a][2], dtype=float)
        c = at[at.size // 2 : at.size // 2 + 1]
        mid[a] = (c, c)
    res = elasticities(graph, output, axes, mid, log)
    if res is None:
        return list(range(k))
    score = []
    for j, a in enumerate(axes):
        g = res[1].get(j)
        m = 0.0 if g is None else float(np.ravel((np.asarray(g[0]) + np.asarray(g[1])) / 2)[0])
        score.append(abs(m) * _params(laws[a])[1] if math.isfinite(m) else 0.0)
    return sorted(range(k), key=lambda j: -score[j])


def _ops(graph: Any, output: int) -> set[str]:
    seen: set[int] = set()
    stack = [output]
    while stack:
        i = stack.pop()
        if i not in seen:
            seen.add(i)
            stack.extend(graph.nodes[i].inputs)
    return {graph.nodes[i].op for i in seen}


def _slab(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    pt: np.ndarray,
    wbox: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
    half_cells: bool = True,
    order0: Sequence[int] | None = None,
    linear: dict[str, Any] | None = None,
) -> np.ndarray | None:
    """:func:`box_bound` on one slab of the grid (``cells`` of the first axis restricted to it).

    ``linear``: filled with the slab's log-linear models (``"c"`` per grid dimension, ``"rest"``) where given.
    """
    log = [isinstance(laws[a], LogNormal) for a in axes]
    k = len(axes)
    best = None
    for order in (list(order0) if order0 is not None else list(range(k)),):  # one order (see :func:`path_order`)
        # The path from the atom u' to u moves one coordinate at a time, in ``order``: while dimension j moves, the
        # dimensions before it sit anywhere in their cells and those after it at their atoms, so L_j is the
        # supremum of |d h / d u_j| over that (smaller) box.
        lam: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        sig: dict[int, tuple[Interval, Interval]] = {}  # the signed enclosures, for :mod:`opgraph.dcg.centredlog`
        v = None
        cache: dict[Any, Any] = {}  # nodes that do not depend on the moving dimension, by the state of their cells
        for pos, j in enumerate(order):
            moved = set(order[: pos + 1])
            cj = {}
            state = []
            for jj, a in enumerate(axes):
                lo, hi, at = (np.asarray(x, dtype=float) for x in cells[a])
                cj[a] = (lo, hi) if jj in moved else (at, at)
                state.append("f" if jj in moved else "a")
            if pos == k - 1:
                res = elasticities(graph, output, axes, cj, log, set(), cache, state)
                if res is None:
                    return None
                v = res[0]  # the whole box: the sign condition
            # The leg of dimension j stays on one side of its atom: the half-cell below it, or the one above it
            # (on grids over HALF_CELLS_MAX_BOXES, one pass over the whole cell: half the cost).
            lo, hi, at = (np.asarray(x, dtype=float) for x in cells[axes[j]])
            pair = []
            spair = []
            legs = (("l", (lo, at)), ("u", (at, hi))) if half_cells else (("f", (lo, hi)),)
            for label, half in legs:
                cj[axes[j]] = half
                state[j] = label
                res = elasticities(graph, output, axes, cj, log, {j}, cache, state)
                if res is None:
                    return None
                gj = res[1][j] if j in res[1] else _zero()
                spair.append(gj)
                pair.append(iv.mag(gj))
            lam[j] = (pair[0], pair[-1])
            sig[j] = (spair[0], spair[-1])
        assert v is not None
        if linear is not None:  # the log-linear models' slopes: the gradient at the atoms (a point pass)
            pres = elasticities(graph, output, axes, {a: (cells[a][2], cells[a][2]) for a in axes}, log)
            linear["centre"] = None if pres is None else [pres[1].get(j, _zero()) for j in range(k)]
        b = _bound(axes, laws, cells, log, lam, v, pt, wbox, pt_err, shape)
        if centredlog.ENABLED.get():  # per box the smaller of the two (never worse), where it may matter
            sel = centredlog.select(wbox, shape)
            b = np.minimum(b, _centred(axes, laws, cells, log, sig, v, pt, wbox, pt_err, shape, sel, linear))
        best = b if best is None else np.minimum(best, b)
    return best


#: Largest ``L * sigma`` (Lipschitz constant of ``log|f|`` in the Normal coordinate times its scale) whose closed-form
#: factor is trusted; a larger one makes the box keep the engine's bound (see :func:`_bound`).
LS_MAX = 50.0


def _params(law: Distribution) -> tuple[float, float]:
    """``(mu, sigma)`` of the Normal coordinate: ``log X`` of a LogNormal, ``X`` of a Normal."""
    if isinstance(law, LogNormal):
        return float(law.mu), float(law.sigma)
    return float(law.loc), float(law.scale)  # type: ignore[attr-defined]


def _centred(
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    log: Sequence[bool],
    sig: Mapping[int, tuple[Interval, Interval]],
    v: Interval,
    pt: np.ndarray,
    wbox: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
    sel: np.ndarray | None = None,
    linear: dict[str, Any] | None = None,
) -> np.ndarray:
    """:func:`opgraph.dcg.centredlog.bound` on the cells in their Normal coordinates (``inf`` where unsigned).

    Where ``linear`` is a dict, also the log-linear models of :func:`opgraph.dcg.loglinear.models` on the same
    enclosures and boxes (``"c"``: a list per grid dimension, ``"rest"``).
    """
    k = len(axes)
    dims = []
    with np.errstate(divide="ignore"):
        for j, a in enumerate(axes):
            lo, hi, at = (np.asarray(x, dtype=float) for x in cells[a])
            if log[j]:
                lo, hi, at = np.log(np.maximum(lo, 0.0)), np.log(hi), np.log(at)
            sh = [1] * k
            sh[j] = at.size
            dims.append((*_params(laws[a]), lo.reshape(sh), hi.reshape(sh), at.reshape(sh)))
    if linear is not None:
        from opgraph.dcg import loglinear

        centre = linear.pop("centre", None)
        linear["c"], linear["rest"] = loglinear.models(dims, sig, _strict(v), pt, pt_err, shape, LS_MAX, sel, centre)
    return centredlog.bound(dims, sig, _strict(v), pt, wbox, pt_err, shape, LS_MAX, sel)


def _bound(
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    log: Sequence[bool],
    lams: Mapping[int, tuple[np.ndarray, np.ndarray]],
    v: Interval,
    pt: np.ndarray,
    wbox: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
) -> np.ndarray:
    """The per-box bound from the Lipschitz constants ``lams`` of ``log|f|`` per dimension (``inf`` where unsigned)."""
    k = len(axes)
    total = np.zeros(shape)
    with np.errstate(all="ignore"):
        for j, a in enumerate(axes):
            law = laws[a]
            lo, hi, at = (np.asarray(x, dtype=float) for x in cells[a])
            mu, s = _params(law)
            if log[j]:
                lo, hi, at = np.log(np.maximum(lo, 0.0)), np.log(hi), np.log(at)
            sh = [1] * k
            sh[j] = at.size
            ldn, lup = (np.broadcast_to(x, shape) for x in lams[j])
            lf = log_factor(mu, s, lo.reshape(sh), hi.reshape(sh), at.reshape(sh), lup, ldn)
            # The closed form cancels terms of size (L s)^2 / 2: past LS_MAX it loses every digit (a Normal N(3e-72, 1)
            # cell starting at 3e-72 has L = 3e71 and came out as log-factor -0.0996). The factor is >= 1 (log >= 0).
            bad = np.isnan(lf) | (lf < 0) | (np.maximum(lup, ldn) * s > LS_MAX)
            total += np.where(bad, _INF, lf)
        apt = np.abs(pt)
        out = apt * np.expm1(total) * (1 + PAD) + PAD * k * apt
        out = out * wbox + np.abs(pt_err) * wbox
    ok = np.broadcast_to(_strict(v), shape)
    out = np.where(ok & np.isfinite(out), out, _INF)
    return np.where(wbox == 0, 0.0, out)


def apply(ev: Any, graph: Any, val: Any, box_bound: np.ndarray, attr: dict[str, float]) -> tuple[np.ndarray, Any, Any]:
    """Per box the smaller of the engine's bound and :func:`box_bound` (called by the engine after the Taylor pass).

    Only on plain grids whose axes are all exact inputs of a law with a rule here (no compression, grid-free
    extreme, chunk or previous result; the same conditions as the Taylor pass). The attribution is rescaled to the
    new total. Returns the bound, the attribution and a summary (None where the pass did not run).

    Where the box-linear mixture is on and :mod:`opgraph.dcg.loglinear` wants models on this grid, the pass also
    leaves ``ev.log_linear`` (the cells and laws in the Normal coordinates and the models), for
    :func:`opgraph.dcg.loglinear.answer`; else ``ev.log_linear`` is None.
    """
    ev.log_linear = None
    axes = tuple(val.axes)
    if not ENABLED.get() or not axes or ev.reducer is not None or ev.compressions or ev.extremes or ev.tiny:
        return box_bound, attr, None
    laws: dict[int, Distribution] = {}
    for a in axes:
        n = graph.nodes[a] if 0 <= a < len(graph.nodes) else None
        if n is None or n.op != "input" or a not in ev.axes:
            return box_bound, attr, None
        name = n.attrs["name"]
        if ev.quantized[name].upstream_w1 > 0 or name not in ev.dists or not applicable(ev.dists[name]):
            return box_bound, attr, None
        laws[a] = ev.dists[name]
    if _ops(graph, ev.output) - OPS - {"input", "const"}:
        return box_bound, attr, None
    t0 = time.process_time()
    shape = ev._shape(axes)
    box = np.broadcast_to(box_bound, shape)
    memo = ev.__dict__.setdefault("_elastic_memo", {})
    key = (id(graph), ev.output, axes)
    if key in memo:  # the same grid bounded again (before / after the sub-cell pass): computed once
        eb, ev.log_linear = memo[key] if memo[key] is not None else (None, None)
        return _take(box_bound, attr, box, eb, t0) if eb is not None else (box_bound, attr, None)
    cells = {a: (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes}
    pt = np.broadcast_to(np.asarray(val.pt, dtype=float), shape)
    wbox = np.broadcast_to(ev._wbox(axes), shape)
    from opgraph.dcg import loglinear

    want_models = loglinear.wanted(math.prod(shape), len(axes))
    if math.prod(shape) >= PROBE_MIN_BOXES and not want_models:
        # Cost guard: the cells at PROBE_AT of each axis first (at most 2 ** k boxes); skip unless it gains there.
        # Not where the log-linear models are wanted: their gain is the mixture's, which the probe's point-mass
        # bounds do not measure (a Taylor pass that already won the probe's boxes hid a 4x tighter mixture).
        pick = [np.unique(np.clip((np.asarray(PROBE_AT) * m).astype(int), 0, m - 1)) for m in shape]
        sel = np.ix_(*pick)
        pc = {a: tuple(np.asarray(x)[pick[j]] for x in cells[a]) for j, a in enumerate(axes)}
        pshape = tuple(p.size for p in pick)
        pb = _with_err(graph, ev.output, axes, laws, pc, pt[sel], wbox[sel], pshape)
        before = float(np.sum(box[sel]))
        gain = 1.0 - float(np.sum(np.minimum(box[sel], pb))) / before if pb is not None and before > 0 else 0.0
        if not gain >= PROBE_MIN_GAIN:
            memo[key] = None
            return box_bound, attr, {"skipped": f"probe gain {gain:.3g} < {PROBE_MIN_GAIN}"}
    lin: dict[str, Any] | None = {} if want_models else None
    eb = _with_err(graph, ev.output, axes, laws, cells, pt, wbox, shape, lin)
    if eb is not None and lin and "rest" in lin:
        from opgraph.dcg import logsubbox

        order, err = lin.pop("order"), lin.pop("pt_err")
        held = np.array(np.minimum(box, eb), dtype=float)  # the boxes' bounds so far: lowered in place
        got = logsubbox.refine(graph, ev.output, axes, laws, cells, order, pt, err, wbox, shape, lin, held)
        if got is not None:
            lin["sub_box"] = got
            eb = held
        ev.log_linear = loglinear.package(axes, laws, cells, lin)
    memo[key] = (eb, ev.log_linear) if eb is not None else None
    if eb is None:
        return box_bound, attr, None
    return _take(box_bound, attr, box, eb, t0)


def _with_err(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Distribution],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    pt: np.ndarray,
    wbox: np.ndarray,
    shape: tuple[int, ...],
    linear: dict[str, Any] | None = None,
) -> np.ndarray | None:
    """:func:`box_bound` with ``pt``'s rounding error from an outward-rounded interval pass at the atoms."""
    at = elasticities(graph, output, axes, {a: (c[2], c[2]) for a, c in cells.items()}, [False] * len(axes), set())
    if at is None:
        return None
    with np.errstate(invalid="ignore"):
        err = np.maximum(pt - at[0][0], at[0][1] - pt)
    err = np.where(np.isfinite(err), np.maximum(err, 0.0), _INF)
    return box_bound_fn(graph, output, axes, laws, cells, pt, wbox, shape, err, linear)


def _take(
    box_bound: np.ndarray, attr: dict[str, float], box: np.ndarray, eb: np.ndarray, t0: float
) -> tuple[np.ndarray, Any, Any]:
    """Per box the smaller bound; the attribution rescaled to the new total; the summary."""
    old_total = float(np.sum(box))
    new = np.minimum(box, eb)
    new_total = float(np.sum(new))
    info = {"before": old_total, "after": new_total, "boxes": float(np.mean(eb < box)), "cpu_s": 0.0}
    if new_total < old_total:
        base = float(sum(attr.values())) if attr else math.nan
        if math.isfinite(base) and base > 0:
            attr = {k: v * new_total / base for k, v in attr.items()}
        elif math.isfinite(new_total):
            attr = {"log-space first order (elastic)": new_total}
        box_bound = new
    info["cpu_s"] = time.process_time() - t0
    return box_bound, attr, info


box_bound_fn = box_bound
