"""The Taylor box bound's linear term with a uniform coordinate (``opgraph.dcg.taylor._uniform_linear``).

``E|X + R| <= min_{t >= a} t / 2 + E R^2 / (2 t)`` for ``X`` uniform on ``[-a, a]`` and ``R`` independent of it:
checked per box against samples (off-centre atoms included), on nonlinear programs, and on whole bounds against
scrambled Sobol references.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import switches, taylor
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference


def _grid(fn, names, laws, atoms, quantizer="quantile", shift=None):
    g = trace(fn, *names)
    ids = [n.id for n in g.nodes if n.op == "input"]
    qs = [law.quantize(atoms, quantizer) for law in laws]
    k = len(ids)
    xs = []
    for i, q in enumerate(qs):
        x = q.atoms.copy()
        if shift is not None and isinstance(laws[i], od.Uniform):  # atoms moved off the cells' centres
            x = q.lo + (q.hi - q.lo) * shift
        xs.append(x)
    cells = {a: (q.lo, q.hi, x) for a, q, x in zip(ids, qs, xs, strict=True)}
    # the moments about the (moved) atoms: E|X - x|, |E(X - x)|, E(X - x)^2 on each cell, from 200k samples + slack
    rng = np.random.default_rng(11)
    moments = {}
    for a, law, q, x in zip(ids, laws, qs, xs, strict=True):
        sp = law.to_scipy()
        e1, b1, m2 = [], [], []
        for j in range(q.atoms.size):
            s = sp.ppf(rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), 200_000)) - x[j]
            e1.append(np.mean(np.abs(s)) * 1.01 * q.weights[j])
            b1.append((abs(np.mean(s)) + 0.01 * np.std(s)) * q.weights[j])
            m2.append(np.mean(s * s) * 1.01 * q.weights[j])
        moments[a] = (q.weights, np.array(e1), np.array(b1), np.array(m2))

    def lay(v, i):
        return np.asarray(v).reshape([-1 if t == i else 1 for t in range(k)])

    wbox = np.ones([atoms] * k)
    for i, q in enumerate(qs):
        wbox = wbox * lay(q.weights, i)
    pt = fn(*[lay(x, i) for i, x in enumerate(xs)]) * np.ones([atoms] * k)
    uniform = frozenset(a for a, law in zip(ids, laws, strict=True) if isinstance(law, od.Uniform))
    unimodal = frozenset(a for a, law in zip(ids, laws, strict=True) if type(law).__name__ in taylor.UNIMODAL)
    return g, ids, qs, xs, cells, moments, wbox, pt, uniform, unimodal


def _check_boxes(fn, names, laws, atoms, shift=None, m=20_000, unimodal=True):
    g, ids, qs, xs, cells, moments, wbox, pt, uniform, uni = _grid(fn, names, laws, atoms, shift=shift)
    uni = uni if unimodal else frozenset()
    with_u = taylor.box_bound(g, g.outputs[0], tuple(ids), pt, cells, moments, wbox, uniform=uniform, unimodal=uni)
    plain = taylor.box_bound(g, g.outputs[0], tuple(ids), pt, cells, moments, wbox)
    assert with_u is not None and plain is not None
    assert np.all(with_u <= plain * (1 + 1e-12))
    rng = np.random.default_rng(5)
    sps = [law.to_scipy() for law in laws]
    for idx in np.ndindex(*with_u.shape):
        smp = [sp.ppf(rng.uniform(sp.cdf(q.lo[j]), sp.cdf(q.hi[j]), m)) for sp, q, j in zip(sps, qs, idx, strict=True)]
        dev = np.abs(fn(*smp) - pt[idx]) * wbox[idx]
        assert with_u[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(m), idx
    return float(np.sum(with_u)), float(np.sum(plain))


@pytest.mark.parametrize("shift", [None, 0.3])
def test_linear_program_one_dominant_uniform(shift):
    # One uniform coordinate carries most of the linear term (s < a: the a/2 + s^2/(2a) branch), the rest is small;
    # shift=0.3 puts the atoms off the cells' centres (mu != 0).
    def fn(x, y, z):
        return 3.0 * x + 0.4 * y - 0.2 * z

    laws = [od.Uniform(0.0, 2.0), od.Uniform(-1.0, 1.0), od.Normal(0.0, 0.5)]
    new, old = _check_boxes(fn, ["x", "y", "z"], laws, 3, shift=shift)
    if shift is None:
        assert new < 0.95 * old  # tighter than the L2 form


def test_linear_program_balanced_terms():
    # Several comparable uniform coordinates (s >= a: the bound is the rest's L2 norm).
    def fn(a, b, c, d):
        return a + 1.2 * b - 0.9 * c + 1.1 * d

    laws = [od.Uniform(0.0, 1.0)] * 4
    new, old = _check_boxes(fn, ["a", "b", "c", "d"], laws, 2)
    assert new < old


@pytest.mark.parametrize(
    "law",
    [od.Normal(1.0, 0.7), od.LogNormal(0.0, 0.5), od.Exponential(2.0), od.Gamma(0.6, 1.0)],
    ids=["normal", "lognormal", "exponential", "gamma-shape-0.6"],
)
def test_linear_program_one_dominant_unimodal(law):
    # A dominant coordinate with a unimodal law (interior cells are finite and asymmetric; tail cells unbounded: the
    # bound keeps the L2 form there), a smaller uniform one and a small Normal one.
    def fn(x, y, z):
        return 3.0 * x + 0.3 * y - 0.2 * z

    laws = [law, od.Uniform(-1.0, 1.0), od.Normal(0.0, 0.3)]
    new, old = _check_boxes(fn, ["x", "y", "z"], laws, 5)
    assert new <= old


def test_unimodal_law_tightens_a_normal_mlp_unit():
    # tanh of a sum of Normals (a one-unit network): the linear term with the unimodal cells is below the L2 form.
    def fn(a, b):
        return np.tanh(0.9 * a - 0.4 * b + 0.1)

    laws = [od.Normal(0.0, 1.0), od.Normal(0.5, 0.5)]
    new, _ = _check_boxes(fn, ["a", "b"], laws, 6)
    plain, _ = _check_boxes(fn, ["a", "b"], laws, 6, unimodal=False)
    assert new < plain


def test_nonlinear_uniform_program_per_box():
    def fn(a, b, c):
        v = np.sqrt(a**2 + 4.0 * b) + a
        return c**1.5 * v + 0.3 * a ** (-0.5) * b**2

    laws = [od.Uniform(0.5, 2.0), od.Uniform(0.2, 1.0), od.Uniform(1.0, 3.0)]
    _check_boxes(fn, ["a", "b", "c"], laws, 3)


_sobol_reference = functools.partial(sobol_reference, log2=16, seed=40)


def _otl(rb1, rb2, rf, rc1, rc2, beta):
    # The OTL circuit (uqtestfuns.OTLCircuit), its six uniform inputs.
    vb1 = 12.0 * rb2 / (rb1 + rb2)
    denom = beta * (rc2 + 9.0) + rf
    return (
        (vb1 + 0.74) * beta * (rc2 + 9.0) / denom + 11.35 * rf / denom + 0.74 * rf * beta * (rc2 + 9.0) / (denom * rc1)
    )


OTL_LAWS = [
    od.Uniform(50, 150),
    od.Uniform(25, 70),
    od.Uniform(0.5, 3.0),
    od.Uniform(1.2, 2.5),
    od.Uniform(0.25, 1.2),
    od.Uniform(50, 300),
]


def test_otl_bound_sound_and_tighter_against_a_reference(monkeypatch):
    ref, err = _sobol_reference(_otl, OTL_LAWS)
    # the point-mass answer's certificate (the box-linear mixture, which drops the linear term, is off)
    with warnings.catch_warnings(), switches.scope({"box_linear": False}):
        warnings.simplefilter("ignore")
        on = od.evaluate(_otl, *OTL_LAWS, atoms=6)
        monkeypatch.setattr(taylor, "UNIFORM_LINEAR", False)
        off = od.evaluate(_otl, *OTL_LAWS, atoms=6)
    true = w1_discrete(on.atoms, on.weights, ref, np.ones(ref.size))
    assert on.w1_bound >= true - 3 * err
    assert on.w1_bound < off.w1_bound
    np.testing.assert_array_equal(on.atoms, off.atoms)  # the answer is unchanged, only its certificate
