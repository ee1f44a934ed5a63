"""Per-grid choice of the affine ray form's slice count (issue 14 §3; switch ``radial_choose``, on by default).

:mod:`opgraph.dcg.radial`'s affine ray form integrates the gradient's affine forms along the ray ``x_s + t e``; with
``K`` slices (:data:`opgraph.dcg.radial.EXACT_SLICES`) it encloses the forms over the sub-box scaled by ``k / K``
(``K - 1`` more affine passes). At ``K = 2`` it took Borehole's 4-atom bound from 0.115 to 0.084 std for 1.6x CPU,
but where the extra pass is paid from the sub-box pieces piston's bound doubled, so ``K`` is 1 by default.

This module lets :func:`opgraph.dcg.subwalk.choose` decide per grid: besides its plans at ``K = 1`` (the pass
without the walk, the walk's plans) it evaluates, on the same sample of boxes, the twin at ``K = 2`` of the ``K = 1`` plan with the
smallest sample total (one more sample pass), with the pieces cut by :func:`pieces_allowed` (``sub / (1 + COST)``),
and keeps ``K = 2`` only where its sample total is below :data:`MIN_GAIN` of every ``K = 1`` plan's; else ``K = 1``. :data:`COST` is 0 (the same pieces, the extra
affine pass paid on top): charged the pass's measured 0.8 (:data:`opgraph.dcg.radial.SLICE_COST`, the same predicted
CPU) or 0.3 the slices rarely win against the pieces they cost. Measured (docs/benchmarks/dcg.md, branch
radial-slices; bounds in output stds, CPU s off -> on): COST 0: Borehole:4 0.1153 -> 0.08398 (CPU 16.1 -> 17.9), OTL:4
0.0246 -> 0.02273 (4.0 -> 5.0), Piston:4, WingWeight:2, Ishigami:8 unchanged (the sample keeps ``K = 1``); COST 0.3:
Borehole:4 0.1001, OTL:4 0.02374 (CPU 1.0-1.1x). So the choice pays only where the slices' remainder saving is large
(Borehole's chain of quotients: -30 % of the sub-box remainder) and is paid in CPU, not in pieces.

**Soundness.** The choice only picks among sound forms: for any ``K`` the affine ray theorem
(:mod:`opgraph.dcg.radial`) holds, for any pieces the sub-box theorems hold, and the pass keeps per sub-box the
smallest of the forms it computes. Whatever the sample decides, the bound is certified; the sample (a heuristic)
only decides which certified bound is computed.
"""

from __future__ import annotations

import contextvars

#: Whether the sub-box pass's plan choice (:func:`opgraph.dcg.subwalk.choose`) also tries ``K = 2`` affine ray
#: slices at the same predicted CPU (switch ``radial_choose``).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_radialchoose", default=True)
#: The slice count tried against ``K = 1``.
SLICES = 2
#: ``K = 2`` is taken only where its sample total is below this share of the best ``K = 1`` plan's (the sample's
#: noise, and the mixture's step growing with kept boxes: :data:`opgraph.dcg.subwalk.MIN_GAIN`'s note).
MIN_GAIN = 0.9
#: The extra pass's CPU charged against the pieces, as a share of the sub-box pass (None:
#: :data:`opgraph.dcg.radial.SLICE_COST`, the measured 0.8: the same predicted CPU). Below it the choice buys the
#: slices with more CPU than the ``K = 1`` plan; 0 (default): the same pieces (measured +11-26 % of the whole call's
#: CPU where ``K = 2`` is taken, module docstring).
COST: float | None = 0.0


def pieces_allowed(sub: int, slices: int = SLICES) -> int:
    """Pieces per box left to a sub-box pass of ``sub`` pieces once ``slices - 1`` extra affine passes are paid."""
    from opgraph.dcg import radial

    cost = radial.SLICE_COST if COST is None else COST
    return max(1, int(sub / (1.0 + cost * max(slices - 1, 0))))
