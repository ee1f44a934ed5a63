"""Diagnostic (branch dosc-mix): how much of DampedOsc's log-linear bound is the radii of the log-slope enclosures.

On one grid (atoms per input as ``6,6,6,6,6,6,4``), per box: the engine's bound before the mixture (``old``), the
minimum with the log-linear remainder (:func:`opgraph.dcg.loglinear.models`), and the minimum with the same remainder
computed with every leg enclosure collapsed to the enclosure at the atom (no radii: the *floor* of the construction,
not a bound). Output std units.

    PYTHONPATH=src python benchmarks/dcg/loglinear_floor.py 6,6,6,6,6,6,4
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uq  # noqa: E402

from opgraph.dcg import boxlinear, loglinear  # noqa: E402

_REC: list[tuple[np.ndarray, np.ndarray]] = []
_models = loglinear.models
_mixture = boxlinear.mixture


def _both(
    dims: Any, legs: Any, v_ok: Any, pt: Any, pt_err: Any, shape: Any, ls_max: Any, sel: Any = None, centre: Any = None
) -> Any:
    out = _models(dims, legs, v_ok, pt, pt_err, shape, ls_max, sel, centre)
    if len(shape) > 1 and centre is not None:
        flat = {j: (centre[j], centre[j]) for j in range(len(dims))}
        _REC.append((out[1], _models(dims, flat, v_ok, pt, pt_err, shape, ls_max, sel, centre)[1]))
    return out


def main() -> None:
    """Command line: see the module docstring."""
    case = {c.id: c for c in uq.make_cases()}["DampedOsc"]
    ref = uq.load_reference(case)
    s = ref.std

    def mix(axes: Any, pt: Any, cells: Any, dists: Any, wbox: Any, box_bound: Any, linear: Any, *a: Any) -> Any:
        if len(a) > 1 and a[1] is not None and _REC:  # the log-linear call (it passes its disc_share)
            shape = tuple(int(np.size(cells[x][2])) for x in axes)
            rest = np.concatenate([r[0] for r in _REC], axis=0).reshape(-1)
            floor = np.concatenate([r[1] for r in _REC], axis=0).reshape(-1)
            w = np.broadcast_to(wbox, shape).reshape(-1)
            old = np.broadcast_to(box_bound, shape).reshape(-1)
            print(
                f"old {old.sum() / s:.4f} | min(old, w rest) {np.minimum(old, w * rest).sum() / s:.4f} | "
                f"min(old, w floor) {np.minimum(old, w * floor).sum() / s:.4f} std | "
                f"mass without a model {w[~np.isfinite(floor)].sum():.3f}",
                flush=True,
            )
        _REC.clear()
        return _mixture(axes, pt, cells, dists, wbox, box_bound, linear, *a)

    loglinear.models = _both
    boxlinear.mixture = mix
    atoms = {f"x{i}": int(v) for i, v in enumerate(sys.argv[1].split(","))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = case.evaluate(atoms=atoms, progress=False)
    print(f"bound {r.w1_bound / s:.4f} std, true W1 {ref.w1(r.atoms, r.weights) / s:.5f} std")


if __name__ == "__main__":
    main()
