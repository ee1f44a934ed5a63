"""CDF bands of independent parts combined: the disjoint split's band built from its parts' bands.

The disjoint split (:mod:`opgraph.dcg.disjoint`) computes an output ``Y`` as sums and products of independent parts
``A, B``, each certified by the grid engine with a CDF band (a p-box ``F_low <= F <= F_up``, :class:`CdfBand`).
This module gives a band for ``Y`` from those bands, without a grid of the whole program.

**Slicing a band** (:func:`slices`). Let ``F`` be the exact CDF of a part, ``F_low - s <= F <= F_up + s`` (``s``
the band's rounding slack) and ``U`` uniform on ``(0, 1)``: ``X = F^{-1}(U)`` has law ``F``. On the slice
``p_k < U <= p_{k+1}`` (``p_k = k / n``, mass exactly ``1 / n``), ``F^{-1}(p_k) <= X <= F^{-1}(p_{k+1})``, and

    F^{-1}(p) >= inf{t : F_up(t) >= p - s},      F^{-1}(p) <= inf{t : F_low(t) >= p + s}

(``F(t) >= p`` implies ``F_up(t) >= p - s``; ``F_low(t) >= p + s`` implies ``F(t) >= p``), where the first is
replaced by the band's lowest cell end when ``p - s <= 0`` and the second by its highest finite end when ``p + s``
is never reached (the values lie in the cells: the support's ends are certain), else ``-inf`` / ``+inf``. So the
``n`` slices are ``n`` cells of mass ``1 / n`` with value enclosures: a Dempster-Shafer structure for the part.

**Combining independent parts** (:func:`combine`). With independent ``U_A, U_B``, the pair of slices ``(j, k)`` has
mass ``1 / n_A n_B`` and ``A + B`` (``A B``) lies in the sum (interval product) of the two enclosures, rounded
outwards (:func:`opgraph.dcg.intervals.widen`). These cells form a :class:`opgraph.dcg.band.GridCells` (a 2-D grid
with exact masses), whose band is certified; for a nested part it is sliced again (the discretisation: each
re-slicing widens the band by about ``1 / n`` in probability). Constant factors and shifts map the enclosures.

**Keeping the narrower band** (:func:`narrower`). Two bands of one exact law intersect pointwise:
``max(lo_1, lo_2) <= F <= min(hi_1, hi_2)`` at every ``t`` (both are step functions; their minimum / maximum is
taken on the union of their step points, slack included).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv
from opgraph.dcg.band import CdfBand, GridCells

#: Slices per part (each slice carries mass ``1 / SLICES``; a combination has ``SLICES^2`` cells).
SLICES = 1024


def slices(band: CdfBand, n: int = SLICES) -> tuple[np.ndarray, np.ndarray]:
    """``n`` equal-mass cells ``[lo_k, hi_k]`` that contain ``F^{-1}(U)`` on each slice of ``U`` (module docstring).

    Args:
        band: A certified band of the part's exact law.
        n: Number of slices (each of mass ``1 / n``).

    Returns:
        The cells' lower and upper ends (``-inf`` / ``+inf`` where the band does not bound them).
    """
    p = np.arange(n + 1, dtype=float) / n
    s = float(band.slack)
    lo_t, hi_t = p[:-1] - s, p[1:] + s
    if band.up_x.size:
        iu = np.searchsorted(band.up_p, lo_t, side="left")  # first step where F_up >= p - s
        lo = np.where(iu < band.up_x.size, band.up_x[np.minimum(iu, band.up_x.size - 1)], -math.inf)
        lo = np.where(lo_t <= 0, band.up_x[0], lo)  # nothing below the lowest cell
    else:
        lo = np.full(n, -math.inf)
    if band.low_x.size:
        il = np.searchsorted(band.low_p, hi_t, side="left")  # first step where F_low >= p + s
        top = math.inf if band.open_above else float(band.low_x[-1])  # nothing above the highest cell
        hi = np.where(il < band.low_x.size, band.low_x[np.minimum(il, band.low_x.size - 1)], top)
    else:
        hi = np.full(n, math.inf)
    return lo, np.maximum(hi, lo)


def _cells(lo_a: np.ndarray, hi_a: np.ndarray, lo_b: np.ndarray, hi_b: np.ndarray, op: str) -> GridCells:
    a = (lo_a[:, None], hi_a[:, None])
    b = (lo_b[None, :], hi_b[None, :])
    with np.errstate(invalid="ignore", over="ignore"):
        lo, hi = iv.widen(*(iv.iadd(a, b) if op == "sum" else iv.imul(a, b)))
    wa = np.full(lo_a.size, 1.0 / lo_a.size)
    wb = np.full(lo_b.size, 1.0 / lo_b.size)
    return GridCells((wa, wb), np.asarray(lo), np.asarray(hi), ("part slices", "part slices"))


def _affine(lo: np.ndarray, hi: np.ndarray, coef: float, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """``coef * [lo, hi] + shift``, rounded outwards."""
    with np.errstate(invalid="ignore", over="ignore"):
        a, b = lo * coef, hi * coef
        if coef < 0:
            a, b = b, a
        return iv.widen(a + shift, b + shift)


def _shifted(band: CdfBand, shift: float) -> CdfBand:
    """The band of ``X + shift`` from ``X``'s: steps of ``F_up`` moved down, of ``F_low`` up (by a few ulps more)."""
    if not shift:
        return band
    up_x = iv.widen(band.up_x + shift, band.up_x + shift)[0]
    low_x = iv.widen(band.low_x + shift, band.low_x + shift)[1]
    return CdfBand(up_x, band.up_p, low_x, band.low_p, band.slack, band.cells, band.shrunk, band.open_above)


def combine(tree: Any, leaf_band: Mapping[int, CdfBand], n: int = SLICES, max_steps: int | None = None) -> CdfBand:
    """The band of a decomposition tree's output from its leaves' bands (module docstring).

    Args:
        tree: A :class:`opgraph.dcg.disjoint.Part` (``kind`` ``"leaf"``, ``"sum"`` with ``shift``, ``"prod"`` with
            ``coef``; ``children`` independent).
        leaf_band: Band of each leaf, by ``id(part)``.
        n: Slices per operand.
        max_steps: Steps per side of the returned band (default :data:`opgraph.dcg.band.MAX_STEPS`).

    Returns:
        A certified band of the output's exact law.
    """
    from opgraph.dcg.band import MAX_STEPS

    steps = MAX_STEPS if max_steps is None else max_steps

    def visit(p: Any, final: bool) -> CdfBand:
        if p.kind == "leaf":
            return leaf_band[id(p)]
        kids = [visit(c, False) for c in p.children]
        if p.kind == "sum" and len(kids) == 1:  # a shifted part: the band moves (outwards), no slicing
            return _shifted(kids[0], p.shift)
        lo, hi = slices(kids[0], n)
        if p.kind == "prod" and p.coef != 1.0:
            lo, hi = _affine(lo, hi, p.coef, 0.0)
        cells = None
        for k, kid in enumerate(kids[1:]):
            lo_k, hi_k = slices(kid, n)
            cells = _cells(lo, hi, lo_k, hi_k, "sum" if p.kind == "sum" else "prod")
            last = k == len(kids) - 2
            if not last:
                lo, hi = slices(cells.band(), n)
        if cells is None:  # one child (a constant factor or shift on a single part)
            cells = GridCells((np.full(lo.size, 1.0 / lo.size),), lo, hi, ("part slices",))
        if p.kind == "sum" and p.shift:
            lo2, hi2 = _affine(np.asarray(cells.lo), np.asarray(cells.hi), 1.0, p.shift)
            cells = GridCells(cells.weights, lo2, hi2, cells.labels)
        return cells.band(steps if final else MAX_STEPS)

    return visit(tree, True)


def narrower(a: CdfBand | None, b: CdfBand | None) -> CdfBand | None:
    """The pointwise intersection of two certified bands of one exact law (either may be None)."""
    if a is None or b is None:
        return a if b is None else b
    ux = np.union1d(a.up_x, b.up_x)
    lx = np.union1d(a.low_x, b.low_x)
    up = np.minimum(a.cdf_bounds(ux)[1], b.cdf_bounds(ux)[1]) if ux.size else ux
    low = np.maximum(a.cdf_bounds(lx)[0], b.cdf_bounds(lx)[0]) if lx.size else lx
    up = np.maximum.accumulate(up) if up.size else up
    low = np.maximum.accumulate(low) if low.size else low
    return CdfBand(ux, up, lx, low, 0.0, a.cells + b.cells, a.shrunk or b.shrunk, a.open_above and b.open_above)


def mean_width(band: CdfBand, lo: float, hi: float, points: int = 4001) -> float:
    """Mean vertical width ``F_up - F_low`` of ``band`` on ``points`` equally spaced ``t`` in ``[lo, hi]``."""
    t = np.linspace(lo, hi, points)
    return float(np.mean(band.width(t)))
