"""Half-line cells cut into geometric pieces (opgraph.dcg.tailpieces): the point-mass bound of the tail boxes.

Checks: per box the bound on geometric pieces is above a Monte Carlo estimate of ``E[|f(X) - V'| | box]`` on every
box with a half-line cell (LogNormal inputs with heavy tails, the oscillator's tuning ratio; random programs under
hypothesis), and below the whole-box bound on most of them (the path is taken); the geometric pieces partition
their cells with the masses asked for; the engine never returns a larger bound than with the switch off, lowers it
on the tuning-ratio program and stays above a Sobol reference of the exact W1; the switch travels.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from opgraph import dcg as od
from opgraph.dcg import elastic, logsubbox, switches, tailpieces
from opgraph.dcg.distributions import LogNormal
from opgraph.dcg.switches import scope
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .logprograms import PARAMS, box_costs, program
from .logprograms import laws as log_laws
from .sobolref import sobol_reference
from .test_centredlog import TUNED_LAWS, tuned_prog
from .test_elastic import _at_atoms, _grid, ratio_prog

#: The three-input ratio program on heavier tails than test_elastic's (sigma 0.5-0.8).
HEAVY_LAWS = [LogNormal(0.1, 0.5), LogNormal(-0.2, 0.6), LogNormal(-1.0, 0.8)]


def _tail_bounds(fn, laws, n):
    """Per box (flat) the whole-box centred bound and the bound on geometric pieces alone, with the grid."""
    g = trace(fn, *[f"x{i}" for i in range(len(laws))])
    qs, cells, w = _grid(laws, n)
    shape = tuple(q.atoms.size for q in qs)
    pt = _at_atoms(fn, qs)
    lin: dict = {}
    axes = list(range(len(laws)))
    b = elastic.box_bound(g, g.outputs[0], axes, dict(enumerate(laws)), cells, pt, w, shape, 0.0, lin)
    assert b is not None and "c" in lin
    wb = np.broadcast_to(w, shape).reshape(-1)
    held = np.full(wb.size, np.inf)  # the geometric pieces' bound alone: no other bound to keep
    info = tailpieces.refine(
        g,
        g.outputs[0],
        axes,
        dict(enumerate(laws)),
        cells,
        lin["order"],
        np.broadcast_to(pt, shape),
        np.broadcast_to(lin["pt_err"], shape),
        np.broadcast_to(w, shape),
        shape,
        lin,
        held,
        max_sub=2**22,
    )
    assert info is not None and info["tail_boxes"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        whole = np.asarray(b, dtype=float).reshape(-1) / wb
        piece = held / wb
    return whole, piece, qs, pt, shape


def _check(fn, laws, n, m=2**20, seed=7, min_count=200):
    whole, piece, qs, pt, shape = _tail_bounds(fn, laws, n)
    flat, d, size = box_costs(fn, laws, qs, pt, shape, m, seed)
    cnt = np.bincount(flat, minlength=size).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(flat, d, size) / cnt
        se = np.sqrt(np.maximum(np.bincount(flat, d * d, size) / cnt - mean**2, 0.0) / cnt)
    use = np.isfinite(piece) & (cnt >= min_count)
    assert use.any()
    assert np.all(piece[use] >= mean[use] - 5 * se[use] - 1e-12)
    return whole, piece


@pytest.mark.parametrize(
    ("fn", "laws", "n"),
    [
        (ratio_prog, HEAVY_LAWS, 4),
        (ratio_prog, HEAVY_LAWS, 6),
        (tuned_prog, TUNED_LAWS, 4),
        (tuned_prog, TUNED_LAWS, 6),
    ],
)
def test_piece_bounds_are_above_the_costs_on_every_tail_box(fn, laws, n):
    whole, piece = _check(fn, laws, n)
    tail = np.isfinite(piece)
    assert tail.any()
    both = tail & np.isfinite(whole)
    assert np.mean(piece[both] < whole[both]) > 0.5  # the pieces lower the bound on most tail boxes


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(**PARAMS)
def test_piece_bounds_hold_on_random_programs(p, q, c, s1, s2, n):
    fn, laws = program(p, q, c), log_laws(s1, s2)
    _check(fn, laws, n, m=2**18, seed=11)


def test_geometric_pieces_partition_the_cells():
    law = LogNormal(0.3, 0.4)
    q = law.quantize(4, "meansplit")
    m, r = 5, 0.2
    lo, hi, pt, cut = logsubbox._pieces(0.3, 0.4, q.lo, q.hi, q.atoms, m, r)
    assert np.all(cut)
    assert np.all(lo[:, 0] == q.lo) and np.all(hi[:, -1] == q.hi)
    assert np.all(hi[:, :-1] == lo[:, 1:])
    assert np.all((lo <= pt) & (pt <= hi))
    share = law.cdf(hi) - law.cdf(lo)
    share = share / share.sum(axis=1, keepdims=True)
    geo = r ** np.arange(m - 1, -1, -1.0)
    geo = geo / geo.sum()
    assert np.allclose(share[0], geo, atol=1e-9)  # (0, h]: the far piece at 0 is the lightest
    assert np.allclose(share[-1], geo[::-1], atol=1e-9)  # [l, inf): the far piece at infinity is the lightest
    assert np.allclose(share[1:-1], 1 / m, atol=1e-9)  # finite cells: equal masses
    assert tailpieces.half_line(q.lo, q.hi).tolist() == [True, False, False, True]


@pytest.mark.parametrize(("fn", "laws", "n"), [(tuned_prog, TUNED_LAWS, 4), (tuned_prog, TUNED_LAWS, 6)])
def test_engine_takes_the_pieces_soundly_and_never_worse(fn, laws, n):
    with scope({"log_tail_pieces": False}):
        before = od.evaluate(fn, *laws, atoms=n, progress=False)
    r = od.evaluate(fn, *laws, atoms=n, progress=False)
    assert r.w1_bound <= before.w1_bound * (1 + 1e-12)
    sub = r.info["box_linear"]["sub_box"]
    assert sub["tail_boxes"] > 0 and sub["tail_held_after"] < sub["tail_held_before"]
    ref, err = sobol_reference(fn, laws, log2=17)
    true = w1_discrete(r.atoms, r.weights, ref, np.full(ref.size, 1.0 / ref.size))
    assert r.w1_bound >= true - 3 * err


def test_switch_turns_it_off_and_is_registered():
    assert switches.capture()["log_tail_pieces"] is True
    with scope({"log_tail_pieces": False}):
        assert tailpieces.ENABLED.get() is False
        r = od.evaluate(tuned_prog, *TUNED_LAWS, atoms=4, progress=False)
    assert "tail_boxes" not in r.info["box_linear"]["sub_box"]
