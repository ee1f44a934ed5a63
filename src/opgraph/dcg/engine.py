"""Exact-dependence evaluation of a traced graph on quantized inputs, with a certified W1 bound.

How a node is represented. Every graph input (and every compressed node, see below) is an *axis*: a finite
list of atoms with masses, a cell (interval) around each atom that contains the true values coupled to it, and
an upper bound ``err`` on ``E[|X - atom|; X in cell]`` per cell. A node's value is a NumPy array with one dimension
per axis it depends on (its *source set*), so nodes that share an input are evaluated on shared axes
(``x - x`` is exactly 0) and independent inputs combine by broadcasting (outer product).

The bound. All inputs are coupled to their atoms cell by cell (X' = atom of the cell of X), independently. On
each box of the joint grid, the error ``|F(X) - F(X')|`` is bounded by walking from X' to X one coordinate at a
time (bounded-support axes first) and multiplying each step by the largest partial derivative on the part of
the box that step can visit (interval forward-mode differentiation, :mod:`opgraph.dcg.intervals`), or, if
smaller, by the box probability times the width of the value enclosure on the box. Summing over boxes bounds
``E|F(X) - F(X')| >= W1``. A second, independent bound propagates ``E|V - V'|`` node by node (global Lipschitz
constants, with moment weights ``E|W|`` for products and quotients of independent operands, which stays finite
for products of unbounded inputs); the result reports the smaller of the two.

Compression. A node that *separates* its inputs from the rest of the graph (every path from them to the output
passes through it) may be replaced by a monotone equal-mass regrouping of its atoms: it becomes a new axis
whose cells are the hulls of the grouped boxes' value enclosures and whose per-cell error is the upstream bound
of the group plus the exact transport cost of the regrouping. This keeps the joint grid within ``max_joint``.
If no separator helps, the graph is evaluated by randomised quasi-Monte Carlo and the result is labelled
``certified=False``.

On the core. The graph is an :class:`opgraph.graph.Graph` (sums rebalanced by
:func:`opgraph.graph.passes.rebalance_sums`, restricted to one output by :meth:`Graph.subgraph`); separators are
the core's; the loop is :func:`opgraph.graph.interpret`, whose rule for every op of
:data:`opgraph.dcg.intervals.RULES` builds a :class:`Val` and whose ``after_node`` hook compresses the planned
nodes.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.dcg import affine, cancel, cellmoments, costguards, enclose, envelope, exactlaw, multienv, semidiscrete
from opgraph.dcg import growth as gr
from opgraph.dcg import intervals as iv
from opgraph.dcg.band import GridCells, mean_value_enclosure
from opgraph.dcg.distributions import Distribution, Quantized, Uniform
from opgraph.dcg.errors import DistError, UnboundedWarning
from opgraph.dcg.extremes import OneAxis, extreme_law
from opgraph.dcg.regroup import merge_duplicates, regroup
from opgraph.dcg.truncation import domain_hint
from opgraph.graph import Graph, Node, interpret
from opgraph.graph.passes import rebalance_sums, square_powers

log = logging.getLogger(__name__)

Terms = dict[str, float]
_EPS = float(np.finfo(float).eps)
#: Progress bar over the nodes of one evaluation: True / False, or None for "when the work (cells summed over the
#: nodes) exceeds NODE_PROGRESS_CELLS and stderr is a terminal". Set by :func:`opgraph.dcg.evaluate` (``progress``).
NODE_PROGRESS: contextvars.ContextVar[bool | None] = contextvars.ContextVar("dcg_node_progress", default=None)
NODE_PROGRESS_CELLS = 5 * 10**7
#: Whether :func:`evaluate_output` tries the semi-discrete output certificate (:mod:`opgraph.dcg.semidiscrete`);
#: off only to measure what it adds.
SEMI_DISCRETE: contextvars.ContextVar[bool] = contextvars.ContextVar("dcg_semi_discrete", default=True)
#: Set by a caller that decides itself where the sub-cell pass runs (the cancellation pair, the ``target_w1``
#: loop): :func:`evaluate_output` then returns its answer before the pass, with the pass as
#: :attr:`Evaluation.resume` (a :class:`DeferredPass`) to run later or never. The bound is the same either way where
#: the pass runs (the same code on the same arrays); skipping it only leaves the larger of two valid bounds.
DEFER_SUBCELLS: contextvars.ContextVar[bool] = contextvars.ContextVar("dcg_defer_subcells", default=False)


# ----------------------------------------------------------------------------------------------------------------
# The graph: opgraph.graph's Graph, rewritten by its passes and restricted with its algorithms
# ----------------------------------------------------------------------------------------------------------------
def prepare(graph: Graph, balance: bool = True) -> Graph:
    """The graph the engine evaluates: ``x ** 2`` as ``square(x)``, chains of ``+`` rebalanced.

    :func:`square_powers` gives ``x ** 2`` the tighter rules of ``square``; :func:`rebalance_sums` makes partial sums
    separators. Node ids change; every node keeps the id the user knows in ``meta["origin"]`` (see :attr:`Node.where`).
    """
    graph = square_powers(graph)
    return rebalance_sums(graph) if balance else graph


def restrict(graph: Graph, output: int) -> tuple[Graph, int]:
    """The ancestors of ``output`` as a single-output graph (order kept) and the output's id in it."""
    sub, mapping = graph.subgraph(sorted(graph.ancestors(output) | {output}), [output])
    return sub, mapping[output]


def separators(graph: Graph, output: int) -> set[int]:
    """Op nodes (not inputs, constants or ``output``) through which every path from their inputs to ``output`` runs.

    These are the core's separators (:meth:`Graph.separators`) of the graph restricted to ``output``: replacing
    such a node's value by a compressed law loses no dependence with the rest of the graph.
    """
    return set(costguards.memo_by_graph("separators", graph, output, lambda: _separators(graph, output)))


def _separators(graph: Graph, output: int) -> frozenset[int]:
    g = graph if graph.outputs == (output,) else Graph(graph.nodes, graph.inputs, (output,))
    return frozenset(v for v in g.separators() if g.nodes[v].op != "input" and v != output)


def extreme_nodes(graph: Graph, output: int, seps: set[int] | None = None) -> set[int]:
    """``maximum`` / ``minimum`` nodes whose law may be computed without their joint grid.

    They must separate their inputs from the rest of the graph (or be the output): the computed law then stands
    for the node as a new independent axis. Whether it applies also needs two operands on one distinct axis each
    (an input, a compressed node or another such extreme, or a function of one of them), checked where the
    operands are known (:func:`_grid_sizes`, :meth:`Evaluator.run`).
    """
    cands = [n.id for n in graph.nodes if n.op in ("maximum", "minimum") and len(n.inputs) == 2]
    if not cands:
        return set()
    if seps is None:
        seps = separators(graph, output)
    return {i for i in cands if i == output or i in seps}


def _grid_sizes(
    graph: Graph, sizes: dict[int, int], chosen: set[int], compress_atoms: int, extremes: set[int]
) -> list[float]:
    """Joint grid size of every node when the nodes in ``chosen`` are compressed to ``compress_atoms`` atoms.

    A node in ``extremes`` whose operands lie on one distinct axis each becomes a new axis with the atoms of
    both (see :mod:`opgraph.dcg.extremes`).
    """
    axes: list[frozenset[Any]] = []
    size: list[float] = []
    own: dict[Any, float] = {}  # atoms of the axes of extremes

    def atoms_of(a: Any) -> float:
        return own[a] if a in own else (compress_atoms if isinstance(a, tuple) else sizes[a])

    for i, n in enumerate(graph.nodes):
        if n.op == "input":
            ax: frozenset[Any] = frozenset([i])
        else:
            ops = [frozenset([("c", j)]) if j in chosen else axes[j] for j in n.inputs]
            if i in extremes and all(len(o) == 1 for o in ops) and ops[0] != ops[1]:
                own[("x", i)] = float(sum(atoms_of(a) for o in ops for a in o))
                ax = frozenset([("x", i)])
            else:
                ax = frozenset().union(*ops)
        axes.append(ax)
        size.append(math.prod(atoms_of(a) for a in ax))
    return size


def plan_compression(
    graph: Graph,
    output: int,
    sizes: dict[int, int],
    max_joint: int,
    compress_atoms: int,
    soft_joint: int | None = None,
) -> set[int] | None:
    """Choose separators to compress so that every node's joint grid has at most ``max_joint`` elements.

    Args:
        graph: The graph, restricted to one output (:func:`restrict`).
        output: The output id.
        sizes: Atom count of each input node.
        max_joint: Largest joint grid allowed (elements).
        compress_atoms: Atoms after compression.
        soft_joint: If given, also compress where a grid would exceed this size and a separator upstream of it
            can be compressed (grids with no such separator may still grow to ``max_joint``). Without it,
            compressions happen only where ``max_joint`` forces them (exact joint grids as far as they fit).

    Returns:
        The set of node ids to compress, or ``None`` when no choice fits (then QMC is used).
    """
    limit = max_joint if soft_joint is None else min(max_joint, soft_joint)
    if math.prod(sizes.values()) <= limit:
        return set()  # even the joint grid of every input fits: nothing to compress
    seps = separators(graph, output)
    extremes = extreme_nodes(graph, output, seps)
    chosen: set[int] = set()
    tolerated: set[int] = set()  # over the soft limit with nothing left to compress upstream
    # The sizes change only when a node is chosen; a tolerated node leaves them (and every node before it, all
    # within the limit or tolerated) as they were, so the scan goes on after it: O(nodes) per choice, not per
    # tolerated node (a 1,000-step ODE tolerated 7,000 nodes one full pass each: 100 s per call at 64 atoms).
    size: list[float] | None = None
    start = 0
    for _ in range(2 * len(graph) + 1):
        if size is None:
            size, start = _grid_sizes(graph, sizes, chosen, compress_atoms, extremes), 0
        bad = next((i for i in range(start, len(size)) if size[i] > limit and i not in tolerated), None)
        if bad is None:
            return chosen
        # Candidates: separators upstream of ``bad`` (ancestry checked only where a separator qualifies at all).
        pool = [u for u in seps if u not in chosen and size[u] > compress_atoms and size[u] <= max_joint]
        up = graph.ancestors(bad) if pool else frozenset()
        cands = [u for u in pool if u in up]
        if cands:
            chosen.add(max(cands, key=lambda u: (size[u], -u)))
            size = None
        elif size[bad] <= max_joint:
            tolerated.add(bad)
            start = bad + 1
        else:
            return None
    return None


def grid_work(
    graph: Graph,
    output: int,
    sizes: dict[int, int],
    max_joint: int,
    compress_atoms: int,
    soft_joint: int | None = None,
) -> float | None:
    """Cells one evaluation computes: the sum of every op node's joint grid size under the compression plan.

    This is what the time of an evaluation scales with (each op, enclosure and compression is linear in its
    grid, up to the sort of a compression). ``None`` when the plan does not fit ``max_joint``.
    """
    plan = plan_compression(graph, output, sizes, max_joint, compress_atoms, soft_joint)
    if plan is None:
        return None
    size = _grid_sizes(graph, sizes, plan, compress_atoms, extreme_nodes(graph, output))
    return float(sum(s for s, n in zip(size, graph.nodes, strict=True) if n.op not in ("input", "const")))


# ----------------------------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Axis:
    """One independent coordinate: an input or a compressed node."""

    id: int
    atoms: np.ndarray
    weights: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    err: np.ndarray
    label: str
    components: Terms
    moment: Any = None
    bias: np.ndarray | None = None
    m2: np.ndarray | None = None

    def __post_init__(self) -> None:
        # Per-cell |E[X - atom; cell]| and E[(X - atom)^2; cell] bounds (see Evaluator.second_moments). A cell
        # with no transport (err 0) has both 0; a finite cell has E[(X - atom)^2] <= max deviation * err.
        err = self.err
        bias = err if self.bias is None else np.minimum(self.bias, err)
        m2 = np.full(err.shape, np.inf) if self.m2 is None else np.asarray(self.m2, dtype=float)
        with np.errstate(invalid="ignore", over="ignore"):
            dev = np.maximum(self.atoms - self.lo, self.hi - self.atoms) * err
        dev = np.where(np.isnan(dev), np.inf, dev)
        m2 = np.where(err == 0, 0.0, np.minimum(m2, dev))
        self.bias, self.m2 = np.where(err == 0, 0.0, bias), m2

    def slab(self, sl: slice) -> Axis:
        """The cells ``sl`` of this axis (a chunk of the joint grid, :mod:`opgraph.dcg.chunks`)."""
        m = self.moment
        moment = None if m is None else (lambda j: None if (r := m(j)) is None else r[sl])
        arrays = (self.atoms, self.weights, self.lo, self.hi, self.err)
        return Axis(self.id, *(x[sl] for x in arrays), self.label, self.components, moment, self.bias[sl], self.m2[sl])  # type: ignore[index]

    @property
    def bounded(self) -> bool:
        """True when every cell is finite."""
        b = self.__dict__.get("_bounded")
        if b is None:
            b = self.__dict__["_bounded"] = bool(np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi)))
        return b

    @property
    def size(self) -> int:
        """Number of atoms."""
        return int(self.atoms.size)


@dataclass
class Val:
    """A node value on the grid of its axes, with interval enclosures and both bounds' bookkeeping."""

    axes: tuple[int, ...]
    pt: np.ndarray
    box: list[iv.Interval]
    der: dict[int, iv.Interval]
    gint: tuple[float, float]
    gint1: tuple[float, float]
    nb: Terms
    eabs: float
    d1: Terms
    nb_inf_at: str = ""
    growth: gr.Growth | None = None
    # A bound on W1(law of the true node, law of the computed node) that composes at the level of laws (valid
    # where operands are independent), or None where it does not apply (inputs that are previous results).
    wb: Terms | None = None
    # Total variation of the true node's density (inf when unknown or when there is no BV density).
    tv: float = math.inf
    # The exact input law when this value is an input (for the second-order product rule), else None.
    law: Distribution | None = None
    # An enclosure of the exact value at the atoms (``pt`` carries rounding errors); None where ``pt`` is exact
    # (inputs, constants, compressed nodes).
    box0: iv.Interval | None = None
    # Closed-form tail envelopes (opgraph.dcg.envelope) of a one-input node on its input's tail cells, by cell.
    env: dict[int, Any] | None = None
    # The two operands of a product of independent values (for the law-level rewrite log(u * w) = log u + log w).
    factors: tuple[Val, Val] | None = None
    # The operands of a sum / difference of independent values and the sign of the second (for the law-level
    # rewrite exp(u + w) = exp(u) * exp(w)).
    summands: tuple[Val, Val, float] | None = None
    # For a compressed sum read by exp: its summands before the compression, the grid values, the regrouping
    # plan and the compression's label (for the rewrite exp(u + w) through the compression).
    pre_sum: tuple[Any, ...] | None = None
    # Product-form envelope of |V| over several independent inputs (opgraph.dcg.multienv), for unbounded boxes.
    menv: Any = None
    # Affine-arithmetic form per box (opgraph.dcg.affine), or None where the engine forms none.
    aff: Any = None


def _tsum(*terms: tuple[float, Terms]) -> Terms:
    out: Terms = {}
    for c, t in terms:
        if c == 0:
            continue
        for k, v in t.items():
            if v == 0:
                continue
            out[k] = out.get(k, 0.0) + c * v
    return out


def _total(t: Terms) -> float:
    return float(sum(t.values())) if t else 0.0


def _cellwise_or_path(c_total: float, n_total: float, cell_terms: Terms, val: Val) -> tuple[Terms, str, float]:
    """The smaller of the cellwise and the path bound, plus the compressions' terms ``val.d1``.

    Returns ``(terms, method, bound)``; shared by the whole-grid and the chunked evaluation (whose cellwise terms
    are the chunks' sums).
    """
    if c_total <= n_total:
        terms, method = dict(cell_terms), "cellwise"
    else:
        terms, method = dict(val.nb), "path"
    for key, v in val.d1.items():
        terms[key] = terms.get(key, 0.0) + v
    return terms, method, min(c_total, n_total) + _total(val.d1)


def _mag(lo: float, hi: float) -> float:
    m = max(abs(lo), abs(hi))
    return math.inf if math.isnan(m) else m


def _at(x: Any, i: int) -> float:
    """Element ``i`` of a length-2 rule result, or the value of a 0-d (broadcast) one."""
    return float(x[i]) if np.ndim(x) else float(x)


def _attributed(per_box: np.ndarray, cw: np.ndarray, attr: Terms, glob: Any = None) -> Terms | None:
    """Total of a per-box second-order bound, split like the first-order (cellwise) attribution ``attr``.

    ``glob`` makes the two grid sums global in a chunked evaluation (:meth:`Evaluator._glob`).
    Returns ``None`` when the total is not finite (the candidate does not apply).
    """
    sums = (float(np.sum(per_box)), float(np.sum(cw)))
    total, cw_total = sums if glob is None else glob(sums)
    total *= 1 + 1e-12
    if not math.isfinite(total):
        return None
    if cw_total > 0 and math.isfinite(cw_total):
        return {key: v * total / cw_total for key, v in attr.items()} or {"second-order": total}
    return {"second-order": total} if total > 0 else {}


def _capped(first: np.ndarray, second: np.ndarray, cap: float | None) -> np.ndarray:
    """Per box ``min(first, second)``, the first-order boxes scaled down to share ``cap`` when that is smaller.

    ``first`` is ``k E[|A - A'|; box]`` under one coupling and ``cap`` bounds ``k E|A - A'|`` under the same
    coupling, so the first-order boxes together take at most ``cap`` (valid box by box only as a sum).
    """
    use2 = second < first
    out = np.where(use2, second, first)
    if cap is None or not math.isfinite(cap) or cap < 0:
        return out
    rest = float(np.sum(np.where(use2, 0.0, first)))
    if not rest > cap:
        return out
    if math.isfinite(rest):
        return np.where(use2, second, first * (cap / rest))
    out = np.array(np.where(use2, second, 0.0), dtype=float)
    out.flat[int(np.argmin(use2.reshape(-1)))] += cap  # one first-order box carries the whole cap
    return out


#: A node whose values are all below this in magnitude (and not all 0) switches the second-order certificates off
#: (law-level sums and products, semi-discrete, Taylor): they square values and moments, and float64 squares of
#: values below ~1e-154 underflow, which would make those bounds too small. The first-order bounds stay.
TINY_SCALE = 1e-140


_add_reduce = np.add.reduce


def _tiny_scale(what: str, values: Any) -> str | None:
    """A note where ``values`` are all tiny but not all 0 (see :data:`TINY_SCALE`), else None."""
    v = np.asarray(values)
    if v.size == 0:
        return None
    if v.dtype.kind == "f":
        # Fast path (every node calls this): plain max/min; where both are finite there is no NaN, so they are
        # nanmax/nanmin's values, without the warnings context (the cost of this call on small grids).
        hi, lo = float(v.max()), float(v.min())
        if math.isfinite(hi) and math.isfinite(lo):
            m = max(abs(hi), abs(lo))
            return None if not 0 < m < TINY_SCALE else _tiny_note(what, m)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN array
        m = max(abs(float(np.nanmax(v))), abs(float(np.nanmin(v))))  # two reductions, no temporaries (per node)
        if not math.isfinite(m):  # infinite atoms beside finite ones: the largest finite magnitude decides
            mags = np.abs(v[np.isfinite(v)])
            m = float(np.max(mags)) if mags.size else 0.0
    if 0 < m < TINY_SCALE:
        return _tiny_note(what, m)
    return None


def _tiny_note(what: str, m: float) -> str:
    return (
        f"{what} has values of magnitude {m:.1e} (below {TINY_SCALE:.0e}): second-order certificates off, the "
        "bound is first order; rescale the program's units for a tighter one"
    )


def _scalar(x: Any) -> float:
    return float(np.asarray(x).reshape(-1)[0])


class Evaluator:
    """Evaluates one output of a graph (restricted to it, see :func:`restrict`); see the module docstring.

    The loop is the core's :func:`opgraph.graph.interpret`: every op's rule builds the node's :class:`Val` on the
    grid of its operands' axes (:meth:`_op`, or :meth:`_extreme` for a grid-free max/min) and the interpreter's
    ``after_node`` hook compresses the nodes of the plan (:meth:`_compress`).
    """

    def __init__(
        self,
        graph: Graph,
        output: int,
        quantized: dict[str, Quantized],
        labels: dict[str, str],
        compress: set[int],
        compress_atoms: int,
        dists: dict[str, Distribution] | None = None,
    ) -> None:
        self.dists = dists or {}
        self.graph = graph
        self.nodes = graph.nodes
        self.output = output
        self.quantized = quantized
        self.labels = labels
        self.compress = compress
        self.compress_atoms = compress_atoms
        # Chunked evaluation (opgraph.dcg.chunks): input node id -> the cells of its axis in this chunk, and the
        # function that turns a reduction over this chunk's grid into the global one (None: not chunked).
        self.slabs: dict[int, slice] = {}
        self.reducer: Any = None
        self._node = -1
        self.axes: dict[int, Axis] = {}
        self.compressions: list[dict[str, Any]] = []
        self.extremes: list[dict[str, Any]] = []
        self.smoothing = True
        self._exp_args: set[int] = set()
        self._wbox_memo: dict[tuple[int, ...], np.ndarray] = {}
        self._need_box0: set[int] = set()
        # Subexpressions with a dedicated enclosure (opgraph.dcg.enclose), by node id, and the values of the nodes
        # those enclosures need beyond the node's own operands (kept past their last use).
        self._forms: dict[int, enclose.SqrtDiff] = {}
        self._kept: dict[int, Val] = {}
        # Node id -> axis id of every node whose value is an axis (inputs, compressed and grid-free extreme nodes):
        # the leaves of a subexpression re-evaluated on subdivided boxes (:meth:`_subdivide`).
        self._leaf_axis: dict[int, int] = {}
        self._subdivision_work = 0  # subexpression nodes re-evaluated by _subdivide (capped per evaluation)
        # Node ids whose final values :meth:`run` keeps in ``kept`` (the semi-discrete output certificate's core
        # and operands, see :mod:`opgraph.dcg.semidiscrete`).
        self.keep: set[int] = set()
        self.kept: dict[int, Val] = {}
        # Set where an input or node has only tiny values (:data:`TINY_SCALE`): second-order certificates off.
        self.tiny: str | None = None
        self.box_linear: dict[str, Any] | None = None  # set by _taylor_boxes (opgraph.dcg.boxlinear)
        self.log_linear: dict[str, Any] | None = None  # set by elastic.apply (opgraph.dcg.loglinear)
        # The Taylor pass's per-box bound and linear models of the last unchunked grid (_taylor_boxes): the pass does
        # not read the engine's per-box bound, so the evaluation's second ``finish`` (after the sub-cell pass) reuses
        # them instead of repeating the pass (``(val, graph, tb, lin, probe)``; None until set).
        self.taylor_memo: tuple[Any, ...] | None = None
        # One exact, bounded input and no compression: the cellwise bound is never above the path or law-level
        # bounds (every cell's derivative enclosure lies in the global one), so those are not computed.
        ins = [n.attrs["name"] for n in graph.nodes if n.op == "input"]
        self.cell_only = (
            len(ins) == 1
            and not compress
            and quantized[ins[0]].upstream_w1 == 0
            and bool(np.all(np.isfinite(quantized[ins[0]].lo)) and np.all(np.isfinite(quantized[ins[0]].hi)))
        )

    # -- helpers -----------------------------------------------------------------------------------------------
    def _key(self, a: int) -> tuple[int, int]:
        return (0 if self.axes[a].bounded else 1, a)

    def _shape(self, axes: Sequence[int]) -> tuple[int, ...]:
        return tuple(self.axes[a].size for a in axes)

    def _glob(self, site: Any, axes: Sequence[int], value: Any) -> Any:
        """A reduction over the grid of ``axes`` (a float, tuple or terms; sums, except a ``"range"`` site's min/max).

        The identity unless the grid is evaluated in chunks: then ``self.reducer`` returns the value over the whole
        grid (keyed by the node being evaluated and ``site``), see :mod:`opgraph.dcg.chunks`.
        """
        if self.reducer is None or site is None:
            return value
        return self.reducer((self._node, *site) if isinstance(site, tuple) else (self._node, site), axes, value)

    _expand = staticmethod(affine.expand_axes)

    def _axis_val(self, ax: Axis, gint1: tuple[float, float], nb: Terms, d1: Terms) -> Val:
        one = np.ones(())
        return Val(
            axes=(ax.id,),
            pt=ax.atoms,
            box=[(ax.atoms, ax.atoms), (ax.lo, ax.hi)],
            der={ax.id: (one, one)},
            gint=self._glob(("range", ax.id), (ax.id,), (float(np.min(ax.lo)), float(np.max(ax.hi)))),
            gint1=gint1,
            nb=nb,
            eabs=self._glob(("eabs", ax.id), (ax.id,), float(np.abs(ax.atoms) @ ax.weights)),
            d1=d1,
            aff=affine.axis_form(ax.id, ax.lo, ax.hi, ax.atoms) if affine.ENABLED.get() else None,
        )

    # -- per-box cellwise bound --------------------------------------------------------------------------------
    def cellwise(self, v: Val, site: Any = None) -> tuple[np.ndarray, Terms]:
        """Per-box upper bound on ``E[|V - V'|; box]`` (full grid shape) and its attribution to labels.

        ``site`` names the call for a chunked evaluation (the attribution is a sum over the grid, see :meth:`_glob`).
        """
        k = len(v.axes)
        shape = self._shape(v.axes)
        if k == 0:
            return np.zeros(()), {}
        wbox = self._wbox(v.axes)
        terms = []
        for a in v.axes:
            ax = self.axes[a]
            with iv.errstate(divide="ignore", invalid="ignore"):
                ratio = np.where(ax.weights > 0, ax.err / ax.weights, 0.0)
            lmag = iv.mag(v.der[a])
            r = self._expand(ratio, [a], v.axes)
            with iv.errstate(invalid="ignore", over="ignore"):
                t = np.where((r == 0) | (wbox == 0), 0.0, lmag * r * wbox)
            terms.append(np.broadcast_to(t, shape))
        # Summed in place, term after term: the same additions in the same order as np.sum(terms, axis=0), without
        # stacking the terms into a (k, *shape) copy.
        deriv = np.array(terms[0], dtype=float) if terms else np.zeros(shape)
        for t in terms[1:]:
            deriv += t
        lo, hi = v.box[k]
        with iv.errstate(invalid="ignore", over="ignore"):
            osc = np.where(wbox == 0, 0.0, (np.broadcast_to(hi, shape) - np.broadcast_to(lo, shape)) * wbox)
        osc = np.where(np.isnan(osc), np.inf, osc)
        deriv = np.where(np.isnan(deriv), np.inf, deriv)
        if v.aff is not None and v.aff.axes == v.axes:  # (a renamed axis leaves the form unusable, see _affine)
            osc = np.minimum(osc, self._affine_bound(v, shape, wbox))
        if k > 1 and v.menv is not None and any(a in self._env_regions for a in v.axes):
            # An input with tails or a singular end (a property of its law: identical in every chunking).
            osc = np.minimum(osc, self._menv_bound(v, shape, wbox))
        # Boxes where no axis carries transport (all errors 0) contribute nothing.
        any_err = np.zeros(shape, dtype=bool)
        for a in v.axes:
            any_err |= self._expand(self.axes[a].err > 0, [a], v.axes).astype(bool)
        bound = np.where(any_err, np.minimum(deriv, osc), 0.0)
        if k == 1 and v.env:
            ax1 = self.axes[v.axes[0]]
            regs = self._env_regions.get(v.axes[0], {})
            blo, bhi = (np.broadcast_to(x, shape) for x in v.box[k])
            for i, e in v.env.items():
                if ax1.err[i] > 0 and i in regs:
                    val_i = float(np.reshape(v.pt, -1)[i] if np.ndim(v.pt) else v.pt)
                    cb = envelope.cell_bound(e, regs[i], val_i, float(blo[i]), float(bhi[i]))
                    bound[i] = min(bound[i], cb)
                    deriv[i] = min(deriv[i], cb)
        if k == 1 and v.growth is not None and self.axes[v.axes[0]].moment is not None:
            ax1 = self.axes[v.axes[0]]
            pd = v.growth[1]
            moments = [ax1.moment(j) for j in range(pd.size + 1)]
            tb = gr.tail_bound(pd, ax1.atoms, moments)
            tb = np.where(np.isnan(tb), np.inf, tb)
            tails = ~(np.isfinite(ax1.lo) & np.isfinite(ax1.hi))
            bound = np.where(tails & (ax1.err > 0), np.minimum(bound, tb), bound)
            deriv = np.where(tails, np.minimum(deriv, tb), deriv)
        use_osc = osc < deriv
        attr: Terms = {}
        if k == 1:
            total = float(np.sum(bound))
            for lab, frac in self.axes[v.axes[0]].components.items():
                attr[lab] = frac * total
            return bound, self._glob(site, v.axes, attr)
        with iv.errstate(invalid="ignore", divide="ignore"):
            fin = np.isfinite(deriv) & (deriv > 0)
            safe = np.where(fin, deriv, 1.0)  # the same for every axis: made once
            terms = [np.broadcast_to(t, shape) for t in terms]
            for a, t in zip(v.axes, terms, strict=True):
                share = np.where(use_osc, np.where(fin, t / safe, 1.0 / k), 1.0)
                contrib = float(np.sum(np.where(use_osc, bound * share, t)[any_err]))
                for lab, frac in self.axes[a].components.items():
                    attr[lab] = attr.get(lab, 0.0) + frac * contrib
        return bound, self._glob(site, v.axes, attr)

    # -- evaluation ---------------------------------------------------------------------------------------------
    def run(self, rules: dict[str, Any]) -> tuple[Val, np.ndarray, Terms]:
        """Evaluate; returns the output value, its per-box bound and the bound's attribution.

        Args:
            rules: NumPy implementation of every op, ``rules[op](node, *values)``
                (:func:`opgraph.graph.numpy_rules`).
        """
        self.smoothing = self._smoothing_possible()
        self._env_regions: dict[int, dict[int, envelope.Region]] = {}
        self._menv_laws: dict[int, Distribution] = {}
        self._menv_typ: dict[int, float] = {}
        # Sums read by exp / exp2 (their operands are kept for the law-level rewrite exp(u + w) = exp(u) exp(w)).
        self._exp_args = {j for n in self.nodes if n.op in ("exp", "exp2") for j in n.inputs}
        for n in reversed(self.nodes):  # and the sums inside those sums (exp(x + y + z) is exp((x + y) + z))
            if n.id in self._exp_args and n.op in ("add", "sub"):
                self._exp_args.update(n.inputs)
        self._rules = rules
        self._need_box0 = self._shared_operands()
        self._forms = enclose.find_forms(self.graph)
        self._kept = {}
        self._aff_live: dict[int, Any] = {}  # live affine forms with error symbols (see _affine)
        keep = {f.b for f in self._forms.values()}
        extremes = extreme_nodes(self.graph, self.output)

        def apply(n: Node, *ops: Val) -> Val:
            if n.id in extremes and all(len(o.axes) == 1 for o in ops) and ops[0].axes != ops[1].axes:
                return self._extreme(n.id, n, list(ops))
            return self._op(n, list(ops), rules)

        def after(n: Node, v: Val) -> Val:
            if n.op != "const":  # a tiny constant (an 1e-300 guard) matters only where it makes a value tiny
                self.tiny = self.tiny or _tiny_scale(f"{n.where}", v.pt)
            if self.tiny is not None:
                v.wb = None  # no law-level bound from here on (the rule passes None on to every user)
            out = self._compress(n.id, v) if n.id in self.compress else v
            if n.id in keep:
                self._kept[n.id] = out
            if n.id in self.keep:
                self.kept[n.id] = out
            return out

        table: dict[str, Any] = dict.fromkeys(iv.RULES, apply)
        table["const"] = self._const
        inputs = {n.attrs["name"]: self._input(n) for n in self.nodes if n.op == "input"}
        for i in keep:
            node = self.nodes[i]
            if node.op == "input":
                self._kept[i] = inputs[node.attrs["name"]]
            elif node.op == "const":
                self._kept[i] = self._const(node)
        bar = self._progress_bar()
        try:
            (out,) = interpret(self.graph, inputs, table, after_node=after, on_node=bar and (lambda n, v: bar.update()))
        finally:
            if bar is not None:
                bar.close()
        self._node = self.output
        bound, attr = self.cellwise(out, "final")
        return out, bound, attr

    def _progress_bar(self) -> Any:
        """A tqdm bar over the nodes when :data:`NODE_PROGRESS` asks for one (None otherwise)."""
        want = NODE_PROGRESS.get()
        if want is None:
            import sys

            sizes = {n.id: self.axes_size(n) for n in self.nodes if n.op == "input"}
            want = (
                sys.stderr.isatty()
                and sum(_grid_sizes(self.graph, sizes, self.compress, self.compress_atoms, set())) > NODE_PROGRESS_CELLS
            )
        if not want:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=len(self.nodes), desc="dcg nodes", unit="node", leave=False)

    def axes_size(self, n: Node) -> int:
        """Atoms of input node ``n`` in this evaluation (its slab in a chunk)."""
        sl = self.slabs.get(n.id)
        size = self.quantized[n.attrs["name"]].atoms.size
        return size if sl is None else len(range(*sl.indices(size)))

    def _input(self, n: Node) -> Val:
        """An input node's value: its quantized law as an axis (with moments for the tails of unbounded laws)."""
        i = n.id
        name = n.attrs["name"]
        q = self.quantized[name]
        self.tiny = self.tiny or _tiny_scale(f"input {name!r}", q.atoms)
        label = self.labels[name]
        dist = self.dists.get(name)
        moment = None
        if (
            not np.all(np.isfinite(q.lo) & np.isfinite(q.hi))
            and hasattr(dist, "abs_moment")
            and q.upstream_w1 == 0
            and q.cell_abs_moment(dist, 1) is not None
        ):
            moment = functools.partial(q.cell_abs_moment, dist)
        ax = Axis(i, q.atoms, q.weights, q.lo, q.hi, q.err, label, {label: 1.0}, moment, q.bias, q.m2)
        if i in self.slabs:
            ax = ax.slab(self.slabs[i])
        self.axes[i] = ax
        self._leaf_axis[i] = i
        sup = q.support
        g1 = (min(sup[0], float(np.min(q.lo))), max(sup[1], float(np.max(q.hi))))
        d1 = {f"{label} (upstream bound)": q.upstream_w1} if q.upstream_w1 > 0 else {}
        val = self._axis_val(ax, g1, {label: q.w1}, d1)
        if q.upstream_w1 == 0 and dist is not None:
            val.menv = multienv.variable(i, sup[0] >= 0)
            self._menv_laws[i] = dist
            self._menv_typ[i] = float(np.sum(q.atoms * q.weights) / np.sum(q.weights))  # the whole axis' mean
        if moment is not None:
            val.growth = gr.variable()
        if (
            q.upstream_w1 == 0
            and dist is not None
            and (not q.bounded or isinstance(dist, Uniform))
            and hasattr(dist, "support")
        ):
            regs = envelope.regions(dist, ax.lo, ax.hi)  # this chunk's cells (a slab of the axis)
            self._env_regions[i] = regs
            val.env = {c: envelope.variable(r) for c, r in regs.items()}
        if q.upstream_w1 == 0:
            val.wb = {label: q.w1}
            if dist is not None and q.method in ("quantile", "meansplit", "geometric"):
                val.tv = float(dist.density_tv())
                val.law = dist
        return val

    @staticmethod
    def _const(n: Node) -> Val:
        c = float(np.asarray(n.attrs["value"], dtype=float))
        val = Val((), np.asarray(c), [(np.asarray(c), np.asarray(c))], {}, (c, c), (c, c), {}, abs(c), {})
        val.growth = (gr.const(c), gr.const(0.0))
        val.wb = {}
        return val

    def _op(self, n: Node, ops: list[Val], rules: dict[str, Any]) -> Val:
        """Node ``n`` on the joint grid of its operands: values, per-prefix box enclosures, derivatives, bounds.

        Runs with floating-point warnings off (:func:`opgraph.dcg.intervals.quiet`: one ``np.errstate`` per node
        instead of one per interval and affine operation; the values are the same).
        """
        with iv.quiet():
            return self._op_node(n, ops, rules)

    def _op_node(self, n: Node, ops: list[Val], rules: dict[str, Any]) -> Val:
        """:meth:`_op`'s work."""
        kset = set()
        for o in ops:
            kset.update(o.axes)
        K = tuple(sorted(kset, key=self._key))
        k = len(K)
        self._node = n.id
        fn = rules.get(n.op)
        if fn is None:
            raise DistError(f"no NumPy implementation for op {n.op!r} (add one to opgraph.graph.ops)")
        with iv.errstate(all="ignore"):
            pt = np.asarray(fn(n, *[self._expand(o.pt, o.axes, K) for o in ops]), dtype=float)
        if not np.isfinite(pt).all():
            raise DistError(
                "the op gives nan or inf on part of its inputs' support (for example log or sqrt of a "
                "negative value, or division by 0); change the function or the input laws so it is defined "
                "everywhere"
            )
        box: list[iv.Interval] = [(pt, pt)]
        der: dict[int, iv.Interval] = {}
        box0: iv.Interval | None = None
        if n.id in self._need_box0:
            at_atoms = [o.box0 if o.box0 is not None else (o.pt, o.pt) for o in ops]
            args0 = [
                (self._expand(a, o.axes, K), self._expand(b, o.axes, K))
                for o, (a, b) in zip(ops, at_atoms, strict=True)
            ]
            box0 = iv.rule(n.op, args0, n.attrs)[0]
        # Operands that share an axis (a variable used more than once): intersect each naive enclosure with the
        # mean-value form along the walk, M_j = M_{j-1} + der_s * (cell_s - atom_s) (M_0 encloses the exact value
        # at the atoms), which does not inflate with the dependency (sqrt(A**2 + B) - A stays away from 0).
        mean_value = box0 is not None and len(K) < sum(len(o.axes) for o in ops)
        prev = box0
        form = self._forms.get(n.id) if n.id >= 0 else None
        if form is not None and form.b not in self._kept:
            form = None
        jus = [0] * len(ops)  # per operand, how many of its axes are in the walk prefix K[:j]
        for j in range(1, k + 1):
            prefix = set(K[:j])
            s = K[j - 1]
            args = []
            for idx, o in enumerate(ops):
                if s in o.axes:
                    jus[idx] += 1
                lo, hi = o.box[jus[idx]]
                args.append((self._expand(lo, o.axes, K), self._expand(hi, o.axes, K)))
            vint, parts = iv.rule(n.op, args, n.attrs)
            acc: iv.Interval | None = None
            for o, p in zip(ops, parts, strict=True):
                if s not in o.der:
                    continue
                dl, dh = o.der[s]
                el = self._expand(dl, o.axes, K)
                term = iv.imul(p, (el, el if dl is dh else self._expand(dh, o.axes, K)))
                acc = term if acc is None else iv.iadd(acc, term)
            if acc is not None:
                der[s] = iv.widen(*acc)
            else:
                der[s] = (np.zeros(()), np.zeros(()))
            if form is not None:
                vint = self._form_enclosure(form, ops, K, prefix, s, vint, der)
            if mean_value:
                with iv.errstate(invalid="ignore", over="ignore"):
                    assert prev is not None
                    step = self._mv_step(s, K)
                    m = iv.widen(*iv.iadd(prev, iv.imul(der[s], step)))
                vint = (np.fmax(vint[0], m[0]), np.fmin(vint[1], m[1]))
                prev = vint
            box.append(vint)
        if k and n.id >= 0 and n.op not in enclose.JUMP_OPS:
            self._subdivide(n, ops, K, box, der)
        aff = self._affine(n, ops, K, box) if affine.ENABLED.get() else None
        # Global enclosure of the true values (hull of the full-box enclosures).
        if k:
            glo, ghi = self._glob(("range",), K, (float(np.min(box[k][0])), float(np.max(box[k][1]))))
            gint = (glo if not math.isnan(glo) else -math.inf, ghi if not math.isnan(ghi) else math.inf)
        else:
            gint = (float(pt), float(pt))
        if self.cell_only:
            inf_at = next((o.nb_inf_at for o in ops if o.nb_inf_at), "")
            if not inf_at and k and not all(np.all(np.isfinite(d)) for d in der[K[0]]):
                inf_at = n.where
            cv = Val(K, pt, box, der, gint, gint, {}, math.nan, {}, inf_at, box0=box0, aff=aff)
            cv.menv = self._menv_rule(n, ops)
            if k == 1 and K[0] in self._env_regions:
                cv.env = self._env_rule(n, ops, K[0])  # a bounded input with a singular end (log of a Uniform)
            return cv
        # Global scalar enclosures, both in one elementwise rule call (element 0: over the true supports, for
        # term 1 of composed inputs; element 1: over the computed enclosures, for the path bound).
        gargs2 = [(np.array([o.gint1[0], o.gint[0]]), np.array([o.gint1[1], o.gint[1]])) for o in ops]
        gv2, gp2 = iv.rule(n.op, gargs2, n.attrs)
        gint1 = (min(_at(gv2[0], 0), gint[0]), max(_at(gv2[1], 0), gint[1]))
        d1 = _tsum(*[(_mag(_at(p[0], 0), _at(p[1], 0)), o.d1) for o, p in zip(ops, gp2, strict=True) if o.d1])
        # Node-level bound on E|V - V'| (paper-style path sum, moment-weighted for independent operands).
        gp = [(np.asarray(_at(p[0], 1)), np.asarray(_at(p[1], 1))) for p in gp2]
        generic = _tsum(*[(_mag(_scalar(p[0]), _scalar(p[1])), o.nb) for o, p in zip(ops, gp, strict=True) if o.nb])
        nb = generic
        if n.op in ("mul", "div") and not (set(ops[0].axes) & set(ops[1].axes)):
            u, w = ops
            if n.op == "mul":
                moment = _tsum((w.eabs + _total(w.nb), u.nb), (u.eabs, w.nb))
            else:
                inv = 1.0 / min(abs(w.gint[0]), abs(w.gint[1])) if w.gint[0] * w.gint[1] > 0 else math.inf
                moment = _tsum((inv, u.nb), (u.eabs * inv * inv, w.nb)) if u.nb or w.nb else {}
            if _total(moment) < _total(generic):
                nb = moment
        nb = {key: (math.inf if math.isnan(v) else v) for key, v in nb.items()}
        inf_at = next((o.nb_inf_at for o in ops if o.nb_inf_at), "")
        if not inf_at and math.isinf(_total(nb)):
            inf_at = n.where
        eabs = self._eabs(pt, K)
        out = Val(K, pt, box, der, gint, gint1, nb, eabs, d1, inf_at, box0=box0, aff=aff)
        out.menv = self._menv_rule(n, ops)
        if k == 1 and K[0] in self._env_regions:
            out.env = self._env_rule(n, ops, K[0])
        if k == 1 and (self.axes[K[0]].moment is not None or out.env):
            consts = [float(o.pt) if not o.axes else None for o in ops]
            if self.axes[K[0]].moment is not None:
                out.growth = gr.rule(n.op, [o.growth for o in ops], consts)
            if (out.growth is not None or out.env) and math.isinf(_total(nb)):
                # A finite cellwise (moment-weighted) total also bounds E|V - V'|: use it for the path bound.
                cb, attr = self.cellwise(out, ("growth",))
                total = self._glob(("growth total",), K, float(np.sum(cb)))
                if math.isfinite(total):
                    out.nb = attr
                    out.nb_inf_at = ""
        if n.op == "mul" and len(ops) == 2 and ops[0].axes and ops[1].axes and not set(ops[0].axes) & set(ops[1].axes):
            out.factors = (ops[0], ops[1])
        if (
            n.op in ("add", "sub")
            and n.id in self._exp_args  # kept only where an exp reads the sum
            and len(ops) == 2
            and ops[0].axes
            and ops[1].axes
            and not set(ops[0].axes) & set(ops[1].axes)
        ):
            out.summands = (ops[0], ops[1], 1.0 if n.op == "add" else -1.0)
        self._w1_level(n, ops, out, gp)
        return out

    def _affine(self, n: Node, ops: list[Val], K: tuple[int, ...], box: list[iv.Interval]) -> Any:
        """Node ``n``'s affine form (:mod:`opgraph.dcg.affine`); intersects ``box``'s walk-prefix enclosures with it."""
        k = len(K)
        encs = [tuple(self._expand(x, o.axes, K) for x in o.box[len(o.axes)]) for o in ops]
        # A form whose axes are not its value's (a value whose axis was renamed after the fact, as the semi-discrete
        # certificate does with its regrouping) is not used: the node falls back to its interval enclosure.
        forms = [
            (o.aff if o.aff is not None and o.aff.axes == o.axes else None) if o.axes else affine.constant(float(o.pt))
            for o in ops
        ]
        f = affine.node_form(n.op, K, forms, encs, box[k], n.attrs)  # type: ignore[arg-type]
        if k:
            e0 = self._affine_e0(K)
            for j, (lo, hi) in enumerate(affine.prefix_enclosures(f, K, e0), start=1):
                box[j] = (np.fmax(box[j][0], lo), np.fmin(box[j][1], hi))
        # Live forms with error symbols, by node: the groups on one grid share their symbols' condensation.
        live = self._aff_live
        last = self.__dict__.get("_aff_last")
        if last is None:
            last = self.__dict__["_aff_last"] = self.graph.last_uses()
        if n.id >= 0 and affine.has_err(f):
            live[n.id] = f
        for vid in [v for v in live if last.get(v, math.inf) <= n.id]:
            del live[vid]
        groups: dict[tuple[int, ...], list[Any]] = {}
        for g in live.values():
            groups.setdefault(g.axes, []).append(g)
        fast = iv.FAST.get()
        for fs in groups.values():
            if len(fs) <= affine.MAX_GROUP:
                keep = max(2 * len(fs), affine.CONDENSE_AT)
                # condense() does nothing while the forms' symbols (their union) number at most ``keep``: where even
                # the sum of their counts does, skip the call (it would build that union at every node)
                if fast and sum(len(g.a) for g in fs) <= keep:
                    continue
                affine.condense(fs, keep=keep)
        return f

    def _affine_axis(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """Axis ``a``'s cell half-widths and its atoms' noise values ``(atom - m) / h`` (0 on unbounded cells).

        Computed once per axis object (memo keyed by the axis id, checked by identity: an axis replaced in
        ``self.axes`` is computed anew). The returned arrays are shared: callers must not change them in place.
        """
        ax = self.axes[a]
        memo = self.__dict__.setdefault("_aff_axis_memo", {})
        hit = memo.get(a)
        if hit is not None and hit[0] is ax and iv.FAST.get():
            return hit[1]
        m, h = affine.half_widths(np.minimum(ax.lo, ax.atoms), np.maximum(ax.hi, ax.atoms))
        with iv.errstate(invalid="ignore", divide="ignore"):
            e0 = np.where(np.isfinite(h) & (h > 0), (ax.atoms - m) / np.where(h > 0, h, 1.0), 0.0)
        memo[a] = (ax, (h, e0))
        return h, e0

    def _mv_step(self, s: int, K: tuple[int, ...]) -> iv.Interval:
        """Axis ``s``'s cells minus their atoms, widened and expanded to ``K``'s grid: the mean-value form's step.

        Memoised per ``(s, K)`` (checked by the axis' identity, as :meth:`_affine_axis`); shared, not to be changed.
        """
        ax = self.axes[s]
        memo = self.__dict__.setdefault("_mv_step_memo", {})
        hit = memo.get((s, K))
        if hit is not None and hit[0] is ax and iv.FAST.get():
            return hit[1]
        with iv.errstate(invalid="ignore", over="ignore"):
            step = iv.widen(self._expand(ax.lo - ax.atoms, [s], K), self._expand(ax.hi - ax.atoms, [s], K))
        memo[(s, K)] = (ax, step)
        return step

    def _affine_e0(self, K: tuple[int, ...]) -> dict[int, np.ndarray]:
        """Per axis of ``K``, the atoms' noise values expanded to ``K``'s grid (memo per ``K``, checked by identity)."""
        memo = self.__dict__.setdefault("_aff_e0_memo", {})
        axes = tuple(self.axes[a] for a in K)
        hit = memo.get(K)
        if hit is not None and iv.FAST.get() and all(x is y for x, y in zip(hit[0], axes, strict=True)):
            return hit[1]
        e0 = {a: self._expand(self._affine_axis(a)[1], [a], K) for a in K}
        memo[K] = (axes, e0)
        return e0

    def _affine_bound(self, v: Val, shape: tuple[int, ...], wbox: np.ndarray) -> np.ndarray:
        """Per-box ``E[|V - V'|; box]`` bound from ``v``'s affine form (:func:`opgraph.dcg.affine.box_bound`)."""
        h, e0, ratio = {}, {}, {}
        for a in v.axes:
            ax = self.axes[a]
            ha, ea = self._affine_axis(a)
            h[a], e0[a] = self._expand(ha, [a], v.axes), self._expand(ea, [a], v.axes)
            with iv.errstate(divide="ignore", invalid="ignore"):
                ratio[a] = self._expand(np.where(ax.weights > 0, ax.err / ax.weights, 0.0), [a], v.axes)
        return affine.box_bound(v.aff, v.axes, v.pt, h, e0, ratio, wbox, shape)

    def _subdivide(
        self, n: Node, ops: list[Val], K: tuple[int, ...], box: list[iv.Interval], der: dict[int, iv.Interval]
    ) -> None:
        """Where node ``n``'s enclosure is infinite, or near a pole, on a bounded box with finite operands, bisect it.

        Such a box has a singularity made by the enclosure (a denominator whose enclosure contains 0 because a
        value occurs twice, on a wide cell), or an operand of a pole (:data:`~opgraph.dcg.enclose.POLE_OPERAND`)
        whose enclosure comes closer to the pole than its own width, where the derivative enclosure is loose. Its subexpression is re-evaluated on ``2^(k L)`` sub-boxes
        (:func:`opgraph.dcg.enclose.subdivided_enclosure`, at most :data:`~opgraph.dcg.enclose.MAX_PIECES`), and
        the hull over them is intersected with the box's enclosures at every walk prefix (each prefix box lies in
        the full box, so the full box's enclosures hold for it) and with every step's derivative enclosure. Boxes
        that stay infinite keep ``inf``. ``box`` and ``der`` are updated in place.
        """
        k = len(K)
        levels = enclose.levels_for(k)
        if levels == 0 or any(a not in self._leaf_axis.values() for a in K):
            return
        lo, hi = box[k]
        pole = enclose.POLE_OPERAND.get(n.op)

        def finite_sum(arrays: Any) -> bool:
            # One reduction per array: a sum is finite only if every term is (it may overflow to inf for huge
            # finite values, which only sends the node down the exact path).
            # (np.add.reduce over all axes is what np.sum computes, without its dispatch: per node on small grids)
            with iv.errstate(all="ignore"):
                return math.isfinite(sum(float(_add_reduce(x, axis=None)) for x in arrays))

        if pole is None:
            if finite_sum((lo, hi, *(e for d in der.values() for e in d))):
                return  # nothing infinite here
            if not all(finite_sum((*o.box[len(o.axes)], *(e for d in o.der.values() for e in d))) for o in ops):
                return  # an operand is infinite somewhere: this node's infinities are (mostly) inherited
        shape = self._shape(K)
        bad = ~(np.isfinite(lo) & np.isfinite(hi))
        for s in K:
            bad = bad | ~(np.isfinite(der[s][0]) & np.isfinite(der[s][1]))
        closeness: np.ndarray | None = None  # distance to the pole / width (0 where infinite): the priority
        if pole is not None and pole < len(ops) and ops[pole].axes:
            o = ops[pole]
            plo, phi = o.box[len(o.axes)]
            bad = bad | self._expand(enclose.near_pole(plo, phi), o.axes, K).astype(bool)
            with iv.errstate(all="ignore"):
                dist = np.where((plo > 0) | (phi < 0), np.minimum(np.abs(plo), np.abs(phi)), 0.0)
                closeness = self._expand(np.where(phi > plo, dist / (phi - plo), 0.0), o.axes, K)
        bad = np.broadcast_to(bad, shape)
        if not bad.any():
            return
        for o in ops:
            if not o.axes:
                continue
            olo, ohi = o.box[len(o.axes)]
            fin = np.isfinite(olo) & np.isfinite(ohi)
            for d in o.der.values():
                fin = fin & np.isfinite(d[0]) & np.isfinite(d[1])
            bad = bad & self._expand(fin, o.axes, K).astype(bool)
        for a in K:
            ax = self.axes[a]
            bad = bad & self._expand(np.isfinite(ax.lo) & np.isfinite(ax.hi), [a], K).astype(bool)
        idx = np.nonzero(np.broadcast_to(bad, shape))
        if idx[0].size == 0:
            return
        # Work budget: at most max(4096, cells / 4) sub-boxes per node, boxes nearest the pole (and infinite ones)
        # first; the others keep their enclosures.
        pieces = 2 ** (k * levels)
        keep = max(1, max(4096, math.prod(shape) // 4) // pieces)
        if idx[0].size > keep:
            prio = np.broadcast_to(closeness, shape)[idx] if closeness is not None else np.zeros(idx[0].size)
            order = np.sort(np.argsort(prio, kind="stable")[:keep])
            idx = tuple(x[order] for x in idx)
        leaves = {i: a for i, a in self._leaf_axis.items() if a in K}
        size = len(enclose.ancestors_to(self.graph, n.id, leaves))
        if size > enclose.MAX_SUBEXPR or self._subdivision_work + size > enclose.MAX_SUBDIVISION_WORK:
            return  # too costly here (long unrolled loops): the box keeps its sound enclosure
        self._subdivision_work += size
        chunk = max(1, 2**20 // pieces)
        flat = np.ravel_multi_index(idx, shape)
        vlo = np.empty(flat.size)
        vhi = np.empty(flat.size)
        dsub = {s: (np.empty(flat.size), np.empty(flat.size)) for s in K}
        for c0 in range(0, flat.size, chunk):
            sl = slice(c0, c0 + chunk)
            cells = {a: (self.axes[a].lo[idx[r][sl]], self.axes[a].hi[idx[r][sl]]) for r, a in enumerate(K)}
            (v0, v1), d = enclose.subdivided_enclosure(self.graph, n.id, leaves, cells, levels)
            vlo[sl], vhi[sl] = v0, v1
            for s in K:
                dsub[s][0][sl], dsub[s][1][sl] = d[s]

        def meet(x: iv.Interval, new: iv.Interval) -> iv.Interval:
            a = np.array(np.broadcast_to(x[0], shape), dtype=float).reshape(-1)
            b = np.array(np.broadcast_to(x[1], shape), dtype=float).reshape(-1)
            a[flat] = np.fmax(a[flat], new[0])
            b[flat] = np.fmin(b[flat], new[1])
            return a.reshape(shape), b.reshape(shape)

        for j in range(1, k + 1):
            box[j] = meet(box[j], (vlo, vhi))
        for s in K:
            der[s] = meet(der[s], dsub[s])

    def _form_enclosure(
        self,
        form: enclose.SqrtDiff,
        ops: list[Val],
        K: tuple[int, ...],
        prefix: set[int],
        s: int,
        vint: iv.Interval,
        der: dict[int, iv.Interval],
    ) -> iv.Interval:
        """Intersect a node's enclosure at walk prefix ``prefix`` (value ``vint``, ``der[s]``) with its form's.

        ``form`` is a :class:`opgraph.dcg.enclose.SqrtDiff` at this node; the operand ``a`` is one of ``ops`` and
        ``b`` a kept value. Both enclosures are valid on the boxes, so their intersection is (``der[s]`` is
        updated in place; the value is returned).
        """
        a_val = ops[1] if form.sign > 0 else ops[0]
        b_val = self._kept[form.b]

        def at_prefix(o: Val) -> tuple[iv.Interval, dict[int, iv.Interval]]:
            ju = sum(1 for t in o.axes if t in prefix)
            lo, hi = o.box[ju]
            d = {}
            if s in o.der:
                dl, dh = o.der[s]
                d[s] = (self._expand(dl, o.axes, K), self._expand(dh, o.axes, K))
            return (self._expand(lo, o.axes, K), self._expand(hi, o.axes, K)), d

        (a_box, da), (b_box, db) = at_prefix(a_val), at_prefix(b_val)
        ok, fv, fd = enclose.sqrt_diff(a_box, b_box, da, db, [s])
        if not np.any(ok):
            return vint
        if form.sign < 0:
            fv = iv.ineg(fv)
            fd = {t: iv.ineg(d) for t, d in fd.items()}
        with iv.errstate(invalid="ignore"):
            dl, dh = der[s]
            der[s] = (np.where(ok, np.fmax(dl, fd[s][0]), dl), np.where(ok, np.fmin(dh, fd[s][1]), dh))
            return np.where(ok, np.fmax(vint[0], fv[0]), vint[0]), np.where(ok, np.fmin(vint[1], fv[1]), vint[1])

    def _menv_rule(self, n: Node, ops: list[Val]) -> Any:
        """The product-form envelope (:mod:`opgraph.dcg.multienv`) of a node from its operands' (or None)."""
        args = [multienv.constant(float(o.pt)) if not o.axes else o.menv for o in ops]
        if any(a is None for a in args):
            return None
        consts = [float(o.pt) if not o.axes else None for o in ops]
        return multienv.rule(n.op, args, consts, [o.gint1[0] >= 0 for o in ops], self._menv_typ)

    def _menv_factor(self, axis: int, kind: str, a: float) -> np.ndarray:
        """Per-cell ``E[g(X); cell]`` of an input axis (closed-form partial moments on its tail cells)."""
        cache = self.__dict__.setdefault("_mfac", {})
        ax = self.axes[axis]
        key = (axis, id(ax), kind, a)
        if key not in cache:
            if a == 0:
                f = np.asarray(ax.weights, dtype=float)
            else:
                f = multienv.factor_moment(kind, a, ax.lo, ax.hi, ax.weights)
                law = self._menv_laws.get(axis)
                if isinstance(law, envelope.Normal | envelope.LogNormal | envelope.Gamma | Uniform):
                    sup, env = law.support(), envelope.Env(((1.0, kind, a),))
                    for c in range(ax.size):  # the input's end cells: closed-form partial moments
                        low, up = ax.lo[c] <= sup[0], ax.hi[c] >= sup[1]
                        if ax.weights[c] == 0 or low == up:
                            continue  # an inner cell (or one cell covering the support: stays as bounded above)
                        t = float(ax.hi[c] if low else ax.lo[c])
                        lo_x, hi_x = (max(ax.lo[c], sup[0]), t) if low else (t, min(ax.hi[c], sup[1]))
                        reg = envelope.Region(law, "lower" if low else "upper", t, float(lo_x), float(hi_x))
                        try:
                            f[c] = envelope.moment(env, reg)
                        except DistError:
                            f[c] = math.inf
                if law is not None and cellmoments.exact_kind(law, kind, a):  # inner cells: exact, not sup * P
                    f = np.where(ax.weights > 0, np.fmin(f, cellmoments.inner_moments(law, kind, a, ax.lo, ax.hi)), f)
            cache[key] = f
        return cache[key]

    def _menv_bound(self, v: Val, shape: tuple[int, ...], wbox: np.ndarray) -> np.ndarray:
        """Per-box ``E[|V - V'|; box]`` from ``v.menv`` (``inf`` where a factor has no finite moment)."""
        m = multienv.grid_moment(v.menv, v.axes, self._menv_factor)
        for alt in v.menv.alts:  # other envelopes of the same node: each box takes the smallest moment
            m = np.fmin(m, multienv.grid_moment(alt, v.axes, self._menv_factor))
        lo, hi = v.box[len(v.axes)]
        b = (np.broadcast_to(x, shape) for x in (v.pt, wbox, lo, hi))
        return multienv.box_bound(np.broadcast_to(m, shape), *b)

    def _env_rule(self, n: Node, ops: list[Val], axis: int) -> dict[int, Any] | None:
        """Tail envelopes of a one-input node from its operands' (constants included), per tail cell."""
        consts = [float(o.pt) if not o.axes else None for o in ops]
        out = {}
        for c, reg in self._env_regions[axis].items():
            args = [envelope.constant(float(o.pt)) if not o.axes else (o.env or {}).get(c) for o in ops]
            e = envelope.rule(n.op, args, consts, reg)
            if e is not None:
                out[c] = e
        return out or None

    # -- law-level (W1) composition and the second-order bound for sums -----------------------------------------
    def _w1_level(self, n: Node, ops: list[Val], out: Val, gp: list[iv.Interval]) -> None:
        """Set ``out.wb`` (a bound on W1 of the node's law) and ``out.tv`` (TV of its true density).

        For operands on pairwise disjoint axes (independent, both exactly and as computed), W1 composes at the
        level of laws: conditioning on the other operands, ``W1(f(A, B), f(A', B')) <= E_B[Lip_a] W1(A, A') +
        E_A'[Lip_b] W1(B, B')`` (global Lipschitz constants, or the moment weights for products / quotients).
        For a sum ``A + B`` where the true ``B`` has a density of total variation ``TV_B``, replacing ``A`` by
        its computed value while ``B`` stays exact costs only a second-order term (Taylor expansion of
        ``F_B(t - a)`` around each box's computed value ``a'``)::

            W1(A + B, A' + B) <= sum_boxes min( E[|A - A'|; box],
                                                |E[A - A'; box]| + TV_B / 2 * E[(A - A')^2; box] )

        and then ``W1(A' + B, A' + B') <= W1(B, B')``. With atoms at conditional means the first-order part
        ``|E[A - A'; box]|`` is itself of second order (see :meth:`second_moments`).
        """
        out.tv = math.inf
        if any(o.wb is None for o in ops):
            out.wb = None
            return
        disjoint = True
        seen: set[int] = set()
        for o in ops:
            if seen & set(o.axes):
                disjoint = False
            seen |= set(o.axes)
        cands: list[Terms] = [out.nb]
        if disjoint:
            cands.append(
                _tsum(*[(_mag(_scalar(p[0]), _scalar(p[1])), o.wb) for o, p in zip(ops, gp, strict=True) if o.wb])
            )
            if n.op in ("mul", "div") and len(ops) == 2:
                u, w = ops
                if n.op == "mul":
                    cands.append(_tsum((w.eabs + _total(w.wb), u.wb), (u.eabs, w.wb)))
                elif w.gint[0] * w.gint[1] > 0:
                    inv = 1.0 / min(abs(w.gint[0]), abs(w.gint[1]))
                    cands.append(_tsum((inv, u.wb), (u.eabs * inv * inv, w.wb)))
            consts = [o for o in ops if not o.axes]
            rvs = [o for o in ops if o.axes]
            if n.op in ("add", "sub") and len(ops) == 2:
                if len(rvs) == 2:
                    out.tv = min(rvs[0].tv, rvs[1].tv)
                    for side, (a_val, b_val) in enumerate(((rvs[0], rvs[1]), (rvs[1], rvs[0]))):
                        if self.smoothing and math.isfinite(b_val.tv) and b_val.tv > 0:
                            t = self._smoothed_term(a_val, b_val.tv, ("smoothed", side))
                            if t is not None:
                                cands.append(_tsum((1.0, t), (1.0, b_val.wb)))  # type: ignore[arg-type]
                elif len(rvs) == 1:
                    out.tv = rvs[0].tv
            elif n.op in ("mul", "div") and len(rvs) == 2 and self.smoothing:
                cands.extend(self._product_candidates(n.op, ops[0], ops[1]))
            elif n.op == "neg" or (n.op in ("identity", "copy", "contiguous", "convert") and len(ops) == 1):
                out.tv = ops[0].tv
            elif n.op in ("mul", "div") and len(rvs) == 1 and len(consts) == 1:
                c = abs(float(consts[0].pt))
                if n.op == "mul" and c > 0:
                    out.tv = rvs[0].tv / c * (1 + 1e-12)
                elif n.op == "div" and ops[1] is consts[0] and c > 0:
                    out.tv = rvs[0].tv * c * (1 + 1e-12)
        if disjoint and math.isinf(_total(min(cands, key=_total))):
            cands.extend(self._rewrite_candidates(n, ops))
        best = min(cands, key=_total)
        out.wb = {key: (math.inf if math.isnan(v) else v) for key, v in best.items()}

    def _rewrite_candidates(self, n: Node, ops: list[Val]) -> list[Terms]:
        """Law-level bounds through an exact rewrite where the direct forms give none.

        ``u / w = u * (1 / w)`` (independent operands): ``W1 <= (E|1/W'| + W1_r) W1(U, U') + E|U'| W1_r`` with
        ``W1_r`` the bound of the node ``1 / w`` evaluated on ``w``'s grid (finite through the tail envelopes where
        ``E|1/W| < inf``). ``log(u * w) = log u + log w`` for independent ``u, w >= 0``: the two bounds add.
        """
        rules = getattr(self, "_rules", None)
        out: list[Terms] = []
        if rules is None or self.cell_only:
            return out
        if n.op == "div" and len(ops) == 2 and ops[1].axes and ops[0].wb is not None:
            u, w = ops
            try:
                r = self._op(Node(-1, "reciprocal", meta=dict(n.meta)), [w], rules)
            except DistError:
                return out
            if r.wb is not None and math.isfinite(_total(r.wb)):
                out.append(_tsum((r.eabs + _total(r.wb), u.wb), (u.eabs, r.wb)))
        elif n.op in ("exp", "exp2") and len(ops) == 1 and ops[0].summands is not None:
            out.extend(self._exp_of_sum(n, ops[0], rules))
        elif n.op in ("log", "log2", "log10") and len(ops) == 1 and ops[0].factors is not None:
            u, w = ops[0].factors
            if min(u.gint[0], u.gint1[0]) >= 0 and min(w.gint[0], w.gint1[0]) >= 0:
                try:
                    lu = self._op(Node(-1, n.op, meta=dict(n.meta)), [u], rules)
                    lw = self._op(Node(-1, n.op, meta=dict(n.meta)), [w], rules)
                except DistError:
                    return out
                if lu.wb is not None and lw.wb is not None:
                    out.append(_tsum((1.0, lu.wb), (1.0, lw.wb)))
        return out

    def _exp_of_sum(self, n: Node, v: Val, rules: dict[str, Any]) -> list[Terms]:
        """``exp(u +- w) = exp(u) * exp(+-w)`` for independent ``u, w``: the product rule on the two exponentials.

        ``W1(E_u E_w, E_u' E_w') <= (E|E_w'| + W1_w) W1_u + E|E_u'| W1_w``, with ``E_u = exp(u)`` evaluated on
        ``u``'s grid alone (finite through its tail envelopes where ``E e^U < inf``; a sum operand recurses, also
        through a compression, see :meth:`_exp_operand`). The grid computes ``exp(u' + w')``, which differs from
        ``exp(u') exp(w')`` by rounding only: a relative ``1e-12`` of ``E|Y'|`` is added for it.
        """
        node_now = self._node
        try:
            t = self._exp_sum_terms(n, v.summands, rules, 4 * max(n.id, 0) + 2)  # type: ignore[arg-type]
        except DistError:
            return []
        finally:
            self._node = node_now
        return [] if t is None else [t]

    def _exp_sum_terms(
        self, n: Node, summands: tuple[Val, Val, float], rules: dict[str, Any], base: int
    ) -> Terms | None:
        u, w, sign = summands
        if sign < 0:
            w = self._op(Node(-base - 2, "neg", meta=dict(n.meta)), [w], rules)
        eu = self._exp_operand(n, u, rules, -base)
        ew = self._exp_operand(n, w, rules, -base - 1)
        if eu is None or ew is None:
            return None
        (ua, uwb), (wa, wwb) = eu, ew
        rounding = {f"rounding at {n.where}": 1e-12 * (ua + _total(uwb)) * (wa + _total(wwb))}
        return _tsum((wa + _total(wwb), uwb), (ua, wwb), (1.0, rounding))

    def _exp_operand(self, n: Node, x: Val, rules: dict[str, Any], nid: int) -> tuple[float, Terms] | None:
        """``(E|exp(X')|, a bound on W1(exp(X), exp(X')))`` for one operand of a sum under ``exp`` (None: none).

        Evaluated on ``x``'s grid; where that bound is not finite and ``x`` is a compressed sum (``x.pre_sum``):
        ``W1(e^X, e^X') <= W1(e^{U+W}, e^{U'+W'}) + sum_pieces mass |e^{v} - e^{v'}|``, the product rule on the
        sum before the compression plus the cost of the regrouping's own coupling under ``exp``.
        """
        e = self._op(Node(nid, n.op, meta=dict(n.meta)), [x], rules)
        if e.wb is not None and math.isfinite(_total(e.wb)):
            return e.eabs, e.wb
        if x.pre_sum is None:
            return None
        summands, pt, rg, label = x.pre_sum
        inner = self._exp_sum_terms(n, summands, rules, 4 * (abs(nid) + 1) + 2)
        if inner is None:
            return None
        k = math.log(2.0) if n.op == "exp2" else 1.0
        with iv.errstate(over="ignore", invalid="ignore"):
            d = np.abs(np.exp(k * pt[rg.piece_elem]) - np.exp(k * rg.atoms[rg.piece_group]))
            moved = float(rg.piece_mass @ d)
            moved = moved * (1 + 1e-12) + 8 * _EPS * float(rg.piece_mass @ np.exp(k * pt[rg.piece_elem]))
        if not math.isfinite(moved):
            return None
        return e.eabs, _tsum((1.0, inner), (1.0, {f"{label} (under {n.op})": moved}))

    def _product_candidates(self, op: str, u: Val, w: Val) -> list[Terms]:
        """Second-order bounds for ``A * B`` and ``A / B`` where ``B`` is an exact input with a known law.

        Conditioning on ``A``: ``G_t(a) = P(a C <= t)`` with ``C = B`` (product) or ``C = 1/B`` (quotient).
        ``int |dG_t/da| dt = E|C|`` and ``int |d^2 G_t / da^2| dt = TV(s^2 p_C(s)) / |a|``, so a Taylor expansion
        around each box's computed value ``a'`` gives per box ``min(E|C| E[|A - A'|], E|C| |E[A - A']| +
        TV(s^2 p_C) / (2 min|a|) E[(A - A')^2])`` with ``min|a|`` over the box's value enclosure (first order
        where it contains 0). ``TV(s^2 p_{1/B}) = TV(p_B)`` (the same function of ``1/s``). Then
        ``W1(A' C, A' C') <= E|A'| W1(C, C')``.
        """
        out: list[Terms] = []
        pairs = [(u, w), (w, u)] if op == "mul" else [(u, w)]
        for side, (a_val, b_val) in enumerate(pairs):
            law = b_val.law
            if law is None or b_val.wb is None:
                continue
            if op == "mul":
                t2, k1, lip = law.scaled_tv(), law.mean_abs(), 1.0
            else:
                lo, hi = b_val.gint
                if not lo * hi > 0:
                    continue
                t2, k1 = law.density_tv(), law.inv_mean_abs()
                lip = 1.0 / min(abs(lo), abs(hi)) ** 2
            if not (math.isfinite(t2) and math.isfinite(k1)):
                continue
            t = self._scaled_term(a_val, t2, k1, ("scaled", side))
            if t is not None:
                out.append(_tsum((1.0, t), (a_val.eabs * lip, b_val.wb)))
        return out

    def _scaled_term(
        self, a_val: Val, t2: float, k1: float, site: Any = None, cap: float | None = None
    ) -> Terms | None:
        """Bound on ``W1(A C, A' C)`` for an exact independent ``C`` (see :meth:`_product_candidates`).

        ``cap`` (optional) bounds ``k1 E|A - A'|`` under the grid coupling as a whole; the boxes that take their
        first-order term then share it (see :func:`_capped`).
        """
        if not a_val.axes:
            return None
        k = len(a_val.axes)
        cw, attr = self.cellwise(a_val, site)
        bias, m2 = self.second_moments(a_val)
        lo, hi = a_val.box[k]
        shape = bias.shape
        lo, hi = np.broadcast_to(lo, shape), np.broadcast_to(hi, shape)
        with iv.errstate(invalid="ignore", over="ignore", divide="ignore"):
            mn = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
            second = k1 * bias + 0.5 * t2 * np.where(mn > 0, m2 / np.where(mn > 0, mn, 1.0), np.inf)
            first = k1 * np.broadcast_to(cw, shape)
        second = np.where(np.isnan(second), np.inf, second)
        first = np.where(np.isnan(first), np.inf, first)
        return _attributed(_capped(first, second, cap), cw, attr, self._sums(site, a_val.axes))

    def _smoothed_term(self, a_val: Val, tv_b: float, site: Any = None, cap: float | None = None) -> Terms | None:
        """Bound on ``W1(A + B, A' + B)`` for an exact independent ``B`` with density TV ``tv_b`` (see above).

        ``cap``: as for :meth:`_scaled_term` (a bound on ``E|A - A'|`` under the grid coupling).
        """
        if not a_val.axes:
            return None
        cw, attr = self.cellwise(a_val, site)
        bias, m2 = self.second_moments(a_val)
        with iv.errstate(invalid="ignore", over="ignore"):
            second = bias + 0.5 * tv_b * m2
        second = np.where(np.isnan(second), np.inf, second)
        return _attributed(
            _capped(np.broadcast_to(cw, second.shape), second, cap), cw, attr, self._sums(site, a_val.axes)
        )

    def _sums(self, site: Any, axes: Sequence[int]) -> Any:
        """The ``glob`` argument of :func:`_attributed` for a call at ``site`` (None when not chunked)."""
        if self.reducer is None or site is None:
            return None
        return lambda sums: self._glob((*site, "sums"), axes, sums)

    def second_moments(self, v: Val) -> tuple[np.ndarray, np.ndarray]:
        """Per-box upper bounds on ``|E[V - V'; box]|`` and ``E[(V - V')^2; box]`` (full grid shape).

        Walking from the atoms to the true values one coordinate at a time (as in :meth:`cellwise`), step ``j``
        is ``g_j (X_j - x'_j)`` with ``g_j`` in the derivative enclosure ``[d_lo, d_hi]`` of that step. Writing
        ``g_j = c_j + (g_j - c_j)`` with the midpoint ``c_j`` and radius ``r_j``, and using that ``X_j`` is
        independent of the other coordinates on a box, ``|E[step_j; box]| <= (r_j E|X_j - x'_j| + |c_j|
        |E[X_j - x'_j]|) P(other cells)``; ``E[(sum_j L_j |X_j - x'_j|)^2; box]`` expands into the per-cell second
        moments and products of first moments. The square of the value enclosure's width is a second bound.
        """
        k = len(v.axes)
        if k == 0:
            return np.zeros(()), np.zeros(())
        shape = self._shape(v.axes)
        wbox = self._wbox(v.axes)
        bsum: Any = 0.0
        s1: Any = 0.0
        s2: Any = 0.0
        s3: Any = 0.0
        with iv.errstate(invalid="ignore", divide="ignore", over="ignore"):
            for a in v.axes:
                ax = self.axes[a]
                inv = np.where(ax.weights > 0, 1.0 / np.where(ax.weights > 0, ax.weights, 1.0), 0.0)
                r1 = self._expand(ax.err * inv, [a], v.axes)
                rb = self._expand(ax.bias * inv, [a], v.axes)  # type: ignore[operator]
                r2 = self._expand(ax.m2 * inv, [a], v.axes)  # type: ignore[operator]
                dl, dh = v.der[a]
                lmag = iv.mag((dl, dh))
                rad = np.where(np.isnan(dh - dl), np.inf, 0.5 * (dh - dl))
                mid = np.abs(0.5 * (dh + dl))
                mid = np.where(np.isnan(mid), np.inf, mid)
                zero = r1 == 0
                bsum = bsum + np.where(zero, 0.0, rad * r1 + np.where(rb == 0, 0.0, mid * rb))
                t1 = np.where(zero, 0.0, lmag * r1)
                s1 = s1 + t1
                s2 = s2 + t1 * t1
                s3 = s3 + np.where(zero, 0.0, lmag * lmag * r2)
            cross = np.maximum(s1 * s1 - s2, 0.0) + 8 * _EPS * s1 * s1
            m2 = np.where(wbox == 0, 0.0, wbox * (cross + s3))
            lo, hi = v.box[k]
            osc = np.broadcast_to(hi, shape) - np.broadcast_to(lo, shape)
            m2 = np.minimum(m2, np.where(wbox == 0, 0.0, wbox * osc * osc))
            bias = np.where(wbox == 0, 0.0, wbox * bsum)
        m2 = np.where(np.isnan(m2), np.inf, m2) * (1 + 1e-12)
        bias = np.where(np.isnan(bias), np.inf, bias) * (1 + 1e-12)
        return np.broadcast_to(bias, shape), np.broadcast_to(m2, shape)

    def _wbox(self, axes: Sequence[int]) -> np.ndarray:
        """Joint box masses on the grid of ``axes`` (memoised per axes tuple; do not modify the result)."""
        key = tuple(axes)
        w = self._wbox_memo.get(key)
        if w is None:
            if len(key) == 1:
                w = self.axes[key[0]].weights
            else:
                w = np.ones(self._shape(axes))
                for a in axes:
                    w = w * self._expand(self.axes[a].weights, [a], axes)
            self._wbox_memo[key] = w
        return w

    def _eabs(self, pt: np.ndarray, axes: Sequence[int]) -> float:
        if not axes:
            return float(abs(pt))
        if len(axes) == 1 and np.ndim(pt) == 1:
            e = float(np.abs(pt) @ self.axes[axes[0]].weights)
        else:
            w = self._wbox(axes)
            if iv.FAST.get() and np.shape(w) == self._shape(axes):
                # The product already has the grid's shape (w is the full grid's masses): the same elements summed
                # in the same order as with pt broadcast first, by the reduction np.sum calls.
                e = float(_add_reduce(np.abs(pt) * w, axis=None))
            else:
                e = float(np.sum(np.abs(np.broadcast_to(pt, self._shape(axes))) * w))
        return self._glob(("eabs",), axes, e)  # over the whole grid in a chunked evaluation

    def _compressed_moments(
        self, v: Val, shape: tuple[int, ...], box_bound: np.ndarray, pt: np.ndarray, share: np.ndarray, rg: Any, m: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-group ``|E[V - V'; group]|`` and ``E[(V - V')^2; group]`` bounds of a compressed node.

        ``V -> V_grid`` goes through the upstream boxes (a box's mass is split between groups by share,
        independently of the true value in the box); ``V_grid -> V'`` is the regrouping (atoms at group means,
        so its shift is 0 up to rounding). The second moments combine by Minkowski's inequality.
        """
        bias_box, m2_box = self.second_moments(v)
        bias_box = np.minimum(bias_box, np.broadcast_to(box_bound, shape)).reshape(-1)
        m2_box = m2_box.reshape(-1)
        dv = pt[rg.piece_elem] - rg.atoms[rg.piece_group]
        with iv.errstate(invalid="ignore", over="ignore"):
            bias_up = np.bincount(rg.piece_group, weights=share * bias_box[rg.piece_elem], minlength=m)
            shift = np.bincount(rg.piece_group, weights=rg.piece_mass * dv, minlength=m)
            slack = np.bincount(rg.piece_group, weights=rg.piece_mass * np.abs(pt[rg.piece_elem]), minlength=m)
            bias_g = bias_up + np.abs(shift) + 64 * _EPS * slack
            m2_up = np.bincount(rg.piece_group, weights=share * m2_box[rg.piece_elem], minlength=m)
            m2_rg = np.bincount(rg.piece_group, weights=rg.piece_mass * dv * dv, minlength=m)
            # E[(V - a_g)^2; piece] = share * (E[(V - v_e)^2; box] + 2 (v_e - a_g) E[V - v_e; box]) + mass (v_e - a_g)^2
            # (the split is independent of V within the box): the cross term needs only the box's bias bound.
            cross = np.bincount(rg.piece_group, weights=share * bias_box[rg.piece_elem] * np.abs(dv), minlength=m)
            m2_g = np.minimum((np.sqrt(m2_up) + np.sqrt(m2_rg)) ** 2, m2_up + m2_rg + 2 * cross) * (1 + 1e-12) + 1e-300
        return np.where(np.isnan(bias_g), np.inf, bias_g), np.where(np.isnan(m2_g), np.inf, m2_g)

    def _shared_operands(self) -> set[int]:
        """Op nodes whose operands share an input, with all their op ancestors.

        At the first kind the mean-value form of :meth:`_op` may tighten the naive enclosure; it starts from
        ``box0``, the enclosure of the exact value at the atoms, which the ancestors then carry too.
        """
        srcs = self.graph.source_inputs()
        need: set[int] = set()
        for n in reversed(self.nodes):
            if n.op in ("input", "const"):
                continue
            seen: set[int] = set()
            shared = n.id in need
            for j in n.inputs:
                shared = shared or bool(seen & srcs[j])
                seen |= srcs[j]
            if shared:
                need.add(n.id)
                need.update(j for j in n.inputs if self.nodes[j].op not in ("input", "const"))
        return need

    def _smoothing_possible(self) -> bool:
        """True when some sum of independent operands has an operand whose density TV may be finite.

        A static over-approximation of where :meth:`_smoothed_term` can apply; when it is False the per-group
        second moments of compressed nodes are not needed and are skipped.
        """
        srcs = self.graph.source_inputs()
        tv: list[bool] = []
        affine = ("neg", "identity", "copy", "contiguous", "convert")
        for n in self.nodes:
            if n.op == "input":
                d = self.dists.get(n.attrs["name"])
                q = self.quantized[n.attrs["name"]]
                tv.append(
                    d is not None
                    and q.method in ("quantile", "meansplit", "geometric")
                    and math.isfinite(d.density_tv())
                )
                continue
            ins = [j for j in n.inputs if srcs[j]]
            if (
                n.op in ("mul", "div")
                and len(ins) == 2
                and not (srcs[ins[0]] & srcs[ins[1]])
                and any(self.nodes[j].op == "input" and tv[j] for j in ins)
            ):
                return True
            if n.op in ("add", "sub", "mul", "div") and len(ins) == 1:
                tv.append(tv[ins[0]] and (n.op != "div" or n.inputs[0] == ins[0]))
            elif n.op in ("add", "sub") and len(ins) == 2 and not (srcs[ins[0]] & srcs[ins[1]]):
                if tv[ins[0]] or tv[ins[1]]:
                    return True
                tv.append(False)
            else:
                tv.append(n.op in affine and len(ins) == 1 and tv[ins[0]])
        return False

    def _one_axis(self, v: Val) -> tuple[OneAxis, Terms]:
        """A one-axis value as atoms, masses, cell enclosures and per-cell error bounds, and its attribution."""
        ax = self.axes[v.axes[0]]
        bound, attr = self.cellwise(v)
        shape = (ax.size,)
        lo, hi = v.box[1]
        one = OneAxis(
            np.broadcast_to(v.pt, shape).astype(float),
            ax.weights,
            np.broadcast_to(lo, shape).astype(float),
            np.broadcast_to(hi, shape).astype(float),
            np.broadcast_to(bound, shape).astype(float),
        )
        return one, attr

    def _extreme(self, i: int, n: Node, ops: list[Val]) -> Val:
        """Node ``i`` = max / min of two independent one-axis values, as a new axis (see :mod:`.extremes`)."""
        t0 = time.perf_counter()
        (a, attr_a), (b, attr_b) = self._one_axis(ops[0]), self._one_axis(ops[1])
        law = extreme_law(a, b, n.op)
        e_total = float(law.err.sum())
        comps = _tsum(
            (law.err_a / max(_total(attr_a), 1e-300), attr_a), (law.err_b / max(_total(attr_b), 1e-300), attr_b)
        )
        scale = 1.0 / max(_total(comps), 1e-300)
        components = {key: val * scale for key, val in comps.items()} if e_total > 0 else {}
        label = f"{n.op} at {n.where}"
        ax = Axis(i + 2 * 10**9, law.atoms, law.weights, law.lo, law.hi, law.err, label, components)
        self.axes[ax.id] = ax
        self._leaf_axis[i] = ax.id
        pick = max if n.op == "maximum" else min
        u, w = ops
        g1 = (pick(u.gint1[0], w.gint1[0]), pick(u.gint1[1], w.gint1[1]))
        g1 = (min(g1[0], float(law.lo.min())), max(g1[1], float(law.hi.max())))
        # |op(A, B) - op(A', B')| <= |A - A'| + |B - B'|: the path bound adds; so does W1 for independent operands.
        nb = _tsum((1.0, u.nb), (1.0, w.nb))
        if not _total(nb) <= e_total:
            nb = {key: v * e_total for key, v in components.items()}
        out = self._axis_val(ax, g1, nb, _tsum((1.0, u.d1), (1.0, w.d1)))
        out.nb_inf_at = u.nb_inf_at or w.nb_inf_at
        if u.wb is not None and w.wb is not None:
            wb = _tsum((1.0, u.wb), (1.0, w.wb))
            out.wb = wb if _total(wb) < e_total else dict(nb)
        self.extremes.append(
            {
                "node": n.where,
                "atoms": int(law.atoms.size),
                "grid_avoided": int(a.atoms.size * b.atoms.size),
                "seconds": time.perf_counter() - t0,
            }
        )
        return out

    def _compress(self, i: int, v: Val) -> Val:
        """Replace node ``i`` by a new axis: a monotone regrouping of its joint law (exact cost added)."""
        t0 = time.perf_counter()
        shape = self._shape(v.axes)
        box_bound, attr = self.cellwise(v)
        c_total = float(np.sum(box_bound))
        n_total = _total(v.nb)
        up_total = min(c_total, n_total)
        up_terms = attr if c_total <= n_total else v.nb
        pt = np.broadcast_to(v.pt, shape).reshape(-1)
        w = self._wbox(v.axes).reshape(-1)
        rg = regroup(pt, w, self.compress_atoms)
        m = rg.atoms.size
        elem_e = np.broadcast_to(box_bound, shape).reshape(-1)
        share = rg.piece_mass / np.maximum(w[rg.piece_elem], 1e-300)
        up_g = np.bincount(rg.piece_group, weights=share * elem_e[rg.piece_elem], minlength=m)
        up_g = np.minimum(up_g, up_total)
        cost = rg.cost * (1 + 1e-12) + 1e-300
        err = up_g + cost
        blo, bhi = (np.broadcast_to(x, shape).reshape(-1) for x in _cell_enclosure(self, v))
        lo = np.full(m, np.inf)
        hi = np.full(m, -np.inf)
        np.minimum.at(lo, rg.piece_group, blo[rg.piece_elem])
        np.maximum.at(hi, rg.piece_group, bhi[rg.piece_elem])
        lo = np.where(np.isnan(lo), -np.inf, np.minimum(lo, rg.atoms))
        hi = np.where(np.isnan(hi), np.inf, np.maximum(hi, rg.atoms))
        # Second-order bookkeeping of the new axis: |E[V - V'; group]| and E[(V - V')^2; group] through the
        # upstream boxes (split by mass share, independently of the true value in the box) and the regrouping.
        bias_g: np.ndarray | None = None
        m2_g: np.ndarray | None = None
        if self.smoothing:
            bias_g, m2_g = self._compressed_moments(v, shape, box_bound, pt, share, rg, m)
        n = self.nodes[i]
        label = f"compression at {n.where} to {m} atoms"
        e_total = float(err.sum())
        comp_w1 = float(cost.sum())
        comps = _tsum((1.0, up_terms), (1.0, {label: comp_w1}))
        scale = e_total / max(_total(comps), 1e-300)
        components = {key: val * scale / max(e_total, 1e-300) for key, val in comps.items()} if e_total > 0 else {}
        ax = Axis(i + 10**9, rg.atoms, rg.weights, lo, hi, err, label, components, None, bias_g, m2_g)
        self.axes[ax.id] = ax
        self._leaf_axis[i] = ax.id
        nb_terms = _tsum((1.0, up_terms), (1.0, {label: comp_w1}))
        if _total(nb_terms) > e_total:
            nb_terms = {key: val * e_total / _total(nb_terms) for key, val in nb_terms.items()}
        g1 = (min(v.gint1[0], float(lo.min())), max(v.gint1[1], float(hi.max())))
        out = self._axis_val(ax, g1, nb_terms, v.d1)
        out.nb_inf_at = v.nb_inf_at
        out.tv = v.tv
        if v.summands is not None and self.reducer is None:
            out.pre_sum = (v.summands, pt, rg, label)
        if v.wb is not None:
            # W1(V, V') <= W1(V, V_grid) + W1(V_grid, V') = (the upstream W1 bound) + (exact regrouping cost).
            wb_up = v.wb if _total(v.wb) < up_total else up_terms
            out.wb = _tsum((1.0, wb_up), (1.0, {label: comp_w1}))
        self.compressions.append(
            {
                "node": n.where,
                "joint_atoms": int(pt.size),
                "atoms": int(m),
                "w1_cost": comp_w1,
                "seconds": time.perf_counter() - t0,
            }
        )
        log.debug("compressed %s: %d -> %d atoms, W1 cost %.3g", n.where, pt.size, m, comp_w1)
        return out


@dataclass
class Evaluation:
    """What :func:`evaluate_graph_output` returns (turned into a result by :mod:`opgraph.dcg.api`)."""

    atoms: np.ndarray
    weights: np.ndarray
    w1_bound: float
    bound_terms: Terms
    certified: bool
    support: tuple[float, float]
    info: dict[str, Any] = field(default_factory=dict)
    w1_estimate: float | None = None
    # The output's grid cells (:class:`opgraph.dcg.band.GridCells`) for its certified CDF band, None if none.
    cells: Any = None
    # The sub-cell pass not yet run (under DEFER_SUBCELLS only; never pickled: callers run or drop it first).
    resume: DeferredPass | None = field(default=None, repr=False, compare=False)


@dataclass
class DeferredPass:
    """A sub-cell pass handed back by :func:`evaluate_output` under :data:`DEFER_SUBCELLS` (run it, or drop it).

    ``run(ceiling)`` runs the pass with ``ceiling`` (a bound the caller already holds for the same law: the pass
    stops where it cannot get below it) and returns the finished evaluation (the answer before the pass where the
    pass does not gain). ``predict(factor)`` is the bound the evaluation would have if the pass divided its cellwise
    bound by ``factor`` (the first-order and law-level parts it cannot change kept): the callers' test of whether
    running the pass could pay at all.
    """

    run: Any
    predict: Any
    # ``probe()``: the bound this evaluation's own probe extrapolates for its pass (the probe's sub-cells evaluated
    # once and kept, so a later ``run`` does not evaluate them again), or None where the pass has no probe.
    probe: Any = None

    def __call__(self, ceiling: float = math.inf) -> Evaluation:
        """The pass run under ``ceiling`` (output units); the finished evaluation."""
        return self.run(ceiling)


def run_deferred(e: Evaluation, ceiling: float = math.inf) -> Evaluation:
    """``e`` with its deferred sub-cell pass run (``e`` itself where none is pending); clears ``e.resume``."""
    r, e.resume = e.resume, None
    return e if r is None else r(ceiling)


def _reuses_inputs(nodes: Sequence[Node]) -> bool:
    """True when some node's value is used more than once (then the natural interval enclosure may be loose)."""
    uses = [j for n in nodes for j in n.inputs if nodes[j].op != "const"]
    return len(uses) > len(set(uses))


def _cell_enclosure(ev: Evaluator, val: Val) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell value enclosure of ``val`` on its grid (full-box level; NaN ends become infinite).

    The natural interval enclosure, intersected with the mean-value form where the graph reuses a value (exact on
    cancellations such as ``x - x``). Used for the output's band and for compressed nodes' cells.
    """
    lo, hi = (np.where(np.isnan(x), v, x) for x, v in zip(val.box[len(val.axes)], (-np.inf, np.inf), strict=True))
    if val.axes and _reuses_inputs(ev.nodes):
        steps = []
        for a in val.axes:
            ax = ev.axes[a]
            steps.append((*val.der[a], *(ev._expand(x, [a], val.axes) for x in (ax.lo, ax.atoms, ax.hi))))
        m_lo, m_hi = mean_value_enclosure(val.pt, steps)
        lo, hi = np.maximum(lo, m_lo), np.minimum(hi, m_hi)
    return lo, hi


def _cells_area(cells: Any) -> float:
    """Area of the CDF band of output cells (``sum mass * width``; ``inf`` for unbounded cells)."""
    with np.errstate(invalid="ignore", over="ignore"):
        a = float(np.sum(cells.mass() * (np.asarray(cells.hi, dtype=float) - np.asarray(cells.lo, dtype=float))))
    return a if a == a else math.inf


def _output_cells(ev: Evaluator, val: Val) -> Any:
    """The output's grid cells for its certified CDF band (:class:`opgraph.dcg.band.GridCells`).

    Exact masses and per-cell enclosures (:func:`_cell_enclosure`). None when an input is a previous result (its
    atoms are not its exact law), which gives no certified band.
    """
    if any(ev.quantized[n.attrs["name"]].upstream_w1 > 0 for n in ev.nodes if n.op == "input"):
        return None
    shape = ev._shape(val.axes)
    lo, hi = _cell_enclosure(ev, val)
    weights = tuple(ev.axes[a].weights for a in val.axes)
    labels = tuple(ev.axes[a].label for a in val.axes)
    return GridCells(weights, np.broadcast_to(lo, shape), np.broadcast_to(hi, shape), labels)


#: The Taylor box bound runs only where boxes of finite cells carry at least this share of the mass.
TAYLOR_MIN_FINITE = 0.25


#: Whether :func:`_taylor_boxes` reuses the Taylor pass of an earlier ``finish`` of the same evaluation (the same
#: grid, values and cells: the same per-box bound and linear models; ``Evaluator.taylor_memo``).
MEMO_TAYLOR = True


def _taylor_boxes(
    ev: Evaluator, graph: Graph, val: Val, box_bound: np.ndarray, attr: Terms, chunk: bool = False
) -> tuple[np.ndarray, Terms, dict[str, Any] | None]:
    """Per box the smaller of the cellwise bound and the second-order Taylor bound (:mod:`opgraph.dcg.taylor`).

    Only on plain grids whose axes are all exact inputs (no compression, grid-free extreme or previous result);
    the attribution is rescaled to the new total. Returns the bound, the attribution and a summary. ``chunk``: the
    grid is one chunk of a larger one (:mod:`opgraph.dcg.chunks`; every box's bound is local to the box, so the
    chunk's boxes are bounded alone); the attribution, a sum over the whole grid, is then returned unchanged and
    rescaled by the caller once the chunks' totals are known.
    """
    from opgraph.dcg import boxlinear, longmix, polymodel, taylor

    ev.box_linear = None
    axes = val.axes
    if (
        not taylor.ENABLED.get()
        or (ev.reducer is not None and not chunk)
        or ev.compressions
        or ev.extremes
        or ev.tiny is not None
    ):
        return box_bound, attr, None
    if not axes:
        return box_bound, attr, None
    for a in axes:
        n = graph.nodes[a] if 0 <= a < len(graph.nodes) else None
        if n is None or n.op != "input" or a not in ev.axes or ev.quantized[n.attrs["name"]].upstream_w1 > 0:
            return box_bound, attr, None
    # A long graph gets the lean pass (opgraph.dcg.longmix) where the mixture wants linear models and it fits
    lean = not costguards.taylor_pays(graph)
    if lean and (
        chunk
        or not boxlinear.wanted(math.prod(ev._shape(axes)), len(axes))
        or not longmix.runs(
            math.prod(ev._shape(axes)),
            len(graph.nodes),
            len(axes),
            polynomial=polymodel.applies(graph, ev.output, axes),
        )
    ):
        return box_bound, attr, None
    # Cost guard: on boxes with an unbounded cell the Hessian spans the whole tail and the bound rarely wins (the
    # 8-32-1 MLP at 2-4 atoms: never, for up to 60 % more CPU); the pass runs where at least TAYLOR_MIN_FINITE of
    # the mass lies in boxes of finite cells only.
    finite = 1.0
    for a in axes:
        q = ev.quantized[graph.nodes[a].attrs["name"]]  # the whole axis (a chunk decides as the whole grid)
        finite *= float(np.sum(np.where(np.isfinite(q.lo) & np.isfinite(q.hi), q.weights, 0.0)))
    if finite < TAYLOR_MIN_FINITE:
        return box_bound, attr, {"skipped": f"finite-cell mass {finite:.3g} < {TAYLOR_MIN_FINITE}"}
    t0 = time.process_time()
    cells = {a: (ev.axes[a].lo, ev.axes[a].hi, ev.axes[a].atoms) for a in axes}
    moments = {a: (ev.axes[a].weights, ev.axes[a].err, ev.axes[a].bias, ev.axes[a].m2) for a in axes}
    probe: dict[str, float] = {}
    whole = {a: ev.quantized[graph.nodes[a].attrs["name"]] for a in axes}  # a chunk probes as the whole grid
    on = (
        {a: (q.lo, q.hi, q.atoms) for a, q in whole.items()},
        {a: (q.weights, q.err, q.bias, q.m2) for a, q in whole.items()},
    )
    args = (np.asarray(val.pt), cells, moments, ev._wbox(axes), probe, on)
    law = {a: type(ev.dists.get(graph.nodes[a].attrs["name"])).__name__ for a in axes}
    uniform = frozenset(a for a in axes if law[a] == "Uniform")
    unimodal = frozenset(a for a in axes if law[a] in taylor.UNIMODAL)
    memo = ev.taylor_memo
    if lean:
        probe["lean"] = 1.0
    if not chunk and MEMO_TAYLOR and memo is not None and memo[0] is val and memo[1] is graph:
        # the same grid as an earlier finish of this evaluation (the pass reads neither box_bound nor attr): reused
        tb, lin = memo[2], memo[3]
        probe.update(memo[4])
        reused = True
    else:
        reused = False
        wanted = not chunk and boxlinear.wanted(math.prod(ev._shape(axes)), len(axes))
        lin = {} if wanted else None
        # the engine's own bound: the probe tells whether the mixture's larger slope work can pay (taylor.MIX_GATE)
        eb = np.asarray(box_bound) if wanted else None
        tb = taylor.box_bound(
            graph,
            ev.output,
            axes,
            *args,  # type: ignore[arg-type]
            uniform=uniform,
            unimodal=unimodal,
            linear=lin,
            engine_bound=eb,
            laws={a: ev.dists.get(graph.nodes[a].attrs["name"]) for a in axes} if wanted else None,
            lean=lean,
        )
        if not chunk:
            ev.taylor_memo = (val, graph, tb, lin, dict(probe))
    ev.box_linear = lin or None  # the linear models, for the box-linear mixture answer (opgraph.dcg.boxlinear)
    if tb is None and lean:  # the lean pass stopped (nothing to gain) or found no rule
        why = "its walk terms leave the mixture nothing to gain" if probe.get("lean_stopped") else "no rule"
        from opgraph.dcg import roundbudget

        rb = roundbudget.current()
        if rb is not None:
            rb.lean_idle = True  # later rounds of this target_w1 call reserve no time for it (longmix.reserve)
        info_skip = {"skipped": f"lean pass (long program): {why}", "lean": True}
        return box_bound, attr, {**info_skip, "cpu_s": time.process_time() - t0}
    if tb is None:  # no rule for some op, too large, or the probe found nothing to gain (cost guard)
        skip = {"skipped": f"probe gain {probe['probe_gain']:.3g} < {taylor.PROBE_MIN_GAIN}"} if probe else None
        return box_bound, attr, skip
    shape = ev._shape(axes)
    box = np.broadcast_to(box_bound, shape)
    old_total = float(np.sum(box))
    new = np.minimum(box, tb)
    new_total = float(np.sum(new))
    info = {"before": old_total, "after": new_total, "boxes": float(np.mean(tb < box)), "cpu_s": 0.0}
    if reused:
        info["reused"] = True  # the pass of an earlier finish (MEMO_TAYLOR): its cost is in that finish's cpu_s
    if lean:
        info["lean"] = True  # the lean pass of a long program (opgraph.dcg.longmix)
    if probe.get("sub_slope"):
        info["sub_slope"] = True  # the sub-box slope remainder ran (opgraph.dcg.subslope; read by subpieces' halving)
    if probe.get("mix_gated") or "hessian" in probe:
        info["mix_gate"] = {
            key: probe[key] for key in ("probe_mix_gain", "probe_hessian_wins", "mix_gated", "hessian") if key in probe
        }
    if new_total < old_total and chunk:
        box_bound = new
    elif new_total < old_total:
        base_total = _total(attr)
        if math.isfinite(base_total) and base_total > 0:
            attr = {k: v * new_total / base_total for k, v in attr.items()}
        elif math.isfinite(new_total):
            attr = {"second-order (Taylor)": new_total}
        box_bound = new
    info["cpu_s"] = time.process_time() - t0
    return box_bound, attr, info


def _share_boxes(
    shared: dict[str, Any], ev: Evaluator, graph: Graph, val: Val, box_bound: np.ndarray, attr: Terms
) -> tuple[np.ndarray, Terms]:
    """Per box the smaller of this evaluation's cellwise bound and a previous one's, then this one stored.

    ``shared`` holds ``(input names, computed values, box bounds)`` of an earlier evaluation of the same output law
    (another graph of the same function: :mod:`opgraph.dcg.cancel`, the reassociation) on the same quantized inputs.
    Both evaluations couple each input to the atom of its cell, so on a box ``b`` with mass ``w_b``
    ``E[|Y - v_b|; b] <= E[|Y - v'_b|; b] + |v_b - v'_b| w_b``: the earlier bound moved to this evaluation's value
    ``v_b``. Used only on plain grids (every axis an input, no compression or grid-free extreme), both ways.
    """
    axes = val.axes
    names = []
    for a in axes:
        n = graph.nodes[a] if 0 <= a < len(graph.nodes) else None
        if n is None or n.op != "input" or a not in ev.axes:
            return box_bound, attr
        names.append(n.attrs["name"])
    if ev.compressions or ev.extremes or not axes:
        return box_bound, attr
    shape = ev._shape(axes)
    pt = np.broadcast_to(np.asarray(val.pt, dtype=float), shape)
    box = np.array(np.broadcast_to(box_bound, shape), dtype=float)
    prev = shared.get("boxes")
    if (
        prev is not None
        and sorted(prev[0]) == sorted(names)
        and prev[1].shape == tuple(shape[names.index(m)] for m in prev[0])
    ):
        perm = [prev[0].index(m) for m in names]
        p_pt, p_box = np.transpose(prev[1], perm), np.transpose(prev[2], perm)
        w = np.broadcast_to(ev._wbox(axes), shape)
        with np.errstate(invalid="ignore", over="ignore"):
            moved = (p_box + np.abs(pt - p_pt) * w) * (1 + 1e-12)
        take = np.isfinite(moved) & (moved < box)
        if np.any(take):
            old_total = float(np.sum(box))
            box = np.where(take, moved, box)
            new_total = float(np.sum(box))
            base = attr if math.isfinite(_total(attr)) else shared.get("attr", {})
            base_total = _total(base)
            if math.isfinite(base_total) and base_total > 0:  # the attribution, rescaled to the new total
                attr = {k: v * new_total / base_total for k, v in base.items()}
            shared["gain"] = shared.get("gain", 0.0) + (old_total - new_total)
    shared["boxes"] = (tuple(names), np.array(pt), box)
    shared["attr"] = dict(attr)
    return box, attr


#: A fixed-atoms evaluation of a long program with polynomial box models (:func:`_polynomial`) finishes with its
#: box-linear mixture first and runs the sub-cell pass only where it could beat it (branch ode-osc); False: the pass
#: first, as for every other program. (Not :mod:`opgraph.dcg.mixfirst` of main, a target_w1 round rule.)
POLY_MIXTURE_FIRST = True


def _polynomial(ev: Evaluator, graph: Graph, output: int, val: Val) -> bool:
    """Whether the output gets polynomial box models on its grid (:func:`opgraph.dcg.polymodel.applies`)."""
    from opgraph.dcg import boxlinear, polymodel

    return bool(val.axes) and boxlinear.ENABLED.get() and polymodel.applies(graph, output, val.axes)


def evaluate_output(
    graph: Graph,
    output: int,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    *,
    max_joint: int,
    compress_atoms: int,
    qmc_points: int,
    seed: int,
    rules: dict[str, Any],
    soft_joint: int | None = None,
    reassociate: bool = True,
    cancel_factors: bool = True,
    shared_boxes: dict[str, Any] | None = None,
) -> Evaluation:
    """Evaluate one output with exact dependence and a certified bound (or QMC when nothing fits).

    ``soft_joint`` is passed to :func:`plan_compression` (compress where grids exceed it, where possible).
    ``reassociate`` lets the semi-discrete certificate also try a reassociated sum / product at the output
    (:func:`opgraph.dcg.semidiscrete.reassociate`; the smaller of the two bounds is returned).
    ``cancel_factors`` also evaluates the output with common factors taken out of sums
    (:func:`opgraph.dcg.cancel.rewrite`, the same output law) and returns the smaller of the two bounds.
    ``shared_boxes`` (set by that comparison) carries the per-box cellwise bounds of an evaluation of the same law
    on the same quantized inputs to the next one, which keeps per box the smaller (see :func:`_share_boxes`).
    """
    sub, out = restrict(graph, output)
    t0 = time.perf_counter()
    for n in sub:
        if n.op not in ("input", "const") and n.op not in iv.RULES:
            raise DistError(f"{n.where}: {iv.unsupported(n.op)}")
    if sub.nodes[out].op == "const":
        c = float(np.asarray(sub.nodes[out].attrs["value"], dtype=float))
        return Evaluation(
            np.array([c]), np.array([1.0]), 0.0, {}, True, (c, c), {"method": "constant"}, cells=GridCells.point(c)
        )
    # Closed-form separators (products of LogNormals, affine sums of Normals, ...) become inputs with their exact
    # laws (opgraph.dcg.exactlaw); the rewritten graph has none left, so this recursion runs once.
    exl = exactlaw.substitute(sub, out, quantized, labels, dists, compress_atoms)
    if exl is not None:
        kw_x = {"qmc_points": qmc_points, "seed": seed, "rules": rules, "soft_joint": soft_joint}
        kw_x |= {"reassociate": reassociate, "cancel_factors": cancel_factors, "shared_boxes": shared_boxes}
        kw_x |= {"max_joint": max_joint, "compress_atoms": compress_atoms}
        from opgraph.dcg import keepbest  # the better of the rewrite and the program as written

        return keepbest.exact_or_written(exl, sub, out, quantized, labels, dists, evaluate_output, **kw_x)
    if cancel_factors and cancel.ENABLED.get():
        sizes_c = {i: quantized[n.attrs["name"]].atoms.size for i, n in enumerate(sub) if n.op == "input"}
        # where no grid fits (the QMC fallback, uncertified) the rewrite cannot give a bound: not evaluated twice
        gridded = plan_compression(sub, out, sizes_c, max_joint, compress_atoms, soft_joint) is not None
        cre = cancel.rewrite(sub, out, dists) if gridded else None
        if cre is not None:
            kw_c = {
                "max_joint": max_joint,
                "compress_atoms": compress_atoms,
                "qmc_points": qmc_points,
                "seed": seed,
                "rules": rules,
                "soft_joint": soft_joint,
                "reassociate": reassociate,
                "cancel_factors": False,
                "shared_boxes": {},
            }
            # Both graphs are evaluated before any sub-cell pass (deferred), which then runs on the better one
            # first and on the other only where it could still win (:func:`_pair_passes`).
            from opgraph.dcg import subcells

            outer_defer = DEFER_SUBCELLS.get()
            tok_d = DEFER_SUBCELLS.set(True)
            try:
                old_c = evaluate_output(sub, out, quantized, labels, dists, **kw_c)  # type: ignore[arg-type]
                new_c = evaluate_output(cre[0], cre[1], quantized, labels, dists, **kw_c)  # type: ignore[arg-type]
            finally:
                DEFER_SUBCELLS.reset(tok_d)
            # Both bound W1 to the same exact law (the rewrite changes values only by rounding, away from the
            # cancelled factors' zeros): the smaller bound, and the narrower CDF band, are kept.
            # A guard against a wrong rewrite: both answers are laws of the same quantized program, so their means
            # agree up to rounding (compressions keep group means); where they do not, the rewrite is refused.
            # (a box-linear mixture answer is another law: its grid's point-mass means are compared)
            m_new, m_old = (e.info.get("box_linear", {}).get("grid_mean", e.atoms @ e.weights) for e in (new_c, old_c))
            m_new, m_old = float(m_new), float(m_old)
            scale_c = float(old_c.info.get("box_linear", {}).get("grid_abs_mean", np.abs(old_c.atoms) @ old_c.weights))
            refused = not abs(m_new - m_old) <= 1e-9 * scale_c + 1e-300
            if refused:
                log.warning(
                    "cancellation rewrite refused at %s: means %r and %r differ", sub.nodes[out].where, m_new, m_old
                )

            def pick(old_e: Evaluation, new_e: Evaluation, passes: dict[str, Any] | None) -> Evaluation:
                best_c = new_e if new_e.w1_bound < old_e.w1_bound and not refused else old_e
                best_c.info["cancelled"] = {
                    "refused": refused,
                    "rewrites": cre[2],
                    "used": best_c is new_e,
                    "other_bound": (old_e if best_c is new_e else new_e).w1_bound,
                    "box_gain": float(kw_c["shared_boxes"].get("gain", 0.0)),  # type: ignore[union-attr]
                }
                if passes is not None:
                    best_c.info["cancelled"]["subcell_passes"] = passes
                if new_e.cells is not None and old_e.cells is not None and not refused:
                    best_c.cells = min((old_e.cells, new_e.cells), key=_cells_area)
                return best_c

            o_res, n_res = old_c.resume, new_c.resume
            old_c.resume = new_c.resume = None
            if o_res is None and n_res is None:
                return pick(old_c, new_c, None)

            def run_pair(ceiling: float) -> Evaluation:
                o, n, passes = _pair_passes(old_c, o_res, new_c, n_res, ceiling, refused)
                return pick(o, n, passes)

            if outer_defer:  # the caller decides whether the passes run: the better answer before them
                o_pre, n_pre = old_c.w1_bound, new_c.w1_bound
                pre = pick(old_c, new_c, None)

                def predict_pair(factor: float) -> float:
                    p_o = o_res.predict(factor) if o_res is not None else o_pre
                    p_n = n_res.predict(factor) if n_res is not None else n_pre
                    return min(p_o, p_n)

                def probe_pair() -> float | None:
                    got = [r.probe() if r is not None and r.probe is not None else None for r in (o_res, n_res)]
                    return min(g if g is not None else e.w1_bound for g, e in zip(got, (old_c, new_c)))

                pre.resume = DeferredPass(run_pair, predict_pair, probe_pair)
                return pre
            return run_pair(subcells.CEILING.get())
    if SEMI_DISCRETE.get() and reassociate:
        for mode in ("add", "mul", "affine"):
            if mode == "affine":  # Y = P + Q * C (opgraph.dcg.semidiscrete.affine_rewrite)
                sizes = {k: q.atoms.size for k, q in quantized.items()}
                re = semidiscrete.affine_alternative(sub, out, dists, rules, sizes)
            else:
                re = semidiscrete.reassociate(sub, out, semidiscrete.scores(quantized, dists, mode), mode)
            if re is not None:
                # Both association orders are evaluated and the smaller bound is kept: the rewrite exposes an input
                # to the semi-discrete certificate but may lose elsewhere (the law-level bound of a product chain).
                args = (quantized, labels, dists)
                kw = {
                    "max_joint": max_joint,
                    "compress_atoms": compress_atoms,
                    "qmc_points": qmc_points,
                    "seed": seed,
                    "rules": rules,
                    "soft_joint": soft_joint,
                    "reassociate": False,
                    "cancel_factors": False,  # tried before the reassociation (see above)
                    "shared_boxes": shared_boxes,
                }
                with semidiscrete.shared_ceiling():  # the second skips an affine certificate that cannot win
                    new = evaluate_output(re[0], re[1], *args, **kw)  # type: ignore[arg-type]
                    old = evaluate_output(sub, out, *args, **kw)  # type: ignore[arg-type]

                def pick_re(old: Evaluation, new: Evaluation) -> Evaluation:
                    best = new if new.w1_bound < old.w1_bound else old
                    best.info["reassociated"] = best is new
                    # Both cell sets enclose the exact law: the result keeps the narrower CDF band.
                    if new.cells is not None and old.cells is not None:
                        best.cells = min((old.cells, new.cells), key=_cells_area)  # ties: the original's
                    return best

                o_res, n_res = old.resume, new.resume
                if o_res is None and n_res is None:
                    return pick_re(old, new)
                # Passes deferred (a cancellation pair's graph, a target round): both orders keep their pass, and
                # the choice between them is made after the passes (before, the smaller bound *before* the passes
                # won and the other's pass was dropped: Borehole at 4 atoms, 16.51 -> 16.91, +2.4 %).
                old.resume = new.resume = None
                return _deferred_pair(old, o_res, new, n_res, pick_re, "reassociated_passes")
    sizes = {i: quantized[n.attrs["name"]].atoms.size for i, n in enumerate(sub) if n.op == "input"}
    plan = plan_compression(sub, out, sizes, max_joint, compress_atoms, soft_joint)
    if plan is None:
        return evaluate_qmc(sub, out, dists, n_points=qmc_points, seed=seed, rules=rules)
    ev = Evaluator(sub, out, quantized, labels, plan, compress_atoms, dists)
    core = semidiscrete.find_core(sub, out) if SEMI_DISCRETE.get() else None
    if core is not None:
        ev.keep = {core.node, *core.operands}
    try:
        val, box_bound, attr = ev.run(rules)
    except DistError as exc:
        hint = domain_hint(sub, dists) if "nan or inf" in str(exc) else ""
        if hint:
            raise type(exc)(f"{exc}; {hint}") from exc
        raise
    shape = ev._shape(val.axes)
    if shared_boxes is not None:
        box_bound, attr = _share_boxes(shared_boxes, ev, sub, val, np.asarray(box_bound), attr)
    pt = np.broadcast_to(val.pt, shape).reshape(-1)
    w = ev._wbox(val.axes).reshape(-1)
    atoms, weights = merge_duplicates(pt, w)
    from opgraph.dcg import elastic, subcells  # the optional sub-cell and log-space passes

    d1_pre = _total(val.d1)
    n_pre = math.inf if ev.cell_only else _total(val.nb)
    w_pre = _total(val.wb) if val.wb is not None else math.inf
    w_pre = math.inf if math.isnan(w_pre) else w_pre
    # The pass only lowers the cellwise bound: it can change the answer only below the other bounds.
    base_ceiling = min(n_pre, w_pre - d1_pre if val.wb else math.inf)
    done: dict[str, Any] = {}  # the semi-discrete certificate and the band cells, computed once

    def finish(
        box_bound: np.ndarray, attr: Terms, sub_info: dict[str, Any] | None, held: float = math.inf
    ) -> Evaluation:
        # ``held``: a bound of the same law the caller already holds (a pass's ceiling): the box-linear mixture is
        # not built where it cannot go below it (nor below the best bound of this output's other evaluations).
        # After the sub-cell pass (whose probes would stop earlier on boxes already lowered): per box only a minimum.
        box_bound, attr, taylor_info = _taylor_boxes(ev, sub, val, np.asarray(box_bound), attr)
        box_bound, attr, elastic_info = elastic.apply(ev, sub, val, np.asarray(box_bound), attr)
        c_total = float(np.sum(box_bound))
        n_total = n_pre
        terms, method, bound = _cellwise_or_path(c_total, n_total, attr, val)
        w_total = w_pre
        if w_total < bound:
            bound, terms, method = w_total, dict(val.wb or {}), "law-level"
        if "sd" not in done:
            sd = None
            if core is not None and not bound <= 0 and ev.tiny is None:
                try:
                    sd = semidiscrete.certify(ev, core, ev.kept, attr, bound)
                except (ValueError, IndexError, ZeroDivisionError, FloatingPointError) as exc:  # an optional one
                    log.warning("semi-discrete certificate skipped at %s: %s", sub.nodes[out].where, exc)
            done["sd"] = sd
            ev.kept.clear()
        sd_total, sd_info = math.inf, None
        if done["sd"] is not None:
            sd_total, sd_info = done["sd"][0], done["sd"][2]
            if sd_total < bound:
                bound, terms, method = sd_total, done["sd"][1], "semi-discrete"
        if math.isnan(bound):
            bound = math.inf
        from opgraph.dcg import boxlinear, loglinear  # the box-linear mixture answers (in x; in log coordinates)

        span = None  # the support of the exact law (NaN ends of the cells' enclosures: unbounded)
        models = ev.box_linear is not None or ev.log_linear is not None
        if models and "cells" not in done:
            done["cells"] = _output_cells(ev, val)
        gc = done.get("cells") if models else None
        if gc is not None:
            span = (
                float(np.min(np.where(np.isnan(gc.lo), -np.inf, gc.lo))),
                float(np.max(np.where(np.isnan(gc.hi), np.inf, gc.hi))),
            )
        shared = semidiscrete.shared_best()  # the best final bound of this output's earlier evaluations, if any
        held = min(held, shared[0]) if shared is not None else held
        a_out, w_out, bl = atoms, weights, boxlinear.answer(ev, sub, val, box_bound, bound, span, held)
        # the log-linear models of the log-space pass: kept only where their mixture beats both answers above
        ll = loglinear.answer(ev, sub, val, box_bound, bound if bl is None else bl[2], span, held)
        bl = ll if ll is not None else bl
        if bl is not None:  # a second-order certificate for another answer (the mixture of the boxes' linear models)
            a_out, w_out, base = bl[0], bl[1], _total(terms)
            terms = {k: v * bl[2] / base for k, v in terms.items()} if 0 < base < math.inf else {"box-linear": bl[2]}
            bound, method = bl[2], "box-linear mixture"
        if shared is not None:  # for this output's later evaluations (they keep the smaller bound)
            shared[0] = min(shared[0], float(bound))
        info = {
            "method": "grid",
            "bound_method": method,
            "cellwise_bound": c_total,
            "path_bound": n_total,
            "law_level_bound": w_total,
            "semi_discrete_bound": sd_total,
            "semi_discrete": sd_info,
            "joint_atoms": int(pt.size),
            "compressions": ev.compressions,
            "extremes": ev.extremes,
            "seconds": time.perf_counter() - t0,
        }
        if sub_info is not None:
            info["subcells"] = sub_info
        if taylor_info is not None:
            info["taylor"] = taylor_info
        if elastic_info is not None:
            info["elastic"] = elastic_info
        if bl is not None:
            info["box_linear"] = {
                **bl[3],
                "grid_mean": float(atoms @ weights),
                "grid_abs_mean": float(np.abs(atoms) @ weights),
            }
        if ev.tiny is not None:
            info["tiny_scale"] = ev.tiny
        if math.isinf(bound):
            where = val.nb_inf_at or sub.nodes[out].where
            info["unbounded_at"] = where
            warnings.warn(
                f"no finite W1 bound: {where} has an unbounded derivative on its inputs' support (a denominator "
                "whose range contains 0, an unbounded input through a non-Lipschitz op, a jump); the atoms are still "
                "exact for the quantized inputs. Bounded inputs or a reformulation give a finite bound"
                + _hint_suffix(sub, dists),
                UnboundedWarning,
                stacklevel=4,
            )
        if "cells" not in done:
            done["cells"] = _output_cells(ev, val)
        return Evaluation(a_out, w_out, float(bound), terms, True, val.gint1, info, cells=done["cells"])

    memo: dict[str, Any] = {}  # the first round's probe, kept between a deferred pass's probe() and run()

    def passed(ceiling: float, probe_only: bool = False) -> tuple[np.ndarray, Terms, dict[str, Any]] | None:
        """The sub-cell pass under ``ceiling`` (a bound of the same law held elsewhere), or None."""
        return _subcell_bound(
            ev,
            sub,
            out,
            val,
            box_bound,
            attr,
            quantized,
            labels,
            dists,
            rules,
            max_joint,
            ceiling=min(base_ceiling, ceiling - d1_pre),
            memo=memo,
            probe_only=probe_only,
        )

    if not subcells.ENABLED.get():
        return finish(box_bound, attr, None)
    if DEFER_SUBCELLS.get():
        before = finish(box_bound, attr, None)

        poly_first = POLY_MIXTURE_FIRST and not costguards.taylor_pays(graph) and _polynomial(ev, graph, output, val)

        def run(ceiling: float) -> Evaluation:
            sc = passed(ceiling)
            if sc is None:
                return before
            after = finish(*sc, held=ceiling)
            # a long polynomial program: the answer before the pass where smaller (the finish after it can find no
            # time left for the mixture: ODE-osc at 4 atoms, 0.0376 before the pass, 0.219 after); both are valid
            return before if poly_first and before.w1_bound < after.w1_bound else after

        def predict(factor: float) -> float:
            c_total = float(np.sum(box_bound)) / factor
            return min(min(c_total, n_pre) + d1_pre, w_pre, before.info["semi_discrete_bound"])

        def probe() -> float | None:
            passed(math.inf, probe_only=True)
            c_pred = memo.get("predicted")
            if c_pred is None or not c_pred > 0 or not math.isfinite(c_pred):
                return None
            c_total = float(np.sum(box_bound))
            return min(predict(c_total / c_pred), before.w1_bound) if c_pred < c_total else before.w1_bound

        before.resume = DeferredPass(run, predict, probe)
        return before
    held = subcells.CEILING.get()
    if POLY_MIXTURE_FIRST and not costguards.taylor_pays(graph) and _polynomial(ev, graph, output, val):
        # a long polynomial program (opgraph.dcg.polymodel): its mixture first, and the pass only where even
        # subcells.MAX_GAIN could beat it (ODE-osc at 8 atoms: the pass cost 17 s and its answer was not kept)
        first = finish(box_bound, attr, None)
        c_opt = float(np.sum(box_bound)) / subcells.MAX_GAIN
        if not min(min(c_opt, n_pre) + d1_pre, w_pre, first.info["semi_discrete_bound"]) < first.w1_bound:
            first.info["subcells_skipped"] = "cannot beat the box-linear mixture (cellwise / subcells.MAX_GAIN)"
            return first
        sc = passed(held)
        if sc is None:
            return first
        after = finish(*sc, held=held)
        return first if first.w1_bound < after.w1_bound else after
    sc = passed(held)
    return finish(box_bound, attr, None) if sc is None else finish(*sc, held=held)


def _deferred_pair(
    a: Evaluation,
    ra: DeferredPass | None,
    b: Evaluation,
    rb: DeferredPass | None,
    pick: Any,
    key: str,
) -> Evaluation:
    """Two answers for the same law whose passes are deferred, as one answer with one deferred pass.

    ``pick(a, b)`` chooses the answer to return (before the passes now; after them when the caller runs the
    returned pass, which runs both under :func:`_pair_passes`; its record goes to ``info[key]``). ``predict`` and
    ``probe`` are the smaller of the two graphs'.
    """
    pre = pick(a, b)

    def run(ceiling: float) -> Evaluation:
        x, y, rec = _pair_passes(a, ra, b, rb, ceiling, same_law_orders=True)
        best = pick(x, y)
        best.info[key] = rec
        return best

    def predict(factor: float) -> float:
        return min(r.predict(factor) if r is not None else e.w1_bound for e, r in ((a, ra), (b, rb)))

    def probe() -> float | None:
        # the order returned before the passes speaks for the pair (the orders' probes err alike and lie close:
        # Borehole's 12.44 and 12.50); the other's probe is evaluated only where that one has none
        for r in (ra, rb) if pre is a else (rb, ra):
            got = r.probe() if r is not None and r.probe is not None else None
            if got is not None:
                return got
        return min(a.w1_bound, b.w1_bound)

    pre.resume = DeferredPass(run, predict, probe)
    return pre


#: A cancellation pair's second pass stops after its probe only where the probe extrapolates a bound at least this
#: many times the first's bound after its pass (:func:`_pair_passes`; a probe's extrapolation can be 20 % off).
PAIR_SLACK = 1.25


def _pair_passes(
    a: Evaluation,
    ra: DeferredPass | None,
    b: Evaluation,
    rb: DeferredPass | None,
    ceiling: float,
    refused: bool = False,
    same_law_orders: bool = False,
) -> tuple[Evaluation, Evaluation, dict[str, Any]]:
    """The deferred sub-cell passes of a cancellation pair (``a`` the original's answer, ``b`` the rewrite's).

    ``ra`` and ``rb`` are their deferred passes (None: none pending); ``refused``: the rewrite's answer is not used
    (only the original's pass runs); ``same_law_orders``: ``a`` and ``b`` are two association orders of one graph
    (the semi-discrete reassociation, :func:`_deferred_pair`), whose probes err alike.

    Each graph's own probe judges its pass (:attr:`DeferredPass.probe`: the sub-cells of the cells carrying most
    of its bound, evaluated once and kept for the pass): the pass runs first on the answer whose bound after its
    pass, as its probe extrapolates it, is the smaller (the bound before the passes where a graph has no probe; ties:
    the smaller bound before the passes), under ``ceiling``. The other's pass then runs under the first's bound as
    ceiling (times :data:`PAIR_SLACK`), so its kept probe stops it at once where its own extrapolation cannot get
    below that bound. (Before,
    the other's pass was skipped from the *first's* gain: Borehole's rewrite gained 1.42x, the original's own pass
    gains about 12x and was skipped, bound +2.4 %.) Each answer's bound stays one of its valid bounds, so the pair's
    minimum is a valid bound whichever passes ran.

    For two association orders (``same_law_orders``) whose passes both have a probe, the second's probe is read at
    the first's realised / probed ratio (the same sums or products with the same inputs, cells and splits: their
    extrapolations err alike; Borehole at 4 atoms probed 12.44 and 12.50, reached 16.51 and 16.91). Where that
    lands at or above the first's bound after its pass, the second's pass is skipped (its answer keeps its bound
    before the pass). Since the first is the one probed smaller, this skips it whenever both are probed: the
    orders' passes then cost one pass and two probes (Borehole at 4 atoms 4.15 -> 2.69 CPU s, bound 0.588 std kept).
    Returns both answers and a record of what ran.
    """
    if refused:
        rb = None

    probed: dict[int, float] = {}  # id of each pass whose probe gave a value: that value

    def expected(e: Evaluation, r: DeferredPass | None) -> float:
        if r is None:
            return e.w1_bound
        if id(r) not in probed:
            p = r.probe() if r.probe is not None else None
            if p is None:
                return e.w1_bound
            probed[id(r)] = p
        return min(probed[id(r)], e.w1_bound)

    pre_swap = b.w1_bound < a.w1_bound and not refused
    if same_law_orders:
        # The order with the smaller bound before the passes is probed first: where its probe cannot get below the
        # ceiling, neither order's pass runs and the other's probe is not evaluated (the pair that loses a
        # cancellation pair: Borehole's original graph, probed 66.9 against the rewrite's 16.51 after its pass).
        lead, r_lead = (b, rb) if pre_swap else (a, ra)
        x_lead = expected(lead, r_lead)
        if id(r_lead) in probed and math.isfinite(ceiling) and x_lead >= ceiling:
            name = "rewrite" if pre_swap else "original"
            done = r_lead(ceiling)  # stops on its kept probe (no new fine grid), keeping what the probe's boxes gained
            rec_l = {"first": name, "probed": {name: x_lead}, "first_ran": True, "second": "not run (nor probed)"}
            return (a, done, rec_l) if pre_swap else (done, b, rec_l)
    x_a, x_b = expected(a, ra), expected(b, rb)
    swap = not refused and (x_b < x_a or (x_b == x_a and pre_swap))
    first, second = (b, a) if swap else (a, b)
    r1, r2 = (rb, ra) if swap else (ra, rb)
    rec: dict[str, Any] = {
        "first": "rewrite" if swap else "original",
        "probed": {"original": x_a, "rewrite": x_b},
    }
    f_after = first if r1 is None else r1(ceiling)
    rec["first_ran"] = r1 is not None
    s_after = second
    x_1, x_2 = (x_b, x_a) if swap else (x_a, x_b)
    probed_both = r1 is not None and r2 is not None and id(r1) in probed and id(r2) in probed
    if same_law_orders and probed_both and x_1 > 0 and math.isfinite(x_1):
        # x_2 >= x_1 (the first is the one probed smaller), so x_2 read at the first's realised / probed ratio lands
        # at or above the first's bound after its pass: the second cannot win
        landing = x_2 * f_after.w1_bound / x_1
        rec["second"] = (
            f"skipped: its probe {x_2:.4g} at the first's realised / probed ratio "
            f"{f_after.w1_bound:.4g} / {x_1:.4g} lands at {landing:.4g}"
        )
        r2 = None
    if r2 is not None:
        # the probe's extrapolation is a heuristic (_clear at 3 atoms: 0.233 predicted, 0.2235 reached, under the
        # first's 0.2241): the second stops only where its probe extrapolates PAIR_SLACK times the first's bound
        limit = min(ceiling, PAIR_SLACK * f_after.w1_bound)
        s_after = r2(limit)
        sc = s_after.info.get("subcells") or {}
        stopped = str(sc.get("stopped", ""))
        rec["second"] = f"stopped by its probe: {stopped}" if stopped.startswith("probe") else "ran"
    out = (s_after, f_after) if swap else (f_after, s_after)
    return out[0], out[1], rec


def _subcell_bound(
    ev: Evaluator,
    sub: Graph,
    out: int,
    val: Val,
    box_bound: np.ndarray,
    attr: Terms,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    rules: dict[str, Any],
    max_joint: int,
    ceiling: float = math.inf,
    memo: dict[str, Any] | None = None,
    probe_only: bool = False,
) -> tuple[np.ndarray, Terms, dict[str, Any]] | None:
    """The cellwise bound recomputed on nested sub-cells of the inputs that carry it (:mod:`opgraph.dcg.subcells`).

    ``memo`` keeps the first round's probe between calls on the same evaluation (with ``probe_only``, only that
    probe runs and None is returned; ``memo["predicted"]`` is the cellwise bound it extrapolates for the round).

    Runs only on a grid of plain input axes (no compression, no chunk) whose cellwise bound exceeds
    :data:`~opgraph.dcg.subcells.TRIGGER` times the computed output's std; the fine grid is capped by
    ``max_joint``, :data:`~opgraph.dcg.subcells.MAX_FACTOR` and :data:`~opgraph.dcg.subcells.MAX_WORK`. Returns the per-box minimum of both
    bounds, its attribution (the fine grid's, scaled to the new total) and what was done; ``None`` where nothing
    was tried or nothing improved.
    """
    from opgraph.dcg import subcells

    t0 = time.process_time()
    total = float(np.sum(box_bound))
    ceiling = math.inf if math.isnan(ceiling) else ceiling
    names = {n.id: n.attrs["name"] for n in sub.nodes if n.op == "input"}
    if ev.compress or ev.slabs or set(val.axes) != set(names) or total <= 0:
        return None
    shape = ev._shape(val.axes)
    pt = np.broadcast_to(val.pt, shape)
    w = ev._wbox(val.axes)
    mean = float(np.sum(pt * w))
    std = math.sqrt(max(float(np.sum(w * (pt - mean) ** 2)), 0.0))
    if not total > subcells.TRIGGER * std:
        return None
    terms = {name: attr.get(labels[name], 0.0) for name in names.values()}
    sizes = {name: int(quantized[name].atoms.size) for name in names.values()}
    tails = {
        name: int(np.sum(~(np.isfinite(quantized[name].lo) & np.isfinite(quantized[name].hi))))
        for name in names.values()
    }
    cap = min(max_joint, max(subcells.MAX_FACTOR * math.prod(shape), subcells.MIN_BOXES))
    cap = min(cap, max(subcells.MIN_BOXES, subcells.MAX_WORK // max(1, len(sub.nodes))))
    plan = subcells.plan_splits(terms, sizes, tails, cap)
    if not plan:  # nothing fits: split only the tail cells of the unbounded input with the largest term
        if probe_only:  # its probe (one tail cell) is not kept: the pass decides when it runs
            return None
        return _subcell_tails(
            ev, sub, out, val, box_bound, attr, terms, tails, cap, quantized, labels, dists, rules, ceiling
        )
    box = np.array(np.broadcast_to(box_bound, shape), dtype=float)
    info: dict[str, Any] = {"splits": dict(plan)}
    r1 = _subcell_probed(
        ev, sub, out, val, box, plan, names, quantized, labels, dists, rules, ceiling, memo, probe_only
    )
    if r1 is None or probe_only:
        return None
    new, attr2, fine_boxes, stop = r1
    new_total = float(np.sum(new))
    info["fine_boxes"] = fine_boxes
    if stop:
        info["stopped"] = stop
    # A second plan from the fine grid's attribution (a term of the coarse grid may have been inflated by the
    # wrapping on wide cells, or infinite), where the work of both rounds stays within MAX_WORK, and only where
    # the first round paid (a gain of at least MIN_GAIN of the bound: a round that gained less stops the pass).
    used = fine_boxes * len(sub.nodes)
    left = (subcells.MAX_WORK - used) // max(1, len(sub.nodes))
    gained = not math.isfinite(total) or total - new_total >= subcells.MIN_GAIN * total
    if not stop and not gained:
        info["stopped"] = "round 1 gain below MIN_GAIN"
    if not stop and gained and new_total > subcells.TRIGGER * std and left >= math.prod(shape) * 2:
        terms2 = {name: attr2.get(labels[name], 0.0) * plan.get(name, 1) for name in names.values()}
        plan2 = subcells.plan_splits(terms2, sizes, tails, min(cap, left))
        if not plan2 or plan2 == plan:  # nothing new from the attribution: the tail cells the first round left whole
            plan2 = subcells.plan_splits(terms2, sizes, tails, min(cap, left), tail_only=True)
        if plan2 and plan2 != plan:
            info["second_splits"] = dict(plan2)
            r2 = _subcell_probed(ev, sub, out, val, new, plan2, names, quantized, labels, dists, rules, ceiling)
            if r2 is not None:
                if r2[3]:
                    info["second_stopped"] = r2[3]
                total3 = float(np.sum(r2[0]))
                if total3 < new_total:
                    new, new_total, attr2 = r2[0], total3, r2[1]
    info.update(bound_before=total, bound_after=new_total, cpu_seconds=time.process_time() - t0)
    if not new_total < total:
        return None
    if attr2 is None:  # stopped after the probe: the coarse attribution, scaled
        attr2 = attr
    fine_total = _total(attr2)
    if math.isfinite(fine_total) and fine_total > 0:
        new_attr = {k: v * new_total / fine_total for k, v in attr2.items()}
    else:
        new_attr = {"sub-cells": new_total}
    return new, new_attr, info


def _subcell_probed(
    ev: Evaluator,
    sub: Graph,
    out: int,
    val: Val,
    box: np.ndarray,
    plan: dict[str, int],
    names: dict[int, str],
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    rules: dict[str, Any],
    ceiling: float,
    memo: dict[str, Any] | None = None,
    probe_only: bool = False,
) -> tuple[np.ndarray, Terms | None, int, str] | None:
    """One sub-cell round of ``plan`` on the per-box bounds ``box``, probed first on the boxes carrying the bound.

    ``memo`` (a dict owned by one evaluation, for its first round) keeps the probe's result and its extrapolated
    cellwise bound (``memo["predicted"]``; None where the probe's boxes were infinite) so that a later call with
    the same plan reuses it; ``probe_only`` returns right after the probe.

    The probe (:func:`opgraph.dcg.subcells.probe_cells`) evaluates the sub-cells of the cells of one split input
    that carry most of the bound; the rest of the round runs only where the gain extrapolated from the probe (same
    relative gain on the other boxes) reaches :data:`~opgraph.dcg.subcells.MIN_GAIN` of the bound and brings it
    below ``ceiling`` (the other bounds of the output: a cellwise bound above them changes nothing). Every box
    keeps the smaller of its bound and its nested one, so stopping early is sound. Returns the new per-box bounds,
    the fine attribution (``None`` when only the probe ran), the fine boxes evaluated and why it stopped (or ``""``).
    """
    from opgraph.dcg import subcells

    shape = box.shape
    axis_names = [names[a] for a in val.axes]
    plan_key = tuple(sorted(plan.items()))
    # A small round runs whole: its probe would cost about as much (costguards); kept in ``memo`` for a later call.
    whole = costguards.round_runs_whole(
        plan, {m: quantized[m] for m in axis_names}, subcells.TAIL_PIECES, len(sub.nodes)
    )
    if whole and memo is not None and memo.get("whole_plan") == plan_key:
        kept = memo["whole"]
        return None if kept is None else (kept[0].copy(), dict(kept[1]), kept[2], kept[3])
    probe = None if whole else subcells.probe_cells(box, axis_names, plan)
    parts: list[tuple[str, np.ndarray] | None] = [probe, (probe[0], ~probe[1])] if probe is not None else [None]
    new = box.copy()
    total = float(np.sum(box))
    attr_sum: Terms = {}
    fine_boxes = 0

    def after_probe(predicted: float | None) -> tuple[np.ndarray, None, int, str] | None:
        """The round's early answer after its probe (``predicted``: the extrapolated bound), or None to go on."""
        if predicted is None:  # an infinite bound on the probe's boxes: any finite one pays
            return None
        if probe_only:
            return new, None, fine_boxes, "probe only"
        assert probe is not None  # called on the probe part only
        stop = _probe_stop(probe, total, predicted, ceiling)
        return (new, None, fine_boxes, stop) if stop else None

    for k, part in enumerate(parts):
        if k == 0 and probe is not None and memo is not None and memo.get("plan") == plan_key:
            if memo["probe"] is None:
                return None
            new, attr_sum, fine_boxes, idx = memo["probe"][0].copy(), dict(memo["probe"][1]), *memo["probe"][2:]
            early = after_probe(memo["predicted"])
            if early is not None:
                return early
            continue
        sc = _subcell_round(ev, sub, out, plan, quantized, labels, dists, rules, part)
        if sc is None or sorted(sc[0].axes) != sorted(val.axes):
            if k == 0 and memo is not None and probe is not None:
                memo.update(plan=plan_key, probe=None, predicted=None)
            if whole and memo is not None:
                memo.update(whole_plan=plan_key, whole=None, predicted=None)
            return None if k == 0 else (new, None, fine_boxes, "rest of the round failed")
        val2, bound2, attr2, parents, ev2 = sc
        fshape = ev2._shape(val2.axes)
        fine_boxes += math.prod(fshape)
        # the fine grid's axes in the requested grid's order (the evaluation may order them otherwise)
        perm = [list(val2.axes).index(a) for a in val.axes]
        fine_pt = np.transpose(np.broadcast_to(val2.pt, fshape), perm)
        fine_bound = np.transpose(np.broadcast_to(bound2, fshape), perm)
        fine_w = np.transpose(np.broadcast_to(ev2._wbox(val2.axes), fshape), perm)
        par = [parents.get(names[a], np.arange(shape[j])) for j, a in enumerate(val.axes)]
        coarse, idx = np.broadcast_to(val.pt, shape), (slice(None),) * len(shape)
        if part is not None:
            if part[0] not in parents:
                return None
            j = axis_names.index(part[0])
            kept = np.flatnonzero(part[1])
            par[j] = np.searchsorted(kept, par[j])
            coarse = np.take(coarse, kept, axis=j)
            idx = (slice(None),) * j + (kept,)
        nested = subcells.nested_bound(coarse, fine_pt, fine_bound, fine_w, par)
        new[idx] = np.minimum(new[idx], nested)
        for key, v in attr2.items():
            attr_sum[key] = attr_sum.get(key, 0.0) + v
        if k == 0 and probe is not None:
            in_probe, after = float(np.sum(box[idx])), float(np.sum(new[idx]))
            predicted = None
            if math.isfinite(in_probe):
                rate = (in_probe - after) / in_probe if in_probe > 0 else 0.0
                predicted = total - (in_probe - after) - rate * (total - in_probe)
            if memo is not None:
                memo.update(plan=plan_key, probe=(new.copy(), dict(attr_sum), fine_boxes, idx), predicted=predicted)
            early = after_probe(predicted)
            if early is not None:
                return early
    if whole and memo is not None:  # the round's own bound is what a probe would have extrapolated
        memo.update(whole_plan=plan_key, whole=(new.copy(), dict(attr_sum), fine_boxes, ""))
        memo["predicted"] = float(np.sum(new))
    return new, attr_sum, fine_boxes, ""


def _probe_stop(probe: tuple[str, np.ndarray], total: float, predicted: float, ceiling: float) -> str:
    """Why a round stops after its probe (``predicted``: the cellwise bound it extrapolates), or ``""``."""
    from opgraph.dcg import subcells

    if total - predicted < subcells.MIN_GAIN * total:
        return (
            f"probe ({probe[0]}, {int(np.sum(probe[1]))} cells): extrapolated gain {1 - predicted / total:.1%} "
            "< MIN_GAIN"
        )
    if predicted >= ceiling:
        return f"probe ({probe[0]}): extrapolated bound above the other bounds"
    return ""


def _subcell_tails(
    ev: Evaluator,
    sub: Graph,
    out: int,
    val: Val,
    box_bound: np.ndarray,
    attr: Terms,
    terms: dict[str, float],
    tails: dict[str, int],
    cap: int,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    rules: dict[str, Any],
    ceiling: float = math.inf,
) -> tuple[np.ndarray, Terms, dict[str, Any]] | None:
    """The sub-cell bound on the tail boxes of one unbounded input only (its other cells left out of the fine grid).

    The fine grid is the requested one with that input's axis replaced by the sub-cells of its tail cells (a
    partial axis, like a chunk's slab), so it costs ``tail sub-cells / atoms`` of the requested evaluation; boxes
    outside the tails keep their bound.
    """
    from opgraph.dcg import subcells

    t0 = time.process_time()
    cand = [n for n in terms if tails.get(n, 0) and terms[n] > 0]
    if not cand:
        return None
    name = max(cand, key=lambda n: terms[n])
    q = quantized[name]
    only = ~(np.isfinite(q.lo) & np.isfinite(q.hi))
    n_fine = int(np.sum(only)) * (1 + subcells.TAIL_PIECES)
    shape = ev._shape(val.axes)
    if math.prod(shape) // q.atoms.size * n_fine > cap:
        return None
    axis_id = next(n.id for n in sub.nodes if n.op == "input" and n.attrs["name"] == name)
    if axis_id not in val.axes:
        return None
    j = val.axes.index(axis_id)
    new = np.array(np.broadcast_to(box_bound, shape), dtype=float)
    total = float(np.sum(new))
    # Probe: the tail cell carrying the most bound first; the other tail cells only where the gain extrapolated
    # from it (same relative gain on their boxes) reaches MIN_GAIN of the bound and gets it below ``ceiling``.
    kept_all = np.flatnonzero(only)
    with np.errstate(invalid="ignore"):
        share = np.sum(new, axis=tuple(i for i in range(new.ndim) if i != j))[kept_all]
    first = kept_all[int(np.argmax(np.where(np.isnan(share), np.inf, share)))]
    parts = [np.array([first])] + ([kept_all[kept_all != first]] if kept_all.size > 1 else [])
    fine_boxes, stop = 0, ""
    for k, kept in enumerate(parts):
        mask = np.zeros_like(only)
        mask[kept] = True
        s = subcells.split(dists.get(name), q, 1, mask)  # type: ignore[arg-type]
        if s is None:
            return None
        fine_q = {**quantized, name: s[0]}
        ev2 = Evaluator(sub, out, fine_q, labels, set(), ev.compress_atoms, dists)
        ev2.cell_only = ev2.cell_only or costguards.fine_cell_only(sub)  # only its cellwise bound is read
        try:
            val2, bound2, _ = ev2.run(rules)
        except DistError as exc:
            log.warning("sub-cell bound skipped at %s: %s", sub.nodes[out].where, exc)
            return None
        if val2.axes != val.axes:
            return None
        par = [np.arange(shape[i]) if i != j else np.searchsorted(kept, s[1]) for i in range(len(shape))]
        coarse = np.take(np.broadcast_to(val.pt, shape), kept, axis=j)
        f2 = ev2._shape(val2.axes)
        fine_boxes += int(math.prod(f2))
        nested = subcells.nested_bound(coarse, val2.pt, np.broadcast_to(bound2, f2), ev2._wbox(val2.axes), par)
        sl = (slice(None),) * j + (kept,)
        before = float(np.sum(new[sl]))
        new[sl] = np.minimum(new[sl], nested)
        if k == 0 and len(parts) > 1 and math.isfinite(before) and math.isfinite(total) and before > 0:
            gain = before - float(np.sum(new[sl]))
            rest = float(np.sum(new[(slice(None),) * j + (parts[1],)]))
            predicted = total - gain - gain / before * rest
            if total - predicted < subcells.MIN_GAIN * total:
                stop = f"probe ({name}, 1 tail cell): extrapolated gain {1 - predicted / total:.1%} < MIN_GAIN"
            elif predicted >= ceiling:
                stop = f"probe ({name}, 1 tail cell): extrapolated bound above the other bounds"
            if stop:
                break
    new_total = float(np.sum(new))
    if not new_total < total:
        return None
    info: dict[str, Any] = {
        "splits": {name: "tails"},
        "fine_boxes": fine_boxes,
        "bound_before": total,
        "bound_after": new_total,
        "cpu_seconds": time.process_time() - t0,
    }
    if stop:
        info["stopped"] = stop
    return (
        new,
        {k: v * new_total / total for k, v in attr.items()} if math.isfinite(total) else {"sub-cells": new_total},
        info,
    )


def _subcell_round(
    ev: Evaluator,
    sub: Graph,
    out: int,
    plan: dict[str, int],
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    rules: dict[str, Any],
    only: tuple[str, np.ndarray] | None = None,
) -> tuple[Val, np.ndarray, Terms, dict[str, np.ndarray], Evaluator] | None:
    """One evaluation on the nested sub-cells of ``plan`` (value, per-box bound, attribution, parents, evaluator).

    ``only`` (an input name of ``plan`` and a mask of its cells) keeps only those cells' sub-cells on that axis.
    """
    from opgraph.dcg import subcells

    fine_q = dict(quantized)
    parents: dict[str, np.ndarray] = {}
    for name, p in plan.items():
        mask = only[1] if only is not None and only[0] == name else None
        s = subcells.split(dists.get(name), quantized[name], p, mask)  # type: ignore[arg-type]
        if s is not None:
            fine_q[name], parents[name] = s
    if not parents:
        return None
    ev2 = Evaluator(sub, out, fine_q, labels, set(), ev.compress_atoms, dists)
    ev2.cell_only = ev2.cell_only or costguards.fine_cell_only(sub)  # only its cellwise bound is read
    try:
        val2, bound2, attr2 = ev2.run(rules)
    except DistError as exc:  # an optional tightening: the coarse bound stands
        log.warning("sub-cell bound skipped at %s: %s", sub.nodes[out].where, exc)
        return None
    return val2, bound2, attr2, parents, ev2


def _hint_suffix(graph: Graph, dists: dict[str, Distribution]) -> str:
    """``"; <hint>"`` when the failure comes from negligible input tails (:func:`.truncation.domain_hint`), else ``""``."""
    hint = domain_hint(graph, dists)
    return f"; {hint}" if hint else ""


def sample_inputs(dists: Mapping[str, Distribution], u: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Input values at the points ``u`` of the unit cube (column ``k`` for ``names[k]``): each law's quantile."""
    out = {}
    for k, name in enumerate(names):
        d = dists[name]
        q = np.clip(u[:, k], 1e-300, 1 - 2**-53)
        if hasattr(d, "ppf"):
            out[name] = np.asarray(d.ppf(q), dtype=float)
        else:
            c = np.cumsum(d.probs)  # type: ignore[attr-defined]
            out[name] = d.values[np.minimum(np.searchsorted(c, q, side="left"), c.size - 1)]  # type: ignore[attr-defined]
    return out


def run_points(graph: Graph, inputs: dict[str, np.ndarray], rules: dict[str, Any]) -> np.ndarray:
    """Evaluate a single-output graph pointwise on arrays of input values (vectorised; NumPy warnings silenced).

    Args:
        graph: The graph (one output).
        inputs: An array of values per input name.
        rules: NumPy implementation of every op, ``rules[op](node, *values)`` (:func:`opgraph.graph.numpy_rules`).
    """
    table = {**rules, "const": lambda n: np.asarray(n.attrs["value"], dtype=float)}
    with np.errstate(all="ignore"):
        (out,) = interpret(graph, inputs, table)
    return np.asarray(out, dtype=float)


def qmc_spread_estimate(reps: Sequence[np.ndarray], block: int = 2**20) -> float:
    """Statistical estimate of W1(exact law, pooled law of ``reps``) from the spread between the replicates.

    Each replicate is an independently scrambled (unbiased) Sobol sample, so at every ``t`` the pooled CDF is the
    mean of ``R`` independent estimates ``F_r(t)`` of ``F(t)``; its expected absolute error is about
    ``sqrt(2/pi) * s(t) / sqrt(R)`` with ``s(t)`` the standard deviation between the ``F_r(t)`` (normal
    approximation). Integrating over ``t`` estimates ``E W1 = E ∫ |F_pooled - F| dt``. Not a bound.

    Args:
        reps: ``R >= 2`` arrays of output values (one per scramble, equal sizes).
        block: Pooled points handled at a time (bounds the memory at ``8 * R * block`` bytes).

    Returns:
        The estimate (units of the output).
    """
    r = len(reps)
    srt = [np.sort(np.asarray(x, dtype=float)) for x in reps]
    pooled = np.sort(np.concatenate(srt))
    total = 0.0
    for start in range(0, pooled.size - 1, block):
        t = pooled[start : start + block + 1]
        f = np.stack([np.searchsorted(x, t[:-1], side="right") / x.size for x in srt])
        s = f.std(axis=0, ddof=1)
        total += float(s @ np.diff(t))
    return math.sqrt(2.0 / math.pi) * total / math.sqrt(r)


def evaluate_qmc(
    graph: Graph,
    output: int,
    dists: dict[str, Distribution],
    *,
    n_points: int,
    seed: int,
    rules: dict[str, Any],
    replicates: int = 8,
    target_w1: float | None = None,
    max_points: int = 2**23,
    max_seconds: float = 60.0,
) -> Evaluation:
    """Randomised-QMC fallback: ``replicates`` independently scrambled Sobol sets; ``certified=False``.

    Without ``target_w1`` it draws about ``n_points`` points in all. With ``target_w1`` the sample is sized to it:
    each replicate starts at ``2**10`` points (or fewer when ``n_points`` is smaller) and is extended along its
    own Sobol sequence (earlier points are kept) until the spread estimate (:func:`qmc_spread_estimate`) is
    ``<= target_w1``, the next size would exceed ``max_points`` points in all, or its predicted time would exceed
    ``max_seconds`` (then ``info["target_met"]`` is False and ``info["qmc_stop"]`` says which). The estimate is a
    statistical estimate of the W1 error, never a bound: ``w1_bound`` stays ``inf``.

    Args:
        graph: The restricted graph of one output.
        output: Its output node id.
        dists: Exact law per input name.
        n_points: Points in all without ``target_w1``.
        seed: Seed of the scrambles.
        rules: NumPy implementation of every op.
        replicates: Independent scrambles (>= 2).
        target_w1: W1 the estimate should reach (output units), or ``None``.
        max_points: Largest sample (points, all replicates together) under ``target_w1``.
        max_seconds: Largest time (s) the sampling may take under ``target_w1``.
    """
    from scipy.stats import qmc

    t0 = time.perf_counter()
    names = sorted({n.attrs["name"] for n in graph.nodes if n.op == "input"})
    replicates = max(2, int(replicates))
    rng = np.random.default_rng(seed)
    engines = [qmc.Sobol(d=len(names), scramble=True, seed=rng) for _ in range(replicates)]
    reps: list[np.ndarray] = [np.empty(0) for _ in range(replicates)]

    def draw(m: int) -> None:
        """Extend every replicate to ``2**m`` points."""
        for k, eng in enumerate(engines):
            have = reps[k].size
            u = eng.random((1 << m) - have)
            vals = run_points(graph, sample_inputs(dists, u, names), rules)
            if not np.all(np.isfinite(vals)):
                raise DistError(
                    f"{graph.nodes[output].where}: the function gives nan or inf on part of its inputs' support"
                    + _hint_suffix(graph, dists)
                )
            reps[k] = np.concatenate([reps[k], vals])

    m_fixed = max(1, int(round(math.log2(max(n_points // replicates, 2)))))
    rounds: list[dict[str, float]] = []
    stop = "fixed size"
    if target_w1 is None:
        draw(m_fixed)
        est = qmc_spread_estimate(reps)
        rounds.append({"points": replicates << m_fixed, "w1_estimate": est})
    else:
        m_cap = max(1, int(math.log2(max(max_points // replicates, 2))))
        m = min(10, m_fixed, m_cap)
        while True:
            t_round = time.perf_counter()
            before = reps[0].size
            draw(m)
            est = qmc_spread_estimate(reps)
            rounds.append({"points": replicates << m, "w1_estimate": est})
            if est <= target_w1:
                stop = "target reached"
                break
            # Next size from the fitted rate est ~ n**-a (a from the last two rounds, in [1/2, 1]; 1/2 at first).
            a = 0.5
            if len(rounds) > 1 and rounds[-2]["w1_estimate"] > est > 0:
                a = math.log(rounds[-2]["w1_estimate"] / est) / math.log(rounds[-1]["points"] / rounds[-2]["points"])
                a = min(max(a, 0.5), 1.0)
            grow = max(1, min(4, math.ceil(math.log2((est / target_w1) ** (1.0 / a)))))
            m_next = min(m + grow, m_cap)
            if m_next <= m:
                stop = f"max_points={max_points}"
                break
            per_point = (time.perf_counter() - t_round) / max(1, replicates * ((1 << m) - before))
            if time.perf_counter() - t0 + per_point * replicates * ((1 << m_next) - (1 << m)) > max_seconds:
                stop = f"max_seconds={max_seconds:g}"
                break
            m = m_next
    pooled = np.concatenate(reps)
    ones = np.ones(pooled.size)
    atoms, weights = merge_duplicates(pooled, ones / pooled.size)
    how = (
        f"spread of {replicates} independently scrambled Sobol replicates: sqrt(2/pi) * integral over t of the "
        f"std of their CDFs / sqrt({replicates}); a statistical estimate, not a bound"
    )
    info: dict[str, Any] = {
        "method": "qmc",
        "points": int(pooled.size),
        "replicates": replicates,
        "w1_estimate_method": how,
        "qmc_rounds": rounds,
        "qmc_stop": stop,
        "seconds": time.perf_counter() - t0,
    }
    sized = "a fixed sample" if target_w1 is None else f"a sample sized to target_w1={target_w1:.3g} ({stop})"
    warnings.warn(
        "the joint grid exceeds max_joint and no node separates its inputs, so the result comes from randomised "
        f"quasi-Monte Carlo ({pooled.size} points, {sized}): certified=False, w1_estimate={est:.3g} is a "
        f"statistical estimate from the spread of {replicates} scrambles, not a bound; raise max_joint or lower "
        "atoms to get a certified result",
        UserWarning,
        stacklevel=3,
    )
    return Evaluation(atoms, weights, math.inf, {}, False, (float(atoms[0]), float(atoms[-1])), info, est)
