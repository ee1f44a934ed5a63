"""Tile tuning of one kernel: the cost model ranks every tile, a tenth is measured, the race picks."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from opgraph.perf.errors import PerfError
from opgraph.perf.measure import MeasureSettings
from opgraph.perf.tile import KernelSpec, tile_space
from opgraph.perf.tune import tune_tile

HAS_TVM = importlib.util.find_spec("tvm") is not None
FAST = MeasureSettings(rounds=2, reps=1, warmup=1)


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i
    return x


class FakeRunner:
    """Runs a busy loop whose length is a synthetic cost of the tile (no TVM)."""

    compile_s = 0.0

    def __init__(self, cost):
        self.cost = cost

    def thunk(self, tile):
        n = int(self.cost(tile) * 3000)
        return lambda: _spin(n)


class Ranker:
    def __init__(self, cost, sign=1.0):
        self.cost, self.sign = cost, sign

    def predict(self, rec):
        cf = rec.config_matrix()
        tiles = [None] + [tuple(int(v) for v in row[:3]) for row in cf[1:]]
        return self.sign * np.array([self.cost(t) for t in tiles])


SPEC = KernelSpec("matmul", (64, 64, 32), "bias")
BEST = (16, 32, 8)


def cost(tile):
    if tile is None:
        return 8.0  # TVM's default schedule
    return 1.0 if tile == BEST else 3.0 + (sum(tile) % 5)


def test_an_exact_ranker_finds_the_best_tile_measuring_a_tenth():
    space = tile_space(SPEC)
    assert len(space) == 7 * 7 * 6 and BEST in space
    res = tune_tile(SPEC, Ranker(cost), runner=FakeRunner(cost), settings=FAST, race_rounds=4, seed=1)
    assert res.tile == BEST
    assert res.n_candidates == len(space) and res.n_measured == len(space) // 10
    assert res.measured_frac <= 0.1
    assert res.measured[0].stage == "default" and res.measured[0].choice.tolist() == [0, 0, 0]
    assert res.speedup > 2.0  # cost 8 vs 1, minus the loop overhead


def test_local_search_finds_the_best_tile_next_to_a_misranked_pick():
    near = (16, 32, 4)  # the model's favourite; the best tile doubles its tk

    def true_cost(tile):
        return 1.0 if tile == BEST else 2.0 if tile == near else cost(tile)

    def is_neighbour(t):
        return t != near and all(a in (b // 2, b, 2 * b) for a, b in zip(t, near))

    def model(tile):
        if tile is None:
            return 8.0
        if tile == near:
            return 0.5
        if tile == BEST:
            return 4.0  # outside the model's top picks, first among the neighbours
        return 5.0 if is_neighbour(tile) else 3.0

    res = tune_tile(
        SPEC, Ranker(model), runner=FakeRunner(true_cost), settings=FAST, race_rounds=4, seed=2, search="screen"
    )
    stages = {tuple(m.choice.tolist()): m.stage for m in res.measured}
    assert stages[near] == "screen" and stages[BEST] == "local"
    assert all(is_neighbour(t) for t, st in stages.items() if st == "local")
    assert res.tile == BEST and res.n_measured == len(tile_space(SPEC)) // 10
    no_local = tune_tile(
        SPEC,
        Ranker(model),
        runner=FakeRunner(true_cost),
        settings=FAST,
        race_rounds=4,
        local_frac=0.0,
        seed=2,
        search="screen",
    )
    assert BEST not in {tuple(m.choice.tolist()) for m in no_local.measured}


def test_a_wrong_ranker_still_never_returns_a_tile_slower_than_the_default():
    def slow(tile):
        return 1.0 if tile is None else 6.0

    res = tune_tile(SPEC, Ranker(slow), runner=FakeRunner(slow), settings=FAST, race_rounds=4)
    assert res.tile is None and res.speedup == 1.0


def test_bad_candidates_and_ranker_shapes():
    with pytest.raises(PerfError, match="candidates"):
        tune_tile(SPEC, Ranker(cost), candidates=[], runner=FakeRunner(cost))

    class Short:
        def predict(self, rec):
            return np.zeros(2)

    with pytest.raises(PerfError, match="costs for"):
        tune_tile(SPEC, Short(), candidates=[(1, 1, 1), (2, 2, 2), (4, 4, 4)], runner=FakeRunner(cost))


@pytest.mark.skipif(not HAS_TVM, reason="apache-tvm not installed (extra 'tvm')")
def test_tvm_kernel_with_the_analytical_model():
    from opgraph.perf.baselines import AnalyticalBaseline
    from opgraph.perf.tile import TileRunner, candidate_record

    spec = KernelSpec("matmul", (32, 32, 16), "bias_relu")
    cands = [(4, 8, 4), (8, 8, 8), (8, 16, 4), (16, 16, 16), (2, 4, 2), (32, 32, 16), (1, 1, 1), (4, 4, 4)]
    runner = TileRunner(spec)
    res = tune_tile(spec, AnalyticalBaseline(), candidates=cands, runner=runner, settings=FAST, race_rounds=2)
    assert res.n_measured == 2  # the default + the model's top pick (budget floor(0.1 * 8) -> at least 2)
    pick = res.measured[1]
    top = int(np.argsort(AnalyticalBaseline().predict(candidate_record(spec, [None, *cands]))[1:])[0])
    assert tuple(pick.choice) == cands[top] and pick.predicted_rank >= 0
    assert res.tile in (None, cands[top]) and res.default_ns > 0 and runner.compile_s > 0
