"""Quotients of two linear forms in the same two positive values, as a monotone function of their ratio.

A node ``q = (alpha a + beta b) / (gamma a + delta b)`` with ``a, b > 0`` and ``gamma, delta > 0`` (the damped
oscillator's tuning parameter ``theta = (omega_p - omega_s) / ((omega_p + omega_s) / 2)``) is, with ``r = a / b``,

    q = alpha / gamma - K / (gamma (gamma r + delta)),   K = alpha delta - beta gamma,

monotone in ``r`` and bounded on ``r in (0, inf]`` (``q(inf) = alpha / gamma``), while interval arithmetic on the
numerator and denominator separately loses the dependency (and gives ``inf / inf`` on an unbounded cell). Its
log-derivative in any coordinate ``u_j`` is exact in the operands' elasticities:

    dq / du_j = K psi(r) (G_a,j - G_b,j),   psi(r) = r / (gamma r + delta)^2 = 1 / (gamma^2 r + 2 gamma delta + delta^2 / r),

``psi`` rising on ``(0, delta / gamma)`` to ``1 / (4 gamma delta)`` and falling after it (0 at both ends). The pass
of :mod:`opgraph.dcg.elastic` meets these enclosures with its own (never wider). :func:`plan` finds such nodes
(operands made of ``add``, ``sub``, ``neg``, ``identity`` and products / quotients by constants of two base nodes);
:func:`enclose` gives the value enclosure and the factor ``K psi`` from the operands' value enclosures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv

Interval = tuple[np.ndarray, np.ndarray]

#: Relative pad on the computed ends (a few roundings each).
_REL = 16 * float(np.finfo(float).eps)

#: Deepest chain of linear ops followed from an operand to its base nodes.
MAX_DEPTH = 6


def _const(graph: Any, i: int) -> float | None:
    n = graph.nodes[i]
    if n.op != "const":
        return None
    c = np.asarray(n.attrs["value"], dtype=float)
    return float(c) if c.ndim == 0 and math.isfinite(float(c)) else None


def linear2(graph: Any, i: int, depth: int = 0) -> dict[int, float] | None:
    """Node ``i`` as ``sum_b coef_b * node_b`` over at most two base nodes (a dict), or None.

    Followed ops: ``add``, ``sub``, ``neg``, ``identity``, ``pos``, ``mul`` and ``div`` by a constant; any other node
    is a base node of coefficient 1.
    """
    n = graph.nodes[i]
    op = n.op
    out: dict[int, float] | None = None
    if depth < MAX_DEPTH:
        if op in ("identity", "pos"):
            out = linear2(graph, n.inputs[0], depth + 1)
        elif op == "neg":
            a = linear2(graph, n.inputs[0], depth + 1)
            out = None if a is None else {k: -v for k, v in a.items()}
        elif op in ("add", "sub"):
            a = linear2(graph, n.inputs[0], depth + 1)
            b = linear2(graph, n.inputs[1], depth + 1)
            if a is not None and b is not None:
                s = 1.0 if op == "add" else -1.0
                out = dict(a)
                for k, v in b.items():
                    out[k] = out.get(k, 0.0) + s * v
        elif op in ("mul", "div"):
            c = _const(graph, n.inputs[1])
            other = n.inputs[0]
            if c is None and op == "mul":
                c, other = _const(graph, n.inputs[0]), n.inputs[1]
            if c is not None and c != 0.0:
                a = linear2(graph, other, depth + 1)
                f = c if op == "mul" else 1.0 / c
                out = None if a is None else {k: v * f for k, v in a.items()}
        else:
            return {i: 1.0} if op != "const" else None
    else:
        return {i: 1.0} if op != "const" else None
    if out is None:
        return {i: 1.0}
    if len(out) > 2 or not all(math.isfinite(v) for v in out.values()):
        return None
    return out


def plan(graph: Any, need: set[int]) -> dict[int, tuple[int, int, float, float, float, float]]:
    """Per ``div`` node of ``need`` of the form above: ``(a, b, alpha, beta, gamma, delta)``."""
    out: dict[int, tuple[int, int, float, float, float, float]] = {}
    for i in sorted(need):
        n = graph.nodes[i]
        if n.op != "div":
            continue
        num = linear2(graph, n.inputs[0])
        den = linear2(graph, n.inputs[1])
        if num is None or den is None or len(den) != 2 or not set(num) <= set(den):
            continue
        a, b = sorted(den)
        gamma, delta = den[a], den[b]
        if not (gamma > 0 and delta > 0):
            continue
        out[i] = (a, b, num.get(a, 0.0), num.get(b, 0.0), gamma, delta)
    return out


def _pad(x: np.ndarray, sign: float) -> np.ndarray:
    """``x`` moved outward (down for ``sign < 0``) by a few ulps and 1e-300; infinite ends kept."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isinf(x), x, x + sign * (np.abs(x) * _REL + 1e-300))


def enclose(
    av: Interval, bv: Interval, ok: np.ndarray, coef: tuple[float, float, float, float]
) -> tuple[Interval, Interval]:
    """The value enclosure of ``q`` and of ``K psi(r)`` (both the whole line where not ``ok``: ``a, b > 0`` unknown).

    Args:
        av: Enclosure of ``a`` (positive where ``ok``).
        bv: Enclosure of ``b`` (positive where ``ok``).
        ok: Boxes where both are known strictly positive.
        coef: ``(alpha, beta, gamma, delta)``.
    """
    alpha, beta, gamma, delta = coef
    with iv.errstate(all="ignore"):
        tiny = np.nextafter(0.0, 1.0)
        a0, a1 = np.maximum(av[0], tiny), av[1]
        b0, b1 = np.maximum(bv[0], tiny), bv[1]
        r0 = _pad(a0 / b1, -1.0)  # a0 / inf = 0: fine (psi(0) = 0, q(0) = beta / delta)
        r1 = _pad(a1 / b0, 1.0)
        r0 = np.where(np.isfinite(r0), np.maximum(r0, 0.0), 0.0)
        r1 = np.where(np.isnan(r1), np.inf, r1)
        k = alpha * delta - beta * gamma
        ek = 4 * _REL * (abs(alpha * delta) + abs(beta * gamma))
        c1 = alpha / gamma

        def q_of(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            t = gamma * (gamma * r + delta)  # in [gamma delta, inf]
            lo_t, hi_t = _pad(t, -1.0), _pad(t, 1.0)
            # -K / t with K in [k - ek, k + ek]: extremes at the corners
            cands = [-(k - ek) / lo_t, -(k - ek) / hi_t, -(k + ek) / lo_t, -(k + ek) / hi_t]
            lo = np.minimum.reduce(cands)
            hi = np.maximum.reduce(cands)
            return _pad(c1 + lo, -1.0) - abs(c1) * _REL, _pad(c1 + hi, 1.0) + abs(c1) * _REL

        q0, q1 = q_of(r0), q_of(r1)
        v = (np.minimum(q0[0], q1[0]), np.maximum(q0[1], q1[1]))

        def psi(r: np.ndarray) -> np.ndarray:
            den = gamma * gamma * r + 2 * gamma * delta + delta * delta / r  # inf at r = 0 and r = inf
            return np.where(np.isfinite(den), 1.0 / den, 0.0)

        p0, p1 = psi(r0), psi(r1)
        peak = delta / gamma
        inside = (r0 <= peak) & (peak <= r1)
        plo = _pad(np.minimum(p0, p1), -1.0)
        phi = _pad(np.where(inside, 1.0 / (4 * gamma * delta), np.maximum(p0, p1)), 1.0)
        plo = np.maximum(plo, 0.0)
        cands = [(k - ek) * plo, (k - ek) * phi, (k + ek) * plo, (k + ek) * phi]
        f = (_pad(np.minimum.reduce(cands), -1.0), _pad(np.maximum.reduce(cands), 1.0))
    inf = np.inf
    v = (np.where(ok, v[0], -inf), np.where(ok, v[1], inf))
    f = (np.where(ok, f[0], -inf), np.where(ok, f[1], inf))
    return v, f
