"""The CPU allowance of fixed-atoms calls: how long a costly optional pass may be predicted to take without a budget.

A fixed-atoms call (``od.evaluate(..., atoms=n)``, no ``target_w1``) has no ``max_seconds``: a pass that would
tighten its bound but may cost far more than the grid's evaluation itself runs only where its predicted CPU seconds
are within this allowance. Four passes ask it, each under its switch name (:mod:`opgraph.dcg.switches`):

- ``"box_linear"`` (5 s): the box-linear mixture (:func:`opgraph.dcg.boxlinear.within_fixed_budget`: its largest
  lattice work on the grid, ``SECONDS_PER_CELL`` each). Set from the UQ suite (2026-12-07, 1 thread, load 10-12):
  6 inputs at 8 atoms (2**18 boxes, 2.7e7 cells, 5.5 s predicted) took 13.6 s for one mixture (Undamped) and 16.7 s
  for three (OTL), where the point-mass call took 0.75 s and 2.7 s; 3 inputs at 64 atoms (2**18 boxes, 2.3e7 cells)
  about 5.5 s (Ishigami, kept: 8x smaller bound).
- ``"sub_slope"`` (12 s): the sub-box slope remainder (:func:`opgraph.dcg.subslope.allowance` sizes its sub-boxes
  per box to it; piston at 4 atoms, 64 pieces per box: about 20 s predicted).
- ``"long_mixture"`` (20 s): the lean Taylor pass of long programs (:func:`opgraph.dcg.longmix.runs`; ODE-log at
  32 atoms, 44 s predicted, is skipped).
- ``"tail_sub"`` (4 s): the sub-box remainder on the boxes with a half-line cell (:mod:`opgraph.dcg.tailsub`; the
  4-16-1 MLP at 16 atoms per input, every such box: 3.2 s predicted, 2.7 s measured).

Each prediction is a function of the grid's size and the graph alone (never a measured time), so the same call
gives the same answer on any machine. Skipping a pass changes no certificate, only which certified answer the call
returns. Inside a ``target_w1`` call the call's ``max_seconds`` guards the same passes instead
(:mod:`opgraph.dcg.roundbudget`); this allowance does not apply there.
"""

from __future__ import annotations

#: Most predicted CPU seconds of one pass of each kind on a fixed-atoms call (tests and benchmarks may set entries).
SECONDS: dict[str, float] = {
    "box_linear": 5.0,
    "sub_slope": 12.0,
    "long_mixture": 20.0,
    "tail_sub": 4.0,
}


def allowance(kind: str) -> float:
    """The most predicted CPU seconds of a pass of ``kind`` (a key of :data:`SECONDS`) on a fixed-atoms call.

    Raises:
        KeyError: ``kind`` is not a key of :data:`SECONDS` (a programming error: the message lists the keys).
    """
    try:
        return SECONDS[kind]
    except KeyError:
        raise KeyError(f"no fixed-atoms allowance {kind!r}; use one of {sorted(SECONDS)}") from None


def allows(kind: str, seconds: float) -> bool:
    """Whether a pass of ``kind`` predicted at ``seconds`` CPU s may run on a fixed-atoms call (:func:`allowance`)."""
    return seconds <= allowance(kind)
