"""Shared helpers of the per-node fast-path tests: run a program with ``intervals.FAST`` on or off, and compare.

``opgraph.dcg.intervals.FAST`` off runs the previous code path; the fast paths must reproduce its answers and
bounds bit for bit (tests/dcg/test_nodecost.py, tests/dcg/test_odespeed.py).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from opgraph import dcg as od
from opgraph.dcg import intervals as iv


def run_fast(fn: Any, inputs: Any, fast: bool, **kw: Any) -> Any:
    """``od.evaluate(fn, *inputs, **kw)`` with ``intervals.FAST`` set to ``fast`` (warnings silenced)."""
    tok = iv.FAST.set(fast)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return od.evaluate(fn, *inputs, **kw)
    finally:
        iv.FAST.reset(tok)


def assert_same(r0: Any, r1: Any) -> None:
    """The two results are identical: bound, bound terms, atoms, weights, support and cells, bit for bit."""
    assert repr(r0.w1_bound) == repr(r1.w1_bound)
    assert r0.bound_terms == r1.bound_terms
    np.testing.assert_array_equal(r0.atoms, r1.atoms)
    np.testing.assert_array_equal(r0.weights, r1.weights)
    assert r0.support == r1.support
    if r0.cells is not None:
        np.testing.assert_array_equal(r0.cells.lo, r1.cells.lo)
        np.testing.assert_array_equal(r0.cells.hi, r1.cells.hi)


def euler_oscillator(steps: int = 60, h: float = 0.1) -> Any:
    """A damped oscillator ``x'' + 2 z w x' + w^2 x = 0`` integrated by explicit Euler (``steps`` steps of ``h``)."""

    def fn(w: Any, z: Any, x0: Any) -> Any:
        x, v = x0, 0.0 * x0
        for _ in range(steps):
            v = v - h * (2 * z * w * v + w * w * x)
            x = x + h * v
        return x

    return fn
