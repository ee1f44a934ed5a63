"""Half-line (tail) cells in the box-linear mixture answer (:mod:`opgraph.dcg.boxlinear`).

A Normal, LogNormal, Gamma or Exponential input's first and/or last quantizer cell is a half-line. On a box with
such a cell the box-linear term ``T_i = c_i d_i`` (``d_i = X_i - x'_i``) ranges over a half-line too, so its
lattice law ``round(T_i)`` would have infinite support. Here the term's lattice range is cut at a far point
``t`` of the cell (per box, in the input's units): the lattice points cover ``c_i [lo - x', t - x']`` (for an
upper tail ``(lo, inf)``; mirrored for a lower one) and the last bin of the term is ``[e, inf)`` in ``X``: all
the mass beyond the last lattice point's bin is put on that point. The rounding cost ``E|T_i - round(T_i)|`` of
the box stays the exact sum over the bins of ``|c_i| E[|X - s_j|; bin j] / P(cell)`` (:func:`opgraph.dcg.
boxlinear._cost_bins`, from the closed-form CDF and partial moment ``E[X; X <= x]`` of the family, finite at
``x = +-inf``: the law has a finite mean), the last bin's term integrating up to infinity. So the cut changes only
*how much* the rounding costs, never whether the bound holds: the proof of :mod:`opgraph.dcg.boxlinear` does not
use the lattice's range. The memory stays bounded (a finite lattice per term).

The far point is chosen so that the cost of collapsing the far tail, ``|c_i| E[(X - t)^+ | cell]``, is about
:data:`TAIL_SHARE` of the lattice step (the rounding cost of a smooth term is about a quarter of the step): from
the closed-form excess ``E[(X - t)^+] = scale (E[Z; Z > z] - z P(Z > z))`` of the standard variable, by bisection
on the cell's conditional tail quantile (vectorised over the boxes).

The remainder ``R_b`` of a tail box is :func:`opgraph.dcg.taylor.box_bound`'s ``rest``: its terms use the cell's
conditional moments ``E|d|``, ``E d^2`` (closed forms, finite for these families) and the gradient / Hessian
enclosures over the unbounded box; where an enclosure is unbounded (``exp`` of a Normal, powers of a LogNormal)
``rest`` is infinite and the box keeps its point mass (as before).

``ENABLED`` (a ContextVar, default on; carried to workers by :mod:`opgraph.dcg.switches` as
``box_linear_tails``) lets the mixture take tail boxes; off, only boxes of finite cells are mixed (as before).
"""

from __future__ import annotations

import contextvars
from typing import Any

import numpy as np

#: Whether the box-linear mixture takes boxes with a half-line cell (only where ``boxlinear.ENABLED`` is on).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_boxtails", default=True)

#: The far tail's collapse cost ``|c| E[(X - t)^+ | cell]`` aims at this share of the lattice step.
TAIL_SHARE = 1.0 / 16
#: The bisection's range of the conditional tail quantile ``P(X > t | cell)``: ``10**-QMIN_EXP .. 1``.
QMIN_EXP = 30.0
#: Bisection steps on ``log10`` of the conditional tail quantile (resolution ``QMIN_EXP / 2**STEPS``).
STEPS = 24

#: Laws whose cells may be half-lines here: closed-form CDF, tail quantiles and partial moments (``from_scipy``
#: laws are left out: their partial moments are not closed forms, so the rounding cost of a tail bin is unknown).
FAMILIES = frozenset({"Normal", "LogNormal", "Gamma", "Exponential"})


def tail_ok(dist: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per cell, whether its box-linear term can go on a finite lattice (a finite cell, or a family's half-line).

    A half-line counts where the law is in :data:`FAMILIES` and the cell has one finite end.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    fin = np.isfinite(lo) & np.isfinite(hi)
    if type(dist).__name__ not in FAMILIES:
        return fin
    half = (np.isfinite(lo) & (hi == np.inf)) | ((lo == -np.inf) & np.isfinite(hi))
    return fin | half


def excess(dist: Any, t: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """``E[(X - t)^+]`` where ``upper``, else ``E[(t - X)^+]`` (unconditional; closed forms of the family)."""
    z = (t - dist.loc) / dist.scale
    up = dist.scale * (dist._zpm_hi(z) - z * dist._zsf(z))
    lo = dist.scale * (z * dist._zcdf(z) - dist._zpm_lo(z))
    return np.maximum(np.where(upper, up, lo), 0.0)


def _tail_point(dist: Any, q: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """The point with probability ``q`` beyond it (above it where ``upper``, else below)."""
    z = np.where(upper, dist._zisf(q), dist._zppf(q))
    return dist.loc + dist.scale * z


def far_ends(dist: Any, lo: np.ndarray, hi: np.ndarray, c: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Finite stand-ins for the cells' ends: a half-line's open end replaced by its far point (module docstring).

    Args:
        dist: The input's law.
        lo: The cells' lower ends (per box; finite cells are returned unchanged).
        hi: The cells' upper ends.
        c: The box-linear coefficients of the input on those boxes (the term is ``c (X - x')``).
        delta: The lattice step (output units).

    Returns:
        ``(lo_eff, hi_eff)``: finite ends; on a half-line ``(lo, inf)`` the far point ``t >= lo`` with
        ``|c| E[(X - t)^+ | cell] <= TAIL_SHARE * delta`` where the bisection's range allows (else its farthest
        point), mirrored for ``(-inf, hi)``.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    up, down = np.isfinite(lo) & (hi == np.inf), (lo == -np.inf) & np.isfinite(hi)
    tail = up | down
    if not np.any(tail):
        return lo, hi
    sel = np.flatnonzero(tail)
    upper = up[sel]
    end = np.where(upper, lo[sel], hi[sel])  # the cell's finite end
    with np.errstate(all="ignore"):
        mass = np.where(upper, dist._zsf((end - dist.loc) / dist.scale), dist._zcdf((end - dist.loc) / dist.scale))
        tau = TAIL_SHARE * delta / np.abs(np.asarray(c, dtype=float)[sel]) * mass  # unconditional excess allowed
        a = np.full(sel.size, -QMIN_EXP)  # log10 of the conditional quantile: a meets the target (assumed), b not
        b = np.zeros(sel.size)
        for _ in range(STEPS):
            m = 0.5 * (a + b)
            t = _tail_point(dist, mass * 10.0**m, upper)
            good = excess(dist, t, upper) <= tau
            a, b = np.where(good, m, a), np.where(good, b, m)
        near = excess(dist, end, upper) <= tau  # the whole tail collapses onto the cell's end
        t = np.where(near, end, _tail_point(dist, mass * 10.0**a, upper))
        # a tail point that did not come out finite and beyond the end (an underflowed mass): the cell's end, so the
        # whole tail goes on one lattice point (its cost is still computed exactly: sound, only costlier)
        ok = np.isfinite(t) & np.where(upper, t >= end, t <= end)
        t = np.where(ok, t, end)
    lo_eff, hi_eff = lo.copy(), hi.copy()
    hi_eff[sel] = np.where(upper, t, hi[sel])
    lo_eff[sel] = np.where(upper, lo[sel], t)
    return lo_eff, hi_eff
