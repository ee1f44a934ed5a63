"""Closed-form envelopes of a one-input chain on the tail cells of an unbounded input.

A tail cell ``T`` of an unbounded (or singular-ended) input ``X`` is never enclosed by intervals: for a node
``F`` that depends on ``X`` alone, its contribution to the cellwise W1 bound is charged as

    E[|F(X) - F(a)|; T] <= E[env(X); T] + |F(a)| P(T),

with an envelope ``env >= |F|`` on ``T`` that is a short sum of terms ``c |x|^p`` or ``c e^{a x}`` (``c >= 0``)
plus a constant ``off <= 0``, whose partial moments have closed forms (:func:`opgraph.dcg.tails.partial_moment`;
``/work/shared/research/dcg-real.md`` §1). Envelopes compose per op: sums add, products multiply term by term,
``exp`` of an affine node is one exponential term, ``log`` of a monomial uses
``log x <= (x^h - 1) / h`` (``x >= 1``) and ``-log x <= (x^-h - 1) / h`` (``x <= 1``), quotients need the
denominator as an exact monomial ``c |x|^p`` or ``c e^{a x}`` (its reciprocal is again one). Ops outside these
forms give ``None`` (no envelope: the bound stays ``inf`` where nothing else is finite).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from opgraph.dcg import logic
from opgraph.dcg.distributions import Distribution, Gamma, LogNormal, Normal, Uniform
from opgraph.dcg.errors import DistError
from opgraph.dcg.tails import partial_moment

#: Exponent ``h`` of the power bounds of ``log`` (``log x <= (x^h - 1) / h``): relative slack about ``h log(x) / 2``.
LOG_H = 0.05
#: Relative slack added to every closed-form moment (floating-point evaluation of erf / incomplete Gamma).
SLACK = 1e-8

Term = tuple[float, str, float]  # (c >= 0, kind "power" | "exp", exponent): c |x|^a or c e^{a x}


@dataclass(frozen=True)
class Region:
    """A tail region of one input: ``X > t`` (``side="upper"``) or ``X < t`` (``"lower"``), ``x`` in ``[xlo, xhi]``."""

    law: Distribution
    side: str
    t: float
    xlo: float
    xhi: float


@dataclass(frozen=True)
class Env:
    """``|F(x)| <= sum(terms) + off`` on a region; ``affine``: ``F = alpha x + beta`` exactly; ``mono``: ``F = c g(x)``."""

    terms: tuple[Term, ...]
    off: float = 0.0
    affine: tuple[float, float] | None = None
    mono: tuple[float, str, float] | None = None


def _norm(c: float, kind: str, a: float) -> Term:
    return (c, "power", 0.0) if a == 0 else (c, kind, a)


def _merge(terms: list[Term]) -> tuple[Term, ...]:
    acc: dict[tuple[str, float], float] = {}
    for c, kind, a in terms:
        if c == 0:
            continue
        key = (kind, a) if a != 0 else ("power", 0.0)
        acc[key] = acc.get(key, 0.0) + c
    return tuple((c, k, a) for (k, a), c in acc.items())


def constant(c: float) -> Env:
    """The envelope of a constant node."""
    return Env(((abs(c), "power", 0.0),) if c else (), 0.0, (0.0, c), (c, "power", 0.0) if c else None)


def variable(region: Region) -> Env:
    """The envelope of the input itself on ``region``: ``|x|``, exactly ``x`` (and ``+-|x|`` off 0)."""
    mono = (1.0, "power", 1.0) if region.xlo >= 0 else (-1.0, "power", 1.0) if region.xhi <= 0 else None
    return Env(((1.0, "power", 1.0),), 0.0, (1.0, 0.0), mono)


def _from_mono(c: float, kind: str, a: float) -> Env:
    return Env((_norm(abs(c), kind, a),), 0.0, (0.0, c) if a == 0 else None, (c, kind, a))


def _from_affine(alpha: float, beta: float) -> Env:
    terms = _merge([(abs(beta), "power", 0.0), (abs(alpha), "power", 1.0)])
    mono = (beta, "power", 0.0) if alpha == 0 and beta else None
    return Env(terms, 0.0, (alpha, beta), mono)


def _tmul(s: Term, u: Term) -> Term | None:
    (c1, k1, a1), (c2, k2, a2) = s, u
    if a1 == 0:
        return _norm(c1 * c2, k2, a2)
    if a2 == 0:
        return _norm(c1 * c2, k1, a1)
    if k1 != k2:
        return None  # |x|^p e^{a x}: no closed-form partial moment here
    return _norm(c1 * c2, k1, a1 + a2)


def _mul(u: Env, w: Env) -> Env | None:
    terms = []
    for s in u.terms:
        for v in w.terms:
            t = _tmul(s, v)
            if t is None:
                return None
            terms.append(t)
    mono = None
    if u.mono is not None and w.mono is not None:
        m = _tmul((1.0, u.mono[1], u.mono[2]), (1.0, w.mono[1], w.mono[2]))
        mono = None if m is None else (u.mono[0] * w.mono[0], m[1], m[2])
    affine = None
    if u.affine is not None and w.affine is not None:
        if u.affine[0] == 0:
            affine = (u.affine[1] * w.affine[0], u.affine[1] * w.affine[1])
        elif w.affine[0] == 0:
            affine = (w.affine[1] * u.affine[0], w.affine[1] * u.affine[1])
    return Env(_merge(terms), 0.0, affine, mono)


def _recip(w: Env) -> Env | None:
    if w.mono is None or w.mono[0] == 0:
        return None
    c, kind, a = w.mono
    return _from_mono(1.0 / c, kind, -a)


def _pow(u: Env, q: float) -> Env | None:
    if u.mono is not None:
        c, kind, a = u.mono
        if c > 0 or float(q).is_integer():
            cq = abs(c) ** q * (1.0 if c > 0 or int(q) % 2 == 0 else -1.0)
            return _from_mono(cq, kind, a * q)
        return None
    if q <= 0 or not u.terms:
        return None
    scale = max(1.0, len(u.terms) ** (q - 1.0))  # (sum y_i)^q <= n^(q-1) sum y_i^q (q >= 1), subadditive (q < 1)
    return Env(_merge([_norm(scale * c**q, k, a * q) for c, k, a in u.terms]))


def _log(u: Env, region: Region, scale: float = 1.0) -> Env | None:
    if u.mono is None or u.mono[0] <= 0:
        return None
    c, kind, a = u.mono
    if kind == "exp":
        return _from_affine(scale * a, scale * math.log(c))
    if a == 0:
        return constant(scale * math.log(c))
    if region.xlo < 0:
        return None
    h, lc = LOG_H, abs(math.log(c))
    # |log u| <= |log c| + |a| |log x|, with |log x| bounded by powers x^{+-h} of x (both where x straddles 1).
    if region.xlo >= 1:
        parts, off = [(1 / h, "power", h)], -1 / h
    elif region.xhi <= 1:
        parts, off = [(1 / h, "power", -h)], -1 / h
    else:
        parts, off = [(1 / h, "power", h), (1 / h, "power", -h)], -1 / h
    k = abs(a) * scale
    return Env(_merge([(scale * lc, "power", 0.0)] + [(k * p, kind_, e) for p, kind_, e in parts]), k * off)


_BOUNDED = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "arctan": math.pi / 2, "erf": 1.0, "sigmoid": 1.0}
_SAME = ("identity", "copy", "contiguous", "convert")


def rule(op: str, args: list[Env | None], consts: list[float | None], region: Region) -> Env | None:
    """The envelope of ``op`` on ``region`` from its operands' (``None`` where no closed form applies)."""
    if op in logic.TRUTH_VALUED:  # a comparison or a truth op of them: 0 or 1
        return constant(1.0)
    if op == "where":  # |where(c, u, w)| <= |u| + |w|
        u, w = args[1], args[2]
        return None if u is None or w is None else Env(_merge(list(u.terms) + list(w.terms)), u.off + w.off)
    if any(e is None for e in args):
        return None
    e: list[Env] = [x for x in args if x is not None]
    if op in _SAME:
        return e[0]
    if op == "neg":
        u = e[0]
        aff = None if u.affine is None else (-u.affine[0], -u.affine[1])
        mono = None if u.mono is None else (-u.mono[0], u.mono[1], u.mono[2])
        return Env(u.terms, u.off, aff, mono)
    if op == "abs":
        u = e[0]
        mono = None if u.mono is None else (abs(u.mono[0]), u.mono[1], u.mono[2])
        return Env(u.terms, u.off, None, mono)
    if op == "relu":
        return Env(e[0].terms, e[0].off)
    if op in ("add", "sub", "maximum", "minimum"):
        u, w = e
        aff = None
        if op != "maximum" and op != "minimum" and u.affine is not None and w.affine is not None:
            sg = 1.0 if op == "add" else -1.0
            aff = (u.affine[0] + sg * w.affine[0], u.affine[1] + sg * w.affine[1])
            return _from_affine(*aff)
        return Env(_merge(list(u.terms) + list(w.terms)), u.off + w.off)
    if op == "mul":
        return _mul(e[0], e[1])
    if op == "div":
        r = _recip(e[1])
        return None if r is None else _mul(e[0], r)
    if op == "reciprocal":
        return _recip(e[0])
    if op in ("exp", "exp2", "expm1"):
        aff = e[0].affine
        if aff is None:
            return None
        s = math.log(2.0) if op == "exp2" else 1.0
        out = _from_mono(math.exp(s * aff[1]), "exp", s * aff[0])
        if op == "expm1":
            return Env(_merge(list(out.terms) + [(1.0, "power", 0.0)]))
        return out
    if op in ("log", "log2", "log10"):
        return _log(e[0], region, {"log": 1.0, "log2": 1 / math.log(2.0), "log10": 1 / math.log(10.0)}[op])
    if op == "sqrt":
        return _pow(e[0], 0.5)
    if op == "rsqrt":
        return _pow(e[0], -0.5)
    if op == "square":
        return _pow(e[0], 2.0)
    if op == "pow":
        q = consts[1] if len(consts) > 1 else None
        return None if q is None or not math.isfinite(q) else _pow(e[0], q)
    if op in ("sinh", "cosh"):
        aff = e[0].affine
        if aff is None:
            return None
        al, be = aff
        return Env(_merge([(0.5 * math.exp(be), "exp", al), (0.5 * math.exp(-be), "exp", -al)]))
    if op in _BOUNDED:
        return constant(_BOUNDED[op])
    return None


def _abs_power_across_zero(law: Distribution, a: float, t: float, side: str) -> float:
    """``E[|X|^a; region]`` (``a > 0``) on a tail region that contains 0 (a Normal's tail cell past its mean).

    An odd integer power splits at 0: ``E[X^a; 0 < X < t] - E[X^a; X < 0]`` (lower side, ``t > 0``), likewise on
    the upper side; every piece is a closed-form partial moment, and the difference is padded by 1e-12 of the
    pieces' magnitude for its rounding. Other powers use the two even powers around ``a`` (:func:`_even_powers`).
    """
    if float(a).is_integer():
        whole = partial_moment(law, "power", a, t, side)
        half = partial_moment(law, "power", a, 0.0, side)  # the part beyond 0, away from t
        # lower: E[X^a; X<t] = half + E[X^a; 0<X<t]; |X|^a = -X^a below 0 (odd a). upper: symmetric.
        m = (whole - 2.0 * half) if side == "lower" else (2.0 * half - whole)
        return m + 1e-12 * (abs(whole) + 2.0 * abs(half))
    return _even_powers(law, a, t, side)


def _even_powers(law: Distribution, a: float, t: float, side: str) -> float:
    """``E[|X|^a; region] <= E[X^(2j); region] + E[X^(2j+2); region]`` with ``2j <= a <= 2j + 2`` (any sign of X)."""
    lo = 2.0 * math.floor(a / 2.0)
    return partial_moment(law, "power", lo, t, side) + partial_moment(law, "power", lo + 2.0, t, side)


def _term_moment(c: float, kind: str, a: float, r: Region) -> float:
    try:
        if kind == "exp" or a == 0:
            m = partial_moment(r.law, kind, a, r.t, r.side)
        elif r.xlo >= 0:
            try:
                m = partial_moment(r.law, "power", a, r.t, r.side)
            except DistError:
                if a < 0 or float(a).is_integer():
                    raise
                m = _even_powers(r.law, a, r.t, r.side)  # a fractional power of a Normal (no closed form here)
        elif float(a).is_integer() and (r.xhi <= 0 or int(a) % 2 == 0):
            m = partial_moment(r.law, "power", a, r.t, r.side) * (-1.0 if r.xhi <= 0 and int(a) % 2 else 1.0)
        elif a > 0 and (r.t > 0 if r.side == "lower" else r.t < 0):
            m = _abs_power_across_zero(r.law, a, r.t, r.side)
        elif a > 0:
            m = _even_powers(r.law, a, r.t, r.side)  # a fractional power of negative values
        else:
            return math.inf
    except DistError:
        return math.inf
    if math.isnan(m):
        return math.inf
    return c * max(m, 0.0)


def moment(env: Env, region: Region) -> float:
    """An upper bound on ``E[|F(X)|; X in region]`` from the envelope (``inf`` where a moment does not exist)."""
    total = 0.0
    for c, kind, a in env.terms:
        total += _term_moment(c, kind, a, region)
        if math.isinf(total):
            return math.inf
    p = partial_moment(region.law, "power", 0.0, region.t, region.side)
    total = total + env.off * p
    return max(total, 0.0) * (1 + SLACK) + 1e-300


def cell_bound(env: Env | None, region: Region, value: float, flo: float = -math.inf, fhi: float = math.inf) -> float:
    """An upper bound on ``E[|F(X) - value|; region]`` (``inf`` without an envelope).

    With ``m = E[env(X); region] >= E|F(X)|`` and ``p = P(region)``: ``m + |value| p`` always; where an enclosure
    ``F >= flo`` on the region is finite, ``E|D| = E[D] + 2 E[D^-] <= m - value p + 2 (value - flo)^+ p``
    (``D = F(X) - value``), and symmetrically with ``F <= fhi``. The smallest of these is returned.
    """
    if env is None or not math.isfinite(value):
        return math.inf
    mass = partial_moment(region.law, "power", 0.0, region.t, region.side)
    m = moment(env, region)
    best = m + abs(value) * mass
    if math.isfinite(flo):
        best = min(best, m - value * mass + 2 * max(value - flo, 0.0) * mass)
    if math.isfinite(fhi):
        best = min(best, m + value * mass + 2 * max(fhi - value, 0.0) * mass)
    return max(best, 0.0) * (1 + SLACK) + 1e-300


def regions(law: Any, lo: Any, hi: Any) -> dict[int, Region]:
    """The tail regions of a quantized input: its first cell (``X < hi[0]``) and last cell (``X > lo[-1]``)."""
    from opgraph.dcg.truncation import Truncated

    if not isinstance(law.base if isinstance(law, Truncated) else law, Normal | LogNormal | Gamma | Uniform):
        return {}
    sup = law.support()
    n = len(lo)
    out = {}
    if lo[0] <= sup[0]:
        out[0] = Region(law, "lower", float(hi[0]), float(max(lo[0], sup[0])), float(hi[0]))
    if hi[n - 1] >= sup[1] and n > 1:
        out[n - 1] = Region(law, "upper", float(lo[n - 1]), float(lo[n - 1]), float(min(hi[n - 1], sup[1])))
    return out
