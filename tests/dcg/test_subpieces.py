"""Wide sub-box pieces by a cost rule (:mod:`opgraph.dcg.subpieces`): the rule, more atoms never worse, the switch."""

from __future__ import annotations

import contextvars
import functools
import math
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw, fixedbudget, roundbudget, subpieces, subslope, switches
from opgraph.dcg.engine import restrict
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

from .sobolref import sobol_reference
from .test_subslope import PISTON_LAWS


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_subp", default=False))


def _per(boxes: int, nodes: int) -> float:
    return subslope.SECONDS_PER_BOX_NODE * boxes * nodes


def test_wide_pieces_on_many_axes_and_the_old_cap_elsewhere():
    fixed = fixedbudget.allowance("sub_slope")
    nodes = 27  # Borehole's graph (8 inputs)

    def old(boxes: int) -> int:
        return int(max(1, min(subslope.MAX_PIECES, math.floor(fixed / _per(boxes, nodes)))))

    # Borehole's 2-atom grid (256 boxes, 8 axes): the whole wide cap; the grid's own time rule above 64
    assert subslope.allowance(256, nodes, 8) == subpieces.WIDE_PIECES
    mid = 4096
    want = min(subpieces.WIDE_PIECES, math.floor(fixed / _per(mid, nodes)))
    assert want > subslope.MAX_PIECES and subslope.allowance(mid, nodes, 6) == want
    # large grids (Borehole at 4 atoms, 65,536 boxes): the allowance of the old rule, at most MAX_PIECES
    for boxes in (65536, 262144, 4**10):
        assert subslope.allowance(boxes, nodes, 8) == old(boxes) <= subslope.MAX_PIECES
    # few axes (the test programs, the MLP, Ishigami) or axes unknown: the old cap
    for axes in (None, 2, 3, 4, subpieces.MIN_AXES - 1):
        assert subslope.allowance(256, nodes, axes) == subslope.MAX_PIECES == old(256)
    # the switch off: at most MAX_PIECES everywhere (the rule before this module)
    with switches.scope({"sub_pieces": False}):
        assert subslope.allowance(256, nodes, 8) == subslope.MAX_PIECES
        assert subslope.allowance(mid, nodes, 6) == subslope.MAX_PIECES
    with switches.scope({"sub_slope": False}):
        assert subslope.allowance(256, nodes, 8) == 1


def test_wide_pieces_in_target_calls_within_their_share():
    nodes, boxes = 27, 256
    with roundbudget.scope(100.0):  # a target_w1 call with 100 s left: the small grid gets the wide cap
        assert subslope.allowance(boxes, nodes, 8) == subpieces.WIDE_PIECES
        assert subslope.allowance(4**10, nodes, 10) <= subslope.MAX_PIECES
    with roundbudget.scope(0.01):  # almost spent: no pieces at all
        assert subslope.allowance(boxes, nodes, 8) == 1


def test_the_allowance_is_monotone_in_the_grid():
    # fewer boxes never get fewer pieces (deterministic: a function of boxes, nodes and axes alone)
    for axes in (3, 6, 8):
        got = [subslope.allowance(b, 30, axes) for b in (8, 64, 256, 1024, 4096, 16384, 65536, 262144)]
        assert got == sorted(got, reverse=True)
        assert got[0] == (subpieces.WIDE_PIECES if axes >= subpieces.MIN_AXES else subslope.MAX_PIECES)
        assert got[-1] <= subslope.MAX_PIECES


def _piston6(a, b, c, d, e, f):
    """The piston-like quotient (a reused ``sqrt``) with three more inputs: six grid axes."""
    v = np.sqrt(a**2 + 4.0 * b * c) - a
    return c**1.5 / v**2 + 0.2 * a * b + d * e / (1.0 + f)


LAWS6 = [*PISTON_LAWS, od.Uniform(0.5, 1.5), od.Uniform(1.0, 2.0), od.Uniform(0.0, 1.0)]
_sobol = functools.partial(sobol_reference, log2=15, seed=43)


def _run(atoms: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(_piston6, *LAWS6, atoms=atoms)


def _spy(monkeypatch) -> list[int]:
    """Records the sub-box pieces per box of every sub-box pass."""
    seen: list[int] = []
    orig = subslope.remainder

    def spy(*a, **k):
        seen.append(math.prod(a[8].values()))
        return orig(*a, **k)

    monkeypatch.setattr(subslope, "remainder", spy)
    return seen


def test_more_atoms_never_worse_where_the_wide_pieces_fall(monkeypatch):
    """Where the ``N`` grid got wide pieces and the ``2N`` grid fewer, the halved request keeps ``bound(2N) <= bound(N)``."""
    assert subslope.HALVE_WHERE_FEWER is False  # the default: only the wide pieces call for the halved request
    names = "abcdef"
    g = trace(_piston6, *names)
    rg = restrict(g, g.outputs[0])
    nodes = len(rg[0].nodes)
    # the cost model scaled so that the 2-atom grid (64 boxes) gets all the wide pieces, the 4-atom grid (4,096) 4
    per = fixedbudget.allowance("sub_slope") / (subpieces.WIDE_PIECES * 64 * nodes)
    monkeypatch.setattr(subslope, "SECONDS_PER_BOX_NODE", per)
    assert subslope.allowance(64, nodes, 6) == subpieces.WIDE_PIECES
    assert subslope.allowance(4096, nodes, 6) == 4
    restricted = [rg]
    four, two = dict.fromkeys(names, 4), dict.fromkeys(names, 2)
    assert subslope.fewer_pieces(restricted, four, two)
    assert not subslope.fewer_pieces(restricted, two, two)
    assert not subslope.fewer_pieces(restricted, four, two, sub_ran=False)  # the finer grid's pass did not run
    with roundbudget.scope(100.0):  # inside a target_w1 call: its time budget decides, no halving
        assert not subslope.fewer_pieces(restricted, four, two)
    with switches.scope({"sub_pieces": False}):  # at most 64 pieces: no halving (as before this module)
        assert not subslope.fewer_pieces(restricted, four, two)
    seen = _spy(monkeypatch)
    r2 = _run(2)
    assert seen and max(seen) > subslope.MAX_PIECES  # the wide pieces are taken
    assert "smaller_request" not in r2.info
    r4 = _run(4)
    note = r4.info["smaller_request"]
    assert note["requested"] == two  # the path is taken
    assert r4.w1_bound == min(note["requested_grid_bound"], r2.w1_bound)
    assert r4.w1_bound <= r2.w1_bound
    ref, err = _sobol(_piston6, LAWS6)
    for r in (r2, r4):
        assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err


def test_wide_pieces_are_taken_and_tighten(monkeypatch):
    """The 2-atom grid of the six-input program gets more than 64 pieces per box and a smaller bound with them."""
    seen = _spy(monkeypatch)
    on = _run(2)
    assert seen and max(seen) > subslope.MAX_PIECES
    with switches.scope({"sub_pieces": False}):
        seen.clear()
        off = _run(2)
        assert seen and max(seen) <= subslope.MAX_PIECES
    assert on.info["bound_method"] == off.info["bound_method"] == "box-linear mixture"
    assert on.w1_bound < off.w1_bound
    ref, err = _sobol(_piston6, LAWS6)
    for r in (on, off):
        assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err


def test_the_switch_travels():
    assert switches.capture()["sub_pieces"] is True
    with switches.scope({"sub_pieces": False}):
        assert switches.capture()["sub_pieces"] is False
        assert subpieces.ENABLED.get() is False
