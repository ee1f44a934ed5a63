"""Finite certified bounds for tails that mix inputs: exp of a sum of independent parts, Box-Muller, log of a Uniform.

Each case has an exact output law; the true W1 is computed against it by Simpson's rule on a fine grid refined at
every atom (:func:`opgraph.dcg.w1.w1_to_cdf`).
"""

from __future__ import annotations

import contextvars
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

from opgraph import dcg as od
from opgraph.dcg import exactlaw
from opgraph.dcg.w1 import w1_to_cdf


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    """The grid's own certificates are checked here: the exact-law recognition (opgraph.dcg.exactlaw) is off.

    Sums of Normals and products of LogNormals have closed-form laws, which it would use instead.
    """
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off", default=False))


S2 = math.hypot(0.5, 0.3)

CASES = {
    "exp(x + y)": (
        lambda x, y: np.exp(x + y),
        [od.Normal(0, 0.5), od.Normal(0.2, 0.3)],
        (st.lognorm(S2, scale=math.exp(0.2)).cdf, 0.0, 60.0),
    ),
    "exp(x - y)": (
        lambda x, y: np.exp(x - y),
        [od.Normal(0, 0.5), od.Normal(0.2, 0.3)],
        (st.lognorm(S2, scale=math.exp(-0.2)).cdf, 0.0, 60.0),
    ),
    "2 ** (x + y)": (
        lambda x, y: np.exp2(x + y),
        [od.Normal(0, 0.5), od.Normal(0.2, 0.3)],
        (st.lognorm(S2 * math.log(2), scale=math.exp(0.2 * math.log(2))).cdf, 0.0, 60.0),
    ),
    "exp(x + y + z)": (
        lambda x, y, z: np.exp(x + y + z),
        [od.Normal(0, 0.5), od.Normal(0.2, 0.3), od.Normal(-0.1, 0.2)],
        (st.lognorm(math.sqrt(0.38), scale=math.exp(0.1)).cdf, 0.0, 80.0),
    ),
    "Box-Muller": (
        lambda u, v: np.sqrt(-2 * np.log(u)) * np.cos(2 * np.pi * v),
        [od.Uniform(0, 1), od.Uniform(0, 1)],
        (st.norm.cdf, -12.0, 12.0),
    ),
    "-log(u)": (lambda u: -np.log(u), [od.Uniform(0, 1)], (st.expon.cdf, 0.0, 60.0)),
    "u ** -0.5": (lambda u: u**-0.5, [od.Uniform(0, 1)], (st.pareto(2).cdf, 1.0, 1e6)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_finite_bound_covers_exact_w1_and_shrinks(name: str) -> None:
    fn, ins, (cdf, lo, hi) = CASES[name]
    bounds = []
    for atoms in (8, 32):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no UnboundedWarning
            r = od.evaluate(fn, *ins, atoms=atoms)
        true = w1_to_cdf(r.atoms, r.weights, cdf, lo, hi, n_grid=200_001)
        assert math.isfinite(r.w1_bound), name
        assert r.w1_bound >= true, (name, atoms, r.w1_bound, true)
        bounds.append(r.w1_bound)
    assert bounds[1] < bounds[0]


def test_exp_of_dependent_sum_stays_unbounded() -> None:
    """exp(x + x * x) shares x between the summands: no product rewrite; E exp(X + X^2) = inf for a N(0, 1)."""
    with pytest.warns(od.UnboundedWarning):
        r = od.evaluate(lambda x: np.exp(x + x * x), od.Normal(0, 1), atoms=16)
    assert math.isinf(r.w1_bound)


def test_exp_of_sum_with_infinite_mean_part_stays_unbounded() -> None:
    """exp(x + y) with y = z * z (E exp(Z^2) = inf): the rewrite needs both exponentials to have finite bounds."""
    with pytest.warns(od.UnboundedWarning):
        r = od.evaluate(lambda x, z: np.exp(x + z * z), od.Normal(0, 0.5), od.Normal(0, 1), atoms=16)
    assert math.isinf(r.w1_bound)


# subject: the tail product rule through a compression (the halved request answers uncompressed), not the mixture
@pytest.mark.usefixtures("point_mass_answers")
def test_exp_of_sum_through_a_compression() -> None:
    """exp(x + y + z) with the inner sum compressed: the product rule before it plus the regrouping's cost."""
    fn, ins, (cdf, lo, hi) = CASES["exp(x + y + z)"]
    r = od.evaluate(fn, *ins, atoms=64, max_joint=2**14, compress_atoms=128)
    assert r.info["compressions"], "the inner sum must be compressed for this test"
    true = w1_to_cdf(r.atoms, r.weights, cdf, lo, hi, n_grid=200_001)
    assert math.isfinite(r.w1_bound) and r.w1_bound >= true
    assert any("under exp" in k for k in r.bound_terms)
