import numpy as np
import pytest

from opgraph.graph import GraphBuilder, InterpretError, OpgraphError, interpret, numpy_rules, trace
from opgraph.graph.passes import rebalance_sums


def _depth(g, i):
    n = g.nodes[i]
    return 0 if not n.inputs or n.op != "add" else 1 + max(_depth(g, j) for j in n.inputs)


def test_rebalance_sums_makes_a_long_chain_a_balanced_tree_with_the_same_value():
    g = trace(lambda a, b, c, d, e, f, h, k: a + b + c + d + e + f + h + k)
    assert _depth(g, g.outputs[0]) == 7
    r = rebalance_sums(g)
    assert r is not g and len(g) == len(r)  # 7 adds either way
    assert _depth(r, r.outputs[0]) == 3
    assert r.input_names == g.input_names
    x = np.random.default_rng(0).normal(size=(8, 5))
    np.testing.assert_allclose(interpret(r, list(x), numpy_rules())[0], interpret(g, list(x), numpy_rules())[0])


def test_rebalance_sums_groups_the_leaves_that_share_inputs():
    # Leaves a, b, a*c, d: {a, a*c} share a, so they are summed first and that partial sum separates a and c.
    g = trace(lambda a, b, c, d: a + b + a * c + d)
    r = rebalance_sums(g)
    mul = next(n.id for n in r if n.op == "mul")
    group = next(n for n in r if n.op == "add" and set(n.inputs) == {0, mul})
    assert group.id in r.separators()
    g_mul = next(n.id for n in g if n.op == "mul")
    assert not any(n.op == "add" and set(n.inputs) == {0, g_mul} for n in g)  # ((a + b) + a*c) + d had none
    vals = [1.5, -2.0, 0.25, 3.0]
    assert interpret(r, vals, numpy_rules())[0] == pytest.approx(interpret(g, vals, numpy_rules())[0])


def test_rebalance_sums_keeps_shared_partial_sums_other_ops_and_outputs():
    b = GraphBuilder()
    x, y, z = b.input("x"), b.input("y"), b.input("z")
    s = b.add("add", [x, y])  # used twice: not absorbed into a chain
    t = b.add("add", [s, z])
    u = b.add("mul", [s, t])
    g = b.build([u, s])
    r = rebalance_sums(g)
    assert [n.op for n in r] == [n.op for n in g]
    assert [n.inputs for n in r] == [n.inputs for n in g]
    assert r.outputs == g.outputs
    assert interpret(r, [1.0, 2.0, 3.0], numpy_rules()) == interpret(g, [1.0, 2.0, 3.0], numpy_rules())


def test_rewritten_nodes_keep_the_id_the_user_knows_in_where():
    g = trace(lambda a, b, c, d: np.log(a + b + c + d))
    root = next(n for n in g if n.op == "log").inputs[0]  # the last add of the chain
    r = rebalance_sums(g)
    assert all("origin" in n.meta for n in r)
    new_adds = [n for n in r if n.op == "add"]
    assert {n.meta["origin"] for n in new_adds} == {root}
    assert all(n.where.startswith(f"node {root} (add) from test_passes.py:") for n in new_adds)
    log = next(n for n in r if n.op == "log")
    assert log.where.startswith(f"node {next(n.id for n in g if n.op == 'log')} (log)")
    # subgraph extraction keeps the origin too, and sets it for graphs that were never rewritten
    sub, m = r.subgraph(sorted(r.ancestors(log.id) | {log.id}), [log.id])
    assert sub.nodes[m[log.id]].where == log.where
    sub2, m2 = g.subgraph([root], [root])
    assert sub2.nodes[m2[root]].where.startswith(f"node {root} (add)")


def test_after_node_replaces_values_for_consumers_and_outputs():
    g = trace(lambda x, y: np.sin(x * y) + x)
    mul = next(n.id for n in g if n.op == "mul")
    seen = []

    def after(node, value):
        seen.append(node.id)
        return 0.0 if node.id == mul else value

    out = interpret(g, [2.0, 3.0], numpy_rules(), after_node=after)[0]
    assert out == pytest.approx(np.sin(0.0) + 2.0)
    assert seen == [n.id for n in g]  # inputs included, in order
    on = {}
    interpret(g, [2.0, 3.0], numpy_rules(), after_node=after, on_node=lambda n, v: on.setdefault(n.id, v))
    assert on[mul] == 0.0  # on_node sees the replaced value
    # the output's own value can be replaced
    last = g.outputs[0]
    assert interpret(g, [2.0, 3.0], numpy_rules(), after_node=lambda n, v: -1.0 if n.id == last else v) == (-1.0,)


def test_after_node_errors_name_the_node_and_keep_their_kind():
    class MyError(OpgraphError):
        pass

    g = trace(lambda x: np.exp(x) * 2)
    exp = next(n for n in g if n.op == "exp")

    def boom(node, value):
        if node.op == "exp":
            raise MyError("cannot compress")
        return value

    with pytest.raises(MyError, match=rf"while evaluating node {exp.id} \(exp\) from test_passes.py:\d+: cannot"):
        interpret(g, [1.0], numpy_rules(), after_node=boom)
    with pytest.raises(InterpretError, match=r"node \d+ \(exp\).*ZeroDivisionError"):
        interpret(g, [1.0], numpy_rules(), after_node=lambda n, v: 1 / 0 if n.op == "exp" else v)
