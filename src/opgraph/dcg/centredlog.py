"""Centred log-space box bound: the elasticity bound of :mod:`opgraph.dcg.elastic` with signed, centred slopes.

:mod:`opgraph.dcg.elastic` bounds ``E[|f(X) - f(x')|; B]`` on a box ``B`` through ``L_i >= sup |dh/du_i|`` (``h =
log|f|``, ``u_i = log x_i`` for a LogNormal input, ``x_i`` for a Normal one) along a path that moves one coordinate at
a time, each leg on one side of its atom:

    |f(x) - f(x')| <= |f(x')| (e^{sum_i L_i |d_i|} - 1),   d_i = u_i - u'_i.

That charges every dimension its *largest* slope and adds the dimensions' moves with the triangle inequality, so
their independent signs never cancel. Here the same leg enclosures ``G_i^+`` (upper half-cell leg) and ``G_i^-``
(lower) are used *signed*: with ``c_i^pm`` their midpoints, ``m_i^pm`` their radii, ``C = sum_i c_i^{sgn d_i} d_i``
and ``R = sum_i m_i^{sgn d_i} |d_i|``, the path gives ``|h(u) - h(u') - C| <= R``, so

    |e^{h(u) - h(u')} - 1| <= |e^C - 1| + e^C (e^R - 1),

and on the box (Cauchy-Schwarz on the first term, ``E[|Y|; B] <= sqrt(P(B) E[Y^2; B])``)

    E[|f(X) - f(x')|; B] <= |f(x')| ( sqrt(P(B) (E[e^{2C}; B] - 2 E[e^C; B] + P(B))) + E[e^{C + R}; B] - E[e^C; B] ).

Each expectation factorises over the independent inputs of the box into closed forms on Normal cells
(:func:`opgraph.dcg.elastic.log_factor` with signed rates: ``E[e^{a (Z - c)}; c < Z < b] + E[e^{a' (c - Z)}; a'' < Z
< c]``). The first term is second order in the *centred* slope (a sum of independent moves: its square root grows like
the root of the sum of squares, not the sum), the second is first order in the slope enclosures' *radii* only.
:func:`opgraph.dcg.elastic._slab` takes per box the smaller of this and its own bound (never worse). Theorem and proof:
docs/dcg.md, "Centred log-space box bound".

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``elastic_centred``) switches it off.
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence

import numpy as np

#: Whether :func:`opgraph.dcg.elastic._slab` also takes the centred bound (``ENABLED.set(False)`` turns it off).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_elastic_centred", default=True)

#: Relative rounding pad: on each expectation (the difference ``E[e^{2C}] - 2 E[e^C] + P`` cancels: it is padded by
#: PAD times the sum of its terms' magnitudes) and on the total.
PAD = 1e-9

#: Cost guard: per slab, only the heaviest boxes that together carry this share of the slab's mass get the centred
#: bound; the others keep the point-mass bound (DampedOsc's 7^7 grid, path order on: 1.317 std at 0.99 for +1.0 CPU s
#: per grid over the pass without it, 1.336 at 0.95 for +0.55 s, 1.363 at 0.9 for +0.43 s).
SHARE = 0.95

#: Slabs under this many boxes get the centred bound on every box (the guard pays only on large grids).
SELECT_MIN_BOXES = 2**12

Interval = tuple[np.ndarray, np.ndarray]


def select(wbox: np.ndarray, shape: tuple[int, ...], share: float | None = None) -> np.ndarray:
    """The boxes worth the centred bound (a mask of ``shape``): see :data:`SHARE` (the default ``share``)."""
    share = SHARE if share is None else share
    w = np.broadcast_to(wbox, shape).ravel()
    total = float(w.sum())
    if share >= 1 or w.size < SELECT_MIN_BOXES or not total > 0:
        return np.broadcast_to(True, shape)
    order = np.argsort(-w, kind="stable")
    m = int(np.searchsorted(np.cumsum(w[order]), share * total)) + 1
    keep = np.zeros(w.size, dtype=bool)
    keep[order[:m]] = True
    return keep.reshape(shape)


def bound(
    dims: Sequence[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]],
    legs: Mapping[int, tuple[Interval, Interval]],
    v_ok: np.ndarray,
    pt: np.ndarray,
    wbox: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
    ls_max: float,
    sel: np.ndarray | None = None,
) -> np.ndarray:
    """Per box the centred bound on ``E[|f(X) - pt|; box]`` (grid shape), ``inf`` where it does not apply.

    Args:
        dims: Per grid dimension ``(mu, sigma, lo, hi, at)``: the Normal coordinate's law and its cells' ends and
            atoms in that coordinate, each array shaped to broadcast along its dimension.
        legs: Per grid dimension ``(G^-, G^+)``: enclosures of ``dh/du_j`` on the lower and upper half-cell legs
            (the same interval twice for whole-cell legs), arrays broadcastable to ``shape``.
        v_ok: Boxes where ``f`` has one strict sign (elsewhere ``inf``).
        pt: The computed output at the atoms.
        wbox: The boxes' masses.
        pt_err: A bound on ``|f(x') - pt|`` per box.
        shape: The grid shape.
        ls_max: Largest ``|rate| * sigma`` whose closed-form factor is trusted (a larger one gives ``inf``).
        sel: The boxes to bound (a mask of ``shape``; the others get ``inf``); all when None.

    Returns:
        The per-box bound (same units as ``f``), ``inf`` where an enclosure is unbounded or a factor overflows.
    """
    from opgraph.dcg.elastic import log_factor

    if sel is not None:  # the selected boxes only, flattened; scattered back below
        full = shape
        pick = np.broadcast_to(sel, full)

        def g(x: np.ndarray) -> np.ndarray:
            return np.broadcast_to(x, full)[pick]

        dims = [(mu, s, g(lo), g(hi), g(at)) for mu, s, lo, hi, at in dims]
        legs = {j: tuple((g(a), g(b)) for a, b in pair) for j, pair in legs.items()}  # type: ignore[misc]
        part = bound(dims, legs, g(v_ok), g(pt), g(wbox), g(pt_err), (int(pick.sum()),), ls_max)
        out = np.full(full, np.inf)
        out[pick] = part
        return out
    k = len(dims)
    t1 = np.zeros(shape)  # log E[e^C | B]
    t2 = np.zeros(shape)  # log E[e^{2C} | B]
    t3 = np.zeros(shape)  # log E[e^{C + R} | B]
    bad = np.zeros(shape, dtype=bool)
    with np.errstate(all="ignore"):
        for j, (mu, s, lo, hi, at) in enumerate(dims):
            (l0, l1), (u0, u1) = (tuple(np.broadcast_to(x, shape) for x in g) for g in legs[j])
            c_dn, m_dn = (l0 + l1) / 2, (l1 - l0) / 2
            c_up, m_up = (u0 + u1) / 2, (u1 - u0) / 2
            # below the atom d < 0: c^- d = (-c^-) |d|; the rates of log_factor multiply |Z - c|
            f1 = log_factor(mu, s, lo, hi, at, c_up, -c_dn)
            f2 = log_factor(mu, s, lo, hi, at, 2 * c_up, -2 * c_dn)
            f3 = log_factor(mu, s, lo, hi, at, c_up + m_up, m_dn - c_dn)
            rate = np.maximum.reduce([2 * np.abs(c_up), 2 * np.abs(c_dn), np.abs(c_up) + m_up, np.abs(c_dn) + m_dn])
            bad |= ~(np.isfinite(f1) & np.isfinite(f2) & np.isfinite(f3)) | ~(rate * s <= ls_max)
            t1, t2, t3 = t1 + f1, t2 + f2, t3 + f3
        e1, e2, e3 = np.exp(t1), np.exp(t2), np.exp(t3)
        var = e2 - 2 * e1 + 1 + PAD * k * (e2 + 2 * e1 + 1)  # E[(e^C - 1)^2 | B], padded for its cancellation
        lin = np.sqrt(np.maximum(var, 0.0))
        rem = e3 - e1 + PAD * k * (e3 + e1)  # E[e^C (e^R - 1) | B] >= 0
        apt = np.abs(pt)
        out = apt * (lin + np.maximum(rem, 0.0)) * (1 + PAD) + PAD * k * apt
        out = out * wbox + np.abs(pt_err) * wbox
    ok = np.broadcast_to(v_ok, shape) & ~bad
    out = np.where(ok & np.isfinite(out), out, np.inf)
    return np.where(np.broadcast_to(wbox, shape) == 0, 0.0, out)
