"""Half-line axes skipped where f is exactly log-linear (opgraph.dcg.tailaxis), for the geometric tail pieces.

Checks: the whole-box slope enclosure of an input entering as a power times the rest (``sqrt(s) * g(x, y, z)``) is a
point on every box, half-line cells included, and the others' are not; the first half-line, non-exact axis in the
path's order is chosen; on such a program the tail pass skips the boxes whose only half-line is that input, its
per-box bounds stay above Monte Carlo costs, the engine's bound is lower than with the switch off where the pass's
budget binds, and stays above
a Sobol reference of the exact W1; the switch is registered and turns it off.
"""

from __future__ import annotations

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import switches, tailaxis, tailpieces
from opgraph.dcg.distributions import LogNormal
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference
from .test_elastic import _grid, ratio_prog
from .test_tailpieces import HEAVY_LAWS, _check

#: ratio_prog's heavy laws and a fourth input entering as sqrt(s) (the damped oscillator's S0): heavy tails.
S_LAWS = [*HEAVY_LAWS, LogNormal(0.2, 0.4)]


def s_prog(x, y, z, s):
    """``sqrt(s)`` times the ratio program: exactly log-linear in ``s`` (slope 1/2 in ``log s``)."""
    return np.sqrt(s) * ratio_prog(x, y, z)


def test_exact_axes_finds_the_power_input_on_every_box():
    g = trace(s_prog, "x0", "x1", "x2", "x3")
    qs, cells, _ = _grid(S_LAWS, 4)
    shape = tuple(q.atoms.size for q in qs)
    idx = np.unravel_index(np.arange(int(np.prod(shape))), shape)
    ex = tailaxis.exact_axes(g, g.outputs[0], [0, 1, 2, 3], cells, idx)
    assert ex.shape == (int(np.prod(shape)), 4)
    assert ex[:, 3].all()  # sqrt(s): the slope 1/2 on every box, the half-line cells of s included
    assert not ex[:, :3].any(axis=0).all()  # the ratio program's inputs: wide slopes somewhere
    assert np.mean(ex[:, 0]) < 0.5


def test_first_cut_skips_exact_axes_in_path_order():
    half = np.array([[True, False, True], [False, False, True], [True, True, False], [False, False, False]])
    exact = np.array([[False, False, True], [False, False, True], [True, False, False], [False, False, False]])
    order = [2, 0, 1]
    assert tailaxis.first_cut(half, exact, order).tolist() == [0, -1, 1, -1]
    assert tailaxis.first_cut(half, np.zeros_like(exact), order).tolist() == [2, 2, 0, -1]


def test_piece_bounds_stay_above_the_costs_with_exact_axes_skipped():
    whole, piece = _check(s_prog, S_LAWS, 4, m=2**19)
    assert np.isfinite(piece).any()


def test_engine_skips_the_exact_boxes_soundly_and_lowers_the_bound(monkeypatch):
    # s with 2 atoms (every box has a half-line cell of s): with a budget that binds, the pass without the switch
    # spends it cutting s on the boxes whose only half-line is s's, which gains nothing
    monkeypatch.setattr(tailpieces, "FIXED_MAX_SUB_BOXES", 120)
    atoms = {"x": 6, "y": 6, "z": 6, "s": 2}
    # radial_slope off: with the radial slope forms (opgraph.dcg.radial) the linear models win these boxes (bound
    # 2.39) and the log-space sub-box pass, this test's subject, does not run
    with scope({"tail_axis": False, "radial_slope": False}):
        before = od.evaluate(s_prog, *S_LAWS, atoms=atoms, progress=False)
    with scope({"radial_slope": False}):
        r = od.evaluate(s_prog, *S_LAWS, atoms=atoms, progress=False)
    sub = r.info["box_linear"]["sub_box"]
    assert sub["tail_exact_skipped"] > 0
    assert r.w1_bound < before.w1_bound  # measured 2.5225 -> 2.5059
    ref, err = sobol_reference(s_prog, S_LAWS, log2=17)
    for res in (before, r):
        true = w1_discrete(res.atoms, res.weights, ref, np.full(ref.size, 1.0 / ref.size))
        assert res.w1_bound >= true - 3 * err


def test_switch_is_registered_and_turns_it_off():
    assert switches.capture()["tail_axis"] is True
    with scope({"tail_axis": False}):
        assert tailaxis.ENABLED.get() is False
        r = od.evaluate(s_prog, *S_LAWS, atoms=4, progress=False)
    assert r.info["box_linear"]["sub_box"].get("tail_exact_skipped", 0.0) == 0.0
    assert tailpieces.ENABLED.get() is True
