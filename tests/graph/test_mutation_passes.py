"""rebalance_sums: the exact trees it builds, written out by hand from its docstring (issue 13).

The docstring fixes the shape: leaves that share an input are grouped (transitively, in leaf order), each group is
summed pairwise level by level with an odd one out moving up, and the groups' sums are combined the same way.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.graph import GraphBuilder, interpret, numpy_rules, trace
from opgraph.graph.passes import rebalance_sums

SYMBOLS = {"add": "+", "mul": "*", "sub": "-"}


def _expr(g, i):
    n = g.nodes[i]
    if n.op == "input":
        return n.attrs["name"]
    if n.op in SYMBOLS:
        return "(" + f" {SYMBOLS[n.op]} ".join(_expr(g, j) for j in n.inputs) + ")"
    return f"{n.op}(" + ", ".join(_expr(g, j) for j in n.inputs) + ")"


def _check_same_value(g, r):
    x = list(np.random.default_rng(0).normal(size=(len(g.inputs), 3)))
    for a, b in zip(interpret(r, x, numpy_rules()), interpret(g, x, numpy_rules()), strict=True):
        np.testing.assert_allclose(a, b)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda a, b: a + b, "(a + b)"),
        (lambda a, b, c: a + b + c, "((a + b) + c)"),
        (lambda a, b, c, d: a + b + c + d, "((a + b) + (c + d))"),
        (lambda a, b, c, d, e: a + b + c + d + e, "(((a + b) + (c + d)) + e)"),
        (lambda a, b, c, d, e, f: a + b + c + d + e + f, "(((a + b) + (c + d)) + (e + f))"),
        (lambda a, b, c, d, e, f, h: a + (b + (c + d)) + ((e + f) + h), "(((a + b) + (c + d)) + ((e + f) + h))"),
    ],
)
def test_independent_leaves_are_paired_level_by_level(fn, expected):
    g = trace(fn)
    r = rebalance_sums(g)
    assert _expr(r, r.outputs[0]) == expected
    assert sum(n.op == "add" for n in r) == sum(n.op == "add" for n in g)
    assert all(len(n.inputs) == 2 for n in r if n.op == "add")
    _check_same_value(g, r)


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        # {a, a*c} share a: summed first; then the groups a+a*c, b, d are paired in order of appearance
        (lambda a, b, c, d: a + b + a * c + d, "(((a + (a * c)) + b) + d)"),
        # a*b joins a's group and pulls b's group into it (leaf order a, a*b, then b's members)
        (lambda a, b: a + b + a * b, "((a + (a * b)) + b)"),
        # a*b*c merges three groups; the later groups are appended last-first (c before b)
        (lambda a, b, c: a + b + c + a * b * c, "((a + ((a * b) * c)) + (c + b))"),
        # b joins a's group through a*b: the group's inputs grow to {a, b}, so b is summed with them, before c
        (lambda a, b, c: a + a * b + c + b, "(((a + (a * b)) + b) + c)"),
        # after a*b merged b's group into a's, a*d still finds a among the merged group's inputs
        (lambda a, b, c, d: a + b + a * b + c + a * d, "(((a + (a * b)) + (b + (a * d))) + c)"),
        # two independent pairs of dependent leaves
        (lambda a, b, c, d: a * b + c + a + d * c, "(((a * b) + a) + (c + (d * c)))"),
    ],
)
def test_dependent_leaves_are_grouped_before_the_groups_are_combined(fn, expected):
    g = trace(fn)
    r = rebalance_sums(g)
    assert _expr(r, r.outputs[0]) == expected
    _check_same_value(g, r)


def test_only_single_use_non_output_adds_are_absorbed():
    b = GraphBuilder()
    x, y, z, w = b.input("x"), b.input("y"), b.input("z"), b.input("w")
    s = b.add("add", [x, y])  # also an output: kept as a node, used as a leaf
    t = b.add("add", [s, z])
    u = b.add("add", [t, w])
    m = b.add("mul", [x, y])
    v = b.add("add", [m, z])  # used by sin: a chain root of its own
    q = b.add("sin", [v])
    g = b.build([u, s, q])
    r = rebalance_sums(g)
    assert [_expr(r, o) for o in r.outputs] == ["(((x + y) + z) + w)", "(x + y)", "sin(((x * y) + z))"]
    assert r.input_names == ("x", "y", "z", "w") and [r.nodes[i].op for i in r.inputs] == ["input"] * 4
    _check_same_value(g, r)


def test_a_chain_used_twice_by_one_add_is_absorbed_twice():
    b = GraphBuilder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    s = b.add("add", [x, y])
    t = b.add("add", [s, z])
    o = b.add("add", [t, t])  # t's one user is an add: absorbed, so the leaves are x, y, z, x, y, z
    g = b.build([o])
    r = rebalance_sums(g)
    # groups by shared input: [x, x], [y, y], [z, z]; each summed, then the three sums paired
    assert _expr(r, r.outputs[0]) == "(((x + x) + (y + y)) + (z + z))"
    assert sum(n.op == "add" for n in r) == 5
    _check_same_value(g, r)
