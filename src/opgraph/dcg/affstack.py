"""Stacked per-symbol loops of the affine forms (:mod:`opgraph.dcg.affine`): the same numbers, fewer NumPy calls.

An affine form keeps one coefficient array per noise symbol (up to ~100 on a long program: the error symbols of
its nonlinear ops, :data:`opgraph.dcg.affine.MAX_FORM_ERR`), each on a small grid (8 boxes for three inputs at 2
atoms). The rules of :mod:`opgraph.dcg.affine` walk the symbols in Python and apply a few ufuncs per symbol, so on
long programs the time goes into NumPy's per-call overhead (ODE-log at 2 atoms: ~1,000 ufunc calls per Euler step).
Here the coefficients of symbols with one shape are stacked along a new first axis and each ufunc is applied once
to the stack.

Why the numbers are the same bit for bit:

- A ufunc applied to a stack computes, element by element, the same IEEE operation on the same operands as the
  per-symbol call (broadcasting only repeats operands). The stacked operands all have one shape ``s`` and every
  unstacked operand (a form's centre ``c``) has at most ``len(s)`` axes, so it aligns with the trailing axes of the
  stack exactly as with one symbol's array: row ``k`` of the result is the per-symbol result, with its shape.
- Sums over symbols (``sum_i |a_i|``, the bilinear centre and diagonal terms) are folds from left to right in the
  dict's order. :func:`fold` computes them with ``np.add.accumulate`` along the stacking axis, which is defined as
  that fold (``out[k] = out[k - 1] + in[k]``, one rounding per step), never with ``np.add.reduce`` (which may sum
  pairwise). A Python ``sum`` starts from ``0`` and ``0 + t = t`` for every ``t >= 0`` and NaN (the folds here add
  magnitudes), so dropping that first addition changes nothing.
- ``0.0 + t`` (the per-symbol code starts some sums from ``0.0``) is computed as ``t + 0.0`` on the stack: IEEE
  addition is commutative, signed zeros included.

Stacking needs at least :data:`MIN_STACK` symbols of one shape with at least one axis; smaller groups and odd shapes
take the per-symbol code. :data:`ENABLED` off runs the per-symbol code everywhere (for the equivalence tests and
the A/B benchmark ``benchmarks/dcg/node_speed_ab.py``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Whether the affine rules stack their per-symbol loops (bit for bit the same results; ``False``: per symbol).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_affstack", default=True)

#: Fewest symbols that are stacked (below, the per-symbol calls cost less than the stacking).
MIN_STACK = 8

#: Largest coefficient array (elements) that is stacked: on larger grids the arithmetic, not the per-call
#: overhead, takes the time, and the stack's copies cost more than they save (ODE-log's sub-cell rounds on 512
#: boxes: 4.6 -> 5.0 s with every size stacked).
STACK_MAX_ROW = 64

_accumulate = np.add.accumulate


def stack(arrays: Sequence[Any]) -> np.ndarray | None:
    """``arrays`` (float64 NumPy arrays of one shape with at least one axis) as one array along a new first axis.

    None where they are not (other types, several shapes, 0-d): the caller then runs its per-symbol loop.
    """
    if any(type(x) is not np.ndarray for x in arrays) or arrays[0].size > STACK_MAX_ROW:
        return None
    try:
        st = np.array(arrays)
    except ValueError:  # several shapes
        return None
    if st.dtype != np.float64 or st.ndim < 2 or st.shape[0] != len(arrays):
        return None
    return st


#: Largest row (elements) that :func:`fold_rows` folds with ``np.add.accumulate``: NumPy runs an accumulation along
#: the first axis one element column at a time, so on longer rows it costs more than one addition per row.
ACC_MAX_ROW = 32


def fold_rows(st: np.ndarray) -> np.ndarray:
    """``((st[0] + st[1]) + st[2]) + ...``: the left-to-right fold of the rows, one rounding per step."""
    if st[0].size <= ACC_MAX_ROW:
        return _accumulate(st, axis=0)[-1]
    out = st[0]
    for row in st[1:]:
        out = out + row
    return out


def abs_sums(a: dict[int, Any], err_base: int) -> tuple[Any, Any] | None:
    """``(0 + sum_i |a_i|, zeros(()) + sum_{i >= err_base} |a_i|)``, folds in ``a``'s order (None: not stacked).

    As :func:`opgraph.dcg.affine._clean`'s loop computes them; both add magnitudes (``>= 0`` or NaN), for which
    the first addition (of ``0``) changes nothing. Stacked where ``a`` holds :data:`MIN_STACK` or more float arrays
    of one shape (which is then the shape of both sums, as in the loop).
    """
    if len(a) < MIN_STACK:
        return None
    st = stack(list(a.values()))
    if st is None or st[0].size > ACC_MAX_ROW:
        return None
    np.abs(st, out=st)
    sabs = fold_rows(st)
    err = [k for k, i in enumerate(a) if i >= err_base]
    if not err:
        return sabs, np.zeros(())
    if len(err) == len(st):
        return sabs, sabs.copy()
    return sabs, fold_rows(st[err])
