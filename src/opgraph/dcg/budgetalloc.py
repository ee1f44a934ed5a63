"""Per-input atom counts within a grid budget (``max_joint``), chosen from per-input sensitivities.

Where a joint grid does not fit ``max_joint`` (no node separates the shared inputs), the fixed-atoms path of
:func:`opgraph.dcg.evaluate` used to cap every input by one common count (``api._largest_fitting_grid``). The bound
of such a grid is a sum of per-input terms (``result.bound_terms``), and on the UQ programs a few inputs carry most
of it (WingWeight: 4 of its 10 inputs give 80 % at 4 atoms each; OTL: 2 of 6 give 70 %). Spending the budget on
those inputs lowers the bound at the same grid size.

The model: input ``i``'s term at ``n`` atoms is ``t_i(n) = t_i(n0) (s(n0) / s(n))**p_i`` (``s(n)`` the atoms the
quantizer really makes at count ``n``, ``p_i`` the term's order: 1 for first-order quantile cells). The budget is
a joint grid, whose size is a product, so every step multiplies one count: :func:`allocate` starts every input at
its floor and repeatedly grows the input whose term falls most per unit of ``log`` grid size, while the grid still
fits (``fits``) and the count stays at most its cap. That is the greedy solution of ``min sum_i t_i(n_i)`` subject
to ``sum_i log n_i <= log budget``, exact for the convex model up to the step size.

This is not a certificate: every grid evaluated carries its own certified bound, and callers keep the smallest
(the uniform reduction's answer included), so the answer is never worse than the uniform one.

Fixed-atoms cost (``api._budget_allocations``): the ladder's distinct allocations are evaluated in the order of
their predicted bounds (:data:`MODEL_FIRST`), an allocation the model predicts no better than the uniform grid is
skipped (:data:`MODEL_SKIP`), and an allocation is evaluated only while the call is predicted to end within
:data:`FIXED_ATOMS_SECONDS` (each allocation's seconds predicted from the call's seconds so far and the engine's
work model); skipped ones are listed in ``info["atoms_reduced"]["allocation"]["skipped"]``.

Switches: :data:`ENABLED` (``budget_alloc`` in :mod:`opgraph.dcg.switches`, default on) and :data:`FIXED_ATOMS`
(``budget_alloc_fixed_atoms``, default off: the fixed-atoms allocations cost 2-4.5x the CPU of the call).
"""

from __future__ import annotations

import contextvars
import math
from collections.abc import Callable, Mapping

#: Whether ``target_w1`` rounds whose proposal does not fit re-allocate the budget instead of only scaling it down
#: (and, with :data:`FIXED_ATOMS` on too, whether fixed-atoms calls whose grid does not fit ``max_joint`` also try
#: per-input allocations).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_budgetalloc", default=True)

#: Whether fixed-atoms calls whose grid does not fit ``max_joint`` also evaluate per-input allocations (under
#: :data:`ENABLED`). **Off by default** (lead's decision at the merge of alloc-fixed, measured in the same process,
#: 1 thread, load 3-5): the ladder's extra evaluations cost 2-4.5x the CPU of the call for a 1.2-2x smaller bound
#: (Piston at 8 atoms per input: bound 0.1118 in 21 CPU s -> 0.0891 in 68 s; Borehole at 64: 9.5 -> 42 s), which
#: pushed the UQ suite's Piston and DampedOsc 8-atom rows past their 30 s call limit. ``target_w1`` calls, which
#: have a time budget, re-allocate by default. Opt in with ``switches.scope({"budget_alloc_fixed_atoms": True})``.
FIXED_ATOMS: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_budgetalloc_fixed", default=False)

#: Where the fixed-atoms allocation takes the per-input sensitivities from: ``"terms"`` (the bound terms of the
#: uniformly reduced grid, evaluated anyway) or ``"spreads"`` (interval-derivative effect of each input between
#: its 16 % and 84 % quantiles, :func:`opgraph.dcg.semidiscrete.input_spreads`; no evaluation). Measured in
#: docs/benchmarks/dcg.md (branch alloc-fixed): ``"terms"`` is the default.
SENSITIVITY = "terms"

#: Whether a fixed-atoms call tries every cap of :func:`ladder` (the request, its half, ...): what makes the bound
#: at ``2N`` at most the one at ``N``, at one evaluation per distinct allocation (Borehole at 64 atoms: 4 besides
#: the uniform grid, 9.5 -> 42 CPU s). ``False``: only the request's own cap (one evaluation; no such guarantee).
LADDER = True

#: CPU seconds (wall-clock seconds where chunks run in other processes) within which a fixed-atoms call runs its
#: allocations: an allocation is evaluated only where the call's seconds so far plus its predicted seconds (the
#: call's seconds before the allocations times the allocation's work over the uniform grid's, times
#: ``roundbudget.SAFETY``) stay within it; skipped ones are listed in the record. Half the default ``max_seconds``
#: of a ``target_w1`` call. ``None``: no limit (every rung of the ladder runs).
FIXED_ATOMS_SECONDS: float | None = 10.0

#: Fixed atoms: evaluate the allocations in the order of their predicted bounds (the model's best first), so the
#: time share goes to the likeliest winner.
MODEL_FIRST = True

#: Fixed atoms: skip an allocation whose predicted bound is not below the model's bound at the uniform grid.
MODEL_SKIP = True

#: A ``target_w1`` round whose proposal does not fit is re-allocated only where the proportional step that fits is
#: predicted to shrink the bound by less than this fraction (the round already fills the budget: WingWeight, OTL at
#: 1e-2). Where the step still pays, the allocator's plan is kept: a four-input program with two Normal inputs at
#: 2e-2 took 0.010 in 3 CPU s with it and 0.017 in 12 s with every round re-allocated.
REALLOCATE_BELOW_GAIN = 0.25

#: Fewest atoms an input with a bounded support may get (an unbounded one: 2, its tails need a cell each).
BOUNDED_FLOOR = 1

#: Smallest factor by which one greedy step multiplies a count (at least one atom more).
STEP = 2**0.25

Size = Callable[[str, int], int]


def predicted(
    terms: Mapping[str, float],
    at: Mapping[str, int],
    counts: Mapping[str, int],
    orders: Mapping[str, float] | None = None,
    size: Size | None = None,
) -> float:
    """The model's bound ``sum_i t_i(at_i) (s(at_i) / s(n_i))**p_i`` at ``counts`` (W1 units).

    Args:
        terms: Each input's term at the counts ``at`` (W1 units).
        at: The counts the terms were measured at.
        counts: The counts to predict at.
        orders: Each term's order ``p`` (1 where absent).
        size: The atoms the quantizer makes for an input at a count (the count itself where ``None``).

    Returns:
        The predicted sum of the terms.
    """
    s = size or (lambda _n, k: k)
    total = 0.0
    for v, t in terms.items():
        p = (orders or {}).get(v, 1.0)
        total += t * (s(v, at[v]) / s(v, counts[v])) ** p
    return total


def allocate(
    terms: Mapping[str, float],
    at: Mapping[str, int],
    fits: Callable[[dict[str, int]], bool],
    caps: Mapping[str, int],
    floors: Mapping[str, int],
    orders: Mapping[str, float] | None = None,
    size: Size | None = None,
) -> dict[str, int] | None:
    """Counts ``floors <= n <= caps`` that fit, grown greedily where the model's bound falls most per log grid.

    Inputs in ``at`` without a positive finite term keep ``min(at, caps)``: nothing says what fewer atoms would
    cost them. Each step grows one input to the smallest count above ``max(n + 1, n * STEP)`` whose quantizer
    makes more atoms (``size``), clamped at its cap; an input whose step does not fit is not grown again.

    Args:
        terms: Each input's bound term at the counts ``at`` (W1 units).
        at: The counts the terms were measured at (every input of the program).
        fits: Whether counts fit the grid budget.
        caps: Largest count of each input (the request).
        floors: Smallest count of each input.
        orders: Each term's order ``p`` (1 where absent).
        size: The atoms the quantizer makes for an input at a count (the count itself where ``None``).

    Returns:
        The counts, or ``None`` where not even the floors fit.
    """
    s = size or (lambda _n, k: k)
    free = {v for v, t in terms.items() if v in at and math.isfinite(t) and t > 0}
    out = {v: (min(floors[v], caps[v]) if v in free else min(at[v], caps[v])) for v in at}
    if not fits(dict(out)):
        return None
    p = {v: (orders or {}).get(v, 1.0) for v in free}
    base = {v: terms[v] * s(v, at[v]) ** p[v] for v in free}  # t_v(n) = base_v / s(n)**p_v

    def nxt(v: str, n: int) -> int | None:
        cap = caps[v]
        if n >= cap:
            return None
        k, have = min(cap, max(n + 1, math.ceil(n * STEP))), s(v, n)
        return k if s(v, k) > have else first_above(lambda c: s(v, c), have, k, cap)

    frozen: set[str] = set()
    while True:
        best: tuple[float, str, int] | None = None
        for v in sorted(free - frozen):
            k = nxt(v, out[v])
            if k is None:
                frozen.add(v)
                continue
            a, b = s(v, out[v]), s(v, k)
            gain = base[v] * (a ** -p[v] - b ** -p[v]) / math.log(b / a)
            if best is None or gain > best[0]:
                best = (gain, v, k)
        if best is None:
            return out
        _, v, k = best
        trial = {**out, v: k}
        if fits(trial):
            out = trial
        else:
            frozen.add(v)


def first_above(made: Callable[[int], int], have: int, lo: int, hi: int) -> int | None:
    """The smallest count in ``(lo, hi]`` whose quantizer makes more than ``have`` atoms, by bisection.

    ``made(c)`` (the atoms a quantizer makes at count ``c``) is non-decreasing in ``c``, and ``made(lo) <= have``.
    A quantizer that rounds counts down to powers of two makes as many atoms for every count of ``[2^k, 2^(k+1))``:
    scanning those counts one by one quantized an input up to a million times (18 GB on a one-input grid near 2^20
    atoms); bisection asks about ``log2(hi - lo)`` counts.

    Returns:
        The count, or ``None`` where even ``hi`` makes no more than ``have``.
    """
    if made(hi) <= have:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if made(mid) > have:
            hi = mid
        else:
            lo = mid
    return hi


def ladder(requested: Mapping[str, int], floor: Mapping[str, int]) -> list[dict[str, int]]:
    """The caps ``min(requested_i, top // 2**k)``, k = 0, 1, ..., while some cap is above ``floor``.

    ``top`` is the largest request and ``floor`` the uniform grid's counts. A fixed-atoms call at ``2N`` per input tries the allocations capped at ``2N, N, N/2, ...``, a superset of the
    call at ``N``'s, so with the same uniform grid (both requests reduced to it) the kept bound at ``2N`` is at most
    the one at ``N``.
    """
    out = []
    top = max(requested.values())
    k = 0
    while True:
        caps = {v: max(1, min(n, top >> k)) for v, n in requested.items()}
        if not any(caps[v] > floor[v] for v in caps):
            return out
        out.append(caps)
        k += 1
