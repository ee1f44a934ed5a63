"""The ``square_powers`` pass: ``x ** 2`` becomes ``square(x)``, nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.graph import interpret, trace
from opgraph.graph.ops import numpy_rules
from opgraph.graph.passes import square_powers


def test_pow_two_becomes_square_with_the_same_values_and_origin():
    g = trace(lambda a, b: 0.1 * (a - b) ** 2 + a**3 + b**a + (a + 1.0) ** 2.5)
    h = square_powers(g)
    ops = [n.op for n in h.nodes]
    assert ops.count("square") == 1
    assert ops.count("pow") == [n.op for n in g.nodes].count("pow") - 1  # a**3, b**a, (a+1)**2.5 stay
    sq = next(n for n in h.nodes if n.op == "square")
    assert sq.meta["origin"] == sq.id and g.nodes[sq.id].op == "pow"
    rules = numpy_rules()
    for a, b in [(0.3, 1.2), (2.0, 0.5), (-0.7, 1.9)]:
        assert interpret(h, [a, b], rules)[0] == pytest.approx(interpret(g, [a, b], rules)[0], rel=1e-15)


def test_a_graph_without_a_square_power_is_returned_unchanged():
    g = trace(lambda a: np.sin(a) * a**3)
    assert square_powers(g) is g
