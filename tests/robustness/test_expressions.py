"""Expressions that used to hang, overflow or recurse give one ExpressionError line before evaluating anything."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opgraph.graph.expr import MAX_DEPTH, ExpressionError, compile_expression


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("9**9**9", "overflows a float"),
        ("x**9**9**9", "9**9**9 overflows"),
        ("x + 10**10**7", "10**10**7 overflows"),
        ("x + 1e400", "1e400 is out of range"),
        ("x + 10" + "0" * 400, "out of range"),
        ("-(2**1023*2) + x", "overflows"),
        ("x + 1 / (1 - 1)", "divides by zero"),
        ("x + (-8)**(1/3)", "not a real number"),
        ("()", "is empty"),
        ("   ", "is empty"),
        ("(x, x) * 2", "tuple is allowed only at the top level"),
        ("+".join(["x"] * 30_000), "nested too deeply"),
        ("+".join(["x"] * (MAX_DEPTH + 5)), f"limit {MAX_DEPTH}"),
        ("(" * 300 + "x" + ")" * 300, "too"),
        ("x" * 200_000, "characters long"),
    ],
)
def test_bad_expression_is_refused_before_evaluation(text, needle):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert needle in str(info.value)


def test_limits_leave_ordinary_expressions_alone():
    fn, names = compile_expression("x**2 + 2**10 * y - 1e300 * 0 + pi")
    assert names == ["x", "y"]
    assert fn(3.0, 1.0) == pytest.approx(9 + 1024 + 3.141592653589793)
    # A balanced sum of many terms stays within the depth limit.
    fn, names = compile_expression("+".join(["x"] * (MAX_DEPTH - 10)))
    assert fn(1.0) == MAX_DEPTH - 10


def test_tuple_expression_returns_every_output():
    fn, names = compile_expression("x, x*2")
    assert names == ["x"] and fn(3.0) == (3.0, 6.0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dcg", "9**9**9", "--var", "x=normal:0,1"], "overflows a float"),
        (["dcg", "x + 10**10**7", "--var", "x=normal:0,1"], "overflows a float"),
        (["dcg", "()", "--var", "x=normal:0,1"], "is empty"),
        (["dcg", "x", "--var", "x=normal:1e300,1"], "out of range"),
        (["dcg", "x", "--var", "x=normal:nan,1"], "finite"),
        (["graph", "x**9**9**9"], "overflows a float"),
    ],
)
def test_cli_expression_errors_are_one_line(cli_error, args, needle):
    extra = ["--plot", ""] if args[0] == "dcg" else []
    cli_error(*args, *extra, needles=(needle,))


def test_cli_tuple_expression_prints_every_output(cli_run, tmp_path):
    # It printed only the first output.
    plot = tmp_path / "p.png"
    code, out, err = cli_run("dcg", "x, x*2", "--var", "x=normal:0,1", "--atoms", "64", "--plot", str(plot))
    assert code == 0, err
    assert "output 1 of 2" in out and "output 2 of 2" in out
    assert (tmp_path / "p-1.png").is_file() and (tmp_path / "p-2.png").is_file()
    # The second output is 2x: its printed std is twice the first's.
    stds = [float(re.search(r" std\s*│\s*(\S+)", line).group(1)) for line in out.splitlines() if " std " in line]
    assert stds[1] == pytest.approx(2 * stds[0], rel=1e-5)


def test_api_tuple_gives_every_output():
    from opgraph.dcg import distributions as d
    from opgraph.dcg.api import evaluate

    a, b = evaluate(lambda x: (x, x * 2), d.Normal(0, 1), atoms=64)
    assert b.std() == pytest.approx(2 * a.std(), rel=1e-9)


_TOKENS = ["x", "y", "9", "10", "1e308", "0", "**", "*", "+", "-", "/", "(", ")", ",", " ", "sin(", "pi", ".", "<"]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join))
def test_any_token_soup_compiles_or_raises_expression_error(text):
    # Never another exception and never a hang: constant subexpressions are bounded before compile().
    try:
        fn, names = compile_expression(text)
    except ExpressionError:
        return
    assert all(n.isidentifier() for n in names)
