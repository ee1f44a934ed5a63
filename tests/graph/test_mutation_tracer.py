"""Tracer paths the mutation run found unchecked: ufuncs on plain object arrays of traced values, ufunc methods.

References are plain Python on numbers: the traced graph is run with a rule table written here from the ``math``
module (not :func:`opgraph.graph.ops.numpy_rules`), and compared with the function called on numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from opgraph.graph import TraceError, interpret, trace

# Written from Python's math module: independent of the op table the tracer and the interpreter share.
MATH_RULES = {
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: a / b,
    "sin": lambda n, a: math.sin(a),
    "cos": lambda n, a: math.cos(a),
    "tan": lambda n, a: math.tan(a),
    "exp": lambda n, a: math.exp(a),
    "log": lambda n, a: math.log(a),
    "sqrt": lambda n, a: math.sqrt(a),
    "tanh": lambda n, a: math.tanh(a),
    "arctan": lambda n, a: math.atan(a),
    "arctan2": lambda n, a, b: math.atan2(a, b),
    "hypot": lambda n, a, b: math.hypot(a, b),
}


def _object_array(*values):
    """A plain ``ndarray`` of dtype object (not a ``ProxyArray``): NumPy's object loop calls ``element.sin()``."""
    arr = np.empty(len(values), dtype=object).view(np.ndarray)  # np.empty in traced code gives a ProxyArray
    arr[:] = values
    return arr


@pytest.mark.parametrize(
    ("name", "ref"),
    [
        ("sin", math.sin),
        ("cos", math.cos),
        ("tan", math.tan),
        ("exp", math.exp),
        ("log", math.log),
        ("sqrt", math.sqrt),
        ("tanh", math.tanh),
        ("arctan", math.atan),
    ],
)
def test_unary_ufuncs_on_a_plain_object_array_of_traced_values(name, ref):
    ufunc = getattr(np, name)

    def f(x, y):
        arr = _object_array(x, y)
        assert type(arr) is np.ndarray  # the element methods, not ProxyArray.__array_ufunc__, do the work
        return ufunc(arr)

    g = trace(f)
    assert [g.nodes[o].op for o in g.outputs] == [name, name]
    for x, y in ((0.3, 1.7), (1.1, 0.45)):
        got = interpret(g, [x, y], MATH_RULES)
        assert got == pytest.approx([ref(x), ref(y)], rel=1e-12)


def test_binary_ufuncs_on_plain_object_arrays_keep_the_operand_order():
    g = trace(lambda x, y: np.arctan2(_object_array(x, y), _object_array(y, x)) + np.hypot(_object_array(x), y))
    x, y = 0.4, -1.3
    got = interpret(g, [x, y], MATH_RULES)
    assert got == pytest.approx([math.atan2(x, y) + math.hypot(x, y), math.atan2(y, x) + math.hypot(x, y)])


@pytest.mark.parametrize(
    ("fn", "method"),
    [
        (lambda x: np.add.reduce(x), "reduce"),
        (lambda x: np.add.accumulate(x), "accumulate"),
        (lambda x: np.multiply.outer(x, 2.0), "outer"),
    ],
)
def test_ufunc_methods_other_than_a_plain_call_on_a_traced_scalar_are_refused(fn, method):
    with pytest.raises(TraceError, match=rf"\.{method} is not supported on traced values"):
        trace(fn)


def test_reduce_of_a_traced_array_is_a_chain_of_the_op_and_accumulate_is_refused():
    g = trace(lambda v: np.add.reduce(v * 2.0), np.zeros(3))
    vals = [0.5, -1.25, 4.0]
    (got,) = interpret(g, vals, MATH_RULES)
    assert got == pytest.approx(sum(2.0 * v for v in vals))
    g = trace(lambda v: np.multiply.reduce(v, axis=None), np.zeros((2, 2)))
    (got,) = interpret(g, [1.5, 2.0, -3.0, 0.5], MATH_RULES)
    assert got == pytest.approx(1.5 * 2.0 * -3.0 * 0.5)
    for fn in (lambda v: np.add.accumulate(v), lambda v: np.subtract.outer(v, v)):
        with pytest.raises(TraceError, match="is not supported on traced arrays"):
            trace(fn, np.zeros(3))
