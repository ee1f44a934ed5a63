"""The box-linear mixture on by default (branch boxlin-on): the halved request and the time budget.

* Fixed atoms whose grid is reduced to fit ``max_joint`` (or compressed) also evaluate the halved request and keep
  the smaller bound per output (``api._mixture_smaller_request``, ``info["smaller_request"]``), so twice the atoms
  never give a worse bound there (docs/dcg.md, "More atoms with the mixture on").
* A ``target_w1`` call builds no mixture predicted to end past its ``max_seconds`` (``boxlinear.affordable``).
"""

from __future__ import annotations

import contextvars
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import api, boxlinear, fixedbudget, roundbudget, switches

from .sobolref import sobol_reference


def _no_separator(x, y, z):
    return x * y + y * z + z * x  # every pair shares an input: no node separates them


_LAWS = [od.Normal(1, 0.5), od.Uniform(0, 1), od.LogNormal(0, 0.3)]


def _run(fn, laws, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, progress=False, **kw)


@pytest.fixture(autouse=True)
def _box_linear_on():
    """The mixture on (the default since 2026-12-07) for every test here, whatever the environment set."""
    with switches.scope({"box_linear": True}):
        yield


def test_the_mixture_is_on_by_default_and_used():
    # on by default since 2026-12-07 (docs/dcg.md, "On by default")
    assert contextvars.Context().run(boxlinear.ENABLED.get) is True  # the ContextVar's own default
    assert switches.capture()["box_linear"] is True  # this module's fixture
    r = _run(lambda x, y, z: x * y + np.sin(z) * x, [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)], atoms=8)
    assert r.info["bound_method"] == "box-linear mixture"


def test_reduced_request_keeps_the_halved_answer_where_smaller():
    # 16 atoms fit max_joint = 2**13; 32 are reduced to 20 per input, whose mixture certifies a little more than
    # 16's (the 20-atom grid does not refine the 16-atom one): the halved request's answer is kept.
    small = _run(_no_separator, _LAWS, atoms=16, max_joint=2**13)
    big = _run(_no_separator, _LAWS, atoms=32, max_joint=2**13)
    twenty = _run(_no_separator, _LAWS, atoms=20, max_joint=2**13)  # the reduced grid, asked for directly
    assert "smaller_request" not in small.info and "smaller_request" not in twenty.info  # both fit: no halving
    note = big.info["smaller_request"]
    assert note["requested"] == {"x": 16, "y": 16, "z": 16}
    assert note["requested_grid_bound"] == pytest.approx(twenty.w1_bound, rel=1e-12)
    # the ceiling the halved call runs under changes no kept bound: the minimum of the two calls' own bounds
    assert big.w1_bound == pytest.approx(min(twenty.w1_bound, small.w1_bound), rel=1e-12)
    assert big.w1_bound <= small.w1_bound
    assert note["used"] == (small.w1_bound < twenty.w1_bound)
    if note["used"]:
        assert big.info["atoms_per_input"] == {"x": 16, "y": 16, "z": 16}
        assert np.array_equal(big.atoms, small.atoms)
    assert big.info["atoms_reduced"]["used"] == {"x": 20, "y": 20, "z": 20}  # this call's reduction, as warned
    # the kept answer's bound holds against a 2 x 2**16 Sobol reference
    ref, err = sobol_reference(lambda x, y, z: _no_separator(x, y, z), _LAWS)
    assert big.w1(ref) <= big.w1_bound + err


def test_halved_requests_with_the_same_grid_are_skipped(monkeypatch):
    # 64 and 32 per input are both reduced to 20: the halving goes on to 16 (a different grid) in one extra call.
    calls = []
    real = api._evaluate_graph

    def counted(graph, dists, **kw):
        calls.append(kw.get("atoms"))
        return real(graph, dists, **kw)

    monkeypatch.setattr(api, "_evaluate_graph", counted)
    r = _run(_no_separator, _LAWS, atoms=64, max_joint=2**13)
    assert r.info["smaller_request"]["requested"] == {"x": 16, "y": 16, "z": 16}
    assert calls[1:] == [{"x": 16, "y": 16, "z": 16}]


def test_no_halved_request_with_the_switch_off_or_where_the_grid_fits():
    with switches.scope({"box_linear": False}):
        r = _run(_no_separator, _LAWS, atoms=32, max_joint=2**13)
    assert "atoms_reduced" in r.info and "smaller_request" not in r.info
    fits = _run(_no_separator, _LAWS, atoms=16, max_joint=2**13)
    assert "smaller_request" not in fits.info


_PROGRAMS = {
    "no_separator": (_no_separator, _LAWS),
    "sines": (
        lambda x, y, z: np.sin(x + y) * z + x * np.cos(z),
        [od.Uniform(0, 2), od.Uniform(-1, 1), od.Uniform(0.5, 1.5)],
    ),
    "ratio": (lambda x, y, z: (x + y * z) / (2 + np.cos(y)), [od.Normal(0, 1), od.Uniform(0, 1), od.Uniform(1, 2)]),
}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hs.sampled_from(sorted(_PROGRAMS)), n=hs.integers(3, 10), slack=hs.floats(1.0, 7.9))
def test_twice_the_atoms_never_worse_when_the_grid_must_shrink(name, n, slack):
    # max_joint between n**3 and (2n)**3: n fits, 2n is reduced (the mixture on both).
    fn, laws = _PROGRAMS[name]
    max_joint = int(n**3 * slack)
    coarse = _run(fn, laws, atoms=n, max_joint=max_joint)
    fine = _run(fn, laws, atoms=2 * n, max_joint=max_joint)
    assert coarse.certified and fine.certified
    assert fine.w1_bound <= coarse.w1_bound * (1 + 1e-12), (name, n, max_joint, coarse.w1_bound, fine.w1_bound)


def test_target_calls_skip_a_mixture_past_their_time_budget(monkeypatch):
    fn, laws = _PROGRAMS["sines"]
    fixed = _run(fn, laws, atoms=8)
    target = 1.5 * fixed.w1_bound  # met by the first round's mixture, not by its point-mass answer
    assert fixed.info["bound_method"] == "box-linear mixture" and fixed.info["cellwise_bound"] > target
    on = _run(fn, laws, target_w1=target, max_seconds=30.0, atoms=8)
    assert on.info["bound_method"] == "box-linear mixture" and on.info["target_met"]
    monkeypatch.setattr(boxlinear, "SECONDS_PER_CELL", 1e6)  # every mixture predicted to take days
    off = _run(fn, laws, target_w1=target, max_seconds=30.0, atoms=8)
    assert off.info["bound_method"] != "box-linear mixture"
    # outside a target_w1 call there is no time budget: fixed atoms still build it (their own guard is
    # fixedbudget.SECONDS["box_linear"] at the measured SECONDS_PER_CELL: test_fixed_atoms_past_the_fixed_budget_...)
    assert roundbudget.current() is None and boxlinear.affordable(1e30)
    monkeypatch.undo()
    assert boxlinear.wanted(2**12, 3)
    with switches.scope({"box_linear": False}):
        assert not boxlinear.wanted(16, 3)
    assert _run(fn, laws, atoms=8).info["bound_method"] == "box-linear mixture"


def test_the_lattice_work_floor_grows_with_the_grid_so_more_atoms_never_raise_the_bound():
    # A linear program: the remainder is 0 and the bound is the lattice cost alone, set by the work step. With a
    # constant floor of 2**20 cells the step grew with the boxes' span: 0.0021 / 0.0048 / 0.0085 at 8 / 16 / 32.
    import scipy.stats as st

    from opgraph.dcg.w1 import w1_to_cdf

    bounds = []
    for n in (8, 16, 32):
        r = _run(lambda a, b, c: a + b + c, [od.Exponential(1)] * 3, atoms=n)
        assert r.info["bound_method"] == "box-linear mixture"
        true = w1_to_cdf(r.atoms, r.weights, st.gamma(3).cdf, 0.0, 60.0, n_grid=400_001)
        assert true <= r.w1_bound, (n, true, r.w1_bound)  # the exact law: Gamma(3)
        bounds.append(r.w1_bound)
    assert bounds[1] <= bounds[0] and bounds[2] <= bounds[1], bounds
    # the floor scales as the boxes' span under refinement: 2**(k-1) per doubling of the atoms (boxes 2**k)
    for k, n in ((2, 500), (3, 4096), (6, 2**12)):
        floor = [boxlinear.work_budget(b, k) - boxlinear.WORK_PER_BOX * b for b in (n, n * 2**k)]
        assert floor[1] == pytest.approx(2 ** (k - 1) * floor[0], rel=1e-5, abs=2)  # int rounding


def test_fixed_atoms_past_the_fixed_budget_build_no_mixture_and_keep_the_halved_answer(monkeypatch):
    # A fixed-atoms call has no max_seconds: a grid whose mixture is predicted past its fixed-atoms allowance gets the
    # point-mass answer, and the halved request (whose mixture fits) is evaluated too: the smaller bound is kept, so
    # twice the atoms never give a worse bound than the mixture of the smaller grid (OTL at 8 atoms: 2.7 -> 20.7 CPU s
    # for three mixtures before this guard).
    fn, laws = _PROGRAMS["sines"]
    names = {"x": 8, "y": 8, "z": 8}
    monkeypatch.setitem(fixedbudget.SECONDS, "box_linear", boxlinear.SECONDS_PER_CELL * boxlinear.work_budget(8**3, 3))
    assert boxlinear.within_fixed_budget(8**3, 3) and not boxlinear.within_fixed_budget(16**3, 3)
    assert not boxlinear.wanted(16**3, 3)
    small = _run(fn, laws, atoms=8)
    assert small.info["bound_method"] == "box-linear mixture" and "smaller_request" not in small.info
    with switches.scope({"box_linear": False}):
        points = _run(fn, laws, atoms=16)  # what the 16-atom grid certifies without a mixture
    big = _run(fn, laws, atoms=16)
    note = big.info["smaller_request"]
    assert note["requested"] == names
    assert note["requested_grid_bound"] == pytest.approx(points.w1_bound, rel=1e-12)  # no mixture on 16**3
    assert big.w1_bound == pytest.approx(min(points.w1_bound, small.w1_bound), rel=1e-12)
    assert big.w1_bound <= small.w1_bound * (1 + 1e-12)
    ref, err = sobol_reference(fn, laws)
    assert big.w1(ref) <= big.w1_bound + err
    # a target_w1 call has its own time budget (max_seconds): the fixed budget does not apply there
    monkeypatch.setitem(fixedbudget.SECONDS, "box_linear", 0.0)
    on = _run(fn, laws, target_w1=1.5 * small.w1_bound, max_seconds=30.0, atoms=8)
    assert on.info["bound_method"] == "box-linear mixture"
    assert _run(fn, laws, atoms=8).info["bound_method"] != "box-linear mixture"
