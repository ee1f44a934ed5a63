"""Mixture first (opgraph.dcg.mixfirst): the grid it picks, the path taken, soundness against Sobol points."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import qmc

from opgraph import dcg as od
from opgraph.dcg import mixfirst, switches
from opgraph.dcg.w1 import w1_discrete

#: The seven Uniform inputs of :func:`piston_like` as (low, high).
BOUNDS = [(1.0, 2.0), (0.5, 1.5), (0.0, 1.0), (1.0, 3.0), (2.0, 3.0), (0.5, 1.0), (1.0, 2.0)]


def piston_like(a, b, c, d, e, f, g):
    """A ratio of products on disjoint inputs (as the piston's ``div``, its first ``target_w1`` round compresses a
    product, not only sums)."""
    return (a + b) * (c + d) / (e * f + g)


def laws():
    return [od.Uniform(lo, hi) for lo, hi in BOUNDS]


def reference(seed: int, log2: int = 18) -> np.ndarray:
    """2^log2 scrambled Sobol values of :func:`piston_like`, sorted (equal weights)."""
    u = qmc.Sobol(len(BOUNDS), scramble=True, seed=seed).random_base2(log2)
    x = [lo + (hi - lo) * u[:, k] for k, (lo, hi) in enumerate(BOUNDS)]
    return np.sort(piston_like(*x))


def _target(on: bool, **kw):
    with switches.scope({"mixture_first": on}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(piston_like, *laws(), target_w1=1e-4, max_seconds=4, **kw)


def test_counts_equal_atoms_within_max_boxes():
    names = [[f"x{k}" for k in range(7)]]
    req = {f"x{k}": 8 for k in range(7)}
    assert mixfirst.counts(names, req, max_boxes=2**13) == {f"x{k}": 3 for k in range(7)}  # 3^7 = 2187, 4^7 > 2^13
    req["x2"] = 2  # an input asked for fewer keeps its count, and the others may then grow
    got = mixfirst.counts(names, req, max_boxes=2**13)
    assert got is not None and got["x2"] == 2 and all(got[n] == 4 for n in req if n != "x2")  # 4^6 * 2 = 8192
    assert (
        mixfirst.counts([names[0] * 1 + [f"y{k}" for k in range(7)]], {**req, **{f"y{k}": 8 for k in range(7)}}) is None
    )
    assert mixfirst.counts(names, {n: 3 for n in req}, max_boxes=2**13) is None  # the request itself: no change


def test_counts_per_output_grids():
    # two outputs on different inputs: each output's own grid is what must fit
    names = [["a", "b", "c"], ["c", "d"]]
    got = mixfirst.counts(names, {"a": 64, "b": 64, "c": 64, "d": 64}, max_boxes=1000)
    assert got == {"a": 10, "b": 10, "c": 10, "d": 10}


def test_first_round_is_a_small_whole_grid_with_the_mixture():
    r = _target(True)
    first = r.info["refinement"][0]
    assert first["mixture_first"]["used"] == {n: 3 for n in "abcdefg"}
    assert first["mixture_first"]["requested"] == {n: 8 for n in "abcdefg"}
    assert first["compress_atoms"] >= 1024
    off = _target(False)
    assert "mixture_first" not in off.info["refinement"][0]
    # the piston-like program: the compressed rounds certify less than the whole grids with the mixture
    assert r.w1_bound < off.w1_bound


@pytest.mark.parametrize("seed", [3])
def test_sound_against_sobol(seed):
    r = _target(True)
    ref, ref2 = reference(seed), reference(seed + 1)
    w = np.full(ref.size, 1.0 / ref.size)
    ref_err = w1_discrete(ref, w, ref2, w)
    true = w1_discrete(np.asarray(r.atoms), np.asarray(r.weights), ref, w)
    assert r.certified and np.isfinite(r.w1_bound)
    assert true <= r.w1_bound + 3 * ref_err + 1e-12


def test_not_taken_where_only_sums_are_compressed():
    def sum8(a, b, c, d, e, f, g, h):
        return a + b + c + d + e + f + g + h

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(sum8, *[od.Uniform(0, 1) for _ in range(8)], target_w1=1e-2)
    assert r.info["compressions"] and "mixture_first" not in r.info["refinement"][0]
    assert r.info["target_met"]


def test_not_taken_without_the_mixture_or_on_small_grids():
    with switches.scope({"box_linear": False}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(piston_like, *laws(), target_w1=1e-4, max_seconds=2)
    assert "mixture_first" not in r.info["refinement"][0]
    # two inputs: the first round neither compresses nor shrinks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r2 = od.evaluate(lambda a, b: a / (1 + b), od.Uniform(1, 2), od.Uniform(0, 1), target_w1=1e-3)
    assert all("mixture_first" not in h for h in r2.info["refinement"])


def test_kept_first_round_again_with_a_larger_pass_share(monkeypatch):
    """Where the call keeps the mixture-first round (here: the planner stops after it) with time left, the round is
    evaluated again with the sub-box pass on a larger share of that time: the piston (its mixture bound is mostly
    the sub-box remainder) gets a smaller bound, sound against Sobol points; nothing of it with the switch off."""
    from opgraph.dcg import api

    sys.path.insert(0, str(Path(__file__).parent))
    import test_affine_switch as AS  # the piston program and its Uniform laws

    monkeypatch.setattr(api, "_next_round", lambda *a, **k: (None, a[5], "stopped for the test"))
    monkeypatch.setattr(mixfirst, "AGAIN_MIN_LEFT", 1.0)  # a short budget for the test

    def run(on: bool):
        with switches.scope({"mixture_first_again": on}), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(AS.piston, *AS.LAWS, target_w1=1e-6, max_seconds=6)

    off, on = run(False), run(True)
    assert "mixture_first" in off.info["refinement"][0] and off.info["kept_round"] == 0
    assert "again" not in off.info["refinement"][0]
    again = on.info["refinement"][0]["again"]
    assert again["kept"] and again["w1_bound"] == on.w1_bound < off.w1_bound
    u = qmc.Sobol(7, scramble=True, seed=11).random_base2(16)
    lo, hi = (np.array([b[k] for b in AS.PISTON_VARS.values()], dtype=float) for k in (0, 1))
    x = lo + (hi - lo) * u
    ref = np.sort(AS.piston(*x.T))
    true = w1_discrete(np.asarray(on.atoms), np.asarray(on.weights), ref, np.full(ref.size, 1.0 / ref.size))
    assert on.certified and true <= on.w1_bound
