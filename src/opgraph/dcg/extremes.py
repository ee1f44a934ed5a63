"""The law of ``max(A, B)`` / ``min(A, B)`` of two independent one-axis values, without their joint grid.

For independent ``A`` and ``B`` the computed law of ``max(A', B')`` puts the mass ``p_i Q(B' <= a_i)`` on each atom
``a_i`` of ``A'`` and ``q_j P(A' < b_j)`` on each atom ``b_j`` of ``B'`` (ties go to ``A``): ``n + m`` atoms instead
of the ``n m`` cells of the joint grid. The per-atom error bound is what the cellwise bound of the joint grid
gives summed over the cells that produce the atom: on a cell pair ``(i, j)``, ``|max(A, B) - max(a_i, b_j)| <=
|A - a_i|`` when cell ``j`` lies entirely below cell ``i`` (``max = A`` there), and ``<= |A - a_i| + |B - b_j|``
otherwise; so the atom ``a_i`` carries ``e_i Q(B' <= a_i) + p_i sum_{j in S_i} f_j`` where ``S_i`` are the cells
``j`` with ``b_j <= a_i`` that reach above the bottom of cell ``i``. ``min`` is ``-max(-A, -B)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class OneAxis:
    """A value on one axis: atoms (any order), masses, the cells' value enclosures and per-cell error bounds."""

    atoms: np.ndarray
    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    err: np.ndarray


@dataclass
class ExtremeLaw:
    """The computed law of the extreme with its per-atom cells and error bounds (atoms ascending).

    ``err_a`` / ``err_b`` split ``err`` into the parts that come from the errors of ``A`` and of ``B``.
    """

    atoms: np.ndarray
    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    err: np.ndarray
    err_a: float
    err_b: float


def _sorted(v: OneAxis) -> OneAxis:
    order = np.argsort(v.atoms, kind="stable")
    return OneAxis(v.atoms[order], v.weights[order], v.lo[order], v.hi[order], v.err[order])


def _side(x: OneAxis, y: OneAxis, ties_to_x: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Masses, error parts (own, other's) and upper enclosures of the atoms of ``x`` in ``max(x, y)``.

    ``x`` and ``y`` are sorted by atom. The atoms of ``x`` win against ``y``'s atoms ``<= x`` (``< x`` when
    ``ties_to_x`` is False).
    """
    side = "right" if ties_to_x else "left"
    last = np.searchsorted(y.atoms, x.atoms, side=side)  # y cells 0 .. last-1 lose against x_i
    cum_q = np.concatenate([[0.0], np.cumsum(y.weights)])
    cum_f = np.concatenate([[0.0], np.cumsum(y.err)])
    mass = x.weights * cum_q[last]
    own = x.err * cum_q[last]
    # Cells of y (among the losers) whose enclosure reaches above the bottom of x's cell: a superset of them is
    # the contiguous run from the first cell whose running maximum of ``hi`` exceeds ``x.lo``.
    run_hi = np.maximum.accumulate(y.hi)
    first = np.searchsorted(run_hi, x.lo, side="right")
    first = np.minimum(first, last)
    other = x.weights * (cum_f[last] - cum_f[first])
    hi = np.maximum(x.hi, np.where(last > 0, run_hi[np.maximum(last - 1, 0)], -np.inf))
    return mass, own, np.maximum(other, 0.0), hi


def extreme_law(a: OneAxis, b: OneAxis, op: str) -> ExtremeLaw:
    """The law of ``op(A, B)`` (``"maximum"`` or ``"minimum"``) of independent one-axis values ``a`` and ``b``.

    Args:
        a: The first operand (its atoms, masses, cell enclosures and per-cell error bounds).
        b: The second operand.
        op: ``"maximum"`` or ``"minimum"``.

    Returns:
        The extreme's atoms (ascending, zero-mass atoms dropped), masses, cell enclosures and per-atom bounds on
        ``E[|op(A, B) - atom|; atom's cells]``.
    """
    if op not in ("maximum", "minimum"):
        raise ValueError(f"op={op!r}: use 'maximum' or 'minimum'")
    if op == "minimum":
        neg = extreme_law(
            OneAxis(-a.atoms, a.weights, -a.hi, -a.lo, a.err),
            OneAxis(-b.atoms, b.weights, -b.hi, -b.lo, b.err),
            "maximum",
        )
        return ExtremeLaw(
            -neg.atoms[::-1], neg.weights[::-1], -neg.hi[::-1], -neg.lo[::-1], neg.err[::-1], neg.err_a, neg.err_b
        )
    sa, sb = _sorted(a), _sorted(b)
    ma, own_a, oth_a, hi_a = _side(sa, sb, ties_to_x=True)
    mb, own_b, oth_b, hi_b = _side(sb, sa, ties_to_x=False)
    atoms = np.concatenate([sa.atoms, sb.atoms])
    weights = np.concatenate([ma, mb])
    lo = np.concatenate([sa.lo, sb.lo])
    hi = np.concatenate([hi_a, hi_b])
    err = np.concatenate([own_a + oth_a, own_b + oth_b]) * (1 + 1e-12)
    err_a = float(own_a.sum() + oth_b.sum())
    err_b = float(own_b.sum() + oth_a.sum())
    keep = weights > 0
    order = np.argsort(atoms[keep], kind="stable")
    pick = np.flatnonzero(keep)[order]
    total = float(weights[pick].sum())
    return ExtremeLaw(atoms[pick], weights[pick] / total, lo[pick], hi[pick], err[pick], err_a, err_b)
