"""Sub-box remainder of the log-linear models (opgraph.dcg.logsubbox): boxes cut into pieces in log space.

Checks: per box the refined model remainder is above a Monte Carlo estimate of ``E[|f(X) - L(U)| | box]`` for the
same model, and the refined point-mass bound above one of ``E[|f(X) - V'| | box]`` (LogNormal inputs with tails, the
oscillator's tuning ratio; random programs under hypothesis); the pieces lower the remainder on most boxes; the
engine takes the path, never returns a larger bound than with the switch off, and stays above a Sobol reference of
the exact W1; the switch travels.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import elastic, logsubbox, switches
from opgraph.dcg.distributions import LogNormal
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .logprograms import PARAMS, box_costs, program
from .logprograms import laws as log_laws
from .sobolref import sobol_reference
from .test_centredlog import TUNED_LAWS, tuned_prog
from .test_elastic import _at_atoms, _grid, ratio_prog
from .test_loglinear import RATIO_LAWS, _model_cost


def _refined(fn, laws, n, pieces=3, cut=2):
    """The models of the log-space pass and the same after :func:`logsubbox.refine` on every box (tails too)."""
    g = trace(fn, *[f"x{i}" for i in range(len(laws))])
    qs, cells, w = _grid(laws, n)
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(fn, qs)
    lin: dict = {}
    b = elastic.box_bound(g, g.outputs[0], list(range(len(laws))), dict(enumerate(laws)), cells, pt, w, shape, 0.0, lin)
    assert b is not None and "rest" in lin
    rest0 = np.array(lin["rest"], dtype=float)
    held = np.full(shape, np.inf)  # the point-mass bound alone: no other bound to keep
    old = (logsubbox.PIECES, logsubbox.AXES_CUT, logsubbox.MIX_TAILS)
    logsubbox.PIECES, logsubbox.AXES_CUT, logsubbox.MIX_TAILS = pieces, cut, True
    try:
        info = logsubbox.refine(
            g,
            g.outputs[0],
            list(range(len(laws))),
            dict(enumerate(laws)),
            cells,
            lin["order"],
            pt,
            np.broadcast_to(lin["pt_err"], shape),
            np.broadcast_to(w, shape),
            shape,
            lin,
            held,
            max_sub=2**22,
        )
    finally:
        logsubbox.PIECES, logsubbox.AXES_CUT, logsubbox.MIX_TAILS = old
    assert info is not None
    return lin, rest0, held, qs, pt, shape, np.broadcast_to(w, shape)


def _point_cost(fn, laws, qs, pt, shape, m=2**20, seed=7):
    """Per box a Monte Carlo estimate of ``E[|f(X) - V'| | box]`` and its standard error (flat)."""
    flat, d, size = box_costs(fn, laws, qs, pt, shape, m, seed)
    cnt = np.bincount(flat, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(flat, d, size) / cnt
        se = np.sqrt(np.maximum(np.bincount(flat, d * d, size) / cnt - mean**2, 0.0) / cnt)
    return mean, se, cnt


def _check(fn, laws, n, m=2**20, seed=7, min_count=200, pieces=3, cut=2):
    lin, rest0, held, qs, pt, shape, w = _refined(fn, laws, n, pieces, cut)
    rest = np.asarray(lin["rest"]).reshape(-1)
    mean, se, cnt = _model_cost(fn, laws, lin, qs, pt, shape, m, seed)
    use = np.isfinite(rest) & (cnt >= min_count)
    assert use.any()
    assert np.all(rest[use] >= mean[use] - 5 * se[use] - 1e-12)
    pm = (held / np.where(w > 0, w, 1.0)).reshape(-1)
    pmean, pse, _ = _point_cost(fn, laws, qs, pt, shape, m, seed)
    use_p = np.isfinite(pm) & (cnt >= min_count)
    assert use_p.any()
    assert np.all(pm[use_p] >= pmean[use_p] - 5 * pse[use_p] - 1e-12)
    return rest0.reshape(-1), rest


@pytest.mark.parametrize(
    ("fn", "laws", "n", "pieces", "cut"),
    [
        (ratio_prog, RATIO_LAWS, 4, 3, 2),
        (ratio_prog, RATIO_LAWS, 8, 2, 3),
        (tuned_prog, TUNED_LAWS, 4, 3, 2),
        (tuned_prog, TUNED_LAWS, 8, 4, 1),
    ],
)
def test_refined_bounds_are_above_the_costs_on_every_box(fn, laws, n, pieces, cut):
    rest0, rest = _check(fn, laws, n, pieces=pieces, cut=cut)
    fin = np.isfinite(rest0)
    assert np.all(rest[fin] <= rest0[fin])  # the smaller of the two remainders per box
    assert np.mean(rest[fin] < rest0[fin]) > 0.5  # the pieces lower it on most boxes (the path is taken)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    **PARAMS,
    pieces=hs.integers(2, 4),
    cut=hs.integers(1, 2),
)
def test_refined_bounds_hold_on_random_programs(p, q, c, s1, s2, n, pieces, cut):
    fn, laws = program(p, q, c), log_laws(s1, s2)
    _check(fn, laws, n, m=2**18, seed=11, pieces=pieces, cut=cut)


@pytest.mark.parametrize(
    ("fn", "laws", "n"), [(ratio_prog, RATIO_LAWS, 4), (tuned_prog, TUNED_LAWS, 4), (tuned_prog, TUNED_LAWS, 8)]
)
def test_engine_takes_the_sub_boxes_soundly_and_never_worse(fn, laws, n):
    with scope({"log_sub_box": False}):
        before = od.evaluate(fn, *laws, atoms=n, progress=False)
    r = od.evaluate(fn, *laws, atoms=n, progress=False)
    assert r.w1_bound <= before.w1_bound * (1 + 1e-12)
    assert r.w1_bound < 0.95 * before.w1_bound  # ratio 2.77 -> 2.00, tuned 0.313 -> 0.216 and 0.0153 -> 0.0141
    assert r.info["box_linear"]["coordinates"] == "log"
    assert r.info["box_linear"]["sub_box"]["rest_after"] < r.info["box_linear"]["sub_box"]["rest_before"]
    ref, err = sobol_reference(fn, laws, log2=17)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1.0 / ref.size))
    assert r.w1_bound >= true - 3 * err


def test_switch_turns_it_off_and_is_registered():
    assert switches.capture()["log_sub_box"] is True
    with scope({"log_sub_box": False}):
        assert logsubbox.ENABLED.get() is False
        r = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=8, progress=False)
    assert "sub_box" not in (r.info.get("box_linear") or {})


def test_pieces_partition_the_cells():
    law = LogNormal(0.3, 0.4)
    q = law.quantize(4, "meansplit")
    lo, hi, pt, cut = logsubbox._pieces(0.3, 0.4, q.lo, q.hi, q.atoms, 3)
    assert np.all(cut)
    assert np.all(lo[:, 0] == q.lo) and np.all(hi[:, -1] == q.hi)
    assert np.all(hi[:, :-1] == lo[:, 1:])
    assert np.all((lo <= pt) & (pt <= hi))
    mass = law.cdf(hi) - law.cdf(lo)
    assert np.allclose(mass / mass.sum(axis=1, keepdims=True), 1 / 3, atol=1e-9)
