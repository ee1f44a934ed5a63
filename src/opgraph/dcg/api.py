"""Public entry points: :func:`evaluate`, :func:`evaluate_many` and the lazy-RV path."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from opgraph.dcg import (
    boxlinear,
    budgetalloc,
    candidates,
    costguards,
    exactlaw,
    keepbest,
    logic,
    mixfirst,
    planmemo,
    roundbudget,
    roundcredit,
    subcells,
)
from opgraph.dcg.candidates import Candidate, Kept
from opgraph.dcg.chunks import evaluate_output_chunked
from opgraph.dcg.distributions import QUANTIZERS, Distribution, LogNormal, Quantized, as_distribution, check_atoms
from opgraph.dcg.engine import (
    DEFER_SUBCELLS,
    Evaluation,
    _reuses_inputs,
    evaluate_qmc,
    grid_work,
    plan_compression,
    prepare,
    restrict,
    run_deferred,
)
from opgraph.dcg.errors import AtomsReducedWarning, DistError, TargetNotMetWarning
from opgraph.dcg.refine import COMPRESS, Allocator, split_terms
from opgraph.dcg.result import DistResult
from opgraph.dcg.rv import RandomVariable, RVExpr
from opgraph.dcg.truncation import Truncated, dropped_mass, truncate_inputs
from opgraph.graph import Graph

log = logging.getLogger(__name__)

DEFAULT_MAX_JOINT = 2**20
_PILOT_COMPRESS = 256
#: ``quantizer="auto"`` gives LogNormal inputs the ``geometric`` cells (equal in log x, light tail cells) in
#: programs of at least this many inputs that reuse a value (:func:`_program_quantizers`); one- and two-input
#: programs bound their tails with closed-form envelopes or the law-level product rule.
GEOMETRIC_MIN_INPUTS = 3
_PILOT_JOINT = 2**12
#: A round that shrinks the bound by less than 1 - _SLOW_RATE, with the target more than _MAX_SLOW_ROUNDS such
#: rounds away, stops the refinement (see :func:`_next_round`).
_SLOW_RATE = 0.8
_MAX_SLOW_ROUNDS = 4
#: A round that would only grow the compression size by less than this factor is not run where even a bound
#: shrinking in proportion would miss the target.
_MIN_COMPRESS_GROWTH = 1.5
# Peak bytes per atom of an input and per element of a joint grid, measured with tracemalloc on x*y + x
# (2026-12-05: 296 B per atom with a single 2**20-atom input, 155 B per grid element at 2**20 and 2**22), rounded up.
BYTES_PER_ATOM = 320
BYTES_PER_GRID_ELEMENT = 160
MEMORY_ENV = "OPGRAPH_MAX_MEMORY_GB"
#: Caps of the QMC fallback's sample under ``target_w1`` (points in all; seconds of sampling).
QMC_MAX_POINTS = 2**24
QMC_MAX_SECONDS = 60.0


def memory_limit_bytes() -> int:
    """The memory an evaluation may plan to use: ``$OPGRAPH_MAX_MEMORY_GB``, else half the physical memory.

    Raises:
        DistError: the environment variable is not a positive number.
    """
    import os

    text = os.environ.get(MEMORY_ENV)
    if text is not None:
        try:
            gb = float(text)
        except ValueError:
            gb = float("nan")
        if not gb > 0 or gb == float("inf"):
            raise DistError(f"{MEMORY_ENV}={text!r} must be a number of gigabytes > 0 (for example 8)")
        return int(gb * 1e9)
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 16 * 10**9
    return int(total // 2)


def check_memory(atoms: Mapping[str, int], max_joint: int, refine: bool) -> int:
    """Estimate the peak memory of an evaluation before anything is allocated; refuse one that cannot fit.

    Args:
        atoms: Atoms per input.
        max_joint: Largest joint grid (elements).
        refine: Whether a ``target_w1`` refinement may grow grids up to ``max_joint``.

    Returns:
        The estimate in bytes.

    Raises:
        DistError: the estimate exceeds :func:`memory_limit_bytes`; the message gives both and what to lower.
    """
    joint = 1
    for count in atoms.values():
        joint = min(joint * count, max_joint)
    if refine:
        joint = max_joint
    need = BYTES_PER_ATOM * sum(atoms.values()) + BYTES_PER_GRID_ELEMENT * joint
    limit = memory_limit_bytes()
    if need > limit:
        raise DistError(
            f"atoms={max(atoms.values())}, max_joint={max_joint}: the evaluation needs about {need / 1e9:.3g} GB "
            f"of memory, more than the limit of {limit / 1e9:.3g} GB (half the physical memory, or "
            f"${MEMORY_ENV}); lower --atoms / --max-joint, or give --max-memory to evaluate in chunks"
        )
    return need


_RULES: dict[Any, dict[str, Any]] = {}


def _same(node: Any, x: Any) -> Any:
    return x


def _as_float(node: Any, x: Any) -> Any:
    return np.asarray(x, dtype=float)


#: Point rules for the structural elementwise ops that the core's NumPy table leaves to each system (the interval
#: and growth tables of :mod:`.intervals` / :mod:`.growth` have them): values here are float64 arrays, so a copy,
#: a contiguity change and a dtype conversion leave them as they are.
POINT_RULES: dict[str, Any] = {"copy": _same, "contiguous": _same, "convert": _as_float}


def _rules() -> dict[str, Any]:
    """NumPy implementations by op name, ``rule(node, *values)`` (rebuilt when the op registry changes)."""
    from opgraph.graph import numpy_rules
    from opgraph.graph.ops import OPS

    key = (tuple(OPS), tuple(map(id, OPS.values())))
    if key not in _RULES:
        _RULES.clear()
        _RULES[key] = {**POINT_RULES, **numpy_rules(), **logic.POINT_RULES}
    return _RULES[key]


def _affine_switch(value: bool | None) -> bool:
    """The affine setting an evaluation uses: ``value``, or the caller's :data:`opgraph.dcg.affine.ENABLED`.

    Raises:
        DistError: ``value`` is not ``True``, ``False`` or ``None``.
    """
    from opgraph.dcg import affine

    if value is None:
        return affine.ENABLED.get()
    if not isinstance(value, bool | np.bool_):
        raise DistError(f"affine={value!r} must be True, False or None (None: the current opgraph.dcg.affine.ENABLED)")
    return bool(value)


@contextlib.contextmanager
def _affine_scope(value: bool | None) -> Iterator[None]:
    """Set :data:`opgraph.dcg.affine.ENABLED` to ``value`` for the block (the chunk jobs carry it to workers)."""
    from opgraph.dcg import affine

    token = affine.ENABLED.set(_affine_switch(value))
    try:
        yield
    finally:
        affine.ENABLED.reset(token)


def _input_names(fn: Callable[..., Any], n: int) -> list[str]:
    code = getattr(fn, "__code__", None)
    if code is not None and not inspect.ismethod(fn) and code.co_argcount >= n and not code.co_posonlyargcount:
        # A plain function: its first positional parameter names (what inspect.signature reports, faster).
        params = list(code.co_varnames[:n])
        if len(set(params)) == n:
            return params
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= n and len(set(params[:n])) == n:
        return params[:n]
    return [f"x{k}" for k in range(n)]


def _atoms_for(atoms: int | Mapping[str, int], name: str) -> int:
    if isinstance(atoms, Mapping):
        if name not in atoms:
            raise DistError(f"atoms: no atom count for input {name!r}; give every input one (or one int for all)")
        return check_atoms(atoms[name], f"atoms[{name!r}]")
    return check_atoms(atoms)


def _quantize_all(
    dists: dict[str, Distribution], atoms: dict[str, int], quantizer: str | Mapping[str, str]
) -> tuple[dict[str, Quantized], dict[str, str]]:
    quantized, labels = {}, {}
    for name, d in dists.items():
        method = quantizer.get(name, "auto") if isinstance(quantizer, Mapping) else quantizer
        if method not in QUANTIZERS:
            raise DistError(f"quantizer={method!r} is unknown; use one of {', '.join(QUANTIZERS)}")
        q = d.quantize(atoms[name], method)
        quantized[name] = q
        labels[name] = f"input {name} ({q.method}, {q.atoms.size} atoms)"
    return quantized, labels


def _atoms_made(dists: dict[str, Distribution], quantizer: str | Mapping[str, str]) -> Callable[[str, int], int]:
    """``size(name, count)``: the atoms input ``name``'s quantizer makes when asked for ``count`` (the allocators' size)."""

    def size(name: str, count: int) -> int:
        method = quantizer.get(name, "auto") if isinstance(quantizer, Mapping) else quantizer
        return int(dists[name].quantize(count, method).atoms.size)

    return size


def _program_quantizers(
    graph: Graph, dists: dict[str, Distribution], quantizer: str | Mapping[str, str]
) -> str | Mapping[str, str]:
    """``quantizer`` with ``"auto"`` LogNormal inputs of a multi-input program that reuses values set to geometric.

    (A LogNormal truncated by ``truncate=`` counts: its geometric cells are equal in its normal scores.)

    In a program of :data:`GEOMETRIC_MIN_INPUTS` or more inputs where some value is used more than once (no
    law-level bound composes over it), every box that touches a tail cell is charged with a product-form envelope
    (:mod:`opgraph.dcg.multienv`), of the order of the output's magnitude per unit mass: the geometric cells (equal
    in ``log x``, tail cells of mass 0.05 at 4 atoms, 0.016 at 7) trade that for slightly wider inner cells. Programs
    without reuse (products of LogNormals) keep the mean-split cells, whose smaller input W1 the product rule uses.
    """
    if len(dists) < GEOMETRIC_MIN_INPUTS or not any(_lognormal(d) for d in dists.values()):
        return quantizer
    if not _reuses_inputs(graph.nodes):
        return quantizer
    out = {}
    for name, d in dists.items():
        method = quantizer.get(name, "auto") if isinstance(quantizer, Mapping) else quantizer
        out[name] = "geometric" if method == "auto" and _lognormal(d) else method
    return out


def _lognormal(d: Distribution) -> bool:
    """A LogNormal law, or one truncated by ``truncate=`` (:class:`opgraph.dcg.truncation.Truncated`)."""
    return isinstance(d, LogNormal) or (isinstance(d, Truncated) and isinstance(d.base, LogNormal))


def _evaluate_graph(
    graph: Graph,
    dists: dict[str, Distribution],
    **kw: Any,
) -> list[DistResult]:
    """The grid engine (:func:`_evaluate_graph_grid`), after the disjoint split where a ``target_w1`` output splits.

    The split (:mod:`opgraph.dcg.disjoint`) is tried first; where it meets the target it is the answer, otherwise
    the grid engine runs and the smaller bound of the two is kept. A split with one wide part
    (:mod:`opgraph.dcg.wideleaf`) runs second instead, only where the grid engine missed the target, on the time
    the grid engine left; the smaller bound of the two is kept.
    """
    tree = _split_tree(graph, dists, **kw)
    results: list[DistResult] = []
    if _has_wide_part(tree):
        # one wide part (opgraph.dcg.wideleaf): the grid engine runs first, on the whole budget, and the split on
        # the time it leaves, so a wide part that does worse cannot cost the grid engine's answer its rounds
        # (mixture first is off there: its whole grids would take the time the split's wide part, which gets the
        # mixture on its own grid, needs; the undamped oscillator at 1e-2: 0.061 -> 0.138 std)
        results = _evaluate_graph_grid(graph, dists, mixture_first=False, **kw)
        if len(results) != 1 or results[0].info.get("target_met", False):
            return results
    split = _disjoint_split(graph, dists, tree, **kw)
    if split is not None and split.info["target_met"] and not results:

        def band_cells() -> Any:
            # the band of a grid run at the call's atoms (compressed where it must be) and the band built from the
            # parts' bands (opgraph.dcg.partband): both enclose the exact law, their intersection is kept
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grid = _evaluate_graph_grid(graph, dists, **{**kw, "target_w1": None})[0]
            return _narrower_band(grid, split)

        return [split.with_band_source(band_cells)]
    results = results or _evaluate_graph_grid(graph, dists, **kw)
    if split is not None and len(results) == 1 and split.w1_bound < results[0].w1_bound:
        # the grid run's cells enclose the same exact law: its band, intersected with the parts' band, is this
        # result's band
        info = {**split.info, "grid_engine_bound": results[0].w1_bound}
        grid, parts = results[0], split
        return [dataclasses.replace(split, info=info).with_band_source(lambda: _narrower_band(grid, parts))]
    return results


def _narrower_band(grid: DistResult, split: DistResult) -> Any:
    """The pointwise intersection of a grid run's band and the split's band from its parts (either may be absent)."""
    from opgraph.dcg import disjoint, partband

    try:
        gb = grid.cdf_band()
    except DistError:
        gb = None
    return partband.narrower(gb, disjoint.parts_band(split))


def _split_tree(graph: Graph, dists: dict[str, Distribution], **kw: Any) -> Any:
    """The :mod:`opgraph.dcg.disjoint` decomposition for a ``target_w1`` call whose output splits (else ``None``)."""
    from opgraph.dcg import disjoint

    target = kw.get("target_w1")
    if (
        target is None
        or not disjoint.ENABLED.get()
        or (kw.get("scale") or {}).get("max_memory") is not None
        or isinstance(kw.get("atoms"), Mapping)
        or kw.get("atoms") != 256
        or not (isinstance(target, int | float) and target > 0)
    ):
        return None
    return disjoint.decompose(graph, dists)


def _has_wide_part(tree: Any) -> bool:
    """Whether a split (:func:`_split_tree`) has one wide part (:mod:`opgraph.dcg.wideleaf`): the grid engine runs first."""
    from opgraph.dcg import disjoint, wideleaf

    return tree is not None and any(wideleaf.is_wide(len(lf.inputs), disjoint.MAX_LEAF_INPUTS) for lf in tree.leaves())


def _disjoint_split(graph: Graph, dists: dict[str, Distribution], tree: Any, **kw: Any) -> DistResult | None:
    """The :mod:`opgraph.dcg.disjoint` result for the split ``tree`` (:func:`_split_tree`; ``None``: no split)."""
    from opgraph.dcg import disjoint

    if tree is None:
        return None
    target = kw["target_w1"]
    quant = kw.get("quantizer", "auto")

    def leaf_eval(g: Graph, t: float) -> DistResult:
        names = [str(g.nodes[i].attrs["name"]) for i in g.inputs]
        q = {n: quant[n] for n in names} if isinstance(quant, Mapping) else quant
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            extra: dict[str, Any] = {"target_w1": t, "quantizer": q}
            if len(names) == 1 and kw.get("compress_atoms") is None:
                extra["compress_atoms"] = kw["max_joint"]  # one input: its grid is 1D, never worth compressing
            return _evaluate_graph_grid(g, {n: dists[n] for n in names}, **{**kw, **extra})[0]

    return disjoint.certify(graph, tree, dists, float(target), leaf_eval)


def _evaluate_graph_grid(
    graph: Graph,
    dists: dict[str, Distribution],
    *,
    atoms: int | Mapping[str, int],
    target_w1: float | None,
    quantizer: str | Mapping[str, str],
    max_joint: int,
    compress_atoms: int | None,
    qmc_points: int,
    seed: int,
    balance: bool,
    scale: Mapping[str, Any] | None = None,
    mixture_first: bool = True,
) -> list[DistResult]:
    """The grid engine: ``target_w1`` rounds (or one fixed-atoms grid) with compression, the mixture and the carry.

    ``mixture_first=False`` keeps a ``target_w1`` call from starting on a small whole grid with the mixture
    (:mod:`opgraph.dcg.mixfirst`; the caller's choice where another evaluation needs the time, as the wide-part
    split does); the switch ``mixture_first`` turns it off everywhere.
    """
    if target_w1 is not None and not (isinstance(target_w1, int | float) and target_w1 > 0):
        raise DistError(f"target_w1={target_w1!r} must be a number > 0 (for example 1e-3)")
    from opgraph.dcg import carry

    max_joint = check_atoms(max_joint, "max_joint")
    raw_graph, quantizer_arg = graph, quantizer  # as given: the fixed-atoms N/2 call repeats them (carry)
    budget = (scale or {}).get("max_memory")
    if target_w1 is not None and budget is not None:
        # The refinement grows grids up to max_joint: keep the result of such a grid within half the budget (the
        # other half for one chunk's arrays, see opgraph.dcg.chunks).
        from opgraph.dcg.chunks import RESULT_BYTES_PER_ELEMENT

        max_joint = max(1, min(max_joint, int(budget) // (2 * RESULT_BYTES_PER_ELEMENT)))
    graph = logic.mark_null_ties(prepare(graph, balance=balance), dists)
    quantizer = _program_quantizers(graph, dists, quantizer)
    outputs = list(graph.outputs)
    restricted = [restrict(graph, o) for o in outputs] if target_w1 is not None else []
    rules = _rules()
    names = list(dists)
    pilot = target_w1 is not None and not isinstance(atoms, Mapping) and atoms == 256
    if pilot:
        atoms = _pilot_atoms(dists)
    cur_atoms = {n: _atoms_for(atoms, n) for n in names}
    if compress_atoms is not None:
        base_compress = compress_atoms
    elif target_w1 is not None:
        # The refinement grows the compression size where its term pays (counts never shrink): start small.
        base_compress = _PILOT_COMPRESS
    else:
        base_compress = max(1024, 4 * max(cur_atoms.values()))
    cur_compress = check_atoms(base_compress, "compress_atoms")
    if (scale or {}).get("max_memory") is None:  # with a budget, opgraph.dcg.chunks plans (and refuses) instead
        check_memory(cur_atoms, max_joint, refine=target_w1 is not None)
    if not outputs:
        raise DistError("fn returns nothing; return one value (or a tuple of values) computed from the inputs")
    reduced: dict[str, Any] | None = None
    if target_w1 is None:
        # Fixed atoms: where the requested grid does not fit max_joint, the largest certified grid that fits
        # (fewer atoms per input) comes before the uncertified QMC fallback (more atoms never give a worse answer).
        used, used_compress = _largest_fitting_grid(
            [restrict(graph, o) for o in outputs], dists, cur_atoms, max_joint, compress_atoms, cur_compress
        )
        if used != cur_atoms:
            reduced = {
                "requested": dict(cur_atoms),
                "used": dict(used),
                "max_joint": max_joint,
                "compress_atoms": used_compress,
            }
            warnings.warn(
                f"atoms: the requested grid ({_counts(cur_atoms)}) does not fit max_joint={max_joint} (no node "
                f"separates the shared inputs); evaluated the largest certified grid that fits instead "
                f"({_counts(used)})"
                + (
                    ", and per-input allocations of that budget by sensitivity, keeping the smallest bound "
                    "(info['atoms_reduced'])"
                    if budgetalloc.ENABLED.get() and budgetalloc.FIXED_ATOMS.get()
                    else ""
                )
                + "; raise max_joint (or give max_memory) for the requested atoms",
                AtomsReducedWarning,
                stacklevel=3,
            )
            log.info("atoms reduced from %s to %s to fit max_joint=%d", cur_atoms, used, max_joint)
            cur_atoms, cur_compress = used, used_compress
    shrunk: dict[str, Any] | None = None
    if target_w1 is not None and not _fits(restricted, dists, cur_atoms, max_joint, cur_compress):
        # The first round's grid does not fit: start from fewer atoms per input (allocated by sensitivity, down to
        # 2 per input) and refine while the grids fit; QMC only where not even that fits.
        small = _sensitivity_atoms(restricted, dists, cur_atoms, max_joint, cur_compress)
        shrunk = {"requested": dict(cur_atoms), "used": dict(small) if small is not None else None}
        if small is not None:
            log.info("target_w1: first round shrunk from %s to %s to fit max_joint=%d", cur_atoms, small, max_joint)
            cur_atoms = small
    whole_first: str | None = None
    if target_w1 is not None:
        pole = _compressed_pole(restricted, dists, cur_atoms, max_joint, cur_compress)
        if pole is not None:
            # The first round's compressed nodes reach a pole: that round (and the rounds after it) would give
            # only inf before the whole-grid rescue ran (DampedOsc at 1e-2: 21 s of compressed rounds, then the
            # rescue). The rescue's grid (fixed-atoms compression size) is the first round instead.
            w_atoms, w_comp = _largest_fitting_grid(
                restricted, dists, cur_atoms, max_joint, None, max(1024, 4 * max(cur_atoms.values()))
            )
            if _fits(restricted, dists, w_atoms, max_joint, w_comp) and (
                _compressed_pole(restricted, dists, w_atoms, max_joint, w_comp) is None
            ):
                log.info("target_w1: compressed nodes reach a pole at %s: first round on the whole grid", pole)
                cur_atoms, cur_compress, whole_first = w_atoms, w_comp, pole
    history: list[dict[str, Any]] = []
    allocator = Allocator(target_w1) if target_w1 is not None else None
    best: tuple[float, list[Evaluation], dict[str, Quantized], dict[str, str], int, int] | None = None
    carried_from: dict[int, tuple[list[carry.Answer], int]] = {}  # round -> the earlier best it carried from
    stop = "the refinement stopped"
    work = _work(restricted, dists, max_joint) if target_w1 is not None else None
    long_cap = None
    if work is not None:
        n_long = costguards.long_nodes([g for g, _ in restricted])
        timed = roundbudget.current()  # this call's state (nested calls share it: the disjoint split's leaves)
        if timed is not None:
            timed.start_long_call(n_long if costguards.TIME_MODEL else 0)
        long_cap = costguards.round_work_cap(n_long, timed is not None)
    if long_cap is not None and pilot and shrunk is None and whole_first is None:
        assert work is not None
        cur_atoms = costguards.pilot_counts(names, cur_atoms, lambda c: work({**c, COMPRESS: cur_compress}), long_cap)
    t0 = time.perf_counter()
    # The fixed-atoms allocations' time share (opgraph.dcg.budgetalloc.FIXED_ATOMS_SECONDS) counts this process's CPU
    # seconds where the chunks run here, else wall-clock seconds (as roundbudget does for target_w1 calls).
    fixed_clock = (
        time.process_time if (scale or {}).get("executor", "serial") in ("serial", None) else time.perf_counter
    )
    fixed_started = fixed_clock()
    # Under target_w1 the sub-cell passes are deferred per round (opgraph.dcg.engine.DEFER_SUBCELLS) and run only
    # where the round could reach the target with them, else on the final round (not with max_memory: the chunked
    # path has no pass, and a kept round's arrays would count twice against the budget).
    defer = target_w1 is not None and subcells.ENABLED.get() and (scale or {}).get("max_memory") is None

    def _soft_for(o: Any, quantized: dict[str, Quantized], compress: int) -> int | None:
        """The soft grid limit ``compress**2``, or None on a short one-input output (:func:`keepbest.soft_joint`)."""
        sub, out = restrict(graph, o)
        sizes = {i: quantized[n.attrs["name"]].atoms.size for i, n in enumerate(sub.nodes) if n.op == "input"}
        return keepbest.soft_joint(sub, out, _soft_joint(compress), sizes, max_joint, compress)

    def evaluate_with(o: Any, quantized: dict[str, Quantized], labels: dict[str, str], compress: int) -> Evaluation:
        """Output ``o`` on the grid of ``quantized`` at compression size ``compress`` (soft limit its square)."""
        return evaluate_output_chunked(
            graph,
            o,
            quantized,
            labels,
            dists,
            max_joint=max_joint,
            compress_atoms=compress,
            qmc_points=qmc_points,
            seed=seed,
            rules=rules,
            soft_joint=_soft_for(o, quantized, compress),
            **(scale or {}),
        )

    def evaluate_one(o: Any, quantized: dict[str, Quantized], labels: dict[str, str]) -> Evaluation:
        """Output ``o`` on the grid of ``quantized`` at this round's compression size (read when called)."""
        return evaluate_with(o, quantized, labels, cur_compress)

    # Time budget of a target_w1 call (opgraph.dcg.roundbudget): rounds predicted to end after it are shrunk or
    # not run; affine forms are dropped from later rounds where the first round's probe shows they do not pay.
    tbudget = roundbudget.current() if target_w1 is not None else None
    affine_off, round_affine_off = False, {}
    compress_wanted = cur_compress  # this round's compression size before any raise that keeps its grids whole
    clock = tbudget.clock if tbudget is not None else time.perf_counter
    mix_first = None
    if (
        tbudget is not None
        and long_cap is None
        and whole_first is None
        and (scale or {}).get("max_memory") is None
        and mixture_first
        and mixfirst.ENABLED.get()
        and boxlinear.ENABLED.get()
        and (
            shrunk is not None
            or _round_compresses(restricted, dists, cur_atoms, max_joint, cur_compress, mixfirst.SUM_OPS)
        )
    ):
        # The first round would be compressed (no mixture there) or was shrunk to fit max_joint (one round with the
        # mixture then takes the whole budget): a small whole grid with the mixture first (opgraph.dcg.mixfirst).
        small = mixfirst.counts(mixfirst.input_names(restricted), cur_atoms)
        if small is not None:
            s_comp = max(1024, 4 * max(small.values()))
            # (a grid that compresses nothing has no compressed node that could reach a pole)
            if _fits(restricted, dists, small, max_joint, s_comp) and not _round_compresses(
                restricted, dists, small, max_joint, s_comp
            ):
                log.info("target_w1: first round %s compressed or shrunk: mixture first on %s", cur_atoms, small)
                mix_first = {"requested": dict(cur_atoms), "used": dict(small)}
                cur_atoms, cur_compress = dict(small), s_comp
    first_sized = _size_first_round(
        tbudget, work, long_cap, restricted, dists, cur_atoms, max_joint, cur_compress, quantizer
    )
    if first_sized is not None:
        cur_atoms = dict(first_sized["used"])

    def round_evals(quantized: dict[str, Quantized], labels: dict[str, str]) -> list[Evaluation]:
        """This round's evaluation of every output (the QMC fallback where no grid fits)."""
        evals: list[Evaluation] = []
        for k, o in enumerate(outputs):
            if target_w1 is not None and not _fits(restricted[k : k + 1], dists, cur_atoms, max_joint, cur_compress):
                # No grid fits: the uncertified QMC fallback, its sample sized to target_w1.
                evals.append(_qmc_for_target(*restricted[k], dists, qmc_points, seed, rules, target_w1))
                continue
            if defer:  # the sub-cell passes wait until this round's bounds say whether they can pay
                tok_d = DEFER_SUBCELLS.set(True)
                try:
                    evals.append(evaluate_one(o, quantized, labels))
                finally:
                    DEFER_SUBCELLS.reset(tok_d)
            else:
                evals.append(evaluate_one(o, quantized, labels))
        return evals

    for rnd in range(40):
        t_round = clock()
        quantized, labels = _quantize_all(dists, cur_atoms, quantizer)
        round_affine_off[rnd] = affine_off
        with roundbudget.affine_disabled(affine_off):
            evals = round_evals(quantized, labels)
        plan_evals = list(evals)  # the refinement plans from the bounds before any sub-cell pass
        worst = plan_worst = max(e.w1_bound for e in evals)
        probe = None
        t_eval = clock() - t_round
        if tbudget is not None and rnd == 0 and roundbudget.should_probe(tbudget, t_eval, evals):
            # Does the affine form pay here? The same round without it (cheap: the first round is small).
            t_probe = clock()
            with roundbudget.affine_disabled(True):
                off_evals = round_evals(quantized, labels)
            t_round += clock() - t_probe  # the round's own time (the probe is not part of its cost)
            for e in off_evals:
                e.resume = None
            off_worst = max(e.w1_bound for e in off_evals)
            affine_off = not roundbudget.affine_pays(plan_worst, off_worst)
            probe = {
                "with_affine": plan_worst,
                "without": off_worst,
                "later_rounds_affine": not affine_off,
                "seconds": round(clock() - t_probe, 4),
            }
            log.info("target_w1: affine probe %s", probe)
        passes = "none"
        if defer and target_w1 is not None and any(e.resume is not None for e in evals):
            with roundbudget.affine_disabled(round_affine_off[rnd]):
                evals, passes = _round_passes(evals, target_w1)
            worst = max(e.w1_bound for e in evals)
        if tbudget is not None and work is not None:
            tbudget.record(work({**cur_atoms, COMPRESS: cur_compress}), clock() - t_round)
        history.append({"atoms": dict(cur_atoms), "compress_atoms": cur_compress, "w1_bound": plan_worst})
        if rnd == 0 and whole_first is not None:
            history[-1]["whole_grid_first"] = whole_first
        if rnd == 0 and first_sized is not None:
            history[-1]["first_round_sized"] = first_sized
        if rnd == 0 and mix_first is not None:
            history[-1]["mixture_first"] = mix_first
        if probe is not None:
            history[-1]["affine_probe"] = probe
        if round_affine_off[rnd]:
            history[-1]["affine"] = False
        if tbudget is not None:
            history[-1]["seconds"] = round(clock() - t_round, 4)
        if passes != "none":
            history[-1].update(subcell_passes=passes, w1_bound_after_passes=worst)
        if target_w1 is not None and best is not None and carry.ENABLED.get():
            # bound_k <= bound_best + W1(answer_k, answer_best) (opgraph.dcg.carry): kept where smaller.
            carried_from[rnd] = ([carry.snapshot(b) for b in best[1]], best[5])
            evals = [carry.carry(e, b, f"round {best[5]}") for e, b in zip(evals, carried_from[rnd][0], strict=True)]
            worst = max(e.w1_bound for e in evals)
            if any("carried" in e.info for e in evals):
                history[-1]["w1_bound_carried"] = worst
        if best is None or worst < best[0]:
            # More atoms must never give a worse answer: keep the round with the best bound so far.
            if best is not None:
                for e in best[1]:
                    e.resume = None  # a pass kept for the final round is dropped with its round (frees its grid)
                if tbudget is not None:
                    tbudget.pending_pass = 0.0  # (dropped: no later round is credited with it)
            best = (worst, evals, quantized, labels, cur_compress, rnd)
        else:
            for e in evals:
                e.resume = None
        if tbudget is not None and tbudget.credit > 0:  # granted at the plan or in the round (roundcredit)
            history[-1]["round_credit_s"] = round(tbudget.credit, 3)
            roundcredit.spend(tbudget)
        done = target_w1 is None or worst <= target_w1 or not all(e.certified for e in evals)
        if target_w1 is not None and not all(e.certified for e in evals):
            stop = "no joint grid fits max_joint (no node separates the shared inputs): QMC fallback"
        if not done:

            def cap(c: int, atoms_now: dict[str, int] = cur_atoms) -> int:
                lo, hi = c, max_joint
                if _fits(restricted, dists, atoms_now, max_joint, hi):
                    return hi
                while hi - lo > max(1, lo // 16):  # bisection to within 1/16
                    mid = (lo + hi) // 2
                    lo, hi = (mid, hi) if _fits(restricted, dists, atoms_now, max_joint, mid) else (lo, mid)
                return lo

            new_atoms, new_compress, why = _next_round(
                allocator, plan_evals, labels, quantized, cur_atoms, cur_compress, plan_worst, history, cap, work
            )
            if new_atoms is None:
                done, stop = True, why
                if not math.isfinite(plan_worst):
                    # The round's first-order bound is inf (wide cells reach a pole: long programs); the sub-cell
                    # pass, deferred to the kept round, is what makes it finite, so the allocator had no finite terms.
                    stop = (
                        f"round {rnd}'s bound is inf before its sub-cell pass (wide cells reach a pole; the pass runs "
                        "on the kept round), so the allocator has no finite terms to plan a larger grid from; evaluate "
                        "with fixed atoms for a larger grid"
                    )
            else:
                wanted = dict(new_atoms)
                new_atoms, new_compress = _shrink_to_fit(
                    cur_atoms,
                    cur_compress,
                    new_atoms,
                    min(new_compress, max_joint),
                    lambda a, c: _fits(restricted, dists, a, max_joint, c),
                    {n for n in names if quantized[n].method == "meansplit"},
                )
                if budgetalloc.ENABLED.get() and new_atoms != wanted:
                    # The proposal does not fit: the proportional step never lowers a count, so a round that fills
                    # the budget cannot move it to the inputs with the largest terms. Re-allocate it (counts may
                    # fall) where the model predicts a smaller bound (opgraph.dcg.budgetalloc).
                    moved = _reallocate_round(
                        restricted,
                        dists,
                        quantizer,
                        _input_terms(plan_evals, labels, quantized),
                        allocator,
                        cur_atoms,
                        new_atoms,
                        wanted,
                        max_joint,
                        new_compress,
                        whole=all(not e.info.get("compressions") for e in plan_evals),
                    )
                    if moved is not None:
                        history[-1]["next_round_reallocated"] = {"proportional": dict(new_atoms), "used": moved}
                        new_atoms, wanted = moved, dict(moved)  # the time budget's fill grows no count beyond it
                if tbudget is not None and new_atoms == cur_atoms and new_compress == cur_compress:
                    # The proportional step rounds every input down to this round's power of two: grow the inputs
                    # with the largest terms one doubling at a time instead (opgraph.dcg.roundbudget).
                    new_atoms = roundbudget.fill_by_terms(
                        cur_atoms,
                        cur_atoms,
                        wanted,
                        _input_terms(plan_evals, labels, quantized),
                        lambda a, c=cur_compress: _fits(restricted, dists, a, max_joint, c),
                    )
                if (new_atoms == cur_atoms and new_compress == cur_compress) or not _fits(
                    restricted, dists, new_atoms, max_joint, new_compress
                ):
                    done = True
                    stop = (
                        f"the next round's atoms ({_counts(wanted)}) do not fit max_joint={max_joint} (the memory "
                        "budget) even with compressions"
                    )
                elif (
                    new_atoms == cur_atoms
                    and new_compress < _MIN_COMPRESS_GROWTH * cur_compress
                    and plan_worst * cur_compress / new_compress > target_w1
                ):
                    # Only the compression size would grow, and by little (capped by max_joint): even a bound
                    # shrinking with it in proportion would miss the target, so the round is not worth its cost
                    # (piston at 1e-2: 256 -> 287, a whole 2M-box round for 0.2 %).
                    done = True
                    stop = (
                        f"only the compression size can grow, {cur_compress} -> {new_compress} (capped by "
                        f"max_joint={max_joint}): too little to reach the target"
                    )
                elif long_cap is not None and (work({**new_atoms, COMPRESS: new_compress}) or 0.0) > long_cap:
                    done = True
                    stop = (
                        f"a long program ({max(len(g.nodes) for g, _ in restricted)} nodes): the next round's atoms "
                        f"({_counts(new_atoms)}) exceed the work cap of a target_w1 round "
                        f"(opgraph.dcg.costguards.LONG_ROUND_WORK = {long_cap:.0f} box-nodes); evaluate with fixed "
                        "atoms for a larger grid"
                    )
                else:
                    compress_proposed = new_compress
                    new_atoms, new_compress, why = _budget_step(
                        tbudget,
                        allocator,
                        plan_evals,
                        labels,
                        quantized,
                        cur_atoms,
                        cur_compress,
                        new_atoms,
                        new_compress,
                        wanted,
                        compress_wanted,
                        plan_worst,
                        lambda a, c: _fits(restricted, dists, a, max_joint, c),
                        work,
                    )
                    if new_atoms is None:
                        done, stop = True, why
                    else:
                        compress_wanted = min(new_compress, compress_proposed)
                        cur_atoms, cur_compress = new_atoms, new_compress
        if done:
            assert best is not None
            _, evals, quantized, labels, kept_compress, kept_round = best
            if (
                tbudget is not None
                and kept_round == 0
                and mix_first is not None
                and mixfirst.AGAIN.get()
                and target_w1 is not None
                and best[0] > target_w1
                and all(e.certified for e in evals)
                and tbudget.left() >= mixfirst.AGAIN_MIN_LEFT * history[0].get("seconds", math.inf)
            ):
                # the kept mixture-first round again, its sub-box pass on a larger share of the time left
                # (opgraph.dcg.mixfirst, "Mixture first again"); kept where its bound is smaller
                cur_atoms, cur_compress = dict(history[0]["atoms"]), kept_compress
                t_again = clock()
                # the pass within the seconds left less the round's first time (which included a pass)
                tbudget.pass_share = mixfirst.again_share(tbudget.left(), history[0]["seconds"], roundbudget.SAFETY)
                try:
                    with roundbudget.affine_disabled(round_affine_off.get(0, False)):
                        again = round_evals(quantized, labels)
                finally:
                    tbudget.pass_share = 0.0
                w_again = max(e.w1_bound for e in again)
                kept_again = w_again < best[0] and all(e.certified for e in again)
                for e in again if not kept_again else evals:
                    e.resume = None
                if kept_again:
                    evals = again
                history[0]["again"] = {
                    "w1_bound": w_again,
                    "kept": kept_again,
                    "seconds": round(clock() - t_again, 4),
                }
                log.info("target_w1: mixture-first round again: bound %.3g -> %.3g", best[0], w_again)
            if any(e.resume is not None for e in evals):
                # The passes skipped while the kept round's grid could not reach the target run on it now.
                with roundbudget.affine_disabled(round_affine_off.get(kept_round, False)):
                    evals = [run_deferred(e) for e in evals]
                if kept_round in carried_from:  # the pass starts from the round's own bound: carry again
                    src, src_round = carried_from[kept_round]
                    evals = [carry.carry(e, b, f"round {src_round}") for e, b in zip(evals, src, strict=True)]
                history[kept_round].update(
                    subcell_passes="ran (final round)", w1_bound_after_passes=max(e.w1_bound for e in evals)
                )
            worst = max(e.w1_bound for e in evals)
            if target_w1 is not None and not math.isfinite(worst) and all(e.certified for e in evals):
                # The refinement's small compression size can lose the tails that make a bound finite (a division
                # by a compressed node whose wide cells reach 0): the largest grid that fits with the fixed-atoms
                # compression size (no soft compressions) is certified before any uncertified fallback.
                whole = _whole_grid_rescue(restricted, outputs, dists, quantized, max_joint, quantizer, evaluate_with)
                if whole is not None:
                    evals, quantized, labels, kept_compress, worst = whole
                    history.append(
                        {
                            "atoms": {n: quantized[n].atoms.size for n in names},
                            "compress_atoms": kept_compress,
                            "w1_bound": worst,
                            "whole_grid_rescue": True,
                        }
                    )
                    kept_round = len(history) - 1
                    stop = (
                        "the refinement's grids gave no finite bound; the largest grid that fits max_joint without "
                        "soft compressions did"
                    )
            if shrunk is not None and shrunk["used"] is not None and target_w1 is not None and not math.isfinite(worst):
                # The grids that fit give no finite bound: an estimate sized to target_w1 says more than a coarse
                # grid without one.
                evals = [
                    _qmc_for_target(*restricted[k], dists, qmc_points, seed, rules, target_w1)
                    for k in range(len(outputs))
                ]
                shrunk["infinite_bound"] = True
                worst = math.inf
                stop = "the grids that fit max_joint give no finite bound: QMC fallback"
            met = target_w1 is None or worst <= target_w1
            message = None
            if target_w1 is not None and not met:
                message = _unmet_message(target_w1, evals, labels, quantized, history, kept_round, stop)
                warnings.warn(message, TargetNotMetWarning, stacklevel=3)

            extra: dict[str, Any] = {}  # info entries of every result of this call
            if reduced is not None:
                extra["atoms_reduced"] = reduced
            if shrunk is not None:
                extra["first_round_shrunk"] = shrunk
            fallback = None
            if target_w1 is not None:
                extra.update(target_w1=target_w1, target_met=bool(met), best_bound=float(worst))
                fallback = (
                    f"the grids that fit max_joint={max_joint} (first round shrunk to {_counts(cur_atoms)}) "
                    "give no finite bound"
                    if shrunk is not None and shrunk.get("infinite_bound")
                    else f"no joint grid fits max_joint={max_joint} even at 2 atoms per input (no node "
                    "separates the shared inputs)"
                )
                extra.update(refinement=history, kept_round=kept_round)
                if message is not None:
                    extra["target_unmet"] = message
            results = _finish(evals, quantized, kept_compress, t0, extra, fallback)
            if target_w1 is None:
                # Fixed atoms: the other grids tried beside this one, the smallest certified bound kept
                # (opgraph.dcg.candidates).
                opts = {"quantizer": quantizer_arg, "max_joint": max_joint, "compress_atoms": compress_atoms}
                opts.update(qmc_points=qmc_points, seed=seed, balance=balance, scale=scale)

                def on_grid(
                    q: dict[str, Quantized],
                    lab: dict[str, str],
                    c: int,
                    counts: dict[str, int],
                    extra: dict[str, Any] = extra,
                ) -> Kept:
                    """This call's answer on the grid of ``q`` at compression size ``c`` (``counts`` its atoms)."""
                    made = _finish([evaluate_with(o, q, lab, c) for o in outputs], q, c, t0, extra, None)
                    return Kept(made, q, lab, c, counts, [True] * len(made))

                kept = candidates.best_of(
                    Kept(results, quantized, labels, kept_compress, dict(cur_atoms), [True] * len(results)),
                    [
                        _full_grid_candidate(graph, outputs, dists, rules, reduced, max_joint, quantizer, on_grid),
                        _budget_allocations(
                            [restrict(graph, o) for o in outputs],
                            dists,
                            reduced,
                            max_joint,
                            compress_atoms,
                            quantizer,
                            on_grid,
                            fixed_clock,
                            fixed_started,
                        ),
                        _mixture_smaller_request(raw_graph, graph, dists, atoms, opts),
                        _carry_half(dists, raw_graph, atoms, opts),
                    ],
                )
                results = kept.results
                for r, mine in zip(results, kept.own, strict=True):
                    if mine:  # the call's time, its other grids included
                        r.info["seconds_total"] = time.perf_counter() - t0
            return results
        log.info("refinement round %d: bound %.3g > target %.3g", rnd, worst, target_w1)
    raise DistError("target_w1 refinement did not terminate")  # pragma: no cover


def _finish(
    evals: list[Evaluation],
    quantized: dict[str, Quantized],
    compress: int,
    t0: float,
    extra: dict[str, Any],
    fallback: str | None,
) -> list[DistResult]:
    """A call's results from one evaluation per output on the grid of ``quantized``.

    Args:
        evals: One evaluation per output.
        quantized: The quantized inputs of the grid.
        compress: The grid's compression size (atoms).
        t0: When the call started (``time.perf_counter``, s): ``info["seconds_total"]`` is the time since.
        extra: Info entries of every result (the reduction, the refinement's record).
        fallback: Why no grid fits, where a ``target_w1`` call fell back to QMC (``info["fallback_reason"]``).
    """
    names = list(quantized)
    made: list[DistResult] = []
    for k, e in enumerate(evals):
        info = dict(e.info)
        info.update(
            {
                "atoms_per_input": {n: int(quantized[n].atoms.size) for n in names},
                "quantizers": {n: quantized[n].method for n in names},
                "input_w1": {n: quantized[n].w1 for n in names},
                "compress_atoms": compress,
                "seconds_total": time.perf_counter() - t0,
            }
        )
        info.update(extra)
        if fallback is not None and not e.certified:
            info["fallback_reason"] = (
                f"{fallback}: uncertified QMC estimate, its sample sized to target_w1 ({e.info.get('points')} points)"
            )
        name = f"output {k}" if len(evals) > 1 else "output"
        made.append(
            DistResult(
                e.atoms,
                e.weights,
                e.w1_bound,
                e.bound_terms,
                e.certified,
                e.support,
                info,
                e.w1_estimate,
                name,
                e.cells,
            )
        )
    return made


def _halved(requested: Mapping[str, int]) -> dict[str, int]:
    """Every count halved, never below 2 (a count below 2 is kept)."""
    return {n: k if k < 2 else max(2, k // 2) for n, k in requested.items()}


def _mixture_smaller_request(
    raw_graph: Graph,
    graph: Graph,
    dists: dict[str, Distribution],
    atoms: int | Mapping[str, int],
    opts: dict[str, Any],
) -> Candidate:
    """Fixed atoms, box-linear mixture on: the answer to the halved request, kept per output where smaller.

    Where the requested grid was reduced to fit ``max_joint`` (``info["atoms_reduced"]``) or compressed (neither
    the Taylor pass nor the box-linear mixture runs on a compressed grid), or is too large for a mixture in a call
    without a time budget (:func:`opgraph.dcg.boxlinear.fixed_budget_fits`), or gives its boxes fewer sub-box pieces
    than the halved grid's (:func:`opgraph.dcg.subslope.fewer_pieces`), the same call at half the atoms per
    input (:func:`_halved`, which itself applies this rule) is evaluated too and, per output, the result with the
    smaller bound is kept (``info["smaller_request"]``). So ``bound(2N) <= bound(N)`` wherever the ``2N`` grid is
    reduced or compressed (docs/dcg.md, "More atoms with the mixture on"). Halved requests whose grid is the one
    already evaluated (a reduction to the same cap) are skipped: their answer is this one's. The halved call runs
    under the kept answer's bound as ceiling (:data:`opgraph.dcg.subcells.CEILING`): it builds no mixture that
    cannot go below it, which changes no kept result.
    """
    from opgraph.dcg import boxlinear, subslope, taylor

    names = list(dists)
    max_joint, compress_atoms = int(opts["max_joint"]), opts.get("compress_atoms")

    @functools.cache
    def outputs() -> list[Any]:  # the graph restricted to each output, once for both steps
        return [restrict(graph, o) for o in graph.outputs]

    def wanted(kept: Kept) -> bool:
        if (
            not (boxlinear.ENABLED.get() and taylor.ENABLED.get())
            or len(names) < boxlinear.MIN_AXES
            or (opts.get("scale") or {}).get("max_memory") is not None  # chunked grids build no mixture
            or not all(r.certified for r in kept.results)
        ):
            return False
        return all(costguards.taylor_pays(g) for g, _ in outputs())

    def trials(kept: Kept) -> Iterator[Callable[[], Kept]]:
        restricted = outputs()

        def grid(req: Mapping[str, int]) -> tuple[dict[str, int], int]:
            comp = compress_atoms if compress_atoms is not None else max(1024, 4 * max(req.values()))
            return _largest_fitting_grid(restricted, dists, dict(req), max_joint, compress_atoms, comp)

        requested = {n: _atoms_for(atoms, n) for n in names}
        here, half = grid(requested), _halved(requested)
        shrunk = any(r.info.get("atoms_reduced") or r.info.get("compressions") for r in kept.results)
        sub_ran = any((r.info.get("taylor") or {}).get("sub_slope") for r in kept.results)  # opgraph.dcg.subpieces
        # a whole grid within the fixed budget: halved only where its boxes get fewer sub-box pieces than the halved
        # grid's (opgraph.dcg.subslope.allowance), so that it could certify less than the coarser grid
        if (
            not shrunk
            and boxlinear.fixed_budget_fits(restricted, here[0])
            and not subslope.fewer_pieces(restricted, here[0], grid(half)[0], sub_ran)
        ):
            return
        while half != requested and grid(half) == here:  # the same grid: the same answer
            requested, half = half, _halved(half)
        if half == requested:
            return
        ceiling = kept.worst

        def run() -> Kept:
            token = subcells.CEILING.set(min(subcells.CEILING.get(), ceiling))
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    smaller = _evaluate_graph(raw_graph, dists, atoms=half, target_w1=None, **opts)
            finally:
                subcells.CEILING.reset(token)
            return Kept(smaller, None, None, kept.compress, dict(half), [False] * len(smaller))

        yield run

    def keep(kept: Kept, new: Kept) -> Kept:
        def note(r: DistResult, s: DistResult, use: bool) -> dict[str, Any]:
            return {
                "requested": dict(new.atoms),
                "w1_bound": float(s.w1_bound),
                "requested_grid_bound": float(r.w1_bound),
                "used": use,
            }

        # a kept halved answer still carries this call's reduction (its warning), not the halved call's
        return candidates.keep_per_output(kept, new, note, "smaller_request", keep_info=("atoms_reduced",))

    return Candidate("smaller_request", wanted, trials, keep)


def _carry_half(
    dists: dict[str, Distribution], graph: Graph, atoms: int | Mapping[str, int], opts: dict[str, Any]
) -> Candidate:
    """Fixed atoms: the ``N/2`` call's certificates carried over to the kept answer where smaller (:mod:`.carry`).

    Wanted where ``carry_fixed_atoms`` is on, the program has at least ``carry.MIN_INPUTS`` inputs, some input has 4
    or more atoms (halving stops at 2: a grid of 1 atom per input has no finite bound on unbounded inputs and costs
    its diagnosis), every kept result is certified, the kept grid has at least ``carry.MIN_JOINT`` joint atoms
    (below, the N/2 call's fixed costs make it cost as much as the call itself), and the half grid has at most
    ``2**-MIN_INPUTS`` of its joint atoms.
    """
    from opgraph.dcg import carry

    names = list(dists)
    requested = {n: _atoms_for(atoms, n) for n in names}
    half = {n: requested[n] if requested[n] < 2 else max(2, requested[n] // 2) for n in names}  # never 1 atom

    def wanted(kept: Kept) -> bool:
        return not (
            not (carry.ENABLED.get() and carry.FIXED_ATOMS.get())
            or len(names) < carry.MIN_INPUTS
            or half == requested
            or not all(r.certified and math.isfinite(r.w1_bound) for r in kept.results)
            or math.prod(kept.atoms.values()) < carry.MIN_JOINT
            or math.prod(half.values()) * 2**carry.MIN_INPUTS > math.prod(kept.atoms.values())
        )

    def trials(kept: Kept) -> Iterator[Callable[[], Kept]]:
        def run() -> Kept:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                coarse = _evaluate_graph(graph, dists, atoms=half, target_w1=None, **opts)
            return Kept(coarse, None, None, kept.compress, dict(half), [False] * len(coarse))

        yield run

    def keep(kept: Kept, new: Kept) -> Kept:
        label = f"atoms {_counts(half)}"
        results = [carry.carry(r, c, label) for r, c in zip(kept.results, new.results, strict=True)]
        return dataclasses.replace(kept, results=results)  # the answers are the kept ones: only bounds change

    return Candidate("carry_half", wanted, trials, keep)


def _whole_grid_rescue(
    restricted: list[tuple[Graph, int]],
    outputs: list[Any],
    dists: dict[str, Distribution],
    quantized: dict[str, Quantized],
    max_joint: int,
    quantizer: str | Mapping[str, str],
    evaluate_with: Any,
) -> tuple[list[Evaluation], dict[str, Quantized], dict[str, str], int, float] | None:
    """The largest grid at or below ``quantized``'s counts that fits with the fixed-atoms compression size.

    Used where every round of a ``target_w1`` refinement gave an infinite bound: its compression size (256 at
    first) makes compressed nodes whose wide cells can reach a singularity, while the fixed-atoms path (compression
    size ``max(1024, 4 * atoms)``, soft limit its square) keeps the grid whole where ``max_joint`` allows.

    Returns:
        ``(evaluations, quantized, labels, compression size, worst bound)`` when that grid is certified with a
        finite bound, else ``None``.
    """
    requested = {n: int(q.atoms.size) for n, q in quantized.items()}
    base = max(1024, 4 * max(requested.values()))
    atoms, compress = _largest_fitting_grid(restricted, dists, requested, max_joint, None, base)
    if not _fits(restricted, dists, atoms, max_joint, compress):
        return None
    q2, l2 = _quantize_all(dists, atoms, quantizer)
    evals = [evaluate_with(o, q2, l2, compress) for o in outputs]
    worst = max(e.w1_bound for e in evals)
    if not (math.isfinite(worst) and all(e.certified for e in evals)):
        return None
    return evals, q2, l2, compress, worst


def _round_passes(evals: list[Evaluation], target_w1: float) -> tuple[list[Evaluation], str]:
    """A ``target_w1`` round's deferred sub-cell passes: run where they could bring the round to the target.

    The round can reach ``target_w1`` only where every output's bound before its pass is at most the target or
    would be with its cellwise bound divided by :data:`opgraph.dcg.subcells.MAX_GAIN` (more than the pass gains on
    the UQ suite). Then the passes of the outputs above the target run (the others' are dropped); else none runs
    and they stay pending (run on the final round if this round is the one kept). Returns the evaluations and
    ``"ran"``, ``"not needed"`` or ``"skipped"``.
    """
    above = [e for e in evals if e.w1_bound > target_w1]
    if not above:
        for e in evals:
            e.resume = None
        return evals, "not needed"
    if any(e.resume is None or not e.resume.predict(subcells.MAX_GAIN) <= target_w1 for e in above):
        return _long_round_passes(evals)
    out = []
    for e in evals:
        if e.w1_bound > target_w1:
            out.append(run_deferred(e))
        else:
            e.resume = None
            out.append(e)
    return out, "ran"


def _pass_cannot_pay(e: Evaluation) -> bool:
    """Whether ``e``'s deferred pass leaves its bound where it is even at the optimistic ``subcells.MAX_GAIN``."""
    predict = getattr(e.resume, "predict", None)
    return e.resume is None or (predict is not None and not predict(subcells.MAX_GAIN) < e.w1_bound)


def _long_round_passes(evals: list[Evaluation]) -> tuple[list[Evaluation], str]:
    """A long program's deferred sub-cell passes that cannot reach the target: run now, keep pending, or drop.

    Under a time budget on a long program (:attr:`opgraph.dcg.roundbudget.RoundBudget.long_nodes`), a pass costs one
    or two more graph evaluations on up to 8x the boxes (:func:`opgraph.dcg.costguards.pass_seconds`), and the loop
    keeps the round whose bound is smallest *before* a pending pass. So that a round's pass is weighed with it:

    * the first round's passes run now where its bound is finite, whatever the time left (they ran on the kept
      round before, and the first round is kept where no later one does better: this is the answer the call gave
      before); later rounds must then beat that bound (:attr:`~opgraph.dcg.roundbudget.RoundBudget.held`). An
      infinite first-round bound keeps its passes pending (run on the kept round, as before) and the next round
      grows every input (:func:`_next_round`): more atoms, not the pass, are what make such a bound finite;
    * a later round's passes run now where they fit the time left, else they are dropped (they could not run
      within the budget on the kept round either): that round answers with its own bound.

    Every bound kept is one of the round's valid bounds. Returns the evaluations and what was done (``"skipped"``
    where nothing applies: pending as before).
    """
    tb = roundbudget.current()
    if tb is None or tb.long_nodes <= 0:
        return evals, "skipped"
    out, what = evals, "skipped"
    if tb.planned_work > 0 and any(e.resume is not None for e in evals):
        first = len(tb.rounds) == tb.first_round
        t_round = max(tb.elapsed() - sum(s for _, s in tb.rounds) - tb.passes_total, 0.0)
        need = costguards.pass_seconds(t_round, tb.planned_work, tb.long_nodes)
        if first and not all(math.isfinite(e.w1_bound) for e in evals):
            # pending, as before: the next round grows every input (costguards.INF_STEP); its predicted seconds are
            # what a slow call's next round may be credited with (opgraph.dcg.roundcredit)
            tb.pending_pass = need
        elif all(_pass_cannot_pay(e) for e in evals):
            # even the optimistic gain leaves every answer where it is (an answer the pass does not touch: a
            # box-linear mixture below the point-mass bound, ODE-osc at 4 atoms 0.0376 against 407 / 16)
            for e in evals:
                e.resume = None
            what = "dropped: it cannot beat the answer (cellwise bound divided by subcells.MAX_GAIN)"
        elif first or roundbudget.SAFETY * need <= tb.left():
            t0 = tb.clock()
            out = [run_deferred(e) for e in evals]
            spent = tb.clock() - t0
            tb.pass_seconds += spent
            tb.passes_total += spent
            what = f"ran (long program: {spent:.3g} s, predicted {need:.3g} s)"
        elif not first:
            for e in evals:
                e.resume = None
            what = f"dropped: predicted {need:.3g} s (x{roundbudget.SAFETY} margin) with {tb.left():.3g} s left"
    tb.held = min(tb.held, max(e.w1_bound for e in out))
    return out, what


def _counts(atoms: Mapping[str, int]) -> str:
    """``x=16, y=32`` (at most six inputs, then ``...``)."""
    items = [f"{n}={k}" for n, k in atoms.items()]
    return ", ".join(items[:6] + (["..."] if len(items) > 6 else []))


def _unmet_message(
    target_w1: float,
    evals: list[Evaluation],
    labels: dict[str, str],
    quantized: dict[str, Quantized],
    history: list[dict[str, Any]],
    kept_round: int,
    stop: str,
) -> str:
    """The warning for a ``target_w1`` that was not reached: the best bound, what dominates it, why it stopped."""
    e = max(evals, key=lambda v: v.w1_bound)
    bound = e.w1_bound
    head = f"target_w1={target_w1:.3g} not reached"
    if not e.certified:
        est = f"{e.w1_estimate:.3g}" if e.w1_estimate is not None else "?"
        return (
            f"{head}: {stop}, so there is no certified bound; the uncertified estimate is {est} "
            f"({e.info.get('points')} points). Raise max_joint (or give max_memory) so that a grid fits"
        )
    rounds = f"best bound {bound:.3g} = {bound / target_w1:.3g} x target, round {kept_round + 1} of {len(history)}"
    if math.isinf(bound):
        where = e.info.get("unbounded_at", "a node")
        return f"{head}: {rounds}: {where} has no finite bound ({stop}); bound its inputs or reformulate it"
    label_to_input = {lab: n for n, lab in labels.items() if quantized[n].method != "exact"}
    split = split_terms(e.bound_terms, label_to_input)
    parts = [(f"input {n} ({quantized[n].atoms.size} atoms)", v) for n, v in split.terms.items() if n != COMPRESS]
    if split.terms.get(COMPRESS):
        parts.append(("compressions", split.terms[COMPRESS]))
    if split.fixed > 0:
        parts.append(("terms no atom count changes", split.fixed))
    parts.sort(key=lambda kv: -kv[1])
    total = sum(v for _, v in parts) or 1.0
    top = ", ".join(f"{k} {v:.3g} ({100 * v / total:.0f}%)" for k, v in parts[:3])
    fix = (
        "Raise max_seconds (None: no time budget) or ask for a larger target_w1"
        if "max_seconds" in stop
        else "Raise max_joint (larger grids; max_memory evaluates them in chunks) or ask for a larger target_w1"
    )
    return f"{head}: {rounds}; largest terms: {top}. Stopped because {stop}. {fix}"


def qmc_max_points(graph: Graph, replicates: int = 8) -> int:
    """Largest QMC sample (points, all replicates) whose arrays fit :func:`memory_limit_bytes`, at most 2**24.

    One replicate's evaluation holds at most one array per node (``n / replicates`` floats each); the pooled
    sample, its sorted copy and the merged atoms and weights hold about eight arrays of ``n`` floats.
    """
    per_point = 8 * (8 + len(graph.nodes) / replicates)
    return int(max(2**10, min(QMC_MAX_POINTS, memory_limit_bytes() // per_point)))


def _qmc_for_target(
    sub: Graph,
    out: int,
    dists: dict[str, Distribution],
    qmc_points: int,
    seed: int,
    rules: dict[str, Any],
    target_w1: float,
) -> Evaluation:
    """The QMC fallback of one output with its sample sized to ``target_w1`` (see :func:`evaluate_qmc`)."""
    from opgraph.dcg import intervals as iv

    for n in sub:
        if n.op not in ("input", "const") and n.op not in iv.RULES:
            raise DistError(f"{n.where}: {iv.unsupported(n.op)}")
    return evaluate_qmc(
        sub,
        out,
        dists,
        n_points=qmc_points,
        seed=seed,
        rules=rules,
        target_w1=target_w1,
        max_points=qmc_max_points(sub),
        max_seconds=QMC_MAX_SECONDS,
    )


def _pilot_atoms(dists: dict[str, Distribution]) -> int:
    """Atoms per input of the first ``target_w1`` round: 1024 for one input, else a joint grid of about 4096.

    At that size the pilot costs about as much as the fixed overhead of one evaluation (one input: 256 and 1024
    atoms cost the same here), and its bound terms are what the allocation of the next round is fitted to. A
    larger pilot grid (``_PILOT_JOINT = 2**15``: 32 atoms per input for Ishigami) saved a round at one target and
    cost one at a target 3% away (0.19 -> 0.10 s, 0.16 -> 0.25 s; docs/benchmarks/dcg.md), so it stays 2**12.
    """
    m = sum(1 for d in dists.values() if not hasattr(d, "values"))
    if m <= 1:
        return 1024
    return int(min(256, max(8, round(_PILOT_JOINT ** (1 / m)))))


def _next_round(
    allocator: Allocator | None,
    evals: list[Evaluation],
    labels: dict[str, str],
    quantized: dict[str, Quantized],
    cur_atoms: dict[str, int],
    cur_compress: int,
    worst: float,
    history: list[dict[str, Any]],
    compress_cap: Callable[[int], int],
    work: Callable[[Mapping[str, int]], float | None] | None = None,
) -> tuple[dict[str, int] | None, int, str]:
    """The next round's atoms and compression size (``None`` atoms: the target cannot be reached), and why not.

    ``compress_cap(c)`` is the largest compression size (>= ``c``) whose grids fit the memory budget with the
    current atoms; ``work`` is the cost of one evaluation at given counts (see :func:`_work`).
    """
    assert allocator is not None
    label_to_input = {lab: n for n, lab in labels.items() if quantized[n].method != "exact"}
    now = {**cur_atoms, COMPRESS: cur_compress}
    proposal: dict[str, int] = dict(now)
    if len(history) > 1 and worst >= history[-2]["w1_bound"]:
        # No progress: the model is wrong here, stop rather than loop.
        why = (
            f"the bound stopped decreasing with more atoms ({history[-2]['w1_bound']:.3g} -> {worst:.3g}): the "
            "dominant term does not shrink with the atom count here"
        )
        return None, cur_compress, why
    if len(history) > 1 and worst > allocator.target:
        # Slow progress: at this round's rate the target is more than _MAX_SLOW_ROUNDS rounds away (typically a
        # term held at its cap while the others shrink); stop rather than spend those rounds.
        rate = worst / history[-2]["w1_bound"]
        if rate > _SLOW_RATE and math.log(worst / allocator.target) / -math.log(rate) > _MAX_SLOW_ROUNDS:
            why = (
                f"the bound shrinks by only {100 * (1 - rate):.1f}% per round ({history[-2]['w1_bound']:.3g} -> "
                f"{worst:.3g}): more than {_MAX_SLOW_ROUNDS} rounds from the target at that rate"
            )
            return None, cur_compress, why
    tb = roundbudget.current()
    if not math.isfinite(worst) and tb is not None and tb.long_nodes > 0:
        # A long program's first-order bound is inf (wide cells reach a pole or overflow over thousands of steps):
        # the allocator has no finite terms, and narrower cells are what makes it finite (ODE-log: inf at 4 atoms
        # per input, 11.6 at 8, 2.9 at 16). Every input grows by costguards.INF_STEP; the time budget shrinks the
        # step (proportionally, at least a doubling where it fits) to the largest round predicted within it: a
        # long program's round costs its per-node floor whatever the grid, so small steps pay it again and again.
        grown = {n: costguards.INF_STEP * k if quantized[n].method != "exact" else k for n, k in cur_atoms.items()}
        if grown != cur_atoms:
            return grown, cur_compress, ""
    caps = {COMPRESS: compress_cap(cur_compress)}
    for e in evals:
        if e.w1_bound <= allocator.target:
            continue
        split = split_terms(e.bound_terms, label_to_input)
        nxt = allocator.propose(now, split, caps, work)
        if nxt is None:
            if split.fixed >= allocator.safety * allocator.target:
                why = (
                    f"terms that no atom count changes (previous results' bounds, tails) sum to {split.fixed:.3g}, "
                    "at or above the target"
                )
            else:
                why = (
                    f"the compression size is capped at {caps[COMPRESS]} by max_joint (the memory budget), and the "
                    "terms at their caps already exceed the target"
                )
            return None, cur_compress, why
        proposal = {k: max(proposal[k], nxt[k]) for k in proposal}
    if proposal == now:
        # The model says the current counts suffice but the bound disagrees: double the largest term's variable.
        split = split_terms(max(evals, key=lambda e: e.w1_bound).bound_terms, label_to_input)
        if not split.terms:
            return None, cur_compress, "no term of the bound depends on an atom count"
        var = max(split.terms, key=lambda v: split.terms[v])
        proposal[var] = now[var] * 2
    comp = proposal.pop(COMPRESS)
    for n, k in proposal.items():
        if quantized[n].method == "meansplit" and k > cur_atoms[n]:
            # meansplit makes 2**j atoms: a count between powers of two would repeat this round's atoms.
            # Round down to the power of two below when it is close (the prediction aimed below the target).
            lower = 1 << (k.bit_length() - 1)
            proposal[n] = lower if lower > cur_atoms[n] and k <= 1.2 * lower else 1 << (k - 1).bit_length()
    return proposal, comp, ""


def _input_terms(evals: list[Evaluation], labels: dict[str, str], quantized: dict[str, Quantized]) -> dict[str, float]:
    """The per-input bound terms of the output with the largest bound (W1 units, by input name)."""
    label_to_input = {lab: n for n, lab in labels.items() if quantized[n].method != "exact"}
    split = split_terms(max(evals, key=lambda e: e.w1_bound).bound_terms, label_to_input)
    return {n: t for n, t in split.terms.items() if n != COMPRESS}


def _budget_step(
    tbudget: roundbudget.RoundBudget | None,
    allocator: Allocator | None,
    evals: list[Evaluation],
    labels: dict[str, str],
    quantized: dict[str, Quantized],
    cur_atoms: dict[str, int],
    cur_compress: int,
    new_atoms: dict[str, int],
    new_compress: int,
    wanted: dict[str, int],
    compress_wanted: int,
    worst: float,
    fits: Callable[[dict[str, int], int], bool],
    work: Callable[[Mapping[str, int]], float | None] | None,
) -> tuple[dict[str, int] | None, int, str]:
    """The next round within the time budget (:func:`opgraph.dcg.roundbudget.plan_step`); ``None``: stop, and why.

    ``compress_wanted`` is the compression size this round had before :func:`~opgraph.dcg.roundbudget.plan_step`
    raised it to keep the grids whole (the round's own where it was not raised).
    """
    if tbudget is None or allocator is None or work is None:
        return new_atoms, new_compress, ""
    whole = all(e.certified and not e.info.get("compressions") for e in evals)
    label_to_input = {lab: n for n, lab in labels.items() if quantized[n].method != "exact"}
    split = split_terms(max(evals, key=lambda e: e.w1_bound).bound_terms, label_to_input)
    pow2 = {n for n in cur_atoms if quantized[n].method == "meansplit"}

    def plan(held_back: float = 0.0) -> tuple[dict[str, int] | None, int, str]:
        return roundbudget.plan_step(
            tbudget,
            allocator,
            split,
            cur_atoms,
            cur_compress,
            new_atoms,
            new_compress,
            wanted,
            worst,
            fits,
            lambda a, c: work({**a, COMPRESS: c}),
            lambda a, c, f: _shrink_to_fit(cur_atoms, cur_compress, a, c, f, pow2),
            _counts,
            whole=whole,
            stay_whole=whole and cur_compress > compress_wanted,
            held_back=held_back,
        )

    from opgraph.dcg import longmix

    # A long program whose next round will run the lean Taylor pass (opgraph.dcg.longmix): the round is planned
    # with that pass's predicted seconds held back (plan_step's held_back: the budget itself is not changed), for
    # the pass on the proposed grid or on grids of longmix.RESERVE_FRACTIONS of its atoms per input; the first plan
    # whose own pass fits what was held back is taken. Where none does, the round is planned as before (the pass
    # then runs only where it still fits).
    def reserved() -> tuple[dict[str, int] | None, int, str] | None:
        """The first plan whose lean pass fits the time held back for it (None: none does or none is expected)."""
        for frac in longmix.RESERVE_FRACTIONS if whole else ():
            reserve = longmix.reserve(tbudget, {n: max(2, int(a * frac)) for n, a in new_atoms.items()})
            if reserve <= 0:
                return None
            got = plan(reserve)
            if got[0] is not None and longmix.reserve(tbudget, got[0]) <= reserve:
                return got
        return None

    got = reserved()
    lean = whole and longmix.reserve(tbudget, new_atoms) > 0  # the lean pass is expected on the next round
    plain = None  # the plan without a reserve or credit, where made
    if got is None and not lean:
        plain = plan()
        got = plain if plain[0] is not None else None
    credit = roundcredit.available(tbudget) if got is None else 0.0
    if credit > 0:
        # No round fits with its lean pass (or at all) in the time left, and the kept round has a pending pass that
        # would run at the end anyway: plan once more with that pass's seconds added (opgraph.dcg.roundcredit).
        roundcredit.grant(tbudget, credit)
        got = reserved() if lean else plan()
        if got is None or got[0] is None:
            got = None
            roundcredit.revoke(tbudget)
        else:
            log.info("target_w1: next round %s planned on the pending pass's %.3g s (round credit)", got[0], credit)
    atoms, comp, why = got if got is not None else plain if plain is not None else plan()
    if atoms is None or tbudget.long_nodes <= 0:
        return atoms, comp, why
    w = work({**atoms, COMPRESS: comp}) or 0.0
    if math.isfinite(tbudget.held) and tbudget.held < worst:
        # A long program whose rounds already hold a smaller bound after their sub-cell passes: the next round is
        # kept only where it gets below that, so without its own pass its predicted bound must, or else the round
        # and its pass must fit the time left together.
        now = {**cur_atoms, COMPRESS: cur_compress}

        def with_pass(a: Mapping[str, int], c: int) -> float:
            """Predicted seconds of the round at ``a``, ``c`` and its sub-cell pass."""
            wa = work({**a, COMPRESS: c})
            t = tbudget.predict(wa)
            return t + costguards.pass_seconds(t, wa or 0.0, tbudget.long_nodes)

        pred = roundbudget.predicted_bound(split.terms, split.fixed, now, {**atoms, COMPRESS: comp}, allocator.order)
        if pred >= tbudget.held and roundbudget.SAFETY * with_pass(atoms, comp) > tbudget.left():
            # The largest step towards it whose round and pass fit the time left together (the pass then runs
            # with the round, :func:`_long_round_passes`), else stop.
            planned, t_both = dict(atoms), with_pass(atoms, comp)
            atoms, comp = _shrink_to_fit(
                cur_atoms,
                cur_compress,
                atoms,
                comp,
                lambda a, c: fits(a, c) and roundbudget.SAFETY * with_pass(a, c) <= tbudget.left(),
                pow2,
            )
            if atoms == cur_atoms or roundbudget.SAFETY * with_pass(atoms, comp) > tbudget.left():
                return (
                    None,
                    cur_compress,
                    f"the next round ({_counts(planned)}) is predicted at {pred:.3g} before its sub-cell pass, not "
                    f"below the {tbudget.held:.3g} held after an earlier round's pass, and the round with its pass "
                    f"is {roundbudget.SAFETY}x {t_both:.3g} s with {max(tbudget.left(), 0.0):.3g} s left of "
                    f"max_seconds={tbudget.max_seconds:g} (no smaller step fits)",
                )
            w = work({**atoms, COMPRESS: comp}) or 0.0
    tbudget.planned_work = w
    return atoms, comp, why


def _size_first_round(
    tbudget: roundbudget.RoundBudget | None,
    work: Callable[[Mapping[str, int]], float | None] | None,
    long_cap: float | None,
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    atoms: dict[str, int],
    max_joint: int,
    compress: int,
    quantizer: str | Mapping[str, str],
) -> dict[str, Any] | None:
    """The first ``target_w1`` round shrunk to its time budget (:func:`opgraph.dcg.costguards.first_round_counts`).

    Returns None where it stays (no budget, a long program under its own work cap, or predicted within the
    budget), else ``{"requested", "used", "predicted_s", "budget_s"}`` (atoms per input, the prior's predicted CPU
    seconds of the requested round, the seconds left of ``max_seconds``). A smaller grid whose compressed nodes
    would reach a pole (:func:`_compressed_pole`) is not taken.
    """
    if tbudget is not None and work is not None and long_cap is not None:
        tbudget.planned_work = work({**atoms, COMPRESS: compress}) or 0.0  # a long program's first round
    if tbudget is None or work is None or long_cap is not None:
        return None

    def round_work(c: dict[str, int]) -> float | None:
        return work({**c, COMPRESS: compress})

    w0 = round_work(atoms)
    if w0 is None or costguards.first_round_seconds(w0) <= costguards.FIRST_ROUND_SHARE * tbudget.left():
        return None
    quantized, _ = _quantize_all(dists, atoms, quantizer)  # the methods (mean-split counts stay powers of two)
    pow2 = frozenset(n for n, q in quantized.items() if q.method == "meansplit")
    used = costguards.first_round_counts(atoms, round_work, tbudget.left(), pow2)
    if used is None or _compressed_pole(restricted, dists, used, max_joint, compress) is not None:
        return None
    log.info("target_w1: first round sized to the time budget: %s -> %s", atoms, used)
    return {
        "requested": dict(atoms),
        "used": dict(used),
        "predicted_s": round(costguards.first_round_seconds(w0), 3),
        "budget_s": round(tbudget.left(), 3),
    }


def _shrink_to_fit(
    cur_atoms: dict[str, int],
    cur_compress: int,
    new_atoms: dict[str, int],
    new_compress: int,
    fits: Callable[[dict[str, int], int], bool],
    pow2: set[str],
) -> tuple[dict[str, int], int]:
    """The largest step towards the proposal that fits the memory budget, keeping its proportions.

    Every increase is scaled by the same power ``s`` in log space (``n = cur * (new / cur) ** s``, the largest
    ``s`` in [0, 1] that fits, by bisection), so the balance the allocation chose between the inputs and the
    compression size survives. Inputs in ``pow2`` (mean-split quantizers) are rounded down to powers of two.
    """

    def step(s: float) -> tuple[dict[str, int], int]:
        atoms = {}
        for n, v in new_atoms.items():
            k = max(cur_atoms[n], int(cur_atoms[n] * (v / cur_atoms[n]) ** s))
            if n in pow2 and k > cur_atoms[n]:
                k = max(cur_atoms[n], 1 << (k.bit_length() - 1))
            atoms[n] = k
        return atoms, max(cur_compress, int(cur_compress * (new_compress / cur_compress) ** s))

    if fits(new_atoms, new_compress):
        return new_atoms, new_compress
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fits(*step(mid)) else (lo, mid)
    return step(lo)


#: Atoms per input of the smallest grid tried before the QMC fallback (fixed-atoms evaluations).
MIN_FALLBACK_ATOMS = 2
#: Geometric step of the downward search for the largest fitting grid (8 steps per halving).
_FIT_STEP = 2 ** (1 / 8)


def _sensitivity_atoms(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    requested: dict[str, int],
    max_joint: int,
    compress: int,
) -> dict[str, int] | None:
    """Atoms per input for a first round that fits ``max_joint``, allocated by sensitivity; None if none fits.

    Every input starts at 2 atoms; then the input with the largest ``spread_i / n_i`` (``spread_i`` the effect of
    input ``i`` between its 16 % and 84 % quantiles at the others' medians, :func:`.semidiscrete.input_spreads`:
    about its first-order cell error at ``n_i`` atoms) is doubled while the grids still fit and the count stays at
    most the requested one. Doubling keeps the counts powers of two (mean-preserving ``meansplit`` quantizers).
    """
    from opgraph.dcg import semidiscrete as sdc

    atoms = {n: min(2, k) for n, k in requested.items()}
    if not _fits(restricted, dists, atoms, max_joint, compress):
        return None
    spread: dict[str, float] = {}
    for sub, out in restricted:
        for name, v in sdc.input_spreads(sub, out, dists, _rules()).items():
            spread[name] = max(spread.get(name, 0.0), v if math.isfinite(v) else 1e300)
    frozen: set[str] = set()
    while True:
        open_ = [n for n in atoms if n not in frozen and 2 * atoms[n] <= requested[n]]
        if not open_:
            return atoms
        name = max(open_, key=lambda n: (spread.get(n, 1.0) / atoms[n], n))
        trial = {**atoms, name: 2 * atoms[name]}
        if _fits(restricted, dists, trial, max_joint, compress):
            atoms = trial
        else:
            frozen.add(name)


def _has_whole_grid_certificate(
    graph: Graph, outputs: list[int], dists: dict[str, Distribution], rules: dict[str, Any]
) -> bool:
    """Whether an output has an affine candidate ``P + Q*C`` (a certificate that needs the whole grid).

    Outputs with only a semi-discrete core (``A op C``) are left out: on them the compressed grid at the requested
    atoms kept the better bound in every case measured (Ishigami at 128 atoms 0.113 against the 64-atom whole grid's
    0.133, the undamped oscillator at 32 and OTL at 16 likewise), while the extra whole-grid evaluation cost up to
    ten times the call (Ishigami at 128 atoms: 0.023 -> 0.24 CPU s).
    """
    from opgraph.dcg import engine
    from opgraph.dcg import semidiscrete as sdc

    if not engine.SEMI_DISCRETE.get():
        return False
    for o in outputs:
        sub, out = restrict(graph, o)
        if sdc.affine_candidates(sub, out, dists, rules):
            return True
    return False


def _full_grid_alternative(
    graph: Graph, outputs: list[int], atoms: dict[str, int], max_joint: int
) -> dict[str, int] | None:
    """Powers of two at most ``atoms`` whose whole joint grid (per output) fits ``max_joint``, or None.

    Each count is first rounded down to a power of two (the mean-preserving ``meansplit`` sizes), then the
    largest is halved until every output's grid over its own inputs fits. None where that is the grid already
    used or where an input would get fewer than 2 atoms.
    """
    alt = {n: 1 << (max(int(k), 1).bit_length() - 1) for n, k in atoms.items()}
    per_output = []
    for o in outputs:
        sub, _ = restrict(graph, o)
        per_output.append([n.attrs["name"] for n in sub.nodes if n.op == "input" and n.attrs["name"] in alt])
    while any(math.prod(alt[n] for n in names) > max_joint for names in per_output):
        big = max((n for names in per_output for n in names), key=lambda n: alt[n])
        if alt[big] <= 2:
            return None
        alt[big] //= 2
    return None if alt == atoms else alt


def _largest_fitting_grid(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    requested: dict[str, int],
    max_joint: int,
    compress_atoms: int | None,
    compress: int,
) -> tuple[dict[str, int], int]:
    """The requested atoms, or the largest grid below them that fits ``max_joint``; its compression size.

    Every input's count is capped by one common ``cap`` (inputs that asked for fewer atoms keep theirs), and the
    cap is the largest that fits: a downward scan in geometric steps of 2**(1/8) from the largest request, then
    a bisection between the first fitting cap and the step above it. Without an explicit ``compress_atoms`` the
    compression size follows the capped counts (its default ``max(1024, 4 * atoms)``), so a cap equal to a
    smaller request gives exactly that request's grid: a larger request never lands below a smaller one that
    fits. When even ``MIN_FALLBACK_ATOMS`` per input does not fit, the request is returned unchanged (then the
    evaluation falls back to QMC).

    Args:
        restricted: Per output, its graph and output id (:func:`restrict`).
        dists: Exact law per input name.
        requested: Atoms per input asked for.
        max_joint: Largest joint grid (elements).
        compress_atoms: The caller's compression size, or ``None`` for the default.
        compress: The compression size for the requested atoms.

    Returns:
        ``(atoms per input, compression size)``.
    """

    def at(cap: int) -> tuple[dict[str, int], int]:
        atoms = {n: min(k, cap) for n, k in requested.items()}
        return atoms, compress if compress_atoms is not None else max(1024, 4 * max(atoms.values()))

    def fits(cap: int) -> bool:
        atoms, comp = at(cap)
        return _fits(restricted, dists, atoms, max_joint, comp)

    if _fits(restricted, dists, requested, max_joint, compress):
        return requested, compress
    top = max(requested.values())
    floor = min(MIN_FALLBACK_ATOMS, top)
    above, cap = top, top
    while True:
        nxt = max(floor, min(cap - 1, int(cap / _FIT_STEP)))
        above, cap = cap, nxt
        if fits(cap):
            break
        if cap <= floor:
            return requested, compress  # not even the smallest grid fits: the QMC fallback
    lo, hi = cap, above
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return at(lo)


def _full_grid_candidate(
    graph: Graph,
    outputs: list[int],
    dists: dict[str, Distribution],
    rules: Any,
    reduced: dict[str, Any] | None,
    max_joint: int,
    quantizer: str | Mapping[str, str],
    on_grid: Callable[[dict[str, Quantized], dict[str, str], int, dict[str, int]], Kept],
) -> Candidate:
    """Fixed atoms, reduced or compressed grid: the largest power-of-two grid that fits whole (:func:`_full_grid_alternative`).

    More atoms must never give a worse bound: a compressed or reduced grid can lose the certificates that need the
    whole grid (semi-discrete, affine), so that grid is evaluated too and the better answer kept (all outputs or
    none; ``info["full_grid_alternative"]`` on the answer kept).
    """

    def wanted(kept: Kept) -> bool:
        return (reduced is not None or any(r.info.get("compressions") for r in kept.results)) and (
            _has_whole_grid_certificate(graph, outputs, dists, rules)
        )

    def trials(kept: Kept) -> Iterator[Callable[[], Kept]]:
        alt = _full_grid_alternative(graph, outputs, kept.atoms, max_joint)
        if alt is not None:

            def run() -> Kept:
                q, lab = _quantize_all(dists, alt, quantizer)
                return on_grid(q, lab, kept.compress, dict(alt))

            yield run

    def keep(kept: Kept, new: Kept) -> Kept:
        used = candidates.wins_whole(kept, new)
        out = new if used else kept
        note = {"atoms": dict(new.atoms), "w1_bound": new.worst, "used": used}
        results = [dataclasses.replace(r, info={**r.info, "full_grid_alternative": dict(note)}) for r in out.results]
        return dataclasses.replace(out, results=results)

    return Candidate("full_grid_alternative", wanted, trials, keep)


def _budget_allocations(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    reduced: dict[str, Any] | None,
    max_joint: int,
    compress_atoms: int | None,
    quantizer: str | Mapping[str, str],
    on_grid: Callable[[dict[str, Quantized], dict[str, str], int, dict[str, int]], Kept],
    clock: Callable[[], float],
    started: float,
) -> Candidate:
    """Fixed atoms reduced to fit ``max_joint``: per-input allocations tried beside the uniform grid.

    The kept grid (the uniform reduction, or the full-grid alternative where it won) gives each input's sensitivity
    (its bound term, or with ``budgetalloc.SENSITIVITY = "spreads"`` the input's effect slope times its
    quantization W1); for each cap of :func:`.budgetalloc.ladder` (the request, its half, ...)
    :func:`.budgetalloc.allocate` spends the grid budget where the predicted bound falls most, every count at most
    the request. Each distinct allocation is a trial (every answer carries its own certified bound), kept where all
    outputs are certified with a smaller largest bound. The record ``info["atoms_reduced"]["allocation"]`` lists
    every trial's counts and bound, the sensitivity used, the uniform grid's bound and the allocation used; where
    one is used, ``info["atoms_reduced"]["used"]`` and ``["compress_atoms"]`` are its grid's.
    """
    from opgraph.dcg import semidiscrete as sdc

    names = list(dists)
    work = _work(restricted, dists, max_joint)

    def wanted(kept: Kept) -> bool:
        return reduced is not None and budgetalloc.ENABLED.get() and budgetalloc.FIXED_ATOMS.get()

    size = _atoms_made(dists, quantizer)

    def comp(a: Mapping[str, int]) -> int:
        return compress_atoms if compress_atoms is not None else max(1024, 4 * max(a.values()))

    def fits(a: dict[str, int]) -> bool:
        return _fits(restricted, dists, a, max_joint, comp(a))

    def trials(kept: Kept) -> Iterator[Callable[[], Kept]]:
        assert reduced is not None and kept.quantized is not None and kept.labels is not None
        quantized, labels = kept.quantized, kept.labels
        uniform = {n: int(q.atoms.size) for n, q in quantized.items()}
        base = kept.worst
        label_to_input = {lab: n for n, lab in labels.items() if quantized[n].method != "exact"}
        terms: dict[str, float] = {}
        how = budgetalloc.SENSITIVITY
        if how == "terms" and all(r.certified for r in kept.results) and math.isfinite(base):
            for r in kept.results:
                for n, t in split_terms(r.bound_terms, label_to_input).terms.items():
                    if n != COMPRESS:
                        terms[n] = max(terms.get(n, 0.0), t)
        if not terms:
            how = "spreads"
            for sub, out in restricted:
                for n, v in sdc.input_spreads(sub, out, dists, _rules()).items():
                    d = dists[n]
                    width = float(np.asarray(d.ppf(0.841345)) - np.asarray(d.ppf(0.158655)))
                    if math.isfinite(v) and width > 0 and n in uniform:
                        terms[n] = max(terms.get(n, 0.0), 2 * v / width * quantized[n].w1)
        floors = {}
        for n, d in dists.items():
            lo, hi = d.support()
            floors[n] = budgetalloc.BOUNDED_FLOOR if math.isfinite(lo) and math.isfinite(hi) else MIN_FALLBACK_ATOMS
        record: dict[str, Any] = {"sensitivity": how, "uniform_w1_bound": base, "candidates": [], "used": None}
        record["skipped"] = []  # allocations not evaluated, and why
        reduced["allocation"] = record
        tried: list[dict[str, int]] = [uniform]
        rungs: list[tuple[float, int, dict[str, int], dict[str, Quantized], dict[str, str]]] = []
        at_uniform = budgetalloc.predicted(terms, uniform, uniform, size=size)
        for caps in budgetalloc.ladder(reduced["requested"], uniform)[: None if budgetalloc.LADDER else 1]:
            got = budgetalloc.allocate(terms, uniform, fits, caps, floors, size=size)
            if got is None:
                continue
            q, lab = _quantize_all(dists, got, quantizer)
            counts = {n: int(q[n].atoms.size) for n in q}
            if counts in tried:
                continue
            tried.append(counts)
            pred = budgetalloc.predicted(terms, uniform, got, size=size)
            if budgetalloc.MODEL_SKIP and not pred < at_uniform:
                # the model predicts no gain over the uniform grid (a test of this rung alone: every call whose
                # ladder holds the rung skips it alike, so bound(2N) <= bound(N) still holds)
                record["skipped"].append(
                    {
                        "atoms": counts,
                        "cap": max(caps.values()),
                        "predicted": pred,
                        "skipped": "the model predicts no gain over the uniform grid",
                    }
                )
                continue
            rungs.append((pred, max(caps.values()), got, q, lab))
        if budgetalloc.MODEL_FIRST:
            rungs.sort(key=lambda r: r[0])  # the model's best first: it runs where the time share ends early
        one_grid = clock() - started  # the call so far: at least one grid's evaluation
        work_uniform = work({**uniform, COMPRESS: kept.compress})
        for pred, cap, got, q, lab in rungs:
            w = work({**got, COMPRESS: comp(got)})
            ratio = w / work_uniform if w is not None and work_uniform else 1.0
            seconds = one_grid * ratio * roundbudget.SAFETY
            limit = budgetalloc.FIXED_ATOMS_SECONDS
            if limit is not None and clock() - started + seconds > limit:
                record["skipped"].append(
                    {
                        "atoms": {n: int(q[n].atoms.size) for n in q},
                        "cap": cap,
                        "predicted": pred,
                        "skipped": f"predicted {seconds:.3g} s more, past the call's "
                        f"budgetalloc.FIXED_ATOMS_SECONDS = {limit:g} s",
                    }
                )
                continue

            def run(
                q: dict[str, Quantized] = q,
                lab: dict[str, str] = lab,
                got: dict[str, int] = got,
                cap: int = cap,
                pred: float = pred,
            ) -> Kept:
                new = on_grid(q, lab, comp(got), {n: int(q[n].atoms.size) for n in names})
                ok = all(r.certified for r in new.results)
                record["candidates"].append(
                    {
                        "atoms": {n: int(q[n].atoms.size) for n in q},
                        "cap": cap,
                        "w1_bound": new.worst,
                        "certified": ok,
                        "predicted": pred,
                    }
                )
                return new

            yield run

    def keep(kept: Kept, new: Kept) -> Kept:
        if not candidates.wins_whole(kept, new):
            return kept
        assert reduced is not None and new.quantized is not None
        reduced["allocation"]["used"] = {n: int(new.quantized[n].atoms.size) for n in new.quantized}
        reduced["used"], reduced["compress_atoms"] = dict(new.atoms), new.compress
        return new

    return Candidate("budget_allocation", wanted, trials, keep)


def _reallocate_round(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    quantizer: str | Mapping[str, str],
    terms: dict[str, float],
    allocator: Allocator | None,
    cur_atoms: dict[str, int],
    step: dict[str, int],
    wanted: dict[str, int],
    max_joint: int,
    compress: int,
    whole: bool,
) -> dict[str, int] | None:
    """A ``target_w1`` round whose proposal does not fit: the budget re-allocated by the terms, or ``None``.

    ``step`` is the proportional step towards the proposal ``wanted`` that fits (:func:`_shrink_to_fit`, no count
    below this round's). Where the model predicts that step to shrink the bound by less than
    ``budgetalloc.REALLOCATE_BELOW_GAIN`` (the round already fills the budget), :func:`.budgetalloc.allocate` fills
    the same budget from the floors (1 atom for a bounded input; an unbounded one keeps its count) up to ``wanted`` with this round's ``terms`` and the allocator's fitted orders (at least 1);
    the result is returned where the model predicts a smaller bound than the step's and than this round's by
    ``roundbudget.MIN_GAIN``. Where
    this round's grids were ``whole`` (no compression), so must the re-allocated ones be (each output's joint grid
    at most ``max_joint``): the terms say nothing about the compressions a larger grid would need (OTL at 1e-2:
    128 x 128 x 18 x 10 x 1 x 22 compressed to 256 atoms bounds 0.146, the whole 8**6 grid 0.181, the
    re-allocated whole grid 0.087).
    """
    per_output = [[n.attrs["name"] for n in sub.nodes if n.op == "input"] for sub, _ in restricted]

    def fits(a: dict[str, int]) -> bool:
        if whole and any(math.prod(a[n] for n in names) > max_joint for names in per_output):
            return False
        return _fits(restricted, dists, a, max_joint, compress)

    # Orders below 1 (fitted where a term barely moved, or moved with the other inputs' cells) would make fewer atoms
    # look free: OTL's second round at 1e-2 cut an input from 6 to 2 atoms at a fitted order 0.5 and doubled the bound.
    orders = {v: max(1.0, allocator.order(v)) for v in terms} if allocator is not None else {}

    size = _atoms_made(dists, quantizer)

    before = budgetalloc.predicted(terms, cur_atoms, step, orders, size)
    if before < (1.0 - budgetalloc.REALLOCATE_BELOW_GAIN) * sum(terms.values()):
        return None  # the proportional step still pays: the allocator's plan (work elasticities) is kept
    floors = {}
    for n, d in dists.items():
        lo, hi = d.support()
        # An unbounded input keeps its count: its tail cells make fewer atoms cost more than the 1/n model says.
        floors[n] = (
            min(cur_atoms[n], budgetalloc.BOUNDED_FLOOR) if math.isfinite(lo) and math.isfinite(hi) else cur_atoms[n]
        )
    caps = {n: max(wanted.get(n, k), k) for n, k in cur_atoms.items()}
    got = budgetalloc.allocate(terms, cur_atoms, fits, caps, floors, orders, size)
    if got is None or got == cur_atoms:
        return None
    after = budgetalloc.predicted(terms, cur_atoms, got, orders, size)
    return got if after < before and after < (1.0 - roundbudget.MIN_GAIN) * sum(terms.values()) else None


#: Ops with a pole (of the value or of the derivative) at a finite point of one operand: that operand's index and
#: the test that its range *ends* at the pole (a LogNormal's 0: the singular end that tail cells reach; a range
#: across it is the interval dependency problem, which the boxes' own enclosures avoid, or a law without a mean).
_POLES: dict[str, tuple[int, Callable[[float, float], bool]]] = {
    "div": (1, lambda lo, hi: lo == 0.0 or hi == 0.0),
    "reciprocal": (0, lambda lo, hi: lo == 0.0 or hi == 0.0),
    "rsqrt": (0, lambda lo, hi: lo == 0.0),
    "log": (0, lambda lo, hi: lo == 0.0),
    "log2": (0, lambda lo, hi: lo == 0.0),
    "log10": (0, lambda lo, hi: lo == 0.0),
    "log1p": (0, lambda lo, hi: lo == -1.0),
    "sqrt": (0, lambda lo, hi: lo == 0.0),  # an infinite derivative at 0 (no Lipschitz bound across it)
    "cbrt": (0, lambda lo, hi: lo == 0.0 or hi == 0.0),
}


def _compressed_pole(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    atoms: Mapping[str, int],
    max_joint: int,
    compress: int,
) -> str | None:
    """Where a compressed node of the grid at ``atoms`` and compression size ``compress`` feeds a pole, or None.

    A compressed node's cells are hulls of its boxes' enclosures; where its range (the natural enclosure over the
    inputs' whole supports) ends at a pole of an op after it, and the range depends on an input with an unbounded
    support (its tail cells reach that end; bounded inputs' ends at a pole are mostly the interval dependency
    problem: the piston's ``sqrt(A**2 + B)``, whose compressed rounds are finite) (a denominator or a log argument reaching 0: the
    DampedOsc's ``sqrt(Ks / Ms)``), the cells next to the pole make that op's bound infinite, and with it the
    round's (its tails are no longer tied to one input, where the envelopes could bound them). Returns the op's
    place in the source.
    """
    from opgraph.dcg import intervals as iv

    for sub, plan in _compression_plans(restricted, dists, atoms, max_joint, compress):
        env: dict[int, tuple[float, float]] = {}
        tainted: set[int] = set()  # the compressed nodes and what depends on them
        tailed: set[int] = set()  # what depends on an input with an unbounded support (LogNormal, Gamma, Normal)
        for i, n in enumerate(sub.nodes):
            if any(j in tailed for j in n.inputs):
                tailed.add(i)
            if n.op == "input":
                lo, hi = dists[n.attrs["name"]].support()
                env[i] = (float(lo), float(hi))
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    tailed.add(i)
            elif n.op == "const":
                c = np.asarray(n.attrs["value"], dtype=float)
                env[i] = (float(np.min(c)), float(np.max(c))) if c.size else (0.0, 0.0)
            else:
                args = [(np.asarray(env[j][0]), np.asarray(env[j][1])) for j in n.inputs]
                pole = _POLES.get(n.op)
                at = n.inputs[pole[0]] if pole is not None and pole[0] < len(n.inputs) else None
                if pole is not None and at in tainted and at in tailed and pole[1](*env[at]):
                    return n.where
                if n.op == "pow" and len(n.inputs) == 2 and n.inputs[0] in tainted and n.inputs[0] in tailed:
                    (e_lo, e_hi), b_lo = env[n.inputs[1]], env[n.inputs[0]][0]
                    if e_lo < 1 and not (e_lo == e_hi and e_lo >= 0 and float(e_lo).is_integer()) and b_lo == 0:
                        return n.where  # a negative or fractional power of a range reaching 0
                try:
                    with np.errstate(all="ignore"):
                        (vlo, vhi), _ = iv.rule(n.op, args, n.attrs)
                    vlo_f, vhi_f = float(np.min(vlo)), float(np.max(vhi))
                except (DistError, ValueError, TypeError):
                    vlo_f, vhi_f = -math.inf, math.inf
                env[i] = (-math.inf if math.isnan(vlo_f) else vlo_f, math.inf if math.isnan(vhi_f) else vhi_f)
            if i in plan or any(j in tainted for j in n.inputs):
                tainted.add(i)
    return None


def _round_compresses(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    atoms: Mapping[str, int],
    max_joint: int,
    compress: int,
    skip_ops: frozenset[str] = frozenset(),
) -> bool:
    """Whether the grid at ``atoms`` and compression size ``compress`` compresses a node of some output.

    Compressed nodes whose op is in ``skip_ops`` do not count.
    """
    return any(
        any(sub.nodes[i].op not in skip_ops for i in plan)
        for sub, plan in _compression_plans(restricted, dists, atoms, max_joint, compress)
    )


def _compression_plans(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    atoms: Mapping[str, int],
    max_joint: int,
    compress: int,
) -> Iterator[tuple[Graph, set[int]]]:
    """Per output that the grid engine evaluates (not a constant, not an exact law): its graph and its non-empty plan.

    The plan is :func:`plan_compression`'s (the nodes it compresses) at ``atoms`` and compression size ``compress``,
    with the soft grid limit the engine uses; outputs whose plan is empty are skipped.
    """
    for sub, out, sizes in _plan_inputs(restricted, dists, atoms):
        if sub.nodes[out].op == "const" or exactlaw.whole_output(sub, out, dists):
            continue
        soft = keepbest.soft_joint(sub, out, _soft_joint(compress), sizes, max_joint, compress)
        plan = plan_compression(sub, out, sizes, max_joint, compress, soft)
        if plan:
            yield sub, plan


def _soft_joint(compress: int) -> int:
    """The soft grid limit of the compression plan: ``compress**2``.

    Grids are kept near the square of the compression size (what two compressed operands make anyway) where a
    separator allows it, instead of filling ``max_joint``: the work then follows the compression size (and, under
    ``target_w1``, the allocation). With the default compression size (``max(1024, 4 * atoms)``) the square is
    at least the default ``max_joint``, so every grid stays exact as far as the memory budget allows.
    """
    return compress * compress


def _plan_inputs(
    restricted: list[tuple[Graph, int]], dists: dict[str, Distribution], atoms: Mapping[str, int]
) -> list[tuple[Graph, int, dict[int, int]]]:
    """Per output (its graph and output id from :func:`restrict`): those and the atom count of each input node."""
    plans = []
    for sub, out in restricted:
        sizes = {}
        for i, n in enumerate(sub):
            if n.op == "input":
                d = dists[n.attrs["name"]]
                k = atoms[n.attrs["name"]]
                sizes[i] = min(k, d.values.size) if hasattr(d, "values") else k
        plans.append((sub, out, sizes))
    return plans


def _fits(
    restricted: list[tuple[Graph, int]],
    dists: dict[str, Distribution],
    atoms: dict[str, int],
    max_joint: int,
    compress: int,
) -> bool:
    """True when every output can be evaluated on a grid within ``max_joint`` (with compressions)."""
    return all(
        sub.nodes[out].op == "const"
        or exactlaw.whole_output(sub, out, dists)  # one 1D law of any size (opgraph.dcg.exactlaw)
        or plan_compression(sub, out, sizes, max_joint, compress) is not None
        for sub, out, sizes in _plan_inputs(restricted, dists, atoms)
    )


def _work(
    restricted: list[tuple[Graph, int]], dists: dict[str, Distribution], max_joint: int
) -> Callable[[Mapping[str, int]], float | None]:
    """The allocator's cost function: cells computed by one evaluation at given counts (``None``: over budget)."""

    def work(counts: Mapping[str, int]) -> float | None:
        total = 0.0
        for sub, out, sizes in _plan_inputs(restricted, dists, counts):
            if sub.nodes[out].op == "const":
                continue
            m = int(counts[COMPRESS])
            if exactlaw.whole_output(sub, out, dists):  # one exact law quantized to the compression size
                total += m
                continue
            w = grid_work(
                sub, out, sizes, max_joint, m, keepbest.soft_joint(sub, out, _soft_joint(m), sizes, max_joint, m)
            )
            if w is None:
                return None
            total += w
        return total

    return planmemo.memoized(work)


def evaluate(
    fn: Callable[..., Any],
    *inputs: Any,
    atoms: int | Mapping[str, int] = 256,
    target_w1: float | None = None,
    quantizer: str | Mapping[str, str] = "auto",
    max_joint: int = DEFAULT_MAX_JOINT,
    compress_atoms: int | None = None,
    qmc_points: int = 2**16,
    seed: int = 0,
    balance: bool = True,
    max_memory: int | None = None,
    executor: Any = "serial",
    progress: bool | None = None,
    truncate: float | Mapping[str, Any] | None = None,
    affine: bool | None = None,
    max_seconds: float | None = roundbudget.DEFAULT_MAX_SECONDS,
) -> Any:
    """Evaluate ``fn`` on random inputs; return the output law with a certified W1 bound.

    Args:
        fn: A Python function of one scalar per input (arithmetic, comparisons, ``np.where``, NumPy ufuncs).
            It is traced once; a Python ``if`` on an input raises an error. It may return a tuple.
        *inputs: One law per positional parameter: ``Normal``, ``Uniform``, ... , ``from_scipy(frozen)``,
            ``Empirical``, ``Discrete``, a previous result, or a number.
        atoms: Atoms per input (an int, or a dict by parameter name).
        target_w1: If given, refine atoms/compression until the bound is <= target_w1 or ``max_joint`` is
            reached (``result.info["target_met"]`` says which).
        quantizer: ``"auto"``, ``"quantile"``, ``"meansplit"`` or ``"geometric"`` (or a dict by parameter name).
            ``"auto"`` takes per input the one of quantile / meansplit with the smaller exact W1, except LogNormal
            inputs of programs with 3 or more inputs that reuse a value, which get ``"geometric"`` (cells equal
            in ``log x`` and light tail cells, see ``Continuous._z_geometric_cells``).
        max_joint: Largest joint grid (elements) a node may have; beyond, separators are compressed (and where a
            separator allows, grids are kept within ``compress_atoms**2``).
        compress_atoms: Atoms after each compression (default ``max(1024, 4 * atoms)``).
        qmc_points: Points of the randomised-QMC fallback (used only where no grid fits ``max_joint``). With
            ``target_w1`` the fallback sizes its sample to the target instead: it starts at up to ``2**13``
            points and grows until the spread between its scrambles estimates W1 <= ``target_w1`` (at most
            ``QMC_MAX_POINTS`` points, ``QMC_MAX_SECONDS`` s, and the memory limit); the result says
            ``certified=False`` and carries that estimate (``w1_estimate``, ``info["w1_estimate_method"]``).
        seed: Seed of the QMC fallback (the grid evaluation is deterministic).
        balance: Rebalance long chains of ``+`` into trees (fewer compressions).
        max_memory: Memory budget in bytes: a joint grid whose evaluation would need more is evaluated in chunks
            (slabs of its outermost input axes) with the same result; ``None`` evaluates in one piece. See
            :mod:`opgraph.dcg.chunks`.
        executor: Where chunks run: ``"serial"``, ``"process"``, ``"dask"``, ``"dask://host:port"`` or an
            :class:`opgraph.parallel.Executor` (identical results on every executor).
        progress: Progress bar over the chunks (``None``: for large grids when stderr is a terminal).
        truncate: Drop negligible input tails explicitly (for programs undefined only there, such as a log of a
            Normal radius): a tail mass ``p`` cuts every input with unbounded support to its quantiles
            ``[q_p, q_{1-p}]``; a dict by input name gives a mass ``p`` or a value range ``(lo, hi)`` (``None``
            for an open end) per input. The result's ``dropped_mass`` is the probability left out; ``w1_bound``
            then bounds W1 to the output law of the truncated inputs, and the CDF band is widened by the dropped
            mass so it holds for the exact law. See :mod:`opgraph.dcg.truncation`.
        affine: Form affine enclosures (tighter bounds where inputs are shared, at some cost; see
            :mod:`opgraph.dcg.affine`); ``False`` gives the interval-only engine. ``None``: the caller's
            ``opgraph.dcg.affine.ENABLED`` (default on). The setting reaches the chunks on every executor.
        max_seconds: Time budget of a ``target_w1`` call (seconds, default
            :data:`opgraph.dcg.roundbudget.DEFAULT_MAX_SECONDS` = 20; CPU seconds of this process with the serial
            executor, so that the plan does not depend on the machine's load; wall-clock seconds with other
            executors, whose chunks run elsewhere): each refinement round's time is predicted
            from the rounds before it, and a round predicted to end after the budget is shrunk to fit (the inputs
            with the largest bound terms grown first) or not started; the call then returns its best certified
            round with a :class:`TargetNotMetWarning` naming the bound reached and the budget. The first round is
            priced by a prior cost model before it runs and shrunk where it would take most of the budget
            (:func:`opgraph.dcg.costguards.first_round_counts`); it always runs, and the final steps of the kept
            round (a deferred sub-cell pass) may add to the time, so this is a budget, not a hard limit. ``None``:
            no time budget. Ignored without ``target_w1``.

    Returns:
        A :class:`DistResult`, or a tuple of them when ``fn`` returns a tuple.

    Raises:
        DistError: a bad input, parameter, or an unsupported operation (the message says what to change).
        TraceError: ``fn`` branches on a random input or uses something that cannot be traced.
    """
    from opgraph.graph import trace

    if not callable(fn):
        raise DistError(f"evaluate(fn, ...): fn must be a function, got {type(fn).__name__}")
    if not inputs:
        raise DistError("evaluate(fn, *inputs): pass one input law per parameter of fn")
    names = _input_names(fn, len(inputs))
    dists = {n: as_distribution(x, n) for n, x in zip(names, inputs, strict=True)}
    dists, cut = truncate_inputs(dists, truncate)
    max_seconds = roundbudget.check_max_seconds(max_seconds)
    graph = trace(fn, *names)
    serial = isinstance(executor, str) and executor == "serial"
    with _affine_scope(affine), roundbudget.scope(max_seconds if target_w1 is not None else None, serial):
        results = _evaluate_graph(
            graph,
            dists,
            atoms=atoms,
            target_w1=target_w1,
            quantizer=quantizer,
            max_joint=max_joint,
            compress_atoms=compress_atoms,
            qmc_points=qmc_points,
            seed=seed,
            balance=balance,
            scale={"max_memory": max_memory, "executor": executor, "progress": progress},
        )
    results = _with_truncation(results, dists, cut)
    structure = graph.meta.get("output_structure", "value")
    return results[0] if structure == "value" else tuple(results)


def _with_truncation(
    results: list[DistResult], dists: Mapping[str, Distribution], cut: Mapping[str, Mapping[str, float]]
) -> list[DistResult]:
    """The results with the dropped mass of a truncation (this call's and that of results used as inputs)."""
    record = dict(cut)
    for name, d in dists.items():
        up = float(getattr(d, "dropped_mass", 0.0))
        if up > 0 and name not in record:
            record[name] = {"dropped": up}
    if not record:
        return results
    delta = dropped_mass(record)
    out = []
    for r in results:
        new = dataclasses.replace(
            r, dropped_mass=delta, info={**r.info, "truncation": {k: dict(v) for k, v in cut.items()}}
        )
        source = r.__dict__.get("_band_source")  # a split result's band (made on first use) stays with the copy
        out.append(new.with_band_source(source) if source is not None else new)
    return out


def rv_graph(rv: RandomVariable) -> tuple[Any, dict[str, Distribution]]:
    """Build the graph of a lazy random-variable expression; returns ``(graph, {input name: law})``."""
    from opgraph.graph import GraphBuilder

    b = GraphBuilder(name="rv")
    memo: dict[int, int] = {}
    dists: dict[str, Distribution] = {}
    counts: dict[str, int] = {}

    def visit(x: Any) -> int:
        if isinstance(x, RandomVariable):
            key = id(x)
            if key in memo:
                return memo[key]
            if isinstance(x, RVExpr):
                ids = [visit(a) for a in x.args]
                nid = b.add(x.op, ids)
            else:
                d = as_distribution(x)
                base = getattr(d, "name", "x")
                counts[base] = counts.get(base, 0) + 1
                name = f"{base}{counts[base]}"
                dists[name] = d
                nid = b.input(name)
            memo[key] = nid
            return nid
        return b.const(float(x))

    out = visit(rv)
    return b.build([out]), dists


def evaluate_rv(rv: RandomVariable, atoms: int | Mapping[str, int] = 256, **kwargs: Any) -> DistResult:
    """Evaluate a lazy random-variable expression (see :meth:`RandomVariable.evaluate`)."""
    graph, dists = rv_graph(rv)
    if not dists:
        raise DistError("the expression has no random input")
    opts = dict(
        target_w1=None,
        quantizer="auto",
        max_joint=DEFAULT_MAX_JOINT,
        compress_atoms=None,
        qmc_points=2**16,
        seed=0,
        balance=True,
    )
    truncate = kwargs.pop("truncate", None)
    use_affine = kwargs.pop("affine", None)
    max_seconds = roundbudget.check_max_seconds(kwargs.pop("max_seconds", roundbudget.DEFAULT_MAX_SECONDS))
    scale = {k: kwargs.pop(k) for k in ("max_memory", "executor", "progress") if k in kwargs}
    unknown = set(kwargs) - set(opts)
    if unknown:
        known = sorted([*opts, "truncate", "affine", "max_seconds", "max_memory", "executor", "progress"])
        raise DistError(f"evaluate(): unknown keyword(s) {sorted(unknown)}; known: {known}")
    opts.update(kwargs)
    dists, cut = truncate_inputs(dists, truncate)
    serial = scale.get("executor", "serial") == "serial"
    with _affine_scope(use_affine), roundbudget.scope(max_seconds if opts["target_w1"] is not None else None, serial):
        results = _evaluate_graph(graph, dists, atoms=atoms, scale=scale, **opts)  # type: ignore[arg-type]
    return _with_truncation(results, dists, cut)[0]


def _task(item: tuple[Callable[..., Any], Sequence[Any], dict[str, Any], dict[str, bool]], seed: int) -> Any:
    from opgraph.dcg import switches

    fn, params, kwargs, caller_switches = item
    kw = dict(kwargs)
    kw.setdefault("seed", seed)
    with switches.scope(caller_switches):  # the caller's engine switches, also in a process / Dask worker
        return evaluate(fn, *params, **kw)


def evaluate_many(
    fn: Callable[..., Any],
    param_sets: Sequence[Sequence[Any] | Mapping[str, Any]],
    *,
    executor: Any = "serial",
    seed: int = 0,
    progress: bool = False,
    **kwargs: Any,
) -> list[Any]:
    """Evaluate ``fn`` for each set of inputs through :func:`opgraph.parallel.map_tasks`.

    Args:
        fn: As for :func:`evaluate`; for ``"process"``/Dask executors it must be picklable (a top-level function,
            not a lambda).
        param_sets: One entry per evaluation: a sequence of input laws, or a mapping by parameter name.
        executor: ``"serial"``, ``"process"``, ``"dask"``, ``"dask://host:port"`` or an Executor.
        seed: Run seed; task ``i`` gets ``seed_for(seed, i)`` (only the QMC fallback uses it).
        progress: Show a progress bar.
        **kwargs: Passed to :func:`evaluate` for every set (``atoms``, ``target_w1``, ``max_joint``, ...;
            ``max_memory`` bounds each evaluation's memory, its grids then evaluated in chunks in the task;
            ``affine=None`` is resolved here, from the caller's ``opgraph.dcg.affine.ENABLED``, for every task;
            the other engine switches of :mod:`opgraph.dcg.switches` travel with the tasks too).

    Returns:
        Results in the order of ``param_sets``; identical for every executor.
    """
    from opgraph.dcg import switches
    from opgraph.parallel import map_tasks

    kwargs = {**kwargs, "affine": _affine_switch(kwargs.get("affine"))}
    caller_switches = switches.capture()
    items = []
    for k, ps in enumerate(param_sets):
        if isinstance(ps, Mapping):
            names = _input_names(fn, len(ps))
            missing = [n for n in names if n not in ps]
            if missing:
                raise DistError(f"param_sets[{k}]: missing input(s) {missing}")
            params: Sequence[Any] = [ps[n] for n in names]
        elif isinstance(ps, Sequence) and not isinstance(ps, str):
            params = list(ps)
        else:
            raise DistError(f"param_sets[{k}] must be a sequence of inputs or a dict by parameter name")
        items.append((fn, params, kwargs, caller_switches))
    return map_tasks(_task, items, executor=executor, seed=seed, progress=progress, desc="opgraph.dcg")
