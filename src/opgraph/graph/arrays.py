"""Traced NumPy arrays that are written to: ``y = np.zeros(n); y[mask] = expr; y[:, j] = x`` while tracing.

Vectorised code (the ``evaluate(xx)`` of test-function libraries) fills output arrays in place. On traced values
that needs three things, which :func:`opgraph.graph.trace` provides here:

- **Writable arrays.** While a function is traced, ``np.zeros``, ``np.ones``, ``np.empty`` and ``np.full`` called
  from the traced code (not from NumPy, SciPy or opgraph) with a float or object dtype return a
  :class:`~opgraph.graph.tracer.ProxyArray` of Python floats (``np.empty``: NaN), which can hold traced values:
  ``y[i] = x``, ``y[:, 0] = x``, ``y[:] += x``. Arrays without a traced element still act as float arrays in
  NumPy functions (``np.linalg.solve``). Integer and boolean arrays are left as NumPy makes them (they index).
- **Boolean masks that are traced** (``m = x > c``, ``(x > a) | (y > b)``, ``~m``). ``y[m] = v`` becomes
  ``y = np.where(m, v, y)`` elementwise. ``x[m]`` has a data-dependent length, so it is kept at its full length
  and marked with ``m`` (a :class:`MaskedProxyArray`): elementwise arithmetic on it keeps the mark, and storing it
  with the same mask (``y[m] = np.sin(x[m])``) writes the selected elements, which is what NumPy computes.
  Reductions, reshapes and mixing with a fixed-length array would depend on the number of selected elements and
  raise a one-line :class:`TraceError` naming the line and the ``np.where`` form to use instead.
- :func:`vectorized`: a function of one ``(n, d)`` sample matrix ``xx`` (one row per sample, one column per
  input) becomes a function of ``d`` scalars, traced on a one-row matrix.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from opgraph.graph.errors import TraceError
from opgraph.graph.tracer import (
    _PKG_DIR,
    _SKIP_DIRS,
    RETURNED_SELECTION,
    TRUTH_OPS,
    Proxy,
    ProxyArray,
    _dispatch,
    user_source,
)

#: Largest array (elements) that a patched ``np.zeros`` turns into a traced array; larger ones stay float arrays.
MAX_TRACED_ELEMENTS = 2**20


def _has_proxy(a: Any) -> bool:
    if isinstance(a, Proxy):
        return True
    if isinstance(a, np.ndarray) and a.dtype == object:
        return any(isinstance(e, Proxy) for e in a.flat)
    return False


def constant(a: np.ndarray) -> np.ndarray | None:
    """``a`` (an object array) as a plain NumPy array of its numbers if it holds no traced value, else None."""
    if any(isinstance(e, Proxy) for e in a.flat):
        return None
    try:
        return np.array(a.tolist()) if a.ndim else np.array(a[()])
    except (TypeError, ValueError):
        return None


def is_mask_element(e: Any) -> bool:
    """Whether ``e`` can be an element of a boolean mask: a Python/NumPy bool or a traced truth value."""
    if isinstance(e, bool | np.bool_):
        return True
    return isinstance(e, Proxy) and e.builder.nodes[e.node_id].op in TRUTH_OPS


# ---------------------------------------------------------------------------------------------------------------
# Indexing with a traced boolean mask
class _Split:
    """An index with one traced boolean mask: the same index with the mask replaced by full slices."""

    def __init__(self, lazy: tuple[Any, ...], mask: np.ndarray, axis: int) -> None:
        self.lazy = lazy
        self.mask = mask
        self.axis = axis


def _components(index: Any) -> tuple[Any, ...]:
    return index if isinstance(index, tuple) else (index,)


def _object_parts(index: Any) -> list[int]:
    return [k for k, c in enumerate(_components(index)) if isinstance(c, np.ndarray) and c.dtype == object]


def plain_index(index: Any) -> Any:
    """``index`` with object arrays that hold no traced value turned into bool / int arrays (else unchanged)."""
    parts = _object_parts(index)
    if not parts:
        return index
    comps = list(_components(index))
    for k in parts:
        c = constant(comps[k])
        if c is None:
            return index
        comps[k] = c
    return tuple(comps) if isinstance(index, tuple) else comps[0]


def split_mask(index: Any, shape: tuple[int, ...]) -> _Split | None:
    """The traced boolean mask of ``index`` (into an array of ``shape``), or None if it has none.

    Raises:
        TraceError: the index has a traced value that is not a truth value, two traced masks, or a mask placed
            where keeping it at full length would change the result's shape (the message names the line).
    """
    comps = _components(index)
    traced = [k for k in _object_parts(index) if _has_proxy(comps[k])]
    if not traced:
        return None
    src, _ = user_source()
    if len(traced) > 1:
        raise TraceError(f"{src}: indexing with two traced boolean masks at once; combine them first (m1 & m2)")
    kpos = traced[0]
    mask = np.asarray(comps[kpos], dtype=object)
    bad = next((e for e in mask.flat if not is_mask_element(e)), None)
    if bad is not None:
        op = bad.builder.nodes[bad.node_id].op if isinstance(bad, Proxy) else type(bad).__name__
        raise TraceError(
            f"{src}: indexing with a traced value ({op}) selects data-dependent positions; only boolean masks of "
            "comparisons are supported (y[x > c] = v); use np.where(cond, a, b) instead"
        )
    for k, c in enumerate(comps):
        if k != kpos and (isinstance(c, list) or (isinstance(c, np.ndarray) and c.ndim > 0)):
            raise TraceError(
                f"{src}: a traced boolean mask combined with another array index; index with the mask alone "
                "(y[mask]) or use np.where(mask, a, b)"
            )
    ndim, kdim = len(shape), mask.ndim
    used = sum(kdim if k == kpos else (0 if c is None or c is Ellipsis else 1) for k, c in enumerate(comps))
    lazy: list[Any] = []
    axis = -1
    for k, c in enumerate(comps):
        if c is Ellipsis:
            lazy.extend([slice(None)] * (ndim - used))
        elif k == kpos:
            axis = sum(1 for x in lazy if not isinstance(x, int | np.integer))
            lazy.extend([slice(None)] * kdim)
        else:
            lazy.append(c)
    probe = np.broadcast_to(np.zeros((), dtype=np.uint8), shape)
    try:
        real = probe[tuple(comps[:kpos]) + (np.ones(mask.shape, dtype=bool),) + tuple(comps[kpos + 1 :])].shape
        full = probe[tuple(lazy)].shape
    except IndexError as exc:
        raise TraceError(
            f"{src}: a boolean mask of shape {mask.shape} does not fit an array of shape {shape}: {exc}"
        ) from None
    if (
        full[axis : axis + kdim] != mask.shape
        or real != full[:axis] + (int(np.prod(mask.shape)),) + full[axis + kdim :]
    ):
        raise TraceError(
            f"{src}: this placement of a traced boolean mask in an index is not supported; index with the mask "
            "on leading axes (y[mask], y[mask, j]) or use np.where(mask, a, b)"
        )
    return _Split(tuple(lazy), mask, axis)


def _mask_along(mask: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """``mask`` reshaped to broadcast against an array of ``ndim`` dimensions with its axes at ``axis``."""
    shape = [1] * axis + list(mask.shape) + [1] * (ndim - axis - mask.ndim)
    return mask.reshape(shape)


def _same_mask(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if a.shape != b.shape:
        return False
    for x, y in zip(a.flat, b.flat, strict=True):
        if isinstance(x, Proxy) and isinstance(y, Proxy):
            if x.node_id != y.node_id or x.builder is not y.builder:
                return False
        elif isinstance(x, Proxy) or isinstance(y, Proxy) or bool(x) != bool(y):
            return False
    return True


class MaskedProxyArray(ProxyArray):
    """``x[mask]`` for a traced ``mask``: ``x`` at full length, marked with the mask along ``mask_axis``.

    Elementwise ufuncs keep the mark; storing it with the same mask (``y[mask] = f(x[mask])``) writes the selected
    elements. Anything whose result depends on the number of selected elements raises :class:`TraceError`.
    """

    mask: np.ndarray
    mask_axis: int

    @classmethod
    def wrap(cls, values: Any, mask: np.ndarray, axis: int) -> MaskedProxyArray:
        """``values`` (an object array) viewed as a selection by ``mask`` along ``axis``."""
        out = np.asarray(values, dtype=object).view(cls)
        out.mask = mask
        out.mask_axis = axis
        return out

    def __array_finalize__(self, obj: Any) -> None:
        self.mask = getattr(obj, "mask", np.zeros(0, dtype=object))
        self.mask_axis = getattr(obj, "mask_axis", 0)

    def _refuse(self, what: str) -> TraceError:
        src, _ = user_source()
        return TraceError(
            f"{src}: {what} of x[mask] with a traced mask depends on how many elements the mask selects; write it "
            "with the full arrays and np.where (np.sum(np.where(mask, x, 0)), y = np.where(mask, f(x), y))"
        )

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        out = kwargs.pop("out", None)
        if method != "__call__" or kwargs:
            raise self._refuse(f"np.{ufunc.__name__}.{method}" if method != "__call__" else "a keyword argument")
        result = self._elementwise(ufunc, inputs)
        if out is None:
            return result
        # y[m] += v: Python computes t = y[m]; t += v; y[m] = t (t is a copy at full length, marked with m)
        target = out[0] if isinstance(out, tuple) and len(out) == 1 else out
        if (
            not isinstance(target, MaskedProxyArray)
            or not _same_mask(target.mask, self.mask)
            or not isinstance(result, np.ndarray)
            or result.shape != target.shape
        ):
            raise self._refuse(f"np.{ufunc.__name__}(..., out=) into another array")
        target.view(np.ndarray)[...] = result.view(np.ndarray)
        return target

    def _elementwise(self, ufunc: np.ufunc, inputs: tuple[Any, ...]) -> Any:
        mask, axis, ndim = self.mask, self.mask_axis, self.ndim
        plain = []
        for a in inputs:
            if isinstance(a, MaskedProxyArray):
                if not _same_mask(a.mask, mask):
                    raise self._refuse("combining selections by two different masks")
                plain.append(a.view(np.ndarray))
            elif isinstance(a, np.ndarray | list | tuple) and np.size(a) > 1:
                raise self._refuse(f"combining with an array of fixed shape {np.shape(a)}")
            else:
                plain.append(a)
        result = ufunc(*plain)
        if not isinstance(result, np.ndarray):
            return result
        return MaskedProxyArray.wrap(result, mask, axis + result.ndim - ndim)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        raise self._refuse(f"np.{getattr(func, '__name__', func)}")

    def __getitem__(self, index: Any) -> Any:
        raise self._refuse("indexing")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise self._refuse("writing into")

    def __iter__(self) -> Iterator[Any]:
        raise self._refuse("iterating over")


def masked_getitem(arr: np.ndarray, split: _Split) -> MaskedProxyArray:
    """``arr[index]`` for an index with a traced mask: a copy at full length, marked with the mask."""
    values = np.array(np.asarray(arr, dtype=object)[split.lazy], dtype=object)
    return MaskedProxyArray.wrap(values, split.mask, split.axis)


def masked_setitem(arr: np.ndarray, split: _Split, value: Any) -> None:
    """``arr[index] = value`` for an index with a traced mask: ``np.where(mask, value, arr)`` on the selected axes."""
    target = np.asarray(arr, dtype=object)[split.lazy]  # basic indexing: a view into arr
    if isinstance(value, MaskedProxyArray):
        if not _same_mask(value.mask, split.mask):
            src, _ = user_source()
            raise TraceError(
                f"{src}: y[m1] = x[m2] with two different traced masks has data-dependent positions; use "
                "y = np.where(m1, x, y) with full arrays"
            )
        v = np.asarray(value.view(np.ndarray), dtype=object)
    elif isinstance(value, np.ndarray | list | tuple):
        if np.size(value) > 1:
            src, _ = user_source()
            raise TraceError(
                f"{src}: y[mask] = v with a traced mask and an array v of fixed shape {np.shape(value)} depends on "
                "how many elements the mask selects; write y = np.where(mask, v_full, y) with v at y's shape"
            )
        v = np.asarray(value, dtype=object)
    else:
        v = _box(value)
    try:
        mb = np.broadcast_to(_mask_along(split.mask, split.axis, target.ndim), target.shape)
        vb = np.broadcast_to(v, target.shape)
    except ValueError as exc:
        src, _ = user_source()
        raise TraceError(f"{src}: y[mask] = v: the shapes do not match ({exc})") from None
    for idx in np.ndindex(target.shape):
        c: Any = mb[idx]
        if isinstance(c, bool | np.bool_):
            if c:
                target[idx] = vb[idx]
        else:
            target[idx] = _dispatch("where", c, vb[idx], target[idx])


def _box(value: Any) -> np.ndarray:
    box = np.empty((), dtype=object)
    box[()] = value
    return box


# ---------------------------------------------------------------------------------------------------------------
# Piecewise functions of traced conditions: np.select, np.piecewise, np.heaviside as chains of np.where
def _plain(a: Any) -> Any:
    return a.view(np.ndarray) if isinstance(a, ProxyArray) else a


def _traced(value: Any) -> Any:
    return value.view(ProxyArray) if isinstance(value, np.ndarray) and value.dtype == object else value


def select(condlist: Any, choicelist: Any, default: Any = 0) -> Any:
    """``np.select`` on traced conditions: the first true condition's choice, else ``default`` (nested where)."""
    conds, choices = list(condlist), list(choicelist)
    if len(conds) != len(choices):
        src, _ = user_source()
        raise TraceError(f"{src}: np.select: condlist and choicelist must have the same length")
    out = _plain(default)
    for c, v in zip(reversed(conds), reversed(choices), strict=True):
        out = _dispatch("where", _plain(c), _plain(v), out)
    return _traced(out)


def piecewise(x: Any, condlist: Any, funclist: Any, *args: Any, **kw: Any) -> Any:
    """``np.piecewise`` on traced conditions: each function is applied to all of ``x`` and selected with where.

    Later conditions override earlier ones and one extra function is the "otherwise" branch, as in NumPy. Every
    function must be defined on all of ``x`` (it runs on the full array, not on ``x[cond]``).
    """
    conds = list(condlist) if isinstance(condlist, list | tuple) else [condlist]
    funcs = list(funclist)
    if len(funcs) not in (len(conds), len(conds) + 1):
        src, _ = user_source()
        raise TraceError(f"{src}: np.piecewise: funclist must have len(condlist) or len(condlist) + 1 entries")

    def value(f: Any) -> Any:
        return _plain(f(_traced(x), *args, **kw) if callable(f) else f)

    out: Any = _dispatch("mul", _plain(x), 0.0)
    for c, f in zip(conds, funcs, strict=False):
        out = _dispatch("where", _plain(c), value(f), out)
    if len(funcs) == len(conds) + 1:
        anyc = _plain(conds[0])
        for c in conds[1:]:
            anyc = _dispatch("or", anyc, _plain(c))
        out = _dispatch("where", anyc, out, value(funcs[-1]))
    return _traced(out)


def heaviside(x: Any, h: Any) -> Any:
    """``np.heaviside(x, h)``: 1 where ``x > 0``, ``h`` where ``x == 0``, else 0."""
    x, h = _plain(x), _plain(h)
    return _traced(
        _dispatch("where", _dispatch("gt", x, 0.0), 1.0, _dispatch("where", _dispatch("eq", x, 0.0), h, 0.0))
    )


# ---------------------------------------------------------------------------------------------------------------
# Writable arrays: np.zeros & co. inside a traced function
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"threads": {}, "saved": {}, "dirs": ()}


def _library_dirs() -> tuple[str, ...]:
    """Folders whose calls to ``np.zeros`` & co. keep NumPy's arrays: the core, NumPy, SciPy, registered systems."""
    import scipy

    return (_PKG_DIR, os.path.dirname(os.path.abspath(scipy.__file__)), *_SKIP_DIRS, "<frozen")


def _writable(fill: Callable[[np.ndarray], np.ndarray], original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def creator(*args: Any, **kwargs: Any) -> Any:
        import sys

        out = original(*args, **kwargs)
        if (
            threading.get_ident() not in _STATE["threads"]
            or not isinstance(out, np.ndarray)
            or out.dtype.kind not in "fO"
            or out.size > MAX_TRACED_ELEMENTS
            or sys._getframe(1).f_code.co_filename.startswith(_STATE["dirs"])
        ):
            return out
        return fill(out).view(ProxyArray)

    return creator


def _as_objects(out: np.ndarray) -> np.ndarray:
    return out if out.dtype == object else np.array(out.tolist(), dtype=object).reshape(out.shape)


def _empty_fill(out: np.ndarray) -> np.ndarray:
    if out.dtype == object:
        return out
    return np.full(out.shape, float("nan"), dtype=object)


@contextlib.contextmanager
def writable_arrays() -> Iterator[None]:
    """Within the block, ``np.zeros/ones/empty/full`` called from traced code return writable traced arrays.

    Only the threads inside such a block are affected (others, tracing or not, may run at the same time), only
    calls whose caller is not NumPy, SciPy or opgraph itself, and only float or object arrays of at most
    :data:`MAX_TRACED_ELEMENTS` elements. Nested blocks are allowed; NumPy's functions are back when the last
    block ends.
    """
    me = threading.get_ident()
    with _LOCK:
        threads = _STATE["threads"]
        if not threads:
            _STATE["dirs"] = _library_dirs()
            fills = {"zeros": _as_objects, "ones": _as_objects, "full": _as_objects, "empty": _empty_fill}
            _STATE["saved"] = {name: getattr(np, name) for name in fills}
            for name, fill in fills.items():
                setattr(np, name, _writable(fill, _STATE["saved"][name]))
        threads[me] = threads.get(me, 0) + 1
    try:
        yield
    finally:
        with _LOCK:
            threads[me] -= 1
            if not threads[me]:
                del threads[me]
            if not threads:
                for name, fn in _STATE["saved"].items():
                    setattr(np, name, fn)
                _STATE["saved"] = {}


# ---------------------------------------------------------------------------------------------------------------
# Functions of a sample matrix
def vectorized(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """A function of one ``(n, d)`` sample matrix as a function of ``d`` scalars (for tracing).

    ``fn(xx, *args, **kwargs)`` takes one row per sample and one column per input and returns ``n`` outputs
    (shape ``(n,)``, or ``(n, k)`` for ``k`` outputs): the form of vectorised test functions (uqtestfuns,
    the VLSE). The returned function calls ``fn`` on a one-row object array of its arguments and returns the
    row's output (a tuple of ``k`` values where there are several).

    Example:
        >>> from opgraph import dcg as od
        >>> def ishigami(xx, a=7.0):
        ...     return np.sin(xx[:, 0]) + a * np.sin(xx[:, 1]) ** 2
        >>> g = vectorized(ishigami, a=7.0)   # g(x0, x1) is ishigami([[x0, x1]])[0]
        >>> r = od.evaluate(g, od.Uniform(-3.1, 3.1), od.Uniform(-3.1, 3.1), atoms=8)

    Args:
        fn: A function of a sample matrix ``xx`` (NumPy arithmetic, ufuncs, column indexing, reductions along
            axis 1, boolean masks, writes into ``np.zeros`` arrays).
        *args: Further positional arguments passed to ``fn`` after ``xx`` (constants).
        **kwargs: Keyword arguments passed to ``fn`` (constants).

    Returns:
        ``g(*x)`` with ``g(x_0, ..., x_{d-1}) = fn([[x_0, ..., x_{d-1}]], *args, **kwargs)[0]``.
    """
    if not callable(fn):
        raise TraceError(f"vectorized: fn must be callable, got {type(fn).__name__}")

    def row_fn(*x: Any) -> Any:
        if any(isinstance(v, Proxy) for v in x):
            xx: np.ndarray = np.empty((1, len(x)), dtype=object)
            for k, v in enumerate(x):
                xx[0, k] = v
            xx = xx.view(ProxyArray)
        else:  # plain numbers: a float sample matrix, as fn expects
            xx = np.asarray([x], dtype=float)
        out = fn(xx, *args, **kwargs)
        if isinstance(out, MaskedProxyArray):
            src, _ = user_source()
            raise TraceError(f"{src}: {RETURNED_SELECTION}")
        if isinstance(out, np.ndarray):
            if out.ndim == 0 or out.shape[0] != 1:
                raise TraceError(
                    f"vectorized: {getattr(fn, '__name__', 'fn')} returned shape {out.shape} for one sample row; "
                    "it must return one output per row (shape (n,) or (n, k))"
                )
            row = out.reshape(1, -1)[0]
            return row[0] if row.size == 1 else tuple(row)
        return out

    row_fn.__name__ = getattr(fn, "__name__", "vectorized")
    row_fn.__doc__ = f"{row_fn.__name__} of one sample row (opgraph.graph.vectorized)."
    return row_fn
