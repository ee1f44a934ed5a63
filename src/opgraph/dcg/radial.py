"""Radial slope remainder: gradient enclosures over boxes shrunk about the centre, averaged along the ray (issue 14 §3).

The slope (mean-value) remainder (:func:`opgraph.dcg.taylor._slope`, :mod:`opgraph.dcg.subslope`,
:mod:`opgraph.dcg.subcentre`, :mod:`opgraph.dcg.subwalk`) bounds, on a box ``B`` (a grid box or a sub-box) with
centre ``x_s`` in ``B`` and ``e = X - x_s``, the spread of ``f(X) - f(x_s) = sum_i gamma_i e_i`` through enclosures
``G_i`` of ``df/dx_i`` over the *whole* box, ``gamma_i in G_i``. Even for an exact enclosure this pays the
gradient's whole range over ``B`` on every ``e``, although the points the mean-value integral visits for a small
``e`` lie near ``x_s``: in one dimension with ``f'' = L`` on a centred uniform cell of width ``h`` the form pays
``L h^2 / 8`` against ``E|f - L| = L h^2 / 24``; and an interval or affine enclosure's overestimate grows faster
than the box.

**Theorem (the ray split).** Let ``M`` be a set of axes (the *moving* axes), ``y`` a point of ``B`` equal to ``x_s``
on ``M`` (the other coordinates of ``y`` anywhere in their ranges ``B_j``) and ``X = y + e`` with ``e`` zero off
``M`` and ``X`` in ``B``. For ``0 < t_1 < ... < t_K = 1`` let ``B^k`` be the box whose coordinates on ``M`` are
``x_s + t_k (B - x_s)`` (``B`` scaled about ``x_s`` by ``t_k``) and whose other coordinates are the ranges
``R_j`` they may take (``R_j`` contains ``y_j``: the whole range ``B_j`` for a free axis, the point ``x_sj`` for an
axis held at the centre). If ``G^k_i`` encloses ``df/dx_i`` over ``B^k`` for ``i`` in ``M``, then

    f(X) - f(y) = sum_{i in M} gamma_i e_i,   gamma_i in sum_k (t_k - t_{k-1}) G^k_i   (t_0 = 0, interval sums),

and ``gamma_i`` also lies in any enclosure of ``df/dx_i`` over ``B^K`` (the whole range). *Proof.* ``f`` is
differentiable on ``B`` (every enclosure used is finite, else the bound is infinite anyway), so ``f(X) - f(y) =
int_0^1 grad f(y + t e) . e dt = sum_{i in M} gamma_i e_i`` with ``gamma_i = int_0^1 df/dx_i(y + t e) dt``. For
``t`` in ``(t_{k-1}, t_k]`` the point ``y + t e`` has the coordinates ``y_j`` off ``M`` (in ``R_j``) and ``x_si +
t e_i = x_si + t_k ((t / t_k) e_i)`` on ``M``, with ``x_si + (t / t_k) e_i`` between ``x_si`` and ``X_i`` in ``B_i``
(an interval containing ``x_si``), so in ``x_si + t_k (B_i - x_si)``: the point lies in ``B^k``, and ``df/dx_i``
there lies in ``G^k_i``. The integral over the slice is ``(t_k - t_{k-1})`` times a mean of values in the interval
``G^k_i``, so in ``(t_k - t_{k-1}) G^k_i``; summing the slices gives the interval sum. Every point lies in ``B^K``
too, so the mean ``gamma_i`` lies in its enclosure there. ∎

The slope forms use exactly ``f(X) - f(x_s) = sum_i gamma_i e_i`` with ``gamma_i in G_i`` (pointwise, then
expectations on the box): with ``M`` all axes (``y = x_s``) the whole box's ``G_i`` may be replaced by the averaged
enclosure intersected with ``G_i``. In the coordinate walk (:mod:`opgraph.dcg.subwalk`: axes ``o_1 .. o_m`` moved
one at a time, each with its ``gamma`` in its thin box's enclosure) the last segment, from ``y_m`` (``X`` on the
walked axes, ``x_s`` elsewhere) to ``X``, moves the other axes together: the theorem with ``M`` the axes not walked
and the walked axes free on their ranges. The walked axes keep their enclosures: it is the same decomposition, so
the per-axis intersections stay valid. (Along one walk step the same split applies to its one axis, ``M = {o_n}``.)

For an enclosure whose excess over the gradient at ``x_s`` grows linearly with the box, ``mag(avg - c)`` is about
``(K + 1) / (2 K)`` of the whole box's (uniform ``t_k = k / K``): 0.75 at ``K = 2``, 0.625 at 4; an enclosure whose
overestimate grows faster gains more. Cost: ``K - 1`` more gradient passes (interval and, with :data:`AFFINE`,
affine) per box; the last slice's box is the whole range, whose enclosures the caller already has.

**Theorem (the affine ray form: the split's limit for affine gradient forms).** Let the slices' enclosures be affine
forms: for ``x`` in ``B^k``, ``df/dx_i(x) = A^k_i(x) + rho`` with ``|rho| <= r^k_i`` and ``A^k_i(x) = c^k_i + sum_j
a^k_ij (x_j - m^k_j) / h^k_j`` (:func:`opgraph.dcg.affgrad.gradients`' forms, the noise symbols ``(x_j - m_j) /
h_j`` exact functions of ``x``). On the ray ``x_j(t) = x_sj + t e_j`` for ``j`` in ``M`` and ``x_j(t) = y_j`` (here
``X_j``: the walked axes) off ``M``, so ``x_j(t) - x_sj`` is ``t e_j`` or ``e_j``, and integrating slice by slice

    gamma_i = C_i + sum_j Q_ij e_j + rho_i,   |rho_i| <= R_i = sum_k w_k r^k_i,   C_i = sum_k w_k A^k_i(x_s),
    Q_ij = sum_k s_kj a^k_ij / h^k_j,   w_k = t_k - t_{k-1},   s_kj = (t_k^2 - t_{k-1}^2) / 2 on M, w_k off M.

Then ``sum_{i in M} (gamma_i - c_i) e_i = sum_i (C_i - c_i) e_i + sum_{i, j} Q_ij e_i e_j + sum_i rho_i e_i``, and
(the coordinates independent on a sub-box) ``E|sum_{i, j} Q_ij e_i e_j| <= sum_{i != j} |Q_ij| E|e_i| E|e_j| +
sum_i |Q_ii| E e_i^2``. :mod:`opgraph.dcg.subcentre`'s theorem holds with ``b_i = C_i - c_i`` and the spread
``sum_i R_i E|e_i|`` plus the pairs' sum in place of ``sum_i mag(G_i - c_i - b_i) E|e_i|``: its proof used only
``f(X) - f(x') - c . d = a + (b . e) + rest`` with ``E|rest|`` bounded by the spread. ∎ With one slice (``K = 1``,
the sub-box's own affine forms, no extra pass) ``Q_ij = a_ij / (2 h_j)`` on ``M``: where ``E|e_j| = h_j / 2`` (a
centred uniform piece) the pair costs a quarter of what the affine hull's ``|a_ij|`` costs in the slope form; the
remainders ``r_i`` are paid in full. A coefficient off ``M`` for an axis the ray moves (the output does not depend
on it) is counted with ``s = w_k``: ``|Q|`` only grows, and the bound uses ``|Q_ij|`` alone. Each sub-box keeps the
smallest of this and the other forms; a pass with a walk also takes the form with ``M`` every axis (the ray from
``x_s``, the sub-box's own enclosures: another decomposition, bounded on its own), so that the walk never leaves a
sub-box's bound above the pass without it at the same pieces (:func:`opgraph.dcg.subwalk.choose` compares the two).
Rounding: ``C_i`` is padded by ``(n + 4) eps`` times the sum of its terms' magnitudes, ``R_i`` by ``4 eps``, the
pairs' total by ``1e-12`` relative.

**Measured** (docs/dcg.md, "Radial slope remainder"): on piston's 4-atom grid the affine forms' remainders ``r_i E|e_i|``
are 3-8x their linear parts (the chain's products), so the one-slice form takes 5-8 % off the sub-box remainder for
no extra pass (Borehole at 4 atoms: 13 %); the slices (interval and affine, or affine forms with the limit) take
13-54 % off at 1.5-4x the pass's CPU, where the same CPU in more sub-box pieces takes more (24 -> 48 pieces with the
walk: 37 % for 2.2x). So :data:`SLICES` and :data:`EXACT_SLICES` are 1 by default.

Rounding: the scaled boxes are widened outwards by ``4 eps (|x_s| + |B - x_s|)`` and clipped to the hull of ``B``
and ``x_s`` (they contain the exact scaled boxes); the interval sum's ends are padded by ``(K + 2) eps`` times the
sum of the slices' magnitudes.

``ENABLED`` (a ContextVar, default on; switch ``radial_slope``) turns both on in the sub-box slope remainder
(:func:`opgraph.dcg.subslope.remainder`: the affine ray form with :data:`EXACT`, the slices of :func:`enclose` where
:data:`SLICES` > 1, on the walk's steps with :data:`WALK` and on the last segment with :data:`RAY`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

#: Whether the sub-box slope remainder takes the ray forms of this module (switch ``radial_slope``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_radial", default=True)
#: Slices of the ray ``K`` for the interval-and-affine enclosures (:func:`enclose`: the boxes scaled by ``k / K``,
#: ``k = 1 .. K``; the last is the caller's whole range). 1: not used (measured: they do not pay against more
#: sub-box pieces for the same CPU; docs/dcg.md, "Radial slope remainder").
SLICES = 1
#: Whether each scaled box also takes the affine enclosure (:mod:`opgraph.dcg.affgrad`), intersected.
AFFINE = True
#: Whether each scaled box takes the interval enclosure (:func:`opgraph.dcg.taylor.jets`); with :data:`AFFINE` the
#: two are intersected, else the one taken stands.
INTERVAL = True
#: Whether the sub-box walk's steps take the split on their one axis (:func:`opgraph.dcg.subwalk.gradients`).
WALK = True
#: Whether the last segment (the axes the walk does not move, together) takes the split
#: (:func:`opgraph.dcg.subslope.remainder`).
RAY = True
_EPS = float(np.finfo(float).eps)

Interval = iv.Interval


def fractions(k: int) -> list[float]:
    """``t_1 .. t_K`` of the ray split (uniform: ``k / K``)."""
    return [j / k for j in range(1, k + 1)]


def scaled(box: Interval, centre: np.ndarray, t: float) -> Interval:
    """``centre + t (box - centre)``, widened outwards for rounding and clipped to the hull of ``box`` and ``centre``."""
    lo, hi = (np.asarray(x, dtype=float) for x in box)
    c = np.asarray(centre, dtype=float)
    with np.errstate(all="ignore"):
        elo, ehi = np.minimum(lo, c), np.maximum(hi, c)
        dlo, dhi = elo - c, ehi - c
        slo = c + t * dlo
        shi = c + t * dhi
        # relative pad for the two roundings, plus 2 subnormal steps (1e-323) for underflow, where the relative pad
        # is 0 (a width of 5e-324 scaled by 0.25 rounds to 0)
        slo = slo - 4 * _EPS * (np.abs(c) + np.abs(dlo)) - 1e-323
        shi = shi + 4 * _EPS * (np.abs(c) + np.abs(dhi)) + 1e-323
        # an infinite end stays infinite (t * inf); NaN (inf - inf cannot occur for finite centres) to the hull
        slo = np.where(np.isnan(slo), elo, np.maximum(slo, elo))
        shi = np.where(np.isnan(shi), ehi, np.minimum(shi, ehi))
    return slo, shi


def _interval(
    graph: Any,
    output: int,
    axes: Sequence[int],
    moving: Sequence[int],
    free: Sequence[int],
    box: dict[int, Interval],
    centre: dict[int, np.ndarray],
    points: dict[int, Interval] | None,
    check: bool = True,
) -> tuple[dict[int, Interval], bool]:
    """Interval enclosures of ``df/dx_i`` (``i`` in ``moving``) over ``box`` (``free``: its other non-point axes).

    With ``check``, first the pass with the moving axes alone seeded and no point pass
    (:func:`opgraph.dcg.taylor.jets`' ``pole_check``: the same enclosures where no value enclosure is centred), else
    (or where it stops) the full pass with every non-point axis seeded (the centring needs their gradients).
    Returns the enclosures and whether the check passed.
    """
    from opgraph.dcg import taylor

    if check:
        try:
            got = taylor.jets(graph, output, box, hess=False, centre=centre, seeds=list(moving), pole_check=[])
            return {a: got.g[a] for a in moving if a in got.g}, True
        except taylor._WouldCentre:
            pass
    seeds = list(dict.fromkeys([*free, *moving]))
    got = taylor.jets(graph, output, box, hess=False, centre=centre, seeds=seeds, points=points)
    return {a: got.g[a] for a in moving if a in got.g}, False


def enclose(
    graph: Any,
    output: int,
    axes: Sequence[int],
    moving: Sequence[int],
    box: dict[int, Interval],
    centre: dict[int, np.ndarray],
    last: Mapping[int, Interval],
    points: dict[int, Interval] | None = None,
    affine: bool = True,
    slices: int | None = None,
) -> dict[int, Interval]:
    """Per moving axis, the ray split's averaged enclosure of ``df/dx_i`` (module docstring), met with ``last``.

    Args:
        graph: The output's graph (every input node's id is its axis).
        output: The output node's id.
        axes: The grid's axes.
        moving: The axes ``M`` scaled about the centre.
        box: Per axis, its range ``(lo, hi)`` (laid out on the pass's grid): the moving axes' boxes ``B_i``, the
            free axes' ranges; an axis with ``lo == hi`` is a point.
        centre: Per axis, the centre ``x_s`` (laid out as ``box``; inside the moving axes' boxes).
        last: Per moving axis, the caller's enclosure over the whole range (the last slice, ``t_K = 1``). An axis
            without one is left out.
        points: The point pass's values of the operands of poles at ``centre`` (:func:`opgraph.dcg.taylor.jets`'
            ``keep_points``), for the passes that centre; None: those passes run their own point pass.
        affine: Also the affine enclosures (with :data:`AFFINE`).
        slices: ``K`` (default :data:`SLICES`); 1 returns ``last``.

    Returns:
        Per moving axis with a ``last`` enclosure, an enclosure of its ``gamma_i`` (never wider than ``last``).
    """
    from opgraph.dcg import affgrad, taylor

    k = SLICES if slices is None else int(slices)
    moving = [a for a in moving if a in last]
    if k <= 1 or not moving:
        return {a: last[a] for a in moving}
    ts = fractions(k)
    free = [a for a in axes if a not in moving and not np.array_equal(box[a][0], box[a][1])]
    lo_sum: dict[int, Any] = {a: 0.0 for a in moving}
    hi_sum: dict[int, Any] = {a: 0.0 for a in moving}
    size: dict[int, Any] = {a: 0.0 for a in moving}
    prev = 0.0
    check = True  # the one-seed pass first, until it stops on a centring (the larger boxes would stop it too)
    with np.errstate(all="ignore"):
        for j, t in enumerate(ts):
            w = t - prev
            prev = t
            if j == k - 1:
                got = dict(last)
            else:
                bk = {a: (scaled(box[a], centre[a], t) if a in moving else box[a]) for a in axes}
                use_af = affine and AFFINE
                got = {}
                if INTERVAL or not use_af:
                    got, check = _interval(graph, output, axes, moving, free, bk, centre, points, check)
                if use_af:
                    af = affgrad.gradients(graph, output, axes, bk, moving)
                    got = {
                        a: (taylor.meet(got[a], af.get(a)) if a in got else af[a])
                        for a in moving
                        if a in got or a in af
                    }
            for a in moving:
                g = got.get(a, (np.full((), -np.inf), np.full((), np.inf)))
                glo, ghi = (np.asarray(x, dtype=float) for x in g)
                lo_sum[a] = lo_sum[a] + w * glo
                hi_sum[a] = hi_sum[a] + w * ghi
                size[a] = size[a] + w * (np.abs(glo) + np.abs(ghi))
        out = {}
        for a in moving:
            pad = (k + 2) * _EPS * size[a]
            lo = np.where(np.isnan(lo_sum[a]), -np.inf, lo_sum[a] - pad)
            hi = np.where(np.isnan(hi_sum[a]), np.inf, hi_sum[a] + pad)
            out[a] = taylor.meet(last[a], (lo, hi))
    return out


#: Whether the sub-box slope remainder also takes the affine ray form (:func:`affine_ray`: the linear part of the
#: affine gradient forms integrated along the ray exactly), the smaller kept per sub-box.
EXACT = True
#: Slices of the affine ray form: the forms over the sub-box scaled by ``k / K`` (``K - 1`` more affine passes with
#: the moving axes seeded; 1: the sub-box's own forms only, no extra pass).
EXACT_SLICES = 1


#: CPU of one extra slice of the affine ray form (an affine pass over the sub-boxes with the moving axes seeded) as a
#: share of the sub-box pass (measured 0.3 on piston's walk plan, 1.1 without the walk, 0.6 on Borehole's whole call).
SLICE_COST = 0.8


def pass_factor() -> float:
    """The sub-box pass's predicted CPU per piece relative to the pass without this module's extra passes."""
    if not ENABLED.get():
        return 1.0
    extra = SLICE_COST * max(EXACT_SLICES - 1, 0) if EXACT else 0.0
    return 1.0 + extra + SLICE_COST * max(SLICES - 1, 0) * (2.0 if AFFINE else 1.0)


def ray_forms(
    graph: Any,
    output: int,
    axes: Sequence[int],
    moving: Sequence[int],
    box: dict[int, Interval],
    centre: dict[int, np.ndarray],
    whole: Mapping[int, Any],
    slices: int | None = None,
) -> list[tuple[float, float, dict[int, Any], dict[int, Interval]]]:
    """The affine ray form's slices: ``(t_{k-1}, t_k, forms over B^k, B^k)``, the last one the sub-box's ``whole``."""
    from opgraph.dcg import affgrad

    k = EXACT_SLICES if slices is None else int(slices)
    out = []
    prev = 0.0
    for j, t in enumerate(fractions(max(k, 1))):
        if j == max(k, 1) - 1:
            out.append((prev, 1.0, dict(whole), box))
        else:
            bk = {a: (scaled(box[a], centre[a], t) if a in moving else box[a]) for a in axes}
            forms: dict[int, Any] = {}
            affgrad.gradients(graph, output, axes, bk, list(moving), forms)
            out.append((prev, t, forms, bk))
        prev = t
    return out


def ray_coefficients(
    moving: Sequence[int],
    slices: Sequence[tuple[float, float, Mapping[int, Any], Mapping[int, Interval]]],
    centre: Mapping[int, np.ndarray],
) -> dict[int, tuple[Interval, dict[int, Any]]]:
    """Per moving axis ``i`` with a form on every slice: ``C_i +- R_i`` (padded) and ``Q_ij`` per axis ``j``.

    :func:`affine_ray`'s notation; ``Q_ij`` is computed in floating point (the caller pads its products).
    """
    from opgraph.dcg import affine as af

    mv = set(moving)
    out: dict[int, tuple[Interval, dict[int, Any]]] = {}
    halves: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for i in moving:
            if not all(i in sl[2] for sl in slices):
                continue
            val: Any = 0.0
            scale: Any = 0.0
            rad: Any = 0.0
            q: dict[int, Any] = {}
            n_ops = 0
            for n, (t0, t1, forms, bk) in enumerate(slices):
                w = t1 - t0
                c0, coef, r = forms[i]
                val = val + w * np.asarray(c0, dtype=float)
                scale = scale + w * np.abs(c0)
                rad = rad + w * np.asarray(r, dtype=float)
                n_ops += len(coef) + 2
                for j, aj in coef.items():
                    if (n, j) not in halves:
                        halves[(n, j)] = af.half_widths(*(np.asarray(x, dtype=float) for x in bk[j]))
                    m, h = halves[(n, j)]
                    t = aj * ((centre[j] - m) / h)
                    val = val + w * t
                    scale = scale + w * np.abs(t)
                    sj = 0.5 * (t1 * t1 - t0 * t0) if j in mv else w
                    q[j] = q.get(j, 0.0) + sj * (aj / h)
            pad = (n_ops + 4) * _EPS * scale + 4 * _EPS * np.abs(rad) + 1e-300
            out[i] = ((val - rad - pad, val + rad + pad), q)
    return out


def affine_ray(
    axes: Sequence[int],
    moving: Sequence[int],
    slices: Sequence[tuple[float, float, Mapping[int, Any], Mapping[int, Interval]]],
    centre: Mapping[int, np.ndarray],
    e1: Mapping[int, np.ndarray],
    m2: Mapping[int, np.ndarray],
) -> tuple[dict[int, Interval], Any]:
    """The affine ray form on a sub-box: per moving axis an enclosure of its constant part, and the pairs' total.

    On slice ``k`` of the ray (``t`` in ``(t_{k-1}, t_k]``, the point in ``B^k``) ``df/dx_i`` lies within ``A^k_i(x)
    +- r^k_i``, ``A^k_i(x) = c^k_i + sum_j a^k_ij (x_j - m^k_j) / h^k_j`` (the affine gradient form over ``B^k``,
    :func:`opgraph.dcg.affgrad.gradients`; ``m^k_j, h^k_j`` the centre and half-width of ``B^k``'s range ``j``). Along
    the ray from ``y`` (module docstring) ``x_j = x_sj + t e_j`` on a moving axis and ``X_j = x_sj + e_j`` on the others,
    so integrating over the slices

        gamma_i = sum_k w_k A^k_i(x_s) + sum_j Q_ij e_j + rho_i,   |rho_i| <= sum_k w_k r^k_i,

    with ``w_k = t_k - t_{k-1}`` and ``Q_ij = sum_k s_kj a^k_ij / h^k_j``, ``s_kj = (t_k^2 - t_{k-1}^2) / 2`` on a
    moving axis (``int t dt``), ``w_k`` on the others. So ``sum_{i in M} (gamma_i - c_i) e_i = sum_i (C_i - c_i)
    e_i + sum_{i, j} Q_ij e_i e_j + sum_i rho_i e_i`` (``C_i`` the constant part) and, the coordinates being
    independent on the sub-box, ``E|sum_{i, j} Q_ij e_i e_j| <= sum_{i != j} |Q_ij| E|e_i| E|e_j| + sum_i |Q_ii| E
    e_i^2``. With one slice (the sub-box's own forms) ``Q_ij = a_ij / (2 h_j)`` on the moving axes: a quarter of
    the affine hull's ``|a_ij|`` where ``E|e_j| = h_j / 2`` (a centred uniform piece), and ``r_i`` is paid as before;
    with ``K`` slices the remainders (second order in the box's width) are averaged over the scaled boxes too.

    Args:
        axes: The grid's axes.
        moving: The axes of the last segment (the others are left to the caller).
        slices: ``(t_{k-1}, t_k, forms, box)`` per slice (:func:`ray_forms`): per axis its gradient's affine form
            ``(c, {j: a_j}, r)`` over ``box`` (:data:`opgraph.dcg.affgrad.Form`).
        centre: Per axis, ``x_s``.
        e1: Per axis, ``E|e_j|`` on the piece (upper bounds).
        m2: Per axis, ``E e_j^2`` on the piece (upper bounds, ``inf`` where unknown: ``max|e_j| E|e_j|`` then).

    Returns:
        Per moving axis with a form on every slice, the interval ``C_i +- (sum_k w_k r^k_i + rounding)``, and the
        pairs' total (an array; NaN or ``inf`` where unknown), for :class:`opgraph.dcg.subcentre.Accumulator`
        (``add``, ``spread``).
    """
    g: dict[int, Interval] = {}
    quad: Any = 0.0
    box = slices[-1][3]
    with np.errstate(all="ignore"):
        for i, (gi, q) in ray_coefficients(moving, slices, centre).items():
            g[i] = gi
            for j, qij in q.items():
                if j == i:
                    lo, hi = (np.asarray(x, dtype=float) for x in box[j])
                    reach = np.maximum(hi - centre[j], centre[j] - lo) * e1[j]
                    sq = np.fmin(m2[j], reach)
                else:
                    sq = e1[i] * e1[j]
                quad = quad + np.where(sq > 0, np.abs(qij) * sq, 0.0)  # e_i e_j = 0 almost surely where E|e| = 0
        # the pairs' rounding: a few operations per term, relative
        quad = np.asarray(quad, dtype=float) * (1 + 1e-12)
    return g, quad
