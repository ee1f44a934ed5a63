"""Per-node fast paths of the engine (issue 14 sections 4 and 6: long programs on small grids).

The fast paths (memoised affine-form radii and per-axis constants, one ``np.errstate`` per node) must give the
previous path's answers and bounds bit for bit: ``opgraph.dcg.intervals.FAST`` off runs the previous path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from opgraph import dcg as od
from opgraph.dcg import affine as A
from opgraph.dcg import intervals as iv

from .fastpath import assert_same as _same
from .fastpath import euler_oscillator
from .fastpath import run_fast as _run

_UNARY = ("exp", "sin", "tanh", "sqrt", "square", "log1p")


def _random_program(seed: int, n_ops: int):
    """A random straight-line program over 3 inputs that reuses values (shared axes, long chains)."""
    rng = np.random.default_rng(seed)
    plan = []
    for _ in range(n_ops):
        kind = rng.choice(["add", "sub", "mul", "div", "scale", "unary"])
        plan.append((str(kind), int(rng.integers(0, 1 << 30)), float(rng.uniform(0.2, 0.9)), str(rng.choice(_UNARY))))

    def fn(x, y, z):
        vals = [x, y, z]
        for kind, pick, c, un in plan:
            a = vals[pick % len(vals)]
            b = vals[(pick // 7) % len(vals)]
            if kind == "add":
                v = a + b
            elif kind == "sub":
                v = a - c * b
            elif kind == "mul":
                v = c * a * b
            elif kind == "div":
                v = a / (2.0 + b * b)  # a denominator bounded away from 0
            elif kind == "scale":
                v = c * a + 0.1
            elif un == "sqrt":
                v = np.sqrt(1.0 + a * a)
            elif un == "log1p":
                v = np.log1p(a * a)
            elif un == "exp":
                v = np.exp(0.1 * np.tanh(a))
            else:
                v = getattr(np, un)(a)
            vals.append(0.5 * np.tanh(v) + 0.5 * vals[-1])  # keeps magnitudes bounded along the chain
        return vals[-1] + vals[-2]

    return fn


@pytest.mark.parametrize("seed", range(6))
def test_random_programs_same_bounds_as_previous_path(seed):
    fn = _random_program(seed, 25)
    inputs = [od.Uniform(-1.0, 1.0), od.Normal(0.3, 0.5), od.Uniform(0.5, 2.0)]
    atoms = 2 + seed % 3
    r_fast = _run(fn, inputs, True, atoms=atoms)
    r_prev = _run(fn, inputs, False, atoms=atoms)
    _same(r_fast, r_prev)
    assert np.isfinite(r_fast.w1_bound)


def test_euler_oscillator_same_bound_as_previous_path():
    fn = euler_oscillator()

    inputs = [od.Uniform(0.8, 1.2), od.Uniform(0.05, 0.15), od.Normal(1.0, 0.1)]
    _same(_run(fn, inputs, True, atoms=3), _run(fn, inputs, False, atoms=3))


def _random_form(rng, axes, shape, n_err):
    a = {ax: rng.normal(size=shape) for ax in axes}
    for _ in range(n_err):
        a[next(A._err_ids)] = rng.normal(size=shape) * 0.1
    return A.Aff(tuple(axes), rng.normal(size=shape), a, np.abs(rng.normal(size=shape)) * 0.01, {})


def _radius_fresh(f):
    tok = iv.FAST.set(False)
    try:
        return f.radius()
    finally:
        iv.FAST.reset(tok)


def test_radius_memo_matches_recomputation_after_condense_and_expand():
    rng = np.random.default_rng(3)
    forms = [_random_form(rng, (0, 1), (2, 3), 60) for _ in range(2)]
    for f in forms:
        f.radius()  # memoised
    A.condense(forms, keep=4)  # changes the forms in place: the memo must be dropped
    for f in forms:
        np.testing.assert_array_equal(f.radius(), _radius_fresh(f))
        assert sum(1 for i in f.a if A._is_err(i)) == 2
    g = _random_form(rng, (0, 2), (2, 4), 5)
    g.radius()
    e = A.expand(g, (0, 1, 2))
    assert e._rad is not None
    np.testing.assert_array_equal(np.broadcast_to(e.radius(), (2, 1, 4)), _radius_fresh(e))


def test_quiet_skips_inner_errstate_and_keeps_values():
    a = (np.array([-np.inf, 0.0, 1.0]), np.array([np.inf, 0.0, 2.0]))
    b = (np.array([0.0, -np.inf, 3.0]), np.array([0.0, np.inf, 4.0]))
    plain = iv.imul(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf * 0 inside: no RuntimeWarning escapes either way
        with iv.quiet():
            assert iv.QUIET.get()
            assert iv.errstate(invalid="ignore") is iv._NULL
            fast = iv.imul(a, b)
        assert not iv.QUIET.get()
    for x, y in zip(plain, fast, strict=True):
        np.testing.assert_array_equal(x, y)
    tok = iv.FAST.set(False)
    try:
        with iv.quiet():
            assert not iv.QUIET.get()  # the previous path keeps its per-call contexts
    finally:
        iv.FAST.reset(tok)


def _random_interval(rng, shape):
    pool = np.array([-np.inf, -3.0, -1e-300, -0.0, 0.0, 2e-310, 0.5, 7.0, np.inf, np.nan])
    a = np.where(rng.random(shape) < 0.3, rng.choice(pool, shape), rng.normal(size=shape) * 10)
    b = np.where(rng.random(shape) < 0.3, rng.choice(pool, shape), rng.normal(size=shape) * 10)
    lo, hi = np.fmin(a, b), np.fmax(a, b)
    if rng.random() < 0.4:  # strictly positive or negative operands take the sign path
        s = 1.0 if rng.random() < 0.5 else -1.0
        lo, hi = (np.abs(lo) + 0.1, np.abs(hi) + 0.2) if s > 0 else (-np.abs(hi) - 0.2, -np.abs(lo) - 0.1)
        lo, hi = np.fmin(lo, hi), np.fmax(lo, hi)
    return lo, hi


@pytest.mark.parametrize("seed", range(4))
def test_interval_kernels_inside_quiet_match_the_plain_path(seed):
    rng = np.random.default_rng(seed)
    for _ in range(200):
        shapes = [(), (1,), (3,), (2, 1), (2, 3)]
        sa, sb = shapes[rng.integers(len(shapes))], shapes[rng.integers(len(shapes))]
        a, b = _random_interval(rng, sa), _random_interval(rng, sb)
        if rng.random() < 0.2:
            a = (a[0], a[0])  # a point by identity
        with np.errstate(all="ignore"):
            plain = [iv.imul(a, b), iv.widen(*a), iv.widen(*iv.iadd(a, b)), (iv._nan0(a[0] * b[1]),) * 2]
        with iv.quiet():
            fast = [iv.imul(a, b), iv.widen(*a), iv.widen(*iv.iadd(a, b)), (iv._nan0(a[0] * b[1]),) * 2]
        for p, f in zip(plain, fast, strict=True):
            for x, y in zip(p, f, strict=True):
                x, y = np.asarray(x), np.asarray(y)
                assert x.shape == y.shape
                assert np.array_equal(x, y, equal_nan=True)
                assert np.array_equal(np.signbit(x), np.signbit(y))
