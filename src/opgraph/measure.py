"""One measurement module for ``perf``, ``energy`` and the benchmarks: timers, interleaved rounds, ratio CIs.

The protocol every opgraph timing follows on a noisy shared machine:

* time CPU time of the measuring thread (:func:`cpu_ns`, ``time.thread_time_ns``), so time the OS gives to other
  processes is not counted; :func:`wall_ns` where waiting is part of the cost;
* warm up before timing, keep the minimum of ``reps`` repetitions;
* run ``rounds`` rounds over all candidates, each round in a fresh shuffled order (:func:`interleaved_rounds`), so
  a slow drift of the machine hits every candidate alike;
* compare a candidate with a reference by the **per-round** ratio (both timed in the same round), and report the
  median ratio with a percentile-bootstrap confidence interval on the log scale (:func:`median_ratio_ci`, using
  :func:`scipy.stats.bootstrap`); :func:`compare` does all of it for two callables.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from opgraph._base.errors import OpgraphError


def cpu_ns(fn: Callable[[], Any]) -> int:
    """CPU time of the calling thread spent in one call of ``fn``, in nanoseconds."""
    t0 = time.thread_time_ns()
    fn()
    return time.thread_time_ns() - t0


def wall_ns(fn: Callable[[], Any]) -> int:
    """Wall-clock time of one call of ``fn``, in nanoseconds (``time.perf_counter_ns``)."""
    t0 = time.perf_counter_ns()
    fn()
    return time.perf_counter_ns() - t0


#: The timers by name.
TIMERS: dict[str, Callable[[Callable[[], Any]], int]] = {"cpu": cpu_ns, "wall": wall_ns}


@dataclass(frozen=True)
class RatioCI:
    """A median ratio and its confidence interval.

    Attributes:
        median: Median of the ratios (geometric: the median of their logarithms, exponentiated).
        low: Lower end of the interval (NaN with fewer than two ratios).
        high: Upper end of the interval (NaN with fewer than two ratios).
        n: Number of finite positive ratios used.
        confidence: Confidence level of the interval (0.95).
    """

    median: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    @property
    def significant(self) -> bool:
        """Whether the interval excludes 1 (the two sides differ at this confidence)."""
        return bool(self.low > 1.0 or self.high < 1.0)

    def __repr__(self) -> str:
        return f"RatioCI({self.median:.4g}x, {self.confidence:.0%} CI [{self.low:.4g}, {self.high:.4g}], n={self.n})"


def median_ratio_ci(
    ratios: Sequence[float] | np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> RatioCI:
    """Median of positive ``ratios`` with a percentile-bootstrap interval on the log scale (scipy.stats.bootstrap).

    Non-finite and non-positive ratios (a failed or zero-time run) are dropped.

    Args:
        ratios: Per-round ratios (candidate / reference).
        confidence: Confidence level in (0, 1).
        n_resamples: Bootstrap resamples.
        seed: Seeds the resampling (the interval is reproducible).

    Returns:
        A :class:`RatioCI`; ``median`` is NaN when no ratio is usable, the interval NaN with fewer than two.
    """
    from scipy import stats

    if not 0.0 < confidence < 1.0:
        raise OpgraphError(f"confidence={confidence}: give a level between 0 and 1 (e.g. 0.95)")
    r = np.asarray(ratios, dtype=float).ravel()
    r = r[np.isfinite(r) & (r > 0)]
    if r.size == 0:
        return RatioCI(math.nan, math.nan, math.nan, 0, confidence)
    logs = np.log(r)
    median = float(np.exp(np.median(logs)))
    if r.size < 2:
        return RatioCI(median, math.nan, math.nan, 1, confidence)
    if np.ptp(logs) == 0.0:  # every ratio equal: the bootstrap distribution is a point
        return RatioCI(median, median, median, int(r.size), confidence)
    res = stats.bootstrap(
        (logs,),
        np.median,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return RatioCI(median, float(np.exp(ci.low)), float(np.exp(ci.high)), int(r.size), confidence)


def interleaved_rounds(
    fns: Sequence[Callable[[], Any]],
    *,
    rounds: int = 7,
    warmup: int = 1,
    reps: int = 1,
    timer: str = "cpu",
    seed: int = 0,
) -> np.ndarray:
    """Time every callable once per round, in a fresh shuffled order each round.

    Args:
        fns: The callables (no arguments).
        rounds: Rounds (>= 1).
        warmup: Untimed calls of each callable before the first round.
        reps: Timed calls per callable per round; the minimum is kept.
        timer: ``"cpu"`` (:func:`cpu_ns`) or ``"wall"`` (:func:`wall_ns`).
        seed: Seeds the round orders.

    Returns:
        int64 array ``[len(fns), rounds]`` of times in nanoseconds.
    """
    if timer not in TIMERS:
        raise OpgraphError(f"timer={timer!r}: use one of {', '.join(TIMERS)}")
    if rounds < 1 or reps < 1 or warmup < 0:
        raise OpgraphError(f"need rounds >= 1, reps >= 1, warmup >= 0 (got {rounds}, {reps}, {warmup})")
    if not fns:
        raise OpgraphError("interleaved_rounds: give at least one callable")
    time_once = TIMERS[timer]
    for fn in fns:
        for _ in range(warmup):
            fn()
    rng = np.random.default_rng(seed)
    out = np.zeros((len(fns), rounds), dtype=np.int64)
    for r in range(rounds):
        for i in rng.permutation(len(fns)):
            out[i, r] = min(time_once(fns[i]) for _ in range(reps))
    return out


@dataclass(frozen=True)
class Comparison:
    """A candidate timed against a reference in interleaved rounds.

    Attributes:
        ratio: Candidate / reference time per round: median and interval.
        candidate_ns: int64[rounds] candidate times, ns.
        reference_ns: int64[rounds] reference times, ns.
        timer: ``"cpu"`` or ``"wall"``.
    """

    ratio: RatioCI
    candidate_ns: np.ndarray
    reference_ns: np.ndarray
    timer: str

    def __repr__(self) -> str:
        return (
            f"Comparison(candidate/reference {self.ratio.median:.3f}x "
            f"[{self.ratio.low:.3f}, {self.ratio.high:.3f}], {len(self.candidate_ns)} rounds, {self.timer} time)"
        )


def compare(
    candidate: Callable[[], Any],
    reference: Callable[[], Any],
    *,
    rounds: int = 7,
    warmup: int = 1,
    reps: int = 3,
    timer: str = "cpu",
    seed: int = 0,
    confidence: float = 0.95,
) -> Comparison:
    """Time ``candidate`` against ``reference`` in shuffled interleaved rounds; median per-round ratio with a CI."""
    t = interleaved_rounds([candidate, reference], rounds=rounds, warmup=warmup, reps=reps, timer=timer, seed=seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = t[0] / t[1]
    return Comparison(median_ratio_ci(ratios, confidence=confidence, seed=seed), t[0], t[1], timer)
