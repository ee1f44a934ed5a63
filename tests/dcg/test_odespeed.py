"""Per-node fast paths for long programs (branch ode-speed): the same answers and bounds, bit for bit.

``opgraph.dcg.intervals.FAST`` off runs the previous code path: the affine forms' NaN test without the kept
``sum |a_i|`` (:func:`opgraph.dcg.affine._clean`), the condensation called at every node, and the form's magnitude
recomputed at every walk prefix (:func:`opgraph.dcg.affine.prefix_enclosures`).
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import affine as A
from opgraph.dcg import intervals as iv

from .fastpath import assert_same as _same
from .fastpath import euler_oscillator
from .fastpath import run_fast as _run
from .sobolref import sobol_reference
from .test_ode_wrapping import LOG_LAWS, _logistic

_LOGISTIC_LAWS = LOG_LAWS


@pytest.mark.parametrize("atoms", [2, 3])
def test_logistic_euler_same_bound_as_previous_path(atoms):
    # x used twice per step (shared axes, the mean-value walk), a division, a sub-cell pass: every per-node path
    fn = _logistic(60)
    r_fast = _run(fn, _LOGISTIC_LAWS, True, atoms=atoms)
    r_prev = _run(fn, _LOGISTIC_LAWS, False, atoms=atoms)
    _same(r_fast, r_prev)
    assert np.isfinite(r_fast.w1_bound)


def test_logistic_euler_bound_holds_against_sobol_reference():
    fn = _logistic(60)
    r = _run(fn, _LOGISTIC_LAWS, True, atoms=3)
    sample, err = sobol_reference(fn, _LOGISTIC_LAWS, log2=14)
    true = od.w1_distance(r, sample) if hasattr(od, "w1_distance") else None
    if true is None:
        from opgraph.dcg.w1 import w1_discrete

        true = w1_discrete(r.atoms, r.weights, sample, np.ones(sample.size))
    assert true - err <= r.w1_bound


def test_condensation_skipped_only_where_it_does_nothing(monkeypatch):
    # The engine skips condense() where the forms' symbol counts sum to at most `keep`; the forms must still be
    # condensed where they carry more (a 60-step oscillator: two live forms gain error symbols at every step).
    calls = {"n": 0, "acted": 0}
    orig = A.condense

    def counting(forms, keep):
        before = [dict(f.a) for f in forms]
        orig(forms, keep)
        calls["n"] += 1
        calls["acted"] += any(f.a != b for f, b in zip(forms, before, strict=True))

    monkeypatch.setattr(A, "condense", counting)
    fn = euler_oscillator()

    inputs = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Uniform(0.9, 1.1)]
    r_fast = _run(fn, inputs, True, atoms=2)
    fast_calls, fast_acted = calls["n"], calls["acted"]
    calls.update(n=0, acted=0)
    r_prev = _run(fn, inputs, False, atoms=2)
    _same(r_fast, r_prev)
    assert fast_acted == calls["acted"] > 0  # the same condensations happen
    assert fast_calls < calls["n"]  # the ones that did nothing were skipped


def _form(rng, shape, n_err, nan_at=None):
    a = {0: rng.normal(size=shape), 1: rng.normal(size=shape)}
    for _ in range(n_err):
        a[next(A._err_ids)] = rng.normal(size=shape) * 0.1
    if nan_at is not None:
        a[0] = a[0].copy()
        a[0][nan_at] = np.nan
    return A.Aff((0, 1), rng.normal(size=shape), a, np.abs(rng.normal(size=shape)) * 0.01, {})


def _apply(op, x, y):
    if op == "mul":
        return A.mul(x, y)
    if op == "add":
        return A.add(x, y)
    if op == "scale":
        return A._times_near_const(A.constant(0.7), x)  # scale(), then the near-constant product's remainder
    rad = x.radius()
    enc = iv.widen(x.c - rad, x.c + rad)
    return A._unary("exp", x, enc, [enc], 0, {})  # scale() by the linearisation, then a fresh error symbol


@pytest.mark.parametrize("op", ["mul", "add", "scale", "exp"])
@pytest.mark.parametrize("nan", [False, True])
def test_kept_abs_sums_match_recomputation(op, nan):
    rng = np.random.default_rng(7)
    x = _form(rng, (3, 4), 6, nan_at=(1, 2) if nan else None)
    y = _form(rng, (3, 4), 5)
    out = {}
    for fast in (True, False):
        tok = iv.FAST.set(fast)
        try:
            out[fast] = _apply(op, x, y)
        finally:
            iv.FAST.reset(tok)
    f, g = out[True], out[False]
    kept = f._sabs is not None and f._etot is not None  # read before any radius() call (which memoises _sabs)
    np.testing.assert_array_equal(f.c, g.c)
    np.testing.assert_array_equal(f.r, g.r)
    assert len(f.a) == len(g.a)  # the same symbols (a fresh one numbered anew by each call), in the same order
    for (i, u), (j, v) in zip(f.a.items(), g.a.items(), strict=True):
        assert i == j or (A._is_err(i) and A._is_err(j))
        np.testing.assert_array_equal(u, v)
    tok = iv.FAST.set(False)
    try:
        fresh_rad, fresh_err = g.radius(), A._err_total(g)
    finally:
        iv.FAST.reset(tok)
    np.testing.assert_array_equal(f.radius(), fresh_rad)
    np.testing.assert_array_equal(A._err_total(f), fresh_err)
    if nan and op in ("mul", "add"):
        assert np.isinf(f.r[1, 2]) and not kept  # the masked box: invalid, and no kept sums of the old a
    elif not nan:
        assert kept  # the path taken: the sums kept from the NaN test
