"""Log-linear box models (opgraph.dcg.loglinear): the box-linear mixture in the inputs' Normal coordinates.

Checks: per box the model's remainder is above a Monte Carlo estimate of ``E[|f(X) - L(U)| | box]`` (LogNormal inputs
with tails, Normal inputs in the linear coordinate, the oscillator's tuning ratio; random programs under hypothesis);
the truncated Normal cell offsets against SciPy; the engine takes the path (``info["box_linear"]["coordinates"]``),
never returns a larger bound than with the switch off, and stays above 2 x 2^17-point Sobol references of the exact
W1; the switch turns it off.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import elastic, loglinear, switches
from opgraph.dcg.distributions import LogNormal, Normal
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .logprograms import PARAMS, program
from .logprograms import laws as log_laws
from .sobolref import sobol_reference
from .test_centredlog import TUNED_LAWS, tuned_prog
from .test_elastic import _at_atoms, _grid, normal_prog, ratio_prog

RATIO_LAWS = [LogNormal(0.1, 0.3), LogNormal(-0.2, 0.25), LogNormal(-1.0, 0.5)]
NORMAL_LAWS = [Normal(0.3, 0.8), Normal(-0.5, 1.2)]


def _models(fn, laws, n):
    """The log-space pass's per-box models on the mean-split grid: (coef per axis, rest), the grid, atoms' values."""
    g = trace(fn, *[f"x{i}" for i in range(len(laws))])
    qs, cells, w = _grid(laws, n)
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(fn, qs)
    lin: dict = {}
    b = elastic.box_bound(g, g.outputs[0], list(range(len(laws))), dict(enumerate(laws)), cells, pt, w, shape, 0.0, lin)
    assert b is not None and "rest" in lin
    return lin, qs, pt, shape


def _coord(law, x):
    return np.log(x) if isinstance(law, LogNormal) else x


def _model_cost(fn, laws, lin, qs, pt, shape, m=2**20, seed=7):
    """Per box a Monte Carlo estimate of ``E[|f(X) - L(U)| | box]`` and its standard error (flat; NaN if empty)."""
    rng = np.random.default_rng(seed)
    x = [np.asarray(law.ppf(rng.uniform(size=m))) for law in laws]
    idx = tuple(np.clip(np.searchsorted(q.hi, x[j]), 0, q.atoms.size - 1) for j, q in enumerate(qs))
    flat = np.ravel_multi_index(idx, shape)
    model = np.broadcast_to(pt, shape).reshape(-1)[flat].astype(float)
    for j, (law, q) in enumerate(zip(laws, qs, strict=True)):
        c = np.asarray(lin["c"][j]).reshape(-1)[flat]
        model = model + c * (_coord(law, x[j]) - _coord(law, q.atoms[idx[j]]))
    d = np.abs(fn(*x) - model)
    size = int(np.prod(shape))
    cnt = np.bincount(flat, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(flat, d, size) / cnt
        se = np.sqrt(np.maximum(np.bincount(flat, d * d, size) / cnt - mean**2, 0.0) / cnt)
    return mean, se, cnt


def _check(fn, laws, n, m=2**20, seed=7, min_count=200):
    lin, qs, pt, shape = _models(fn, laws, n)
    rest = np.asarray(lin["rest"]).reshape(-1)
    fin = np.isfinite(rest)
    mean, se, cnt = _model_cost(fn, laws, lin, qs, pt, shape, m, seed)
    use = fin & (cnt >= min_count)  # boxes with enough samples for a conditional estimate
    assert use.any()
    assert np.all(rest[use] >= mean[use] - 5 * se[use] - 1e-12)
    return fin


@pytest.mark.parametrize("centre", ["gradient", "hull"])
@pytest.mark.parametrize(
    ("fn", "laws", "n"),
    [
        (ratio_prog, RATIO_LAWS, 4),
        (ratio_prog, RATIO_LAWS, 8),
        (normal_prog, NORMAL_LAWS, 8),
        (tuned_prog, TUNED_LAWS, 4),
        (tuned_prog, TUNED_LAWS, 8),
    ],
)
def test_remainder_is_above_the_models_cost_on_every_box(fn, laws, n, centre, monkeypatch):
    monkeypatch.setattr(loglinear, "CENTRE", centre)  # any slope gives a valid remainder (radii about it)
    fin = _check(fn, laws, n)
    assert fin.mean() > 0.3  # the models exist on a good part of the grid, tail boxes included


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(**PARAMS)
def test_remainder_holds_on_random_programs(p, q, c, s1, s2, n):
    fn, laws = program(p, q, c), log_laws(s1, s2)
    for centre in ("gradient", "hull"):
        old = loglinear.CENTRE
        loglinear.CENTRE = centre
        try:
            _check(fn, laws, n, m=2**18, seed=11)
        finally:
            loglinear.CENTRE = old


def test_cell_offsets_match_scipy_truncated_normals():
    from scipy.stats import truncnorm

    mu, s = 0.4, 0.7
    lo = np.array([-np.inf, -1.0, 0.2, 2.5, 6.0])
    hi = np.array([-1.0, 0.2, 2.5, np.inf, np.inf])
    at = np.array([-1.5, -0.3, 1.0, 2.8, 6.1])
    off, pad = loglinear.cell_mean_offset(mu, s, lo, hi, at)
    want = truncnorm((lo - mu) / s, (hi - mu) / s, loc=mu, scale=s).mean() - at
    assert np.all(np.abs(off - want) <= pad + 1e-9)
    assert np.all(pad < 1e-8)


@pytest.mark.parametrize(("fn", "laws", "n"), [(ratio_prog, RATIO_LAWS, 8), (tuned_prog, TUNED_LAWS, 8)])
def test_engine_takes_the_log_linear_mixture_soundly_and_never_worse(fn, laws, n):
    # the sub-box slope remainder (opgraph.dcg.subslope) is pinned off: this test's subject is the log-linear path
    with scope({"log_linear": False, "sub_slope": False}):
        before = od.evaluate(fn, *laws, atoms=n, progress=False)
    with scope({"sub_slope": False}):
        r = od.evaluate(fn, *laws, atoms=n, progress=False)
    assert r.info["bound_method"] == "box-linear mixture"
    assert r.info["box_linear"]["coordinates"] == "log"
    assert r.w1_bound < 0.8 * before.w1_bound  # ratio 0.80 -> 0.48, tuned 0.037 -> 0.016 when written
    ref, err = sobol_reference(fn, laws, log2=17)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1.0 / ref.size))
    assert r.w1_bound >= true - 3 * err
    assert abs(float(r.atoms @ r.weights) - float(ref.mean())) < r.w1_bound + 3 * err  # W1 bounds the mean's error


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=hs.floats(0.5, 2.0),
    s1=hs.floats(0.05, 0.5),
    s2=hs.floats(0.05, 0.5),
    s3=hs.floats(0.05, 0.5),
    n=hs.sampled_from([4, 6, 8]),
)
def test_engine_bound_is_sound_and_never_worse_on_random_lognormal_programs(a, s1, s2, s3, n):
    def fn(x, y, z):
        return np.sqrt(x / y) * (a + z) / (x + y * z)

    laws = [LogNormal(0.0, s1), LogNormal(0.3, s2), LogNormal(-0.2, s3)]
    with scope({"log_linear": False}):
        before = od.evaluate(fn, *laws, atoms=n, progress=False)
    r = od.evaluate(fn, *laws, atoms=n, progress=False)
    assert r.w1_bound <= before.w1_bound * (1 + 1e-12)
    ref, err = sobol_reference(fn, laws, log2=15)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1.0 / ref.size))
    assert r.w1_bound >= true - 3 * err


def test_switch_turns_it_off_and_is_registered():
    assert switches.capture()["log_linear"] is True
    with scope({"log_linear": False}):
        assert loglinear.ENABLED.get() is False
        r = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=8, progress=False)
    assert (r.info.get("box_linear") or {}).get("coordinates") is None
    with scope({"box_linear": False}):
        r = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=8, progress=False)
    assert r.info.get("box_linear") is None
