"""Fixed atoms: a grid that does not fit ``max_joint`` falls back to the largest certified grid that fits, not QMC."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg.switches import scope


def _ishigami(x, y, z):
    return np.sin(x) + 7 * np.sin(y) ** 2 + 0.1 * z**4 * np.sin(x)


def _no_separator(x, y, z):
    return x * y + y * z + z * x  # every pair shares an input: no node separates them


_PI = od.Uniform(-np.pi, np.pi)
_U = od.Uniform(0, 1)


def _run(fn, ins, **kw):
    # The uniform reduction itself (per-input allocations beside it: tests/dcg/test_budgetalloc.py).
    with warnings.catch_warnings(record=True) as rec, scope({"budget_alloc": False}):
        warnings.simplefilter("always")
        r = od.evaluate(fn, *ins, **kw)
    return r, [w for w in rec if issubclass(w.category, od.AtomsReducedWarning)]


@pytest.mark.parametrize(
    ("fn", "ins", "n", "max_joint"),
    [
        (_ishigami, [_PI, _PI, _PI], 16, 2**12),
        (_ishigami, [_PI, _PI, _PI], 8, 2**10),
        (_no_separator, [_U, _U, _U], 8, 1000),
        (_no_separator, [od.Normal(1, 0.5), _U, od.LogNormal(0, 0.3)], 16, 2**13),
    ],
)
def test_twice_the_atoms_never_gives_a_worse_answer(fn, ins, n, max_joint):
    small, w_small = _run(fn, ins, atoms=n, max_joint=max_joint)
    assert small.certified and np.isfinite(small.w1_bound) and not w_small
    assert "atoms_reduced" not in small.info
    big, w_big = _run(fn, ins, atoms=2 * n, max_joint=max_joint)
    assert n ** len(ins) <= max_joint < (2 * n) ** len(ins)  # the case: n fits, 2n does not
    assert big.certified and np.isfinite(big.w1_bound)
    used = big.info["atoms_per_input"]
    assert all(n <= k < 2 * n for k in used.values()), used
    assert np.prod(list(used.values())) <= max_joint
    assert big.w1_bound <= small.w1_bound * (1 + 1e-12)
    red = big.info["atoms_reduced"]
    assert red["requested"] == dict.fromkeys(used, 2 * n) and red["max_joint"] == max_joint
    if big.info.get("smaller_request", {}).get("used"):  # the halved request's answer kept (box-linear mixture on)
        assert used == big.info["smaller_request"]["requested"] and np.prod(list(red["used"].values())) <= max_joint
    else:
        assert red["used"] == used
    assert len(w_big) == 1
    msg = str(w_big[0].message)
    assert f"max_joint={max_joint}" in msg and f"={2 * n}" in msg and "largest certified grid" in msg


def test_the_cap_keeps_smaller_requests_and_is_the_largest_that_fits():
    r, w = _run(_no_separator, [_U, _U, _U], atoms={"x": 4, "y": 64, "z": 64}, max_joint=1000)
    used = r.info["atoms_per_input"]
    assert r.certified and len(w) == 1
    assert used["x"] == 4 and used["y"] == used["z"] == 15  # 4 * 15 * 15 = 900 <= 1000 < 4 * 16 * 16
    r_req, _ = _run(_no_separator, [_U, _U, _U], atoms={"x": 4, "y": 15, "z": 15}, max_joint=1000)
    assert r.w1_bound == pytest.approx(r_req.w1_bound, rel=1e-12)  # the same grid as asking for it
    assert np.array_equal(r.atoms, r_req.atoms)


def test_an_explicit_compression_size_is_kept():
    r, w = _run(_ishigami, [_PI, _PI, _PI], atoms=64, max_joint=2**12, compress_atoms=300)
    assert r.certified and len(w) == 1
    assert r.info["atoms_reduced"]["compress_atoms"] == 300 and r.info["compress_atoms"] == 300


def test_qmc_only_when_not_even_two_atoms_per_input_fit():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = od.evaluate(_no_separator, _U, _U, _U, atoms=64, max_joint=7, qmc_points=2**10)
    assert not r.certified and r.info["method"] == "qmc"
    assert not [w for w in rec if issubclass(w.category, od.AtomsReducedWarning)]
    assert "atoms_reduced" not in r.info
    r2, w2 = _run(_no_separator, [_U, _U, _U], atoms=64, max_joint=8)
    assert r2.certified and r2.info["atoms_per_input"] == {"x": 2, "y": 2, "z": 2} and len(w2) == 1


def test_a_fitting_request_is_untouched():
    r, w = _run(_ishigami, [_PI, _PI, _PI], atoms=16, max_joint=2**12)
    assert not w and "atoms_reduced" not in r.info and r.info["atoms_per_input"] == {"x": 16, "y": 16, "z": 16}


def test_the_allocation_is_never_worse_than_the_uniform_grid():
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        with scope({"budget_alloc_fixed_atoms": True}):
            r = od.evaluate(_ishigami, _PI, _PI, _PI, atoms=32, max_joint=2**12)
    uni, _ = _run(_ishigami, [_PI, _PI, _PI], atoms=32, max_joint=2**12)
    assert r.w1_bound <= uni.w1_bound and r.certified
    assert len([w for w in rec if issubclass(w.category, od.AtomsReducedWarning)]) == 1
    red = r.info["atoms_reduced"]
    assert red["used"] == r.info["atoms_per_input"] and red["allocation"]["uniform_w1_bound"] == uni.w1_bound
