"""Affine-arithmetic enclosures per grid box (first-order forms without the wrapping effect).

On every box of a node's joint grid (axes ``K``: inputs, compressed and grid-free extreme nodes), the node's
exact value is enclosed by an affine form

    V(x) in c + sum_i a_i e_i + r [-1, 1],   e_i = (x_i - m_i) / h_i in [-1, 1],

with ``[m_i - h_i, m_i + h_i]`` the cell of axis ``i`` (one noise symbol per axis of the grid) and ``r >= 0`` the
accumulated nonlinear and rounding error. ``c``, ``a_i`` and ``r`` are arrays on the node's grid (broadcast
shapes, one per axis: ``axes + 2`` arrays per node). Linear ops are exact on the coefficients (a rotation of
``(x, v)`` rotates the coefficients, so boxes do not wrap); ``*`` has the usual bilinear remainder (with the
diagonal ``a_i b_i e_i^2 in [0, a_i b_i]`` centred); ``exp``, ``log``, ``sqrt``, ``reciprocal``, ``tanh`` and
constant powers use the Chebyshev (min-max) linearisation on the operand's range where the function is convex or
concave there; every other op with one non-constant operand uses the mean-value linearisation from the interval
rule's derivative enclosure (:data:`opgraph.dcg.intervals.RULES`); ops without a rule, and any box where the form
is wider than the node's interval enclosure, fall back to that enclosure as a fresh error term
(``c = midpoint, a = 0, r = half-width``), so the form is never unsound for lack of a rule.

Rounding: every computed ``r`` is enlarged by ``2**-50`` times the magnitudes involved (``|c| + sum |a_i| + r``
of the operands and result), far above the few ulps of error of each coefficient's computation; NumPy's
elementary functions are trusted to a few ulps, as in :mod:`opgraph.dcg.intervals`.

Use (:meth:`opgraph.dcg.engine.Evaluator.cellwise`): with ``x'`` the box's atom (``e'_i`` its noise values) and
``V'`` the computed value there,

    E[|V(X) - V'|; box] <= sum_i |a_i| / h_i E[|X_i - x'_i|; box] + (r + |c + sum_i a_i e'_i - V'|) P(box),

since ``V(X) - V' = sum_i a_i (e_i - e'_i) + (c + sum_i a_i e'_i - V') + rho`` with ``|rho| <= r``. The engine
keeps, per box, the smallest of this, its derivative (mean-value) bound and its value-width bound. The forms also
give value enclosures at every walk prefix (``c + sum_{i not in prefix} a_i e'_i +- (sum_{i in prefix} |a_i| +
r)``), which the engine intersects with its interval ones (both are valid).
"""

from __future__ import annotations

import contextvars
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.dcg import affstack
from opgraph.dcg import intervals as iv

#: Relative slack added for rounding (8 times the unit roundoff 2**-53 of one operation).
_SLACK = 2.0**-50
_TINY = 1e-300

#: Noise symbols with ids from ERR_BASE on are error symbols: fresh ones carry the new error of each nonlinear op
#: (so that linear maps rotate it with the rest of the form instead of adding its magnitude); ids below are axes.
ERR_BASE = 1 << 40
_err_ids = itertools.count(ERR_BASE)
#: Most error symbols one form keeps (the smallest beyond are merged into ``r``).
MAX_FORM_ERR = 96
#: Live forms on one grid are condensed jointly (:func:`condense`) once they carry more than this many error
#: symbols, in groups of at most MAX_GROUP forms.
CONDENSE_AT = 48
MAX_GROUP = 6
#: A node's form is replaced by its interval enclosure (a fresh error term) on boxes where that enclosure's
#: half-width is below BOX_FACTOR times the form's radius (after a linear or bilinear op: a tie there would hand
#: whole linear recurrences to the wrapping intervals), or BOX_FACTOR_NONLINEAR times it (after a linearised op,
#: whose remainder is first order in the range: the narrower enclosure then helps the ops downstream more).
BOX_FACTOR = 0.5
BOX_FACTOR_NONLINEAR = 1.0 - 1e-6


def _is_err(i: int) -> bool:
    return i >= ERR_BASE


def _axis_abs(a: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    return {i: np.abs(v) for i, v in a.items() if i < ERR_BASE}  # (_is_err inlined: per node, per symbol)


def _fresh(a: dict[int, np.ndarray], amount: Any) -> None:
    """Add a fresh error symbol with coefficient ``amount`` (>= 0 per box) to ``a`` (not when all zero)."""
    amount = np.asarray(amount, dtype=float)
    if np.any(amount):
        a[next(_err_ids)] = amount * (1 + _SLACK)


#: Whether the engine forms affine enclosures (``ENABLED.set(False)`` gives the interval-only engine, for the
#: before/after benchmark ``benchmarks/dcg/affine_bench.py``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_affine", default=True)


@dataclass
class Aff:
    """``c + sum_i a[i] e_i + r [-1, 1]`` on the grid of ``axes`` (arrays broadcastable to that grid)."""

    axes: tuple[int, ...]
    c: np.ndarray
    a: dict[int, np.ndarray]
    r: np.ndarray
    # Lipschitz constants of the remainder R(e) = V - c - sum_i a_i e_i in each e_i (None: unknown, i.e. inf).
    L: dict[int, np.ndarray] | None = None
    # The radius, computed once per form (a form is read as an operand by every user, and by the engine twice):
    # None until asked for; :func:`condense`, the one place that changes a form in place, resets it.
    _rad: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _sabs: Any = field(default=None, init=False, repr=False, compare=False)
    # ``sum |a_j|`` over the error symbols (before the rounding factor of :func:`_err_total`), kept by :func:`_clean`
    # beside ``_sabs`` (the same ``|a_j|`` arrays); None: not kept.
    _etot: Any = field(default=None, init=False, repr=False, compare=False)

    def abs_sum(self) -> Any:
        """``sum_i |a_i|`` (Python's ``sum`` from 0, in the order of ``a``; memoised like :meth:`radius`)."""
        s = self._sabs
        if s is None or not iv.FAST.get():
            s = self._sabs = sum(np.abs(x) for x in self.a.values())
        return s

    def radius(self) -> np.ndarray:
        """``sum |a_i| + r`` (rounded up). The caller must not change the returned array in place (it is kept)."""
        rad = self._rad
        if rad is None or not iv.FAST.get():
            tot = np.abs(self.r) if not self.a else self.abs_sum() + self.r
            rad = self._rad = np.asarray(tot, dtype=float) * (1 + _SLACK)
        return rad

    def mag(self) -> np.ndarray:
        """``|c| + sum |a_i| + r``."""
        return np.abs(self.c) + self.radius()


def expand_axes(arr: Any, a_axes: Sequence[int], k_axes: Sequence[int]) -> np.ndarray:
    """``arr`` laid out on axes ``a_axes``, reshaped to broadcast over the axes ``k_axes`` (a superset, any order)."""
    arr = np.asarray(arr, dtype=float)
    if arr.ndim == 0:
        return arr
    if a_axes == k_axes:  # the same layout (the common case): a new view, as the general reshape below gives
        return arr.reshape(arr.shape)
    pos = {t: i for i, t in enumerate(a_axes)}
    return arr.reshape([arr.shape[pos[t]] if t in pos else 1 for t in k_axes])


def expand(f: Aff, K: tuple[int, ...]) -> Aff:
    """``f`` reshaped onto the grid of ``K`` (a superset of its axes, in the same order)."""
    if f.axes == K:
        return f
    L = None if f.L is None else {i: expand_axes(x, f.axes, K) for i, x in f.L.items()}
    out = Aff(
        K,
        expand_axes(f.c, f.axes, K),
        {i: expand_axes(x, f.axes, K) for i, x in f.a.items()},
        expand_axes(f.r, f.axes, K),
        L,
    )
    if f._rad is not None:  # the same numbers, laid out on K (elementwise sums commute with the reshape)
        out._rad = expand_axes(f._rad, f.axes, K)
    if f._sabs is not None and f.a:
        out._sabs = expand_axes(f._sabs, f.axes, K)
    return out


def _clean(f: Aff, mag: Any, keep_abs: bool = False) -> Aff:
    """Add the rounding slack ``2**-50 * mag`` to ``r``; NaN anywhere makes the box invalid (``r = inf``).

    ``keep_abs`` (for a form whose radius is read next, as every node's form is by :func:`_tighter`): the NaN test
    reads ``sum_i |a_i|`` (:meth:`Aff.abs_sum`, NaN where any coefficient is), which the result then keeps, instead
    of reducing every coefficient once more. The same values either way.
    """
    sabs: Any = None
    etot: Any = None
    a0 = f.a
    with iv.errstate(invalid="ignore", over="ignore"):
        r = f.r * (1 + _SLACK) + _SLACK * np.asarray(mag, dtype=float) + _TINY
        bad: Any = False
        fast = iv.FAST.get()
        if fast and keep_abs and f.a:
            # Aff.abs_sum of the result (the same dict, the same order: Python's sum from 0) and, from the same
            # |a_j| arrays, _err_total's sum over the error symbols (from np.zeros(()), in that order too)
            sums = affstack.abs_sums(f.a, ERR_BASE) if affstack.ENABLED.get() else None
            if sums is not None:
                sabs, etot = sums  # the same folds on a stack (opgraph.dcg.affstack)
            else:
                sabs, etot = 0, np.zeros(())
                for i, x in f.a.items():
                    ab = np.abs(x)
                    sabs = sabs + ab
                    if i >= ERR_BASE:
                        etot = etot + ab
            # NaN when any coefficient, r or c is (or on inf - inf: then the exact mask below, which is the same test)
            suspect = _isnan(_add_reduce(sabs + r + f.c, axis=None))
        elif not fast:
            suspect = True
        else:
            # One sum over all coefficients first: it is NaN when any of them is (or on inf - inf); only then the
            # mask. (Small grids: one concatenation; large ones: one sum per array, no copy of every coefficient.)
            suspect = (
                np.isnan(_add_reduce(_flat_all(r, f.c, *f.a.values()), axis=None))
                if np.size(r) < iv._FAST_MIN
                else any(np.isnan(_add_reduce(x, axis=None)) for x in (r, f.c, *f.a.values()))
            )
        if suspect:
            bad = np.isnan(r) | np.isnan(f.c)
            for x in f.a.values():
                bad = bad | np.isnan(x)
    L = None if f.L is None else {i: _lip(x) for i, x in f.L.items()}
    errs = [i for i in f.a if i >= ERR_BASE] if len(f.a) > MAX_FORM_ERR else []
    if len(errs) > MAX_FORM_ERR:
        errs.sort(key=lambda i: float(np.max(np.abs(f.a[i]))))
        a = dict(f.a)
        for i in errs[: len(errs) - MAX_FORM_ERR]:
            with iv.errstate(invalid="ignore", over="ignore"):
                r = r + np.abs(a.pop(i)) * (1 + _SLACK)
        f = Aff(f.axes, f.c, a, r, L)
    if np.any(bad):
        return Aff(
            f.axes,
            np.where(bad, 0.0, f.c),
            {i: np.where(bad, 0.0, x) for i, x in f.a.items()},
            np.where(bad, np.inf, r),
            L,
        )
    out = Aff(f.axes, f.c, f.a, r, L)
    if sabs is not None and out.a is a0:
        out._sabs, out._etot = sabs, etot  # no symbol merged into r above, no box masked: the coefficients summed
    return out


_add_reduce = np.add.reduce
_isnan = iv._isnan


def _flat_all(*arrays: Any) -> np.ndarray:
    """Every element of ``arrays`` in one flat array (for a single reduction over all of them)."""
    return np.concatenate([np.asarray(x, dtype=float).reshape(-1) for x in arrays])


def _lip(x: Any) -> np.ndarray:
    """A Lipschitz constant rounded up (NaN: inf)."""
    x = np.asarray(x, dtype=float) * (1 + _SLACK)
    if iv.QUIET.get() and not _isnan(_add_reduce(x, axis=None)):
        return np.asarray(x)  # no NaN (one sum; inf - inf takes the mask below, which then changes nothing)
    return np.where(np.isnan(x), np.inf, x)


def _lsum(*terms: tuple[Any, dict[int, np.ndarray] | None]) -> dict[int, np.ndarray] | None:
    """``sum_k w_k L_k`` per axis (None when any ``L_k`` with a nonzero weight is unknown)."""
    out: dict[int, Any] = {}
    for w, L in terms:
        if L is None:
            return None
        for i, x in L.items():
            with iv.errstate(invalid="ignore", over="ignore"):
                t = w * x
            out[i] = out[i] + t if i in out else t
    return {i: _lip(x) for i, x in out.items()}


def constant(value: float) -> Aff:
    """A constant (exact up to the rounding of its computation)."""
    c = np.asarray(float(value))
    return Aff((), c, {}, np.asarray(_SLACK * abs(float(value))), {})


def axis_form(axis_id: int, lo: np.ndarray, hi: np.ndarray, atoms: np.ndarray) -> Aff:
    """The form of an axis' own value: ``m + h e`` on each finite cell (``r = inf`` on unbounded cells)."""
    lo = np.minimum(lo, atoms)
    hi = np.maximum(hi, atoms)
    c, h = half_widths(lo, hi)
    fin = np.isfinite(c) & np.isfinite(h)
    return Aff(
        (axis_id,),
        np.where(fin, c, 0.0),
        {axis_id: np.where(fin, h, 0.0)},
        np.where(fin, 0.0, np.inf).astype(float),
        {},
    )


def half_widths(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre ``m`` and half-width ``h`` of cells ``[lo, hi]``, ``h`` rounded up so that ``m +- h`` covers them."""
    with iv.errstate(invalid="ignore", over="ignore"):
        m = 0.5 * lo + 0.5 * hi
        h = (0.5 * hi - 0.5 * lo) + 2.0**-50 * (np.abs(m) + np.abs(hi - lo))
    return m, h


def _box_form(K: tuple[int, ...], enc: iv.Interval) -> Aff:
    """The fallback: the interval enclosure ``enc`` as a fresh error term."""
    lo, hi = enc
    with iv.errstate(invalid="ignore", over="ignore"):
        c = 0.5 * lo + 0.5 * hi
        r = (0.5 * hi - 0.5 * lo) * (1 + _SLACK) + _SLACK * np.abs(c) + _TINY
    fin = np.isfinite(c) & np.isfinite(r)
    return Aff(K, np.where(fin, c, 0.0), {}, np.where(fin, r, np.inf))


def _tighter(f: Aff, K: tuple[int, ...], enc: iv.Interval | None, factor: float = 0.5) -> Aff:
    """Per box, ``f``, or the enclosure ``enc`` as a fresh error term where it is much narrower (:data:`BOX_FACTOR`)."""
    if enc is None:
        return f
    g = _box_form(K, enc)
    # Only where the enclosure is much narrower: the form's noise terms keep the dependence on the inputs that
    # later ops cancel (a tie would otherwise hand whole linear recurrences to the wrapping intervals).
    use = g.r < factor * f.radius()
    if not use.any():
        return f
    # Where the enclosure is used, R = V - c' has the Lipschitz constants of V itself: |a_i| + L_i.
    L = None
    if f.L is not None:
        L = {}
        for i in K:
            ai, li = f.a.get(i), f.L.get(i)
            if ai is None and li is None:
                continue
            full = (0.0 if ai is None else np.abs(ai)) + (0.0 if li is None else li)
            L[i] = _lip(np.where(use, full, 0.0 if li is None else li))
    a = {i: np.where(use, 0.0, x) for i, x in f.a.items()}
    return Aff(K, np.where(use, g.c, f.c), a, np.where(use, g.r, f.r), L)


# ------------------------------------------------------------------------------------------------------------------
# Linear and bilinear rules
# ------------------------------------------------------------------------------------------------------------------
#: Symbols from which :func:`mul`, :func:`add` and :func:`scale` try the stacked loops (:mod:`opgraph.dcg.affstack`).
_STACK_AT = 12


def add(x: Aff, y: Aff, sign: float = 1.0) -> Aff:
    """``x + sign * y`` (both on the same grid)."""
    a = dict(x.a)
    with iv.errstate(invalid="ignore", over="ignore"):
        if sign in (1.0, -1.0) and iv.FAST.get():
            # u + 1.0 * v is u + v and u + (-1.0) * v is u - v, bit for bit (IEEE subtraction adds the negation):
            # one operation per symbol instead of two. A symbol of y alone keeps y's array for sign 1 (the values
            # of 1.0 * v; coefficient arrays are never changed in place, forms share them as _PASS ops do).
            shared = _add_stacked(a, y.a, sign) if len(y.a) >= _STACK_AT and affstack.ENABLED.get() else None
            if shared is not None:  # the shared symbols' sums on stacks (opgraph.dcg.affstack), in y's order
                for i, v in y.a.items():
                    a[i] = shared[i] if i in shared else (v if sign == 1.0 else np.negative(v))
                c = np.add(x.c, y.c) if sign == 1.0 else np.subtract(x.c, y.c)
            elif sign == 1.0:
                for i, v in y.a.items():
                    a[i] = np.add(a[i], v) if i in a else v
                c = np.add(x.c, y.c)
            else:
                for i, v in y.a.items():
                    a[i] = np.subtract(a[i], v) if i in a else np.negative(v)
                c = np.subtract(x.c, y.c)
        else:
            for i, v in y.a.items():
                a[i] = a[i] + sign * v if i in a else sign * v
            c = x.c + sign * y.c
        return _clean(Aff(x.axes, c, a, x.r + y.r, _lsum((1.0, x.L), (1.0, y.L))), x.mag() + y.mag(), keep_abs=True)


def _add_stacked(a: dict[int, Any], b: dict[int, Any], sign: float) -> dict[int, Any] | None:
    """``a[i] + b[i]`` (``sign`` -1: ``a[i] - b[i]``) for the symbols of both, on two stacks (None: not stacked).

    The stacks must have as many axes each (then every row broadcasts as the two symbols' arrays do).
    """
    keys = [i for i in b if i in a]
    if len(keys) < affstack.MIN_STACK:
        return None
    sa, sb = affstack.stack([a[i] for i in keys]), affstack.stack([b[i] for i in keys])
    if sa is None or sb is None or sa.ndim != sb.ndim:
        return None
    return dict(zip(keys, np.add(sa, sb) if sign == 1.0 else np.subtract(sa, sb), strict=True))


def _scaled(k: np.ndarray, a: dict[int, Any]) -> dict[int, Any]:
    """``{i: k * a[i]}``, on one stack where :func:`opgraph.dcg.affstack.stack` takes ``a``'s arrays."""
    if len(a) >= _STACK_AT and affstack.ENABLED.get():
        st = affstack.stack(list(a.values()))
        if st is not None and k.ndim < st.ndim:
            return dict(zip(a, k * st, strict=True))
    return {i: k * v for i, v in a.items()}


def scale(x: Aff, k: Any, shift: Any = 0.0) -> Aff:
    """``k * x + shift`` for arrays (or numbers) ``k``, ``shift`` constant on each box."""
    k = np.asarray(k, dtype=float)
    with iv.errstate(invalid="ignore", over="ignore"):
        out = Aff(x.axes, k * x.c + shift, _scaled(k, x.a), np.abs(k) * x.r, _lsum((np.abs(k), x.L)))
        return _clean(out, np.abs(k) * x.mag() + np.abs(shift), keep_abs=True)


def _times_near_const(k: Aff, y: Aff) -> Aff:
    """``k * y`` for a form ``k`` without noise terms (a constant up to its remainder ``k.r``, constant on a box)."""
    out = scale(y, k.c)
    with iv.errstate(invalid="ignore", over="ignore"):
        r = (out.r + k.r * y.mag()) * (1 + _SLACK)
        L = _lsum((1.0, out.L), (k.r, y.L), (k.r, _axis_abs(y.a)))
    res = Aff(out.axes, out.c, out.a, np.where(np.isnan(r), np.inf, r), L)
    res._sabs, res._etot = out._sabs, out._etot  # the same coefficients
    return res


def mul(x: Aff, y: Aff) -> Aff:
    """``x * y`` with the bilinear remainder (diagonal terms ``a_i b_i e_i^2`` centred on ``[0, a_i b_i]``)."""
    if not x.a and x.L is not None and not any(np.any(v) for v in x.L.values()):
        return _times_near_const(x, y)
    if not y.a and y.L is not None and not any(np.any(v) for v in y.L.values()):
        return _times_near_const(y, x)
    with iv.errstate(invalid="ignore", over="ignore"):
        ax = x.abs_sum() if x.a else np.zeros(())
        ay = y.abs_sum() if y.a else np.zeros(())
        c = x.c * y.c
        diag: Any = 0.0
        a: dict[int, np.ndarray] = {}
        xget, yget, xc, yc, arr = x.a.get, y.a.get, x.c, y.c, np.ndarray
        # the symbols in a fixed order (x's, then y's others): a set's order follows the error symbols' ids, which
        # a process-wide counter hands out, so the sums below would round differently from one call to the next
        keys = list(x.a) + [i for i in y.a if i not in x.a]
        stacked = _mul_stacked(keys, x, y, c) if len(keys) >= _STACK_AT and affstack.ENABLED.get() else None
        if stacked is not None:
            c, diag, a = stacked
            keys = []
        for i in keys:
            xi, yi = xget(i), yget(i)
            t = 0.0
            if yi is not None:
                t = t + xc * yi
            if xi is not None:
                t = t + yc * xi
            if xi is not None and yi is not None:
                p = xi * yi
                c = c + 0.5 * p
                diag = diag + 0.5 * np.abs(p)
            a[i] = t if type(t) is arr and t.dtype == float else np.asarray(t, dtype=float)
        r = np.abs(x.c) * y.r + np.abs(y.c) * x.r + ax * y.r + x.r * ay + x.r * y.r
        _fresh(a, np.maximum(ax * ay - diag, 0.0))
        # R = Q + Ax rho_y + rho_x Ay + rho_x rho_y + cx rho_y + cy rho_x (Q the centred bilinear part):
        # d/de_i is at most |ax_i| (SAy + ry) + |ay_i| (SAx + rx) + Ly_i (SAx + rx + |cx|) + Lx_i (SAy + ry + |cy|).
        L = (
            None  # unknown either way (_lsum's answer), without building the first two terms
            if x.L is None or y.L is None
            else _lsum(
                (ay + y.r, _axis_abs(x.a)),
                (ax + x.r, _axis_abs(y.a)),
                (ax + x.r + np.abs(x.c), y.L),
                (ay + y.r + np.abs(y.c), x.L),
            )
        )
        return _clean(Aff(x.axes, c, a, r, L), x.mag() * y.mag(), keep_abs=True)


def _mul_stacked(keys: Sequence[int], x: Aff, y: Aff, c0: Any) -> tuple[Any, Any, dict[int, np.ndarray]] | None:
    """:func:`mul`'s per-symbol loop on stacks (:mod:`opgraph.dcg.affstack`): ``(c, diag, a)``, the same numbers.

    The loop's terms per symbol ``i`` (in the iteration order of ``keys``): ``t = 0.0 + xc y_i`` (``+ yc x_i``),
    and where both forms carry ``i``, ``p = x_i y_i`` with ``c = c + 0.5 p`` and ``diag = diag + 0.5 |p|``. The
    symbols of both forms, of ``x`` only and of ``y`` only are three stacks; each must hold float arrays of one
    shape with at least as many axes as the centres (so that every row is the loop's ``t``, with its shape).
    None where one does not.
    """
    xa, ya, xc, yc = x.a, y.a, x.c, y.c
    order = list(keys)
    both = [k for k, i in enumerate(order) if i in xa and i in ya]
    only_x = [k for k, i in enumerate(order) if i not in ya]
    only_y = [k for k, i in enumerate(order) if i not in xa]
    cn = max(np.ndim(xc), np.ndim(yc))
    stacks = []
    for idx, forms in ((both, (xa, ya)), (only_x, (xa,)), (only_y, (ya,))):
        for f in forms:
            st = affstack.stack([f[order[k]] for k in idx]) if idx else None
            if idx and (st is None or st.ndim - 1 < cn):
                return None
            stacks.append(st)
    xb, yb, xo, yo = stacks
    rows: list[Any] = [None] * len(order)
    if only_x:
        rows_of(rows, only_x, yc * xo + 0.0)
    if only_y:
        rows_of(rows, only_y, xc * yo + 0.0)
    c: Any = c0
    diag: Any = 0.0
    if both:
        rows_of(rows, both, (xc * yb + 0.0) + yc * xb)
        p = xb * yb
        terms = np.empty((len(both) + 1, *np.broadcast_shapes(np.shape(c0), p.shape[1:])))
        terms[0] = c0
        terms[1:] = 0.5 * p
        c = affstack.fold_rows(terms)
        diag = affstack.fold_rows(0.5 * np.abs(p))
    return c, diag, dict(zip(order, rows, strict=True))


def rows_of(rows: list[Any], idx: list[int], st: np.ndarray) -> None:
    """``rows[idx[j]] = st[j]`` (the rows of a stacked result back at their symbols' places)."""
    for k, v in zip(idx, st, strict=True):
        rows[k] = v


# ------------------------------------------------------------------------------------------------------------------
# Linearisations of one-operand functions: f(x) = alpha x + beta + delta, |delta| <= dlt on the operand's range
# ------------------------------------------------------------------------------------------------------------------
Lin = tuple[np.ndarray, np.ndarray, np.ndarray]


def _chebyshev(
    f: Callable[[np.ndarray], np.ndarray],
    df: Callable[[np.ndarray], np.ndarray],
    touch: Callable[[np.ndarray], np.ndarray],
    curv: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
) -> Lin:
    """Min-max linearisation of ``f`` convex (``curv > 0``) or concave (``curv < 0``) on ``[lo, hi]``.

    ``alpha`` is the secant slope; ``g = f - alpha x`` takes its max (convex) on the endpoints and is bounded below
    by the tangent at ``t`` (``touch(alpha)``, where ``f'(t) ~ alpha``, clipped into the range):
    ``g(x) >= f(t) - f'(t) t + min((f'(t) - alpha) lo, (f'(t) - alpha) hi)``, valid for every ``t`` in the range
    (concave: mirrored). ``curv == 0`` marks boxes where it does not apply (``dlt = inf``).
    """
    with iv.errstate(all="ignore"):
        flo, fhi = f(lo), f(hi)
        w = hi - lo
        alpha = np.where(w > 0, (fhi - flo) / np.where(w > 0, w, 1.0), df(lo))
        glo, ghi = flo - alpha * lo, fhi - alpha * hi
        t = touch(alpha)
        t = np.where(np.isnan(t), 0.5 * lo + 0.5 * hi, np.clip(t, lo, hi))
        ft, dft = f(t), df(t)
        s = dft - alpha
        tan0 = ft - dft * t
        slack = _SLACK * (
            np.abs(flo)
            + np.abs(fhi)
            + np.abs(ft)
            + (np.abs(alpha) + np.abs(dft)) * (np.abs(lo) + np.abs(hi) + np.abs(t))
        )
        gmax = np.where(curv > 0, np.maximum(glo, ghi), tan0 + np.maximum(s * lo, s * hi)) + slack
        gmin = np.where(curv > 0, tan0 + np.minimum(s * lo, s * hi), np.minimum(glo, ghi)) - slack
        beta = 0.5 * gmin + 0.5 * gmax
        dlt = (0.5 * gmax - 0.5 * gmin) * (1 + _SLACK) + _SLACK * np.abs(beta)
        ok = (curv != 0) & np.isfinite(alpha) & np.isfinite(dlt) & np.isfinite(beta) & (dlt >= 0)
    return np.where(ok, alpha, 0.0), np.where(ok, beta, 0.0), np.where(ok, dlt, np.inf)


def _mean_value(
    op: str, args: list[iv.Interval], idx: int, lo: np.ndarray, hi: np.ndarray, attrs: dict
) -> tuple[np.ndarray, np.ndarray, np.ndarray, iv.Interval]:
    """Mean-value linearisation from the interval rule: slope = midpoint of the derivative enclosure on the range.

    Also returns that derivative enclosure ``[dl, dh]`` (for the remainder's Lipschitz constant).
    """
    with iv.errstate(all="ignore"):
        m0 = 0.5 * lo + 0.5 * hi
        rng = list(args)
        rng[idx] = (lo, hi)
        _, parts = iv.rule(op, rng, attrs)
        dl, dh = parts[idx]
        alpha = 0.5 * dl + 0.5 * dh
        hw = np.maximum(hi - m0, m0 - lo) * (1 + _SLACK)
        d1 = np.maximum(np.abs(dl - alpha), np.abs(dh - alpha)) * hw
        at = list(args)
        at[idx] = (m0, m0)
        (fl, fh), _ = iv.rule(op, at, attrs)
        fm = 0.5 * fl + 0.5 * fh
        beta = fm - alpha * m0
        dlt = d1 + (0.5 * fh - 0.5 * fl) + _SLACK * (np.abs(fm) + np.abs(alpha * m0) + d1)
        ok = np.isfinite(alpha) & np.isfinite(dlt) & np.isfinite(beta)
    return np.where(ok, alpha, 0.0), np.where(ok, beta, 0.0), np.where(ok, dlt, np.inf), (dl, dh)


def _pos(lo: np.ndarray) -> np.ndarray:
    return (lo > 0).astype(float)


def _signed(lo: np.ndarray, hi: np.ndarray, neg_curv: float, pos_curv: float) -> np.ndarray:
    return np.where(lo > 0, pos_curv, np.where(hi < 0, neg_curv, 0.0))


def _tanh_touch(alpha: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    with iv.errstate(all="ignore"):
        u = np.arctanh(np.sqrt(np.clip(1.0 - alpha, 0.0, 1.0 - 1e-16)))
    return np.where(hi <= 0, -u, u)


def _cheb_rule(op: str, lo: np.ndarray, hi: np.ndarray, p: float | None = None) -> Lin | None:
    """The Chebyshev linearisation of the convex/concave ops (``None``: no such rule for ``op``)."""
    with iv.errstate(all="ignore"):
        if op == "exp":
            return _chebyshev(np.exp, np.exp, np.log, np.ones(np.shape(lo)), lo, hi)
        if op == "log":
            return _chebyshev(np.log, lambda x: 1.0 / x, lambda a: 1.0 / a, -_pos(lo), lo, hi)
        if op == "sqrt":
            return _chebyshev(
                np.sqrt,
                lambda x: 0.5 / np.sqrt(x),
                lambda a: 0.25 / (a * a),
                -((lo >= 0) & (hi > 0)).astype(float),
                lo,
                hi,
            )
        if op == "reciprocal":
            return _chebyshev(
                lambda x: 1.0 / x,
                lambda x: -1.0 / (x * x),
                lambda a: np.where(hi < 0, -1.0, 1.0) * np.sqrt(-1.0 / a),
                _signed(lo, hi, -1.0, 1.0),
                lo,
                hi,
            )
        if op == "tanh":
            return _chebyshev(
                np.tanh,
                lambda x: 1.0 - np.tanh(x) ** 2,
                lambda a: _tanh_touch(a, lo, hi),
                _signed(lo, hi, 1.0, -1.0),
                lo,
                hi,
            )
        if op == "pow" and p is not None and p not in (0.0, 1.0):
            curv = 1.0 if (p > 1 or p < 0) else -1.0
            return _chebyshev(
                lambda x: x**p,
                lambda x: p * x ** (p - 1),
                lambda a: (a / p) ** (1.0 / (p - 1)),
                curv * _pos(lo),
                lo,
                hi,
            )
    return None


#: Ops whose value is their operand's (the form passes through).
_PASS = frozenset({"identity", "copy", "contiguous", "convert"})


def _range(x: Aff, enc: iv.Interval | None) -> iv.Interval:
    """The operand's range: its form's hull, intersected with its interval enclosure."""
    with iv.errstate(invalid="ignore", over="ignore"):
        rad = x.radius()
        lo, hi = iv.widen(x.c - rad, x.c + rad)
        if enc is not None:
            lo, hi = np.fmax(lo, enc[0]), np.fmin(hi, enc[1])
    return lo, hi


def _unary(op: str, x: Aff, xenc: iv.Interval | None, args: list[iv.Interval], idx: int, attrs: dict) -> Aff:
    """``op`` with one non-constant operand ``x`` (``args``: every operand's range, constants as points)."""
    lo, hi = _range(x, xenc)
    p = None
    if op == "pow" and idx == 0:
        p = float(np.asarray(args[1][0]).reshape(-1)[0])
    fin = np.isfinite(lo) & np.isfinite(hi)
    safe_lo, safe_hi = np.where(fin, lo, 0.0), np.where(fin, hi, 0.0)
    alpha, beta, dlt, (dl, dh) = _mean_value(op, args, idx, safe_lo, safe_hi, attrs)
    cheb = _cheb_rule(op if op != "pow" or idx == 0 else "", safe_lo, safe_hi, p)
    if cheb is not None:
        rad = x.radius()
        with iv.errstate(invalid="ignore", over="ignore"):
            better = np.abs(cheb[0]) * rad + cheb[2] < np.abs(alpha) * rad + dlt
        alpha, beta, dlt = (np.where(better, c, m) for c, m in zip(cheb, (alpha, beta, dlt), strict=True))
    dlt = np.where(fin, dlt, np.inf)
    out = scale(x, alpha, beta)
    with iv.errstate(invalid="ignore", over="ignore"):
        # The new remainder is alpha R_x + delta(x(e)), and |delta'| = |f' - alpha| <= kappa on the range.
        kappa = np.maximum(np.abs(dl - alpha), np.abs(dh - alpha))
        kappa = np.where(fin & np.isfinite(dlt) & ~np.isnan(kappa), kappa, np.inf)
        L = _lsum((np.abs(alpha), x.L), (kappa, x.L), (kappa, _axis_abs(x.a)))
        if L is not None:
            for i in out.axes:
                if i not in L:
                    L[i] = np.where(np.isfinite(kappa), 0.0, np.inf) * np.ones(())
        a = dict(out.a)
        fin_d = np.isfinite(dlt)
        _fresh(a, np.where(fin_d, dlt, 0.0))
        res = Aff(out.axes, out.c, a, np.where(fin_d, out.r, np.inf), L)
        if out._sabs is not None and iv.FAST.get():
            # the sums of the kept |a_j| with the fresh symbol's (appended last: one more step of the same folds)
            if len(a) == len(out.a):
                res._sabs, res._etot = out._sabs, out._etot
            else:
                ab = np.abs(a[next(reversed(a))])
                res._sabs, res._etot = out._sabs + ab, out._etot + ab
        return res


# ------------------------------------------------------------------------------------------------------------------
# The rule table and the node form
# ------------------------------------------------------------------------------------------------------------------
def _is_const(f: Aff) -> bool:
    return not f.axes


def node_form(
    op: str,
    K: tuple[int, ...],
    forms: Sequence[Aff | None],
    encs: Sequence[iv.Interval],
    enc: iv.Interval,
    attrs: dict[str, Any] | None = None,
) -> Aff:
    """The form of a node ``op(*operands)`` on the grid of ``K``.

    Args:
        op: The op name (a key of :data:`opgraph.dcg.intervals.RULES`).
        K: The node's axes; every operand's axes are a subsequence.
        forms: The operands' forms (``None`` where an operand has none: the node falls back to ``enc``).
        encs: The operands' interval enclosures on the whole box, expanded to ``K``'s grid.
        enc: The node's own interval enclosure on the whole box (the fallback, and the per-box alternative).
        attrs: The node's attributes (for the interval rules).
    """
    attrs = attrs or {}
    if any(f is None or not set(f.axes) <= set(K) for f in forms):
        return _box_form(K, enc)
    fs = [expand(f, K) for f in forms]  # type: ignore[arg-type]
    var = [i for i, f in enumerate(fs) if not _is_const(f)]
    out: Aff | None = None
    if op in _PASS:
        out = fs[0]
    elif op == "neg":
        out = scale(fs[0], -1.0)
    elif op in ("add", "sub"):
        out = add(fs[0], fs[1], 1.0 if op == "add" else -1.0)
    elif op == "mul":
        out = mul(fs[0], fs[1])
    elif op == "square":
        out = mul(fs[0], fs[0])
    elif op == "div" and _is_const(fs[1]):
        out = mul(fs[0], _recip_const(fs[1]))
    elif op == "div":
        rec = _unary("reciprocal", fs[1], encs[1], [encs[1]], 0, {})
        out = mul(fs[0], rec)
    elif op == "pow" and var == [0] and _is_const(fs[1]) and float(fs[1].c) == 2.0:
        out = mul(fs[0], fs[0])
    elif op == "pow" and var == [0] and _is_const(fs[1]) and float(fs[1].c) == 1.0:
        out = fs[0]
    elif len(var) == 1 and op in iv.RULES:
        args = [encs[i] if i == var[0] else (np.asarray(f.c), np.asarray(f.c)) for i, f in enumerate(fs)]
        out = _unary(op, fs[var[0]], encs[var[0]], args, var[0], attrs)
    if out is None:
        return _box_form(K, enc)
    linear = op in _PASS or op in ("neg", "add", "sub", "mul", "square") or (op == "div" and _is_const(fs[1]))
    return _tighter(out, K, enc, BOX_FACTOR if linear else BOX_FACTOR_NONLINEAR)


def _recip_const(f: Aff) -> Aff:
    """``1 / f`` for a constant ``f`` (its rounding in ``r``)."""
    c = float(f.c)
    v = 1.0 / c
    return Aff(
        (), np.asarray(v), {}, np.asarray(_SLACK * abs(v) + abs(v) * abs(float(f.r)) / max(abs(c) - float(f.r), _TINY))
    )


# ------------------------------------------------------------------------------------------------------------------
# What the engine reads
# ------------------------------------------------------------------------------------------------------------------
def has_err(f: Aff) -> bool:
    """Whether ``f`` carries error symbols."""
    return any(i >= ERR_BASE for i in f.a)


def _err_total(f: Aff) -> Any:
    """``sum_j |b_j|`` over the error symbols (rounded up; the sum kept by :func:`_clean` where it is)."""
    s = f._etot
    if s is None or not iv.FAST.get():
        s = sum((np.abs(v) for i, v in f.a.items() if i >= ERR_BASE), np.zeros(()))
    return s * (1 + _SLACK)


#: Whether :func:`condense` takes its frame from a QR factorisation of the longest error columns (Lohner's QR method,
#: the default) or from the principal axes of the zonotope (``QR_FRAME.set(False)``: the eigenvector frame, kept for
#: the before/after benchmark ``benchmarks/dcg/ode_wrapping.py``).
QR_FRAME: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_affine_qr", default=True)


def _pca_frame(B: np.ndarray, d: int) -> np.ndarray:
    """The orthonormal eigenvectors of ``B B^T`` per box (the zonotope's principal axes)."""
    M = B @ np.swapaxes(B, 1, 2)
    try:
        _, P = np.linalg.eigh(M)
    except np.linalg.LinAlgError:
        P = np.broadcast_to(np.eye(d), (B.shape[0], d, d)).copy()
    return np.asarray(P)


def _qr_frame(B: np.ndarray, d: int) -> np.ndarray:
    """Lohner's frame per box: ``Q`` of the QR factorisation of the ``d`` longest columns of ``B``, longest first.

    The previous condensation's ``d`` symbols (mapped by the linear ops since) are the longest columns of a linear
    recurrence: their ``Q`` turns with them, so ``Q^T B`` stays near triangular and the new box hull adds little.
    The principal axes instead are arbitrary for a near-round zonotope (an oscillator's ``(x, v)``): a frame at 45
    degrees to the generators inflates the hull by up to ``sqrt(d)`` at every condensation.
    """
    norms = np.sum(B * B, axis=1)  # (boxes, symbols)
    top = np.argsort(-norms, axis=1, kind="stable")[:, :d]  # (boxes, d): m > d here
    Q, _ = np.linalg.qr(np.take_along_axis(B, top[:, None, :], axis=2))
    return np.asarray(Q)


def condense(forms: list[Aff], keep: int) -> None:
    """Replace the error symbols shared by ``forms`` (one grid: the same axes) by ``len(forms)`` new ones, in place.

    Per box, with ``B`` the (forms x symbols) coefficient matrix, ``P`` an orthonormal frame (Lohner's QR frame of
    ``B``'s longest columns, :func:`_qr_frame`; or the eigenvectors of ``B B^T`` with :data:`QR_FRAME` off) and
    ``Q = P^T`` (its inverse up to rounding): the new symbols ``F = (Q B E) / s`` with ``s_l = sum_j |(Q B)_lj|`` lie in
    ``[-1, 1]``, and form ``l`` gets ``sum_l' P_ll' s_l' F_l'`` plus, in ``r``, the residual ``((I - P Q) B E)_l``
    (bounded by ``sum_l' |(I - P Q)_ll'| sum_j |B_l'j|``) and rounding. The values of the forms are unchanged; the
    parallelotope ``P diag(s)`` turns with linear maps like the symbols it replaces (Lohner's method), where an
    interval hull of each form's symbols would wrap. Does nothing with ``keep`` or fewer symbols.
    """
    fast = iv.FAST.get()
    if fast:
        keys: set[int] = set()
        for f in forms:
            keys.update(f.a)
        if len(keys) <= keep:  # at most that many symbols (axes included): nothing to do
            return
    syms = sorted({j for f in forms for j in f.a if j >= ERR_BASE})
    d, m = len(forms), len(syms)
    if m <= keep or d == 0:
        return
    shape = np.broadcast_shapes(*(np.shape(v) for f in forms for v in f.a.values()), *(np.shape(f.r) for f in forms))
    n = int(np.prod(shape))
    B = np.zeros((n, d, m))
    if fast:
        grid = B.reshape(*shape, d, m)  # a view: each coefficient array broadcasts into its slot
        for l, f in enumerate(forms):
            for j, sym in enumerate(syms):
                if sym in f.a:
                    grid[..., l, j] = f.a[sym]
        if not np.isfinite(B).all():
            # A box with a non-finite coefficient gets the identity frame below and a non-finite scale, so the
            # condensation would be given up after the QR factorisations (same outcome, without their cost: a
            # program whose forms overflow on some box retries at every node).
            return
    else:
        for l, f in enumerate(forms):
            for j, sym in enumerate(syms):
                if sym in f.a:
                    B[:, l, j] = np.broadcast_to(f.a[sym], shape).reshape(-1)
    with iv.errstate(all="ignore"):
        absb = np.abs(B)
        rows = absb.sum(axis=2)  # (n, d)
        # An orthonormal frame (Q = P^T inverts it up to rounding, which the residual below covers; any orthonormal
        # P is sound) that turns with the forms under linear maps.
        ok = np.all(np.isfinite(B), axis=(1, 2))
        Bok = np.where(ok[:, None, None], B, 0.0)
        P = _qr_frame(Bok, d) if QR_FRAME.get() else _pca_frame(Bok, d)
        P[~ok] = np.eye(d)
        Q = np.swapaxes(P, 1, 2).copy()
        T = Q @ B
        ulp = (d + 2) * 2.0**-52  # rounding of a length-d dot product, relative to the sum of |products|
        s_ = (np.abs(T).sum(axis=2) + ulp * (np.abs(Q) @ absb).sum(axis=2)) * (1 + 4 * _SLACK) + _TINY  # (n, d)
        G = P * s_[:, None, :]  # (n, d, d): form l, new symbol l'
        Rm = np.abs(np.eye(d) - P @ Q) + ulp * (np.abs(P) @ np.abs(Q)) + ulp
        resid = (Rm @ rows[:, :, None])[:, :, 0]
        resid = (resid + _SLACK * (np.abs(G).sum(axis=2) + rows)) * (1 + _SLACK)
    if not (np.all(np.isfinite(G)) and np.all(np.isfinite(resid))):
        return  # leave the forms as they are (valid)
    new = [next(_err_ids) for _ in range(d)]
    for l, f in enumerate(forms):
        a = {i: v for i, v in f.a.items() if not _is_err(i) or i not in syms}
        for lp, sym in enumerate(new):
            a[sym] = G[:, l, lp].reshape(shape)
        f.a = a
        f.r = np.broadcast_to(f.r, shape) + resid[:, l].reshape(shape)
        f._rad = f._sabs = f._etot = None


def prefix_enclosures(f: Aff, K: tuple[int, ...], e0: dict[int, np.ndarray]) -> list[iv.Interval]:
    """Enclosures at the walk prefixes ``K[:j]``, ``j = 1..k``: axes beyond the prefix at their atoms (``e0``)."""
    with iv.errstate(invalid="ignore", over="ignore"):
        centre = f.c + sum((f.a[i] * e0[i] for i in K if i in f.a), np.zeros(()))
        rad = np.asarray(f.r, dtype=float) + _err_total(f)
        mag = f.mag() if iv.FAST.get() else None  # the same array at every prefix: computed once
        out = []
        for s in K:
            if s in f.a:
                centre = centre - f.a[s] * e0[s]
                rad = rad + np.abs(f.a[s])
            slack = _SLACK * (np.abs(centre) + rad + (f.mag() if mag is None else mag))
            lo, hi = iv.widen(centre - rad - slack, centre + rad + slack)
            out.append((lo, hi))
    return out


def box_bound(
    f: Aff,
    K: tuple[int, ...],
    pt: np.ndarray,
    h: dict[int, np.ndarray],
    e0: dict[int, np.ndarray],
    ratio: dict[int, np.ndarray],
    wbox: np.ndarray,
    shape: tuple[int, ...],
) -> np.ndarray:
    """Per-box bound on ``E[|V(X) - V'|; box]`` (module docstring); ``inf`` where the form is invalid.

    Args:
        f: The node's form on the grid of ``K``.
        K: The node's axes.
        pt: The computed values at the atoms (``V'``).
        h: Per axis, the cells' half-widths (expanded to ``K``).
        e0: Per axis, the atoms' noise values ``(atom - m) / h`` (expanded).
        ratio: Per axis, ``E[|X - x'|; cell] / P(cell)`` (expanded).
        wbox: The boxes' masses.
        shape: The grid's shape.
    """
    if tuple(f.axes) != tuple(K):
        return np.full(shape, np.inf)  # a form of other noise symbols says nothing about these boxes
    with iv.errstate(invalid="ignore", over="ignore", divide="ignore"):
        at0 = f.c + sum((f.a[i] * e0[i] for i in K if i in f.a), np.zeros(()))
        gap = np.abs(at0 - pt) + _SLACK * (f.mag() + np.abs(pt))
        per = (f.r + _err_total(f)) * (1 + _SLACK) + gap
        slope: Any = 0.0
        lip: Any = 0.0 if f.L is not None else np.inf
        for i in K:
            ai = np.abs(f.a[i]) if i in f.a else 0.0
            if f.L is not None and i in f.L:
                li = ai + f.L[i]
                lip = lip + np.where(ratio[i] == 0, 0.0, li / h[i] * ratio[i])
            elif i in f.a:
                lip = lip + np.where(ratio[i] == 0, 0.0, ai / h[i] * ratio[i])
            if i in f.a:
                slope = slope + np.where(ratio[i] == 0, 0.0, ai / h[i] * ratio[i])
        tot = (per + slope * (1 + _SLACK)) * wbox
        # The Lipschitz route (V(X) - V(x') = A(e - e') + R(e) - R(e'), V' taken as V(x') as in the engine's
        # derivative bound), on boxes where the form is valid.
        lip = np.where(np.isfinite(f.r), lip * (1 + _SLACK) * wbox, np.inf)
        tot = np.minimum(tot, np.where(np.isnan(lip), np.inf, lip))
        tot = np.where(wbox == 0, 0.0, tot)
        tot = np.where(np.isnan(tot), np.inf, tot)
    return np.broadcast_to(tot, shape)
