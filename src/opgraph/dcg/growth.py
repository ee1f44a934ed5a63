"""Polynomial growth majorants for the tails of unbounded inputs ("moment-weighted" cell bounds).

For a node that depends on a single unbounded input ``x``, track two polynomials in ``r = |x|`` with
non-negative coefficients, valid for *every* real ``x``: ``|F(x)| <= Pv(|x|)`` and ``|F'(x)| <= Pd(|x|)``
(Clarke gradients at kinks). Then on an unbounded cell C with atom a,

    E[|F(X) - F(a)|; C] <= E[Pd(|X| + |a|) * (|X| + |a|); C] = sum_j q_j E[|X|^j; C],

a finite number whenever the input law has the needed absolute moments (closed forms for Normal, Gamma,
Exponential, LogNormal). Ops without a polynomial majorant (exp, log, division, sqrt, ...) give ``None``.
"""

from __future__ import annotations

from math import comb

import numpy as np

Poly = np.ndarray
Growth = tuple[Poly, Poly]

_BOUNDED_VALUE = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "arctan": np.pi / 2, "erf": 1.0, "sigmoid": 1.0}
_DERIV_FACTOR = {"sin": 1.0, "cos": 1.0, "tanh": 1.0, "arctan": 1.0, "erf": 2 / np.sqrt(np.pi), "sigmoid": 0.25}
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


def rule(op: str, args: list[Growth | None], consts: list[float | None]) -> Growth | None:
    """Growth pair of ``op`` from its operands' (``None`` when no polynomial majorant is known)."""
    if any(g is None for g in args):
        return None
    g = [a for a in args if a is not None]
    if op in ("add", "sub"):
        res = padd(g[0][0], g[1][0]), padd(g[0][1], g[1][1])
    elif op in ("neg", "abs", "identity", "copy", "contiguous", "convert"):
        res = g[0]
    elif op == "mul":
        (v1, d1), (v2, d2) = g
        res = pmul(v1, v2), padd(pmul(d1, v2), pmul(v1, d2))
    elif op == "square":
        v, d = g[0]
        res = pmul(v, v), 2 * pmul(v, d)
    elif op == "pow":
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
        res = pmul(vk, v), k * pmul(vk, d)
    elif op in _BOUNDED_VALUE:
        res = const(_BOUNDED_VALUE[op]), _DERIV_FACTOR[op] * g[0][1]
    elif op in ("maximum", "minimum"):
        res = padd(g[0][0], g[1][0]), padd(g[0][1], g[1][1])
    elif op == "relu":
        res = g[0]
    else:
        return None
    if res[0].size > MAX_DEGREE + 1 or res[1].size > MAX_DEGREE + 1:
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
