"""The per-grid choice of the affine ray form's slices (:mod:`opgraph.dcg.radialchoose`): soundness, the choice."""

from __future__ import annotations

import contextvars
import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import exactlaw, radialchoose, subslope, subwalk, switches
from opgraph.dcg.w1 import w1_discrete

from .test_radial import BOUND_CASES, _sobol
from .test_subslope import _setup
from .test_subwalk import VOLUME_LAWS, _piston_volume


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off_radialchoose", default=False))


def test_the_switch_travels():
    assert "radial_choose" in switches.capture()
    with switches.scope({"radial_choose": True}):
        assert switches.capture()["radial_choose"] is True
        assert radialchoose.ENABLED.get() is True


def test_pieces_allowed_pays_the_extra_pass(monkeypatch):
    assert radialchoose.pieces_allowed(24, 1) == 24
    assert radialchoose.pieces_allowed(24, 2) == 24  # COST 0: the same pieces
    monkeypatch.setattr(radialchoose, "COST", None)  # the pass's measured share: fewer pieces
    assert radialchoose.pieces_allowed(24, 2) < 24
    assert radialchoose.pieces_allowed(1, 2) == 1


@pytest.mark.parametrize("gain", [0.9, 10.0], ids=["default", "always"])
def test_the_choice_is_never_worse_than_the_plan_without_it_on_its_sample(monkeypatch, gain):
    """On the sampled boxes, the chosen plan's total is ``<=`` the ``K = 1`` plain plan's; ``K`` is reported."""
    monkeypatch.setattr(subwalk, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(radialchoose, "MIN_GAIN", gain)
    g, out, ids, qs, cells, e1, c, fx = _setup(_piston_volume, VOLUME_LAWS, 4)
    scores = {a: float(s) for a, s in zip(ids, (4.0, 3.0, 2.0, 1.0), strict=True)}
    w = np.ones(tuple(q.atoms.size for q in qs)) / 256
    laws = dict(zip(ids, VOLUME_LAWS, strict=True))
    calls: list = []
    real = subslope.remainder

    def spy(*a, **k):
        r = real(*a, **k)
        calls.append((dict(a[8]), list(k.get("walk", ())), k.get("exact_slices") or 1, float(np.sum(r))))
        return r

    monkeypatch.setattr(subslope, "remainder", spy)
    ks: list[int] = []
    with switches.scope({"radial_choose": True, "radial_slope": True}):
        split, walk = subwalk.choose(g, out, ids, cells, e1, laws, c, fx, w, scores, 24, rest=w, slices_out=ks)
    assert len(ks) == 1 and ks[0] in (1, radialchoose.SLICES)
    assert any(k != 1 for _, _, k, _ in calls)  # the K = 2 plans were sampled
    base = calls[0]
    assert base[2] == 1 and base[1] == []
    chosen = [t for sp, wk, k, t in calls if sp == split and wk == walk and k == ks[0]]
    assert chosen
    if gain > 1:  # always the best K = 2 plan (a test of the path, not of the gain): the choice reports it
        assert ks[0] == radialchoose.SLICES
        return
    assert min(chosen) <= base[3]
    if ks[0] != 1:
        assert min(chosen) < gain * min(t for _, _, k, t in calls if k == 1)


def test_off_and_without_slices_out_nothing_changes(monkeypatch):
    """With the switch off or without ``slices_out`` only ``K = 1`` plans are sampled."""
    assert radialchoose.ENABLED.get() is True  # on by default
    monkeypatch.setattr(subwalk, "MIN_SECONDS", 0.0)
    g, out, ids, qs, cells, e1, c, fx = _setup(_piston_volume, VOLUME_LAWS, 4)
    scores = {a: float(s) for a, s in zip(ids, (4.0, 3.0, 2.0, 1.0), strict=True)}
    w = np.ones(tuple(q.atoms.size for q in qs)) / 256
    laws = dict(zip(ids, VOLUME_LAWS, strict=True))
    seen: list = []
    real = subslope.remainder
    monkeypatch.setattr(subslope, "remainder", lambda *a, **k: seen.append(k.get("exact_slices")) or real(*a, **k))
    ks: list[int] = []
    with switches.scope({"radial_choose": False}):
        got = subwalk.choose(g, out, ids, cells, e1, laws, c, fx, w, scores, 24, rest=w, slices_out=ks)
    again = subwalk.choose(g, out, ids, cells, e1, laws, c, fx, w, scores, 24, rest=w)
    assert ks == [1] and got == again
    assert all(k in (None, 1) for k in seen)


@pytest.mark.parametrize(("fn", "laws", "atoms"), BOUND_CASES[:3], ids=["piston_volume", "piston_like", "otl"])
@pytest.mark.parametrize("gain", [0.9, 10.0], ids=["default", "always"])
def test_the_whole_bound_with_the_choice_on_is_sound(monkeypatch, fn, laws, atoms, gain):
    """Certified bound ``>=`` the answer's W1 to a scrambled-Sobol reference, the choice on (and forced to K = 2)."""
    monkeypatch.setattr(subwalk, "MIN_SECONDS", 0.0)
    monkeypatch.setattr(radialchoose, "MIN_GAIN", gain)
    with switches.scope({"radial_choose": True, "radial_slope": True}), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(fn, *laws, atoms=atoms)
    ref, err = _sobol(fn, laws)
    assert np.isfinite(r.w1_bound)
    assert r.w1_bound >= w1_discrete(r.atoms, r.weights, ref, np.ones(ref.size)) - 3 * err
