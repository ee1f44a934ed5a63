"""``target_w1`` where the refinement's compressed grids give only ``inf``: the whole grid is certified instead.

The refinement starts with a small compression size; a compressed node whose wide cells reach a LogNormal's
singular end (here ``a * b + c`` under a division) has no finite bound, while the same atoms on the whole grid (the
fixed-atoms compression size) do. Before, the answer was that infinite bound (or the uncertified QMC estimate).
"""

from __future__ import annotations

import contextvars
import math
import warnings

import numpy as np
import pytest
import scipy.stats as st

from opgraph import dcg as od
from opgraph.dcg import api, exactlaw

L = od.LogNormal


@pytest.fixture(autouse=True)
def _exact_law_off(monkeypatch):
    """``a * b`` is a LogNormal monomial that separates ``a``, ``b`` from the output: opgraph.dcg.exactlaw would
    replace it by its exact law and the compressed round would be finite. The rescue is checked with it off."""
    monkeypatch.setattr(exactlaw, "ENABLED", contextvars.ContextVar("exl_off", default=False))


INPUTS = [L(0.4, 0.1), L(-0.5, 0.1), L(0.0, 0.2), L(0.0, 0.1)]


def _ratio(a, b, c, d):
    return d * c / (a * b + c)


def _sample(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    cols = [g.lognormal(d.mu, d.sigma, n) for d in INPUTS]
    return _ratio(*cols)


def _target(**kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        r = od.evaluate(_ratio, *INPUTS, target_w1=1e-4, compress_atoms=2, max_joint=4096, **kw)
    return r, [str(w.message) for w in rec]


def test_compressed_rounds_without_finite_bound_are_rescued_by_the_whole_grid(monkeypatch):
    """The rescue itself, with the first round's pole check off (it would start on the whole grid: see below)."""
    monkeypatch.setattr(api, "_compressed_pole", lambda *a, **kw: None)
    r, msgs = _target()
    hist = r.info["refinement"]
    assert math.isinf(hist[0]["w1_bound"])  # the compressed round: no finite bound
    assert hist[-1].get("whole_grid_rescue") is True and hist[-1]["compress_atoms"] >= 1024
    assert r.certified is True and math.isfinite(r.w1_bound) and r.w1_bound == hist[-1]["w1_bound"]
    assert r.info["target_met"] is False and r.info["best_bound"] == r.w1_bound
    assert "fallback_reason" not in r.info and not r.info.get("compressions")
    assert any("not reached" in m and "without soft compressions" in m for m in msgs)


def test_rescued_bound_is_sound_against_a_large_sample():
    r, _ = _target()
    y = _sample(2**18)
    # W1 to the exact law <= W1 to the sample + the sample's own W1 error (a few c / sqrt(n), c ~ std here)
    w1 = st.wasserstein_distance(r.atoms, y, u_weights=r.weights)
    slack = 10 * float(np.std(y)) / math.sqrt(y.size)
    assert w1 <= r.w1_bound + slack
    assert abs(r.mean() - float(np.mean(y))) <= r.w1_bound + slack


def test_no_rescue_where_the_refinement_is_finite():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_ratio, *INPUTS, target_w1=1e-4, max_joint=4096)
    assert math.isfinite(r.w1_bound)
    assert not any(h.get("whole_grid_rescue") for h in r.info["refinement"])


def test_first_round_on_the_whole_grid_where_compressed_cells_reach_a_pole(monkeypatch):
    """The compressed node ``a * b`` (range [0, inf): LogNormal tails) feeds the denominator ``a * b + c``: the
    compressed first round is bound to be inf, so the rescue's grid is the first round (no inf round, no rescue)."""
    r, _ = _target()
    hist = r.info["refinement"]
    assert "div" in hist[0]["whole_grid_first"] and hist[0]["compress_atoms"] >= 1024
    assert all(math.isfinite(h["w1_bound"]) for h in hist[:1]) and not any(h.get("whole_grid_rescue") for h in hist)
    assert r.certified is True and math.isfinite(r.w1_bound) and not r.info.get("compressions")
    monkeypatch.setattr(api, "_compressed_pole", lambda *a, **kw: None)
    rescued, _ = _target()
    assert rescued.info["refinement"][-1].get("whole_grid_rescue") is True
    assert r.w1_bound <= rescued.w1_bound * (1 + 1e-12)


def test_no_whole_grid_first_round_for_bounded_inputs():
    """Bounded inputs whose ranges end at the pole only through the interval dependency problem keep the
    compressed first round (the piston's ``sqrt(A**2 + B)`` is finite there)."""
    u = [od.Uniform(0.5, 1.5), od.Uniform(0.5, 1.5), od.Uniform(0.0, 1.0), od.Uniform(0.5, 1.5)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = od.evaluate(_ratio, *u, target_w1=1e-4, compress_atoms=2, max_joint=4096)
    assert "whole_grid_first" not in r.info["refinement"][0]
