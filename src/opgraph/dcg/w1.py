"""Exact 1-D Wasserstein-1 distances: discrete vs discrete, and discrete vs a continuous input family."""

from __future__ import annotations

from typing import Any

import numpy as np


def w1_discrete(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    """W1 between two weighted atom lists: the integral of |F_a - F_b| (exact up to rounding)."""
    a, wa = np.asarray(a, float).reshape(-1), np.asarray(wa, float).reshape(-1)
    b, wb = np.asarray(b, float).reshape(-1), np.asarray(wb, float).reshape(-1)
    x = np.concatenate([a, b])
    d = np.concatenate([wa / wa.sum(), -wb / wb.sum()])
    order = np.argsort(x, kind="stable")
    x, d = x[order], d[order]
    diff = np.cumsum(d)[:-1]
    return float(np.sum(np.abs(diff) * np.diff(x)))


def w1_to_continuous(atoms: np.ndarray, weights: np.ndarray, dist: Any) -> float:
    """W1 between a weighted atom list and a continuous family of :mod:`opgraph.dcg.distributions`.

    Uses closed-form integrals of the CDF (via partial moments) between consecutive atoms, so no quadrature
    is involved for the closed-form families.
    """
    x = np.asarray(atoms, float).reshape(-1)
    w = np.asarray(weights, float).reshape(-1)
    order = np.argsort(x)
    x, w = x[order], w[order] / w.sum()
    z = (x - dist.loc) / dist.scale
    med = dist._zmedian()
    cum = np.cumsum(w)[:-1]
    c = cum

    def lower_int(t: np.ndarray) -> np.ndarray:
        """Integral of F from -inf to t (accurate left of the median)."""
        with np.errstate(invalid="ignore"):
            v = t * dist._zcdf(t) - dist._zpm_lo(t)
        return np.where(np.isfinite(t) | (t > 0), v, 0.0)

    def upper_int(t: np.ndarray) -> np.ndarray:
        """Integral of 1 - F from t to inf (accurate right of the median)."""
        with np.errstate(invalid="ignore"):
            return dist._zpm_hi(t) - t * dist._zsf(t)

    def int_f(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Integral of F over [a, b]."""
        use_upper = a >= med
        lo_form = lower_int(b) - lower_int(a)
        hi_form = (b - a) - (upper_int(a) - upper_int(b))
        return np.where(use_upper, hi_form, lo_form)

    total = float(lower_int(z[:1])[0]) + float(upper_int(z[-1:])[0])
    if x.size > 1:
        a, b = z[:-1], z[1:]
        cq = np.clip(c, 0.0, 1.0)
        tstar = np.where(cq <= 0.5, dist._zppf(np.minimum(cq, 0.5)), dist._zisf(np.minimum(1 - cq, 0.5)))
        tstar = np.clip(np.nan_to_num(tstar, nan=0.0), a, b)
        left = c * (tstar - a) - int_f(a, tstar)
        right = int_f(tstar, b) - c * (b - tstar)
        total += float(np.sum(np.maximum(left, 0.0) + np.maximum(right, 0.0)))
    return total * dist.scale


def w1_to_cdf(atoms: np.ndarray, weights: np.ndarray, cdf: Any, lo: float, hi: float, n_grid: int = 200_001) -> float:
    """W1 between a weighted atom list and a law given by a vectorised ``cdf`` supported in ``[lo, hi]``.

    Numerical (Simpson's rule on a grid refined at every atom); use for references without partial moments.
    """
    x = np.asarray(atoms, float).reshape(-1)
    w = np.asarray(weights, float).reshape(-1)
    order = np.argsort(x)
    x, w = x[order], w[order] / w.sum()
    lo, hi = min(lo, float(x[0])), max(hi, float(x[-1]))
    pts = np.union1d(np.linspace(lo, hi, n_grid), x)
    a, b = pts[:-1], pts[1:]
    m = 0.5 * (a + b)
    cum = np.concatenate([[0.0], np.cumsum(w)])
    g = cum[np.searchsorted(x, m, side="right")]
    fa, fm, fb = cdf(a), cdf(m), cdf(b)
    return float(np.sum((b - a) / 6 * (np.abs(fa - g) + 4 * np.abs(fm - g) + np.abs(fb - g))))
