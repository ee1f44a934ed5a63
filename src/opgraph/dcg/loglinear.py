"""Log-linear box models: the box-linear mixture in the inputs' Normal coordinates, remainder from log-space slopes.

The box-linear mixture (:mod:`opgraph.dcg.boxlinear`) replaces a box's point mass by the law of a linear model of
the program on the box; its remainder comes from the Taylor pass (:mod:`opgraph.dcg.taylor`), whose gradient and
Hessian enclosures in ``x`` blow up on products of powers and ratios of LogNormal inputs (the damped oscillator:
the remainder is 10^3-10^4 times the engine's own bound on its boxes). The log-space pass
(:mod:`opgraph.dcg.elastic`, :mod:`opgraph.dcg.centredlog`) encloses the slopes of ``h = log|f|`` in the Normal
coordinates ``u`` (``u_i = log x_i`` for a LogNormal input, ``x_i`` for a Normal one) along a path that moves one
coordinate at a time: ``h(u) - h(u') = sum_i s_i d_i`` with ``d_i = u_i - u'_i`` and ``s_i`` in the leg's enclosure
``G_i^{sgn d_i}``. Here one coefficient ``c_i`` per coordinate and box (the midpoint of the hull of the two legs'
enclosures) and the radii ``m_i^pm = mag(G_i^pm - c_i)`` give, with ``C = sum_i c_i d_i`` and ``R = sum_i
m_i^{sgn d_i} |d_i|``, ``|h(u) - h(u') - C| <= R`` and

    f(x) - f(x') (1 + C) = f(x') (e^{h(u) - h(u')} - 1 - C),
    |e^{C + rho} - 1 - C| <= (e^C - 1 - C) + e^C (e^R - 1)   for |rho| <= R   (e^C - 1 - C >= 0),

so the *linear model in u*, ``L(u) = f(x') + sum_i f(x') c_i d_i``, has on the box

    E[|f(X) - L(U)| | B] <= |f(x')| (E[e^{C + R} | B] - 1 - E[C | B]),

a closed form: ``E[e^{C + R} | B]`` is a product over the independent coordinates of :func:`opgraph.dcg.elastic.
log_factor` with the signed rates ``(c_i + m_i^+, m_i^- - c_i)``, and ``E[C | B] = sum_i c_i E[d_i | cell_i]`` (a
truncated Normal's mean). The first-order term of the centred point-mass bound (``sqrt(Var e^C)``) is gone: what is
left is second order in ``C`` plus the radii's term. The computed value ``V'`` enters through its rounding bound
``e >= |f(x') - V'|``: ``L`` uses ``V'`` (``f(X) - L = f(x')(e^{dh} - 1 - C) + (f(x') - V')(1 + C)``), so the box's
remainder is ``(|V'| + e) (E[e^{C + R}] - 1 - E[C]) + e E[e^{|C|}]``.

:func:`models` computes ``c`` (as the u-coefficients ``V' c_i``) and that remainder per box; :func:`answer` hands them
to :func:`opgraph.dcg.boxlinear.mixture` with the cells and laws *in the Normal coordinates* (``log`` of a LogNormal's
cells, the Normal law of ``log X``): the mixture's proof uses of a coordinate only that it is a function of the
input (so the coordinates are independent on a box) with a closed-form CDF and partial moment for the rounding
cost, and ``U = log X`` is one. Theorem and proof: docs/dcg.md, "Log-linear box models".

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` name ``log_linear``) switches it off; it runs only
where the box-linear mixture is on (``boxlinear.ENABLED``).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: Whether the log-space pass also builds log-linear box models for the mixture answer (``ENABLED.set(False)``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_log_linear", default=True)

#: Relative rounding pad on each expectation (``E[e^{C + R}] - 1 - E[C]`` cancels terms of size 1: padded by PAD
#: times their magnitudes per coordinate) and on the total.
PAD = 1e-9

#: The lattice step of the log-linear mixture aims its cost at this share of the remainder total (the x-space
#: mixture's :data:`opgraph.dcg.boxlinear.DISC_SHARE` is 0.5). Its remainders are larger (first order in the slope
#: enclosures' radii), so a step sized at half of them makes the rounding cost lose most boxes. Measured on DampedOsc's
#: 1e-2 target grid (6^6 x 4 atoms): 0.5 / 0.1 -> bound 1.468 / 1.418 std, mixture CPU 0.26 / 0.83 s.
DISC_SHARE = 0.1

#: The slope ``c_j`` of a box's model: ``"gradient"`` (the midpoint of the enclosure of ``dh/du_j`` at the atom, a
#: point pass: the model is the tangent, the better answer), ``"hull"`` (the midpoint of the hull of the two legs'
#: enclosures: the smaller radii) or ``"best"`` (per box the one of the two with the smaller remainder). Any slope
#: gives a valid remainder (the radii are taken about it). A module constant for A/B.
CENTRE = "gradient"

Interval = tuple[np.ndarray, np.ndarray]


def cell_mean_offset(mu: float, s: float, lo: np.ndarray, hi: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, ...]:
    """``E[U - at | lo < U < hi]`` for ``U ~ N(mu, s^2)`` per cell, and a bound on its rounding error.

    From the tail-safe cell mass and moment of :class:`opgraph.dcg.distributions.Normal` (no cancellation in the
    tails). The pad covers the division and subtraction (a few eps of the magnitudes) with a margin.
    """
    from opgraph.dcg.distributions import Normal

    z = Normal(0.0, 1.0)
    zl, zr = (np.asarray(lo, dtype=float) - mu) / s, (np.asarray(hi, dtype=float) - mu) / s
    with np.errstate(all="ignore"):
        p, m = z._cell_mass_moment(zl, zr)
        mean = mu + s * m / p
        off = mean - np.asarray(at, dtype=float)
    pad = 64 * float(np.finfo(float).eps) * (np.abs(mu) + s * (1 + np.abs(m / p)) + np.abs(at)) + 1e-12 * s
    bad = ~(np.isfinite(off) & (p > 0))
    return np.where(bad, np.nan, off), np.where(bad, np.inf, pad)


def models(
    dims: Sequence[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]],
    legs: Mapping[int, tuple[Interval, Interval]],
    v_ok: np.ndarray,
    pt: np.ndarray,
    pt_err: np.ndarray,
    shape: tuple[int, ...],
    ls_max: float,
    sel: np.ndarray | None = None,
    centre: Sequence[Interval] | None = None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per box the log-linear model's u-coefficients and remainder ``E[|f(X) - L(U)| | box]`` (module docstring).

    Args:
        dims: Per grid dimension ``(mu, sigma, lo, hi, at)``: the Normal coordinate's law and its cells' ends and
            atoms in that coordinate, each array shaped to broadcast along its dimension.
        legs: Per grid dimension ``(G^-, G^+)``: enclosures of ``dh/du_j`` on the lower and upper half-cell legs.
        v_ok: Boxes where ``f`` has one strict sign (elsewhere the remainder is ``inf``).
        pt: The computed output ``V'`` at the atoms.
        pt_err: A bound on ``|f(x') - V'|`` per box.
        shape: The grid shape.
        ls_max: Largest ``|rate| * sigma`` whose closed-form factor is trusted (a larger one gives ``inf``).
        sel: The boxes to model (a mask of ``shape``; the others get an ``inf`` remainder); all when None.
        centre: Per grid dimension an enclosure of ``dh/du_j`` at the atom (a point pass): with :data:`CENTRE`
            ``"gradient"`` its midpoint is the slope ``c_j`` where finite (else the hull's midpoint). Any ``c_j``
            gives a valid remainder (the radii are taken about it); the gradient gives the better answer.

    Returns:
        ``(coef, rest)``: per dimension the u-coefficient ``V' c_j`` (grid shape), and the conditional remainder
        per box (grid shape, same units as ``f``; ``inf`` where an enclosure is unbounded or a factor overflows).
    """
    k = len(dims)
    if sel is not None:
        pick = np.broadcast_to(sel, shape)
        n = int(pick.sum())

        def g(x: np.ndarray) -> np.ndarray:
            return np.broadcast_to(x, shape)[pick]

        sdims = [(mu, s, g(lo), g(hi), g(at)) for mu, s, lo, hi, at in dims]
        slegs = {j: tuple((g(a), g(b)) for a, b in pair) for j, pair in legs.items()}
        scen = None if centre is None else [(g(a), g(b)) for a, b in centre]
        coef_s, rest_s = models(
            sdims,
            slegs,  # type: ignore[arg-type]
            g(v_ok),
            g(pt),
            g(pt_err),
            (n,),
            ls_max,
            None,
            scen,  # type: ignore[arg-type]
        )
        coef = []
        for c in coef_s:
            full = np.zeros(shape)
            full[pick] = c
            coef.append(full)
        rest = np.full(shape, np.inf)
        rest[pick] = rest_s
        return coef, rest
    apt = np.abs(np.broadcast_to(pt, shape))
    err = np.abs(np.broadcast_to(pt_err, shape))
    with np.errstate(all="ignore"):
        legs_b = [tuple(tuple(np.broadcast_to(x, shape) for x in gg) for gg in legs[j]) for j in range(k)]
        hull = [(np.minimum(lg[0][0], lg[1][0]) + np.maximum(lg[0][1], lg[1][1])) / 2 for lg in legs_b]
        grad = None
        if centre is not None and CENTRE in ("gradient", "best"):
            grad = []
            for j in range(k):
                p0, p1 = (np.broadcast_to(x, shape) for x in centre[j])
                cg = (p0 + p1) / 2
                grad.append(np.where(np.isfinite(cg), cg, hull[j]))
        offs = [cell_mean_offset(mu, s, lo, hi, at) for mu, s, lo, hi, at in dims]
        first = hull if grad is None or CENTRE == "hull" else grad
        coef, rest = _models_at(dims, legs_b, offs, first, v_ok, apt, err, shape, ls_max)
        if grad is not None and CENTRE == "best":  # per box the slopes with the smaller remainder
            coef_h, rest_h = _models_at(dims, legs_b, offs, hull, v_ok, apt, err, shape, ls_max)
            take = rest_h < rest
            coef = [np.where(take, ch, cg) for ch, cg in zip(coef_h, coef, strict=True)]
            rest = np.where(take, rest_h, rest)
        vpt = np.broadcast_to(pt, shape)
        coef = [np.where(np.isfinite(rest), vpt * c, 0.0) for c in coef]  # the u-coefficients V' c_j
    return coef, rest


def _models_at(
    dims: Sequence[tuple[float, float, np.ndarray, np.ndarray, np.ndarray]],
    legs: Sequence[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]],
    offs: Sequence[tuple[np.ndarray, np.ndarray]],
    slopes: Sequence[np.ndarray],
    v_ok: np.ndarray,
    apt: np.ndarray,
    err: np.ndarray,
    shape: tuple[int, ...],
    ls_max: float,
) -> tuple[list[np.ndarray], np.ndarray]:
    """:func:`models` for given slopes ``c_j`` (grid arrays): the slopes (0 where not modelled) and the remainder."""
    from opgraph.dcg.elastic import log_factor

    k = len(dims)
    t3 = np.zeros(shape)  # log E[e^{C + R} | B]
    ta = np.zeros(shape)  # log E[e^{|C|} | B]
    ec = np.zeros(shape)  # E[C | B]
    ec_mag = np.zeros(shape)  # sum_j |c_j| |E d_j|: the magnitudes E[C] is computed from
    ec_pad = np.zeros(shape)  # sum_j |c_j| pad_j: its rounding error
    bad = np.zeros(shape, dtype=bool)
    coef = []
    with np.errstate(all="ignore"):
        for j, (mu, s, lo, hi, at) in enumerate(dims):
            (l0, l1), (u0, u1) = legs[j]
            c = slopes[j]
            m_up = np.maximum(u1 - c, c - u0)  # the radii about c (mag(G - c)): |s_j - c| <= m on each leg
            m_dn = np.maximum(l1 - c, c - l0)
            f3 = log_factor(mu, s, lo, hi, at, c + m_up, m_dn - c)
            fa = log_factor(mu, s, lo, hi, at, np.abs(c), np.abs(c))
            off, pad = offs[j]
            rate = np.maximum(np.abs(c) + m_up, np.abs(c) + m_dn)
            bad |= ~(np.isfinite(f3) & np.isfinite(fa) & np.isfinite(c) & np.isfinite(off)) | ~(rate * s <= ls_max)
            t3, ta = t3 + f3, ta + fa
            ec = ec + c * off
            ec_mag = ec_mag + np.abs(c) * np.abs(off)
            ec_pad = ec_pad + np.abs(c) * pad
            coef.append(c)
        rest = remainder(np.exp(t3), np.exp(ta), ec, ec_mag, ec_pad, apt, err, k)
    ok = np.broadcast_to(v_ok, shape) & ~bad & np.isfinite(rest)
    rest = np.where(ok, rest, np.inf)
    return [np.where(ok, c, 0.0) for c in coef], rest


def remainder(
    e3: np.ndarray,
    ea: np.ndarray,
    ec: np.ndarray,
    ec_mag: np.ndarray,
    ec_pad: np.ndarray,
    apt: np.ndarray,
    err: np.ndarray,
    k: int,
) -> np.ndarray:
    """The box's remainder ``(|V'| + e) (E[e^{C + R}] - 1 - E[C]) + e E[e^{|C|}]``, padded for its rounding.

    Args:
        e3: ``E[e^{C + R} | B]`` (an upper bound).
        ea: ``E[e^{|C|} | B]`` (an upper bound).
        ec: ``E[C | B]`` as computed.
        ec_mag: ``sum_j |c_j| |E d_j|``: the magnitudes ``ec`` is computed from.
        ec_pad: A bound on the rounding error of ``ec``.
        apt: ``|V'|``.
        err: ``e >= |f(x') - V'|``.
        k: The number of coordinates (the pads scale with it).
    """
    # E[e^{C + R}] - 1 - E[C] >= 0 (e^{C + R} >= e^C >= 1 + C): padded for the cancellation of its terms
    core = e3 - 1 - ec + PAD * k * (e3 + 1 + ec_mag) + ec_pad
    return ((apt + err) * np.maximum(core, 0.0) + err * ea) * (1 + PAD) + PAD * k * apt


def wanted(boxes: int, k: int) -> bool:
    """Whether the log-space pass builds log-linear models on a grid of ``boxes`` boxes and ``k`` inputs.

    Where this switch and the box-linear mixture are on and the mixture could run on such a grid (the same guards as
    the Taylor pass's linear models: :func:`opgraph.dcg.boxlinear.wanted`, a ``target_w1`` call's time budget and the
    fixed-atoms cost guard).
    """
    from opgraph.dcg import boxlinear

    return ENABLED.get() and k >= boxlinear.MIN_AXES and boxlinear.wanted(boxes, k)


def package(
    axes: Sequence[int],
    laws: Mapping[int, Any],
    cells: Mapping[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    linear: dict[str, Any],
) -> dict[str, Any]:
    """What :func:`answer` needs: the cells and laws in the Normal coordinates, and the models.

    A LogNormal input's coordinate is ``U = log X ~ Normal(mu, sigma)`` with the cells' ends and atoms mapped by
    ``log`` (a cell's lower end 0 becomes ``-inf``); a Normal input's is ``X`` itself.
    """
    from opgraph.dcg.distributions import LogNormal, Normal

    u_cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    u_laws: dict[int, Any] = {}
    with np.errstate(divide="ignore"):
        for a in axes:
            law = laws[a]
            lo, hi, at = (np.asarray(x, dtype=float) for x in cells[a])
            if isinstance(law, LogNormal):
                u_cells[a] = (np.log(np.maximum(lo, 0.0)), np.log(hi), np.log(at))
                u_laws[a] = Normal(float(law.mu), float(law.sigma))
            else:
                u_cells[a] = (lo, hi, at)
                u_laws[a] = law
    return {"axes": tuple(axes), "cells": u_cells, "dists": u_laws, "linear": linear}


def answer(
    ev: Any,
    graph: Any,
    val: Any,
    box_bound: np.ndarray,
    bound: float,
    support: tuple[float, float] | None = None,
    held: float = math.inf,
) -> tuple[Any, ...] | None:
    """The engine's entry: the log-linear mixture answer where its bound is below ``bound``, else None.

    ``ev.log_linear`` holds what the log-space pass left (:func:`opgraph.dcg.elastic.apply`): the grid's cells and
    laws in the Normal coordinates and the models of :func:`models`. The rest is :func:`opgraph.dcg.boxlinear.answer`
    (the same arguments and result).
    """
    from opgraph.dcg import boxlinear

    got_ll = getattr(ev, "log_linear", None)
    axes = tuple(val.axes)
    if not ENABLED.get() or not boxlinear.ENABLED.get() or got_ll is None or not bound > 0:
        return None
    if got_ll["axes"] != axes or len(axes) < boxlinear.MIN_AXES:
        return None
    try:
        got = boxlinear.built(
            axes,
            np.asarray(val.pt),
            got_ll["cells"],
            got_ll["dists"],
            ev._wbox(axes),
            box_bound,
            got_ll["linear"],
            min(bound, held),
            DISC_SHARE,
            what="log-linear",
        )
    except boxlinear.MixtureSkipped:
        return None
    out = boxlinear.as_answer(got, bound, support)
    if out is None:
        return None
    extra = {"coordinates": "log"}
    if "sub_box" in got_ll["linear"]:  # opgraph.dcg.logsubbox's summary
        extra["sub_box"] = got_ll["linear"]["sub_box"]
    return (*out[:3], {**out[3], **extra})
