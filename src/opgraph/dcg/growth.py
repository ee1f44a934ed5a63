"""Polynomial growth majorants for the tails of unbounded inputs ("moment-weighted" cell bounds).

For a node that depends on a single unbounded input ``x``, track two polynomials in ``r = |x|`` with
non-negative coefficients, valid for *every* real ``x``: ``|F(x)| <= Pv(|x|)`` and ``|F'(x)| <= Pd(|x|)``
(Clarke gradients at kinks). Then on an unbounded cell C with atom a,

    E[|F(X) - F(a)|; C] <= E[Pd(|X| + |a|) * (|X| + |a|); C] = sum_j q_j E[|X|^j; C],

a finite number whenever the input law has the needed absolute moments (closed forms for Normal, Gamma,
Exponential, LogNormal). Ops without a polynomial majorant (exp, log, division, sqrt, ...) give ``None``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np

Poly = np.ndarray
Growth = tuple[Poly, Poly]

MAX_DEGREE = 12


def padd(a: Poly, b: Poly) -> Poly:
    """A + b."""
    n = max(a.size, b.size)
    out = np.zeros(n)
    out[: a.size] += a
    out[: b.size] += b
    return out


def pmul(a: Poly, b: Poly) -> Poly:
    """A * b."""
    return np.convolve(a, b)


def const(c: float) -> Poly:
    """The constant polynomial |c|."""
    return np.array([abs(float(c))])


def variable() -> Growth:
    """Growth of the input itself: |x| <= r, |d x / d x| = 1."""
    return np.array([0.0, 1.0]), np.array([1.0])


GrowthRule = Callable[[list[Growth], list[float | None]], Growth | None]


def _sum(g: list[Growth], consts: list[float | None]) -> Growth:
    """``a + b``, ``a - b``, ``max(a, b)``, ``min(a, b)``: |value| and |derivative| add."""
    return padd(g[0][0], g[1][0]), padd(g[0][1], g[1][1])


def _same(g: list[Growth], consts: list[float | None]) -> Growth:
    """``-a``, ``|a|``, ``relu(a)``, identities: the operand's majorants."""
    return g[0]


def _mul(g: list[Growth], consts: list[float | None]) -> Growth:
    (v1, d1), (v2, d2) = g
    return pmul(v1, v2), padd(pmul(d1, v2), pmul(v1, d2))


def _square(g: list[Growth], consts: list[float | None]) -> Growth:
    v, d = g[0]
    return pmul(v, v), 2 * pmul(v, d)


def _pow(g: list[Growth], consts: list[float | None]) -> Growth | None:
    """``a ** k`` for a constant integer ``0 <= k <= MAX_DEGREE``."""
    c = consts[1]
    if c is None or c < 0 or not float(c).is_integer() or c > MAX_DEGREE:
        return None
    k = int(c)
    v, d = g[0]
    if k == 0:
        return const(1.0), const(0.0)
    vk = np.array([1.0])
    for _ in range(k - 1):
        vk = pmul(vk, v)
    return pmul(vk, v), k * pmul(vk, d)


def _bounded(value: float, deriv: float) -> GrowthRule:
    """A bounded op ``|f| <= value`` with ``|f'| <= deriv``: ``|d f(a)| <= deriv |d a|``."""

    def rule(g: list[Growth], consts: list[float | None]) -> Growth:
        return const(value), deriv * g[0][1]

    return rule


def _none(g: list[Growth], consts: list[float | None]) -> None:
    """No polynomial majorant (exp, log, division, sqrt, steps, comparisons, ...): tails use other bounds."""
    return None


#: Growth rule of every op :mod:`opgraph.dcg` evaluates (the same keys as :data:`opgraph.dcg.intervals.RULES`):
#: ``RULES[op](operand growths, operand constants)`` returns the node's ``(Pv, Pd)`` or ``None`` where the op has no
#: polynomial majorant (:func:`_none`).
RULES: dict[str, GrowthRule] = {
    "add": _sum,
    "sub": _sum,
    "mul": _mul,
    "div": _none,
    "pow": _pow,
    "mod": _none,
    "neg": _same,
    "abs": _same,
    "lt": _none,
    "le": _none,
    "gt": _none,
    "ge": _none,
    "eq": _none,
    "ne": _none,
    "where": _none,
    "sin": _bounded(1.0, 1.0),
    "cos": _bounded(1.0, 1.0),
    "tan": _none,
    "arcsin": _none,
    "arccos": _none,
    "arctan": _bounded(np.pi / 2, 1.0),
    "sinh": _none,
    "cosh": _none,
    "tanh": _bounded(1.0, 1.0),
    "arcsinh": _none,
    "arctanh": _none,
    "exp": _none,
    "exp2": _none,
    "expm1": _none,
    "log": _none,
    "log1p": _none,
    "log2": _none,
    "log10": _none,
    "sqrt": _none,
    "rsqrt": _none,
    "cbrt": _none,
    "square": _square,
    "reciprocal": _none,
    "sign": _none,
    "floor": _none,
    "ceil": _none,
    "rint": _none,
    "maximum": _sum,
    "minimum": _sum,
    "arctan2": _none,
    "hypot": _none,
    "erf": _bounded(1.0, 2 / np.sqrt(np.pi)),
    "sigmoid": _bounded(1.0, 0.25),
    "relu": _same,
    "identity": _same,
    "copy": _same,
    "contiguous": _same,
    "convert": _same,
}
RULES.update(
    dict.fromkeys(("and", "or", "xor", "not", "logical_and", "logical_or", "logical_xor", "logical_not"), _none)
)


def rule(op: str, args: list[Growth | None], consts: list[float | None]) -> Growth | None:
    """Growth pair of ``op`` from its operands' (``None`` when no polynomial majorant is known)."""
    if any(g is None for g in args):
        return None
    fn = RULES.get(op, _none)
    res = fn([a for a in args if a is not None], consts)
    if res is None or res[0].size > MAX_DEGREE + 1 or res[1].size > MAX_DEGREE + 1:
        return None
    return res


def tail_bound(pd: Poly, atom: np.ndarray, moments: list[np.ndarray]) -> np.ndarray:
    """``sum_j q_j E[|X|^j; C]`` for ``Q(r) = Pd(r + |a|) (r + |a|)``, per cell.

    Args:
        pd: Derivative majorant coefficients (low to high degree).
        atom: The atom of each cell.
        moments: ``moments[j][cell]`` = an upper bound on ``E[|X|^j; cell]`` for ``j = 0 .. len(pd)``.
    """
    A = np.abs(atom)
    total = np.zeros(np.shape(atom))
    # Pd(r + A) * (r + A) = sum_i pd_i (r + A)^(i + 1) = sum_i pd_i sum_j C(i+1, j) A^(i+1-j) r^j.
    for i, c in enumerate(pd):
        if c == 0:
            continue
        for j in range(i + 2):
            total = total + c * comb(i + 1, j) * A ** (i + 1 - j) * moments[j]
    return total * (1 + 1e-12)
