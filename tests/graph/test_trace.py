import numpy as np
import pytest
import scipy.special

from opgraph.graph import GraphError, TraceError, interpret, numpy_rules, trace


def ops(g):
    return [n.op for n in g]


def test_cse_merges_identical_subexpressions():
    g = trace(lambda x: x - x)
    assert ops(g) == ["input", "sub"]
    assert g.nodes[1].inputs == (0, 0)
    g2 = trace(lambda x, y: x * y + x * y)
    assert ops(g2).count("mul") == 1


def test_operators_and_constants():
    g = trace(lambda x, y: (-x) ** 2 / (1 + abs(y)) - 3 % x)
    assert {"neg", "pow", "div", "add", "abs", "sub", "mod", "const"} <= set(ops(g))
    (v,) = interpret(g, [1.5, -2.0], numpy_rules())
    assert v == pytest.approx(((-1.5) ** 2) / 3.0 - (3 % 1.5))
    assert sum(1 for n in g if n.op == "const") == 3


def test_ufuncs_and_scipy_ufuncs():
    def f(x, y):
        return np.sin(x) * np.exp(y) + np.sqrt(np.abs(x)) + np.maximum(x, y) + np.tanh(x) + scipy.special.erf(y)

    g = trace(f)
    assert {"sin", "exp", "sqrt", "abs", "maximum", "tanh", "erf"} <= set(ops(g))
    (v,) = interpret(g, [0.3, -0.7], numpy_rules())
    assert v == pytest.approx(f(0.3, -0.7))


def test_comparisons_and_where():
    g = trace(lambda x: np.where(x > 0, x, 0.5 * x))
    assert "gt" in ops(g) and "where" in ops(g)
    rules = numpy_rules()
    assert interpret(g, [2.0], rules)[0] == 2.0
    assert interpret(g, [-2.0], rules)[0] == -1.0


def test_object_arrays_matmul_with_constant_matrix():
    W = np.array([[1.0, 2.0], [3.0, -4.0], [0.5, 0.0]])
    b = np.array([0.1, 0.2, 0.3])

    def mlp(v):
        return np.tanh(W @ v + b).sum()

    g = trace(mlp, np.zeros(2))
    assert g.input_names == ("v[0]", "v[1]")
    x = np.array([0.7, -0.2])
    (v,) = interpret(g, list(x), numpy_rules())
    assert v == pytest.approx(mlp(x))


def test_array_output_is_flattened_with_shape():
    g = trace(lambda v: np.maximum(v, 0.0) * 2, np.zeros((2, 2)))
    assert len(g.outputs) == 4
    assert g.meta["output_shape"] == [2, 2]


def test_tuple_outputs_and_names():
    g = trace(lambda a, b: (a + b, a * b), "p", "q")
    assert g.input_names == ("p", "q")
    assert interpret(g, {"p": 2.0, "q": 3.0}, numpy_rules()) == (5.0, 6.0)


def test_source_line_recorded():
    g = trace(lambda x: x * 2.0 + 1.0)
    src = g.nodes[-1].meta["source"]
    assert src.startswith("test_trace.py:")


def test_python_if_on_traced_value_is_a_clear_error():
    def f(x):
        if x > 0:
            return x
        return -x

    with pytest.raises(TraceError, match=r"control flow .*np.where"):
        trace(f)


def test_unsupported_numpy_function():
    with pytest.raises(TraceError, match="not supported"):
        trace(lambda x: np.sort(x))
    with pytest.raises(TraceError, match="returned str"):
        trace(lambda x: "nope")


def test_not_callable_and_duplicate_names():
    with pytest.raises(TraceError, match="callable"):
        trace(42)
    with pytest.raises(GraphError, match="used twice"):
        trace(lambda a, b: a + b, "x", "x")


def test_exception_inside_function_names_line():
    def f(x):
        return x + {}["k"]

    with pytest.raises(TraceError, match=r"could not trace f \(test_trace.py:\d+\): KeyError"):
        trace(f)
    with pytest.raises(TraceError, match=r"test_trace.py:\d+: cannot combine a traced value with list"):
        trace(lambda x: x + [1, 2])
