"""Re-centred sub-box slope remainder: each sub-box's own gradient in its linear part (branch mix-slack, issue 14 §3).

The sub-box slope remainder (:mod:`opgraph.dcg.subslope`) bounds, on a sub-box ``s`` of a box with atom ``x'``,
point ``x_s`` and ``e = X - x_s``,

    E[|f(X) - f(x') - c . d| | s] <= |a_s| + sum_i mag(G_i - c_i) E|e_i|,   a_s = f(x_s) - f(x') - c . (x_s - x'),

``G_i`` an enclosure of ``df/dx_i`` over ``s``. Away from the atom ``G_i - c_i`` is mostly the shift of the gradient
between ``x'`` and ``x_s`` (about ``H (x_s - x')``), not its spread over ``s``; the form pays that shift once per
input as ``|b_i| E|e_i|`` (triangle inequality), although ``a_s + b . e`` is one affine function of independent,
nearly centred coordinates. On the boxes of the box-linear mixture this slope part was 80-96 % of the remainder
(docs/benchmarks/dcg.md, "mix-slack").

**Theorem.** With ``b_i`` any reals (here ``mid(G_i) - c_i``), ``a`` enclosed in ``[a_m - a_r, a_m + a_r]``,
``mu_i = E[e_i | s]`` known within ``eps_i`` (``|mu_i - mu^_i| <= eps_i``) and ``m_i >= E[e_i^2 | s]``:

    E[|f(X) - f(x') - c . d| | s] <= a_r + sum_i mag(G_i - c_i - b_i) E|e_i|
                                       + min( |a_m| + sum_i |b_i| E|e_i|,
                                              sqrt((|a_m + sum_i b_i mu^_i| + sum_i |b_i| eps_i)^2
                                                   + sum_i b_i^2 (m_i - (|mu^_i| - eps_i)_+^2)) ).

*Proof.* ``f(X) - f(x_s) = grad f(xi) . e`` with ``xi`` in ``s`` (convex), so ``f(X) - f(x') - c . d = a +
(grad f(xi) - c) . e = (a + b . e) + (grad f(xi) - c - b) . e``; the second part is at most ``sum_i mag(G_i - c_i -
b_i) |e_i|`` in absolute value, and ``|a + b . e| <= a_r + |a_m + b . e|``. For ``Z = a_m + b . e``: ``E|Z| <= |a_m|
+ sum_i |b_i| E|e_i|`` (triangle inequality), and ``E|Z| <= sqrt(E Z^2)`` (Jensen) with ``E Z^2 = (a_m + sum_i b_i
mu_i)^2 + sum_i b_i^2 Var e_i``: the coordinates are independent on a sub-box (a product of pieces of independent
inputs), ``|a_m + sum b_i mu_i| <= |a_m + sum b_i mu^_i| + sum |b_i| eps_i`` and ``Var e_i = E e_i^2 - mu_i^2 <= m_i
- (|mu^_i| - eps_i)_+^2``. Take the expectation of the first part given ``s``. ∎ With ``b = 0`` the bound is the old
one, so the caller keeps the smaller of the two per sub-box (never above it, up to rounding); the gain is the
square root's: ``sum_i |b_i| E|e_i|`` against ``sqrt(sum_i b_i^2 Var e_i)``, and the spread of ``G`` about its own
midpoint in place of its distance from ``c``.

**Second order on the sub-box** (where the whole boxes' Hessian form is finite on at least
:data:`HESSIAN_MIN_FINITE` of the mass: ``subslope.remainder(..., hessian=True)``). With ``g^s`` the point pass's
gradient enclosure at ``x_s`` (tight) and ``H^s`` the Hessian enclosure over ``s``: ``f(X) = f(x_s) + grad f(x_s) . e
+ 1/2 e^T H(xi) e`` (``xi`` in ``s``), so the theorem holds with ``b_i = mid(g^s_i) - c_i`` and the spread
``sum_i mag(g^s_i - c_i - b_i) E|e_i| + 1/2 sum_{i,k} mag(H^s_ik) E|e_i e_k|`` (``E|e_i e_k| = E|e_i| E|e_k|`` for
``i != k``, independence; ``E e_i^2 <= m_i``) in place of ``sum_i mag(G_i - c_i - b_i) E|e_i|``: the slope form pays
about ``|H| w_k E|e_i|`` per pair, the Hessian form ``1/2 |H| E|e_i| E|e_k|``. The smallest of the three forms (old,
re-centred slope, re-centred second order) is kept per sub-box.

The pieces' moments come from :func:`opgraph.dcg.boxvariance.bin_moments` (exact for Uniform inputs; other laws with
closed-form partial moments: exact means, ``E e^2 <= h E|e|`` with ``h`` the piece's largest ``|x - x_s|``); a piece
without them (an unbounded end, ``from_scipy``) has ``m_i = inf`` and the sub-box keeps the old form. ``ENABLED`` (a
ContextVar, default on; switch ``sub_centred``) turns it off.
"""

from __future__ import annotations

import contextvars
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

#: Whether the sub-box slope remainder also takes the re-centred form per sub-box (``ENABLED.set(False)`` or the
#: switch ``sub_centred``: the old form alone, as before).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_subcentre", default=True)
_EPS = float(np.finfo(float).eps)


def piece_moments(
    dist: Any, lo: np.ndarray, hi: np.ndarray, point: np.ndarray, e1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per piece ``[lo, hi]`` with point ``x_s``: ``E[X - x_s | piece]``, its error bound, ``E[(X - x_s)^2 | piece]``.

    The first two in the input's units, the last (an upper bound) in their square.

    Args:
        dist: The input's law (``cdf``; ``partial_moment`` where closed-form). None: no moments (``m = inf``).
        lo: The pieces' lower ends (any shape).
        hi: Their upper ends.
        point: Their points ``x_s``.
        e1: Upper bounds on ``E[|X - x_s| | piece]`` (the pieces' ``E|e|``).

    Where a moment is unknown (no closed form, an unbounded end, a piece of zero mass) the mean is 0 with error
    ``e1`` and the second moment ``inf`` (the re-centred form then loses to the old one there).
    """
    from opgraph.dcg import boxvariance

    shape = np.shape(lo)
    unknown = (np.zeros(shape), np.asarray(e1, dtype=float) + np.zeros(shape), np.full(shape, np.inf))
    if dist is None or not hasattr(dist, "cdf"):
        return unknown
    with np.errstate(all="ignore"):
        a, b, s = (np.asarray(x, dtype=float).reshape(-1) for x in (lo, hi, point))
        fa, fb = np.asarray(dist.cdf(a), dtype=float), np.asarray(dist.cdf(b), dtype=float)
        mass = np.maximum(fb - fa, 0.0)
        # bin_moments' generic E e^2 <= h E|e| needs the unconditional E|e|: e1 times the mass (upper bounds)
        cost = np.asarray(e1, dtype=float).reshape(-1) * mass
        mean, err, m2 = boxvariance.bin_moments(dist, a, b, s, fa, fb, cost)
        good = (mass > 0) & np.isfinite(a) & np.isfinite(b) & np.isfinite(mean) & np.isfinite(m2)
        safe = np.where(good, mass, 1.0)
        # conditional: E[X - s | piece] = -E[s - X; piece] / P(piece); the mass's rounding (relative ~ eps / mass)
        # widens the error by the mean's size times that
        rel = 8 * _EPS * (np.abs(fa) + np.abs(fb)) / safe
        mu = -mean / safe
        er = (err / safe + np.abs(mu) * rel) * (1 + 1e-12)
        mm = m2 / safe * (1 + rel) * (1 + 1e-12)
    out = (np.where(good, mu, 0.0), np.where(good, er, unknown[1].reshape(-1)), np.where(good, mm, np.inf))
    return tuple(x.reshape(shape) for x in out)  # type: ignore[return-value]


#: The second-order form on the sub-boxes (their Hessian enclosures) is tried only where the whole boxes' Hessian
#: form is finite on at least this share of the grid's mass: where it is not (piston: enclosures through a
#: near-pole, infinite on every box), the sub-boxes' Hessians stayed infinite too and cost the pass 1.8x for nothing.
HESSIAN_MIN_FINITE = 0.5


def hessian_term(h: dict[tuple[int, int], iv.Interval], e1: dict[int, Any], m2: dict[int, Any]) -> Any:
    """``1/2 sum_ik mag(H_ik) E|e_i e_k|`` (``E e_i^2 <= m2_i``, ``E|e_i e_k| = E|e_i| E|e_k|``; NaN: unknown)."""
    tot: Any = 0.0
    for (i, j), hij in h.items():
        m = iv.mag(hij)
        if i == j:
            tot = tot + np.where(e1[i] > 0, 0.5 * m * m2[i], 0.0)
        else:
            tot = tot + np.where((e1[i] > 0) & (e1[j] > 0), m * e1[i] * e1[j], 0.0)
    return tot


class Accumulator:
    """The re-centred form's per-input sums over one sub-box pass (arrays broadcast over the pass's boxes)."""

    def __init__(self) -> None:
        self.spread: Any = 0.0  # sum_i mag(G_i - c_i - b_i) E|e_i|
        self.lin1: Any = 0.0  # sum_i |b_i| E|e_i|
        self.mean: Any = 0.0  # sum_i b_i mu^_i
        self.mean_err: Any = 0.0  # sum_i |b_i| eps_i
        self.var: Any = 0.0  # sum_i b_i^2 (m_i - (|mu^_i| - eps_i)_+^2)

    def add(self, g: iv.Interval, c: np.ndarray, e: np.ndarray, mu: np.ndarray, er: np.ndarray, m2: np.ndarray) -> None:
        """Add input ``i``'s terms.

        ``g``: its gradient enclosure over the sub-box (or at ``x_s``), ``c``: the model's coefficient, ``e``:
        ``E|e_i|``, ``mu`` / ``er`` / ``m2``: the piece's mean, its error and second-moment bound.
        """
        mid = 0.5 * (g[0] + g[1])
        live = e > 0  # e_i = 0 almost surely where E|e_i| = 0
        self.spread = self.spread + np.where(live, iv.mag(iv.isub(g, (mid, mid))) * e, 0.0)
        b = np.where(live, mid - c, 0.0)
        ab = np.abs(b)
        self.lin1 = self.lin1 + ab * e
        self.mean = self.mean + b * mu
        self.mean_err = self.mean_err + ab * er
        var = np.maximum(m2 - np.maximum(np.abs(mu) - er, 0.0) ** 2, 0.0)
        self.var = self.var + np.where(live, b * b * var, 0.0)

    def bound(self, a_lo: np.ndarray, a_hi: np.ndarray, pad: np.ndarray) -> np.ndarray:
        """The theorem's bound on the sub-box, ``a`` enclosed in ``[a_lo, a_hi]``, ``pad`` added for rounding.

        NaN where an enclosure was unbounded (the caller maps it to ``inf``).
        """
        am, ar = 0.5 * (a_lo + a_hi), 0.5 * (a_hi - a_lo)
        tri = np.abs(am) + self.lin1
        l2 = np.sqrt((np.abs(am + self.mean) + self.mean_err) ** 2 + self.var)
        lin = np.fmin(tri, np.where(np.isfinite(l2), l2, np.inf))
        scale = np.abs(am) + np.abs(self.mean) + self.mean_err + self.lin1
        return (ar + lin + self.spread) * (1 + 1e-12) + pad + 8 * _EPS * scale
