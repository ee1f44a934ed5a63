"""The rule tables of opgraph.dcg: one entry per supported op, the same keys in every table."""

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import api, logic
from opgraph.dcg import growth as gr
from opgraph.dcg import intervals as iv
from opgraph.graph import OPS, numpy_rules, trace
from opgraph.graph.ops import OpInfo

# Ops in the core table without a NumPy reference: only torch.fx imports emit them; the tracer never does.
NO_NUMPY = {"copy", "contiguous", "convert"}


def test_every_table_has_the_same_keys_and_they_are_core_elementwise_ops():
    assert set(iv.RULES) == set(gr.RULES)
    assert frozenset(iv.RULES) == iv.SUPPORTED_OPS
    for op in iv.RULES:
        assert op in OPS and OPS[op].elementwise, op
    assert set(iv.RULES) - set(numpy_rules()) == NO_NUMPY
    # ... and dcg's own point table covers them: every interval rule has a point rule.
    assert set(iv.RULES) <= set(api._rules()) and set(api.POINT_RULES) >= NO_NUMPY


@pytest.mark.parametrize("op", sorted(iv.RULES))
def test_every_interval_rule_encloses_its_numpy_op_and_its_derivative(op):
    arity = OPS[op].arity
    rng = np.random.default_rng(abs(hash(op)) % 2**32)
    lo_c, hi_c = (
        (0.2, 0.9)
        if op in ("arcsin", "arccos", "arctanh", "log", "log1p", "log2", "log10", "sqrt", "rsqrt", "pow", "reciprocal")
        else (-2.0, 2.0)
    )
    c = rng.uniform(lo_c, hi_c, size=(arity, 200))
    w = rng.uniform(0, 0.05, size=(arity, 200))
    args = [(c[k] - w[k], c[k] + w[k]) for k in range(arity)]
    if op == "where":
        args[0] = (np.round(c[0] > 0).astype(float), np.round(c[0] > 0).astype(float))
    if op in logic.OPS:  # truth values: decided (0 or 1) or undecided ([0, 1])
        for k in range(arity):
            lo = (c[k] > 0.5).astype(float)
            args[k] = (lo, np.where(c[k] < -0.5, 1.0, lo))
    (vlo, vhi), parts = iv.rule(op, args)
    assert len(parts) == arity
    rule = api._rules()[op]

    def fn(*x):
        return np.asarray(rule(None, *x), dtype=float)

    for t in (0.0, 1.0) if op in logic.OPS else np.linspace(0, 1, 5):  # truth values take the ends only
        x = [np.clip(a[0] + t * (a[1] - a[0]), a[0], a[1]) for a in args]
        y = fn(*x)
        assert np.all((vlo <= y) & (y <= vhi)), op
    # Derivative enclosures: a central difference at the box centre lies in the enclosure (smooth ops).
    if op in (
        "sign",
        "floor",
        "ceil",
        "rint",
        "lt",
        "le",
        "gt",
        "ge",
        "eq",
        "ne",
        "where",
        "mod",
        "abs",
        "relu",
        "maximum",
        "minimum",
        *logic.OPS,
    ):
        return
    h = 1e-6
    for k in range(arity):
        xp = [c[j] + (h if j == k else 0) for j in range(arity)]
        xm = [c[j] - (h if j == k else 0) for j in range(arity)]
        fd = (fn(*xp) - fn(*xm)) / (2 * h)
        dlo, dhi = np.broadcast_to(parts[k][0], fd.shape), np.broadcast_to(parts[k][1], fd.shape)
        tol = 1e-5 * (1 + np.abs(fd))
        assert np.all((dlo - tol <= fd) & (fd <= dhi + tol)), (op, k)


def test_an_op_added_to_the_core_table_and_one_rule_per_table_is_evaluated(monkeypatch):
    # "twice": a new elementwise op (x -> 2x). Nothing else in opgraph.dcg needs to know about it.
    monkeypatch.setitem(OPS, "twice", OpInfo("twice", 1, True, None, lambda x: 2.0 * np.asarray(x)))

    def interval(args, attrs):
        lo, hi = args[0]
        return iv.widen(2 * lo, 2 * hi), [iv.point(2.0)]

    monkeypatch.setitem(iv.RULES, "twice", interval)
    monkeypatch.setitem(gr.RULES, "twice", lambda g, consts: (2 * g[0][0], 2 * g[0][1]))
    x = od.Uniform(0, 1)
    r = x._apply("twice", x).evaluate(atoms=64)
    ref = (2 * x).evaluate(atoms=64)
    np.testing.assert_allclose(r.atoms, ref.atoms)
    assert r.w1_bound == pytest.approx(ref.w1_bound, rel=1e-9)
    # Unbounded input: the growth rule gives the tail cells a finite moment-weighted bound.
    z = od.Normal(0, 1)
    rz = z._apply("twice", z * z).evaluate(atoms=64)
    assert np.isfinite(rz.w1_bound)
    assert rz.mean() == pytest.approx(2.0, rel=1e-2)


def test_unsupported_op_names_the_node():
    def fn(x):
        return np.arccosh(x)  # in the core op table, not (yet) in opgraph.dcg's tables

    assert "arccosh" in OPS and "arccosh" not in iv.RULES
    with pytest.raises(od.DistError, match=r"node \d+ \(arccosh\).*op 'arccosh' is not supported"):
        od.evaluate(fn, od.Uniform(1, 2), atoms=8)


def test_cos_and_sin_enclosures_hold_near_the_zeros_and_extremes_of_cos():
    # Boxes around zeros of cos (k pi + pi/2) and its extremes (k pi), down to a few ulps wide.
    centres = np.concatenate([np.arange(-6, 7) * np.pi + np.pi / 2, np.arange(-6, 7) * np.pi])
    for w in (1e-15, 1e-9, 1e-3, 0.5):
        lo, hi = centres - w, centres + w
        xs = [np.clip(x, lo, hi) for x in (np.nextafter(lo, np.inf), lo, hi, np.nextafter(hi, -np.inf), centres)]
        (clo, chi), (dlo, dhi) = iv.rule("cos", [(lo, hi)])[0], iv.rule("cos", [(lo, hi)])[1][0]
        (slo, shi), (sdlo, sdhi) = iv.rule("sin", [(lo, hi)])[0], iv.rule("sin", [(lo, hi)])[1][0]
        for x in xs:
            assert np.all((clo <= np.cos(x)) & (np.cos(x) <= chi))
            assert np.all((slo <= np.sin(x)) & (np.sin(x) <= shi))
            assert np.all((sdlo <= np.cos(x)) & (np.cos(x) <= sdhi))  # d sin = cos
            assert np.all((dlo <= -np.sin(x)) & (-np.sin(x) <= dhi))  # d cos = -sin
        assert np.all(chi - clo <= 2 * w + 1e-12)  # still tight (cos is 1-Lipschitz)


@pytest.mark.parametrize("op", ["copy", "contiguous", "convert"])
def test_structural_ops_have_point_rules(op):
    """A ``copy`` / ``contiguous`` / ``convert`` node (as imported from torch) evaluates like its operand."""
    from opgraph.graph import Graph, Node

    g = trace(lambda x: x * 2.0 + 1.0)
    nodes = [
        Node(0, "input", (), {"name": "x"}),
        Node(1, op, (0,)),
        *[
            Node(
                n.id + 1, n.op, tuple(i + 1 if i > 0 else 1 for i in n.inputs) if n.op != "const" else (), dict(n.attrs)
            )
            for n in g.nodes[1:]
        ],
    ]
    g2 = Graph(tuple(nodes), (0,), (g.outputs[0] + 1,))
    assert op in api._rules() and op in api.POINT_RULES
    kw = {
        "target_w1": None,
        "quantizer": "auto",
        "max_joint": 2**20,
        "compress_atoms": None,
        "qmc_points": 2**10,
        "seed": 0,
        "balance": True,
    }
    law = {"x": od.Normal(1.0, 2.0)}
    a = api._evaluate_graph(g, law, atoms=16, **kw)[0]
    b = api._evaluate_graph(g2, law, atoms=16, **kw)[0]
    np.testing.assert_array_equal(a.atoms, b.atoms)
    assert b.w1_bound == pytest.approx(a.w1_bound, rel=1e-12)
