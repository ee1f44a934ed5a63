"""Safe compilation of a small arithmetic expression language for the CLI (``"x*y + sin(z)"``).

Only names, numbers, ``+ - * / **``, unary minus, comparisons and calls of the NumPy functions listed in
:data:`FUNCTIONS` are allowed; anything else raises :class:`ExpressionError` (a :class:`TraceError`) naming the offending part.
"""

from __future__ import annotations

import ast
import math
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


# Limits checked on the syntax tree before anything is evaluated: deeper trees overflow Python's own compiler
# (RecursionError near depth 1000), and constant powers such as ``9**9**9`` would compute integers with millions
# of digits (minutes of CPU and gigabytes of memory) before any arithmetic error could be raised.
MAX_DEPTH = 200
MAX_NODES = 20_000
MAX_LENGTH = 100_000
# The largest magnitude a constant (sub)expression may have: a float64 holds up to about 1.8e308.
MAX_CONSTANT = 1.0e308


class ExpressionError(TraceError):
    """The expression uses syntax or a function that is not allowed."""


def _depth(tree: ast.AST) -> int:
    """Nesting depth of ``tree``, computed without recursion (so a pathological tree cannot overflow the stack)."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _source(text: str, node: ast.AST) -> str:
    """The part of ``text`` that ``node`` was parsed from, shortened to 40 characters."""
    part = ast.get_source_segment(text.strip(), node) or ast.unparse(node)
    return part if len(part) <= 40 else part[:37] + "..."


def _constant_value(node: ast.AST, text: str) -> float | None:
    """The value of ``node`` if it is made of constants only, else ``None``; refuse constants out of float range.

    Computed in floating point so that the check itself is cheap (``9**9**9`` is refused, never computed).

    Raises:
        ExpressionError: a constant or constant subexpression is not a finite float (overflow, division by zero).
    """
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ExpressionError(f"expression {text!r}: constant {value!r} is not a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number) or abs(number) > MAX_CONSTANT:
            raise ExpressionError(
                f"expression {text!r}: constant {_source(text, node)} is out of range (|c| <= {MAX_CONSTANT:g})"
            )
        return number
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return float(CONSTANTS[node.id])
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _constant_value(node.operand, text)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.BinOp):
        left, right = _constant_value(node.left, text), _constant_value(node.right, text)
        if left is None or right is None:
            return None
        part = _source(text, node)
        try:
            if isinstance(node.op, ast.Add):
                value = left + right
            elif isinstance(node.op, ast.Sub):
                value = left - right
            elif isinstance(node.op, ast.Mult):
                value = left * right
            elif isinstance(node.op, ast.Div):
                value = left / right
            else:
                value = left**right
        except ZeroDivisionError:
            raise ExpressionError(f"expression {text!r}: {part} divides by zero") from None
        except OverflowError:
            value = math.inf
        if isinstance(value, complex):
            raise ExpressionError(f"expression {text!r}: {part} is not a real number") from None
        if not math.isfinite(value) or abs(value) > MAX_CONSTANT:
            raise ExpressionError(
                f"expression {text!r}: the constant {part} overflows a float (|c| <= {MAX_CONSTANT:g}); "
                "write a smaller constant"
            )
        return value
    return None


def _check_limits(tree: ast.Expression, text: str) -> None:
    """Refuse trees too deep or too large to compile, constants out of float range, and tuples of tuples.

    Raises:
        ExpressionError: naming the limit that was exceeded.
    """
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES:
        raise ExpressionError(
            f"expression has {count} syntax nodes (limit {MAX_NODES}); split it or write a Python function"
        )
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise ExpressionError(
            f"expression is nested {depth} levels deep (limit {MAX_DEPTH}); "
            "split it into parts or use parentheses to balance long sums"
        )
    body = tree.body
    if isinstance(body, ast.Tuple) and not body.elts:
        raise ExpressionError(f"expression {text!r} is empty; write at least one output such as 'x*y'")
    for node in ast.walk(tree):
        if isinstance(node, ast.Tuple) and node is not body:
            raise ExpressionError(
                f"expression {text!r}: a tuple is allowed only at the top level ('x, x*2' gives two outputs)"
            )
        if isinstance(node, ast.Constant | ast.BinOp | ast.UnaryOp):
            _constant_value(node, text)


def compile_expression(text: str) -> tuple[Callable[..., Any], list[str]]:
    """Compile ``text`` into a function of its free variables.

    A tuple at the top level (``"x, x*2"``) gives a function that returns a tuple, one value per output.

    Returns:
        ``(fn, names)``: ``fn(*values)`` evaluates the expression; ``names`` are the variables in order of first
        appearance.

    Raises:
        ExpressionError: Syntax error, unknown function, or a construct other than arithmetic and calls.
    """
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long (limit {MAX_LENGTH}); write a Python function instead"
        )
    if not text.strip():
        raise ExpressionError("expression is empty; write one such as 'x*y + sin(z)'")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = exc.offset if exc.offset else len(text)
        raise ExpressionError(f"expression {text[:60]!r} has a syntax error at column {column}: {exc.msg}") from exc
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression is nested too deeply to parse (limit {MAX_DEPTH} levels); split it into parts"
        ) from None
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
    _check_limits(tree, text)
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
