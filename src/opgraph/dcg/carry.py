"""Carry a coarser grid's certificate to a finer grid's answer (issue 14 section 3: more atoms never worse).

For two discrete answers ``A`` (fine grid) and ``B`` (coarse grid, or an earlier refinement round) of the same
output law ``Y``, the triangle inequality of W1 gives

    W1(Y, A) <= W1(Y, B) + W1(B, A) <= bound(B) + w1_discrete(A, B),

and ``w1_discrete`` is the exact integral of ``|F_A - F_B|`` (:func:`opgraph.dcg.w1.w1_discrete`, padded here for
its rounding). So the fine answer may keep ``min(bound(A), bound(B) + W1(A, B))``. The answer itself (its atoms and
weights, and its certified CDF band) is unchanged: only its W1 certificate gets the smaller of the two.

Where it runs (:mod:`opgraph.dcg.api`):

- ``target_w1`` refinement: every round's answer carries the best earlier round's certificate;
- fixed atoms (``atoms=N``), only where :data:`FIXED_ATOMS` is on (default off), on a program of at least
  :data:`MIN_INPUTS` inputs whose evaluated grid has at least
  :data:`MIN_JOINT` joint atoms: the same program at ``N // 2`` atoms per input (which itself carries from
  ``N // 4`` where its own grid is that large; never below 2 atoms) is evaluated too, when that grid has at most
  ``2**-MIN_INPUTS`` of the evaluated grid's joint atoms.

Contract: a call at ``N`` atoms returns ``bound_N <= bound_{N/2} + W1(answer_N, answer_{N/2})`` where
``bound_{N/2}`` is what the same call at ``N // 2`` atoms returns. It does NOT promise ``bound_N <= bound_{N/2}``:
the two answers differ, and the coarse certificate says nothing about the fine answer beyond their distance.

The switches :data:`ENABLED` and :data:`FIXED_ATOMS` are ContextVars, carried to workers by
:mod:`opgraph.dcg.switches`; ``ENABLED`` off turns both uses off.
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from typing import Any, TypeVar

import numpy as np

from opgraph.dcg.w1 import w1_discrete

#: Carry coarser certificates (target_w1: earlier rounds; fixed atoms: the N/2 grid where FIXED_ATOMS is on too).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_carry", default=True)
#: Fixed-atoms calls also evaluate the N/2 grid to carry its certificate. Off by default: measured, it never gave
#: a smaller bound once the growing bound's cause was fixed, and it cost +80% CPU on small programs (fixed
#: per-call costs), +15-25% on the README example at 64 atoms and +80-115% at 128 (the N/2 call needs the
#: reduced-grid alternatives too); see docs/dcg.md, "More atoms, never a worse bound".
FIXED_ATOMS: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_carry_fixed", default=False)
#: Fewest inputs for the fixed-atoms N/2 evaluation (one input: the half grid would cost half the call).
MIN_INPUTS = 2
#: Fewest joint atoms of the evaluated grid for the fixed-atoms N/2 evaluation. Below it the N/2 call's fixed costs
#: (tracing passes, rewrites, exact-law checks) dominate: on 54 fast uqtestfuns functions at 2 / 4 / 8 atoms it
#: cost +80% CPU and tightened no bound (``benchmarks/dcg/moreatoms_sweep.py``).
MIN_JOINT = 2**15
#: Rounding pad on the discrete W1: relative, plus this times the largest atom's magnitude (its cumulative sum of
#: at most a few million probabilities is off by far less than 1e-9 per step).
PAD = 1e-9

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a carry needs of a coarser answer: its law and certificate (not its grid cells, which can be large)."""

    atoms: np.ndarray
    weights: np.ndarray
    w1_bound: float
    certified: bool


def snapshot(e: Any) -> Answer:
    """The :class:`Answer` of an evaluation or result (keeps a refinement from holding earlier rounds' grids)."""
    return Answer(e.atoms, e.weights, float(e.w1_bound), bool(e.certified))


def distance(a: Any, b: Any) -> float:
    """An upper bound on ``W1(a, b)`` of two discrete answers (``atoms``/``weights``), padded for rounding."""
    w = w1_discrete(a.atoms, a.weights, b.atoms, b.weights)
    span = max(float(np.max(np.abs(a.atoms), initial=0.0)), float(np.max(np.abs(b.atoms), initial=0.0)))
    return w * (1 + PAD) + 2 * PAD * span


def carry(new: T, old: Any, label: str) -> T:
    """``new`` with ``min(new.w1_bound, old.w1_bound + W1(new, old))`` as its bound (``new`` itself if not smaller).

    Args:
        new: The finer answer: an :class:`opgraph.dcg.engine.Evaluation` or a :class:`opgraph.dcg.DistResult`.
        old: A coarser answer of the same output law (same kind of object), with its own certificate.
        label: Says where ``old`` came from (``"atoms=4"``, ``"round 2"``), for ``info["carried"]``.

    Returns:
        ``new``, or a copy whose ``w1_bound`` is the carried one; then ``bound_terms`` are the two parts (the old
        bound and the distance, so they still sum to the bound) and ``info["carried"]`` records both bounds.
    """
    n: Any = new
    if not (ENABLED.get() and n.certified and old.certified) or not math.isfinite(old.w1_bound):
        return new
    d = distance(n, old)
    via = old.w1_bound + d
    if not via < n.w1_bound:
        return new
    info = dict(n.info)
    info["carried"] = {
        "from": label,
        "own_bound": float(n.w1_bound),
        "coarse_bound": float(old.w1_bound),
        "w1_to_coarse": float(d),
        "own_terms": dict(n.bound_terms),
    }
    terms = {f"coarser answer's bound ({label})": float(old.w1_bound), f"W1 to the coarser answer ({label})": d}
    return dataclasses.replace(n, w1_bound=float(via), bound_terms=terms, info=info)
