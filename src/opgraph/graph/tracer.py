"""Tracing Python functions into graphs: proxies with operator overloading and NumPy ufunc support.

:func:`trace` calls a function with :class:`Proxy` objects. Arithmetic, comparisons and NumPy/SciPy ufuncs on
proxies record nodes in a :class:`GraphBuilder`, which merges identical subexpressions (so ``x - x`` sees one
``x``) and records the user's source line of each node. An array example becomes a :class:`ProxyArray` (an object
array of proxies), so ``W @ x`` with a constant matrix ``W`` and ``np.maximum(W @ x, 0)`` work.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Sequence
from types import FrameType, TracebackType
from typing import Any

import numpy as np

from opgraph.graph.errors import GraphError, TraceError
from opgraph.graph.ir import Graph, Node
from opgraph.graph.ops import op_info

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_DIRS: list[str] = [os.path.dirname(os.path.abspath(np.__file__))]


def add_internal_dir(path: str) -> None:
    """Treat frames under ``path`` as library code, not the user's, when recording source lines.

    A system that builds graphs on the user's behalf (e.g. lazy random-variable arithmetic) calls this with its
    package directory so that nodes point at the user's line rather than the system's.
    """
    full = os.path.abspath(path)
    if full not in _SKIP_DIRS:
        _SKIP_DIRS.append(full)


#: NumPy / SciPy ufunc name -> canonical op name.
UFUNC_OPS: dict[str, str] = {
    "add": "add",
    "subtract": "sub",
    "multiply": "mul",
    "true_divide": "div",
    "divide": "div",
    "power": "pow",
    "float_power": "pow",
    "remainder": "mod",
    "mod": "mod",
    "negative": "neg",
    "absolute": "abs",
    "fabs": "abs",
    "less": "lt",
    "less_equal": "le",
    "greater": "gt",
    "greater_equal": "ge",
    "equal": "eq",
    "not_equal": "ne",
    "fmax": "maximum",
    "fmin": "minimum",
    "expit": "sigmoid",
    # truth values: bitwise ops of comparisons (``(x > a) | (y > b)``, ``mask |= ...``) and NumPy's logical_*
    "bitwise_and": "and",
    "bitwise_or": "or",
    "bitwise_xor": "xor",
    "invert": "not",
    "logical_and": "logical_and",
    "logical_or": "logical_or",
    "logical_xor": "logical_xor",
    "logical_not": "logical_not",
}
#: Ufuncs whose op has the same name.
_SAME_NAME_UFUNCS = [
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "arcsinh",
    "arccosh",
    "arctanh",
    "exp",
    "exp2",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sqrt",
    "cbrt",
    "square",
    "reciprocal",
    "sign",
    "floor",
    "ceil",
    "rint",
    "maximum",
    "minimum",
    "arctan2",
    "hypot",
    "erf",
]
for _name in _SAME_NAME_UFUNCS:
    UFUNC_OPS[_name] = _name


#: Ops whose value is a truth value (comparisons and the truth ops of them): the elements of a traced boolean mask.
TRUTH_OPS = frozenset(
    {"lt", "le", "gt", "ge", "eq", "ne", "and", "or", "xor", "not", "logical_and", "logical_or", "logical_xor"}
    | {"logical_not"}
)
#: Truth ops with a neutral constant (``False | m`` is ``m``, ``True & m`` is ``m``).
_NEUTRAL = {"or": False, "logical_or": False, "and": True, "logical_and": True}


def user_source(skip: Sequence[str] = ()) -> tuple[str, str]:
    """Return ``("file.py:LINE", function)`` of the first caller frame outside the core, NumPy and ``skip``."""
    frame: FrameType | None = sys._getframe(1)
    skip_dirs = (_PKG_DIR, *_SKIP_DIRS, *skip)
    while frame is not None:
        fname = frame.f_code.co_filename
        if not fname.startswith(skip_dirs) and not fname.startswith("<frozen"):
            return f"{os.path.basename(fname)}:{frame.f_lineno}", frame.f_code.co_name
        frame = frame.f_back
    return "<unknown>:0", "<unknown>"


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, float | np.floating):
        return ("float", repr(float(value)))
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int | np.integer):
        return ("int", int(value))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


class GraphBuilder:
    """Accumulates nodes in topological order, merging identical subexpressions.

    Example:
        >>> b = GraphBuilder()
        >>> x = b.input("x")
        >>> y = b.add("mul", (x, b.const(2.0)))
        >>> g = b.build([y])
    """

    def __init__(self, *, cse: bool = True, name: str = "graph") -> None:
        """Create an empty builder; ``cse=False`` keeps duplicate subexpressions apart."""
        self.nodes: list[Node] = []
        self.inputs: list[int] = []
        self.cse = cse
        self.name = name
        self._memo: dict[Any, int] = {}
        self._input_names: dict[str, int] = {}

    def input(self, name: str, meta: dict[str, Any] | None = None) -> int:
        """Add a graph input called ``name`` and return its id; a repeated name raises :class:`GraphError`."""
        if name in self._input_names:
            raise GraphError(f"input name {name!r} is used twice; give every input its own name")
        nid = self._append("input", (), {"name": name}, meta)
        self.inputs.append(nid)
        self._input_names[name] = nid
        return nid

    def const(self, value: Any, meta: dict[str, Any] | None = None) -> int:
        """Add (or reuse) a constant node holding ``value``."""
        key = ("const", _freeze(value))
        if self.cse and key in self._memo:
            return self._memo[key]
        nid = self._append("const", (), {"value": value}, meta)
        if self.cse:
            self._memo[key] = nid
        return nid

    def add(
        self,
        op: str,
        inputs: Sequence[int],
        attrs: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Add (or reuse) a node ``op(*inputs)``; checks the op exists and its arity."""
        info = op_info(op)
        ins = tuple(int(i) for i in inputs)
        if info.arity is not None and len(ins) != info.arity:
            raise GraphError(f"op {op!r} takes {info.arity} input(s), got {len(ins)}")
        for i in ins:
            if not 0 <= i < len(self.nodes):
                raise GraphError(f"op {op!r}: input %{i} does not exist yet")
        attrs = dict(attrs or {})
        key = (op, ins, _freeze(attrs))
        if self.cse and key in self._memo:
            return self._memo[key]
        nid = self._append(op, ins, attrs, meta)
        if self.cse:
            self._memo[key] = nid
        return nid

    def _append(self, op: str, inputs: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any] | None) -> int:
        nid = len(self.nodes)
        m = dict(meta or {})
        if "source" not in m:
            m["source"], m["func"] = user_source()
        self.nodes.append(Node(nid, op, inputs, attrs, m))
        return nid

    def build(self, outputs: Sequence[int], meta: dict[str, Any] | None = None) -> Graph:
        """Return the :class:`Graph` with the given output ids."""
        return Graph(
            tuple(self.nodes),
            tuple(self.inputs),
            tuple(int(o) for o in outputs),
            {"name": self.name, **(meta or {})},
        )


class Proxy:
    """A traced scalar value: operations on it record nodes in its builder.

    Attributes:
        builder: The :class:`GraphBuilder` that records the operations.
        node_id: The id of the node whose value this proxy stands for.
    """

    __array_priority__ = 1000

    def __init__(self, builder: GraphBuilder, node_id: int) -> None:
        """Wrap node ``node_id`` of ``builder``."""
        self.builder = builder
        self.node_id = node_id

    # -- building ----------------------------------------------------------------------------------------------
    def _lift(self, other: Any) -> int:
        if isinstance(other, Proxy):
            if other.builder is not self.builder:
                raise TraceError("values from two different traces were combined; trace them in one function")
            return other.node_id
        if isinstance(other, np.ndarray) and other.dtype == object:
            raise TraceError("internal: object arrays must be handled elementwise")
        if isinstance(other, bool | int | float | complex | np.number | np.bool_):
            return self.builder.const(other)
        src, _ = user_source()
        raise TraceError(
            f"{src}: cannot combine a traced value with {type(other).__name__}; "
            "use numbers, NumPy arrays or traced values"
        )

    def _op(self, op: str, *args: Any) -> Proxy:
        if op in _NEUTRAL and len(args) == 2:  # False | m and True & m are m (a mask accumulated from np.zeros)
            for a, b in (args, args[::-1]):
                if isinstance(a, bool | np.bool_) and a == _NEUTRAL[op] and self._is_truth(b):
                    return b  # type: ignore[no-any-return]
        return type(self)(self.builder, self.builder.add(op, [self._lift(a) for a in args]))

    def _is_truth(self, value: Any) -> bool:
        return (
            isinstance(value, Proxy)
            and value.builder is self.builder
            and self.builder.nodes[value.node_id].op in TRUTH_OPS
        )

    def __repr__(self) -> str:
        return f"Proxy(%{self.node_id} {self.builder.nodes[self.node_id].op})"

    # -- arithmetic ------------------------------------------------------------------------------------------
    def __add__(self, o: Any) -> Any:
        return _dispatch("add", self, o)

    def __radd__(self, o: Any) -> Any:
        return _dispatch("add", o, self)

    def __sub__(self, o: Any) -> Any:
        return _dispatch("sub", self, o)

    def __rsub__(self, o: Any) -> Any:
        return _dispatch("sub", o, self)

    def __mul__(self, o: Any) -> Any:
        return _dispatch("mul", self, o)

    def __rmul__(self, o: Any) -> Any:
        return _dispatch("mul", o, self)

    def __truediv__(self, o: Any) -> Any:
        return _dispatch("div", self, o)

    def __rtruediv__(self, o: Any) -> Any:
        return _dispatch("div", o, self)

    def __pow__(self, o: Any) -> Any:
        return _dispatch("pow", self, o)

    def __rpow__(self, o: Any) -> Any:
        return _dispatch("pow", o, self)

    def __mod__(self, o: Any) -> Any:
        return _dispatch("mod", self, o)

    def __rmod__(self, o: Any) -> Any:
        return _dispatch("mod", o, self)

    def __neg__(self) -> Proxy:
        return self._op("neg", self)

    def __pos__(self) -> Proxy:
        return self

    def __abs__(self) -> Proxy:
        return self._op("abs", self)

    def __lt__(self, o: Any) -> Any:
        return _dispatch("lt", self, o)

    def __le__(self, o: Any) -> Any:
        return _dispatch("le", self, o)

    def __gt__(self, o: Any) -> Any:
        return _dispatch("gt", self, o)

    def __ge__(self, o: Any) -> Any:
        return _dispatch("ge", self, o)

    def __eq__(self, o: Any) -> Any:
        return _dispatch("eq", self, o)

    def __ne__(self, o: Any) -> Any:
        return _dispatch("ne", self, o)

    def __and__(self, o: Any) -> Any:
        return _dispatch("and", self, o)

    def __rand__(self, o: Any) -> Any:
        return _dispatch("and", o, self)

    def __or__(self, o: Any) -> Any:
        return _dispatch("or", self, o)

    def __ror__(self, o: Any) -> Any:
        return _dispatch("or", o, self)

    def __xor__(self, o: Any) -> Any:
        return _dispatch("xor", self, o)

    def __rxor__(self, o: Any) -> Any:
        return _dispatch("xor", o, self)

    def __invert__(self) -> Proxy:
        return self._op("not", self)

    def conjugate(self) -> Proxy:
        """A real traced value is its own conjugate (``np.conjugate`` of an object array calls this)."""
        return self

    __hash__ = object.__hash__

    # -- no concrete values while tracing ------------------------------------------------------------------------
    def __bool__(self) -> bool:
        src, _ = user_source()
        raise TraceError(
            f"{src}: Python control flow (`if`, `while`, `and`, `or`, `min`, `max`) on a traced value cannot be "
            "traced; use np.where(cond, a, b), np.maximum or np.minimum instead"
        )

    def __float__(self) -> float:
        called = _scipy_caller(sys._getframe(1))
        if called is not None:  # SciPy converts its arguments to floats (solve_ivp, optimize.root)
            raise TraceError(f"{called[0]}: {_scipy_message(called[1])}")
        src, _ = user_source()
        if _storing_item(_user_frame()):
            raise TraceError(
                f"{src}: y[...] = x stores a traced value into a NumPy array of floats, which cannot hold it; build "
                "y from traced values instead (y = x, y = y + x, np.where(mask, x, y)), or create y with dtype=object"
            )
        raise TraceError(
            f"{src}: float() of a traced value has no single value while tracing (math.sin(x), math.exp(x), "
            "float(x) and int(x) all call it); use the NumPy ufunc instead (np.sin(x), np.exp(x)) or keep it symbolic"
        )

    __int__ = __float__
    __index__ = __float__

    # -- NumPy protocol ----------------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        if out is not None:
            return _ufunc_into(ufunc, method, inputs, out, kwargs)
        if method != "__call__" or kwargs:
            src, _ = user_source()
            raise TraceError(
                f"{src}: np.{ufunc.__name__}.{method} is not supported on traced values; call the ufunc itself "
                f"(np.{ufunc.__name__}(a, b)) on traced values"
            )
        return apply_ufunc(ufunc, *inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", str(func))
        if name == "where" and len(args) == 3 and not kwargs:
            return _dispatch("where", *args)
        if name == "clip" and len(args) == 3 and not kwargs:
            return apply_ufunc(np.minimum, apply_ufunc(np.maximum, args[0], args[1]), args[2])
        if name in ("select", "piecewise"):  # nested np.where (opgraph.graph.arrays)
            from opgraph.graph import arrays

            return getattr(arrays, name)(*args, **kwargs)
        src, _ = user_source()
        raise TraceError(
            f"{src}: np.{name} is not supported on traced values; use elementwise operations and ufuncs "
            "(np.sin, np.exp, np.maximum, np.where, ...)"
        )


def _make_method(ufunc_name: str) -> Callable[..., Any]:
    op = UFUNC_OPS[ufunc_name]

    def method(self: Proxy, *others: Any) -> Any:
        return _dispatch(op, self, *others)

    method.__name__ = ufunc_name
    method.__doc__ = f"``np.{ufunc_name}`` on an object array calls this method on each element."
    return method


# np.sin(object_array) calls element.sin(): give proxies a method per ufunc that NumPy dispatches this way.
for _ufunc_name in [n for n in _SAME_NAME_UFUNCS if n not in ("maximum", "minimum", "erf")]:
    setattr(Proxy, _ufunc_name, _make_method(_ufunc_name))


def _first_proxy(args: Sequence[Any]) -> Proxy | None:
    for a in args:
        if isinstance(a, Proxy):
            return a
        if isinstance(a, np.ndarray) and a.dtype == object:
            for e in a.flat:
                if isinstance(e, Proxy):
                    return e
    return None


def _boxed(value: Any) -> np.ndarray:
    """A 0-d object array holding ``value`` (a proxy passed to ``np.broadcast_arrays`` would dispatch to it)."""
    box = np.empty((), dtype=object)
    box[()] = value
    return box


def _dispatch(op: str, *args: Any) -> Any:
    """Apply ``op`` to scalars, proxies and arrays (arrays elementwise, returning a :class:`ProxyArray`)."""
    if any(isinstance(a, np.ndarray) for a in args):
        arrays = np.broadcast_arrays(
            *[np.asarray(a, dtype=object) if isinstance(a, np.ndarray) else _boxed(a) for a in args]
        )
        out = np.empty(arrays[0].shape, dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = _dispatch(op, *(a[idx] for a in arrays))
        return out.view(ProxyArray)
    p = _first_proxy(args)
    if p is None:
        fn = op_info(op).numpy
        assert fn is not None
        return fn(*args)
    return p._op(op, *args)


def _degree(n: Any) -> int | None:
    """``n`` as a polynomial degree (a plain non-negative integer, not traced), else None."""
    if isinstance(n, bool | np.bool_) or not isinstance(n, int | np.integer | float | np.floating):
        return None
    return int(n) if float(n).is_integer() and 0 <= n <= 64 else None


def _chebyshev_t(n: int, x: Any) -> Any:
    """``T_n(x)`` by the three-term recurrence ``T_{k+1} = 2 x T_k - T_{k-1}`` (``scipy.special.eval_chebyt``)."""
    prev, cur = 1.0 + 0.0 * x, x
    if n == 0:
        return prev
    for _ in range(n - 1):
        prev, cur = cur, 2.0 * x * cur - prev
    return cur


#: SciPy's orthogonal-polynomial ufuncs of a constant integer degree, traced as the polynomial's arithmetic.
_POLYNOMIALS: dict[str, Callable[[int, Any], Any]] = {"eval_chebyt": _chebyshev_t}


def apply_ufunc(ufunc: Any, *inputs: Any) -> Any:
    """Apply a NumPy/SciPy ufunc to traced values (scalars or arrays); raises TraceError if unsupported."""
    name = getattr(ufunc, "__name__", str(ufunc))
    if name in ("positive", "conjugate"):  # traced values are real: np.std and np.linalg.norm conjugate
        return inputs[0]
    if name == "heaviside" and len(inputs) == 2:
        from opgraph.graph.arrays import heaviside

        return heaviside(*inputs)
    degree = _degree(inputs[0]) if name in _POLYNOMIALS and len(inputs) == 2 else None
    if degree is not None:
        return _as_proxy_array(_POLYNOMIALS[name](degree, _as_proxy_array(inputs[1])))
    if name == "matmul":
        plain = [np.asarray(a, dtype=object) if isinstance(a, np.ndarray) else a for a in inputs]
        result = np.matmul(*[a.view(np.ndarray) if isinstance(a, np.ndarray) else a for a in plain])
        return result.view(ProxyArray) if isinstance(result, np.ndarray) else result
    op = UFUNC_OPS.get(name)
    if op is None:
        src, _ = user_source()
        raise TraceError(
            f"{src}: NumPy function {name!r} is not supported on traced values; supported: "
            f"{', '.join(sorted(UFUNC_OPS))}"
        )
    # A list or tuple operand is an array to a ufunc (``xx ** [1.75, 1.5]``), as in NumPy.
    return _dispatch(
        op,
        *[
            a.view(np.ndarray) if isinstance(a, ProxyArray) else np.asarray(a) if isinstance(a, list | tuple) else a
            for a in inputs
        ],
    )


class ProxyArray(np.ndarray):
    """An object array of :class:`Proxy` elements whose ufuncs (and ``@``) are traced elementwise."""

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        # NumPy's own implementation; object arrays it returns (np.vstack, np.concatenate, np.append...) stay
        # ProxyArrays, so a later reduction (np.min(np.vstack(...), axis=0)) is traced instead of comparing proxies.
        name = getattr(func, "__name__", "")
        if name == "where" and len(args) == 3 and not kwargs:  # elementwise, as on traced scalars
            return _dispatch("where", *[a.view(np.ndarray) if isinstance(a, ProxyArray) else a for a in args])
        if name == "clip" and len(args) == 3 and not kwargs:
            return apply_ufunc(np.minimum, apply_ufunc(np.maximum, args[0], args[1]), args[2])
        if name in ("select", "piecewise") and _holds_proxy(args):  # nested np.where (opgraph.graph.arrays)
            from opgraph.graph import arrays

            return getattr(arrays, name)(*args, **kwargs)
        try:
            result = super().__array_function__(func, types, args, kwargs)
        except TraceError as exc:
            if not (_holds_proxy(args) or _holds_proxy(kwargs)):  # numbers only: NumPy computes it
                return func(*_constants(args), **_constants(kwargs))
            if "control flow" not in str(exc):
                raise
            src, _ = user_source()
            raise TraceError(
                f"{src}: np.{name} compares traced values to order or select them, which depends on their values; "
                "use np.min / np.max along an axis, np.minimum / np.maximum or np.where"
            ) from None
        except (TypeError, ValueError):
            # an array of numbers only (np.zeros in traced code, not yet written to) acts as a float array
            if _holds_proxy(args) or _holds_proxy(kwargs):
                raise
            return func(*_constants(args), **_constants(kwargs))
        if isinstance(result, tuple | list):
            return type(result)(_as_proxy_array(r) for r in result)
        return _as_proxy_array(result)

    def astype(self, dtype: Any, *args: Any, **kwargs: Any) -> Any:
        """``x.astype(float)`` keeps the traced values (real; a comparison is 0 or 1); ``astype(bool)`` is ``x != 0``.

        An integer type would truncate, which is not traced (use ``np.floor`` / ``np.ceil``).
        """
        if not _holds_proxy(self.view(np.ndarray)):
            return _constants(self.view(np.ndarray)).astype(dtype, *args, **kwargs)
        kind = np.dtype(dtype).kind
        if kind in "fO":
            return np.array(self.view(np.ndarray), dtype=object).view(ProxyArray)
        if kind == "b":
            return _dispatch("ne", self.view(np.ndarray), 0.0)
        src, _ = user_source()
        raise TraceError(
            f"{src}: astype({np.dtype(dtype).name}) of traced values would truncate them; use np.floor, np.ceil or "
            "np.rint (or astype(float))"
        )

    def __getitem__(self, index: Any) -> Any:
        if _object_index(index):  # a traced boolean mask, or an object array of plain numbers
            from opgraph.graph import arrays

            split = arrays.split_mask(index, self.shape)
            if split is not None:
                return arrays.masked_getitem(self, split)
            index = arrays.plain_index(index)
        return super().__getitem__(index)

    def __setitem__(self, index: Any, value: Any) -> None:
        if _object_index(index) or isinstance(value, ProxyArray) and hasattr(value, "mask_axis"):
            from opgraph.graph import arrays

            split = arrays.split_mask(index, self.shape)
            if split is not None:
                arrays.masked_setitem(self, split, value)
                return
            if isinstance(value, arrays.MaskedProxyArray):
                src, _ = user_source()
                raise TraceError(
                    f"{src}: y[...] = x[mask] with a traced mask has a data-dependent length; store it with the same "
                    "mask (y[mask] = x[mask]) or write y = np.where(mask, x, y)"
                )
            index = arrays.plain_index(index)
        super().__setitem__(index, value)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [a.view(np.ndarray) if isinstance(a, ProxyArray) else a for a in inputs]
        traced_call = method == "__call__" and (ufunc.__name__ in UFUNC_OPS or ufunc.__name__ == "matmul")
        if not traced_call and "out" not in kwargs and not _holds_proxy(plain):
            # numbers only (an np.zeros array of traced code before any write): NumPy computes it (np.cumsum, np.isnan)
            return getattr(ufunc, method)(*_constants(plain), **_constants(kwargs))
        out = kwargs.pop("out", None)
        if out is not None:
            return _ufunc_into(ufunc, method, plain, out, kwargs)
        if method == "__call__":
            return apply_ufunc(ufunc, *plain)
        if method == "reduce" and ufunc.__name__ in UFUNC_OPS:
            arr = np.asarray(plain[0], dtype=object)
            axis = kwargs.get("axis", 0)
            moved = np.moveaxis(arr, 0 if axis is None else axis, 0) if arr.ndim else arr
            if axis is None:
                moved = arr.reshape(-1)
            acc = moved[0]
            for k in range(1, moved.shape[0]):
                acc = _dispatch(UFUNC_OPS[ufunc.__name__], acc, moved[k])
            return acc.view(ProxyArray) if isinstance(acc, np.ndarray) else acc
        src, _ = user_source()
        raise TraceError(
            f"{src}: np.{ufunc.__name__}.{method} is not supported on traced arrays; write it with elementwise "
            "operations and reductions along an axis (np.sum, np.prod, np.min, np.max)"
        )


def _object_index(index: Any) -> bool:
    """Whether an index has an object-array component (the only kind that can hold traced values)."""
    if isinstance(index, np.ndarray):
        return bool(index.dtype == object)
    return isinstance(index, tuple) and any(isinstance(c, np.ndarray) and c.dtype == object for c in index)


def _holds_proxy(value: Any) -> bool:
    """Whether ``value`` (nested lists, tuples, dicts, object arrays) holds a traced value."""
    if isinstance(value, Proxy):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype == object and any(isinstance(e, Proxy) for e in value.flat)
    if isinstance(value, list | tuple):
        return any(_holds_proxy(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_proxy(v) for v in value.values())
    return False


def _constants(value: Any) -> Any:
    """``value`` with object arrays of numbers (no traced value) turned into NumPy number arrays."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        return np.array(value.tolist()) if value.ndim else np.array(value[()])
    if isinstance(value, list | tuple):
        return type(value)(_constants(v) for v in value)
    if isinstance(value, dict):
        return {k: _constants(v) for k, v in value.items()}
    return value


def _user_frame() -> FrameType | None:
    """The first caller frame outside the core and NumPy (the user's line)."""
    frame: FrameType | None = sys._getframe(1)
    skip_dirs = (_PKG_DIR, *_SKIP_DIRS)
    while frame is not None and (frame.f_code.co_filename.startswith(skip_dirs + ("<frozen",))):
        frame = frame.f_back
    return frame


def _augmented_assignment(frame: FrameType | None) -> bool:
    """Whether ``frame`` is executing an augmented assignment (``y += x``, ``y *= x``, ...)."""
    if frame is None:
        return False
    import dis

    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return ins.opname == "BINARY_OP" and str(ins.argrepr).endswith("=")
    return False


def _storing_item(frame: FrameType | None) -> bool:
    """Whether ``frame`` is executing a subscript store (``y[i] = x``, also the store of ``y[i] += x``)."""
    if frame is None:
        return False
    import dis

    for ins in dis.get_instructions(frame.f_code):
        if ins.offset == frame.f_lasti:
            return ins.opname == "STORE_SUBSCR"
    return False


def _ufunc_into(ufunc: np.ufunc, method: str, inputs: Sequence[Any], out: Any, kwargs: dict[str, Any]) -> Any:
    """``np.<ufunc>(..., out=arr)`` on traced values (``y += x`` calls it so).

    An object array ``arr`` receives the traced values. A float array cannot hold them: in an augmented assignment
    (``y = np.zeros(n); y += x``, the accumulation loops of vectorised test functions) Python rebinds ``y`` to what
    the ufunc returns, so a new traced array is returned (another name bound to the old float array keeps its old
    values); an explicit ``out=`` of a float array raises a one-line error naming the line and the fix.
    """
    target = out[0] if isinstance(out, tuple) and len(out) == 1 else out
    # NumPy's own np.mean / np.std divide into their result with casting="unsafe", subok=False: no-ops here
    kwargs = {k: v for k, v in kwargs.items() if not (k == "casting" or (k == "subok" and v is False))}
    if method != "__call__" or kwargs or not isinstance(target, np.ndarray):
        src, _ = user_source()
        raise TraceError(
            f"{src}: np.{ufunc.__name__}.{method}(..., out=) is not supported on traced arrays; write y = "
            f"np.{ufunc.__name__}(...) (or y += x) instead"
        )
    if target.dtype != object and not _augmented_assignment(_user_frame()):
        src, _ = user_source()
        raise TraceError(
            f"{src}: np.{ufunc.__name__}(..., out=y) writes a traced value into a {target.dtype} NumPy array, which "
            "cannot hold it; write y = y + x (or y += x), or create y with dtype=object (np.zeros(n, dtype=object))"
        )
    result = apply_ufunc(ufunc, *inputs)
    value = np.broadcast_to(result.view(np.ndarray) if isinstance(result, np.ndarray) else _boxed(result), target.shape)
    if target.dtype != object:
        return np.array(value, dtype=object).view(ProxyArray)
    target.view(np.ndarray)[...] = value
    return target


def _as_proxy_array(value: Any) -> Any:
    """``value`` viewed as a :class:`ProxyArray` if it is a plain object array, else unchanged."""
    if isinstance(value, np.ndarray) and value.dtype == object and not isinstance(value, ProxyArray):
        return value.view(ProxyArray)
    return value


RETURNED_SELECTION = (
    "the traced function returned x[mask] with a traced mask (a data-dependent length); return full arrays, e.g. "
    "np.where(mask, x, np.nan)"
)


def _flatten_outputs(result: Any, builder: GraphBuilder, out: list[int]) -> Any:
    """Append output ids of ``result`` to ``out`` and return its structure (for ``graph.meta``)."""
    if isinstance(result, Proxy):
        if result.builder is not builder:
            raise TraceError("the function returned a value traced in another call")
        out.append(result.node_id)
        return "value"
    if isinstance(result, np.ndarray):
        if hasattr(result, "mask_axis"):
            raise TraceError(RETURNED_SELECTION)
        for e in np.asarray(result, dtype=object).reshape(-1):
            _flatten_outputs(e, builder, out)
        return {"array": list(result.shape)}
    if isinstance(result, tuple | list):
        return [_flatten_outputs(r, builder, out) for r in result]
    if isinstance(result, bool | int | float | np.number | np.bool_):
        out.append(builder.const(result))
        return "value"
    raise TraceError(
        f"the traced function returned {type(result).__name__}; return traced values, numbers, arrays or tuples of them"
    )


def trace(fn: Callable[..., Any], *names_or_examples: Any, name: str | None = None) -> Graph:
    """Trace ``fn`` into a :class:`Graph`.

    Args:
        fn: A Python function of scalar (or array) arguments built from arithmetic and NumPy ufuncs.
        *names_or_examples: One per positional argument: a ``str`` names a scalar input; a NumPy array makes an
            object array of scalar inputs (``"x[0]"``, ...); any other value is a scalar example. With none,
            one scalar input per positional parameter of ``fn``, named after it.
        name: Name of the graph (default: ``fn.__name__``).

    Returns:
        The graph, with one output per returned scalar (arrays are flattened; their shape and the output
        structure are in ``graph.meta``).

    Raises:
        TraceError: ``fn`` is not callable, branches on a traced value, uses an unsupported operation, or
            returns something that is not a traced value.
    """
    if not callable(fn):
        raise TraceError(f"trace: fn must be callable, got {type(fn).__name__}")
    fname = str(name or getattr(fn, "__name__", "graph"))
    params: list[str] = []
    try:
        sig = inspect.signature(fn)
        params = [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
        ]
    except (TypeError, ValueError):
        params = []
    args: Sequence[Any] = names_or_examples or params
    if not args:
        raise TraceError(f"trace: cannot tell the inputs of {fname}; pass their names, e.g. trace(fn, 'x', 'y')")
    builder = GraphBuilder(name=fname)
    proxies: list[Any] = []
    for k, a in enumerate(args):
        pname = params[k] if k < len(params) else f"x{k}"
        if isinstance(a, str):
            proxies.append(Proxy(builder, builder.input(a)))
        elif isinstance(a, np.ndarray | list):
            example = np.asarray(a)
            arr = np.empty(example.shape, dtype=object)
            for idx in np.ndindex(example.shape):
                arr[idx] = Proxy(builder, builder.input(f"{pname}[{','.join(map(str, idx))}]"))
            proxies.append(arr.view(ProxyArray))
        else:
            proxies.append(Proxy(builder, builder.input(pname)))
    from opgraph.graph.arrays import writable_arrays

    try:
        with writable_arrays():  # np.zeros & co. in fn give arrays that hold traced values (opgraph.graph.arrays)
            result = fn(*proxies)
    except (TraceError, GraphError):
        raise
    except IndexError as exc:
        src, _ = _exception_source(exc)
        if "used as indices" not in str(exc):
            raise TraceError(f"could not trace {fname} ({src}): {type(exc).__name__}: {exc}") from exc
        raise TraceError(
            f"could not trace {fname} ({src}): a traced boolean mask indexes a NumPy array of numbers, which cannot "
            "hold traced values; create that array in the traced function with np.zeros/np.empty, or use "
            "np.where(mask, a, b)"
        ) from exc
    except Exception as exc:
        called = _scipy_call(exc)
        if called is not None:
            raise TraceError(f"could not trace {fname} ({called[0]}): {_scipy_message(called[1])}") from exc
        src, _ = _exception_source(exc)
        raise TraceError(f"could not trace {fname} ({src}): {type(exc).__name__}: {exc}") from exc
    outputs: list[int] = []
    structure = _flatten_outputs(result, builder, outputs)
    meta: dict[str, Any] = {"output_structure": structure}
    if isinstance(result, np.ndarray):
        meta["output_shape"] = list(result.shape)
    return builder.build(outputs, meta)


def _scipy_dir() -> str | None:
    """SciPy's package folder where SciPy is imported, else None."""
    scipy = sys.modules.get("scipy")
    path = getattr(scipy, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if isinstance(path, str) else None


def _scipy_message(func: str) -> str:
    return (
        f"{func} ran on traced values, but SciPy's compiled solvers, root finders and integrators need numbers; "
        "write the computation with NumPy arithmetic (e.g. a fixed number of Newton or Euler steps) so that it can "
        "be traced"
    )


def _public_name(frame: FrameType) -> str:
    """``scipy.optimize.minimize`` for a frame of ``scipy.optimize._minimize.minimize`` (public modules only)."""
    mod = []
    for part in str(frame.f_globals.get("__name__", "scipy")).split("."):
        if part.startswith("_"):
            break
        mod.append(part)
    return ".".join([*mod, frame.f_code.co_name])


def _scipy_caller(frame: FrameType | None) -> tuple[str, str] | None:
    """The user's line that called into SciPy and the function called, where ``frame`` runs inside SciPy.

    That is where the first frame outside the core and NumPy from ``frame`` outwards is SciPy's; the result reads
    ``("model.py:12", "scipy.integrate.solve_ivp")``, else None.
    """
    sdir = _scipy_dir()
    if sdir is None:
        return None
    lib = (_PKG_DIR, *_SKIP_DIRS)
    while frame is not None and frame.f_code.co_filename.startswith(lib):
        frame = frame.f_back
    if frame is None or not frame.f_code.co_filename.startswith(sdir):
        return None
    entry = frame
    while frame is not None and frame.f_code.co_filename.startswith((sdir, *lib)):
        if frame.f_code.co_filename.startswith(sdir):
            entry = frame
        frame = frame.f_back
    if frame is None:
        return None
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}", _public_name(entry)


def _scipy_call(exc: BaseException) -> tuple[str, str] | None:
    """``("file.py:LINE", "scipy.module.function")`` where traced code called into SciPy and SciPy raised ``exc``.

    None where the exception did not come from inside SciPy (the innermost frame is not SciPy's).
    """
    sdir = _scipy_dir()
    if sdir is None or exc.__traceback__ is None:
        return None
    frames = []
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frames.append((tb.tb_frame, tb.tb_lineno))
        tb = tb.tb_next
    if not frames[-1][0].f_code.co_filename.startswith(sdir):
        return None
    caller = None
    for frame, line in frames:
        fname = frame.f_code.co_filename
        if fname.startswith(sdir):
            if caller is not None:
                return caller, _public_name(frame)
        elif not fname.startswith((_PKG_DIR, *_SKIP_DIRS)):
            caller = f"{os.path.basename(fname)}:{line}"
    return None


def _exception_source(exc: BaseException) -> tuple[str, str]:
    tb = exc.__traceback__
    last = ("<unknown>:0", "<unknown>")
    while tb is not None:
        code = tb.tb_frame.f_code
        if not code.co_filename.startswith(_PKG_DIR):
            last = (f"{os.path.basename(code.co_filename)}:{tb.tb_lineno}", code.co_name)
        tb = tb.tb_next
    return last
