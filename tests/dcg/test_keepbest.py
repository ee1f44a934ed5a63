"""The better of an exact-law rewrite and the program as written (:mod:`opgraph.dcg.keepbest`)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw, keepbest
from opgraph.dcg.w1 import w1_discrete

NN = [(0.0, 0.5), (0.3, 0.4), (-0.1, 0.6)]  # y1, z, y2 (mean, std)
LN = [(0.0, 0.3), (0.1, 0.2), (-0.2, 0.4)]  # x1, z, x2 (log-mean, log-std)
N_MC = 2**20


def _run(fn, laws, exact=True, keep=True, **kw):
    toks = [(exactlaw.ENABLED, exactlaw.ENABLED.set(exact)), (keepbest.ENABLED, keepbest.ENABLED.set(keep))]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(fn, *laws, **kw)
    finally:
        for var, tok in reversed(toks):
            var.reset(tok)


def _mc(fn, params, family, seed):
    """``fn`` on 2^20 scrambled Sobol points of the inputs' laws (two seeds: two independent references)."""
    from scipy.special import ndtri
    from scipy.stats import qmc

    z = ndtri(qmc.Sobol(len(params), scramble=True, seed=seed).random_base2(20)).T
    xs = [m + s * zk for (m, s), zk in zip(params, z, strict=True)]
    return fn(*(np.exp(x) if family == "L" else x for x in xs))


CASES = {
    # the program as written wins at 16 and 32 atoms (the Taylor box pass on its grid: 0.0625 against 0.103)
    "(y1+z+y2)*z": (lambda y1, z, y2: (y1 + z + y2) * z, "N"),
    "tanh(y1+z+y2)*z": (lambda y1, z, y2: np.tanh(y1 + z + y2) * z, "N"),
    # the rewrite wins (one 1D quantization's W1 in place of two first-order terms)
    "x1*z*x2 + z": (lambda x1, z, x2: x1 * z * x2 + z, "L"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("atoms", [8, 16])
def test_bound_is_the_smaller_of_rewrite_and_as_written(case, atoms):
    fn, fam = CASES[case]
    params = NN if fam == "N" else LN
    laws = [(od.Normal if fam == "N" else od.LogNormal)(m, s) for m, s in params]
    r = _run(fn, laws, atoms=atoms)
    rewrite = _run(fn, laws, keep=False, atoms=atoms)  # the exact-law rewrite alone (as before)
    written = _run(fn, laws, exact=False, atoms=atoms)  # no rewrite
    assert "exact_laws" in rewrite.info and "exact_laws" not in written.info
    lo = min(rewrite.w1_bound, written.w1_bound)
    assert r.w1_bound == pytest.approx(lo, rel=1e-9), (r.w1_bound, rewrite.w1_bound, written.w1_bound)
    pair = r.info["exact_law_pair"]
    used_rewrite = rewrite.w1_bound <= written.w1_bound
    assert pair["used"] == ("exact laws" if used_rewrite else "as written")
    # the other answer's sub-cell pass may stop early (its probe cannot win): its bound is at least its own alone
    assert pair["other_bound"] >= max(rewrite.w1_bound, written.w1_bound) * (1 - 1e-9)
    assert ("exact_laws" in r.info) == used_rewrite
    # the kept answer is the chosen graph's: its atoms are that evaluation's
    same = rewrite if used_rewrite else written
    np.testing.assert_allclose(np.sort(r.atoms), np.sort(same.atoms), rtol=1e-12, atol=1e-12)
    # sound: W1(answer, 2^20 Sobol points) <= bound + 3 x the reference's own error (two scrambles)
    a, b = _mc(fn, params, fam, 1), _mc(fn, params, fam, 2)
    ones = np.full(N_MC, 1.0 / N_MC)
    mc_err = w1_discrete(a, ones, b, ones)
    d = w1_discrete(r.atoms, r.weights, a, ones)
    assert d <= r.w1_bound + 3 * mc_err, (d, r.w1_bound, mc_err)
    # the band is the narrower of the two, and contains the reference CDF (up to its sampling error)
    ts = np.quantile(a, [0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.98])
    emp = np.searchsorted(np.sort(a), ts, side="right") / N_MC
    tol = 5.0 / np.sqrt(N_MC)
    for t, p in zip(ts, emp, strict=True):
        lo_t, hi_t = r.cdf_bounds(float(t))
        assert lo_t - tol <= p <= hi_t + tol, (t, lo_t, p, hi_t)


def test_the_as_written_answer_wins_where_the_rewrite_lost(point_mass_answers):
    """The measured case of issue 14's note: (y1 + z + y2) * z at 16 atoms, 0.103 with the rewrite alone.

    On the point-mass answers: with the box-linear mixture (on by default) the rewrite alone certifies 0.0163 (true
    W1 0.0026 against 2 x 2^20 Sobol points) and the pair has nothing left to win.
    """
    fn, _ = CASES["(y1+z+y2)*z"]
    laws = [od.Normal(m, s) for m, s in NN]
    r = _run(fn, laws, atoms=16)
    rewrite = _run(fn, laws, keep=False, atoms=16)
    assert r.w1_bound < 0.8 * rewrite.w1_bound, (r.w1_bound, rewrite.w1_bound)
    assert r.info["exact_law_pair"]["used"] == "as written"
    assert r.info["exact_law_pair"]["exact_laws"]  # what the rewrite replaced is still recorded


def test_whole_output_law_is_not_paired():
    """A whole-output exact law is not evaluated as written (the cost guard: it is the exact law, quantized)."""
    laws = [od.LogNormal(m, s) for m, s in LN]
    r = _run(lambda x1, z, x2: x1 * z * x2, laws, atoms=8)
    assert "exact_laws" in r.info and "exact_law_pair" not in r.info


def test_cost_guard_skips_as_written_grids_that_need_compression():
    # 6 inputs at 16 atoms: the grid as written (2^24) needs compressions under max_joint = 2^20, the rewrite's does not
    laws = [od.LogNormal(0.0, 0.2)] * 5 + [od.Uniform(0.0, 1.0)]
    r = _run(lambda a, b, c, d, e, u: a * b * c * d * e + u, laws, atoms=16, max_joint=2**20)
    assert "exact_laws" in r.info and "exact_law_pair" not in r.info


def test_switch_travels_with_the_others():
    from opgraph.dcg import switches

    assert switches.capture()["keep_best"] is True
    with switches.scope({"keep_best": False}):
        assert keepbest.ENABLED.get() is False
    assert keepbest.ENABLED.get() is True


def _oakley(x):
    return 5.0 + x + np.cos(x)  # Oakley & O'Hagan's 1-D function: increasing (g' = 1 - sin x >= 0)


def _oakley_cdf():
    from scipy.special import ndtr

    xs = np.linspace(-40.0, 40.0, 4_000_001)
    gs = _oakley(xs)  # non-decreasing: P(g(X) <= t) = P(X <= g^-1(t)), g^-1 by interpolation of the table
    return lambda t: ndtr(np.interp(np.asarray(t, float), gs, xs) / 4.0)


def _target_call(fn, law, eps, keep=True, **kwargs):
    tok = keepbest.ENABLED.set(keep)
    try:
        std = _run(fn, [law], atoms=8192).std()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(fn, law, target_w1=eps * std, progress=False, **kwargs), eps * std
    finally:
        keepbest.ENABLED.reset(tok)


def test_one_input_target_is_not_compressed_and_stays_sound():
    """Past 65,536 atoms a one-input target round had a node compressed to 256 atoms: 8x off the target."""
    from opgraph.dcg.w1 import w1_to_cdf

    law = od.Normal(0.0, 4.0)
    r, target = _target_call(_oakley, law, 1e-5)
    assert r.info["target_met"], (r.w1_bound, target)
    assert r.atoms.size > 65536 and not r.info.get("compressions")
    true = w1_to_cdf(r.atoms, r.weights, _oakley_cdf(), _oakley(-40.0), _oakley(40.0), n_grid=400_001)
    assert 0 < true <= r.w1_bound, (true, r.w1_bound)
    # as before (soft compressions at 256 atoms; the time budget's round planner, which also keeps whole grids
    # whole, off): the compressed round is worse, the target is missed
    old, _ = _target_call(_oakley, law, 1e-5, keep=False, max_seconds=None)
    assert not old.info["target_met"] and old.w1_bound > 2 * r.w1_bound


@pytest.mark.parametrize(
    ("fn", "law", "eps"),
    [
        (lambda x: np.sin(2 * np.pi * x / 10) + 0.2 * np.sin(2 * np.pi * x / 2.5), od.Uniform(0.0, 10.0), 1e-5),
        (lambda x: x * np.sin(x) / 10.0, od.Uniform(0.0, 10.0), 3e-5),  # Higdon's and Holsclaw's sines
    ],
)
def test_one_input_sines_meet_deep_targets(fn, law, eps):
    r, target = _target_call(fn, law, eps)
    assert r.info["target_met"] and r.w1_bound <= target


def test_soft_limit_is_kept_on_multi_input_and_long_outputs():
    from opgraph.dcg import engine
    from opgraph.graph import trace

    def plan(fn, *names, n=169577):
        g = engine.prepare(trace(fn, *names))
        sub, out = engine.restrict(g, g.outputs[0])
        sizes = {i: n for i, x in enumerate(sub.nodes) if x.op == "input"}
        return sub, out, 65536, sizes, 2**24, 256

    assert keepbest.soft_joint(*plan(lambda x, y: np.sin(x) * y + np.cos(x), "x", "y", n=512)) == 65536
    assert keepbest.soft_joint(*plan(lambda x: np.sin(x) * x + np.cos(x), "x")) is None

    def loop(p):  # 200 steps: without compressions 400x the work of the plan with them
        x = 1.0
        for _ in range(200):
            x = x + 0.01 * (-p * x + np.sin(x))
        return x

    assert keepbest.soft_joint(*plan(loop, "p")) == 65536
    with switches_off():
        assert keepbest.soft_joint(*plan(lambda x: np.sin(x) * x + np.cos(x), "x")) == 65536


def switches_off():
    from opgraph.dcg import switches

    return switches.scope({"keep_best": False})
