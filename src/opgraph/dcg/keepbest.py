"""Keep the better of two certificates: an exact-law rewrite against the program as written; no compression in 1-D.

:mod:`opgraph.dcg.exactlaw` replaces closed-form separators (regrouped ones too: ``(y1 + z + y2) * z`` read as
``((y1 + y2) + z) * z``) by new inputs carrying their exact laws. That removes first-order terms, but the rewritten
grid is another grid: the new input's axis (``256`` atoms of ``y1 + y2`` against ``16 x 16`` of ``y1, y2``) changes
what the sub-cell and second-order Taylor box passes (:mod:`opgraph.dcg.taylor`) reach, and a separator does not
promise a smaller bound. Measured on ``(y1 + z + y2) * z`` (Normals, 16 atoms per input): 0.103 with the rewrite,
0.0625 as written (Taylor's probe gain on the rewritten grid is 0.067, under its 0.1 threshold; on the grid as
written its pass halves the cellwise bound).

Both answers bound W1 to the same exact output law (the rewrite changes values only by rounding, and the new
inputs' quantizations carry their own exact W1 and rounding slack), so the smaller bound is a valid bound and the
narrower CDF band (:class:`opgraph.dcg.band.GridCells`, both enclose the exact law) a valid band:
:func:`exact_or_written` evaluates both and keeps, per output, the better bound and, separately, the narrower band.

Cost guard: the program as written is evaluated too only where the rewrite is not the whole output (a whole-output
exact law is the exact law up to its quantization), where its joint grid needs no compression (where it does, the
Taylor pass does not run on it either) and where that grid is at most :data:`MAX_RATIO` times the rewritten one's
(the pair then costs at most ``1 + MAX_RATIO`` times the rewrite alone). Deferred sub-cell passes of both run
under :func:`opgraph.dcg.engine._pair_passes` (the better answer's first, the other's only where its probe can
still win), as for the cancellation pair.

**One-input outputs** (:func:`soft_joint`). A ``target_w1`` refinement starts at a small compression size (256) and
sets the plan's soft grid limit to its square, so a one-input program whose atoms pass 65,536 had a node
compressed to 256 atoms: every grid of such a program is the one axis of its input (n values per node with or
without the compression), so the compression saves no more than a constant factor of work while its regrouping
costs about ``span / 256`` of W1. HigdonSine at ``target_w1 = 1e-5 std`` had 8.1e-5 std at 16,384 atoms and
5.4e-3 std at 169,577 atoms with the compression (the refinement kept the first and missed the target by 8x). The
soft limit is dropped there (only ``max_joint`` can force a compression on such an output) where the plan without
it costs at most :data:`MAX_WORK_RATIO` times the work of the plan with it or at most :data:`WORK_FLOOR` cells: a
long one-input program (a loop of hundreds of steps) keeps its compressions, whose saved work is then the number of
nodes after them times ``n / 256`` (a 200-step loop at 109,277 atoms: 84 s of CPU without them, 10 s with them).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable
from typing import Any

from opgraph.dcg import exactlaw

#: Whether :func:`exact_or_written` also evaluates the program as written (``ENABLED.set(False)``: the exact-law
#: rewrite alone, as before).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_keepbest", default=True)
#: The program as written is evaluated only where its joint grid is at most this many times the rewritten one's.
MAX_RATIO = 8


#: A one-input output is evaluated without soft compressions where that costs at most this many times the work
#: (:func:`opgraph.dcg.engine.grid_work`, cells) of the plan with them, or at most :data:`WORK_FLOOR` cells.
MAX_WORK_RATIO = 4.0
#: ... (about 2 s of CPU at the measured ~0.5 us per cell). A long program keeps its compressions: a 200-step loop
#: at 109,277 atoms is 1.7e8 cells without them, 4.3e5 with them (84 s against 10 s of CPU, measured).
WORK_FLOOR = 2**22


def soft_joint(
    graph: Any, output: int, soft: int | None, sizes: dict[int, int], max_joint: int, compress: int
) -> int | None:
    """The plan's soft grid limit for ``output``: ``soft``, or None on a short one-input output.

    None where the output depends on one input and its plan without soft compressions costs at most
    :data:`MAX_WORK_RATIO` times the work of the plan with them, or at most :data:`WORK_FLOOR` cells.

    Args:
        graph: The graph restricted to ``output`` (:func:`opgraph.dcg.engine.restrict`).
        output: The output's node id.
        soft: The soft limit the caller would use (:func:`opgraph.dcg.api._soft_joint`).
        sizes: Atom count of each input node.
        max_joint: Largest joint grid allowed.
        compress: The compression size.

    Returns:
        ``soft``, or None (no soft compressions) for a one-input output (module docstring).
    """
    from opgraph.dcg import engine

    if soft is None or not ENABLED.get() or len(sizes) != 1:
        return soft
    with_soft = engine.grid_work(graph, output, sizes, max_joint, compress, soft)
    without = engine.grid_work(graph, output, sizes, max_joint, compress, None)
    if without is None or with_soft is None or without > max(MAX_WORK_RATIO * with_soft, WORK_FLOOR):
        return soft
    return None


def _grid(graph: Any, quantized: dict[str, Any]) -> dict[int, int]:
    return {i: int(quantized[n.attrs["name"]].atoms.size) for i, n in enumerate(graph) if n.op == "input"}


def worth_pair(
    exl: exactlaw.Substitution,
    sub: Any,
    out: int,
    quantized: dict[str, Any],
    dists: dict[str, Any],
    max_joint: int,
    compress_atoms: int,
    soft_joint: int | None,
) -> bool:
    """Whether the program as written is evaluated beside the rewrite (the cost guard of the module docstring)."""
    from opgraph.dcg import engine

    if not ENABLED.get() or exactlaw.whole_output(sub, out, dists):
        return False
    sizes = _grid(sub, quantized)
    plan = engine.plan_compression(sub, out, sizes, max_joint, compress_atoms, soft_joint)
    if plan is None or plan:
        return False
    new = math.prod(_grid(exl.graph, exl.quantized).values())
    return math.prod(sizes.values()) <= MAX_RATIO * max(new, 1)


def _off(fn: Callable[..., Any] | None) -> Callable[..., Any] | None:
    """``fn`` run with the exact-law rewrite switched off (a deferred pass of the program as written)."""
    if fn is None:
        return None

    def run(*args: Any, **kwargs: Any) -> Any:
        tok = exactlaw.ENABLED.set(False)
        try:
            return fn(*args, **kwargs)
        finally:
            exactlaw.ENABLED.reset(tok)

    return run


def exact_or_written(
    exl: exactlaw.Substitution,
    sub: Any,
    out: int,
    quantized: dict[str, Any],
    labels: dict[str, str],
    dists: dict[str, Any],
    evaluate: Callable[..., Any],
    **kw: Any,
) -> Any:
    """The rewrite's answer, or the program as written's where its bound is smaller (see module docstring).

    Args:
        exl: The exact-law rewrite of ``sub`` (:func:`opgraph.dcg.exactlaw.substitute`).
        sub: The graph restricted to ``out`` as written.
        out: Its output id.
        quantized: Quantized law per input name of ``sub``.
        labels: Label per input name.
        dists: Exact law per input name.
        evaluate: :func:`opgraph.dcg.engine.evaluate_output`.
        **kw: Its keyword arguments (``max_joint``, ``compress_atoms``, ...).

    Returns:
        An :class:`opgraph.dcg.engine.Evaluation`: ``info["exact_laws"]`` where the rewrite's answer is kept; where
        the pair was evaluated, ``info["exact_law_pair"]`` records which answer was kept and the other's bound
        (the rewrite's replacements under ``"exact_laws"`` there when the program as written won).
    """
    from opgraph.dcg import engine, subcells

    def rewritten() -> Any:
        return exl.annotate(evaluate(exl.graph, exl.output, exl.quantized, exl.labels, exl.dists, **kw))

    if not worth_pair(exl, sub, out, quantized, dists, kw["max_joint"], kw["compress_atoms"], kw.get("soft_joint")):
        return rewritten()
    outer_defer = engine.DEFER_SUBCELLS.get()
    kw_old = dict(kw)
    if kw_old.get("shared_boxes") is not None:
        kw_old["shared_boxes"] = {}  # another grid: its boxes are not the rewrite's
    tok_d = engine.DEFER_SUBCELLS.set(True)
    try:
        new = rewritten()
        tok_x = exactlaw.ENABLED.set(False)
        try:
            old = evaluate(sub, out, quantized, labels, dists, **kw_old)
        finally:
            exactlaw.ENABLED.reset(tok_x)
    finally:
        engine.DEFER_SUBCELLS.reset(tok_d)
    if old.resume is not None:  # the program as written's pass runs with the rewrite off too
        r = old.resume
        old.resume = engine.DeferredPass(_off(r.run), r.predict, _off(r.probe))
    laws = new.info.get("exact_laws", [])

    def pick(old_e: Any, new_e: Any, passes: dict[str, Any] | None) -> Any:
        best = new_e if new_e.w1_bound <= old_e.w1_bound else old_e
        other = old_e if best is new_e else new_e
        rec: dict[str, Any] = {"used": "exact laws" if best is new_e else "as written", "other_bound": other.w1_bound}
        if best is old_e:
            rec["exact_laws"] = laws
            best.info.pop("exact_laws", None)
        else:
            best.info["exact_laws"] = laws
        if passes is not None:
            rec["subcell_passes"] = passes
        best.info["exact_law_pair"] = rec
        if new_e.cells is not None and old_e.cells is not None:  # both enclose the exact law: the narrower band
            best.cells = min((best.cells, other.cells), key=engine._cells_area)  # ties: the kept answer's
        elif best.cells is None:
            best.cells = other.cells
        return best

    o_res, n_res = old.resume, new.resume
    old.resume = new.resume = None
    if o_res is None and n_res is None:
        return pick(old, new, None)

    def run_pair(ceiling: float) -> Any:
        o, n, passes = engine._pair_passes(old, o_res, new, n_res, ceiling)
        return pick(o, n, passes)

    if not outer_defer:
        return run_pair(subcells.CEILING.get())
    pre = pick(old, new, None)

    def predict_pair(factor: float) -> float:
        return min(r.predict(factor) if r is not None else e.w1_bound for e, r in ((old, o_res), (new, n_res)))

    def probe_pair() -> float | None:
        got = [r.probe() if r is not None and r.probe is not None else None for r in (o_res, n_res)]
        return min(g if g is not None else e.w1_bound for g, e in zip(got, (old, new), strict=True))

    pre.resume = engine.DeferredPass(run_pair, predict_pair, probe_pair)
    return pre
