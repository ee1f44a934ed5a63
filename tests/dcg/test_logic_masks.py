"""Jumps through truth ops and boolean masks: certified W1 bounds hold against exact laws and Sobol references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm, qmc

from opgraph import dcg as od
from opgraph.graph import vectorized


def _sobol_reference(fn, icdfs, log2=15):
    """Two scrambles of ``2**log2`` Sobol points of ``fn`` (vectorised): pooled sorted sample, its W1 error."""
    reps = []
    for s in range(2):
        u = np.clip(qmc.Sobol(len(icdfs), scramble=True, seed=11 + s).random_base2(log2), 1e-12, 1 - 1e-12)
        xx = np.column_stack([f(u[:, k]) for k, f in enumerate(icdfs)])
        reps.append(np.sort(np.asarray(fn(xx), dtype=float).reshape(len(xx))))
    err = float(np.mean(np.abs(reps[0] - reps[1]))) / 2
    return np.sort(np.concatenate(reps)), err


def _check_sound(fn, laws, icdfs, atoms):
    r = od.evaluate(vectorized(fn), *laws, atoms=atoms)
    assert r.certified and math.isfinite(r.w1_bound), r.w1_bound
    ref, err = _sobol_reference(fn, icdfs)
    true = float(od.w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)))
    assert r.w1_bound >= true - 3 * err, (r.w1_bound, true, err)
    return r, true


def _union_cut(xx):
    yy = np.exp(2.0 * (xx[:, 0] + xx[:, 1]))
    yy[(xx[:, 0] > 0.4) | (xx[:, 1] > 0.7)] = 0.0
    return yy


@pytest.mark.parametrize("atoms", [3, 4, 8, 16])
def test_union_of_jumps_on_uniforms_bound_holds_and_the_cdf_band_holds_the_exact_jump(atoms):
    laws = [od.Uniform(0, 1), od.Uniform(0, 1)]
    r, _ = _check_sound(_union_cut, laws, [lambda u: u, lambda u: u], atoms)
    lo, hi = r.cdf_bounds(0.0)
    assert lo <= 1 - 0.4 * 0.7 <= hi  # P(Y <= 0) = P(X > .4 or Y > .7), exactly


def _normal_jumps(xx):
    x, y = xx[:, 0], xx[:, 1]
    out = np.zeros(len(xx))
    inside = ~(x > 0.3) & (y > -0.5)
    out[inside] = x[inside] * y[inside]
    out[~inside] = 1.0 + 0.5 * x[~inside]
    return out


@pytest.mark.parametrize("atoms", [4, 8, 16])
def test_masked_branches_of_normal_inputs_bound_holds(atoms):
    laws = [od.Normal(0, 1), od.Normal(0.2, 0.7)]
    _check_sound(_normal_jumps, laws, [norm(0, 1).ppf, norm(0.2, 0.7).ppf], atoms)


@pytest.mark.parametrize("atoms", [4, 16])
def test_np_where_jump_of_one_normal_input_bound_holds(atoms):
    def fn(xx):  # tail cells: |where(c, u, w)| <= |u| + |w| (closed-form partial moments)
        return np.where(xx[:, 0] > 0.5, xx[:, 0] ** 2, 1 - xx[:, 0])

    _check_sound(fn, [od.Normal(0, 1)], [norm(0, 1).ppf], atoms)


def test_bound_shrinks_with_atoms_on_a_jump():
    laws = [od.Uniform(0, 1), od.Uniform(0, 1)]
    bounds = [od.evaluate(vectorized(_union_cut), *laws, atoms=a).w1_bound for a in (4, 16, 64)]
    assert bounds[2] < bounds[0]


def test_truth_ops_of_random_variables_give_the_exact_bernoulli_within_the_bound():
    X, Y = od.Uniform(0, 1), od.Uniform(0, 1)
    for expr, p in [
        ((X > 0.5) | (Y > 0.25), 1 - 0.5 * 0.25),
        ((X > 0.5) & ~(Y > 0.25), 0.5 * 0.25),
        ((X > 0.5) ^ (Y > 0.25), 0.5 * 0.25 + 0.5 * 0.75),
    ]:
        r = expr.evaluate(atoms=7)
        true = float(od.w1_discrete(r.atoms, r.weights, np.array([0.0, 1.0]), np.array([1 - p, p])))
        assert r.w1_bound >= true - 1e-12
        assert r.mean() == pytest.approx(p, abs=r.w1_bound + 1e-12)


def test_bitwise_op_of_a_value_other_than_0_and_1_names_the_op_and_the_fix():
    with pytest.raises(od.DistError, match=r"bitwise_or \(\|\) of a value other than 0 and 1.*np\.logical_or"):
        od.evaluate(lambda x: np.floor(x) | (x > 1.0), od.Uniform(0, 3), atoms=8)
