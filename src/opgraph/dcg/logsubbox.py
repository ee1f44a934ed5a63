"""Sub-box remainder of the log-linear box models: the boxes that carry the bound cut into pieces in log space.

The log-linear model of a box ``B`` (:mod:`opgraph.dcg.loglinear`) has the remainder ``(|V'| + e) (E[e^{C + R} | B]
- 1 - E[C | B]) + e E[e^{|C|} | B]`` with ``C = sum_j c_j d_j`` (``d = u - u'``, ``u`` the inputs' Normal
coordinates) and ``R = sum_j m_j^{sgn d_j} |d_j|`` from the radii of the log-slope enclosures of the path that moves
one coordinate at a time across the whole box. On the damped oscillator those radii are about 88 % of the bound: while
a coordinate moves, the ones moved before it range over their whole cells. Here a box is cut into sub-boxes ``s``
(products of pieces of its cells in ``u``, each with a point ``u_s``); on each the path starts at ``u_s`` and its legs
stay in ``s``, so the radii are those of a smaller box:

    h(u) - h(u') - C = [h(u) - h(u_s) - c . (u - u_s)] + [h(u_s) - h(u') - c . (u_s - u')] =: rho_s + tau_s,
    |rho_s| <= R_s = sum_j m_sj^{sgn(u_j - u_sj)} |u_j - u_sj|   (the sub-box path's radii about the same c),

and the point term ``tau_s`` is enclosed from interval values of ``f`` at ``x_s`` and at the atom. The box's
``E[e^{C + R'} | B]`` with ``R' = R_s + |tau_s|`` on ``s`` is ``sum_s q_s e^{|tau_s|} E[e^{C + R_s} | s]``, each
conditional factor a product over the coordinates of :func:`opgraph.dcg.elastic.log_factor` on the piece with the
signed rates ``(c_j + m_sj^+, m_sj^- - c_j)`` about ``u_sj``, times ``e^{c_j (u_sj - u'_j)}``; ``q_s`` the piece
masses' product. The model (its slopes ``c``) is unchanged, so the box keeps the smaller of the two remainders.
Theorem and proof: docs/dcg.md, "Sub-box remainder of the log-linear models".

Where: :func:`opgraph.dcg.elastic.apply` calls :func:`refine` after the log-linear models of a grid are built,
on the boxes whose ``min(point-mass bound, P(B) rest)`` is largest, within :func:`allowance` sub-boxes; then
:func:`opgraph.dcg.tailpieces.refine` takes the boxes with a half-line cell, that cell cut into geometric pieces
(:func:`refine_boxes`, the same bound on another partition). ``ENABLED``
(a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``log_sub_box``) switches it off.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.special as sc

#: Whether the log-linear models' remainders are also bounded on sub-boxes (``ENABLED.set(False)`` turns it off).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_log_sub_box", default=True)

#: Sub-boxes per grid (all refined boxes together): the pass costs about one log-space pass over this many boxes
#: without the grid's broadcasting (about 10-20 us each on DampedOsc's 49-node graph, one core).
MAX_SUB_BOXES = 2**17

#: CPU seconds per sub-box (one core; measured 3e-5 on DampedOsc's 49-node graph at load 6): with
#: :data:`TARGET_SHARE`, the sub-boxes that fit a ``target_w1`` call's seconds left.
SECONDS_PER_SUB_BOX = 3e-5
TARGET_SHARE = 0.25

#: Whether the boxes with a half-line cell also get the sub-box remainder of their models (else only their point-mass
#: bound is refined). Off: on DampedOsc's target grid (6^6 x 4) mixing them made the answer's true W1 0.017 -> 0.028
#: std (their linear models in ``u`` are poor across a half-line, where the point masses' errors cancel), with them
#: off it is 0.013. A module constant for A/B.
MIX_TAILS = False

#: Sub-boxes per grid in a fixed-atoms call (about 1 CPU s on DampedOsc; at 4 atoms per input 2^17 sub-boxes took 8 s
#: for 2 % of the bound).
FIXED_MAX_SUB_BOXES = 2**15

#: Sub-boxes evaluated together (memory: a few live nodes of a handful of arrays of this length).
CHUNK = 2**14

#: Pieces per cut axis, and how many of the path's first axes are cut (the path moves them first: their ranges
#: widen the later legs' slope enclosures). ``None`` for :func:`plan`'s choice.
PIECES = 3
AXES_CUT: int | None = 2

#: Relative pad on the total (the closed forms, the sums over pieces and coordinates).
PAD = 1e-9

_EPS = float(np.finfo(float).eps)


def allowance(boxes: int, k: int, fixed: int | None = None, most: int | None = None) -> int:
    """Sub-boxes for one grid of ``boxes`` boxes and ``k`` inputs (a cost guard; no certificate depends on it).

    Fixed atoms: ``fixed`` (:data:`FIXED_MAX_SUB_BOXES` when None). In a ``target_w1`` call: ``most``
    (:data:`MAX_SUB_BOXES` when None), within :data:`TARGET_SHARE` of the seconds left after the mixture's largest
    work on the grid is set aside (the mixture must still fit: a round whose mixture is skipped returns its
    point-mass answer, whose true error is larger). :mod:`opgraph.dcg.tailpieces` passes its own caps.
    """
    from opgraph.dcg import boxlinear, roundbudget

    rb = roundbudget.current()
    if rb is None:
        return FIXED_MAX_SUB_BOXES if fixed is None else fixed
    mix = boxlinear.SECONDS_PER_CELL * boxlinear.work_budget(boxes, k)
    fit = TARGET_SHARE * (rb.left() - roundbudget.SAFETY * mix) / (roundbudget.SAFETY * SECONDS_PER_SUB_BOX)
    return int(min(MAX_SUB_BOXES if most is None else most, max(fit, 0.0)))


def plan(k: int, boxes: int) -> tuple[int, ...]:
    """Pieces per path position: :data:`PIECES` on the first ``AXES_CUT`` positions (all but the last one if None).

    Args:
        k: The number of coordinates.
        boxes: The number of boxes there are to refine (the plan does not depend on it yet).
    """
    cut = max(0, k - 1) if AXES_CUT is None else min(k, AXES_CUT)
    return tuple(PIECES if p < cut else 1 for p in range(k))


def _pieces(
    mu: float, s: float, lo: np.ndarray, hi: np.ndarray, at: np.ndarray, m: int, ratio: float | None = None
) -> tuple[np.ndarray, ...]:
    """``m`` pieces per cell of ``U ~ N(mu, s^2)`` in ``x = e^u``-space ends: ``(lo, hi, point)``, each ``(n, m)``.

    Equal masses up to rounding (the shares used later are computed from the ends); a cell with ``m == 1`` keeps its
    atom. Ends and points are the coordinates' (``u``) exponentials, the outer ends the cell's own. With ``ratio``
    (in (0, 1]) a half-line cell's pieces have geometric masses instead, each piece ``ratio`` times the next one
    inward, so the far (unbounded) piece carries the least (:mod:`opgraph.dcg.tailpieces`); any partition serves
    the bounds, this one only decides where their work goes.
    """
    lo, hi, at = (np.asarray(x, dtype=float).reshape(-1) for x in (lo, hi, at))
    if m == 1:
        return lo[:, None], hi[:, None], at[:, None], np.ones((lo.size, 1), dtype=bool)
    with np.errstate(all="ignore", divide="ignore"):
        ul, uh = np.log(np.maximum(lo, 0.0)), np.log(hi)
        zl, zh = (ul - mu) / s, (uh - mu) / s
        flip = (zl + zh) > 0  # upper half: cut the mirrored lower tail (accurate small probabilities)
        pl = np.where(flip, sc.ndtr(-zh), sc.ndtr(zl))
        ph = np.where(flip, sc.ndtr(-zl), sc.ndtr(zh))
        t = np.broadcast_to(np.arange(m + 1) / m, (lo.size, m + 1))
        if ratio is not None:  # half-line cells: the far end's pieces carry geometrically less mass
            # (the far end sits at t = 0: a lower half-line directly, an upper one in the mirrored coordinate)
            g = ratio ** np.arange(m - 1, -1, -1.0)
            tg = np.concatenate([[0.0], np.cumsum(g) / np.sum(g)])
            half = ~np.isfinite(zl) | ~np.isfinite(zh)
            t = np.where(half[:, None], tg[None, :], t)
        q = pl[:, None] + (ph - pl)[:, None] * t
        z = sc.ndtri(q)
        tm = (t[:, :-1] + t[:, 1:]) / 2
        zm = sc.ndtri(pl[:, None] + (ph - pl)[:, None] * tm)
        z = np.where(flip[:, None], -z[:, ::-1], z)
        zm = np.where(flip[:, None], -zm[:, ::-1], zm)
        edges = np.exp(mu + s * z)
        point = np.exp(mu + s * zm)
    edges[:, 0], edges[:, -1] = lo, hi
    edges = np.maximum.accumulate(np.clip(edges, lo[:, None], hi[:, None]), axis=1)
    point = np.clip(point, edges[:, :-1], edges[:, 1:])
    good = np.isfinite(point).all(axis=1) & (edges[:, 1:] > edges[:, :-1]).all(axis=1)
    whole = np.broadcast_to(at[:, None], point.shape)
    # A cell that cannot be cut keeps m copies of itself at its atom, each with a share 1 / m of it.
    return (
        np.where(good[:, None], edges[:, :-1], lo[:, None]),
        np.where(good[:, None], edges[:, 1:], hi[:, None]),
        np.where(good[:, None], point, whole),
        np.broadcast_to(good[:, None], point.shape),
    )


def refine(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Any],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    order: Sequence[int],
    pt: np.ndarray,
    pt_err: np.ndarray,
    wbox: np.ndarray,
    shape: tuple[int, ...],
    linear: dict[str, Any],
    held: np.ndarray,
    max_sub: int | None = None,
) -> dict[str, float] | None:
    """Lower ``linear["rest"]`` on the boxes that carry the bound by the sub-box remainder (module docstring).

    Args:
        graph: The (restricted) graph.
        output: Its output node id.
        axes: Input node ids, one per grid dimension.
        laws: Per input node id, its law (LogNormal or Normal).
        cells: Per input node id, ``(lo, hi, atoms)`` of its cells (``x``-space).
        order: The order in which the path moves the grid dimensions (:func:`opgraph.dcg.elastic.path_order`).
        pt: The computed output ``V'`` at the atoms (grid shape).
        pt_err: A bound on ``|f(x') - V'|`` per box (grid shape).
        wbox: The boxes' masses (grid shape).
        shape: The grid shape.
        linear: The log-linear models (``"c"``: per axis ``V' c_j``; ``"rest"``: per box), changed in place.
        held: Per box the point-mass bound it holds (weighted by its mass), to rank the boxes; lowered in place
            where the sub-box form of the centred point-mass bound (same slopes ``c``) is smaller.
        max_sub: Sub-boxes in all (:func:`allowance` when None).

    Returns:
        A summary (boxes refined, remainder before / after on them, CPU s), or None where nothing ran.
    """
    from opgraph.dcg.distributions import LogNormal

    if not ENABLED.get() or "rest" not in linear:
        return None
    t0 = time.process_time()
    k = len(axes)
    rest = np.asarray(linear["rest"], dtype=float).reshape(shape)
    w = np.broadcast_to(wbox, shape)
    vpt = np.broadcast_to(pt, shape)
    with np.errstate(all="ignore"):
        contrib = np.where(np.isfinite(rest), np.minimum(np.broadcast_to(held, shape), w * rest), 0.0).reshape(-1)
    from opgraph.dcg import tailpieces

    tail = np.zeros(shape, dtype=bool)  # boxes with a half-line cell: their models keep the whole-box remainder
    for j, a in enumerate(axes):
        lo, hi, _ = cells[a]
        sh = [1] * k
        sh[j] = np.size(lo)
        tail |= tailpieces.half_line(lo, hi).reshape(sh)
    tail_flat = tail.reshape(-1)
    m = plan(k, int(np.count_nonzero(contrib)))
    per = math.prod(m)
    budget = allowance(rest.size, k) if max_sub is None else max_sub
    nb = min(int(np.count_nonzero(contrib > 0)), budget // per)
    if nb <= 0 or per <= 1:
        return None
    pick = np.argsort(-contrib, kind="stable")[:nb]
    idx = np.unravel_index(pick, shape)
    log = [isinstance(laws[a], LogNormal) for a in axes]
    if not all(log):
        return None  # Normal coordinates: not built here (the x-space mixture serves them)
    mj = [1] * k
    for p, j in enumerate(order):
        mj[j] = m[p]
    new, pm = refine_boxes(graph, output, axes, laws, cells, order, idx, mj, linear, vpt, pt_err, shape)
    before = rest.reshape(-1)[pick]
    if not MIX_TAILS:
        new = np.where(tail_flat[pick], np.inf, new)
    better = np.minimum(before, new)
    flat_rest = rest.reshape(-1).copy()
    flat_rest[pick] = better
    linear["rest"] = flat_rest.reshape(shape)
    wp = w.reshape(-1)[pick]
    hflat = held.reshape(-1)
    h_before = hflat[pick].copy()
    hflat[pick] = np.minimum(h_before, np.where(wp > 0, wp * pm, h_before))
    summary = {
        "boxes": float(nb),
        "pieces": float(per),
        "rest_before": float(np.sum(np.minimum(h_before, wp * before))),
        "rest_after": float(np.sum(np.minimum(hflat[pick], wp * better))),
        "held_before": float(np.sum(h_before)),
        "held_after": float(np.sum(hflat[pick])),
        "cpu_s": 0.0,
    }
    tails = tailpieces.refine(graph, output, axes, laws, cells, order, vpt, pt_err, w, shape, linear, hflat)
    if tails is not None:
        summary.update(tails)
    summary["cpu_s"] = time.process_time() - t0
    return summary


def refine_boxes(
    graph: Any,
    output: int,
    axes: Sequence[int],
    laws: Mapping[int, Any],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    order: Sequence[int],
    idx: tuple[np.ndarray, ...],
    mj: Sequence[int],
    linear: dict[str, Any],
    vpt: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
    ratio: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The sub-box model remainder and point-mass bound (conditional) of the boxes ``idx``, ``mj`` pieces per axis.

    ``mj`` is indexed by grid dimension (the pieces of :func:`_pieces`, ``ratio`` passed on); ``inf`` where a box's
    form does not apply (:func:`_chunk`). The boxes' inputs must all be LogNormal.
    """
    from opgraph.dcg import elastic

    per = math.prod(mj)
    nb = idx[0].size
    tab = []
    for j, a in enumerate(axes):
        mu, s = float(laws[a].mu), float(laws[a].sigma)
        lo, hi, at = (np.asarray(x, dtype=float) for x in cells[a])
        tab.append((mu, s, lo, hi, at, *_pieces(mu, s, lo, hi, at, mj[j], ratio)))
    sub = np.array(np.unravel_index(np.arange(per), mj))  # (k, per): the piece of each axis per sub-box
    vsel = vpt[idx]
    slope = [
        np.where(vsel != 0, np.broadcast_to(linear["c"][a], shape)[idx] / np.where(vsel != 0, vsel, 1), 0) for a in axes
    ]
    apt = np.abs(vsel)
    err = np.abs(np.broadcast_to(pt_err, shape)[idx])
    new = np.full(nb, np.inf)
    pm = np.full(nb, np.inf)
    bpc = max(1, CHUNK // per)
    for b0 in range(0, nb, bpc):
        bs = slice(b0, min(nb, b0 + bpc))
        new[bs], pm[bs] = _chunk(
            graph,
            output,
            axes,
            order,
            tab,
            [i[bs] for i in idx],
            sub,
            [c[bs] for c in slope],
            vsel[bs],
            apt[bs],
            err[bs],
            elastic,
        )
    return new, pm


def _chunk(
    graph: Any,
    output: int,
    axes: Sequence[int],
    order: Sequence[int],
    tab: Sequence[tuple[Any, ...]],
    idx: Sequence[np.ndarray],
    sub: np.ndarray,
    slope: Sequence[np.ndarray],
    vpt: np.ndarray,
    apt: np.ndarray,
    err: np.ndarray,
    elastic: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """The sub-box remainder of boxes ``idx`` and their point-mass bound (conditional), ``inf`` where not applicable."""
    k = len(axes)
    nb = idx[0].size
    per = sub.shape[1]
    plo_m = [int(t[5].shape[1]) for t in tab]  # pieces per cell of each axis
    # flat sub-box arrays: box b's sub-boxes at b * per + (0..per-1)
    xs = {}
    cut = {}
    for j, a in enumerate(axes):
        _mu, _s, _lo, _hi, _at, plo, phi, ppt, pcut = tab[j]
        r = idx[j][:, None]
        c = sub[j][None, :]
        xs[a] = (plo[r, c].reshape(-1), phi[r, c].reshape(-1), ppt[r, c].reshape(-1))
        cut[a] = pcut[r, c].reshape(-1)
    cache: dict[Any, Any] = {}
    log = [True] * k
    legs: dict[int, tuple[Any, Any]] = {}
    v = None
    state = ["a"] * k
    cj = {a: (xs[a][2], xs[a][2]) for a in axes}
    for pos, j in enumerate(order):
        a = axes[j]
        lo, hi, at = xs[a]
        pair = []
        for label, half in (("l", (lo, at)), ("u", (at, hi))):
            cj[a] = half
            state[j] = label
            res = elastic.elasticities(graph, output, axes, cj, log, {j}, cache, state, flat=True)
            if res is None:
                return np.full(nb, np.inf), np.full(nb, np.inf)
            pair.append(res[1][j] if j in res[1] else (np.zeros(()), np.zeros(())))
        legs[j] = (pair[0], pair[1])
        cj[a] = (lo, hi)
        state[j] = "f"
        if pos == k - 1:
            res = elastic.elasticities(graph, output, axes, cj, log, set(), cache, state, flat=True)
            if res is None:
                return np.full(nb, np.inf), np.full(nb, np.inf)
            v = res[0]
    assert v is not None
    pres = elastic.elasticities(
        graph, output, axes, {a: (xs[a][2], xs[a][2]) for a in axes}, [False] * k, set(), flat=True
    )
    if pres is None:
        return np.full(nb, np.inf), np.full(nb, np.inf)
    vs = pres[0]
    with np.errstate(all="ignore"):
        sgn = np.repeat(np.sign(vpt), per)
        vlo, vhi = (np.broadcast_to(x, (nb * per,)) for x in v)
        ok = np.where(sgn > 0, vlo > 0, vhi < 0) & (sgn != 0)
        # |f(x_s)| and |f(x')| enclosed: the point term tau_s = h(u_s) - h(u') - c . (u_s - u')
        slo, shi = (np.broadcast_to(x, (nb * per,)) for x in vs)
        alo = np.where(sgn > 0, slo, -shi)
        ahi = np.where(sgn > 0, shi, -slo)
        ok &= alo > 0
        plo = np.repeat(apt - err, per)
        phi_ = np.repeat(apt + err, per)
        ok &= plo > 0
        t3 = np.zeros(nb * per)  # log of q_s E[e^{C + R_s} | s] e^{|tau_s|}
        cdel = np.zeros(nb * per)  # c . (u_s - u')
        cmag = np.zeros(nb * per)
        lseg = np.zeros(nb * per)
        for j, a in enumerate(axes):
            mu, s, clo, chi, cat, *_ = tab[j]
            c = np.repeat(slope[j], per)
            ulo_p, uhi_p, us = (np.log(np.maximum(x, 0.0)) for x in xs[a])
            ucat = np.log(np.repeat(cat[idx[j]], per))
            uclo = np.log(np.maximum(np.repeat(clo[idx[j]], per), 0.0))
            uchi = np.log(np.repeat(chi[idx[j]], per))
            (l0, l1), (u0, u1) = (tuple(np.broadcast_to(x, (nb * per,)) for x in g) for g in legs[j])
            m_up = np.maximum(u1 - c, c - u0)
            m_dn = np.maximum(l1 - c, c - l0)
            f3 = elastic.log_factor(mu, s, ulo_p, uhi_p, us, c + m_up, m_dn - c)
            rate = np.maximum(np.abs(c) + m_up, np.abs(c) + m_dn)
            ok &= np.isfinite(f3) & (rate * s <= elastic.LS_MAX) & np.isfinite(c)
            # the piece's share of its cell: P(piece) / P(cell), from the tail-safe log masses
            share = elastic._log_seg(mu, s, ulo_p, uhi_p) - elastic._log_seg(mu, s, uclo, uchi)
            share = np.where(cut[a], share, -math.log(plo_m[j]))  # an uncut cell's m copies: 1 / m each
            ok &= np.isfinite(share)
            d = us - ucat
            t3 += f3 + c * d
            cdel += c * d
            cmag += np.abs(c * d) + np.abs(c) * (np.abs(us) + np.abs(ucat)) * _EPS
            lseg += share
        with np.errstate(divide="ignore", invalid="ignore"):
            up = np.log(ahi) - np.log(plo) - cdel
            dn = np.log(phi_) - np.log(alo) + cdel
            tau = np.maximum(up, dn)
            tau_pad = (
                16 * _EPS * (np.abs(np.log(ahi)) + np.abs(np.log(alo)) + np.abs(np.log(plo)) + np.abs(np.log(phi_)))
            )
            tau = np.maximum(tau, 0.0) + tau_pad + 4 * k * _EPS * cmag + 1e-15
        ok &= np.isfinite(tau)
        t3 = t3 + tau + lseg
        t3 = np.where(ok, t3, np.inf)
        e3 = np.exp(t3).reshape(nb, per).sum(axis=1) * (1 + 4 * per * _EPS)
        # the parent's E[C | B], its magnitudes and pad, and E[e^{|C|} | B] (as :func:`loglinear.models`)
        from opgraph.dcg import loglinear

        ec = np.zeros(nb)
        ec_mag = np.zeros(nb)
        ec_pad = np.zeros(nb)
        ta = np.zeros(nb)
        t1 = np.zeros(nb)  # log E[e^C | B]
        t2 = np.zeros(nb)  # log E[e^{2C} | B]
        for j in range(k):
            mu, s, clo, chi, cat, *_ = tab[j]
            ulo, uhi, uat = (np.log(np.maximum(x[idx[j]], 0.0)) for x in (clo, chi, cat))
            off, pad = loglinear.cell_mean_offset(mu, s, ulo, uhi, uat)
            c = slope[j]
            ta += elastic.log_factor(mu, s, ulo, uhi, uat, np.abs(c), np.abs(c))
            t1 += elastic.log_factor(mu, s, ulo, uhi, uat, c, -c)
            t2 += elastic.log_factor(mu, s, ulo, uhi, uat, 2 * c, -2 * c)
            ec += c * off
            ec_mag += np.abs(c) * np.abs(off)
            ec_pad += np.abs(c) * pad
        out = loglinear.remainder(e3, np.exp(ta), ec, ec_mag, ec_pad, apt, err, k) * (1 + PAD)
        out = np.where(np.isfinite(out) & np.isfinite(ec) & np.isfinite(ta), out, np.inf)
        # The point mass's centred bound with the same c and R': |e^{C + rho} - 1| <= |e^C - 1| + e^C (e^{R'} - 1),
        # E|e^C - 1| <= sqrt(E[(e^C - 1)^2]) (docs/dcg.md, "Centred slopes"), E|f - V'| <= |f(x')| (...) + e.
        e1, e2 = np.exp(t1), np.exp(t2)
        var = e2 - 2 * e1 + 1 + PAD * k * (e2 + 2 * e1 + 1)
        rem = e3 - e1 + PAD * k * (e3 + e1)
        pm = ((apt + err) * (np.sqrt(np.maximum(var, 0.0)) + np.maximum(rem, 0.0)) + err) * (1 + PAD) + PAD * k * apt
        pm = np.where(
            np.isfinite(pm)
            & (np.abs(np.asarray(slope)) * np.array([t[1] for t in tab])[:, None] <= elastic.LS_MAX / 2).all(axis=0),
            pm,
            np.inf,
        )
    return out, pm
