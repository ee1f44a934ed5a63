"""The tuner's budget logic (screen, local search, race, default guard) with deterministic fake measurers."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.perf.errors import PerfError
from opgraph.perf.tune import race_tune

T = 6  # distinct convolutions


def all_configs() -> np.ndarray:
    """Every config of T convolutions, row 0 all NCHW."""
    return np.array([[(k >> j) & 1 for j in range(T)] for k in range(2**T)], dtype=np.int64)


def key(c) -> tuple[int, ...]:
    return tuple(int(v) for v in c)


class FakeMeasurer:
    """Runtime = ``truth(config)`` ms, times ``1 + noise * N(0, 1)`` from a seeded generator; records every call.

    ``first_call`` overrides the runtime of some configs in the first call only (a lucky or unlucky screening run).
    """

    def __init__(self, truth, noise=0.0, first_call=None):
        self.truth, self.noise, self.first_call = truth, noise, first_call or {}
        self.calls: list[np.ndarray] = []

    def __call__(self, choices, rounds, seed):
        rng = np.random.default_rng(seed)
        base = np.array([self.truth(c) for c in choices], dtype=np.float64)
        if not self.calls:
            base = np.array([self.first_call.get(key(c), b) for c, b in zip(choices, base)])
        self.calls.append(np.array(choices))
        return 1e6 * base[:, None] * (1 + self.noise * rng.standard_normal((len(choices), rounds)))

    def distinct(self) -> set[tuple[int, ...]]:
        return {key(c) for call in self.calls for c in call}


def linear_truth(weights):
    w = np.asarray(weights, dtype=np.float64)
    return lambda c: 1.0 + float(np.dot(w, c))


def exact_scorer(truth):
    return lambda choices: np.array([truth(c) for c in choices])


def test_budget_counts_every_distinct_config_and_default_is_row_zero():
    cand = all_configs()
    truth = linear_truth([-0.05, 0.02, -0.03, 0.04, -0.01, 0.03])
    m = FakeMeasurer(truth, noise=0.02)
    out = race_tune(
        cand, exact_scorer(truth), m, budget=10, local_search=3, finalists=4, race_rounds=6, rounds=2, uniform=False
    )
    assert len(out.measured) == 10
    assert len(m.distinct()) == 10  # nothing measured outside the budget, re-measurements not double-counted
    assert all(call[0].sum() == 0 for call in m.calls)  # every run carries the default for the ratios
    assert out.measured[0].stage == "default" and not out.measured[0].choice.any()
    assert out.n_config_rounds == sum(len(c) for c in m.calls[:2]) * 2 + 5 * 3 + 3 * 3
    assert out.budget == 10


def test_finds_the_fastest_config_when_the_model_is_exact():
    cand = all_configs()
    truth = linear_truth([-0.05, 0.02, -0.03, 0.04, -0.01, 0.03])
    out = race_tune(cand, exact_scorer(truth), FakeMeasurer(truth, noise=0.01), budget=8, local_search=2)
    best = min(range(len(cand)), key=lambda i: truth(cand[i]))
    assert key(out.measured[out.chosen].choice) == key(cand[best])
    assert out.chosen_ns < out.default_ns


def test_never_returns_a_config_that_does_not_beat_the_default_head_to_head():
    cand = all_configs()
    truth = linear_truth([0.05, 0.02, 0.03, 0.04, 0.01, 0.03])  # every flip slows down: the default is best
    lucky = {key(c): 0.7 for c in cand[1:]}  # ... but the screening run makes everything look 30% faster
    m = FakeMeasurer(truth, noise=0.0, first_call=lucky)
    out = race_tune(cand, exact_scorer(truth), m, budget=8, local_search=0, finalists=3, race_rounds=6)
    assert out.chosen == 0
    assert out.chosen_ns == out.default_ns
    # without the race, the lucky screening run would have been believed
    m2 = FakeMeasurer(truth, noise=0.0, first_call=lucky)
    assert race_tune(cand, exact_scorer(truth), m2, budget=8, local_search=0, finalists=0).chosen != 0


def test_race_corrects_an_unlucky_screening_run():
    cand = all_configs()
    a, b = key(cand[1]), key(cand[2])
    true = {a: 0.95, b: 0.80}

    def truth(c):
        return true.get(key(c), 1.0 if not any(c) else 1.02)

    scores = {a: 0.0, b: 0.1}  # the model ranks a, b first

    def score(choices):
        return np.array([scores.get(key(c), 1.0) for c in choices])

    unlucky = {b: 0.99}  # b looks like the default in its screening run, a looks fine
    screen_only = race_tune(cand, score, FakeMeasurer(truth, first_call=unlucky), budget=6, finalists=0)
    assert key(screen_only.measured[screen_only.chosen].choice) == a
    raced = race_tune(cand, score, FakeMeasurer(truth, first_call=unlucky), budget=6, finalists=3, race_rounds=4)
    win = raced.measured[raced.chosen]
    assert key(win.choice) == b and win.race_rounds == 4
    assert raced.chosen_ns == pytest.approx(0.80e6)
    assert raced.default_ns == pytest.approx(1.0e6)


def test_successive_halving_drops_the_slower_half_after_the_first_half_of_the_rounds():
    cand = all_configs()
    truth = linear_truth([-0.05, -0.04, -0.03, -0.02, 0.01, 0.02])
    out = race_tune(
        cand,
        exact_scorer(truth),
        FakeMeasurer(truth),
        budget=10,
        local_search=0,
        finalists=4,
        race_rounds=8,
        uniform=False,
    )
    raced = sorted((m for m in out.measured if m.race_rounds), key=lambda m: m.race_ratio)
    assert [m.race_rounds for m in raced] == [8, 8, 4, 4]


def test_local_search_reaches_a_config_outside_the_candidates():
    full = all_configs()
    truth = linear_truth([-0.05, -0.04, 0.03, 0.02, 0.01, 0.02])
    best = min(full, key=truth)
    # candidates: the default and configs that differ from the optimum in >= 2 places... except a single-flip one
    cand = [full[0]] + [c for c in full[1:] if np.sum(c != best) >= 1 and key(c) != key(best)][:20]
    cand = np.stack(cand)
    assert key(best) not in {key(c) for c in cand}
    out = race_tune(cand, exact_scorer(truth), FakeMeasurer(truth), budget=6, local_search=2, finalists=3)
    win = out.measured[out.chosen]
    assert key(win.choice) == key(best) and win.stage == "local" and win.candidate == -1
    no_ls = race_tune(cand, exact_scorer(truth), FakeMeasurer(truth), budget=6, local_search=0, finalists=3)
    assert key(no_ls.measured[no_ls.chosen].choice) != key(best)


def test_leftover_local_budget_goes_to_model_picks():
    cand = all_configs()[:4]  # tiny space: the default, then 3 configs
    truth = linear_truth([-0.05, -0.04, 0.0, 0.0, 0.0, 0.0])
    m = FakeMeasurer(truth)
    out = race_tune(cand, exact_scorer(truth), m, budget=4, local_search=2, finalists=2, race_rounds=2)
    assert len(out.measured) == 4 and len(m.distinct()) == 4


def test_bad_arguments():
    cand = all_configs()
    truth = linear_truth([0.0] * T)
    with pytest.raises(PerfError, match="budget"):
        race_tune(cand, exact_scorer(truth), FakeMeasurer(truth), budget=1)
    with pytest.raises(PerfError, match="row 0"):
        race_tune(cand[::-1], exact_scorer(truth), FakeMeasurer(truth), budget=4)

    def bad(choices, rounds, seed):
        return np.ones((len(choices), rounds + 1))

    with pytest.raises(PerfError, match="shape"):
        race_tune(cand, exact_scorer(truth), bad, budget=4)


def test_tune_layout_maps_shared_modules_to_one_choice():
    torch = pytest.importorskip("torch")
    from torch import nn

    from opgraph.perf.tune import tune_layout

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 3, padding=1)
            self.b = nn.Conv2d(8, 8, 3, padding=1)  # called twice: one choice for both calls
            self.c = nn.Conv2d(8, 4, 1)

        def forward(self, x):
            return self.c(self.b(torch.relu(self.b(self.a(x)))))

    class Model:
        calls = 0

        def predict(self, rec):
            feat = np.asarray(rec.node_config_feat)
            assert feat.shape[1] == 4  # four conv calls, three modules
            assert (feat[:, 1] == feat[:, 2]).all()  # the two calls of b share a layout
            Model.calls += 1
            return feat[..., 0].sum(axis=1)  # prefers channels-last

    truth = linear_truth([-0.1, -0.05, 0.02])
    m = FakeMeasurer(truth)
    net, x = Net().eval(), (torch.randn(1, 3, 8, 8),)
    res = tune_layout(
        net, x, Model(), n_candidates=8, measure_frac=0.5, local_search=0.25, finalists=2, race_rounds=2, measurer=m
    )
    assert res.targets == ["a", "b", "c"]
    assert res.n_candidates == 8 and res.n_measured == 4 and res.measured_frac == 0.5
    assert key(res.best_choice) == (1, 1, 0)
    assert res.speedup == pytest.approx(1 / 0.85)
    assert Model.calls >= 2  # the candidates and the local-search neighbours were scored
    y = res.apply(net, x)(*x)
    assert torch.allclose(y, net(*x), atol=1e-5)


def test_race_uses_its_own_measurer_and_reports_measuring_time(monkeypatch):
    import opgraph.perf.tune as tune_mod

    class Clock:  # a fake clock that each measurer call advances by exactly 1.5 s
        now = 0.0

        @classmethod
        def perf_counter(cls) -> float:
            return cls.now

    class Timed(FakeMeasurer):
        def __call__(self, *args, **kwargs):
            Clock.now += 1.5
            return super().__call__(*args, **kwargs)

    monkeypatch.setattr(tune_mod, "time", Clock)
    cand = all_configs()
    truth = linear_truth([-0.05, 0.02, -0.03, 0.04, -0.01, 0.03])
    screen, race = Timed(truth), Timed(truth)
    out = race_tune(
        cand,
        exact_scorer(truth),
        screen,
        budget=8,
        local_search=2,
        finalists=4,
        race_rounds=10,
        race_measure=race,
        uniform=False,
    )
    assert len(screen.calls) == 2 and len(race.calls) == 2  # screen + local search; two race phases
    assert [len(c) for c in race.calls] == [5, 3]
    assert race.distinct() <= screen.distinct()  # the race only re-measures configs already counted
    assert out.measure_s == pytest.approx(1.5 * (len(screen.calls) + len(race.calls)))  # only measuring counts


@pytest.mark.parametrize("seed", range(4))
def test_both_uniform_layouts_are_always_measured_and_the_measured_best_is_returned(seed):
    cand = all_configs()
    rng = np.random.default_rng(seed)
    truth = linear_truth(rng.normal(0, 0.05, T))
    ones = (1,) * T

    def anti_score(choices):  # the model ranks all channels-last last, whatever the truth
        return np.array([1e9 if key(c) == ones else truth(c) for c in choices])

    m, r = FakeMeasurer(truth, noise=0.02), FakeMeasurer(truth, noise=0.02)
    out = race_tune(cand, anti_score, m, budget=6, finalists=2, race_rounds=6, seed=seed, race_measure=r)
    stages = {key(x.choice): x.stage for x in out.measured}
    assert stages[(0,) * T] == "default" and stages[ones] == "uniform"
    assert all(key(call[0]) == (0,) * T for call in m.calls + r.calls)  # the default is in every run
    assert all(ones in {key(c) for c in call} for call in r.calls)  # ... and all channels-last in every race phase
    raced = [x for x in out.measured if x.race_rounds == 6]  # the finalists that ran every race round
    assert any(key(x.choice) == ones for x in raced)
    best = min(raced, key=lambda x: x.race_ratio)
    expect = best if best.race_ratio < 1.0 else out.measured[0]
    assert key(out.measured[out.chosen].choice) == key(expect.choice)
    assert out.race_ci is not None and out.race_ci.n == 6


def test_all_channels_last_wins_when_it_is_best_even_if_the_model_ranks_it_last():
    cand = all_configs()
    truth = linear_truth([-0.05] * T)  # all channels-last is the optimum
    ones = (1,) * T

    def anti_score(choices):
        return np.array([1e9 if key(c) == ones else -truth(c) for c in choices])  # and the model is adversarial

    out = race_tune(cand, anti_score, FakeMeasurer(truth), budget=4, finalists=2, race_rounds=4)
    assert key(out.measured[out.chosen].choice) == ones
    without = race_tune(cand, anti_score, FakeMeasurer(truth), budget=4, finalists=2, race_rounds=4, uniform=False)
    assert key(without.measured[without.chosen].choice) != ones  # the guarantee comes from ``uniform``
