"""Box-linear mixture answer: more atoms never give a worse bound (issue 14 section 3), and the shared ceiling.

The mixture's lattice step follows the grid (``opgraph.dcg.boxlinear``: a work budget per box, no cap below 2**21
boxes), so its rounding cost falls with the cells instead of growing under a fixed cap (the damped oscillator
``x0 exp(-z w t) cos(...)`` certified 0.00045 at 64 atoms per input and 0.00058 at 128 under the old 2**25 cap).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from opgraph import dcg as od
from opgraph.dcg import boxlinear, fixedbudget, switches

PROGRAMS = {
    "product": (lambda x, y: x * y, [od.Uniform(1, 2), od.Uniform(0.5, 1.5)]),
    "sine_square": (lambda x, y: np.sin(x) + y**2, [od.Uniform(0, 2), od.Uniform(0, 1)]),
    "ratio_normal": (lambda x, y: x / (1.5 + np.cos(y)), [od.Normal(1.0, 0.2), od.Uniform(-1, 2)]),
    "three": (
        lambda x, y, z: x * y + np.sin(z) * x + y * z * z,
        [od.Uniform(0, 1), od.Uniform(1, 2), od.Uniform(-1, 1)],
    ),
    "oscillator": (
        lambda w, z, x0: x0 * (np.exp(-z * w * 10.0) * np.cos(w * np.sqrt(1 - z * z) * 10.0)),
        [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)],
    ),
}


def _bound(name: str, atoms: int) -> od.DistResult:
    fn, laws = PROGRAMS[name]
    with switches.scope({"box_linear": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *laws, atoms=atoms, progress=False)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=hs.sampled_from(sorted(PROGRAMS)),
    k=hs.sampled_from([2, 3, 4, 5, 6, 8, 12]),
)
def test_doubling_the_atoms_never_raises_the_bound(name, k):
    if len(PROGRAMS[name][1]) == 3 and k > 8:  # 24**3 boxes and up: seconds per call, covered by k <= 8
        k = 8
    coarse, fine = _bound(name, k), _bound(name, 2 * k)
    assert fine.w1_bound <= coarse.w1_bound * (1 + 1e-9), (name, k, coarse.w1_bound, fine.w1_bound)


def test_lattice_step_falls_with_the_atoms():
    # The step is set by the per-box work budget (or the remainder): it follows the cells down as atoms double.
    deltas = []
    for k in (8, 16, 32):
        r = _bound("three", k)
        assert r.info["bound_method"] == "box-linear mixture"
        deltas.append(r.info["box_linear"]["delta"])
    assert deltas[1] < deltas[0] and deltas[2] < deltas[1], deltas


def test_cap_on_the_work_no_longer_binds_at_the_default_max_joint():
    # the work budget per candidate box reaches the default max_joint (2**20 boxes) before the absolute cap
    assert boxlinear.WORK_PER_BOX * 2**20 + 2**20 <= boxlinear.MAX_WORK
    assert boxlinear.LATTICE_PER_BOX * 2**20 <= boxlinear.MAX_LATTICE


@pytest.mark.slow
def test_damped_oscillator_bound_falls_from_64_to_128_atoms(monkeypatch):
    # the regression that made the mixture opt-in: 0.00045 at 64 atoms per input, 0.00058 at 128 (cap 2**25).
    # The lattice rule itself is checked: no fixed-atoms cost guard (128 atoms: 2**20 boxes, past its budget).
    monkeypatch.setitem(fixedbudget.SECONDS, "box_linear", float("inf"))
    b64, b128 = (_bound("oscillator", k) for k in (64, 128))
    assert b64.info["bound_method"] == b128.info["bound_method"] == "box-linear mixture"
    # 128 is reduced to fit max_joint, so the call also evaluates the halved request (64) and keeps the smaller
    # bound (api._mixture_smaller_request): the reduced grid's own mixture bound is the one that must fall
    own = b128.info.get("smaller_request", {}).get("requested_grid_bound", b128.w1_bound)
    assert own < b64.w1_bound, (b64.w1_bound, own)
    assert b128.w1_bound <= b64.w1_bound


def _otl(rb1, rb2, rf, rc1, rc2, beta):
    """The OTL circuit as uqtestfuns writes it (the UQ suite's OTL case)."""
    vb1 = 12 * rb2 / (rb1 + rb2)
    denom = beta * (rc2 + 9) + rf
    return ((vb1 + 0.74) * beta * (rc2 + 9)) / denom + 11.35 * rf / denom + 0.74 * rf * beta * (rc2 + 9) / (rc1 * denom)


OTL_LAWS = [od.Uniform(50, 150), od.Uniform(25, 70), od.Uniform(0.5, 3), od.Uniform(1.2, 2.5), od.Uniform(0.25, 1.2)]
OTL_LAWS.append(od.Uniform(50, 300))


def _held_cases():
    three = [od.Uniform(1, 2), od.Uniform(0, 1), od.Uniform(-1, 1)]
    yield pytest.param(lambda x, y, z: x * y + x * np.sin(z) + 0.5 * x, three, 8, False, id="cancel-pair")
    yield pytest.param(lambda x, y, z: (x + y) * z + np.sin(x) * y, three, 8, False, id="sums")
    # OTL at 8 atoms: the cancellation pair's losing graph re-finishes after its sub-cell pass under the winner's
    # bound (times PAIR_SLACK). Before the slope remainder (taylor-slope) its mixture (0.117 against 0.062) was
    # skipped there (9.6 -> 6.9 CPU s, same bound); with it, no mixture of this call is held off, so only the
    # identity is checked (the skip itself: test_a_held_bound_below_the_mixture_skips_it).
    yield pytest.param(_otl, OTL_LAWS, 8, False, id="otl", marks=pytest.mark.slow)


@pytest.mark.parametrize(("fn", "laws", "atoms", "skips"), list(_held_cases()))
def test_held_bound_skips_only_mixtures_that_cannot_win(fn, laws, atoms, skips, monkeypatch):
    # An evaluation skips its mixture where its bound cannot go below a bound held for the same law (a pass's
    # ceiling, the output's earlier evaluations): the returned bound and answer are those of building every mixture.
    orig = boxlinear.answer
    skipped: list[float] = []

    def no_held(ev, graph, val, box_bound, bound, support=None, held=np.inf):
        return orig(ev, graph, val, box_bound, bound, support)

    def record(ev, graph, val, box_bound, bound, support=None, held=np.inf):
        got = orig(ev, graph, val, box_bound, bound, support, held)
        if got is None and orig(ev, graph, val, box_bound, bound, support) is not None:
            skipped.append(held)  # skipped because of the held bound (it would have been built)
        return got

    with switches.scope({"box_linear": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(boxlinear, "answer", no_held)
        full = od.evaluate(fn, *laws, atoms=atoms, progress=False)
        monkeypatch.setattr(boxlinear, "answer", record)
        got = od.evaluate(fn, *laws, atoms=atoms, progress=False)
    assert got.w1_bound == full.w1_bound
    assert np.array_equal(got.atoms, full.atoms) and np.array_equal(got.weights, full.weights)
    if skips:
        assert skipped  # the path is taken


def test_a_held_bound_below_the_mixture_skips_it(monkeypatch):
    # Every mixture this call builds is skipped when the caller holds a bound it cannot beat (0), and built without.
    orig = boxlinear.answer
    built: list[float] = []
    skipped: list[bool] = []

    def record(ev, graph, val, box_bound, bound, support=None, held=np.inf):
        got = orig(ev, graph, val, box_bound, bound, support, held)
        if got is not None:
            built.append(float(got[2]))
            skipped.append(orig(ev, graph, val, box_bound, bound, support, 0.0) is None)
        return got

    three = [od.Uniform(1, 2), od.Uniform(0, 1), od.Uniform(-1, 1)]
    with switches.scope({"box_linear": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(boxlinear, "answer", record)
        od.evaluate(lambda x, y, z: (x + y) * z + np.sin(x) * y, *three, atoms=8, progress=False)
    assert built and all(skipped)
