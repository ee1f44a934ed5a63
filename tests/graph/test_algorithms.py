import networkx as nx
import numpy as np
import pytest

from opgraph.graph import GraphBuilder, GraphError, interpret, numpy_rules, trace


def chain():
    return trace(lambda x: np.tanh(np.sin(x) * 2.0 + 1.0))


def test_ancestors_descendants_sources():
    g = trace(lambda x, y, z: (x * y) + np.sin(z))
    ids = {n.op: n.id for n in g}
    assert g.ancestors(ids["add"]) == frozenset({0, 1, 2, ids["mul"], ids["sin"]})
    assert g.descendants(0) == frozenset({ids["mul"], ids["add"]})
    assert g.source_inputs()[ids["mul"]] == frozenset({0, 1})
    assert g.source_inputs()[ids["add"]] == frozenset({0, 1, 2})


def test_dominator_path_straight_line_is_every_node_after_the_input():
    g = chain()
    path = g.dominator_path()
    # constants carry no data from the input, so every non-constant node is a cut point
    assert path == tuple(n.id for n in g if n.op != "const")
    assert g.immediate_dominators()[1] == 0


def test_dominators_diamond():
    b = GraphBuilder()
    x = b.input("x")
    a = b.add("sin", [x])
    c = b.add("cos", [x])
    d = b.add("add", [a, c])
    e = b.add("exp", [d])
    g = b.build([e])
    idom = g.immediate_dominators()
    assert idom[a] == x and idom[c] == x and idom[d] == x and idom[e] == d
    assert g.dominator_path() == (x, d, e)
    ipdom = g.immediate_postdominators()
    assert ipdom[a] == d and ipdom[x] == d and ipdom[e] == e
    assert g.cut_vertices() == frozenset({d})


def test_separators():
    g = trace(lambda x, y, z: (x * y) * z + x)
    ids = [n for n in g]
    mul_xy = next(n.id for n in ids if n.op == "mul" and n.inputs == (0, 1))
    # x is used again later, so x*y does not separate x from the rest
    assert mul_xy not in g.separators()
    g2 = trace(lambda x, y, z: (x * y) * z + z)
    mul2 = next(n.id for n in g2 if n.op == "mul" and n.inputs == (0, 1))
    assert mul2 in g2.separators()
    assert g2.outputs[0] in g2.separators()


def test_subgraph_extracts_with_new_inputs():
    g = trace(lambda x, y: np.exp(x * y) + y)
    exp_id = next(n.id for n in g if n.op == "exp")
    mul_id = next(n.id for n in g if n.op == "mul")
    sub, mapping = g.subgraph([mul_id, exp_id])
    assert [n.op for n in sub].count("input") == 2
    assert sub.outputs == (mapping[exp_id],)
    assert interpret(sub, [2.0, 0.5], numpy_rules())[0] == pytest.approx(np.exp(1.0))
    with pytest.raises(GraphError, match="empty"):
        g.subgraph([])


def test_networkx_and_dot_and_draw(tmp_path):
    g = trace(lambda x, y: x * y + np.sin(x))
    nxg = g.to_networkx()
    assert nx.is_directed_acyclic_graph(nxg) and nxg.number_of_nodes() == len(g)
    dot = g.to_dot()
    assert dot.startswith("digraph") and "n0 -> n2;" in dot
    png = tmp_path / "g.png"
    g.draw(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
