"""Exact cell second moments of Uniform inputs (``opgraph.dcg.cellm2``, switch ``exact_cell_m2``).

The bound ``E[(Z - a)^2; cell]`` must cover the exact integral (computed in 50-digit arithmetic) on every cell,
including atoms off the cell's centre and cells clipped by the support, and stay within rounding of it; the
quantizer's ``m2`` must fall from the generic ``max|d| E|d|`` (1.5x on a centred uniform cell) to the exact value
with the switch on, and the Taylor box bound that reads it must still hold on every box against samples.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import cellm2, switches, taylor
from opgraph.graph import trace


def _exact(l: float, a: float, r: float) -> mpmath.mpf:
    with mpmath.workdps(50):
        lc, rc = (mpmath.mpf(min(max(x, 0.0), 1.0)) for x in (l, r))
        am = mpmath.mpf(a)
        if rc <= lc:
            return mpmath.mpf(0)
        return ((rc - am) ** 3 - (lc - am) ** 3) / 3


@pytest.mark.parametrize(
    ("l", "a", "r"),
    [
        (0.0, 0.125, 0.25),
        (0.25, 0.3, 0.5),
        (0.75, 0.99, 1.0),
        (-1.0, 0.1, 0.2),  # clipped below
        (0.9, 0.95, 2.0),  # clipped above
        (0.5, 0.5, 0.5 + 1e-9),  # a narrow cell (the atom at its end)
        (0.3, 0.2, 0.4),  # an atom outside the cell
    ],
)
def test_uniform_m2_covers_the_exact_integral(l, a, r):
    got = float(cellm2.uniform_m2(np.array([l]), np.array([a]), np.array([r]))[0])
    ex = _exact(l, a, r)
    assert got >= ex
    assert got <= float(ex) * (1 + 1e-5)  # within the pads (the narrow cell's |m - a| pad is 4e-6 of it)


@pytest.mark.parametrize("n", [2, 4, 7, 16])
@pytest.mark.parametrize("method", ["quantile", "meansplit"])
def test_quantizer_m2_exact_with_the_switch_and_sound(n, method):
    law = od.Uniform(-2.0, 5.0)
    with switches.scope({"exact_cell_m2": False}):
        old = law.quantize(n, method)
    with switches.scope({"exact_cell_m2": True}):
        new = law.quantize(n, method)
    assert np.array_equal(old.atoms, new.atoms) and np.array_equal(old.err, new.err)
    assert np.all(new.m2 <= old.m2)
    s = 7.0
    for lo, hi, x, m2 in zip(new.lo, new.hi, new.atoms, new.m2, strict=True):
        ex = float(_exact((lo + 2.0) / s, (x + 2.0) / s, (hi + 2.0) / s)) * s * s
        assert m2 >= ex * (1 - 1e-12)  # the exact integral in X units (its own conversion rounds too)
        assert m2 <= ex * (1 + 1e-6) + 1e-15
    # a centred uniform cell: the generic bound is 1.5x the exact one
    if method == "quantile":
        assert np.allclose(old.m2 / new.m2, 1.5, rtol=1e-6)


def test_switch_is_registered():
    assert "exact_cell_m2" in switches.capture()
    assert cellm2.ENABLED.get() is True


def test_taylor_box_bound_with_exact_m2_holds_against_samples():
    # exp(x + y) * z on uniform inputs at 4 atoms: the Hessian form reads E d^2 on its diagonal; every box is sampled
    # 4,000 times and the bound must cover the sample mean of |f(X) - f(x')| (5 standard errors).
    def fn(x, y, z):
        return np.exp(x + y) * z

    laws = [od.Uniform(0, 1), od.Uniform(0, 1), od.Uniform(1, 2)]
    g = trace(fn, "x", "y", "z")
    out = g.outputs[0]
    ids = [n.id for n in g.nodes if n.op == "input"]
    qs = [law.quantize(4, "quantile") for law in laws]
    cells = {a: (q.lo, q.hi, q.atoms) for a, q in zip(ids, qs, strict=True)}
    moments = {a: (q.weights, q.err, q.bias, q.m2) for a, q in zip(ids, qs, strict=True)}
    w = qs[0].weights[:, None, None] * qs[1].weights[None, :, None] * qs[2].weights[None, None, :]
    pt = fn(qs[0].atoms[:, None, None], qs[1].atoms[None, :, None], qs[2].atoms[None, None, :])
    with switches.scope({"exact_cell_m2": True}):
        tb = taylor.box_bound(g, out, tuple(ids), pt, cells, moments, w)
    assert tb is not None and np.all(np.isfinite(tb))
    rng = np.random.default_rng(5)
    m = 4000
    for idx in np.ndindex(4, 4, 4):
        xs = [rng.uniform(q.lo[i], q.hi[i], m) for q, i in zip(qs, idx, strict=True)]
        dev = np.abs(fn(*xs) - pt[idx]) * w[idx]
        assert tb[idx] >= dev.mean() - 5 * dev.std() / math.sqrt(m)
