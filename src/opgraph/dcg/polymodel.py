"""Polynomial box models of long polynomial programs: the box-linear mixture's remainder without wrapping.

On a 1,000-step Euler oscillator (``benchmarks/dcg/uq.py`` case ODE-osc) every enclosure that carries a box's
nonlinear error as *independent* symbols or radii wraps: the folded affine gradient forms of the lean Taylor pass
(:mod:`opgraph.dcg.longmix`) were 440 wide (median over the 8-atom boxes' thin walk boxes) where ``df/dw`` ranges
over about 2, so the lean pass stopped and the case never got the mixture. The nonlinear error there is a function
of the box's few coordinates (``e_w^2``, ``e_w^3``, ...): kept as *coefficients* of a polynomial in the box's noise
coordinates it turns with the recurrence exactly (a linear map of coefficients), and only the truncation beyond
:data:`DEGREE` goes to a radius (tiny: the coefficients fall like ``(h t)^j / j!``).

**Model.** On a box ``B`` with cell centres ``m_i`` and half-widths ``h_i`` (rounded up: ``[lo, hi]`` inside ``m +-
h``), ``e_i = (x_i - m_i) / h_i`` lies in ``[-1, 1]``. Every node carries ``P(e) = sum_alpha p_alpha e^alpha`` (total
degree at most :data:`DEGREE`) and ``r >= 0`` with ``v(x) in P(e(x)) + [-r, r]`` for every ``x`` in ``B``. Inputs are
exact (``m_i + h_i e_i``); sums add coefficients and radii; products convolve, moving every monomial above the degree
into the radius by ``|p_alpha|`` (``|e^alpha| <= 1``), with ``r = |A| r_B + |B| r_A + r_A r_B`` (``|A| = sum |a_alpha|``
bounds ``|P_A|`` on the box); each operation pads ``r`` by ``2^-44`` times the sum of the magnitudes it added
(floating-point rounding of at most a few hundred terms). Other ops are not modelled (:func:`rest` returns ``None``).

**Theorem (remainder of the mixture from a polynomial model).** With ``x'`` the box's atom, ``e' = e(x')``, ``u = e -
e'``, ``Q(u) = P(e' + u) = sum_beta q_beta u^beta`` (``P`` re-expanded at ``e'``), ``V'`` the computed value at the atom
and ``c`` any slopes, ``E[|f(X) - V' - c . d| | B] <= |q_0 - V'| + sum_i |q_i - c_i h_i| E|u_i| + sum_{|beta| >= 2}
|q_beta| prod_i M_i(beta_i) + r``, with ``M_i(0) = 1``, ``M_i(1) = E|u_i| = E|d_i| / h_i``, ``M_i(j) = E[u_i^2] U_i^(j -
2)`` for ``j >= 2`` (``E[u_i^2] = E[d_i^2] / h_i^2``, ``U_i = 1 + |e'_i| >= |u_i|``). *Proof.* ``f(X) = P(e(X)) + rho``
with ``|rho| <= r``, and ``d_i = h_i u_i``, so ``f(X) - V' - c . d = (q_0 - V') + sum_i (q_i - c_i h_i) u_i + sum_{|beta|
>= 2} q_beta u^beta + rho``; take absolute values term by term and the expectation on the box, where the coordinates
are independent (``E|u^beta| = prod_i E|u_i|^beta_i``) and ``|u_i|^j <= u_i^2 U_i^(j - 2)``. The re-expansion's
rounding and that of ``e'`` are padded (``2^-40`` times the magnitudes involved).

Used by the lean Taylor pass (:func:`opgraph.dcg.taylor.box_bound` with ``lean``) per box as the minimum with the
slope form's remainder; boxes with an unbounded cell (Normal tails) get ``inf`` here and keep the other bounds.
``ENABLED`` (ContextVar, switch ``poly_model`` in :mod:`opgraph.dcg.switches`) turns it off.
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.dcg import affine as af
from opgraph.dcg import intervals as iv

#: Whether the lean pass tries the polynomial box models (``ENABLED.set(False)`` or the switch ``poly_model``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_polymodel", default=True)
#: Highest total degree kept (the coefficients of the ODEs fall like ``(h t)^j / j!``; 6 keeps the truncation of a
#: 4-atom ODE-osc box far below its quadratic term).
DEGREE = 6
#: Most input axes modelled (the monomials of degree <= DEGREE in k variables grow as ``C(DEGREE + k, k)``).
MAX_AXES = 3
#: Ops modelled exactly (identity-like: the operand's model).
_IDENTITY = frozenset({"identity", "copy", "contiguous", "convert"})
_OPS = _IDENTITY | {"input", "const", "add", "sub", "neg", "mul", "square"}
_PAD_OP = 2.0**-44
_PAD_END = 2.0**-40

Mono = tuple[int, ...]


class _Ctx:
    """The grid's axes: which cells are unbounded (per axis, laid out on the grid), and the degree kept."""

    def __init__(self, k: int, unb: list[Any], degree: int) -> None:
        self.k = k
        self.unb = unb  # per axis position: bool array (an unbounded cell: e = x - atom, no bound on |e|)
        self.any_unb = [bool(np.any(u)) for u in unb]
        self.degree = degree
        self.zero: Mono = (0,) * k


class _Poly:
    """``P(e) + R(e)`` on the boxes of a grid: ``P = sum_alpha p[alpha] e^alpha`` and ``|R(e)| <= rho(|e|)``.

    ``rho`` is a polynomial in ``|e|`` with non-negative coefficients, keyed by monomials with exponents 0 to 2: on
    a box it holds only monomials of unbounded axes (a bounded axis has ``|e_i| <= 1`` and is folded
    away, :func:`_fold`); ``rho[zero]`` is the plain radius.
    """

    __slots__ = ("_mag", "p", "rho")

    def __init__(self, p: dict[Mono, Any], rho: dict[Mono, Any]) -> None:
        self.p = p
        self.rho = rho
        self._mag: dict[Mono, Any] | None = None

    def mag(self, cx: _Ctx) -> dict[Mono, Any]:
        """A bound on ``|P(e)|`` as a polynomial in ``|e|`` (each monomial's ``|p_alpha| |e|^alpha``, folded)."""
        if self._mag is None:
            out: dict[Mono, Any] = {}
            for alpha, v in self.p.items():
                _fold(cx, out, alpha, np.abs(v))
            self._mag = out
        return self._mag

    def const(self) -> float | None:
        """The value where the model is a plain float constant with no remainder, else ``None``."""
        if self.rho or len(self.p) > 1:
            return None
        if not self.p:
            return 0.0
        (v,) = self.p.values()
        return float(v) if np.ndim(v) == 0 and next(iter(self.p)) == (0,) * len(next(iter(self.p))) else None


def _fold(cx: _Ctx, out: dict[Mono, Any], alpha: Mono, val: Any) -> None:
    """Add ``val |e|^alpha`` (``val >= 0``) to the |e|-polynomial ``out``, folded per box.

    On a box where axis ``i`` is bounded ``|e_i|^a <= 1``; where it is unbounded ``a <= 2`` is kept (higher powers of
    an unbounded coordinate give ``inf``: the moments used are ``E|d|`` and ``E[d^2]`` alone).
    """
    idx = [i for i, a in enumerate(alpha) if a > 0 and cx.any_unb[i]]
    for bits in range(1 << len(idx)):
        key = [0] * cx.k
        mask: Any = True
        v = val
        for j, i in enumerate(idx):
            if bits >> j & 1:
                key[i] = min(alpha[i], 2)
                mask = mask & cx.unb[i]
                if alpha[i] >= 3:
                    v = np.where(val > 0, np.inf, 0.0)
            else:
                mask = mask & ~cx.unb[i]
        t = v if mask is True else np.where(mask, v, 0.0)
        kt = tuple(key)
        out[kt] = out[kt] + t if kt in out else t


def _rsum(*parts: dict[Mono, Any]) -> dict[Mono, Any]:
    out: dict[Mono, Any] = {}
    for part in parts:
        for m, v in part.items():
            out[m] = out[m] + v if m in out else v
    return out


def _rscale(x: dict[Mono, Any], c: Any) -> dict[Mono, Any]:
    return {m: c * v for m, v in x.items()}


def _rmul(cx: _Ctx, x: dict[Mono, Any], y: dict[Mono, Any]) -> dict[Mono, Any]:
    """The product of two |e|-polynomials, folded (an unbounded coordinate squared: ``inf``)."""
    out: dict[Mono, Any] = {}
    for mx, vx in x.items():
        for my, vy in y.items():
            _fold(cx, out, tuple(a + b for a, b in zip(mx, my, strict=True)), vx * vy)
    return out


def _add(cx: _Ctx, x: _Poly, y: _Poly, sign: float) -> _Poly:
    p = dict(x.p)
    for m, v in y.p.items():
        p[m] = p[m] + sign * v if m in p else sign * v
    return _Poly(p, _rsum(x.rho, y.rho, _rscale(_rsum(x.mag(cx), y.mag(cx)), _PAD_OP)))


def _scale(cx: _Ctx, x: _Poly, c: float) -> _Poly:
    return _Poly(
        {m: c * v for m, v in x.p.items()}, _rsum(_rscale(x.rho, abs(c)), _rscale(x.mag(cx), _PAD_OP * abs(c)))
    )


def _mul(cx: _Ctx, x: _Poly, y: _Poly) -> _Poly:
    c_x, c_y = x.const(), y.const()
    if c_x is not None:
        return _scale(cx, y, c_x)
    if c_y is not None:
        return _scale(cx, x, c_y)
    p: dict[Mono, Any] = {}
    rho: dict[Mono, Any] = {}
    for mx, vx in x.p.items():
        dx = sum(mx)
        for my, vy in y.p.items():
            t = vx * vy
            m = tuple(a + b for a, b in zip(mx, my, strict=True))
            if dx + sum(my) > cx.degree:
                _fold(cx, rho, m, np.abs(t))  # the truncated monomial, bounded on the box
                continue
            p[m] = p[m] + t if m in p else t
    ax, ay = x.mag(cx), y.mag(cx)
    r = _rsum(rho, _rmul(cx, ax, y.rho), _rmul(cx, ay, x.rho), _rmul(cx, x.rho, y.rho))
    return _Poly(p, _rsum(r, _rscale(_rmul(cx, ax, ay), 4 * _PAD_OP)))


def applies(graph: Any, output: int, axes: Sequence[int]) -> bool:
    """Whether :func:`rest` can model ``output`` on a grid of ``axes`` (switch on, few axes, every op modelled)."""
    if not ENABLED.get() or not 0 < len(axes) <= MAX_AXES:
        return False
    for n in graph.nodes:
        if n.id > output:
            break
        if n.op not in _OPS:
            return False
    return True


def models(
    graph: Any,
    output: int,
    axes: Sequence[int],
    box: dict[int, tuple[np.ndarray, np.ndarray]],
    atoms: dict[int, np.ndarray],
    degree: int = DEGREE,
) -> tuple[_Poly, _Ctx, dict[int, np.ndarray], dict[int, np.ndarray]] | None:
    """The output's polynomial model on every box, with the coordinates' centres and scales; ``None`` if unsupported.

    A bounded cell ``[lo, hi]`` takes ``e = (x - m) / h`` (centre, half-width rounded up: ``|e| <= 1``); an unbounded
    cell (a Normal's tail) takes ``e = x - atom`` (``m`` = the atom, ``h = 1``, no bound on ``|e|``).

    Args:
        graph: The output's graph (input node ids are the axes).
        output: The output node's id.
        axes: The grid's axes (``box[a]`` and ``atoms[a]`` laid out to broadcast over them).
        box: Per axis the cells' ``(lo, hi)``.
        atoms: Per axis the atoms.
        degree: Highest total degree kept.
    """
    k = len(axes)
    if not k or k > MAX_AXES:
        return None
    pos = {a: i for i, a in enumerate(axes)}
    ms, hs, unb = {}, {}, []
    with iv.errstate(all="ignore"):
        for a in axes:
            m, h = af.half_widths(*box[a])
            x0 = np.asarray(atoms[a], dtype=float)
            ok = np.isfinite(m) & np.isfinite(h)
            u = ~ok & np.isfinite(x0)
            ms[a], hs[a] = np.where(ok, m, np.where(u, x0, 0.0)), np.where(ok, h, np.where(u, 1.0, np.inf))
            unb.append(u)
    cx = _Ctx(k, unb, degree)
    zero = cx.zero
    last = graph.last_uses()
    vals: dict[int, _Poly] = {}
    with iv.errstate(all="ignore"):
        for n in graph.nodes:
            if n.id > output:
                break
            if n.op == "input":
                if n.id not in pos:
                    return None
                one = tuple(1 if t == pos[n.id] else 0 for t in range(k))
                h = hs[n.id]
                bad = ~np.isfinite(h)
                rho = {zero: np.where(bad, np.inf, 0.0)} if np.any(bad) else {}
                vals[n.id] = _Poly({zero: ms[n.id], one: np.where(bad, 0.0, h)}, rho)
            elif n.op == "const":
                v = np.asarray(n.attrs["value"], dtype=float)
                if v.ndim:
                    return None
                vals[n.id] = _Poly({zero: float(v)}, {})
            else:
                xs = [vals[j] for j in n.inputs]
                if n.op in _IDENTITY and len(xs) == 1:
                    out = xs[0]
                elif n.op == "add" and len(xs) == 2:
                    out = _add(cx, xs[0], xs[1], 1.0)
                elif n.op == "sub" and len(xs) == 2:
                    out = _add(cx, xs[0], xs[1], -1.0)
                elif n.op == "neg" and len(xs) == 1:
                    out = _scale(cx, xs[0], -1.0)
                elif n.op == "mul" and len(xs) == 2:
                    out = _mul(cx, xs[0], xs[1])
                elif n.op == "square" and len(xs) == 1:
                    out = _mul(cx, xs[0], xs[0])
                else:
                    return None
                vals[n.id] = out
            for j in set(n.inputs):
                if last.get(j, math.inf) <= n.id and j != output:
                    vals.pop(j, None)
    return vals[output], cx, ms, hs


def rest(
    graph: Any,
    output: int,
    axes: Sequence[int],
    box: dict[int, tuple[np.ndarray, np.ndarray]],
    atoms: dict[int, np.ndarray],
    pt: Any,
    c: dict[int, Any],
    r1: dict[int, np.ndarray],
    r2: dict[int, np.ndarray],
    degree: int = DEGREE,
) -> np.ndarray | None:
    """Per box an upper bound on ``E[|f(X) - V' - c . d| | box]`` (module docstring), ``inf`` where unknown.

    Args:
        graph: The output's graph.
        output: The output node's id.
        axes: The grid's axes.
        box: Per axis the cells' ``(lo, hi)`` laid out on the grid.
        atoms: Per axis the atoms laid out on the grid.
        pt: The computed values ``V'`` at the atoms (broadcastable to the grid).
        c: Per axis the mixture's slopes (broadcastable to the grid).
        r1: Per axis ``E[|d|]`` given the cell (laid out on the grid).
        r2: Per axis ``E[d^2]`` given the cell.
        degree: Highest total degree kept.

    Returns:
        The bound laid out to broadcast on the grid, or ``None`` where the program has an op without a model.
    """
    got = models(graph, output, axes, box, atoms, degree)
    if got is None:
        return None
    poly, cx, ms, hs = got
    k = len(axes)
    with iv.errstate(all="ignore"):
        e0 = [(np.asarray(atoms[a], dtype=float) - ms[a]) / hs[a] for a in axes]
        # (an unbounded cell: e0 = 0 exactly, its coordinate has no bound: U = inf)
        e0 = [np.where(cx.unb[i], 0.0, np.where(np.isfinite(x), np.clip(x, -1.0, 1.0), 0.0)) for i, x in enumerate(e0)]
        big = [np.where(cx.unb[i], np.inf, 1.0 + np.abs(x)) for i, x in enumerate(e0)]
        # re-expand at e0: e^alpha = prod_i (e0_i + u_i)^alpha_i; ``size``: per monomial the magnitudes summed
        q: dict[Mono, Any] = {}
        size: dict[Mono, Any] = {}
        for alpha, v in poly.p.items():
            terms: list[tuple[Mono, Any]] = [((), v)]
            for i, ai in enumerate(alpha):
                nxt = []
                for mono, coef in terms:
                    for b in range(ai + 1):
                        nxt.append((mono + (b,), coef * math.comb(ai, b) * e0[i] ** (ai - b)))
                terms = nxt
            for mono, coef in terms:
                q[mono] = q[mono] + coef if mono in q else coef
                size[mono] = size[mono] + np.abs(coef) if mono in size else np.abs(coef)
        zero: Mono = (0,) * k
        eu = [np.asarray(r1[a], dtype=float) / hs[a] for a in axes]  # E|u_i|
        eu2 = [np.asarray(r2[a], dtype=float) / hs[a] ** 2 for a in axes]  # E[u_i^2]
        v0 = np.asarray(pt, dtype=float)
        tot = np.abs(q.get(zero, 0.0) - v0) + _PAD_END * (size.get(zero, 0.0) + np.abs(v0))
        for i, a in enumerate(axes):  # the linear terms (every axis: a zero coefficient still meets c_i)
            one = tuple(1 if t == i else 0 for t in range(k))
            ch = np.asarray(c[a], dtype=float) * hs[a]
            tot = (
                tot + np.abs(q.get(one, 0.0) - ch) * eu[i] + _PAD_END * (size.get(one, 0.0) + np.abs(ch)) * (1 + eu[i])
            )
        for mono, coef in q.items():
            if sum(mono) < 2:
                continue
            term = np.abs(coef) + _PAD_END * size[mono]
            for i, b in enumerate(mono):
                if b == 1:
                    term = term * eu[i]
                elif b == 2:
                    term = term * eu2[i]
                elif b > 2:
                    term = term * eu2[i] * big[i] ** (b - 2)
            tot = tot + term
        for mono, coef in poly.rho.items():  # E[rho(|e|)]: on a box rho holds unbounded coordinates only (e = d)
            term = coef
            for i, b in enumerate(mono):
                if b == 1:
                    term = term * eu[i]
                elif b == 2:
                    term = term * eu2[i]
            tot = tot + term
        tot = tot * (1 + 2.0**-40)
        return np.where(np.isfinite(tot), tot, np.inf)
