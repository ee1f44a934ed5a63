"""Product-form tail envelopes of a node of SEVERAL independent inputs on the cells of their joint grid.

:mod:`opgraph.dcg.envelope` bounds ``|F|`` on the tail cells of one input. A node of several inputs (``Kp / Mp``,
``x**a * y**b / z**c``) is unbounded on every box that touches a singular end or an infinite tail of one of them,
so its cellwise bound is ``inf`` there although ``E|F| < inf``. Here ``|F| <= sum_k c_k prod_i g_ki(x_i)`` on the
whole support, with ``g(x) = |x|^p`` or ``e^{a x}``: on a box ``B = prod_i C_i`` of independent inputs the moment
factorises,

    E[prod_i g_i(X_i); X in B] = prod_i E[g_i(X_i); X_i in C_i],

and each factor is a closed-form partial moment on a tail cell (:func:`opgraph.dcg.envelope.moment`) or at most
``max(g(lo), g(hi)) P(C_i)`` on a finite cell (``g`` is monotone on a cell of one sign). A box then costs

    E[|F - v|; B] <= min( m + |v| p,  m - v p + 2 (v - flo)^+ p,  m + v p + 2 (fhi - v)^+ p )

(``m`` the envelope's moment, ``p = P(B)``, ``[flo, fhi]`` the box's enclosure). Envelopes compose per op: sums
add, products multiply term by term, powers of one term are exact, ``(sum y_k)^q <= n^{max(q-1, 0)} sum y_k^q``
(``q > 0``). A reciprocal needs a positive LOWER monomial ``0 < low <= F``: an exact monomial is its own, a
product multiplies them, and a sum of nonnegative operands keeps one operand's (``u + w >= u`` for ``w >= 0``), so
``1 / (zt_p + zt_s) <= 1 / zt_p``; where both operands have one, the weighted AM-GM inequality
``u + w >= (u / th)^th (w / (1 - th))^(1 - th)`` (``th`` from the inputs' means) is tight near the typical point. Anything else (``exp`` and ``log`` of several inputs, a difference in a
denominator) gives ``None``: the bound stays whatever the other routes give.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from opgraph.dcg import logic

#: Most terms an envelope may carry (products of sums multiply term counts); beyond it the node gets none.
MAX_TERMS = 64

Factor = tuple[int, str, float]  # (axis, kind "power" | "exp", exponent)
Mono = tuple[float, tuple[Factor, ...]]  # c >= 0 times the product of its factors


@dataclass(frozen=True)
class MEnv:
    """``|F| <= sum(terms)`` on the support; ``low``: ``0 < low <= F`` (a monomial) or None; ``nonneg``: ``F >= 0``."""

    terms: tuple[Mono, ...]
    low: Mono | None = None
    nonneg: bool = False
    # Other envelopes of the same node (``|F| <= each``): a box may take the smallest moment (see :func:`_pow`).
    alts: tuple[MEnv, ...] = ()


def _mono_mul(s: Mono, u: Mono) -> Mono | None:
    acc: dict[int, tuple[str, float]] = {}
    for ax, kind, a in s[1] + u[1]:
        if ax in acc:
            k0, a0 = acc[ax]
            if k0 != kind:
                return None  # |x|^p e^{a x}: no closed-form partial moment
            acc[ax] = (kind, a0 + a)
        else:
            acc[ax] = (kind, a)
    facs = tuple((ax, k, a) for ax, (k, a) in sorted(acc.items()) if a != 0)
    return (s[0] * u[0], facs)


def _mono_pow(s: Mono, q: float) -> Mono:
    return (s[0] ** q, tuple((ax, k, a * q) for ax, k, a in s[1]))


def _merge(terms: list[Mono]) -> tuple[Mono, ...] | None:
    acc: dict[tuple[Factor, ...], float] = {}
    for c, facs in terms:
        if c != 0:
            acc[facs] = acc.get(facs, 0.0) + c
    if len(acc) > MAX_TERMS:
        return None
    return tuple((c, f) for f, c in acc.items())


def variable(axis: int, nonneg: bool) -> MEnv:
    """The envelope of an input on ``axis``: ``|x|`` (and ``low = x`` where its support is ``x >= 0``)."""
    m: Mono = (1.0, ((axis, "power", 1.0),))
    return MEnv((m,), m if nonneg else None, nonneg)


def constant(c: float) -> MEnv:
    """The envelope of a constant."""
    m: Mono = (abs(c), ())
    return MEnv((m,) if c else (), m if c > 0 else None, c >= 0)


def _env(terms: list[Mono], low: Mono | None, nonneg: bool) -> MEnv | None:
    t = _merge(terms)
    return None if t is None else MEnv(t, low, nonneg or low is not None)


def _exact(e: MEnv) -> Mono | None:
    """The monomial that equals ``F`` (positive) where ``F`` is one term with itself as lower bound."""
    return e.terms[0] if e.low is not None and len(e.terms) == 1 and e.terms[0] == e.low else None


def _recip(w: MEnv) -> MEnv | None:
    if w.low is None or w.low[0] <= 0:
        return None
    up = w.terms[0] if len(w.terms) == 1 else None
    return MEnv((_mono_pow(w.low, -1.0),), None if up is None else _mono_pow(up, -1.0), True)


def _mul(u: MEnv, w: MEnv) -> MEnv | None:
    terms = []
    for s in u.terms:
        for v in w.terms:
            m = _mono_mul(s, v)
            if m is None:
                return None
            terms.append(m)
    low = None if u.low is None or w.low is None else _mono_mul(u.low, w.low)
    return _env(terms, low, u.nonneg and w.nonneg)


#: Tangent points of the concave power envelopes, as multiples of the sum's typical value (see :func:`_tangents`).
TANGENT_SCALES = (0.25, 1.0, 4.0, 16.0)


def _tangents(u: MEnv, q: float, typ: dict[int, float] | None) -> tuple[MEnv, ...]:
    """Envelopes of ``|u|^q`` (``0 < q < 1``) linear in ``u``'s terms: tangents of the concave ``S^q``.

    ``S^q <= (1 - q) t^q + q t^(q - 1) S`` for every ``S >= 0`` and ``t > 0``. With ``S`` the sum of ``u``'s terms
    this is a constant plus the terms scaled, so its moments stay closed-form, and near ``S = t`` it is exact, where
    the subadditive ``S^q <= sum_k y_k^q`` loses up to ``n^(1 - q)`` on ``n`` terms of one size (the damped
    oscillator's ``sqrt`` of 4 products). ``t`` runs over :data:`TANGENT_SCALES` times ``S`` at the inputs' means.
    """
    if typ is None or len(u.terms) < 2:
        return ()
    with np.errstate(all="ignore"):
        s0 = sum(_typical(m, typ) for m in u.terms)
    if not (math.isfinite(s0) and s0 > 0):
        return ()
    out = []
    for k in TANGENT_SCALES:
        t = k * s0
        slope = q * t ** (q - 1.0)
        terms = [((1.0 - q) * t**q, ())] + [(slope * c, f) for c, f in u.terms]
        e = _env(terms, None, True)
        if e is not None:
            out.append(e)
    return tuple(out)


def _pow(u: MEnv, q: float, typ: dict[int, float] | None = None) -> MEnv | None:
    if q == 0:
        return constant(1.0)
    if q < 0:
        r = _recip(u)
        return None if r is None else _pow(r, -q, typ)
    if len(u.terms) == 1:
        terms = [_mono_pow(u.terms[0], q)]
    else:
        scale = max(1.0, len(u.terms) ** (q - 1.0))
        terms = [(scale * c**q, tuple((ax, k, a * q) for ax, k, a in f)) for c, f in u.terms]
    even = float(q).is_integer() and int(q) % 2 == 0
    out = _env(terms, None if u.low is None else _mono_pow(u.low, q), u.nonneg or even)
    if out is not None and 0 < q < 1:
        out = MEnv(out.terms, out.low, out.nonneg, _tangents(u, q, typ))
    return out


_SAME = ("identity", "copy", "contiguous", "convert")
_BOUNDED = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "arctan": math.pi / 2, "erf": 1.0, "sigmoid": 1.0}


def _typical(m: Mono, typ: dict[int, float]) -> float:
    v = m[0]
    for ax, kind, a in m[1]:
        x = typ.get(ax, math.nan)
        v *= math.exp(a * x) if kind == "exp" else abs(x) ** a
    return v


def _amgm(u: Mono, w: Mono, typ: dict[int, float] | None) -> Mono | None:
    """A monomial ``<= u + w`` (``u, w > 0``): weighted AM-GM, ``u + w >= (u/th)^th (w/(1-th))^(1-th)``.

    ``th = u0 / (u0 + w0)`` from the values at the inputs' means ``typ``: exact where ``u / w = u0 / w0``.
    """
    if typ is None:
        return None
    with np.errstate(all="ignore"):
        u0, w0 = _typical(u, typ), _typical(w, typ)
    if not (math.isfinite(u0) and math.isfinite(w0) and u0 > 0 and w0 > 0):
        return None
    th = u0 / (u0 + w0)
    if not 0 < th < 1:
        return None
    a = _mono_pow((u[0] / th, u[1]), th)
    b = _mono_pow((w[0] / (1 - th), w[1]), 1 - th)
    return _mono_mul(a, b)


def rule(
    op: str,
    args: list[MEnv | None],
    consts: list[float | None],
    nonneg: list[bool],
    typ: dict[int, float] | None = None,
) -> MEnv | None:
    """The envelope of ``op`` from its operands' (``nonneg[i]``: operand ``i`` is known to be ``>= 0``).

    ``typ``: a typical value of each input axis (its mean), to balance the lower bound of a sum of positives.
    """
    if op in logic.TRUTH_VALUED:  # a comparison or a truth op of them: 0 or 1
        return MEnv(((1.0, ()),), None, True)
    if op == "where":  # |where(c, u, w)| <= |u| + |w|
        u, w = args[1], args[2]
        if u is None or w is None:
            return None
        return _env(list(u.terms) + list(w.terms), None, (u.nonneg or nonneg[1]) and (w.nonneg or nonneg[2]))
    if any(e is None for e in args):
        return None
    e = [x if not nn or x.nonneg else MEnv(x.terms, x.low, True) for x, nn in zip(args, nonneg, strict=True)]  # type: ignore[union-attr]
    if op in _SAME or op == "relu":
        return e[0]
    if op in ("neg", "abs"):
        u = e[0]
        return MEnv(u.terms) if op == "neg" else MEnv(u.terms, u.low, True)
    if op in ("add", "sub"):
        u, w = e
        low = None
        if op == "add":
            low = u.low if u.low is not None and w.nonneg else w.low if w.low is not None and u.nonneg else None
            if u.low is not None and w.low is not None:
                low = _amgm(u.low, w.low, typ) or low
        return _env(list(u.terms) + list(w.terms), low, op == "add" and u.nonneg and w.nonneg)
    if op in ("maximum", "minimum"):
        # |max(u, w)|, |min(u, w)| <= |u| + |w|; max(u, w) >= u >= low(u); min of two nonnegatives is nonnegative
        u, w = e
        if op == "maximum":
            low = u.low if u.low is not None else w.low
            return _env(list(u.terms) + list(w.terms), low, u.nonneg or w.nonneg)
        return _env(list(u.terms) + list(w.terms), None, u.nonneg and w.nonneg)
    if op == "mul":
        return _mul(e[0], e[1])
    if op == "div":
        r = _recip(e[1])
        return None if r is None else _mul(e[0], r)
    if op == "reciprocal":
        return _recip(e[0])
    if op == "sqrt":
        return _pow(e[0], 0.5, typ)
    if op == "rsqrt":
        return _pow(e[0], -0.5, typ)
    if op == "square":
        return _pow(e[0], 2.0, typ)
    if op == "pow":
        q = consts[1] if len(consts) > 1 else None
        return None if q is None or not math.isfinite(q) else _pow(e[0], q, typ)
    if op in _BOUNDED:
        return MEnv(((_BOUNDED[op], ()),))  # |sin F| <= 1 (no lower bound, no sign)
    return None


def factor_moment(kind: str, a: float, lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``max(g(lo), g(hi)) P(cell)`` per finite cell (``g = |x|^a`` or ``e^{a x}``; ``inf`` where ``g`` blows up)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kind == "exp":
            g = np.exp(np.maximum(a * lo, a * hi))
        else:
            same_sign = (lo >= 0) | (hi <= 0)
            g = np.maximum(np.abs(lo) ** a, np.abs(hi) ** a)
            if a < 0:
                g = np.where(same_sign & (lo != 0) & (hi != 0), g, np.inf)
        out = np.where(w > 0, g * w, 0.0)
    return np.where(np.isnan(out), np.inf, out)


def grid_moment(env: MEnv, axes: tuple[int, ...], factor: Callable[[int, str, float], np.ndarray]) -> np.ndarray:
    """``sum_k c_k prod_i E[g_ki(X_i); cell_i]`` on the joint grid of ``axes`` (shape: one dim per axis).

    ``factor(axis, kind, a)`` gives the per-cell partial moments of one axis (its cell probabilities for ``a = 0``).
    """
    shape = tuple(factor(a, "power", 0.0).size for a in axes)
    pos = {a: i for i, a in enumerate(axes)}
    total = np.zeros(shape)
    probs = {a: factor(a, "power", 0.0) for a in axes}
    for c, facs in env.terms:
        own = {ax: (k, p) for ax, k, p in facs}
        term: np.ndarray = np.full((1,) * len(axes), c)
        for a in axes:
            k, p = own.get(a, ("power", 0.0))
            f = probs[a] if p == 0 else factor(a, k, p)
            sh = [1] * len(axes)
            sh[pos[a]] = f.size
            with np.errstate(invalid="ignore", over="ignore"):
                term = term * f.reshape(sh)
        total = total + np.where(np.isnan(term), np.inf, term)
    return total


def box_bound(m: np.ndarray, v: np.ndarray, p: np.ndarray, flo: np.ndarray, fhi: np.ndarray) -> np.ndarray:
    """Per box ``E[|F - v|; B]`` from the envelope's moment ``m``, the box mass ``p`` and its enclosure."""
    with np.errstate(invalid="ignore", over="ignore"):
        best = m + np.abs(v) * p
        alt = np.where(np.isfinite(flo), m - v * p + 2 * np.maximum(v - flo, 0.0) * p, np.inf)
        best = np.fmin(best, alt)
        alt = np.where(np.isfinite(fhi), m + v * p + 2 * np.maximum(fhi - v, 0.0) * p, np.inf)
        best = np.fmin(best, alt)
        best = np.maximum(best, 0.0) * (1 + 1e-8) + 1e-300
    return np.where(p == 0, 0.0, np.where(np.isnan(best), np.inf, best))
