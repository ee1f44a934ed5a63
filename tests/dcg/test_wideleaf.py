"""Disjoint split with one wide part (opgraph.dcg.wideleaf): admitted shapes, order, soundness against Sobol."""

from __future__ import annotations

import contextvars
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.stats import norm, qmc

from opgraph import dcg as od
from opgraph.dcg import api, boxlinear, disjoint, switches, wideleaf
from opgraph.dcg.w1 import w1_discrete
from opgraph.graph import trace

#: 2^16 scrambled Sobol points per reference; two scrambles give its error (margin below).
REF_LOG2 = 19


def oscillator_like(x0, x1, x2, x3, x4, a=1.5):
    """``a x0 - |x4 sin(x3 s) / s|`` with ``s = x1 + x2``: one input alone, four shared (the undamped oscillator's
    shape, ``3 r - |2 F1 / (c1 + c2) sin(w0 t1 / 2)|``)."""
    s = x1 + x2
    return a * x0 - np.abs(x4 * np.sin(x3 * s) / s)


def laws(sigma0=0.05, sigma4=0.2):
    return [
        od.Normal(0.5, sigma0),
        od.Uniform(0.8, 1.2),
        od.Uniform(0.05, 0.15),
        od.Uniform(0.5, 1.5),
        od.Normal(1.0, sigma4),
    ]


def reference(a, sigma0, sigma4, seed):
    """2^REF_LOG2 scrambled Sobol values of ``oscillator_like`` (equal weights)."""
    u = qmc.Sobol(5, scramble=True, seed=seed).random_base2(REF_LOG2)
    x = [
        norm.ppf(u[:, 0], 0.5, sigma0),
        0.8 + 0.4 * u[:, 1],
        0.05 + 0.1 * u[:, 2],
        0.5 + u[:, 3],
        norm.ppf(u[:, 4], 1.0, sigma4),
    ]
    return np.sort(oscillator_like(*x, a=a))


def _w1_to_ref(r, ref):
    return w1_discrete(np.asarray(r.atoms), np.asarray(r.weights), ref, np.full(ref.size, 1.0 / ref.size))


def _tree(fn, n):
    g = trace(fn, *[f"x{k}" for k in range(n)])
    tree = disjoint.decompose(g)
    return None if tree is None else tree.describe(g)


def test_admitted_shapes():
    assert _tree(oscillator_like, 5) == "sum(leaf[x0], leaf[x1,x2,x3,x4])"
    with switches.scope({"wide_leaf": False}):
        assert _tree(oscillator_like, 5) is None  # as before: a part on more than MAX_LEAF_INPUTS inputs
    with switches.scope({"box_linear": False}):
        assert _tree(oscillator_like, 5) is None  # the wide part's gain is the mixture: off without it
    # two wide parts, or a wide part beside a two-input part: the grid engine alone
    assert _tree(lambda a, b, c, d, e, f, g, h: np.sin(a + b + c + d) + np.cos(e * f * g * h), 8) is None
    assert _tree(lambda a, b, c, d, e, f: np.sin(a + b + c + d) + np.sin(e + f), 6) is None
    # more inputs than MAX_WIDE_INPUTS in the wide part
    n = wideleaf.MAX_WIDE_INPUTS + 1
    assert _tree(lambda x, *v: x + np.sin(sum(v)) * v[0], n + 1) is None


def test_admits_and_stuck_rules():
    m = disjoint.MAX_LEAF_INPUTS
    assert wideleaf.admits([1, 5], m) and wideleaf.admits([5, 1, 1], m)
    assert not wideleaf.admits([2, 5], m) and not wideleaf.admits([5, 5], m) and not wideleaf.admits([5], m)
    assert not wideleaf.admits([1, wideleaf.MAX_WIDE_INPUTS + 1], m)
    missed = SimpleNamespace(info={"target_met": False})
    met = SimpleNamespace(info={"target_met": True})
    assert wideleaf.stuck([(1, met), (5, missed)], m)
    assert not wideleaf.stuck([(1, missed), (5, met)], m)  # only the wide part's miss stops the refinement
    assert not wideleaf.stuck([(1, missed), (2, missed)], m)  # ordinary splits: as before


def test_switch_is_registered():
    assert "wide_leaf" in switches.capture()
    with switches.scope({"wide_leaf": False}):
        assert switches.capture()["wide_leaf"] is False


def _spy(monkeypatch):
    """Records, in call order, the grid engine's results on the whole graph and the split's results."""
    calls: list[tuple[str, object]] = []
    grid, certify = api._evaluate_graph_grid, disjoint.certify

    def grid_spy(graph, dists, **kw):
        out = grid(graph, dists, **kw)
        if len(dists) == 5:
            calls.append(("grid", out[0]))
        return out

    def certify_spy(*a, **k):
        out = certify(*a, **k)
        calls.append(("split", out))
        return out

    monkeypatch.setattr(api, "_evaluate_graph_grid", grid_spy)
    monkeypatch.setattr(disjoint, "certify", certify_spy)
    return calls


def _evaluate(fn, ins, target, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return od.evaluate(fn, *ins, target_w1=target, progress=False, **kw)


def test_split_runs_after_the_grid_engine_and_is_sound(monkeypatch):
    ref, ref2 = reference(1.5, 0.05, 0.2, 1), reference(1.5, 0.05, 0.2, 2)
    margin = 3 * w1_discrete(ref, np.full(ref.size, 1.0 / ref.size), ref2, np.full(ref2.size, 1.0 / ref2.size))
    std = float(ref.std())
    calls = _spy(monkeypatch)
    r = _evaluate(oscillator_like, laws(), 1e-2 * std, max_seconds=4.0)
    kinds = [k for k, _ in calls]
    assert kinds == ["grid", "split"]  # the grid engine first, on the whole budget; the split on what it left
    grid, split = calls[0][1], calls[1][1]
    assert split is not None and split.info["split"] == "sum(leaf[x0], leaf[x1,x2,x3,x4])"
    assert split.info["parts"][1]["part"] == "part 1 (x1,x2,x3,x4)"
    # every certificate on the way holds against the reference, and the answer is the smaller one
    for res in (grid, split, r):
        assert res.w1_bound + margin >= _w1_to_ref(res, ref)
    assert r.w1_bound == min(grid.w1_bound, split.w1_bound)
    if split.w1_bound < grid.w1_bound:
        assert r.info["method"] == "disjoint split" and r.info["grid_engine_bound"] == grid.w1_bound
    # the answer's CDF band encloses the reference's CDF (empirical CDF of 2^19 points: 5e-3 margin)
    for q in (0.05, 0.3, 0.5, 0.7, 0.95):
        t = float(np.quantile(ref, q))
        lo, hi = r.cdf_bounds(t)
        f = float(np.searchsorted(ref, t, side="right")) / ref.size
        assert lo - 5e-3 <= f <= hi + 5e-3


def test_split_skipped_where_the_grid_engine_meets_the_target(monkeypatch):
    std = float(reference(1.5, 0.05, 0.2, 1).std())
    calls = _spy(monkeypatch)
    r = _evaluate(oscillator_like, laws(), 0.3 * std, max_seconds=4.0)
    assert r.info["target_met"] and [k for k, _ in calls] == ["grid"]


def test_switch_off_gives_the_grid_engine_alone(monkeypatch):
    std = float(reference(1.5, 0.05, 0.2, 1).std())
    calls = _spy(monkeypatch)
    with switches.scope({"wide_leaf": False}):
        r = _evaluate(oscillator_like, laws(), 1e-2 * std, max_seconds=2.0)
    assert [k for k, _ in calls] == ["grid"] and r.info.get("method") != "disjoint split"


def test_split_stops_where_the_wide_part_missed(monkeypatch):
    # a missed wide part ends the split after its first round (no re-evaluation at smaller targets)
    seen: list[int] = []
    leaf = api._evaluate_graph_grid

    def leaf_spy(graph, dists, **kw):
        seen.append(len(dists))
        return leaf(graph, dists, **kw)

    monkeypatch.setattr(api, "_evaluate_graph_grid", leaf_spy)
    std = float(reference(1.5, 0.05, 0.2, 1).std())
    r = _evaluate(oscillator_like, laws(), 1e-3 * std, max_seconds=3.0)
    assert seen.count(4) <= 1
    if seen.count(4) == 1 and r.info.get("method") == "disjoint split":
        assert len(r.info["refinement"]) == 1


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    a=st.floats(0.5, 3.0),
    sigma0=st.floats(0.01, 0.2),
    sigma4=st.floats(0.05, 0.3),
    eps=st.sampled_from([3e-2, 1e-2]),
)
def test_split_sound_property(a, sigma0, sigma4, eps):
    ref, ref2 = reference(a, sigma0, sigma4, 3), reference(a, sigma0, sigma4, 4)
    margin = 3 * w1_discrete(ref, np.full(ref.size, 1.0 / ref.size), ref2, np.full(ref2.size, 1.0 / ref2.size))
    got: list[object] = []
    certify = disjoint.certify

    def certify_spy(*args, **kw):
        out = certify(*args, **kw)
        got.append(out)
        return out

    disjoint.certify = certify_spy
    try:
        r = _evaluate(
            lambda *x: oscillator_like(*x, a=a), laws(sigma0, sigma4), eps * float(ref.std()), max_seconds=1.5
        )
    finally:
        disjoint.certify = certify
    for res in [r, *[g for g in got if g is not None]]:
        assert res.w1_bound + margin >= _w1_to_ref(res, ref)


def test_box_linear_off_switch_reaches_the_rule(monkeypatch):
    monkeypatch.setattr(boxlinear, "ENABLED", contextvars.ContextVar("box_linear_off_wideleaf", default=False))
    assert not wideleaf.admits([1, 5], disjoint.MAX_LEAF_INPUTS)


@pytest.mark.parametrize("on", [False, True])
def test_ishigami_split_unchanged(on):
    # ordinary splits (parts of at most MAX_LEAF_INPUTS inputs) take the same path with the switch on or off
    def ishigami(x1, x2, x3):
        return np.sin(x1) + 7.0 * np.sin(x2) ** 2 + 0.1 * x3**4 * np.sin(x1)

    with switches.scope({"wide_leaf": on}):
        assert _tree(ishigami, 3) == "sum(leaf[x1], prod(leaf[x0], leaf[x2]))"
