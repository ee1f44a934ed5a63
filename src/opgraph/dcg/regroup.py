"""Monotone equal-mass regrouping of a weighted 1-D atom list, with its exact Wasserstein-1 cost per group.

Sorted atoms are cut into ``m`` groups of equal mass (an atom whose mass straddles a group boundary is split
between the groups); each group is replaced by its mean. The transport plan is monotone, so its cost equals the
W1 distance between the law before and after, and it is computed exactly (group by group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Regrouping:
    """The result of :func:`regroup`.

    Attributes:
        atoms: Group means, sorted (length ``m``).
        weights: Group masses (sum 1).
        cost: Exact transport cost of each group, ``sum_i mass_ig * |v_i - atom_g|`` (sum = W1 before/after).
        piece_elem: For every (element, group) piece, the index of the element in the *original* order.
        piece_group: The group of each piece.
        piece_mass: The mass of each piece.
        order: The sorting permutation applied to the original elements.
    """

    atoms: np.ndarray
    weights: np.ndarray
    cost: np.ndarray
    piece_elem: np.ndarray
    piece_group: np.ndarray
    piece_mass: np.ndarray
    order: np.ndarray

    @property
    def w1(self) -> float:
        """Exact W1 distance between the law before and after regrouping."""
        return float(self.cost.sum())


def regroup(values: np.ndarray, weights: np.ndarray, m: int) -> Regrouping:
    """Regroup a weighted atom list into ``m`` equal-mass groups at their means (monotone, exact cost).

    Args:
        values: Atom locations (any shape; flattened).
        weights: Non-negative masses of the same shape (normalised here).
        m: Number of groups (``m >= 1``). With ``m >= len(values)`` every element is its own group.

    Returns:
        A :class:`Regrouping`.
    """
    v = np.asarray(values, dtype=float).reshape(-1)
    w = np.asarray(weights, dtype=float).reshape(-1)
    w = w / w.sum()
    order = np.argsort(v)  # introsort: ties may come in any order, which changes neither the law nor the cost
    vs, ws = v[order], w[order]
    n = vs.size
    if m >= n:
        return Regrouping(vs, ws, np.zeros(n), order, np.arange(n), ws, order)
    cum = np.minimum(np.cumsum(ws), 1.0)  # monotone even when rounding overshoots 1 before the end
    cum[-1] = 1.0
    group_edges = np.arange(1, m) / m
    # Merge the two sorted break lists (element ends ``cum`` and group edges) without sorting: every break's
    # position in the merged list is its own index plus the number of breaks of the other list before it.
    # An element end equal to a group edge gives a zero-mass piece, dropped below.
    breaks = np.empty(n + m)
    breaks[0] = 0.0
    e_at = np.searchsorted(cum, group_edges, side="right")  # elements ending at or before each edge
    c_pos = 1 + np.arange(n) + np.searchsorted(group_edges, cum, side="left")
    g_pos = 1 + np.arange(m - 1) + e_at
    breaks[c_pos] = cum
    breaks[g_pos] = group_edges
    owner = np.empty(n + m - 1, dtype=np.int64)  # the element that each piece [breaks[j], breaks[j+1]] lies in
    owner[c_pos - 1] = np.arange(n)
    owner[g_pos - 1] = e_at
    mass = np.diff(breaks)
    mid = 0.5 * (breaks[:-1] + breaks[1:])
    keep = mass > 0
    mass, mid = mass[keep], mid[keep]
    elem = np.minimum(owner[keep], n - 1)
    group = np.minimum((mid * m).astype(np.int64), m - 1)
    gmass = np.bincount(group, weights=mass, minlength=m)
    gsum = np.bincount(group, weights=mass * vs[elem], minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        atoms = gsum / gmass
    # Clamp each mean into its group's range (guards against rounding) so the plan stays monotone.
    gmin = np.full(m, np.inf)
    gmax = np.full(m, -np.inf)
    np.minimum.at(gmin, group, vs[elem])
    np.maximum.at(gmax, group, vs[elem])
    atoms = np.clip(atoms, gmin, gmax)
    cost = np.bincount(group, weights=mass * np.abs(vs[elem] - atoms[group]), minlength=m)
    ok = gmass > 0
    # Merge groups whose means coincide is unnecessary; drop empty groups.
    remap = np.cumsum(ok) - 1
    return Regrouping(atoms[ok], gmass[ok] / gmass.sum(), cost[ok], order[elem], remap[group], mass, order)


def merge_duplicates(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort atoms and sum the weights of equal values. Returns ``(atoms, weights)``."""
    v = np.asarray(values, dtype=float).reshape(-1)
    w = np.asarray(weights, dtype=float).reshape(-1)
    if v.size == 0:
        return v, w
    if np.all(w == w[0]):
        # Equal masses (products of equal-weight quantizations): sorting the values alone suffices.
        vs = np.sort(v)
        new = np.empty(vs.size, dtype=bool)
        new[0] = True
        np.not_equal(vs[1:], vs[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        counts = np.diff(np.append(starts, vs.size))
        return vs[starts], counts * w[0]
    order = np.argsort(v)
    vs, ws = v[order], w[order]
    new = np.empty(vs.size, dtype=bool)
    new[0] = True
    np.not_equal(vs[1:], vs[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    return vs[starts], np.add.reduceat(ws, starts)
