"""Time budget of a ``target_w1`` refinement: predict each round's cost and stop before one that cannot finish.

A ``target_w1`` call refines in rounds (:mod:`opgraph.dcg.refine` allocates the atoms of the next round from the
bound terms of the last). Each round costs more than the one before, and on programs whose target is out of
reach the last rounds can take most of the call while improving the bound by a few percent (the 4-16-1 MLP of
``benchmarks/dcg/uq.py`` at ``1e-2 std``: 1.5 s for the first round, 60 s for the second, 50 s for a third that
shrank the bound by 1.7 %). This module gives the loop

* a :class:`RoundBudget`: the seconds left of the call's ``max_seconds`` (this process's CPU seconds for serial
  calls, wall-clock seconds where chunks run in other processes), and the predicted seconds of
  a round of given work (the engine's planned box-nodes, :func:`opgraph.dcg.api._work`) from the rounds measured
  so far: the larger of ``s_k (work / w_k) ** B_MIN`` (``s_k``, ``w_k`` the last round's) and the straight line
  through the last two rounds (their slope leaves out the fixed costs that make the small first round look
  cheap per unit of work);
* :func:`fill_by_terms`: the next round's counts grown input by input, largest bound term first, while the round
  still fits (memory and time): where the proportional step rounds every input down to the same power of two,
  the inputs that dominate the bound still get their doubling;
* :func:`predicted_bound`: the next round's bound from the fitted term orders (``t_i(n) = t_i (n_i / n_i') **
  p_i``), so a round whose predicted gain is below :data:`MIN_GAIN` is not run;
* the affine probe (:func:`affine_pays`): where affine enclosures gave the first round no tighter bound than the
  interval engine (the MLP: identical bounds, 1.45-2x the CPU), later rounds run without them.

The deadline is shared by nested calls (the disjoint split's leaves, :mod:`opgraph.dcg.disjoint`) through a
ContextVar set by :func:`scope`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opgraph.dcg.errors import DistError

#: Default budget of a ``target_w1`` call (CPU seconds of a serial call; wall-clock seconds with other executors):
#: rounds predicted to end later are not started.
DEFAULT_MAX_SECONDS = 20.0
#: Exponent of the power-law floor of a round's predicted seconds, ``s_k (work / w_k) ** B_MIN``.
B_MIN = 0.8
#: Safety factor on a predicted round time (model error, load changes between rounds).
SAFETY = 1.25
#: A round predicted to shrink the bound by less than this fraction (and not to reach the target) is not run.
MIN_GAIN = 0.05
#: The affine probe runs only where the first round took at most this fraction of the budget.
PROBE_FRACTION = 0.1
#: Affine forms are kept where they tighten the first round's bound by more than this fraction.
AFFINE_MIN_GAIN = 1e-3
#: Long programs (:data:`opgraph.dcg.costguards.LONG_NODES`): a graph pass costs a per-node floor (about 0.7-1.1 ms
#: of Python and NumPy calls per node, whatever the grid up to a few hundred boxes) plus a per-box-node part that
#: reaches the floor at this many boxes (measured on the 1,000-step ODEs, 1 thread, 2026-12-07: 4,096 boxes cost
#: 2.5-2.8x the floor, so the knee is 2,150-2,800 boxes; 2,048 errs towards predicting more).
FLOOR_KNEE_BOXES = 2048

log = logging.getLogger(__name__)


def _clock() -> float:
    """The budget's clock of serial calls: this process's CPU seconds (``time.process_time``; tests replace it)."""
    return time.process_time()


def _wall() -> float:
    """The budget's clock where chunks run on other processes (``executor`` not serial): wall-clock seconds."""
    return time.perf_counter()


_CURRENT: ContextVar[RoundBudget | None] = ContextVar("opgraph_dcg_round_budget", default=None)


@dataclass
class RoundBudget:
    """The time budget of one ``target_w1`` call and the cost model of its rounds.

    Attributes:
        max_seconds: The budget (seconds of ``clock``, from the call's start).
        clock: The clock (seconds): this process's CPU time (:func:`_clock`) for serial calls, so that the plan
            does not depend on the machine's load; wall-clock time (:func:`_wall`) where chunks run elsewhere.
        start: ``clock()`` at the call's start.
        rounds: Measured rounds, ``(work, seconds)`` each (work in the engine's box-node units).
        long_nodes: The graph's node count where it is a long program (set by
            the `target_w1` loop from :func:`opgraph.dcg.costguards.long_nodes`; 0: a short one). Then a round's seconds are predicted
            from the per-node floor (:meth:`predict`) instead of a power law of the work.
        planned_work: The work of the round about to run (box-nodes; 0: not known), set where a long program's
            round is planned: the sub-cell pass of a round is costed from it
            (:func:`opgraph.dcg.costguards.pass_seconds`).
        held: The smallest bound a long program's rounds hold so far after the sub-cell passes run with them
            (``inf``: none yet): a later round that cannot get below it without its pass is not worth running.
        pass_seconds: Seconds of sub-cell passes run inside the round being measured (not part of its cost model:
            :meth:`record` takes them off); ``passes_total``: of all rounds so far.
        first_round: The index in :attr:`rounds` of the running call's first round (:meth:`start_long_call`).
        lean_idle: A long program's lean Taylor pass stopped with nothing to gain in this call
            (:mod:`opgraph.dcg.longmix`: later rounds reserve no time for it).
        pending_pass: Predicted seconds of the sub-cell pass a long program's kept round left pending (it runs at the
            call's end if that round stays kept; 0: none).
        credit: Seconds added to the time left (:meth:`left`) for one round planned on the pending pass's time
            (:mod:`opgraph.dcg.roundcredit`; 0: none); ``credit_used``: that round was run in this call.
        pass_share: The share of the seconds left that one sub-box slope pass may be predicted to take in the round
            being evaluated (0: :data:`opgraph.dcg.subslope.TARGET_SHARE`); set where a kept mixture-first round is
            evaluated again (:data:`opgraph.dcg.mixfirst.PASS_SHARE`).
    """

    max_seconds: float
    clock: Callable[[], float] = field(default=lambda: _clock())
    start: float = math.nan
    rounds: list[tuple[float, float]] = field(default_factory=list)
    long_nodes: int = 0
    planned_work: float = 0.0
    held: float = math.inf
    pass_seconds: float = 0.0
    passes_total: float = 0.0
    first_round: int = 0
    lean_idle: bool = False
    pending_pass: float = 0.0
    credit: float = 0.0
    credit_used: bool = False
    pass_share: float = 0.0

    def __post_init__(self) -> None:
        if math.isnan(self.start):
            self.start = self.clock()

    def start_long_call(self, nodes: int) -> None:
        """Start a ``target_w1`` call's long-program state (``nodes``: its node count, 0 for a short program).

        Nested calls share the budget (its deadline and measured rounds); the long-program state (node count,
        planned work, bound held, the round the call started at) is per call.
        """
        self.long_nodes, self.planned_work, self.held = int(nodes), 0.0, math.inf
        self.pass_seconds, self.first_round = 0.0, len(self.rounds)
        self.lean_idle = False
        self.pending_pass, self.credit, self.credit_used = 0.0, 0.0, False

    def elapsed(self) -> float:
        """Seconds since the call started."""
        return self.clock() - self.start

    def left(self, held_back: float = 0.0) -> float:
        """Seconds left of the budget (may be negative), less ``held_back`` seconds kept for later work.

        A granted :attr:`credit` (:mod:`opgraph.dcg.roundcredit`) counts as time left.
        """
        return self.max_seconds + self.credit - held_back - self.elapsed()

    def record(self, work: float | None, seconds: float) -> None:
        """Record one measured round (ignored without a positive work figure).

        The seconds of sub-cell passes run within the round (:attr:`pass_seconds`) are taken off: the model predicts
        the graph evaluation of a round, and a pass is costed on its own (:func:`opgraph.dcg.costguards.pass_seconds`).
        """
        seconds, self.pass_seconds = seconds - self.pass_seconds, 0.0
        if work is not None and work > 0 and seconds >= 0:
            self.rounds.append((float(work), float(seconds)))

    def rate(self) -> float | None:
        """Seconds per unit of work between the last two rounds of different work (``None``: not yet known)."""
        for k in range(len(self.rounds) - 1, 0, -1):
            (w1, s1), (w0, s0) = self.rounds[k], self.rounds[k - 1]
            if w1 != w0:
                r = (s1 - s0) / (w1 - w0)
                return r if math.isfinite(r) and r > 0 else None
        return None

    def predict(self, work: float | None) -> float:
        """Predicted seconds of a round of ``work`` (``inf`` without work; 0 before any round was measured).

        The larger of a power law from the last round, ``s (work / w) ** B_MIN``, and, once two rounds of different
        work exist, the straight line through them (``s + rate * (work - w)``: a round's fixed costs, which make
        the first, small rounds look cheap per unit of work, drop out of the slope).
        """
        if work is None or not math.isfinite(work):
            return math.inf
        if not self.rounds:
            return 0.0
        w, s = self.rounds[-1]
        if self.long_nodes > 0:
            return floor_seconds(s, w, work, self.long_nodes, self.rate())
        pred = s * (max(work, 1.0) / w) ** B_MIN
        r = self.rate()
        if r is not None and work > w:
            pred = max(pred, s + r * (work - w))
        return pred

    def affordable(self, work: float | None, held_back: float = 0.0) -> bool:
        """Whether a round of ``work``, with the :data:`SAFETY` margin, is predicted to end inside the budget.

        ``held_back``: seconds of the budget kept for later work (:meth:`left`).
        """
        return SAFETY * self.predict(work) <= self.left(held_back)

    def describe(self, work: float | None, held_back: float = 0.0) -> str:
        """One phrase for messages: the predicted round time against the time left (less ``held_back`` s)."""
        return (
            f"predicted {self.predict(work):.3g} s (x{SAFETY} margin) with {max(self.left(held_back), 0.0):.3g} s "
            f"left of max_seconds={self.max_seconds - held_back:g}"
        )


def floor_seconds(seconds: float, work: float, new_work: float, nodes: int, rate: float | None = None) -> float:
    """Predicted seconds of a long program's round of ``new_work`` box-nodes from a measured one.

    A pass over a long program costs a per-node floor ``f`` (seconds per node, whatever the grid up to a few
    hundred boxes) plus ``f / FLOOR_KNEE_BOXES`` per box and node; the measured round (``seconds`` at ``work``)
    calibrates ``f`` in this process (load included): ``seconds = f (nodes + work / knee)``, and the prediction is
    ``seconds + (new_work - work) f / knee`` (``seconds`` for a smaller round: the floor does not shrink), or the
    straight line through two measured rounds (``rate``, seconds per box-node) where it predicts more.

    Args:
        seconds: The measured round's seconds.
        work: The measured round's work (box-nodes).
        new_work: The work of the round to predict (box-nodes).
        nodes: The graph's node count.
        rate: Seconds per box-node between two measured rounds (None: not known).
    """
    per_box_node = seconds / (nodes * FLOOR_KNEE_BOXES + max(work, 0.0))
    extra = max(new_work - work, 0.0)
    pred = seconds + extra * per_box_node
    if rate is not None:
        pred = max(pred, seconds + extra * rate)
    return pred


def check_max_seconds(value: float | None) -> float | None:
    """``value`` validated (a number > 0, or ``None`` for no budget).

    Raises:
        DistError: ``value`` is not ``None`` nor a number > 0.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise DistError(
            f"max_seconds={value!r} must be a number > 0 (seconds of a target_w1 call, for example 20) or None (no "
            "time budget)"
        )
    return float(value)


@contextlib.contextmanager
def scope(max_seconds: float | None, serial: bool = True) -> Iterator[RoundBudget | None]:
    """The budget of this call: a new one, or the enclosing call's (nested calls share its deadline).

    Args:
        max_seconds: Seconds (``None``: no budget unless an enclosing call has one).
        serial: Whether the call's chunks run in this process (then the budget counts this process's CPU
            seconds; else wall-clock seconds, since the work of other processes is not in this one's CPU time).
    """
    outer = _CURRENT.get()
    if outer is not None or max_seconds is None:
        yield outer
        return
    clock = (lambda: _clock()) if serial else (lambda: _wall())
    token = _CURRENT.set(RoundBudget(float(max_seconds), clock=clock))
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def current() -> RoundBudget | None:
    """The budget of the running ``target_w1`` call (``None``: none)."""
    return _CURRENT.get()


def predicted_bound(
    terms: Mapping[str, float],
    fixed: float,
    now: Mapping[str, int],
    new: Mapping[str, int],
    order: Callable[[str], float],
) -> float:
    """The next round's bound from this round's terms: ``fixed + sum_i t_i (n_i / n_i') ** p_i``.

    Args:
        terms: This round's variable terms (W1 units) by variable (input names and the compression key).
        fixed: This round's terms that no count changes.
        now: This round's counts.
        new: The next round's counts.
        order: The fitted order ``p`` of a variable's term (:meth:`opgraph.dcg.refine.Allocator.order`).
    """
    total = fixed
    for v, t in terms.items():
        n0, n1 = now.get(v), new.get(v)
        total += t * (n0 / n1) ** order(v) if n0 and n1 and n1 > n0 else t
    return total


def fill_by_terms(
    cur: Mapping[str, int],
    start: Mapping[str, int],
    wanted: Mapping[str, int],
    terms: Mapping[str, float],
    fits: Callable[[dict[str, int]], bool],
) -> dict[str, int]:
    """Grow ``start`` input by input towards ``wanted``, largest term per atom first, while ``fits``.

    Each step doubles one variable (not beyond ``wanted``): the one with the largest ``terms[v]`` among those whose
    doubling still fits; a variable whose doubling does not fit is not tried again. Counts stay powers of two
    where they were (mean-split quantizers make ``2**j`` atoms).

    Args:
        cur: This round's counts (the floor).
        start: The counts to grow from (each >= ``cur``).
        wanted: The allocation's proposal (the ceiling).
        terms: This round's term of each variable (W1 units); the term after doubling is estimated as halved.
        fits: Whether counts fit the memory and time budgets.

    Returns:
        The grown counts (``start`` where nothing more fits).
    """
    out = dict(start)
    est = {v: float(terms.get(v, 0.0)) * cur[v] / max(out[v], 1) for v in out}
    frozen: set[str] = set()
    while True:
        open_ = [v for v in out if v not in frozen and est[v] > 0 and 2 * out[v] <= max(wanted.get(v, 0), out[v])]
        if not open_:
            return out
        v = max(open_, key=lambda k: (est[k], k))
        trial = {**out, v: 2 * out[v]}
        if fits(trial):
            out, est[v] = trial, est[v] / 2
        else:
            frozen.add(v)


def affine_pays(bound_on: float, bound_off: float) -> bool:
    """Whether affine enclosures tightened a round's bound by more than :data:`AFFINE_MIN_GAIN` (relative)."""
    if not math.isfinite(bound_on):
        return not math.isfinite(bound_off)
    return bound_on < (1.0 - AFFINE_MIN_GAIN) * bound_off


@contextlib.contextmanager
def affine_disabled(off: bool) -> Iterator[None]:
    """Switch :data:`opgraph.dcg.affine.ENABLED` off for the block where ``off`` (else leave it as it is)."""
    if not off:
        yield
        return
    from opgraph.dcg import affine

    token = affine.ENABLED.set(False)
    try:
        yield
    finally:
        affine.ENABLED.reset(token)


def should_probe(budget: RoundBudget, seconds: float, evals: Sequence[Any]) -> bool:
    """Whether the first round (``seconds`` long) is cheap enough for the affine probe, and it has something to test.

    The probe repeats the round without affine forms: only where affine forms are on, the round was certified with
    a finite bound, and it took at most :data:`PROBE_FRACTION` of the budget.
    """
    from opgraph.dcg import affine

    return (
        affine.ENABLED.get()
        and seconds <= PROBE_FRACTION * budget.max_seconds
        and all(e.certified and math.isfinite(e.w1_bound) for e in evals)
    )


def plan_step(
    budget: RoundBudget,
    allocator: Any,
    split: Any,
    cur_atoms: dict[str, int],
    cur_compress: int,
    new_atoms: dict[str, int],
    new_compress: int,
    wanted: Mapping[str, int],
    worst: float,
    fits: Callable[[dict[str, int], int], bool],
    work: Callable[[dict[str, int], int], float | None],
    shrink: Callable[[dict[str, int], int, Callable[[dict[str, int], int], bool]], tuple[dict[str, int], int]],
    counts: Callable[[Mapping[str, int]], str],
    whole: bool = False,
    stay_whole: bool = False,
    held_back: float = 0.0,
) -> tuple[dict[str, int] | None, int, str]:
    """The next round's counts within the time budget, or ``None`` and why the refinement stops.

    1. Where the proposal (``new_atoms``, ``new_compress``, already within the memory budget) is predicted to
       end after the budget, it is shrunk along its proportions (``shrink``) until it is predicted to fit.
    2. The inputs are then grown one doubling at a time, largest bound term first (:func:`fill_by_terms`), while
       the round still fits both budgets and stays within the allocation's proposal (``wanted``).
    3. A round that grows nothing, or whose predicted bound (:func:`predicted_bound`) misses the target and
       shrinks the bound by less than :data:`MIN_GAIN`, is not run.

    Where this round's grids were whole (``whole``: no compression), the next round's compression size is raised
    to keep them whole (its square, the soft grid limit, at least the product of the atom counts) where that fits
    the memory budget: a grid pushed past the soft limit is compressed, and a compressed grid loses the
    certificates that need the whole grid (the MLP at 16-16-32-16 atoms: 0.052 compressed at 256 atoms, 0.030
    whole, against 0.038 at 16 atoms per input). Where this round's compression size was itself raised so
    (``stay_whole``), only steps whose grids stay whole are taken: the quotient ``x / (1 + y)`` at 1024 x 1024
    atoms whole bounds 3.5e-4, at 1024 x 4100 compressed to 1024 atoms 4.0e-4.

    Args:
        budget: The call's :class:`RoundBudget`.
        allocator: The call's :class:`opgraph.dcg.refine.Allocator` (its fitted term orders and target).
        split: This round's :class:`opgraph.dcg.refine.Split` (the output with the largest bound).
        cur_atoms: This round's atoms per input.
        cur_compress: This round's compression size.
        new_atoms: The proposed atoms per input.
        new_compress: The proposed compression size.
        wanted: The allocation's atoms before the memory budget shrank them (the ceiling of step 2).
        worst: This round's bound (before any sub-cell pass: what the terms add up to).
        fits: Whether counts fit the memory budget.
        work: The work of a round at given counts (box-nodes; ``None``: over the memory budget).
        shrink: ``shrink(atoms, compress, fits)``: the largest proportional step towards the proposal that fits.
        counts: Formats atom counts for messages.
        whole: Whether this round's grids were evaluated whole (no compression).
        stay_whole: Whether this round's compression size was raised to keep its grids whole (then the next
            round's must stay whole too).
        held_back: Seconds of the budget kept for later work and not given to the round (a long program's lean
            Taylor pass, :func:`opgraph.dcg.longmix.reserve`): the round is planned as if ``max_seconds`` were that
            much smaller.

    Returns:
        ``(atoms, compress, "")``, or ``(None, cur_compress, why)``.
    """
    from opgraph.dcg.refine import COMPRESS

    refused: list[dict[str, int]] = []  # steps that fit the memory budget but not the time budget

    def keep_whole(a: Mapping[str, int], c: int) -> int:
        """``c``, raised so that a grid of all of ``a``'s inputs stays under the soft limit ``c**2`` (if it fits)."""
        if not whole:
            return c
        w = math.isqrt(max(math.prod(a.values()) - 1, 0)) + 1
        return w if w > c and fits(dict(a), w) else c

    def is_whole(a: Mapping[str, int], c: int) -> bool:
        return c * c >= math.prod(a.values())

    def in_time(a: dict[str, int], c: int) -> bool:
        c = keep_whole(a, c)
        if not fits(a, c) or (stay_whole and not is_whole(a, c)):
            return False
        w = work(a, c)
        if budget.affordable(w, held_back):
            return True
        refused.append(a)
        log.debug("target_w1: %s at compression %d does not fit the time: %s", a, c, budget.describe(w, held_back))
        return False

    atoms, comp = dict(new_atoms), new_compress
    w_prop = work(atoms, keep_whole(atoms, comp))
    if not budget.affordable(w_prop, held_back) or (stay_whole and not is_whole(atoms, keep_whole(atoms, comp))):
        atoms, comp = shrink(atoms, comp, in_time)
        if not in_time(atoms, comp):
            atoms, comp = dict(cur_atoms), cur_compress
    terms = {n: t for n, t in split.terms.items() if n in cur_atoms}
    atoms = fill_by_terms(cur_atoms, atoms, wanted, terms, lambda a: in_time(a, comp))
    comp = keep_whole(atoms, comp)
    if atoms == cur_atoms and comp == cur_compress and stay_whole and not refused:
        return (
            None,
            cur_compress,
            f"the next round ({counts(new_atoms)}) does not fit whole in the memory budget, and compressing this "
            "round's whole grid loses the certificates that need it (raise max_joint for a larger whole grid)",
        )
    if atoms == cur_atoms and comp == cur_compress:
        return (
            None,
            cur_compress,
            f"the time budget: the next round ({counts(new_atoms)}, compression {new_compress}) is "
            f"{budget.describe(w_prop, held_back)}, and no smaller step fits (raise max_seconds for it)",
        )
    now = {**cur_atoms, COMPRESS: cur_compress}
    nxt = {**atoms, COMPRESS: comp}
    pred = predicted_bound(split.terms, split.fixed, now, nxt, allocator.order)
    if pred > allocator.target and pred > (1.0 - MIN_GAIN) * worst:
        where = f" (the largest step that fits max_seconds={budget.max_seconds - held_back:g})" if refused else ""
        return (
            None,
            cur_compress,
            f"the next round ({counts(atoms)}, compression {comp}){where} is predicted to shrink the bound by only "
            f"{100 * (1 - pred / worst):.1f}% ({worst:.3g} -> {pred:.3g}), short of the target",
        )
    if refused:
        log.info("target_w1: next round %s (compression %d) within the time budget", atoms, comp)
    return atoms, comp, ""
