"""Exact second moments of a bounded law's cells about their atoms (the Taylor remainder's ``E[d^2; cell]``).

The second-order box bounds (:mod:`opgraph.dcg.taylor`'s Hessian form, the
square-root linear term ``sqrt(sum c^2 E d^2)``, the pair forms) need per cell an upper bound on ``E[(Z - a)^2;
l < Z <= r]`` (``a`` the cell's atom). :meth:`opgraph.dcg.distributions.Continuous._cell_bias_m2` gives
``max(a - l, r - a) E|Z - a|`` on finite cells (no cancellation, any law), which for a uniform cell with the atom
at its centre is ``h/2 * h/4 = h^2 / 8`` against the exact ``h^2 / 12`` (1.5x; ``h`` the width). Normal cells
already have a closed form (:class:`opgraph.dcg.distributions.Normal`).

**Uniform** (:func:`uniform_m2`, Z units: ``Z ~ U(0, 1)``): on ``(l, r]`` clipped to ``[0, 1]``, width ``w = r_c -
l_c`` and centre ``m = (l_c + r_c) / 2``,

    E[(Z - a)^2; l < Z <= r] = int_{l_c}^{r_c} (z - a)^2 dz = w (w^2 / 12 + (m - a)^2)

(expand ``z - a = (z - m) + (m - a)``; the cross term integrates to 0). Every term is non-negative, so the
relative rounding is covered by a factor ``1 + 1e-12``; ``m - a`` is a difference, padded by ``4 eps (|m| + |a|)``
before squaring (``eps`` the double's epsilon), and ``w``, ``m`` by ``4 eps`` of their operands' magnitudes. The
engine's affine map to ``X = loc + scale Z`` and its atom shift are charged by
:meth:`opgraph.dcg.distributions.Continuous._quantize` as for every law. The result is the smaller of this and the
base class's bound, so no cell's bound grows.

``ENABLED`` (a ContextVar, default on; :mod:`opgraph.dcg.switches` ``"exact_cell_m2"``) switches it off; the
quantizer tables are kept apart per setting (:meth:`opgraph.dcg.distributions.Continuous._z_table`).
"""

from __future__ import annotations

import contextvars

import numpy as np

#: Whether bounded laws' cells get exact second moments (Uniform; the smaller of it and the generic bound).
ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("opgraph_dcg_cellm2", default=True)

_EPS = float(np.finfo(float).eps)


def uniform_m2(l: np.ndarray, a: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Upper bound on ``E[(Z - a)^2; l < Z <= r]`` for ``Z ~ U(0, 1)``, per cell (module docstring)."""
    lc = np.clip(np.asarray(l, dtype=float), 0.0, 1.0)
    rc = np.clip(np.asarray(r, dtype=float), 0.0, 1.0)
    a = np.asarray(a, dtype=float)
    w = np.maximum(rc - lc, 0.0)
    w = w + 4 * _EPS * (np.abs(lc) + np.abs(rc)) * (w > 0)
    m = 0.5 * (lc + rc)
    dm = np.abs(m - a) + 4 * _EPS * (np.abs(m) + np.abs(a) + np.abs(lc) + np.abs(rc))
    return w * (w * w / 12.0 + dm * dm) * (1 + 1e-12)
