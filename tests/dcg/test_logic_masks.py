"""Jumps through truth ops and boolean masks: certified W1 bounds hold against exact laws and Sobol references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, qmc

from opgraph import dcg as od
from opgraph.graph import vectorized


def _sobol_reference(fn, icdfs, log2=15):
    """Two scrambles of ``2**log2`` Sobol points of ``fn`` (vectorised): pooled sorted sample, its W1 error."""
    reps = []
    for s in range(2):
        u = np.clip(qmc.Sobol(len(icdfs), scramble=True, seed=11 + s).random_base2(log2), 1e-12, 1 - 1e-12)
        xx = np.column_stack([f(u[:, k]) for k, f in enumerate(icdfs)])
        reps.append(np.sort(np.asarray(fn(xx), dtype=float).reshape(len(xx))))
    err = float(np.mean(np.abs(reps[0] - reps[1]))) / 2
    return np.sort(np.concatenate(reps)), err


def _check_sound(fn, laws, icdfs, atoms):
    r = od.evaluate(vectorized(fn), *laws, atoms=atoms)
    assert r.certified and math.isfinite(r.w1_bound), r.w1_bound
    ref, err = _sobol_reference(fn, icdfs)
    true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
    assert r.w1_bound >= true - 3 * err, (r.w1_bound, true, err)
    return r, true


def _union_cut(xx):
    yy = np.exp(2.0 * (xx[:, 0] + xx[:, 1]))
    yy[(xx[:, 0] > 0.4) | (xx[:, 1] > 0.7)] = 0.0
    return yy


@pytest.mark.parametrize("atoms", [3, 4, 8, 16])
def test_union_of_jumps_on_uniforms_bound_holds_and_the_cdf_band_holds_the_exact_jump(atoms):
    laws = [od.Uniform(0, 1), od.Uniform(0, 1)]
    r, _ = _check_sound(_union_cut, laws, [lambda u: u, lambda u: u], atoms)
    lo, hi = r.cdf_bounds(0.0)
    assert lo <= 1 - 0.4 * 0.7 <= hi  # P(Y <= 0) = P(X > .4 or Y > .7), exactly


def _normal_jumps(xx):
    x, y = xx[:, 0], xx[:, 1]
    out = np.zeros(len(xx))
    inside = ~(x > 0.3) & (y > -0.5)
    out[inside] = x[inside] * y[inside]
    out[~inside] = 1.0 + 0.5 * x[~inside]
    return out


@pytest.mark.parametrize("atoms", [4, 8, 16])
def test_masked_branches_of_normal_inputs_bound_holds(atoms):
    laws = [od.Normal(0, 1), od.Normal(0.2, 0.7)]
    _check_sound(_normal_jumps, laws, [norm(0, 1).ppf, norm(0.2, 0.7).ppf], atoms)


@pytest.mark.parametrize("atoms", [4, 16])
def test_np_where_jump_of_one_normal_input_bound_holds(atoms):
    def fn(xx):  # tail cells: |where(c, u, w)| <= |u| + |w| (closed-form partial moments)
        return np.where(xx[:, 0] > 0.5, xx[:, 0] ** 2, 1 - xx[:, 0])

    _check_sound(fn, [od.Normal(0, 1)], [norm(0, 1).ppf], atoms)


@pytest.mark.parametrize("atoms", [4, 16])
def test_piecewise_and_select_of_normal_inputs_bound_holds(atoms):
    def fn(xx):
        x, y = xx[:, 0], xx[:, 1]
        p = np.piecewise(x, [x < -0.5, x > 1.0], [lambda v: -v, lambda v: v**2, 0.5])
        return p + np.select([y > 0.8, x + y < 0], [y, 2.0 * x], default=1.0)

    _check_sound(fn, [od.Normal(0, 1), od.Normal(0.3, 0.8)], [norm(0, 1).ppf, norm(0.3, 0.8).ppf], atoms)


def test_bound_shrinks_with_atoms_on_a_jump():
    laws = [od.Uniform(0, 1), od.Uniform(0, 1)]
    bounds = [od.evaluate(vectorized(_union_cut), *laws, atoms=a).w1_bound for a in (4, 16, 64)]
    assert bounds[2] < bounds[0]


def test_truth_ops_of_random_variables_give_the_exact_bernoulli_within_the_bound():
    X, Y = od.Uniform(0, 1), od.Uniform(0, 1)
    for expr, p in [
        ((X > 0.5) | (Y > 0.25), 1 - 0.5 * 0.25),
        ((X > 0.5) & ~(Y > 0.25), 0.5 * 0.25),
        ((X > 0.5) ^ (Y > 0.25), 0.5 * 0.25 + 0.5 * 0.75),
    ]:
        r = expr.evaluate(atoms=7)
        true = float(od.w1_discrete(r.atoms, r.weights, np.array([0.0, 1.0]), np.array([1 - p, p])))
        assert r.w1_bound >= true - 1e-12
        assert r.mean() == pytest.approx(p, abs=r.w1_bound + 1e-12)


def test_bitwise_op_of_a_value_other_than_0_and_1_names_the_op_and_the_fix():
    with pytest.raises(od.DistError, match=r"bitwise_or \(\|\) of a value other than 0 and 1.*np\.logical_or"):
        od.evaluate(lambda x: np.floor(x) | (x > 1.0), od.Uniform(0, 3), atoms=8)


def test_null_ties_marks_only_comparisons_of_an_atomless_input_with_a_constant_or_another_input():
    from opgraph.dcg.logic import mark_null_ties
    from opgraph.graph import trace

    def fn(x, y, d):
        return (x > 0.5) + (x >= y) + (d < 0.5) + (x + 0.0 > 0.5) + (x > x) + (d <= x) + np.where(y < d, 1.0, 0.0)

    g = trace(fn)
    laws = {"x": od.Uniform(0, 1), "y": od.Normal(0, 1), "d": od.Discrete([0.25, 0.5, 0.75])}
    marked = mark_null_ties(g, laws)
    got = {
        (n.op, tuple(g.nodes[i].op if g.nodes[i].op != "input" else g.nodes[i].attrs["name"] for i in n.inputs))
        for n in marked.nodes
        if n.attrs.get("null_ties")
    }
    assert got == {("gt", ("x", "const")), ("ge", ("x", "y")), ("le", ("d", "x")), ("lt", ("y", "d"))}
    assert mark_null_ties(g, {k: od.Discrete([0.0, 1.0]) for k in laws}) is g


@pytest.mark.parametrize("atoms", [2, 3, 4, 8])
def test_a_jump_at_a_cell_edge_is_decided_on_both_sides_and_the_bound_holds(atoms):
    def fn(xx):  # the thresholds 0.5 and 0.25 are cell edges at even atom counts (quantile cells of U(0, 1))
        y = np.exp(5.0 * xx[:, 0]) + xx[:, 1]
        y[(xx[:, 0] > 0.5) | (xx[:, 1] <= 0.25)] = 0.0
        return y

    def shifted(xx):  # the same function with x + 0 compared: a derived operand, not marked
        y = np.exp(5.0 * xx[:, 0]) + xx[:, 1]
        y[(xx[:, 0] + 0.0 > 0.5) | (xx[:, 1] + 0.0 <= 0.25)] = 0.0
        return y

    laws = [od.Uniform(0, 1), od.Uniform(0, 1)]
    r, _ = _check_sound(fn, laws, [lambda u: u, lambda u: u], atoms)
    lo, hi = r.cdf_bounds(0.0)
    assert lo <= 1 - 0.5 * 0.75 <= hi  # P(Y <= 0) = P(x > .5 or y <= .25), exactly
    unmarked = od.evaluate(od.vectorized(shifted), *laws, atoms=atoms).w1_bound
    assert r.w1_bound <= unmarked * (1 + 1e-12)
    if atoms % 4 == 0:  # both thresholds on cell edges
        assert r.w1_bound < 0.5 * unmarked


@pytest.mark.parametrize("atoms", [2, 3, 5])
def test_a_discrete_input_at_the_threshold_keeps_the_closed_rule_and_the_exact_law_is_within_the_bound(atoms):
    d = od.Discrete([0.25, 0.5, 0.75], [0.3, 0.4, 0.3])
    r = od.evaluate(lambda x, u: np.where(x >= 0.5, u, 2.0 + u), d, od.Uniform(0, 1), atoms=atoms)
    # exact law: U(0, 1) with mass 0.7, U(2, 3) with mass 0.3
    grid = (np.arange(2**16) + 0.5) / 2**16
    ref = np.concatenate([grid, 2.0 + grid])
    true = float(
        od.w1_discrete(r.atoms, r.weights, ref, np.concatenate([np.full(grid.size, 0.7), np.full(grid.size, 0.3)]))
    )
    assert r.w1_bound >= true - 1e-4


@pytest.mark.parametrize("op", ["and", "or", "xor", "not", "logical_and", "logical_or", "logical_xor", "logical_not"])
def test_truth_op_rules_are_exact_where_decided_and_0_1_where_not(op):
    from itertools import product

    from opgraph.dcg import api
    from opgraph.dcg import intervals as iv

    arity = 1 if op.endswith("not") else 2
    boxes = {0.0: (0.0, 0.0), 1.0: (1.0, 1.0), None: (0.0, 1.0)}
    point = api._rules()[op]
    for keys in product(boxes, repeat=arity):
        args = [(np.array([boxes[k][0]]), np.array([boxes[k][1]])) for k in keys]
        (lo, hi), parts = iv.rule(op, args)
        if None in keys:  # the value may be either where an operand is undecided ... unless another decides it
            outs = {
                float(point(None, *[np.array([v]) for v in vals])[0])
                for vals in product(*[[0.0, 1.0] if k is None else [k] for k in keys])
            }
        else:
            outs = {float(point(None, *[np.array([k]) for k in keys])[0])}
        assert (float(lo[0]), float(hi[0])) == (min(outs), max(outs)), (op, keys)
        decided = len(outs) == 1
        for d in parts:
            assert (float(d[0][0]), float(d[1][0])) == ((0.0, 0.0) if decided else (-np.inf, np.inf))
    if op in ("and", "or", "xor", "not"):  # a bitwise op of a non-truth value: no enclosure
        (lo, hi), _ = iv.rule(op, [(np.array([0.0]), np.array([2.0]))] * arity)
        assert (lo[0], hi[0]) == (-np.inf, np.inf)


@pytest.mark.parametrize(
    ("op", "a", "b", "closed", "null"),
    [
        ("gt", (0.5, 0.75), 0.5, (0.0, 1.0), (1.0, 1.0)),
        ("ge", (0.25, 0.5), 0.5, (0.0, 1.0), (0.0, 0.0)),
        ("lt", (0.25, 0.5), 0.5, (0.0, 1.0), (1.0, 1.0)),
        ("le", (0.5, 0.75), 0.5, (0.0, 1.0), (0.0, 0.0)),
        ("gt", (0.5, 0.5), 0.5, (0.0, 0.0), (0.0, 0.0)),  # a tie box keeps NumPy's value at the tie
        ("ge", (0.5, 0.5), 0.5, (1.0, 1.0), (1.0, 1.0)),
        ("lt", (0.4, 0.6), 0.5, (0.0, 1.0), (0.0, 1.0)),  # a real straddle stays undecided
    ],
)
def test_null_ties_rule_decides_boxes_that_touch_the_threshold_at_an_end(op, a, b, closed, null):
    from opgraph.dcg import intervals as iv

    args = [(np.array([a[0]]), np.array([a[1]])), (np.array([b]), np.array([b]))]
    for attrs, want in (({}, closed), ({"null_ties": True}, null)):
        (lo, hi), _ = iv.rule(op, args, attrs)
        assert (float(lo[0]), float(hi[0])) == want, (op, a, attrs)
