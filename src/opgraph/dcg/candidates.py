"""Other grids tried beside a fixed-atoms answer, evaluated and min-ed in one loop (issue 14 §3: never worse).

A fixed-atoms call (``atoms=N``) evaluates one grid: the requested one, or the largest that fits ``max_joint``
(``info["atoms_reduced"]``). Several mechanisms evaluate other grids too and keep the smaller certified bound; each
is a :class:`Candidate` of the list that :func:`opgraph.dcg.api._evaluate_graph_grid` builds, in this order:

1. ``full_grid_alternative``: the largest power-of-two grid that fits whole (a reduced or compressed grid can lose
   the certificates that need the whole grid);
2. ``budget_allocation``: per-input allocations of a reduced grid's budget (:mod:`opgraph.dcg.budgetalloc`, the
   ladder of caps ``N, N/2, ...``; switch ``budget_alloc_fixed_atoms``);
3. ``smaller_request``: the same call at half the atoms per input, box-linear mixture on (the mixture does not run
   on reduced or compressed grids; switch ``box_linear``);
4. ``carry_half``: the same call at ``N/2``, its certificate carried over by the triangle inequality
   (:mod:`opgraph.dcg.carry`; switch ``carry_fixed_atoms``).

A candidate says whether it is wanted (its switch, condition and guard, read against the answer kept so far), which
trials it evaluates (generated from the kept answer, lazily: a trial may depend on what an earlier one kept), and
how a trial's answer is merged into the kept one (:func:`keep_whole`: all outputs or none, where every output is
certified and the largest bound is smaller; per output, where smaller; or the carry's triangle bound). Every
answer carries its own certified bound, so the kept answer is never worse than the first one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import Any


@dataclasses.dataclass
class Kept:
    """The answer kept so far: one result per output and the grid it was evaluated on.

    Attributes:
        results: One :class:`opgraph.dcg.DistResult` per output.
        quantized: The quantized inputs of that grid (``None`` once a result of another call is kept).
        labels: The inputs' labels in the bound terms.
        compress: The grid's compression size (atoms).
        atoms: The call's counts for that grid (atoms per input).
        own: Per output, whether its result was made by this call (its ``info["seconds_total"]`` is this call's).
    """

    results: list[Any]
    quantized: dict[str, Any] | None
    labels: dict[str, str] | None
    compress: int
    atoms: dict[str, int]
    own: list[bool]

    @property
    def worst(self) -> float:
        """The largest bound over the outputs (W1 units)."""
        return float(max(r.w1_bound for r in self.results))


#: A trial: evaluates one more answer (a grid of this call, or a whole call at a smaller request).
Trial = Callable[[], Kept]


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One mechanism that evaluates other grids beside the answer.

    Attributes:
        name: What it is (its ``info`` key or record, see the module docstring).
        wanted: Its switch, condition and guard, read against the answer kept so far.
        trials: The answers it evaluates, generated from the kept answer when the loop reaches it.
        keep: Merges a trial's answer into the kept one (returns the new kept answer).
    """

    name: str
    wanted: Callable[[Kept], bool]
    trials: Callable[[Kept], Iterator[Trial]]
    keep: Callable[[Kept, Kept], Kept]


def best_of(kept: Kept, candidates: Sequence[Candidate]) -> Kept:
    """The answer left after every wanted candidate's trials were evaluated and merged, in order.

    Args:
        kept: The call's own answer.
        candidates: The mechanisms, in the order they run (each reads what the earlier ones kept).

    Returns:
        The kept answer.
    """
    for cand in candidates:
        if not cand.wanted(kept):
            continue
        for trial in cand.trials(kept):
            kept = cand.keep(kept, trial())
    return kept


def wins_whole(kept: Kept, new: Kept) -> bool:
    """Whether ``new`` replaces every output: all certified and a smaller largest bound."""
    return new.worst < kept.worst and all(r.certified for r in new.results)


def keep_whole(kept: Kept, new: Kept) -> Kept:
    """``new`` where :func:`wins_whole`, else ``kept``."""
    return new if wins_whole(kept, new) else kept


def keep_per_output(
    kept: Kept, new: Kept, note: Callable[[Any, Any, bool], dict[str, Any]], key: str, keep_info: Sequence[str] = ()
) -> Kept:
    """Per output, ``new``'s result where certified with a smaller bound (a result of another call).

    Args:
        kept: The answer kept so far.
        new: Another call's answer (its grid is not this call's: the kept grid is forgotten).
        note: ``(kept result, new result, used) -> record`` stored as ``info[key]`` on the result kept.
        key: The ``info`` key of the record.
        keep_info: ``info`` entries of the kept result that the new one takes over where it is used (this call's
            own records, such as its reduction).

    Returns:
        The merged answer.
    """
    results, own, any_used = [], [], False
    for r, s, mine in zip(kept.results, new.results, kept.own, strict=True):
        use = s.certified and s.w1_bound < r.w1_bound
        info = {**(s.info if use else r.info), key: note(r, s, use)}
        if use:
            info.update({k: r.info[k] for k in keep_info if k in r.info})
        results.append(dataclasses.replace(s if use else r, info=info))
        own.append(mine and not use)
        any_used = any_used or use
    if not any_used:
        return dataclasses.replace(kept, results=results)
    return dataclasses.replace(kept, results=results, quantized=None, labels=None, own=own)
