"""Outputs that split into parts over disjoint inputs: certify each part at its own resolution, combine exactly.

Many programs are, at the top, a sum or a product of sub-programs that share no input (Ishigami:
``sin(x1) * (1 + 0.1 x3^4) + 7 sin(x2)^2`` after factoring ``sin(x1)`` out of ``sin(x1) + 0.1 x3^4 sin(x1)``).
The joint grid of all inputs then spends its cells on a product structure that the law does not need: the parts
are independent, so their laws can be computed separately, each with as many atoms as its own term of the bound
asks (a one-input part takes thousands of atoms in milliseconds), and combined.

**Decomposition** (:func:`decompose`). The output node is expanded into a sum of monomials ``c * f_1 * ... * f_k``
over graph nodes ``f_j`` (through ``add``, ``sub``, ``neg``, products with a single-term side, scaling by and
division by constants). Monomials whose inputs overlap are grouped (connected components); two or more groups
make a *sum* part. One group: a factor node common to all its monomials whose inputs are disjoint from the rest
is factored out (``a f + b f g = f (a + b g)``, exact for real numbers); a single monomial whose factors fall into
input-disjoint groups is a *product* part. Anything else is a *leaf*: a sub-graph evaluated by the grid engine
(``opgraph.dcg.api``) with its own ``target_w1``.

**Combination and its certificate.** Let ``A, B`` be independent exact parts and ``A', B'`` their computed
(discrete, independent) laws with certified ``W1(A, A') <= a``, ``W1(B, B') <= b``. Couple ``A`` with ``A'`` and
``B`` with ``B'`` optimally and independently of each other. Then

* sum: ``E|A + B - A' - B'| <= a + b``, so ``W1(A + B, A' + B') <= a + b``;
* product: ``AB - A'B' = (A - A') B + A' (B - B')`` and independence give ``W1(AB, A'B') <= a E|B| + b E|A'|``,
  with ``E|B| <= E|B'| + b`` (``|.|`` is 1-Lipschitz).

The law of ``A' + B'`` (or ``A' B'``) is then made exact on a lattice ``o + h Z``: each operand (for a product,
each product value) is moved to its nearest lattice point, a coupling whose cost ``sum w |x - (o + k h)|`` is
computed and added to the bound (at most ``h / 2``); two lattice laws of one spacing add by a discrete convolution
(``numpy.convolve``, direct: every output is a sum of at most ``n`` non-negative products, relative error at most
``n u``, so the mass moved by rounding is at most ``n u`` and costs at most ``n u`` times the support's width; this
and a few ulps per snapped value are added; beyond :data:`DIRECT_MAX` products by FFT, with the a priori FFT
error bound of Higham's section 24.1 at a 10x margin, converted to moved mass, added the same way). The final law
is exact for the lattice laws up to these rounding terms.

**Allocation.** The bound is ``sum_leaves m_i b_i + lattice costs`` with multipliers ``m_i`` (the product of the
``E|.|`` of a leaf's co-factors, estimated for the allocation from 4096 scrambled Sobol points, never for the
bound). A share of ``target_w1`` (15%) is reserved for the lattice costs (spacing ``h = 3 x`` the share of a
snapping), the rest goes to the leaves in proportion to their work elasticity (a one-input leaf under a product:
1, as the product costs ``n_A n_B`` values; a one-input leaf of a sum only: 1/4; a leaf on ``d`` inputs: ``d``),
and every leaf gets ``target_w1 = share / m_i``. A round that misses the target is redone with every share scaled
by the measured excess (at most 3 rounds); the caller keeps the grid engine's answer where that is better. A
product grid ``n_A n_B`` beyond :data:`MAX_PRODUCT` is coarsened (the larger operand snapped to a lattice of at most
``MAX_PRODUCT / n_B`` points, cost added): its leaves' fine atoms are then wasted at a snapping cost about their own
error, so a round that coarsened and missed is redone with those leaves' targets times ``1.1 sqrt(n_A n_B /
MAX_PRODUCT)`` (the grid then fits), and after such a round no finer one is tried.
"""

from __future__ import annotations

import contextvars
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.dcg import wideleaf
from opgraph.dcg.result import DistResult
from opgraph.graph.ir import Graph

log = logging.getLogger(__name__)

#: Use the split for ``target_w1`` calls (``False``: the grid engine alone; for before/after measurements).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_disjoint", default=True)

#: Largest number of monomials an expansion may make (beyond, a node stays one factor).
MAX_TERMS = 64
#: Most leaves a split may have (the sum of 8 products of 16 Normals, case X1, ran > 100 s CPU split).
MAX_LEAVES = 4
#: Most inputs of one leaf (a larger leaf costs as much as the whole grid, which then runs too where it misses).
MAX_LEAF_INPUTS = 3
#: Arithmetic nodes farther than this from the output are not expanded (one factor each).
MAX_DEPTH = 64
_ARITH = frozenset({"add", "sub", "neg", "mul", "div"})
#: Fraction of the target reserved for the lattice couplings.
LATTICE_SHARE = 0.15
#: Most product values formed in one chunk (cache-sized blocks are 10-30x faster than one big outer product).
CHUNK = 2**17
#: Largest product grid ``n_A n_B`` a product part forms (values; about 0.5 s); beyond, the larger operand is snapped
#: to a coarser lattice first (its cost added) and the refinement stops.
MAX_PRODUCT = 2**25
#: Largest ``n_A n_B`` of a sum convolved directly (beyond, by FFT with an a priori rounding bound).
DIRECT_MAX = 2**24
#: Largest lattice (points) of one part.
MAX_LATTICE = 2**22
_U = np.finfo(float).eps / 2


@dataclass(frozen=True)
class Term:
    """One monomial ``coef * prod(factors)`` over graph node ids (``factors`` sorted; empty for a constant)."""

    coef: float
    factors: tuple[int, ...]


@dataclass
class Part:
    """A node of the decomposition tree.

    Attributes:
        kind: ``"leaf"``, ``"sum"`` or ``"prod"``.
        terms: For a leaf, the monomials it evaluates (for a product, the constant factor is ``coef``).
        children: The independent operands of a sum or product.
        shift: Constant added to a sum.
        coef: Constant factor of a product.
        inputs: Names of the inputs the part depends on.
    """

    kind: str
    terms: tuple[Term, ...] = ()
    children: list[Part] = field(default_factory=list)
    shift: float = 0.0
    coef: float = 1.0
    inputs: frozenset[str] = frozenset()

    def leaves(self) -> list[Part]:
        """The leaves, left to right."""
        if self.kind == "leaf":
            return [self]
        return [lf for c in self.children for lf in c.leaves()]

    def describe(self, graph: Graph) -> str:
        """A one-line description (``sum(prod(leaf[x1], leaf[x3]), leaf[x2])``)."""
        if self.kind == "leaf":
            return f"leaf[{','.join(sorted(self.inputs))}]"
        inner = ", ".join(c.describe(graph) for c in self.children)
        return f"{self.kind}({inner})"


# ---------------------------------------------------------------------------------------------------------------
# Decomposition
class _Expander:
    """Expands nodes into monomials and records the input names each node depends on."""

    def __init__(self, graph: Graph) -> None:
        self.g = graph
        self.inputs: list[frozenset[str]] = []
        for n in graph.nodes:
            if n.op == "input":
                self.inputs.append(frozenset([str(n.attrs["name"])]))
            else:
                s: frozenset[str] = frozenset()
                for i in n.inputs:
                    s = s | self.inputs[i]
                self.inputs.append(s)
        self.memo: dict[int, tuple[Term, ...]] = {}
        # Expand only the arithmetic nodes within MAX_DEPTH steps of the outputs (a 1000-step loop stays cheap).
        self.expand: set[int] = set()
        frontier = [(o, 0) for o in graph.outputs]
        while frontier:
            i, d = frontier.pop()
            n = graph.nodes[i]
            if i in self.expand or d > MAX_DEPTH or n.op not in _ARITH:
                continue
            self.expand.add(i)
            frontier.extend((j, d + 1) for j in n.inputs)

    def const_value(self, i: int) -> float | None:
        n = self.g.nodes[i]
        if n.op != "const":
            return None
        v = np.asarray(n.attrs.get("value"))
        if v.shape != () or not np.isfinite(v) or v.dtype.kind not in "fiub":
            return None
        return float(v)

    def terms(self, i: int) -> tuple[Term, ...]:
        """The monomials of node ``i`` (its ancestors are expanded first, in topological order: no recursion)."""
        if i not in self.memo:
            todo: list[int] = []
            stack, seen = [i], set()
            while stack:
                j = stack.pop()
                if j in seen or j in self.memo:
                    continue
                seen.add(j)
                todo.append(j)
                if j in self.expand:
                    stack.extend(self.g.nodes[j].inputs)
            for j in sorted(todo):
                self.memo[j] = self._terms(j)
        return self.memo[i]

    def _terms(self, i: int) -> tuple[Term, ...]:
        n = self.g.nodes[i]
        atomic = (Term(1.0, (i,)),)
        c = self.const_value(i)
        if c is not None:
            return (Term(c, ()),)
        if n.op == "const" or i not in self.expand:
            return atomic
        if n.op in ("add", "sub") and len(n.inputs) == 2:
            a, b = self.terms(n.inputs[0]), self.terms(n.inputs[1])
            if n.op == "sub":
                b = tuple(Term(-t.coef, t.factors) for t in b)
            return _collect(a + b) if len(a) + len(b) <= MAX_TERMS else atomic
        if n.op == "neg" and len(n.inputs) == 1:
            return tuple(Term(-t.coef, t.factors) for t in self.terms(n.inputs[0]))
        if n.op == "mul" and len(n.inputs) == 2:
            a, b = self.terms(n.inputs[0]), self.terms(n.inputs[1])
            if len(a) == 1 or len(b) == 1:
                if len(a) * len(b) > MAX_TERMS:
                    return atomic
                return _collect(
                    tuple(Term(s.coef * t.coef, tuple(sorted(s.factors + t.factors))) for s in a for t in b)
                )
            return (Term(1.0, tuple(sorted(n.inputs))),)
        if n.op == "div" and len(n.inputs) == 2:
            c = self.const_value(n.inputs[1])
            if c is not None and c != 0:
                return tuple(Term(t.coef / c, t.factors) for t in self.terms(n.inputs[0]))
        return atomic

    def term_inputs(self, t: Term) -> frozenset[str]:
        s: frozenset[str] = frozenset()
        for f in t.factors:
            s = s | self.inputs[f]
        return s


def _collect(terms: Sequence[Term]) -> tuple[Term, ...]:
    """Merge monomials with the same factors; drop zero coefficients."""
    out: dict[tuple[int, ...], float] = {}
    for t in terms:
        out[t.factors] = out.get(t.factors, 0.0) + t.coef
    return tuple(Term(c, f) for f, c in out.items() if c != 0.0)


def _components(items: Sequence[Any], inputs_of: Callable[[Any], frozenset[str]]) -> list[list[Any]]:
    """Group ``items`` into classes connected by shared inputs (order kept)."""
    groups: list[tuple[set[str], list[Any]]] = []
    for it in items:
        ins = set(inputs_of(it))
        hit = [g for g in groups if g[0] & ins]
        merged_ins, merged = set(ins), []
        for g in hit:
            merged_ins |= g[0]
            merged += g[1]
            groups.remove(g)
        groups.append((merged_ins, [*merged, it]))
    return [g[1] for g in groups]


def _split(ex: _Expander, terms: tuple[Term, ...], depth: int = 0) -> Part:
    """The decomposition tree of the sum of ``terms``."""
    consts = sum(t.coef for t in terms if not t.factors)
    var = [t for t in terms if t.factors]
    ins = frozenset().union(*(ex.term_inputs(t) for t in var)) if var else frozenset()
    leaf = Part("leaf", tuple(terms), inputs=ins)
    if not var or depth > 32:
        return leaf
    comps = _components(var, ex.term_inputs)
    if len(comps) >= 2:
        kids = [_split(ex, tuple(c), depth + 1) for c in comps]
        return Part("sum", children=kids, shift=consts, inputs=ins)
    if len(var) == 1:
        t = var[0]
        groups = _components(list(t.factors), lambda f: ex.inputs[f])
        if len(groups) >= 2:
            kids = [_split(ex, (Term(1.0, tuple(g)),), depth + 1) for g in groups]
            prod = Part("prod", children=kids, coef=t.coef, inputs=ins)
            return Part("sum", children=[prod], shift=consts, inputs=ins) if consts else prod
        if len(t.factors) == 1:
            inner = ex.terms(t.factors[0])
            if inner != (Term(1.0, t.factors),):
                scaled = tuple(Term(s.coef * t.coef, s.factors) for s in inner)
                extra = (Term(consts, ()),) if consts else ()
                return _split(ex, _collect((*scaled, *extra)), depth + 1)
        return leaf
    # One connected group of several monomials: factor out a common node whose inputs are disjoint from the rest.
    common = set(var[0].factors)
    for t in var[1:]:
        common &= set(t.factors)
    for f in sorted(common):
        rest = []
        for t in var:
            fs = list(t.factors)
            fs.remove(f)
            rest.append(Term(t.coef, tuple(fs)))
        rest_ins = frozenset().union(*(ex.term_inputs(t) for t in rest))
        if rest_ins and not (rest_ins & ex.inputs[f]):
            kids = [_split(ex, (Term(1.0, (f,)),), depth + 1), _split(ex, _collect(rest), depth + 1)]
            prod = Part("prod", children=kids, coef=1.0, inputs=ins)
            return Part("sum", children=[prod], shift=consts, inputs=ins) if consts else prod
    return leaf


def decompose(graph: Graph, dists: Mapping[str, Any] | None = None) -> Part | None:
    """The decomposition tree of a single-output graph's output, or ``None`` where it does not split.

    Returns ``None`` also where every leaf is a bare input and the tree is a sum of them or has at most two leaves
    (sums of inputs and products of two: the grid engine's second-order and semi-discrete certificates are tighter
    there), where it has more than :data:`MAX_LEAVES` leaves or a leaf on more than :data:`MAX_LEAF_INPUTS`
    inputs (except one wide leaf beside one-input leaves, :func:`opgraph.dcg.wideleaf.admits`), and where the
    whole output has an exact law that :mod:`opgraph.dcg.exactlaw` recognises (given ``dists``).
    """
    if len(graph.outputs) != 1:
        return None
    if dists is not None:
        from opgraph.dcg import exactlaw

        if exactlaw.whole_output(graph, graph.outputs[0], dict(dists)):
            return None  # one exact 1D law (a product of LogNormals, a sum of Normals): the grid engine's is exact
    ex = _Expander(graph)
    tree = _split(ex, ex.terms(graph.outputs[0]))
    if tree.kind == "leaf":
        return None
    leaves = tree.leaves()
    if all(_bare_input(ex, lf) for lf in leaves) and (len(leaves) <= 2 or _sum_of_leaves(tree)):
        return None
    if len(leaves) > MAX_LEAVES:
        return None  # many parts: measured slower than the grid engine alone (see docs)
    widths = [len(lf.inputs) for lf in leaves]
    if max(widths) > MAX_LEAF_INPUTS and not wideleaf.admits(widths, MAX_LEAF_INPUTS):
        return None  # a large grid part: measured slower than the grid engine alone (see docs), unless it is the
        # one wide part beside one-input parts (opgraph.dcg.wideleaf)
    return tree


def _sum_of_leaves(tree: Part) -> bool:
    """A sum whose operands are all leaves (of bare inputs, the grid engine's second-order sum bound is tighter)."""
    return tree.kind == "sum" and all(c.kind == "leaf" for c in tree.children)


def _bare_input(ex: _Expander, leaf: Part) -> bool:
    var = [t for t in leaf.terms if t.factors]
    return len(var) == 1 and len(var[0].factors) == 1 and ex.g.nodes[var[0].factors[0]].op == "input"


def leaf_graph(graph: Graph, leaf: Part) -> Graph:
    """A graph computing ``leaf``'s monomials from its inputs (nodes copied; ``origin`` kept for messages)."""
    from opgraph.graph.tracer import GraphBuilder

    b = GraphBuilder(name=f"{graph.meta.get('name', 'graph')}[{','.join(sorted(leaf.inputs))}]")
    new: dict[int, int] = {}
    order = sorted(leaf.inputs, key=lambda s: [str(graph.nodes[i].attrs["name"]) for i in graph.inputs].index(s))
    for name in order:
        nid = next(i for i in graph.inputs if graph.nodes[i].attrs["name"] == name)
        new[nid] = b.input(name, meta=dict(graph.nodes[nid].meta))
    need: set[int] = set()
    stack = [f for t in leaf.terms for f in t.factors]
    while stack:
        i = stack.pop()
        if i not in need:
            need.add(i)
            stack.extend(graph.nodes[i].inputs)
    for i in sorted(need):
        n = graph.nodes[i]
        if i in new:
            continue
        meta = {**n.meta, "origin": n.meta.get("origin", n.id)}
        if n.op == "const":
            new[i] = b.const(n.attrs["value"], meta=meta)
        elif n.op == "input":
            raise ValueError(f"input {n.attrs.get('name')!r} outside the leaf's inputs")  # decompose() prevents it
        else:
            new[i] = b.add(n.op, [new[j] for j in n.inputs], n.attrs, meta)
    acc: int | None = None
    for t in leaf.terms:
        if not t.factors:
            v = b.const(float(t.coef))
        else:
            v = new[t.factors[0]]
            for f in t.factors[1:]:
                v = b.add("mul", (v, new[f]))
            if t.coef != 1.0:
                v = b.add("mul", (b.const(float(t.coef)), v))
        acc = v if acc is None else b.add("add", (acc, v))
    assert acc is not None
    return b.build([acc])


# ---------------------------------------------------------------------------------------------------------------
# Lattice laws
@dataclass
class Law:
    """A discrete law with a certified W1 bound to the exact law of its part.

    ``lattice = (origin, h)`` when every atom is ``origin + k h`` (then ``idx`` holds the ``k``).
    """

    atoms: np.ndarray
    weights: np.ndarray
    bound: float
    terms: dict[str, float]
    support: tuple[float, float]
    lattice: tuple[float, float] | None = None
    idx: np.ndarray | None = None

    def eabs(self) -> float:
        """``E|X'|`` of this law (rounded up: a relative ``n u`` of the dot product, and the weights' sum)."""
        e = float(np.abs(self.atoms) @ self.weights)
        return e * (1 + (self.atoms.size + 4) * _U) / min(1.0, float(self.weights.sum()) * (1 - self.atoms.size * _U))


def _snap(law: Law, origin: float, h: float, what: str) -> Law:
    """Move every atom to its nearest point of ``origin + h Z`` (the cost, exact up to rounding, is added)."""
    if law.lattice == (origin, h):
        return law
    y = (law.atoms - origin) / h
    k = np.rint(y)
    cost = float(np.abs(y - k) @ law.weights) * h
    span = float(np.max(np.abs(law.atoms))) + abs(origin) + h
    cost += 8 * _U * span  # the rounding of (x - o) / h and of o + k h
    kk = k.astype(np.int64)
    lo = int(kk.min())
    w = np.bincount(kk - lo, law.weights)
    keep = np.nonzero(w)[0]
    idx = keep + lo
    terms = {**law.terms, what: law.terms.get(what, 0.0) + cost}
    return Law(origin + idx * h, w[keep], law.bound + cost, terms, law.support, (origin, h), idx)


def _convolve(a: Law, b: Law, label: str) -> Law:
    """The law of ``A' + B'`` for two independent laws on one lattice spacing (direct convolution)."""
    assert a.lattice is not None and b.lattice is not None and a.idx is not None and b.idx is not None
    h = a.lattice[1]
    la, lb = int(a.idx[0]), int(b.idx[0])
    pa = np.zeros(int(a.idx[-1]) - la + 1)
    pa[a.idx - la] = a.weights
    pb = np.zeros(int(b.idx[-1]) - lb + 1)
    pb[b.idx - lb] = b.weights
    n_out = pa.size + pb.size - 1
    if pa.size * pb.size <= DIRECT_MAX:
        p = np.convolve(pa, pb)
        moved = 2 * min(pa.size, pb.size) * _U  # relative n u on non-negative sums: mass moved <= that
    else:
        from scipy import fft

        nfft = fft.next_fast_len(n_out, real=True)
        p = fft.irfft(fft.rfft(pa, nfft) * fft.rfft(pb, nfft), nfft)[:n_out]
        # A priori error of FFT convolution (Higham, Accuracy and Stability, section 24.1: each transform errs by
        # at most about 5 u log2 N relative in the 2-norm), with a 10x margin: ||p~ - p||_2 <= 64 u log2 N
        # (||pa||_2 + ||pb||_2 + ||p~||_2); the mass it moves is at most sqrt(N) times that (the 1-norm), and the
        # negative entries dropped below are part of it.
        err2 = 64 * _U * math.log2(nfft) * (np.linalg.norm(pa) + np.linalg.norm(pb) + np.linalg.norm(p))
        moved = 2 * math.sqrt(nfft) * err2
    keep = np.nonzero(p > 0)[0]
    w = p[keep]
    total = float(w.sum())
    w = w / total
    origin = a.lattice[0] + b.lattice[0]
    idx = keep + la + lb
    atoms = origin + idx * h
    width = float(atoms[-1] - atoms[0]) if atoms.size else 0.0
    rounding = (moved + abs(total - 1.0)) * width + 8 * _U * float(np.max(np.abs(atoms)))
    terms = _merge(a.terms, b.terms)
    terms[label] = terms.get(label, 0.0) + rounding
    sup = (a.support[0] + b.support[0], a.support[1] + b.support[1])
    return Law(atoms, w, a.bound + b.bound + rounding, terms, sup, (origin, h), idx)


def _merge(x: Mapping[str, float], y: Mapping[str, float], sx: float = 1.0, sy: float = 1.0) -> dict[str, float]:
    out = {k: v * sx for k, v in x.items()}
    for k, v in y.items():
        out[k] = out.get(k, 0.0) + v * sy
    return out


class _TooLarge(Exception):
    """A product grid beyond :data:`MAX_PRODUCT` values."""


def _product(a: Law, b: Law, h: float, label: str, stats: dict[str, int] | None = None) -> Law:
    """The law of ``A' B'`` snapped to the lattice ``h Z`` (cost exact up to rounding), with the product bound."""
    if a.atoms.size < b.atoms.size:
        a, b = b, a
    if a.atoms.size * b.atoms.size > MAX_PRODUCT:
        # Coarsen the larger operand onto a lattice that fits (its exact snapping cost joins the bound). A span
        # ``S`` on ``0 + (S / (m - 2)) Z`` touches at most ``m`` lattice points (``S / (m - 1)`` could touch m + 1).
        if stats is not None:
            stats["coarsened"] = stats.get("coarsened", 0) + 1
        m = max(3, MAX_PRODUCT // max(1, b.atoms.size))
        span = float(a.atoms[-1] - a.atoms[0])
        if span > 0:
            a = _snap(a, 0.0, span / (m - 2), "coarsening (products)")
        if a.atoms.size * b.atoms.size > MAX_PRODUCT:
            raise _TooLarge(f"a product grid of {a.atoms.size} x {b.atoms.size} values exceeds {MAX_PRODUCT}")
        if a.atoms.size < b.atoms.size:
            a, b = b, a
    n = max(1, CHUNK // max(1, b.atoms.size))
    corners = [x * y for x in (a.atoms[0], a.atoms[-1]) for y in (b.atoms[0], b.atoms[-1])]
    lo, hi = float(min(corners)), float(max(corners))
    amax = max(abs(lo), abs(hi))
    k_lo = math.floor(lo / h) - 1
    size = math.ceil(hi / h) - k_lo + 2
    acc = np.zeros(size)
    cost = 0.0
    inv = 1.0 / h
    for s in range(0, a.atoms.size, n):
        y = np.multiply.outer(a.atoms[s : s + n], b.atoms)
        w = np.multiply.outer(a.weights[s : s + n], b.weights)
        y *= inv
        k = np.rint(y)
        cost += float(np.vdot(np.abs(y - k), w))
        acc += np.bincount((k - k_lo).astype(np.int64).ravel(), w.ravel(), size)
    cost *= h
    keep = np.nonzero(acc > 0)[0]
    wts = acc[keep]
    total = float(wts.sum())
    wts = wts / total
    idx = keep + k_lo
    atoms = idx * h
    width = float(atoms[-1] - atoms[0]) if atoms.size else 0.0
    # Rounding: each product and its scaled value (a few ulps of |y|), the lattice points, the summed masses.
    slack = 8 * _U * (amax + h) + (a.atoms.size * b.atoms.size * _U + abs(total - 1.0)) * width
    ea, eb_exact = a.eabs(), b.eabs() + b.bound
    bound = a.bound * eb_exact + b.bound * ea + cost + slack
    terms = _merge(a.terms, b.terms, eb_exact, ea)
    terms[label] = terms.get(label, 0.0) + cost + slack
    cs = [x * y for x in a.support for y in b.support]
    sup = (min(cs), max(cs)) if all(math.isfinite(c) for c in cs) else (-math.inf, math.inf)
    return Law(atoms, wts, bound, terms, sup, (0.0, h), idx)


def _affine(law: Law, coef: float, shift: float) -> Law:
    """The law of ``coef X' + shift`` (exact up to a few ulps, added)."""
    atoms = coef * law.atoms + shift
    slack = 4 * _U * float(np.max(np.abs(atoms)))
    order = np.argsort(atoms, kind="stable") if coef < 0 else None
    w = law.weights
    if order is not None:
        atoms, w = atoms[order], w[order]
    terms = {k: v * abs(coef) for k, v in law.terms.items()}
    if slack:
        terms["rounding"] = terms.get("rounding", 0.0) + slack
    s = sorted((coef * law.support[0] + shift, coef * law.support[1] + shift))
    sup = (s[0], s[1]) if all(math.isfinite(v) for v in s) else (-math.inf, math.inf)
    lat = (law.lattice[0] + shift, law.lattice[1]) if coef == 1.0 and law.lattice is not None else None
    return Law(atoms, w, law.bound * abs(coef) + slack, terms, sup, lat, law.idx if lat else None)


# ---------------------------------------------------------------------------------------------------------------
# Evaluation
LeafEval = Callable[[Graph, float], DistResult]


@dataclass
class _Plan:
    """Per-leaf targets and the lattice spacing of every combining part (by ``id(part)``)."""

    leaf_target: dict[int, float]
    spacing: dict[int, float]


def _sample_eabs(graph: Graph, tree: Part, dists: Mapping[str, Any]) -> tuple[dict[int, float], dict[int, float]]:
    """``E|part|`` and the width of each part's values, from 4096 scrambled Sobol points (allocation only)."""
    from scipy.stats import qmc

    from opgraph.dcg.api import _rules
    from opgraph.dcg.engine import run_points, sample_inputs

    names = [str(graph.nodes[i].attrs["name"]) for i in graph.inputs]
    u = qmc.Sobol(len(names), scramble=True, seed=0).random(4096)
    pts = sample_inputs(dists, np.clip(u, 1e-9, 1 - 1e-9), names)
    eabs: dict[int, float] = {}
    width: dict[int, float] = {}
    rules = _rules()

    def visit(p: Part) -> np.ndarray:
        if p.kind == "leaf":
            g = leaf_graph(graph, p)
            vals = run_points(g, {n: pts[n] for n in p.inputs}, rules)
        else:
            kids = [visit(c) for c in p.children]
            if p.kind == "sum":
                vals = p.shift + np.sum(kids, axis=0)
            else:
                vals = p.coef * np.prod(kids, axis=0)
        vals = np.nan_to_num(np.asarray(vals, dtype=float) * np.ones(u.shape[0]))
        eabs[id(p)] = float(np.mean(np.abs(vals)))
        width[id(p)] = float(np.ptp(vals)) if vals.size else 0.0
        return vals

    visit(tree)
    return eabs, width


def _plan(tree: Part, target: float, eabs: Mapping[int, float], width: Mapping[int, float]) -> _Plan:
    """Leaf targets and lattice spacings for ``target`` (see the module docstring)."""
    leaf_w: dict[int, tuple[float, float]] = {}  # id -> (elasticity weight, multiplier)
    snaps: list[tuple[int, float, int]] = []  # (combining part id, its multiplier, snapping events)

    def walk(p: Part, mult: float, under_prod: bool, in_sum: bool) -> None:
        if p.kind == "leaf":
            d = len(p.inputs)
            e = float(d) if d > 1 else (1.0 if under_prod else 0.25)
            leaf_w[id(p)] = (e, max(mult, 1e-300))
            return
        if p.kind == "sum":
            snaps.append((id(p), mult, len(p.children)))
            for c in p.children:
                walk(c, mult, under_prod, True)
            return
        if not in_sum:  # a product under a sum lands on its parent's lattice (counted there)
            snaps.append((id(p), mult, max(1, len(p.children) - 1)))
        for c in p.children:
            others = math.prod(eabs[id(o)] for o in p.children if o is not c)
            walk(c, mult * abs(p.coef) * max(others, 1e-12), True, False)

    walk(tree, 1.0, False, False)
    events = sum(k for _, _, k in snaps) or 1
    share = LATTICE_SHARE * target / events
    spacing = {pid: max(3.0 * share / m, width.get(pid, 1.0) / MAX_LATTICE, 1e-300) for pid, m, _ in snaps}
    total_e = sum(e for e, _ in leaf_w.values())
    leaf_budget = (1 - LATTICE_SHARE) * target
    leaf_target = {pid: leaf_budget * e / total_e / m for pid, (e, m) in leaf_w.items()}
    return _Plan(leaf_target, spacing)


def _combine(
    tree: Part,
    laws: Mapping[int, Law],
    plan: _Plan,
    stats: dict[str, int] | None = None,
    over: dict[int, float] | None = None,
) -> Law:
    """The combined law of ``tree`` (``over`` receives, by product part id, ``n_A n_B / MAX_PRODUCT`` where > 1)."""

    def visit(p: Part, h_parent: float | None) -> Law:
        if p.kind == "leaf":
            return laws[id(p)]
        if p.kind == "prod":
            h = h_parent if h_parent is not None else plan.spacing[id(p)]
            kids = [visit(c, None) for c in p.children]
            acc = _affine(kids[0], p.coef, 0.0) if p.coef != 1.0 else kids[0]
            for k in kids[1:]:
                ratio = acc.atoms.size * k.atoms.size / MAX_PRODUCT
                if over is not None and ratio > 1:
                    over[id(p)] = max(over.get(id(p), 1.0), ratio)
                acc = _product(acc, k, h, "lattice (products)", stats)
            return acc
        h = plan.spacing[id(p)]
        kids = [visit(c, h if c.kind == "prod" else None) for c in p.children]
        widest = max(float(k.atoms[-1] - k.atoms[0]) if k.atoms.size else 0.0 for k in kids)
        if widest / h > MAX_LATTICE:  # keep every lattice within MAX_LATTICE points (re-snaps the products)
            h = widest / MAX_LATTICE
        acc = _snap(kids[0], 0.0, h, "lattice (sums)")
        for k in kids[1:]:
            acc = _convolve(acc, _snap(k, 0.0, h, "lattice (sums)"), "rounding")
        return _affine(acc, 1.0, p.shift) if p.shift else acc

    return visit(tree, None)


def _relax_products(tree: Part, over: Mapping[int, float], relax: dict[int, float]) -> None:
    """Scale the targets of the leaves under each product of ``over`` by ``1.1 sqrt(ratio)`` (its grid then fits).

    A leaf's atom count grows at least like ``1 / target`` (first-order quantization), so each of two operands
    asked for ``sqrt(ratio)`` times its target has at most ``1 / sqrt(ratio)`` of its atoms.
    """

    def walk(p: Part, factor: float) -> None:
        f = factor * (1.1 * math.sqrt(over[id(p)]) if id(p) in over else 1.0)
        if p.kind == "leaf":
            if f != 1.0:
                relax[id(p)] = relax.get(id(p), 1.0) * f
            return
        for c in p.children:
            walk(c, f)

    walk(tree, 1.0)


def certify(
    graph: Graph,
    tree: Part,
    dists: Mapping[str, Any],
    target: float,
    leaf_eval: LeafEval,
    max_rounds: int = 3,
) -> DistResult | None:
    """The output law of ``graph`` through its decomposition ``tree``, refined until its bound is ``<= target``.

    Args:
        graph: The (prepared) single-output graph ``tree`` was made from.
        tree: Its decomposition (:func:`decompose`).
        dists: Input laws by name.
        target: The requested W1 bound.
        leaf_eval: Evaluates a leaf graph with a ``target_w1`` (the grid engine).
        max_rounds: Most refinement rounds.

    Returns:
        The best certified result (``info["target_met"]`` says whether it reached ``target``), or ``None`` where a
        leaf has no finite bound or a product grid cannot be brought within :data:`MAX_PRODUCT` values.
    """
    t0 = time.process_time()
    eabs, width = _sample_eabs(graph, tree, dists)
    scale = 1.0
    best: tuple[float, Law, list[dict[str, Any]], dict[int, DistResult]] | None = None
    rounds: list[dict[str, Any]] = []
    leaves = tree.leaves()
    cache: dict[tuple[int, float], DistResult] = {}
    relax: dict[int, float] = {}  # per leaf id: factor on its planned target (leaves of products over MAX_PRODUCT)
    for _ in range(max_rounds):
        plan = _plan(tree, target * scale, eabs, width)
        laws: dict[int, Law] = {}
        leaf_results: dict[int, DistResult] = {}
        info_leaves = []
        for k, lf in enumerate(leaves):
            t_leaf = plan.leaf_target[id(lf)] * relax.get(id(lf), 1.0)
            key = (k, t_leaf)
            r = cache.get(key)
            if r is None:
                r = leaf_eval(leaf_graph(graph, lf), t_leaf)
                cache[key] = r
            if not (r.certified and math.isfinite(r.w1_bound)):
                log.info("disjoint split: leaf %s has no finite bound", sorted(lf.inputs))
                return None
            label = f"part {k} ({','.join(sorted(lf.inputs))})"
            leaf_results[id(lf)] = r
            laws[id(lf)] = Law(
                np.asarray(r.atoms, float),
                np.asarray(r.weights, float),
                float(r.w1_bound),
                {label: float(r.w1_bound)},
                tuple(map(float, r.support)),
            )
            info_leaves.append(
                {
                    "part": label,
                    "target": t_leaf,
                    "bound": float(r.w1_bound),
                    "atoms": r.info.get("atoms"),
                    "out_atoms": int(r.atoms.size),
                    "target_met": r.info.get("target_met"),
                }
            )
        stats: dict[str, int] = {}
        over: dict[int, float] = {}
        try:
            law = _combine(tree, laws, plan, stats, over)
        except _TooLarge as exc:
            log.info("disjoint split: %s", exc)
            if not over:
                break
            _relax_products(tree, over, relax)
            continue
        rounds.append({"leaves": info_leaves, "w1_bound": law.bound, "spacing": sorted(plan.spacing.values())})
        if best is None or law.bound < best[0]:
            best = (law.bound, law, info_leaves, leaf_results)
        if law.bound <= target or wideleaf.stuck(
            [(len(lf.inputs), leaf_results[id(lf)]) for lf in leaves], MAX_LEAF_INPUTS
        ):
            break
        if over:
            # A product grid was coarsened: its leaves' fine atoms were thrown away at a snapping cost about as
            # large as their own error. Ask those leaves for about as many atoms as the grid takes instead.
            _relax_products(tree, over, relax)
            continue
        if relax:
            break  # the product grids are at MAX_PRODUCT: finer leaves would be coarsened again
        scale *= 0.9 * target / law.bound
    if best is None:
        return None
    bound, law, info_leaves, leaf_results = best
    order = np.argsort(law.atoms, kind="stable")
    info = {
        "method": "disjoint split",
        "split": tree.describe(graph),
        "parts": info_leaves,
        "refinement": rounds,
        "target_w1": target,
        "target_met": bool(bound <= target),
        "seconds": time.process_time() - t0,
        "bound_method": "disjoint split",
    }
    if bound > target:
        top = sorted(law.terms.items(), key=lambda kv: -kv[1])[:3]
        info["target_unmet"] = (
            f"target_w1={target:.3g} not reached by the disjoint split: best bound {bound:.3g} = "
            f"{bound / target:.3g} x target after {len(rounds)} round(s); largest terms: "
            + ", ".join(f"{k} {v:.3g}" for k, v in top)
        )
    sup = law.support if all(math.isfinite(s) for s in law.support) else (-math.inf, math.inf)
    res = DistResult(law.atoms[order], law.weights[order], float(bound), law.terms, True, sup, info)
    object.__setattr__(res, "_split_parts", (tree, leaf_results))  # for parts_band (not saved, not copied)
    return res


def parts_band(result: DistResult) -> Any:
    """The CDF band of a split result built from its parts' bands (:mod:`opgraph.dcg.partband`), or None.

    None where ``result`` does not come from :func:`certify` (or a copy of it) or a part has no band.
    """
    from opgraph.dcg import partband
    from opgraph.dcg.errors import DistError

    got = result.__dict__.get("_split_parts")
    if got is None:
        return None
    tree, leaf_results = got
    try:
        bands = {k: r.cdf_band() for k, r in leaf_results.items()}
    except DistError:
        return None
    return partband.combine(tree, bands)
