"""A per-point memo for expensive reference CDFs (test helper, CI time).

:func:`opgraph.dcg.w1.w1_to_cdf` evaluates its ``cdf`` at a grid's left ends, midpoints and right ends: the ends
share all but one point, and repeated calls on one law share the grid (only the atoms refine it). A reference CDF
that is itself a quadrature (thousands of nodes per point) then spends most of a test's time on points it has
already evaluated. :func:`memoised` evaluates each distinct point once, in chunks of bounded memory.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def memoised(cdf: Callable[[np.ndarray], np.ndarray], chunk: int = 2048) -> Callable[[np.ndarray], np.ndarray]:
    """``cdf`` with each distinct point evaluated once.

    Args:
        cdf: a vectorised CDF taking a 1-D float array (points) and returning their values, point by point.
        chunk: the most points passed to ``cdf`` per call (memory: ``cdf`` may build a points x nodes matrix).

    Returns:
        A function of any array shape whose values are ``cdf``'s (to rounding: a BLAS sum may round differently
        with the batch it is in, about 1e-15).
    """
    keys, vals = np.empty(0), np.empty(0)

    def cached(t: np.ndarray) -> np.ndarray:
        nonlocal keys, vals
        t = np.asarray(t, dtype=float)
        flat = t.reshape(-1)
        u = np.unique(flat)
        pos = np.minimum(np.searchsorted(keys, u), max(keys.size - 1, 0))
        new = u if keys.size == 0 else u[keys[pos] != u]
        if new.size:
            got = np.concatenate([np.asarray(cdf(new[i : i + chunk]), dtype=float) for i in range(0, new.size, chunk)])
            keys, vals = np.concatenate([keys, new]), np.concatenate([vals, got])
            order = np.argsort(keys, kind="stable")
            keys, vals = keys[order], vals[order]
        return vals[np.searchsorted(keys, flat)].reshape(t.shape)

    return cached
