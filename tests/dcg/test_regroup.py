"""Monotone regrouping: pieces conserve every element's mass and every group's mass, groups are contiguous in
the sorted order, and the reported cost is the exact W1 distance before/after."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as hs

from opgraph.dcg.regroup import merge_duplicates, regroup
from opgraph.dcg.w1 import w1_discrete


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    n=hs.integers(1, 200),
    m=hs.integers(1, 64),
    decimals=hs.sampled_from([0, 1, 6]),
    zeros=hs.booleans(),
    equal=hs.booleans(),
    seed=hs.integers(0, 2**31 - 1),
)
def test_regroup_pieces_masses_and_exact_cost(n, m, decimals, zeros, equal, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=n).round(decimals)
    w = np.ones(n) if equal else rng.random(n)
    if zeros:
        w[rng.random(n) < 0.3] = 0.0
        w[0] += 1.0
    rg = regroup(v, w, m)
    wn = w / w.sum()
    assert np.allclose(np.bincount(rg.piece_elem, weights=rg.piece_mass, minlength=n), wn, atol=1e-14)
    assert np.allclose(np.bincount(rg.piece_group, weights=rg.piece_mass), rg.weights, atol=1e-14)
    assert np.all(np.diff(rg.atoms) >= 0)
    if m < n:
        assert np.allclose(rg.weights, 1.0 / rg.weights.size, atol=1e-12) or zeros
    # Contiguous groups: the value ranges of consecutive groups do not overlap.
    gmin = np.full(rg.atoms.size, np.inf)
    gmax = np.full(rg.atoms.size, -np.inf)
    np.minimum.at(gmin, rg.piece_group, v[rg.piece_elem])
    np.maximum.at(gmax, rg.piece_group, v[rg.piece_elem])
    assert np.all(gmax[:-1] <= gmin[1:])
    exact = w1_discrete(v, wn, rg.atoms, rg.weights)
    assert abs(rg.w1 - exact) <= 1e-12 + 1e-9 * exact


def test_merge_duplicates():
    a, w = merge_duplicates(np.array([3.0, 1.0, 3.0, 2.0, 1.0]), np.array([0.1, 0.2, 0.3, 0.15, 0.25]))
    assert a.tolist() == [1.0, 2.0, 3.0]
    assert np.allclose(w, [0.45, 0.15, 0.4])


@settings(max_examples=50, deadline=None, derandomize=True)
@given(n=hs.integers(1, 300), decimals=hs.sampled_from([0, 2, 8]), equal=hs.booleans(), seed=hs.integers(0, 999))
def test_merge_duplicates_matches_unique(n, decimals, equal, seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(size=n).round(decimals)
    w = np.full(n, 1.0 / n) if equal else rng.random(n)
    a, wa = merge_duplicates(v, w)
    u, inv = np.unique(v, return_inverse=True)
    assert np.array_equal(a, u)
    assert np.allclose(wa, np.bincount(inv, weights=w, minlength=u.size), rtol=1e-12, atol=0)
