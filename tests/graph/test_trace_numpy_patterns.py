"""NumPy patterns of vectorised code on traced values: in-place updates (``y += x``, ``out=``), list operands."""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph.graph import TraceError, interpret, trace
from opgraph.graph.tracer import ProxyArray

# From Python's math module (independent of the op table the tracer and the interpreter share).
MATH_RULES = {
    "add": lambda n, a, b: a + b,
    "mul": lambda n, a, b: a * b,
    "square": lambda n, a: a * a,
    "pow": lambda n, a, b: a**b,
    "sin": lambda n, a: math.sin(a),
    "sub": lambda n, a, b: a - b,
}


def _row(*x):
    xx = np.empty((1, len(x)), dtype=object)
    xx[0, :] = list(x)
    return xx.view(ProxyArray)


def test_inplace_add_into_an_object_array_is_traced():
    def fn(a, b):
        y = np.zeros(1, dtype=object)
        y += _row(a, b)[:, 0] ** 2
        y += np.sin(_row(a, b)[:, 1])
        return y

    g = trace(fn)
    (got,) = interpret(g, [1.5, -0.7], MATH_RULES)
    assert got == pytest.approx(1.5**2 + math.sin(-0.7))


def test_explicit_out_into_an_object_array_updates_it():
    def fn(a):
        y = np.empty(2, dtype=object)
        np.multiply(np.array([a, a], dtype=object).view(ProxyArray), 3.0, out=y)
        return y[0] + y[1]

    (got,) = interpret(trace(fn), [0.25], MATH_RULES)
    assert got == pytest.approx(1.5)


@pytest.mark.parametrize("scalar", [True, False])
def test_augmented_assignment_into_a_float_array_rebinds_it_to_a_traced_array(scalar):
    def fn(a, b):
        yy = np.zeros(1)  # as uqtestfuns' Bratley D and Dette 8D accumulate
        for k in range(1, 3):
            yy += a**k if scalar else _row(a, b)[:, 0] ** k
            yy *= 2.0
        yy -= b
        return yy

    (got,) = interpret(trace(fn), [1.5, 0.25], MATH_RULES)
    assert got == pytest.approx(((1.5 * 2.0) + 1.5**2) * 2.0 - 0.25)


def test_explicit_out_into_a_float_array_names_the_line_and_the_fix():
    def fn(a):
        y = np.array([0.0])  # a float array (np.zeros in traced code would give a traced one)
        np.add(y, a, out=y)
        return y

    with pytest.raises(
        TraceError, match=r"test_trace_numpy_patterns\.py:\d+: np\.add\(\.\.\., out=y\) .*float64.*y = y \+ x"
    ):
        trace(fn)


def test_other_ufunc_methods_with_out_are_still_refused():
    with pytest.raises(TraceError, match="accumulate"):
        trace(lambda v: np.add.accumulate(v, out=np.empty(2, dtype=object)), np.zeros(2))


def test_a_list_operand_of_a_ufunc_on_a_traced_array_is_an_array():
    def fn(a, b):
        yy = _row(a, b) ** [2.0, 3.0]  # as uqtestfuns' DetteExp writes xx ** [1.75, 1.5, 1.25]
        return np.sum(yy, axis=1)

    (got,) = interpret(trace(fn), [1.5, -0.5], MATH_RULES)
    assert got == pytest.approx(1.5**2 + (-0.5) ** 3)


def test_stacked_traced_arrays_stay_traced_so_a_reduction_along_an_axis_works():
    def fn(a, b):
        xx = _row(a, b)
        yy = np.vstack((xx[:, 0] + 1.0, xx[:, 1] * 2.0, np.sin(xx[:, 0])))  # as uqtestfuns' FourBranch
        return np.min(yy, axis=0)

    g = trace(fn)
    for a, b in [(1.5, 0.25), (-0.5, 3.0), (0.1, -2.0)]:
        (got,) = interpret(g, [a, b], {**MATH_RULES, "minimum": lambda n, u, v: min(u, v)})
        assert got == pytest.approx(min(a + 1.0, b * 2.0, math.sin(a)))


@pytest.mark.parametrize("augmented", [True, False])
def test_storing_a_traced_value_into_a_float_array_names_the_line_and_the_fix(augmented):
    def fn(a):
        y = np.array([0.0])  # a float array (np.zeros in traced code would give a traced one)
        if augmented:
            y[:] += a  # as uqtestfuns' MorrisM accumulates
        else:
            y[0] = a
        return y

    with pytest.raises(TraceError, match=r"test_trace_numpy_patterns\.py:\d+: y\[\.\.\.\] = x stores a traced value"):
        trace(fn)


def test_float_of_a_traced_value_elsewhere_keeps_its_message():
    import math

    with pytest.raises(TraceError, match=r"float\(\) of a traced value.*np\.sin"):
        trace(lambda a: math.sin(a))


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_chebyshev_polynomial_of_a_constant_degree_is_traced_as_its_arithmetic(n):
    from scipy.special import eval_chebyt

    def fn(a):  # as uqtestfuns' Bratley C
        yy = np.ones(1)
        yy *= eval_chebyt(n, 2 * _row(a)[:, 0] - 1)
        return yy

    g = trace(fn)
    for a in (0.1, 0.5, 0.93):
        (got,) = interpret(g, [a], MATH_RULES)
        assert got == pytest.approx(float(eval_chebyt(n, 2 * a - 1)), abs=1e-12)


def test_chebyshev_polynomial_of_a_traced_degree_is_refused():
    from scipy.special import eval_chebyt

    with pytest.raises(TraceError, match="eval_chebyt"):
        trace(lambda a, x: eval_chebyt(a, x))
