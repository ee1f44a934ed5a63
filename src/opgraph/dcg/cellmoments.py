"""Exact partial moments of an input law on the bounded (inner) cells of its quantizer.

The product-form envelopes of :mod:`opgraph.dcg.multienv` charge a box ``B = prod_i C_i`` of independent inputs
``E[prod_i g_i(X_i); B] = prod_i E[g_i(X_i); C_i]``. On an input's end cells the factor is a closed-form partial
moment; on its bounded cells it was ``max(g(lo), g(hi)) P(C)``, the supremum of ``g`` on the cell times its mass.
That supremum makes the envelope's total ``sum_B m_B`` depend on the grid: on a finer grid the cells next to the
end cells are wide (a LogNormal's second cell at 4 mean-split atoms spans its 9% to 50% quantiles) and the
supremum overshoots, so the whole-grid envelope charge of the damped oscillator GREW from 2 to 4 atoms although
the grid is finer (issue 14 section 3, "more atoms must never give a worse bound").

Here a bounded cell ``(l, h)`` of a LogNormal or Gamma input with a power ``g = x^a``, or of a Normal input with
``g = e^{a x}``, gets ``E[g(X); l < X < h]`` as a difference of two closed-form tail moments
(:func:`opgraph.dcg.tails.partial_moment`, from the side whose moments are smaller), padded for rounding by
``PAD`` of the two moments' magnitudes. Then ``sum_B E[env; B] = E[env]`` on every grid, the same total for 2, 4
or 8 atoms. The factor is the smaller of this and the supremum form, so it never gets worse.
"""

from __future__ import annotations

import math

import numpy as np

from opgraph.dcg.distributions import Distribution, Gamma, LogNormal, Normal
from opgraph.dcg.errors import DistError
from opgraph.dcg.tails import partial_moment

#: Relative rounding pad of a difference of two closed-form moments (the quadrature fallback of
#: :func:`opgraph.dcg.tails.partial_moment` is accurate to about 1e-10 relative).
PAD = 1e-9


def exact_kind(law: Distribution, kind: str, a: float) -> bool:
    """Whether ``E[g(X); l < X < h]`` has a closed form here (``g = x^a`` of a positive law, ``e^{a x}``)."""
    if isinstance(law, LogNormal | Gamma):
        return kind == "power"
    if isinstance(law, Normal):
        return kind == "exp"
    return False


def inner_moments(law: Distribution, kind: str, a: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Upper bounds on ``E[g(X); lo_c < X < hi_c]`` per cell (``inf`` where no closed form applies).

    Args:
        law: The input's law (LogNormal, Gamma or Normal; any other gives ``inf`` everywhere).
        kind: ``"power"`` (``g = x^a``) or ``"exp"`` (``g = e^{a x}``).
        a: The exponent.
        lo: Lower ends of the cells (units of the input).
        hi: Upper ends of the cells.

    Returns:
        One float per cell; cells with an infinite end (the tail cells, bounded elsewhere) get ``inf``.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    out = np.full(lo.shape, math.inf)
    if not exact_kind(law, kind, a):
        return out
    for c in range(lo.size):
        low, up = float(lo[c]), float(hi[c])
        if not (math.isfinite(low) and math.isfinite(up)) or up <= low:
            continue
        if isinstance(law, LogNormal | Gamma) and low <= 0:
            continue  # a cell reaching 0: the end-cell forms apply there
        best = math.inf
        for side in ("upper", "lower"):
            try:
                near, far = (low, up) if side == "upper" else (up, low)
                m_near = partial_moment(law, kind, a, near, side)
                m_far = partial_moment(law, kind, a, far, side)
            except DistError:
                continue
            if not (math.isfinite(m_near) and math.isfinite(m_far)):
                continue
            m = m_near - m_far + PAD * (abs(m_near) + abs(m_far))
            best = min(best, max(m, 0.0) + 1e-300)
        out[c] = best
    return out
