"""Pick a fast layout for a user's PyTorch model with a trained cost model.

``tune_layout(module, example_inputs, model)`` enumerates ``n_candidates`` layout configs of the model's
convolutions, ranks them all with the cost model (no measuring) and then spends a measuring budget of
``floor(measure_frac * n_candidates)`` distinct configs (the default, all NCHW, included) adaptively
(:func:`race_tune`):

1. **screen**: measure the default, **all channels-last** (the one-line setting a PyTorch user tries first; always
   measured, whatever the model predicts) and the model's top picks (``settings.rounds`` interleaved rounds);
2. **local search** (optional, ``local_search`` configs of the budget; off by default because it did not pay in the
   benchmark): flip one convolution of the best measured config at a
   time, score every such neighbour with the cost model and measure the most promising ones that were not measured
   yet (a leftover budget goes to the next model picks);
3. **race** (successive halving): the ``finalists`` best measured configs and the default are re-measured
   head-to-head in ``race_rounds`` extra interleaved, shuffled rounds of one timed run each (short rounds: the
   configs of a round see the same state of a loaded machine); after the first half of those rounds the
   slower half of the finalists is dropped (all channels-last is never dropped: it races to the end). The winner is the finalist with the lowest median per-round ratio to
   the default; if that ratio is not below 1 the default is returned (the tuner never returns a config that did
   not beat the default head-to-head).

Every distinct config measured counts against the budget; re-measuring a config in a later stage does not add to
the count, but it is reported (``TuneResult.n_config_rounds``, the number of config x round timings). Runtimes of
different stages are compared as ratios to the default measured in the same round.
So the returned layout is never slower than the better of the two uniform layouts in the race's rounds.
``apply`` the result with :meth:`TuneResult.apply`; save it with :meth:`TuneResult.save` and re-apply it to a fresh
model instance with :func:`apply_layout`. ``tune_layout(..., log_path=...)`` keeps a resumable tuning log.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.measure import RatioCI
from opgraph.perf.errors import PerfError
from opgraph.perf.measure import MeasureSettings

log = logging.getLogger(__name__)

#: ``measure(choices int[k, t], rounds, seed) -> runtime ns float[k, rounds]``: one interleaved measuring run of the
#: rows of ``choices`` (row 0 is always the default); column ``r`` holds every config's time in round ``r``.
Measurer = Callable[[np.ndarray, int, int], np.ndarray]
#: ``score(choices int[k, t]) -> predicted cost float[k]`` (lower = faster; only the order is used).
Scorer = Callable[[np.ndarray], np.ndarray]


@dataclass
class MeasuredConfig:
    """One config the tuner measured.

    Attributes:
        choice: int[t] format per distinct convolution module (0 NCHW, 1 channels-last).
        stage: ``"default"``, ``"uniform"`` (all channels-last, always measured), ``"screen"`` (model pick),
            ``"local"`` (neighbour of the best measured config); the tile tuner also has ``"refit"`` (a pick of the
            per-kernel refitted model) and ``"diverse"`` (the ranker's top-budget tile farthest from every measured
            one).
        candidate: Index in the ranked candidate set, or -1 for a local-search neighbour outside it.
        predicted_rank: Rank the cost model gave it among the candidates (-1 for neighbours outside the set).
        ratio: Median per-round runtime / default runtime in its first measuring run (lower = faster).
        race_ratio: Median per-round ratio to the default over the race rounds it ran (NaN if not raced).
        race_rounds: Race rounds it ran.
    """

    choice: np.ndarray
    stage: str
    candidate: int
    predicted_rank: int
    ratio: float
    race_ratio: float = math.nan
    race_rounds: int = 0


@dataclass
class RaceOutcome:
    """Result of :func:`race_tune`.

    Attributes:
        chosen: Index into ``measured`` of the returned config (0 = the default).
        measured: Every distinct config measured, the default first.
        default_ns: Median runtime of the default over the race rounds (without a race: in the screening run), ns.
        chosen_ns: Median runtime of the chosen config over the same rounds (without a race: its median ratio to
            the default x ``default_ns``), ns.
        n_config_rounds: Config x round timings spent in all stages.
        budget: The distinct-config budget.
        measure_s: Wall time spent in the measurers, s.
        race_ci: Per-round ratio (race winner / default) over the race rounds: median and 95% bootstrap interval
            (:func:`opgraph.measure.median_ratio_ci`); None without a race. When the default is returned, this is
            the interval of the best challenger, which did not beat it.
    """

    chosen: int
    measured: list[MeasuredConfig]
    default_ns: float
    chosen_ns: float
    n_config_rounds: int
    budget: int
    measure_s: float = 0.0
    race_ci: RatioCI | None = None


def _median_ratio(rounds_ns: np.ndarray) -> np.ndarray:
    """Median over rounds of each row's runtime divided by row 0 (the default) in the same round."""
    r = np.asarray(rounds_ns, dtype=np.float64)
    return np.median(r / np.maximum(r[0:1], 1.0), axis=1)


def race_tune(
    candidates: np.ndarray,
    score: Scorer,
    measure: Measurer,
    *,
    budget: int,
    local_search: int = 0,
    finalists: int = 4,
    race_rounds: int = 40,
    rounds: int = 2,
    seed: int = 0,
    race_measure: Measurer | None = None,
    uniform: bool = True,
    known: list[MeasuredConfig] | None = None,
    on_measured: Callable[[list[MeasuredConfig], float], None] | None = None,
    neighbours: Callable[[np.ndarray], np.ndarray] | None = None,
) -> RaceOutcome:
    """Spend ``budget`` distinct measured configs adaptively: screen, local search, race (see the module docs).

    Args:
        candidates: int[c, t] candidate configs per distinct convolution; row 0 is the default (all NCHW).
        score: Cost-model scorer of config rows (lower = faster).
        measure: Measuring run of config rows (row 0 = the default), returning per-round runtimes.
        budget: Distinct configs to measure, the default included (>= 2).
        local_search: Configs of the budget reserved for single-flip neighbours of the best measured config.
        finalists: Measured configs (besides the default) raced head-to-head; 0 skips the race and returns the
            best of the screening run if it beats the default there.
        race_rounds: Interleaved rounds of the race (split in two halves for successive halving).
        rounds: Rounds of the screening and local-search runs.
        seed: Seed of the measuring runs' shuffles.
        race_measure: Measurer of the race (default ``measure``); :func:`tune_layout` passes one that times a
            single run per config per round, so that the race's many rounds are short.
        uniform: Always measure the all-channels-last config (one config of the budget, whatever the model
            thinks of it) and race it to the end (never dropped by the halving): with the default, both uniform
            layouts are then in the final head-to-head rounds, so the returned config is never slower than the
            better of the two in those rounds.
        known: Configs measured in an earlier, interrupted run (a tuning log): not measured again; their logged
            ratios to the default stand in for a screening measurement.
        on_measured: Called after every screening / local-search run with the configs measured so far (the
            default first) and the default's runtime in ns (to keep a tuning log).
        neighbours: ``neighbours(row) -> int[k, t]``, the local-search neighbourhood of a config (default:
            flip one convolution's layout); :func:`tune_tile` halves or doubles tile sizes.

    Returns:
        A :class:`RaceOutcome`.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or len(cand) < 1:
        raise PerfError("race_tune: candidates must be a non-empty int[c, t] array")
    if cand[0].any():
        raise PerfError("race_tune: candidate row 0 must be the default (all NCHW)")
    if budget < 2:
        raise PerfError(f"race_tune: the budget must allow the default and one more config, got {budget}")
    cost = np.asarray(score(cand), dtype=np.float64)
    order = [int(i) for i in np.argsort(cost, kind="stable") if int(i) != 0]
    rank = {c: r for r, c in enumerate(int(i) for i in np.argsort(cost, kind="stable"))}
    ones = np.ones(cand.shape[1], dtype=np.int64)
    index = {cand[i].tobytes(): i for i in range(len(cand))}
    uniform = uniform and cand.shape[1] > 0
    space = len(cand) + int(uniform and ones.tobytes() not in index)
    budget = min(budget, space)
    local_search = max(0, min(local_search, budget - 2 - int(uniform)))
    prior = {m.choice.astype(np.int64).tobytes(): m for m in (known or []) if m.stage != "default"}
    measured: list[MeasuredConfig] = []
    seen: set[bytes] = set()
    n_config_rounds = 0
    runs = 0
    measure_s = 0.0
    default_ns = math.nan

    def run(rows: list[np.ndarray], n_rounds: int, fn: Measurer = measure) -> np.ndarray:
        nonlocal n_config_rounds, runs, measure_s
        choices = np.stack([cand[0]] + rows)
        t0 = time.perf_counter()
        out = np.asarray(fn(choices, n_rounds, seed + 1000 * runs), dtype=np.float64)
        measure_s += time.perf_counter() - t0
        if out.shape != (len(choices), n_rounds):
            raise PerfError(f"race_tune: the measurer returned shape {out.shape}, expected {(len(choices), n_rounds)}")
        runs += 1
        n_config_rounds += out.size
        return out

    def add(choice: np.ndarray, stage: str, ratio: float) -> None:
        c = index.get(choice.tobytes(), -1)
        measured.append(MeasuredConfig(choice.copy(), stage, c, rank.get(c, -1), float(ratio)))
        seen.add(choice.tobytes())

    def screen_rows(rows: list[np.ndarray], stages: list[str]) -> None:
        """Measure the rows not in the log in one run; add all of them in the given order."""
        nonlocal default_ns
        fresh = [r for r in rows if r.tobytes() not in prior]
        ratio = {}
        if fresh:
            out = run(fresh, rounds)
            default_ns = float(np.median(out[0]))
            ratio = {r.tobytes(): q for r, q in zip(fresh, _median_ratio(out)[1:])}
        for r, st in zip(rows, stages):
            old = prior.get(r.tobytes())
            add(r, old.stage if old else st, old.ratio if old else ratio[r.tobytes()])
        if on_measured is not None:
            on_measured(measured, default_ns)

    # 1. screen: the default, all channels-last (if ``uniform``) and the model's top picks
    add(cand[0], "default", 1.0)
    forced = [ones] if uniform else []
    n_picks = budget - 1 - local_search - len(forced)
    picks = forced + [cand[i] for i in order if not (uniform and (cand[i] == ones).all())][:n_picks]
    screen_rows(picks, ["uniform"] * len(forced) + ["screen"] * (len(picks) - len(forced)))

    # 2. local search: single flips of the best measured config, the model's most promising first
    left = budget - len(measured)
    if left > 0:
        rows: list[np.ndarray] = []
        stages: list[str] = []
        if local_search > 0:
            best = min(measured, key=lambda m: m.ratio).choice
            if neighbours is not None:
                flips = np.asarray(neighbours(best), dtype=np.int64).reshape(-1, cand.shape[1])
            else:
                flips = np.repeat(best[None], len(best), axis=0)
                flips[np.arange(len(best)), np.arange(len(best))] ^= 1
            fresh = [f for f in flips if f.tobytes() not in seen]
            if fresh:
                fc = np.asarray(score(np.stack(fresh)), dtype=np.float64)
                rows = [fresh[i] for i in np.argsort(fc, kind="stable")[: min(left, local_search)]]
                stages = ["local"] * len(rows)
        more = [cand[i] for i in order if cand[i].tobytes() not in seen and not any((cand[i] == r).all() for r in rows)]
        more = more[: left - len(rows)]
        rows += more
        stages += ["screen"] * len(more)
        if rows:
            screen_rows(rows, stages)

    # 3. race: the best finalists (+ all channels-last) and the default head-to-head, successive halving
    keep = [j for j in range(1, len(measured)) if uniform and measured[j].stage == "uniform"]

    def race_run(rows: list[np.ndarray], n_rounds: int) -> np.ndarray:
        return run(rows, n_rounds, race_measure or measure)

    out = _race_stage(measured, race_run, finalists=finalists, race_rounds=race_rounds, keep=keep, seed=seed)
    default_ns = default_ns if out[1] is None else out[1]
    chosen, chosen_ns, ci = out[0], out[2], out[3]
    if chosen_ns is None:
        chosen_ns = default_ns * measured[chosen].ratio
    return RaceOutcome(chosen, measured, default_ns, chosen_ns, n_config_rounds, budget, measure_s, ci)


def _race_stage(
    measured: list[MeasuredConfig],
    run: Callable[[list[np.ndarray], int], np.ndarray],
    *,
    finalists: int,
    race_rounds: int,
    keep: list[int],
    seed: int,
) -> tuple[int, float | None, float | None, RatioCI | None]:
    """Race the ``finalists`` best measured configs (+ ``keep``) against the default (successive halving).

    Shared by :func:`race_tune` and :func:`refit_tune`. ``run(rows, n_rounds)`` measures the default and ``rows``
    in one interleaved run (row 0 of its output: the default). Without a race (no finalist or no round) the best
    screening ratio below 1 wins.

    Returns:
        ``(chosen index into measured, default ns of the race or None, chosen ns of the race or None, ratio CI)``.
    """
    from opgraph.measure import median_ratio_ci

    ranked = sorted(range(1, len(measured)), key=lambda j: measured[j].ratio)
    field_ = ranked[: max(0, finalists)]
    if not field_ or race_rounds < 1:
        j = ranked[0] if ranked and measured[ranked[0]].ratio < 1.0 else 0
        return j, None, None, None
    field_ += [j for j in keep if j not in field_]
    race: dict[int, list[np.ndarray]] = {j: [] for j in field_}
    first = race_rounds if len(field_) == 1 else max(1, race_rounds // 2)
    for phase_rounds in (first, race_rounds - first):
        if phase_rounds < 1:
            continue
        out = run([measured[j].choice for j in field_], phase_rounds)
        for j, row in zip(field_, out[1:]):
            race[j].append(np.vstack([out[0], row]))
        for j in field_:
            both = np.hstack(race[j])
            measured[j].race_ratio = float(_median_ratio(both)[1])
            measured[j].race_rounds = both.shape[1]
        ahead = sorted(field_, key=lambda j: measured[j].race_ratio)[: max(1, math.ceil(len(field_) / 2))]
        field_ = ahead + [j for j in keep if j not in ahead]
    win = min(field_, key=lambda j: measured[j].race_ratio)
    both = np.hstack(race[win])
    default_ns = float(np.median(both[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = median_ratio_ci(both[1] / both[0], seed=seed)
    if not measured[win].race_ratio < 1.0:
        return 0, default_ns, default_ns, ci
    return win, default_ns, float(np.median(both[1])), ci


def trimmed_mean_se(x: np.ndarray, trim: float = 0.2) -> tuple[float, float]:
    """Trimmed mean of ``x`` and its standard error (Yuen: the winsorised variance), robust to a few outliers.

    Args:
        x: float[n] samples (e.g. per-round log runtime ratios).
        trim: Share cut from each end (0: the plain mean and its standard error).

    Returns:
        ``(trimmed mean, standard error)``; the error is ``inf`` with fewer than 2 samples.
    """
    v = np.sort(np.asarray(x, dtype=np.float64))
    n = len(v)
    if n == 0:
        return math.nan, math.inf
    g = int(math.floor(trim * n))
    mean = float(v[g : n - g].mean())
    if n < 2:
        return mean, math.inf
    w = np.clip(v, v[g], v[n - 1 - g])
    h = n - 2 * g
    se = float(np.sqrt(w.var(ddof=1) * n) / h) if h > 1 else math.inf  # s_w / ((1 - 2 trim) sqrt(n))
    return mean, se


def _adaptive_race(
    measured: list[MeasuredConfig],
    run: Callable[[list[np.ndarray], int], np.ndarray],
    *,
    finalists: int,
    race_rounds: int,
    max_rounds: int,
    margin: float,
    max_finalists: int,
    z: float,
    tol: float,
    seed: int,
) -> tuple[int, float | None, float | None, RatioCI | None]:
    """Race near-equal finalists until the noise separates them (or ``max_rounds``); then check the default.

    The field: the ``finalists`` best measured configs by screening ratio and every other one whose screening
    ratio is within ``margin`` of the best (a screening ratio is a median of a few noisy rounds, so a config a few
    per cent behind may be the faster one), at most ``max_finalists``. Phases of ``race_rounds`` interleaved rounds
    (the default in every one) follow while more than one finalist is left and ``max_rounds`` are not spent. After
    every phase each finalist is compared with the leader (the lowest trimmed mean of the per-round log ratio to
    the field's geometric mean) on the rounds both ran, pairwise, so the default's noise does not enter: it is
    dropped when its 20%-trimmed mean log ratio to the leader is more than ``z`` standard errors above 0 (clearly
    slower). The race stops early when every finalist left is within ``tol`` of the leader at its upper confidence
    bound (which of them wins cannot matter by more than ``tol``). The leader wins if its median per-round ratio to
    the default over its race rounds is below 1; otherwise the default is returned. With few rounds the standard
    error is itself noisy, so ``z`` is turned into Student's t quantile of the same one-sided level (Yuen's test:
    ``h - 1`` degrees of freedom, ``h`` the rounds kept after trimming): after a first phase of 10 rounds a
    finalist must be about 2.8 standard errors behind to go, not 2.

    Returns:
        ``(chosen index into measured, default ns of the race, chosen ns of the race, ratio CI)``, as
        :func:`_race_stage`.
    """
    from scipy import stats

    from opgraph.measure import median_ratio_ci

    level = float(stats.norm.cdf(z))

    def bound(n: int) -> float:
        h = n - 2 * int(math.floor(0.2 * n))
        return float(stats.t.ppf(level, max(h - 1, 1)))

    ranked = sorted(range(1, len(measured)), key=lambda j: measured[j].ratio)
    if not ranked or finalists < 1 or race_rounds < 1:
        j = ranked[0] if ranked and measured[ranked[0]].ratio < 1.0 else 0
        return j, None, None, None
    cap = max(finalists, max_finalists)
    best = measured[ranked[0]].ratio
    field_ = ranked[:finalists] + [j for j in ranked[finalists:] if measured[j].ratio <= best * (1.0 + margin)]
    field_ = field_[:cap]
    logs: dict[int, list[np.ndarray]] = {j: [] for j in field_}
    default_rounds: dict[int, list[np.ndarray]] = {j: [] for j in field_}
    alive = list(field_)
    spent = 0
    leader = alive[0]
    while spent < max(max_rounds, race_rounds) and (len(alive) > 1 or spent == 0):
        n = min(race_rounds, max(max_rounds, race_rounds) - spent)
        out = np.maximum(run([measured[j].choice for j in alive], n), 1.0)
        spent += n
        for j, row in zip(alive, out[1:]):
            logs[j].append(np.log(row))
            default_rounds[j].append(out[0])
        lr = {j: np.concatenate(logs[j]) for j in alive}  # every finalist left ran every race round so far
        centre = np.mean([lr[j] for j in alive], axis=0)
        leader = min(alive, key=lambda j: (trimmed_mean_se(lr[j] - centre)[0], measured[j].ratio))
        keep, close = [leader], True
        for j in alive:
            if j == leader:
                continue
            d, se = trimmed_mean_se(lr[j] - lr[leader])
            q = bound(len(lr[j]))
            if d - q * se > 0.0:
                continue  # clearly slower than the leader
            keep.append(j)
            close = close and d + q * se < math.log1p(tol)
        alive = [j for j in field_ if j in keep]
        for j in field_:
            r = np.concatenate(logs[j])
            dflt = np.log(np.concatenate(default_rounds[j]))
            measured[j].race_ratio = float(np.exp(np.median(r - dflt)))
            measured[j].race_rounds = len(r)
        if close:
            break
    win = leader
    x = np.exp(np.concatenate(logs[win]))
    d0 = np.concatenate(default_rounds[win])
    default_ns = float(np.median(d0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = median_ratio_ci(x / d0, seed=seed)
    if not measured[win].race_ratio < 1.0:
        return 0, default_ns, default_ns, ci
    return win, default_ns, float(np.median(x)), ci


def refit_surrogate(
    features: np.ndarray,
    prior: np.ndarray,
    measured: np.ndarray,
    y: np.ndarray,
    *,
    length_scale: float = 1.0,
    ridge: float = 1.0,
    prior_std: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-kernel model refitted on this kernel's own measurements: prior trend + Gaussian-process residual.

    Every candidate gets a predicted log runtime ratio to the default, ``mean = trend + residual``. The trend is a
    ridge regression of the measured log ratios on the prior's rank (so the cost model's order counts for what
    it is worth on this kernel: its weight can go to zero or turn negative) and a quadratic in the standardised
    features (a bowl in log tile sizes: too small tiles pay loop overhead, too large ones miss the cache); a
    Gaussian process (RBF kernel, ``length_scale`` in standard deviations of the features) on the trend's
    residuals bends the prediction through the measured points and gives the uncertainty ``std`` that is large
    far from them. This is MetaSchedule / AutoTVM's refit-between-batches loop with the pretrained ranker as the
    prior mean.

    Args:
        features: float[c, d] per candidate (the tile tuner: log2 of the tile sizes).
        prior: float[c] the cost model's predicted cost (lower = faster; only its order is used).
        measured: int[m] indices of the measured candidates.
        y: float[m] their measured log runtime ratio to the default (lower = faster).
        length_scale: RBF length scale, standard deviations of each feature.
        ridge: L2 penalty of the trend's slopes (the intercept is free).
        prior_std: Least standard deviation of the residual far from every measurement (log ratio; 0.5: a
            factor of 1.65). The measured points can agree by chance (a batch in a flat corner of the space);
            this keeps the unexplored regions uncertain so that the refit batches still look there.

    Returns:
        ``(mean float[c], std float[c])``, predicted log ratio and its standard deviation.
    """
    x = np.asarray(features, dtype=np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-9)
    c = len(x)
    z = np.empty(c)
    z[np.argsort(np.asarray(prior, dtype=np.float64), kind="stable")] = np.linspace(-1.0, 1.0, c) if c > 1 else 0.0
    design = np.column_stack([np.ones(c), z, x, x**2])
    idx = np.asarray(measured, dtype=np.int64)
    yy = np.asarray(y, dtype=np.float64)
    if len(idx) == 0:
        return z.copy(), np.ones(c)
    d = design[idx]
    pen = ridge * np.eye(design.shape[1])
    pen[0, 0] = 0.0
    coef = np.linalg.solve(d.T @ d + pen + 1e-9 * np.eye(design.shape[1]), d.T @ yy)
    trend = design @ coef
    resid = yy - trend[idx]
    signal = max(float(np.var(resid)), float(np.var(yy)) * 0.25, prior_std**2, 1e-4)
    noise = 0.05 * signal + 1e-4

    def rbf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
        return signal * np.exp(-0.5 * d2 / length_scale**2)

    k_mm = rbf(x[idx], x[idx]) + noise * np.eye(len(idx))
    k_cm = rbf(x, x[idx])
    alpha = np.linalg.solve(k_mm, resid)
    mean = trend + k_cm @ alpha
    var = signal - np.einsum("ij,ji->i", k_cm, np.linalg.solve(k_mm, k_cm.T))
    return mean, np.sqrt(np.maximum(var, 0.0))


def refit_tune(
    candidates: np.ndarray,
    prior: np.ndarray,
    features: np.ndarray,
    measure: Measurer,
    *,
    budget: int,
    batches: int = 3,
    local_frac: float = 0.3,
    neighbours: Callable[[np.ndarray], np.ndarray] | None = None,
    explore: float = 1.0,
    local_steps: int = 3,
    spread: float = 0.0,
    local_explore: float = 1.0,
    local_prior: float = 0.0,
    finalists: int = 3,
    race_rounds: int = 10,
    rounds: int = 2,
    seed: int = 0,
    race_measure: Measurer | None = None,
    known: list[MeasuredConfig] | None = None,
    on_measured: Callable[[list[MeasuredConfig], float], None] | None = None,
    step: int = 0,
    first_frac: float = 0.2,
    restarts: int = 1,
    explore_frac: float = 0.0,
    race: str = "halving",
    race_max_rounds: int = 100,
    race_margin: float = 0.1,
    max_finalists: int = 6,
    race_z: float = 2.5,
    race_tol: float = 0.01,
    diverse: int = 0,
    diverse_window: float = 1.0,
) -> RaceOutcome:
    """Measure in batches and refit a per-kernel model on the measurements between them; then race the best.

    1. **prior batch** (stage ``"screen"``): the default (row 0, the measured anchor of every run: each config's
       runtime is a ratio to the default in the same rounds) and the prior cost model's top picks;
    2. **refit batches** (``batches - 2`` of them, stage ``"refit"``): :func:`refit_surrogate` is fitted on every
       ratio measured so far and the unmeasured candidates with the lowest ``mean - explore x std`` are measured;
    3. **local batch** (``local_frac`` of the budget, stage ``"local"``, in ``local_steps`` runs): the neighbours of
       the best config so far (``neighbours(row)``), in the order of the refitted model's mean (free places go to
       its next picks);
    4. **race**: the ``finalists`` best measured configs re-measured head-to-head with the default
       (:func:`race_tune`'s race); the default is returned unless a finalist beat it there.

    With ``step > 0`` (the **mixed** plan, :func:`tune_tile`'s default) steps 1-3 are replaced by: a first run of
    the prior's top ``first_frac`` of the budget, then runs of ``step`` configs each until the budget is spent, each
    run ``local_frac`` neighbours of the ``restarts`` best configs measured so far (in the refitted model's order,
    refitted before every run), ``explore_frac`` the refitted model's picks anywhere (lowest ``mean - explore x
    std``, stage ``"refit"``) and the rest the prior's next unmeasured picks. The prior keeps a share of every run
    (a kernel whose best tile the ranker puts 3rd-9th is found by its list), hill climbing starts early and takes
    small steps, and the refitted model looks where neither does (a kernel whose ranker is wrong).

    The budget counts distinct configs, the default included; re-measuring in the race does not add to it.

    Args:
        candidates: int[c, t] configs; row 0 is the default.
        prior: float[c] the pretrained cost model's costs (lower = faster).
        features: float[c, d] features of the refitted model (:func:`refit_surrogate`).
        measure: Measuring run of config rows (row 0 = the default), per-round runtimes.
        budget: Distinct configs to measure, the default included (>= 2).
        batches: Measuring batches before the race, the local one included (>= 1; 1: the prior's picks only).
        local_frac: Share of the budget (after the default) for the local batch.
        neighbours: ``neighbours(row) -> int[k, t]`` candidate rows next to a config (None: no local batch).
        explore: Weight of the model's uncertainty in the refit batches' choice.
        local_steps: Runs the local batch is split into (hill climbing: each run measures neighbours of the best
            config after the previous one, with the model refitted in between).
        spread: Diversity of the prior and refit batches: a pick is skipped when every feature is within
            ``spread`` of a config picked before it in the same batch (for tiles: a neighbour one power of two
            away), unless the batch cannot be filled otherwise; 0 (default: it cost LightGBM picks in a replay on
            measured kernels) turns it off. The local batch is not spread.
        local_explore: Weight of the model's uncertainty when the local batch orders the neighbours (1: in a
            replay on 12 measured ResNet kernels it moved the worst of 3 seeds on one kernel from +63% to +7%).
        local_prior: Weight of the prior's rank when the local batch orders the neighbours (0: the refitted model's
            order only; 1: the prior's order only); positions in the two orders are blended.
        finalists: Measured configs raced against the default (0: no race; the best ratio below 1 wins).
        race_rounds: Interleaved rounds of the race.
        rounds: Rounds of every batch's measuring run.
        seed: Seed of the measuring runs' shuffles.
        race_measure: Measurer of the race (default ``measure``).
        known: Configs measured by an interrupted run (a tuning log): their logged ratios stand in for measuring.
        on_measured: Called after every batch with the configs measured so far and the default's runtime (ns).
        step: Configs per measuring run of the mixed plan (0: the batch plan of ``batches``, ``local_frac`` and
            ``local_steps``).
        first_frac: Mixed plan: share of the budget (after the default) in the first run, the prior's top picks.
        restarts: The local picks are neighbours of this many best measured configs (1: of the best only).
        explore_frac: Mixed plan: share of every run on the refitted model's picks among all candidates.
        race: ``"halving"`` (``finalists`` race ``race_rounds`` rounds, the slower half dropped after half of
            them) or ``"adaptive"`` (:func:`_adaptive_race`: the field grows to every config within
            ``race_margin`` of the best screening ratio, up to ``max_finalists``; phases of ``race_rounds`` rounds
            until the noise separates the finalists or ``race_max_rounds`` are spent).
        race_max_rounds: Adaptive race: most rounds in all.
        race_margin: Adaptive race: screening ratios within this share of the best join the field.
        max_finalists: Adaptive race: largest field (at least ``finalists``).
        race_z: Adaptive race: a finalist is dropped when it is slower than the leader by this many standard
            errors.
        race_tol: Adaptive race: it stops when every finalist left is within this share of the leader (upper
            confidence bound).
        diverse: Mixed plan: this many runs give the ranker's pick of the run to a **diverse** pick instead (stage
            ``"diverse"``): among the ranker's unmeasured top ``diverse_window x budget`` candidates, the one
            farthest from every measured config (L1 distance in ``features``; ties: the ranker's order). The
            ranker's deeper picks in another corner of the space are the ones neither its next pick nor the
            neighbours of the best measured configs reach (an isolated fast tile).
        diverse_window: Mixed plan: the diverse picks come from the ranker's top ``diverse_window x budget``.

    Returns:
        A :class:`RaceOutcome`.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    cost = np.asarray(prior, dtype=np.float64)
    feat = np.asarray(features, dtype=np.float64)
    if cand.ndim != 2 or len(cand) < 2 or cost.shape != (len(cand),) or len(feat) != len(cand):
        raise PerfError("refit_tune: candidates int[c, t] (c >= 2), prior float[c] and features float[c, d] must match")
    if budget < 2:
        raise PerfError(f"refit_tune: the budget must allow the default and one more config, got {budget}")
    if batches < 1:
        raise PerfError(f"refit_tune: batches must be >= 1, got {batches}")
    shares = {"first_frac": first_frac, "local_frac": local_frac, "explore_frac": explore_frac}
    if step < 0 or restarts < 1 or not all(0.0 <= v <= 1.0 for v in shares.values()):
        raise PerfError(
            f"refit_tune: step >= 0, restarts >= 1 and first_frac, local_frac, explore_frac in [0, 1] are needed, got "
            f"step={step}, restarts={restarts}, " + ", ".join(f"{k}={v}" for k, v in shares.items())
        )
    budget = min(budget, len(cand))
    spend = budget - 1
    n_local = int(round(local_frac * spend)) if neighbours is not None and batches >= 2 else 0
    n_local = min(n_local, spend - 1)
    n_model = batches - (1 if n_local > 0 else 0)
    model_sizes = [len(a) for a in np.array_split(np.arange(spend - n_local), max(1, n_model))]
    index = {cand[i].tobytes(): i for i in range(len(cand))}
    order = [int(i) for i in np.argsort(cost, kind="stable")]
    rank = {c: r for r, c in enumerate(order)}
    prior_log = {m.choice.astype(np.int64).tobytes(): m for m in (known or []) if m.stage != "default"}
    measured: list[MeasuredConfig] = [MeasuredConfig(cand[0].copy(), "default", 0, rank[0], 1.0)]
    seen = {cand[0].tobytes()}
    state = {"runs": 0, "n_config_rounds": 0, "measure_s": 0.0, "default_ns": math.nan}

    def run(rows: list[np.ndarray], n_rounds: int, fn: Measurer = measure) -> np.ndarray:
        choices = np.stack([cand[0]] + rows)
        t0 = time.perf_counter()
        out = np.asarray(fn(choices, n_rounds, seed + 1000 * state["runs"]), dtype=np.float64)
        state["measure_s"] += time.perf_counter() - t0
        if out.shape != (len(choices), n_rounds):
            raise PerfError(f"refit_tune: the measurer returned shape {out.shape}, expected {(len(choices), n_rounds)}")
        state["runs"] += 1
        state["n_config_rounds"] += out.size
        return out

    def measure_batch(idx: list[int], stage: str | list[str]) -> None:
        stages = [stage] * len(idx) if isinstance(stage, str) else stage
        fresh = [i for i in idx if cand[i].tobytes() not in prior_log]
        ratio: dict[int, float] = {}
        if fresh:
            out = run([cand[i] for i in fresh], rounds)
            state["default_ns"] = float(np.median(out[0]))
            ratio = {i: float(q) for i, q in zip(fresh, _median_ratio(out)[1:])}
        for i, stage_i in zip(idx, stages):
            old = prior_log.get(cand[i].tobytes())
            st, q = (old.stage, old.ratio) if old is not None else (stage_i, ratio[i])
            measured.append(MeasuredConfig(cand[i].copy(), st, i, rank[i], q))
            seen.add(cand[i].tobytes())
        if on_measured is not None:
            on_measured(measured, state["default_ns"])

    def spread_out(ranked: list[int], size: int) -> list[int]:
        """The first ``size`` of ``ranked`` not within ``spread`` of an earlier pick (then the skipped ones)."""
        picks: list[int] = []
        for i in ranked:
            if len(picks) == size:
                break
            if spread <= 0 or not any(np.abs(feat[i] - feat[j]).max() <= spread for j in picks):
                picks.append(i)
        return picks + [i for i in ranked if i not in picks][: size - len(picks)]

    def refit() -> tuple[np.ndarray, np.ndarray]:
        ms = measured[1:]
        y = np.log(np.maximum([m.ratio for m in ms], 1e-12))
        return refit_surrogate(feat[1:], cost[1:], np.array([m.candidate - 1 for m in ms]), y)

    def near_best(size: int) -> list[int]:
        """Up to ``size`` unmeasured neighbours of the ``restarts`` best measured configs, most promising first."""
        if neighbours is None or size < 1:
            return []
        mean, std = refit()
        mean = mean - local_explore * std
        tops = sorted(measured[1:], key=lambda m: m.ratio)[:restarts]
        width = cand.shape[1]
        near = [index[r.tobytes()] for m in tops for r in np.asarray(neighbours(m.choice), np.int64).reshape(-1, width)]
        near = sorted({i for i in near if cand[i].tobytes() not in seen and i != 0}, key=lambda i: mean[i - 1])
        if local_prior > 0 and near:  # blend the refitted order with the prior's rank
            pos = {i: p for p, i in enumerate(near)}
            by_prior = {i: p for p, i in enumerate(sorted(near, key=lambda i: rank[i]))}
            near = sorted(near, key=lambda i: (1 - local_prior) * pos[i] + local_prior * by_prior[i])
        return near[:size]

    if race not in ("halving", "adaptive"):
        raise PerfError(f"refit_tune: race={race!r}; use 'halving' or 'adaptive'")
    window = [i for i in order if i != 0][: max(1, int(math.ceil(diverse_window * budget)))]
    diverse_left = max(0, int(diverse))

    def far_pick(exclude: list[int]) -> list[int]:
        """The ranker's unmeasured top-window candidate farthest (L1 in ``feat``) from every measured config."""
        done = [m.candidate for m in measured[1:] if m.candidate > 0] + exclude
        free = [i for i in window if cand[i].tobytes() not in seen and i not in exclude]
        if not free:
            return []
        if not done:
            return free[:1]
        dist = np.abs(feat[free][:, None, :] - feat[done][None, :, :]).sum(-1).min(1)
        return [free[int(np.argmax(dist))]]  # argmax keeps the first (best-ranked) of equally far ones

    if step > 0:  # the mixed plan: the prior's top picks, then runs of neighbours + the prior's next picks
        model_sizes, n_local = [], 0
        measure_batch([i for i in order if i != 0][: max(1, int(round(first_frac * spend)))], "screen")
        while len(measured) < budget:
            size = min(step, budget - len(measured))
            picks = near_best(int(round(local_frac * size)))
            stages = ["local"] * len(picks)
            n_explore = min(size - len(picks), int(round(explore_frac * size)))
            if n_explore > 0:  # the refitted model's most promising tiles anywhere (lowest mean - explore x std)
                mean, std = refit()
                acq = [int(i) + 1 for i in np.argsort(mean - explore * std, kind="stable")]
                got = [i for i in acq if cand[i].tobytes() not in seen and i not in picks][:n_explore]
                picks += got
                stages += ["refit"] * len(got)
            if diverse_left > 0 and len(picks) < size:
                got = far_pick(picks)
                diverse_left -= len(got)
                picks += got
                stages += ["diverse"] * len(got)
            more = [i for i in order if i != 0 and cand[i].tobytes() not in seen and i not in picks]
            picks += more[: size - len(picks)]
            if not picks:
                break
            measure_batch(picks, stages + ["screen"] * (len(picks) - len(stages)))

    for b, size in enumerate(model_sizes):
        if size < 1:
            continue
        if b == 0:
            picks = spread_out([i for i in order if i != 0], size)
            stage = "screen"
        else:
            mean, std = refit()
            acq = mean - explore * std
            ranked = [int(i) + 1 for i in np.argsort(acq, kind="stable") if cand[int(i) + 1].tobytes() not in seen]
            picks = spread_out(ranked, size)
            stage = "refit"
        measure_batch(picks, stage)
    for size in [len(a) for a in np.array_split(np.arange(n_local), max(1, min(local_steps, n_local)))]:
        if size < 1 or neighbours is None:
            continue
        picks = near_best(size)
        if len(picks) < size:
            mean, std = refit()
            mean = mean - local_explore * std
            more = [int(i) + 1 for i in np.argsort(mean, kind="stable")]
            picks += [i for i in more if cand[i].tobytes() not in seen and i not in picks][: size - len(picks)]
        measure_batch(picks, "local")

    def race_run(rows: list[np.ndarray], n_rounds: int) -> np.ndarray:
        return run(rows, n_rounds, race_measure or measure)

    if race == "adaptive":
        chosen, race_default, race_chosen, ci = _adaptive_race(
            measured,
            race_run,
            finalists=finalists,
            race_rounds=race_rounds,
            max_rounds=race_max_rounds,
            margin=race_margin,
            max_finalists=max_finalists,
            z=race_z,
            tol=race_tol,
            seed=seed,
        )
    else:
        chosen, race_default, race_chosen, ci = _race_stage(
            measured, race_run, finalists=finalists, race_rounds=race_rounds, keep=[], seed=seed
        )
    default_ns = state["default_ns"] if race_default is None else race_default
    chosen_ns = default_ns * measured[chosen].ratio if race_chosen is None else race_chosen
    return RaceOutcome(
        chosen, measured, default_ns, chosen_ns, state["n_config_rounds"], budget, state["measure_s"], ci
    )


@dataclass
class TuneResult:
    """Outcome of :func:`tune_layout`.

    Attributes:
        targets: Module path of each distinct configurable convolution.
        best_choice: int[t] the chosen format per convolution (0 NCHW, 1 channels-last).
        default_runtime_ns: Measured runtime of the default (all NCHW), ns (race rounds).
        best_runtime_ns: Measured runtime of the chosen config in the same rounds, ns.
        n_candidates: Size of the ranked candidate set.
        n_measured: Distinct configs measured (including the default): the budget spent.
        n_config_rounds: Config x round timings in all stages (re-measurements included).
        predicted_rank_of_best: Rank (0 = first) the model gave to the chosen config (-1: a local-search
            neighbour outside the candidate set).
        stage_of_best: ``"default"``, ``"screen"`` or ``"local"``.
        measured: Every measured config (:class:`MeasuredConfig`).
        seconds: Wall time of the whole tuning.
        measure_s: Part of it spent measuring.
        ratio_ci: Chosen (or, when the default is kept, best challenger) / default per race round: median and 95%
            bootstrap interval; None without a race.
        resumed: True when the result was read back from a finished tuning log (nothing measured).
    """

    targets: list[str]
    best_choice: np.ndarray
    default_runtime_ns: int
    best_runtime_ns: int
    n_candidates: int
    n_measured: int
    n_config_rounds: int
    predicted_rank_of_best: int
    stage_of_best: str
    measured: list[MeasuredConfig] = field(default_factory=list)
    seconds: float = 0.0
    measure_s: float = 0.0
    ratio_ci: RatioCI | None = None
    resumed: bool = False

    @property
    def layout(self) -> dict[str, str]:
        """Module path -> ``"NCHW"`` or ``"channels_last"`` for every configurable convolution."""
        return {t: LAYOUT_VALUES[int(c)] for t, c in zip(self.targets, self.best_choice)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the tuning log's ``result``; :meth:`from_dict` reads it back)."""
        d = {k: getattr(self, k) for k in _RESULT_FIELDS}
        d["best_choice"] = _bits(self.best_choice)
        d["measured"] = [_measured_to_dict(m) for m in self.measured]
        d["ratio_ci"] = None if self.ratio_ci is None else dataclasses.asdict(self.ratio_ci)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, resumed: bool = False) -> TuneResult:
        """Inverse of :meth:`to_dict`."""
        ci = d.get("ratio_ci")
        return cls(
            **{k: d[k] for k in _RESULT_FIELDS if k not in ("seconds", "measure_s")},
            best_choice=_unbits(d["best_choice"]),
            measured=[_measured_from_dict(m) for m in d["measured"]],
            seconds=float(d["seconds"]),
            measure_s=float(d["measure_s"]),
            ratio_ci=None if ci is None else RatioCI(**{k: float(v) if k != "n" else int(v) for k, v in ci.items()}),
            resumed=resumed,
        )

    def save(self, path: str | Path) -> Path:
        """Write the chosen layout as JSON (module path -> format, plus the timings), atomically.

        Re-apply it to a fresh model instance with :func:`apply_layout`.
        """
        from opgraph._base.jsonio import write_json

        doc = {
            "format": LAYOUT_FILE_FORMAT,
            "version": 1,
            "layout": self.layout,
            "speedup_vs_all_nchw": self.speedup,
            "default_runtime_ns": self.default_runtime_ns,
            "best_runtime_ns": self.best_runtime_ns,
            "ratio_ci": None if self.ratio_ci is None else dataclasses.asdict(self.ratio_ci),
            "n_measured": self.n_measured,
            "n_candidates": self.n_candidates,
            "n_config_rounds": self.n_config_rounds,
            "measure_s": self.measure_s,
            "stage_of_best": self.stage_of_best,
        }
        return write_json(path, doc)

    @property
    def speedup(self) -> float:
        """Default runtime / chosen runtime (medians over the same race rounds)."""
        return self.default_runtime_ns / max(self.best_runtime_ns, 1)

    @property
    def measured_frac(self) -> float:
        """Distinct configs measured / candidates."""
        return self.n_measured / max(self.n_candidates, 1)

    def apply(self, module: Any, example_inputs: tuple[Any, ...]) -> Any:
        """Return a copy of ``module`` running the chosen layout (``LayoutModel.module``)."""
        from opgraph.perf.layout import wrap_layout

        lm = wrap_layout(module, example_inputs, self.targets)
        lm.set_config(self.best_choice)
        return lm.module

    def __repr__(self) -> str:
        nhwc = int(np.sum(self.best_choice))
        return (
            f"TuneResult({nhwc}/{len(self.best_choice)} convs channels-last ({self.stage_of_best}), speed-up "
            f"{self.speedup:.3f}x over all-NCHW ({self.default_runtime_ns / 1e6:.3f} -> "
            f"{self.best_runtime_ns / 1e6:.3f} ms), measured {self.n_measured}/{self.n_candidates} candidates "
            f"({self.n_config_rounds} config-rounds) in {self.seconds:.1f}s"
            + (f"; race ratio {ci.median:.3f} [{ci.low:.3f}, {ci.high:.3f}]" if (ci := self.ratio_ci) else "")
            + (", resumed from a finished log)" if self.resumed else ")")
        )


#: JSON value of each layout choice (0, 1) in saved layouts.
LAYOUT_VALUES = ("NCHW", "channels_last")
LAYOUT_FILE_FORMAT = "opgraph-layout"
LOG_FORMAT = "opgraph-tune-log"
_RESULT_FIELDS = (
    "targets",
    "default_runtime_ns",
    "best_runtime_ns",
    "n_candidates",
    "n_measured",
    "n_config_rounds",
    "predicted_rank_of_best",
    "stage_of_best",
    "seconds",
    "measure_s",
)


def _bits(choice: np.ndarray) -> str:
    return "".join(str(int(c)) for c in np.asarray(choice).reshape(-1))


def _unbits(bits: str) -> np.ndarray:
    return np.array([int(c) for c in bits], dtype=np.int64)


def _measured_to_dict(m: MeasuredConfig) -> dict[str, Any]:
    """A measured config as JSON: a layout choice as a bit string (``"0110"``), any other (a tile) as a list."""
    c = np.asarray(m.choice).reshape(-1)
    return {
        "choice": _bits(c) if bool(np.isin(c, (0, 1)).all()) else [int(v) for v in c],
        "stage": m.stage,
        "candidate": m.candidate,
        "predicted_rank": m.predicted_rank,
        "ratio": m.ratio,
        "race_ratio": m.race_ratio,
        "race_rounds": m.race_rounds,
    }


def _measured_from_dict(d: dict[str, Any]) -> MeasuredConfig:
    c = d["choice"]
    return MeasuredConfig(
        _unbits(c) if isinstance(c, str) else np.array([int(v) for v in c], dtype=np.int64),
        str(d["stage"]),
        int(d["candidate"]),
        int(d["predicted_rank"]),
        float(d["ratio"]),
        float(d.get("race_ratio", math.nan)),
        int(d.get("race_rounds", 0)),
    )


def read_tune_log(path: Path, fmt: str, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The tuning log at ``path`` if it exists, checked to log the same tuning (every key of ``identity``).

    Shared by the layout (:func:`tune_layout`) and tile (:func:`tune_tile`) tuning logs.

    Raises:
        PerfError: the file is not a log of format ``fmt``, or one of ``identity``'s values differs (named).
    """
    from opgraph._base.jsonio import read_json, to_jsonable

    if not path.exists():
        return None
    doc = read_json(path, error=PerfError)
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise PerfError(f"log_path={str(path)!r} is not an {fmt} tuning log; give a new path or delete the file")

    def short(v: Any) -> str:
        r = repr(v)
        return r if len(r) <= 60 else r[:57] + "..."

    for key, want in to_jsonable(identity).items():
        if doc.get(key) != want:
            raise PerfError(
                f"log_path={str(path)!r} logs another tuning ({key} differs: logged {short(doc.get(key))}, now "
                f"{short(want)}); give a new path or delete the file"
            )
    return doc


def write_tune_log(
    path: Path,
    fmt: str,
    identity: dict[str, Any],
    measured: list[MeasuredConfig],
    default_ns: float,
    result: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a tuning log atomically (shared by the layout and tile tuners).

    The log holds ``identity`` (checked on resume), ``extra`` (not checked), every measured config and the
    finished result (None while tuning).
    """
    from opgraph._base.jsonio import write_json

    doc = {"format": fmt, "version": 1, **(extra or {}), **identity, "default_ns": default_ns}
    doc["measured"] = [_measured_to_dict(m) for m in measured]
    doc["result"] = result
    return write_json(path, doc)


def apply_layout(model: Any, layout: str | Path | dict[str, str]) -> Any:
    """Re-apply a saved layout to a (fresh) model instance, in place, and return it.

    The parameters of each convolution named in the layout are stored in its format (they stay the same objects,
    so ``state_dict`` keys and a later ``load_state_dict`` are unaffected). A channels-last weight makes PyTorch
    run that convolution channels-last (it converts an NCHW input itself, as ``model.to(memory_format=
    torch.channels_last)`` does); an ``NCHW`` convolution also gets a forward pre-hook making its input contiguous
    NCHW (a channels-last input would otherwise make it run channels-last). Each convolution thus computes in
    the format the tuner measured. Applying again replaces the earlier hooks.

    Args:
        model: ``nn.Module`` of the architecture the layout was tuned on.
        layout: A JSON file written by :meth:`TuneResult.save` (or by ``opgraph perf tune --out``), or its
            ``{module path: "NCHW" | "channels_last"}`` dict.

    Returns:
        ``model``.

    Raises:
        PerfError: the file is not a layout, a value is not a format, or a path is not a convolution of ``model``.
    """
    import torch
    from torch import nn

    if isinstance(layout, dict):
        mapping, where = layout, "layout"
    else:
        from opgraph._base.jsonio import read_json

        doc = read_json(layout)
        where = f"layout file {str(layout)!r}"
        if not isinstance(doc, dict) or not isinstance(doc.get("layout"), dict):
            raise PerfError(
                f"{where} has no 'layout' mapping; write it with TuneResult.save or opgraph perf tune --out"
            )
        mapping = doc["layout"]
    for path, fmt in mapping.items():
        if fmt not in LAYOUT_VALUES:
            raise PerfError(f"{where}: {path!r} has format {fmt!r}; use one of {', '.join(LAYOUT_VALUES)}")
        try:
            conv = model.get_submodule(path)
        except AttributeError:
            raise PerfError(
                f"{where} names module {path!r}, which {type(model).__name__} does not have; apply a layout tuned "
                "on the same architecture"
            ) from None
        if not isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
            raise PerfError(f"{where}: {path!r} is a {type(conv).__name__}, not a Conv2d; tune this model again")
        old = getattr(conv, "_opgraph_layout_hook", None)
        if old is not None:
            old.remove()
            conv._opgraph_layout_hook = None
        if fmt == "channels_last":
            # a channels-last weight makes PyTorch's convolution run (and return) channels-last whatever the
            # input's format, converting the input itself: no hook needed
            conv.to(memory_format=torch.channels_last)
            continue
        conv.to(memory_format=torch.contiguous_format)

        def to_nchw(mod: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
            return (args[0].contiguous(),) + tuple(args[1:])

        conv._opgraph_layout_hook = conv.register_forward_pre_hook(to_nchw)
    return model


def layout_measurer(
    module: Any, example_inputs: tuple[Any, ...], targets: list[str], settings: MeasureSettings | None = None
) -> Measurer:
    """A :data:`Measurer` timing rows of per-target layout choices of ``module`` with the measurement protocol.

    The module is wrapped once (:func:`~opgraph.perf.layout.wrap_layout`); each call is one
    :func:`~opgraph.perf.measure.measure_configs` run (interleaved shuffled rounds, warm-up, CPU time).
    """
    from opgraph.perf.layout import wrap_layout
    from opgraph.perf.measure import measure_configs

    s = settings or MeasureSettings()
    lm = wrap_layout(module, example_inputs, targets)
    if s.timer == "cuda":
        lm.module.to("cuda")
        lm.example_inputs = tuple(x.to("cuda") for x in lm.example_inputs)

    def measure(choices: np.ndarray, rounds: int, seed: int) -> np.ndarray:
        def prepare(i: int) -> Callable[[], Any]:
            lm.set_config(choices[i])
            return lm.run

        m = measure_configs(len(choices), prepare, reference=0, settings=replace(s, rounds=rounds), seed=seed)
        return m.rounds_ns.astype(np.float64)

    return measure


def layout_scorer(cand: Any, model: Any, columns: list[int]) -> Scorer:
    """A :data:`Scorer`: expand per-target choices to the record's per-node columns and ``model.predict`` them."""
    from opgraph.perf.layout import encode_configs

    def score(choices: np.ndarray) -> np.ndarray:
        per_node = np.asarray(choices, dtype=np.int64)[:, columns]
        rec = replace(cand, node_config_feat=encode_configs(per_node), config_runtime=None)
        return np.asarray(model.predict(rec), dtype=np.float64)

    return score


def layout_candidates(
    module: Any, example_inputs: tuple[Any, ...], n_candidates: int, seed: int = 0, name: str = "model"
) -> tuple[Any, list[str], np.ndarray, list[int]]:
    """The unmeasured candidate record and its per-target view.

    Returns:
        ``(record, targets, choices, columns)``: the layout record of ``n_candidates`` sampled configs (row 0 all
        NCHW; the same sample as ``layout_record(..., n_configs=n_candidates, seed=seed)``), the distinct
        convolution module paths, int[c, t] choices per target and, per configurable node, its target's column.
    """
    from opgraph.perf.collect import graph_of, layout_record
    from opgraph.perf.layout import decode_configs

    g = graph_of(module, example_inputs)
    cand = layout_record(name, module, example_inputs, n_configs=n_candidates, measure=False, seed=seed, graph=g)
    node_targets = [g.node(int(i)).attrs["target"] for i in cand.node_config_ids]
    targets = list(dict.fromkeys(node_targets))
    columns = [targets.index(t) for t in node_targets]
    per_node = decode_configs(cand.config_matrix())
    first = [node_targets.index(t) for t in targets]
    return cand, targets, per_node[:, first], columns


def tune_layout(
    module: Any,
    example_inputs: tuple[Any, ...],
    model: Any,
    *,
    n_candidates: int = 200,
    measure_frac: float = 0.1,
    local_search: float = 0.0,
    finalists: int = 4,
    race_rounds: int = 40,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    name: str = "model",
    measurer: Measurer | None = None,
    log_path: str | Path | None = None,
) -> TuneResult:
    """Rank ``n_candidates`` layout configs with ``model`` and spend ``measure_frac`` of them measuring adaptively.

    Args:
        module: ``nn.Module`` in eval mode.
        example_inputs: Its inputs.
        model: A layout :class:`~opgraph.perf.model.CostModel` (or any object with ``predict(record)``).
        n_candidates: Candidate configs sampled (row 0 = all NCHW).
        measure_frac: Distinct configs measured / candidates (at least 2: the default and one pick).
        local_search: Fraction of that budget for single-flip neighbours of the best measured config (0, the
            default: off; it did not pay in the benchmark, see docs/benchmarks/perf.md).
        finalists: Best measured configs re-measured head-to-head with the default (0: no race).
        race_rounds: Interleaved rounds of that race, one timed run (after a warm-up run) per config per round.
        settings: Measurement protocol knobs (``rounds`` and ``reps`` are used for the screening runs).
        seed: Seed of sampling and measuring.
        name: Graph name in logs.
        measurer: Replaces the real measuring (tests, or a remote machine); see :data:`Measurer`.
        log_path: A JSON tuning log. Every screening run appends its configs and their ratios to the default; a
            rerun with the same model, ``n_candidates`` and ``seed`` measures none of the logged configs again
            (the default is still timed as the reference of any new run), and a finished log returns its result
            without measuring anything (``TuneResult.resumed``). The race is logged when it finishes.

    Returns:
        A :class:`TuneResult`; both uniform layouts (all NCHW, all channels-last) are always among the measured
        configs and raced to the end, so the pick is never slower than the better of the two in the race rounds.
    """
    t0 = time.perf_counter()
    s = settings or MeasureSettings()
    cand, targets, choices, columns = layout_candidates(module, example_inputs, n_candidates, seed, name)
    budget = max(2, int(math.floor(measure_frac * len(choices) + 1e-9)))
    log_file = Path(log_path) if log_path is not None else None
    identity = {"targets": targets, "n_candidates": len(choices), "seed": seed}
    logged = read_tune_log(log_file, LOG_FORMAT, identity) if log_file is not None else None
    if logged is not None and logged.get("result") is not None:
        res = TuneResult.from_dict(logged["result"], resumed=True)
        log.info("%s: finished tuning read from %s: %r", name, log_file, res)
        return res
    known = [_measured_from_dict(m) for m in (logged or {}).get("measured", [])]

    def write_log(measured: list[MeasuredConfig], default_ns: float, result: TuneResult | None = None) -> None:
        if log_file is not None:
            res_doc = None if result is None else result.to_dict()
            write_tune_log(log_file, LOG_FORMAT, identity, measured, default_ns, res_doc, {"name": name})

    if measurer is None:
        measurer = layout_measurer(module, example_inputs, targets, s)
        race_measurer = layout_measurer(module, example_inputs, targets, replace(s, reps=1, warmup=1))
    else:
        race_measurer = measurer
    out = race_tune(
        choices,
        layout_scorer(cand, model, columns),
        measurer,
        budget=budget,
        local_search=int(round(local_search * budget)),
        finalists=finalists,
        race_rounds=race_rounds,
        rounds=max(1, s.rounds),
        seed=seed,
        race_measure=race_measurer,
        known=known,
        on_measured=write_log,
    )
    win = out.measured[out.chosen]
    res = TuneResult(
        targets=targets,
        best_choice=win.choice,
        default_runtime_ns=int(round(out.default_ns)),
        best_runtime_ns=int(round(out.chosen_ns)),
        n_candidates=len(choices),
        n_measured=len(out.measured),
        n_config_rounds=out.n_config_rounds,
        predicted_rank_of_best=win.predicted_rank,
        stage_of_best=win.stage,
        measured=out.measured,
        seconds=time.perf_counter() - t0,
        measure_s=out.measure_s,
        ratio_ci=out.race_ci,
    )
    write_log(out.measured, out.default_ns, res)
    log.info("%s: %r", name, res)
    return res


def simulate_tuning(model: Any, record: Any, measure_frac: float = 0.1) -> dict[str, float]:
    """Tuning replayed on a fully measured record: measure the model's top ``measure_frac`` (+ default).

    Only the screening step of :func:`tune_layout` can be replayed from stored runtimes (no fresh measurements,
    no neighbours outside the record): the best stored runtime among the default and the model's top picks.

    Returns:
        ``{"gap": chosen / best - 1, "speedup_vs_default": default / chosen, "measured_frac": ...}``.
    """
    rt = record.target_runtime()
    cost = np.asarray(model.predict(record))
    budget = max(2, int(np.floor(measure_frac * len(rt))))
    ref = int(record.measure_meta.get("reference_config", 0))
    picks = [int(i) for i in np.argsort(cost, kind="stable") if int(i) != ref][: budget - 1]
    top = {ref, *picks}
    chosen = min(rt[i] for i in top)
    return {
        "gap": float(chosen / rt.min() - 1),
        "speedup_vs_default": float(rt[ref] / chosen),
        "measured_frac": len(top) / len(rt),
    }


# -- the tile space -----------------------------------------------------------------------------------------------


@dataclass
class TileTuneResult:
    """The schedule :func:`tune_tile` picked for one kernel.

    Attributes:
        kernel: Kernel name (:attr:`opgraph.perf.tile.KernelSpec.name`).
        tile: The chosen tile ``(ti, tj, tk)``; None when TVM's default schedule was not beaten.
        n_candidates: Tiles in the candidate set (the default schedule not counted).
        n_measured: Distinct configs measured, the default schedule included.
        default_ns: Runtime of TVM's default schedule in the final race, ns.
        chosen_ns: Runtime of the chosen schedule in the same rounds, ns.
        measured: Every config measured (``choice`` = ``[ti, tj, tk]``, ``[0, 0, 0]`` for the default).
        tune_s: Wall time of the whole call, s.
        compile_s: Part of it spent compiling schedules, s.
        spec: The kernel (:class:`opgraph.perf.tile.KernelSpec`; saved with :meth:`save` to rebuild the schedule).
        resumed: True when the result was read back from a finished tuning log (nothing measured).
    """

    kernel: str
    tile: tuple[int, int, int] | None
    n_candidates: int
    n_measured: int
    default_ns: float
    chosen_ns: float
    measured: list[MeasuredConfig]
    tune_s: float
    compile_s: float
    spec: Any = None
    resumed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the tile tuning log's ``result``; :meth:`from_dict` reads it back)."""
        d = {k: getattr(self, k) for k in _TILE_RESULT_FIELDS}
        d["tile"] = None if self.tile is None else list(self.tile)
        d["measured"] = [_measured_to_dict(m) for m in self.measured]
        d["spec"] = None if self.spec is None else self.spec.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, resumed: bool = False) -> TileTuneResult:
        """Inverse of :meth:`to_dict`."""
        from opgraph.perf.tile import KernelSpec

        return cls(
            kernel=str(d["kernel"]),
            tile=None if d["tile"] is None else (int(d["tile"][0]), int(d["tile"][1]), int(d["tile"][2])),
            n_candidates=int(d["n_candidates"]),
            n_measured=int(d["n_measured"]),
            default_ns=float(d["default_ns"]),
            chosen_ns=float(d["chosen_ns"]),
            measured=[_measured_from_dict(m) for m in d["measured"]],
            tune_s=float(d["tune_s"]),
            compile_s=float(d["compile_s"]),
            spec=None if d.get("spec") is None else KernelSpec.from_dict(d["spec"]),
            resumed=resumed,
        )

    def save(self, path: str | Path) -> Path:
        """Write the chosen schedule as JSON, atomically (:func:`save_tile_schedules` of this one result).

        Read it back with :func:`load_tile_schedules`, rebuild and compile it with :func:`apply_tile_schedules`.
        """
        return save_tile_schedules([self], path)

    @property
    def speedup(self) -> float:
        """TVM default schedule runtime / chosen runtime (>= 1 when a tile beat the default)."""
        return self.default_ns / self.chosen_ns if self.chosen_ns > 0 else math.nan

    @property
    def measured_frac(self) -> float:
        """Distinct configs measured / candidates."""
        return self.n_measured / max(self.n_candidates, 1)


_TILE_RESULT_FIELDS = (
    "kernel",
    "n_candidates",
    "n_measured",
    "default_ns",
    "chosen_ns",
    "tune_s",
    "compile_s",
)
TILE_LOG_FORMAT = "opgraph-tile-tune-log"
TILE_SCHEDULES_FORMAT = "opgraph-tile-schedules"


def save_tile_schedules(results: list[TileTuneResult], path: str | Path) -> Path:
    """Write the schedules :func:`tune_tile` chose for several kernels to one JSON file, atomically.

    Each entry holds the kernel (:meth:`opgraph.perf.tile.KernelSpec.to_dict`), the chosen tile (``null``: TVM's
    default schedule) and the measured runtimes (ns) of the default and the chosen schedule.
    """
    from opgraph._base.jsonio import write_json

    kernels = []
    for r in results:
        if r.spec is None:
            raise PerfError(f"{r.kernel}: the result has no kernel spec; save a result returned by tune_tile")
        kernels.append(
            {
                "name": r.kernel,
                "kernel": r.spec.to_dict(),
                "tile": None if r.tile is None else list(r.tile),
                "default_ns": r.default_ns,
                "chosen_ns": r.chosen_ns,
                "speedup": r.speedup,
            }
        )
    return write_json(path, {"format": TILE_SCHEDULES_FORMAT, "version": 1, "kernels": kernels})


def load_tile_schedules(path: str | Path) -> dict[str, tuple[Any, tuple[int, int, int] | None]]:
    """Read a file of :func:`save_tile_schedules`: kernel name -> ``(KernelSpec, tile or None)``.

    Raises:
        PerfError: the file is missing, malformed or not a tile schedules file.
    """
    from opgraph._base.jsonio import read_json
    from opgraph.perf.tile import KernelSpec

    doc = read_json(path, what="tile schedules file", error=PerfError)
    if not isinstance(doc, dict) or doc.get("format") != TILE_SCHEDULES_FORMAT:
        raise PerfError(
            f"path={str(path)!r} is not a tile schedules file; write it with TileTuneResult.save or save_tile_schedules"
        )
    out: dict[str, tuple[Any, tuple[int, int, int] | None]] = {}
    for k in doc.get("kernels", []):
        spec = KernelSpec.from_dict(k["kernel"])
        t = k.get("tile")
        if t is not None and (len(t) != 3 or min(int(v) for v in t) < 1):
            raise PerfError(f"{str(path)!r}: kernel {spec.name} has tile {t!r}; a tile is null or 3 sizes >= 1")
        out[spec.name] = (spec, None if t is None else (int(t[0]), int(t[1]), int(t[2])))
    return out


def apply_tile_schedules(path: str | Path, mcpu: str | None = None) -> dict[str, Any]:
    """Rebuild and compile every saved schedule (:func:`opgraph.perf.tile.compile_tile`; needs the ``tvm`` extra).

    Returns:
        Kernel name -> compiled TVM function (arguments: the input tensors, then the output).
    """
    from opgraph.perf.tile import compile_tile

    return {name: compile_tile(spec, tile, mcpu) for name, (spec, tile) in load_tile_schedules(path).items()}


#: ``tune_tile(search="mixed")``'s share of every measuring run on neighbours of the best measured tiles.
MIXED_LOCAL_FRAC = 0.5
#: ``tune_tile(search="mixed")``'s :func:`refit_tune` settings (``refit_options`` overrides them): runs of 4 tiles,
#: the first run 20% of the budget (the ranker's top picks), neighbours of the 2 best measured tiles, a quarter of
#: every run on the refitted model's picks anywhere, one diverse pick (the ranker's top-budget tile farthest from
#: every measured one) and the adaptive race (:func:`_adaptive_race`; ``{"race": "halving", "diverse": 0}`` gives
#: the search before 2026-12-06 10:30 back).
MIXED_OPTIONS: dict[str, Any] = {
    "step": 4,
    "first_frac": 0.2,
    "restarts": 2,
    "explore_frac": 0.25,
    "race": "adaptive",
    "diverse": 1,
}


def _tile_of(row: np.ndarray) -> tuple[int, int, int] | None:
    return None if not np.asarray(row).any() else (int(row[0]), int(row[1]), int(row[2]))


def tune_tile(
    spec: Any,
    ranker: Any,
    *,
    candidates: list[tuple[int, int, int]] | None = None,
    measure_frac: float = 0.1,
    finalists: int = 3,
    race_rounds: int = 10,
    local_frac: float | None = None,
    settings: MeasureSettings | None = None,
    seed: int = 0,
    runner: Any = None,
    measurer: Measurer | None = None,
    log_path: str | Path | None = None,
    search: str = "mixed",
    batches: int = 3,
    min_timing_ns: float | None = None,
    refit_options: dict[str, Any] | None = None,
    neighbourhood: str | None = None,
) -> TileTuneResult:
    """Pick a tile schedule for one TVM kernel, measuring a tenth of the candidates at most.

    The cost model ranks every candidate (no compiling, no measuring); then a budget of
    ``floor(measure_frac * n)`` measured configs (TVM's default schedule counts against it) is spent:

    * ``search="mixed"`` (default, :func:`refit_tune` with ``step=4``): a first run of the ranker's top 20% of the
      budget, then runs of 4 tiles until the budget is spent, each run ``local_frac`` (0.5) neighbours of the 2
      best tiles measured so far (``neighbourhood="x2"``: every size halved, kept or doubled; in the order of the
      per-kernel model refitted before each run), a quarter the refitted model's picks anywhere and the rest the
      ranker's next unmeasured picks, the first of them a **diverse** pick (of the ranker's top-budget tiles the
      one farthest from every measured tile: an isolated fast tile in another corner of the space, which neither
      the ranker's next picks nor the neighbours reach); then the **adaptive race**: the 3 best and every tile
      within 10% of the best screening ratio (at most 6) race the default in phases of 10 rounds, each dropped when
      it is clearly slower than the leader (Yuen's trimmed-mean test, paired per round), until one is left or 100
      rounds are spent (:data:`MIXED_OPTIONS`; ``refit_options`` overrides ``step``, ``first_frac``,
      ``restarts``, ``explore_frac``, ``diverse``, ``race``, ``race_max_rounds``, ...). With both, the replay
      below keeps 22 of 22 kernels within 5% in every one of 16 seeds (worst +4.7%) against 20.6 before (worst
      +8.0%). In an offline replay on the 22 exhaustively measured
      kernels of three real models (``benchmarks/perf/tile_replay.py``, 16 seeds, 3.4% noise, LightGBM fitted
      leave-one-kernel-out) this keeps 20.6 of 22 kernels within 5% of the best (worst +8%) against 18.6 (worst
      +27%) for ``refit``: rankers put the best tile of some kernels 3rd-9th on their list (``refit`` spent 70%
      on neighbours after 2-3 prior picks and missed them) and of others 40th and lower (only neighbours and the
      refitted model find those), so every run keeps a share of each;
    * ``search="refit"`` (:func:`refit_tune`): in ``batches`` measuring runs, as MetaSchedule and AutoTVM
      do: the default (the anchor of every run) and the model's top picks; then the picks of a per-kernel model
      refitted on this kernel's measured ratios (:func:`refit_surrogate`: the prior's rank + a quadratic in log2
      tile sizes + a Gaussian-process residual); the last ``local_frac`` of the budget (0.7) on the neighbours of
      the best tile so far (``neighbourhood="axis+x2"``: each tile size halved, kept or doubled, or one tile size
      divided or multiplied by 4), in the refitted model's order, in three hill-climbing runs. In an offline replay
      on 17 measured kernels of two real models (``benchmarks/perf/tile_replay.py``, 8 seeds, 3.4% noise) this
      took LightGBM from 13.2 to 14.9 kernels of 17 within 5% of the best (worst gap +63% -> +7.4%): a ranker
      that puts the best tiles far down its list (a 1x1 conv whose good tiles lie on a narrow ridge) needs most
      of the budget on measured neighbours, and a one-size step of 4 crosses a slow tile between two fast ones;
    * ``search="screen"`` (:func:`race_tune`): the default and the model's top picks in one run, then
      (``local_frac``, 0.4) the neighbours of the best one, the most promising by the model first (no refit).

    All race their best measured tiles against the default and return the winner if it beats the default
    head-to-head (``refit`` and ``screen``: the ``finalists`` best for ``race_rounds`` rounds, the slower half
    dropped after half of them). Each timing runs the kernel back to back for at least ``min_timing_ns`` of CPU time
    (:func:`opgraph.perf.tile.measure_tiles`), so that short kernels are measurable on a loaded machine.

    Args:
        spec: The kernel (:class:`opgraph.perf.tile.KernelSpec`).
        ranker: A tile cost model with ``predict(GraphRecord) -> cost per config`` (lower = faster), e.g. a fitted
            :class:`opgraph.perf.baselines.LightGBMBaseline` or :class:`~opgraph.perf.baselines.AnalyticalBaseline`.
        candidates: Candidate tiles (default: :func:`opgraph.perf.tile.tile_space`, every power-of-two tile).
        measure_frac: Measuring budget as a fraction of the candidates (at least 2 configs).
        finalists: Measured tiles raced against the default (the adaptive race adds every tile within 10% of the
            best).
        race_rounds: Interleaved rounds of the race (the minimum of ``settings.reps`` timings per config and round);
            of each phase of the adaptive race.
        settings: Protocol of the screening run (its ``rounds``, ``reps``, ``warmup``).
        seed: Seed of the measuring runs' shuffles.
        local_frac: Share on the neighbours of the best measured tiles: of every run for ``mixed`` (None: 0.5),
            of the budget for ``refit`` (0.7) and ``screen`` (0.4); 0: the ranker's picks only.
        runner: A :class:`opgraph.perf.tile.TileRunner` of ``spec`` to reuse (its compiled schedules are cached).
        measurer: Replaces the measuring of both the screening runs and the race (tests, a remote machine): rows
            ``[ti, tj, tk]`` (``[0, 0, 0]``: the default schedule); see :data:`Measurer`. No TVM is then needed.
        log_path: A JSON tuning log (the layout tuner's mechanism, :func:`read_tune_log`): every screening run
            writes all configs measured so far with their ratios to the default, atomically; a rerun with the same
            kernel, candidates and settings (``measure_frac``, ``local_frac``, ``finalists``, ``race_rounds``,
            ``settings``, ``seed``) measures none of the logged configs again (the default is still timed as the
            reference of a new run), and a finished log returns its result without measuring
            (``TileTuneResult.resumed``). A log of another kernel or other settings is refused (PerfError naming
            the difference).
        search: ``"mixed"`` (runs of prior picks and neighbours), ``"refit"`` (batches with a refitted per-kernel
            model) or ``"screen"`` (the prior's picks only).
        batches: Measuring batches of ``refit`` before the race, the local batch included.
        min_timing_ns: Least CPU time of one timing (default :data:`opgraph.perf.tile.MIN_TIMING_NS`; 0: single
            executions, as before).
        refit_options: More keyword arguments of :func:`refit_tune` (``step``, ``first_frac``, ``restarts``,
            ``explore``, ``local_steps``, ``spread``, ``local_prior``).
        neighbourhood: The neighbours of a tile in the local batch: ``"x2"`` (every tile size halved, kept or
            doubled: up to 26), ``"x4"`` (each size x 1/4 .. 4: up to 124), ``"axis"`` (one size x 1/4, 1/2, 2
            or 4), ``"axis+x2"`` (both of the last: up to 32) or ``"lines"`` (``"x2"`` and every tile that
            differs in one size); None: ``"axis+x2"`` for ``refit``, ``"x2"`` for ``mixed`` and ``screen``.

    Returns:
        A :class:`TileTuneResult`.
    """
    from opgraph.perf.tile import MIN_TIMING_NS, TileRunner, candidate_record, measure_tiles, tile_space

    if search not in ("mixed", "refit", "screen"):
        raise PerfError(
            f"search={search!r}: use 'mixed' (prior picks and neighbours in every run), 'refit' (batches, refitted "
            "model) or 'screen' (the prior's picks)"
        )
    if neighbourhood is None:
        neighbourhood = "axis+x2" if search == "refit" else "x2"
    if neighbourhood not in ("x2", "x4", "lines", "axis", "axis+x2"):
        raise PerfError(f"neighbourhood={neighbourhood!r}: use 'axis+x2', 'x2', 'x4', 'axis' or 'lines'")
    if local_frac is None:
        local_frac = {"mixed": MIXED_LOCAL_FRAC, "refit": 0.7, "screen": 0.4}[search]
    if not 0.0 <= local_frac <= 1.0:
        raise PerfError(f"local_frac={local_frac}: a share of the budget in [0, 1] is needed")
    options = dict(refit_options or {})
    if search == "mixed":
        options = {**MIXED_OPTIONS, **options}
    min_ns = MIN_TIMING_NS if min_timing_ns is None else float(min_timing_ns)

    t0 = time.perf_counter()
    tiles = list(candidates) if candidates is not None else tile_space(spec)
    if not tiles or any(t is None or len(t) != 3 or min(t) < 1 for t in tiles):
        raise PerfError(f"{spec.name}: candidates must be a non-empty list of (ti, tj, tk) tiles >= 1")
    rows = np.array([[0, 0, 0]] + [list(t) for t in tiles], dtype=np.int64)
    cost = np.asarray(ranker.predict(candidate_record(spec, [None, *tiles])), dtype=np.float64)
    if cost.shape != (len(rows),):
        raise PerfError(f"{spec.name}: the ranker returned {cost.shape} costs for {len(rows)} configs")
    lookup = {r.tobytes(): float(c) for r, c in zip(rows, cost)}
    s = settings or MeasureSettings(rounds=3, reps=3, warmup=1)
    log_file = Path(log_path) if log_path is not None else None
    identity = {
        "kernel": spec.to_dict(),
        "candidates": [list(t) for t in tiles],
        "search": search,
        "measure_frac": measure_frac,
        "local_frac": local_frac,
        "finalists": finalists,
        "race_rounds": race_rounds,
        "settings": dataclasses.asdict(s),
        "seed": seed,
        "batches": batches,
        "refit_options": options,
        "min_timing_ns": min_ns,
        "neighbourhood": neighbourhood,
    }
    logged = read_tune_log(log_file, TILE_LOG_FORMAT, identity) if log_file is not None else None
    if logged is not None and logged.get("result") is not None:
        res = TileTuneResult.from_dict(logged["result"], resumed=True)
        log.info("%s: finished tile tuning read from %s (tile %s)", spec.name, log_file, res.tile)
        return res
    known = [_measured_from_dict(m) for m in (logged or {}).get("measured", [])]

    def write_log(measured: list[MeasuredConfig], default_ns: float, result: TileTuneResult | None = None) -> None:
        if log_file is not None:
            res_doc = None if result is None else result.to_dict()
            write_tune_log(log_file, TILE_LOG_FORMAT, identity, measured, default_ns, res_doc, {"name": spec.name})

    run = runner if runner is not None or measurer is not None else TileRunner(spec)

    def score(choices: np.ndarray) -> np.ndarray:
        return np.array([lookup[np.asarray(r, dtype=np.int64).tobytes()] for r in choices])

    def tile_measurer(proto: MeasureSettings) -> Measurer:
        def measure(choices: np.ndarray, n_rounds: int, run_seed: int) -> np.ndarray:
            tiles_ = [_tile_of(c) for c in choices]
            m = measure_tiles(run, tiles_, settings=replace(proto, rounds=n_rounds), seed=run_seed, min_ns=min_ns)
            return m.rounds_ns.astype(np.float64)

        return measure

    in_space = set(lookup)

    def neighbours(row: np.ndarray) -> np.ndarray:
        """Candidates next to ``row`` in the tile-size lattice, as ``neighbourhood`` says (never ``row`` itself)."""
        if not row.any():
            return np.zeros((0, 3), dtype=np.int64)
        out = []
        steps = (0.25, 0.5, 1.0, 2.0, 4.0) if neighbourhood in ("x4", "axis", "axis+x2") else (0.5, 1.0, 2.0)
        for f in itertools.product(steps, repeat=3):
            moved = sum(g != 1.0 for g in f)
            if neighbourhood == "axis" and moved != 1:
                continue
            if neighbourhood == "axis+x2" and moved != 1 and not all(g in (0.5, 1.0, 2.0) for g in f):
                continue
            nb = np.array([int(v * g) for v, g in zip(row, f)], dtype=np.int64)
            if f != (1.0, 1.0, 1.0) and nb.tobytes() in in_space:
                out.append(nb)
        if neighbourhood == "lines":
            seen_ = {r.tobytes() for r in out}
            for r in rows[1:]:
                if (r != row).sum() == 1 and r.tobytes() not in seen_:
                    out.append(r)
        return np.array(out, dtype=np.int64).reshape(-1, 3)

    budget = max(2, int(math.floor(measure_frac * len(tiles))))
    screen_measure = measurer if measurer is not None else tile_measurer(s)
    race_measure = measurer if measurer is not None else tile_measurer(replace(s, warmup=1, abort_factor=math.inf))
    if search in ("mixed", "refit"):
        extents = np.asarray(spec.loop_extents(), dtype=np.float64)
        sizes = np.where(rows.any(axis=1, keepdims=True), rows, extents[None, :]).astype(np.float64)
        out = refit_tune(
            rows,
            cost,
            np.log2(np.maximum(sizes, 1.0)),
            screen_measure,
            budget=budget,
            batches=batches,
            local_frac=local_frac,
            neighbours=neighbours,
            finalists=finalists,
            race_rounds=race_rounds,
            rounds=s.rounds,
            seed=seed,
            race_measure=race_measure,
            known=known,
            on_measured=write_log,
            **options,
        )
    else:
        out = race_tune(
            rows,
            score,
            screen_measure,
            budget=budget,
            local_search=int(round(local_frac * (budget - 1))),
            finalists=finalists,
            race_rounds=race_rounds,
            rounds=s.rounds,
            seed=seed,
            race_measure=race_measure,
            uniform=False,
            neighbours=neighbours,
            known=known,
            on_measured=write_log,
        )
    chosen = out.measured[out.chosen]
    res = TileTuneResult(
        kernel=spec.name,
        tile=_tile_of(chosen.choice),
        n_candidates=len(tiles),
        n_measured=len(out.measured),
        default_ns=out.default_ns,
        chosen_ns=out.chosen_ns,
        measured=out.measured,
        tune_s=time.perf_counter() - t0,
        compile_s=run.compile_s if run is not None else 0.0,
        spec=spec,
    )
    write_log(out.measured, out.default_ns, res)
    return res
