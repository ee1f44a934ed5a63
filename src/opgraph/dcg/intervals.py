"""Vectorised interval arithmetic with derivative enclosures for every elementwise op the tracer emits.

``rule(op, args)`` takes one interval ``(lo, hi)`` per operand (NumPy arrays, broadcast together) and returns the
value enclosure and one enclosure of the partial derivative (a Clarke generalised gradient where the op has a
kink, ``[-inf, inf]`` where it jumps) per operand, over the whole box. Endpoints are widened outwards by a few
ulps after every operation so that rounding cannot shrink an enclosure. NaN endpoints become ``[-inf, inf]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from opgraph.dcg.errors import DistError

Interval = tuple[np.ndarray, np.ndarray]
_REL = 2.0**-49
_INF = np.inf


def widen(lo: Any, hi: Any) -> Interval:
    """Widen ``[lo, hi]`` outwards by a few ulps and map NaN endpoints to ``-inf``/``inf``."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    bad = np.isnan(lo) | np.isnan(hi)
    lo = lo - np.abs(lo) * _REL
    hi = hi + np.abs(hi) * _REL
    if np.any(bad):
        lo = np.where(bad, -_INF, lo)
        hi = np.where(bad, _INF, hi)
    return lo, hi


def point(x: Any) -> Interval:
    """The degenerate interval ``[x, x]``."""
    x = np.asarray(x, dtype=float)
    return x, x


def const(value: float, like: np.ndarray) -> Interval:
    """A constant interval shaped like ``like``."""
    c = np.full(np.shape(like), float(value))
    return c, c


def iadd(a: Interval, b: Interval) -> Interval:
    """A + b."""
    with np.errstate(invalid="ignore"):
        return a[0] + b[0], a[1] + b[1]


def isub(a: Interval, b: Interval) -> Interval:
    """A - b."""
    with np.errstate(invalid="ignore"):
        return a[0] - b[1], a[1] - b[0]


def ineg(a: Interval) -> Interval:
    """-a."""
    return -a[1], -a[0]


def _nan0(x: np.ndarray) -> np.ndarray:
    """Map NaN (only produced by 0 * inf here) to 0."""
    return np.where(np.isnan(x), 0.0, x) if np.isnan(x).any() else x


def _scale(a: Interval, c: float) -> Interval:
    if c == 1.0:
        return a
    if c == 0.0:
        z = np.zeros(())
        return z, z
    with np.errstate(invalid="ignore", over="ignore"):
        return (a[0] * c, a[1] * c) if c > 0 else (a[1] * c, a[0] * c)


def imul(a: Interval, b: Interval) -> Interval:
    """A * b (0 * inf counts as 0, as in extended interval arithmetic).

    A degenerate interval is recognised by identity (``lo is hi``) and multiplied with fewer products.
    """
    a_pt, b_pt = a[0] is a[1], b[0] is b[1]
    if b_pt and np.ndim(b[0]) == 0:
        return _scale(a, float(b[0]))
    if a_pt and np.ndim(a[0]) == 0:
        return _scale(b, float(a[0]))
    with np.errstate(invalid="ignore", over="ignore"):
        if a_pt and b_pt:
            p = _nan0(a[0] * b[0])
            return p, p
        if a_pt or b_pt:
            x, (l, h) = (a[0], b) if a_pt else (b[0], a)
            p1, p2 = x * l, x * h
            return _nan0(np.fmin(p1, p2)), _nan0(np.fmax(p1, p2))
        p1, p2, p3, p4 = a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]
        lo = np.fmin(np.fmin(p1, p2), np.fmin(p3, p4))
        hi = np.fmax(np.fmax(p1, p2), np.fmax(p3, p4))
    return _nan0(lo), _nan0(hi)


def iscale(c: float, a: Interval) -> Interval:
    """C * a for a number c."""
    return imul((np.asarray(c, dtype=float), np.asarray(c, dtype=float)), a)


def irecip(a: Interval) -> Interval:
    """1 / a (whole line when a contains 0)."""
    lo, hi = a
    zero = (lo <= 0) & (hi >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rlo, rhi = 1.0 / hi, 1.0 / lo
    return np.where(zero, -_INF, rlo), np.where(zero, _INF, rhi)


def idiv(a: Interval, b: Interval) -> Interval:
    """A / b."""
    return imul(a, irecip(b))


def iabs(a: Interval) -> Interval:
    """|a|."""
    lo, hi = a
    m = np.maximum(np.abs(lo), np.abs(hi))
    low = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    return low, m


def isq(a: Interval) -> Interval:
    """A ** 2."""
    lo, hi = iabs(a)
    with np.errstate(over="ignore"):
        return lo * lo, hi * hi


def hull(a: Interval, b: Interval) -> Interval:
    """Smallest interval containing a and b."""
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def mag(a: Interval) -> np.ndarray:
    """Max |x| over the interval (inf for NaN)."""
    m = np.maximum(np.abs(a[0]), np.abs(a[1]))
    return np.where(np.isnan(m), _INF, m)


def _mono(f: Callable[[np.ndarray], np.ndarray], a: Interval, increasing: bool = True) -> Interval:
    with np.errstate(all="ignore"):
        x, y = f(a[0]), f(a[1])
    return (x, y) if increasing else (y, x)


def _sin(a: Interval) -> Interval:
    lo, hi = a
    with np.errstate(invalid="ignore"):
        s0, s1 = np.sin(lo), np.sin(hi)
        vlo, vhi = np.minimum(s0, s1), np.maximum(s0, s1)
        two_pi = 2 * math.pi
        has_max = np.floor((hi - math.pi / 2) / two_pi) >= np.ceil((lo - math.pi / 2) / two_pi)
        has_min = np.floor((hi + math.pi / 2) / two_pi) >= np.ceil((lo + math.pi / 2) / two_pi)
    wide = ~np.isfinite(lo) | ~np.isfinite(hi) | (hi - lo >= two_pi)
    vhi = np.where(has_max | wide, 1.0, vhi)
    vlo = np.where(has_min | wide, -1.0, vlo)
    return vlo, vhi


def _cos(a: Interval) -> Interval:
    return _sin(iadd(a, point(math.pi / 2)))


def _even_mono(f: Callable[[np.ndarray], np.ndarray], a: Interval) -> Interval:
    """f(|x|) for f increasing on [0, inf)."""
    lo, hi = iabs(a)
    with np.errstate(over="ignore"):
        return f(lo), f(hi)


def _step(f: Callable[[np.ndarray], np.ndarray], a: Interval) -> tuple[Interval, Interval]:
    v = _mono(f, a)
    flat = v[0] == v[1]
    return v, (np.where(flat, 0.0, -_INF), np.where(flat, 0.0, _INF))


def ipow_const(a: Interval, c: float) -> Interval:
    """A ** c for a constant exponent c."""
    lo, hi = a
    if c == 0:
        return const(1.0, lo)
    if float(c).is_integer():
        k = int(c)
        if k > 0:
            if k % 2 == 0:
                m = iabs(a)
                with np.errstate(over="ignore"):
                    return m[0] ** k, m[1] ** k
            with np.errstate(over="ignore"):
                return lo**k, hi**k
        return irecip(ipow_const(a, -k))
    neg = lo < 0
    with np.errstate(all="ignore"):
        if c > 0:
            v = (np.maximum(lo, 0.0) ** c, np.maximum(hi, 0.0) ** c)
        else:
            v = (np.where(hi > 0, hi**c, _INF), np.where(lo > 0, lo**c, _INF))
    return np.where(neg, -_INF, v[0]), np.where(neg, _INF, v[1])


def _ilog(a: Interval) -> Interval:
    lo, hi = a
    with np.errstate(all="ignore"):
        vlo = np.where(lo > 0, np.log(lo), -_INF)
        vhi = np.where(hi > 0, np.log(hi), -_INF)
    bad = lo < 0
    return np.where(bad, -_INF, vlo), np.where(bad, _INF, vhi)


def _unary_rule(op: str, a: Interval) -> tuple[Interval, Interval]:  # noqa: C901  (one branch per op)
    lo, hi = a
    if op in ("identity", "copy", "contiguous", "convert"):
        return a, const(1.0, lo)
    if op == "neg":
        return ineg(a), const(-1.0, lo)
    if op == "abs":
        d = (np.where(hi < 0, -1.0, np.where(lo > 0, 1.0, -1.0)), np.where(lo > 0, 1.0, np.where(hi < 0, -1.0, 1.0)))
        return iabs(a), d
    if op == "sin":
        return _sin(a), _cos(a)
    if op == "cos":
        return _cos(a), ineg(_sin(a))
    if op == "tan":
        with np.errstate(invalid="ignore"):
            pole = np.floor((hi - math.pi / 2) / math.pi) >= np.ceil((lo - math.pi / 2) / math.pi)
        pole = pole | ~np.isfinite(lo) | ~np.isfinite(hi)
        v = _mono(np.tan, a)
        v = (np.where(pole, -_INF, v[0]), np.where(pole, _INF, v[1]))
        return v, iadd(const(1.0, lo), isq(v))
    if op == "exp":
        v = _mono(np.exp, a)
        return v, v
    if op == "exp2":
        v = _mono(np.exp2, a)
        return v, iscale(math.log(2), v)
    if op == "expm1":
        return _mono(np.expm1, a), _mono(np.exp, a)
    if op in ("log", "log2", "log10"):
        c = {"log": 1.0, "log2": 1 / math.log(2), "log10": 1 / math.log(10)}[op]
        return iscale(c, _ilog(a)), iscale(c, irecip(a))
    if op == "log1p":
        b = iadd(a, point(1.0))
        return _ilog(b), irecip(b)
    if op in ("sqrt", "rsqrt", "cbrt"):
        if op == "cbrt":
            v = _mono(np.cbrt, a)
            return v, iscale(1 / 3, irecip(isq(v)))
        v = ipow_const(a, 0.5 if op == "sqrt" else -0.5)
        return v, iscale(0.5 if op == "sqrt" else -0.5, ipow_const(a, -0.5 if op == "sqrt" else -1.5))
    if op == "square":
        return isq(a), iscale(2.0, a)
    if op == "reciprocal":
        return irecip(a), ineg(irecip(isq(a)))
    if op == "tanh":
        v = _mono(np.tanh, a)
        return v, isub(const(1.0, lo), isq(v))
    if op == "sinh":
        return _mono(np.sinh, a), _even_mono(np.cosh, a)
    if op == "cosh":
        return _even_mono(np.cosh, a), _mono(np.sinh, a)
    if op == "arctan":
        return _mono(np.arctan, a), irecip(iadd(const(1.0, lo), isq(a)))
    if op == "arcsinh":
        return _mono(np.arcsinh, a), ipow_const(iadd(const(1.0, lo), isq(a)), -0.5)
    if op in ("arcsin", "arccos"):
        inside = (lo >= -1) & (hi <= 1)
        v = _mono(np.arcsin, a) if op == "arcsin" else _mono(np.arccos, a, increasing=False)
        d = ipow_const(isub(const(1.0, lo), isq(a)), -0.5)
        d = d if op == "arcsin" else ineg(d)
        return (np.where(inside, v[0], -_INF), np.where(inside, v[1], _INF)), d
    if op == "arctanh":
        return _mono(np.arctanh, a), irecip(isub(const(1.0, lo), isq(a)))
    if op == "erf":
        return _mono(sc.erf, a), iscale(2 / math.sqrt(math.pi), _mono(np.exp, ineg(isq(a)), increasing=True))
    if op == "sigmoid":
        v = _mono(sc.expit, a)
        return v, imul(v, isub(const(1.0, lo), v))
    if op == "relu":
        v = (np.maximum(lo, 0.0), np.maximum(hi, 0.0))
        return v, (np.where(lo > 0, 1.0, 0.0), np.where(hi < 0, 0.0, 1.0))
    if op in ("sign", "floor", "ceil", "rint"):
        return _step({"sign": np.sign, "floor": np.floor, "ceil": np.ceil, "rint": np.rint}[op], a)
    raise DistError(
        f"op {op!r} is not supported by opgraph.dcg; use arithmetic, comparisons, np.where and elementwise "
        "NumPy functions (sin, exp, log, sqrt, maximum, ...)"
    )


def _compare(op: str, a: Interval, b: Interval) -> tuple[Interval, list[Interval]]:
    (al, ah), (bl, bh) = a, b
    if op in ("lt", "gt"):
        t = ah < bl if op == "lt" else al > bh
        f = al >= bh if op == "lt" else ah <= bl
    elif op in ("le", "ge"):
        t = ah <= bl if op == "le" else al >= bh
        f = al > bh if op == "le" else ah < bl
    else:
        eq = (al == ah) & (bl == bh) & (al == bl)
        disjoint = (ah < bl) | (bh < al)
        t, f = (eq, disjoint) if op == "eq" else (disjoint, eq)
    v = (np.where(t, 1.0, 0.0), np.where(f, 0.0, 1.0))
    decided = t | f
    d = (np.where(decided, 0.0, -_INF), np.where(decided, 0.0, _INF))
    return v, [d, d]


def rule(op: str, args: list[Interval], attrs: dict[str, Any] | None = None) -> tuple[Interval, list[Interval]]:
    """Value enclosure and per-operand partial-derivative enclosures of ``op`` over the box ``args``.

    Raises:
        DistError: the op is not supported.
    """
    if len(args) == 1:
        v, d = _unary_rule(op, args[0])
        return widen(*v), [widen(*d)]
    if op == "add":
        return widen(*iadd(*args)), [point(1.0), point(1.0)]
    if op == "sub":
        return widen(*isub(*args)), [point(1.0), point(-1.0)]
    if op == "mul":
        a, b = args
        return widen(*imul(a, b)), [b, a]
    if op == "div":
        a, b = args
        rb = irecip(b)
        return widen(*imul(a, rb)), [widen(*rb), widen(*ineg(imul(a, irecip(isq(b)))))]
    if op == "pow":
        a, b = args
        if np.all(b[0] == b[1]) and np.unique(b[0]).size == 1:
            c = float(np.asarray(b[0]).reshape(-1)[0])
            v = ipow_const(a, c)
            da = iscale(c, ipow_const(a, c - 1)) if c != 0 else const(0.0, a[0])
            db = imul(v, _ilog(a))
            return widen(*v), [widen(*da), widen(*db)]
        la = _ilog(a)
        v = _mono(np.exp, imul(b, la))
        da = imul(b, _mono(np.exp, imul(isub(b, point(1.0)), la)))
        return widen(*v), [widen(*da), widen(*imul(v, la))]
    if op in ("maximum", "minimum"):
        (al, ah), (bl, bh) = args
        if op == "maximum":
            v = (np.maximum(al, bl), np.maximum(ah, bh))
            a_wins, b_wins = al > bh, bl > ah
        else:
            v = (np.minimum(al, bl), np.minimum(ah, bh))
            a_wins, b_wins = ah < bl, bh < al
        da = (np.where(a_wins, 1.0, 0.0), np.where(b_wins, 0.0, 1.0))
        db = (np.where(b_wins, 1.0, 0.0), np.where(a_wins, 0.0, 1.0))
        return v, [da, db]
    if op == "hypot":
        a, b = args
        h = ipow_const(iadd(isq(a), isq(b)), 0.5)
        unit = (-1.0, 1.0)

        def clamp(x: Interval) -> Interval:
            return np.maximum(x[0], unit[0]), np.minimum(x[1], unit[1])

        return widen(*h), [clamp(idiv(a, h)), clamp(idiv(b, h))]
    if op == "arctan2":
        y, x = args
        r2 = iadd(isq(y), isq(x))
        dy = idiv(x, r2)
        dx = ineg(idiv(y, r2))
        cut = (x[0] <= 0) & (y[0] <= 0) & (y[1] >= 0)
        corners = [np.arctan2(yy, xx) for yy in y for xx in x]
        right = x[0] > 0
        v = (
            np.where(right, np.minimum.reduce(corners), -math.pi),
            np.where(right, np.maximum.reduce(corners), math.pi),
        )
        inf = (np.where(cut, -_INF, 0.0), np.where(cut, _INF, 0.0))
        return widen(*v), [widen(*iadd(dy, inf)), widen(*iadd(dx, inf))]
    if op == "mod":
        (al, ah), (bl, bh) = args
        with np.errstate(all="ignore"):
            k0, k1 = np.floor(al / bl), np.floor(ah / bl)
        same = (bl == bh) & (k0 == k1) & np.isfinite(k0)
        v = (np.where(same, al - k0 * bl, np.minimum(0.0, bl)), np.where(same, ah - k0 * bl, np.maximum(0.0, bh)))
        d = (np.where(same, 1.0, -_INF), np.where(same, 1.0, _INF))
        return widen(*v), [d, (np.where(same, 0.0, -_INF), np.where(same, 0.0, _INF))]
    if op in ("lt", "le", "gt", "ge", "eq", "ne"):
        return _compare(op, *args)
    if op == "where":
        c, a, b = args
        true = (c[0] > 0) | (c[1] < 0)
        false = (c[0] == 0) & (c[1] == 0)
        undecided = ~(true | false)
        v = (
            np.where(true, a[0], np.where(false, b[0], np.minimum(a[0], b[0]))),
            np.where(true, a[1], np.where(false, b[1], np.maximum(a[1], b[1]))),
        )
        jump = (np.where(undecided, -_INF, 0.0), np.where(undecided, _INF, 0.0))
        da = (np.where(true, 1.0, np.where(false, 0.0, -_INF)), np.where(true, 1.0, np.where(false, 0.0, _INF)))
        db = (np.where(false, 1.0, np.where(true, 0.0, -_INF)), np.where(false, 1.0, np.where(true, 0.0, _INF)))
        return v, [jump, da, db]
    raise DistError(
        f"op {op!r} is not supported by opgraph.dcg; use arithmetic, comparisons, np.where and elementwise "
        "NumPy functions (sin, exp, log, sqrt, maximum, ...)"
    )


SUPPORTED_OPS = frozenset(
    [
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "mod",
        "neg",
        "abs",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "where",
        "sin",
        "cos",
        "tan",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "arcsinh",
        "arctanh",
        "exp",
        "exp2",
        "expm1",
        "log",
        "log1p",
        "log2",
        "log10",
        "sqrt",
        "rsqrt",
        "cbrt",
        "square",
        "reciprocal",
        "sign",
        "floor",
        "ceil",
        "rint",
        "maximum",
        "minimum",
        "arctan2",
        "hypot",
        "erf",
        "sigmoid",
        "relu",
        "identity",
        "copy",
        "contiguous",
        "convert",
    ]
)
