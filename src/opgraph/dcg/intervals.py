"""Vectorised interval arithmetic with derivative enclosures for every elementwise op the tracer emits.

``rule(op, args)`` takes one interval ``(lo, hi)`` per operand (NumPy arrays, broadcast together) and returns the
value enclosure and one enclosure of the partial derivative (a Clarke generalised gradient where the op has a
kink, ``[-inf, inf]`` where it jumps) per operand, over the whole box. Endpoints are widened outwards by a few
ulps after every operation so that rounding cannot shrink an enclosure. NaN endpoints become ``[-inf, inf]``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from opgraph.dcg import logic as _logic
from opgraph.dcg.errors import DistError

Interval = tuple[np.ndarray, np.ndarray]
_REL = 2.0**-49
_INF = np.inf

#: True while the caller has floating-point warnings off (``np.errstate(all="ignore")``, see :func:`quiet`): the
#: per-call ``np.errstate`` contexts of this module and :mod:`opgraph.dcg.affine` are then skipped. They only
#: silence warnings (values are the same either way) and cost more than the arithmetic on small grids (the engine
#: evaluates every node of a 1,000-step program on a few boxes).
QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_quiet", default=False)
_NULL = contextlib.nullcontext()
#: The engine's per-node fast paths (memoised form radii and per-axis constants, :func:`quiet` around each node):
#: ``FAST.set(False)`` runs the previous code path, for the equivalence tests (the results are the same bit for bit).
FAST: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_fast", default=True)


def errstate(**kw: Any) -> Any:
    """``np.errstate(**kw)``, or a no-op context inside :func:`quiet` (where every warning is already off)."""
    return _NULL if QUIET.get() else np.errstate(**kw)


@contextlib.contextmanager
def quiet() -> Any:
    """Floating-point warnings off (``np.errstate(all="ignore")``) and the inner contexts skipped (:data:`QUIET`)."""
    with np.errstate(all="ignore"):
        token = QUIET.set(FAST.get())
        try:
            yield
        finally:
            QUIET.reset(token)


#: Elements from which the one-reduction fast paths below pay: on smaller arrays (long programs on small grids:
#: thousands of ops on a few dozen cells) their extra reductions cost more than the temporaries they save
#: (ODE-osc at 8 atoms: 5.9 -> 8.7 CPU s with them everywhere). Both forms give the same values bit for bit.
_FAST_MIN = 4096


def _has_nan(x: np.ndarray) -> bool:
    """Whether ``x`` holds a NaN: one reduction without a boolean temporary (``min`` propagates NaN)."""
    if x.size == 0:
        return False
    with errstate(invalid="ignore"):
        return bool(np.isnan(np.min(x)))


def _outward(x: np.ndarray, sign: float) -> np.ndarray:
    """``x + sign * |x| * 2**-49`` in one new array (the same roundings as the three-temporary expression)."""
    if x.ndim == 0:
        return x - np.abs(x) * _REL if sign < 0 else x + np.abs(x) * _REL
    t = np.abs(x)
    np.multiply(t, _REL, out=t)
    return np.subtract(x, t, out=t) if sign < 0 else np.add(x, t, out=t)


#: Below this magnitude ``|x| * 2**-49`` may be inexact (subnormal): :func:`_outward_signed` keeps the general form.
_EXACT_SHIFT = 2.0**-960
_DOWN, _UP = 1.0 - _REL, 1.0 + _REL


def _outward_signed(x: np.ndarray, sign: float, mn: Any) -> np.ndarray:
    """:func:`_outward` in one product where ``x`` has one sign, bit for bit (``mn``: the minimum of ``x``, no NaN).

    Where every ``|x| >= 2**-960`` and finite, ``|x| * 2**-49`` is exact, so ``x -+ |x| 2**-49`` is the rounding of
    the real number ``x (1 -+ 2**-49)`` (``x > 0``; ``x (1 +- 2**-49)`` for ``x < 0``), which is also what the one
    product with the representable factor ``1 -+ 2**-49`` rounds. Infinite ends (whose general form gives NaN on
    one side) and tiny or mixed-sign arrays take the three-pass form.
    """
    if x.ndim and mn >= _EXACT_SHIFT:
        if _max_reduce(x, axis=None) < _INF:
            return np.multiply(x, _DOWN if sign < 0 else _UP)
    elif x.ndim and mn > -_INF and _max_reduce(x, axis=None) <= -_EXACT_SHIFT:
        return np.multiply(x, _UP if sign < 0 else _DOWN)
    return _outward(x, sign)


def widen(lo: Any, hi: Any) -> Interval:
    """Widen ``[lo, hi]`` outwards by a few ulps and map NaN endpoints to ``-inf``/``inf``."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    if lo.size < _FAST_MIN and hi.size < _FAST_MIN:
        if QUIET.get() and not (_isnan(_add_reduce(lo, axis=None)) or _isnan(_add_reduce(hi, axis=None))):
            # No NaN in either (one sum each; a NaN sum from inf - inf takes the exact path below), inside quiet()
            return lo - np.abs(lo) * _REL, hi + np.abs(hi) * _REL
        bad = np.isnan(lo) | np.isnan(hi)
        lo = lo - np.abs(lo) * _REL
        hi = hi + np.abs(hi) * _REL
        if not bad.any():  # the method: np.any's dispatch costs more than the reduction on small grids
            return lo, hi
        return np.where(bad, -_INF, lo), np.where(bad, _INF, hi)
    if SIGN_PATHS and lo.size and hi.size:
        with errstate(invalid="ignore"):
            mlo, mhi = _min_reduce(lo, axis=None), _min_reduce(hi, axis=None)
        bad = (np.isnan(lo) | np.isnan(hi)) if np.isnan(mlo) or np.isnan(mhi) else None
        lo = _outward_signed(lo, -1.0, mlo) if bad is None else _outward(lo, -1.0)
        hi = _outward_signed(hi, 1.0, mhi) if bad is None else _outward(hi, 1.0)
    else:
        bad = (np.isnan(lo) | np.isnan(hi)) if _has_nan(lo) or _has_nan(hi) else None
        lo = _outward(lo, -1.0)
        hi = _outward(hi, 1.0)
    if bad is not None:
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
    with errstate(invalid="ignore"):
        return a[0] + b[0], a[1] + b[1]


def isub(a: Interval, b: Interval) -> Interval:
    """A - b."""
    with errstate(invalid="ignore"):
        return a[0] - b[1], a[1] - b[0]


def ineg(a: Interval) -> Interval:
    """-a."""
    return -a[1], -a[0]


def _nan0(x: np.ndarray) -> np.ndarray:
    """Map NaN (only produced by 0 * inf here) to 0."""
    if _size(x) >= _FAST_MIN:
        nan = _has_nan(np.asarray(x))
    elif QUIET.get():
        # One reduction: the sum is NaN where x holds a NaN (or both infinities: then the mask below is exact too,
        # and maps nothing). Inside quiet() only, where the inf - inf of the sum raises no warning.
        nan = _isnan(_add_reduce(x, axis=None))
    else:
        nan = bool(np.isnan(x).any())
    return np.where(np.isnan(x), 0.0, x) if nan else x


_add_reduce = np.add.reduce
_min_reduce = np.minimum.reduce
#: NaN test of a reduction's NumPy scalar: ``math.isnan`` gives ``np.isnan``'s answer without a ufunc call.
_isnan = math.isnan
_max_reduce = np.maximum.reduce


def _ndim(x: Any) -> int:
    """``np.ndim(x)``, read off an array's attribute without the dispatch."""
    n = getattr(x, "ndim", None)
    return np.ndim(x) if n is None else n


def _size(x: Any) -> int:
    """``np.size(x)``, read off an array's attribute without the dispatch."""
    n = getattr(x, "size", None)
    return np.size(x) if not isinstance(n, int) else n


def _sign_quick(a: Interval) -> int:
    """:func:`_sign` with the reductions called directly (no dispatch: for small arrays inside :func:`quiet`)."""
    lo, hi = a
    if _size(lo) == 0 or _size(hi) == 0:
        return 0
    if _min_reduce(lo, axis=None) > 0:
        return 1 if (lo is hi or _min_reduce(hi, axis=None) > 0) else 0
    if _max_reduce(hi, axis=None) < 0:
        return -1 if (lo is hi or _max_reduce(lo, axis=None) < 0) else 0
    return 0


def _sign(a: Interval) -> int:
    """1 when every point of ``a`` is > 0, -1 when every point is < 0, else 0 (also for NaN or empty endpoints).

    At most two reductions over the operand (before any broadcasting), no temporaries.
    """
    lo, hi = np.asarray(a[0]), np.asarray(a[1])
    if lo.size == 0 or hi.size == 0:
        return 0
    with errstate(invalid="ignore"):
        if np.min(lo) > 0:
            return 1 if (lo is hi or np.min(hi) > 0) else 0
        if np.max(hi) < 0:
            return -1 if (lo is hi or np.max(lo) < 0) else 0
    return 0


#: The strict-sign shortcuts of :func:`imul`, :func:`irecip`, :func:`iabs`, :func:`ipow_const` and :func:`_ilog`
#: (branch dcg-speed10): where one or two reductions show that an operand has one strict sign, the masks and
#: four-product forms reduce to the endpoints' own products. The same values either way (up to the sign of a zero
#: in :func:`imul`'s one-sided form); ``False`` runs the general forms, for the A/B benchmark and the tests.
SIGN_PATHS = True


def _positive(lo: Any, hi: Any) -> bool:
    """Whether every endpoint of ``[lo, hi]`` is > 0 (False for NaN or empty endpoints): two reductions."""
    if _size(lo) == 0 or _size(hi) == 0:
        return False
    return bool(_min_reduce(lo, axis=None) > 0) and (lo is hi or bool(_min_reduce(hi, axis=None) > 0))


def _negative(lo: Any, hi: Any) -> bool:
    """Whether every endpoint of ``[lo, hi]`` is < 0 (False for NaN or empty endpoints): two reductions."""
    if _size(lo) == 0 or _size(hi) == 0:
        return False
    return bool(_max_reduce(hi, axis=None) < 0) and (lo is hi or bool(_max_reduce(lo, axis=None) < 0))


def _same_shape(lo: Any, hi: Any) -> bool:
    """Whether ``lo`` and ``hi`` are arrays of one shape with at least one axis.

    The shortcuts keep the general forms' result types and shapes: arrays broadcast together, never NumPy scalars.
    """
    return _ndim(lo) > 0 and getattr(lo, "shape", None) == getattr(hi, "shape", ())


def _finite_sign(x: Interval) -> int:
    """1 / -1 when every endpoint of ``x`` is finite and > 0 / < 0, else 0 (NaN, inf, zero or mixed signs)."""
    lo, hi = x
    if _positive(lo, hi):
        return 1 if _max_reduce(lo, axis=None) < _INF and _max_reduce(hi, axis=None) < _INF else 0
    if _negative(lo, hi):
        return -1 if _min_reduce(lo, axis=None) > -_INF and _min_reduce(hi, axis=None) > -_INF else 0
    return 0


def _one_sided(x: Interval, c: Interval, sc: int) -> Interval:
    """``x * c`` where every endpoint of ``c`` is finite with the strict sign ``sc``, ``x`` any interval.

    For a finite ``y > 0`` the rounded product ``t * y`` is nondecreasing in ``t`` over the extended reals (NaN
    only for a NaN ``t``), so the least of the four corner products is ``min(x) * c_lo`` or ``min(x) * c_hi``
    with ``min(x) = fmin(x_lo, x_hi)`` (NaN-ignoring, as the four-product form's ``fmin``), and likewise the
    largest; for ``y < 0`` the roles of ``min(x)`` and ``max(x)`` swap. So this is the four-product form's value
    with 6 full-size passes instead of 10 (the difference can only be the sign of a zero).
    """
    xlo, xhi = x
    m, big = np.fmin(xlo, xhi), np.fmax(xlo, xhi)
    if sc < 0:
        m, big = big, m
    c0, c1 = c
    return _nan0(np.fmin(m * c0, m * c1)), _nan0(np.fmax(big * c0, big * c1))


def _scale(a: Interval, c: float) -> Interval:
    if c == 1.0:
        return a
    if c == 0.0:
        z = np.zeros(())
        return z, z
    with errstate(invalid="ignore", over="ignore"):
        return (a[0] * c, a[1] * c) if c > 0 else (a[1] * c, a[0] * c)


def imul(a: Interval, b: Interval) -> Interval:
    """A * b (0 * inf counts as 0, as in extended interval arithmetic).

    A degenerate interval is recognised by identity (``lo is hi``) and multiplied with fewer products.
    """
    a_pt, b_pt = a[0] is a[1], b[0] is b[1]
    if b_pt and _ndim(b[0]) == 0:
        return _scale(a, float(b[0]))
    if a_pt and _ndim(a[0]) == 0:
        return _scale(b, float(a[0]))
    big = max(_size(a[0]), _size(b[0])) >= _FAST_MIN
    if not big and not (a_pt and b_pt) and QUIET.get():
        # Small operands inside quiet(): the sign test with direct reductions is cheaper than the four-product
        # form below (the same values, bit for bit, as for large operands).
        sa = _sign_quick(a)
        sb = _sign_quick(b) if sa else 0
    elif big and SIGN_PATHS and not a_pt and not b_pt:
        # Two intervals: the sign of the smaller operand first (its reductions are the cheap ones); where it has one
        # finite strict sign and the other operand has none, the one-sided form (6 passes instead of 10).
        small_a = _size(a[0]) + _size(a[1]) <= _size(b[0]) + _size(b[1])
        s_small = _finite_sign(a if small_a else b)
        if s_small == 0:
            s_small = _sign(a if small_a else b)
            sa = sb = 0 if s_small == 0 else s_small
            if s_small:
                s_big = _sign(b if small_a else a)
                sa, sb = (s_small, s_big) if small_a else (s_big, s_small)
        else:
            s_big = _sign(b if small_a else a)
            if s_big == 0:
                with errstate(invalid="ignore", over="ignore"):
                    return _one_sided(b, a, s_small) if small_a else _one_sided(a, b, s_small)
            sa, sb = (s_small, s_big) if small_a else (s_big, s_small)
    else:
        sa = 0 if (a_pt and b_pt) or not big else _sign(a)  # two points keep the identity form below
        sb = _sign(b) if sa else 0
    if sa and sb:
        # Both operands of one strict sign (no zero, no NaN): rounded products are monotone in each factor, so
        # the extreme products are two known corners; the same values as the four-product form, bit for bit.
        with errstate(over="ignore"):
            if sa > 0 and sb > 0:
                return a[0] * b[0], a[1] * b[1]
            if sa > 0:
                return a[1] * b[0], a[0] * b[1]
            if sb > 0:
                return a[0] * b[1], a[1] * b[0]
            return a[1] * b[1], a[0] * b[0]
    with errstate(invalid="ignore", over="ignore"):
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
    """1 / a over the nonzero values of a.

    The whole line when 0 is inside ``a``; ``[1/hi, inf]`` when ``a = [0, hi]`` with ``hi > 0`` (and
    ``[-inf, 1/lo]`` when ``a = [lo, 0]``): the values of ``1/x`` for ``x`` in ``a`` other than 0, where a
    function is defined. So ``1 / (x * x)`` with ``x`` near 0 stays one-sided, and ``1 / (c + 1 / (x * x))`` finite.
    """
    lo, hi = a
    if SIGN_PATHS and _same_shape(lo, hi) and (_positive(lo, hi) or _negative(lo, hi)):
        # one strict sign: none of the masks below selects anything
        with errstate(divide="ignore", invalid="ignore", over="ignore"):
            return 1.0 / hi, 1.0 / lo
    zero = (lo <= 0) & (hi >= 0)
    with errstate(divide="ignore", invalid="ignore"):
        rlo, rhi = 1.0 / hi, 1.0 / lo
    pos = (lo == 0) & (hi > 0)  # [0, hi]: 1/x in [1/hi, inf)
    neg = (hi == 0) & (lo < 0)  # [lo, 0]: 1/x in (-inf, 1/lo]
    return (
        np.where(pos, rlo, np.where(zero, -_INF, rlo)),
        np.where(neg, rhi, np.where(zero, _INF, rhi)),
    )


def idiv(a: Interval, b: Interval) -> Interval:
    """A / b."""
    return imul(a, irecip(b))


def iabs(a: Interval) -> Interval:
    """|a|."""
    lo, hi = a
    if SIGN_PATHS and _same_shape(lo, hi) and _positive(lo, hi):  # |x| = x: the mask below selects nothing
        return np.minimum(lo, hi), np.maximum(lo, hi)
    if SIGN_PATHS and _same_shape(lo, hi) and _negative(lo, hi):  # |x| = -x (negation is exact)
        nlo, nhi = -lo, -hi
        return np.minimum(nlo, nhi), np.maximum(nlo, nhi)
    m = np.maximum(np.abs(lo), np.abs(hi))
    low = np.where((lo <= 0) & (hi >= 0), 0.0, np.minimum(np.abs(lo), np.abs(hi)))
    return low, m


def isq(a: Interval) -> Interval:
    """A ** 2."""
    lo, hi = iabs(a)
    with errstate(over="ignore"):
        return lo * lo, hi * hi


def hull(a: Interval, b: Interval) -> Interval:
    """Smallest interval containing a and b."""
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def mag(a: Interval) -> np.ndarray:
    """Max |x| over the interval (inf for NaN)."""
    m = np.abs(a[0])
    b = np.abs(a[1])
    if np.ndim(m) and np.shape(m) == np.shape(b):
        np.maximum(m, b, out=m)
    else:
        m = np.maximum(m, b)
    m = np.asarray(m)
    nan = _has_nan(m) if m.size >= _FAST_MIN else bool(np.isnan(m).any())
    return np.where(np.isnan(m), _INF, m) if nan else m


def _mono(f: Callable[[np.ndarray], np.ndarray], a: Interval, increasing: bool = True) -> Interval:
    with errstate(all="ignore"):
        x, y = f(a[0]), f(a[1])
    return (x, y) if increasing else (y, x)


def _sin(a: Interval) -> Interval:
    lo, hi = a
    with errstate(invalid="ignore"):
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
    # cos at the endpoints themselves (not sin(x + pi/2): the rounded shift moves the value by up to an ulp of
    # the argument, more than the relative widening where cos is near 0); maxima at 2k pi, minima at (2k + 1) pi.
    lo, hi = a
    with errstate(invalid="ignore"):
        c0, c1 = np.cos(lo), np.cos(hi)
        vlo, vhi = np.minimum(c0, c1), np.maximum(c0, c1)
        two_pi = 2 * math.pi
        has_max = np.floor(hi / two_pi) >= np.ceil(lo / two_pi)
        has_min = np.floor((hi - math.pi) / two_pi) >= np.ceil((lo - math.pi) / two_pi)
    wide = ~np.isfinite(lo) | ~np.isfinite(hi) | (hi - lo >= two_pi)
    return np.where(has_min | wide, -1.0, vlo), np.where(has_max | wide, 1.0, vhi)


def _even_mono(f: Callable[[np.ndarray], np.ndarray], a: Interval) -> Interval:
    """f(|x|) for f increasing on [0, inf)."""
    lo, hi = iabs(a)
    with errstate(over="ignore"):
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
                with errstate(over="ignore"):
                    return m[0] ** k, m[1] ** k
            with errstate(over="ignore"):
                return lo**k, hi**k
        return irecip(ipow_const(a, -k))
    if SIGN_PATHS and _same_shape(lo, hi) and _positive(lo, hi):  # no clipping at 0, no mask: both ends are > 0
        with errstate(all="ignore"):
            return (lo**c, hi**c) if c > 0 else (hi**c, lo**c)
    neg = lo < 0
    with errstate(all="ignore"):
        if c > 0:
            v = (np.maximum(lo, 0.0) ** c, np.maximum(hi, 0.0) ** c)
        else:
            v = (np.where(hi > 0, hi**c, _INF), np.where(lo > 0, lo**c, _INF))
    return np.where(neg, -_INF, v[0]), np.where(neg, _INF, v[1])


def _ilog(a: Interval) -> Interval:
    lo, hi = a
    if SIGN_PATHS and _same_shape(lo, hi) and _positive(lo, hi):  # both ends > 0: the masks below select nothing
        with errstate(all="ignore"):
            return np.log(lo), np.log(hi)
    with errstate(all="ignore"):
        vlo = np.where(lo > 0, np.log(lo), -_INF)
        vhi = np.where(hi > 0, np.log(hi), -_INF)
    bad = lo < 0
    return np.where(bad, -_INF, vlo), np.where(bad, _INF, vhi)


# ----------------------------------------------------------------------------------------------------------------
# The rule table: op name -> rule(args, attrs) -> (value enclosure, one derivative enclosure per operand)
# ----------------------------------------------------------------------------------------------------------------
IntervalRule = Callable[[list[Interval], dict[str, Any]], tuple[Interval, list[Interval]]]


def _unary(f: Callable[[Interval], tuple[Interval, Interval]]) -> IntervalRule:
    """A table rule from ``f(a) -> (value, derivative)`` of one operand; both enclosures are widened."""

    def rule(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
        v, d = f(args[0])
        return widen(*v), [widen(*d)]

    return rule


def _identity(a: Interval) -> tuple[Interval, Interval]:
    return a, const(1.0, a[0])


def _neg(a: Interval) -> tuple[Interval, Interval]:
    return ineg(a), const(-1.0, a[0])


def _abs(a: Interval) -> tuple[Interval, Interval]:
    lo, hi = a
    d = (np.where(hi < 0, -1.0, np.where(lo > 0, 1.0, -1.0)), np.where(lo > 0, 1.0, np.where(hi < 0, -1.0, 1.0)))
    return iabs(a), d


def _tan(a: Interval) -> tuple[Interval, Interval]:
    lo, hi = a
    with errstate(invalid="ignore"):
        pole = np.floor((hi - math.pi / 2) / math.pi) >= np.ceil((lo - math.pi / 2) / math.pi)
    pole = pole | ~np.isfinite(lo) | ~np.isfinite(hi)
    v = _mono(np.tan, a)
    v = (np.where(pole, -_INF, v[0]), np.where(pole, _INF, v[1]))
    return v, iadd(const(1.0, lo), isq(v))


def _exp(a: Interval) -> tuple[Interval, Interval]:
    v = _mono(np.exp, a)
    return v, v


def _exp2(a: Interval) -> tuple[Interval, Interval]:
    v = _mono(np.exp2, a)
    return v, iscale(math.log(2), v)


def _log_base(c: float) -> Callable[[Interval], tuple[Interval, Interval]]:
    def f(a: Interval) -> tuple[Interval, Interval]:
        return iscale(c, _ilog(a)), iscale(c, irecip(a))

    return f


def _log1p(a: Interval) -> tuple[Interval, Interval]:
    b = iadd(a, point(1.0))
    return _ilog(b), irecip(b)


def _power_of(c: float) -> Callable[[Interval], tuple[Interval, Interval]]:
    """``x ** c`` (``sqrt``: 0.5, ``rsqrt``: -0.5)."""

    def f(a: Interval) -> tuple[Interval, Interval]:
        return ipow_const(a, c), iscale(c, ipow_const(a, c - 1))

    return f


def _cbrt(a: Interval) -> tuple[Interval, Interval]:
    v = _mono(np.cbrt, a)
    return v, iscale(1 / 3, irecip(isq(v)))


def _tanh(a: Interval) -> tuple[Interval, Interval]:
    v = _mono(np.tanh, a)
    return v, isub(const(1.0, a[0]), isq(v))


def _arc_sin_cos(op: str) -> Callable[[Interval], tuple[Interval, Interval]]:
    def f(a: Interval) -> tuple[Interval, Interval]:
        lo, hi = a
        inside = (lo >= -1) & (hi <= 1)
        v = _mono(np.arcsin, a) if op == "arcsin" else _mono(np.arccos, a, increasing=False)
        d = ipow_const(isub(const(1.0, lo), isq(a)), -0.5)
        d = d if op == "arcsin" else ineg(d)
        return (np.where(inside, v[0], -_INF), np.where(inside, v[1], _INF)), d

    return f


def _sigmoid(a: Interval) -> tuple[Interval, Interval]:
    v = _mono(sc.expit, a)
    return v, imul(v, isub(const(1.0, a[0]), v))


def _relu(a: Interval) -> tuple[Interval, Interval]:
    lo, hi = a
    return (np.maximum(lo, 0.0), np.maximum(hi, 0.0)), (np.where(lo > 0, 1.0, 0.0), np.where(hi < 0, 0.0, 1.0))


def _step_of(f: Callable[[np.ndarray], np.ndarray]) -> Callable[[Interval], tuple[Interval, Interval]]:
    return lambda a: _step(f, a)


def _add(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    return widen(*iadd(*args)), [point(1.0), point(1.0)]


def _sub(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    return widen(*isub(*args)), [point(1.0), point(-1.0)]


def _mul(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    a, b = args
    return widen(*imul(a, b)), [b, a]


def _div(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    a, b = args
    rb = irecip(b)
    return widen(*imul(a, rb)), [widen(*rb), widen(*ineg(imul(a, irecip(isq(b)))))]


def _pow(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
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


def _extreme(op: str) -> IntervalRule:
    """``maximum`` / ``minimum``: exact value enclosure, derivative 1/0 where one operand always wins, else [0, 1]."""

    def rule(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
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

    return rule


def _hypot(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    a, b = args
    h = ipow_const(iadd(isq(a), isq(b)), 0.5)

    def clamp(x: Interval) -> Interval:
        return np.maximum(x[0], -1.0), np.minimum(x[1], 1.0)

    return widen(*h), [clamp(idiv(a, h)), clamp(idiv(b, h))]


def _arctan2(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
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


def _mod(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
    (al, ah), (bl, bh) = args
    with errstate(all="ignore"):
        k0, k1 = np.floor(al / bl), np.floor(ah / bl)
    same = (bl == bh) & (k0 == k1) & np.isfinite(k0)
    v = (np.where(same, al - k0 * bl, np.minimum(0.0, bl)), np.where(same, ah - k0 * bl, np.maximum(0.0, bh)))
    d = (np.where(same, 1.0, -_INF), np.where(same, 1.0, _INF))
    return widen(*v), [d, (np.where(same, 0.0, -_INF), np.where(same, 0.0, _INF))]


def _compare(op: str) -> IntervalRule:
    """A comparison: 0/1 where the boxes decide it, else [0, 1] with a jump (derivative [-inf, inf])."""

    def rule(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
        (al, ah), (bl, bh) = args
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
        if attrs.get("null_ties") and op in _logic.ORDER_OPS:
            # P(a == b) = 0 (opgraph.dcg.logic.mark_null_ties): a box that meets the other only at its end is
            # decided (a null set differs); a box of one tied point keeps the rule above (the value at a tie)
            below, above = ah <= bl, al >= bh
            tie = below & above
            t = t | ((below if op in ("lt", "le") else above) & ~tie)
            f = f | ((above if op in ("lt", "le") else below) & ~tie)
        v = (np.where(t, 1.0, 0.0), np.where(f, 0.0, 1.0))
        decided = t | f
        d = (np.where(decided, 0.0, -_INF), np.where(decided, 0.0, _INF))
        return v, [d, d]

    return rule


def _where(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
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


#: Interval rule of every op :mod:`opgraph.dcg` evaluates: ``RULES[op](args, attrs)`` with one interval per operand
#: returns the value enclosure and one partial-derivative enclosure per operand over the box. The keys are the
#: supported ops (besides the sources ``input`` and ``const``); a new elementwise op needs its entry in the core op
#: table (:mod:`opgraph.graph.ops`, with a NumPy implementation), here, and in :data:`opgraph.dcg.growth.RULES`.
RULES: dict[str, IntervalRule] = {
    "add": _add,
    "sub": _sub,
    "mul": _mul,
    "div": _div,
    "pow": _pow,
    "mod": _mod,
    "neg": _unary(_neg),
    "abs": _unary(_abs),
    "lt": _compare("lt"),
    "le": _compare("le"),
    "gt": _compare("gt"),
    "ge": _compare("ge"),
    "eq": _compare("eq"),
    "ne": _compare("ne"),
    "where": _where,
    "sin": _unary(lambda a: (_sin(a), _cos(a))),
    "cos": _unary(lambda a: (_cos(a), ineg(_sin(a)))),
    "tan": _unary(_tan),
    "arcsin": _unary(_arc_sin_cos("arcsin")),
    "arccos": _unary(_arc_sin_cos("arccos")),
    "arctan": _unary(lambda a: (_mono(np.arctan, a), irecip(iadd(const(1.0, a[0]), isq(a))))),
    "sinh": _unary(lambda a: (_mono(np.sinh, a), _even_mono(np.cosh, a))),
    "cosh": _unary(lambda a: (_even_mono(np.cosh, a), _mono(np.sinh, a))),
    "tanh": _unary(_tanh),
    "arcsinh": _unary(lambda a: (_mono(np.arcsinh, a), ipow_const(iadd(const(1.0, a[0]), isq(a)), -0.5))),
    "arctanh": _unary(lambda a: (_mono(np.arctanh, a), irecip(isub(const(1.0, a[0]), isq(a))))),
    "exp": _unary(_exp),
    "exp2": _unary(_exp2),
    "expm1": _unary(lambda a: (_mono(np.expm1, a), _mono(np.exp, a))),
    "log": _unary(_log_base(1.0)),
    "log1p": _unary(_log1p),
    "log2": _unary(_log_base(1 / math.log(2))),
    "log10": _unary(_log_base(1 / math.log(10))),
    "sqrt": _unary(_power_of(0.5)),
    "rsqrt": _unary(_power_of(-0.5)),
    "cbrt": _unary(_cbrt),
    "square": _unary(lambda a: (isq(a), iscale(2.0, a))),
    "reciprocal": _unary(lambda a: (irecip(a), ineg(irecip(isq(a))))),
    "sign": _unary(_step_of(np.sign)),
    "floor": _unary(_step_of(np.floor)),
    "ceil": _unary(_step_of(np.ceil)),
    "rint": _unary(_step_of(np.rint)),
    "maximum": _extreme("maximum"),
    "minimum": _extreme("minimum"),
    "arctan2": _arctan2,
    "hypot": _hypot,
    "erf": _unary(lambda a: (_mono(sc.erf, a), iscale(2 / math.sqrt(math.pi), _mono(np.exp, ineg(isq(a)))))),
    "sigmoid": _unary(_sigmoid),
    "relu": _unary(_relu),
    "identity": _unary(_identity),
    "copy": _unary(_identity),
    "contiguous": _unary(_identity),
    "convert": _unary(_identity),
}
RULES.update(_logic.INTERVAL_RULES)  # & | ^ ~ and np.logical_* of comparisons (opgraph.dcg.logic)

#: The ops :mod:`opgraph.dcg` supports: the keys of :data:`RULES`.
SUPPORTED_OPS = frozenset(RULES)


def unsupported(op: str) -> DistError:
    """The error for an op that has no interval rule (names the op and what to use instead)."""
    return DistError(
        f"op {op!r} is not supported by opgraph.dcg; use arithmetic, comparisons, np.where and elementwise "
        "NumPy functions (sin, exp, log, sqrt, maximum, ...)"
    )


def rule(op: str, args: list[Interval], attrs: dict[str, Any] | None = None) -> tuple[Interval, list[Interval]]:
    """Value enclosure and per-operand partial-derivative enclosures of ``op`` over the box ``args``.

    Raises:
        DistError: the op is not supported (not a key of :data:`RULES`).
    """
    fn = RULES.get(op)
    if fn is None:
        raise unsupported(op)
    return fn(args, attrs or {})
