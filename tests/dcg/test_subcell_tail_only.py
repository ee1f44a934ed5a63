"""The sub-cell pass's second round splits the tail cells its first round left whole (``plan_splits(tail_only=True)``)."""

from __future__ import annotations

import warnings

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import subcells


def _four_branch(x, y, p=6.0):  # uqtestfuns' FourBranch: the smallest of four limit states of two N(0, 1)
    b1 = 3.0 + 0.1 * (x - y) ** 2 - (x + y) / np.sqrt(2)
    b2 = 3.0 + 0.1 * (x - y) ** 2 + (x + y) / np.sqrt(2)
    return np.minimum(np.minimum(b1, b2), np.minimum(x - y + p, -x + y + p))


def _cells(plan, sizes, tails):
    n = 1
    for name, size in sizes.items():
        p, t = plan.get(name), tails[name]
        n *= size if p is None else (size - t) * p + t * (p + subcells.TAIL_PIECES)
    return n


def test_tail_only_plan_splits_every_tailed_input_within_the_cap():
    sizes, tails, terms = {"x": 8, "y": 8}, {"x": 2, "y": 2}, {"x": 1.0, "y": 0.9}
    plain = subcells.plan_splits(terms, sizes, tails, 512)
    assert list(plain) == ["x"]  # halving y too (24 x 24 boxes) does not fit 512: y keeps its whole tail cells
    both = subcells.plan_splits(terms, sizes, tails, 512, tail_only=True)
    assert set(both) == {"x", "y"} and both["y"] == 1  # y's tail cells alone: (8 - 2) + 2 * 5 = 16 cells
    assert _cells(both, sizes, tails) <= 512
    # without tail cells the option changes nothing
    assert subcells.plan_splits(terms, sizes, {"x": 0, "y": 0}, 512, tail_only=True) == subcells.plan_splits(
        terms, sizes, {"x": 0, "y": 0}, 512
    )


def test_more_atoms_do_not_loosen_four_branch_and_the_bound_stays_sound():
    x, y = od.Normal(0, 1), od.Normal(0, 1)
    g = np.random.default_rng(5)
    ref = _four_branch(g.normal(size=2**20), g.normal(size=2**20))
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for atoms in (4, 8, 16):
            r = od.evaluate(_four_branch, x, y, atoms=atoms)
            bounds.append(r.w1_bound)
            assert r.w1_bound >= od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 2e-3
    assert bounds[1] <= bounds[0] and bounds[2] <= bounds[1], bounds  # 8 atoms was 5.49 against 0.39 at 4
