"""``evaluate_many(..., max_memory=...)``: the memory budget reaches every evaluation of the sweep."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph import dcg as od


def _f(x, y):
    return x * y + x


_SETS = [[od.Normal(1, 0.5), od.Uniform(0, 2)], {"x": od.Normal(0, 1), "y": od.Uniform(1, 2)}]


def test_max_memory_chunks_every_evaluation_with_the_same_answer(point_mass_answers):
    # chunked grids keep the point-mass answer (no box-linear mixture there, docs/dcg.md): compared with the same
    budget = 6 * 10**6  # the 256 x 256 grid needs about 18 MB in one piece
    many = od.evaluate_many(_f, _SETS, atoms=256, max_memory=budget)
    for ps, r in zip(_SETS, many, strict=True):
        args = [ps["x"], ps["y"]] if isinstance(ps, dict) else ps
        whole = od.evaluate(_f, *args, atoms=256)
        assert r.info["chunks"]["count"] > 1 and r.info["chunks"]["estimated_peak_bytes"] <= budget
        assert "chunks" not in whole.info
        assert np.allclose(r.atoms, whole.atoms) and np.allclose(r.weights, whole.weights, atol=1e-15)
        assert r.w1_bound == pytest.approx(whole.w1_bound, rel=1e-9)


def test_a_budget_too_small_is_refused_for_the_sweep():
    with pytest.raises(od.DistError, match=r"max_memory=100000: .*raise max_memory"):
        od.evaluate_many(_f, _SETS, atoms=256, max_memory=10**5)
