"""Mutation tests of opgraph.dcg.enclose, sixth pass (issue 13): survivors of the seed-15 sample.

References: which graphs are ``sqrt(a**2 + b) - a`` by hand, and the function itself on dense samples.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.dcg import enclose
from opgraph.graph import trace


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: np.sqrt((a + 2.0) + b) - a,  # a + 2 is not a square of a
        lambda a, b: np.sqrt(a * 2.0 + b) - a,
        lambda a, b: np.sqrt(np.maximum(a, 2.0) + b) - a,
        lambda a, b: np.sqrt(a**3.0 + b) - a,
        lambda a, b: np.sqrt(a - 2.0 + b) - a,
    ],
)
def test_find_forms_takes_only_squares(fn):
    g = trace(fn, "a", "b")
    assert enclose.find_forms(g) == {}
    # and the values really differ from the form's sqrt(a^2 + b) - a there
    a, b = 3.0, 5.0
    assert float(fn(a, b)) != pytest.approx(float(np.sqrt(a**2 + b) - a))


@pytest.mark.parametrize("fn", [lambda a, b: np.sqrt(np.square(a) + b) - a, lambda a, b: np.sqrt(b + a**2.0) - a])
def test_find_forms_takes_every_spelling_of_the_square(fn):
    g = trace(fn, "a", "b")
    ((node, form),) = enclose.find_forms(g).items()
    assert g.nodes[node].op == "sub" and form.sign == 1.0
    assert g.nodes[form.a].attrs["name"] == "a" and g.nodes[form.b].attrs["name"] == "b"


def test_sub_boxes_cover_the_box_to_its_last_bit():
    # Boxes where lo + (hi - lo) rounds below hi: the last sub-box must end at hi itself, or the hull misses a
    # sliver at the top (x itself, and -x whose lower end is then above -hi).
    lo = np.array([-8.828639303896113, -6.658941424354556, -6.4918050002983785, -7.388538835308842, 0.1])
    hi = np.array([7.529684616214077, 4.292370733095055, 3.495972999345579, 1.770685038787052, 0.3])
    assert np.any(lo + (hi - lo) < hi)
    g = trace(lambda x: -x, "x")
    (ix,) = (n.id for n in g.nodes if n.op == "input")
    for levels in (1, 2, 3):
        (vlo, vhi), der = enclose.subdivided_enclosure(g, ix, {ix: ix}, {ix: (lo, hi)}, levels)
        np.testing.assert_array_equal(vlo, lo)
        np.testing.assert_array_equal(vhi, hi)
        (nlo, nhi), _ = enclose.subdivided_enclosure(g, g.outputs[0], {ix: ix}, {ix: (lo, hi)}, levels)
        assert np.all(nlo <= -hi) and np.all(nhi >= -lo)


def test_a_sub_box_without_a_value_makes_the_whole_box_unbounded():
    # log(max(x, 0)) on x in [-1, 1]: the sub-boxes left of 0 give log([0, 0]) = (-inf, NaN), which the rule's
    # outward widening maps to (-inf, inf); the hull must contain every value (-inf at x <= 0, up to 0 at x = 1).
    g = trace(lambda x: np.log(np.maximum(x, 0.0)), "x")
    (ix,) = (n.id for n in g.nodes if n.op == "input")
    lo, hi = np.array([-1.0, 0.5]), np.array([1.0, 2.0])
    with np.errstate(all="ignore"):
        for levels in (1, 2):
            (vlo, vhi), der = enclose.subdivided_enclosure(g, g.outputs[0], {ix: ix}, {ix: (lo, hi)}, levels)
            assert vlo[0] == -np.inf and vhi[0] == np.inf
            for i in range(2):
                v = np.log(np.maximum(np.linspace(lo[i], hi[i], 101), 0.0))
                assert np.all(vlo[i] <= v) and np.all(v <= vhi[i]), i
            assert not np.isnan(der[ix][0]).any() and not np.isnan(der[ix][1]).any()


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("log", np.log),
        ("log2", np.log2),
        ("log10", np.log10),
        ("sqrt", np.sqrt),
        ("reciprocal", np.reciprocal),
        ("cbrt", np.cbrt),
        ("pow", lambda x: x**0.5),
    ],
)
def test_a_unary_pole_op_is_subdivided_exactly_on_the_cells_near_its_pole(monkeypatch, op, fn):
    """``op(x)``, X ~ U(1, 3), 4 atoms: the cells are [1, 1.5], ..., [2.5, 3] (width 0.5), and a cell is near the
    pole at 0 when its distance to 0 is below 4 x 0.5 = 2 (by hand: the first two). Each of these ops has its pole
    in its only operand (index 0), so it is re-evaluated on exactly those two cells; ``2 ** x`` (the pole operand
    of ``pow`` is the constant base) is not subdivided."""
    from opgraph import dcg as od

    calls: list[tuple[str, dict[int, tuple[list[float], list[float]]]]] = []
    real = enclose.subdivided_enclosure

    def spy(graph, target, leaves, cells, levels):
        calls.append((graph.nodes[target].op, {a: (c[0].tolist(), c[1].tolist()) for a, c in cells.items()}))
        return real(graph, target, leaves, cells, levels)

    monkeypatch.setattr(enclose, "subdivided_enclosure", spy)
    od.evaluate(fn, od.Uniform(1.0, 3.0), atoms=4)
    assert len(calls) == 1 and calls[0][0] == op
    ((lo, hi),) = calls[0][1].values()
    np.testing.assert_allclose(lo, [1.0, 1.5], rtol=0, atol=1e-12)
    np.testing.assert_allclose(hi, [1.5, 2.0], rtol=0, atol=1e-12)
    calls.clear()
    od.evaluate(lambda x: 2.0**x, od.Uniform(1.0, 3.0), atoms=4)
    assert calls == []
