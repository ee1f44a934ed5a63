"""Box-linear mixture answer: a second-order certificate on general multi-input grids.

Every point-mass certificate on a grid bounds a coupling between the exact output ``Y = f(X)`` and the atoms
``f(x'_b)`` of the boxes, ``sum_b E[|f(X) - f(x'_b)|; box b]``: first order in the cell size, while the true W1 of
a mean-preserving grid is second order because the boxes' first-order errors cancel across boxes. This module
returns a different answer, for which a second-order bound holds.

**Answer.** On a box ``b`` whose cells are all finite (product of the cells ``[lo_i, hi_i]`` with atoms ``x'_i``,
computed value ``V'_b``), let ``c_i`` be the midpoint of the gradient enclosure at the atom (from
:mod:`opgraph.dcg.taylor`) and ``L_b(X) = V'_b + sum_i c_i (X_i - x'_i)``, ``X`` drawn from the box's
cell-conditional input laws (independent across inputs). Each term ``T_1 = V'_b + c_1 d_1``, ``T_i = c_i d_i``
(``i >= 2``, ``d_i = X_i - x'_i``) is rounded to the nearest point of the lattice ``delta Z``; the rounded terms are
independent, so their sum has the convolution of their lattice laws (computed by FFT, vectorised over boxes) as its
law ``G_b``, on the same lattice. The answer is ``G = sum_b p_b G_b`` over the boxes where this is chosen, plus the
point masses ``p_b V'_b`` of the other boxes.

**Theorem.** With ``R_b >= E[|f(X) - L_b(X)| | box b]`` (:func:`opgraph.dcg.taylor.box_bound`'s ``rest``: the
gradient radii ``sum_i r_i E|d_i|``, the Hessian remainder ``1/2 sum |H_ik| E|d_i d_k|`` and the gap
``|f(x') - V'|``), ``D_b = sum_i E|T_i - round(T_i)|`` (exact 1-D integrals of the conditional laws, from their
closed-form CDF and partial moments, padded for rounding) and ``B_b`` the engine's own bound on
``E[|f(X) - V'_b|; box b]``,

    W1(law Y, G) <= sum_{b mixed} p_b (R_b + D_b + s_b) + sum_{b other} B_b,

with ``s_b`` the padding for the FFT's and the lattice's rounding. **Proof.** Couple on each box separately (a
mixture of couplings is a coupling of the mixtures): on a mixed box, ``Y = f(X)`` with ``L_b(X)`` through the same
``X`` (cost ``E|f(X) - L_b(X)| <= R_b``), and ``L_b(X) = sum_i T_i`` with ``sum_i round(T_i)`` through the same
``X`` (cost ``<= sum_i E|T_i - round(T_i)| = D_b``, triangle inequality); ``sum_i round(T_i)`` has law ``G_b``
exactly (independence of the coordinates on a box). On the other boxes, the engine's coupling with the point mass.
Both ``R_b`` and ``D_b`` are second order where ``delta`` is: the first-order term ``c . d`` of the point-mass
bound is no longer paid, it is *in the answer*.

The lattice step is chosen so that ``D`` is about :data:`DISC_SHARE` of the remainder total, within a work
budget (:data:`WORK_PER_BOX` lattice cells per box plus a floor growing as the boxes' total span,
:func:`work_budget`, at most :data:`MAX_WORK` over all boxes;
:data:`MAX_LATTICE` points in the answer; boxes are
processed in blocks of at most :data:`BLOCK` cells, so memory is bounded). The engine keeps the result only where
its bound is smaller than the point-mass answer's final bound (never worse), and skips it where its bound cannot go
below a bound the caller already holds for the same law (``answer``'s ``held``); the CDF band is unchanged (it comes
from the cells' value enclosures of the exact law, not from the answer). ``ENABLED`` (a ContextVar, default **on**:
see its comment) switches it; it travels to workers with the other switches (:mod:`opgraph.dcg.switches`).

**Many-input grids** (branch mix-many): ``D_b`` is the smaller of the triangle inequality's sum and the second-moment
bound ``sqrt(E S^2)`` of the independent rounding errors (:mod:`opgraph.dcg.boxvariance`, switch
``box_linear_variance``; where every input is Uniform the step is coarser at the same rounding share); a Uniform
input's term is computed in closed form (:func:`_uniform_term`, :data:`UNIFORM_CLOSED`); a ``target_w1`` call whose
time left cannot pay the grid's whole work budget builds the mixture on the work that fits (:data:`FIT_BUDGET`); an
evaluation's repeated request for the same grid reuses its mixture (:data:`MEMO`).

**Half-line cells** (:mod:`opgraph.dcg.boxtails`, switch ``box_linear_tails``, default on): a box with an unbounded
cell of a Normal, LogNormal, Gamma or Exponential input is mixed too where its remainder is finite; the tail term's
lattice is cut at a far point and its last bin reaches infinity, so ``D_b`` stays the exact sum of the bins' costs
(the proof above does not use the lattice's range).

**Smoothed rounding** (:mod:`opgraph.dcg.boxsmooth`, switch ``box_smooth``, default on; branch smooth-round): on a
box where it is predicted to win, every term but the widest is rounded mean-preservingly (hat projection) and
``D_b`` is the widest term's nearest-rounding cost plus a second-order smoothing term (about ``delta / 4`` in all,
not ``(k + 1) delta / 4``); the decision is made per box before its lattice laws are built, so the answer's law
matches its bound. The lattice step is unchanged.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.fft

from opgraph.dcg import boxsmooth, boxtails, boxvariance, fixedbudget, roundcredit

log = logging.getLogger(__name__)

#: Whether the engine tries the box-linear mixture answer. On by default since 2026-12-07 (turn it off with
#: ``ENABLED.set(False)`` or ``opgraph.dcg.switches.scope({"box_linear": False})``; docs/dcg.md "On by default"). On
#: whole grids the lattice work floor follows the grid (:func:`work_budget`), so more atoms do not give a worse bound
#: (three Exponentials summed: 0.0098 / 0.0088 / 0.0072 at 8 / 16 / 32 atoms). Chunked grids (``max_memory``) do not
#: build it, so a chunked answer can differ from the unchunked one (both certified). Fixed-atoms calls whose grid is
#: reduced or compressed also evaluate the halved request (``opgraph.dcg.api._mixture_smaller_request``: more atoms
#: never give a worse bound there) and skip a mixture predicted past the fixed-atoms allowance
#: (:mod:`opgraph.dcg.fixedbudget`, entry ``"box_linear"``); ``target_w1`` calls skip a mixture predicted to end
#: past their ``max_seconds`` (:func:`affordable`).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_boxlinear", default=True)

#: The lattice step aims at a discretization cost of about this share of the remainder total.
DISC_SHARE = 0.5
#: Most lattice cells (boxes times per-box support) one answer may cost (a CPU guard). It binds only on grids of
#: over ``MAX_WORK / WORK_PER_BOX`` (2**21) candidate boxes, twice the default ``max_joint``: below, the work follows
#: the grid and the lattice step falls with the cells (more atoms, a finer lattice; module docstring).
MAX_WORK = 2**27
#: Most lattice cells per candidate box (plus the floor of :func:`work_budget`), under :data:`MAX_WORK`: the work
#: follows the grid's size.
WORK_PER_BOX = 64
#: The work floor of :func:`work_budget` at :data:`FLOOR_BOXES` candidate boxes (lattice cells).
WORK_FLOOR = 2**20
#: Candidate boxes at which the work floor is :data:`WORK_FLOOR` (it scales as ``boxes ** ((k - 1) / k)``).
FLOOR_BOXES = 2**14
#: Fewest inputs on the grid: one input is certified in 1-D already, and its answer stays the atoms' images.
MIN_AXES = 2
#: Most points of the answer's lattice, per box of the grid (at least 2**14, at most :data:`MAX_LATTICE`).
LATTICE_PER_BOX = 4
#: Most points of the answer's lattice (binds only beyond 2**20 boxes, the default ``max_joint``; 32 MB).
MAX_LATTICE = 2**22
#: Reuse an evaluation's last mixture where the engine asks again for the same grid, linear models and per-box
#: bounds (a re-finish: OTL at 8 atoms built the same 4 s mixture twice; branch mix-many; off: rebuilt, as before).
MEMO = True
#: Pad each block's FFT length to a 2-3-5-smooth size (a prime length such as 127 took 6-13x as long; mix-many).
FAST_LENGTH = True
#: Uniform inputs' terms in closed form (:func:`_uniform_term`; off: bin by bin through the CDF, as before).
UNIFORM_CLOSED = True
#: Terms with at most this many lattice points are convolved by shifted adds, longer ones by FFT.
DIRECT = 6
#: Most cells (boxes times padded support) one block holds (memory guard: a few arrays of 16 bytes).
BLOCK = 2**20
#: Most rounds of (far points of the half-line cells, lattice step) on grids with tail cells (:mod:`boxtails`).
TAIL_ROUNDS = 3
#: Predicted CPU seconds of the mixture per lattice cell of its work budget (measured 1.35e-7 on Borehole's
#: 8-atom target_w1 rounds, tail rounds included, 2026-12-07; padded): a ``target_w1`` call skips a mixture
#: predicted to end past its ``max_seconds`` (:func:`affordable`).
SECONDS_PER_CELL = 2e-7
#: ``target_w1`` calls: where the grid's whole work budget is predicted past the time left of ``max_seconds``, build
#: the mixture on the work that fits (a coarser lattice step: a larger but still certified rounding cost) instead of
#: skipping it, if at least :data:`FIT_MIN_PER_BOX` times the fixed per-box work ``k + 2`` cells fits (branch
#: mix-many; off: skipped, as before).
FIT_BUDGET = True
#: The least work a fitted mixture gets, in units of the per-box overhead ``boxes * (k + 2)`` lattice cells.
FIT_MIN_PER_BOX = 2
_EPS = float(np.finfo(float).eps)


def work_budget(boxes: int, k: int) -> int:
    """Most lattice cells of a mixture over ``boxes`` candidate boxes of a ``k``-input grid.

    ``min(MAX_WORK, WORK_PER_BOX * boxes + F)`` with the floor ``F = WORK_FLOOR * (boxes / FLOOR_BOXES) **
    ((k - 1) / k)``, which grows as the boxes' total linear span does under refinement (``2**(k-1)`` per doubling of
    the atoms while the boxes grow ``2**k``): so the work step ``delta_W`` never grows with the atoms below the cap
    (docs/dcg.md, "Lattice step and more atoms"). A constant floor of 2**20 made ``delta_W`` grow as the span on
    grids under 2**14 boxes: three Exponentials summed certified 0.0021 / 0.0048 / 0.0085 at 8 / 16 / 32 atoms.
    """
    floor = WORK_FLOOR * (max(boxes, 1) / FLOOR_BOXES) ** ((k - 1) / k)
    return int(min(MAX_WORK, WORK_PER_BOX * boxes + floor))


def wanted(boxes: int, k: int) -> bool:
    """Whether the engine asks the Taylor pass for linear models on a grid of ``boxes`` boxes (for the mixture).

    Off with the switch, and inside a ``target_w1`` call where the mixture's largest work on such a grid
    (:func:`work_budget` lattice cells, ``k`` inputs) is predicted past ``max_seconds``
    (:func:`affordable`): the mixture would be skipped there, and the linear models cost the Taylor pass its probe
    skip and larger slope work caps (Borehole's 1e-2 target call: 10.9 -> 15.7 CPU s for the same bound).
    """
    if not ENABLED.get():
        return False
    work = FIT_MIN_PER_BOX * boxes * (k + 2) if FIT_BUDGET else work_budget(boxes, k)
    return within_fixed_budget(boxes, k) and affordable(SECONDS_PER_CELL * min(work, work_budget(boxes, k)))


def cells_left() -> float:
    """Lattice cells of mixture work predicted to fit the running ``target_w1`` call's time left (``inf``: none).

    ``SECONDS_PER_CELL`` CPU s per cell, with the budget's safety margin (:func:`affordable`).
    """
    from opgraph.dcg import roundbudget

    rb = roundbudget.current()
    if rb is None:
        return math.inf
    return max(rb.left(), 0.0) / (roundbudget.SAFETY * SECONDS_PER_CELL)


def within_fixed_budget(boxes: int, k: int) -> bool:
    """Whether a mixture over ``boxes`` boxes of a ``k``-input grid fits a call without a time budget.

    True inside a ``target_w1`` call (its ``max_seconds`` guards it: :func:`affordable`). Outside one (fixed atoms),
    the mixture's largest work on the grid (:func:`work_budget`, :data:`SECONDS_PER_CELL` each) must be predicted
    within the fixed-atoms allowance ``"box_linear"`` (:mod:`opgraph.dcg.fixedbudget`: 5 CPU s, 2.5e7 lattice
    cells). Larger grids get no mixture and no linear models from the Taylor pass; the fixed-atoms call then also
    evaluates the halved request (``opgraph.dcg.api._mixture_smaller_request``), so twice the atoms never give a
    worse bound there. A deterministic function of the grid's size: the same call gives the same answer on any
    machine. Skipping changes no certificate, only which certified answer the call returns (the point-mass answer).
    """
    from opgraph.dcg import roundbudget

    if roundbudget.current() is not None:
        return True
    return fixedbudget.allows("box_linear", SECONDS_PER_CELL * work_budget(boxes, k))


def fixed_budget_fits(restricted: Sequence[tuple[Any, int]], counts: dict[str, int]) -> bool:
    """Whether every output's whole grid at ``counts`` atoms per input is within :func:`within_fixed_budget`.

    Args:
        restricted: Per output, its graph and output id (``opgraph.dcg.engine.restrict``); the grid's axes are
            the graph's input nodes.
        counts: Atoms per input name.
    """
    for g, _ in restricted:
        names = [n.attrs["name"] for n in g.nodes if n.op == "input"]
        if len(names) >= MIN_AXES and not within_fixed_budget(math.prod(counts[n] for n in names), len(names)):
            return False
    return True


def affordable(seconds: float, what: str = "box-linear mixture") -> bool:
    """Whether work for the mixture predicted to take ``seconds`` (CPU) fits the running ``target_w1`` call.

    True outside a ``target_w1`` call (fixed atoms have no time budget). Inside one
    (:func:`opgraph.dcg.roundbudget.current`), the predicted seconds, with the budget's safety margin, must fit the
    seconds left of ``max_seconds``. Callers: :func:`mixture` (``SECONDS_PER_CELL`` times its lattice work; skipped,
    the round's answer is its point-mass answer, as with the switch off) and :func:`opgraph.dcg.taylor.box_bound`
    (the larger slope work cap the mixture asks for; skipped, the default caps apply). Neither changes a bound's
    validity, only which certified answer a round returns.
    """
    from opgraph.dcg import roundbudget

    rb = roundbudget.current()
    if rb is None:
        return True
    need = roundbudget.SAFETY * seconds
    if need <= rb.left():
        return True
    log.info("%s skipped: predicted %.3g s, %.3g s left of max_seconds", what, need, rb.left())
    return False


def _cost_bins(dist: Any, x: np.ndarray, f: np.ndarray, s: np.ndarray, means: list[Any] | None = None) -> np.ndarray:
    """Upper bounds on ``E[|X - s_j|; X between x_j and x_{j+1}]`` per bin ``j``, padded for rounding.

    ``x``: the bins' edges by row (monotone, either direction), ``f``: the CDF at them, ``s``: a point per bin. From
    the closed-form partial moment ``PM(x) = E[X; X <= x]`` where the law has one (split at ``s`` clipped into the
    bin); never above ``P(bin) * max(|a - s|, |b - s|)``. Where ``means`` is a list and the partial moments were
    evaluated, ``(E[s - X; bin], its rounding error bound, the bin's largest |x - s|)`` is appended to it (for
    :mod:`opgraph.dcg.boxvariance`, which then need not evaluate them again).
    """
    up = x[:, 1:] >= x[:, :-1]
    a, b = np.where(up, x[:, :-1], x[:, 1:]), np.where(up, x[:, 1:], x[:, :-1])
    fa, fb = np.where(up, f[:, :-1], f[:, 1:]), np.where(up, f[:, 1:], f[:, :-1])
    mass = np.maximum(fb - fa, 0.0) + 4 * _EPS
    h = np.maximum(np.abs(a - s), np.abs(b - s))
    crude = mass * h
    if type(dist).__name__ == "Uniform":  # constant density 1 / scale: the integral of |x - s| in closed form
        inside = (a <= s) & (s <= b)
        area = np.where(inside, 0.5 * ((s - a) ** 2 + (b - s) ** 2), (b - a) * np.abs(0.5 * (a + b) - s))
        got = area / dist.scale * (1 + 1e-12) + 4 * _EPS * mass * (np.abs(a) + np.abs(b) + np.abs(s))
        return np.minimum(got, crude)
    pm = getattr(dist, "partial_moment", None)
    if pm is None or type(dist).__name__ == "ScipyContinuous":
        return crude
    pe = np.asarray(pm(x), dtype=float)
    pa, pb = np.where(up, pe[:, :-1], pe[:, 1:]), np.where(up, pe[:, 1:], pe[:, :-1])
    sc = np.clip(s, a, b)
    fs, ps = np.asarray(dist.cdf(sc), dtype=float), np.asarray(pm(sc), dtype=float)
    exact = s * (fs - fa) - (ps - pa) + (pb - ps) - s * (fb - fs)
    slack = 8 * _EPS * (np.abs(s) * (fa + fb + 2 * fs) + np.abs(pa) + np.abs(pb) + 2 * np.abs(ps))
    if means is not None:
        means.append((s * (fb - fa) - (pb - pa), 8 * _EPS * (np.abs(s) * (fa + fb) + np.abs(pa) + np.abs(pb)), h))
    got = np.maximum(exact, 0.0) + slack
    return np.where(np.isfinite(got), np.minimum(got, crude), crude)


def _uniform_term(
    c: np.ndarray,
    o: np.ndarray,
    tlo: np.ndarray,
    thi: np.ndarray,
    kb: np.ndarray,
    npts: np.ndarray,
    delta: float,
    j: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """A Uniform input's term on a block of boxes, in closed form (no CDF, O(1) moments per box).

    On a cell of a Uniform input, ``T = o + c (X - x')`` is uniform on ``[tlo, thi]`` (length ``L``). Rounded to the
    lattice ``delta Z`` (bins ``[(q - 1/2) delta, (q + 1/2) delta]`` cut to ``[tlo, thi]``), every interior bin is
    a full step: rounding error uniform on ``[-delta/2, delta/2]`` (``E|e| = delta^2 / 4 / L`` of mass, mean 0,
    ``E e^2 = delta^3 / 12 / L``); only the first and last bins are cut, integrated in closed form
    (``int |t|``, ``int t``, ``int t^2`` over ``[u, v]``). The same numbers as the generic path's per-bin sums (which
    evaluate the Uniform CDF and integrals bin by bin), in O(1) per box.

    Args:
        c: The term's coefficients (per box).
        o: Its offsets (``V'`` for the first term, else 0).
        tlo: ``T``'s lower end (a column, per box).
        thi: Its upper end.
        kb: The lowest lattice index (``round(tlo / delta)``).
        npts: Lattice points of the term.
        delta: The lattice step.
        j: ``0 .. max(npts)`` (the block's bin edges' indices).

    Returns:
        ``(pm, E|e|, E e, error of E e, E e^2 bound, total-variation bound of pm's rounding)`` (per box; ``pm`` the
        lattice law by row, ``e = round(T) - T``).
    """
    ln = (thi - tlo)[:, 0]
    live = (c != 0) & (ln > 0)
    safe = np.where(live, ln, 1.0)
    edges = np.clip((kb + j - 0.5) * delta, tlo, thi)
    raw = np.diff(edges, axis=1)
    tot = raw.sum(axis=1, keepdims=True)
    pm = raw / np.where(tot > 0, tot, 1.0)
    pm[~live] = 0.0
    pm[~live, 0] = 1.0
    lo, hi, k0, n = tlo[:, 0], thi[:, 0], kb[:, 0], npts[:, 0]
    p0, p1 = k0 * delta, (k0 + n - 1) * delta
    half = 0.5 * delta
    one = n <= 1
    u0, v0 = lo - p0, np.where(one, hi - p0, half)
    u1, v1 = -half, hi - p1
    inner = np.maximum(n - 2, 0)

    def ints(u: np.ndarray, v: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (
            0.5 * (v * np.abs(v) - u * np.abs(u)),
            0.5 * (v * v - u * u),
            (v * v * v - u * u * u) / 3.0,
        )  # products: a float power is 60x slower

    a0, m0, s0 = ints(u0, v0)
    a1, m1, s1 = ints(np.full(n.shape, u1), v1)
    last = ~one
    d = (a0 + np.where(last, a1, 0.0) + inner * (delta * delta / 4)) / safe
    mu = -(m0 + np.where(last, m1, 0.0)) / safe
    m2 = (s0 + np.where(last, s1, 0.0) + inner * (delta**3 / 12)) / safe
    # rounding: the ends and the lattice points within eta of their values; L within eps (|lo| + |hi|)
    eta = 4 * _EPS * (np.abs(lo) + np.abs(hi) + np.abs(p0) + np.abs(p1) + delta)
    rel = 1 + 1e-12 + 4 * _EPS * (np.abs(lo) + np.abs(hi)) / safe
    d = d * rel + 4 * delta * eta / safe
    err = np.abs(mu) * (rel - 1) + 4 * delta * eta / safe
    m2 = m2 * rel + 4 * delta * delta * eta / safe
    tv = 4 * j.size * (eta + 4 * _EPS * j.size * delta) / safe + 8 * j.size * _EPS
    e0 = p0 - lo  # a constant term (c = 0 or an empty range): its one lattice point
    e0_err = 4 * _EPS * (np.abs(p0) + np.abs(lo))
    d = np.where(live, d, np.abs(e0) + e0_err)
    mu = np.where(live, mu, e0)
    err = np.where(live, err, e0_err)
    m2 = np.where(live, m2, (np.abs(e0) + e0_err) ** 2)
    tv = np.where(live, tv, 0.0)
    return pm, d, mu, err, m2, tv


def mixture(
    axes: Sequence[int],
    pt: np.ndarray,
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    dists: dict[int, Any],
    wbox: np.ndarray,
    box_bound: np.ndarray,
    linear: dict[str, Any],
    ceiling: float | None = None,
    disc_share: float | None = None,
) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]] | None:
    """The box-linear mixture answer and its bound (module docstring), or None where it cannot win or costs too much.

    Args:
        axes: The grid's axes (input node ids).
        pt: Computed values ``V'`` at the atoms (broadcastable to the grid).
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        dists: Per axis, the input's law (``cdf``; ``partial_moment`` where closed-form).
        wbox: The boxes' masses.
        box_bound: The engine's per-box bound on ``E[|f(X) - V'|; box]`` (weighted by the box's mass).
        linear: :func:`opgraph.dcg.taylor.box_bound`'s ``linear`` output (``"c"`` per axis, ``"rest"`` per box).
        ceiling: A bound held elsewhere: nothing is built where the remainder and the other boxes' bounds alone
            reach it.
        disc_share: The share of the remainder total the lattice cost aims at (:data:`DISC_SHARE` when None).

    Returns:
        ``(atoms, weights, bound, info)``: the answer (unsorted, duplicates possible), its W1 bound and a summary
        (``delta``, the totals of the remainder, discretization and point-mass parts, boxes mixed, CPU seconds).
    """
    t0 = time.process_time()
    k = len(axes)
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    w = np.broadcast_to(np.asarray(wbox, dtype=float), shape).reshape(-1)
    old = np.broadcast_to(np.asarray(box_bound, dtype=float), shape).reshape(-1)
    v = np.broadcast_to(np.asarray(pt, dtype=float), shape).reshape(-1)
    rest = np.asarray(linear["rest"], dtype=float).reshape(-1)
    ok = np.isfinite(rest) & np.isfinite(v) & (w > 0) & (w * rest < old)
    tails = boxtails.ENABLED.get()  # boxes with a half-line cell too (opgraph.dcg.boxtails)
    for a in axes:
        fin = np.isfinite(cells[a][0]) & np.isfinite(cells[a][1])
        if tails:
            fin = boxtails.tail_ok(dists[a], cells[a][0], cells[a][1])
        ok &= np.broadcast_to(fin.reshape([-1 if t == a else 1 for t in axes]), shape).reshape(-1)
        ok &= np.isfinite(np.asarray(linear["c"][a], dtype=float).reshape(-1))
    cand = np.flatnonzero(ok)
    budget = work_budget(cand.size, k)  # the work grows with the grid the engine evaluated
    if not cand.size or cand.size * (k + 2) > budget * 3 // 4:
        return None
    floor = float(np.sum(np.where(ok, w * rest, old)))  # the bound is above this whatever the lattice
    if ceiling is not None and not floor < ceiling:
        return None
    # target_w1: within the call's max_seconds (or a credited round's small grace: opgraph.dcg.roundcredit.grace)
    if not affordable(SECONDS_PER_CELL * budget) and not roundcredit.grace(SECONDS_PER_CELL * budget):
        fit = cells_left()  # FIT_BUDGET: a coarser lattice (less work) that fits the time left
        if not (FIT_BUDGET and fit >= FIT_MIN_PER_BOX * cand.size * (k + 2)):
            return None
        log.info("box-linear mixture: work budget %d -> %d lattice cells (max_seconds)", budget, int(fit))
        budget = int(fit)
    if not within_fixed_budget(cand.size, k):  # fixed atoms: within the fixed-atoms allowance
        return None
    idx = [x.astype(np.int32) for x in np.unravel_index(cand, shape)]
    vc, wc = v[cand], w[cand]
    cc = [np.asarray(linear["c"][a], dtype=float).reshape(-1)[cand] for a in axes]  # k arrays over the candidates
    # per term, the cells' ends on the candidates: a half-line's open end is replaced by a far point (boxtails)
    ends = [[np.asarray(cells[a][t], dtype=float)[idx[i]] for t in (0, 1)] for i, a in enumerate(axes)]
    has_tail = [bool(np.any(~np.isfinite(e[0]) | ~np.isfinite(e[1]))) for e in ends]

    def term(i: int, sel: Any, delta: float) -> tuple[np.ndarray, ...]:
        """Box-wise ``c, x', lo, hi, offset, T range, lowest lattice index, points`` of term ``i`` on ``sel``."""
        a = axes[i]
        j = idx[i][sel]
        ci = cc[i][sel]
        lo_, hi_ = eff[i][0][sel], eff[i][1][sel]
        xa_ = np.asarray(cells[a][2], dtype=float)[j]
        off = vc[sel] if i == 0 else np.zeros(ci.size)
        t_a, t_b = off + ci * (lo_ - xa_), off + ci * (hi_ - xa_)
        tlo, thi = np.minimum(t_a, t_b), np.maximum(t_a, t_b)
        kmin = np.floor(tlo / delta + 0.5) if delta > 0 else tlo
        npts = (np.floor(thi / delta + 0.5) - kmin + 1).astype(np.int64) if delta > 0 else np.ones(ci.size, np.int64)
        return ci, xa_, lo_, hi_, off, tlo, thi, kmin, npts

    every = slice(None)
    rest_total = float(np.sum(wc * rest[cand]))
    mass = float(np.sum(wc))
    # delta: discretization cost ~ (k + 1) delta / 4 per box (a smooth law rounded to the nearest lattice point).
    # With the second-moment bound (opgraph.dcg.boxvariance) and only Uniform inputs (exact second moments, no
    # half-line bins) it is ~ sqrt((k + 1) / 12) delta: the step aims at sqrt((k + 1) / 6) delta, a coarser lattice
    # whose rounding cost is still below the triangle inequality's at the finer step. Other laws keep the step (their
    # generic second moment, h E|X - s|, is looser, and a half-line bin has none): the same lattice, a smaller bound.
    # ``disc_share`` (the log-linear models, opgraph.dcg.loglinear) replaces DISC_SHARE.
    var_on = boxvariance.ENABLED.get()
    coarse = var_on and all(type(dists[a]).__name__ == "Uniform" for a in axes)
    per_delta = math.sqrt((k + 1) / 6) if coarse else (k + 1) / 4
    share = DISC_SHARE if disc_share is None else disc_share
    delta0 = share * rest_total / (per_delta * mass) if rest_total > 0 else 0.0
    points = min(MAX_LATTICE, max(2**14, LATTICE_PER_BOX * w.size))
    delta = delta0
    eff = ends
    # with half-line cells the far points depend on delta and the spans (so delta) on them: a few rounds
    for _ in range(TAIL_ROUNDS if any(has_tail) else 1):
        if any(has_tail):
            if not (math.isfinite(delta) and delta > 0):  # no remainder to size the step: a first guess
                delta = max(float(np.max(np.abs(vc))), 1.0) * 2.0**-20
            eff = [
                boxtails.far_ends(dists[a], *ends[i], cc[i], delta) if has_tail[i] else ends[i]
                for i, a in enumerate(axes)
            ]
        span = np.zeros(cand.size)
        for i in range(k):
            ci, _, lo_, hi_ = term(i, every, 0.0)[:4]
            span += np.abs(ci) * (hi_ - lo_)
        prev, delta = delta, max(delta0, float(np.sum(span)) / (budget - cand.size * (k + 2)))
        vmin, vmax = float(np.min(vc - span)), float(np.max(vc + span))
        delta = max(delta, (vmax - vmin) / (points - 4 * k - 4), 1e-300)
        if not delta > 1.1 * prev:  # the far points were chosen for (about) this step
            break
    if not (math.isfinite(delta) and delta > 0):
        return None
    # boxes whose rounding is certified by smoothing (opgraph.dcg.boxsmooth): hat-rounded terms, their own frames
    laws = [dists[a] for a in axes]
    if boxsmooth.MATCH_STEP:  # a coarser step at the same predicted rounding cost
        delta = boxsmooth.matched_step(k, term, ends, laws, delta, per_delta, wc, var_on)
    sm = boxsmooth.plan(k, term, ends, laws, delta, var_on)
    ksum = np.zeros(cand.size)
    supp = np.ones(cand.size, dtype=np.int64)  # support length of the convolution
    for i in range(k):
        got = term(i, every, delta)
        kb_i, n_i = (got[7], got[8]) if sm is None else sm.frame(i, got[7], got[8], got[5], got[6], delta)
        ksum += kb_i
        supp += n_i - 1
    gmin = int(np.min(ksum))
    glen = int(np.max(ksum + supp)) - gmin
    # the hat laws of smoothed boxes (opgraph.dcg.boxsmooth) may take one lattice point more per term
    if glen > points or float(np.sum(supp)) > budget + (0 if sm is None else k * cand.size):
        return None

    def generic_term(i: int, blk: np.ndarray, got: tuple[np.ndarray, ...], j: np.ndarray) -> tuple[np.ndarray, ...]:
        """Term ``i``'s lattice law on the boxes ``blk`` and its rounding error's ``E|e|, E e, error, E e^2``."""
        ci, xi, loi, hii, oi, tlo, thi, kb, npts = got
        e = np.clip((kb + j - 0.5) * delta, tlo, thi)  # bin edges in T
        flat = ci == 0
        safe = np.where(flat, 1.0, ci)
        x = np.clip(xi + (e - oi) / safe, loi, hii)  # edges in X (decreasing where c < 0)
        if has_tail[i]:  # a half-line's first / last bin reaches its true ends (the far tail on the last point)
            t_lo, t_hi = (ends[i][t][blk][:, None] for t in (0, 1))
            cut = (t_lo != loi) | (t_hi != hii)
            x = np.where(cut & (j == 0), np.where(ci >= 0, t_lo, t_hi), x)
            x = np.where(cut & (j >= npts), np.where(ci >= 0, t_hi, t_lo), x)
        dist = dists[axes[i]]
        f = np.asarray(dist.cdf(x), dtype=float)
        raw = np.abs(np.diff(f, axis=1))
        tot = raw.sum(axis=1, keepdims=True)
        good = tot > 0
        pm = np.where(good, raw / np.where(good, tot, 1.0), 0.0)
        # a flat term (c = 0) is the constant offset: all its mass at its nearest lattice point
        one = np.zeros_like(pm)
        one[:, 0] = 1.0
        pm = np.where(flat, one, pm)
        # rounding cost: E|T - q delta| = |c| E|X - s| on each bin, s the X of the lattice point q delta
        s = xi + ((kb + j[:-1]) * delta - oi) / safe
        means: list[Any] | None = [] if var_on else None
        cost = _cost_bins(dist, x, f, s, means) / np.where(good, tot, 1.0)
        d_i = np.abs(ci[:, 0]) * cost.sum(axis=1)
        d_i = np.where(flat[:, 0], np.abs(oi[:, 0] - kb[:, 0] * delta), np.where(good[:, 0], d_i, np.inf))
        mu_i = er_i = m2_i = None
        if var_on and means:  # the partial moments' means, and E e^2 <= c^2 h E|X - s| per bin (boxvariance)
            bm, be, h = means[0]
            b2 = np.where(cost > 0, h * cost, 0.0)  # cost: already conditional (divided by the cell's mass)
            b2 = np.where(np.isfinite(b2), b2, np.inf) * np.where(good, tot, 1.0)
        elif var_on:  # the rounding error's mean and second moment (opgraph.dcg.boxvariance)
            up = x[:, 1:] >= x[:, :-1]
            xa, xb = np.where(up, x[:, :-1], x[:, 1:]), np.where(up, x[:, 1:], x[:, :-1])
            fa, fb = np.where(up, f[:, :-1], f[:, 1:]), np.where(up, f[:, 1:], f[:, :-1])
            bm, be, b2 = boxvariance.bin_moments(dist, xa, xb, s, fa, fb, cost * np.where(good, tot, 1.0))
        if var_on:
            den = np.where(good[:, 0], tot[:, 0], 1.0)
            mu_i = ci[:, 0] * bm.sum(axis=1) / den
            er_i = np.abs(ci[:, 0]) * be.sum(axis=1) / den * (1 + 1e-12) + 1e-12 * np.abs(mu_i)
            m2_i = ci[:, 0] ** 2 * b2.sum(axis=1) / den * (1 + 1e-12)
            e0 = kb[:, 0] * delta - oi[:, 0]  # a flat term: the constant error round(o) - o
            mu_i = np.where(flat[:, 0], e0, mu_i)
            er_i = np.where(flat[:, 0], 4 * _EPS * (np.abs(kb[:, 0] * delta) + np.abs(oi[:, 0])), er_i)
            m2_i = np.where(flat[:, 0], (np.abs(e0) + er_i) ** 2, np.where(good[:, 0], m2_i, np.inf))
        return pm, d_i, mu_i, er_i, m2_i

    order = np.argsort(supp, kind="stable")
    lattice = np.zeros(glen)
    disc = np.full(cand.size, np.inf)
    slack = np.zeros(cand.size)
    chosen = np.zeros(cand.size, dtype=bool)
    lat_w = 0.0
    start = 0
    while start < order.size:
        cap = 1 << max(1, int(supp[order[start]] - 1).bit_length())  # blocks of supports within a factor 2
        stop = start + 1
        while stop < order.size and supp[order[stop]] <= cap and (stop - start + 1) * cap <= BLOCK:
            stop += 1
        blk = order[start:stop]
        start = stop
        n_fft = int(np.max(supp[blk]))  # the block's widest support: no circular wrap (linear convolution)
        if FAST_LENGTH:  # zero padding to a 2-3-5-smooth length: the same linear convolution, 5-10x faster FFTs
            n_fft = int(scipy.fft.next_fast_len(n_fft, real=True))
        filled = 1  # the support reached so far by the shifted adds
        spec = None
        acc = np.zeros((blk.size, n_fft))
        acc[:, 0] = 1.0
        dsum = np.zeros(blk.size)
        vm2, vmu, ver, vmu2 = (np.zeros(blk.size) for _ in range(4))
        tv_blk = np.zeros(blk.size)  # the closed-form terms' mass rounding (total variation)
        for i in range(k):
            ci, xi, loi, hii, oi, tlo, thi, kb, npts = (x[:, None] for x in term(i, blk, delta))
            j = np.arange(int(np.max(npts)) + 1)
            if UNIFORM_CLOSED and type(dists[axes[i]]).__name__ == "Uniform" and not has_tail[i]:
                args = (ci[:, 0], oi[:, 0], tlo, thi, kb, npts)
                if sm is None:
                    pm, d_i, mu_i, er_i, m2_i, tv_i = _uniform_term(*args, delta, j)
                else:  # not on the boxes where this term is hat-rounded (boxsmooth: its exact E e^2 is used there)
                    pm, d_i, mu_i, er_i, m2_i, tv_i = sm.nearest_rows(i, blk, _uniform_term, args, delta, j)
                tv_blk += tv_i
            else:
                pm, d_i, mu_i, er_i, m2_i = generic_term(i, blk, (ci, xi, loi, hii, oi, tlo, thi, kb, npts), j)
            if sm is not None:  # the hat law on this term's smoothed boxes (opgraph.dcg.boxsmooth)
                got_i = (ci, xi, loi, hii, oi, tlo, thi)
                pm, tv_i = sm.term_law(i, blk, pm, d_i, m2_i, got_i, delta, dists[axes[i]])
                tv_blk += tv_i
            dsum += d_i
            if var_on:
                vm2 += m2_i
                vmu += mu_i
                ver += er_i
                vmu2 += np.maximum(np.abs(mu_i) - er_i, 0.0) ** 2
            if pm.shape[1] <= DIRECT:  # a short term: shifted adds (exact up to rounding, cheaper than an FFT)
                nxt = np.zeros_like(acc)
                for q in range(pm.shape[1]):
                    top = min(filled, n_fft - q)
                    nxt[:, q : q + top] += pm[:, q : q + 1] * acc[:, :top]
                acc = nxt
                filled = min(n_fft, filled + pm.shape[1] - 1)
            else:
                s_f = np.fft.rfft(pm, n_fft, axis=1)
                spec = s_f if spec is None else spec * s_f

        if spec is not None:
            acc = np.fft.irfft(spec * np.fft.rfft(acc, n_fft, axis=1), n_fft, axis=1)
            n_spec = 1
        else:
            n_spec = 0
        comp = np.maximum(acc, 0.0)
        comp[np.arange(n_fft)[None, :] >= supp[blk][:, None]] = 0.0  # round-off beyond the support
        comp /= comp.sum(axis=1, keepdims=True)
        # FFT round-off: each entry within ~ (k + 1) log2(n) 4 eps of the exact convolution, so the total variation
        # is at most n_fft times that, doubled by the renormalisation; W1 <= TV * support span. Lattice values
        # fl(q delta) and the offsets: a few eps relative.
        tv = 2 * n_fft * (k + 1) * 4 * _EPS * max(1, n_fft.bit_length() * n_spec) + 4 * (k + 1) * _EPS
        top = np.abs(vc[blk]) + span[blk] + 2 * delta
        slack[blk] = (tv + tv_blk) * (span[blk] + 2 * delta * (k + 1)) + 4 * _EPS * (k + 2) * top
        if var_on:
            dsum = boxvariance.combine(dsum, vm2, vmu, ver, vmu2)
        if sm is not None:
            dsum = sm.bound(blk, dsum)
        disc[blk] = dsum
        cost_mix = wc[blk] * (rest[cand[blk]] + dsum + slack[blk])
        win = cost_mix < old[cand[blk]]
        chosen[blk] = win
        if np.any(win):
            base = ksum[blk[win]].astype(np.int64) - gmin
            pos = base[:, None] + np.arange(n_fft)[None, :]
            mw = comp[win] * wc[blk[win]][:, None]
            inside = pos < glen
            lattice += np.bincount(pos[inside], weights=mw[inside], minlength=glen)[:glen]
            lat_w += float(np.sum(np.where(inside, 0.0, mw)))
    if lat_w > 0:  # wrapped mass cannot occur (the FFT length covers the support); guarded, never silently
        log.warning("box-linear mixture: %.3g of mass beyond the lattice; not used", lat_w)
        return None
    mixed = cand[chosen]
    on_tail = np.zeros(cand.size, dtype=bool)  # the candidates with a half-line cell (opgraph.dcg.boxtails)
    for e in ends:
        on_tail |= ~np.isfinite(e[0]) | ~np.isfinite(e[1])
    rest_part = float(np.sum(w[mixed] * rest[mixed]))
    disc_part = float(np.sum(wc[chosen] * (disc[chosen] + slack[chosen])))
    other = w > 0
    other[mixed] = False
    other_part = float(np.sum(old[other]))
    bound = (rest_part + disc_part + other_part) * (1 + 1e-9)
    nz = np.flatnonzero(lattice > 0)
    atoms = np.concatenate([(gmin + nz) * delta, v[other]])
    weights = np.concatenate([lattice[nz], w[other]])
    info = {
        "delta": delta,
        "remainder": rest_part,
        "discretization": disc_part,
        "point_mass_boxes": other_part,
        "boxes_mixed": float(np.sum(w[mixed])),
        "tail_boxes_mixed": float(np.sum(wc[chosen & on_tail])),
        "boxes_smoothed": 0.0 if sm is None else float(np.sum(wc[chosen & (sm.star >= 0)])),
        "lattice_points": int(nz.size),
        "bound": bound,
        "cpu_s": time.process_time() - t0,
        "floor": floor,
    }
    return atoms, weights, bound, info


def answer(
    ev: Any,
    graph: Any,
    val: Any,
    box_bound: np.ndarray,
    bound: float,
    support: tuple[float, float] | None = None,
    held: float = math.inf,
) -> tuple[Any, ...] | None:
    """The engine's entry: the mixture answer where its bound is below ``bound``, else None.

    Args:
        ev: The :class:`opgraph.dcg.engine.Evaluator` that evaluated the grid (its ``box_linear`` holds the Taylor
            pass's linear models, set by the engine where that pass ran on the whole grid).
        graph: The evaluated graph (every input node's id is its axis).
        val: The output's value on the grid.
        box_bound: The engine's final per-box bound (weighted by the boxes' masses).
        bound: The point-mass answer's final bound (whatever certificate gave it).
        support: An interval that contains the exact output law's support (the cells' value enclosures): the
            answer's atoms are clipped into it, which moves no atom farther from any point of the interval, so the
            bound stays valid (a linear model can reach past a saturating op's range: ``tanh`` beyond 1).
        held: A bound of the same output law held elsewhere (an alternative evaluation the caller will compare
            with this one and keep the smaller): nothing is built where the mixture's bound cannot go below it.

    Returns:
        ``(atoms, weights, bound, info)`` (atoms sorted, duplicates merged) or None.
    """
    lin = getattr(ev, "box_linear", None)
    axes = tuple(val.axes)
    if not ENABLED.get() or lin is None or not bound > 0 or len(axes) < MIN_AXES:
        return None
    dists = {}
    for a in axes:
        d = ev.dists.get(graph.nodes[a].attrs["name"])
        if d is None or not hasattr(d, "cdf"):
            return None
        dists[a] = d
    cells = {a: (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes}
    ceiling = min(bound, held)
    memo = getattr(ev, "box_linear_memo", None)
    bb = np.asarray(box_bound, dtype=float)
    if MEMO and memo is not None and memo[0] is val and memo[1] is lin and np.array_equal(memo[2], bb):
        # the same grid, linear models and per-box bounds as this evaluation's last mixture (a re-finish): the same
        # answer; only the ceiling may differ, and it only decides whether to build (the floor below it)
        got = memo[4] if memo[3] < ceiling else None
    else:
        try:
            got = built(axes, np.asarray(val.pt), cells, dists, ev._wbox(axes), bb, lin, ceiling)
        except MixtureSkipped:
            return None
        if MEMO and got is not None:
            ev.box_linear_memo = (val, lin, bb.copy(), got[3]["floor"], got)
    return as_answer(got, bound, support)


class MixtureSkipped(Exception):
    """:func:`built` gave up on a mixture (numerical trouble or memory): the point-mass answer stays."""


def built(*args: Any, what: str = "box-linear", **kwargs: Any) -> tuple[Any, ...] | None:
    """:func:`mixture` as an optional answer, floating-point warnings silenced.

    Its ``ValueError``, ``FloatingPointError`` or ``MemoryError`` is logged (``what`` names the mixture) and raised
    as :class:`MixtureSkipped`.
    """
    try:
        with np.errstate(all="ignore"):
            return mixture(*args, **kwargs)
    except (ValueError, FloatingPointError, MemoryError) as exc:
        log.warning("%s mixture skipped: %s", what, exc)
        raise MixtureSkipped from exc


def as_answer(got: tuple[Any, ...] | None, bound: float, support: tuple[float, float] | None) -> tuple[Any, ...] | None:
    """A built mixture as the engine's answer ``(atoms, weights, bound, info)``, or None.

    None where its bound is not below ``bound``; the atoms are clipped into ``support`` (which keeps the bound
    valid: :func:`answer`) and duplicates merged.
    """
    from opgraph.dcg.regroup import merge_duplicates

    if got is None or not got[2] < bound:
        return None
    a = got[0]
    if support is not None and support[0] <= support[1]:
        a = np.clip(a, support[0], support[1])
    atoms, weights = merge_duplicates(a, got[1])
    return atoms, weights, got[2], got[3]
