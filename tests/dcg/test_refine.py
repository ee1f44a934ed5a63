"""Tests of the target_w1 atom allocation (opgraph.dcg.refine) and its use by evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg.refine import COMPRESS, Allocator, Split, split_terms


def test_split_terms_groups_inputs_compressions_and_fixed_parts():
    labels = {"input a (quantile, 8 atoms)": "a", "input b (meansplit, 8 atoms)": "b"}
    s = split_terms(
        {
            "input a (quantile, 8 atoms)": 0.1,
            "input b (meansplit, 8 atoms)": 0.2,
            "compression at x.py:3 to 1024 atoms": 0.05,
            "compression at x.py:4 to 1024 atoms": 0.01,
            "input r (upstream bound)": 0.03,
        },
        labels,
    )
    assert s.terms == {"a": 0.1, "b": 0.2, COMPRESS: pytest.approx(0.06)}
    assert s.fixed == pytest.approx(0.03)


def _model(n: dict[str, int]) -> Split:
    # A first-order term for "a", a second-order term for "b" (as for the smoothed operand of a sum).
    return Split({"a": 0.25 / n["a"], "b": 0.05 / n["b"] ** 2}, 0.0)


def test_allocator_reaches_target_in_few_rounds_and_gives_second_order_terms_fewer_atoms():
    alloc = Allocator(1e-4)
    n = {"a": 32, "b": 32}
    rounds = 1
    while sum(_model(n).terms.values()) > 1e-4 and rounds < 10:
        rounds += 1
        nxt = alloc.propose(n, _model(n))
        assert nxt is not None
        assert all(nxt[k] >= n[k] for k in n)  # counts never decrease
        n = nxt
    assert sum(_model(n).terms.values()) <= 1e-4
    assert rounds <= 4
    assert n["b"] < n["a"] / 20  # the second-order term needs far fewer atoms
    assert alloc.order("b") == pytest.approx(2.0, rel=0.05)


def test_allocator_growth_per_round_is_capped():
    alloc = Allocator(1e-6, max_growth=16)
    nxt = alloc.propose({"a": 10}, Split({"a": 1.0}, 0.0))
    assert nxt == {"a": 160}


def test_allocator_gives_up_when_the_fixed_part_exceeds_the_target():
    assert Allocator(1e-3).propose({"a": 10}, Split({"a": 1e-2}, 2e-3)) is None


@pytest.mark.usefixtures("point_mass_answers")
def test_target_w1_on_a_sum_allocates_unequal_atoms_in_two_rounds():
    r = od.evaluate(lambda a, b: a + b, od.Uniform(0, 1), od.Uniform(0, 1), target_w1=1e-3)
    assert r.w1_bound <= 1e-3 and r.info["target_met"]
    assert len(r.info["refinement"]) <= 3
    counts = sorted(r.info["atoms_per_input"].values())
    assert counts[1] >= 4 * counts[0]  # the smoothed summand keeps the pilot count
    # The bound is certified: the exact law of U1 + U2 is the triangular law on [0, 2].
    import scipy.stats as st

    assert r.w1(st.triang(0.5, loc=0, scale=2)) <= r.w1_bound + 1e-12


@pytest.mark.parametrize("eps", [1e-2, 1e-3])
def test_target_w1_meets_the_target_on_single_input_graphs(eps):
    r = od.evaluate(lambda z: np.sin(z) + 0.5 * z, od.Normal(0, 1), target_w1=eps)
    assert r.info["target_met"] and r.w1_bound <= eps
    assert len(r.info["refinement"]) <= 4
    assert math.isfinite(r.w1_bound)


def test_shared_standard_tables_give_the_same_quantization_as_a_fresh_computation():
    from opgraph.dcg import distributions as D

    D._Z_TABLES.clear()
    a = od.Normal(2.0, 3.0).quantize(64, "meansplit")  # computes and stores the N(0, 1) table
    assert any(k[1] == ("normal",) for k in D._Z_TABLES)
    b = od.Normal(-1.0, 0.5).quantize(64, "meansplit")  # maps the stored table
    D._Z_TABLES.clear()
    c = od.Normal(-1.0, 0.5).quantize(64, "meansplit")  # fresh
    for f in ("atoms", "weights", "lo", "hi", "err", "bias", "m2"):
        np.testing.assert_array_equal(getattr(b, f), getattr(c, f))
    assert a.atoms.mean() == pytest.approx(2.0, abs=1e-12)
    with pytest.raises(ValueError):
        b.weights[0] = 1.0  # shared tables are read-only


def test_cell_moments_from_the_shared_table_match_the_direct_formula():
    law = od.Normal(0.7, 1.3)
    q = law.quantize(128, "quantile")
    for j in range(4):
        np.testing.assert_allclose(q.cell_abs_moment(law, j), law.abs_moment(q.lo, q.hi, j), rtol=1e-9, atol=1e-300)


def test_allocator_respects_caps_and_gives_the_budget_to_the_others():
    alloc = Allocator(1e-3)
    nxt = alloc.propose({"a": 10, COMPRESS: 1024}, Split({"a": 2e-3, COMPRESS: 3e-4}, 0.0), {COMPRESS: 1024})
    assert nxt is not None and nxt[COMPRESS] == 1024  # capped: stays
    # "a" gets what the capped term leaves: 2e-3 * 10 / n <= 0.8e-3 - 3e-4  ->  n >= 40
    assert 40 <= nxt["a"] <= 45
    assert (
        Allocator(1e-3).propose({"a": 10, COMPRESS: 64}, Split({"a": 1e-4, COMPRESS: 9e-4}, 0.0), {COMPRESS: 64})
        is None
    )


def test_allocator_gives_the_expensive_variable_a_larger_share_of_the_budget():
    # Work ~ M**2 (compressed grids) plus a little per input: the budget goes mostly to the compression term.
    def cost(c):
        return float(c[COMPRESS] ** 2 + c["a"] + c["b"])

    split = Split({"a": 0.2 / 8, "b": 0.2 / 8, COMPRESS: 0.2 / 64}, 0.0)
    plain = Allocator(1e-3, max_growth=1e9).propose({"a": 8, "b": 8, COMPRESS: 64}, split)
    costed = Allocator(1e-3, max_growth=1e9).propose({"a": 8, "b": 8, COMPRESS: 64}, split, cost=cost)
    assert plain is not None and costed is not None
    assert costed[COMPRESS] < plain[COMPRESS] / 2
    assert costed["a"] > plain["a"]
    for nxt in (plain, costed):  # both predictions meet the budget (0.8 * target) under the model
        pred = 0.2 / nxt["a"] + 0.2 / nxt["b"] + 0.2 / nxt[COMPRESS]
        assert pred <= 0.8e-3 * 1.01
    assert cost(costed) < cost(plain) / 2
    # Without a cost function every elasticity is 1 (the joint grid); doubling M here quadruples the work.
    assert Allocator.elasticities(None, {"a": 8}, {"a"}) == {"a": 1.0}
    assert Allocator.elasticities(cost, {"a": 8, "b": 8, COMPRESS: 1024}, {COMPRESS})[COMPRESS] == pytest.approx(
        2.0, abs=1e-3
    )


def test_soft_grid_limit_compresses_early_and_work_follows_the_plan():
    from opgraph.dcg.engine import grid_work, plan_compression
    from opgraph.graph import GraphBuilder

    def build(names, ops):
        b = GraphBuilder()
        ids = [b.input(k) for k in names]
        for op, ins in ops:
            ids.append(b.add(op, [ids[i] for i in ins]))
        return b.build([ids[-1]])

    # ((a + b) + (c + d)) with 64 atoms each: the lazy plan keeps 64**4 = 2**24 cells out of a 2**24 budget.
    graph = build("abcd", [("add", (0, 1)), ("add", (2, 3)), ("add", (4, 5))])
    sizes = {0: 64, 1: 64, 2: 64, 3: 64}
    assert plan_compression(graph, 6, sizes, 2**24, 16) == set()
    assert grid_work(graph, 6, sizes, 2**24, 16) == 2 * 64**2 + 64**4
    soft = plan_compression(graph, 6, sizes, 2**24, 16, soft_joint=16**2)
    assert soft == {4, 5}
    assert grid_work(graph, 6, sizes, 2**24, 16, 16**2) == 2 * 64**2 + 16**2
    # A grid with nothing to compress upstream is tolerated up to max_joint, and fails beyond it.
    prod = build("ab", [("mul", (0, 1))])
    assert plan_compression(prod, 2, {0: 512, 1: 512}, 2**20, 16, soft_joint=256) == set()
    assert plan_compression(prod, 2, {0: 2048, 1: 1024}, 2**20, 16, soft_joint=256) is None


def test_target_w1_on_a_long_sum_keeps_its_grids_near_the_square_of_the_compression_size():
    def fn(a, b, c, d, e, f, g, h):
        return a + b + c + d + e + f + g + h

    r = od.evaluate(fn, *[od.Uniform(0, 1) for _ in range(8)], target_w1=1e-2)
    assert r.info["target_met"] and r.w1_bound <= 1e-2
    m = r.info["compress_atoms"]
    assert r.info["compressions"] and max(c["joint_atoms"] for c in r.info["compressions"]) <= m * m


def test_shrink_to_fit_keeps_the_proportions_of_the_proposal():
    from opgraph.dcg.api import _shrink_to_fit

    def fits(a, c):
        return a["x"] * a["y"] * c <= 2**20

    cur, new = {"x": 16, "y": 16}, {"x": 1024, "y": 64}
    atoms, comp = _shrink_to_fit(cur, 4, new, 64, fits, set())
    assert fits(atoms, comp) and not fits({"x": atoms["x"] * 2, "y": atoms["y"] * 2}, comp * 2)
    # One common power s: log(n / cur) / log(new / cur) is the same for every variable (up to rounding).
    s = [
        math.log(atoms["x"] / 16) / math.log(64),
        math.log(atoms["y"] / 16) / math.log(4),
        math.log(comp / 4) / math.log(16),
    ]
    assert max(s) - min(s) < 0.05 and 0.3 < s[0] < 1
    assert _shrink_to_fit(cur, 4, {"x": 32, "y": 32}, 8, fits, set()) == ({"x": 32, "y": 32}, 8)
    pow2, _ = _shrink_to_fit(cur, 4, new, 64, fits, {"x"})
    assert pow2["x"] & (pow2["x"] - 1) == 0
