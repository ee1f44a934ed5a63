"""opgraph.graph.passes.chains / regroup_chains: the chain pass under rebalance_sums, with a caller's grouping."""

import numpy as np
import pytest

from opgraph.graph import GraphError, interpret, numpy_rules, trace
from opgraph.graph.passes import chains, regroup_chains


def test_chains_lists_each_maximal_chain_with_its_leaves_in_order():
    # a*b is used twice (by the longer product and by the sum): a root of its own and a leaf of the other chain
    g = trace(lambda a, b, c, d: a * b * c * d + a * b)
    found = chains(g, "mul")
    name = {n.id: n.attrs.get("name", n.op) for n in g}
    assert sorted([name[i] for i in leaves] for leaves in found.values()) == [["a", "b"], ["mul", "c", "d"]]
    assert all(g.nodes[r].op == "mul" for r in found)
    assert chains(g, "add") == {g.outputs[0]: list(g.nodes[g.outputs[0]].inputs)}


def test_regroup_chains_follows_the_partition_and_keeps_values():
    g = trace(lambda a, b, c, d: a * b * c * d)
    ((root, leaves),) = chains(g, "mul").items()
    assert [g.nodes[i].attrs["name"] for i in leaves] == ["a", "b", "c", "d"]
    r = regroup_chains(g, "mul", lambda root, leaves: [[0, 2], [1, 3]])
    out = r.nodes[r.outputs[0]]
    pairs = sorted(sorted(r.nodes[j].attrs["name"] for j in r.nodes[i].inputs) for i in out.inputs)
    assert pairs == [["a", "c"], ["b", "d"]]
    assert r.input_names == g.input_names and all(n.meta["origin"] == root for n in r if n.op == "mul")
    x = list(np.random.default_rng(1).lognormal(size=(4, 6)))
    np.testing.assert_allclose(interpret(r, x, numpy_rules())[0], interpret(g, x, numpy_rules())[0], rtol=1e-14)


def test_regroup_chains_keeps_a_chain_without_a_plan_and_rejects_a_bad_partition():
    g = trace(lambda a, b, c: a * b * c + (a + b + c))
    r = regroup_chains(g, "mul", lambda root, leaves: None)
    assert [(n.op, n.inputs) for n in r] == [(n.op, n.inputs) for n in g]
    with pytest.raises(GraphError, match="partition"):
        regroup_chains(g, "mul", lambda root, leaves: [[0, 1]])
    with pytest.raises(GraphError, match="partition"):
        regroup_chains(g, "add", lambda root, leaves: [[0, 1, 1, 2]])
