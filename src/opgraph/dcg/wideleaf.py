"""Disjoint splits with one wide part: its own uncompressed grid, where the box-linear mixture runs.

The disjoint split (:mod:`opgraph.dcg.disjoint`) keeps to parts of at most
:data:`opgraph.dcg.disjoint.MAX_LEAF_INPUTS` inputs: a larger part costs about as much as the whole grid, which then
runs as well where the split misses its target. One shape is the exception: a part on many inputs beside parts on
one input each, as in the undamped oscillator's peak ``3 r - |2 F1 / (c1 + c2) sin(w0 t1 / 2)|`` (``r`` alone on
the left, the five other inputs on the right). The whole grid there separates at the right-hand node and
compresses it (the node's joint law is reduced to a few hundred atoms before ``r`` joins), and on a compressed
grid neither the Taylor pass nor the box-linear mixture (:mod:`opgraph.dcg.boxlinear`) runs: the bound is
first order and stalls (``uq.py`` Undamped at ``target_w1 = 1e-2 std``: 0.128 std, 67x the true W1, three rounds
shrinking it by 14 % each). Evaluated alone, the wide part is an uncompressed five-input grid on which the mixture
gives a second-order bound, and the one-input parts cost milliseconds.

So where this switch is on (and the mixture is), :func:`admits` lets the split keep such a tree: exactly one part
on more than ``MAX_LEAF_INPUTS`` and at most :data:`MAX_WIDE_INPUTS` inputs, every other part on one input.
Nothing about the certificate changes: the split's bound (sum or product of independent parts, module docstring of
:mod:`opgraph.dcg.disjoint`) holds for parts of any width, and the wide part's bound is the grid engine's.

A wide part's ``target_w1`` call stops where its own rounds stop paying (its bound shrinking too slowly, its time
budget); asked again for a smaller target in a later round of the split, with less of the shared budget left, it
cannot do better and can do worse (Undamped at ``1e-3 std``: 0.0226 after 0.0176). Refining only the one-input
parts then shrinks terms the wide part's dominates (Undamped: 1e-4 and a 3e-4 lattice term beside 0.018) and asks
them for ever smaller targets (2^20 atoms and more). So where the wide part missed its own target the split stops
after that round (:func:`stuck`) and the grid engine gets the time left. The caller keeps the grid engine's
answer where the split's bound is not smaller (:func:`opgraph.dcg.api._evaluate_graph`), so the split never
loosens a bound; docs/dcg.md, "Disjoint split with one wide part".
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from typing import Any

#: Let the disjoint split keep one wide part beside one-input parts (``False``: parts of at most
#: ``disjoint.MAX_LEAF_INPUTS`` inputs only, as before; for before/after measurements).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_wide_leaf", default=True)

#: Most inputs of the wide part (its grid is evaluated alone, uncompressed; the mixture's boxes grow as
#: ``atoms ** inputs``).
MAX_WIDE_INPUTS = 6


def admits(leaf_inputs: Sequence[int], max_leaf_inputs: int) -> bool:
    """Whether a split whose parts have ``leaf_inputs`` inputs is kept for its one wide part.

    Args:
        leaf_inputs: The number of inputs of each part (leaf) of the decomposition.
        max_leaf_inputs: The split's ordinary limit per part (:data:`opgraph.dcg.disjoint.MAX_LEAF_INPUTS`).

    Returns:
        ``True`` where the switch and the box-linear mixture are on, exactly one part has more than
        ``max_leaf_inputs`` (and at most :data:`MAX_WIDE_INPUTS`) inputs and every other part has one input.
    """
    from opgraph.dcg import boxlinear

    if not (ENABLED.get() and boxlinear.ENABLED.get()):
        return False
    wide = [n for n in leaf_inputs if n > max_leaf_inputs]
    rest = [n for n in leaf_inputs if n <= max_leaf_inputs]
    return len(wide) == 1 and wide[0] <= MAX_WIDE_INPUTS and len(rest) >= 1 and all(n == 1 for n in rest)


def is_wide(n_inputs: int, max_leaf_inputs: int) -> bool:
    """Whether a part on ``n_inputs`` inputs is the wide part of an admitted split (see :func:`admits`)."""
    return n_inputs > max_leaf_inputs


def stuck(results: Sequence[tuple[int, Any]], max_leaf_inputs: int) -> bool:
    """Whether the split should stop refining after a round: its wide part missed its own target.

    Args:
        results: ``(number of inputs, result)`` of each part in the round just made (results are
            ``DistResult``s).
        max_leaf_inputs: The split's ordinary limit per part.

    Returns:
        ``True`` where a wide part's result has ``info["target_met"]`` false: a later round would ask it for a
        smaller target with less of the shared time budget left (it cannot do better, and did worse where measured),
        and would shrink only the one-input parts' terms, which the wide part's dominates.
    """
    return any(is_wide(n, max_leaf_inputs) and not r.info.get("target_met", True) for n, r in results)
