"""Product-form envelopes through ``maximum`` / ``minimum`` (``|max(u, w)|, |min(u, w)| <= |u| + |w|``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import multienv


def _four_branch(x, y, p=6.0):  # uqtestfuns' FourBranch: the smallest of four limit states of two N(0, 1)
    b1 = 3.0 + 0.1 * (x - y) ** 2 - (x + y) / np.sqrt(2)
    b2 = 3.0 + 0.1 * (x - y) ** 2 + (x + y) / np.sqrt(2)
    return np.minimum(np.minimum(b1, b2), np.minimum(x - y + p, -x + y + p))


def test_rule_adds_the_operands_terms_and_keeps_what_is_sound():
    u, w = multienv.variable(0, True), multienv.variable(1, False)
    mx = multienv.rule("maximum", [u, w], [None, None], [True, False])
    mn = multienv.rule("minimum", [u, w], [None, None], [True, False])
    assert sorted(mx.terms) == sorted(mn.terms) == sorted(u.terms + w.terms)
    assert mx.low == u.low and mx.nonneg  # max(u, w) >= u > 0
    assert mn.low is None and not mn.nonneg  # min(u, w) may be negative


@pytest.mark.parametrize("atoms", [4, 8])
def test_min_of_branches_of_normals_has_a_finite_sound_bound(atoms):
    x, y = od.Normal(0, 1), od.Normal(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_four_branch, x, y, atoms=atoms)
    assert math.isfinite(r.w1_bound)  # was inf: the tail boxes had no envelope through np.minimum
    g = np.random.default_rng(11)
    ref = _four_branch(g.normal(size=2**20), g.normal(size=2**20))
    assert r.w1_bound >= od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 2e-3
