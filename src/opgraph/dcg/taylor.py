"""Second-order Taylor bound per grid box: the gradient at the atom, a Hessian enclosure over the box.

The engine's cellwise bound multiplies each input's cell transport ``E[|X_i - x'_i|; cell]`` by the *largest*
partial derivative on the part of the box its walk visits. Where the output is a sum of many smooth terms whose
derivatives cancel (a tanh MLP: ``df/dx_i = sum_j w2_j w1_ji sech^2(p_j)``, sixteen terms of both signs), the
interval enclosure of that derivative adds the terms' widths and loses the cancellation; on a box with an
unbounded (tail) cell it also spans the whole saturation range. This module bounds the same quantity from a
second-order expansion at the box's atom ``x'`` instead:

    f(X) - f(x') = g . d + 1/2 d^T H(xi) d,   d = X - x',   g = grad f(x'),   xi on the segment [x', X],

with ``g`` enclosed by interval forward mode at the atom (a degenerate box: tight, and the cancellation between
the terms is exact) and ``H`` by second-order interval forward mode over the whole box (valid for every ``xi`` in
it: the box is convex and contains ``x'``). On a box the coordinates ``X_i`` are independent (a product of cells
of independent inputs), so with the per-cell moments ``E_i = E[|d_i| | cell]``, ``b_i >= |E[d_i | cell]|`` and
``M_i >= E[d_i^2 | cell]`` (closed forms of the quantizer) and ``g = c + (g - c)``, ``|g_i - c_i| <= r_i``
(midpoint and radius of the enclosure):

    E[|f(X) - f(x')| | box] <= min( sqrt(sum_i c_i^2 M_i) + sum_i |c_i| b_i, sum_i |c_i| E_i )
                               + sum_i r_i E_i
                               + 1/2 sum_i |H_ii| M_i + sum_{i<k} |H_ik| E_i E_k,

(``E(sum_i c_i d_i)^2 = sum_i c_i^2 Var(d_i) + (sum_i c_i E d_i)^2``, Jensen and ``sqrt(u + v^2) <= sqrt(u) +
v``; ``E|d_i d_k| = E_i E_k`` for ``i != k``; the square-root form is not used on a box where a square
underflowed). The computed value ``V'`` at the atom enters through the width of its enclosure ``[v_lo, v_hi]`` (the
exact ``f(x')`` lies in it): ``+ max(V' - v_lo, v_hi - V')``. The linear part is first order in the cell size
but keeps the cancellation between the terms; the remainder is second order, and finite on unbounded cells where
the Hessian is bounded (``tanh``, ``sin``, ``sigmoid`` of affine forms of Normal inputs), since the Normal
tails' ``E[d^2]`` are closed forms.

Supported: graphs made of the binary ops of :data:`SECOND_BINARY` (``add sub mul div``, ``pow`` with a constant or
a variable exponent, ``hypot``, ``maximum minimum``), the identity-like ops, constants, and the unary ops of
:data:`SECOND` (``tanh sigmoid exp sin cos sinh cosh square log arctan erf``, ``sqrt rsqrt cbrt reciprocal tan
arcsinh arcsin arccos arctanh expm1 exp2 log1p log2 log10``, and the kinks and jumps ``abs relu sign floor ceil
rint``). Any other op (``where``, a comparison, ``mod`` ...) makes :func:`box_bound` return ``None``. The rules stay
valid on every box: where the box reaches a pole (``sqrt``, ``reciprocal``, a fractional or negative power at 0,
``log`` at 0, a non-positive base of a variable power) or straddles a kink or jump (an undecided ``maximum``,
``abs`` across 0, ``floor`` across an integer), the second-derivative enclosure is the whole line and that box's
bound is infinite, so the engine keeps its own bound there; where a kink is decided on the box the op is affine
(or constant) on it and its second derivative is 0.

Value enclosures of a divisor, a power's base or a ``log`` / ``sqrt`` argument that reach 0 (a reused variable:
``sqrt(A**2 + B) - A``, piston's volume) are intersected node by node with their mean-value form ``f(x') + sum_i g_i [lo_i - x'_i, hi_i - x'_i]`` (``g_i`` the node's gradient
enclosure over the box, ``f(x')`` from the point pass, run in the same loop; :data:`CENTRED`), so a pole the
function does not have
(``1 / V**2`` with ``V``'s plain enclosure containing 0) does not make the downstream Hessian infinite where the box
is narrow enough. Grids larger than :data:`MAX_WORK` Hessian entries are bounded in slices of the first axis
(at most :data:`MAX_SLICES`; bounded memory, the same per-box values). On grids of :data:`PROBE_MIN_BOXES` boxes
or more, a probe sub-grid decides first whether the whole pass can pay (:func:`box_bound`, ``probe``).

**Slope (mean-value) remainder** (:func:`_slope`, :data:`SLOPE`): the radii and the Hessian remainder together bound
``E[|f(X) - f(x') - c . d| | box]``; so does ``sum_i mag(G_i - c_i) E|d_i|`` with ``G_i`` an enclosure of ``df/dx_i``
over the box (``f(X) - f(x') = grad f(xi) . d``), or over the thinner boxes of a one-coordinate-at-a-time walk
(:data:`SLOPE_WALK`), taken both in interval and in affine arithmetic (:mod:`opgraph.dcg.affgrad`,
:data:`SLOPE_AFFINE`), intersected. Per box the smaller of the two forms is used, in the point-mass bound and in the
box-linear model's ``rest``. No Hessian enclosure is needed, so a chain whose second-derivative enclosures blow up
(piston: 412x at one quotient) can still get a second-order remainder. Where the box-linear mixture asked for
linear models (``laws`` given) and the whole-box remainder is still large against the linear term, the slope form is
also taken over sub-boxes (each cell cut into equal-mass pieces; :mod:`opgraph.dcg.subslope`), within a CPU budget.

**Quotients** (branch hess-tight): a ``div`` node's Hessian enclosures are intersected with
the quotient form ``(H_u - q H_w - g_w g_q^T - g_q g_w^T) / w`` (:mod:`opgraph.dcg.hessdiv`, switch
``hess_quotient``, on). A Hessian read off the affine gradient forms was measured and not merged (docs/dcg.md).

**The mixture's slope work, gated** (:data:`MIX_GATE`): where the box-linear mixture's larger work caps would run
the walk or the affine gradients beyond the default caps, the probe also compares the mixture's predicted cost with
the engine's own per-box bound (``engine_bound``): where it cannot pay, the pass runs as without the mixture; else
it may skip the Hessian enclosures and some walk passes that the probe finds idle (never a box's bound above the
pass without the mixture; docs/dcg.md, "The mixture's slope work").

**Lean pass** (``box_bound(..., lean=True)``, long programs: :mod:`opgraph.dcg.longmix`): the point pass and the
slope form's affine walk only (no box interval pass, Hessian enclosures, interval walk passes or probe), stopped
after any walk step whose terms so far leave the mixture nothing to gain (:data:`LEAN_MIN_GAIN`).

The engine keeps per box the smaller of this and its cellwise bound (:func:`opgraph.dcg.engine.evaluate_output`,
after the sub-cell pass; per chunk in :mod:`opgraph.dcg.chunks`), so the bound never grows; it skips the pass
where boxes of finite cells carry less than ``opgraph.dcg.engine.TAYLOR_MIN_FINITE`` of the mass (a cost guard).
``ENABLED`` (a ContextVar, default on) switches it off; it travels to workers with the other switches
(:mod:`opgraph.dcg.switches`).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

#: Whether the engine tries the second-order Taylor bound (``ENABLED.set(False)`` turns it off for the context).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_taylor", default=True)

#: Most Hessian entries times grid elements one evaluation may hold per node (memory guard: 2 arrays of 8 bytes).
MAX_WORK = 2**25
#: Most slices of the first axis a grid over :data:`MAX_WORK` is cut into (beyond that the pass is skipped: cost).
MAX_SLICES = 4
#: The probe (cost guard): per axis the cells at these fractions of its cell count form a sub-grid (at most 2 ** k
#: boxes) on which the bound is tried first, against the engine's own per-box bound.
PROBE_AT = (0.25, 0.75)
#: The whole pass runs only where the Taylor bound saves at least this share of the first-order yardstick on the
#: probe's boxes. The yardstick is looser than the engine's own bound, so the share overstates the real gain;
#: measured (probe share -> real gain of the whole pass): WingWeight 0.44 -> 38 %, OTL (8 atoms) 0.55 -> 27 %,
#: Friedman 0.33 -> 25 %, Dette8D 0.29 -> 14 %, MLP (16 atoms) 0.47 -> 38 %, the 6-input wing-like product of
#: tests/dcg/test_taylor.py 0.19 -> 17 %; piston's reassociated graph at 7 atoms 0.031 -> 0.05 % for 29 CPU s,
#: RobotArm and DampedOscillator 0.
PROBE_MIN_GAIN = 0.1
#: Grids with fewer boxes go straight to the whole pass (as cheap as the probe).
PROBE_MIN_BOXES = 4096
#: Whether the box pass intersects every node's value enclosure with its mean-value form (:func:`jets`).
CENTRED = True
#: Whether the linear term uses the exact ``E|X + r|`` of a coordinate uniform on its cell (:func:`_uniform_linear`).
UNIFORM_LINEAR = True
#: Input laws (class names) that are unimodal, so on every cell: their linear term uses the convex order below a
#: uniform law (:func:`_uniform_linear`). Beta (U-shaped for shapes below 1) and ``from_scipy`` laws are not listed.
UNIMODAL = frozenset({"Normal", "LogNormal", "Exponential", "Gamma"})
#: Whether the remainder also takes the mean-value (slope) form ``sum_i mag(G_i - c_i) E|d_i|`` per box, the smaller
#: of it and the Hessian form kept (:func:`_slope`).
SLOPE = True
#: Whether the slope form also walks the axes one at a time (gradient enclosures over thinner boxes; k more
#: one-tangent passes over the grid, :func:`_slope`).
SLOPE_WALK = True
#: Whether the walk takes the axes in decreasing order of their whole-box slope terms (median over the grid), so that
#: the largest terms get the thinnest boxes; else in the grid's order.
WALK_ORDER = True
#: Whether the slope form's gradient enclosures are also taken in affine arithmetic (:mod:`opgraph.dcg.affgrad`),
#: intersected with the interval ones.
SLOPE_AFFINE = True
#: Whether each walk step first tries the interval pass with its own axis alone seeded and no point pass (the same
#: gradient enclosure where no value enclosure is centred; :func:`jets`' ``pole_check``), before the pass with every
#: free axis seeded.
WALK_ONE_SEED = True
#: Whether the walk's interval passes reuse the box pass's point values at the atoms (the centring's ``f(x')``)
#: instead of repeating the point pass (:func:`jets`' ``points``; the same values).
WALK_POINTS = True
#: CPU guards, on the grid's boxes times the graph's nodes: the walk's extra interval passes run up to
#: :data:`WALK_MAX_WORK`, the affine gradients (about 6 us per box and node over the walk) up to
#: :data:`AFFINE_MAX_WORK`; both up to :data:`MIX_MAX_WORK` where the box-linear mixture asked for the linear models
#: (opt-in; the remainder is all it pays there). Measured: at 4 atoms piston's point-mass bound (6.4e5 box-nodes)
#: gains nothing from them for +4 CPU s (+1.8 s from the walk alone), WingWeight's nothing for +1.4 s; OTL's
#: (1e5) gains at 4 atoms, Borehole's (2.6e6) 2 %.
WALK_MAX_WORK = 2**19
AFFINE_MAX_WORK = 2**18
MIX_MAX_WORK = 2**25
#: Predicted CPU seconds per box-node of the walk and affine gradients under :data:`MIX_MAX_WORK` (measured about
#: 1.4e-6 on piston at 7 atoms, 2.7e-7 on Borehole's 8-atom target rounds, 2026-12-07): a ``target_w1`` call uses
#: the larger caps only where that fits its ``max_seconds`` (:func:`opgraph.dcg.boxlinear.affordable`).
MIX_SECONDS_PER_BOX_NODE = 1e-6
#: Whether the probe also decides, where the box-linear mixture asked for linear models and its larger work caps
#: (:data:`MIX_MAX_WORK`) would run the walk or the affine gradients beyond the default caps, whether that work can
#: pay: on the probe's boxes the mixture's predicted cost ``2 rest`` against the engine's own per-box bound
#: (:func:`box_bound`'s ``engine_bound``). Below :data:`MIX_MIN_GAIN` the pass runs as without the mixture (no
#: linear models: the engine keeps its point-mass answer, as with the switch off). Else, where the Hessian form
#: wins on none of the probe's boxes and the pass without the mixture would not run at all (its own probe, default
#: caps, under :data:`PROBE_MIN_GAIN`), the whole pass skips the Hessian enclosures (the slope form alone; the
#: Hessian form counts as infinite); and (opt-in, :data:`WALK_TOL`) walk passes whose loss on the probe's terms
#: stays within a share are skipped. Each only changes which sound bound is computed, never its validity, and none
#: makes a box's bound larger than the pass without the mixture gives it (that pass has no walk or affine
#: gradients on these grids, and the Hessian form is dropped only where that pass does not run).
MIX_GATE = True
#: Least share of the engine's bound on the probe's boxes that the mixture must be predicted to save
#: (``sum max(0, B - 2 w rest) / sum B``) for its larger slope work to run. Measured on piston at 6 atoms
#: (2026-12-07): the original graph 0.0 (whole grid 0.0001; the mixture wins on no box, 13 CPU s of walk for
#: nothing), the cancellation rewrite 0.127 (whole grid 0.116; the mixture's answer 0.118 -> 0.114).
MIX_MIN_GAIN = 0.02
#: Under the gate (:data:`MIX_GATE`), if not None: walk passes are skipped on the whole grid while, on the probe's
#: boxes, the walk steps' terms (every axis but the last) grow by at most this share of their total: per step its
#: interval or its affine pass (at most one), the smallest growth per unit of cost first (an affine pass counts twice
#: an interval one). Off (None) by default: the probe's terms do not predict the whole grid's. Measured 2026-12-07:
#: piston's cancellation rewrite at 6 atoms, the interval passes (3.0 of the walk's 9.7 CPU s) tighten the affine
#: terms by 0-7 % per axis, and skipping those within 5 % cost the answer 0.005 % (0.710915 -> 0.71095 std, 88 -> 26
#: CPU s with the other changes, about 3 s of it this one); Borehole at 4 atoms, 0.336351 -> 0.3392 / 0.3392 /
#: 0.3367 std at shares 0.01 / 0.001 / 0 (10.1 -> 8.6 CPU s), a loss the probe did not see.
WALK_TOL: float | None = None
#: Most axes (Hessian entries grow as k (k + 1) / 2).
MAX_AXES = 12
#: Squares below this count as underflowed (the square-root form is not used on that box).
_NORMAL = 1e-280

Interval = iv.Interval
#: ``f''`` enclosure of a unary op from ``(u, v, d)``: the operand's, the value's and ``f'``'s enclosures.
SecondRule = Callable[[Interval, Interval, Interval], Interval | None]


def _zero(u: Interval, v: Interval, d: Interval) -> Interval | None:
    return None


def _tanh2(u: Interval, v: Interval, d: Interval) -> Interval:
    # tanh'' = -2 tanh sech^2, with tanh(x) in v and sech^2(x) = tanh'(x) in d for x in u.
    return iv.iscale(-2.0, iv.imul(v, d))


def _sigmoid2(u: Interval, v: Interval, d: Interval) -> Interval:
    # s'' = s (1 - s) (1 - 2 s) = s' (1 - 2 s).
    return iv.imul(d, iv.isub(iv.const(1.0, v[0]), iv.iscale(2.0, v)))


def _self2(u: Interval, v: Interval, d: Interval) -> Interval:
    return v  # exp'' = exp, sinh'' = sinh, cosh'' = cosh


def _neg_self2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.ineg(v)  # sin'' = -sin, cos'' = -cos


def _square2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.const(2.0, np.asarray(u[0], dtype=float))


def _log2nd(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.ineg(iv.isq(d))  # log'' = -1/x^2 = -(log')^2


def _arctan2nd(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(-2.0, iv.imul(u, iv.isq(d)))  # arctan'' = -2x / (1 + x^2)^2 = -2 x (arctan')^2


def _erf2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(-2.0, iv.imul(u, d))  # erf'' = -2 x erf'


def _power2(c: float) -> SecondRule:
    """``(x ** c)'' = c (c - 1) x ** (c - 2)`` (``sqrt``: 0.5, ``rsqrt``: -0.5).

    Infinite where the box reaches 0 with ``c < 2`` non-integer or negative, and on negative bases of a fractional
    power (:func:`opgraph.dcg.intervals.ipow_const`).
    """
    k = c * (c - 1.0)

    def rule(u: Interval, v: Interval, d: Interval) -> Interval:
        return _pow_const2(u, c, k)

    return rule


def _pow_const2(u: Interval, c: float, k: float) -> Interval:
    lo = np.asarray(u[0], dtype=float)
    if k == 0.0:  # c = 0 or 1: linear (or constant)
        return iv.const(0.0, lo)
    if c == 2.0:
        return iv.const(2.0, lo)
    return iv.iscale(k, iv.ipow_const(u, c - 2.0))


def _cbrt2(u: Interval, v: Interval, d: Interval) -> Interval:
    # cbrt'' = -2/9 x^(-5/3) = -2/9 cbrt(x) / x^2 (defined for x < 0 too; unbounded where the box reaches 0).
    return iv.iscale(-2.0 / 9.0, iv.imul(v, iv.irecip(iv.isq(u))))


def _recip2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(2.0, iv.ipow_const(v, 3.0))  # (1/x)'' = 2 / x^3 = 2 (1/x)^3


def _tan2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(2.0, iv.imul(v, d))  # tan'' = 2 tan (1 + tan^2) = 2 tan tan'


def _arcsinh2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.ineg(iv.imul(u, iv.ipow_const(d, 3.0)))  # arcsinh'' = -x (1 + x^2)^(-3/2) = -x (arcsinh')^3


def _arcsincos2(u: Interval, v: Interval, d: Interval) -> Interval:
    # arcsin'' = x (1 - x^2)^(-3/2) = x (arcsin')^3; arccos' = -arcsin', so arccos'' = -x (1 - x^2)^(-3/2) = x (arccos')^3.
    return iv.imul(u, iv.ipow_const(d, 3.0))


def _arctanh2(u: Interval, v: Interval, d: Interval) -> Interval:
    return iv.iscale(2.0, iv.imul(u, iv.isq(d)))  # arctanh'' = 2 x / (1 - x^2)^2 = 2 x (arctanh')^2


def _deriv2(u: Interval, v: Interval, d: Interval) -> Interval:
    return d  # expm1'' = exp = expm1'


def _scaled_self2(c: float) -> SecondRule:
    def rule(u: Interval, v: Interval, d: Interval) -> Interval:
        return iv.iscale(c, d)  # exp2'' = ln 2 * exp2'

    return rule


def _log_like2(c: float) -> SecondRule:
    """``f' = 1 / (c x)`` (or ``1 / (1 + x)`` for log1p, ``c = 1``): ``f'' = -c f'^2``."""

    def rule(u: Interval, v: Interval, d: Interval) -> Interval:
        return iv.iscale(-c, iv.isq(d))

    return rule


def _decided(ok: np.ndarray) -> Interval:
    """0 where the kink / jump is decided on the box (the op is affine or constant there), else the whole line."""
    return np.where(ok, 0.0, -np.inf), np.where(ok, 0.0, np.inf)


def _kink2(u: Interval, v: Interval, d: Interval) -> Interval:
    # abs, relu: affine on a box that does not straddle 0 (one-sided boxes [0, hi] / [lo, 0] included).
    return _decided((np.asarray(u[0]) >= 0) | (np.asarray(u[1]) <= 0))


def _flat2(u: Interval, v: Interval, d: Interval) -> Interval:
    # sign, floor, ceil, rint: constant on a box where the interval rule's derivative is exactly 0 (the value
    # enclosure is one point; the widened value itself is not), else a jump.
    return _decided((np.asarray(d[0]) == 0) & (np.asarray(d[1]) == 0))


#: Second-derivative enclosures of the supported unary ops from ``(u, v, d)`` (the operand's, the value's and the
#: first derivative's enclosures over the box). ``None`` from a rule: a linear op, no second-order term. Kinks and
#: jumps (``abs relu sign floor ceil rint``) have 0 on boxes where they are decided and the whole line elsewhere
#: (the box keeps the engine's bound). Unbounded enclosures where the box reaches a pole (``sqrt`` at 0,
#: ``reciprocal`` at 0, ``log`` at 0, ``tan`` at pi/2) do the same.
SECOND: dict[str, SecondRule] = {
    "neg": _zero,
    "identity": _zero,
    "copy": _zero,
    "contiguous": _zero,
    "convert": _zero,
    "tanh": _tanh2,
    "sigmoid": _sigmoid2,
    "exp": _self2,
    "sinh": _self2,
    "cosh": _self2,
    "sin": _neg_self2,
    "cos": _neg_self2,
    "square": _square2,
    "log": _log2nd,
    "arctan": _arctan2nd,
    "erf": _erf2,
    "sqrt": _power2(0.5),
    "rsqrt": _power2(-0.5),
    "cbrt": _cbrt2,
    "reciprocal": _recip2,
    "tan": _tan2,
    "arcsinh": _arcsinh2,
    "arcsin": _arcsincos2,
    "arccos": _arcsincos2,
    "arctanh": _arctanh2,
    "expm1": _deriv2,
    "exp2": _scaled_self2(math.log(2.0)),
    "log1p": _log_like2(1.0),
    "log2": _log_like2(math.log(2.0)),
    "log10": _log_like2(math.log(10.0)),
    "abs": _kink2,
    "relu": _kink2,
    "sign": _flat2,
    "floor": _flat2,
    "ceil": _flat2,
    "rint": _flat2,
}

#: Second partials of a binary op over the box from ``(u, w, v)`` (the operands' and the value's enclosures), by
#: operand pair (0: ``u``, 1: ``w``; both orders of a mixed pair); missing pairs are zero.
BinaryRule = Callable[[Interval, Interval, Interval], dict[tuple[int, int], Interval]]


def _mul2(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
    one = iv.const(1.0, np.asarray(u[0], dtype=float))
    return {(0, 1): one, (1, 0): one}


def _div2(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
    r = iv.irecip(w)
    r2 = iv.isq(r)
    uw = iv.ineg(r2)  # d2(u/w)/du dw = -1/w^2
    return {(0, 1): uw, (1, 0): uw, (1, 1): iv.iscale(2.0, iv.imul(u, iv.imul(r2, r)))}  # 2 u / w^3


def _constant_exponent(w: Interval) -> float | None:
    lo, hi = (np.asarray(x, dtype=float) for x in w)
    if lo.size and np.all(lo == hi) and np.all(lo == lo.reshape(-1)[0]) and np.isfinite(lo.reshape(-1)[0]):
        return float(lo.reshape(-1)[0])
    return None


def _pow2(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
    """Second partials of ``u ** w``.

    ``c (c - 1) u^(c - 2)`` for a constant exponent ``c`` (any sign of ``u`` for an integer ``c``); for a variable
    one (``u > 0``) also ``d2/du dw = u^(w - 1) (1 + w ln u)`` and ``d2/dw2 = u^w (ln u)^2``.
    """
    c = _constant_exponent(w)
    if c is not None:
        return {(0, 0): _pow_const2(u, c, c * (c - 1.0))}
    lu = iv._ilog(u)
    pm1 = iv._mono(np.exp, iv.imul(iv.isub(w, iv.point(1.0)), lu))  # u^(w-1)
    pm2 = iv._mono(np.exp, iv.imul(iv.isub(w, iv.point(2.0)), lu))  # u^(w-2)
    uu = iv.imul(iv.imul(w, iv.isub(w, iv.point(1.0))), pm2)
    uw = iv.imul(pm1, iv.iadd(iv.point(1.0), iv.imul(w, lu)))
    ww = iv.imul(v, iv.isq(lu))
    bad = ~(np.asarray(u[0]) > 0)  # a non-positive base: u ** w is not smooth (or not real) there

    def guard(x: Interval) -> Interval:
        return np.where(bad, -np.inf, x[0]), np.where(bad, np.inf, x[1])

    return {(0, 0): guard(uu), (0, 1): guard(uw), (1, 0): guard(uw), (1, 1): guard(ww)}


def _extreme2(op: str) -> BinaryRule:
    """``maximum`` / ``minimum``: 0 where one operand wins on the whole box (ties included), else the whole line."""

    def rule(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
        (al, ah), (bl, bh) = u, w
        ok = (al >= bh) | (bl >= ah)  # one operand >= the other everywhere on the box: f is that operand there
        z = _decided(np.asarray(ok))
        return {(0, 0): z, (0, 1): z, (1, 0): z, (1, 1): z}

    return rule


def _hypot2(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
    # r = hypot(a, b): r_aa = b^2 / r^3, r_ab = -a b / r^3, r_bb = a^2 / r^3 (unbounded where the box reaches 0).
    r3 = iv.irecip(iv.ipow_const(v, 3.0))
    ab = iv.ineg(iv.imul(iv.imul(u, w), r3))
    return {(0, 0): iv.imul(iv.isq(w), r3), (0, 1): ab, (1, 0): ab, (1, 1): iv.imul(iv.isq(u), r3)}


def _linear2(u: Interval, w: Interval, v: Interval) -> dict[tuple[int, int], Interval]:
    return {}


#: Binary ops with a second-order rule.
SECOND_BINARY: dict[str, BinaryRule] = {
    "add": _linear2,
    "sub": _linear2,
    "mul": _mul2,
    "div": _div2,
    "pow": _pow2,
    "maximum": _extreme2("maximum"),
    "minimum": _extreme2("minimum"),
    "hypot": _hypot2,
}
#: Binary ops with a second-order rule (the keys of :data:`SECOND_BINARY`).
BINARY = frozenset(SECOND_BINARY)


def supported(graph: Any, output: int) -> bool:
    """Whether every node of ``graph`` up to ``output`` has a second-order rule here."""
    return all(n.op in ("input", "const") or n.op in SECOND or n.op in BINARY for n in graph.nodes if n.id <= output)


class _WouldCentre(Exception):
    """Raised by :func:`jets` with ``pole_check`` where a value enclosure would be centred."""


class _Jet:
    """A node's value enclosure, gradient enclosures by axis and Hessian enclosures by axis pair ``(i, k)``."""

    __slots__ = ("g", "h", "v")

    def __init__(self, v: Interval, g: dict[int, Interval], h: dict[tuple[int, int], Interval]) -> None:
        self.v, self.g, self.h = v, g, h


def _acc(d: dict[Any, Interval], key: Any, x: Interval) -> None:
    d[key] = x if key not in d else iv.iadd(d[key], x)


def _node(n: Any, ops: list[_Jet], hess: bool) -> _Jet:
    args = [o.v for o in ops]
    v, parts = iv.rule(n.op, args, n.attrs)
    g: dict[int, Interval] = {}
    h: dict[tuple[int, int], Interval] = {}
    for o, p in zip(ops, parts, strict=True):
        for i, gi in o.g.items():
            _acc(g, i, iv.imul(p, gi))
        if hess:
            for ik, hik in o.h.items():
                _acc(h, ik, iv.imul(p, hik))
    if hess:
        if len(ops) == 1:
            sec = SECOND[n.op](args[0], v, parts[0])
            q = {} if sec is None else {(0, 0): iv.widen(*sec)}
        else:
            q = {ab: iv.widen(*x) for ab, x in SECOND_BINARY[n.op](args[0], args[1], v).items()}
        for (a, b), qab in q.items():
            ga, gb = ops[a].g, ops[b].g
            # H_ik = sum_ab q_ab g_ai g_bk; only i <= k is stored (H is symmetric: the terms with i > k are those
            # of H_ki, which the pairs with the indices in order already give in full).
            for i, gai in ga.items():
                for k, gbk in gb.items():
                    if i <= k:
                        _acc(h, (i, k), iv.imul(qab, iv.imul(gai, gbk)))
    if n.op == "div" and len(ops) == 2 and ops[1].g and _quotient_rule():
        g, h = _quotient(ops, args[1], v, g, h, hess)
    return _Jet(
        iv.widen(*v),
        {i: iv.widen(*x) for i, x in g.items()},
        {ik: iv.widen(*x) for ik, x in h.items()},
    )


def _quotient_rule() -> bool:
    """Whether ``div`` also takes the quotient-form derivative enclosures (:mod:`opgraph.dcg.hessdiv`)."""
    from opgraph.dcg import hessdiv

    return hessdiv.ENABLED.get()


def _quotient(
    ops: list[_Jet],
    w: Interval,
    q: Interval,
    g: dict[int, Interval],
    h: dict[tuple[int, int], Interval],
    hess: bool,
) -> tuple[dict[int, Interval], dict[tuple[int, int], Interval]]:
    """``q = u / w``'s Hessian enclosures intersected with their quotient form (:mod:`opgraph.dcg.hessdiv`).

    ``H_q = (H_u - q H_w - g_w g_q^T - g_q g_w^T) / w`` with ``q`` the node's own value enclosure and ``g_q`` its
    gradient enclosure intersected with ``(g_u - q g_w) / w``: each identity holds at every point of the box, so the
    interval evaluation encloses the same values as the chain rule's and the intersection is sound. The gradient
    enclosures returned are the chain rule's (unchanged: taking the tighter quotient form there too changed the
    sub-box walk's choices and loosened a piston-volume chain's bound, 0.00418 -> 0.00541; ``tests/dcg/test_subwalk.py``).
    """
    if not hess or not h:
        return g, h
    zero = (np.zeros(()), np.zeros(()))
    u_j, w_j = ops
    r = iv.irecip(w)
    gq = {}
    for i, gi in g.items():
        alt = iv.imul(iv.isub(u_j.g.get(i, zero), iv.imul(q, w_j.g.get(i, zero))), r)
        gq[i] = meet(gi, iv.widen(*alt))
    h2 = dict(h)
    for (i, k), hik in h.items():
        num = iv.isub(u_j.h.get((i, k), zero), iv.imul(q, w_j.h.get((i, k), zero)))
        cross = iv.iadd(iv.imul(w_j.g.get(i, zero), gq.get(k, zero)), iv.imul(gq.get(i, zero), w_j.g.get(k, zero)))
        alt = iv.imul(iv.isub(num, cross), r)
        h2[(i, k)] = meet(hik, iv.widen(*alt))
    return g, h2


def jets(
    graph: Any,
    output: int,
    cells: dict[int, Interval],
    hess: bool,
    centre: dict[int, np.ndarray] | None = None,
    point_out: list[_Jet] | None = None,
    centred: bool = True,
    seeds: Sequence[int] | None = None,
    pole_check: list[int] | None = None,
    points: dict[int, Interval] | None = None,
    keep_points: dict[int, Interval] | None = None,
) -> _Jet:
    """Forward-mode value / gradient (/ Hessian) enclosures of ``graph``'s last node.

    Args:
        graph: An :class:`opgraph.graph.Graph` whose nodes all have rules here (see :func:`supported`).
        output: The output node's id.
        cells: Per input node id (its axis), the interval of each cell (or of each atom, for the point pass), laid
            out to broadcast over the output's axes.
        hess: Also compute the Hessian enclosures (the box pass).
        centre: Per axis, a point of each cell (its atom), laid out as ``cells``. Given, the point pass (value and
            gradient enclosures at ``centre``) runs in the same loop, and (``centred``) the value enclosure of every
            operand of a pole at 0 (a divisor, a power's base, the argument of ``log``, ``sqrt`` ...) whose plain
            enclosure reaches 0 on some box is intersected with its mean-value form ``f(x') + sum_i g_i [lo_i - x'_i, hi_i - x'_i]``
            (``g_i``: the node's gradient enclosure over the box, ``f(x')``: the point pass's value enclosure): a
            variable used twice (``sqrt(A**2 + B) - A``) no longer widens the enclosure to a pole that the function
            does not have, and the downstream derivative enclosures shrink with it.
        point_out: With ``centre``, receives the point pass's jet of the output.
        centred: Whether to intersect with the mean-value forms (with ``centre``).
        seeds: If given, only these input axes carry a gradient (the others count as constants in the derivative
            enclosures: only sound where their cells are single points, or for the partials of the seeded axes
            with the other coordinates fixed).
        pole_check: If given (with ``centre`` and ``centred``), the pass runs without the point pass and without
            centring, and stops (raises :class:`_WouldCentre`, the id of the node appended to ``pole_check``) at the
            first operand of a pole whose plain enclosure reaches 0 on some box: where it returns, no value enclosure would
            have been centred, so its gradient enclosures of the seeded axes are those of the full pass with any
            superset of ``seeds`` (the value enclosures, and with them every partial, do not depend on the seeds
            where no centring applies), bit for bit.
        points: With ``centre`` and ``centred``: the point pass's value enclosures of every operand of a pole (as
            ``keep_points`` gives them for the same ``centre``); the point pass is then skipped (its values depend
            on ``centre`` alone, not on ``cells`` or ``seeds``: the same centring, bit for bit). Not with
            ``point_out``.
        keep_points: With ``centre`` and ``centred``: receives the point pass's value enclosures of the operands of
            poles (for ``points`` of later passes at the same ``centre``).
    """
    last = graph.last_uses()
    poles = _pole_operands(graph) if centre is not None and centred else set()
    vals: dict[int, _Jet] = {}
    pts: dict[int, _Jet] = {}
    delta: dict[int, Interval] = {}
    if pole_check is not None and centre is not None and centred:
        checks, centre = poles, None  # no point pass: it serves only the centring, which must not happen here
        poles = set()
    else:
        checks = set()
    if centre is not None:
        delta = {a: (cells[a][0] - centre[a], cells[a][1] - centre[a]) for a in cells}
    with iv.quiet():  # one np.errstate for the pass (the interval kernels' own are skipped; same values)
        for n in graph.nodes:
            if n.id > output:
                break
            if n.op == "input":
                lo, hi = cells[n.id]
                one = iv.const(1.0, np.zeros(()))
                seed = {n.id: one} if seeds is None or n.id in seeds else {}
                jet = _Jet((lo, hi), seed, {})
                if centre is not None:
                    pts[n.id] = _Jet((centre[n.id], centre[n.id]), seed, {})
            elif n.op == "const":
                c = np.asarray(float(np.asarray(n.attrs["value"], dtype=float)))
                jet = _Jet((c, c), {}, {})
                if centre is not None:
                    pts[n.id] = jet
            else:
                jet = _node(n, [vals[j] for j in n.inputs], hess)
                if n.id in checks and bool(np.any(jet.v[0] <= 0)):
                    assert pole_check is not None
                    pole_check.append(n.id)
                    raise _WouldCentre
                if centre is not None:
                    if points is not None:
                        pv = points.get(n.id)
                    else:
                        pj = _node(n, [pts[j] for j in n.inputs], False)
                        pts[n.id], pv = pj, pj.v
                        if keep_points is not None and n.id in poles:
                            keep_points[n.id] = pv
                    if centred and n.id in poles and jet.g and bool(np.any(jet.v[0] <= 0)):
                        # only on the operands of ops with a pole or a branch end at 0 (a denominator, the argument
                        # of log / sqrt / a power) whose plain enclosure reaches 0 somewhere: on every node the k
                        # products cost 30-50 % of the pass for nothing on the VLSE programs, 13 % on the ODEs
                        assert pv is not None, "points must hold every operand of a pole"
                        jet.v = _centred(jet, pv, delta)
            vals[n.id] = jet
            for j in set(n.inputs):
                if last.get(j, math.inf) <= n.id and j != output:
                    vals.pop(j, None)
                    pts.pop(j, None)
    if point_out is not None and centre is not None:
        point_out.append(pts[output])
    return vals[output]


#: Unary ops whose rules reach a pole or a branch end at 0 (their operand's enclosure is worth centring).
_POLE_AT_0 = frozenset({"reciprocal", "log", "log2", "log10", "sqrt", "rsqrt", "cbrt"})


def _pole_operands(graph: Any) -> set[int]:
    """Ids of the nodes that feed an op with a pole at 0: a divisor, a power's base, ``log``/``sqrt``'s argument."""
    out: set[int] = set()
    for n in graph.nodes:
        if n.op == "div" or n.op == "pow":
            out.add(n.inputs[1] if n.op == "div" else n.inputs[0])
        elif n.op in _POLE_AT_0:
            out.add(n.inputs[0])
    return out


def _centred(jet: _Jet, pv: Interval, delta: dict[int, Interval]) -> Interval:
    """``jet.v`` intersected with the mean-value form ``pv + sum_i g_i delta_i`` (widened outwards)."""
    lo, hi = pv
    for i, gi in jet.g.items():
        lo, hi = iv.iadd((lo, hi), iv.imul(gi, delta[i]))
    lo, hi = iv.widen(lo, hi)
    vlo, vhi = jet.v
    # NaN endpoints (widen maps them to -inf / inf) never tighten; an empty intersection cannot happen for valid
    # enclosures of the same values, but rounding is guarded by keeping the original there.
    nlo, nhi = np.maximum(vlo, lo), np.minimum(vhi, hi)
    bad = ~(nlo <= nhi)
    return np.where(bad, vlo, nlo), np.where(bad, vhi, nhi)


def box_bound(
    graph: Any,
    output: int,
    axes: Sequence[int],
    pt: np.ndarray,
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    wbox: np.ndarray,
    parts: dict[str, float] | None = None,
    probe: tuple[dict[int, Any], dict[int, Any]] | None = None,
    uniform: frozenset[int] = frozenset(),
    unimodal: frozenset[int] = frozenset(),
    linear: dict[str, Any] | None = None,
    engine_bound: np.ndarray | None = None,
    laws: dict[int, Any] | None = None,
    lean: bool = False,
) -> np.ndarray | None:
    """Per-box bound on ``E[|f(X) - V'|; box]`` (module docstring), or ``None`` where it does not apply.

    Args:
        graph: The output's graph (every input node's id is its axis).
        output: The output node's id.
        axes: The output's axes (the layout of ``pt``, ``wbox`` and the result).
        pt: The computed values ``V'`` at the atoms (broadcastable to the grid).
        cells: Per axis, ``(lo, hi, atoms)`` of its cells (1-D).
        moments: Per axis, ``(P(cell), E[|d|; cell], |E[d; cell]| bound, E[d^2; cell])`` (upper bounds, as masses),
            with ``d = X - atom``.
        wbox: The boxes' masses on the grid of ``axes``.
        parts: If given, receives the mass-weighted totals of the linear, remainder and rounding-gap terms
            (``"linear"``, ``"remainder"``, ``"gap"``; a diagnosis of where the bound goes), and ``"probe_gain"``
            where the probe ran.
        probe: ``(cells, moments)`` of the *whole* axes (as ``cells`` and ``moments``; a chunk passes the whole
            grid's, so that every chunk decides as the whole grid). Given, and the whole grid has at least
            :data:`PROBE_MIN_BOXES` boxes, the bound is first tried on a probe sub-grid (:data:`PROBE_AT`) against the
            first-order bound ``sum_i max|g_i| E_i`` from the same box gradients, and the whole pass runs only where
            it saves at least :data:`PROBE_MIN_GAIN` of that there (else ``None``: a cost guard).
        uniform: The axes whose input law is uniform (so on every cell): their linear term uses the exact
            ``E|X + r|`` of a uniform ``X`` (:func:`_uniform_linear`).
        unimodal: The axes whose input law is unimodal (other than uniform): the same through the convex order
            below a uniform law.
        linear: If given (and the grid is bounded in one piece, not in slices), receives the box-linear model of
            every box for :mod:`opgraph.dcg.boxlinear`: ``"c"`` (per axis, the midpoints of the gradient
            enclosures at the atoms, on the grid) and ``"rest"`` (per box, an upper bound on
            ``E[|f(X) - V' - sum_i c_i d_i| | box]``: the gradient radii, the remainder and the rounding gap, not
            weighted by the box's mass).
        engine_bound: With ``linear``: the engine's own per-box bound (weighted by the boxes' masses, on the grid
            of ``axes``), for the probe's mixture gate (:data:`MIX_GATE`). Where the gate finds that the mixture
            cannot pay, ``linear`` stays empty and the result is that of ``linear=None``.
        laws: Per axis, the input's law. With ``linear``, the remainder may also take the sub-box slope form
            (:mod:`opgraph.dcg.subslope`: each cell cut into equal-mass pieces, within that module's CPU budget)
            where the whole-box remainder is large against the linear term.
        lean: The lean pass of long programs (:mod:`opgraph.dcg.longmix`): the point pass, then the slope form's
            affine walk only (no box interval pass, Hessian enclosures, interval walk passes or probe; their
            enclosures count as the whole line), whatever the work caps. Each box's remainder is then the slope form
            with the affine walk's enclosures.
    """
    k = len(axes)
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    size = int(np.prod(shape)) if shape else 1
    if not k or k > MAX_AXES or not supported(graph, output):
        return None
    nodes_work = size * len(graph.nodes)

    def whole(**how: Any) -> np.ndarray:
        """:func:`_box_piece` on the whole grid (not in slices), with the pass's settings ``how``."""
        return _box_piece(
            graph,
            output,
            axes,
            pt,
            cells,
            moments,
            wbox,
            parts,
            uniform=uniform,
            unimodal=unimodal,
            linear=linear,
            **how,
        )

    if lean:  # long programs (opgraph.dcg.longmix): the caller checked the pass's predicted time
        try:
            return whole(
                affine=True,
                walk=True,
                hessian=False,
                steps={a: (False, True) for a in axes},
                box_pass=False,
                give_up=None if engine_bound is None else _lean_give_up(engine_bound, wbox, shape),
                poly=True,
            )
        except _GiveUp:
            if parts is not None:
                parts["lean_stopped"] = 1.0
            if linear is not None:
                linear.clear()
            return None
    mix_caps = linear is not None  # the larger work caps the mixture asks for
    if mix_caps and nodes_work > min(WALK_MAX_WORK, AFFINE_MAX_WORK):  # target_w1: the larger caps within max_seconds
        from opgraph.dcg.boxlinear import affordable

        mix_caps = affordable(MIX_SECONDS_PER_BOX_NODE * nodes_work, "the mixture's slope work cap")
    walk = SLOPE_WALK and nodes_work <= (MIX_MAX_WORK if mix_caps else WALK_MAX_WORK)
    sub = 1  # most sub-boxes per box of the sub-box slope remainder (opgraph.dcg.subslope): only for the mixture
    if linear is not None and laws and SLOPE:
        from opgraph.dcg import subslope

        sub = subslope.allowance(size, len(graph.nodes), k)
    affine = SLOPE_AFFINE and nodes_work <= (MIX_MAX_WORK if mix_caps else AFFINE_MAX_WORK)
    # the mixture's caps run work the default caps would not: the probe decides whether it can pay (MIX_GATE)
    gate = (
        MIX_GATE
        and mix_caps
        and engine_bound is not None
        and (
            (walk and not nodes_work <= WALK_MAX_WORK and SLOPE_WALK)
            or (affine and not nodes_work <= AFFINE_MAX_WORK and SLOPE_AFFINE)
        )
    )
    hessian = True  # the Hessian enclosures (skipped only under the gate)
    steps: dict[int, tuple[bool, bool]] | None = None
    if probe is not None and math.prod(int(np.size(probe[0][a][2])) for a in axes) >= PROBE_MIN_BOXES:
        diag: dict[str, float] = {}
        gain = _probe(
            graph,
            output,
            axes,
            *probe,
            uniform=uniform,
            unimodal=unimodal,
            mix=linear is not None,
            affine=affine,
            walk=walk,
            engine_bound=engine_bound if gate else None,
            diag=diag,
            laws=laws,
            sub=sub,
        )
        if parts is not None:
            parts["probe_gain"] = gain
            parts.update({f"probe_{key}": x for key, x in diag.items()})
        if gate and not diag.get("mix_gain", 0.0) >= MIX_MIN_GAIN:
            # the mixture cannot pay for its slope work here: the pass without it (and no linear models)
            if parts is not None:
                parts["mix_gated"] = 1.0
            return box_bound(graph, output, axes, pt, cells, moments, wbox, parts, probe, uniform, unimodal)  # no laws
        if not gain >= PROBE_MIN_GAIN:
            return None
        # the Hessian form wins on none of the probe's boxes, and the pass without the mixture would not run (its
        # probe, with the default caps, finds too little to gain; so no per-box bound of that pass is lost): the
        # whole pass without the Hessian enclosures
        hessian = True
        if gate and diag.get("hessian_wins", 1.0) == 0.0:
            off_gain = _probe(
                graph,
                output,
                axes,
                *probe,
                uniform=uniform,
                unimodal=unimodal,
                affine=SLOPE_AFFINE and nodes_work <= AFFINE_MAX_WORK,
                walk=SLOPE_WALK and nodes_work <= WALK_MAX_WORK,
            )
            hessian = off_gain >= PROBE_MIN_GAIN
            if parts is not None:
                parts["probe_gain_off"] = off_gain
        if gate and WALK_TOL is not None:  # walk passes whose loss on the probe stays within WALK_TOL
            # (the interval passes only where the default caps would not walk: never below the pass without the
            # mixture; the gate implies that the default caps take no affine gradients)
            keep_iv = nodes_work <= WALK_MAX_WORK
            steps = {a: (keep_iv or diag.get(f"walk_{a}") != 2.0, diag.get(f"walk_{a}") != 1.0) for a in axes}
        if parts is not None:
            parts["hessian"] = float(hessian)
    work = size * k * (k + 1) // 2
    if work > MAX_WORK:  # bounded memory: slices of the first axis (every box's bound is local to the box)
        if work > MAX_WORK * MAX_SLICES or shape[0] < 2:
            return None
        per = max(1, shape[0] * MAX_WORK // work)
        a0 = axes[0]
        full_pt, full_w = np.broadcast_to(pt, shape), np.broadcast_to(wbox, shape)
        pieces, sums = [], {}  # sums: the slices' parts totals
        lins: list[dict[str, Any]] = []
        for s0 in range(0, shape[0], per):
            sl = slice(s0, s0 + per)
            c2 = {**cells, a0: tuple(np.asarray(x)[sl] for x in cells[a0])}
            m2 = {**moments, a0: tuple(np.asarray(x)[sl] for x in moments[a0])}
            got: dict[str, float] = {}
            lin_s: dict[str, Any] | None = None if linear is None else {}
            piece = _box_piece(
                graph,
                output,
                axes,
                full_pt[sl],
                c2,
                m2,
                full_w[sl],
                got,
                uniform=uniform,  # type: ignore[arg-type]
                unimodal=unimodal,
                linear=lin_s,
                affine=affine,
                walk=walk,
                hessian=hessian,
                steps=steps,
                laws=laws,
                sub=sub,
            )
            if piece is None:
                return None
            pieces.append(piece)
            if lin_s is not None:
                lins.append(lin_s)
            for key, x in got.items():
                sums[key] = sums.get(key, 0.0) + x
        if parts is not None:
            parts.update(sums)
        if linear is not None and lins:  # the slices' linear models, put together along the first axis
            linear["rest"] = np.concatenate([x["rest"] for x in lins], axis=0)
            linear["c"] = {a: np.concatenate([x["c"][a] for x in lins], axis=0) for a in axes}
        return np.concatenate(pieces, axis=0)
    return whole(affine=affine, walk=walk, hessian=hessian, steps=steps, laws=laws, sub=sub)


class _GiveUp(Exception):
    """The lean pass stops: the walk's terms so far leave the mixture nothing to gain (:func:`_lean_give_up`)."""


#: The lean pass (long programs) stops after any walk step where twice its partial remainder (a lower bound on the
#: mixture's cost per box: remainder plus about as much lattice rounding) saves less than this share of the engine's
#: own finite bound, and makes no infinite box finite.
LEAN_MIN_GAIN = 0.02


def _lean_give_up(engine_bound: np.ndarray, wbox: np.ndarray, shape: tuple[int, ...]) -> Callable[[np.ndarray], bool]:
    """The lean pass's stop rule on the walk's partial sums of slope terms (per box, not weighted by mass)."""
    eb = np.broadcast_to(np.asarray(engine_bound, dtype=float), shape)
    w = np.broadcast_to(np.asarray(wbox, dtype=float), shape)
    fin = np.isfinite(eb)
    total = float(np.sum(np.where(fin, eb, 0.0)))

    def stop(partial: np.ndarray) -> bool:
        with np.errstate(all="ignore"):
            cost = np.broadcast_to(2.0 * np.asarray(partial, dtype=float), shape) * w
        if bool(np.any(~fin & (w > 0) & np.isfinite(cost))):  # an infinite box might become finite
            return False
        saved = float(np.sum(np.where(fin & (cost < eb), eb - cost, 0.0)))
        return total > 0 and saved < LEAN_MIN_GAIN * total

    stop.engine_bound = eb  # type: ignore[attr-defined]  # (read by _box_piece to rebuild it under the models)
    return stop


def _probe(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: dict[int, tuple[Any, Any, Any, Any]],
    uniform: frozenset[int] = frozenset(),
    unimodal: frozenset[int] = frozenset(),
    mix: bool = False,
    affine: bool = False,
    walk: bool = False,
    engine_bound: np.ndarray | None = None,
    diag: dict[str, float] | None = None,
    laws: dict[int, Any] | None = None,
    sub: int = 1,
) -> float:
    """The share of the first-order bound that the Taylor bound saves on the probe sub-grid of the whole axes.

    ``mix``: the box-linear mixture (:mod:`opgraph.dcg.boxlinear`) will use the linear models; a box then costs
    about its remainder part ``rest`` plus the lattice's share (taken as ``rest`` again), where that is smaller.
    ``engine_bound`` (with ``mix``; the engine's per-box bound on the whole grid, whose boxes the probe's are):
    ``diag`` receives ``"mix_gain"``, the share of that bound on the probe's boxes which ``2 rest`` saves, and
    ``"hessian_wins"``, the share of the probe's finite mass where the Hessian form is below the slope form
    (:data:`MIX_GATE`).
    """
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    idx = [np.unique([min(n - 1, int(q * n)) for q in PROBE_AT]) for n in shape]
    c_p = {a: tuple(np.asarray(x)[i] for x in cells[a]) for a, i in zip(axes, idx, strict=True)}
    m_p = {}
    for a, i in zip(axes, idx, strict=True):
        mass, e1, b1, m2 = moments[a]
        b1 = e1 if b1 is None else b1  # |E d| <= E|d|
        m2 = np.full(np.shape(mass), np.inf) if m2 is None else m2  # unknown
        m_p[a] = tuple(np.asarray(x, dtype=float)[i] for x in (mass, e1, b1, m2))
    w: Any = 1.0
    for a in axes:
        w = w * np.asarray(m_p[a][0]).reshape([-1 if t == a else 1 for t in axes])
    first: list[np.ndarray] = []
    lin: dict[str, Any] | None = {} if mix else None
    forms: dict[str, np.ndarray] | None = {} if diag is not None and engine_bound is not None and mix else None
    tb = _box_piece(
        graph,
        output,
        axes,
        None,
        c_p,
        m_p,
        w,
        None,
        first,
        uniform=uniform,
        unimodal=unimodal,
        linear=lin,
        affine=affine,
        walk=walk,
        forms=forms,
        laws=laws,
        sub=sub,
    )
    if lin and forms is not None and diag is not None and engine_bound is not None:
        full = tuple(int(np.size(cells[a][2])) for a in axes)
        eb = np.broadcast_to(np.asarray(engine_bound, dtype=float), full)[np.ix_(*idx)]
        mixed = np.where(w == 0, 0.0, 2 * lin["rest"] * w)
        fin = np.isfinite(eb)
        tot_eb = float(np.sum(np.where(fin, eb, 0.0)))
        save = float(np.sum(np.where(fin & (mixed < eb), eb - mixed, 0.0)))
        diag["mix_gain"] = save / tot_eb if tot_eb > 0 else 0.0
        h, sl = (np.broadcast_to(forms[key], tb.shape) for key in ("hess", "slope"))
        wb = np.broadcast_to(w, tb.shape)
        live = np.isfinite(np.minimum(h, sl)) & (wb > 0)
        m_live = float(np.sum(np.where(live, wb, 0.0)))
        diag["hessian_wins"] = float(np.sum(np.where(live & (h < sl), wb, 0.0))) / m_live if m_live > 0 else 1.0
        walk_stats = forms.get("walk", {})
        cands: list[tuple[float, int, float]] = []  # (loss per unit of cost, axis, 1: skip affine / 2: interval)
        total = 0.0
        for a in axes:
            if (a, "both") not in walk_stats:
                continue
            tot = {}
            for key in ("interval", "affine", "both"):
                t = np.broadcast_to(walk_stats[(a, key)] * w, tb.shape)
                fin_t = np.isfinite(t)
                # (mass where the term is unbounded, the finite terms' sum): a skip may not add unbounded mass
                tot[key] = (float(np.sum(np.where(fin_t, 0.0, wb))), float(np.sum(np.where(fin_t, t, 0.0))))
            both = tot["both"]
            total += both[1]
            diag[f"walk_{a}"] = 0.0
            for key, code, cost in (("interval", 1.0, 2.0), ("affine", 2.0, 1.0)):  # an affine pass costs ~2x
                if tot[key][0] <= both[0]:
                    cands.append((max(tot[key][1] - both[1], 0.0) / cost, a, code))
        # the cheapest losses per unit of cost first, while the probe's walk terms grow by at most WALK_TOL in all
        spent = 0.0
        for rate, a, code in sorted(cands):
            loss = rate * (2.0 if code == 1.0 else 1.0)
            if diag[f"walk_{a}"] == 0.0 and WALK_TOL is not None and spent + loss <= WALK_TOL * total:
                diag[f"walk_{a}"] = code
                spent += loss
    if lin:
        tb = np.minimum(tb, np.where(w == 0, 0.0, 2 * lin["rest"] * w))
    ref = first[0]
    saved = float(np.sum(np.where(tb < ref, ref - tb, 0.0)))
    base = float(np.sum(np.where(np.isfinite(ref), ref, 0.0)))
    return saved / base if base > 0 else (math.inf if saved > 0 else 0.0)


def _box_piece(
    graph: Any,
    output: int,
    axes: Sequence[int],
    pt: np.ndarray | None,
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    wbox: np.ndarray,
    parts: dict[str, float] | None,
    first: list[np.ndarray] | None = None,
    uniform: frozenset[int] = frozenset(),
    unimodal: frozenset[int] = frozenset(),
    linear: dict[str, Any] | None = None,
    affine: bool = False,
    walk: bool = False,
    hessian: bool = True,
    forms: dict[str, Any] | None = None,
    steps: dict[int, tuple[bool, bool]] | None = None,
    laws: dict[int, Any] | None = None,
    sub: int = 1,
    box_pass: bool = True,
    give_up: Callable[[np.ndarray], bool] | None = None,
    poly: bool = False,
) -> np.ndarray:
    """:func:`box_bound` on one grid (or one slice of it), its arguments already checked.

    ``pt`` None: the midpoint of the point enclosure stands for the computed value. ``first``: receives the
    first-order bound ``(sum_i max|g_i| E_i + gap) w`` per box from the same box gradients (the probe's yardstick).
    ``uniform`` / ``unimodal``: the axes whose input law is uniform / unimodal on each cell (:func:`_uniform_linear`).
    ``linear``: receives the box-linear model (:func:`box_bound`). ``walk`` / ``affine``: the slope form also walks
    the axes / takes affine gradient enclosures (:data:`SLOPE_WALK`, :data:`SLOPE_AFFINE`, under the work guards).
    ``hessian`` False (with :data:`SLOPE`): no Hessian enclosures; the Hessian form counts as infinite on every box
    and the slope form alone bounds the remainder (:data:`MIX_GATE`). ``forms``: receives the per-box Hessian
    (radii included) and slope forms (``"hess"``, ``"slope"``, unweighted; for the probe's diagnosis), and the walk's
    per-step terms (``"walk"``, :func:`_walk`'s ``stats``). ``steps``: per walk axis, whether its interval and its
    affine pass run (:func:`_walk`). ``laws`` / ``sub`` (with ``linear``): the inputs' laws and the most sub-boxes
    per box of the sub-box slope remainder (:func:`_sub_slope`). ``box_pass`` False (the lean pass, with ``hessian`` False): only the point pass
    runs; the whole box's gradient enclosures count as the whole line (the walk's affine enclosures are intersected
    with them) and the walk puts the axes with the largest linear terms ``|c_i| E|d_i|`` first.
    ``give_up``: called by the walk with its partial slope sums (:func:`_walk`); True raises :class:`_GiveUp`.
    """
    shape = tuple(int(np.size(cells[a][2])) for a in axes)
    hessian = hessian or not SLOPE  # without the slope form the Hessian form is the only remainder

    def lay(x: np.ndarray, a: int) -> np.ndarray:
        return np.asarray(x, dtype=float).reshape([x.size if t == a else 1 for t in axes])

    with np.errstate(all="ignore"):
        box = {a: (lay(cells[a][0], a), lay(cells[a][1], a)) for a in axes}
        at = {a: (lay(cells[a][2], a), lay(cells[a][2], a)) for a in axes}
        got: list[_Jet] = []  # the point pass runs in the same loop (its values centre the box pass)
        kept: dict[int, Interval] = {}  # the point values the walk's centring reuses (jets' keep_points)
        if box_pass:
            outer = jets(
                graph,
                output,
                box,
                hess=hessian,
                centre={a: at[a][0] for a in axes},
                point_out=got,
                centred=CENTRED,
                keep_points=kept if CENTRED and WALK_POINTS else None,
            )
            point = got[0]
        else:  # the point pass alone (the same values as the box pass's point pass); box gradients unknown
            point = jets(graph, output, at, hess=False)
            line = (np.full((), -np.inf), np.full((), np.inf))
            outer = _Jet(line, {a: line for a in point.g}, {})
        w = np.asarray(wbox, dtype=float)
        r1, rb, r2 = {}, {}, {}
        for a in axes:
            mass, e1, b1, m2 = (np.asarray(x, dtype=float) for x in moments[a])
            inv = np.where(mass > 0, 1.0 / np.where(mass > 0, mass, 1.0), 0.0)
            r1[a], rb[a], r2[a] = lay(e1 * inv, a), lay(b1 * inv, a), lay(m2 * inv, a)
            # E[d^2] >= E|d|^2: a second moment at the underflow range with E|d| > 0 has lost its value (a law at
            # scale ~1e-160): taken as unknown, so the boxes that need it keep the engine's bound.
            r2[a] = np.where((r1[a] > 0) & ~(r2[a] > _NORMAL), np.inf, r2[a])
        lin_sq: Any = 0.0
        bias: Any = 0.0
        lin1: Any = 0.0
        rad: Any = 0.0
        exact: Any = True  # where no square underflowed (a tiny gradient, or a tiny second moment)
        for a in axes:
            gl, gh = point.g.get(a, (np.zeros(()), np.zeros(())))
            c = 0.5 * (gl + gh)
            r = 0.5 * (gh - gl)
            sq = c * c * r2[a]
            exact = exact & ((np.abs(c) * r1[a] == 0) | (sq > _NORMAL))
            lin_sq = lin_sq + sq
            bias = bias + np.abs(c) * rb[a]
            lin1 = lin1 + np.abs(c) * r1[a]
            rad = rad + r * r1[a]
        # sqrt(sum c^2 M + (sum |c| b)^2) <= sqrt(sum c^2 M) + sum |c| b (b is not squared: it is often ~1e-300);
        # the square-root form only where no square underflowed (a gradient ~1e-197 squares to 0).
        lin0 = np.where(exact, np.minimum(np.sqrt(lin_sq) + bias, lin1), lin1)
        exact_uniform, uniform = uniform, uniform | unimodal
        if (
            uniform and UNIFORM_LINEAR
        ):  # a coordinate uniform (unimodal) on its cell: E|X + R| below the L2 form (_uniform_linear)
            lin0 = np.where(
                exact, np.minimum(lin0, _uniform_linear(axes, uniform, point, box, at, r2, rb, exact_uniform)), lin0
            )
        rem: Any = 0.0
        for (i, j), hij in outer.h.items():
            m = iv.mag(hij)
            rem = rem + (0.5 * m * r2[i] if i == j else m * r1[i] * r1[j])
        vlo, vhi = point.v
        p = 0.5 * (vlo + vhi) if pt is None else np.asarray(pt, dtype=float)
        gap = np.maximum(np.maximum(p - vlo, vhi - p), 0.0)
        poly_rest = None  # the polynomial box models' remainder (opgraph.dcg.polymodel; the lean pass only)
        if poly and linear is not None:
            from opgraph.dcg import polymodel

            if polymodel.ENABLED.get():
                poly_rest = polymodel.rest(
                    graph, output, axes, box, {a: at[a][0] for a in axes}, p, _centre(point, axes), r1, r2
                )
                if poly_rest is not None and not np.any(np.isfinite(poly_rest)):
                    poly_rest = None
            if poly_rest is not None and give_up is not None:  # the walk must now beat the models to go on
                eb = getattr(give_up, "engine_bound", None)
                if eb is not None:
                    with np.errstate(all="ignore"):
                        ceiling = np.minimum(eb, np.where(np.isfinite(poly_rest), 2.0 * poly_rest * w, np.inf))
                    give_up = _lean_give_up(ceiling, wbox, tuple(np.shape(eb)))
            if parts is not None and poly_rest is not None:
                parts["poly_model"] = 1.0
        # E|f(X) - f(x') - c . d| on the box: gradient radii plus the Hessian remainder, or the mean-value (slope)
        # form, whichever is smaller per box
        hess = np.where(np.isnan(rad + rem), np.inf, rad + rem)
        if not hessian:  # no Hessian enclosures: the form is unknown (outer.h is empty, not zero)
            hess = np.full(np.shape(hess), np.inf)
        if forms is not None:
            forms["hess"] = hess
        hess_finite = _finite_share(hess, w, shape)  # the sub-boxes' Hessian form is tried where this is large
        took: Any = False
        if SLOPE:
            try:
                slope = _slope(
                    graph,
                    output,
                    axes,
                    outer,
                    point,
                    box,
                    at,
                    r1,
                    walk=walk,
                    affine=affine,
                    points=kept if CENTRED and WALK_POINTS else None,
                    stats=None if forms is None else forms.setdefault("walk", {}),
                    steps=steps,
                    by_linear=not box_pass,
                    give_up=give_up,
                )
            except _GiveUp:
                if poly_rest is None:
                    raise
                slope = np.full(np.shape(hess), np.inf)  # the walk stopped: the polynomial models stand alone
            if forms is not None:
                forms["slope"] = slope
            took = slope < hess
            hess = np.where(took, slope, hess)
            if linear is not None and laws and sub > 1:  # sub-box slope form (opgraph.dcg.subslope)
                got_sub = _sub_slope(
                    graph, output, axes, cells, moments, laws, sub, outer, point, r1, lin0, hess, w, hess_finite
                )
                if got_sub is not None:
                    took = took | (got_sub < hess)
                    hess = np.minimum(hess, got_sub)
                    if parts is not None:
                        parts["sub_slope"] = 1.0
            if linear is not None and laws:  # half-line cells cut into geometric pieces (opgraph.dcg.tailsub)
                from opgraph.dcg import tailsub

                got_tail = tailsub.remainder(
                    graph, output, axes, cells, moments, laws, _centre(point, axes), point.v, hess, w, parts
                )
                if got_tail is not None:
                    took = took | (got_tail < hess)
                    hess = np.minimum(hess, got_tail)
        if poly_rest is not None:  # per box the smaller of two valid remainders (each includes the gap)
            with np.errstate(all="ignore"):
                wins = poly_rest < hess + gap
                took = took | wins
                hess = np.where(wins, poly_rest - gap, hess)
        tot = (lin0 + hess + gap) * (1 + 1e-9) * w
        if linear is not None:
            rest = np.where(np.isnan(hess + gap), np.inf, (hess + gap) * (1 + 1e-9))
            linear["rest"] = np.broadcast_to(rest, shape)
            zero = (np.zeros(()), np.zeros(()))
            linear["c"] = {a: np.broadcast_to(0.5 * sum(point.g.get(a, zero)), shape) for a in axes}
        if first is not None:
            g1: Any = gap
            for a in axes:
                ga = outer.g.get(a)
                if ga is not None:
                    g1 = g1 + iv.mag(ga) * r1[a]
            first.append(np.broadcast_to(np.where(w == 0, 0.0, g1 * w), shape))
        if parts is not None:
            fin = np.broadcast_to(np.isfinite(tot), shape)
            lin_part = lin0 + np.where(took, 0.0, rad)  # the radii count as linear where the Hessian form is used
            for key, x in (("linear", lin_part), ("remainder", hess - np.where(took, 0.0, rad)), ("gap", gap)):
                parts[key] = float(np.sum(np.where(fin, np.broadcast_to(x * w, shape), 0.0)))
            parts["slope_mass"] = float(
                np.sum(np.where(fin & np.broadcast_to(took, shape), np.broadcast_to(w, shape), 0.0))
            )
            parts["finite_mass"] = float(np.sum(np.where(fin, np.broadcast_to(w, shape), 0.0)))
        tot = np.where(w == 0, 0.0, tot)
        tot = np.where(np.isnan(tot), np.inf, tot)
    return np.broadcast_to(tot, shape)


def cell_abs_dev(axes: Sequence[int], moments: Mapping[int, tuple[Any, ...]]) -> dict[int, np.ndarray]:
    """Per axis, ``E[|X - atom| | cell]`` per cell (0 where a cell has no mass).

    ``moments``: per axis ``(P(cell), E[|X - atom|; cell], ...)`` (:func:`box_bound`'s).
    """
    out = {}
    for a in axes:
        mass, err = (np.asarray(x, dtype=float) for x in moments[a][:2])
        out[a] = np.where(mass > 0, err / np.where(mass > 0, mass, 1.0), 0.0)
    return out


def _finite_share(x: Any, w: np.ndarray, shape: tuple[int, ...]) -> float:
    """The share of the boxes' mass ``w`` where the per-box form ``x`` is finite (0 where the mass is 0)."""
    wb = np.broadcast_to(np.asarray(w, dtype=float), shape)
    total = float(np.sum(wb))
    if not total > 0:
        return 0.0
    return float(np.sum(np.where(np.broadcast_to(np.isfinite(x), shape), wb, 0.0))) / total


def _centre(point: _Jet, axes: Sequence[int]) -> dict[int, np.ndarray]:
    """``c``: per axis the midpoint of the point pass's gradient enclosure at the atom (0 where it has none)."""
    zero = (np.zeros(()), np.zeros(()))
    return {a: 0.5 * (point.g.get(a, zero)[0] + point.g.get(a, zero)[1]) for a in axes}


def _slope_scores(
    axes: Sequence[int], outer: _Jet, cs: dict[int, np.ndarray], r1: dict[int, np.ndarray], by_linear: bool = False
) -> dict[int, float]:
    """Per axis the median over the boxes of its whole-box slope term ``mag(G_a - c_a) E|d_a|``.

    Non-finite terms rank first; ``by_linear`` (no box pass: the lean pass) takes the linear term ``|c_a| E|d_a|``.
    """
    zero = (np.zeros(()), np.zeros(()))
    score = {}
    for a in axes:
        with np.errstate(all="ignore"):
            m = np.abs(cs[a]) if by_linear else iv.mag(iv.isub(outer.g.get(a, zero), (cs[a], cs[a])))
            x = np.where(r1[a] > 0, m * r1[a], 0.0)
        score[a] = float(np.median(np.where(np.isfinite(x), x, 1e300)))
    return score


def _sub_slope(
    graph: Any,
    output: int,
    axes: Sequence[int],
    cells: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    moments: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
    laws: dict[int, Any],
    sub: int,
    outer: _Jet,
    point: _Jet,
    r1: dict[int, np.ndarray],
    lin0: np.ndarray,
    rem: np.ndarray,
    w: np.ndarray,
    hess_finite: float = 0.0,
) -> np.ndarray | None:
    """The sub-box slope remainder per box (:func:`opgraph.dcg.subslope.remainder`), or None where it is not tried.

    ``hess_finite``: the mass share of the boxes whose whole-box Hessian form is finite; the sub-boxes take the
    second-order form too (:mod:`opgraph.dcg.subcentre`) where it is at least ``subcentre.HESSIAN_MIN_FINITE``.

    Tried where the whole-box remainder ``rem`` (mass-weighted; unbounded boxes as ``subslope.INF_AS`` times their
    linear term ``lin0``) exceeds ``subslope.TRIGGER`` of the linear term's total, and its finite boxes' part is at
    most ``subslope.HOPELESS`` times that total; the pieces go to the axes with the
    largest whole-box slope terms (median over the boxes; :func:`opgraph.dcg.subslope.plan`), at most ``sub`` per box.
    """
    from opgraph.dcg import subslope

    with np.errstate(all="ignore"):
        lin_w = np.where(np.isfinite(lin0), lin0 * w, 0.0)
        rem_w = np.where(np.isfinite(rem), rem, subslope.INF_AS * lin0) * w
        total, lin_total = float(np.sum(np.where(np.isfinite(rem_w), rem_w, 0.0))), float(np.sum(lin_w))
        if not total > subslope.TRIGGER * lin_total:
            return None
        fin_total = float(np.sum(np.where(np.isfinite(rem), rem * w, 0.0)))
        if fin_total > subslope.HOPELESS * lin_total:  # enclosures dominated by a near-pole: pieces cannot fix it
            return None
    cs = _centre(point, axes)
    scores = _slope_scores([a for a in axes if laws.get(a) is not None and a in outer.g], outer, cs, r1)
    split = subslope.plan(scores, sub)
    if math.prod(split.values()) <= 1:
        return None
    e1 = cell_abs_dev(axes, moments)
    from opgraph.dcg import subcentre, subwalk

    hessian = hess_finite >= subcentre.HESSIAN_MIN_FINITE
    walk: list[int] = []
    ks: list[int] = []  # the affine ray slices, where the choice takes them (opgraph.dcg.radialchoose)
    if subwalk.ENABLED.get():  # the walk on the sub-boxes, for fewer pieces, where a sample of boxes finds it pays
        split, walk = subwalk.choose(
            graph, output, axes, cells, e1, laws, cs, point.v, w, scores, sub, hessian, rem, slices_out=ks
        )
    k = ks[0] if ks and ks[0] != 1 else None
    return subslope.remainder(
        graph, output, axes, cells, e1, laws, cs, point.v, split, hessian=hessian, walk=walk, exact_slices=k
    )


def _slope(
    graph: Any,
    output: int,
    axes: Sequence[int],
    outer: _Jet,
    point: _Jet,
    box: dict[int, tuple[np.ndarray, np.ndarray]],
    at: dict[int, tuple[np.ndarray, np.ndarray]],
    r1: dict[int, np.ndarray],
    walk: bool = True,
    affine: bool = False,
    points: dict[int, Interval] | None = None,
    stats: dict[Any, np.ndarray] | None = None,
    steps: dict[int, tuple[bool, bool]] | None = None,
    by_linear: bool = False,
    give_up: Callable[[np.ndarray], bool] | None = None,
) -> np.ndarray:
    """The mean-value (slope) bound on ``E[|f(X) - f(x') - c . d| | box]`` per box (no Hessian enclosure).

    ``by_linear``: the walk order puts the axes with the largest linear terms ``|c_i| E|d_i|`` first (the lean pass:
    no whole-box enclosures to rank the axes by).

    ``c``: the midpoints of the point pass's gradient enclosures at the atom ``x'``. *Whole box*: ``f(X) - f(x') =
    grad f(xi) . d`` with ``xi`` on the segment ``[x', X]`` inside the box, so ``|f(X) - f(x') - c . d| <= sum_i
    mag(G_i - c_i) |d_i|`` with ``G_i`` the box pass's enclosure of ``df/dx_i`` (``outer.g``). *Walk* (``walk``):
    changing one coordinate at a time (any order: :data:`WALK_ORDER` puts the axes with the largest whole-box terms
    first), ``f(X) - f(x') = sum_i df/dx_i(xi_i) d_i`` with
    ``xi_i`` in the thinner box ``B_i`` (coordinates before ``i`` free on their cells, ``i`` on its cell, those after
    it at their atoms), so the same holds with ``G_i`` enclosed over ``B_i`` (the free axes seeded), intersected with
    the whole box's; ``affine``: also in affine arithmetic (:func:`opgraph.dcg.affgrad.gradients`). Taking expectations on the box gives ``sum_i mag(G_i - c_i) E|d_i|`` (``r1``: ``E|d_i|`` per
    cell). ``G_i`` is unbounded where the box straddles a jump or reaches a pole (interval rules), so such a box keeps
    the other bounds. Returns the bound laid out on the grid (``inf`` where it is unknown).
    """
    cs = _centre(point, axes)
    order = list(axes)
    if walk and WALK_ORDER:  # the axes whose whole-box slope terms are largest go first (the thinnest boxes)
        score = _slope_scores(axes, outer, cs, r1, by_linear)
        order.sort(key=lambda a: -score[a])
    return _walk(graph, output, axes, order, outer, box, at, r1, cs, walk, affine, points, stats, steps, give_up)


def _walk(
    graph: Any,
    output: int,
    axes: Sequence[int],
    order: list[int],
    outer: _Jet,
    box: dict[int, tuple[np.ndarray, np.ndarray]],
    at: dict[int, tuple[np.ndarray, np.ndarray]],
    r1: dict[int, np.ndarray],
    cs: dict[int, np.ndarray],
    walk: bool,
    affine: bool,
    points: dict[int, Interval] | None = None,
    stats: dict[Any, np.ndarray] | None = None,
    steps: dict[int, tuple[bool, bool]] | None = None,
    give_up: Callable[[np.ndarray], bool] | None = None,
) -> np.ndarray:
    """:func:`_slope` for one walk order (``walk`` False: the whole box for every axis).

    ``points``: the box pass's point values of the operands of poles at the atoms (:func:`jets`' ``keep_points``),
    which the walk's passes reuse instead of repeating the point pass. ``stats`` (with ``walk`` and ``affine``):
    receives per walk step (every axis but the last) the step's term per box with the interval pass alone
    (``(a, "interval")``), the affine pass alone (``(a, "affine")``) and both (``(a, "both")``), for the probe
    (:data:`WALK_TOL`). ``steps``: per axis ``(interval, affine)``, whether each of the step's passes runs (missing
    axes: both); a skipped pass only leaves a wider (still valid) enclosure to intersect.
    """
    from opgraph.dcg import affgrad

    zero = (np.zeros(()), np.zeros(()))
    tot: Any = 0.0
    # the whole box's affine partials: only the last axis's where the walk encloses the others over thinner boxes
    seeds = [a for a in (order[-1:] if walk else order) if a in outer.g]
    # with give_up (the lean pass) the whole box's pass runs last, after the cheaper thin-box passes that may stop it
    lazy = give_up is not None and walk
    whole = affgrad.gradients(graph, output, axes, box, seeds) if affine and seeds and not lazy else {}
    for n, a in enumerate(order):
        if lazy and n == len(order) - 1 and affine and seeds:
            whole = affgrad.gradients(graph, output, axes, box, seeds)
        c = cs[a]
        g = meet(outer.g.get(a, zero), whole.get(a))
        if walk and a in outer.g and n < len(order) - 1:  # the last axis's B_i is the whole box (outer.g)
            run_iv, run_af = (True, True) if steps is None else steps.get(a, (True, True))
            g0 = g
            if run_iv:
                g = meet(g, thin_interval(graph, output, axes, order[: n + 1], box, at, points))
            if affine and run_af:
                g_af = thin_affine(graph, output, axes, order[: n + 1], box, at)
                if stats is not None and run_iv:
                    for key, x in (("interval", g), ("affine", meet(g0, g_af))):
                        stats[(a, key)] = np.where(r1[a] > 0, iv.mag(iv.isub(x, (c, c))) * r1[a], 0.0)
                g = meet(g, g_af)
                if stats is not None and run_iv:
                    stats[(a, "both")] = np.where(r1[a] > 0, iv.mag(iv.isub(g, (c, c))) * r1[a], 0.0)
        m = iv.mag(iv.isub(g, (c, c)))
        tot = tot + np.where(r1[a] > 0, m * r1[a], 0.0)  # d_i = 0 almost surely where E|d_i| = 0
        # the terms so far (each >= 0) bound the total below, with passes left to skip
        if lazy and give_up is not None and n < len(order) - 1 and give_up(np.where(np.isnan(tot), np.inf, tot)):
            raise _GiveUp
    tot = tot * (1 + 1e-9)
    return np.where(np.isnan(tot), np.inf, tot)


def _thin_box(
    axes: Sequence[int], free: Sequence[int], box: dict[int, Interval], at: dict[int, Interval]
) -> dict[int, Interval]:
    """The walk's box ``B_i``: the ``free`` axes on their cells, the others at their points ``at``."""
    return {t: (box[t] if t in free else at[t]) for t in axes}


def thin_interval(
    graph: Any,
    output: int,
    axes: Sequence[int],
    free: Sequence[int],
    box: dict[int, Interval],
    at: dict[int, Interval],
    points: dict[int, Interval] | None = None,
) -> Interval:
    """Interval enclosure of ``df/dx_a`` (``a = free[-1]``) over the walk's box ``B_a`` (:func:`_thin_box`).

    The free axes are seeded (the centred value enclosures need their gradients); the others are points. First the
    pass with ``a`` alone seeded and no point pass: the same enclosure wherever no operand of a pole reaches 0 on a
    box (no centring), else the full pass (:func:`jets`' ``pole_check``; ``points``: its ``keep_points`` at ``at``).
    """
    a = free[-1]
    thin = _thin_box(axes, free, box, at)
    centre = {t: at[t][0] for t in axes}
    try:
        if not WALK_ONE_SEED:
            raise _WouldCentre
        got = jets(graph, output, thin, hess=False, centre=centre, seeds=[a], pole_check=[])
    except _WouldCentre:
        got = jets(graph, output, thin, hess=False, centre=centre, seeds=free, points=points)
    zero = (np.zeros(()), np.zeros(()))
    return got.g.get(a, zero)


def thin_affine(
    graph: Any, output: int, axes: Sequence[int], free: Sequence[int], box: dict[int, Interval], at: dict[int, Interval]
) -> Interval | None:
    """Affine-arithmetic enclosure of ``df/dx_a`` (``a = free[-1]``) over the walk's box ``B_a`` (None: no form)."""
    from opgraph.dcg import affgrad

    return affgrad.gradients(graph, output, axes, _thin_box(axes, free, box, at), [free[-1]]).get(free[-1])


def meet(g: Interval, h: Interval | None) -> Interval:
    """``g`` intersected with ``h`` (two enclosures of the same values); ``g`` kept where the meet is empty."""
    if h is None:
        return g
    lo, hi = np.maximum(g[0], h[0]), np.minimum(g[1], h[1])
    keep = lo <= hi  # an empty intersection cannot happen for valid enclosures (rounding: keep g's)
    return np.where(keep, lo, g[0]), np.where(keep, hi, g[1])


def _uniform_linear(
    axes: Sequence[int],
    uniform: frozenset[int],
    point: _Jet,
    box: dict[int, tuple[np.ndarray, np.ndarray]],
    at: dict[int, tuple[np.ndarray, np.ndarray]],
    r2: dict[int, np.ndarray],
    rb: dict[int, np.ndarray],
    exact_uniform: frozenset[int] = frozenset(),
) -> np.ndarray:
    """A bound on ``E|sum_i c_i d_i|`` on each box that uses one coordinate's unimodal law on its cell.

    ``uniform``: the axes whose input law is unimodal (so is its restriction to every cell). With ``X = c_u d_u`` on
    a finite cell, ``mu = E X`` (``|mu| <= |c_u| b_u``) and ``X - mu`` supported in ``[-a, a]``, ``a = |c_u| (max(x' -
    lo, hi - x') + b_u)``: a unimodal density minus the constant ``1 / (2a)`` has the sign pattern ``-, +, -`` on ``[-a,
    a]`` (its superlevel sets are intervals), so by the Karlin-Novikoff cut criterion ``X - mu`` is below ``U(-a, a)``
    in convex order, and ``phi(r) = E|X - mu + r| <= (r^2 + a^2) / (2a)`` on ``|r| <= a`` (the uniform's), ``= |r|``
    beyond; both are ``<= t / 2 + r^2 / (2 t)`` for every ``t >= a`` (at ``|r| <= a`` the difference is ``(t - a) / 2
    (1 - r^2 / (a t)) >= 0``; beyond, by AM-GM). So with ``R = sum_{j != u} c_j d_j`` (independent) and ``s >= sqrt(E
    (R + mu)^2)``, ``s = sqrt(sum_{j != u} c_j^2 M_j) + sum_{j != u} |c_j| b_j + |mu|``:

        E|X - mu + R + mu| <= min_{t >= a} t / 2 + s^2 / (2 t) = s if s >= a, else a / 2 + s^2 / (2 a),

    below the L2 form ``sqrt(s^2 + a^2 / 3)`` (uniform) by up to 13-18 % where one coordinate carries most of the
    linear term (``s <~ a``), and free of that coordinate where the others' L2 norm exceeds its reach ``a``. The
    smallest over those axes is returned per box (infinite on unbounded cells). A uniform law's cell is centred: there
    ``a`` is the half-width and ``mu`` the centre's offset from the atom. ``a`` and ``mu`` are widened by ``1e-12`` of
    the cell's ends (rounding of the cell edges).
    """
    zero = (np.zeros(()), np.zeros(()))
    cs = {}
    for j in axes:
        gl, gh = point.g.get(j, zero)
        cs[j] = np.abs(0.5 * (gl + gh))
    best: Any = np.inf
    sq_all: Any = 0.0
    bs_all: Any = 0.0
    for j in axes:
        sq_all = sq_all + cs[j] * cs[j] * r2[j]
        bs_all = bs_all + cs[j] * rb[j]
    for u in axes:
        if u not in uniform:
            continue
        lo, hi = box[u]
        x = at[u][0]
        slack = 1e-12 * (np.abs(lo) + np.abs(hi))
        if u in exact_uniform:  # symmetric about the cell's centre
            a = cs[u] * (0.5 * (hi - lo) + slack)
            mu = cs[u] * (np.abs(0.5 * (lo + hi) - x) + slack)
        else:  # the mean within b_u of the atom; the support within max(x - lo, hi - x) of the atom
            a = cs[u] * (np.maximum(x - lo, hi - x) + rb[u] + slack)
            mu = cs[u] * (rb[u] + slack)
        # the sums without u, by subtraction (one pass over the axes: k products per box, not k^2), rounded up
        sq = np.maximum(sq_all - cs[u] * cs[u] * r2[u], 0.0) + 1e-12 * sq_all
        bs = np.maximum(bs_all - cs[u] * rb[u], 0.0) + 1e-12 * bs_all
        s = np.sqrt(sq) + bs + mu
        with np.errstate(all="ignore"):
            got = np.where(s >= a, s, 0.5 * a + s * s / (2.0 * np.where(a > 0, a, 1.0)))
        best = np.minimum(best, np.where(np.isnan(got), np.inf, got))
    return best
