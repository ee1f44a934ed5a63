"""benchmarks/perf/tune_tile_real.py: ``fair_gap``, the verification's gap to the exhaustive best, on synthetic rounds.

Six configs of the same true runtime: the tuner's pick and five "exhaustive top" tiles, each timed in 30 interleaved
rounds with 3.4% multiplicative noise. The pick is as fast as the best, so a fair gap is 0 on average; the naive gap
(the pick's median / the fastest median of the run - 1) is biased up, because the fastest of six noisy medians is
lower than the truth (winner's curse).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "perf" / "tune_tile_real.py"


@pytest.fixture(scope="module")
def mod():
    spec = importlib.util.spec_from_file_location("tune_tile_real", SCRIPT)
    m = importlib.util.module_from_spec(spec)
    sys.modules["tune_tile_real"] = m
    spec.loader.exec_module(m)
    return m


def rounds(rng, true, n=30, noise=0.034):
    t = np.asarray(true, dtype=np.float64)[:, None] * 1e4
    return t * np.exp(noise * rng.standard_normal((len(t), n)))


def test_fair_gap_is_unbiased_where_the_naive_gap_is_not(mod):
    rng = np.random.default_rng(0)
    fair, naive = [], []
    for _ in range(150):
        x = rounds(rng, [20.0, 1, 1, 1, 1, 1, 1])  # row 0 the default, rows 1-5 the references, row 6 the pick
        g = mod.fair_gap(x, 6, [1, 2, 3, 4, 5])
        fair.append(g["gap"])
        naive.append(g["naive"])
        assert g["lo"] <= g["gap"] <= g["hi"] and g["ref"] in range(1, 6)
    assert abs(np.mean(fair)) < 0.003
    assert np.mean(naive) > 0.006  # about +1%: the fastest of six medians of 30 noisy rounds is low


def test_fair_gap_finds_a_real_gap_and_its_interval_covers_it(mod):
    rng = np.random.default_rng(1)
    true = [20.0, 1.0, 1.02, 1.05, 1.08, 1.1, 1.06]
    cover, to_best = 0, 0
    for _ in range(60):
        x = rounds(rng, true)
        g = mod.fair_gap(x, 6, [1, 2, 3, 4, 5], seed=2)
        cover += g["lo"] <= true[6] / true[g["ref"]] - 1 <= g["hi"]  # the gap to the reference it selected
        to_best += g["ref"] == 1
        assert 0.0 < g["gap"] < 0.12
    assert cover >= 48  # a 95% bootstrap interval of a median of 15 rounds: about 55 of 60
    assert to_best >= 45  # the selection on 15 rounds finds the fastest reference (2% ahead) most of the time


def test_a_pick_among_the_references_that_is_the_reference_has_gap_zero(mod):
    x = rounds(np.random.default_rng(3), [20.0, 1.0, 1.3, 1.3])
    g = mod.fair_gap(x, 1, [1, 2, 3])
    assert g["ref"] == 1 and g["gap"] == 0.0 and g["lo"] == 0.0 == g["hi"]
