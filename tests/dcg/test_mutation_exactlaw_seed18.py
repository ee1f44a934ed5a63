"""Mutation pass on opgraph.dcg.exactlaw, third sample (seed 18; docs/testing.md, eighth pass).

Rules that must not fire: a product of Normal forms, a constant plus a LogNormal form. References written out here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw
from opgraph.dcg.distributions import Quantized
from opgraph.graph import trace

EPS = float(np.finfo(float).eps)


def _forms(fn, dists):
    g = trace(fn, *dists)
    return exactlaw.forms(g, dists, None), g


def test_products_of_normal_forms_have_no_form():
    # Kills exactlaw:132#1 (the exp-and-exp test of _mul's last branch `and` -> `or`): a product of Normals is no
    # LogNormal, nor is a LogNormal times a Normal.
    dists = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3), "c": od.LogNormal(0.0, 0.2)}
    for fn in (lambda a, b, c: a * b, lambda a, b, c: c * a, lambda a, b, c: a / b, lambda a, b, c: c / a):
        fs, g = _forms(fn, dists)
        assert fs[g.outputs[0]] is None


def test_a_constant_plus_a_form():
    # Kills exactlaw:143#2 (`y.kind == "gauss"` -> `!=` in const + form) and :145#1 (the constant and the form's
    # shift subtracted): 1 + LogNormal is no Normal, while 1 - (a + b + 2) of Normals is Normal(1 - (ma + mb + 2), s).
    dists = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(0.2, 0.1)}
    fs, g = _forms(lambda a, b: 1.0 + a * b, dists)
    assert fs[g.outputs[0]] is None
    nd = {"a": od.Normal(0.5, 0.2), "b": od.Normal(1.0, 0.3)}
    fs, g = _forms(lambda a, b: 1.0 - (a + b + 2.0), nd)
    f = fs[g.outputs[0]]
    assert isinstance(f, exactlaw.Form) and f.kind == "gauss"
    names = {n.id: n.attrs["name"] for n in g.nodes if n.op == "input"}
    dist, _ = exactlaw.law(f, nd, names)
    assert dist.loc == pytest.approx(1.0 - (1.5 + 2.0), rel=1e-12)
    assert dist.scale == pytest.approx(math.sqrt(0.04 + 0.09), rel=1e-12)


def test_reciprocal_is_the_inverse_power():
    # Kills exactlaw:231#1 (`reciprocal` as power +1): 1 / (a b) via np.reciprocal is LogNormal(-(ma + mb), s).
    dists = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(0.2, 0.1)}
    fs, g = _forms(lambda a, b: np.reciprocal(a * b), dists)
    f = fs[g.outputs[0]]
    names = {n.id: n.attrs["name"] for n in g.nodes if n.op == "input"}
    dist, _ = exactlaw.law(f, dists, names)
    assert isinstance(dist, od.LogNormal)
    assert dist.mu == pytest.approx(-0.3, rel=1e-12)
    assert dist.sigma == pytest.approx(math.sqrt(0.05), rel=1e-12)


def test_a_cell_with_an_infinite_lower_end_moves_its_upper_end_by_ulps_only():
    # Kills exactlaw:356#2 (an infinite pad replaced by 1.0 on the upper ends): the first cell of a Normal.
    q = Quantized(
        atoms=np.array([-2.0, 0.0, 2.0]),
        weights=np.array([0.25, 0.5, 0.25]),
        lo=np.array([-np.inf, -1.0, 1.0]),
        hi=np.array([-1.0, 1.0, np.inf]),
        err=np.array([0.1, 0.2, 0.1]),
        method="quantile",
    )
    out = exactlaw._with_slack(q, 0.0)
    assert 0.0 <= out.hi[0] - q.hi[0] <= 8 * EPS
    assert out.lo[0] == -np.inf and out.hi[2] == np.inf
    assert out.lo[1] == -1.0 - 8 * EPS and out.hi[1] == 1.0 + 8 * EPS


def test_the_replacement_takes_the_inputs_quantizer_only_when_they_agree():
    # Kills exactlaw:392#1 (`len(methods) == 1 and ...` -> `or`): two quantizers give "auto", one gives itself
    # (if it is a continuous-law quantizer).
    qq = od.LogNormal(0.0, 0.2).quantize(4, "quantile")
    qm = od.LogNormal(0.0, 0.2).quantize(4, "meansplit")
    assert exactlaw._method(["a", "b"], {"a": qq, "b": qm}) == "auto"
    assert exactlaw._method(["a", "b"], {"a": qq, "b": qq}) == "quantile"
    assert exactlaw._method(["a"], {"a": qm}) == "meansplit"


def test_graph_size_guard_is_inclusive(monkeypatch):
    # Kills exactlaw:416#3 (`> MAX_NODES` -> `>=`): a graph of exactly MAX_NODES nodes is still searched (the
    # limit lowered to this 5-node graph's size); with the limit one below, it is not.
    g = trace(lambda a, b: a * b * 2.0, "a", "b")
    assert len(g.nodes) == 5
    dists = {"a": od.LogNormal(0.1, 0.2), "b": od.LogNormal(0.2, 0.1)}
    quantized = {k: d.quantize(8, "quantile") for k, d in dists.items()}
    labels = {k: k for k in dists}
    monkeypatch.setattr(exactlaw, "MAX_NODES", 5)
    assert exactlaw.substitute(g, g.outputs[0], quantized, labels, dists, 16) is not None
    monkeypatch.setattr(exactlaw, "MAX_NODES", 4)
    assert exactlaw.substitute(g, g.outputs[0], quantized, labels, dists, 16) is None


def test_a_rule_op_with_attributes_has_no_form():
    # Kills exactlaw:278#1 (`rule is None or n.attrs` -> `and`): an op that carries attributes (torch's
    # add(x, y, alpha=2) imported as `add` with attrs) is not the plain op the rule describes.
    from opgraph.graph import Graph, Node

    nodes = (
        Node(0, "input", (), {"name": "a"}, {}),
        Node(1, "input", (), {"name": "b"}, {}),
        Node(2, "add", (0, 1), {"alpha": 2.0}, {}),
    )
    g = Graph(nodes, (0, 1), (2,), {})
    dists = {"a": od.Normal(0.0, 1.0), "b": od.Normal(1.0, 2.0)}
    fs = exactlaw.forms(g, dists, None)
    assert isinstance(fs[0], exactlaw.Form) and fs[2] is None
