"""Stacked per-symbol loops of the affine forms (:mod:`opgraph.dcg.affstack`): the same numbers, bit for bit.

``opgraph.dcg.affstack.ENABLED`` off runs the per-symbol loops of :mod:`opgraph.dcg.affine`; on, the rules
:func:`~opgraph.dcg.affine.mul`, :func:`~opgraph.dcg.affine.add`, :func:`~opgraph.dcg.affine.scale` and the
magnitude sums of :func:`~opgraph.dcg.affine._clean` stack the coefficients of many symbols. Every coefficient,
centre, remainder and sum must be the same (values, signs of zeros, NaN places, shapes), and so must whole
evaluations of unrolled ODEs (whose forms carry ~50-100 error symbols).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from opgraph.dcg import affine as A
from opgraph.dcg import affstack, switches
from opgraph.dcg import intervals as iv

from .fastpath import assert_same, euler_oscillator
from .test_ode_wrapping import LOG_LAWS, OSC_LAWS, _logistic

_E = A.ERR_BASE + 10**9  # symbol ids far from the ones the rules draw for their fresh error terms


def _form(rng: np.random.Generator, keys: list[int], shape: tuple[int, ...], axis_shape: tuple[int, ...]) -> A.Aff:
    """A form with random coefficients (some -0.0, inf and NaN) on ``shape``; axis symbols on ``axis_shape``."""
    a = {}
    for i in keys:
        s = shape if i >= A.ERR_BASE else axis_shape
        v = rng.normal(size=s)
        v[rng.random(s) < 0.05] = -0.0
        v[rng.random(s) < 0.02] = np.inf
        v[rng.random(s) < 0.01] = np.nan
        a[i] = v
    return A.Aff((0, 1, 2), rng.normal(size=shape), a, np.abs(rng.normal(size=shape)), {})


def _assert_forms_equal(f: A.Aff, g: A.Aff) -> None:
    """Coefficients by position (fresh symbol ids differ between two calls), centre, remainder, kept sums."""
    assert len(f.a) == len(g.a)
    for u, v in [(f.c, g.c), (f.r, g.r), *zip(f.a.values(), g.a.values(), strict=True)]:
        assert np.shape(u) == np.shape(v)
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(np.signbit(u), np.signbit(v))  # -0.0 stays -0.0
    for u, v in [(f.abs_sum(), g.abs_sum()), (A._err_total(f), A._err_total(g))]:
        assert np.shape(u) == np.shape(v)
        np.testing.assert_array_equal(u, v)


def _both(fn: Any) -> tuple[Any, Any]:
    """``fn()`` with the stacked loops off, then on (inside :func:`opgraph.dcg.intervals.quiet`, as the engine)."""
    with iv.quiet():
        with switches.scope({"affine_stacked": False}):
            off = fn()
        with switches.scope({"affine_stacked": True}):
            on = fn()
    return off, on


@pytest.mark.parametrize("axis_shape", [(2, 2, 2), (2, 1, 1)])
def test_rules_equal_on_random_forms(axis_shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(14)
    for trial in range(120):
        kx = [int(k) for k in rng.choice(np.arange(_E, _E + 120), rng.integers(1, 60), replace=False)]
        ky = [int(k) for k in rng.choice(np.arange(_E, _E + 120), rng.integers(1, 60), replace=False)]
        x = _form(rng, [0, 1, *kx], (2, 2, 2), axis_shape)
        y = _form(rng, [2, *ky], (2, 2, 2), axis_shape)
        k = rng.normal(size=(2, 2, 2) if trial % 2 else (2, 1, 1))
        sign = (1.0, -1.0, 0.5)[trial % 3]
        rules = (
            lambda x=x, y=y: A.mul(x, y),
            lambda x=x, y=y, sign=sign: A.add(x, y, sign),
            lambda x=x, k=k: A.scale(x, k, 0.3),
        )
        for rule in rules:
            _assert_forms_equal(*_both(rule))


def test_mul_with_a_one_symbol_form_of_another_shape() -> None:
    # (h r) * x in an Euler step: one axis symbol on (2, 1, 1) times a form of many error symbols on (2, 2, 2)
    rng = np.random.default_rng(5)
    for trial in range(60):
        kx = [int(k) for k in rng.choice(np.arange(_E, _E + 120), rng.integers(8, 60), replace=False)]
        x = _form(rng, [0, *kx], (2, 2, 2), (2, 2, 2))
        y = A.Aff((0, 1, 2), rng.normal(size=(2, 1, 1)), {0: rng.normal(size=(2, 1, 1))}, np.ones((2, 1, 1)), {})
        u, v = (x, y) if trial % 2 else (y, x)
        _assert_forms_equal(*_both(lambda u=u, v=v: A.mul(u, v)))


def test_stacked_paths_run_on_these_forms() -> None:
    # the tests above compare something: the stacked mul answers (not None) on forms of one shape
    rng = np.random.default_rng(3)
    x = _form(rng, [0, *range(_E, _E + 30)], (2, 2, 2), (2, 2, 2))
    y = _form(rng, [1, *range(_E + 10, _E + 40)], (2, 2, 2), (2, 2, 2))
    with np.errstate(all="ignore"):
        assert A._mul_stacked(set(x.a) | set(y.a), x, y, x.c * y.c) is not None
        assert affstack.abs_sums(x.a, A.ERR_BASE) is not None
        assert A._add_stacked(dict(x.a), y.a, 1.0) is not None


def test_fold_rows_is_the_left_fold() -> None:
    # magnitudes 1, 1e16 and -1e16 in each column: a pairwise sum would round differently from the loop
    rng = np.random.default_rng(0)
    for n in (8, 64):  # accumulate (short rows) and the row loop (long rows)
        st = rng.choice([1.0, 1e16, -1e16, 3.0, 0.5], size=(41, n))
        loop = st[0]
        for row in st[1:]:
            loop = loop + row
        np.testing.assert_array_equal(affstack.fold_rows(st), loop)


@pytest.mark.parametrize("which", ["logistic", "oscillator"])
def test_unrolled_ode_same_result_with_stacking_off(which: str) -> None:
    fn, laws = (_logistic(50), LOG_LAWS) if which == "logistic" else (euler_oscillator(50), OSC_LAWS)
    from .fastpath import run_fast

    with switches.scope({"affine_stacked": False}):
        off = run_fast(fn, laws, True, atoms=2)
    with switches.scope({"affine_stacked": True}):
        on = run_fast(fn, laws, True, atoms=2)
    assert_same(off, on)
    assert np.isfinite(on.w1_bound)
