"""Smoothed lattice rounding for the box-linear mixture: a second-order certificate of its rounding (issue 14 §3).

:mod:`opgraph.dcg.boxlinear` answers a box ``b`` by the law of a rounded linear model: ``L_b = T_1 + ... + T_k``
(independent terms, ``T_1 = V' + c_1 d_1``, ``T_i = c_i d_i``) rounded term by term to the lattice ``delta Z``, and
bounds the rounding by coupling ``L_b`` with the rounded sum through the same ``X``: ``D_b = min(sum_i E|e_i|,
sqrt(E S^2))`` (:mod:`opgraph.dcg.boxvariance`), about ``(k + 1) delta / 4`` or ``sqrt((k + 1) / 12) delta``. The
W1 distance between ``law(L_b)`` and the lattice law is only about ``delta / 4`` whatever ``k``: the rounding errors
of a smooth sum cancel in law. This module certifies that.

**Answer on a smoothed box.** One term ``i*`` (the one whose law has the least total variation of its density,
:func:`density_tv`: the widest) keeps the nearest rounding ``Q_* = round(T_*)``. Every other term is rounded
**mean-preservingly** (the hat-function projection): ``T = (q + f) delta`` goes to ``q delta`` with probability
``1 - f`` and to ``(q + 1) delta`` with probability ``f``, independently across terms; its lattice law is
``P(Q_i = q delta) = E[(1 - |T_i / delta - q|)^+]`` (:func:`hat_uniform` in closed form, :func:`hat_generic` from
the CDF and the closed-form partial moments ``E[X; X <= x]`` of the input family). The answer's law on the box is
the convolution of these lattice laws (the ``Q_i`` are independent).

**Theorem.** Let ``rho`` be the density of ``T_*`` on the box, of total variation ``TV`` (jumps included), ``e_i =
Q_i - T_i`` for ``i != i*`` and ``m >= sum_{i != i*} E e_i^2``. Then

    W1(law L_b, law sum_i Q_i) <= E|T_* - Q_*| + min(TV m / 2, sqrt(m)),

and also ``<= sqrt(E (Q_* - T_*)^2 + m)``.

**Proof.** Let ``R = sum_{i != i*} T_i`` and ``e = sum_{i != i*} e_i``. The hat projection has ``E[e_i | T_i] = 0``
and its randomisation is independent across terms, so ``E[e | R] = 0`` (tower rule) and ``E e^2 = sum E e_i^2 <=
m``; ``T_*`` is independent of ``(R, e)`` (another input, another randomisation). With ``F`` the CDF of ``T_*``,
``F_{T_* + R}(x) - F_{T_* + R + e}(x) = E[F(x - R) - F(x - R - e) - e rho(x - R)]`` (the added term has mean
``E[rho(x - R) E[e | R]] = 0``). For a fixed ``e > 0`` (``e < 0`` alike), ``F(y) - F(y - e) - e rho(y) =
int_{y - e}^{y} (rho(s) - rho(y)) ds`` and ``|rho(s) - rho(y)|`` is at most the variation of ``rho`` on ``[s, y]``;
integrating over ``y``, each point ``z`` of variation is counted on ``{(s, y): y - e <= s <= z <= y}``, of area
``e^2 / 2``: ``int_y |F(y) - F(y - e) - e rho(y)| dy <= TV e^2 / 2``. By Fubini, ``W1(law(T_* + R), law(T_* + R +
e)) = int_x |F_{T_* + R} - F_{T_* + R + e}| dx <= TV E e^2 / 2``; also ``<= E|e| <= sqrt(E e^2)`` (the coupling
through the same draws). Then replace ``T_*`` by ``Q_*`` in ``T_* + R + e``: the coupling through the same ``X_*``
costs ``E|T_* - Q_*|``; ``T_* + R + e = T_* + sum_{i != i*} Q_i``. The triangle inequality of W1 gives the first
bound. The second: ``E|S|`` with ``S = (Q_* - T_*) + e`` coupled as above, ``E S^2 = E (Q_* - T_*)^2 + E e^2`` (``e``
has mean zero given ``X_*``). ∎

**The moments used.** ``E[e_i^2 | T_i] = f (1 - f) delta^2 <= delta dist(T_i, delta Z)``, so ``E e_i^2 <= delta
E|T_i - round T_i|``: the nearest rounding's cost ``d_i`` that :mod:`opgraph.dcg.boxlinear` computes anyway (exact
1-D integrals, padded); also ``E[f (1 - f); bin] <= M (P - M) / P`` on each lattice interval (``P`` its mass, ``M =
E[f; bin]``, both in the hat law: Jensen, ``f (1 - f)`` is concave), tighter where a term is narrow; the smaller is
used. For a Uniform input the hat's ``E e_i^2 = delta^2 E f (1 - f)`` is integrated in closed form
(``delta^2 / 6`` per unit mass on a full lattice interval against ``delta^2 / 4`` for ``delta d_i``). ``E|T_* -
Q_*|`` and ``E (Q_* - T_*)^2`` are the nearest rounding's (boxlinear, boxvariance). ``TV`` of a cell-conditional
density ``p 1_[lo, hi] / P`` in ``T = o + c (X - x')`` is ``(p(lo) + p(hi) + int_lo^hi |p'|) / (|c| P)``, with
``int |p'| = |p(hi) - p(lo)|`` where the mode is outside the cell and ``2 p(mode) - p(lo) - p(hi)`` inside (the
Normal, LogNormal, Gamma and Exponential laws are unimodal; ``p(+-inf) = 0``; a Uniform cell: ``2 / (|c| (hi -
lo))``). ``P`` is padded down, the densities up. A law without a closed-form density here (Beta, SciPy) cannot be
``i*``; a law truncated to ``[a, b]`` (:mod:`opgraph.dcg.truncation`) has on a cell within ``[a, b]`` its base law's
cell-conditional density; a law without closed-form partial moments (SciPy), or a half-line cell outside
:data:`opgraph.dcg.boxtails.FAMILIES`, cannot be hat-rounded: a box with two such terms keeps the nearest rounding
and :mod:`opgraph.dcg.boxlinear`'s bound.

**Half-line cells** (:data:`TAILS`). On a half-line cell (:mod:`opgraph.dcg.boxtails`: Normal, LogNormal, Gamma,
Exponential) a hat-rounded term is first clipped at its far point ``t``: ``T'_i = o + c (clip(X_i, lo, t) - x')``,
the mass beyond ``t`` an atom at ``t`` (hat-split like the rest). The ``T'_i`` are independent, so the theorem holds
for ``L'_b = T_* + sum_{i != i*} T'_i``, and ``W1(law L_b, law L'_b) <= sum_i E|T_i - T'_i| = sum_i |c_i| E[(X_i -
t)^+ | cell]`` (the coupling through the same ``X``; mirrored for a lower tail): that closed-form excess
(``boxtails.excess``, padded for its cancellation) is added to the box's bound. ``E e_i^2`` there is the Jensen
form alone (``delta d_i`` is the unclipped term's). ``T_*`` itself may be a half-line term (nearest rounding, its
last bin reaching infinity, as in :mod:`opgraph.dcg.boxtails`).

**Float rounding.** The hat laws are computed from rounded CDFs and partial moments: each lattice probability's
error is bounded (cancellations in ``E[X - s; bin]`` included) and its total variation is added to the box's
``tv`` slack of :mod:`opgraph.dcg.boxlinear` (``W1 <= TV x support span``), as the Uniform closed form's is there.
The mean preservation holds for the exact hat law; the computed law is within that total variation of it.

**Which boxes.** The answer's law must match the bound, so the choice is made per box before its lattice laws are
built (:func:`plan`): a box is smoothed where the predicted ``delta (1/4 + TV delta (k - 1) / 8)`` is below
:data:`WIN` times the nearest rounding's predicted ``min((k/4), sqrt(k / 12)) delta``; its bound is then the
smallest of the three valid bounds above (never the nearest rounding's, which holds for another law).

**The lattice step** of :mod:`opgraph.dcg.boxlinear` is unchanged (the same lattice, a smaller bound; the answer's
law moves by the hat projection only). :data:`MATCH_STEP` sizes it instead for the smoothed cost
(:func:`matched_step`): a coarser lattice at the same predicted rounding cost. Measured on Piston, WingWeight, OTL,
Borehole and MLP (docs/dcg.md, "Smoothed lattice rounding"), every bound came out 3.5-13 % looser than with the
nearest rounding and the answers' true W1 1.4-2.4x larger, so it is off.

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``box_smooth``): off, every term is rounded
to the nearest lattice point and bounded as before (bit for bit).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import boxtails

#: Whether the box-linear mixture rounds all but its widest term mean-preservingly and certifies the rounding by
#: the smoothing of the widest term (module docstring).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_boxsmooth", default=True)

#: Hat-round half-line cells too (Normal, LogNormal, Gamma, Exponential; :mod:`opgraph.dcg.boxtails`): the term
#: clipped at its far point first, the clipping's cost added (module docstring). Off: a box with a half-line cell
#: smooths only with that term as ``i*``.
TAILS = True
#: A box is smoothed where its predicted smoothed rounding cost is below this share of the nearest rounding's.
WIN = 0.8
#: Size the lattice step of :mod:`opgraph.dcg.boxlinear` for the smoothed rounding's predicted cost
#: (:func:`matched_step`) instead of the nearest rounding's (``(k + 1) / 4`` or ``sqrt((k + 1) / 6)`` per unit step):
#: a coarser lattice at about the same rounding cost.
MATCH_STEP = False
_EPS = float(np.finfo(float).eps)
_PAD = 64 * _EPS  # relative error allowed to a closed-form CDF, survival function or density
_HAT_FAMILIES = ("Normal", "LogNormal", "Gamma", "Exponential", "Beta", "Uniform")


def _density(dist: Any, x: np.ndarray) -> np.ndarray:
    """The density of ``dist`` at ``x`` (NaN where no closed form here; ``inf`` at a Gamma's pole)."""
    name = type(dist).__name__
    x = np.asarray(x, dtype=float)
    with np.errstate(all="ignore"):
        if name == "Normal":
            z = (x - dist.loc) / dist.scale
            p = np.exp(-0.5 * z * z) / (dist.scale * math.sqrt(2 * math.pi))
        elif name == "LogNormal":
            lx = np.log(np.maximum(x, 0.0))
            p = np.exp(-0.5 * ((lx - dist.mu) / dist.sigma) ** 2 - lx) / (dist.sigma * math.sqrt(2 * math.pi))
            p = np.where(x > 0, p, 0.0)
        elif name in ("Gamma", "Exponential"):
            kk, th = dist.k, dist.scale
            lx = np.log(np.maximum(x, 0.0))
            p = np.exp((kk - 1) * lx - x / th - math.lgamma(kk) - kk * math.log(th))
            at0 = 0.0 if kk > 1 else (1.0 / th if kk == 1 else math.inf)
            p = np.where(x > 0, p, np.where(x == 0, at0, 0.0))
        elif name == "Uniform":
            p = np.where((x >= dist.loc) & (x <= dist.loc + dist.scale), 1.0 / dist.scale, 0.0)
        else:
            return np.full(x.shape, np.nan)
    return np.where(np.isinf(x), 0.0, p)


def _mode(dist: Any) -> float | None:
    """The mode of a unimodal family (None: no closed form here)."""
    name = type(dist).__name__
    if name == "Normal":
        return dist.loc
    if name == "LogNormal":
        return math.exp(dist.mu - dist.sigma**2)
    if name in ("Gamma", "Exponential"):
        return max(dist.k - 1.0, 0.0) * dist.scale
    return None


def density_tv(dist: Any, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Upper bounds on the total variation of the cell-conditional density of ``dist`` on ``[lo, hi]`` (per unit x).

    ``(p(lo) + p(hi) + int_lo^hi |p'|) / P`` (module docstring); ``inf`` where the density has no closed form here,
    is unbounded on the cell, or the cell's mass is not resolved.
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    name = type(dist).__name__
    if name == "Truncated":  # on a cell within the kept range, the base law's cell-conditional density
        return density_tv(dist.base, np.maximum(lo, dist.lo), np.minimum(hi, dist.hi))
    with np.errstate(all="ignore"):
        if name == "Uniform":  # exactly uniform on the cell (a cell lies within the support)
            a, b = np.maximum(lo, dist.loc), np.minimum(hi, dist.loc + dist.scale)
            tv = 2.0 / ((b - a) * (1 - 4 * _EPS) - 4 * _EPS * (np.abs(a) + np.abs(b)))
            return np.where((b > a) & (tv > 0) & np.isfinite(tv), tv, np.inf)
        mode = _mode(dist)
        if mode is None:
            return np.full(lo.shape, np.inf)
        pl, ph, pm = _density(dist, lo), _density(dist, hi), _density(dist, np.asarray(mode))
        inside = (lo < mode) & (mode < hi)
        var = np.where(inside, 2 * pm - pl - ph, np.abs(ph - pl))
        num = (pl + ph + np.maximum(var, 0.0)) * (1 + 1e-9) + 4 * _PAD * (pl + ph + pm)
        zl, zh = (lo - dist.loc) / dist.scale, (hi - dist.loc) / dist.scale
        fl, fh = dist._zcdf(zl), dist._zcdf(zh)
        sl, sh = dist._zsf(zl), dist._zsf(zh)
        mass = np.maximum(fh - fl - _PAD * (fl + fh), sl - sh - _PAD * (sl + sh))
        tv = num / mass
    return np.where((mass > 0) & np.isfinite(tv), tv, np.inf)


def _hat_ok(dist: Any) -> bool:
    """Whether the family's hat law can be computed here (closed-form CDF and partial moments)."""
    name = type(dist).__name__
    if name == "Truncated":
        return _hat_ok(dist.base)
    return name in _HAT_FAMILIES and (name == "Uniform" or hasattr(dist, "partial_moment"))


def hat_range(tlo: np.ndarray, thi: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Lowest lattice index and number of lattice points of the hat law of a term with range ``[tlo, thi]``."""
    k0 = np.floor(tlo / delta)
    return k0, (np.ceil(thi / delta) - k0 + 1).astype(np.int64)


def hat_uniform(
    c: np.ndarray, o: np.ndarray, tlo: np.ndarray, thi: np.ndarray, kb: np.ndarray, npts: np.ndarray, delta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hat law of a Uniform input's term (``T`` uniform on ``[tlo, thi]``), in closed form, per row.

    Args:
        c: The term's coefficients (per row).
        o: Its offsets (``V'`` on the first term, else 0; the value of a constant term).
        tlo: ``T``'s lower end.
        thi: Its upper end.
        kb: The lowest lattice index (:func:`hat_range`).
        npts: Lattice points (:func:`hat_range`).
        delta: The lattice step.

    Returns:
        ``(pm, E e^2 bound, total variation of pm's rounding error)``; ``pm`` by row, its column ``j`` the lattice
        point ``(kb + j) delta``.
    """
    n = int(np.max(npts))
    j = np.arange(max(n, 2))
    ln = thi - tlo
    live = (c != 0) & (ln > 0)
    safe = np.where(live, ln, 1.0)
    nb = npts - 1  # lattice intervals (bins) per row: all full but the first and the last
    half = 0.5 * delta / safe

    def part(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A bin's (left point's mass, right point's mass, its share of E e^2), ``[u, v]`` from its left point."""
        mass = (v - u) / safe
        right = np.clip((v - u) * (v + u) / (2 * delta) / safe, 0.0, mass)
        e2 = delta * ((v - u) * (v + u) / 2 - (v * v * v - u * u * u) / (3 * delta)) / safe
        return mass - right, right, e2

    p0, pl = kb * delta, (kb + nb - 1) * delta  # the first bin's and the last bin's left lattice points
    l0, r0, e0 = part(tlo - p0, np.minimum(thi - p0, delta))
    l1, r1, e1 = part(np.maximum(tlo - pl, 0.0), thi - pl)
    two = nb >= 2
    # the full bins give half to each of their points: delta / L on columns 2 .. nb - 2, half on 1 and nb - 1
    pm = (j[None, :] < nb[:, None]) * (2 * half)[:, None]
    pm[:, 0] = l0
    rows = np.arange(kb.size)
    r2 = rows[two]
    pm[r2, 1] -= half[two]
    pm[r2, nb[two] - 1] -= half[two]
    pm[:, 1] = np.where(two, pm[:, 1], 0.0) + r0
    pm[r2, nb[two] - 1] += l1[two]
    pm[r2, nb[two]] += r1[two]
    e2 = np.maximum(e0 + np.where(two, e1, 0.0) + np.maximum(nb - 2, 0) * (delta**3 / 6) / safe, 0.0)
    eta = 4 * _EPS * (np.abs(tlo) + np.abs(thi) + np.abs(kb * delta) + np.abs((kb + n) * delta) + delta)
    tv = 8 * j.size * (eta / safe + 4 * _EPS)
    e2 = e2 * (1 + 1e-9) + 4 * delta * eta / safe + 1e-300
    # a constant term (c = 0 or an empty range): T = tlo, split between its two lattice neighbours
    f = np.clip(tlo / delta - kb, 0.0, 1.0)
    flat = ~live
    if np.any(flat):
        pm[flat] = 0.0
        pm[flat, 0], pm[flat, 1] = 1 - f[flat], f[flat]
    e2 = np.where(live, e2, f * (1 - f) * delta * delta + 4 * delta * eta)
    tv = np.where(live, tv, 8 * eta / delta + 8 * _EPS)
    return pm, e2, tv


def hat_generic(
    dist: Any,
    c: np.ndarray,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    o: np.ndarray,
    tlo: np.ndarray,
    thi: np.ndarray,
    kb: np.ndarray,
    npts: np.ndarray,
    delta: float,
    cell_lo: np.ndarray | None = None,
    cell_hi: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hat law of a term ``T = o + c (X - x0)``, ``X`` the input's law on the cell ``[lo, hi]``, per row.

    Where the true cell ``[cell_lo, cell_hi]`` is wider (a half-line cut at its far point ``lo`` or ``hi``,
    :mod:`opgraph.dcg.boxtails`), ``X`` is first clipped into ``[lo, hi]``: the mass beyond is an atom at the far
    point (hat-split like the rest), and the clipping's cost ``|c| E[|X - clip(X)| | cell]`` (closed-form excess,
    :func:`opgraph.dcg.boxtails.excess`, padded) is returned.

    From the CDF and the closed-form partial moment ``E[X; X <= x]`` at the lattice points' ``X``: on the bin
    between the lattice points ``q`` and ``q + 1``, ``P(bin)`` and ``E[T / delta - q; bin] = c E[X - s_q; bin] /
    delta`` (``s_q`` the ``X`` of ``q delta``) go to ``q + 1``, the rest of the bin's mass to ``q``.

    Returns:
        ``(pm, E e^2 bound, total variation of pm's rounding error, clipping cost)`` (``pm`` by row from ``kb``; NaN
        rows where the law gives no finite moments). ``E e^2 = delta^2 E f (1 - f) <= delta^2 sum_bins M (P - M) / P`` (Jensen
        on each bin, ``M = E[f; bin]``).
    """
    n = int(np.max(npts))
    j = np.arange(max(n, 2))
    flat = c == 0
    safe = np.where(flat, 1.0, c)[:, None]
    pts = (kb[:, None] + j[None, :]) * delta
    tt = np.clip(pts, tlo[:, None], thi[:, None])
    x = np.clip(x0[:, None] + (tt - o[:, None]) / safe, lo[:, None], hi[:, None])
    f = np.asarray(dist.cdf(x), dtype=float)
    pmx = np.asarray(dist.partial_moment(x), dtype=float)
    up = x[:, 1:] >= x[:, :-1]
    a, b = np.where(up, x[:, :-1], x[:, 1:]), np.where(up, x[:, 1:], x[:, :-1])
    fa, fb = np.where(up, f[:, :-1], f[:, 1:]), np.where(up, f[:, 1:], f[:, :-1])
    pa, pb = np.where(up, pmx[:, :-1], pmx[:, 1:]), np.where(up, pmx[:, 1:], pmx[:, :-1])
    s = x0[:, None] + (pts[:, :-1] - o[:, None]) / safe  # the X of each bin's left lattice point
    mass = np.maximum(fb - fa, 0.0)
    tot = mass.sum(axis=1)
    cut_lo = np.zeros(c.size, dtype=bool) if cell_lo is None else cell_lo < lo
    cut_hi = np.zeros(c.size, dtype=bool) if cell_hi is None else cell_hi > hi
    atoms = []  # (rows, T of the far point, mass beyond it)
    clip = np.zeros(c.size)
    for cut, end, far, upper in ((cut_lo, cell_lo, lo, False), (cut_hi, cell_hi, hi, True)):
        if not np.any(cut):
            continue
        r = np.flatnonzero(cut)
        fe, ff = np.asarray(dist.cdf(end[r]), dtype=float), np.asarray(dist.cdf(far[r]), dtype=float)
        m_far = np.maximum(fe - ff if upper else ff - fe, 0.0)
        atoms.append((r, o[r] + c[r] * (far[r] - x0[r]), m_far))
        tot[r] += m_far
        z = (far[r] - dist.loc) / dist.scale
        beyond = dist._zsf(z) if upper else dist._zcdf(z)
        ex = boxtails.excess(dist, far[r], np.full(r.size, upper))
        clip[r] += np.abs(c[r]) * (ex * (1 + 1e-9) + 128 * _EPS * dist.scale * (np.abs(z) + 1) * beyond)
    good = (tot > 0) & np.isfinite(tot)
    den = np.where(good, tot, 1.0)[:, None]
    raw_r = safe * ((pb - pa) - s * (fb - fa)) / delta
    err_r = np.abs(safe) / delta * _PAD * (np.abs(s) * (fa + fb) + np.abs(pa) + np.abs(pb) + np.abs(a) + np.abs(b))
    right = np.clip(raw_r, 0.0, mass)
    ok = np.isfinite(raw_r).all(axis=1) & good
    pm = np.zeros((c.size, j.size))
    pm[:, :-1] += (mass - right) / den
    pm[:, 1:] += right / den
    # each entry within (err_r + the mass's rounding) / tot; twice that per bin in total variation
    err = err_r + _PAD * (fa + fb)
    tv = 2 * (2 * err).sum(axis=1) / den[:, 0] + 8 * j.size * _EPS
    # E[f (1 - f); bin] <= M (P - M) / P (Jensen: f (1 - f) is concave, E[f; bin] = M), each within err of it
    with np.errstate(all="ignore"):
        jen = np.where(mass > 0, right * (mass - right) / np.where(mass > 0, mass, 1.0), 0.0)
    e2 = delta * delta * ((jen + err).sum(axis=1) / den[:, 0] * (1 + 1e-9) + 8 * j.size * _EPS)
    rows_all = np.arange(c.size)
    for r, t_far, m_far in atoms:  # the far atoms, hat-split between their lattice neighbours
        q = np.floor(t_far / delta)
        g_far = np.clip(t_far / delta - q, 0.0, 1.0)
        col = np.clip(q - kb[r], 0, j.size - 1).astype(np.int64)
        w_far = m_far / den[r, 0]
        np.add.at(pm, (rows_all[r], col), w_far * (1 - g_far))
        np.add.at(pm, (rows_all[r], np.minimum(col + 1, j.size - 1)), w_far * g_far)
        e2[r] += delta * delta * w_far * g_far * (1 - g_far) * (1 + 1e-9)
        tv[r] += 4 * _PAD + 8 * _EPS * (1 + np.abs(t_far) / delta)
    clip = clip / den[:, 0]
    # a constant term: T = o at its two lattice neighbours
    g = np.clip(tlo / delta - kb, 0.0, 1.0)
    one = np.zeros_like(pm)
    one[:, 0], one[:, 1] = 1 - g, g
    pm = np.where(flat[:, None], one, pm)
    tv = np.where(flat, 8 * _EPS * (1 + np.abs(tlo) / delta), tv)
    e2 = np.where(flat, g * (1 - g) * delta * delta + 8 * _EPS * delta * (delta + np.abs(tlo)), e2)
    clip = np.where(flat, 0.0, clip)
    pm = np.where((ok | flat)[:, None], pm, np.nan)
    return pm, np.where(ok | flat, e2, np.inf), np.where(ok | flat, tv, np.inf), np.where(ok | flat, clip, np.inf)


class Plan:
    """Which candidate boxes of a mixture are smoothed, their term ``i*`` and its ``TV`` (:func:`plan`).

    Attributes:
        star: Per candidate box, the term kept at the nearest rounding (``-1``: the box is not smoothed).
        tv: Per candidate box, the ``TV`` of ``T_*``'s density.
        hat: Per term, the candidate boxes where it is hat-rounded (smoothed boxes, ``i != i*``).
    """

    def __init__(self, star: np.ndarray, tv: np.ndarray, k: int, ends: Sequence[Sequence[np.ndarray]]) -> None:
        self.star = star
        self.tv = tv
        self.ends = ends  # per term, the candidates' true cell ends
        self.clip = np.zeros(star.size)  # sum over hat terms of the far tails' clipping cost
        self.hat = [(star >= 0) & (star != i) for i in range(k)]
        n = star.size
        self.m = np.zeros(n)  # sum over hat terms of E e_i^2 bounds
        self.d_star = np.zeros(n)  # E|T_* - Q_*|
        self.m2_star = np.zeros(n)  # E (Q_* - T_*)^2 bound (inf where unknown)

    def frame(self, i: int, kb: np.ndarray, npts: np.ndarray, tlo: np.ndarray, thi: np.ndarray, delta: float):
        """Term ``i``'s lowest lattice index and points per candidate: the hat law's on its hat boxes."""
        h = self.hat[i]
        if not np.any(h):
            return kb, npts
        k0, n0 = hat_range(tlo, thi, delta)
        return np.where(h, k0, kb), np.where(h, n0, npts)

    def nearest_rows(
        self, i: int, blk: np.ndarray, fn: Callable[..., tuple[np.ndarray, ...]], args: Sequence[np.ndarray], *rest: Any
    ) -> tuple[np.ndarray, ...]:
        """A term's nearest lattice law and moments ``fn(*args, *rest)`` only where term ``i`` is not hat-rounded.

        Zeros on the other rows of ``blk`` (:meth:`term_law` replaces their laws, and :meth:`bound` does not use
        their moments). For a Uniform term, whose hat ``E e^2`` is exact and needs no nearest cost.
        """
        keep = ~self.hat[i][blk]
        if keep.all():
            return fn(*args, *rest)
        got = fn(*(a[keep] for a in args), *rest)
        out = []
        for g in got:
            full = np.zeros((blk.size,) + g.shape[1:])
            full[keep] = g
            out.append(full)
        return tuple(out)

    def term_law(
        self,
        i: int,
        blk: np.ndarray,
        pm: np.ndarray,
        d_i: np.ndarray,
        m2_i: np.ndarray | None,
        got: Sequence[np.ndarray],
        delta: float,
        dist: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Term ``i``'s lattice laws on the block ``blk``: the hat law on its hat boxes, ``pm`` (nearest) elsewhere.

        Records the boxes' moments for :meth:`bound`. ``got``: :func:`opgraph.dcg.boxlinear.mixture`'s ``term``
        columns ``(c, x', lo, hi, offset, tlo, thi)`` on the block.

        Returns:
            ``(pm, tv)``: the block's laws (columns from the frame's lowest index, :meth:`frame`) and the total
            variation of their rounding error per box.
        """
        st = self.star[blk]
        on_star = st == i
        self.d_star[blk] = np.where(on_star, d_i, self.d_star[blk])
        m2 = np.full(blk.size, np.inf) if m2_i is None else np.where(np.isfinite(m2_i), m2_i, np.inf)
        self.m2_star[blk] = np.where(on_star, m2, self.m2_star[blk])
        h = self.hat[i][blk]
        tv = np.zeros(blk.size)
        if not np.any(h):
            return pm, tv
        ci, xi, loi, hii, oi, tlo, thi = (np.asarray(g)[:, 0][h] for g in got[:7])
        kb, n = hat_range(tlo, thi, delta)
        if type(dist).__name__ == "Uniform":
            hp, e2, tvh = hat_uniform(ci, oi, tlo, thi, kb, n, delta)  # exact E e^2 (d_i: see nearest_rows)
        else:
            rows = blk[h]
            cl, ch = self.ends[i][0][rows], self.ends[i][1][rows]
            hp, e2, tvh, clip = hat_generic(dist, ci, xi, loi, hii, oi, tlo, thi, kb, n, delta, cl, ch)
            cut = (cl < loi) | (ch > hii)  # clipped rows: delta d_i is the unclipped term's (not a bound there)
            e2 = np.where(cut, e2, np.minimum(e2, delta * d_i[h] * (1 + 1e-12)))
            self.clip[rows] += clip
        width = max(pm.shape[1], hp.shape[1])
        if h.all() and width == hp.shape[1]:  # every box of the block hat-rounds this term
            out = hp
        elif width == pm.shape[1]:
            out = pm
        else:
            out = np.zeros((blk.size, width))
            out[:, : pm.shape[1]] = pm
        if out is not hp:
            out[h, : hp.shape[1]] = hp
            out[h, hp.shape[1] :] = 0.0
        bad = np.zeros(blk.size, dtype=bool)
        bad[h] = ~np.isfinite(hp[:, 0])  # hat_generic's rows without finite moments: NaN throughout
        out[bad] = 0.0  # never used: the box's bound is inf (its weight goes to the point-mass answer)
        self.m[blk[h]] += np.where(np.isfinite(e2), e2, np.inf)
        tv[h] = tvh
        self.m[blk[bad]] = np.inf
        return out, tv

    def bound(self, blk: np.ndarray, dsum: np.ndarray) -> np.ndarray:
        """The block's rounding bounds: the smoothed boxes' (module docstring), ``dsum`` on the others."""
        st = self.star[blk]
        m, tv = self.m[blk], self.tv[blk]
        with np.errstate(all="ignore"):
            sm = np.minimum(tv * m / 2, np.sqrt(m)) * (1 + 1e-12)
            got = np.minimum(self.d_star[blk] + sm, np.sqrt(self.m2_star[blk] + m) * (1 + 1e-12))
            got = (got + self.clip[blk]) * (1 + 1e-12)
        got = np.where(np.isfinite(m) & np.isfinite(got), got, np.inf)
        return np.where(st >= 0, got, dsum)


def _stars(
    k: int,
    term: Callable[[int, Any, float], tuple[np.ndarray, ...]],
    ends: Sequence[Sequence[np.ndarray]],
    dists: Sequence[Any],
    delta: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per candidate box: the term ``i*``, the ``TV`` of its density, and whether the box can be smoothed at all."""
    every = slice(None)
    tvs, hat_ok = [], []
    for i in range(k):
        ci = term(i, every, delta)[0]
        lo, hi = ends[i]
        with np.errstate(all="ignore"):
            tvs.append(density_tv(dists[i], lo, hi) / np.abs(ci))
        fin = np.isfinite(lo) & np.isfinite(hi)
        hat_ok.append((boxtails.tail_ok(dists[i], lo, hi) if TAILS else fin) & _hat_ok(dists[i]))
    tv = np.stack(tvs)  # (k, boxes)
    tv = np.where(np.isfinite(tv), tv, np.inf)
    ok = np.stack(hat_ok)
    n_bad = np.sum(~ok, axis=0)
    star = np.where(n_bad == 1, np.argmax(~ok, axis=0), np.argmin(tv, axis=0))
    tv_star = tv[star, np.arange(star.size)]
    return star, tv_star, (n_bad <= 1) & np.isfinite(tv_star)


def _predicted(k: int, tv: np.ndarray, able: np.ndarray, delta: float, var_on: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per box, whether it is smoothed at step ``delta`` and its predicted rounding cost in units of ``delta``."""
    old = min(k / 4, math.sqrt(k / 12)) if var_on else k / 4
    new = 0.25 + tv * delta * (k - 1) / 8
    smooth = able & (new < WIN * old)
    return smooth, np.where(smooth, new, old)


def plan(
    k: int,
    term: Callable[[int, Any, float], tuple[np.ndarray, ...]],
    ends: Sequence[Sequence[np.ndarray]],
    dists: Sequence[Any],
    delta: float,
    var_on: bool,
) -> Plan | None:
    """The smoothed boxes of a mixture at step ``delta`` (module docstring, "Which boxes"), or None (none).

    Args:
        k: Terms per box.
        term: :func:`opgraph.dcg.boxlinear.mixture`'s ``term(i, sel, delta)``.
        ends: Per term, the candidate boxes' true cell ends ``(lo, hi)`` (``+-inf`` on half-line cells).
        dists: Per term, the input's law.
        delta: The lattice step.
        var_on: Whether the nearest rounding's bound includes the second-moment form (:mod:`boxvariance`).
    """
    if not ENABLED.get() or k < 2 or not delta > 0:
        return None
    star, tv_star, able = _stars(k, term, ends, dists, delta)
    smooth = _predicted(k, tv_star, able, delta, var_on)[0]
    if not np.any(smooth):
        return None
    return Plan(np.where(smooth, star, -1), tv_star, k, ends)


def matched_step(
    k: int,
    term: Callable[[int, Any, float], tuple[np.ndarray, ...]],
    ends: Sequence[Sequence[np.ndarray]],
    dists: Sequence[Any],
    delta: float,
    per_delta: float,
    weights: np.ndarray,
    var_on: bool,
) -> float:
    """:data:`MATCH_STEP`: the coarsest step whose predicted rounding cost is the nearest rounding's at ``delta``.

    The nearest rounding's step rule aims at ``per_delta * delta`` per unit mass; with the smoothed boxes' predicted
    cost (``delta' (1/4 + TV delta' (k - 1) / 8)``, the others ``per_delta delta'``) the same total is reached at a
    coarser ``delta' >= delta`` (bisection, at most ``8 delta``). Any step is valid: this only sizes the lattice.
    """
    if not ENABLED.get() or k < 2 or not delta > 0:
        return delta
    star, tv, able = _stars(k, term, ends, dists, delta)
    w = np.asarray(weights, dtype=float)
    target = per_delta * delta * float(np.sum(w))

    def cost(d: float) -> float:
        smooth, per = _predicted(k, tv, able, d, var_on)
        return d * float(np.sum(w * np.where(smooth, per, per_delta)))

    lo, hi = delta, 8 * delta
    if cost(hi) <= target:
        return hi
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(mid) <= target else (lo, mid)
    return lo
