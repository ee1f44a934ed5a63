"""Product-form tail envelopes of nodes of several inputs (opgraph.dcg.multienv): finite and sound bounds."""

from __future__ import annotations

import importlib.util
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import cancel, elastic, exactlaw, multienv

X, Y, Z = od.LogNormal(0.0, 0.5), od.LogNormal(0.2, 0.3), od.LogNormal(0.0, 0.4)


def _eval(fn, *laws, atoms, envelopes=True, monkeypatch=None):
    if not envelopes:
        monkeypatch.setattr(multienv, "rule", lambda *a, **k: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, atoms=atoms)
    if not envelopes:
        monkeypatch.undo()
    return r


# x used twice: the joint grid is shared, the law-level composition does not apply, only the cellwise bound.
LOGNORMAL_CASES = [
    # (function, exact law of the output: a LogNormal with these parameters)
    (lambda x, y, z: x**2 * y**1.5 / z / x, (0.3, math.sqrt(0.25 + 2.25 * 0.09 + 0.16))),
    (lambda x, y, z: (x * y / z) * (x / y), (0.0, math.sqrt(4 * 0.25 + 0.16))),
    (lambda x, y, z: x * y**-2 * z**0.5 / x**0.5, (-0.4, math.sqrt(0.0625 + 4 * 0.09 + 0.04))),
]


@pytest.mark.parametrize("case", range(len(LOGNORMAL_CASES)))
def test_lognormal_products_finite_and_sound(case, monkeypatch):
    fn, (mu, sigma) = LOGNORMAL_CASES[case]
    exact = od.LogNormal(mu, sigma)
    # x stays used twice (opgraph.dcg.cancel would take the x / x out and leave a product of independent factors),
    # and the product stays a grid (opgraph.dcg.exactlaw would replace the whole monomial by its exact law)
    tok = cancel.ENABLED.set(False)
    tok_x = exactlaw.ENABLED.set(False)
    try:
        tok_e = elastic.ENABLED.set(False)  # the log-space box bound is finite on these tails too
        try:
            assert math.isinf(_eval(fn, X, Y, Z, atoms=8, envelopes=False, monkeypatch=monkeypatch).w1_bound)
        finally:
            elastic.ENABLED.reset(tok_e)
        bounds = []
        for atoms in (4, 8, 16):
            r = _eval(fn, X, Y, Z, atoms=atoms)
            true = float(od.w1_to_continuous(r.atoms, r.weights, exact))
            assert math.isfinite(r.w1_bound) and r.w1_bound >= true > 0
            bounds.append(r.w1_bound)
    finally:
        exactlaw.ENABLED.reset(tok_x)
        cancel.ENABLED.reset(tok)
    assert bounds[-1] < bounds[0]  # the tail boxes' mass shrinks with the atoms
    r = _eval(fn, X, Y, Z, atoms=8)  # with the rewrites: sound too
    assert r.w1_bound >= float(od.w1_to_continuous(r.atoms, r.weights, exact))


def test_gamma_products_finite_and_sound(monkeypatch):
    g1, g2, g3 = od.Gamma(3.0, 1.0), od.Gamma(2.0, 0.5), od.Gamma(4.0, 1.0)

    def fn(x, y, z):
        return x * y / z + x / (y + z) * y

    assert math.isinf(_eval(fn, g1, g2, g3, atoms=8, envelopes=False, monkeypatch=monkeypatch).w1_bound)
    rng = np.random.default_rng(5)
    n = 2**20
    x, y, z = rng.gamma(3.0, 1.0, n), rng.gamma(2.0, 0.5, n), rng.gamma(4.0, 1.0, n)
    sample = fn(x, y, z)
    for atoms in (4, 16):
        r = _eval(fn, g1, g2, g3, atoms=atoms)
        w1 = float(od.w1_discrete(r.atoms, r.weights, sample, np.ones(n)))
        assert math.isfinite(r.w1_bound) and r.w1_bound >= w1 > 0


def test_denominator_with_density_at_zero_stays_infinite():
    # E[1/Z] = inf for an Exponential (Gamma(1)) Z: no finite bound may appear
    r = _eval(lambda x, z: x * x / z, X, od.Gamma(1.0, 1.0), atoms=8)
    assert math.isinf(r.w1_bound)


def test_rules_and_moments():
    a, b = multienv.variable(0, True), multienv.variable(1, True)
    s = multienv.rule("add", [a, b], [None, None], [True, True])
    r = multienv.rule("div", [b, s], [None, None], [True, True])  # y / (x + y) <= y / x
    assert r is not None and r.terms == ((1.0, ((0, "power", -1.0), (1, "power", 1.0))),)
    assert (
        multienv.rule("div", [a, multienv.rule("sub", [a, b], [None, None], [True, True])], [None] * 2, [1, 0]) is None
    )
    sn = multienv.rule("sin", [a], [None], [True])
    assert sn.terms == ((1.0, ()),) and sn.low is None and not sn.nonneg
    p = multienv.rule("pow", [s, multienv.constant(2.0)], [None, 2.0], [True, True])
    assert sorted(c for c, _ in p.terms) == [2.0, 2.0]  # (x + y)^2 <= 2 x^2 + 2 y^2
    lo, hi, w = np.array([1.0, 0.0]), np.array([2.0, 1.0]), np.array([0.5, 0.5])
    np.testing.assert_allclose(multienv.factor_moment("power", 2.0, lo, hi, w), [2.0, 0.5])
    assert multienv.factor_moment("power", -1.0, lo, hi, w)[1] == math.inf
    m = np.array([1.0, 2.0])
    bb = multienv.box_bound(m, np.array([1.0, 1.0]), np.array([0.5, 0.0]), np.array([0.0, 0.0]), np.array([9.0, 9.0]))
    assert bb[0] == pytest.approx(1.5) and bb[1] == 0.0


BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "dcg"


def test_damped_oscillator_finite_and_sound():
    pytest.importorskip("uqtestfuns")
    pytest.importorskip("scipy")
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("uq_bench", BENCH / "uq.py")
        uq = importlib.util.module_from_spec(spec)
        sys.modules["uq_bench"] = uq
        spec.loader.exec_module(uq)
        case = next(c for c in uq.make_cases() if c.id == "DampedOsc")
        ref = uq.load_reference(case)
        for atoms in (2, 4):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = case.evaluate(atoms=atoms)
            assert math.isfinite(r.w1_bound)
            assert r.w1_bound >= ref.w1(r.atoms, r.weights) + ref.err
    finally:
        sys.modules.pop("uq_bench", None)
        sys.path.remove(str(BENCH))


def test_amgm_lower_bound_of_a_sum_is_valid_and_tight_at_the_typical_point():
    a, b = multienv.variable(0, True), multienv.variable(1, True)
    s = multienv.rule("add", [a, b], [None, None], [True, True], {0: 1.0, 1: 1.0})
    assert s.low[0] == pytest.approx(2.0) and s.low[1] == ((0, "power", 0.5), (1, "power", 0.5))  # 2 sqrt(x y)
    typ = {0: 2.0, 1: 0.5}
    s = multienv.rule("add", [a, b], [None, None], [True, True], typ)
    r = multienv.rule("reciprocal", [s], [None], [True], typ)
    ((c, facs),) = r.terms
    x, y = np.random.default_rng(2).lognormal(0, 2, (2, 10000))
    env = c * x ** facs[0][2] * y ** facs[1][2]
    assert np.all(env >= 1 / (x + y) * (1 - 1e-12))
    assert c * 2.0 ** facs[0][2] * 0.5 ** facs[1][2] == pytest.approx(1 / 2.5)
