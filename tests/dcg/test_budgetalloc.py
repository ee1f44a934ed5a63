"""Per-input allocation of the grid budget (``opgraph.dcg.budgetalloc``): fixed atoms beyond ``max_joint``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import budgetalloc
from opgraph.dcg.switches import capture, scope

from .sobolref import sobol_reference

_U = od.Uniform(0, 1)
#: The weights of `_weighted`'s three terms drawn by the property tests.
_WEIGHTS = {name: hs.floats(0.05, 5) for name in "abc"}


def _weighted(a: float, b: float, c: float):
    """Every pair shares an input (no node separates them): the joint grid is the whole product."""

    def fn(x, y, z):
        return a * np.sin(3 * x) * y + b * y * z + c * z * np.exp(x)

    return fn


def _run(fn, ins, alloc: bool = True, **kw):
    with warnings.catch_warnings(), scope({"budget_alloc": alloc, "budget_alloc_fixed_atoms": alloc}):
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *ins, **kw)


# -- the greedy rule ------------------------------------------------------------------------------------------------


def test_allocate_respects_caps_floors_and_the_budget():
    terms = {"a": 8.0, "b": 1.0, "c": 0.01}
    at = {"a": 4, "b": 4, "c": 4}

    def fits(n):
        return math.prod(n.values()) <= 64

    got = budgetalloc.allocate(terms, at, fits, {"a": 100, "b": 100, "c": 100}, dict.fromkeys(at, 1))
    assert got is not None and fits(got)
    assert got["a"] > got["b"] > got["c"] == 1  # the budget goes where the terms are
    assert budgetalloc.predicted(terms, at, got) < budgetalloc.predicted(terms, at, at)
    capped = budgetalloc.allocate(terms, at, fits, {"a": 8, "b": 100, "c": 100}, dict.fromkeys(at, 1))
    assert capped is not None and capped["a"] == 8 and fits(capped)
    assert budgetalloc.allocate(terms, at, lambda n: False, dict.fromkeys(at, 9), dict.fromkeys(at, 1)) is None


def test_allocate_keeps_inputs_without_a_term_and_follows_the_quantizer_sizes():
    at = {"a": 4, "b": 4, "e": 3}

    def fits(n):
        return math.prod(n.values()) <= 4 * 64 * 3

    def pow2(v, k):
        return 1 << (k.bit_length() - 1) if v == "b" else k

    got = budgetalloc.allocate({"a": 1.0, "b": 1.0}, at, fits, dict.fromkeys(at, 64), dict.fromkeys(at, 2), size=pow2)
    assert got is not None and got["e"] == 3  # no term: nothing says what fewer atoms would cost
    assert got["b"] & (got["b"] - 1) == 0  # only sizes the quantizer makes


def test_ladder_caps_are_nested():
    req = {"x": 64, "y": 64, "z": 5}
    floor = {"x": 10, "y": 10, "z": 5}
    big = budgetalloc.ladder({k: 2 * v if k != "z" else v for k, v in req.items()}, floor)
    small = budgetalloc.ladder(req, floor)
    assert [c["x"] for c in big] == [128, 64, 32, 16] and [c["x"] for c in small] == [64, 32, 16]
    assert all(c in big for c in small)


# -- fixed atoms ------------------------------------------------------------------------------------------------------


def test_the_switch_is_registered():
    assert capture()["budget_alloc"] is True
    assert capture()["budget_alloc_fixed_atoms"] is False  # opt-in: the ladder costs 2-4.5x the call's CPU
    with scope({"budget_alloc": False}):
        assert budgetalloc.ENABLED.get() is False


@pytest.mark.usefixtures("point_mass_answers")
def test_a_reduced_grid_takes_the_allocation_and_says_so():
    fn, max_joint, n = _weighted(4.0, 0.3, 0.02), 1000, 32
    uni = _run(fn, [_U, _U, _U], alloc=False, atoms=n, max_joint=max_joint)
    r = _run(fn, [_U, _U, _U], atoms=n, max_joint=max_joint)
    assert uni.certified and r.certified
    used = r.info["atoms_per_input"]
    assert all(k <= n for k in used.values()) and math.prod(used.values()) <= max_joint
    assert r.w1_bound <= uni.w1_bound
    red = r.info["atoms_reduced"]
    alloc = red["allocation"]
    assert alloc["uniform_w1_bound"] == pytest.approx(uni.w1_bound, rel=1e-12)
    assert alloc["sensitivity"] == "terms" and alloc["candidates"]
    assert red["used"] == used and alloc["used"] == used  # the allocation won here (the path is taken)
    assert used["x"] > used["z"]  # the input with the largest term got the most atoms
    assert r.w1_bound == pytest.approx(min(c["w1_bound"] for c in alloc["candidates"]), rel=1e-12)
    # The answer is the grid it names: asking for those counts directly gives the same law and bound.
    direct = _run(fn, [_U, _U, _U], atoms=used, max_joint=max_joint)
    assert np.array_equal(direct.atoms, r.atoms) and direct.w1_bound == pytest.approx(r.w1_bound, rel=1e-12)


@pytest.mark.parametrize("normal", [False, True])
def test_the_bound_holds_against_a_sobol_reference(normal):
    """Every candidate is certified on its own; the kept one is checked against 2 x 2**17 scrambled Sobol points."""
    fn = _weighted(4.0, 0.3, 0.02)
    laws = [_U, od.Normal(0.5, 0.2) if normal else _U, _U]
    ref, err = sobol_reference(fn, laws, log2=17, seed=14)
    for n in (16, 64):
        r = _run(fn, laws, atoms=n, max_joint=1000)
        assert r.info["atoms_reduced"]["allocation"]["used"] is not None  # the allocated grid is the answer
        true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
        assert r.w1_bound >= true - 3 * err, (n, r.w1_bound, true, err)


def test_off_keeps_the_uniform_grid():
    r = _run(_weighted(4.0, 0.3, 0.02), [_U, _U, _U], alloc=False, atoms=32, max_joint=1000)
    assert r.info["atoms_per_input"] == {"x": 10, "y": 10, "z": 10}
    assert "allocation" not in r.info["atoms_reduced"]


@pytest.mark.usefixtures("point_mass_answers")
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    **_WEIGHTS,
    n=hs.sampled_from([16, 32]),
    normal=hs.booleans(),
)
def test_twice_the_atoms_never_gives_a_worse_bound(a, b, c, n, normal):
    """Both requests reduced to the same uniform grid: the 2N call tries a superset of the N call's grids."""
    ins = [_U, od.Normal(0.5, 0.2) if normal else _U, _U]
    fn = _weighted(a, b, c)
    r1 = _run(fn, ins, atoms=n, max_joint=1000)
    r2 = _run(fn, ins, atoms=2 * n, max_joint=1000)
    assert r1.certified and r2.certified
    assert r2.w1_bound <= r1.w1_bound * (1 + 1e-12)
    for r, k in ((r1, n), (r2, 2 * n)):
        used = r.info["atoms_per_input"]
        assert all(v <= k for v in used.values()) and math.prod(used.values()) <= 1000
        assert r.w1_bound <= r.info["atoms_reduced"]["allocation"]["uniform_w1_bound"]


def test_without_the_ladder_only_the_requested_cap_is_tried(monkeypatch):
    monkeypatch.setattr(budgetalloc, "LADDER", False)
    r = _run(_weighted(4.0, 0.3, 0.02), [_U, _U, _U], atoms=64, max_joint=1000)
    cands = r.info["atoms_reduced"]["allocation"]["candidates"]
    assert len(cands) == 1 and cands[0]["cap"] == 64
    assert r.w1_bound <= r.info["atoms_reduced"]["allocation"]["uniform_w1_bound"]


# -- the time share and the model's order (branch cand-alloc) ----------------------------------------------------------


@pytest.mark.usefixtures("point_mass_answers")
@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    **_WEIGHTS,
    n=hs.sampled_from([16, 32, 64]),
    max_joint=hs.sampled_from([300, 1000, 3000]),
    normal=hs.booleans(),
)
def test_the_allocations_never_give_a_worse_bound_than_without_them(a, b, c, n, max_joint, normal):
    """Every allocation carries its own certificate and is kept only where smaller: on <= off, and still sound."""
    ins = [_U, od.Normal(0.5, 0.2) if normal else _U, _U]
    fn = _weighted(a, b, c)
    off = _run(fn, ins, alloc=False, atoms=n, max_joint=max_joint)
    on = _run(fn, ins, atoms=n, max_joint=max_joint)
    assert off.certified and on.certified
    assert on.w1_bound <= off.w1_bound * (1 + 1e-12)
    alloc = on.info["atoms_reduced"]["allocation"]
    assert alloc["uniform_w1_bound"] == pytest.approx(off.w1_bound, rel=1e-12)
    preds = [cand["predicted"] for cand in alloc["candidates"]]
    assert preds == sorted(preds)  # the model's best first


@pytest.mark.usefixtures("point_mass_answers")
def test_allocations_past_the_time_share_are_skipped_and_say_why(monkeypatch):
    fn, ins = _weighted(4.0, 0.3, 0.02), [_U, _U, _U]
    full = _run(fn, ins, atoms=32, max_joint=1000)
    assert full.info["atoms_reduced"]["allocation"]["candidates"]  # without the limit binding, they run
    monkeypatch.setattr(budgetalloc, "FIXED_ATOMS_SECONDS", 0.0)
    r = _run(fn, ins, atoms=32, max_joint=1000)
    off = _run(fn, ins, alloc=False, atoms=32, max_joint=1000)
    alloc = r.info["atoms_reduced"]["allocation"]
    assert alloc["candidates"] == [] and alloc["used"] is None and alloc["skipped"]
    assert all("FIXED_ATOMS_SECONDS" in s["skipped"] for s in alloc["skipped"])
    assert r.w1_bound == off.w1_bound and np.array_equal(r.atoms, off.atoms)  # the uniform grid's answer
    monkeypatch.setattr(budgetalloc, "FIXED_ATOMS_SECONDS", None)
    unlimited = _run(fn, ins, atoms=32, max_joint=1000)
    assert unlimited.w1_bound == full.w1_bound


@pytest.mark.usefixtures("point_mass_answers")
def test_a_rung_the_model_says_cannot_win_is_skipped(monkeypatch):
    """Terms that the allocation cannot lower (a model that predicts no gain) skip every rung, without evaluation."""
    real = budgetalloc.predicted
    monkeypatch.setattr(budgetalloc, "predicted", lambda terms, at, counts, *a, **k: 1.0)
    r = _run(_weighted(4.0, 0.3, 0.02), [_U, _U, _U], atoms=32, max_joint=1000)
    alloc = r.info["atoms_reduced"]["allocation"]
    assert alloc["candidates"] == [] and alloc["skipped"]
    assert all("no gain" in s["skipped"] for s in alloc["skipped"])
    monkeypatch.setattr(budgetalloc, "predicted", real)


def _pow2(c: int) -> int:
    """Atoms of a quantizer that rounds counts down to powers of two."""
    return 1 << (c.bit_length() - 1)


def test_first_above_matches_a_scan_with_few_questions():
    asked: list[int] = []

    def made(c: int) -> int:
        asked.append(c)
        return _pow2(c)

    for lo, hi in [(3, 5), (5, 100), (2**19 + 1, 2**20), (2**19 + 1, 2**20 - 1), (7, 7 + 1)]:
        have = _pow2(lo)
        scan = next((c for c in range(lo + 1, hi + 1) if _pow2(c) > have), None)
        asked.clear()
        assert budgetalloc.first_above(made, have, lo, hi) == scan
        assert len(asked) <= 2 + (hi - lo).bit_length()


def test_allocate_near_a_million_atoms_asks_the_quantizer_a_few_times():
    """One input at 2^19 + 1 atoms, cap 2^20: growing it must not quantize every count in between."""
    asked: list[int] = []

    def size(_v: str, c: int) -> int:
        asked.append(c)
        return _pow2(c)

    got = budgetalloc.allocate(
        {"x": 1.0}, {"x": 2**19 + 1}, lambda a: True, caps={"x": 2**20}, floors={"x": 2**19 + 1}, size=size
    )
    assert got == {"x": 2**20}
    assert len(asked) < 200
