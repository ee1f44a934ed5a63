"""Second-order box remainder from affine gradient forms: the Hessian read off the gradients' affine coefficients.

The Taylor box bound (:mod:`opgraph.dcg.taylor`) needs, per grid box, an upper bound on
``E[|f(X) - f(x') - c' . d| | box]`` (``x'`` the box's atom, ``d = X - x'``, ``c'`` the midpoints of the point
gradient enclosures at ``x'``). It has two forms: the Hessian form from second-order *interval* forward mode, and
the slope (mean-value) form ``sum_i mag(G_i - c'_i) E|d_i|``. On piston the interval Hessian enclosures lose
the cancellation between the chain rule's terms (``M / W`` with ``W = k + B (sqrt(A^2 + B) + A)^2 / C``: the
``-M / W^2 H_W`` and ``2 M / W^3 g_W g_W^T`` parts have opposite signs); even with the value and gradient
enclosures replaced by their sampled ranges the output's Hessian enclosure stays 36x the sampled one (median box,
4 atoms per input; docs/dcg.md, "Affine Hessian remainder"), and on 18 % of the boxes it is infinite. This module
takes the second-order information from the *affine* gradient forms instead (:func:`opgraph.dcg.affgrad.
gradient_forms`), which keep the correlation between the factors.

**Proof.** On a box with cells ``[lo_j, hi_j]`` (widened to hold the atom), ``m_j, h_j`` its centres and
half-widths (:func:`opgraph.dcg.affine.half_widths`, ``m_j +- h_j`` covers the cell) and ``e_j(x) = (x_j - m_j) /
h_j`` in ``[-1, 1]``, affine arithmetic gives per seeded axis ``i`` a form with ``|df/dx_i(x) - A_i(x)| <= r_i`` for
every ``x`` of the box, ``A_i(x) = c_i + sum_j a_ij e_j(x)`` (error symbols folded into ``r_i``). The segment
``[x', X]`` lies in the (convex) box, so with ``M_ij = a_ij / h_j`` (``A_i(x' + t d) = A_i(x') + t sum_j M_ij d_j``)

    f(X) - f(x') - c' . d = sum_i d_i int_0^1 (df/dx_i(x' + t d) - c'_i) dt
                          = sum_i (beta_i + epsbar_i) d_i + 1/2 sum_ij M_ij d_i d_j,

``beta_i = A_i(x') - c'_i`` (a number per box), ``|epsbar_i| <= r_i``. ``d^T M d = d^T S d`` with ``S = (M + M^T) /
2``; the coordinates of ``X`` are independent on the box (a product of cells of independent inputs), so with
``E_i = E[|d_i| | cell]`` and ``M2_i >= E[d_i^2 | cell]``

    E[|f(X) - f(x') - c' . d| | box] <= sum_i (|beta_i| + r_i) E_i + 1/2 sum_i |M_ii| M2_i
                                        + 1/2 sum_{i<k} |M_ik + M_ki| E_i E_k.

For a smooth ``f`` and small boxes the forms' ``r_i`` are second order in the box width, ``beta_i`` is within
``r_i`` plus the point enclosure's radius of 0 (``df/dx_i(x')`` lies in both), and the quadratic part is the
Hessian form's with the Hessian's value near the box's centre in place of its interval enclosure (1-D uniform cell:
``L h^2 / 6`` against the slope form's ``L h^2 / 2``, ``h`` the half-width, ``L = |f''|``).

**Rounding.** ``M_ij`` and ``e_j(x')`` are computed in floating point; each term is non-negative, so the sum times
``1 + 1e-9`` covers their relative rounding, except ``beta_i``, a difference: its absolute rounding error is below
``1e-12 (|c_i| + |c'_i| + sum_j |a_ij| (|e_j(x')| + (|x'_j| + |m_j|) / h_j))`` (the last part: the cancellation in
``x'_j - m_j`` where a cell is narrow against its position), which is added to ``|beta_i|``. Boxes where a form is
unbounded, or a cell is unbounded, get ``inf`` (the other forms stand there).

Where it runs: in :func:`opgraph.dcg.taylor._box_piece` after the slope form, on passes that take affine gradients
(the box pass, the work caps of :data:`opgraph.dcg.taylor.AFFINE_MAX_WORK` / ``MIX_MAX_WORK``); per box the smallest
form is kept, so no box's bound grows. ``ENABLED`` (a ContextVar, **default off**; :mod:`opgraph.dcg.switches`
``"affine_hessian"``) turns it on. Measured (docs/dcg.md, "Affine Hessian remainder"): on small smooth programs it
lies between the interval Hessian form and the slope form (``exp(x+y) z`` at 4 uniform atoms: 0.099 against 0.085
and 0.167); on Borehole:4 it is below both whole-box forms on 20-27 % of the box mass, but the sub-box slope form
(:mod:`opgraph.dcg.subslope`) is lower still there, and on piston the affine gradient forms' remainders are 30-180x
their linear parts (the chain's value ranges are too wide at 4 atoms per input), so no bound of the suite moved.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.dcg import affine as af
from opgraph.dcg import intervals as iv

#: Whether the Taylor box pass also takes this form of the remainder (the smallest per box kept). Off by default:
#: measured on the UQ rows Piston:4, OTL:4, Borehole:4, WingWeight:2, MLP:8, Ishigami:8 (2026-12-07) it moved no
#: bound (the sub-box slope form is lower wherever it wins) and costs one affine pass with every axis seeded.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_affhess", default=False)

#: Relative pad on the sum (the rounding of non-negative terms).
_REL = 1e-9
#: Relative pad on each ``beta_i`` (module docstring, "Rounding").
_BETA = 1e-12

Interval = iv.Interval


def remainder(
    graph: Any,
    output: int,
    axes: Sequence[int],
    box: dict[int, Interval],
    atoms: dict[int, np.ndarray],
    cs: dict[int, np.ndarray],
    r1: dict[int, np.ndarray],
    r2: dict[int, np.ndarray],
    seeds: Sequence[int] | None = None,
) -> np.ndarray:
    """Per box, the bound on ``E[|f(X) - f(x') - c' . d| | box]`` of the module docstring (``inf``: no bound).

    Args:
        graph: The output's graph (ops as :func:`opgraph.dcg.taylor.supported`; every input node's id is its axis).
        output: The output node's id.
        axes: The grid's axes (the layout of every array here and of the result).
        box: Per axis, the cells' ``(lo, hi)`` laid out to broadcast over the grid.
        atoms: Per axis, the atoms ``x'`` (laid out as ``box``).
        cs: Per axis, the linear model's coefficient ``c'`` per box (the point gradients' midpoints).
        r1: Per axis, ``E[|d| | cell]`` (laid out as ``box``).
        r2: Per axis, an upper bound on ``E[d^2 | cell]`` (laid out as ``box``).
        seeds: The axes on which the output depends (default: ``axes``); the others' partials are 0.

    Returns:
        The bound per box on the grid of ``axes`` (not weighted by the boxes' masses).
    """
    from opgraph.dcg import affgrad

    K = tuple(axes)
    shape = tuple(int(np.size(box[a][0])) for a in K)
    seeds = list(K if seeds is None else seeds)
    with np.errstate(all="ignore"):
        cell = {a: (np.minimum(box[a][0], atoms[a]), np.maximum(box[a][1], atoms[a])) for a in K}
        forms = affgrad.gradient_forms(graph, output, K, cell, seeds)
        mh = {a: af.half_widths(*cell[a]) for a in K}
        inv_h = {a: np.where(mh[a][1] > 0, 1.0 / np.where(mh[a][1] > 0, mh[a][1], 1.0), 0.0) for a in K}
        e_at = {a: (atoms[a] - mh[a][0]) * inv_h[a] for a in K}
        cancel = {a: (np.abs(atoms[a]) + np.abs(mh[a][0])) * inv_h[a] for a in K}  # x' - m rounding, over h
        lin: Any = 0.0
        quad: Any = 0.0
        mat: dict[int, dict[int, np.ndarray]] = {}
        for i in K:
            f = forms.get(i)
            if f is None:  # the output does not depend on axis i: df/dx_i = 0
                f = af.Aff(K, np.zeros(()), {}, np.zeros(()), None)
            r = np.asarray(f.r, dtype=float) + sum(
                (np.abs(x) for j, x in f.a.items() if j >= af.ERR_BASE), np.zeros(())
            )
            axis_a = {j: np.asarray(x, dtype=float) for j, x in f.a.items() if j < af.ERR_BASE}
            a_at = np.asarray(f.c, dtype=float)
            pad = np.abs(f.c) + np.abs(cs[i])
            for j, x in axis_a.items():
                a_at = a_at + x * e_at[j]
                pad = pad + np.abs(x) * (np.abs(e_at[j]) + cancel[j])
            beta = np.abs(a_at - cs[i]) + _BETA * pad
            lin = lin + np.where(r1[i] > 0, (beta + r) * r1[i], 0.0)
            mat[i] = {j: x * inv_h[j] for j, x in axis_a.items()}
        zero = np.zeros(())
        for n, i in enumerate(K):
            mii = mat[i].get(i, zero)
            quad = quad + np.where(r1[i] > 0, 0.5 * np.abs(mii) * r2[i], 0.0)
            for k in K[n + 1 :]:
                s = mat[i].get(k, zero) + mat[k].get(i, zero)
                quad = quad + np.where((r1[i] > 0) & (r1[k] > 0), 0.5 * np.abs(s) * r1[i] * r1[k], 0.0)
        tot = (lin + quad) * (1 + _REL)
        tot = np.where(np.isnan(tot), np.inf, tot)
    return np.broadcast_to(tot, shape)
