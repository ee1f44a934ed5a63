"""Cancellation rewrites: a common factor taken out of a sum before the interval enclosures see it.

Interval derivatives lose a factor ``u`` that a program multiplies in and divides out again: in the borehole
function ``lg * (1 + N / (lg * M) + T)`` the derivative in ``lg`` is ``(1 + N / (lg M) + T) - N / (lg M)``,
and on a box the two ``N / (lg M)`` enclosures do not cancel, so the first-order term of every input behind
``lg`` is charged the width of ``N / (lg M)`` (the borehole's ``r``: 5.4 output stds at 4 atoms against a true
effect of 4e-4 std). Two exact rewrites remove such factors:

* **distribute** ``u * (s_1 + ... + s_k) = sum_i u s_i`` when some ``s_i`` has ``u`` as a factor of its
  denominator, each product simplified by cancelling ``u`` against it (``u * N / (u M) = N / M``);
* **divide through** ``(u N) / (s_1 + ... + s_k) = N / sum_i (s_i / u)`` when some ``s_i`` has ``u`` as a
  factor of its numerator (``T_u ... / (... + T_u / T_l)`` in the borehole: the output hardly depends on
  ``T_u``, which the enclosures saw twice);
* **clear a denominator** ``N / (s_1 + ... + s_k) = (N u) / sum_i (u s_i)`` when some ``s_i`` has ``u`` as a
  factor of its denominator (the borehole's ``2 L T_u / (lg r_w^2 K_w)``: ``C / (a + b / r_w^2)`` has an
  interval derivative in ``r_w`` that is off by the ratio of ``r_w^-3`` at the two ends of a cell; ``C r_w^2 /
  (a r_w^2 + b)`` does not). A factor divided through is not cleared again (and vice versa);
* **cancel** ``u`` and ``1 / u`` in one product tree (read also through ``x ** k``, ``|k| <= 3``: the piston's
  ``S^2 q / V^2`` with ``V = 2 S q / R`` becomes ``R^2 / (4 q)``);
* **rationalize** ``sqrt(a^2 + b) - a = b / (sqrt(a^2 + b) + a)`` where ``b > 0`` on the supports (exact there:
  ``sqrt(a^2 + b) + a > 0``), which exposes ``b``'s factors to the cancellation: the piston's volume
  ``S / (2 k) * (sqrt(A^2 + 4 k c) - A)`` becomes ``S * 4 c / (2 (sqrt(A^2 + 4 k c) + A))``.

Factors and summands are read through ``mul``/``div`` and ``add``/``sub``/``neg`` trees (a bounded number of
leaves). Both rewrites change the value only by floating-point rounding, and only where ``u = 0`` (the original
divides by ``u`` there): a rewrite is used only where an interval evaluation over the inputs' supports keeps ``u``
away from 0, or where :func:`signs` shows ``u != 0`` with probability 1 (a sum of LogNormals), so the rewritten
program equals the original almost surely and has the same output law. :func:`opgraph.dcg.engine.evaluate_output`
evaluates the rewritten graph beside the original and keeps the smaller certified bound (``info["cancelled"]``).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from opgraph.dcg import intervals as iv
from opgraph.dcg.enclose import _sqrt_sum
from opgraph.dcg.semidiscrete import const_value
from opgraph.graph import Graph, Node

#: Whether :func:`opgraph.dcg.engine.evaluate_output` tries the rewrites (``ENABLED.set(False)``: the engine
#: without them, for before / after measurements).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_cancel", default=True)
#: Graphs larger than this are not searched (the 1,000-step ODEs: nothing to gain, and the search would cost).
MAX_NODES = 400
#: Most leaves read in one factor / summand tree, and most rewrites applied to one output.
MAX_LEAVES = 24
MAX_REWRITES = 8

Signed = list[tuple[int, int]]  # (node id, +1 or -1): a factor with its exponent, or a summand with its sign


def _int_power(graph: Graph, n: Node) -> int | None:
    """``k`` where node ``n`` is ``x ** k`` (or ``square(x)``) with an integer ``1 <= |k| <= 3``, else None."""
    if n.op == "square" and len(n.inputs) == 1:
        return 2
    if n.op == "pow" and len(n.inputs) == 2:
        c = const_value(graph, n.inputs[1])
        if c is not None and c == int(c) and 1 <= abs(c) <= 3:
            return int(c)
    return None


def factors(graph: Graph, i: int, powers: bool = False) -> Signed:
    """The factors of node ``i`` through ``mul``/``div`` (exponent +1 in a numerator, -1 in a denominator).

    ``powers``: also through small integer powers (``x ** 2`` is ``x`` twice; :func:`_find`'s *cancel* only).
    """
    out: Signed = []

    def walk(j: int, e: int) -> None:
        n = graph.nodes[j]
        k = _int_power(graph, n) if powers else None
        if len(out) < MAX_LEAVES and n.op in ("mul", "div") and len(n.inputs) == 2:
            walk(n.inputs[0], e)
            walk(n.inputs[1], e if n.op == "mul" else -e)
        elif len(out) < MAX_LEAVES and k is not None:
            for _ in range(abs(k)):
                walk(n.inputs[0], e if k > 0 else -e)
        else:
            out.append((j, e))

    walk(i, 1)
    return out


def summands(graph: Graph, i: int) -> Signed:
    """The summands of node ``i`` through ``add``/``sub``/``neg`` with their signs."""
    out: Signed = []

    def walk(j: int, s: int) -> None:
        n = graph.nodes[j]
        if len(out) < MAX_LEAVES and n.op in ("add", "sub") and len(n.inputs) == 2:
            walk(n.inputs[0], s)
            walk(n.inputs[1], s if n.op == "add" else -s)
        elif len(out) < MAX_LEAVES and n.op == "neg":
            walk(n.inputs[0], -s)
        else:
            out.append((j, s))

    walk(i, 1)
    return out


def _cancel(fs: Signed, u: int, e: int) -> Signed:
    """``fs`` times ``u**e``: one opposite occurrence of ``u`` cancelled, else ``(u, e)`` appended."""
    out = list(fs)
    k = next((k for k, (j, x) in enumerate(out) if j == u and x == -e), None)
    if k is None:
        return [*out, (u, e)]
    del out[k]
    return out


def supports(graph: Graph, dists: dict[str, Any]) -> list[tuple[float, float]]:
    """An interval enclosure of every node's value over the inputs' supports (the interval rules, outward)."""
    enc: list[tuple[float, float]] = []
    for n in graph.nodes:
        if n.op == "input":
            d = dists.get(n.attrs["name"])
            lo, hi = d.support() if d is not None and hasattr(d, "support") else (-math.inf, math.inf)
            enc.append((float(lo), float(hi)))
        elif n.op == "const":
            v = np.asarray(n.attrs["value"], dtype=float)
            enc.append((float(np.min(v)), float(np.max(v))) if v.size else (0.0, 0.0))
        elif n.op in iv.RULES:
            args = [(np.array(enc[j][0]), np.array(enc[j][1])) for j in n.inputs]
            try:
                with np.errstate(all="ignore"):
                    (lo, hi), _ = iv.rule(n.op, args, n.attrs)
                lo_f, hi_f = float(np.min(lo)), float(np.max(hi))
            except Exception:  # an op whose rule needs more than a scalar interval: unknown range
                lo_f, hi_f = -math.inf, math.inf
            enc.append((-math.inf, math.inf) if math.isnan(lo_f) or math.isnan(hi_f) else (lo_f, hi_f))
        else:
            enc.append((-math.inf, math.inf))
    return enc


def signs(graph: Graph, dists: dict[str, Any], enc: list[tuple[float, float]]) -> list[int]:
    """Per node +1 (-1) where its value is > 0 (< 0) with probability 1, else 0.

    Beyond the enclosures (``enc``): a continuous input law on ``[0, inf)`` is ``> 0`` almost surely (a LogNormal,
    a Gamma), and signs pass exactly through ``* / neg sqrt exp`` and constant powers, and through ``+`` of two
    values of one sign. So ``zt_p + zt_s`` of two LogNormals is nonzero although its enclosure reaches 0.
    """
    from opgraph.dcg.distributions import Continuous  # noqa: PLC0415  (a cheap module; avoids an import cycle)

    out: list[int] = []
    for n in graph.nodes:
        lo, hi = enc[n.id]
        sg = 1 if lo > 0 else -1 if hi < 0 else 0
        ins = [out[j] for j in n.inputs]
        if sg == 0:
            if n.op == "input":
                d = dists.get(n.attrs["name"])
                if isinstance(d, Continuous) and lo >= 0:
                    sg = 1
                elif isinstance(d, Continuous) and hi <= 0:
                    sg = -1
            elif n.op in ("mul", "div") and len(ins) == 2:
                sg = ins[0] * ins[1]
            elif n.op == "neg" and ins:
                sg = -ins[0]
            elif n.op in ("sqrt", "exp", "exp2") and ins:
                sg = 1 if n.op != "sqrt" or ins[0] == 1 else 0
            elif n.op == "add" and len(ins) == 2 and ins[0] == ins[1]:
                sg = ins[0]
            elif n.op == "pow" and len(ins) == 2 and ins[0] == 1:
                sg = 1
            elif n.op == "pow" and len(ins) == 2 and ins[0] != 0:
                c = const_value(graph, n.inputs[1])
                if c is not None and c == int(c):
                    sg = ins[0] if int(c) % 2 else 1  # an odd power keeps the sign, an even one is > 0
        out.append(sg)
    return out


def _nonzero(enc: list[tuple[float, float]], u: int, sg: list[int] | None = None) -> bool:
    lo, hi = enc[u]
    return lo > 0 or hi < 0 or (sg is not None and sg[u] != 0)


#: A denominator factor is cleared only where its range spans more than this ratio (``1 / u`` then varies by as
#: much over a cell; a narrow factor such as a Uniform(63, 116) only gains an extra occurrence).
CLEAR_RATIO = 4.0


def _wide(enc: list[tuple[float, float]], u: int) -> bool:
    lo, hi = (abs(x) for x in enc[u])
    return max(lo, hi) > CLEAR_RATIO * min(lo, hi)


def _sig(graph: Graph, i: int, depth: int = 6) -> str:
    """A structural key of node ``i`` (stable across the rebuilt graphs of successive rewrites)."""
    n = graph.nodes[i]
    if n.op == "input":
        return f"in:{n.attrs['name']}"
    if n.op == "const":
        return f"c:{const_value(graph, i)!r}"
    if depth == 0:
        return f"{n.op}:?"
    return f"{n.op}(" + ",".join(_sig(graph, j, depth - 1) for j in n.inputs) + ")"


def _find(
    graph: Graph, enc: list[tuple[float, float]], used: set[str], sg: list[int] | None = None
) -> tuple[int, str, int, int] | None:
    """The first rewrite that applies: ``(node, kind, u, sum node)``.

    Kinds: ``"distribute"`` (``u * S``), ``"divide"`` (``u N / S``, ``u`` a factor of a summand's numerator) and
    ``"clear"`` (``N / S``, ``u`` a factor of a summand's denominator: ``N u / (u S)``). A factor divided through
    is never cleared again and vice versa (``used``: the two undo each other).
    """
    for n in graph.nodes:  # first the rewrites that only remove occurrences
        if n.op == "sub" and len(n.inputs) == 2:
            b_ = _sqrt_sum(graph, n.inputs[0], n.inputs[1])
            if b_ is not None and enc[b_][0] > 0:
                return n.id, "rationalize", n.inputs[1], b_
        if n.op in ("mul", "div") and len(n.inputs) == 2:
            fs = factors(graph, n.id, powers=True)
            for u, e in fs:
                if e == 1 and (u, -1) in fs and const_value(graph, u) is None and _nonzero(enc, u, sg):
                    return n.id, "cancel", u, n.id
    for n in graph.nodes:
        if n.op not in ("mul", "div") or len(n.inputs) != 2:
            continue
        a, b = n.inputs
        if n.op == "mul":
            for u, s in ((a, b), (b, a)):
                if (
                    const_value(graph, u) is not None
                    or graph.nodes[s].op not in ("add", "sub")
                    or not _nonzero(enc, u, sg)
                ):
                    continue
                if any((u, -1) in factors(graph, t) for t, _ in summands(graph, s)):
                    return n.id, "distribute", u, s
        elif graph.nodes[b].op in ("add", "sub"):
            terms = summands(graph, b)
            tf = [factors(graph, t) for t, _ in terms]
            for u, e in factors(graph, a):
                if e != 1 or const_value(graph, u) is not None or not _nonzero(enc, u, sg) or _sig(graph, u) in used:
                    continue
                if any((u, 1) in fs for fs in tf):
                    return n.id, "divide", u, b
            for fs in tf:
                for u, e in fs:
                    if e == -1 and const_value(graph, u) is None and _nonzero(enc, u, sg) and _wide(enc, u):
                        if _sig(graph, u) in used:
                            continue
                        return n.id, "clear", u, b
    return None


def _apply(graph: Graph, output: int, target: int, kind: str, u: int, s: int) -> tuple[Graph, int]:
    """``graph`` with node ``target`` replaced by its rewrite (restricted to ``output``)."""
    nodes: list[Node] = []
    mp: dict[int, int] = {}

    def emit(op: str, inputs: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any]) -> int:
        nodes.append(Node(len(nodes), op, inputs, attrs, dict(meta)))
        return len(nodes) - 1

    def build(meta: dict[str, Any]) -> int:
        one: list[int] = []

        def const1() -> int:
            if not one:
                one.append(emit("const", (), {"value": 1.0}, meta))
            return one[0]

        def product(fs: Signed) -> int:
            fs = [(j, e) for j, e in fs if const_value(graph, j) != 1.0]
            num = [mp[j] for j, e in fs if e > 0]
            den = [mp[j] for j, e in fs if e < 0]
            top = num[0] if num else const1()
            for j in num[1:]:
                top = emit("mul", (top, j), {}, meta)
            if den:
                bot = den[0]
                for j in den[1:]:
                    bot = emit("mul", (bot, j), {}, meta)
                top = emit("div", (top, bot), {}, meta)
            return top

        def total(terms: list[tuple[int, int]]) -> int:
            terms = sorted(terms, key=lambda t: -t[1])  # a positive term first where there is one
            acc, sign = terms[0]
            if sign < 0:
                acc = emit("neg", (acc,), {}, meta)
            for t, sg in terms[1:]:
                acc = emit("add" if sg > 0 else "sub", (acc, t), {}, meta)
            return acc

        if kind == "cancel":
            return product(_cancel(_cancel(factors(graph, target, powers=True), u, -1), u, 1))
        if kind == "rationalize":  # sqrt(a^2 + b) - a = b / (sqrt(a^2 + b) + a), for b > 0
            root = graph.nodes[target].inputs[0]
            return emit("div", (mp[s], emit("add", (mp[root], mp[u]), {}, meta)), {}, meta)
        e = -1 if kind == "divide" else 1
        terms = [(product(_cancel(factors(graph, t), u, e)), sg) for t, sg in summands(graph, s)]
        new_sum = total(terms)
        if kind == "distribute":
            return new_sum
        num = _cancel(factors(graph, graph.nodes[target].inputs[0]), u, e)
        return emit("div", (product(num), new_sum), {}, meta)

    for n in graph.nodes:
        if n.id == target:
            mp[n.id] = build(n.meta)
        else:
            mp[n.id] = emit(n.op, tuple(mp[j] for j in n.inputs), dict(n.attrs), n.meta)
    g2 = Graph(tuple(nodes), tuple(mp[i] for i in graph.inputs), (mp[output],), dict(graph.meta))
    top = mp[output]
    sub, mapping = g2.subgraph(sorted(g2.ancestors(top) | {top}), [top])
    return sub, mapping[top]


def rewrite(
    graph: Graph, output: int, dists: dict[str, Any], log: Callable[[str], None] | None = None
) -> tuple[Graph, int, list[str]] | None:
    """``output`` with the cancellation rewrites applied (at most :data:`MAX_REWRITES`), or None where none applies.

    Args:
        graph: The graph restricted to ``output`` (:func:`opgraph.dcg.engine.restrict`).
        output: The output id.
        dists: Input laws by name (their supports keep each cancelled factor away from 0).
        log: Optional callback receiving one line per rewrite.

    Returns:
        The rewritten graph (restricted to its output), the output's id and a description of each rewrite.
    """
    if len(graph.nodes) > MAX_NODES:
        return None
    done: list[str] = []
    used: set[str] = set()
    for _ in range(MAX_REWRITES):
        enc = supports(graph, dists)
        hit = _find(graph, enc, used, signs(graph, dists, enc))
        if hit is None:
            break
        target, kind, u, s = hit
        if kind != "distribute":
            used.add(_sig(graph, u))
        done.append(f"{kind} {graph.nodes[u].where} at {graph.nodes[target].where}")
        if log is not None:
            log(done[-1])
        graph, output = _apply(graph, output, target, kind, u, s)
    return (graph, output, done) if done else None
