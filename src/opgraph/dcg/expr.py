"""Safe parsing of command-line expressions (``"x*y + sin(z)"``) and input specs (``x=normal:1,0.1``)."""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable
from typing import Any

from opgraph.dcg import distributions as d
from opgraph.dcg.errors import DistError
from opgraph.graph.expr import CONSTANTS, FUNCTIONS, ExpressionError
from opgraph.graph.expr import compile_expression as core_compile

# The expression language (allowed syntax, functions and constants) is the core's: opgraph.graph.expr.
FAMILIES: dict[str, tuple[Callable[..., d.Distribution], int]] = {
    "normal": (d.Normal, 2),
    "uniform": (d.Uniform, 2),
    "exponential": (d.Exponential, 1),
    "gamma": (d.Gamma, 2),
    "lognormal": (d.LogNormal, 2),
    "beta": (d.Beta, 2),
}


# Parameters beyond this magnitude make squares (variances, W1 terms) overflow float64 (about 1.8e308).
MAX_PARAMETER = 1e150


def _check_magnitudes(spec: str, values: list[float]) -> None:
    """Refuse non-finite parameters and ones whose squares would overflow a float."""
    for v in values:
        if not abs(v) <= MAX_PARAMETER:
            raise DistError(
                f"--var {spec!r}: parameter {v:g} is out of range (finite, |p| <= {MAX_PARAMETER:g}, so that "
                "variances stay finite); rescale the variable"
            )


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
            value = float(fam)
        except ValueError:
            raise DistError(f"--var {spec!r}: expected {form}") from None
        _check_magnitudes(spec, [value])
        return name, d.Discrete([value])
    if fam == "discrete":
        if not values:
            raise DistError(f"--var {spec!r}: discrete needs values, e.g. k=discrete:1,2,3")
        _check_magnitudes(spec, values)
        return name, d.Discrete(values)
    if fam not in FAMILIES:
        raise DistError(f"--var {spec!r}: unknown family {fam!r}; use one of {', '.join([*FAMILIES, 'discrete'])}")
    cls, n = FAMILIES[fam]
    _check_magnitudes(spec, values)
    if len(values) != n:
        raise DistError(f"--var {spec!r}: {fam} takes {n} parameter(s), got {len(values)}")
    return name, cls(*values)


def compile_expression(expr: str, names: list[str]) -> Callable[..., Any]:
    """Turn ``expr`` into a function of ``names`` (positional, in order) that the tracer can call.

    Raises:
        DistError: a syntax error, a disallowed construct, or a variable that no ``--var`` defines.
    """
    try:
        fn, used = core_compile(expr)
    except ExpressionError as exc:
        raise DistError(str(exc)) from None
    missing = [n for n in used if n not in names]
    if missing:
        raise DistError(f"expression uses {missing} but no --var defines them; add --var {missing[0]}=normal:0,1")

    def f(*values: Any) -> Any:
        env = dict(zip(names, values, strict=True))
        return fn(*(env[n] for n in used))

    f.__name__ = "expression"
    # Name the parameters after the variables, so traced inputs (and bound terms) carry the user's names.
    f.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD) for n in names]
    )
    return f
