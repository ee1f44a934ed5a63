"""Cancellation rewrites (opgraph.dcg.cancel): same function, same law, sound and tighter bounds."""

from __future__ import annotations

import contextvars
import warnings

import numpy as np
import pytest
from scipy.stats import qmc

from opgraph import dcg as od
from opgraph.dcg import cancel, subcells, subslope
from opgraph.dcg.api import _rules
from opgraph.dcg.engine import prepare, restrict, run_points
from opgraph.graph import Graph, Node, trace


def _bore(rw, r, tu, kw):
    """The borehole's denominator structure: ``lg`` multiplied in and divided out, ``T_u`` above and below."""
    lg = np.log(r / rw)
    return 6.283185307179586 * tu * 200.0 / (lg * (1 + 2 * 1400.0 * tu / (lg * rw**2 * kw) + tu / 89.0))


def _vol(k, p, s):
    """The piston's volume: ``S / (2 k) * (sqrt(A^2 + B) - A)`` with ``B`` proportional to ``k``."""
    a = p * s + 600.0 - k * 0.006 / s
    return s / (2.0 * k) * (np.sqrt(a**2 + 4.0 * k * 2.0) - a)


def _powers(s, q):
    """``S^2 q / V^2`` with ``V = 2 S q / (1 + s)``: the factors of ``V`` cancel through the square."""
    v = 2.0 * s * q / (1.0 + s)
    return s**2 * q / v**2


def _clear(x, y):
    """``C / (a + b / x^2)``: a wide denominator factor inside a sum."""
    return 3.0 * y / (y + 0.5 / x**2)


def _distribute(x, y):
    return x * (1.0 + y / x + y)


def _divide(x, y):
    return (x * y) / (y + x * 2.0)


LAWS = {
    _bore: [od.Uniform(0.05, 0.15), od.Uniform(100.0, 50000.0), od.Uniform(63070.0, 115600.0), od.Uniform(9985, 12045)],
    _vol: [od.Uniform(1000.0, 5000.0), od.Uniform(90000.0, 110000.0), od.Uniform(0.005, 0.02)],
    _powers: [od.Uniform(0.5, 2.0), od.Uniform(1.0, 3.0)],
    _clear: [od.Uniform(0.05, 1.0), od.Uniform(1.0, 2.0)],
    _distribute: [od.Uniform(1.0, 3.0), od.Uniform(0.0, 1.0)],
    _divide: [od.Uniform(1.0, 3.0), od.Uniform(0.5, 1.5)],
}


def _graph(fn):
    names = [f"x{i}" for i in range(len(LAWS[fn]))]
    g = prepare(trace(fn, *names))
    sub, out = restrict(g, g.outputs[0])
    return sub, out, dict(zip(names, LAWS[fn], strict=True))


def _samples(fn, m: int, seed: int = 0) -> list[np.ndarray]:
    u = qmc.Sobol(len(LAWS[fn]), scramble=True, seed=seed).random_base2(m)
    return [np.asarray(d.ppf(u[:, k])) for k, d in enumerate(LAWS[fn])]


@pytest.mark.parametrize("fn", list(LAWS))
def test_rewrite_is_the_same_function(fn):
    sub, out, dists = _graph(fn)
    re = cancel.rewrite(sub, out, dists)
    assert re is not None, fn.__name__
    g2, o2, done = re
    assert done
    cols = _samples(fn, 10)
    names = [f"x{i}" for i in range(len(cols))]
    env = dict(zip(names, cols, strict=True))
    a = run_points(sub, env, _rules())
    b = run_points(g2, env, _rules())
    np.testing.assert_allclose(b, a, rtol=1e-11)
    assert len(g2.nodes) <= 3 * len(sub.nodes)


def test_no_rewrite_where_the_factor_can_be_zero():
    def f(x, y):
        return x * (1.0 + y / x)

    g = prepare(trace(f, "x", "y"))
    sub, out = restrict(g, g.outputs[0])
    assert cancel.rewrite(sub, out, {"x": od.Uniform(-1.0, 1.0), "y": od.Uniform(0.0, 1.0)}) is None
    assert cancel.rewrite(sub, out, {"x": od.Normal(2.0, 1.0), "y": od.Uniform(0.0, 1.0)}) is None
    assert cancel.rewrite(sub, out, {"x": od.Uniform(0.5, 1.0), "y": od.Uniform(0.0, 1.0)}) is not None


def test_narrow_denominator_factors_are_not_cleared():
    def f(x, y):
        return 2.0 / (y + 0.5 / x)

    g = prepare(trace(f, "x", "y"))
    sub, out = restrict(g, g.outputs[0])
    assert cancel.rewrite(sub, out, {"x": od.Uniform(1.0, 2.0), "y": od.Uniform(1.0, 2.0)}) is None
    assert cancel.rewrite(sub, out, {"x": od.Uniform(0.1, 2.0), "y": od.Uniform(1.0, 2.0)}) is not None


def _evaluate(fn, atoms, enabled=True):
    tok = cancel.ENABLED.set(enabled)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(fn, *LAWS[fn], atoms=atoms)
    finally:
        cancel.ENABLED.reset(tok)


@pytest.mark.parametrize("fn", [_bore, _vol, _powers, _clear, _distribute, _divide])
@pytest.mark.parametrize("atoms", [3, 6])
def test_bound_is_sound_and_band_holds(fn, atoms):
    """True W1 (against 2^18 scrambled Sobol points) <= bound; the CDF band holds the sample's CDF."""
    y = np.sort(np.asarray(fn(*_samples(fn, 18, seed=1)), dtype=float))
    r = _evaluate(fn, atoms)
    assert r.certified
    ref_err = 4.0 * np.std(y) / np.sqrt(y.size)  # generous QMC error allowance
    true_w1 = od.w1_discrete(r.atoms, r.weights, y, np.ones(y.size))
    assert true_w1 <= r.w1_bound + ref_err
    for t in np.quantile(y, [0.05, 0.25, 0.5, 0.75, 0.95]):
        lo, hi = r.cdf_bounds(float(t))
        f = np.searchsorted(y, t, side="right") / y.size
        assert lo - 5e-3 <= f <= hi + 5e-3


@pytest.fixture
def no_subcells(monkeypatch):
    """The sub-cell pass (:mod:`opgraph.dcg.subcells`) and the sub-box slope remainder (:mod:`opgraph.dcg.subslope`)
    off: they tighten both graphs' bounds by their own means (with the latter on, the piston volume and the integer
    powers get the same mixture bound with and without the rewrite), so the tests that compare the rewritten graph
    with the original one measure the rewrites alone."""
    monkeypatch.setattr(subcells, "ENABLED", contextvars.ContextVar("subcells_off_in_test", default=False))
    monkeypatch.setattr(subslope, "ENABLED", contextvars.ContextVar("subslope_off_in_test", default=False))


def test_rewrite_tightens_the_borehole_form(no_subcells):
    """Fails without the rewrites: the first-order terms of r and r_w are charged the width of N / (lg M)."""
    for atoms in (3, 4):
        new = _evaluate(_bore, atoms)
        old = _evaluate(_bore, atoms, enabled=False)
        assert new.info["cancelled"]["used"]
        assert new.w1_bound <= 0.3 * old.w1_bound, (atoms, new.w1_bound, old.w1_bound)


def test_disabled_gives_the_old_evaluation():
    r = _evaluate(_divide, 4, enabled=False)
    assert "cancelled" not in r.info


def test_rationalized_piston_volume_rewrite():
    """``rationalize`` then ``cancel`` on the piston's volume (same function: see the parametrized tests)."""
    sub, out, dists = _graph(_vol)
    kinds = [d.split()[0] for d in cancel.rewrite(sub, out, dists)[2]]
    assert kinds[:2] == ["rationalize", "cancel"]
    g = prepare(trace(_vol, "k", "p", "s"))
    sub, out = restrict(g, g.outputs[0])
    narrow = {"k": od.Uniform(1000.0, 5000.0), "p": od.Normal(1e5, 1e4), "s": od.Uniform(0.005, 0.02)}
    # b = 4 k c > 0 is needed: with k allowed to reach 0 the sqrt difference is not rationalized
    assert cancel.rewrite(sub, out, {**narrow, "k": od.Uniform(0.0, 5000.0)}) is None or all(
        not d.startswith("rationalize") for d in cancel.rewrite(sub, out, {**narrow, "k": od.Uniform(0.0, 5000.0)})[2]
    )


def test_a_rewrite_that_changed_the_mean_is_refused(monkeypatch):
    """The engine compares the two evaluations' means and keeps the original where they disagree."""
    real = cancel._apply

    def wrong(graph, output, target, kind, u, s):
        g2, o2 = real(graph, output, target, kind, u, s)
        nodes = list(g2.nodes)
        c = len(nodes)
        nodes.append(Node(c, "const", (), {"value": 1.5}, {}))
        nodes.append(Node(c + 1, "mul", (o2, c), {}, dict(nodes[o2].meta)))
        return Graph(tuple(nodes), g2.inputs, (c + 1,)), c + 1

    monkeypatch.setattr(cancel, "_apply", wrong)
    r = _evaluate(_bore, 3)
    assert r.info["cancelled"]["used"] is False
    assert r.info["cancelled"]["refused"]


def test_per_box_minimum_of_the_two_graphs(no_subcells):
    """The piston volume: neither graph wins on every box; the per-box minimum beats both (fails without it)."""
    r = _evaluate(_vol, 4)
    old = _evaluate(_vol, 4, enabled=False)
    info = r.info["cancelled"]
    assert info["box_gain"] > 0
    assert r.w1_bound < min(old.w1_bound, info["other_bound"])


def test_cancel_reads_through_integer_powers(no_subcells):
    sub, out, dists = _graph(_powers)
    g2, o2, done = cancel.rewrite(sub, out, dists)
    assert [d.split()[0] for d in done] == ["cancel"] * 3  # s twice, q once
    assert not any(n.op == "pow" for n in g2.nodes)  # (1 + s)^2 / (4 q) is built as a product
    r = _evaluate(_powers, 4)
    old = _evaluate(_powers, 4, enabled=False)
    assert r.w1_bound <= 0.7 * old.w1_bound, (r.w1_bound, old.w1_bound)


def test_almost_surely_nonzero_factors():
    """A sum of LogNormals is > 0 with probability 1 although its enclosure reaches 0; a Discrete 0 is not."""

    def f(x, y, z, w):
        return (x + y) * z / ((x + y) * w)

    g = prepare(trace(f, "x", "y", "z", "w"))
    sub, out = restrict(g, g.outputs[0])
    base = {"z": od.Uniform(1.0, 2.0), "w": od.Uniform(1.0, 2.0)}
    pos = {**base, "x": od.LogNormal(0.0, 1.0), "y": od.Gamma(2.0, 1.0)}
    re = cancel.rewrite(sub, out, pos)
    assert re is not None and re[2][0].startswith("cancel")
    assert cancel.rewrite(sub, out, {**base, "x": od.LogNormal(0.0, 1.0), "y": od.Normal(0.0, 1.0)}) is None
    assert cancel.rewrite(sub, out, {**base, "x": od.Discrete([0.0, 1.0], [0.5, 0.5]), "y": od.Uniform(0, 1)}) is None
    env = {k: np.asarray(v.ppf(np.linspace(0.01, 0.99, 50))) for k, v in pos.items()}
    kept = {k: v for k, v in env.items() if k in re[0].input_names}  # x and y cancel out entirely
    np.testing.assert_allclose(run_points(re[0], kept, _rules()), run_points(sub, env, _rules()), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(f, pos["x"], pos["y"], pos["z"], pos["w"], atoms=8)
    assert r.info["cancelled"]["used"] and r.certified
    assert r.w1_bound < 0.05  # z / w alone: x and y (unbounded) no longer enter the bound
