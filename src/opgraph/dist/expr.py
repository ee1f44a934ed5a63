"""Safe parsing of command-line expressions (``"x*y + sin(z)"``) and input specs (``x=normal:1,0.1``)."""

from __future__ import annotations

import ast
import keyword
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from opgraph.dist import distributions as d
from opgraph.dist.errors import DistError

FUNCTIONS: dict[str, Callable[..., Any]] = {
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
        "square",
        "abs",
        "maximum",
        "minimum",
        "hypot",
        "arctan2",
        "floor",
        "ceil",
        "sign",
        "where",
    ]
}
FUNCTIONS["max"] = np.maximum
FUNCTIONS["min"] = np.minimum
CONSTANTS = {"pi": math.pi, "e": math.e}

FAMILIES: dict[str, tuple[Callable[..., d.Distribution], int]] = {
    "normal": (d.Normal, 2),
    "uniform": (d.Uniform, 2),
    "exponential": (d.Exponential, 1),
    "gamma": (d.Gamma, 2),
    "lognormal": (d.LogNormal, 2),
    "beta": (d.Beta, 2),
}

_BINOPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.true_divide, ast.Pow: np.power}
_CMPOPS = {ast.Lt: np.less, ast.LtE: np.less_equal, ast.Gt: np.greater, ast.GtE: np.greater_equal}


def parse_var(spec: str) -> tuple[str, d.Distribution]:
    """Parse one ``--var`` spec into ``(name, law)``.

    Forms: ``name=family:p1,p2`` (normal, uniform, exponential, gamma, lognormal, beta, discrete) or
    ``name=number``.

    Raises:
        DistError: the spec is malformed (the message shows the expected form).
    """
    form = "NAME=FAMILY:P1,P2 (for example x=normal:1,0.1 or y=uniform:0,2 or k=discrete:1,2,3)"
    if "=" not in spec:
        raise DistError(f"--var {spec!r}: expected {form}")
    name, rhs = (s.strip() for s in spec.split("=", 1))
    if not name.isidentifier() or keyword.iskeyword(name) or name in FUNCTIONS or name in CONSTANTS:
        raise DistError(f"--var {spec!r}: {name!r} is not a usable variable name")
    fam, _, params = rhs.partition(":")
    fam = fam.strip().lower()
    try:
        values = [float(p) for p in params.split(",")] if params.strip() else []
    except ValueError:
        raise DistError(f"--var {spec!r}: parameters must be numbers; expected {form}") from None
    if not params and not fam.isalpha():
        try:
            return name, d.Discrete([float(fam)])
        except ValueError:
            raise DistError(f"--var {spec!r}: expected {form}") from None
    if fam == "discrete":
        if not values:
            raise DistError(f"--var {spec!r}: discrete needs values, e.g. k=discrete:1,2,3")
        return name, d.Discrete(values)
    if fam not in FAMILIES:
        raise DistError(f"--var {spec!r}: unknown family {fam!r}; use one of {', '.join([*FAMILIES, 'discrete'])}")
    cls, n = FAMILIES[fam]
    if len(values) != n:
        raise DistError(f"--var {spec!r}: {fam} takes {n} parameter(s), got {len(values)}")
    return name, cls(*values)


def _eval(node: ast.AST, env: dict[str, Any]) -> Any:
    if isinstance(node, ast.Expression):
        return _eval(node.body, env)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id in env:
            return env[node.id]
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise DistError(f"expression: unknown name {node.id!r}; define it with --var {node.id}=normal:0,1")
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left, env), _eval(node.right, env))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        v = _eval(node.operand, env)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMPOPS:
        return _CMPOPS[type(node.ops[0])](_eval(node.left, env), _eval(node.comparators[0], env))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = FUNCTIONS.get(node.func.id)
        if fn is None:
            raise DistError(f"expression: unknown function {node.func.id!r}; known: {', '.join(sorted(FUNCTIONS))}")
        return fn(*[_eval(a, env) for a in node.args])
    raise DistError(
        f"expression: {ast.unparse(node)!r} is not allowed; use numbers, variables, + - * / **, comparisons and "
        f"the functions {', '.join(sorted(FUNCTIONS))}"
    )


def compile_expression(expr: str, names: list[str]) -> Callable[..., Any]:
    """Turn ``expr`` into a function of ``names`` (positional, in order) that the tracer can call.

    Raises:
        DistError: a syntax error or a disallowed construct (attribute access, unknown functions, ...).
    """
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise DistError(f"expression {expr!r}: syntax error at column {exc.offset}: {exc.msg}") from None
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} - set(FUNCTIONS) - set(CONSTANTS)
    missing = sorted(used - set(names))
    if missing:
        raise DistError(f"expression uses {missing} but no --var defines them; add --var {missing[0]}=normal:0,1")

    src = f"def f({', '.join(names)}):\n    return _eval(_tree, dict({', '.join(f'{n}={n}' for n in names)}))\n"
    ns: dict[str, Any] = {"_eval": _eval, "_tree": tree}
    exec(compile(src, "<opgraph dist expression>", "exec"), ns)  # noqa: S102  (names are validated identifiers)
    return ns["f"]
