"""Quotient-form Hessian enclosures of ``u / w`` in the Taylor box pass (:func:`opgraph.dcg.taylor._quotient`).

Second-order interval forward mode encloses the Hessian of ``q = u / w`` by the chain rule with the op's partials,
``H_q = H_u / w - u H_w / w^2 - (g_u g_w^T + g_w g_u^T) / w^2 + 2 u g_w g_w^T / w^3``: four interval terms whose
exact values cancel where ``u`` and ``w`` share a factor (OTL's ``(v + 0.74) beta (R + 9) / (beta (R + 9) + R_f)``:
the enclosure of that node's Hessian spread is 14.5x the sampled one on the median box at 4 atoms per input,
``benchmarks/dcg/hess_blowup.py``). The quotient form writes the same derivatives through ``q`` itself,

    g_q = (g_u - q g_w) / w,        H_q = (H_u - q H_w - g_w g_q^T - g_q g_w^T) / w

(differentiate ``q w = u`` once and twice), with ``q``'s value enclosure and, in ``H_q``, its gradient enclosure
intersected with the first form. **Soundness**: at every point of the box each identity holds and each factor lies
in its enclosure, so each interval evaluation encloses the exact derivative, and so does the intersection with the
chain rule's (rounding: the interval kernels round outwards; each result is widened by
:func:`opgraph.dcg.intervals.widen` like every enclosure of the pass). Only the Hessian enclosures are replaced: the
gradient enclosures the pass returns stay the chain rule's (with the tighter ones the sub-box walk chose other plans
and a piston-volume chain's bound grew 0.00418 -> 0.00541).

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` ``"hess_quotient"``) switches it off.
"""

from __future__ import annotations

import contextvars

#: Whether the Taylor pass intersects ``div``'s Hessian enclosures with their quotient form.
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_hessdiv", default=True)
