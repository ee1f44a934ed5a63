"""Finer cells for the bound only (issue 14 sections 3-4): nested sub-cells of the inputs that carry the bound.

The answer's atoms stay those of the requested grid; only its certificate is recomputed on a finer partition. Let
``B`` be a box of the grid (atom value ``V'_B``) and ``b`` the boxes of a finer grid nested in it (each input cell
split into sub-cells, every sub-cell inside one cell; atom values ``V'_b``, per-box bounds ``beta_b >=
E[|V(X) - V'_b|; b]``, masses ``p_b``). By the triangle inequality, box by box,

    E[|V(X) - V'_B|; B] = sum_b E[|V(X) - V'_B|; b] <= sum_b (beta_b + p_b |V'_b - V'_B|),

so the coupling that sends every ``X`` in ``B`` to ``V'_B`` (the one the cellwise bound certifies) has its cost
bounded by the finer grid's per-box bounds plus an exact transport between two computed atom sets. The engine
keeps, per box, the smaller of this and its own bound (:func:`nested_bound`), so the bound never grows.

Why it pays: the interval and affine enclosures lose with the width of a box (remainders of order width squared
over long programs, e.g. 1,000 Euler steps) and an unbounded tail cell has no affine form at all. The sub-cells of
a tail cell are bounded but the outermost (mass :data:`TAIL_RATIO` ``**`` :data:`TAIL_PIECES` of the cell's), so
the tail's loose envelope bound is weighted by a tiny mass. Which inputs are split, and how finely, is chosen from
the bound's attribution under a cost cap (:func:`plan_splits`).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping

import numpy as np

from opgraph.dcg.distributions import Continuous, Distribution, Quantized

#: Whether the engine recomputes a loose cellwise bound on nested sub-cells (``ENABLED.set(False)`` turns it off,
#: for the before/after benchmark ``benchmarks/dcg/ode_wrapping.py``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_subcells", default=True)
#: The finer grid has at most this many times the boxes of the requested one, or MIN_BOXES (small grids: the
#: per-op overhead dominates their cost).
MAX_FACTOR = 8
MIN_BOXES = 512
#: ... and at most MAX_WORK / (nodes of the graph) boxes (the cost cap: about 20-30 CPU s of node evaluations on
#: this machine at MAX_WORK box-nodes, the 8-atom 1,000-step ODEs of the UQ suite).
MAX_WORK = 2**25
#: An infinite term counts as FACTOR_INF times the largest finite one when the splits are planned.
FACTOR_INF = 4.0
#: The sub-cell pass runs only where the cellwise bound exceeds this fraction of the computed output's spread
#: (its standard deviation): below that the enclosures are not the limit.
TRIGGER = 0.25
#: An unbounded tail cell is split into its ``p`` equal-mass pieces and then TAIL_PIECES geometric ones, each
#: TAIL_RATIO of the previous piece's mass (the outermost, unbounded piece has ``TAIL_RATIO**TAIL_PIECES`` of it).
TAIL_PIECES = 4
TAIL_RATIO = 1.0 / 32.0
#: A bound the caller already holds for the same output law (the cancellation pair's first evaluation, set around
#: the second): the pass stops where the cellwise bound cannot get below it (the answer keeps the smaller bound).
CEILING: contextvars.ContextVar[float] = contextvars.ContextVar("opgraph_dcg_subcells_ceiling", default=math.inf)
#: A round of the pass goes on past its probe only where the gain extrapolated from the probe is at least this
#: fraction of the bound (and brings it below the output's other bounds); a second round runs only where the
#: first gained at least this fraction (the engine's ``_subcell_probed``, :func:`probe_cells`).
MIN_GAIN = 0.1
#: Under ``target_w1`` a round runs its sub-cell passes only where its bound would reach the target with each
#: output's cellwise bound divided by this (an optimistic cap: the pass divided cellwise bounds by 1.0-7x on the UQ
#: rows and test programs measured, Piston 2x at 4 atoms); otherwise the passes wait for the final round
#: (:func:`opgraph.dcg.api._round_passes`). A speed rule only: every bound stays a valid one.
MAX_GAIN = 16.0
#: The probe holds the cells of one split input that carry this share of the bound (largest first) ...
PROBE_SHARE = 0.25
#: ... where they are at most this fraction of that input's cells (else the round runs whole).
PROBE_MAX_FRACTION = 0.5

_EPS = float(np.finfo(float).eps)


def _z_edges(dist: Continuous, lo: float, hi: float, p: int) -> np.ndarray:
    """Sub-cell edges (``Z`` units) of the cell ``[lo, hi]`` (``X`` units) split into ``p`` pieces (tails: more)."""
    zl = (lo - dist.loc) / dist.scale
    zr = (hi - dist.loc) / dist.scale
    za, zb = dist._zsupport()
    lower_tail = not math.isfinite(lo) and not za > -math.inf
    upper_tail = not math.isfinite(hi) and not zb < math.inf
    if lower_tail and upper_tail:
        return np.array([zl, zr])  # one cell for the whole line: left as is
    if upper_tail:  # survival levels S(zl) * (1 - k / p) ... then geometric
        s0 = float(dist._zsf(np.array(zl)))
        levels = [s0 * (1 - k / p) for k in range(1, p)] + [s0 / p * TAIL_RATIO**j for j in range(1, TAIL_PIECES + 1)]
        inner = dist._zisf(np.array(levels))
        return np.concatenate([[zl], inner, [zr]])
    if lower_tail:
        f0 = float(dist._zcdf(np.array(zr)))
        levels = [f0 * (1 - k / p) for k in range(1, p)] + [f0 / p * TAIL_RATIO**j for j in range(1, TAIL_PIECES + 1)]
        inner = dist._zppf(np.array(levels))[::-1]
        return np.concatenate([[zl], inner, [zr]])
    if p == 1:
        return np.array([zl, zr])
    fl, fr = float(dist._zcdf(np.array(zl))), float(dist._zcdf(np.array(zr)))
    if fl >= 0.5:  # upper half: survival levels keep their precision
        sl, sr = float(dist._zsf(np.array(zl))), float(dist._zsf(np.array(zr)))
        inner = dist._zisf(np.array([sl + (sr - sl) * k / p for k in range(1, p)]))
    else:
        inner = dist._zppf(np.array([fl + (fr - fl) * k / p for k in range(1, p)]))
    inner = np.clip(inner, zl, zr)
    return np.concatenate([[zl], np.sort(inner), [zr]])


def split(
    dist: Distribution, q: Quantized, p: int, only: np.ndarray | None = None
) -> tuple[Quantized, np.ndarray] | None:
    """``q``'s cells split into nested sub-cells (``p`` equal-mass pieces; tail cells also geometric far pieces).

    Returns the finer quantization (atoms at the sub-cells' conditional means, exact masses, per-cell errors
    ``E[|X - atom|; sub-cell]`` rounded up) and each sub-cell's parent cell index, or ``None`` where the law has
    no closed-form cell moments (then the input is not split). ``only`` (a mask of ``q``'s cells) keeps only those
    cells' sub-cells: a partial axis, as a chunk's slab is (its weights do not sum to 1).
    """
    if not isinstance(dist, Continuous) or type(dist).__name__ == "ScipyContinuous" or q.upstream_w1 != 0:
        return None
    s = dist.scale
    zl_all, zr_all, parent = [], [], []
    for i, (lo, hi) in enumerate(zip(q.lo, q.hi, strict=True)):
        if only is not None and not only[i]:
            continue
        e = _z_edges(dist, float(lo), float(hi), p)
        zl_all.append(e[:-1])
        zr_all.append(e[1:])
        parent.append(np.full(e.size - 1, i))
    zl, zr, par = np.concatenate(zl_all), np.concatenate(zr_all), np.concatenate(parent)
    mass, mom = dist._cell_mass_moment(zl, zr)
    with np.errstate(invalid="ignore", divide="ignore"):
        za = mom / mass
    mid = 0.5 * (np.where(np.isfinite(zl), zl, zr) + np.where(np.isfinite(zr), zr, zl))
    za = np.clip(np.where(np.isfinite(za), za, mid), zl, zr)
    err_z = dist._cell_abs_dev(zl, za, zr)
    x = dist.loc + s * za
    d = 4 * _EPS * (abs(dist.loc) + s * np.abs(za))
    err = err_z * s + d * mass
    lo = np.where(np.isfinite(zl), dist.loc + s * zl, -np.inf)
    hi = np.where(np.isfinite(zr), dist.loc + s * zr, np.inf)
    # The sub-cells' edges are rounded: widen each to its parent's where they meet it, and outward by a few ulps
    # elsewhere (a sub-cell slightly larger than the true piece only loosens its enclosures).
    lo = np.minimum(lo - 4 * _EPS * np.abs(lo), x)
    hi = np.maximum(hi + 4 * _EPS * np.abs(hi), x)
    lo = np.maximum(lo, q.lo[par])
    hi = np.minimum(hi, q.hi[par])
    if not (np.all(np.isfinite(x)) and np.all(mass >= 0) and np.all(np.isfinite(err))):
        return None
    # Masses from the closed-form CDF: normalised per parent to the parent's weight, so that the fine boxes of a
    # coarse box carry its mass (the differences are rounding).
    tot = np.bincount(par, weights=mass, minlength=q.weights.size)  # (zero for cells left out)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(tot[par] > 0, mass / tot[par] * q.weights[par], 0.0)
    fine = Quantized(x, w, lo, hi, err, "subcells", 0.0, q.support)
    return fine, par


def plan_splits(
    terms: Mapping[str, float],
    sizes: Mapping[str, int],
    tails: Mapping[str, int],
    cap: int,
    tail_only: bool = False,
) -> dict[str, int]:
    """Split counts per input: tails first, then double the input with the largest ``term / p`` while it fits ``cap``.

    Args:
        terms: The bound's term per input name (``inf`` counts as four times the largest finite term).
        sizes: Atoms per input name.
        tails: Unbounded tail cells per input name (each becomes ``p + TAIL_PIECES`` sub-cells).
        cap: Most boxes of the finer grid.
        tail_only: Where halving an input with tail cells does not fit, split its tail cells alone (``p = 1`` in
            the plan: interior cells kept, each tail cell into ``1 + TAIL_PIECES`` pieces). The engine plans its
            second round so when the attribution gives no new plan: an input whose whole unbounded tail cells the
            first round left can carry the bound (uqtestfuns FourBranch at 8 atoms per input: 5.49 -> 0.25).
    """
    tailed: set[str] = set()  # inputs planned with tails only (p = 1)

    def cells(name: str, p: int) -> int:
        if p == 1 and name not in tailed:
            return sizes[name]
        n, t = sizes[name], tails.get(name, 0)
        return (n - t) * p + t * (p + TAIL_PIECES)

    # An infinite term counts as four times the largest finite one: its input is split first, but not alone.
    finite = [v for v in terms.values() if math.isfinite(v) and v > 0]
    top = FACTOR_INF * max(finite) if finite else 1.0
    terms = {n: (top if math.isinf(v) else v) for n, v in terms.items() if not math.isnan(v)}
    p = dict.fromkeys(sizes, 1)
    # Inputs with tail cells first (their boxes have no affine form; a split tail leaves only a tiny unbounded
    # piece), largest term first, then the doubling below.
    for name in sorted((n for n in sizes if tails.get(n, 0) and terms.get(n, 0.0) > 0), key=lambda n: -terms[n]):
        trial = {**p, name: 2}
        if math.prod(cells(n, k) for n, k in trial.items()) <= cap:
            p = trial
        elif tail_only:
            tailed.add(name)
            if math.prod(cells(n, k) for n, k in p.items()) > cap:
                tailed.discard(name)
    done: set[str] = set()
    while True:
        cand = [n for n in sizes if n not in done and terms.get(n, 0.0) > 0]
        if not cand:
            return {n: k for n, k in p.items() if k > 1 or n in tailed}
        name = max(cand, key=lambda n: terms.get(n, 0.0) / p[n])
        trial = dict(p)
        trial[name] *= 2
        if math.prod(cells(n, k) for n, k in trial.items()) > cap:
            done.add(name)
            continue
        p = trial


def nested_bound(
    coarse_pt: np.ndarray, fine_pt: np.ndarray, fine_bound: np.ndarray, fine_w: np.ndarray, parents: list[np.ndarray]
) -> np.ndarray:
    """Per coarse box, ``sum_b (beta_b + p_b |V'_b - V'_B|)`` over its nested fine boxes (module docstring).

    Args:
        coarse_pt: The coarse grid's atom values ``V'_B`` (its full shape).
        fine_pt: The fine grid's atom values ``V'_b`` (its full shape).
        fine_bound: The fine grid's per-box bounds ``beta_b``.
        fine_w: The fine grid's box masses ``p_b``.
        parents: Per axis, each fine cell's coarse cell index (sorted: sub-cells are contiguous).
    """
    up = coarse_pt
    for ax, par in enumerate(parents):
        up = np.take(up, par, axis=ax)
    with np.errstate(invalid="ignore", over="ignore"):
        gap = np.abs(np.broadcast_to(fine_pt, fine_bound.shape) - up)
        per = fine_bound + fine_w * gap * (1 + 4 * _EPS) + fine_w * 4 * _EPS * np.abs(up)
    per = np.where(np.isnan(per), np.inf, per)
    for ax, par in enumerate(parents):
        starts = np.flatnonzero(np.r_[True, par[1:] != par[:-1]])
        per = np.add.reduceat(per, starts, axis=ax)
    return per * (1 + 1e-12)


def probe_cells(
    box: np.ndarray,
    axis_names: list[str],
    plan: Mapping[str, int],
    share: float | None = None,
    max_fraction: float | None = None,
) -> tuple[str, np.ndarray] | None:
    """The cheap first part of a sub-cell round: the cells of one split input that carry most of the bound.

    Per input of ``plan``, its cells sorted by their share of the bound (``box`` summed over the other axes; an
    infinite share first), the fewest that carry :data:`PROBE_SHARE` of the finite bound; the input where they are
    the smallest fraction of its cells, if at most :data:`PROBE_MAX_FRACTION`. Returns that input's name and the
    mask of those cells, or ``None`` (the round runs whole).

    Args:
        box: Per-box bounds of the requested grid (one axis per input).
        axis_names: The input name of each axis of ``box``.
        plan: Split counts per input name (:func:`plan_splits`).
        share: Share of the finite bound the probe holds (default :data:`PROBE_SHARE`).
        max_fraction: Most fraction of the input's cells in the probe (default :data:`PROBE_MAX_FRACTION`).
    """
    share = PROBE_SHARE if share is None else share
    max_fraction = PROBE_MAX_FRACTION if max_fraction is None else max_fraction
    best: tuple[float, str, np.ndarray] | None = None
    for j, name in enumerate(axis_names):
        if name not in plan or box.shape[j] < 2:
            continue
        other = tuple(i for i in range(box.ndim) if i != j)
        with np.errstate(invalid="ignore"):
            part = np.sum(box, axis=other) if other else np.asarray(box, dtype=float)
        part = np.where(np.isnan(part), np.inf, part)
        inf = ~np.isfinite(part)
        fin = np.where(inf, 0.0, part)
        order = np.argsort(-fin, kind="stable")
        order = order[~inf[order]]
        need = share * float(np.sum(fin))
        cum = np.cumsum(fin[order])
        k = int(np.searchsorted(cum, need, side="left")) + 1 if need > 0 else 0
        mask = inf.copy()
        mask[order[:k]] = True
        frac = float(np.mean(mask))
        if np.any(mask) and not np.all(mask) and frac <= max_fraction and (best is None or frac < best[0]):
            best = (frac, name, mask)
    return None if best is None else (best[1], best[2])
