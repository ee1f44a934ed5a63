"""The tracer and the interpreter checked against plain Python/NumPy, not against the op table they are built on.

Each traced function is also called directly on numbers; the graph is run with a rule table written here from
Python's operators (so an operand order swapped by the tracer, or an input bound to the wrong name by the
interpreter, shows up as a wrong number).
"""

from __future__ import annotations

import math
import operator

import numpy as np
import pytest

from opgraph.graph import interpret, trace

# Rules written from Python's own operators: independent of opgraph.graph.ops.numpy_rules().
PY_RULES = {
    "add": lambda n, a, b: a + b,
    "sub": lambda n, a, b: a - b,
    "mul": lambda n, a, b: a * b,
    "div": lambda n, a, b: a / b,
    "pow": lambda n, a, b: a**b,
    "mod": lambda n, a, b: a % b,
    "neg": lambda n, a: -a,
    "abs": lambda n, a: abs(a),
    "lt": lambda n, a, b: float(a < b),
    "le": lambda n, a, b: float(a <= b),
    "gt": lambda n, a, b: float(a > b),
    "ge": lambda n, a, b: float(a >= b),
    "eq": lambda n, a, b: float(a == b),
    "ne": lambda n, a, b: float(a != b),
    "sin": lambda n, a: math.sin(a),
    "exp": lambda n, a: math.exp(a),
    "maximum": lambda n, a, b: max(a, b),
    "minimum": lambda n, a, b: min(a, b),
    "where": lambda n, c, a, b: a if c else b,
}

BINOPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
    "%": operator.mod,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
CONSTANTS = [2.5, 3, -1.25, np.float64(0.75)]


def _run(fn, *xs):
    g = trace(fn)
    (out,) = interpret(g, list(xs), PY_RULES)
    return g, float(out)


@pytest.mark.parametrize("sym", sorted(BINOPS))
@pytest.mark.parametrize("c", CONSTANTS, ids=repr)
def test_reflected_and_plain_binary_operators_match_python(sym, c):
    op = BINOPS[sym]
    for x in (1.7, 0.4, 5.0):
        _, right = _run(lambda v: op(v, c), x)
        assert right == pytest.approx(float(op(x, c)), rel=1e-12), (sym, c, x)
        if sym == "**" and c < 0:
            continue  # a negative base to a fractional power is complex
        _, left = _run(lambda v: op(c, v), x)  # the constant on the left: Proxy.__r*__ (or ufunc dispatch)
        assert left == pytest.approx(float(op(c, x)), rel=1e-12), (sym, c, x)


@pytest.mark.parametrize(
    ("fn", "op"),
    [
        (lambda x: 2.0 - x, "sub"),
        (lambda x: 2.0 / x, "div"),
        (lambda x: 2.0**x, "pow"),
        (lambda x: 2.0 % x, "mod"),
        (lambda x: np.float64(2.0) - x, "sub"),
        (lambda x: np.float64(2.0) / x, "div"),
    ],
)
def test_reflected_operators_put_the_constant_first(fn, op):
    g = trace(fn)
    node = g.nodes[g.outputs[0]]
    assert node.op == op
    first, second = (g.nodes[i] for i in node.inputs)
    assert first.op == "const" and float(first.attrs["value"]) == 2.0
    assert second.op == "input"


def test_reflected_operators_on_arrays_match_numpy():
    c = np.array([1.5, 0.5, 4.0])

    def f(x):
        return (c - x) * (c / x) + (c**x) - (c % x)

    g = trace(f)
    for x in (0.7, 1.9, 3.3):
        got = np.array(interpret(g, [x], PY_RULES), dtype=float)
        np.testing.assert_allclose(got, f(x), rtol=1e-12)


def test_unary_minus_abs_and_mixed_expression_against_a_direct_call():
    def f(x, y):
        return -(x - 3.0) / (1.0 + abs(y)) + 2.0**-x - (4.0 - y) ** 2 % 3.0

    rng = np.random.default_rng(0)
    g = trace(f)
    for x, y in rng.uniform(-3, 3, (20, 2)):
        (got,) = interpret(g, [x, y], PY_RULES)
        assert got == pytest.approx(f(x, y), rel=1e-12, abs=1e-12)


def test_inputs_by_name_bind_to_their_own_names_in_any_order():
    # Parameter names deliberately not in sorted order; each input enters with a different coefficient.
    def f(zeta, alpha, mid):
        return 100.0 * zeta + 10.0 * alpha + mid - zeta / alpha

    g = trace(f)
    assert list(g.input_names) == ["zeta", "alpha", "mid"]
    vals = {"zeta": 3.0, "alpha": 2.0, "mid": 7.0}
    expected = f(**vals)
    for order in (["alpha", "mid", "zeta"], ["mid", "zeta", "alpha"], ["zeta", "alpha", "mid"]):
        (by_name,) = interpret(g, {k: vals[k] for k in order}, PY_RULES)
        assert by_name == pytest.approx(expected, rel=1e-12), order
    (positional,) = interpret(g, [vals["zeta"], vals["alpha"], vals["mid"]], PY_RULES)
    assert positional == pytest.approx(expected, rel=1e-12)


def test_named_inputs_of_explicit_names():
    g = trace(lambda a, b, c: a - 2.0 * b + 4.0 * c, "c_last", "b_mid", "a_first")
    assert list(g.input_names) == ["c_last", "b_mid", "a_first"]
    (out,) = interpret(g, {"a_first": 1.0, "b_mid": 10.0, "c_last": 100.0}, PY_RULES)
    # Positional parameter a is the input named "c_last", b is "b_mid", c is "a_first".
    assert out == pytest.approx(100.0 - 2.0 * 10.0 + 4.0 * 1.0)


def test_on_node_sees_every_node_value_in_order():
    g = trace(lambda x, y: (x - y) * (y - x))
    seen = []
    interpret(g, {"y": 5.0, "x": 2.0}, PY_RULES, on_node=lambda n, v: seen.append((n.id, n.op, v)))
    assert [s[0] for s in seen] == list(range(len(g.nodes)))
    values = {s[1]: s[2] for s in seen if s[1] in ("mul",)}
    assert values["mul"] == pytest.approx((2.0 - 5.0) * (5.0 - 2.0))
    inputs = {g.nodes[i].attrs["name"]: v for i, _, v in seen if g.nodes[i].op == "input"}
    assert inputs == {"x": 2.0, "y": 5.0}


def test_clip_and_positive_match_numpy():
    def f(x):
        return np.clip(x, -0.5, 1.5) + np.positive(x) * 10.0

    g = trace(f)
    for x in (-2.0, -0.5, 0.3, 1.5, 4.0):
        (got,) = interpret(g, [x], PY_RULES)
        assert got == pytest.approx(float(f(x)), rel=1e-12), x


def test_variadic_function_inputs_are_numbered():
    g = trace(lambda *xs: xs[0] - 2.0 * xs[1], 1.0, 2.0)
    assert list(g.input_names) == ["x0", "x1"]
    (out,) = interpret(g, {"x1": 5.0, "x0": 1.0}, PY_RULES)
    assert out == pytest.approx(1.0 - 10.0)


def test_builder_rejects_an_input_id_that_does_not_exist_yet():
    from opgraph.graph import GraphBuilder, GraphError

    b = GraphBuilder()
    x = b.input("x")
    with pytest.raises(GraphError, match="does not exist yet"):
        b.add("neg", [x + 1])
    with pytest.raises(GraphError, match="does not exist yet"):
        b.add("neg", [-1])
    assert b.add("neg", [x]) == x + 1


def test_add_internal_dir_registers_a_directory_once(tmp_path):
    from opgraph.graph import tracer

    before = list(tracer._SKIP_DIRS)
    try:
        tracer.add_internal_dir(str(tmp_path))
        tracer.add_internal_dir(str(tmp_path / "." / ""))
        assert tracer._SKIP_DIRS.count(str(tmp_path)) == 1
        assert len(tracer._SKIP_DIRS) == len(before) + 1
    finally:
        tracer._SKIP_DIRS[:] = before
