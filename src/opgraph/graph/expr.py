"""Safe compilation of a small arithmetic expression language for the CLI (``"x*y + sin(z)"``).

Only names, numbers, ``+ - * / **``, unary minus, comparisons and calls of the NumPy functions listed in
:data:`FUNCTIONS` are allowed; anything else raises :class:`ExpressionError` (a :class:`TraceError`) naming the offending part.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special

from opgraph.graph.errors import TraceError

FUNCTIONS: dict[str, Any] = {
    name: getattr(np, name)
    for name in [
        "sin",
        "cos",
        "tan",
        "arcsin",
        "arccos",
        "arctan",
        "sinh",
        "cosh",
        "tanh",
        "exp",
        "expm1",
        "log",
        "log1p",
        "log2",
        "log10",
        "sqrt",
        "cbrt",
        "abs",
        "square",
        "maximum",
        "minimum",
        "arctan2",
        "hypot",
        "where",
        "floor",
        "ceil",
        "sign",
    ]
}
FUNCTIONS.update(
    {
        "erf": scipy.special.erf,
        "sigmoid": scipy.special.expit,
        "max": np.maximum,
        "min": np.minimum,
        "asin": np.arcsin,
        "acos": np.arccos,
        "atan": np.arctan,
        "atan2": np.arctan2,
        "ln": np.log,
    }
)
CONSTANTS = {"pi": np.pi, "e": np.e}

_ALLOWED = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Compare,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.Pow,
    ast.USub,
    ast.UAdd,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.Tuple,
)


class ExpressionError(TraceError):
    """The expression uses syntax or a function that is not allowed."""


def compile_expression(text: str) -> tuple[Callable[..., Any], list[str]]:
    """Compile ``text`` into a function of its free variables.

    Returns:
        ``(fn, names)``: ``fn(*values)`` evaluates the expression; ``names`` are the variables in order of first
        appearance.

    Raises:
        ExpressionError: Syntax error, unknown function, or a construct other than arithmetic and calls.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = exc.offset if exc.offset else len(text)
        raise ExpressionError(f"expression {text!r} has a syntax error at column {column}: {exc.msg}") from exc
    names: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(
                f"expression {text!r}: {type(node).__name__} is not allowed (only arithmetic and calls)"
            )
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
                fname = ast.unparse(node.func)
                raise ExpressionError(
                    f"expression {text!r}: unknown function {fname!r}; allowed: {', '.join(sorted(FUNCTIONS))}"
                )
            if node.keywords:
                raise ExpressionError(f"expression {text!r}: keyword arguments are not allowed")
    call_names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Name)
            and node.id not in call_names
            and node.id not in CONSTANTS
            and node.id not in names
        ):
            names.append(node.id)
    # Order variables by their position in the text, not the walk order.
    positions = {n.id: (n.lineno, n.col_offset) for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names.sort(key=lambda n: positions[n])
    code = compile(tree, "<expression>", "eval")
    env = {"__builtins__": {}, **FUNCTIONS, **CONSTANTS}

    def fn(*values: Any) -> Any:
        return eval(code, env, dict(zip(names, values, strict=True)))  # noqa: S307 - AST checked above

    fn.__name__ = "expression"
    return fn, names
