"""Chunked evaluation: a joint grid larger than memory, in slabs, on any :mod:`opgraph.parallel` executor.

What a chunk is. The joint grid of an output is split along one or more *input* axes (the outermost axes of the
grid: bounded inputs first, then by node id, as the engine orders axes) into slabs of consecutive cells. A chunk is
the full grid restricted to one slab per split axis: the engine (:class:`opgraph.dcg.engine.Evaluator`) runs on it
with the split inputs' axes cut to their slabs (:meth:`Axis.slab`), so every per-cell quantity (values, masses,
interval enclosures, derivative enclosures, per-cell bounds) is the one the full grid has at that cell.

Why it is exact. The engine's per-cell arrays are computed cell by cell; what is not is a *reduction* over the
grid: a node's value range, ``E|V|``, the attribution of the cellwise bound, the per-box sums of the second-order
(law-level) candidates. Every such reduction goes through :meth:`Evaluator._glob`, keyed by the node and the call
site. Chunks are evaluated in passes: the first records each chunk's local reductions; they are combined (sums
add, ranges take min / max; a reduction over a grid that does not contain a split axis is the same in every chunk
and taken once) and the next pass replaces every local reduction by the global one. Branches of the engine that
depend on a global value (a range containing 0) may reach reductions the first pass did not see; passes repeat
until none is new (two passes in every graph of the tests). The final pass therefore computes every scalar (the
path bound, the law-level and second-order bounds, the value ranges) from the same global reductions as the
unchunked run, and the per-cell arrays are the same: the cellwise bound is the sum of the chunks' sums, the
output atoms are the chunks' atoms merged, and the output cells (:class:`GridCells`) are the chunks' cells placed in
the full grid. Results agree with the unchunked evaluation up to the order of floating-point summation (1e-15
relative). Compressions and grid-free max/min laws sort or combine the *whole* joint law of their node, so an
input that feeds one is never split (another input is, or the grid is not chunked).

Memory. The peak of a chunked evaluation is ``BYTES_PER_ATOM * (atoms of all inputs) + BYTES_PER_GRID_ELEMENT
(k) * (largest node grid of one chunk) + RESULT_BYTES_PER_ELEMENT * (output grid)``: the engine's arrays of one
chunk at a time, plus the result itself (its atoms and weights, and the output cells of the CDF band, kept for the
whole grid as the unchunked result keeps them). Constants were measured with tracemalloc (see the test
``tests/dcg/test_chunks.py`` and docs/dcg.md, "Scale").
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from opgraph.dcg import exactlaw, switches
from opgraph.dcg.band import GridCells
from opgraph.dcg.distributions import Distribution, Quantized
from opgraph.dcg.engine import (
    NODE_PROGRESS,
    Evaluation,
    Evaluator,
    _cell_enclosure,
    _cellwise_or_path,
    _grid_sizes,
    _hint_suffix,
    _taylor_boxes,
    _total,
    evaluate_output,
    extreme_nodes,
    plan_compression,
    restrict,
)
from opgraph.dcg.errors import DistError, UnboundedWarning
from opgraph.dcg.regroup import merge_duplicates
from opgraph.graph import Graph

log = logging.getLogger(__name__)

#: Peak bytes per input atom (quantized laws and their per-cell arrays), as :mod:`opgraph.dcg.api` measures.
BYTES_PER_ATOM = 320
#: Peak bytes of the result per element of the full output grid (atoms, weights, cell lower / upper ends, and the
#: temporaries of merging the chunks' atoms).
RESULT_BYTES_PER_ELEMENT = 64
#: Evaluations whose largest grid has more elements than this show a progress bar over their chunks by default
#: (about a second of work per 10**7 elements on one core).
PROGRESS_ELEMENTS = 2 * 10**7


def bytes_per_grid_element(k: int) -> int:
    """Peak engine bytes per element of the largest node grid, for a grid of ``k`` axes.

    A node keeps its values, ``k + 1`` prefix enclosures (two arrays each, the last on the full grid) and ``k``
    derivative enclosures; the bound adds a few full-grid temporaries. Measured with tracemalloc on sums and
    products of 2-4 inputs (tests/dcg/test_chunks.py): 150-420 bytes; this is an upper envelope.
    """
    return 8 * (22 + 2 * max(k, 1))


@dataclass(frozen=True)
class ChunkPlan:
    """How an output's grid is split.

    Attributes:
        axes: Input node ids (of the restricted graph) that are split, outermost first.
        slabs: One tuple of slices per chunk (one slice per split axis).
        peak_bytes: Estimated peak memory of the chunked evaluation.
        unchunked_bytes: Estimated peak memory of the same evaluation in one piece.
        grid: Elements of the largest node grid (unchunked).
    """

    axes: tuple[int, ...]
    slabs: tuple[tuple[slice, ...], ...]
    peak_bytes: int
    unchunked_bytes: int
    grid: int


def _estimate(
    sub: Graph, sizes: dict[int, int], plan: set[int], compress_atoms: int, extremes: set[int], out: int
) -> tuple[int, int, int]:
    """(engine bytes, largest node grid, output grid) for the given input sizes."""
    grids = _grid_sizes(sub, sizes, plan, compress_atoms, extremes)
    big = max(range(len(grids)), key=lambda i: grids[i])
    k = _axis_count(sub, big, plan)
    engine = BYTES_PER_ATOM * sum(sizes.values()) + bytes_per_grid_element(k) * int(grids[big])
    return engine, int(grids[big]), int(grids[out])


def _axis_count(sub: Graph, node: int, plan: set[int]) -> int:
    """Axes of a node's grid (inputs and compressed nodes it depends on, not through a compressed node)."""
    seen: set[int] = set()
    stack = [node]
    count = 0
    while stack:
        i = stack.pop()
        if i in seen:
            continue
        seen.add(i)
        n = sub.nodes[i]
        if n.op == "input" or (i in plan and i != node):
            count += 1
            continue
        stack.extend(n.inputs)
    return count


def plan_chunks(
    sub: Graph,
    out: int,
    quantized: Mapping[str, Quantized],
    plan: set[int],
    compress_atoms: int,
    max_memory: int,
) -> ChunkPlan:
    """Split the grid of ``out`` so that the estimated peak stays within ``max_memory`` bytes.

    Raises:
        DistError: the grid cannot fit even in chunks (the message gives the bytes needed and the limit).
    """
    sizes = {i: quantized[n.attrs["name"]].atoms.size for i, n in enumerate(sub.nodes) if n.op == "input"}
    extremes = extreme_nodes(sub, out)
    engine, grid, out_grid = _estimate(sub, sizes, plan, compress_atoms, extremes, out)
    result = RESULT_BYTES_PER_ELEMENT * out_grid
    whole = engine + result
    if whole <= max_memory:
        return ChunkPlan((), ((),), whole, whole, grid)
    # Inputs that feed a compression or a grid-free max / min are never split (those need their whole law).
    blocked: set[int] = set()
    for c in plan | extremes:
        blocked |= sub.ancestors(c) | {c}
    axes = sorted(
        (i for i in sizes if i not in blocked and sizes[i] > 1),
        key=lambda i: (0 if quantized[sub.nodes[i].attrs["name"]].bounded else 1, i),
    )
    lengths: dict[int, int] = {}
    need = whole
    for a in axes:
        cur = dict(sizes)
        cur.update(lengths)

        def peak(length: int, cur: dict[int, int] = cur, a: int = a) -> int:
            cur[a] = length
            return _estimate(sub, cur, plan, compress_atoms, extremes, out)[0] + result

        lo, hi = 1, sizes[a]
        if peak(1) > max_memory:
            lengths[a] = 1
            need = peak(1)
            continue
        while lo < hi:  # the longest slab that fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if peak(mid) <= max_memory else (lo, mid - 1)
        lengths[a] = lo
        need = peak(lo)
        break
    else:
        raise DistError(
            f"max_memory={max_memory}: the grid of {sub.nodes[out].where} ({grid} elements) needs about {need} bytes "
            f"even in the smallest chunks ({result} of them for the result itself, "
            f"{RESULT_BYTES_PER_ELEMENT} per output cell), more than the limit of {max_memory} bytes; "
            "raise max_memory, or lower atoms / max_joint"
        )
    split = tuple(lengths)
    ranges = [[slice(s, min(s + lengths[a], sizes[a])) for s in range(0, sizes[a], lengths[a])] for a in split]
    slabs: list[tuple[slice, ...]] = [()]
    for r in ranges:
        slabs = [(*prev, s) for prev in slabs for s in r]
    return ChunkPlan(split, tuple(slabs), need, whole, grid)


# ----------------------------------------------------------------------------------------------------------------
# One chunk (a top-level function of (item, seed), as opgraph.parallel.map_tasks runs it)
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class _Job:
    graph: Graph
    out: int
    quantized: dict[str, Quantized]
    labels: dict[str, str]
    dists: dict[str, Distribution]
    plan: set[int]
    compress_atoms: int
    split: tuple[int, ...]
    #: The caller's engine switches (:mod:`opgraph.dcg.switches`: a ContextVar does not travel to process / Dask
    #: workers).
    switches: dict[str, bool] = field(default_factory=dict)


@dataclass
class _ChunkOut:
    recorded: dict[tuple[Any, ...], tuple[bool, Any]]
    atoms: np.ndarray | None = None
    weights: np.ndarray | None = None
    cell_sum: float = 0.0
    attr: dict[str, float] | None = None
    val: Any = None
    shape: tuple[int, ...] = ()
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    compressions: list[dict[str, Any]] | None = None
    extremes: list[dict[str, Any]] | None = None
    cell_only: bool = False
    cell_weights: tuple[np.ndarray, ...] = ()
    cell_labels: tuple[str, ...] = ()


def _run_chunk(item: tuple[_Job, tuple[slice, ...], dict[tuple[Any, ...], Any], bool], seed: int) -> _ChunkOut:
    """Evaluate one chunk; ``known`` holds the global reductions found so far, ``full`` asks for the values."""
    job, slab, known, full = item
    del seed  # the grid evaluation is deterministic
    token = NODE_PROGRESS.set(False)  # chunks have their own bar
    try:
        with switches.scope(job.switches):
            return _run_chunk_here(job, slab, known, full)
    finally:
        NODE_PROGRESS.reset(token)


def _run_chunk_here(job: _Job, slab: tuple[slice, ...], known: dict[tuple[Any, ...], Any], full: bool) -> _ChunkOut:
    """:func:`_run_chunk` with the caller's engine switches set in this worker."""
    from opgraph.dcg.api import _rules

    ev = Evaluator(job.graph, job.out, job.quantized, job.labels, job.plan, job.compress_atoms, job.dists)
    ev.slabs = dict(zip(job.split, slab, strict=True))
    recorded: dict[tuple[Any, ...], tuple[bool, Any]] = {}
    split = set(job.split)

    def reducer(key: tuple[Any, ...], axes: Sequence[int], value: Any) -> Any:
        recorded[key] = (bool(split & set(axes)), value)
        return known.get(key, value)

    ev.reducer = reducer
    val, box_bound, attr = ev.run(_rules())
    if not full:
        return _ChunkOut(recorded)
    # The Taylor bound per box, as on the whole grid (the terms are rescaled in _assemble).
    box_bound = _taylor_boxes(ev, job.graph, val, np.asarray(box_bound), attr, chunk=True)[0]
    shape = ev._shape(val.axes)
    pt = np.broadcast_to(val.pt, shape).reshape(-1)
    w = ev._wbox(val.axes).reshape(-1)
    atoms, weights = merge_duplicates(pt, w)
    composed = any(job.quantized[n.attrs["name"]].upstream_w1 > 0 for n in ev.nodes if n.op == "input")
    lo = hi = None
    if not composed:  # as engine._output_cells: no band when an input is a previous result
        lo, hi = (np.ascontiguousarray(np.broadcast_to(x, shape)) for x in _cell_enclosure(ev, val))
    # The output value's per-cell arrays are not needed any more: keep its scalars only.
    val.pt, val.box, val.der = np.zeros(()), [], {}
    return _ChunkOut(
        recorded,
        atoms,
        weights,
        float(np.sum(box_bound)),
        attr,
        val,
        shape,
        lo,
        hi,
        ev.compressions,
        ev.extremes,
        ev.cell_only,
        tuple(ev.axes[a].weights for a in val.axes),
        tuple(ev.axes[a].label for a in val.axes),
    )


def _combine(outs: Sequence[_ChunkOut]) -> dict[tuple[Any, ...], Any]:
    """Global reductions from the chunks' local ones (sums add; ``"range"`` sites take min / max)."""
    glob: dict[tuple[Any, ...], Any] = {}
    keys: dict[tuple[Any, ...], None] = {}
    for o in outs:
        keys.update(dict.fromkeys(o.recorded))
    for key in keys:
        vals = [o.recorded[key] for o in outs if key in o.recorded]
        if not vals[0][0]:
            glob[key] = vals[0][1]  # the same in every chunk (its grid has no split axis)
            continue
        parts = [v for _, v in vals]
        if key[1] == "range":
            glob[key] = (min(p[0] for p in parts), max(p[1] for p in parts))
        elif isinstance(parts[0], dict):
            total: dict[str, float] = {}
            for p in parts:
                for lab, x in p.items():
                    total[lab] = total.get(lab, 0.0) + x
            glob[key] = total
        elif isinstance(parts[0], tuple):
            glob[key] = tuple(float(sum(col)) for col in zip(*parts, strict=True))
        else:
            glob[key] = float(sum(parts))
    return glob


# ----------------------------------------------------------------------------------------------------------------
# The entry point
# ----------------------------------------------------------------------------------------------------------------
def evaluate_output_chunked(
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
    max_memory: int | None = None,
    executor: Any = "serial",
    progress: bool | None = None,
    slabs: ChunkPlan | None = None,
) -> Evaluation:
    """:func:`opgraph.dcg.engine.evaluate_output` within ``max_memory`` bytes, chunks on ``executor``.

    Args:
        graph: The prepared graph (as for :func:`~opgraph.dcg.engine.evaluate_output`, like the next ten).
        output: The output's node id.
        quantized: Quantized law per input name.
        labels: Label per input name.
        dists: Exact law per input name.
        max_joint: Largest joint grid (elements).
        compress_atoms: Atoms after each compression.
        qmc_points: Points of the QMC fallback.
        seed: Seed of the QMC fallback.
        rules: NumPy implementation of every op.
        soft_joint: Soft grid limit of the compression plan.
        max_memory: Memory budget (bytes) of the evaluation; ``None`` evaluates in one piece.
        executor: Where the chunks run: ``"serial"``, ``"process"``, ``"dask"``, ``"dask://host:port"`` or an
            :class:`opgraph.parallel.Executor` (results are identical for every executor).
        progress: Show a progress bar over the chunks; ``None``: when the grid is large and stderr a terminal.
        slabs: An explicit split (tests); overrides ``max_memory``.

    Returns:
        The same :class:`Evaluation` as the unchunked run (up to float summation order), with ``info["chunks"]``.

    Raises:
        DistError: the grid cannot fit in ``max_memory`` even in chunks (the bytes needed and the limit).
    """
    token = NODE_PROGRESS.set(progress)
    try:
        return _evaluate(
            graph,
            output,
            quantized,
            labels,
            dists,
            max_joint,
            compress_atoms,
            qmc_points,
            seed,
            rules,
            soft_joint,
            max_memory,
            executor,
            progress,
            slabs,
        )
    finally:
        NODE_PROGRESS.reset(token)


def _evaluate(
    graph: Graph,
    output: int,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    max_joint: int,
    compress_atoms: int,
    qmc_points: int,
    seed: int,
    rules: dict[str, Any],
    soft_joint: int | None,
    max_memory: int | None,
    executor: Any,
    progress: bool | None,
    slabs: ChunkPlan | None,
) -> Evaluation:
    kwargs = {
        "max_joint": max_joint,
        "compress_atoms": compress_atoms,
        "qmc_points": qmc_points,
        "seed": seed,
        "rules": rules,
        "soft_joint": soft_joint,
    }
    if max_memory is None and slabs is None:
        return evaluate_output(graph, output, quantized, labels, dists, **kwargs)  # type: ignore[arg-type]
    sub, out = restrict(graph, output)
    # As evaluate_output does (not under an explicit split: its slabs name the original graph's inputs)
    exl = None if slabs is not None else exactlaw.substitute(sub, out, quantized, labels, dists, compress_atoms)
    if exl is not None:
        args = (max_joint, compress_atoms, qmc_points, seed, rules, soft_joint, max_memory, executor, progress, slabs)
        return exl.annotate(_evaluate(exl.graph, exl.output, exl.quantized, exl.labels, exl.dists, *args))
    sizes = {i: quantized[n.attrs["name"]].atoms.size for i, n in enumerate(sub.nodes) if n.op == "input"}
    plan = (
        None
        if sub.nodes[out].op == "const"
        else plan_compression(sub, out, sizes, max_joint, compress_atoms, soft_joint)
    )
    if plan is None:  # a constant, or the QMC fallback
        return evaluate_output(graph, output, quantized, labels, dists, **kwargs)  # type: ignore[arg-type]
    chunking = slabs if slabs is not None else plan_chunks(sub, out, quantized, plan, compress_atoms, max_memory)  # type: ignore[arg-type]
    if not chunking.axes:
        ev = evaluate_output(graph, output, quantized, labels, dists, **kwargs)  # type: ignore[arg-type]
        ev.info["chunks"] = {"count": 1, "estimated_peak_bytes": chunking.peak_bytes}
        return ev
    return _evaluate_in_chunks(sub, out, quantized, labels, dists, plan, compress_atoms, chunking, executor, progress)


def _evaluate_in_chunks(
    sub: Graph,
    out: int,
    quantized: dict[str, Quantized],
    labels: dict[str, str],
    dists: dict[str, Distribution],
    plan: set[int],
    compress_atoms: int,
    chunking: ChunkPlan,
    executor: Any,
    progress: bool | None,
) -> Evaluation:
    from concurrent.futures import Executor

    from opgraph.parallel import get_executor, map_tasks

    t0 = time.perf_counter()
    job = _Job(sub, out, quantized, labels, dists, plan, compress_atoms, chunking.axes, switches.capture())
    if progress is None:
        progress = chunking.grid > PROGRESS_ELEMENTS and sys.stderr.isatty()
    n = len(chunking.slabs)
    log.info("evaluating %s in %d chunks (split inputs %s)", sub.nodes[out].where, n, chunking.axes)
    own = not isinstance(executor, Executor)
    ex = get_executor(executor) if own else executor
    known: dict[tuple[Any, ...], Any] = {}
    try:
        for npass in range(1, 6):
            items = [(job, s, known, npass > 1) for s in chunking.slabs]
            outs = map_tasks(_run_chunk, items, executor=ex, progress=progress, desc=f"dcg chunks, pass {npass}")
            new = _combine(outs)
            if npass > 1 and set(new) <= set(known):
                break
            known = {**known, **new}
        else:  # pragma: no cover - the reductions reached are finite
            raise DistError(
                f"{sub.nodes[out].where}: the chunked evaluation did not settle; evaluate without max_memory"
            )
    finally:
        if own:
            ex.shutdown(wait=True)
    ev = _assemble(sub, out, quantized, chunking, outs, dists)
    ev.info["seconds"] = time.perf_counter() - t0
    ev.info["chunks"] = {
        "count": n,
        "split_inputs": [sub.nodes[a].attrs["name"] for a in chunking.axes],
        "passes": npass,
        "estimated_peak_bytes": chunking.peak_bytes,
        "estimated_unchunked_bytes": chunking.unchunked_bytes,
    }
    return ev


def _assemble(
    sub: Graph,
    out: int,
    quantized: dict[str, Quantized],
    chunking: ChunkPlan,
    outs: list[_ChunkOut],
    dists: dict[str, Distribution] | None = None,
) -> Evaluation:
    """The Evaluation of the whole grid from its chunks (as :func:`opgraph.dcg.engine.evaluate_output` builds it)."""
    first = outs[0]
    val = first.val
    shapes = [o.shape for o in outs]
    cells = None
    if first.lo is not None:
        # The cells first, freeing each chunk's as it is placed (peak: the full cells plus one chunk's).
        pos = [val.axes.index(a) for a in chunking.axes]
        full = list(first.shape)
        for p, a in zip(pos, chunking.axes, strict=True):
            full[p] = quantized[sub.nodes[a].attrs["name"]].atoms.size
        lo = np.empty(full)
        hi = np.empty(full)
        for o, slab in zip(outs, chunking.slabs, strict=True):
            index = [slice(None)] * len(full)
            for p, s in zip(pos, slab, strict=True):
                index[p] = s
            lo[tuple(index)] = o.lo
            hi[tuple(index)] = o.hi
            o.lo = o.hi = None
        split_w = {a: quantized[sub.nodes[a].attrs["name"]].weights for a in chunking.axes}
        cell_w = tuple(split_w.get(a, w) for a, w in zip(val.axes, first.cell_weights, strict=True))
        cells = GridCells(cell_w, lo, hi, first.cell_labels)
    pts = np.concatenate([o.atoms for o in outs if o.atoms is not None])
    for o in outs:
        o.atoms = None
    ws = np.concatenate([o.weights for o in outs if o.weights is not None])
    for o in outs:
        o.weights = None
    atoms, weights = merge_duplicates(pts, ws)
    del pts, ws
    c_total = float(sum(o.cell_sum for o in outs))
    n_total = math.inf if first.cell_only else _total(val.nb)
    cell_terms = dict(first.attr or {})
    t_total = _total(cell_terms)
    if math.isfinite(t_total) and t_total > c_total > 0:  # boxes lowered by the Taylor bound in the chunks
        cell_terms = {k: v * c_total / t_total for k, v in cell_terms.items()}
    terms, method, bound = _cellwise_or_path(c_total, n_total, cell_terms, val)
    w_total = _total(val.wb) if val.wb is not None else math.inf
    if math.isnan(w_total):
        w_total = math.inf
    if w_total < bound:
        bound, terms, method = w_total, dict(val.wb or {}), "law-level"
    if math.isnan(bound):
        bound = math.inf
    info: dict[str, Any] = {
        "method": "grid",
        "bound_method": method,
        "cellwise_bound": c_total,
        "path_bound": n_total,
        "law_level_bound": w_total,
        "joint_atoms": int(sum(math.prod(shape) for shape in shapes)),
        "compressions": first.compressions,
        "extremes": first.extremes,
    }
    if math.isinf(bound):
        where = val.nb_inf_at or sub.nodes[out].where
        info["unbounded_at"] = where
        warnings.warn(
            f"no finite W1 bound: {where} has an unbounded derivative on its inputs' support; the atoms are still "
            "exact for the quantized inputs. Bounded inputs or a reformulation give a finite bound"
            + _hint_suffix(sub, dists or {}),
            UnboundedWarning,
            stacklevel=4,
        )
    return Evaluation(atoms, weights, float(bound), terms, True, val.gint1, info, cells=cells)
