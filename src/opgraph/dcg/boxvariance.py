"""Second-moment bound on the box-linear mixture's lattice rounding cost (:mod:`opgraph.dcg.boxlinear`).

On a mixed box the mixture couples the linear model ``L_b(X) = sum_i T_i`` with its rounded sum ``sum_i
round(T_i)`` through the same ``X``; the cost is ``E|S|`` with ``S = sum_i e_i``, ``e_i = round(T_i) - T_i``.
:mod:`opgraph.dcg.boxlinear` bounds it by the triangle inequality, ``D_b = sum_i E|e_i|``: about ``k delta / 4`` for
``k`` terms, although the errors are independent and mostly cancel (their sum is about ``sqrt(k / 12) delta``).

**Theorem.** With ``mu_i = E e_i`` and ``m_i >= E e_i^2`` (conditional on the box),

    E|S| <= sqrt(E S^2) = sqrt(sum_i (E e_i^2 - mu_i^2) + (sum_i mu_i)^2) <= sqrt(sum_i m_i - sum_i mu_i^2 + (sum_i
    mu_i)^2).

**Proof.** Jensen (or Cauchy-Schwarz): ``E|S| <= sqrt(E S^2)``. On a box the inputs ``X_i`` are independent (a
product of cell-conditional laws), and ``e_i`` is a function of ``X_i`` alone, so the ``e_i`` are independent and
``Var S = sum_i Var e_i``; ``E S^2 = Var S + (E S)^2``. ∎ The engine takes ``min(D_b, this)`` per box, so the
bound is never looser than the triangle inequality's.

**Moments per bin.** A term ``T = o + c (X - x')`` is rounded on bins ``[x_j, x_{j+1}]`` of ``X`` to the lattice
point whose ``X`` is ``s_j``; there ``e = c (s_j - X)``. So ``E e = c sum_j E[s_j - X; bin j] / P(cell)`` (signed:
closed-form CDF and partial moment of the family, Uniform in closed form) and ``E e^2 = c^2 sum_j E[(X - s_j)^2;
bin j] / P(cell)``, bounded by ``c^2 h_j E[|X - s_j|; bin j]`` with ``h_j`` the bin's largest ``|x - s_j|`` (any
law; a half-line bin gives ``inf``, the box then keeps ``D_b``), and exactly for a Uniform input
(``((b - s)^3 - (a - s)^3) / (3 scale)``). The computed means carry a rounding error bound ``r_i``; the bound uses
``|sum_i mu_i| <= |sum_i mu^_i| + sum_i r_i`` and ``mu_i^2 >= (|mu^_i| - r_i)_+^2``.

The lattice step of :mod:`opgraph.dcg.boxlinear` follows: with this bound the rounding cost of ``k`` terms is
about ``sqrt(k / 8) delta`` (the generic ``m_i`` of a smooth term is about ``delta^2 / 8``), so the step aiming at a
share of the remainder is ``sqrt(8 / k) / (k / 4)`` times coarser than the triangle inequality's at the same cost
share: fewer lattice cells, a cheaper mixture.

``ENABLED`` (a ContextVar, default on; carried to workers by :mod:`opgraph.dcg.switches` as
``box_linear_variance``): off, ``D_b`` is the triangle inequality's and the step as before.
"""

from __future__ import annotations

import contextvars
from typing import Any

import numpy as np

#: Whether the box-linear mixture bounds its lattice rounding by the second moment (module docstring).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_boxvariance", default=True)

_EPS = float(np.finfo(float).eps)


def bin_moments(
    dist: Any,
    a: np.ndarray,
    b: np.ndarray,
    s: np.ndarray,
    fa: np.ndarray,
    fb: np.ndarray,
    cost: np.ndarray,
    means: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin ``[a, b]`` (ordered), point ``s``: ``E[s - X; bin]``, its error bound, a bound on ``E[(X - s)^2; bin]``.

    All unconditional (divide by the cell's mass).

    Args:
        dist: The input's law.
        a: The bins' lower ends (may be ``-inf`` on a half-line bin).
        b: The bins' upper ends (may be ``+inf``).
        s: The bins' points (the lattice points' ``X``).
        fa: The CDF at ``a``.
        fb: The CDF at ``b``.
        cost: Upper bounds on ``E[|X - s|; bin]`` (:func:`opgraph.dcg.boxlinear._cost_bins`).
        means: ``E[s - X; bin]`` and its error bound where already evaluated (from the same partial moments).

    Returns:
        ``(mean, mean_err, m2)``; ``mean`` is NaN where the law has no closed-form partial moment.
    """
    mass = np.maximum(fb - fa, 0.0)
    h = np.maximum(np.abs(a - s), np.abs(b - s))
    m2 = np.where(cost > 0, h * cost, 0.0)  # (x - s)^2 <= h |x - s| on the bin
    m2 = np.where(np.isfinite(m2), m2, np.inf)
    name = type(dist).__name__
    if name == "Uniform":
        ua, ub = a - s, b - s  # closed forms of the integrals of (x - s) and (x - s)^2 over the bin, / scale
        mean = -0.5 * (ub - ua) * (ub + ua) / dist.scale
        err = (
            8
            * _EPS
            * (ub * ub + ua * ua + (np.abs(a) + np.abs(b) + np.abs(s)) * (np.abs(ub) + np.abs(ua)))
            / dist.scale
        )
        exact = (ub * ub * ub - ua * ua * ua) / (3 * dist.scale)
        pad = (
            16
            * _EPS
            * (np.abs(ub * ub * ub) + np.abs(ua * ua * ua) + (np.abs(a) + np.abs(b) + np.abs(s)) * (ub * ub + ua * ua))
        )
        m2 = np.minimum(m2, np.maximum(exact, 0.0) * (1 + 1e-12) + pad / dist.scale)
        return mean, err + 4 * _EPS * mass * (np.abs(s) + 1e-300), m2
    pm = getattr(dist, "partial_moment", None)
    if pm is None or name == "ScipyContinuous":
        return np.full(a.shape, np.nan), np.zeros(a.shape), m2
    with np.errstate(all="ignore"):
        if means is not None:
            mean, err = means
        else:
            pa, pb = np.asarray(pm(a), dtype=float), np.asarray(pm(b), dtype=float)
            mean = s * (fb - fa) - (pb - pa)
            err = 8 * _EPS * (np.abs(s) * (fa + fb) + np.abs(pa) + np.abs(pb))
    bad = ~(np.isfinite(mean) & np.isfinite(err))
    return np.where(bad, np.nan, mean), np.where(bad, 0.0, err), m2


def combine(dsum: np.ndarray, m2: np.ndarray, mu: np.ndarray, err: np.ndarray, mu2: np.ndarray) -> np.ndarray:
    """Per box, ``min(D_b, sqrt(E S^2))`` (module docstring), from sums over its terms.

    Args:
        dsum: The triangle inequality's bound ``sum_i E|e_i|``.
        m2: ``sum_i m_i`` (upper bounds on ``E e_i^2``).
        mu: ``sum_i mu^_i`` (computed means; NaN where some term's mean is unknown).
        err: ``sum_i r_i`` (their rounding error bounds).
        mu2: ``sum_i (|mu^_i| - r_i)_+^2``.
    """
    with np.errstate(all="ignore"):
        es2 = m2 - mu2 + (np.abs(mu) + err) ** 2
        var = np.sqrt(np.maximum(es2, 0.0)) * (1 + 1e-12) + 1e-300
    ok = np.isfinite(var)
    return np.where(ok, np.minimum(dsum, var), dsum)
