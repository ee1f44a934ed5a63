"""The tile tuner's final race and its diverse pick, on fake cost surfaces with seeded multiplicative noise (no TVM).

The noise is what the real runs show: every (config, round) runtime is the true runtime x exp(N(0, 0.034)),
independent across configs and rounds. Two failure modes of the tuner before the adaptive race and the diverse pick:

* **race**: the only measured tile within 5% of the best (+4.7%) races tiles at +6.1-10%, but the old race (the 3
  best screening ratios, each a median of 3 noisy rounds, raced for 10 rounds with the slower half dropped after 5)
  often keeps a slower one: it is not among the 3 finalists, or 5-10 rounds cannot separate 1.4%;
* **spike**: the best tile stands alone (every neighbour 30% slower), far from the ranker's favourite region, and the
  ranker puts it 11th on its list with 10 to spend: neither the ranker's next picks nor the neighbours of the best measured tiles
  reach it.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.perf.tile import KernelSpec, tile_space
from opgraph.perf.tune import refit_tune, trimmed_mean_se, tune_tile

SPEC = KernelSpec("matmul", (64, 64, 32), "bias")
SPACE = tile_space(SPEC)
NOISE = 0.034


class Ranker:
    """A prior cost model that predicts ``cost``."""

    def __init__(self, cost):
        self.cost = cost

    def predict(self, rec):
        cf = rec.config_matrix()
        return np.array([self.cost(None)] + [self.cost(tuple(int(v) for v in row[:3])) for row in cf[1:]])


def noisy(cost, seed):
    """A measurer: true runtime (cost x 1 us) x exp(N(0, NOISE)) per config and round, seeded by run and ``seed``."""

    def measure(choices, n_rounds, run_seed):
        assert not np.asarray(choices[0]).any(), "row 0 of every run is the default schedule"
        v = np.array([cost(None if not c.any() else tuple(int(x) for x in c)) for c in choices]) * 1e3
        rng = np.random.default_rng([seed, run_seed, len(choices), n_rounds])
        return v[:, None] * np.exp(NOISE * rng.standard_normal((len(v), n_rounds)))

    return measure


def bowl(center, floor=1.5):
    c = np.log2(center)

    def cost(tile):
        return 30.0 if tile is None else floor + 0.3 * float(((np.log2(tile) - c) ** 2).sum())

    return cost


# --- race: the 3x3 stride-2 32->64 conv of ResNet, as its stored exhaustive run has it ----------------------------------
# Its best tile (1.00) is far down the ranker's list and never measured; the tiles measured are within 4.7% of it
# (one), +6.1%, +6.4%, +7.6% and +10%. Only the first is within 5% of the best; 1.4% separates it from the next.
FAR = (1, 1, 1)  # the best tile: the ranker's last pick
NEAR = {(16, 32, 8): 1.047, (32, 16, 8): 1.061, (16, 16, 16): 1.064, (8, 16, 8): 1.076, (32, 32, 8): 1.10}
TRUE_RACE = {FAR: 1.0, **NEAR}


def race_cost(tile):
    return TRUE_RACE.get(tile, bowl((16, 16, 8))(tile))


def race_prior(tile):
    if tile == FAR:
        return 100.0
    return list(NEAR).index(tile) - 10.0 if tile in NEAR else bowl((16, 16, 8))(tile)


def race_picks(seeds, **options):
    picks = []
    for s in range(seeds):
        res = tune_tile(SPEC, Ranker(race_prior), measurer=noisy(race_cost, s), seed=s, refit_options=options or None)
        assert res.measured_frac <= 0.1
        picks.append(res.tile)
    return picks


def test_the_race_keeps_the_only_tile_within_5_percent():
    picks = race_picks(16)
    assert all(race_cost(p) <= 1.05 for p in picks)  # 1.4% apart: separated by the noise in up to 100 rounds


def test_the_old_race_loses_it():
    """The halving race of 3 finalists and 10 rounds (the default until now) keeps a +6.1-7.6% tile often."""
    picks = race_picks(16, race="halving")
    assert sum(race_cost(p) <= 1.05 for p in picks) <= 12


def test_race_drops_clearly_slower_finalists_and_counts_rounds():
    """Finalists 30% slower drop after the first phase; near-equal ones race on; every round counts the default."""
    rows = np.array([[0, 0, 0], [1, 1, 1], [2, 1, 1], [4, 1, 1], [8, 1, 1]])
    true = {(1, 1, 1): 1.0, (2, 1, 1): 1.01, (4, 1, 1): 1.3, (8, 1, 1): 1.3}

    def cost(tile):
        return 20.0 if tile is None else true[tile]

    runs = []

    def measure(choices, n_rounds, seed):
        runs.append((len(choices), n_rounds))
        return noisy(cost, 7)(choices, n_rounds, seed)

    out = refit_tune(
        rows,
        np.arange(5.0),
        np.log2(np.maximum(rows, 1)),
        measure,
        budget=5,
        step=4,
        first_frac=1.0,
        race="adaptive",
        finalists=4,
        race_rounds=10,
        race_max_rounds=40,
    )
    race = runs[1:]
    assert race[0] == (5, 10)  # the default + 4 finalists (budget 5: one screening run of all 4)
    assert all(k == 3 for k, _ in race[1:])  # the two 30% slower tiles are gone after the first phase
    assert sum(n for _, n in race) == 40  # 1% apart: not separated in 40 rounds, so all of them are raced
    by_tile = {tuple(m.choice): m for m in out.measured}
    assert by_tile[(4, 1, 1)].race_rounds == 10 and by_tile[(1, 1, 1)].race_rounds == 40
    assert out.measured[out.chosen].choice.tolist() in ([1, 1, 1], [2, 1, 1])


def test_race_returns_the_default_when_no_tile_beats_it():
    rows = np.array([[0, 0, 0], [1, 1, 1], [2, 1, 1]])

    def cost(tile):
        return 1.0 if tile is None else 1.2

    out = refit_tune(
        rows, np.arange(3.0), np.log2(np.maximum(rows, 1)), noisy(cost, 1), budget=3, step=4, race="adaptive"
    )
    assert out.chosen == 0


def test_trimmed_mean_is_robust_and_its_error_shrinks():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 1.0, 400)
    m, se = trimmed_mean_se(x)
    assert abs(m) < 0.15 and 0.04 < se < 0.08  # about 1.1 / sqrt(400) for a 20% trimmed mean
    spoilt = x.copy()
    spoilt[:20] = 50.0  # 5% outliers (a preempted timing)
    assert abs(trimmed_mean_se(spoilt)[0]) < 0.2 and abs(spoilt.mean()) > 2.0
    assert trimmed_mean_se(x[:40])[1] > se


# --- spike: the best tile stands alone, far from the ranker's favourite region, 11th on its list --------------------
HOME = (32, 32, 16)  # the ranker's favourite region: a plateau of tiles 7-20% slower than the best
SPIKE = (2, 4, 2)


def spike_cost(tile):
    if tile == SPIKE:
        return 1.0
    if tile is not None and all(a in (b // 2, b, b * 2) for a, b in zip(tile, SPIKE)):
        return 1.3  # every neighbour of the spike is 30% slower
    return bowl(HOME, floor=1.07)(tile)


def _spike_order():
    base = bowl(HOME, floor=1.07)
    ranked = sorted((t for t in SPACE if t != SPIKE), key=base)  # stable: ties keep the order of SPACE
    return {t: r for r, t in enumerate(ranked[:10] + [SPIKE] + ranked[10:])}  # the spike: 11th on the list


SPIKE_RANK = _spike_order()


def spike_prior(tile):
    return 1e6 if tile is None else float(SPIKE_RANK[tile])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_diverse_pick_reaches_an_isolated_spike(seed):
    ranked = sorted(SPACE, key=spike_prior)
    assert ranked.index(SPIKE) == 10
    frac = 0.04  # a budget of 11 tiles, the default included (as a 1x1 conv of ResNet: 12 of 126)
    res = tune_tile(SPEC, Ranker(spike_prior), measurer=noisy(spike_cost, seed), seed=seed, measure_frac=frac)
    stages = {tuple(m.choice.tolist()): m.stage for m in res.measured}
    assert stages.get(SPIKE) == "diverse" and res.tile == SPIKE
    no_diverse = tune_tile(
        SPEC,
        Ranker(spike_prior),
        measurer=noisy(spike_cost, seed),
        seed=seed,
        measure_frac=frac,
        refit_options={"diverse": 0},
    )
    assert no_diverse.tile != SPIKE and spike_cost(no_diverse.tile) >= 1.07
