"""Exact-law recognition: nodes whose law is known in closed form are quantized from that law, not computed.

A product of quantized LogNormals is a discrete law whose certified bound adds one first-order term per factor,
while the exact law of the product is itself a LogNormal. This module recognises such nodes, soundly, with a
rule table keyed by op name (:data:`RULES`), and replaces them by a fresh input that carries their exact law.

**Forms.** Every independent Normal input ``Y`` and the logarithm ``G = log X`` of every independent LogNormal
input ``X`` is a Gaussian *generator* (``G ~ Normal(mu, sigma)``). A node has a closed form when it is

* ``"gauss"``: ``c0 + sum_k a_k G_k`` (a Normal law), or
* ``"exp"``: ``sign * exp(c0 + sum_k a_k G_k)`` (``sign`` = +-1: a LogNormal law or its negation),

with the generators independent, so the law is ``Normal(m, s)`` / ``sign * LogNormal(m, s)`` with
``m = c0 + sum a_k mu_k`` and ``s = sqrt(sum a_k^2 sigma_k^2)``. A variable used twice is one generator, its
coefficients add (``X * X / Y`` is ``exp(2 G_X - G_Y)``). The rules: ``mul``/``div`` of two ``exp`` forms or of
one and a nonzero constant (monomials ``c prod X_i^p_i``), ``pow``/``sqrt``/``rsqrt``/``cbrt``/``square``/
``reciprocal`` of an ``exp`` form by a constant exponent (a negative form only for integer exponents and
``cbrt``), ``neg``, ``abs`` of an ``exp`` form, ``add``/``sub`` of ``gauss`` forms and constants (affine sums of
Normals), ``mul``/``div`` of a ``gauss`` form by a nonzero constant, ``log``/``log2``/``log10`` of a positive
``exp`` form (a Normal) and ``exp``/``exp2``/``pow(c, .)`` of a ``gauss`` form (a LogNormal). Anything else has no
form, and neither has a node whose form involves no generator (a constant, ``X / X``) or has ``s = 0``.

**Where a form is used (soundness).** A node ``v`` is replaced only where it is a *separator* of the graph
restricted to one output (:meth:`opgraph.graph.Graph.separators`: every path from its source inputs to the output
runs through ``v``; the output itself is one). Then the rest of the graph sees those inputs only through ``v``'s
value, which is independent of every other input, so the output law is that of the graph with ``v`` replaced by a
new independent input with ``v``'s exact law: no dependence is lost. The new input is quantized like any input
(its exact per-cell transport through closed-form partial moments), with ``max(compress_atoms, atoms of its
source inputs)`` atoms (an interior node: at most the product of its sources' atoms, so no grid of the plan
grows and every plan that fitted still fits), so the bound at that node is the 1D quantization's W1, and the engine's tail, envelope
and second-order rules treat it as the exact LogNormal / Normal input it is. A negative form becomes
``neg(new input)``. Only *nontrivial* forms are replaced (two or more generators, a power other than 1, or a
``log``/``exp`` between the families); affine maps of one input are left to the grid, which is exact for them up
to rounding. The largest replaceable node wins (a separator inside a replaced node disappears with it).
A product (sum) written so that no node holds its closed-form factors together (``X1 * Z * X2`` with ``Z`` used
elsewhere) is first regrouped where those factors separate their inputs (:func:`regroup`).

The parameters ``m`` and ``s`` are computed in floating point; a bound on the W1 their rounding can cause
(a few ulps, relative) is added to the new input's per-cell errors.
"""

from __future__ import annotations

import contextvars
import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.dcg.distributions import Distribution, LogNormal, Normal, Quantized
from opgraph.dcg.errors import DistError
from opgraph.graph import Graph, Node

#: Whether :func:`opgraph.dcg.engine.evaluate_output` replaces closed-form nodes by their exact laws
#: (``ENABLED.set(False)``: the engine without it, for before / after measurements).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_exactlaw", default=True)
#: Graphs larger than this are not searched (the 1,000-step ODEs have Uniform inputs: nothing to find).
MAX_NODES = 20000
_EPS = float(np.finfo(float).eps)


@dataclass(frozen=True)
class Form:
    """A closed form: ``c0 + sum a_k G_k`` (``kind="gauss"``) or ``sign * exp(c0 + sum a_k G_k)`` (``"exp"``).

    ``coef`` holds (generator id = input node id, coefficient ``a_k``) pairs; ``nontrivial`` says whether a step
    other than a constant scaling, shift or sign change built the form (a product of random operands, a power,
    a log / exp).
    """

    kind: str
    c0: float
    coef: tuple[tuple[int, float], ...]
    sign: float = 1.0
    nontrivial: bool = False

    def scaled(self, a: float) -> Form:
        """``a *`` the Gaussian part (exponent of an ``exp`` form, value of a ``gauss`` form)."""
        return Form(self.kind, a * self.c0, tuple((k, a * v) for k, v in self.coef), self.sign, self.nontrivial)


@dataclass(frozen=True)
class Const:
    """A scalar constant."""

    value: float


Value = Form | Const | None


def _combine(a: Form, b: Form, sb: float, kind: str, sign: float) -> Form | None:
    """``a`` plus ``sb`` times ``b`` in the Gaussian parts (coefficients of one generator add); None if constant."""
    coef = dict(a.coef)
    for k, v in b.coef:
        coef[k] = coef.get(k, 0.0) + sb * v
    coef = {k: v for k, v in coef.items() if v != 0.0}
    if not coef:
        return None
    return Form(kind, a.c0 + sb * b.c0, tuple(sorted(coef.items())), sign, True)


def _log_const(c: float) -> tuple[float, float] | None:
    """``(sign, log|c|)`` of a finite nonzero constant, else None."""
    if not math.isfinite(c) or c == 0.0:
        return None
    return (1.0 if c > 0 else -1.0), math.log(abs(c))


def _mul(x: Value, y: Value, div: bool = False) -> Value:
    if isinstance(x, Const) and isinstance(y, Const):
        if div and y.value == 0:
            return None
        return Const(x.value / y.value if div else x.value * y.value)
    if isinstance(y, Const) and isinstance(x, Form):  # scaling by a constant
        lc = _log_const(y.value)
        if lc is None:
            return None
        if x.kind == "gauss":
            return x.scaled(1.0 / y.value if div else y.value)
        s, l = lc
        return Form("exp", x.c0 - l if div else x.c0 + l, x.coef, x.sign * s, x.nontrivial)
    if isinstance(x, Const) and isinstance(y, Form):
        if not div:
            return _mul(y, x)
        lc = _log_const(x.value)
        if lc is None or y.kind != "exp":
            return None
        s, l = lc
        inv = y.scaled(-1.0)
        return Form("exp", l + inv.c0, inv.coef, s * y.sign, True)
    if isinstance(x, Form) and isinstance(y, Form) and x.kind == "exp" and y.kind == "exp":
        return _combine(x, y, -1.0 if div else 1.0, "exp", x.sign * y.sign)
    return None


def _add(x: Value, y: Value, sub: bool = False) -> Value:
    sb = -1.0 if sub else 1.0
    if isinstance(x, Const) and isinstance(y, Const):
        return Const(x.value + sb * y.value)
    if isinstance(x, Form) and isinstance(y, Const) and x.kind == "gauss":
        return Form("gauss", x.c0 + sb * y.value, x.coef, 1.0, x.nontrivial)
    if isinstance(x, Const) and isinstance(y, Form) and y.kind == "gauss":
        f = y.scaled(sb)
        return Form("gauss", x.value + f.c0, f.coef, 1.0, y.nontrivial)
    if isinstance(x, Form) and isinstance(y, Form) and x.kind == "gauss" and y.kind == "gauss":
        return _combine(x, y, sb, "gauss", 1.0)
    return None


def _power(x: Value, p: float) -> Value:
    """``x ** p`` for a constant exponent ``p`` (``cbrt`` passes ``p = 1/3`` with odd-root semantics below)."""
    if isinstance(x, Const) or not isinstance(x, Form) or x.kind != "exp" or not math.isfinite(p) or p == 0:
        return None
    if x.sign < 0:
        if p != int(p):
            return None
        sign = -1.0 if int(p) % 2 else 1.0
    else:
        sign = 1.0
    f = x.scaled(p)
    return Form("exp", f.c0, f.coef, sign, True)


def _cbrt(x: Value) -> Value:
    if not isinstance(x, Form) or x.kind != "exp":
        return None
    f = x.scaled(1.0 / 3.0)
    return Form("exp", f.c0, f.coef, x.sign, True)


def _log(x: Value, base: float) -> Value:
    if not isinstance(x, Form) or x.kind != "exp" or x.sign < 0:
        return None
    f = x.scaled(1.0 / math.log(base)) if base != math.e else x
    return Form("gauss", f.c0, f.coef, 1.0, True)


def _exp(x: Value, base: float) -> Value:
    if not isinstance(x, Form) or x.kind != "gauss" or not (base > 0 and math.isfinite(base)) or base == 1:
        return None
    f = x.scaled(math.log(base)) if base != math.e else x
    return Form("exp", f.c0, f.coef, 1.0, True)


def _pow(x: Value, y: Value) -> Value:
    if isinstance(y, Const):
        if isinstance(x, Const):
            return None  # constants are folded by the grid; nothing to gain
        return _power(x, y.value)
    if isinstance(x, Const):
        return _exp(y, x.value)
    return None


def _abs(x: Value) -> Value:
    if isinstance(x, Form) and x.kind == "exp":
        return Form("exp", x.c0, x.coef, 1.0, x.nontrivial)
    if isinstance(x, Const):
        return Const(abs(x.value))
    return None


def _neg(x: Value) -> Value:
    if isinstance(x, Const):
        return Const(-x.value)
    if isinstance(x, Form):
        if x.kind == "gauss":
            f = x.scaled(-1.0)
            return Form("gauss", f.c0, f.coef, 1.0, x.nontrivial)
        return Form("exp", x.c0, x.coef, -x.sign, x.nontrivial)
    return None


def _ident(x: Value) -> Value:
    return x


#: The rule table, keyed by op name: ``RULES[op](*operand_forms) -> form or None``.
RULES: dict[str, Any] = {
    "mul": lambda x, y: _mul(x, y),
    "div": lambda x, y: _mul(x, y, div=True),
    "add": lambda x, y: _add(x, y),
    "sub": lambda x, y: _add(x, y, sub=True),
    "neg": _neg,
    "abs": _abs,
    "pow": _pow,
    "sqrt": lambda x: _power(x, 0.5),
    "rsqrt": lambda x: _power(x, -0.5),
    "square": lambda x: _power(x, 2.0),
    "reciprocal": lambda x: _power(x, -1.0),
    "cbrt": _cbrt,
    "log": lambda x: _log(x, math.e),
    "log2": lambda x: _log(x, 2.0),
    "log10": lambda x: _log(x, 10.0),
    "exp": lambda x: _exp(x, math.e),
    "exp2": lambda x: _exp(x, 2.0),
    "identity": _ident,
    "copy": _ident,
    "contiguous": _ident,
}


def _input_form(i: int, dist: Distribution | None, q: Quantized | None, check: bool = True) -> Value:
    """An input's form: a generator of its own (exactly Normal / LogNormal laws only, not previous results)."""
    if check and (q is None or q.upstream_w1 != 0):
        return None
    if type(dist) is Normal:
        return Form("gauss", 0.0, ((i, 1.0),))
    if type(dist) is LogNormal:
        return Form("exp", 0.0, ((i, 1.0),))
    return None


def forms(graph: Graph, dists: dict[str, Distribution], quantized: dict[str, Quantized] | None) -> list[Value]:
    """The closed form of every node of ``graph`` (None where it has none), in one forward pass.

    ``quantized`` None: before quantization (the input families alone decide; a previous result is no family here).
    """
    out: list[Value] = []
    for n in graph.nodes:
        out.append(_node_form(n, out, dists, quantized))
    return out


def _node_form(
    n: Node, done: list[Value], dists: dict[str, Distribution], quantized: dict[str, Quantized] | None
) -> Value:
    if n.op == "input":
        name = n.attrs["name"]
        if quantized is None:
            return _input_form(n.id, dists.get(name), None, check=False)
        return _input_form(n.id, dists.get(name), quantized.get(name))
    if n.op == "const":
        v = np.asarray(n.attrs["value"], dtype=float)
        return Const(float(v)) if v.size == 1 and v.ndim == 0 and math.isfinite(float(v)) else None
    rule = RULES.get(n.op)
    if rule is None or n.attrs:
        return None
    ops = [done[j] for j in n.inputs]
    if any(o is None for o in ops):
        return None
    try:
        return rule(*ops)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError):  # wrong arity, overflowing constants
        return None


_WHOLE: weakref.WeakKeyDictionary[Graph, dict[tuple[Any, ...], bool]] = weakref.WeakKeyDictionary()


def whole_output(graph: Graph, output: int, dists: dict[str, Distribution]) -> bool:
    """Whether :func:`substitute` replaces ``output`` itself (the graph restricted to it collapses to one input).

    Then the evaluation is one 1D quantization of any size, whatever the input atoms: the ``target_w1`` planning
    of :mod:`opgraph.dcg.api` uses this to not cap atoms or the compression size by the original graph's grids.
    Memoised per graph (graphs are immutable) and input families.
    """
    if not ENABLED.get() or len(graph.nodes) > MAX_NODES:
        return False
    key = (output, tuple(sorted((k, type(v).__name__) for k, v in dists.items())))
    memo = _WHOLE.setdefault(graph, {})
    if key not in memo:
        fs = forms(graph, dists, None)
        f = fs[output]
        names = {n.id: n.attrs["name"] for n in graph.nodes if n.op == "input"}
        memo[key] = isinstance(f, Form) and not _trivial(f) and law(f, dists, names) is not None
    return memo[key]


def law(form: Form, dists: dict[str, Distribution], names: dict[int, str]) -> tuple[Distribution, float] | None:
    """The exact law of ``form`` (the magnitude's law for a negative ``exp`` form) and a W1 rounding slack.

    The slack bounds the W1 between the law of the exact parameters and that of the computed ``(m, s)``: with
    ``|dm|, |ds|`` bounds on their rounding errors, ``W1 <= |dm| + |ds| sqrt(2/pi)`` (Normal) and
    ``W1 <= e^(m + |dm|) (|dm| e^(t^2/2) + |ds| e^(t^2))``, ``t = s + |ds|`` (LogNormal; Cauchy-Schwarz on
    ``E[e^(tZ) |Z|]``).
    """
    m, var, mag_m, mag_v = form.c0, 0.0, abs(form.c0), 0.0
    try:  # (a sd) ** 2 past ~1e154 and the exponentials below raise OverflowError: no law, the grid keeps the node
        for k, a in form.coef:
            d = dists[names[k]]
            mu, sd = (d.mu, d.sigma) if isinstance(d, LogNormal) else (d.loc, d.scale)
            m += a * mu
            var += (a * sd) ** 2
            mag_m += abs(a * mu)
            mag_v += (a * sd) ** 2
        s = math.sqrt(var)
        if not (s > 0 and math.isfinite(s) and math.isfinite(m)):
            return None
        nterms = len(form.coef) + 2
        dm = 4 * nterms * _EPS * (mag_m + abs(m)) + 1e-300
        ds = 4 * nterms * _EPS * (math.sqrt(mag_v) + s) + 1e-300
        if form.kind == "gauss":
            return Normal(m, s), dm + ds * math.sqrt(2 / math.pi)
        t = s + ds
        slack = math.exp(m + dm) * (dm * math.exp(0.5 * t * t) + ds * math.exp(t * t))
        return LogNormal(m, s), slack
    except DistError:  # parameters whose moments overflow a float: leave the node to the grid
        return None
    except OverflowError:
        return None


def _with_slack(q: Quantized, slack: float) -> Quantized:
    """``q`` with ``slack`` (a W1 bound) spread over its cells by mass and its cells widened by a few ulps.

    The per-cell errors are also raised by a relative 1e-9: the closed-form partial moments of a wide LogNormal
    lose up to about 1e-11 (relative) to cancellation, more than the quantizer's few-ulp slack.
    """
    add = slack * q.weights + 1e-9 * q.err
    err = q.err + add
    bias = None if q.bias is None else q.bias + add
    # 8 ulps of the cell's largest finite end: a half-infinite cell's finite end is padded too (from max(|lo|,
    # |hi|) = inf it was left where it was)
    fin_lo, fin_hi = np.isfinite(q.lo), np.isfinite(q.hi)
    pad = 8 * _EPS * np.maximum(np.where(fin_lo, np.abs(q.lo), 0.0), np.where(fin_hi, np.abs(q.hi), 0.0))
    lo = np.where(fin_lo, q.lo - pad, q.lo)
    hi = np.where(fin_hi, q.hi + pad, q.hi)
    lo[0] = q.lo[0]  # the support's end (0 for a LogNormal) stays
    hi[-1] = q.hi[-1]
    out = Quantized(q.atoms, q.weights, lo, hi, err, q.method, 0.0, q.support, bias, q.m2)
    out.memo.update({k: v for k, v in q.memo.items() if k == "z"})
    return out


@dataclass
class Substitution:
    """A graph with closed-form nodes replaced by new inputs, with the extended input dicts."""

    graph: Graph
    output: int
    quantized: dict[str, Quantized]
    labels: dict[str, str]
    dists: dict[str, Distribution]
    info: list[dict[str, Any]] = field(default_factory=list)

    def annotate(self, ev: Any) -> Any:
        """Record the replacements in an :class:`opgraph.dcg.engine.Evaluation`'s ``info["exact_laws"]``."""
        ev.info["exact_laws"] = [dict(x) for x in self.info]
        return ev


def _trivial(f: Form) -> bool:
    """Whether ``f`` comes from one input by constant scalings, shifts and sign changes only.

    Such nodes are left to the grid, which is exact for them up to rounding; this also keeps the rewrite
    idempotent (a replaced node is such a form).
    """
    return not f.nontrivial


def _method(names: list[str], quantized: dict[str, Quantized]) -> str:
    methods = {quantized[n].method for n in names}
    return methods.pop() if len(methods) == 1 and methods <= {"quantile", "meansplit"} else "auto"


#: Whether :func:`substitute` regroups product / sum chains to expose a closed-form sub-product (``X1 * Z * X2``
#: with ``Z`` used elsewhere: ``(X1 * X2) * Z``).
REGROUP: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_exactlaw_regroup", default=True)
#: The chains regrouped, per op: ``"mul"`` gathers LogNormal (``exp``) forms, ``"add"`` Normal (``gauss``) forms.
_CHAIN_KIND = {"mul": "exp", "add": "gauss"}


def _private_group(
    graph: Graph,
    root: int,
    leaves: list[int],
    fs: list[Value],
    kind: str,
    users: dict[int, tuple[int, ...]],
    srcs: tuple[frozenset[int], ...],
) -> list[int] | None:
    """Positions of the leaves of the chain at ``root`` whose product (sum) would be a closed-form separator.

    Candidates are the leaves with a ``kind`` form (and constant leaves); a candidate is dropped while some node
    feeding it (its ancestors and itself, with an input among their sources) has a user outside the candidates'
    ancestors other than the chain's own nodes: that use reaches the output without passing through the group.
    What stays is a group whose combined node every path from its inputs to the output runs through (a
    separator), returned where it holds two or more forms and is not the whole chain (then the root itself is the
    closed form), else None. ``users`` and ``srcs``: ``graph.users()`` and ``graph.source_inputs()``.
    """
    cand = {
        k
        for k, leaf in enumerate(leaves)
        if isinstance(fs[leaf], Const) or (isinstance(fs[leaf], Form) and fs[leaf].kind == kind)  # type: ignore[union-attr]
    }
    if sum(1 for k in cand if isinstance(fs[leaves[k]], Form)) < 2:
        return None
    chain = {root}
    stack = list(graph.nodes[root].inputs)
    leaf_set = set(leaves)
    while stack:  # the chain's absorbed nodes
        i = stack.pop()
        if i not in leaf_set and i not in chain:
            chain.add(i)
            stack.extend(graph.nodes[i].inputs)
    while True:
        feeds = {k: graph.ancestors(leaves[k]) | {leaves[k]} for k in cand}
        inside = set().union(*feeds.values()) if feeds else set()
        group_leaves = {leaves[k] for k in cand}
        bad = set()
        for k in cand:
            for u in feeds[k]:
                if not srcs[u]:
                    continue
                ok_users = inside | (chain if u in group_leaves else set())
                if any(v not in ok_users for v in users[u]):
                    bad.add(k)
                    break
        if not bad:
            break
        cand -= bad
    n_forms = sum(1 for k in cand if isinstance(fs[leaves[k]], Form))
    if n_forms < 2 or len(cand) == len(leaves):
        return None
    return sorted(cand)


def regroup(
    graph: Graph, output: int, dists: dict[str, Distribution], quantized: dict[str, Quantized] | None
) -> tuple[Graph, int] | None:
    """``graph`` with product (sum) chains regrouped where some of their factors (terms) form a closed-form separator.

    ``X1 * Z * X2`` (LogNormals, ``Z`` also used elsewhere) reads as ``(X1 * Z) * X2``: no node has the law of
    ``X1 * X2``. Chains of ``mul`` (``add``) found by :func:`opgraph.graph.passes.chains` whose LogNormal (Normal)
    form leaves and constants separate their inputs (:func:`_private_group`) are rewritten by
    :func:`opgraph.graph.passes.regroup_chains` as ``(those leaves) op (the others)``; the other chains are left
    as they are. Returns the new graph and its output id, or None where no chain is regrouped. Floating-point
    values may change in the last bits (another association).
    """
    from opgraph.graph.passes import chains, regroup_chains, shared_input_groups

    if not REGROUP.get() or graph.outputs != (output,):
        return None
    g, changed = graph, False
    for op, kind in _CHAIN_KIND.items():
        found = chains(g, op)
        if not found:
            continue
        fs = forms(g, dists, quantized)
        users, srcs = g.users(), g.source_inputs()
        plans: dict[int, list[list[int]]] = {}
        for root, leaves in found.items():
            grp = _private_group(g, root, leaves, fs, kind, users, srcs)
            if grp is not None:
                rest = [k for k in range(len(leaves)) if k not in grp]
                if op == "add":  # the other terms keep rebalance_sums's grouping by shared inputs
                    parts = shared_input_groups(srcs, [leaves[k] for k in rest])
                    plans[root] = [grp, *([rest[j] for j in part] for part in parts)]
                else:
                    plans[root] = [grp, rest]
        if plans:
            g, changed = regroup_chains(g, op, lambda root, leaves, plans=plans: plans.get(root)), True
    return (g, g.outputs[0]) if changed else None


def substitute(
    graph: Graph,
    output: int,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    compress_atoms: int,
) -> Substitution | None:
    """Replace the largest closed-form separators of ``output`` by new inputs with their exact laws (see module).

    Args:
        graph: The graph restricted to ``output`` (:func:`opgraph.dcg.engine.restrict`).
        output: The output node id.
        quantized: Quantized law per input name (the new inputs are added to a copy).
        labels: Label per input name (likewise).
        dists: Exact law per input name (likewise).
        compress_atoms: The evaluation's compression size (the new inputs get at least that many atoms).

    Returns:
        The rewritten graph (restricted to its output) with the extended dicts, or None where nothing applies.
    """
    if not ENABLED.get() or len(graph.nodes) > MAX_NODES:
        return None
    if not any(type(dists.get(n.attrs["name"])) in (Normal, LogNormal) for n in graph.nodes if n.op == "input"):
        return None
    sub, out = graph, output
    rg = regroup(sub, out, dists, quantized)  # a closed-form sub-product that the association hides
    if rg is not None:
        sub, out = rg
    fs = forms(sub, dists, quantized)
    cand = [i for i, f in enumerate(fs) if isinstance(f, Form) and sub.nodes[i].op != "input" and not _trivial(f)]
    if not cand:
        return None
    seps = sub.separators()
    names = {n.id: n.attrs["name"] for n in sub.nodes if n.op == "input"}
    chosen: dict[int, tuple[Form, Distribution, float]] = {}
    covered: set[int] = set()
    for i in sorted(cand, reverse=True):  # outputs first: the largest replaceable node wins
        if i in covered or i not in seps:
            continue
        f = fs[i]
        assert isinstance(f, Form)
        lw = law(f, dists, names)
        if lw is None:
            continue
        chosen[i] = (f, *lw)
        covered |= sub.ancestors(i)
    if not chosen:
        return None
    quantized, labels, dists = dict(quantized), dict(labels), dict(dists)
    nodes: list[Node] = []
    remap: dict[int, int] = {}
    info: list[dict[str, Any]] = []

    def add(op: str, inputs: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any]) -> int:
        nodes.append(Node(len(nodes), op, inputs, attrs, meta))
        return len(nodes) - 1

    for n in sub.nodes:
        if n.id not in chosen:
            remap[n.id] = add(n.op, tuple(remap[j] for j in n.inputs), dict(n.attrs), dict(n.meta))
            continue
        f, dist, slack = chosen[n.id]
        srcs = [names[k] for k, _ in f.coef]
        name = f"{n.where} (exact law)"
        while name in dists:
            name += "'"
        k_atoms = max([compress_atoms] + [quantized[s].atoms.size for s in srcs])
        if n.id != out:  # an interior node's axis never exceeds the grid of its sources: every plan that fit still fits
            k_atoms = min(k_atoms, math.prod(quantized[s].atoms.size for s in srcs))
        q = _with_slack(dist.quantize(k_atoms, _method(srcs, quantized)), slack)
        quantized[name], dists[name] = q, dist
        shown = f"-{dist!r}" if f.sign < 0 else repr(dist)
        # "compression" in front: a target_w1 refinement grows this term with the compression size (refine.split_terms)
        labels[name] = f"compression at {n.where} to {q.atoms.size} atoms (exact law {shown})"
        meta = {k: v for k, v in n.meta.items() if k in ("source", "origin")}
        meta.setdefault("origin", n.meta.get("origin", n.id))
        j = add("input", (), {"name": name}, dict(meta))
        if f.sign < 0:
            j = add("neg", (j,), {}, dict(meta))
        remap[n.id] = j
        info.append(
            {
                "node": n.where,
                "law": shown,
                "inputs": srcs,
                "atoms": int(q.atoms.size),
                "w1": q.w1,
                "rounding_slack": slack,
            }
        )
    g = Graph(tuple(nodes), tuple(x.id for x in nodes if x.op == "input"), (remap[out],), dict(sub.meta))
    g2, m2 = g.subgraph(sorted(g.ancestors(remap[out]) | {remap[out]}), [remap[out]])
    return Substitution(g2, m2[remap[out]], quantized, labels, dists, info)
