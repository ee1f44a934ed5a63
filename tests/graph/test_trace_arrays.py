"""Vectorised NumPy idioms on traced values: truth ops, boolean-mask writes, np.zeros arrays written to, vectorized.

Each traced graph is checked against the same function run by NumPy on a float sample matrix, at many points.
"""

from __future__ import annotations

import numpy as np
import pytest

from opgraph.graph import TraceError, interpret, numpy_rules, trace
from opgraph.graph.arrays import vectorized

RULES = numpy_rules()
POINTS = np.random.default_rng(5).uniform(-1.0, 2.0, size=(64, 3))


def _agree(fn, d=3, points=POINTS):
    """Trace ``vectorized(fn)`` and compare the graph with ``fn`` on a float matrix, row by row."""
    g = trace(vectorized(fn), *[f"x{k}" for k in range(d)])
    want = np.asarray(fn(points[:, :d]), dtype=float).reshape(len(points), -1)[:, 0]
    got = [float(interpret(g, list(row[:d]), RULES)[0]) for row in points]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    return g


@pytest.mark.parametrize(
    "expr",
    [
        lambda a, b, c: (a > 0.5) | (b < 0.2),
        lambda a, b, c: (a > 0.5) & ~(b < 0.2),
        lambda a, b, c: (a > 0.5) ^ (c > 1.0),
        lambda a, b, c: np.logical_or(a > 0.5, np.logical_and(b > 0, c < 1)),
        lambda a, b, c: np.logical_xor(a > b, np.logical_not(c > 0.3)),
        lambda a, b, c: np.bitwise_or(a > 1.5, np.bitwise_and(b > 0, np.invert(c > 1))),
    ],
)
def test_truth_ops_of_comparisons_are_traced(expr):
    def fn(xx):
        m = expr(xx[:, 0], xx[:, 1], xx[:, 2])
        return np.where(m, xx[:, 0] + xx[:, 1], -xx[:, 2])

    g = _agree(fn)
    assert {"or", "and", "xor", "not", "logical_or", "logical_and", "logical_xor", "logical_not"} & {
        n.op for n in g.nodes
    }


def test_mask_accumulated_with_or_into_a_bool_array_then_written_through():
    aa, bb = np.array([1.0, 0.5, 2.0]), np.array([0.5, 0.2, 1.5])

    def fn(xx):  # uqtestfuns' Genz discontinuous
        yy = np.exp(np.sum(xx * aa, axis=1))
        mask = np.zeros(xx.shape[0], dtype=bool)
        for i in range(xx.shape[1]):
            mask |= xx[:, i] > bb[i]
        yy[mask] = 0
        return yy

    g = _agree(fn)
    assert [n.op for n in g.nodes].count("or") == 2  # False | m is m


def test_writes_through_a_mask_into_an_np_zeros_array():
    def fn(xx):  # uqtestfuns' Gramacy sine: y[m] = f(x[m]), y[~m] = g(x[~m])
        yy = np.zeros(len(xx))
        idx_1 = xx[:, 0] <= 0.6
        idx_2 = xx[:, 0] > 0.6
        yy[idx_1] = np.sin(0.2 * np.pi * xx[idx_1, 0]) + 0.2 * np.cos(0.8 * np.pi * xx[idx_1, 0])
        yy[idx_2] = -1 + 0.1 * xx[idx_2, 0]
        return yy

    _agree(fn, d=1)


def test_augmented_assignment_through_a_mask():
    def fn(xx):
        y = np.zeros(len(xx)) + xx[:, 2]
        m = xx[:, 0] > 0.5
        y[m] += 1.0
        y[m] *= xx[m, 1]
        y[~m] -= np.cos(xx[~m, 1])
        return y

    _agree(fn)


def test_slice_accumulation_into_an_np_zeros_array():
    def fn(xx):  # uqtestfuns' Morris M
        p = xx.shape[1]
        term = np.zeros(len(xx))
        for i in range(p - 1):
            term[:] += xx[:, i] * np.sum(xx[:, i + 1 : p], axis=1)
        term *= 1.7
        return 0.3 * np.sum(xx, axis=1) + term

    _agree(fn)


def test_item_and_column_writes_into_np_empty_and_np_full():
    def fn(xx):
        out = np.empty((len(xx), 2))
        out[:, 0] = xx[:, 0] * xx[:, 1]
        out[:, 1] = np.sin(xx[:, 2])
        acc = np.full(len(xx), 2.0)
        acc[0] = acc[0] + out[0, 1] if len(xx) == 1 else acc[0]
        if len(xx) > 1:
            acc = acc + out[:, 1]
        return np.sum(out, axis=1) * acc

    _agree(fn)


def test_mask_of_a_two_dimensional_array_and_along_rows():
    def fn(xx):
        y = xx * 2.0
        y[y > 1.0] = 1.0  # a mask as large as the array (clipping)
        z = np.zeros((len(xx), 3))
        z[xx[:, 0] > 0.5, 1] = xx[xx[:, 0] > 0.5, 2]
        return np.sum(y, axis=1) + np.sum(z, axis=1)

    _agree(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda xx: np.mean(xx, axis=1) + np.std(xx, axis=1),  # NumPy divides into its result (out=, casting=)
        lambda xx: np.linalg.norm(xx, axis=1),  # conjugates
        lambda xx: xx[:, 0] * (xx[:, 1] > 1).astype(float) + (xx[:, 2] > 0.5).astype(bool),
        lambda xx: np.where(np.any(xx > 1.5, axis=1), 1.0, xx[:, 0]) + np.all(xx > 0.5, axis=1),
    ],
)
def test_reductions_and_dtype_conversions_of_traced_arrays(fn):
    _agree(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda xx: np.select([xx[:, 0] < 0, xx[:, 0] < 1], [xx[:, 1], xx[:, 0] ** 2], default=-1.0),
        lambda xx: np.select([xx[:, 0] > 1.5], [2.0]) + xx[:, 1],
        lambda xx: np.piecewise(xx[:, 0], [xx[:, 0] < 0, xx[:, 0] >= 0.5], [lambda x: -x, lambda x: x**2]),
        lambda xx: np.piecewise(
            xx[:, 0], [xx[:, 0] < 0, xx[:, 0] > 1], [lambda x, k: k * x, 7.0, lambda x, k: np.sin(x) + k], 3.0
        ),
        lambda xx: np.heaviside(xx[:, 0] - 1.0, 0.5) * xx[:, 1] + np.heaviside(np.round(xx[:, 2]), 0.25),
    ],
)
def test_select_piecewise_and_heaviside_are_chains_of_where(fn):
    _agree(fn)


def test_select_and_piecewise_of_traced_scalars():
    def f(a, b):
        return np.select([a < 0.5], [b], 1.0) + np.piecewise(a, [a > 1.0], [lambda v: v * v, lambda v: -v])

    g = trace(f)
    for a, b in [(0.2, 3.0), (0.7, -1.0), (1.5, 0.0)]:
        want = (b if a < 0.5 else 1.0) + (a * a if a > 1.0 else -a)
        assert float(interpret(g, [a, b], RULES)[0]) == pytest.approx(want)


def test_astype_int_of_traced_values_names_the_line_and_the_fix():
    with pytest.raises(TraceError, match=r"test_trace_arrays\.py:\d+: astype\(int64\) .*np\.floor"):
        trace(vectorized(lambda xx: xx.astype(int)[:, 0]), "a")


def test_np_zeros_arrays_without_traced_values_still_act_as_float_arrays():
    def fn(xx):
        m = np.zeros((2, 2))
        m[0, 0], m[1, 1], m[0, 1] = 2.0, 4.0, 1.0
        s = np.linalg.solve(m, np.array([1.0, 2.0]))  # NumPy functions of numbers only
        c = np.cumsum(m)[-1] + np.sort(m, axis=None)[1] + np.add.outer(m[0], m[1]).sum() + np.median(m)
        return xx[:, 0] * float(s[0]) + xx[:, 1] * np.isnan(m).sum() + c

    _agree(fn)


def test_np_zeros_is_left_alone_outside_a_trace_and_in_library_code():
    trace(vectorized(lambda xx: np.ones(len(xx)) * xx[:, 0]), "x")
    assert type(np.zeros(3)) is np.ndarray and np.zeros(3).dtype == float
    assert np.zeros.__module__ == "numpy"


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda xx: np.sum(xx[xx[:, 0] > 0, 1]), r"np\.sum of x\[mask\].*np\.where"),
        (lambda xx: xx[xx[:, 0] > 0, 1] + np.array([1.0, 2.0]), r"fixed shape \(2,\)"),
        (lambda xx: xx[xx[:, 0] > 0, 1], r"returned x\[mask\]"),
        (lambda xx: xx[np.floor(xx[:, 0]) + 1.0, 1], r"indexing with a traced value \(add\).*np\.where"),
        (lambda xx: np.array([[1.0, 2.0]])[xx[:, 0] > 0.5, 0], r"cannot hold traced values.*np\.zeros"),
        (lambda xx: np.sort(xx, axis=1)[:, 0], r"np\.sort compares traced values.*np\.minimum"),
        (lambda xx: np.cumsum(xx, axis=1)[:, -1], r"np\.add\.accumulate is not supported.*np\.sum"),
    ],
)
def test_data_dependent_lengths_fail_with_one_line_naming_the_fix(fn, match):
    with pytest.raises(TraceError, match=match) as info:
        trace(vectorized(fn), "x0", "x1")
    assert "\n" not in str(info.value)
    assert "test_trace_arrays.py:" in str(info.value)


def test_traces_in_several_threads_at_once_each_get_writable_arrays():
    from concurrent.futures import ThreadPoolExecutor

    def fn(xx):
        y = np.zeros(len(xx))
        y[xx[:, 0] > 0.5] = xx[:, 0] * xx[:, 1]
        return y

    with ThreadPoolExecutor(4) as pool:
        graphs = list(pool.map(lambda _: trace(vectorized(fn), "a", "b"), range(8)))
    assert all([n.op for n in g.nodes] == [n.op for n in graphs[0].nodes] for g in graphs)
    assert "where" in [n.op for n in graphs[0].nodes]
    assert type(np.zeros(2)) is np.ndarray


def test_vectorized_returns_numbers_for_numbers_and_checks_the_output_shape():
    g = vectorized(lambda xx, a: a * xx[:, 0] + xx[:, 1], 3.0)
    assert g(1.0, 2.0) == pytest.approx(5.0)
    two = vectorized(lambda xx: np.column_stack([xx[:, 0], 2 * xx[:, 0]]))
    assert two(1.5) == pytest.approx((1.5, 3.0))
    with pytest.raises(TraceError, match=r"one output per row"):
        vectorized(lambda xx: np.zeros(3))(1.0)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (
            lambda a: __import__("scipy.integrate").integrate.solve_ivp(lambda t, y: -a * y, (0, 1), [1.0]).y[0, -1],
            "scipy.integrate.solve_ivp",
        ),
        (lambda a: __import__("scipy.optimize").optimize.root(lambda z: z - a, 0.0).x[0], "scipy.optimize.root"),
    ],
)
def test_scipy_solvers_on_traced_values_fail_with_one_line_naming_the_call_and_the_fix(call, name):
    with pytest.raises(TraceError, match=rf"test_trace_arrays\.py:\d+\)?: {name} ran on traced values.*NumPy") as info:
        trace(call, "a")
    assert "\n" not in str(info.value)


def test_numpy_and_scipy_internals_keep_float_arrays_while_tracing():
    from scipy.interpolate import CubicSpline

    spline = CubicSpline([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.5, 2.0])

    def fn(xx):  # SciPy fills np.zeros / np.empty arrays inside: they must stay float arrays
        c = float(spline(1.5)) + np.polyfit([0.0, 1.0, 2.0], [1.0, 3.0, 5.0], 1)[0]
        return c * xx[:, 0]

    _agree(fn, d=1)


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda xx: np.zeros((1, 2))[xx[:, 0] > 0, xx[:, 1] > 0], r"two traced boolean masks"),
        (lambda xx: np.zeros((1, 2))[xx[:, 0] > 0, [0, 1]], r"combined with another array index"),
        (lambda xx: np.zeros((1, 2, 1))[0, :, xx[:, 0] > 0], r"this placement of a traced boolean mask"),
        (lambda xx: np.zeros(3)[xx[:, 0] > 0], r"does not fit an array of shape \(3,\)"),
    ],
)
def test_unsupported_mask_indexes_name_the_line(fn, match):
    with pytest.raises(TraceError, match=match) as info:
        trace(vectorized(fn), "x0", "x1")
    assert "test_trace_arrays.py:" in str(info.value)
