"""Lazy random-variable arithmetic: ``(X * Y + od.sin(Z)).evaluate(atoms=256)``.

Every :class:`RandomVariable` is either an input law (a :class:`~opgraph.dcg.distributions.Distribution`) or an
expression built from others with operators, NumPy ufuncs (``np.sin(X)``) or the functions of this module
(``od.sin(X)``). Using the same Python object twice means the same random variable (so ``X - X`` is exactly 0);
two separately constructed ``Normal(0, 1)`` objects are independent.
"""

from __future__ import annotations

from abc import ABC
from typing import Any

import numpy as np

from opgraph.dcg.errors import DistError
from opgraph.graph.tracer import UFUNC_OPS

# NumPy/SciPy ufunc name -> op: the same table the core tracer uses, so `np.sin(X)` means what `trace` records.
_UFUNCS = UFUNC_OPS


class RandomVariable(ABC):  # noqa: B024  (no abstract method: expressions are concrete)
    """Base of input laws and lazy expressions: ``+ - * / ** abs``, comparisons, ``& | ^ ~`` of them, NumPy ufuncs."""

    __array_priority__ = 1000

    def __init__(self) -> None:
        self._rv_id = id(self)

    # -- building ----------------------------------------------------------------------------------------------
    def _apply(self, op: str, *args: Any) -> RVExpr:
        for a in args:
            if not isinstance(a, RandomVariable | int | float | np.number) or isinstance(a, bool):
                raise DistError(
                    f"cannot apply {op!r} to {type(a).__name__}; random variables combine with numbers and "
                    "other random variables"
                )
        return RVExpr(op, args)

    def __add__(self, o: Any) -> RVExpr:
        return self._apply("add", self, o)

    def __radd__(self, o: Any) -> RVExpr:
        return self._apply("add", o, self)

    def __sub__(self, o: Any) -> RVExpr:
        return self._apply("sub", self, o)

    def __rsub__(self, o: Any) -> RVExpr:
        return self._apply("sub", o, self)

    def __mul__(self, o: Any) -> RVExpr:
        return self._apply("mul", self, o)

    def __rmul__(self, o: Any) -> RVExpr:
        return self._apply("mul", o, self)

    def __truediv__(self, o: Any) -> RVExpr:
        return self._apply("div", self, o)

    def __rtruediv__(self, o: Any) -> RVExpr:
        return self._apply("div", o, self)

    def __pow__(self, o: Any) -> RVExpr:
        return self._apply("pow", self, o)

    def __rpow__(self, o: Any) -> RVExpr:
        return self._apply("pow", o, self)

    def __neg__(self) -> RVExpr:
        return self._apply("neg", self)

    def __pos__(self) -> RandomVariable:
        return self

    def __abs__(self) -> RVExpr:
        return self._apply("abs", self)

    def __lt__(self, o: Any) -> RVExpr:
        return self._apply("lt", self, o)

    def __le__(self, o: Any) -> RVExpr:
        return self._apply("le", self, o)

    def __gt__(self, o: Any) -> RVExpr:
        return self._apply("gt", self, o)

    def __ge__(self, o: Any) -> RVExpr:
        return self._apply("ge", self, o)

    def __and__(self, o: Any) -> RVExpr:
        return self._apply("and", self, o)

    def __rand__(self, o: Any) -> RVExpr:
        return self._apply("and", o, self)

    def __or__(self, o: Any) -> RVExpr:
        return self._apply("or", self, o)

    def __ror__(self, o: Any) -> RVExpr:
        return self._apply("or", o, self)

    def __xor__(self, o: Any) -> RVExpr:
        return self._apply("xor", self, o)

    def __rxor__(self, o: Any) -> RVExpr:
        return self._apply("xor", o, self)

    def __invert__(self) -> RVExpr:
        return self._apply("not", self)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise DistError(
            "a random variable has no single truth value (a Python `if` or `and`/`or` on it); "
            "use np.where(cond, a, b), np.maximum or np.minimum instead"
        )

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = ufunc.__name__
        if method != "__call__" or kwargs or name not in _UFUNCS:
            raise DistError(f"np.{name} is not supported on random variables; supported: {', '.join(sorted(_UFUNCS))}")
        return self._apply(_UFUNCS[name], *inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        if getattr(func, "__name__", "") == "where" and len(args) == 3 and not kwargs:
            return where(*args)
        raise DistError(f"np.{getattr(func, '__name__', func)} is not supported on random variables")

    # -- evaluation --------------------------------------------------------------------------------------------
    def evaluate(self, atoms: int = 256, **kwargs: Any) -> Any:
        """Evaluate this random variable; same keywords as :func:`opgraph.dcg.evaluate`."""
        from opgraph.dcg.api import evaluate_rv

        return evaluate_rv(self, atoms=atoms, **kwargs)


class RVExpr(RandomVariable):
    """A lazy expression ``op(*args)`` over random variables and numbers."""

    def __init__(self, op: str, args: tuple[Any, ...]) -> None:
        super().__init__()
        self.op = op
        self.args = args

    def __repr__(self) -> str:
        return f"RVExpr({self.op}, {len(self.args)} args)"


def _unary(op: str) -> Any:
    def fn(x: Any) -> Any:
        if isinstance(x, RandomVariable):
            return x._apply(op, x)
        from opgraph.graph import op_info

        return op_info(op).numpy(x)  # type: ignore[misc]

    fn.__name__ = op
    fn.__doc__ = f"``{op}`` of a random variable (lazy) or of a number/array (immediate)."
    return fn


sin, cos, tan, exp, log, sqrt = (_unary(o) for o in ("sin", "cos", "tan", "exp", "log", "sqrt"))
arcsin, arccos, arctan, sinh, cosh, tanh = (_unary(o) for o in ("arcsin", "arccos", "arctan", "sinh", "cosh", "tanh"))
expm1, log1p, log2, log10, cbrt, square = (_unary(o) for o in ("expm1", "log1p", "log2", "log10", "cbrt", "square"))
erf, sigmoid, relu, floor, ceil, sign = (_unary(o) for o in ("erf", "sigmoid", "relu", "floor", "ceil", "sign"))


def _binary(op: str) -> Any:
    def fn(x: Any, y: Any) -> Any:
        for a in (x, y):
            if isinstance(a, RandomVariable):
                return a._apply(op, x, y)
        from opgraph.graph import op_info

        return op_info(op).numpy(x, y)  # type: ignore[misc]

    fn.__name__ = op
    return fn


maximum, minimum, hypot, arctan2 = (_binary(o) for o in ("maximum", "minimum", "hypot", "arctan2"))


def where(cond: Any, a: Any, b: Any) -> Any:
    """``np.where(cond, a, b)`` for random variables (lazy)."""
    for x in (cond, a, b):
        if isinstance(x, RandomVariable):
            return x._apply("where", cond, a, b)
    return np.where(cond, a, b)
